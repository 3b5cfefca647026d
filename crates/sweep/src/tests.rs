//! Tests that need the crate's internals (the public API is tested in
//! `tests/integration`).

use crate::sweepgen::{SWEEPGEN_MASK, SpanSweepState};
use crate::{Mheap, MheapConfig, SweepHooks};
use spangc_arena::PageHeap;
use spangc_arena::sizeclass::{SpanClass, size_to_class};
use spangc_arena::span::Span;
use spangc_gcbits::SpanBits;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;

/// Counts frees; every tag needs the hook.
#[derive(Default)]
struct CountFrees(AtomicUsize);

impl SweepHooks for CountFrees {
    fn needs_free_hook(&self, _: usize) -> bool {
        true
    }
    fn free_object(&self, _: usize, _: NonNull<u8>) -> bool {
        self.0.fetch_add(1, Relaxed);
        true
    }

    fn sweep_specials(&self, _: &PageHeap, span: &Span) -> u32 {
        // These tests attach no special records, so no span may have its
        // page_specials bit set.
        panic!("sweep_specials called for {span}, which has no specials in these tests");
    }
}

/// A heap with no background threads: the test drives every sweep.
fn driven_heap(poison: bool, hooks: Arc<dyn SweepHooks>) -> Arc<Mheap> {
    let config = MheapConfig {
        background_sweep: false,
        background_scavenge: false,
        poison,
    };
    Mheap::new(config, hooks).unwrap()
}

/// Collections across the wrap of the sweep generation counter, with a
/// cache keeping its span across every collection (so the stale-cached
/// state `h + 1` and the being-swept state `h - 1` occur at every value
/// near the wrap). With 32-bit wrapping these states collided with
/// `SWEEPGEN_DEAD` at the wrap and the stale uncache panicked.
#[test]
fn collections_across_the_sweepgen_wrap() {
    let hooks = Arc::new(CountFrees::default());
    let heap = driven_heap(true, hooks.clone());
    heap.set_sweepgen_for_test(SWEEPGEN_MASK - 7);
    let mut cache = heap.new_cache();
    let class = SpanClass::new(size_to_class(32).unwrap(), false);
    let mut live: Vec<usize> = Vec::new();
    let mut dead = 0;
    let mut generations = Vec::new();
    for _ in 0..8 {
        cache.prepare_for_sweep();
        for _ in 0..100 {
            live.push(cache.alloc(0x1000, class).unwrap().as_ptr() as usize);
        }
        heap.finish_sweep();
        heap.verify().unwrap();
        heap.prepare_mark();
        let mut bytes = 0;
        let mut keep = Vec::new();
        for (i, &a) in live.iter().enumerate() {
            if i % 2 == 0 {
                let o = heap.page_heap().find_object(a).unwrap();
                o.span.set_marked(o.index);
                heap.page_heap().set_page_mark(o.span);
                bytes += 32;
                keep.push(a);
            } else {
                dead += 1;
            }
        }
        live = keep;
        heap.finish_mark(bytes);
        let h = heap.sweepgen();
        let cached = heap.page_heap().find_object(live[0]).unwrap().span;
        assert!(
            matches!(
                SpanSweepState::of(cached.sweepgen().load(Relaxed), h),
                SpanSweepState::CachedUnswept | SpanSweepState::NeedsSweep
            ),
            "h = {h}"
        );
        generations.push(h);
    }
    cache.prepare_for_sweep();
    heap.finish_sweep();
    heap.verify().unwrap();
    assert!(generations.contains(&0), "wrapped: {generations:?}");
    assert_eq!(hooks.0.load(Relaxed), dead);
}

/// Keeps every unmarked object of a span with specials alive (as a
/// finalizer's resurrection does) and clears the span's specials bit.
#[derive(Default)]
struct ResurrectAll(AtomicUsize);

impl SweepHooks for ResurrectAll {
    fn needs_free_hook(&self, _: usize) -> bool {
        false
    }
    fn free_object(&self, _: usize, _: NonNull<u8>) -> bool {
        true
    }

