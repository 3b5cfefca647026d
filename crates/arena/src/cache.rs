//! The per-thread page cache (Go's `pageCache`, mpagecache.go).
//!
//! A [`PageCache`] holds one 64-page aligned block taken out of the page
//! allocator whole: a `u64` of its free pages and a `u64` of which of those
//! are scavenged. Spans of fewer than [`crate::CACHE_MAX_PAGES`] pages are
//! carved from it with a bit search and no lock, and a freed span whose
//! pages lie in the block goes straight back to it. When the block has no
//! run of the requested length the request goes to the page allocator
//! under the lock; when the block is empty it is refilled (under the lock)
//! with the block holding the heap's lowest free page, so caches, like the
//! allocator, fill the heap from the bottom.
//!
//! The cache also keeps a few span records ([`RECORDS`]), refilled from
//! the span pool under the lock when it refills its block, so that the
//! lock-free path needs no record allocation either (Go's `mspancache`).
//!
//! # Ownership
//!
//! The sweep layer's per-thread cache owns one `PageCache` per heap. The
//! first allocation through a cache binds it to that heap: it keeps the
//! heap's shared state alive (an `Arc`), so dropping a non-empty cache is
//! never a leak: `Drop` gives the pages and records back (taking the heap
//! lock), even after the `PageHeap` itself is gone. [`PageCache::flush`]
//! does the same eagerly. Using a cache bound to one heap with another
//! flushes it into the first and rebinds it.
//!
//! The cache also carries its thread's share of the heap's in-use page
//! count, updated with a plain load and store because only this thread
//! writes it; the heap sums the shares of its registered caches, and a
//! cache folds its share into the heap's counter when it is dropped or
//! rebound. A locked read-modify-write on one shared counter cost about a
//! third of a cached allocate + free pair.
//!
//! Pages in a cache are allocated as far as the page allocator knows, and
//! count as idle in the stats (their scavenged ones as released). The
//! scavenger cannot see them: at most 64 pages (512 KiB) per cache.

use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use crate::error::ArenaError;
use crate::heap::{Locked, PageHeap, Shared};
use crate::pagealloc::BLOCK_PAGES;
use crate::pagealloc::chunk::find_bit_range64;
use crate::span::Span;
use crate::splitcount::CountShare;
use crate::{PAGE_SHIFT, PAGE_SIZE};

/// Span records a cache keeps at most; it refills to half.
const RECORDS: usize = 16;

/// Blocks a cache remembers having had, to ask for again (see "Locality").
const RECENT_BLOCKS: usize = 32;

/// A per-thread cache of free pages. See the module documentation.
pub struct PageCache {
    /// Address of the cached block (0: none yet).
    base: usize,
    /// Bit `i`: page `i` of the block is free in this cache.
    free: u64,
    /// Bit `i`: page `i` is free and scavenged. Always a subset of `free`.
    scav: u64,
    /// Dead span records of the bound heap's pool.
    records: [Option<NonNull<Span>>; RECORDS],
    nrecords: usize,
    /// The heap this cache is bound to.
    heap: Option<Arc<Shared>>,
    /// This cache's share of the bound heap's counters, registered with it.
    counters: Option<Arc<CountShare>>,
    /// The blocks this cache took last, oldest first from `recent_next`
    /// (0: none), tried before the lowest free block (see "Locality").
    recent: [usize; RECENT_BLOCKS],
    recent_next: usize,
}

// SAFETY: the record pointers refer to records in the pool of `heap`, which
// the `Arc` keeps alive; records are Sync (all atomics and a mutex), so
// moving the cache, with its exclusive claim on them, to another thread is
// sound.
unsafe impl Send for PageCache {}

impl Default for PageCache {
    fn default() -> Self {
        PageCache::new()
    }
}

impl std::fmt::Debug for PageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PageCache {{ base: {:#x}, free: {:#x}, scav: {:#x}, records: {}, bound: {} }}",
            self.base,
            self.free,
            self.scav,
            self.nrecords,
            self.heap.is_some()
        )
    }
}

impl PageCache {
    /// An empty cache, bound to no heap.
    pub const fn new() -> PageCache {
        PageCache {
            base: 0,
            free: 0,
            scav: 0,
            records: [None; RECORDS],
            nrecords: 0,
            heap: None,
            counters: None,
            recent: [0; RECENT_BLOCKS],
            recent_next: 0,
        }
    }

