//! The page allocator: which pages of the heap are free.
//!
//! This is the design Go adopted in 1.14 (`mpagealloc.go`,
//! `mpallocbits.go`), replacing the seed's treaps of free spans. The seed
//! kept free spans in two treaps (scavenged and not) under the heap lock;
//! on large heaps a single allocation or free walked and rebalanced them
//! for microseconds while every other thread that needed a span waited
//! (Go issues 28479 and 31678). The replacement:
//!
//! * **Bitmaps.** One alloc bit and one scavenged bit per page, grouped in
//!   chunks of 512 pages ([`chunk`]), stored in each arena's record. Freeing
//!   is clearing bits; no free-span objects exist at all, so nothing needs
//!   coalescing.
//! * **Summaries in a radix tree.** Each chunk has a packed summary (free
//!   pages at the start, the longest free run, free pages at the end), and
//!   each level above summarises 8 entries of the level below
//!   ([`summary`]). Finding `n` free pages descends from the root: at each
//!   level scan (at most) 8 entries; a run that straddles entries is found
//!   from their `end`/`start` fields without descending; otherwise descend
//!   into the first entry whose `max` is at least `n`. The leaf level
//!   searches the chunk's bits. Each level's summaries are a flat array over
//!   the whole address space in OS memory (about 300 MiB of address space,
//!   of which a heap touches a few pages), so an entry's index is a shift.
//! * **Address-ordered first fit** with a **search hint**: `search_addr` is
//!   a lower bound on the lowest free page (every page below it is
//!   allocated). Searches start there, skipping the full prefix of the heap
//!   without reading it. Lowest-address-first keeps the heap compact, which
//!   is what lets the scavenger return the top of it.
//! * **Scavenging from the top.** `scav_addr` is an upper bound on free,
//!   unscavenged pages; the scavenger walks chunks down from it, reading
//!   leaf summaries to skip full chunks.
//!
//! Everything here is protected by the heap lock: the caller holds
//! `&mut PageAlloc` only inside it. The per-thread page cache
//! (`crate::PageCache`) takes whole 64-page blocks out of the bitmaps with
//! [`PageAlloc::take_block`] so that small allocations skip this module and
//! the lock.
//!
//! Fresh memory from a new arena is marked scavenged: it has never been
//! touched, costs no resident memory and reads as zero, exactly like a
//! released page. So "scavenged" means "reads as zero and is not resident",
//! and a span needs zeroing exactly when it received a page that is not
//! scavenged (`needzero`).

pub(crate) mod chunk;
pub(crate) mod summary;
#[cfg(test)]
mod test;

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use self::chunk::{CHUNK_PAGES, CHUNK_WORDS, ChunkBits};
use self::summary::{
    LEVEL_BITS, LEVELS, LOG_CHUNK_BYTES, Sum, entry_pages, level_index, level_len, level_shift,
};
use crate::arena::{ADDR_BITS, ArenaTable};
use crate::mapped::MappedSlice;
use crate::os::OsError;
use crate::{ARENA_SIZE, PAGE_SHIFT, PAGE_SIZE};

/// One past the highest heap address the allocator can describe.
const MAX_ADDR: usize = 1 << ADDR_BITS;
/// Pages in a page-cache block: one `u64` of bits.
pub(crate) const BLOCK_PAGES: usize = 64;

/// The page allocator's state. Protected by the heap lock.
pub(crate) struct PageAlloc {
    /// Summary level `l`, indexed by `level_index(l, addr)`.
    summary: [MappedSlice<AtomicU64>; LEVELS],
    /// Every page below this address is allocated ("the lowest address
    /// that may be free"). `MAX_ADDR` while the heap has no free page.
    search_addr: usize,
    /// No free, unscavenged page lies at or above this address.
    scav_addr: usize,
    /// One past the highest level-0 index of any arena: level-0 scans stop
    /// here.
    root_limit: usize,
    /// Base addresses of all arenas, ascending.
    arena_bases: Vec<usize>,
}

impl PageAlloc {
    pub(crate) fn new() -> Result<PageAlloc, OsError> {
        Ok(PageAlloc {
            summary: [
                MappedSlice::new(level_len(0))?,
                MappedSlice::new(level_len(1))?,
                MappedSlice::new(level_len(2))?,
                MappedSlice::new(level_len(3))?,
                MappedSlice::new(level_len(4))?,
            ],
            search_addr: MAX_ADDR,
            scav_addr: 0,
            root_limit: 0,
            arena_bases: Vec::new(),
        })
    }

