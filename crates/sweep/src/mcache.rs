//! The per-thread allocation cache (the seed's `mcache`).
//!
//! A mutator thread owns one [`MCache`]: for every (type tag, span class)
//! it allocates, a slot holding one span and an allocation cursor copied
//! out of it. The fast path ([`MCache::alloc_fast`]) finds the key's slot
//! and bumps. To find it, it first compares the key with the *hot* slot's,
//! the slot the slow path used last (an allocation loop's one type, after
//! its first refill), and only then hashes the key to its home slot and
//! compares there. The hot check skips the multiply, shift and mask of
//! the hash and the loads of the table's mask and base: `cargo bench -p
//! spangc-sweep --bench alloc`, one thread, two interleaved runs of each
//! build: `alloc` 16 B 1.36 / 1.34 -> 1.21 / 1.15 ns, 32 B 1.63 / 1.57 ->
//! 1.39 / 1.40, 256 B 4.57 / 4.63 -> 4.33 / 4.37; `alloc_fast` 16 B
//! 1.08 / 1.02 -> 0.97 / 0.97; binary-trees depth 21, spangc-2, five
//! interleaved runs: median 4.24 -> 4.01 s.
//!
//! The cursor keeps the current *run* of consecutive free slots as two
//! addresses, `[run_next, run_end)`, so taking a slot is a compare and an
//! add, as in a bump allocator. No lock, no atomic read-modify-write, no
//! shared write at all; the cursor is plain memory the compiler may keep in
//! registers.
//!
//! When the run is used up, [`MCache::alloc_fast`] calls `next_run` out of
//! line, which finds the next run in the span without leaving the cache:
//! the cursor's `alloc_cache` (the complement of the alloc-bit word at
//! `free_index`, shifted so that bit 0 is slot `free_index`, as the seed's
//! `allocCache`) gives the next free slot with `trailing_zeros` and the
//! run's length with a second `trailing_zeros` on the complement; at the
//! end of a word it loads the next word of alloc bits, and a run that
//! reaches the end of its word goes on while the next word starts free. A
//! fresh span, or one whose objects all died, is one run. `free_index` and
//! `alloc_cache` describe the position after the current run, with the
//! gcBits invariant (at a word boundary below `nelems` the cache holds the
//! new word), and are written back to the span when the cache gives it
//! up, rewound to `run_next`.
//!
//! Runs come from `spangc_gcbits::next_free_run`. The run bump replaced a
//! port of the seed's `nextFreeFast` (per object a `trailing_zeros`, three
//! compares, two shifts and a multiply), which also sent every 64th object
//! down the slow path to refill the word: 16-byte objects went from 2.2 to
//! 1.2 ns each (`benches/alloc.rs`, one thread; docs/PERFORMANCE.md).
//!
//! The slow path ([`MCache::alloc_slow`]) refills: when the span is full it
//! gives it back to its central and takes another (after paying any
//! proportional sweep debt). Keys that collide on a home slot live in
//! another slot of the open-addressing table and take the slow path
//! unless they are hot; the table doubles at half load so that is rare.
//!
//! # Zeroing
//!
//! [`MCache::alloc`] returns zeroed memory: slots of a span whose memory is
//! fresh from the OS (or scavenged) are zero already and are not zeroed
//! again (`needzero` false). In a reused span, each run starts dirty
//! (`Run::dirty`: the tail of the run that may hold old bytes); when
//! `alloc` takes a slot in the dirty tail it clears [`CLEAR_AHEAD`] bytes
//! of slots from there with one `memset`, and the tail shrinks past them,
//! so the next few allocations find their slots clear and only compare.
//! [`MCache::alloc_fast`] / [`MCache::alloc_slow`] return the slot
//! uninitialised, for callers that write every byte they will ever read
//! (the facade writes the whole value at once); zeroing first would double
//! the stores of a small allocation.
//!
//! # Sampling
//!
//! The allocation profiler samples allocations at the points of a Poisson
//! process over the bytes allocated: the gaps between points are drawn
//! (exponential, from [`MCache::set_sampler`]'s source), and an object is
//! sampled when a point falls inside it, with probability
//! `1 - exp(-size / rate)`, which the profiler's estimates divide by. The
//! cache keeps the bytes left to the next point (the budget) and charges
//! each run when it is created, not each object, so the fast path pays
//! nothing: a run that contains the next point is cut short just before
//! the object holding it, the bump fails there, and the slow path hands
//! that object out and reports it ([`MCache::took_sample`]). The budget
//! then restarts from a fresh gap at once, so other runs go on being
//! charged (a cut pending in one slot never holds up sampling in another),
//! and the rest of the cut run is charged when the slow path resumes it.
//!
//! Runs are charged before they are used, so a span leaving the cache can
//! take charged bytes, and a pending cut, with it. Nothing is given back:
//! a Poisson process restricted to the bytes actually allocated is still
//! one of the same rate (its gaps are memoryless), so dropping the unused
//! bytes with whatever points fell in them leaves every allocated object's
//! chance of being sampled exactly as above. The sampling tests check the
//! per-class sample counts against that chance.
//!
//! # Retiring full spans
//!
//! A refill gives up a full span. Its central's full set is a queue every
//! allocating thread pushes to, so one push per span moved the queue's
//! tail line between cores at every refill (two threads, 256-byte objects:
//! the push was a fifth of the allocation time). The cache keeps up to
//! [`RETIRE_BATCH`] such spans in `retired`, still cached (`h + 3`) and
//! counted as the cache's, and hands them to their centrals together when
//! the batch is full or in [`MCache::release_all`], so the line moves once
//! per batch. A retired span is full, so nobody else could allocate from
//! it meanwhile; it is swept after a collection, when the cache gives it
//! back stale, as any cached span is.
//!
//! # Counting spans
//!
//! Each slot counts the spans it takes from the page heap in its own share
//! of its central's span count (a `SplitCount`), so a refill writes no
//! shared counter.
//!
//! # Generations
//!
//! Cached spans are marked `h + 3` (swept, cached). After a collection
//! advances the generation they are `h + 1` (stale): the owner must call
//! [`MCache::prepare_for_sweep`] before allocating again, which gives every
//! span back, sweeping the stale ones. [`MCache::release_all`] gives every
//! span back (a mutator leaving its scope holds none).