    fn sweep_specials(&self, pages: &PageHeap, span: &Span) -> u32 {
        let mut n = 0;
        for i in 0..span.nelems() as usize {
            let allocated = i < span.free_index() as usize || span.is_allocated(i);
            if allocated && !span.is_marked(i) {
                span.set_marked(i);
                n += 1;
            }
        }
        pages.clear_page_special(span);
        self.0.fetch_add(n as usize, Relaxed);
        n
    }
}

/// Ten 48-byte objects in one span, which their cache has given back.
fn ten_48_byte_objects(heap: &Arc<Mheap>) -> Vec<usize> {
    let mut cache = heap.new_cache();
    let class = SpanClass::new(size_to_class(48).unwrap(), false);
    let objs = (0..10)
        .map(|_| cache.alloc(0x1000, class).unwrap().as_ptr() as usize)
        .collect();
    cache.release_all();
    objs
}

/// Objects a specials hook keeps alive while sweeping join `heap_live`
/// (the mark set it to the marked bytes alone): the verifier's recount of
/// the spans agrees, and a second collection frees them.
#[test]
fn resurrected_objects_are_counted_live() {
    let hooks = Arc::new(ResurrectAll::default());
    let heap = driven_heap(true, hooks.clone());
    let objs = ten_48_byte_objects(&heap);
    let span = heap.page_heap().find_object(objs[0]).unwrap().span;
    heap.page_heap().set_page_special(span);
    heap.finish_sweep();
    heap.prepare_mark();
    heap.finish_mark(0);
    heap.finish_sweep();
    assert_eq!(hooks.0.load(Relaxed), 10);
    assert_eq!(heap.heap_live(), 10 * 48);
    heap.verify().unwrap();
    heap.prepare_mark();
    heap.finish_mark(0);
    heap.finish_sweep();
    assert_eq!(heap.heap_live(), 0);
    heap.verify().unwrap();
}

fn sampling_heap() -> Arc<Mheap> {
    driven_heap(false, Arc::new(CountFrees::default()))
}

/// Gaps from a list, then none (`usize::MAX`).
fn scripted(gaps: &'static [usize]) -> Option<Box<dyn FnMut() -> usize + Send>> {
    let mut gaps = gaps.iter().copied();
    Some(Box::new(move || gaps.next().unwrap_or(usize::MAX)))
}

/// Allocates one object of `class` tagged `tag`; whether it was sampled.
fn sampled_alloc(cache: &mut crate::MCache, tag: usize, class: SpanClass) -> (usize, bool) {
    match cache.alloc_fast(tag, class) {
        Some(p) => (p.as_ptr() as usize, false),
        None => {
            let p = cache.alloc_slow(tag, class).unwrap();
            (p.as_ptr() as usize, cache.took_sample())
        }
    }
}

/// Dropping a pending cut (`set_sampler`) gives the run back its slots
/// past the cut still marked dirty: the zeroing `alloc` clears them. (It
/// handed them out with old bytes when the cut run had been cleared to its
/// end.)
#[test]
fn a_dropped_cut_leaves_the_rest_of_a_dirty_run_to_be_cleared() {
    let heap = sampling_heap();
    let class = SpanClass::new(size_to_class(16).unwrap(), false);
    let tag = 0x5000;
    // Dirty some pages: fill spans with ones, then free everything.
    let mut cache = heap.new_cache();
    for _ in 0..4000 {
        let (p, _) = sampled_alloc(&mut cache, tag, class);
        // SAFETY: a fresh 16-byte slot.
        unsafe { (p as *mut [u64; 2]).write([!0; 2]) };
    }
    cache.release_all();
    heap.finish_sweep();
    heap.prepare_mark();
    heap.finish_mark(0);
    heap.finish_sweep();
    // A cut at the 40th object of the first run, a few zeroed allocations
    // (the first clears the cut run to its end), then the cut is dropped.
    let mut cache = heap.new_cache();
    cache.set_sampler(scripted(&[16 * 40]));
    let check = |cache: &mut crate::MCache, n: usize| {
        for i in 0..n {
            let p = cache.alloc(tag, class).unwrap();
            // SAFETY: a zeroed 16-byte slot.
            let words = unsafe { p.cast::<[u64; 2]>().read() };
            assert_eq!(words, [0, 0], "object {i} handed out dirty");
        }
    };
    check(&mut cache, 10);
    cache.set_sampler(None);
    check(&mut cache, 500);
    cache.release_all();
    heap.verify().unwrap();
}