    #[inline]
    fn sum(&self, l: usize, i: usize) -> Sum {
        Sum(self.summary[l][i].load(Relaxed))
    }

    fn chunk_words(table: &ArenaTable, ci: usize) -> (&[AtomicU64], &[AtomicU64]) {
        let arena = table
            .arena_of(ci << LOG_CHUNK_BYTES)
            .unwrap_or_else(|| panic!("page allocator: chunk {ci:#x} is not in the heap"));
        let off = (ci % (ARENA_SIZE >> LOG_CHUNK_BYTES)) * CHUNK_WORDS;
        (
            &arena.alloc_bits[off..off + CHUNK_WORDS],
            &arena.scav_bits[off..off + CHUNK_WORDS],
        )
    }

    pub(crate) fn load_chunk(table: &ArenaTable, ci: usize) -> ChunkBits {
        let (a, s) = Self::chunk_words(table, ci);
        let mut c = ChunkBits::default();
        for i in 0..CHUNK_WORDS {
            c.alloc[i] = a[i].load(Relaxed);
            c.scav[i] = s[i].load(Relaxed);
        }
        c
    }

    /// Stores `c` as chunk `ci`'s bits and its summary as the leaf entry.
    fn store_chunk(&self, table: &ArenaTable, ci: usize, c: &ChunkBits) {
        let (a, s) = Self::chunk_words(table, ci);
        for i in 0..CHUNK_WORDS {
            a[i].store(c.alloc[i], Relaxed);
            s[i].store(c.scav[i], Relaxed);
        }
        self.summary[LEVELS - 1][ci].store(c.summarize().0, Relaxed);
    }

    /// Recomputes the summaries above leaf entries `first ..= last`.
    fn update_parents(&self, mut first: usize, mut last: usize) {
        for l in (0..LEVELS - 1).rev() {
            first >>= LEVEL_BITS;
            last >>= LEVEL_BITS;
            for p in first..=last {
                let s = self.merged_children(l, p);
                self.summary[l][p].store(s.0, Relaxed);
            }
        }
    }

    /// The summary of entry `p` of level `l` recomputed from its children.
    fn merged_children(&self, l: usize, p: usize) -> Sum {
        let c0 = p << LEVEL_BITS;
        Sum::merge(
            (c0..c0 + (1 << LEVEL_BITS)).map(|c| self.sum(l + 1, c)),
            entry_pages(l + 1),
        )
    }

    /// Calls `f(chunk_index, first_page_in_chunk, npages)` for each chunk
    /// that pages `[base, base + npages * PAGE_SIZE)` touch.
    fn for_each_chunk(base: usize, npages: usize, mut f: impl FnMut(usize, usize, usize)) {
        let mut page = base >> PAGE_SHIFT;
        let end = page + npages;
        while page < end {
            let ci = page / CHUNK_PAGES;
            let first = page % CHUNK_PAGES;
            let n = (CHUNK_PAGES - first).min(end - page);
            f(ci, first, n);
            page += n;
        }
    }

    /// Adds the arenas `[base, base + len)`, already in the table with
    /// their pages free and scavenged.
    pub(crate) fn grow(&mut self, table: &ArenaTable, base: usize, len: usize) {
        let first = base >> LOG_CHUNK_BYTES;
        let last = (base + len - 1) >> LOG_CHUNK_BYTES;
        for ci in first..=last {
            debug_assert_eq!(Self::load_chunk(table, ci).free_pages(), CHUNK_PAGES);
            self.summary[LEVELS - 1][ci].store(Sum::free(CHUNK_PAGES).0, Relaxed);
        }
        self.update_parents(first, last);
        self.search_addr = self.search_addr.min(base);
        self.root_limit = self.root_limit.max(level_index(0, base + len - 1) + 1);
        for a in (base..base + len).step_by(ARENA_SIZE) {
            let at = self.arena_bases.partition_point(|&b| b < a);
            self.arena_bases.insert(at, a);
        }
    }