use crate::central::{Central, CentralKey};
use crate::mheap::{AllocError, Mheap};
use crate::source::SpanSource;
use crate::sweep::allocated_count;
use crate::sweepgen::SpanSweepState;
use spangc_arena::sizeclass::{SpanClass, class_npages};
use spangc_arena::span::Span;
use spangc_arena::{CountShare, PAGE_SIZE};
use spangc_gcbits::{FreeRun, next_free_run};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

const INITIAL_SLOTS: usize = 64;

/// Full spans a cache keeps before handing them to their centrals (see
/// "Retiring full spans").
pub(crate) const RETIRE_BATCH: usize = 16;

/// The fast path's part of a slot of the cache's table: 32 bytes, two to
/// a cache line, apart from the rest of the slot ([`Slot`], same index).
#[repr(C, align(32))]
#[derive(Default, Clone, Copy)]
struct Run {
    /// `key_of(tag, class)`; 0 for an empty slot.
    key: usize,
    /// The current run of free slots `[next, end)`; empty when equal (also
    /// when the slot holds no span: both 0).
    next: usize,
    end: usize,
    elem_size: u32,
    /// Bytes at the end of the run, `[end - dirty, end)`, that may hold old
    /// bytes; below them the run is clear (see "Zeroing").
    dirty: u32,
}

impl Run {
    /// Makes sure the slot at `p`, just taken, is zero: if it lies in the
    /// run's dirty tail, clears [`CLEAR_AHEAD`] bytes of slots from it (at
    /// least the slot, at most to the end of the run) and moves the tail
    /// past them.
    ///
    /// # Safety
    ///
    /// `p` is the slot this run handed out last: `[p, end)` are slots of
    /// its span that nobody else references.
    #[inline(always)]
    unsafe fn clear_from(&mut self, p: NonNull<u8>) {
        let left = self.end - p.as_ptr() as usize;
        if left <= self.dirty as usize {
            let size = self.elem_size as usize;
            let n = (CLEAR_AHEAD / size).max(1) * size;
            let len = n.min(left);
            // SAFETY: `[p, p + len)` lies within `[p, end)` (the caller's
            // contract).
            unsafe { std::ptr::write_bytes(p.as_ptr(), 0, len) };
            self.dirty = (left - len) as u32;
        }
    }

    /// Takes the next slot of the run, if any.
    #[inline(always)]
    fn bump(&mut self) -> Option<NonNull<u8>> {
        let p = self.next;
        if p < self.end {
            self.next = p + self.elem_size as usize;
            // SAFETY: a slot address inside a mapped span is non-null.
            return Some(unsafe { NonNull::new_unchecked(p as *mut u8) });
        }
        None
    }
}

/// The rest of a slot: its span, the cursor past the run (see the module
/// docs), and bookkeeping.
struct Slot {
    /// The span's alloc bits (`ceil(nelems / 64)` words; null without a
    /// span).
    alloc_bits: *const AtomicU64,
    base: usize,
    alloc_cache: u64,
    free_index: u32,
    nelems: u32,
    /// The span's allocated slots when it was cached.
    allocated_at_cache: u32,
    span: Option<NonNull<Span>>,
    /// The span's free slots may hold old bytes (`Span::needzero`).
    needzero: bool,
    central: Option<Arc<Central>>,
    /// Objects allocated from this slot's spans not yet added to the
    /// central's count (added at `release_all`).
    unflushed: u64,
    /// The slot's count of spans taken from the page heap for `central`.
    spans: Option<Arc<CountShare>>,
    /// The slot to hand out as a sampled allocation (0: none); the
    /// current run was cut short just before it (see "Sampling").
    sample_at: usize,
    /// Where that run really ends; the bytes past the sampled slot are not
    /// charged yet.
    sample_end: usize,
}

