//! Heap arenas, their metadata, and the table that finds them.
//!
//! The heap's memory is a set of 64 MiB arenas ([`crate::ARENA_SIZE`]),
//! each aligned to its size. Every arena has a [`HeapArena`] record, in OS
//! memory of its own, holding:
//!
//! * the **span map**: one `AtomicPtr<Span>` per page (8192 entries). Every
//!   page of an in-use or manual span points to its span record. Entries of
//!   free pages are left as they were (stale), as in Go: readers validate
//!   the record they find (see "Reading the span map" below).
//! * the per-page bitmaps `page_in_use`, `page_marks` and `page_specials`:
//!   one bit per page, set only for the first page of a span (in use; with
//!   any marked object; with any special record). The reclaimer reads them a
//!   word (64 pages) at a time to find unmarked in-use spans quickly.
//! * the page allocator's bits for the arena's pages (`alloc_bits`,
//!   `scav_bits`), which only the page allocator touches, under the heap
//!   lock.
//!
//! # Finding an arena
//!
//! `ArenaTable` is a flat array of 2^21 `AtomicPtr<HeapArena>`, one per
//! 64 MiB of the 47-bit user address space, indexed by `addr >> 26`. It is
//! 16 MiB of address space from `os::map`, but only the few pages that hold
//! the heap's entries are ever touched. A lookup is therefore one shift and
//! one load, and an address outside the heap finds a null entry (or is
//! above 2^47) and answers `None`. Go uses a two-level map
//! (`arenas[L1][L2]`) because it must also cover 48-bit and 32-bit address
//! spaces; on 64-bit Linux with 47-bit user addresses the flat table costs
//! one dependent load less on the marker's hot path.
//!
//! `span_of(addr)` is three dependent loads: the table entry, the span map
//! entry, and then whatever the caller reads from the span.
//!
//! # Reading the span map
//!
//! Entries are stored with `Relaxed` before the span's state is published
//! with `Release`, and arena records are published in the table with
//! `Release` after they are initialised (loaded with `Acquire`). A reader
//! that finds a record and then sees `InUse` through `state_acquire` sees
//! the identity fields written for that allocation. The record may be stale
//! (the page was freed and the record reused for another span), so callers
//! check that the address lies inside the span they found; records are
//! never unmapped while the heap lives, so a stale record is always safe to
//! read. While the world is stopped (marking) nothing changes.
//!
//! Arenas are never unmapped while the heap lives; all of their memory and
//! metadata goes back to the OS when the heap is dropped.

use std::ptr::NonNull;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize};

use crate::mapped::{MappedSlice, ZeroValid};
use crate::os::OsError;
use crate::span::Span;
use crate::{ARENA_SHIFT, ARENA_SIZE, PAGE_SHIFT, PAGES_PER_ARENA};

/// Bits of user address space covered (x86-64 and arm64 Linux with 4-level
/// page tables).
pub(crate) const ADDR_BITS: usize = 47;
/// Entries in the arena table: one per possible arena.
pub(crate) const ARENA_TABLE_LEN: usize = 1 << (ADDR_BITS - ARENA_SHIFT);
/// 64-bit words in a per-page bitmap of one arena.
pub const PAGE_WORDS_PER_ARENA: usize = PAGES_PER_ARENA / 64;

