//! Stress tests of sweep generations (issue 4): mutator threads allocate
//! continuously while a driver runs hundreds of collections with random
//! marks, checking after each that nothing marked died or was reused,
//! every dead object died exactly once, and the heap verifier's
//! invariants hold (every span swept exactly once per generation, alloc
//! counts equal popcounts, accounting identities, no span lost or on two
//! lists); and a stress version of the sweep-done loom model.
//!
//! Sizes scale with `SPANGC_STRESS_SCALE` (default 1: 300 collections and
//! 100 more for the flap test, about a second in a debug build). Soak:
//! `SPANGC_STRESS_SCALE=50 cargo test -p spangc-sweep --release --test
//! integration stress` (20 000 collections, about 30 seconds on the
//! project's machine). Seeds replay with `SPANGC_SEED`.

use crate::common::*;
use spangc_sweep::{MCache, Mheap};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::{Arc, Mutex, RwLock};

/// An object a mutator allocated: its address, size and serial (written
/// into its first and last words).
#[derive(Clone, Copy, Debug)]
struct Obj {
    addr: usize,
    size: usize,
    serial: u64,
    hooked: bool,
}

impl Obj {
    fn last_word(&self) -> usize {
        self.addr + self.size - 8
    }

    fn stamp(&self) {
        // SAFETY: a fresh object of `size >= 16` bytes owned by the writer.
        unsafe {
            write_stamp(self.addr, self.serial);
            write_stamp(self.last_word(), !self.serial);
        }
    }

    fn check(&self, cycle: usize) {
        // SAFETY: called only on objects that must still be allocated.
        let (a, b) = unsafe { (read_stamp(self.addr), read_stamp(self.last_word())) };
        assert!(
            a == self.serial && b == !self.serial,
            "cycle {cycle}: {self:?} was overwritten ({a:#x}, {b:#x}): freed or reused while live"
        );
    }
}

/// What one mutator shares with the driver.
#[derive(Default)]
struct MutatorState {
    objects: Vec<Obj>,
    /// The heap generation this mutator last flushed its cache for.
    flushed_for: u32,
    /// Batches allocated.
    batches: u64,
    done: bool,
}

struct World {
    heap: Arc<Mheap>,
    hooks: Arc<Hooks>,
    /// Mutators hold it shared while allocating a batch; the driver takes
    /// it exclusively to "stop the world".
    safepoint: RwLock<()>,
    stop: AtomicBool,
    mutators: Vec<Mutex<MutatorState>>,
}

const SIZES: [usize; 7] = [16, 48, 128, 208, 512, 2048, 9472];

fn mutator(w: &World, t: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut cache: Option<MCache> = Some(w.heap.new_cache());
    let mut serial = (t as u64) << 48;
    while !w.stop.load(Relaxed) {
        // A poisoned lock means the driver failed: leave quietly.
        let Ok(_running) = w.safepoint.read() else {
            return;
        };
        let cache = cache.as_mut().unwrap();
        cache.prepare_for_sweep();
        let Ok(mut st) = w.mutators[t].lock() else {
            return;
        };
        st.flushed_for = w.heap.sweepgen();
        for _ in 0..100 {
            serial += 1;
            let tag = if rng.percent(50) {
                TAG_HOOKED
            } else {
                TAG_PLAIN
            };
            let obj = if rng.percent(3) {
                let size = (16 << 10) + rng.below(200 << 10) as usize;
                let (p, _) = cache.alloc_large(size, tag, false).unwrap();
                Obj {
                    addr: p.as_ptr() as usize,
                    size,
                    serial,
                    hooked: tag != TAG_PLAIN,
                }
            } else {
                let size = SIZES[rng.below(SIZES.len() as u64) as usize];
                let class = class_for(size);
                let p = match cache.alloc_fast(tag, class) {
                    Some(p) => p,
                    None => cache.alloc_slow(tag, class).unwrap(),
                };
                Obj {
                    addr: p.as_ptr() as usize,
                    size,
                    serial,
                    hooked: tag != TAG_PLAIN,
                }
            };
            obj.stamp();
            st.objects.push(obj);
        }
        st.batches += 1;
        drop(st);
        drop(_running);
        std::thread::yield_now();
    }
    // Leaving: give the spans back at a safepoint (no collection running).
    let Ok(_running) = w.safepoint.read() else {
        return;
    };
    drop(cache.take());
    w.mutators[t].lock().unwrap().done = true;
}