/// The sampled object is the one holding each point (an object of `size`
/// bytes is sampled when `size >= ` the bytes left), counted across runs
/// and spans; a cut pending in one slot does not hold up another; a span
/// given back with a cut pending loses no slot; large objects count their
/// whole span.
#[test]
fn sampling_picks_the_object_holding_each_point() {
    let heap = sampling_heap();
    let class = SpanClass::new(size_to_class(16).unwrap(), false);
    let (a, b) = (0x2000, 0x3000);
    let mut cache = heap.new_cache();
    let positions = |cache: &mut crate::MCache, tag: usize, n: usize| -> Vec<usize> {
        let mut addrs = std::collections::HashSet::new();
        let mut seen = Vec::new();
        for i in 0..n {
            let (p, sampled) = sampled_alloc(cache, tag, class);
            assert!(addrs.insert(p), "slot handed out twice");
            if sampled {
                seen.push(i);
            }
        }
        seen
    };
    // No sampler: nothing is ever sampled.
    assert_eq!(positions(&mut cache, a, 3000), Vec::<usize>::new());
    cache.release_all();

    // Gaps of 1000, 5000 and 100000 bytes: objects 999 / 16 = 62, then
    // 4999 / 16 = 312 and 99999 / 16 = 6249 objects after the last one.
    cache.set_sampler(scripted(&[1000, 5000, 100_000]));
    assert_eq!(
        positions(&mut cache, a, 12_000),
        vec![62, 62 + 1 + 312, 62 + 1 + 312 + 1 + 6249]
    );
    cache.release_all();
    heap.verify().unwrap();

    // A cut pending in slot A (its run was charged whole, and the point
    // is at A's object 9) while B allocates: B is sampled at its own point
    // (the budget restarted at once), then A at object 9.
    let mut cache = heap.new_cache();
    cache.set_sampler(scripted(&[160, 80]));
    assert_eq!(positions(&mut cache, a, 3), Vec::<usize>::new());
    assert_eq!(positions(&mut cache, b, 20), vec![4]);
    assert_eq!(positions(&mut cache, a, 20), vec![9 - 3]);
    // A span given back with a cut pending: no slot is lost (the verifier
    // recounts alloc counts against bits and cursors).
    cache.set_sampler(scripted(&[16 * 40]));
    assert_eq!(positions(&mut cache, a, 10), Vec::<usize>::new());
    cache.release_all();
    heap.verify().unwrap();

    // Gap 0 samples every allocation.
    cache.set_sampler(Some(Box::new(|| 0)));
    assert_eq!(positions(&mut cache, b, 100), (0..100).collect::<Vec<_>>());
    cache.release_all();
    heap.verify().unwrap();

    // Large objects count their whole span.
    let page = spangc_arena::PAGE_SIZE;
    cache.set_sampler(scripted(&[3 * spangc_arena::PAGE_SIZE]));
    cache.alloc_large(2 * page, 0x4000, true).unwrap();
    assert!(!cache.took_sample());
    cache.alloc_large(2 * page, 0x4000, true).unwrap();
    assert!(cache.took_sample());
    cache.release_all();
    heap.verify().unwrap();
}

/// wyrand, for reproducible exponential gaps in tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) ^ t) as u64
    }

    /// `floor(X) + 1`, X exponential with mean `rate`.
    fn gap(&mut self, rate: f64) -> usize {
        let u = ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64;
        (-u.ln() * rate) as usize + 1
    }
}

