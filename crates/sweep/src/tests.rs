//! Tests that need the crate's internals (the public API is tested in
//! `tests/integration`).

use crate::sweepgen::{SWEEPGEN_MASK, SpanSweepState};
use crate::{Mheap, MheapConfig, SweepHooks};
use spangc_arena::sizeclass::{SpanClass, size_to_class};
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
    fn free_object(&self, _: usize, _: NonNull<u8>) {
        self.0.fetch_add(1, Relaxed);
    }
}

/// Collections across the wrap of the sweep generation counter, with a
/// cache keeping its span across every collection (so the stale-cached
/// state `h + 1` and the being-swept state `h - 1` occur at every value
/// near the wrap). With 32-bit wrapping these states collided with
/// `SWEEPGEN_DEAD` at the wrap and the stale uncache panicked.
#[test]
fn collections_across_the_sweepgen_wrap() {
    let hooks = Arc::new(CountFrees::default());
    let config = MheapConfig {
        background_sweep: false,
        background_scavenge: false,
        poison: true,
    };
    let heap = Mheap::new(config, hooks.clone()).unwrap();
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
