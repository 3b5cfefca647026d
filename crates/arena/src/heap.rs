//! The page heap: spans from arenas, and the public face of this crate.
//!
//! [`PageHeap`] owns everything below the sweep layer: the arenas (grown by
//! whole 64 MiB arenas at addresses chosen by hints that keep the heap
//! contiguous, as the seed's `arenaHints`), the arena table and span map,
//! the span record pool, the page allocator and the scavenger. The layers
//! above ask it for spans (`alloc_span`, `alloc_manual`), give them back
//! (`free_span`, `free_manual`), look up spans from addresses (`span_of`,
//! `span_of_heap`, `find_object`) and read or set the per-page bitmaps.
//!
//! # What protects what
//!
//! * **The heap lock** (`Shared::locked`): the page allocator (bitmaps,
//!   summaries, hints), the span pool's free list, the arena reservations.
//!   Held for a bitmap search and update (a few hundred nanoseconds), and
//!   while growing the heap (system calls); never while releasing memory to
//!   the OS (the scavenger takes pages out of the bitmaps, drops the lock,
//!   calls `madvise`, and puts them back).
//! * **Nothing** (atomics): the arena table, the span map (written by the
//!   allocating thread before the span is published), the per-page bitmaps
//!   `page_in_use`, `page_marks`, `page_specials` (atomic OR/AND), the
//!   counters, and span states (compare-exchange, so a double free is
//!   caught even when it races).
//! * **The caller's `&mut PageCache`**: a page cache's block and records.
//!   Allocating fewer than [`CACHE_MAX_PAGES`] pages through a cache that
//!   has them takes no lock at all (Go's `pageCache`), and so does freeing
//!   a span whose pages lie in the cache's current block.
//!
//! Go's 1.14 rewrite of the page heap was motivated by the lock: the seed's
//! treaps held it for microseconds per operation on large heaps (Go issues
//! 28479 and 31678). Here the lock covers a bounded search (at most 8
//! summaries per level of a five-level tree and one chunk's bits), and
//! the common small allocation avoids it.
//!
//! # Publishing a span
//!
//! `alloc_span` writes the record's identity, alloc state and `sweepgen`,
//! then the span map entries and the `page_in_use` bit, and only then moves
//! the state from `Dead` to `InUse` with a `Release` compare-exchange. A
//! reader that loads the state with `Acquire` and sees `InUse` therefore
//! sees the heap's sweepgen in the record: a sweeper that claims spans by a
//! CAS from `h - 2` can never claim a span allocated in the current cycle.
//! `free_span` moves `InUse -> Free` first (panicking, with the span
//! printed, if the state was anything else), stores `SWEEPGEN_DEAD`,
//! returns the pages, and finally `Free -> Dead` as the record goes back to
//! the pool.

use std::ptr::NonNull;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::arena::{ADDR_BITS, ArenaTable, ArenasSnapshot, HeapArena};
use crate::cache::PageCache;
use crate::clock::Clock;
use crate::config::{ArenaHints, PageHeapConfig};
use crate::error::ArenaError;
use crate::os;
use crate::pagealloc::PageAlloc;
use crate::scavenger::ScavengerState;
use crate::sizeclass::{SpanClass, class_npages};
use crate::span::{SWEEPGEN_DEAD, Span, SpanInit, SpanState};
use crate::spanpool::SpanPool;
use crate::splitcount::CountShare;
use crate::stats::{Counters, PageHeapStats};
use crate::{ARENA_SIZE, PAGE_SHIFT, PAGE_SIZE, PAGES_PER_ARENA};

/// Spans of fewer pages than this go through the page cache when one is
/// given (a quarter of the cache's 64-page block, as in Go: bigger requests
/// would drain a block in a few allocations and refill under the lock
/// anyway).
pub const CACHE_MAX_PAGES: usize = 16;

/// One past the highest address the heap may use.
const MAX_ADDR: usize = 1 << ADDR_BITS;