impl Default for Slot {
    fn default() -> Self {
        Slot {
            alloc_bits: std::ptr::null(),
            base: 0,
            alloc_cache: 0,
            free_index: 0,
            nelems: 0,
            allocated_at_cache: 0,
            span: None,
            needzero: false,
            central: None,
            unflushed: 0,
            spans: None,
            sample_at: 0,
            sample_end: 0,
        }
    }
}

impl Slot {
    /// Word `w` of the span's alloc bits.
    fn alloc_word(&self, w: u32) -> u64 {
        assert!(
            w < self.nelems.div_ceil(64),
            "alloc word {w} of {}",
            self.nelems
        );
        // `alloc_bits` was installed by the sweep layer from the heap's
        // gcBits arenas; it stays valid while the span is cached (only its
        // sweep replaces it, and a cached span is swept only by its owner,
        // after `uncache`).
        // SAFETY: `alloc_bits` is the cached span's alloc bitmap of
        // `ceil(nelems / 64)` words, and `w` is below that (checked above).
        unsafe { &*self.alloc_bits.add(w as usize) }.load(Relaxed)
    }

    /// Finds the next run of free slots after `run` and takes its first
    /// slot; `None` when the span is full (see the module docs). Out of
    /// line: the fast path inlined at every allocation site stays a
    /// compare and an add.
    #[inline(never)]
    fn next_run(&mut self, run: &mut Run, sampling: &mut Sampling) -> Option<NonNull<u8>> {
        self.span?;
        if self.sample_at != 0 {
            return None; // the slow path hands out the sampled slot
        }
        let (mut free_index, mut alloc_cache) = (self.free_index, self.alloc_cache);
        let found = next_free_run(&mut free_index, &mut alloc_cache, self.nelems, |w| {
            self.alloc_word(w)
        });
        (self.free_index, self.alloc_cache) = (free_index, alloc_cache);
        let FreeRun { start, len } = found?;
        let size = run.elem_size as usize;
        run.next = self.base + start as usize * size;
        run.end = run.next + len as usize * size;
        self.reset_dirty(run);
        sampling.charge(self, run);
        // `None` if the run was cut at its first slot: the slow path hands
        // that one out.
        run.bump()
    }

    /// Sets a new run's dirty tail: all of `[run.next, run.end)` if the
    /// span's memory is dirty, none of it otherwise.
    #[inline]
    fn reset_dirty(&self, run: &mut Run) {
        run.dirty = if self.needzero {
            (run.end - run.next) as u32
        } else {
            0
        };
    }

    /// The cursor as the span's own `free_index` / `alloc_cache`: rewound
    /// to `run.next` if the run is not used up (the slots from there on
    /// were never handed out, so their alloc bits are the truth).
    fn span_cursor(&self, run: &Run) -> (u32, u64) {
        // A run cut short for a sample ends at the sampled slot, but the
        // slots from there to the run's real end were never handed out
        // either: rewind to `run.next` then too.
        if run.next >= run.end && self.sample_at == 0 {
            return (self.free_index, self.alloc_cache);
        }
        let fi = ((run.next - self.base) / run.elem_size as usize) as u32;
        (fi, !self.alloc_word(fi / 64) >> (fi % 64))
    }
}

/// The cache's sampling state (see "Sampling" in the module docs).
struct Sampling {
    /// Bytes to the next sample point: an object of `size` bytes is
    /// sampled when `size >= budget`. `usize::MAX` when not sampling.
    budget: usize,
    /// Draws the gap to the next point; `None` when not sampling.
    next_gap: Option<Box<dyn FnMut() -> usize + Send>>,
    /// Whether the last slow-path allocation was sampled.
    sampled: bool,
}

impl Sampling {
    /// A fresh gap, `usize::MAX` when not sampling.
    fn gap(&mut self) -> usize {
        self.next_gap.as_mut().map_or(usize::MAX, |f| f())
    }

    /// Charges the uncharged run `[run.next, run.end)` of `slot`; if the
    /// next sample point falls in it, cuts the run just before the object
    /// holding the point and restarts the budget from the end of that
    /// object.
    fn charge(&mut self, slot: &mut Slot, run: &mut Run) {
        let len = run.end - run.next;
        if self.budget > len || len == 0 {
            self.budget = self.budget.saturating_sub(len);
            return;
        }
        let size = run.elem_size as usize;
        slot.sample_at = run.next + self.budget.saturating_sub(1) / size * size;
        slot.sample_end = run.end;
        run.end = slot.sample_at;
        self.budget = self.gap();
    }

    /// Charges a large object of `bytes`, noting whether it is sampled.
    fn charge_large(&mut self, bytes: usize) {
        if self.budget > bytes {
            self.budget -= bytes;
        } else {
            self.sampled = true;
            self.budget = self.gap();
        }
    }
}