    /// Whether the cache holds no free pages.
    pub fn is_empty(&self) -> bool {
        self.free == 0
    }

    /// Bytes of free pages in the cache.
    pub fn free_bytes(&self) -> usize {
        self.free.count_ones() as usize * PAGE_SIZE
    }

    /// Bytes of free pages in the cache that are scavenged.
    pub fn released_bytes(&self) -> usize {
        self.scav.count_ones() as usize * PAGE_SIZE
    }

    /// Gives every cached page and record back to `heap`.
    ///
    /// # Panics
    ///
    /// If the cache is bound to a different heap.
    pub fn flush(&mut self, heap: &PageHeap) {
        if let Some(h) = &self.heap {
            assert!(
                Arc::ptr_eq(h, &heap.shared),
                "PageCache::flush: the cache belongs to another heap"
            );
            let h = h.clone();
            let mut l = h.lock();
            self.flush_locked(&h, &mut l);
        }
    }

    fn flush_locked(&mut self, shared: &Shared, l: &mut Locked) {
        if self.free != 0 {
            l.pages
                .return_block(&shared.arenas, self.base, self.free, self.scav);
            shared
                .counters
                .cached_released_pages
                .fetch_sub(self.scav.count_ones() as usize, Relaxed);
        }
        self.free = 0;
        self.scav = 0;
        self.base = 0;
        while let Some(r) = self.pop_record() {
            l.pool.put(r);
        }
    }

    /// Binds the cache to `shared`, flushing it into the heap it was bound
    /// to before, if any.
    fn bind(&mut self, shared: &Arc<Shared>) {
        if self.heap.as_ref().is_some_and(|h| Arc::ptr_eq(h, shared)) {
            return;
        }
        if let Some(old) = self.heap.clone() {
            let mut l = old.lock();
            self.flush_locked(&old, &mut l);
            drop(l);
            self.unbind();
        }
        self.counters = Some(shared.counters.in_use_pages.new_share());
        self.heap = Some(shared.clone());
    }

    /// Folds this cache's counters into its heap and forgets the heap.
    fn unbind(&mut self) {
        if let (Some(h), Some(c)) = (self.heap.take(), self.counters.take()) {
            h.counters.in_use_pages.drop_share(&c);
        }
        self.recent = [0; RECENT_BLOCKS];
    }

    /// This cache's share of the counters, if it is bound to `shared`.
    pub(crate) fn counters_for(&self, shared: &Arc<Shared>) -> Option<&CountShare> {
        match &self.heap {
            Some(h) if Arc::ptr_eq(h, shared) => self.counters.as_deref(),
            _ => None,
        }
    }

    fn pop_record(&mut self) -> Option<NonNull<Span>> {
        if self.nrecords == 0 {
            return None;
        }
        self.nrecords -= 1;
        self.records[self.nrecords].take()
    }

    fn refill_records(&mut self, l: &mut Locked) -> Result<(), ArenaError> {
        while self.nrecords < RECORDS / 2 {
            let r = l.pool.take()?;
            self.records[self.nrecords] = Some(r);
            self.nrecords += 1;
        }
        Ok(())
    }

    /// One of the blocks this cache had before, newest first, that has
    /// free pages still holding data (see "Locality").
    fn recent_block(&mut self, shared: &Shared, l: &mut Locked) -> Option<(usize, u64, u64)> {
        (1..=RECENT_BLOCKS)
            .map(|k| self.recent[(self.recent_next + RECENT_BLOCKS - k) % RECENT_BLOCKS])
            .filter(|&b| b != 0)
            .find_map(|b| l.pages.take_dirty_block_at(&shared.arenas, b))
    }

    /// Notes `block` as the newest block this cache had (once).
    fn remember(&mut self, block: usize) {
        if !self.recent.contains(&block) {
            self.recent[self.recent_next] = block;
            self.recent_next = (self.recent_next + 1) % RECENT_BLOCKS;
        }
    }

    /// Takes `npages` (< 64) contiguous pages from the block: `(address,
    /// scavenged mask of the taken pages)`.
    fn take_pages(&mut self, npages: usize) -> Option<(usize, u64)> {
        let i = if npages == 1 {
            self.free.trailing_zeros()
        } else {
            find_bit_range64(self.free, npages as u32)
        };
        if i >= 64 {
            return None;
        }
        let mask = ((1u64 << npages) - 1) << i;
        let scav = self.scav & mask;
        self.free &= !mask;
        self.scav &= !mask;
        Some((self.base + ((i as usize) << PAGE_SHIFT), scav))
    }