/// Waits until every mutator has flushed its cache since the last
/// collection and allocated since (or has left): a stale cache must not
/// survive into the next collection (the facade's world protocol gives the
/// same guarantee).
fn wait_for_mutators(w: &World) {
    let h = w.heap.sweepgen();
    while !w.mutators.iter().all(|m| {
        let m = m.lock().unwrap();
        m.done || m.flushed_for == h
    }) {
        std::thread::yield_now();
    }
}

/// Running totals the driver checks the heap against.
#[derive(Default)]
struct Expected {
    hooked_frees: u64,
    frees: u64,
}

/// One collection: stop, check everything, mark a random subset, advance.
fn cycle(w: &World, cycle: usize, rng: &mut Rng, expected: &mut Expected) {
    wait_for_mutators(w);
    w.heap.finish_sweep(); // mutators still running
    let _stopped = w.safepoint.write().unwrap();
    let heap = &*w.heap;
    assert!(heap.sweep_done(), "cycle {cycle}: sweep done flapped back");
    if let Err(e) = heap.verify() {
        panic!("cycle {cycle}: {e}");
    }
    assert_eq!(w.hooks.wrongly_freed.load(Relaxed), 0);
    assert_eq!(
        w.hooks.frees(),
        expected.hooked_frees,
        "cycle {cycle}: hooked frees"
    );
    assert_eq!(
        heap.sweep_stats().objects_freed,
        expected.frees,
        "cycle {cycle}: frees"
    );
    heap.prepare_mark();
    let mut live = Vec::new();
    for m in &w.mutators {
        let mut m = m.lock().unwrap();
        // Sometimes a mutator drops everything.
        let keep_percent = if rng.percent(5) { 0 } else { 50 };
        m.objects.retain(|o| {
            o.check(cycle);
            let keep = rng.percent(keep_percent);
            if keep {
                live.push(o.addr);
            } else {
                expected.frees += 1;
                expected.hooked_frees += u64::from(o.hooked);
            }
            keep
        });
    }
    *w.hooks.live.write().unwrap() = live.iter().copied().collect();
    let marked = mark(heap, live);
    heap.finish_mark(marked);
    // Pace the sweep over roughly one cycle of allocation (two mutators,
    // a batch or two each, ~1 KiB average per object).
    heap.set_sweep_pacing(marked + (256 << 10));
}

fn run_stress(background_sweep: bool, cycles: usize, seed: u64) -> spangc_sweep::SweepStats {
    let hooks = Arc::new(Hooks::default());
    let w = World {
        heap: heap(background_sweep, true, hooks.clone()),
        hooks,
        safepoint: RwLock::new(()),
        stop: AtomicBool::new(false),
        mutators: (0..2).map(|_| Mutex::default()).collect(),
    };
    let mut rng = Rng::new(seed);
    let mut expected = Expected::default();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|t| {
                let w = &w;
                let seed = rng.next();
                s.spawn(move || mutator(w, t, seed))
            })
            .collect();
        let stop_on_exit = StopOnDrop(&w.stop);
        for c in 0..cycles {
            cycle(&w, c, &mut rng, &mut expected);
        }
        drop(stop_on_exit);
        for t in workers {
            t.join().unwrap();
        }
    });
    // Every mutator left (caches flushed): one last full check.
    w.heap.finish_sweep();
    w.heap.verify().unwrap();
    assert_eq!(w.hooks.frees(), expected.hooked_frees);
    let st = w.heap.sweep_stats();
    assert_eq!(st.objects_freed, expected.frees);
    let batches: u64 = w.mutators.iter().map(|m| m.lock().unwrap().batches).sum();
    assert!(batches >= cycles as u64, "mutators ran between collections");
    st
}

/// Stops the mutators even if the driver panics, so the scope can join
/// them.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

/// With the background sweeper: it races the mutators' refills, stale
/// flushes, proportional sweep and the reclaimer for every span.
#[test]
fn sweep_generations_under_load_with_background_sweeper() {
    let mut rng = Rng::from_env(0xb6);
    let st = run_stress(true, 150 * stress_scale(), rng.next());
    assert!(st.background_ns > 0, "{st:?}");
}

/// Without it: every span is swept by allocation (refill, proportional,
/// reclaim, stale flush) or by `finish_sweep`.
#[test]
fn sweep_generations_under_load_without_background_sweeper() {
    let mut rng = Rng::from_env(0xf6);
    let st = run_stress(false, 150 * stress_scale(), rng.next());
    assert_eq!(st.background_ns, 0);
    assert!(st.pages_reclaimed > 0, "the reclaimer ran: {st:?}");
    assert!(st.proportional_ns > 0, "proportional sweep ran: {st:?}");
}