/// Bytes of a dirty run that [`MCache::alloc`] clears at once, from the
/// slot it hands out (see "Zeroing" in the module docs). `cargo bench -p
/// spangc-sweep --bench alloc -- alloc/.../spangc/alloc`, two A/B runs
/// each against clearing one slot at a time: 1 KiB took 64-byte objects
/// from 2.41-2.45 to 2.09-2.10 ns (one thread) and 256-byte ones from
/// 8.91-9.15 to 8.05-8.31 ns (two threads), 16 and 32 bytes unchanged;
/// 512 bytes was no better and 4 KiB worse at 256 bytes (6.0-6.3 ns, one
/// thread), where `memset` changes method.
const CLEAR_AHEAD: usize = 1024;

/// The key of a (type tag, span class) pair: a tag is a multiple of 8
/// below 2^59 (an aligned address, maybe with the facade's owner bits above
/// bit 48), so shifting it left by 5 loses nothing and leaves its low 8
/// bits for the class.
#[inline(always)]
fn key_of(tag: usize, class: SpanClass) -> usize {
    debug_assert!(
        tag.is_multiple_of(8) && tag < 1 << 59,
        "bad type tag {tag:#x}"
    );
    (tag << 5) | class.raw() as usize
}

/// Home slot of a key (Fibonacci hashing on the high bits).
#[inline(always)]
fn home(key: usize, mask: usize) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) & mask
}

/// A mutator's allocation cache. See the module docs.
pub struct MCache {
    heap: Arc<Mheap>,
    /// The table: `runs[i]` and `slots[i]` are slot `i`; a power of two
    /// long, open addressing from a key's home slot.
    runs: Box<[Run]>,
    slots: Box<[Slot]>,
    /// `runs.len() - 1`.
    mask: usize,
    used: usize,
    /// The key and index of the slot the slow path used last, which the
    /// fast path tries before hashing. `runs[hot].key == hot_key` whenever
    /// the fast path runs (at first both name empty slot 0, whose empty run
    /// hands out nothing; `slot_for` sets both after any growth of the
    /// table), so the hot check can never take another key's slot.
    hot_key: usize,
    hot: usize,
    /// The heap sweepgen when this cache last gave back stale spans, or
    /// [`FLUSHED_IDLE`].
    flush_gen: u32,
    /// Objects and bytes allocated and not yet added to the heap's
    /// counters: the allocation path updates no shared counter except
    /// `heap_live`; [`MCache::release_all`] flushes them.
    objects_unflushed: u64,
    bytes_unflushed: u64,
    /// Pages, span records and bitmaps for fresh spans.
    source: SpanSource,
    sampling: Sampling,
    /// Full spans given up by refills and not yet handed to their centrals
    /// (see "Retiring full spans"), with their centrals.
    retired: Vec<(NonNull<Central>, NonNull<Span>)>,
}

/// `MCache::flush_gen` after a collector flushed the cache for its idle
/// owner: no sweep generation (they are below 2^31; see
/// `sweepgen::SWEEPGEN_MASK`).
const FLUSHED_IDLE: u32 = u32::MAX;

// SAFETY: the cache is used by one thread at a time (`&mut self`); the
// span pointers it holds are records of `heap`, shared by design, and the
// central pointers are centrals of `heap`, which its central list keeps
// for its whole life.
unsafe impl Send for MCache {}

impl MCache {
    pub(crate) fn new(heap: Arc<Mheap>) -> MCache {
        let flush_gen = heap.sweepgen();
        MCache {
            runs: vec![Run::default(); INITIAL_SLOTS].into_boxed_slice(),
            slots: (0..INITIAL_SLOTS).map(|_| Slot::default()).collect(),
            mask: INITIAL_SLOTS - 1,
            used: 0,
            hot_key: 0,
            hot: 0,
            flush_gen,
            objects_unflushed: 0,
            bytes_unflushed: 0,
            source: SpanSource::default(),
            sampling: Sampling {
                budget: usize::MAX,
                next_gap: None,
                sampled: false,
            },
            retired: Vec::with_capacity(RETIRE_BATCH),
            heap,
        }
    }

    /// Starts sampling allocations (see "Sampling" in the module docs)
    /// with gaps in bytes drawn from `next_gap` (exponential, of the mean
    /// wanted; 0 samples every allocation), or stops with `None`. A cut
    /// pending in a run is dropped.
    pub fn set_sampler(&mut self, next_gap: Option<Box<dyn FnMut() -> usize + Send>>) {
        for (run, slot) in self.runs.iter_mut().zip(self.slots.iter_mut()) {
            if slot.sample_at != 0 {
                // The run ends at the cut; the slots from there to its real
                // end join it, as dirty as the span.
                let grown = slot.sample_end - run.end;
                run.end = slot.sample_end;
                if slot.needzero {
                    run.dirty += grown as u32;
                }
                slot.sample_at = 0;
            }
        }
        self.sampling.next_gap = next_gap;
        self.sampling.budget = self.sampling.gap();
        self.sampling.sampled = false;
    }

