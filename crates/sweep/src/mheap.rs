//! The heap-wide sweep and allocation state (the part of the seed's
//! `mheap` above the page heap).
//!
//! [`Mheap`] owns the page heap, the gcBits arenas, the heap's sweep
//! generation, the centrals, the large-object span sets, proportional
//! sweep pacing, the page reclaimer and the background sweeper. The
//! facade drives it through a cycle:
//!
//! ```text
//!  finish_sweep()      mutators running: sweep what is left of generation h
//!  prepare_mark()      world stopped: rotate gcBits epochs, clear page marks
//!  (facade marks)
//!  finish_mark(bytes)  world stopped: h += 2, every in-use span is now unswept,
//!                      heap_live = marked bytes, reclaim and pacing reset
//!  (world restarts; background sweeper, cache refills, proportional sweep
//!   and the reclaimer sweep generation h+2 concurrently)
//! ```
//!
//! # heap_live
//!
//! As the seed's `memstats.heap_live`: bytes of objects allocated and not
//! known to be dead. Set to the marked bytes at each mark's end; a cache
//! adds a span's free bytes when it takes the span and subtracts what it
//! did not use when it gives it back, so the allocation fast path touches
//! no shared counter. Large objects count when allocated. Updated
//! atomically.

use crate::background::Background;
use crate::central::{Central, CentralKey};
use crate::mcache::MCache;
use crate::pacing::ProportionalSweep;
use crate::reclaim::Reclaim;
use crate::source::SpanSource;
use crate::spanset::{SpanRef, SpanSet};
use crate::stats::{Counters, SweepStats};
use crate::sweepgen::{SweepDone, next_generation};
use spangc_arena::sizeclass::SpanClass;
use spangc_arena::span::Span;
use spangc_arena::{ArenaError, PageHeap, PageHeapConfig, PageHeapStats, SpanState};
use spangc_gcbits::{GcBitsArenas, SpanBits};
use std::collections::HashMap;
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize};
use std::sync::{Arc, RwLock};

/// What the layer above does when objects die. Called by whichever thread
/// sweeps (the background sweeper, an allocating mutator).
pub trait SweepHooks: Send + Sync + 'static {
    /// Whether dead objects in spans with this type tag need
    /// [`SweepHooks::free_object`] (for example, to run drop glue). When it
    /// is `false` a span is swept by bitmap words alone.
    fn needs_free_hook(&self, type_tag: usize) -> bool;

    /// Called once for each dead object in spans whose tag needs it,
    /// before the slot can be reused. Returns whether the slot may be
    /// freed; `false` keeps the object allocated until the next sweep of
    /// its span, which calls the hook again if it is still dead (the
    /// facade keeps an object whose destructor must run on another
    /// thread, until that thread has run it). Kept objects count in
    /// `heap_live`. [`Mheap::free_all_objects`] ignores the answer.
    ///
    /// Must not unwind: it runs while the sweeper holds a span's claim, and
    /// a claim abandoned halfway would leave the span's bitmaps to be
    /// retired under it. A panic escaping it aborts the process (the facade
    /// catches destructor panics itself).
    fn free_object(&self, type_tag: usize, addr: NonNull<u8>) -> bool;

    /// Called when sweeping a span whose `page_specials` bit is set, before
    /// its dead objects are found: the hook processes the special records
    /// of unmarked objects, and may set the mark bit of an object it keeps
    /// alive for one more cycle (a finalizer's resurrection). The sweeper
    /// holds the span's claim. Returns how many objects it marked so: they
    /// join `heap_live`, which the mark set to the marked bytes alone.
    fn sweep_specials(&self, pages: &PageHeap, span: &Span) -> u32;
}

/// Options of the sweep layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MheapConfig {
    /// Run a background sweeper thread.
    pub background_sweep: bool,
    /// Run the page heap's background scavenger thread.
    pub background_scavenge: bool,
    /// Overwrite freed objects with [`POISON`](crate::POISON) (verify mode).
    pub poison: bool,
}

impl Default for MheapConfig {
    fn default() -> Self {
        MheapConfig {
            background_sweep: true,
            background_scavenge: true,
            poison: false,
        }
    }
}