/// The page heap. One per spangc heap; `Send + Sync`. See the module
/// documentation.
pub struct PageHeap {
    pub(crate) shared: Arc<Shared>,
    /// The background scavenger thread, if running.
    scavenger: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The heap's state, shared with page caches and the scavenger thread
/// (each holds an `Arc`, so the memory outlives every record pointer they
/// hold).
pub(crate) struct Shared {
    /// Arena lookup and metadata: published under the heap lock, read
    /// without it (see `arena`).
    pub(crate) arenas: ArenaTable,
    /// The heap lock and what it protects.
    pub(crate) locked: Mutex<Locked>,
    /// Accounting: `Relaxed` atomics (see `stats`).
    pub(crate) counters: Counters,
    /// The scavenger's goal, parking and pacing state: atomics.
    pub(crate) scav: ScavengerState,
    /// Immutable after construction.
    pub(crate) clock: Arc<dyn Clock>,
    /// The heap limit in pages.
    max_pages: usize,
    /// Heap lock acquisitions, so tests can check which paths take none.
    #[cfg(test)]
    pub(crate) lock_count: std::sync::atomic::AtomicUsize,
}

/// State protected by the heap lock.
pub(crate) struct Locked {
    pub(crate) pages: PageAlloc,
    pub(crate) pool: SpanPool,
    reservations: Reservations,
    /// Pages the scavenger has taken out of the bitmaps and not yet put
    /// back.
    pub(crate) scavenging_pages: usize,
}

/// Arena address hints and the regions reserved from the OS.
struct Reservations {
    /// Addresses to try next, first first; each moves up as arenas are
    /// placed at it.
    hints: Vec<usize>,
    /// Every region reserved, unmapped when the heap is dropped.
    regions: Vec<(NonNull<u8>, usize)>,
}

// SAFETY: `regions` only records our own mappings (for unmapping at drop);
// no memory is reached through the pointers, so moving them between threads
// is sound.
unsafe impl Send for Reservations {}

impl Reservations {
    fn new(policy: ArenaHints) -> Reservations {
        let hints = match policy {
            // Go's 64-bit hints (malloc.go): 0x00c0<<32, 0x01c0<<32, ...
            ArenaHints::Go => (0..0x80usize).map(|i| (i << 40) | (0x00c0 << 32)).collect(),
            ArenaHints::At(a) => vec![a],
            ArenaHints::Kernel => Vec::new(),
        };
        Reservations {
            hints,
            regions: Vec::new(),
        }
    }

    /// Reserves `len` bytes (whole arenas), aligned to an arena, below
    /// 2^47: at the first hint the kernel honours, else where it likes.
    fn reserve(&mut self, len: usize) -> Result<usize, ArenaError> {
        while let Some(&h) = self.hints.first() {
            if h.checked_add(len).is_none_or(|end| end > MAX_ADDR) {
                self.hints.remove(0);
                continue;
            }
            let p = os::reserve(len, ARENA_SIZE, Some(h))?;
            if p.as_ptr() as usize == h {
                self.hints[0] = h + len;
                self.regions.push((p, len));
                return Ok(h);
            }
            // Something else lives there: try the next hint.
            // SAFETY: our own fresh reservation, never handed out.
            unsafe { os::unmap(p, len)? };
            self.hints.remove(0);
        }
        let p = os::reserve(len, ARENA_SIZE, None)?;
        let addr = p.as_ptr() as usize;
        if addr + len > MAX_ADDR {
            // SAFETY: our own fresh reservation, never handed out.
            unsafe { os::unmap(p, len)? };
            return Err(ArenaError::Os(os::OsError::Call {
                call: "mmap",
                errno: libc::ENOMEM,
            }));
        }
        self.regions.push((p, len));
        Ok(addr)
    }
}

impl Drop for Reservations {
    fn drop(&mut self) {
        for &(p, len) in &self.regions {
            // The reservations drop with the heap's shared state: after every
            // `&Span` and object address handed out (they borrow the
            // `PageHeap`) and every page cache and scavenger thread (they
            // hold the shared state).
            // SAFETY: so nothing refers to this reservation, our own, any more.
            let r = unsafe { os::unmap(p, len) };
            debug_assert!(r.is_ok(), "unmapping an arena: {r:?}");
        }
    }
}

/// An object found from an interior pointer by [`PageHeap::find_object`].
#[derive(Clone, Copy, Debug)]
pub struct ObjectRef<'a> {
    /// Address of the object's first byte.
    pub base: usize,
    /// The in-use span holding it.
    pub span: &'a Span,
    /// The object's slot index in the span.
    pub index: usize,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Locked> {
        #[cfg(test)]
        self.lock_count.fetch_add(1, Relaxed);
        self.locked
            .lock()
            .expect("page heap lock poisoned: a panic while holding it may have left the page allocator inconsistent")
    }