    /// Whether the last [`MCache::alloc_slow`] or [`MCache::alloc_large`]
    /// handed out the sampled allocation (and forgets it).
    pub fn took_sample(&mut self) -> bool {
        std::mem::take(&mut self.sampling.sampled)
    }

    /// The heap this cache allocates from.
    pub fn heap(&self) -> &Arc<Mheap> {
        &self.heap
    }

    /// The fast path: a slot for an object of `class` in spans tagged
    /// `tag`, from the cached span, or `None` (take the slow path). The
    /// slot's contents are unspecified (see the module docs).
    #[inline(always)]
    pub fn alloc_fast(&mut self, tag: usize, class: SpanClass) -> Option<NonNull<u8>> {
        self.alloc_bump(tag, class)
            .or_else(|| self.alloc_next_run(tag, class))
    }

    /// The first half of [`MCache::alloc_fast`]: the next slot of the
    /// current run, or `None`. Nothing but loads, a compare and a store,
    /// so a caller that inlines it needs no call on its fast path (and no
    /// registers saved for one); [`MCache::alloc_next_run`] is the second
    /// half.
    #[inline(always)]
    pub fn alloc_bump(&mut self, tag: usize, class: SpanClass) -> Option<NonNull<u8>> {
        self.fast_run(tag, class)?.bump()
    }

    /// The slot of (tag, class) if it is the hot slot or lives in its home
    /// slot (the fast paths' only lookup: a compare, else a hash, a load
    /// and a compare; see the module docs); always `< len`.
    #[inline(always)]
    fn fast_index(&self, tag: usize, class: SpanClass) -> Option<usize> {
        let key = key_of(tag, class);
        if key == self.hot_key {
            debug_assert_eq!(self.runs[self.hot].key, key, "hot slot out of date");
            return Some(self.hot);
        }
        let i = home(key, self.mask);
        // SAFETY: `home` masks with `mask = len - 1`, so `i < len`.
        (unsafe { self.runs.get_unchecked(i) }.key == key).then_some(i)
    }

    /// The run of (tag, class) if [`MCache::fast_index`] finds it.
    #[inline(always)]
    fn fast_run(&mut self, tag: usize, class: SpanClass) -> Option<&mut Run> {
        let i = self.fast_index(tag, class)?;
        // SAFETY: `fast_index` returns indexes below `len`: the home slot
        // is masked, and the hot slot is an index of the current table
        // (`slot_for` sets it after any growth).
        Some(unsafe { self.runs.get_unchecked_mut(i) })
    }

    /// The second half of [`MCache::alloc_fast`]: a slot from the next run
    /// of free slots in the cached span, or `None` (take the slow path).
    #[inline]
    pub fn alloc_next_run(&mut self, tag: usize, class: SpanClass) -> Option<NonNull<u8>> {
        let i = self.fast_index(tag, class)?;
        self.slots[i].next_run(&mut self.runs[i], &mut self.sampling)
    }

    /// The slow path of [`MCache::alloc_fast`]: finds the slot of (tag,
    /// class) wherever it lives and takes a slot from its span, refilling
    /// from the central (sweeping or growing the heap as needed) when the
    /// span is full. Contents unspecified.
    pub fn alloc_slow(&mut self, tag: usize, class: SpanClass) -> Result<NonNull<u8>, AllocError> {
        let i = self.slot_for(tag, class);
        self.take_or_refill(i)
    }

    /// A zeroed slot for an object of `class` in spans tagged `tag`. The
    /// fast path is [`MCache::alloc_fast`]'s bump, then the clear if the
    /// span is dirty. `tag` must be a non-zero multiple of 8 below 2^59
    /// (an aligned address, say): the cache panics when it first sees one
    /// that is not (and every use checks it in debug builds).
    #[inline]
    pub fn alloc(&mut self, tag: usize, class: SpanClass) -> Result<NonNull<u8>, AllocError> {
        if let Some(run) = self.fast_run(tag, class)
            && let Some(p) = run.bump()
        {
            // SAFETY: `p` is the slot `bump` just took from `run`.
            unsafe { run.clear_from(p) };
            return Ok(p);
        }
        self.alloc_zeroed_slow(tag, class)
    }

    #[inline(never)]
    fn alloc_zeroed_slow(
        &mut self,
        tag: usize,
        class: SpanClass,
    ) -> Result<NonNull<u8>, AllocError> {
        let i = self.slot_for(tag, class);
        let p = self.take_or_refill(i)?;
        // SAFETY: `take` handed out `p` as the slot just before the run's
        // `next` (see `take`).
        unsafe { self.runs[i].clear_from(p) };
        Ok(p)
    }