/// The metadata of one heap arena. See the module documentation.
#[repr(C)]
pub struct HeapArena {
    /// Address of the arena's first byte. Written before the record is
    /// published in the table.
    base: AtomicUsize,
    /// Page -> span record. Written by the page heap when it allocates a
    /// span (before publishing the span), read by anyone.
    spans: [AtomicPtr<Span>; PAGES_PER_ARENA],
    /// First page of each in-use span. Set and cleared by the page heap
    /// (atomic OR / AND), read by the reclaimer.
    page_in_use: [AtomicU64; PAGE_WORDS_PER_ARENA],
    /// First page of each span with a marked object. Set by markers (atomic
    /// OR), cleared before each mark phase.
    page_marks: [AtomicU64; PAGE_WORDS_PER_ARENA],
    /// First page of each span with special records. Set and cleared by the
    /// specials layer under the span's specials lock.
    page_specials: [AtomicU64; PAGE_WORDS_PER_ARENA],
    /// Page allocator: page allocated (in a span, a page cache, or being
    /// scavenged). Protected by the heap lock (atomics only so that the
    /// record can be shared; accessed with `Relaxed`).
    pub(crate) alloc_bits: [AtomicU64; PAGE_WORDS_PER_ARENA],
    /// Page allocator: free page whose memory was returned to the OS (or
    /// never touched). Never set for an allocated page. Protected by the
    /// heap lock.
    pub(crate) scav_bits: [AtomicU64; PAGE_WORDS_PER_ARENA],
}

// SAFETY: every field is an array of atomics or an atomic, all valid at
// zero; the record needs no drop.
unsafe impl ZeroValid for HeapArena {}

impl HeapArena {
    /// Address of the arena's first byte.
    #[inline]
    pub fn base(&self) -> usize {
        self.base.load(Relaxed)
    }

    /// The arena's index in the arena table (`base >> 26`).
    #[inline]
    pub fn index(&self) -> usize {
        self.base() >> ARENA_SHIFT
    }

    /// Word `i` (`i < PAGE_WORDS_PER_ARENA`) of `page_in_use`: bit `b` is
    /// page `64 * i + b` of the arena.
    #[inline]
    pub fn page_in_use_word(&self, i: usize) -> u64 {
        self.page_in_use[i].load(Relaxed)
    }

    /// Word `i` of `page_marks`.
    #[inline]
    pub fn page_marks_word(&self, i: usize) -> u64 {
        self.page_marks[i].load(Relaxed)
    }

    /// Word `i` of `page_specials`.
    #[inline]
    pub fn page_specials_word(&self, i: usize) -> u64 {
        self.page_specials[i].load(Relaxed)
    }

    /// The span map entry of page `p` (`p < PAGES_PER_ARENA`) of this
    /// arena: the record that last described the page, or `None` if no span
    /// ever did. Validate it (see the module documentation).
    #[inline]
    pub fn span_at_page(&self, p: usize) -> Option<&Span> {
        let s = self.spans[p].load(Relaxed);
        // SAFETY: span map entries are null or point to records of this
        // heap's span pool, which are never unmapped while the heap (and
        // so `self`, which borrows it) lives.
        unsafe { s.as_ref() }
    }

    #[inline]
    pub(crate) fn page_index(&self, addr: usize) -> usize {
        (addr - self.base()) >> PAGE_SHIFT
    }

    pub(crate) fn set_span_pages(&self, first: usize, n: usize, span: &Span) {
        let p = span as *const Span as *mut Span;
        for e in &self.spans[first..first + n] {
            e.store(p, Relaxed);
        }
    }

    pub(crate) fn set_bit(bits: &[AtomicU64; PAGE_WORDS_PER_ARENA], page: usize) {
        bits[page / 64].fetch_or(1 << (page % 64), Relaxed);
    }

    pub(crate) fn clear_bit(bits: &[AtomicU64; PAGE_WORDS_PER_ARENA], page: usize) {
        bits[page / 64].fetch_and(!(1 << (page % 64)), Relaxed);
    }

    pub(crate) fn test_bit(bits: &[AtomicU64; PAGE_WORDS_PER_ARENA], page: usize) -> bool {
        bits[page / 64].load(Relaxed) & (1 << (page % 64)) != 0
    }

    pub(crate) fn page_in_use_bits(&self) -> &[AtomicU64; PAGE_WORDS_PER_ARENA] {
        &self.page_in_use
    }

    pub(crate) fn page_marks_bits(&self) -> &[AtomicU64; PAGE_WORDS_PER_ARENA] {
        &self.page_marks
    }

    pub(crate) fn page_specials_bits(&self) -> &[AtomicU64; PAGE_WORDS_PER_ARENA] {
        &self.page_specials
    }
}

