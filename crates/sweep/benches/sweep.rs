//! Sweep throughput and reclaim scan speed (issue 4). A bench binary
//! rather than criterion: every measurement consumes its heap (a swept
//! generation cannot be swept again), so each repetition rebuilds one
//! untimed and times one pass; it prints the median of [`REPS`].
//!
//! * **Sweep throughput**: a heap of [`HEAP_BYTES`] of one object kind
//!   (32-byte and 1 KiB objects in one-page spans, 64 KiB objects in
//!   eight-page spans) with 0%, 50% or 100% of the objects dead (chosen at
//!   random per object), with and without a free hook (a counter, so the
//!   figure is the sweeper's own cost per dead object), swept by
//!   `finish_sweep` on one thread. Throughput is heap bytes swept (pages
//!   of the spans) per time. 100% dead measures freeing wholly dead spans.
//! * **Reclaim scan**: a heap of [`SCAN_ARENAS`] full arenas of in-use
//!   one-page spans, all marked (nothing to free): `reclaim_scan_only`
//!   (the bitmap scan alone), and the real reclaimer run by a large
//!   allocation while sweeping is unfinished (chunks claimed from the
//!   shared index, spans looked up for candidates; timed by the
//!   `reclaim_ns` stat). Throughput is heap bytes covered per time.
//!
//! MB here is 10^6 bytes, GB 10^9 (the seed's "300 GB/ms", "32 MB/ms").
//!
//! Run: `cargo bench -p spangc-sweep --bench sweep`

mod common;

use spangc_arena::sizeclass::{SpanClass, size_to_class};
use spangc_arena::{PAGE_SIZE, PAGES_PER_ARENA};
use spangc_gcbits::SpanBits;
use spangc_sweep::{Mheap, SweepHooks};
use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

const HEAP_BYTES: usize = 32 << 20;
const SCAN_ARENAS: usize = 16;
const REPS: usize = 7;
const TAG_PLAIN: usize = 0x1000;
const TAG_HOOKED: usize = 0x2000;

/// The free hook counts (so its cost is the sweeper's dispatch, not a
/// destructor's work).
#[derive(Default)]
struct Hooks(AtomicU64);

impl SweepHooks for Hooks {
    fn needs_free_hook(&self, tag: usize) -> bool {
        tag == TAG_HOOKED
    }
    fn free_object(&self, _: usize, addr: NonNull<u8>) -> bool {
        black_box(addr);
        self.0.fetch_add(1, Relaxed);
        true
    }
    fn sweep_specials(&self, _: &spangc_arena::PageHeap, span: &spangc_arena::Span) -> u32 {
        unreachable!("the benchmark attaches no specials, yet {span} has some")
    }
}

fn new_heap() -> Arc<Mheap> {
    common::quiet_heap(Arc::new(Hooks::default()))
}

/// xorshift64*, for the random marks.
struct Rng(u64);

impl Rng {
    fn percent(&mut self, p: u64) -> bool {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % 100 < p
    }
}