/// Why an allocation failed in the layers below the facade.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AllocError {
    /// More than the heap can ever hold.
    TooLarge {
        /// Requested bytes.
        bytes: usize,
    },
    /// The page heap could not provide pages.
    Arena(ArenaError),
    /// The OS refused memory for bitmaps.
    Os(spangc_arena::os::OsError),
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocError::TooLarge { bytes } => {
                write!(f, "{bytes} bytes is more than the heap can hold")
            }
            AllocError::Arena(e) => e.fmt(f),
            AllocError::Os(e) => write!(f, "no memory for gcBits: {e}"),
        }
    }
}

impl std::error::Error for AllocError {}

impl From<ArenaError> for AllocError {
    fn from(e: ArenaError) -> Self {
        match e {
            ArenaError::TooLarge { npages, .. } => AllocError::TooLarge {
                bytes: npages.saturating_mul(spangc_arena::PAGE_SIZE),
            },
            e => AllocError::Arena(e),
        }
    }
}

impl From<spangc_arena::os::OsError> for AllocError {
    fn from(e: spangc_arena::os::OsError) -> Self {
        AllocError::Os(e)
    }
}

/// What a value of the sweepers' cursor points at: a central by registry
/// index, then the large sets, then nothing.
pub(crate) enum CursorAt {
    Central(Arc<Central>),
    Large,
    End,
}

/// The registry of centrals: append-only, so an index stays valid.
#[derive(Default)]
struct Centrals {
    list: Vec<Arc<Central>>,
    index: HashMap<CentralKey, usize>,
}

/// The heap-wide sweep and allocation state. See the module docs.
pub struct Mheap {
    /// Thread-safe itself (its own lock and atomics; see `spangc-arena`).
    pages: PageHeap,
    /// Lock-free bump allocation, rotated with the world stopped
    /// (`prepare_mark`); see docs/gcbits.md.
    pub(crate) bits: GcBitsArenas,
    /// Immutable.
    pub(crate) hooks: Arc<dyn SweepHooks>,
    /// The heap's sweep generation `h`. Written with the world stopped
    /// (Release), read anywhere (Acquire where a span's sweepgen is
    /// compared against it).
    sweepgen: AtomicU32,
    /// The sweep-done word (`sweepgen.rs`): atomic, reset with the world
    /// stopped.
    pub(crate) done: SweepDone,
    /// Append-only registry: read-locked to look up or walk, write-locked
    /// only to add a central (a cache's first allocation of a new key).
    centrals: RwLock<Centrals>,
    /// Large-object spans, swept / unswept by generation parity (as the
    /// centrals' sets). Lock-free sets; a span is in at most one.
    pub(crate) large: [SpanSet; 2],
    /// Next central (by registry index) the sweepers look at;
    /// `list.len()` means the large sets. Relaxed: only a hint of where
    /// work is (the span sets order the spans themselves). Reset with the
    /// world stopped.
    pub(crate) sweep_cursor: AtomicUsize,
    /// Atomics; see `pacing.rs` for the ordering.
    pub(crate) pacing: ProportionalSweep,
    /// Atomics, and a snapshot lock written with the world stopped; see
    /// `reclaim.rs`.
    pub(crate) reclaim: Reclaim,
    /// See the module docs. Relaxed atomic adds: a count, not a
    /// publication; exact with the world stopped.
    heap_live: AtomicUsize,
    /// Monotone relaxed counters.
    pub(crate) counters: Counters,
    /// In-use large spans (small ones are counted by their centrals).
    /// Relaxed: exact whenever no thread is allocating or sweeping (the
    /// world stopped), which is when it is read as a count.
    pub(crate) large_spans_in_use: AtomicUsize,
    /// In-use spans at the last advance: each must be swept exactly once
    /// this generation ([`Mheap::verify`] checks it). Written with the
    /// world stopped.
    pub(crate) in_use_at_advance: AtomicUsize,
    /// Spans swept this generation. Relaxed adds by every sweeper; reset
    /// with the world stopped.
    pub(crate) swept_this_gen: AtomicUsize,
    /// Immutable: overwrite freed objects with [`POISON`](crate::POISON).
    pub(crate) poison: bool,
    /// Whether sweepers may keep empty spans in their centrals for reuse
    /// (see "Empty spans" in `sweep.rs`), unless `freeing_empty` is
    /// non-zero.
    reuse_empty: AtomicBool,
    /// Calls of [`Mheap::freeing_empty_spans`] running.
    freeing_empty: AtomicUsize,
    /// Its own lock and condition variable (`background.rs`).
    pub(crate) background: Background,
}