/// Interleaved allocations of three sizes, with the cache flushed now and
/// then (dropping charged bytes and pending cuts, as a collection does):
/// each size is sampled as often as `1 - exp(-size / rate)` predicts, the
/// chance the profiler's estimates divide by.
#[test]
fn sampling_is_unbiased_across_classes() {
    const RATE: f64 = 2048.0;
    const N: usize = 60_000;
    let heap = sampling_heap();
    let mut cache = heap.new_cache();
    let mut gaps = Rng(0x5eed);
    cache.set_sampler(Some(Box::new(move || gaps.gap(RATE))));
    let sizes = [16usize, 48, 512];
    let classes = sizes.map(|s| SpanClass::new(size_to_class(s).unwrap(), false));
    let mut pattern = Rng(7);
    let mut counts = [0usize; 3];
    let mut sampled = [0usize; 3];
    while counts.iter().any(|&c| c < N) {
        let k = (pattern.next() % 3) as usize;
        if counts[k] == N {
            continue;
        }
        // Bursts of one class, as real programs allocate.
        let burst = (pattern.next() % 40) as usize + 1;
        for _ in 0..burst.min(N - counts[k]) {
            counts[k] += 1;
            if sampled_alloc(&mut cache, 0x1000 * (k + 1), classes[k]).1 {
                sampled[k] += 1;
            }
        }
        if pattern.next().is_multiple_of(500) {
            cache.release_all();
        }
    }
    for k in 0..3 {
        let p = 1.0 - (-(sizes[k] as f64) / RATE).exp();
        let expected = N as f64 * p;
        let sigma = (N as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (sampled[k] as f64 - expected).abs() <= 5.0 * sigma,
            "{}-byte objects: {} sampled, {expected:.0} ± {sigma:.0} expected",
            sizes[k],
            sampled[k]
        );
    }
    cache.release_all();
    heap.verify().unwrap();
}

/// Spans in `central`'s full swept set (drained and pushed back).
fn full_spans(heap: &Mheap, central: &crate::central::Central) -> usize {
    let set = central.full_swept(heap.sweepgen());
    let spans = set.drain();
    for s in &spans {
        // SAFETY: records of `heap`, which the caller holds.
        set.push(unsafe { s.get() });
    }
    spans.len()
}

/// A driven heap, the central of 256-byte objects of tag 0x1000, and a
/// cache on the heap.
fn cache_of_256_byte_objects() -> (
    Arc<Mheap>,
    SpanClass,
    Arc<crate::central::Central>,
    crate::MCache,
) {
    let heap = driven_heap(false, Arc::new(CountFrees::default()));
    let class = SpanClass::new(size_to_class(256).unwrap(), false);
    let central = heap.central(crate::central::CentralKey { class, tag: 0x1000 });
    let cache = heap.new_cache();
    (heap, class, central, cache)
}

/// Full spans leave a cache in batches: a refill keeps the full span it
/// gives up (still cached) until `RETIRE_BATCH` have gathered and then
/// hands them all to the central; `release_all` hands back the rest, after
/// which the verifier finds every span where it belongs.
#[test]
fn full_spans_go_back_to_the_central_in_batches() {
    use crate::mcache::RETIRE_BATCH;
    let (heap, class, central, mut cache) = cache_of_256_byte_objects();
    let first = cache.alloc(0x1000, class).unwrap().as_ptr() as usize;
    let nelems = heap.page_heap().find_object(first).unwrap().span.nelems() as usize;
    let filled = RETIRE_BATCH + 4;
    for _ in 1..filled * nelems + 1 {
        cache.alloc(0x1000, class).unwrap();
    }
    assert_eq!(full_spans(&heap, &central), RETIRE_BATCH);
    cache.release_all();
    assert_eq!(full_spans(&heap, &central), filled);
    heap.finish_sweep();
    heap.verify().unwrap();
}