    /// Grows the heap by whole arenas so that a run of `npages` free pages
    /// exists (the new arenas are contiguous with each other).
    pub(crate) fn grow_locked(&self, l: &mut Locked, npages: usize) -> Result<(), ArenaError> {
        let narenas = npages.div_ceil(PAGES_PER_ARENA);
        let sys = self.counters.sys_pages.load(Relaxed);
        if sys + narenas * PAGES_PER_ARENA > self.max_pages {
            return Err(ArenaError::HeapLimit {
                npages,
                sys_bytes: sys * PAGE_SIZE,
                limit_bytes: self.max_pages * PAGE_SIZE,
            });
        }
        let len = narenas * ARENA_SIZE;
        let base = l.reservations.reserve(len)?;
        let region = NonNull::new(base as *mut u8).expect("arena at address 0");
        // SAFETY: `region` is the reservation just made, of `len` bytes.
        unsafe { os::commit(region, len)? };
        let mut added = 0;
        let mut result = Ok(());
        for k in 0..narenas {
            match self.arenas.add(base + k * ARENA_SIZE) {
                Ok(_) => added += 1,
                Err(e) => {
                    result = Err(ArenaError::Os(e));
                    break;
                }
            }
        }
        if added > 0 {
            l.pages.grow(&self.arenas, base, added * ARENA_SIZE);
            let pages = added * PAGES_PER_ARENA;
            self.counters.sys_pages.fetch_add(pages, Relaxed);
            self.counters.released_pages.fetch_add(pages, Relaxed);
        }
        result
    }

    /// Allocates `npages` pages from the bitmaps, growing if needed:
    /// `(address, scavenged pages consumed)`.
    pub(crate) fn alloc_pages_locked(
        &self,
        l: &mut Locked,
        npages: usize,
    ) -> Result<(usize, usize), ArenaError> {
        if let Some(r) = l.pages.alloc(&self.arenas, npages) {
            return Ok(r);
        }
        self.grow_locked(l, npages)?;
        Ok(l.pages
            .alloc(&self.arenas, npages)
            .expect("page heap grew by enough arenas but cannot allocate from them"))
    }

    /// Accounts for an allocation that took `pages` scavenged pages (from
    /// a page cache when `cached`), and wakes the background scavenger if
    /// retained memory went above its goal.
    pub(crate) fn consume_scavenged(&self, pages: usize, cached: bool) {
        if pages > 0 {
            self.counters.consume_scavenged(pages, cached);
            self.maybe_wake_scavenger();
        }
    }

    /// Pages and a record for a span, under the lock: `(address, scavenged
    /// pages consumed, record)`.
    fn alloc_uncached(&self, npages: usize) -> Result<(usize, usize, NonNull<Span>), ArenaError> {
        let mut l = self.lock();
        let rec = l.pool.take()?;
        match self.alloc_pages_locked(&mut l, npages) {
            Ok((base, scav)) => {
                self.consume_scavenged(scav, false);
                Ok((base, scav, rec))
            }
            Err(e) => {
                l.pool.put(rec);
                Err(e)
            }
        }
    }