impl Mheap {
    /// Creates the heap's lower layers and, if configured, its background
    /// threads.
    pub fn new(config: MheapConfig, hooks: Arc<dyn SweepHooks>) -> Result<Arc<Mheap>, ArenaError> {
        let pages = PageHeap::new(
            PageHeapConfig::default().background_scavenger(config.background_scavenge),
        )?;
        let heap = Arc::new(Mheap {
            pages,
            bits: GcBitsArenas::new(),
            hooks,
            sweepgen: AtomicU32::new(0),
            done: SweepDone::new(),
            centrals: RwLock::new(Centrals::default()),
            large: Default::default(),
            sweep_cursor: AtomicUsize::new(0),
            pacing: ProportionalSweep::default(),
            reclaim: Reclaim::default(),
            heap_live: AtomicUsize::new(0),
            counters: Counters::default(),
            large_spans_in_use: AtomicUsize::new(0),
            in_use_at_advance: AtomicUsize::new(0),
            swept_this_gen: AtomicUsize::new(0),
            poison: config.poison,
            reuse_empty: AtomicBool::new(true),
            freeing_empty: AtomicUsize::new(0),
            background: Background::default(),
        });
        // Generation 0 starts with nothing to sweep.
        if let Some(s) = heap.done.begin() {
            heap.done.mark_drained(&s);
        }
        if config.background_sweep {
            Background::start(&heap).map_err(|e| ArenaError::Thread(e.to_string()))?;
        }
        Ok(heap)
    }

    /// The page heap.
    pub fn page_heap(&self) -> &PageHeap {
        &self.pages
    }

    /// The gcBits arenas.
    pub fn gcbits(&self) -> &GcBitsArenas {
        &self.bits
    }

    /// The heap's sweep generation.
    #[inline]
    pub fn sweepgen(&self) -> u32 {
        self.sweepgen.load(Acquire)
    }

