//! ns per small allocation (issue 3): 16, 32, 64 and 256-byte objects,
//! each zeroed and written once, through
//!
//! * `spangc/alloc`: `MCache::alloc` (returns zeroed memory; clears a slot
//!   only when its span is dirty), then one word written;
//! * `spangc/alloc_fast`: `MCache::alloc_fast` with `alloc_slow` behind it
//!   (uninitialised slot), then the whole object written with zeros, as
//!   the facade writes a value;
//! * `box`: `Box::new([0u8; N])` (the system allocator), then one word
//!   written; the boxes are kept in a reserved `Vec` and dropped outside
//!   the timed region;
//! * `bumpalo`: `Bump::alloc([0u8; N])`, then one word written; the arena
//!   is reset outside the timed region;
//! * `bumpalo-swapped`: the same, but the arenas change threads between
//!   chunks (a control: what bumpalo costs when, like a collected heap's
//!   pages, its memory was last written by the other thread's core);
//!
//! on one thread, and on two threads at once (each with its own cache,
//! `Vec` or arena; the figure is wall time per allocation per thread).
//!
//! Allocation runs in chunks of [`CHUNK`] objects; between chunks, outside
//! the timed region, spangc collects with nothing marked (so the next chunk
//! reuses swept, dirty spans and pays for zeroing, as a program in steady
//! state does), the boxes are dropped and the arena is reset. The slow
//! paths (refills from the central, new spans) are inside the timed region.
//!
//! Run: `cargo bench -p spangc-sweep --bench alloc`

mod common;

use bumpalo::Bump;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use spangc_arena::sizeclass::{SpanClass, size_to_class};
use spangc_sweep::{MCache, Mheap, SweepHooks};
use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

/// Objects allocated between two untimed recycling steps.
const CHUNK: u64 = 1 << 15;
/// The type tag the benchmark allocates with (no free hook).
const TAG: usize = 0x1000;

struct NoHooks;

impl SweepHooks for NoHooks {
    fn needs_free_hook(&self, _: usize) -> bool {
        false
    }
    fn free_object(&self, _: usize, _: NonNull<u8>) -> bool {
        true
    }
    fn sweep_specials(&self, _: &spangc_arena::PageHeap, span: &spangc_arena::Span) -> u32 {
        unreachable!("the benchmark attaches no specials, yet {span} has some")
    }
}

fn new_heap() -> Arc<Mheap> {
    common::quiet_heap(Arc::new(NoHooks))
}

/// A collection with nothing marked, swept at once: every object of the
/// chunk dies. Caches must hold no span.
fn recycle(heap: &Mheap) {
    heap.finish_sweep();
    heap.prepare_mark();
    heap.finish_mark(0);
    heap.finish_sweep();
}

/// One allocator under test: per-thread state, the timed allocation of `n`
/// objects, and the untimed per-thread cleanup.
trait Allocator<const N: usize>: Send {
    fn alloc_n(&mut self, n: u64);
    fn cleanup(&mut self);
}

struct SpangcAlloc {
    cache: MCache,
    class: SpanClass,
}

impl<const N: usize> Allocator<N> for SpangcAlloc {
    #[inline(never)]
    fn alloc_n(&mut self, n: u64) {
        for _ in 0..n {
            let p = self.cache.alloc(TAG, self.class).unwrap();
            // SAFETY: a fresh, zeroed slot of at least N >= 16 bytes.
            unsafe { p.cast::<u64>().write(black_box(1)) };
            black_box(p);
        }
    }
    fn cleanup(&mut self) {
        self.cache.release_all();
    }
}

struct SpangcFast {
    cache: MCache,
    class: SpanClass,
}

impl<const N: usize> Allocator<N> for SpangcFast {
    #[inline(never)]
    fn alloc_n(&mut self, n: u64) {
        for _ in 0..n {
            let p = match self.cache.alloc_fast(TAG, self.class) {
                Some(p) => p,
                None => self.cache.alloc_slow(TAG, self.class).unwrap(),
            };
            // SAFETY: a fresh slot of at least N bytes, written whole.
            unsafe { p.cast::<[u8; N]>().write([0; N]) };
            black_box(p);
        }
    }
    fn cleanup(&mut self) {
        self.cache.release_all();
    }
}

struct BoxAlloc<const N: usize> {
    kept: Vec<Box<[u8; N]>>,
}

impl<const N: usize> Allocator<N> for BoxAlloc<N> {
    #[inline(never)]
    fn alloc_n(&mut self, n: u64) {
        for _ in 0..n {
            let mut b = Box::new([0u8; N]);
            b[0] = black_box(1);
            self.kept.push(b);
        }
    }
    fn cleanup(&mut self) {
        self.kept.clear(); // keeps the capacity: no allocation when timed
    }
}

struct BumpAlloc {
    bump: Bump,
}