    /// Calls `f(arena, first_page, n)` for each arena piece of the pages
    /// `[base, base + npages)`.
    fn for_each_arena_piece(
        &self,
        base: usize,
        npages: usize,
        mut f: impl FnMut(&HeapArena, usize, usize),
    ) {
        let mut addr = base;
        let mut left = npages;
        while left > 0 {
            let arena = self
                .arenas
                .arena_of(addr)
                .unwrap_or_else(|| panic!("page {addr:#x} is not in the heap"));
            let first = arena.page_index(addr);
            let n = (PAGES_PER_ARENA - first).min(left);
            f(arena, first, n);
            addr += n << PAGE_SHIFT;
            left -= n;
        }
    }

    /// Fills in and publishes a record for pages the caller has allocated.
    pub(crate) fn publish(
        &self,
        rec: NonNull<Span>,
        init: SpanInit,
        state: SpanState,
        acct: Option<&CountShare>,
    ) -> &Span {
        // SAFETY: `rec` is a record of this heap's pool (taken from it or
        // from a page cache bound to this heap), alive as long as `self`.
        let span = unsafe { rec.as_ref() };
        let (base, npages) = (init.start, init.npages);
        span.prepare(init);
        self.for_each_arena_piece(base, npages, |a, first, n| a.set_span_pages(first, n, span));
        match state {
            SpanState::InUse => {
                let arena = self.arenas.arena_of(base).expect("span outside the heap");
                HeapArena::set_bit(arena.page_in_use_bits(), arena.page_index(base));
                self.counters.add_in_use(acct, npages as isize);
            }
            _ => {
                self.counters.manual_pages.fetch_add(npages, Relaxed);
            }
        }
        span.transition_owned(SpanState::Dead, state, "alloc_span");
        span
    }

    /// The first half of freeing: checks the span is `from` and belongs to
    /// this heap, moves it to `Free`, and clears its per-page state.
    fn retire(&self, span: &Span, from: SpanState, op: &str, acct: Option<&CountShare>) {
        let start = span.start();
        let arena = self.arenas.arena_of(start);
        let ours = arena.is_some_and(|a| {
            a.span_at_page(a.page_index(start))
                .is_some_and(|s| std::ptr::eq(s, span))
        });
        assert!(ours, "{op}: span does not belong to this heap: {span}");
        let arena = arena.expect("checked above");
        let page = arena.page_index(start);
        assert!(
            !HeapArena::test_bit(arena.page_specials_bits(), page),
            "{op}: span still has special records: {span}"
        );
        span.transition(from, SpanState::Free, op);
        if from == SpanState::InUse {
            HeapArena::clear_bit(arena.page_in_use_bits(), page);
            self.counters.add_in_use(acct, -(span.npages() as isize));
        } else {
            self.counters.manual_pages.fetch_sub(span.npages(), Relaxed);
        }
        span.sweepgen.store(SWEEPGEN_DEAD, Relaxed);
        span.unused_since.store(self.clock.coarse_now_ns(), Relaxed);
    }

    /// The second half of freeing, under the lock: pages back to the
    /// bitmaps, record back to the pool.
    fn release_locked(&self, l: &mut Locked, span: &Span) {
        l.pages
            .free_range(&self.arenas, span.start(), span.npages(), false);
        span.transition_owned(SpanState::Free, SpanState::Dead, "free_span");
        l.pool.put(NonNull::from(span));
    }
}

