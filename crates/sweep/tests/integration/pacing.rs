//! Proportional sweep with real allocation (issue 4, 3c): with the
//! background sweeper off, allocation alone must finish sweeping before
//! `heap_live` reaches the trigger, across small and big live heaps, loose
//! and tight triggers, and slow (small objects, many small steps of
//! `heap_live`) and fast (big and large objects, big steps) mutators; and
//! it must sweep proportionally, not all at once.

use crate::common::*;
use spangc_arena::PAGE_SIZE;
use spangc_sweep::Mheap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

const MIB: usize = 1 << 20;
/// The pacer's margin: sweeping is due to finish this far below the
/// trigger (`SWEEP_MIN_HEAP_DISTANCE` in `pacing.rs`).
const MARGIN: usize = MIB;

/// How the mutator allocates after the collection.
#[derive(Clone, Copy, Debug)]
enum Alloc {
    /// Small objects of this size (a refill steps heap_live by one span).
    Small(usize),
    /// Large objects of this size (each steps heap_live by its pages, and
    /// the reclaimer sweeps too).
    Large(usize),
}

/// A heap after one collection: `live` bytes marked among `live + dead`
/// bytes of 512-byte and large objects, randomly interleaved so that most
/// spans survive partly. Returns (heap, marked bytes, pages to sweep).
fn heap_after_collection(live: usize, dead: usize, seed: u64) -> (Arc<Mheap>, usize, usize) {
    let heap = heap(false, false, Arc::new(Hooks::default()));
    let mut cache = heap.new_cache();
    let mut rng = Rng::new(seed);
    let mut marks = Vec::new();
    let mut total = 0;
    let p_live = (100 * live / (live + dead)) as u64;
    while total < live + dead {
        let (a, size) = if rng.percent(2) {
            let size = 64 << 10;
            (cache.alloc_large(size, TAG_HOOKED, true).unwrap().0, size)
        } else {
            (cache.alloc(TAG_HOOKED, class_for(512)).unwrap(), 512)
        };
        if rng.percent(p_live) {
            marks.push(a.as_ptr() as usize);
        }
        total += size;
    }
    drop(cache);
    let marked = collect(&heap, marks);
    let pages = heap.page_stats().pages_in_use;
    (heap, marked, pages)
}

/// Pages owed on the pacer's line at `heap_live` (the formula of
/// `pacing.rs`, for the proportionality bound).
fn owed(heap_live: usize, marked: usize, trigger: usize, pages: usize) -> usize {
    let distance = trigger
        .saturating_sub(marked)
        .saturating_sub(MARGIN)
        .max(PAGE_SIZE);
    ((heap_live.saturating_sub(marked)) as f64 * pages as f64 / distance as f64).ceil() as usize
}

fn pages_swept_since(heap: &Mheap, before: u64) -> usize {
    (heap.sweep_stats().pages_swept - before) as usize
}

/// One mutator allocating `how` until heap_live reaches the trigger; checks
/// at every step of heap_live that the sweep stays near the line and that
/// everything is swept once heap_live is within the margin of the trigger.
fn single_mutator(live: usize, dead: usize, headroom: usize, how: Alloc) {
    let (heap, marked, pages) = heap_after_collection(live, dead, 7);
    let swept_before = heap.sweep_stats().pages_swept;
    let trigger = marked + headroom;
    heap.set_sweep_pacing(trigger);
    let mut cache = heap.new_cache();
    let mut last = heap.heap_live();
    let mut steps = 0;
    let big_step = match how {
        Alloc::Small(_) => 8 * PAGE_SIZE,
        Alloc::Large(b) => b.next_multiple_of(PAGE_SIZE),
    };
    loop {
        match how {
            Alloc::Small(b) => {
                cache.alloc(TAG_PLAIN, class_for(b)).unwrap();
            }
            Alloc::Large(b) => {
                cache.alloc_large(b, TAG_PLAIN, true).unwrap();
            }
        }
        let now = heap.heap_live();
        if now == last {
            continue; // the fast path: heap_live moves at refills only
        }
        last = now;
        steps += 1;
        let swept = pages_swept_since(&heap, swept_before);
        if now + MARGIN >= trigger {
            assert_eq!(
                swept, pages,
                "{how:?}: heap_live {now} within {MARGIN} of trigger {trigger} with {swept} of {pages} pages swept"
            );
            break;
        }
        if let Alloc::Small(_) = how {
            // Proportional: no more than the line at the next step, plus the
            // span that crossed it (no reclaim runs for small objects, and
            // the allocations are of another central than the swept spans).
            let bound = owed(now + big_step, marked, trigger, pages) + 16;
            assert!(
                swept <= bound,
                "{how:?}: swept {swept} pages at heap_live {now}, the line allows {bound}"
            );
        }
    }
    assert!(
        headroom <= MARGIN + PAGE_SIZE || steps > 2,
        "{how:?}: the sweep was spread over {steps} steps"
    );
}

#[test]
fn small_heap_slow_mutator() {
    single_mutator(MIB, MIB, 4 * MIB, Alloc::Small(16));
}

#[test]
fn small_heap_fast_mutator() {
    single_mutator(MIB, 2 * MIB, 4 * MIB, Alloc::Large(200 << 10));
}

#[test]
fn trigger_within_the_margin_sweeps_everything_at_once() {
    single_mutator(2 * MIB, MIB, MIB / 2, Alloc::Small(64));
}

#[test]
fn big_heap_loose_trigger() {
    single_mutator(12 * MIB, 12 * MIB, 12 * MIB, Alloc::Small(2048));
}

#[test]
fn big_heap_tight_trigger() {
    single_mutator(12 * MIB, 6 * MIB, 2 * MIB, Alloc::Small(256));
}

#[test]
fn big_heap_large_objects() {
    single_mutator(12 * MIB, 12 * MIB, 16 * MIB, Alloc::Large(48 << 10));
}

/// A slow mutator (16-byte objects, yielding often) and a fast one
/// (4 KiB objects and large ones) on one pacer: each stops as soon as it
/// sees heap_live within the margin of the trigger, and by then every page
/// has been swept.
#[test]
fn slow_and_fast_mutators_together() {
    let (heap, marked, pages) = heap_after_collection(8 * MIB, 8 * MIB, 11);
    let swept_before = heap.sweep_stats().pages_swept;
    let trigger = marked + 8 * MIB;
    heap.set_sweep_pacing(trigger);
    let reached = AtomicBool::new(false);
    // The caches come back to this thread and are dropped only after the
    // check: giving their spans back would lower heap_live.
    let caches: Vec<_> = std::thread::scope(|s| {
        let threads: Vec<_> = [false, true]
            .into_iter()
            .map(|fast| {
                let (heap, reached) = (&heap, &reached);
                s.spawn(move || {
                    let mut cache = heap.new_cache();
                    let mut i = 0u64;
                    while heap.heap_live() + MARGIN < trigger && !reached.load(Relaxed) {
                        i += 1;
                        if !fast {
                            cache.alloc(TAG_PLAIN, class_for(16)).unwrap();
                            if i.is_multiple_of(64) {
                                std::thread::yield_now();
                            }
                        } else if i.is_multiple_of(16) {
                            cache.alloc_large(100 << 10, TAG_PLAIN, true).unwrap();
                        } else {
                            cache.alloc(TAG_HOOKED2, class_for(4096)).unwrap();
                        }
                    }
                    reached.store(true, Relaxed);
                    cache
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(heap.heap_live() + MARGIN >= trigger);
    assert_eq!(pages_swept_since(&heap, swept_before), pages);
    drop(caches);
}