    /// Allocates `npages` pages and a record for a span on `shared`:
    /// `(address, scavenged pages, record)`. Lock-free when the block has
    /// the pages and a record is at hand.
    pub(crate) fn alloc(
        &mut self,
        shared: &Arc<Shared>,
        npages: usize,
    ) -> Result<(usize, usize, NonNull<Span>), ArenaError> {
        debug_assert!(npages < BLOCK_PAGES);
        self.bind(shared);
        if self.nrecords > 0
            && let Some((base, scav)) = self.take_pages(npages)
        {
            let rec = self.pop_record().expect("checked above");
            let nscav = scav.count_ones() as usize;
            shared.consume_scavenged(nscav, true);
            return Ok((base, nscav, rec));
        }
        let mut l = shared.lock();
        self.refill_records(&mut l)?;
        let rec = self.pop_record().expect("records just refilled");
        if self.free == 0 {
            let block = match self.recent_block(shared, &mut l) {
                Some(b) => Some(b),
                None => match l.pages.take_block(&shared.arenas) {
                    Some(b) => Some(b),
                    None => match shared.grow_locked(&mut l, 1) {
                        Ok(()) => l.pages.take_block(&shared.arenas),
                        Err(e) => {
                            l.pool.put(rec);
                            return Err(e);
                        }
                    },
                },
            };
            if let Some((base, free, scav)) = block {
                self.remember(base);
                self.base = base;
                self.free = free;
                self.scav = scav;
                shared
                    .counters
                    .cached_released_pages
                    .fetch_add(scav.count_ones() as usize, Relaxed);
            }
        }
        if let Some((base, scav)) = self.take_pages(npages) {
            let nscav = scav.count_ones() as usize;
            shared.consume_scavenged(nscav, true);
            return Ok((base, nscav, rec));
        }
        // No run of `npages` in the block: straight from the allocator.
        match shared.alloc_pages_locked(&mut l, npages) {
            Ok((base, nscav)) => {
                shared.consume_scavenged(nscav, false);
                Ok((base, nscav, rec))
            }
            Err(e) => {
                l.pool.put(rec);
                Err(e)
            }
        }
    }

    /// Takes back a retired span's pages and record if the pages lie in the
    /// block and the cache is bound to `shared`; returns whether it did.
    /// The record must be `Free`; it becomes `Dead` here.
    pub(crate) fn try_free(&mut self, shared: &Arc<Shared>, span: &Span) -> bool {
        let bound = self.heap.as_ref().is_some_and(|h| Arc::ptr_eq(h, shared));
        let (start, npages) = (span.start(), span.npages());
        if !bound
            || self.base == 0
            || start < self.base
            || start + (npages << PAGE_SHIFT) > self.base + BLOCK_PAGES * PAGE_SIZE
        {
            return false;
        }
        let i = (start - self.base) >> PAGE_SHIFT;
        let mask = if npages == 64 {
            !0
        } else {
            ((1u64 << npages) - 1) << i
        };
        debug_assert_eq!(self.free & mask, 0, "freeing cached pages twice");
        self.free |= mask;
        span.transition_owned(
            crate::span::SpanState::Free,
            crate::span::SpanState::Dead,
            "free_span",
        );
        let rec = NonNull::from(span);
        if self.nrecords < RECORDS {
            self.records[self.nrecords] = Some(rec);
            self.nrecords += 1;
        } else {
            let mut l = shared.lock();
            l.pool.put(rec);
            while self.nrecords > RECORDS / 2 {
                let r = self.pop_record().expect("cache holds records");
                l.pool.put(r);
            }
        }
        true
    }
}

impl Drop for PageCache {
    fn drop(&mut self) {
        if let Some(h) = self.heap.clone() {
            // A poisoned lock means a panic left the page allocator
            // inconsistent; panicking again here (perhaps while unwinding
            // from that panic) would abort, so the cached pages are left
            // where they are.
            if let Ok(mut l) = h.locked.lock() {
                self.flush_locked(&h, &mut l);
            }
        }
        self.unbind();
    }
}