    /// The address of the first (lowest) run of `npages` free pages, or
    /// `None` if the heap has none.
    pub(crate) fn find(&self, table: &ArenaTable, npages: usize) -> Option<usize> {
        debug_assert!(npages > 0);
        if self.search_addr >= MAX_ADDR {
            return None;
        }
        // Index at the current level of the first entry to scan.
        let mut i = level_index(0, self.search_addr);
        let mut end = self.root_limit;
        for l in 0..LEVELS {
            let pages = entry_pages(l);
            if l > 0 {
                // Entries of this block below the search address's entry
                // hold no free page (the hint's invariant): skip them.
                let block = i << LEVEL_BITS;
                i = block.max(level_index(l, self.search_addr));
                end = block + (1 << LEVEL_BITS);
            }
            // A run of free pages ending where the previous entry ends:
            // `size` pages starting at page number `run_base`.
            let mut size = 0;
            let mut run_base = 0;
            let mut descend = None;
            for j in i..end {
                let s = self.sum(l, j);
                if s == Sum::NONE {
                    size = 0;
                    continue;
                }
                if size == 0 {
                    run_base = j * pages;
                }
                if size + s.start() >= npages {
                    return Some(run_base << PAGE_SHIFT);
                }
                if s.max() >= npages {
                    descend = Some(j);
                    break;
                }
                if s.start() == pages {
                    size += pages;
                } else {
                    size = s.end();
                    run_base = (j + 1) * pages - size;
                }
            }
            match descend {
                Some(j) => i = j,
                None if l == 0 => return None,
                None => panic!(
                    "page allocator: level {} entry {:#x} promised a run of {npages} pages that its children do not have",
                    l - 1,
                    i >> LEVEL_BITS
                ),
            }
        }
        // `i` is now the chunk holding the run.
        let from = if self.search_addr >> LOG_CHUNK_BYTES == i {
            (self.search_addr >> PAGE_SHIFT) % CHUNK_PAGES
        } else {
            0
        };
        let c = Self::load_chunk(table, i);
        let p = c.find(npages, from).unwrap_or_else(|| {
            panic!("page allocator: chunk {i:#x} summary {:?} promised {npages} free pages from {from}; bits {c:x?}", self.sum(LEVELS - 1, i))
        });
        Some((i << LOG_CHUNK_BYTES) + (p << PAGE_SHIFT))
    }

    /// Allocates the first run of `npages` free pages: `(address, how many
    /// of its pages were scavenged)`, or `None` if there is no such run.
    pub(crate) fn alloc(&mut self, table: &ArenaTable, npages: usize) -> Option<(usize, usize)> {
        let base = self.find(table, npages)?;
        let scav = self.alloc_range(table, base, npages);
        // A single page found by first fit is the lowest free page, so
        // everything up to its end is allocated now; otherwise the hint can
        // only move when the run started exactly at it.
        if npages == 1 || base == self.search_addr {
            self.search_addr = self.search_addr.max(base + (npages << PAGE_SHIFT));
        }
        Some((base, scav))
    }

    /// Marks free pages `[base, base + npages)` allocated; returns how many
    /// were scavenged (their scavenged bits are cleared).
    pub(crate) fn alloc_range(&mut self, table: &ArenaTable, base: usize, npages: usize) -> usize {
        let mut scav = 0;
        Self::for_each_chunk(base, npages, |ci, first, n| {
            let mut c = Self::load_chunk(table, ci);
            scav += c.alloc_range(first, n);
            self.store_chunk(table, ci, &c);
        });
        self.update_parents(
            base >> LOG_CHUNK_BYTES,
            (base + (npages << PAGE_SHIFT) - 1) >> LOG_CHUNK_BYTES,
        );
        scav
    }

    /// Marks allocated pages `[base, base + npages)` free; `scavenged` says
    /// whether their memory was just released to the OS.
    pub(crate) fn free_range(
        &mut self,
        table: &ArenaTable,
        base: usize,
        npages: usize,
        scavenged: bool,
    ) {
        let end = base + (npages << PAGE_SHIFT);
        Self::for_each_chunk(base, npages, |ci, first, n| {
            let mut c = Self::load_chunk(table, ci);
            c.free_range(first, n, scavenged);
            self.store_chunk(table, ci, &c);
        });
        self.update_parents(base >> LOG_CHUNK_BYTES, (end - 1) >> LOG_CHUNK_BYTES);
        self.search_addr = self.search_addr.min(base);
        if !scavenged {
            self.scav_addr = self.scav_addr.max(end);
        }
    }