/// Marks the objects at `addrs` (world stopped, after `prepare_mark`);
/// returns the marked bytes.
fn mark(heap: &Mheap, addrs: impl IntoIterator<Item = usize>) -> usize {
    let mut bytes = 0;
    for a in addrs {
        let o = heap.page_heap().find_object(a).unwrap();
        if !o.span.set_marked(o.index) {
            bytes += o.span.elem_size();
        }
        heap.page_heap().set_page_mark(o.span);
    }
    bytes
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Builds a heap of `object`-byte objects, kills `dead_percent` of them,
/// and times one `finish_sweep`, with empty spans kept for reuse (the
/// default) or freed at once (`keep_empty` false: what the freeing target
/// measures); returns (time, heap bytes swept).
fn sweep_once(
    object: usize,
    dead_percent: u64,
    tag: usize,
    keep_empty: bool,
    seed: u64,
) -> (Duration, usize) {
    let heap = new_heap();
    heap.set_reuse_empty_spans(keep_empty);
    let mut cache = heap.new_cache();
    let mut rng = Rng(seed);
    let mut live = Vec::new();
    let mut bytes = 0;
    while bytes < HEAP_BYTES {
        let a = if object > 32 << 10 {
            cache.alloc_large(object, tag, true).unwrap().0
        } else {
            let class = SpanClass::new(size_to_class(object).unwrap(), false);
            match cache.alloc_fast(tag, class) {
                Some(p) => p,
                None => cache.alloc_slow(tag, class).unwrap(),
            }
        };
        if !rng.percent(dead_percent) {
            live.push(a.as_ptr() as usize);
        }
        bytes += object;
    }
    drop(cache);
    heap.finish_sweep();
    heap.prepare_mark();
    let marked = mark(&heap, live);
    heap.finish_mark(marked);
    let pages = heap.page_stats().pages_in_use;
    let t = Instant::now();
    heap.finish_sweep();
    let d = t.elapsed();
    assert_eq!(heap.sweep_stats().pages_swept as usize, pages);
    (d, pages * PAGE_SIZE)
}

fn sweep_throughput() {
    println!(
        "sweep throughput: one thread, finish_sweep, {} MiB heap, median of {REPS}",
        HEAP_BYTES >> 20
    );
    println!(
        "{:<10} {:>6} {:>6} {:>6} {:>10} {:>10} {:>10}",
        "object", "dead", "hook", "empty", "ms", "MB/ms", "ns/page"
    );
    for object in [32, 1024, 64 << 10] {
        // Wholly dead small spans are kept for reuse by default; the
        // freeing target is measured with that off.
        let cases: &[(u64, bool)] = if object > 32 << 10 {
            &[(0, true), (50, true), (100, false)]
        } else {
            &[(0, true), (50, true), (100, false), (100, true)]
        };
        for &(dead, keep_empty) in cases {
            for tag in [TAG_PLAIN, TAG_HOOKED] {
                let mut times = Vec::new();
                let mut bytes = 0;
                for rep in 0..REPS {
                    let seed = 0x9e37_79b9 + rep as u64;
                    let (d, b) = sweep_once(object, dead, tag, keep_empty, seed);
                    times.push(d);
                    bytes = b;
                }
                let d = median(times);
                let ms = d.as_secs_f64() * 1e3;
                println!(
                    "{:<10} {:>5}% {:>6} {:>6} {:>10.3} {:>10.1} {:>10.1}",
                    format!("{object} B"),
                    dead,
                    if tag == TAG_HOOKED { "yes" } else { "no" },
                    if keep_empty { "keep" } else { "free" },
                    ms,
                    bytes as f64 / 1e6 / ms,
                    d.as_nanos() as f64 / (bytes / PAGE_SIZE) as f64,
                );
            }
        }
    }
}

/// A heap of `SCAN_ARENAS` arenas of one-page spans, every span marked,
/// in a generation whose sweep has not started.
fn marked_heap() -> Arc<Mheap> {
    let heap = new_heap();
    let mut cache = heap.new_cache();
    for _ in 0..SCAN_ARENAS * PAGES_PER_ARENA {
        cache.alloc_large(PAGE_SIZE, TAG_PLAIN, true).unwrap();
    }
    drop(cache);
    remark(&heap);
    heap
}

/// Finishes the sweep, then marks every in-use span and starts the next
/// generation (nothing will be freed).
fn remark(heap: &Mheap) {
    heap.finish_sweep();
    heap.prepare_mark();
    let mut starts = Vec::new();
    heap.for_each_in_use_span(|s| starts.push(s.start()));
    let marked = mark(heap, starts);
    heap.finish_mark(marked);
}

fn reclaim_scan() {
    let heap = marked_heap();
    let covered = heap.page_stats().sys_bytes;
    println!(
        "\nreclaim scan: {} arenas ({} GiB), {} in-use one-page spans, all marked, median of {REPS}",
        SCAN_ARENAS,
        covered >> 30,
        heap.page_stats().pages_in_use
    );
    let scan_only = median(
        (0..REPS)
            .map(|_| {
                let t = Instant::now();
                assert_eq!(black_box(heap.reclaim_scan_only()), 0);
                t.elapsed()
            })
            .collect(),
    );
    let mut real = Vec::new();
    for _ in 0..REPS {
        let before = heap.sweep_stats();
        let mut cache = heap.new_cache();
        cache.alloc_large(16 * PAGE_SIZE, TAG_PLAIN, true).unwrap();
        drop(cache);
        let after = heap.sweep_stats();
        assert_eq!(
            after.pages_reclaimed, before.pages_reclaimed,
            "nothing to free"
        );
        real.push(Duration::from_nanos(after.reclaim_ns - before.reclaim_ns));
        remark(&heap);
    }
    let real = median(real);
    for (what, d) in [
        ("reclaim_scan_only", scan_only),
        ("reclaim (large alloc)", real),
    ] {
        let ms = d.as_secs_f64() * 1e3;
        println!(
            "{what:<22} {:>10.1} us {:>10.1} GB/ms",
            ms * 1e3,
            covered as f64 / 1e9 / ms
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects a part.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let want = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    if want("sweep") {
        sweep_throughput();
    }
    if want("reclaim") {
        reclaim_scan();
    }
}