    /// A slot from slot `i`'s span, refilling it if it is full.
    #[inline]
    fn take_or_refill(&mut self, i: usize) -> Result<NonNull<u8>, AllocError> {
        if let Some(p) = self.take(i) {
            return Ok(p);
        }
        self.refill(i)?;
        Ok(self
            .take(i)
            .expect("a span from the central has a free slot"))
    }

    /// The next slot of slot `i`'s span, `None` if it is full; hands out
    /// a due sampled slot (and notes it, for `took_sample`).
    #[inline]
    fn take(&mut self, i: usize) -> Option<NonNull<u8>> {
        let (run, slot) = (&mut self.runs[i], &mut self.slots[i]);
        let p = run
            .bump()
            .or_else(|| slot.next_run(run, &mut self.sampling));
        // A run stops just before a sampled slot (it may be the first slot
        // of a new run, so check after `next_run` as well as after `bump`).
        if p.is_some() || slot.sample_at == 0 || run.next != slot.sample_at {
            return p;
        }
        let p = slot.sample_at;
        run.next = p;
        run.end = slot.sample_end;
        slot.reset_dirty(run);
        run.next = p + run.elem_size as usize;
        slot.sample_at = 0;
        self.sampling.sampled = true;
        // The rest of the run was not charged when it was cut.
        self.sampling.charge(slot, run);
        // SAFETY: a slot address inside a mapped span is non-null.
        Some(unsafe { NonNull::new_unchecked(p as *mut u8) })
    }

    /// A large object of `bytes` in a span of its own, tagged `tag`.
    /// Returns the object's address and whether its memory may be dirty
    /// (`needzero`); the caller initialises it.
    pub fn alloc_large(
        &mut self,
        bytes: usize,
        tag: usize,
        noscan: bool,
    ) -> Result<(NonNull<u8>, bool), AllocError> {
        let npages = bytes
            .checked_add(PAGE_SIZE - 1)
            .ok_or(AllocError::TooLarge { bytes })?
            / PAGE_SIZE;
        let heap = &*self.heap;
        if !heap.sweep_done() {
            heap.reclaim(npages);
        }
        heap.deduct_sweep_credit(npages * PAGE_SIZE, 0);
        let class = if noscan {
            SpanClass::LARGE_NOSCAN
        } else {
            SpanClass::LARGE_SCAN
        };
        let h = heap.sweepgen();
        let span = heap.alloc_span(npages, class, tag, &mut self.source)?;
        span.set_free_index(1);
        span.set_alloc_count(1);
        span.set_alloc_cache(0);
        heap.large_swept(h).push(span);
        heap.add_heap_live(npages * PAGE_SIZE);
        heap.large_spans_in_use.fetch_add(1, Relaxed);
        self.objects_unflushed += 1;
        self.bytes_unflushed += (npages * PAGE_SIZE) as u64;
        self.sampling.charge_large(npages * PAGE_SIZE);
        // SAFETY: a span start is non-null.
        let p = unsafe { NonNull::new_unchecked(span.start() as *mut u8) };
        Ok((p, span.needzero()))
    }

    /// After a collection: if the heap's generation moved since this cache
    /// last checked, gives every span back (sweeping the stale ones).
    /// Returns whether it did, or a collector did for the cache's idle
    /// owner ([`MCache::prepare_idle_for_sweep`]) since the owner last
    /// asked: whether a collection ran since then.
    pub fn prepare_for_sweep(&mut self) -> bool {
        let h = self.heap.sweepgen();
        if self.flush_gen == h {
            return false;
        }
        self.release_all();
        self.flush_gen = h;
        true
    }

    /// Gives every cached span back, for a collector, on behalf of the idle
    /// mutator that owns the cache: before the mark, spans of the current
    /// generation go back swept (no sweeping), so that the coming sweep
    /// reaches their garbage; stale ones (all of them, after the advance)
    /// are swept. The cache is left
    /// marked, so that the owner's next `prepare_for_sweep` still reports
    /// the collection (it then gives back an empty cache, which costs a
    /// walk of its slots).
    pub fn prepare_idle_for_sweep(&mut self) {
        self.release_all();
        self.flush_gen = FLUSHED_IDLE;
    }

    /// Gives every cached span back to its central and the page cache's
    /// pages back to the page heap, and adds this cache's allocation counts
    /// to the heap's stats.
    pub fn release_all(&mut self) {
        self.hand_back_retired();
        let mut unused = 0;
        for i in 0..self.slots.len() {
            unused += self.uncache(i);
            let slot = &mut self.slots[i];
            if slot.unflushed > 0 {
                let central = slot.central.as_ref().expect("slot has a central");
                central
                    .objects_allocated
                    .fetch_add(std::mem::take(&mut slot.unflushed), Relaxed);
            }
        }
        let heap = &*self.heap;
        heap.sub_heap_live(unused);
        let counters = &heap.counters;
        counters
            .objects_allocated
            .fetch_add(std::mem::take(&mut self.objects_unflushed), Relaxed);
        counters
            .bytes_allocated
            .fetch_add(std::mem::take(&mut self.bytes_unflushed), Relaxed);
        self.source.pages.flush(heap.page_heap());
        self.flush_gen = heap.sweepgen();
    }

