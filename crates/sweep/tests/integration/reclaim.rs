//! Page reclaim (issue 4, 3d): with dead spans available, repeated cycles
//! of equal live size that allocate large objects keep the heap from
//! growing. Background and proportional sweeping are off (no pacing is
//! set), so between collections only allocation sweeps: without the
//! reclaimer every cycle's dead spans would stay unswept while the next
//! cycle allocates, and the heap would need a second 64 MiB arena.

use crate::common::*;
use spangc_arena::ARENA_SIZE;
use std::sync::Arc;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Runs `cycles` collections; each allocates with `allocate` (which
/// returns the large objects it made) and then keeps `keep` random large
/// objects alive. Returns `sys_bytes` after each cycle.
fn cycles(
    cycles: usize,
    keep: usize,
    mut allocate: impl FnMut(&mut spangc_sweep::MCache) -> Vec<usize>,
) -> (Vec<usize>, spangc_sweep::SweepStats) {
    let heap = heap(false, false, Arc::new(Hooks::default()));
    let mut cache = heap.new_cache();
    let mut rng = Rng::from_env(0x7ec1);
    let mut live: Vec<usize> = Vec::new();
    let mut sys = Vec::new();
    for _ in 0..cycles {
        cache.prepare_for_sweep();
        live.extend(allocate(&mut cache));
        // Keep exactly `keep` objects: the live size is equal every cycle.
        for i in 0..keep.min(live.len()) {
            let j = i + rng.below((live.len() - i) as u64) as usize;
            live.swap(i, j);
        }
        live.truncate(keep);
        cache.release_all();
        collect(&heap, live.iter().copied());
        sys.push(heap.page_stats().sys_bytes);
    }
    heap.finish_sweep();
    heap.verify().unwrap();
    (sys, heap.sweep_stats())
}

/// Large objects only: 40 MiB of 256 KiB objects per cycle, 10 MiB kept.
/// Without reclaim: 10 live + 30 unswept dead + 40 new = 80 MiB.
#[test]
fn reclaim_keeps_sys_flat_for_large_objects() {
    let (sys, st) = cycles(10, 40, |cache| {
        (0..160)
            .map(|_| {
                let (p, _) = cache.alloc_large(256 * KIB, TAG_PLAIN, true).unwrap();
                p.as_ptr() as usize
            })
            .collect()
    });
    assert!(sys.iter().all(|&s| s == ARENA_SIZE), "heap grew: {sys:?}");
    assert!(
        st.pages_reclaimed as usize >= 9 * 30 * MIB / spangc_arena::PAGE_SIZE,
        "each cycle after the first reclaims its 30 MiB of dead objects: {st:?}"
    );
}

/// Dead small spans make room for large objects: each cycle allocates
/// 24 MiB of 2 KiB objects (all garbage by the next collection) and
/// 24 MiB of 128 KiB objects, 3 MiB of which stay live. The small
/// allocations reuse their own dead spans (a refill sweeps its class), and
/// the large ones reclaim what is left. Without reclaim: 3 live + 45
/// unswept dead + 48 new = 96 MiB.
#[test]
fn reclaim_frees_dead_small_spans_for_large_objects() {
    let (sys, st) = cycles(10, 24, |cache| {
        let mut large = Vec::new();
        for _ in 0..192 {
            for _ in 0..64 {
                cache.alloc(TAG_PLAIN, class_for(2048)).unwrap();
            }
            let (p, _) = cache.alloc_large(128 * KIB, TAG_PLAIN, true).unwrap();
            large.push(p.as_ptr() as usize);
        }
        large
    });
    assert!(sys.iter().all(|&s| s == ARENA_SIZE), "heap grew: {sys:?}");
    assert!(st.pages_reclaimed > 0, "{st:?}");
}