impl PageHeap {
    /// A new, empty heap (it reserves its first arena on the first
    /// allocation). Maps about 330 MiB of address space for metadata, of
    /// which only the parts in use become resident.
    pub fn new(config: PageHeapConfig) -> Result<PageHeap, ArenaError> {
        config.validate()?;
        let shared = Arc::new(Shared {
            arenas: ArenaTable::new()?,
            locked: Mutex::new(Locked {
                pages: PageAlloc::new()?,
                pool: SpanPool::new(),
                reservations: Reservations::new(config.arena_hints),
                scavenging_pages: 0,
            }),
            counters: Counters::default(),
            scav: ScavengerState::new(&config),
            clock: config.clock.clone(),
            max_pages: config.max_pages(),
            #[cfg(test)]
            lock_count: Default::default(),
        });
        let heap = PageHeap {
            shared,
            scavenger: Mutex::new(None),
        };
        if config.background_scavenger {
            heap.start_scavenger()?;
        }
        Ok(heap)
    }

    fn check_npages(&self, npages: usize) -> Result<(), ArenaError> {
        if npages == 0 {
            return Err(ArenaError::ZeroPages);
        }
        if npages > self.shared.max_pages {
            return Err(ArenaError::TooLarge {
                npages,
                max_pages: self.shared.max_pages,
            });
        }
        Ok(())
    }

    /// Allocates a span of `npages` pages for objects of `span_class`, in
    /// state `InUse`.
    ///
    /// The span's identity is set from the class (large classes: one slot
    /// of the whole span), `type_tag` and `sweepgen` are stored before the
    /// span is published (see the module documentation), every page maps to
    /// it, its `page_in_use` bit is set, and its alloc state is reset with
    /// null bitmaps (the sweep layer installs them). `needzero` is false
    /// only if every page was scavenged (or fresh), so reads as zero;
    /// `scavenged` says whether any page was.
    ///
    /// With a `cache`, spans of fewer than [`CACHE_MAX_PAGES`] pages come
    /// from its block without taking the heap lock when it can.
    ///
    /// Errors: zero pages, more than the heap can ever hold, a small class
    /// with the wrong page count, the heap limit, or the OS refusing memory.
    pub fn alloc_span(
        &self,
        npages: usize,
        span_class: SpanClass,
        type_tag: usize,
        sweepgen: u32,
        mut cache: Option<&mut PageCache>,
    ) -> Result<&Span, ArenaError> {
        self.check_npages(npages)?;
        if !span_class.is_large() {
            let want = class_npages(span_class.size_class());
            if npages != want {
                return Err(ArenaError::ClassMismatch {
                    span_class,
                    npages,
                    class_npages: want,
                });
            }
        }
        let (base, scav, rec) = match cache.as_deref_mut() {
            Some(c) if npages < CACHE_MAX_PAGES => c.alloc(&self.shared, npages)?,
            _ => self.shared.alloc_uncached(npages)?,
        };
        let acct = cache.as_deref().and_then(|c| c.counters_for(&self.shared));
        let init = SpanInit {
            start: base,
            npages,
            class: Some(span_class),
            type_tag,
            sweepgen,
            needzero: scav < npages,
            scavenged: scav > 0,
        };
        Ok(self.shared.publish(rec, init, SpanState::InUse, acct))
    }

    /// Frees an in-use span: `InUse -> Free`, its `page_in_use` bit
    /// cleared, `sweepgen` set to [`SWEEPGEN_DEAD`], `unused_since`
    /// stamped, its pages returned (to `cache` without the lock if they lie
    /// in the cache's block, else to the page allocator), and the record
    /// returned to the pool. The pages' memory is dirty from now on (a
    /// later span on them gets `needzero`) until scavenged.
    ///
    /// # Panics
    ///
    /// If the span is not in state `InUse` (a double free, or a manual
    /// span), does not belong to this heap, or still has special records;
    /// the message prints the span.
    pub fn free_span(&self, span: &Span, cache: Option<&mut PageCache>) {
        let acct = cache.as_deref().and_then(|c| c.counters_for(&self.shared));
        self.shared
            .retire(span, SpanState::InUse, "free_span", acct);
        if let Some(c) = cache
            && c.try_free(&self.shared, span)
        {
            return;
        }
        let mut l = self.shared.lock();
        self.shared.release_locked(&mut l, span);
        drop(l);
        self.shared.maybe_wake_scavenger();
    }