    fn find(&self, key: usize) -> Option<usize> {
        let mut i = home(key, self.mask);
        loop {
            match self.runs[i].key {
                k if k == key => return Some(i),
                0 => return None,
                _ => i = (i + 1) & self.mask,
            }
        }
    }

    /// The slot of (tag, class), created on first use.
    fn slot_for(&mut self, tag: usize, class: SpanClass) -> usize {
        assert!(
            tag != 0 && tag.is_multiple_of(8) && tag < 1 << 59,
            "type tag {tag:#x} must be a non-null multiple of 8 below 2^59"
        );
        assert!(!class.is_large(), "small span classes only");
        let key = key_of(tag, class);
        let i = match self.find(key) {
            Some(i) => i,
            None => self.new_slot(key, CentralKey { class, tag }),
        };
        (self.hot_key, self.hot) = (key, i);
        i
    }

    /// A slot for `key`, created empty with its central (growing the table
    /// first if it would pass half load).
    fn new_slot(&mut self, key: usize, central: CentralKey) -> usize {
        if 2 * (self.used + 1) > self.runs.len() {
            self.grow_table();
        }
        let i = self.free_slot(key);
        self.runs[i].key = key;
        let central = self.heap.central(central);
        self.slots[i].spans = Some(central.new_share());
        self.slots[i].central = Some(central);
        self.used += 1;
        i
    }

    /// The first empty slot from `key`'s home on.
    fn free_slot(&self, key: usize) -> usize {
        let mut i = home(key, self.mask);
        while self.runs[i].key != 0 {
            i = (i + 1) & self.mask;
        }
        i
    }

    fn grow_table(&mut self) {
        let n = self.runs.len() * 2;
        let runs = std::mem::replace(&mut self.runs, vec![Run::default(); n].into_boxed_slice());
        let slots = std::mem::replace(&mut self.slots, (0..n).map(|_| Slot::default()).collect());
        self.mask = n - 1;
        for (run, slot) in runs.iter().zip(slots.into_vec()) {
            if run.key != 0 {
                let i = self.free_slot(run.key);
                self.runs[i] = *run;
                self.slots[i] = slot;
            }
        }
    }

    /// Gives slot `i`'s span back (if any) and caches a span with free
    /// slots from the central.
    #[inline(never)]
    fn refill(&mut self, i: usize) -> Result<(), AllocError> {
        let (unused, old) = self.detach(i);
        // Taken out and put back below (cloning the Arc would cost two
        // atomic read-modify-writes per refill).
        let central = self.slots[i].central.take().expect("slot has a central");
        if let Some(old) = old {
            self.retire(NonNull::from(&*central), old);
        }
        let class = central.key.class;
        let heap = &*self.heap;
        // The old span's unused slots leave heap_live and the new span's
        // free slots join it in one update (pacing is told of both).
        heap.deduct_sweep_credit(class_npages(class.size_class()) * PAGE_SIZE, unused);
        let share = self.slots[i].spans.as_deref().expect("slot has a share");
        let span = match central.cache_span(heap, &mut self.source, share) {
            Ok(span) => span,
            Err(e) => {
                heap.sub_heap_live(unused);
                self.slots[i].central = Some(central);
                return Err(e);
            }
        };
        let free = (span.nelems() - span.alloc_count()) as usize * span.elem_size();
        if free >= unused {
            heap.add_heap_live(free - unused);
        } else {
            heap.sub_heap_live(unused - free);
        }
        let allocated = span.alloc_count();
        let unflushed = self.slots[i].unflushed;
        self.runs[i] = Run {
            key: self.runs[i].key,
            next: 0,
            end: 0,
            elem_size: span.elem_size() as u32,
            dirty: 0,
        };
        let spans = self.slots[i].spans.take();
        self.slots[i] = Slot {
            alloc_bits: span.alloc_bits().cast_const().cast(),
            base: span.start(),
            alloc_cache: span.alloc_cache(),
            free_index: span.free_index(),
            nelems: span.nelems(),
            allocated_at_cache: allocated,
            span: Some(NonNull::from(span)),
            needzero: span.needzero(),
            central: Some(central),
            unflushed,
            spans,
            sample_at: 0,
            sample_end: 0,
        };
        Ok(())
    }

    /// Writes slot `i`'s cursor back to its span and returns the span to
    /// its central. Returns the bytes of slots the cache did not use, which
    /// the caller takes out of `heap_live` (the refill counted every free
    /// slot as live); 0 for a stale span, whose share of `heap_live` was
    /// reset at the mark.
    fn uncache(&mut self, i: usize) -> usize {
        let (unused, span) = self.detach(i);
        if let Some(span) = span {
            let central = self.slots[i].central.as_ref().expect("slot has a central");
            // SAFETY: cached spans are records of our heap.
            central.uncache_span(&self.heap, unsafe { span.as_ref() });
        }
        unused
    }