impl<const N: usize> Allocator<N> for BumpAlloc {
    #[inline(never)]
    fn alloc_n(&mut self, n: u64) {
        for _ in 0..n {
            let r = self.bump.alloc([0u8; N]);
            r[0] = black_box(1);
            black_box(r);
        }
    }
    fn cleanup(&mut self) {
        self.bump.reset();
    }
}

/// Times `iters` allocations on each of `threads` threads, in chunks, with
/// the per-thread cleanup and the global `recycle` outside the timed
/// region; returns the wall time (the slowest thread per chunk).
fn run<const N: usize, A: Allocator<N>>(
    iters: u64,
    threads: usize,
    make: &(dyn Fn() -> A + Sync),
    recycle: &(dyn Fn() + Sync),
) -> Duration {
    let start_chunk = Barrier::new(threads);
    let end_chunk = Barrier::new(threads);
    let recycled = Barrier::new(threads);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let (start_chunk, end_chunk, recycled) = (&start_chunk, &end_chunk, &recycled);
                s.spawn(move || {
                    let mut a = make();
                    // One untimed chunk first: every allocator is measured
                    // in steady state (spans, malloc bins and bump chunks
                    // already obtained from the OS).
                    a.alloc_n(CHUNK);
                    a.cleanup();
                    if recycled.wait().is_leader() {
                        recycle();
                    }
                    let mut total = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(CHUNK);
                        start_chunk.wait();
                        let t0 = Instant::now();
                        a.alloc_n(n);
                        end_chunk.wait();
                        total += t0.elapsed();
                        a.cleanup();
                        if recycled.wait().is_leader() {
                            recycle();
                        }
                        left -= n;
                    }
                    total
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .max()
            .unwrap()
    })
}

/// bumpalo with arenas that change threads: each chunk takes an arena from
/// a shared pool and puts it back reset, so a thread often writes memory the
/// other thread's core wrote last, as a collected heap's pages do when a
/// collection frees them and another thread's cache takes them.
struct SwappedBumpAlloc<'p> {
    pool: &'p Mutex<Vec<BumpAlloc>>,
    arena: Option<BumpAlloc>,
}

impl<const N: usize> Allocator<N> for SwappedBumpAlloc<'_> {
    fn alloc_n(&mut self, n: u64) {
        let arena = self.arena.get_or_insert_with(|| {
            let mut pool = self.pool.lock().unwrap();
            pool.pop()
                .unwrap_or_else(|| BumpAlloc { bump: Bump::new() })
        });
        Allocator::<N>::alloc_n(arena, n);
    }
    fn cleanup(&mut self) {
        if let Some(mut arena) = self.arena.take() {
            Allocator::<N>::cleanup(&mut arena);
            self.pool.lock().unwrap().push(arena);
        }
    }
}

fn bench_size<const N: usize>(c: &mut Criterion) {
    let class = SpanClass::new(size_to_class(N).unwrap(), false);
    for threads in [1, 2] {
        let mut g = c.benchmark_group(format!("alloc/{threads}thread"));
        g.warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
            .sample_size(20);
        let heap = new_heap();
        let rec = || recycle(&heap);
        // Box needs a Vec with room for a chunk; reserve it up front.
        let box_make = || BoxAlloc::<N> {
            kept: Vec::with_capacity(CHUNK as usize),
        };
        g.bench_function(BenchmarkId::new("spangc/alloc", N), |b| {
            let make = || SpangcAlloc {
                cache: heap.new_cache(),
                class,
            };
            b.iter_custom(|iters| run::<N, _>(iters, threads, &make, &rec))
        });
        g.bench_function(BenchmarkId::new("spangc/alloc_fast", N), |b| {
            let make = || SpangcFast {
                cache: heap.new_cache(),
                class,
            };
            b.iter_custom(|iters| run::<N, _>(iters, threads, &make, &rec))
        });
        g.bench_function(BenchmarkId::new("box", N), |b| {
            b.iter_custom(|iters| run::<N, _>(iters, threads, &box_make, &|| ()))
        });
        g.bench_function(BenchmarkId::new("bumpalo", N), |b| {
            let make = || BumpAlloc { bump: Bump::new() };
            b.iter_custom(|iters| run::<N, _>(iters, threads, &make, &|| ()))
        });
        g.bench_function(BenchmarkId::new("bumpalo-swapped", N), |b| {
            let pool = Mutex::new(Vec::new());
            let make = || SwappedBumpAlloc {
                pool: &pool,
                arena: None,
            };
            b.iter_custom(|iters| run::<N, _>(iters, threads, &make, &|| ()))
        });
        g.finish();
    }
}

fn alloc(c: &mut Criterion) {
    bench_size::<16>(c);
    bench_size::<32>(c);
    bench_size::<64>(c);
    bench_size::<256>(c);
}

criterion_group!(benches, alloc);
criterion_main!(benches);