/// The arena table and the list of all arenas. See the module docs.
pub(crate) struct ArenaTable {
    /// `addr >> 26` -> arena record (null if not in the heap). Entries are
    /// published with `Release` under the heap lock, read with `Acquire`
    /// without it.
    table: MappedSlice<AtomicPtr<HeapArena>>,
    /// Every arena in the order it was added; entries below `len` are
    /// non-null and never change.
    list: MappedSlice<AtomicPtr<HeapArena>>,
    /// Number of arenas in `list`. Stored with `Release` after the entry.
    len: AtomicUsize,
    /// The records themselves, owned here so they live exactly as long as
    /// the table. Only touched under the heap lock (and in drop).
    records: std::sync::Mutex<Vec<MappedSlice<HeapArena>>>,
}

impl ArenaTable {
    pub(crate) fn new() -> Result<ArenaTable, OsError> {
        Ok(ArenaTable {
            table: MappedSlice::new(ARENA_TABLE_LEN)?,
            list: MappedSlice::new(ARENA_TABLE_LEN)?,
            len: AtomicUsize::new(0),
            records: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The arena containing `addr`, if it is in the heap.
    #[inline]
    pub(crate) fn arena_of(&self, addr: usize) -> Option<&HeapArena> {
        let p = self.table.get(addr >> ARENA_SHIFT)?.load(Acquire);
        // Entries are null or records in `self.records`, which live as long
        // as `self`; the Acquire load pairs with `add`'s Release store.
        // SAFETY: so a non-null entry is an initialised, live record.
        unsafe { p.as_ref() }
    }

    /// Creates and publishes the record of the arena at `base` (aligned,
    /// below 2^47, not yet in the table). Called with the heap lock held.
    pub(crate) fn add(&self, base: usize) -> Result<&HeapArena, OsError> {
        debug_assert!(base.is_multiple_of(ARENA_SIZE) && (base >> ADDR_BITS) == 0);
        let rec: MappedSlice<HeapArena> = MappedSlice::new(1)?;
        let arena = &rec[0];
        arena.base.store(base, Relaxed);
        // Fresh memory counts as scavenged: it has never been touched and
        // reads as zero (see the page allocator).
        for w in &arena.scav_bits {
            w.store(!0, Relaxed);
        }
        let ptr = NonNull::from(arena).as_ptr();
        let entry = &self.table[base >> ARENA_SHIFT];
        assert!(entry.load(Relaxed).is_null(), "arena {base:#x} added twice");
        let n = self.len.load(Relaxed);
        self.list[n].store(ptr, Relaxed);
        self.records
            .lock()
            .expect("arena records lock poisoned")
            .push(rec);
        entry.store(ptr, Release);
        self.len.store(n + 1, Release);
        // SAFETY: `ptr` points into the record just pushed to
        // `self.records`, which lives as long as `self`.
        Ok(unsafe { &*ptr })
    }

    /// Every arena, in the order they were added.
    pub(crate) fn all(&self) -> impl Iterator<Item = &HeapArena> + Clone {
        let n = self.len.load(Acquire);
        self.list[..n].iter().map(|e| {
            // SAFETY: entries below `len` (loaded with Acquire, pairing with
            // the Release in `add`) are non-null pointers to records owned
            // by `self`.
            unsafe { &*e.load(Relaxed) }
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len.load(Acquire)
    }
}

/// A stable view of the heap's arenas, in the order they were added.
/// Arenas are never removed while the heap lives, so the view stays valid;
/// arenas added after it was taken are not in it.
#[derive(Clone)]
pub struct ArenasSnapshot<'a> {
    pub(crate) table: &'a ArenaTable,
    pub(crate) len: usize,
}

impl<'a> ArenasSnapshot<'a> {
    /// Number of arenas in the snapshot.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the heap had no arena yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The arenas.
    pub fn iter(&self) -> impl Iterator<Item = &'a HeapArena> + 'a {
        self.table.all().take(self.len)
    }
}
