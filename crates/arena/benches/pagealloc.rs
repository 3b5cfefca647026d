//! Page allocator benchmark: allocate + free one span, in heaps fragmented
//! into 1,000, 10,000 and 100,000 free runs, with and without the
//! per-thread page cache, against a `Box::new([0u8; 64])` + drop baseline
//! measured in the same run.
//!
//! The fragmentation is adversarial for multi-page requests: the low part
//! of the heap alternates one allocated page with a free hole of 1 to 7
//! pages, so a 1-page request is served from the first hole while an 8, 64
//! or 512-page request must skip every hole and is served above them. A
//! linear free list would pay for every hole; the radix tree should not.
//!
//! Run: `cargo bench -p spangc-arena --bench pagealloc`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use spangc_arena::{CACHE_MAX_PAGES, PageCache, PageHeap, PageHeapConfig, SpanClass};

/// A heap (arenas at Go's hint addresses, so contiguous) whose low pages form `runs` free runs of 1 to 7 pages separated
/// by single allocated pages.
fn fragmented(runs: usize) -> PageHeap {
    let h = PageHeap::new(PageHeapConfig::default()).unwrap();
    let mut holes = Vec::with_capacity(runs);
    for i in 0..runs {
        let sep = h.alloc_span(1, SpanClass::LARGE_SCAN, 0, 0, None).unwrap();
        black_box(sep);
        let hole = h
            .alloc_span(1 + i % 7, SpanClass::LARGE_SCAN, 0, 0, None)
            .unwrap();
        holes.push(hole);
    }
    // One more separator so the last hole is not merged with the tail.
    h.alloc_span(1, SpanClass::LARGE_SCAN, 0, 0, None).unwrap();
    for s in holes {
        h.free_span(s, None);
    }
    h
}

fn alloc_free(c: &mut Criterion) {
    let mut g = c.benchmark_group("alloc_free");
    g.bench_function("box_64_bytes", |b| {
        b.iter(|| drop(black_box(Box::new([0u8; 64]))));
    });
    for runs in [1_000, 10_000, 100_000] {
        let h = fragmented(runs);
        let mut cache = PageCache::new();
        for npages in [1, 8, 64, 512] {
            g.bench_with_input(
                BenchmarkId::new(format!("runs_{runs}/no_cache"), npages),
                &npages,
                |b, &n| {
                    b.iter(|| {
                        let s = h.alloc_span(n, SpanClass::LARGE_SCAN, 0, 0, None).unwrap();
                        h.free_span(black_box(s), None);
                    })
                },
            );
            if npages < CACHE_MAX_PAGES {
                g.bench_with_input(
                    BenchmarkId::new(format!("runs_{runs}/cache"), npages),
                    &npages,
                    |b, &n| {
                        b.iter(|| {
                            let s = h
                                .alloc_span(n, SpanClass::LARGE_SCAN, 0, 0, Some(&mut cache))
                                .unwrap();
                            h.free_span(black_box(s), Some(&mut cache));
                        })
                    },
                );
            }
        }
        cache.flush(&h);
        h.verify().unwrap();
    }
    g.finish();
}

criterion_group!(benches, alloc_free);
criterion_main!(benches);