/// A span set split into queues still hands each span to exactly one
/// popper: 8 MiB of full spans (spread over several 1 MiB regions, so over
/// several queues where the machine has more than one core) are popped by
/// two threads at once, each taking its home queue first, and between
/// them they get every span once.
#[test]
fn span_set_queues_hand_each_span_out_once() {
    let (heap, class, central, mut cache) = cache_of_256_byte_objects();
    for _ in 0..(8 << 20) / 256 {
        cache.alloc(0x1000, class).unwrap();
    }
    cache.release_all();
    let set = central.full_swept(heap.sweepgen());
    let popped: Vec<Vec<usize>> = std::thread::scope(|s| {
        let poppers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    std::iter::from_fn(|| set.pop())
                        // SAFETY: records of `heap`, which outlives the scope.
                        .map(|r| unsafe { r.get() }.start())
                        .collect()
                })
            })
            .collect();
        poppers.into_iter().map(|p| p.join().unwrap()).collect()
    });
    let mut all: Vec<usize> = popped.concat();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "a span was popped twice");
    assert_eq!(n, (8 << 20) / 8192, "every full span popped");
    for &start in &all {
        let span = heap.page_heap().span_of_heap(start).unwrap();
        set.push(span);
    }
    heap.finish_sweep();
    heap.verify().unwrap();
}

/// Keeps each dead object the first time the free hook sees it, and frees
/// it the second time (as the facade keeps an object whose destructor must
/// run on its owner's thread first).
#[derive(Default)]
struct KeepOnce {
    seen: std::sync::Mutex<std::collections::HashSet<usize>>,
    calls: AtomicUsize,
}

impl SweepHooks for KeepOnce {
    fn needs_free_hook(&self, _: usize) -> bool {
        true
    }
    fn free_object(&self, _: usize, addr: NonNull<u8>) -> bool {
        self.calls.fetch_add(1, Relaxed);
        !self.seen.lock().unwrap().insert(addr.as_ptr() as usize)
    }
    fn sweep_specials(&self, _: &PageHeap, span: &Span) -> u32 {
        panic!("sweep_specials called for {span}, which has no specials in this test");
    }
}

/// Objects the free hook keeps stay allocated and count in `heap_live`
/// (the verifier's recount agrees), the span is not freed under them, and
/// the next sweep asks again and frees them.
#[test]
fn objects_the_free_hook_keeps_stay_allocated() {
    let hooks = Arc::new(KeepOnce::default());
    let heap = driven_heap(true, hooks.clone());
    let objs = ten_48_byte_objects(&heap);
    let freed = heap.sweep_stats().objects_freed;
    heap.finish_sweep();
    heap.prepare_mark();
    heap.finish_mark(0);
    heap.finish_sweep();
    assert_eq!(hooks.calls.load(Relaxed), 10);
    assert_eq!(heap.heap_live(), 10 * 48);
    assert_eq!(heap.sweep_stats().objects_freed, freed, "nothing freed yet");
    let span = heap.page_heap().find_object(objs[0]).unwrap().span;
    assert!(objs.iter().all(|&a| span.is_allocated(span.slot_index(a))));
    heap.verify().unwrap();
    heap.prepare_mark();
    heap.finish_mark(0);
    heap.finish_sweep();
    assert_eq!(hooks.calls.load(Relaxed), 20);
    assert_eq!(heap.heap_live(), 0);
    assert_eq!(heap.sweep_stats().objects_freed, freed + 10);
    heap.verify().unwrap();
}

/// `prepare_for_sweep` tells its caller whether a collection ran since it
/// last asked, also when a collector flushed the cache for its idle owner
/// in between (the facade runs handed-over drop glue then).
#[test]
fn prepare_for_sweep_reports_each_collection_once() {
    let heap = driven_heap(false, Arc::new(CountFrees::default()));
    let mut cache = heap.new_cache();
    let class = SpanClass::new(size_to_class(32).unwrap(), false);
    cache.alloc(0x1000, class).unwrap();
    assert!(!cache.prepare_for_sweep(), "no collection yet");
    heap.prepare_mark();
    heap.finish_mark(0);
    assert!(cache.prepare_for_sweep());
    assert!(!cache.prepare_for_sweep(), "reported once");
    heap.finish_sweep();
    heap.prepare_mark();
    heap.finish_mark(0);
    cache.prepare_idle_for_sweep(); // a collector, for the idle owner
    assert!(cache.prepare_for_sweep(), "the owner still hears of it");
    assert!(!cache.prepare_for_sweep());
    heap.finish_sweep();
    heap.verify().unwrap();
}