/// The sweep-done word on real threads (the stress version of the loom
/// model): a driver runs collections while two mutators allocate (their
/// refills and large allocations sweep), the background sweeper sweeps,
/// and an observer polls `sweep_done`. Once the observer has seen a
/// generation done it must never see it not done, and whenever it sees it
/// done, every page in use at the generation's start has been swept.
#[test]
fn sweep_done_never_flaps() {
    let hooks = Arc::new(Hooks::default());
    let heap = heap(true, false, hooks);
    let safepoint = RwLock::new(());
    let stop = AtomicBool::new(false);
    // (generation, pages swept before it, pages in use at its start)
    let generation: Mutex<(u32, u64, u64)> = Mutex::new((heap.sweepgen(), 0, 0));
    let cycles = 100 * stress_scale();
    let seen_done = std::sync::atomic::AtomicU64::new(0);
    // The last generation the observer saw done (the driver waits for it,
    // so that every generation is watched while mutators run on after its
    // sweep finished).
    let observed = std::sync::atomic::AtomicU32::new(u32::MAX);
    std::thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        for t in 0..2u64 {
            let (heap, safepoint, stop) = (&heap, &safepoint, &stop);
            s.spawn(move || {
                let mut rng = Rng::new(t + 1);
                while !stop.load(Relaxed) {
                    let Ok(_running) = safepoint.read() else {
                        return;
                    };
                    // No cache outlives a batch: every span is in a set at
                    // each collection, so "done" covers all of them.
                    let mut cache = heap.new_cache();
                    for _ in 0..200 {
                        let tag = if rng.percent(50) {
                            TAG_HOOKED
                        } else {
                            TAG_PLAIN
                        };
                        if rng.percent(2) {
                            cache.alloc_large(40 << 10, tag, true).unwrap();
                        } else {
                            let size = SIZES[rng.below(SIZES.len() as u64) as usize];
                            cache.alloc(tag, class_for(size)).unwrap();
                        }
                    }
                }
            });
        }
        let observer = s.spawn(|| {
            let mut done_gen = None;
            while !stop.load(Relaxed) {
                std::thread::yield_now();
                let g = *generation.lock().unwrap();
                let done = heap.sweep_done();
                let swept = heap.sweep_stats().pages_swept;
                if g.0 != heap.sweepgen() {
                    continue; // a collection ran meanwhile
                }
                if done {
                    done_gen = Some(g.0);
                    seen_done.fetch_add(1, Relaxed);
                    observed.store(g.0, Relaxed);
                    assert!(
                        swept - g.1 >= g.2,
                        "done in generation {} with {} of {} pages swept",
                        g.0,
                        swept - g.1,
                        g.2
                    );
                } else {
                    assert_ne!(
                        done_gen,
                        Some(g.0),
                        "sweep done flapped back in generation {}",
                        g.0
                    );
                }
            }
        });
        let mut rng = Rng::from_env(0xd0e);
        for _ in 0..cycles {
            std::thread::sleep(std::time::Duration::from_micros(200));
            heap.finish_sweep();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            while observed.load(Relaxed) != heap.sweepgen() && std::time::Instant::now() < deadline
            {
                std::thread::yield_now();
            }
            let _stopped = safepoint.write().unwrap();
            let mut g = generation.lock().unwrap();
            heap.prepare_mark();
            let mut live = Vec::new();
            heap.for_each_in_use_span(|span| {
                if rng.percent(70) {
                    live.push(span.start()); // slot 0 of some spans
                }
            });
            let live: Vec<usize> = live
                .into_iter()
                .filter(|&a| {
                    let o = heap.page_heap().find_object(a).unwrap();
                    !spangc_gcbits::SpanBits::is_free(o.span, o.index)
                })
                .collect();
            let marked = mark(&heap, live);
            let swept_before = heap.sweep_stats().pages_swept;
            let in_use = heap.page_stats().pages_in_use as u64;
            heap.finish_mark(marked);
            heap.set_sweep_pacing(marked + (1 << 20));
            *g = (heap.sweepgen(), swept_before, in_use);
        }
        stop.store(true, SeqCst);
        observer.join().unwrap();
    });
    assert!(
        seen_done.load(Relaxed) > 0,
        "the observer saw some generation done"
    );
}