    /// Allocates a manual span of `npages` pages: memory the heap hands
    /// out but does not collect (state `Manual`, counted in
    /// `manual_bytes`, not in `in_use_bytes`; `sweepgen` is
    /// [`SWEEPGEN_DEAD`]; its limit is the end of its pages).
    /// `needzero` and `scavenged` mean what they do for `alloc_span`.
    pub fn alloc_manual(&self, npages: usize) -> Result<&Span, ArenaError> {
        self.check_npages(npages)?;
        let (base, scav, rec) = self.shared.alloc_uncached(npages)?;
        let init = SpanInit {
            start: base,
            npages,
            class: None,
            type_tag: 0,
            sweepgen: SWEEPGEN_DEAD,
            needzero: scav < npages,
            scavenged: scav > 0,
        };
        Ok(self.shared.publish(rec, init, SpanState::Manual, None))
    }

    /// Frees a manual span.
    ///
    /// # Panics
    ///
    /// If the span is not `Manual` or not from this heap; the message
    /// prints the span.
    pub fn free_manual(&self, span: &Span) {
        self.shared
            .retire(span, SpanState::Manual, "free_manual", None);
        let mut l = self.shared.lock();
        self.shared.release_locked(&mut l, span);
        drop(l);
        self.shared.maybe_wake_scavenger();
    }

    /// Grows the heap by whole arenas holding at least `npages` more pages,
    /// whether or not it has free pages already.
    pub fn grow(&self, npages: usize) -> Result<(), ArenaError> {
        self.check_npages(npages)?;
        let mut l = self.shared.lock();
        self.shared.grow_locked(&mut l, npages)
    }

    /// The arena holding `addr`, or `None` for an address outside the heap.
    #[inline]
    pub fn arena_of(&self, addr: usize) -> Option<&HeapArena> {
        self.shared.arenas.arena_of(addr)
    }

    /// The span map entry for `addr`: the record that last described the
    /// page, or `None` if `addr` is outside the heap or no span ever
    /// covered its page. The record may be stale (the page freed, the
    /// record reused): check its state and range, or use
    /// [`PageHeap::span_of_heap`].
    #[inline]
    pub fn span_of(&self, addr: usize) -> Option<&Span> {
        let arena = self.shared.arenas.arena_of(addr)?;
        arena.span_at_page((addr & (ARENA_SIZE - 1)) >> PAGE_SHIFT)
    }

    /// The in-use span holding an object at `addr` (`start <= addr <
    /// limit`), or `None`. Consistent while the span cannot be freed
    /// concurrently (the world is stopped, or the caller keeps it alive).
    #[inline]
    pub fn span_of_heap(&self, addr: usize) -> Option<&Span> {
        let span = self.span_of(addr)?;
        if span.state_acquire() == SpanState::InUse && span.contains_object_addr(addr) {
            Some(span)
        } else {
            None
        }
    }