    /// Sets the heap's generation (tests only: to run cycles across the
    /// wrap). Only before anything is allocated.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn set_sweepgen_for_test(&self, h: u32) {
        assert_eq!(self.spans_in_use(), 0, "heap not empty");
        self.sweepgen
            .store(h & crate::sweepgen::SWEEPGEN_MASK & !1, Release);
    }

    /// Bytes allocated and not known to be dead (see the module docs).
    #[inline]
    pub fn heap_live(&self) -> usize {
        self.heap_live.load(Relaxed)
    }

    pub(crate) fn add_heap_live(&self, bytes: usize) {
        self.heap_live.fetch_add(bytes, Relaxed);
    }

    pub(crate) fn sub_heap_live(&self, bytes: usize) {
        if bytes == 0 {
            return;
        }
        let r = self
            .heap_live
            .fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_sub(bytes)));
        debug_assert!(r.is_ok_and(|v| v >= bytes), "heap_live below zero");
    }

    /// A per-thread allocation cache for this heap.
    pub fn new_cache(self: &Arc<Self>) -> MCache {
        MCache::new(self.clone())
    }

    /// The central for `key`, created on first use.
    pub(crate) fn central(&self, key: CentralKey) -> Arc<Central> {
        {
            let c = self.centrals.read().unwrap_or_else(|e| e.into_inner());
            if let Some(&i) = c.index.get(&key) {
                return c.list[i].clone();
            }
        }
        let mut c = self.centrals.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&i) = c.index.get(&key) {
            return c.list[i].clone();
        }
        let central = Arc::new(Central::new(key));
        let i = c.list.len();
        c.list.push(central.clone());
        c.index.insert(key, i);
        central
    }

    /// Every central, in registry order.
    pub(crate) fn all_centrals(&self) -> Vec<Arc<Central>> {
        self.centrals
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .list
            .clone()
    }

    /// What the sweepers' cursor value `i` points at.
    pub(crate) fn cursor_at(&self, i: usize) -> CursorAt {
        let c = self.centrals.read().unwrap_or_else(|e| e.into_inner());
        match c.list.get(i) {
            Some(central) => CursorAt::Central(central.clone()),
            None if i == c.list.len() => CursorAt::Large,
            None => CursorAt::End,
        }
    }

    /// The central of `span`, or `None` for a large span (a registry
    /// lookup: callers that know the central pass it along instead).
    pub(crate) fn central_for(&self, span: &Span) -> Option<Arc<Central>> {
        let class = SpanClass::from_raw(span.span_class_raw()).expect("span class");
        (!class.is_large()).then(|| {
            self.central(CentralKey {
                class,
                tag: span.type_tag(),
            })
        })
    }

    pub(crate) fn large_swept(&self, h: u32) -> &SpanSet {
        &self.large[(h / 2 % 2) as usize]
    }

    pub(crate) fn large_unswept(&self, h: u32) -> &SpanSet {
        &self.large[1 - (h / 2 % 2) as usize]
    }

    /// A fresh span from the page heap, born swept (`sweepgen = h`), with
    /// fresh alloc and mark bits installed and its alloc cache at slot 0.
    /// On failure nothing is left allocated. The caller counts it (in its
    /// central or `large_spans_in_use`).
    pub(crate) fn alloc_span(
        &self,
        npages: usize,
        class: SpanClass,
        tag: usize,
        source: &mut SpanSource,
    ) -> Result<&Span, AllocError> {
        let h = self.sweepgen();
        let span = self
            .pages
            .alloc_span(npages, class, tag, h, Some(&mut source.pages))?;
        let bits = self.fresh_bits(span.nelems(), h, source);
        let (alloc, mark) = match bits {
            Ok(b) => b,
            Err(e) => {
                // Not yet published to anyone: give the pages back rather
                // than leak an in-use span without bitmaps.
                self.pages.free_span(span, None);
                return Err(e.into());
            }
        };
        // SAFETY: the span is fresh from the page heap and not yet
        // published to anyone else; both bitmaps are from this heap's
        // arenas and sized for its `nelems` (`fresh_bits`).
        unsafe {
            span.set_alloc_bits(alloc.as_ptr());
            span.set_gcmark_bits(mark.as_ptr());
        }
        span.set_free_index(0);
        span.set_alloc_count(0);
        span.init_alloc_cache();
        Ok(span)
    }

    /// Zeroed alloc and mark bitmaps for a fresh span of `nelems` slots,
    /// allocated in generation `h`, carved from `source`'s gcBits
    /// reservation (no atomic operation unless it needs a new block; see
    /// `source.rs`). When both fit in one bitmap of twice the words
    /// (`nelems <= 512`: every class but the 8-byte one), they are the two
    /// halves of one. Each half meets the contract of a bitmap of its own
    /// (8-byte aligned, `ceil(nelems/64)` words, in one chunk of the `next`
    /// epoch, and starting at least the chunk slack before the chunk's end,
    /// since the whole did).
    fn fresh_bits(
        &self,
        nelems: u32,
        h: u32,
        source: &mut SpanSource,
    ) -> Result<(NonNull<u64>, NonNull<u64>), spangc_arena::os::OsError> {
        let words = spangc_gcbits::bitmap_words(nelems);
        let both = 128 * words as u32;
        if both <= spangc_gcbits::MAX_NELEMS {
            let alloc = source.bitmaps(&self.bits, h, 16 * words)?;
            // SAFETY: the bitmap has `2 * words` words, so the second half
            // starts inside it.
            let mark = unsafe { alloc.add(words) };
            return Ok((alloc, mark));
        }
        Ok((
            self.bits.new_alloc_bits(nelems)?,
            self.bits.new_mark_bits(nelems)?,
        ))
    }

    /// Returns a swept, empty span's pages to the page heap (`central`:
    /// the span's, `None` for a large span).
    pub(crate) fn free_span(&self, span: &Span, central: Option<&Central>) {
        match central {
            Some(c) => c.span_freed(),
            None => {
                self.large_spans_in_use.fetch_sub(1, Relaxed);
            }
        }
        self.counters.spans_freed.fetch_add(1, Relaxed);
        self.pages.free_span(span, None);
    }

    /// Records one span swept (by any party).
    pub(crate) fn note_swept(&self, span: &Span, central: Option<&Central>, nfreed: u32) {
        self.pacing.add_pages_swept(span.npages());
        if nfreed > 0 {
            self.counters
                .objects_freed
                .fetch_add(nfreed as u64, Relaxed);
            if let Some(c) = central {
                c.objects_freed.fetch_add(nfreed as u64, Relaxed);
            }
        }
        self.swept_this_gen.fetch_add(1, Relaxed);
    }

    /// Lets sweepers keep empty small-object spans whose objects died in
    /// the last cycle in their centrals for reuse (on by default), or
    /// makes them return every empty span to the page heap (see "Empty
    /// spans" in `sweep.rs`). Empty spans already kept go back when a
    /// later sweep finds them unused.
    pub fn set_reuse_empty_spans(&self, on: bool) {
        self.reuse_empty.store(on, Relaxed);
    }

    /// Returns to the page heap the empty spans that sweepers kept for
    /// reuse (see "Empty spans" in `sweep.rs`) and that still wait in
    /// their centrals' swept sets; returns how many it freed. For callers
    /// that need the pages now, for another size class or the OS: the
    /// facade at the memory limit, when the limit starts to set the goal,
    /// and in `release_memory`. Partial spans popped on the way go back;
    /// a refill racing with this may meanwhile take a fresh span instead.
    pub fn free_kept_empty_spans(&self) -> usize {
        let h = self.sweepgen();
        let mut freed = 0;
        for central in self.all_centrals() {
            let set = central.partial_swept(h);
            let mut partial = Vec::new();
            while let Some(s) = set.pop() {
                // SAFETY: spans in a central's sets belong to this heap,
                // which outlives the call; popped from a swept set, the
                // span is ours (as in `Central::cache_span`).
                let span = unsafe { s.get() };
                if span.alloc_count() == 0 {
                    self.free_span(span, Some(&central));
                    freed += 1;
                } else {
                    partial.push(span);
                }
            }
            for span in partial {
                set.push(span);
            }
        }
        freed
    }

    /// Runs `f` with every empty span that a sweeper finds meanwhile going
    /// back to the page heap, whatever [`Mheap::set_reuse_empty_spans`]
    /// says: for a caller that collects and sweeps to give memory back
    /// (the facade's `release_memory`).
    pub fn freeing_empty_spans<R>(&self, f: impl FnOnce() -> R) -> R {
        struct Done<'a>(&'a AtomicUsize);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Relaxed);
            }
        }
        self.freeing_empty.fetch_add(1, Relaxed);
        let _done = Done(&self.freeing_empty);
        f()
    }

    /// Whether sweepers may keep empty spans for reuse.
    pub(crate) fn reuse_empty_spans(&self) -> bool {
        self.reuse_empty.load(Relaxed) && self.freeing_empty.load(Relaxed) == 0
    }

    /// Whether every span of this generation is swept.
    pub fn sweep_done(&self) -> bool {
        self.done.is_done()
    }

    /// Start of a mark phase, world stopped: sweeping must be finished
    /// (checked); rotates the gcBits epochs and clears the page marks.
    pub fn prepare_mark(&self) {
        assert!(
            self.done.is_done(),
            "prepare_mark before sweeping finished (call finish_sweep first)"
        );
        self.bits.next_epoch();
        self.pages.clear_page_marks();
    }

    /// End of a mark phase, world stopped: starts generation `h + 2` (every
    /// in-use span needs sweeping again) with `heap_live` = `marked_bytes`.
    pub fn finish_mark(&self, marked_bytes: usize) {
        // The count, not a walk of the heap: the pause must not grow with
        // the heap.
        self.in_use_at_advance.store(self.spans_in_use(), Relaxed);
        self.swept_this_gen.store(0, Relaxed);
        let h = next_generation(self.sweepgen.load(Relaxed));
        self.sweepgen.store(h, Release);
        self.sweep_cursor.store(0, Relaxed);
        self.done.reset();
        self.reclaim.reset(&self.pages);
        self.pacing.reset();
        self.heap_live.store(marked_bytes, Relaxed);
        self.counters.cycles.fetch_add(1, Relaxed);
        self.background.wake();
    }

    /// In-use spans, small and large (exact with the world stopped; a sum
    /// over the centrals, which number tens to hundreds).
    pub(crate) fn spans_in_use(&self) -> usize {
        let centrals = self.centrals.read().unwrap_or_else(|e| e.into_inner());
        self.large_spans_in_use.load(Relaxed)
            + centrals
                .list
                .iter()
                .map(|c| c.spans_in_use())
                .sum::<usize>()
    }

    /// Sets proportional sweep pacing so that this generation's sweep
    /// finishes before `heap_live` reaches `trigger` (called after
    /// [`Mheap::finish_mark`]).
    pub fn set_sweep_pacing(&self, trigger: usize) {
        self.pacing
            .set_goal(self.heap_live(), trigger, self.pages.stats().pages_in_use);
    }

    /// Calls `f` with every in-use span (world stopped, or the caller
    /// tolerates spans changing underneath).
    pub fn for_each_in_use_span(&self, mut f: impl FnMut(&Span)) {
        for arena in self.pages.arenas().iter() {
            for w in 0..spangc_arena::PAGE_WORDS_PER_ARENA {
                let mut bits = arena.page_in_use_word(w);
                while bits != 0 {
                    let p = 64 * w + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    if let Some(span) = arena.span_at_page(p)
                        && span.state() == SpanState::InUse
                    {
                        f(span);
                    }
                }
            }
        }
    }

    /// Stops the background sweeper (and the page heap's scavenger stops
    /// when the page heap drops). Idempotent.
    pub fn shutdown(&self) {
        self.background.stop();
    }

    /// Runs the free hook of every allocated object, for a heap that is
    /// being destroyed: every object is garbage. No cache may hold a span.
    pub fn free_all_objects(&self) {
        let mut pending = Vec::new();
        self.for_each_in_use_span(|span| pending.push(SpanRef::new(span)));
        for s in pending {
            // SAFETY: our own page heap's records.
            let span = unsafe { s.get::<'_>() };
            let tag = span.type_tag();
            if !self.hooks.needs_free_hook(tag) {
                continue;
            }
            for i in 0..span.nelems() as usize {
                if !span.is_free(i) {
                    // SAFETY: slot addresses are non-null.
                    let p = unsafe { NonNull::new_unchecked(span.slot_addr(i) as *mut u8) };
                    // The heap is going away: a kept object is not freed
                    // later, so the answer does not matter.
                    let _ = self.hooks.free_object(tag, p);
                }
            }
        }
    }

    /// Page heap accounting.
    pub fn page_stats(&self) -> PageHeapStats {
        self.pages.stats()
    }

    /// Bytes of metadata the heap has mapped and touched: gcBits chunks,
    /// per-arena metadata (span map and page bitmaps) and span records.
    pub fn metadata_bytes(&self) -> usize {
        let p = self.pages.stats();
        self.bits.stats().sys_bytes
            + p.arenas * size_of::<spangc_arena::HeapArena>()
            + p.span_records * size_of::<Span>()
    }

    /// Sweep and allocation counters, without the per-class figures
    /// (cheap: a handful of atomic loads).
    pub fn sweep_totals(&self) -> SweepStats {
        self.counters.snapshot(self.pacing.pages_swept())
    }

    /// Sweep and allocation counters, with each central's figures.
    pub fn sweep_stats(&self) -> SweepStats {
        let mut s = self.sweep_totals();
        let c = self.centrals.read().unwrap_or_else(|e| e.into_inner());
        s.classes = c
            .list
            .iter()
            .map(|c| crate::stats::ClassStats {
                span_class: c.key.class,
                type_tag: c.key.tag,
                spans_in_use: c.spans_in_use(),
                objects_allocated: c.objects_allocated.load(Relaxed),
                objects_freed: c.objects_freed.load(Relaxed),
            })
            .collect();
        s
    }

    /// Returns up to `bytes` of idle memory to the OS now; returns the
    /// bytes released.
    pub fn scavenge(&self, bytes: usize) -> usize {
        self.pages.scavenge(bytes)
    }

    /// Returns all idle memory to the OS.
    pub fn scavenge_all(&self) -> usize {
        self.pages.scavenge_all()
    }

    /// Sets the background scavenger's retained-memory goal.
    pub fn set_scavenge_goal(&self, bytes: usize) {
        self.pages.set_scavenge_goal(bytes);
    }
}

impl Drop for Mheap {
    fn drop(&mut self) {
        self.background.stop();
    }
}