    /// Takes the 64-page aligned block holding the lowest free page for a
    /// page cache: `(block address, free pages mask, scavenged mask)`. All
    /// its pages become allocated here; the cache owns the free ones.
    pub(crate) fn take_block(&mut self, table: &ArenaTable) -> Option<(usize, u64, u64)> {
        let first_free = self.find(table, 1)?;
        let block = first_free & !(BLOCK_PAGES * PAGE_SIZE - 1);
        let taken = self.take_block_at(table, block);
        // Pages below `first_free` were allocated already, and the block is
        // now allocated too.
        self.search_addr = self.search_addr.max(block + BLOCK_PAGES * PAGE_SIZE);
        taken
    }

    /// Like [`PageAlloc::take_block`], but the 64-page aligned block at
    /// `block`, and only if it is in the heap and has a free page that is
    /// not scavenged: a page cache asks for the blocks it had before first,
    /// so that a thread goes on writing memory its own core wrote last (see
    /// `crate::cache`), and a block of released pages holds nothing of
    /// that. `search_addr` stays: taking pages cannot make it wrong.
    pub(crate) fn take_dirty_block_at(
        &mut self,
        table: &ArenaTable,
        block: usize,
    ) -> Option<(usize, u64, u64)> {
        debug_assert_eq!(
            block % (BLOCK_PAGES * PAGE_SIZE),
            0,
            "unaligned block {block:#x}"
        );
        table.arena_of(block)?;
        let page = block >> PAGE_SHIFT;
        let (ci, w) = (page / CHUNK_PAGES, (page % CHUNK_PAGES) / BLOCK_PAGES);
        let (a, sc) = Self::chunk_words(table, ci);
        if !a[w].load(Relaxed) & !sc[w].load(Relaxed) == 0 {
            return None;
        }
        self.take_block_at(table, block)
    }

    /// Takes the block at `block` (aligned, in the heap) whole: its free
    /// and scavenged masks.
    fn take_block_at(&mut self, table: &ArenaTable, block: usize) -> Option<(usize, u64, u64)> {
        let page = block >> PAGE_SHIFT;
        let ci = page / CHUNK_PAGES;
        let w = (page % CHUNK_PAGES) / BLOCK_PAGES;
        let mut c = Self::load_chunk(table, ci);
        let free = !c.alloc[w];
        let scav = c.scav[w] & free;
        c.alloc[w] = !0;
        c.scav[w] = 0;
        self.store_chunk(table, ci, &c);
        self.update_parents(ci, ci);
        Some((block, free, scav))
    }

    /// Returns a page cache's free pages: bits set in `free` (a subset of
    /// the block's allocated pages) become free, those also in `scav`
    /// scavenged.
    pub(crate) fn return_block(&mut self, table: &ArenaTable, block: usize, free: u64, scav: u64) {
        debug_assert_eq!(scav & !free, 0);
        let page = block >> PAGE_SHIFT;
        let ci = page / CHUNK_PAGES;
        let w = (page % CHUNK_PAGES) / BLOCK_PAGES;
        let mut c = Self::load_chunk(table, ci);
        assert_eq!(
            c.alloc[w] & free,
            free,
            "page cache returned pages that are free in the heap (block {block:#x})"
        );
        c.alloc[w] &= !free;
        c.scav[w] |= scav;
        self.store_chunk(table, ci, &c);
        self.update_parents(ci, ci);
        if free != 0 {
            let lowest = block + ((free.trailing_zeros() as usize) << PAGE_SHIFT);
            self.search_addr = self.search_addr.min(lowest);
        }
        if free & !scav != 0 {
            self.scav_addr = self.scav_addr.max(block + BLOCK_PAGES * PAGE_SIZE);
        }
    }

    /// The highest run of free, unscavenged pages (at most `max_pages`,
    /// within one chunk): `(address, npages)`. Moves `scav_addr` down to it,
    /// or to 0 if there is none.
    pub(crate) fn scavenge_candidate(
        &mut self,
        table: &ArenaTable,
        max_pages: usize,
    ) -> Option<(usize, usize)> {
        for &arena in self.arena_bases.iter().rev() {
            if arena >= self.scav_addr {
                continue;
            }
            let mut top = self.scav_addr.min(arena + ARENA_SIZE);
            let first_ci = arena >> LOG_CHUNK_BYTES;
            let mut ci = (top - 1) >> LOG_CHUNK_BYTES;
            loop {
                let chunk_base = ci << LOG_CHUNK_BYTES;
                if self.sum(LEVELS - 1, ci) != Sum::NONE {
                    let below = (top - chunk_base) >> PAGE_SHIFT;
                    if let Some((p, n)) =
                        Self::load_chunk(table, ci).scavenge_candidate(below, max_pages)
                    {
                        let addr = chunk_base + (p << PAGE_SHIFT);
                        self.scav_addr = addr;
                        return Some((addr, n));
                    }
                }
                if ci == first_ci {
                    break;
                }
                top = chunk_base;
                ci -= 1;
            }
        }
        self.scav_addr = 0;
        None
    }