    /// The object containing the (possibly interior) pointer `addr`: its
    /// base address, span and slot index; `None` if `addr` is not inside an
    /// object slot of an in-use span.
    #[inline]
    pub fn find_object(&self, addr: usize) -> Option<ObjectRef<'_>> {
        let span = self.span_of_heap(addr)?;
        let index = span.slot_index(addr);
        Some(ObjectRef {
            base: span.start() + index * span.elem_size(),
            span,
            index,
        })
    }

    #[inline]
    fn first_page(&self, span: &Span) -> (&HeapArena, usize) {
        let arena = self
            .shared
            .arenas
            .arena_of(span.start())
            .unwrap_or_else(|| panic!("span not in this heap: {span}"));
        (arena, arena.page_index(span.start()))
    }

    /// Sets the span's `page_marks` bit: it has a marked object. Tests the
    /// bit with a plain load first: every marker sets it for every object
    /// it marks in the span, and an unconditional `lock or` on the shared
    /// word made it the hottest instruction of marking (two mark threads
    /// on binary-trees: 37% of mark time, `perf annotate`).
    #[inline]
    pub fn set_page_mark(&self, span: &Span) {
        let (a, p) = self.first_page(span);
        let bits = a.page_marks_bits();
        if bits[p / 64].load(Relaxed) & (1 << (p % 64)) == 0 {
            HeapArena::set_bit(bits, p);
        }
    }

    /// Clears every arena's `page_marks` (before a mark phase).
    pub fn clear_page_marks(&self) {
        for a in self.shared.arenas.all() {
            for w in a.page_marks_bits() {
                w.store(0, Relaxed);
            }
        }
    }

    /// Sets the span's `page_specials` bit: it has special records.
    pub fn set_page_special(&self, span: &Span) {
        let (a, p) = self.first_page(span);
        HeapArena::set_bit(a.page_specials_bits(), p);
    }

    /// Whether the span's `page_specials` bit is set (lock-free; the
    /// specials registry keeps it equal to "the span's list is non-empty").
    #[inline]
    pub fn has_page_special(&self, span: &Span) -> bool {
        let (a, p) = self.first_page(span);
        HeapArena::test_bit(a.page_specials_bits(), p)
    }

    /// Clears the span's `page_specials` bit.
    pub fn clear_page_special(&self, span: &Span) {
        let (a, p) = self.first_page(span);
        HeapArena::clear_bit(a.page_specials_bits(), p);
    }

    /// The heap's arenas (never removed while the heap lives), for word-
    /// at-a-time scans of the per-page bitmaps.
    pub fn arenas(&self) -> ArenasSnapshot<'_> {
        ArenasSnapshot {
            table: &self.shared.arenas,
            len: self.shared.arenas.len(),
        }
    }

    /// A snapshot of the accounting (see [`PageHeapStats`]).
    pub fn stats(&self) -> PageHeapStats {
        let c = &self.shared.counters;
        let sys = c.sys_pages.load(Relaxed);
        let in_use = c.in_use_pages.get();
        let manual = c.manual_pages.load(Relaxed);
        let released = c.released_pages.load(Relaxed);
        let idle = sys.saturating_sub(in_use + manual);
        let s = &self.shared.scav;
        PageHeapStats {
            sys_bytes: sys * PAGE_SIZE,
            in_use_bytes: in_use * PAGE_SIZE,
            manual_bytes: manual * PAGE_SIZE,
            idle_bytes: idle * PAGE_SIZE,
            released_bytes: released * PAGE_SIZE,
            retained_bytes: sys.saturating_sub(released) * PAGE_SIZE,
            pages_in_use: in_use,
            arenas: self.shared.arenas.len(),
            span_records: self.shared.lock().pool.created(),
            scavenged_consumed_bytes: c.scav_consumed_pages.load(Relaxed) * PAGE_SIZE as u64,
            scavenged_released_bytes: c.scav_released_pages.load(Relaxed) * PAGE_SIZE as u64,
            scavenge_errors: c.scavenge_errors.load(Relaxed),
            scavenge_goal_bytes: s.goal(),
            bg_scavenger_running: self.scavenger_handle().is_some(),
            bg_scavenger_work_ns: s.work_ns.load(Relaxed),
            bg_scavenger_sleep_ns: s.sleep_ns.load(Relaxed),
            bg_scavenger_released_bytes: s.released_pages.load(Relaxed) * PAGE_SIZE as u64,
        }
    }

    pub(crate) fn scavenger_handle(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<std::thread::JoinHandle<()>>> {
        self.scavenger.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for PageHeap {
    fn drop(&mut self) {
        // The shared state itself goes when the last page cache holding it
        // does.
        self.stop_scavenger();
    }
}