    /// Keeps `span`, full and just detached from a slot of `central`, for
    /// the next batch handed back (see "Retiring full spans").
    fn retire(&mut self, central: NonNull<Central>, span: NonNull<Span>) {
        self.retired.push((central, span));
        if self.retired.len() == RETIRE_BATCH {
            self.hand_back_retired();
        }
    }

    /// Gives every retired span to its central.
    fn hand_back_retired(&mut self) {
        for (central, span) in self.retired.drain(..) {
            // SAFETY: centrals live as long as the heap (its central list
            // holds them) and the cache holds the heap; retired spans are
            // records of the heap, still cached by this cache.
            let (central, span) = unsafe { (central.as_ref(), span.as_ref()) };
            central.uncache_span(&self.heap, span);
        }
    }

    /// Writes slot `i`'s cursor back to its span, counts what the cache
    /// allocated from it, and empties the slot, keeping its central.
    /// Returns what [`MCache::uncache`] does and the span, which is still
    /// marked cached: the caller gives it to the central.
    fn detach(&mut self, i: usize) -> (usize, Option<NonNull<Span>>) {
        let heap = &*self.heap;
        let (run, slot) = (&mut self.runs[i], &mut self.slots[i]);
        let Some(span_ptr) = slot.span.take() else {
            return (0, None);
        };
        // SAFETY: cached spans are records of our heap.
        let span = unsafe { span_ptr.as_ref() };
        let (free_index, alloc_cache) = slot.span_cursor(run);
        span.set_free_index(free_index);
        span.set_alloc_cache(alloc_cache);
        let allocated = allocated_count(span);
        span.set_alloc_count(allocated);
        let new = allocated - slot.allocated_at_cache;
        let elem_size = run.elem_size as usize;
        self.objects_unflushed += new as u64;
        self.bytes_unflushed += (new as usize * elem_size) as u64;
        let stale = span.sweepgen().load(Relaxed)
            == SpanSweepState::CachedUnswept.sweepgen(heap.sweepgen());
        let unused = if stale {
            0
        } else {
            (slot.nelems - allocated) as usize * elem_size
        };
        *run = Run {
            key: run.key,
            ..Run::default()
        };
        *slot = Slot {
            central: slot.central.take(),
            unflushed: slot.unflushed + new as u64,
            spans: slot.spans.take(),
            ..Slot::default()
        };
        (unused, Some(span_ptr))
    }
}

impl Drop for MCache {
    fn drop(&mut self) {
        self.release_all();
        for slot in self.slots.iter() {
            if let (Some(central), Some(share)) = (&slot.central, &slot.spans) {
                central.drop_share(share);
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use spangc_arena::sizeclass::{SizeClass, class_size};

    /// A dirty run hands out zeroed slots through `clear_from`, clearing
    /// ahead in `CLEAR_AHEAD` pieces and never outside the run; slots taken
    /// without it (`alloc_fast`) are left alone; a clean run is never
    /// written.
    #[test]
    fn clear_from_zeroes_each_slot_of_a_dirty_run_and_nothing_else() {
        for size in SizeClass::small_classes().map(class_size) {
            let slots = (3 * CLEAR_AHEAD / size).clamp(3, 40);
            let words = slots * size / 8;
            // One guard word on each side of the run.
            let mut buf = vec![u64::MAX; words + 2];
            // SAFETY: index 1 is inside `buf`.
            let start = unsafe { buf.as_mut_ptr().add(1) } as usize;
            let mut run = Run {
                key: 1,
                next: start,
                end: start + slots * size,
                elem_size: size as u32,
                dirty: (slots * size) as u32,
            };
            let mut handed = 0;
            while let Some(p) = run.bump() {
                // Every third slot as `alloc_fast` takes it: not cleared.
                if handed % 3 == 1 {
                    handed += 1;
                    continue;
                }
                // SAFETY: `p` is the slot just taken; the run lies in `buf`.
                unsafe { run.clear_from(p) };
                let first = (p.as_ptr() as usize - start) / 8 + 1;
                assert!(
                    buf[first..first + size / 8].iter().all(|&w| w == 0),
                    "{size}: slot {handed} handed out dirty"
                );
                handed += 1;
            }
            assert_eq!(handed, slots);
            assert_eq!(buf[0], !0, "{size}: before the run");
            assert_eq!(buf[words + 1], !0, "{size}: after the run");

            let mut clean = vec![u64::MAX; words];
            let start = clean.as_mut_ptr() as usize;
            let mut run = Run {
                key: 1,
                next: start,
                end: start + slots * size,
                elem_size: size as u32,
                dirty: 0,
            };
            while let Some(p) = run.bump() {
                // SAFETY: as above.
                unsafe { run.clear_from(p) };
            }
            assert!(
                clean.iter().all(|&w| w == !0),
                "{size}: a clean run was written"
            );
        }
    }
}