    /// Whether some free page is unscavenged, without taking it.
    pub(crate) fn has_scavenge_candidate(&mut self, table: &ArenaTable) -> bool {
        match self.scavenge_candidate(table, 1) {
            Some((addr, n)) => {
                // Nothing free and unscavenged lies above the candidate.
                self.scav_addr = addr + (n << PAGE_SHIFT);
                true
            }
            None => false,
        }
    }

    /// Every arena base address, ascending.
    pub(crate) fn arena_bases(&self) -> &[usize] {
        &self.arena_bases
    }

    /// Re-derives every summary over the heap from the bits and checks the
    /// hints' invariants. Returns the first inconsistency found.
    pub(crate) fn verify(&self, table: &ArenaTable) -> Result<(), String> {
        let in_heap = |addr: usize, len: usize| {
            // Whether [addr, addr + len) overlaps an arena.
            let i = self
                .arena_bases
                .partition_point(|&b| b + ARENA_SIZE <= addr);
            i < self.arena_bases.len() && self.arena_bases[i] < addr + len
        };
        for &arena in &self.arena_bases {
            for ci in arena >> LOG_CHUNK_BYTES..(arena + ARENA_SIZE) >> LOG_CHUNK_BYTES {
                let c = Self::load_chunk(table, ci);
                for w in 0..CHUNK_WORDS {
                    if c.alloc[w] & c.scav[w] != 0 {
                        return Err(format!(
                            "chunk {ci:#x} word {w}: allocated pages marked scavenged: {:#x}",
                            c.alloc[w] & c.scav[w]
                        ));
                    }
                }
                let want = c.summarize();
                if self.sum(LEVELS - 1, ci) != want {
                    return Err(format!(
                        "chunk {ci:#x}: summary {:?}, bits say {want:?}",
                        self.sum(LEVELS - 1, ci)
                    ));
                }
                let chunk_base = ci << LOG_CHUNK_BYTES;
                for p in 0..CHUNK_PAGES {
                    let addr = chunk_base + (p << PAGE_SHIFT);
                    let free = c.alloc[p / 64] & (1 << (p % 64)) == 0;
                    let scav = c.scav[p / 64] & (1 << (p % 64)) != 0;
                    if free && addr < self.search_addr {
                        return Err(format!(
                            "free page {addr:#x} below the search hint {:#x}",
                            self.search_addr
                        ));
                    }
                    if free && !scav && addr >= self.scav_addr {
                        return Err(format!(
                            "free unscavenged page {addr:#x} above the scavenge index {:#x}",
                            self.scav_addr
                        ));
                    }
                }
                // Every ancestor equals the merge of its children, and
                // children outside the heap are empty.
                for l in (0..LEVELS - 1).rev() {
                    let p = ci >> (LEVEL_BITS * (LEVELS - 1 - l));
                    let want = self.merged_children(l, p);
                    if self.sum(l, p) != want {
                        return Err(format!(
                            "level {l} entry {p:#x}: summary {:?}, children say {want:?}",
                            self.sum(l, p)
                        ));
                    }
                    for c in p << LEVEL_BITS..(p + 1) << LEVEL_BITS {
                        let addr = c << (LOG_CHUNK_BYTES + level_shift(l + 1));
                        let len = entry_pages(l + 1) << PAGE_SHIFT;
                        if !in_heap(addr, len) && self.sum(l + 1, c) != Sum::NONE {
                            return Err(format!(
                                "level {} entry {c:#x} outside the heap has summary {:?}",
                                l + 1,
                                self.sum(l + 1, c)
                            ));
                        }
                    }
                }
            }
        }
        for r in 0..self.root_limit {
            if !in_heap(
                r << (LOG_CHUNK_BYTES + level_shift(0)),
                entry_pages(0) << PAGE_SHIFT,
            ) && self.sum(0, r) != Sum::NONE
            {
                return Err(format!(
                    "level 0 entry {r:#x} outside the heap is not empty"
                ));
            }
        }
        Ok(())
    }
}
