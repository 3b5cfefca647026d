//! Several mutators on one heap: collections wait for every mutator to reach
//! a safepoint, never deadlock, and mutators come and go cleanly.

use spangc::{Config, Gc, GcCell, Heap, Trace};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

spangc::brand!(Waits);
spangc::brand!(Exits);
spangc::brand!(Blocks);
spangc::brand!(Busy);

#[derive(Trace)]
#[gc(brand = B)]
struct Cell<'gc, B: spangc::Brand> {
    value: u64,
    next: GcCell<Option<Gc<'gc, Cell<'gc, B>, B>>>,
}

/// An immutable list node: `Sync`, so its roots may move between threads.
#[derive(Trace)]
#[gc(brand = Exits)]
struct Link<'gc> {
    value: u64,
    next: Option<Gc<'gc, Link<'gc>, Exits>>,
}

/// A mutator stays inside its scope, computing, while another thread asks
/// for a collection: the collection waits for its next safepoint and then
/// completes; neither deadlocks. Checked from the busy side: no collection
/// ever completes while it is between two safepoints (holding an unrooted
/// `Gc`, which verify mode would catch freed), and both happen inside its
/// `safepoint` calls.
#[test]
fn collection_waits_for_a_busy_mutator() {
    let heap = Heap::<Waits>::new(Config::builder().verify(true).build().unwrap()).unwrap();
    let inside = Arc::new(Barrier::new(2));
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let (heap, inside, stop) = (heap.clone(), inside.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut m = heap.mutator();
            m.enter(|cx| {
                let keep = cx.root(cx.alloc(Cell::<Waits> {
                    value: 42,
                    next: GcCell::new(None),
                }));
                let mut at_safepoints = 0;
                inside.wait();
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    // Work that holds an unrooted Gc: no collection may
                    // complete until the safepoint below.
                    let before = heap.gc_count();
                    let c = cx.alloc(Cell::<Waits> {
                        value: i,
                        next: GcCell::new(Some(keep.get(cx))),
                    });
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_millis(2) {
                        std::hint::black_box(c.value);
                    }
                    assert_eq!(heap.gc_count(), before, "collected between safepoints");
                    assert_eq!(c.value, i);
                    assert_eq!(c.next.get().unwrap().value, 42);
                    cx.safepoint();
                    at_safepoints += heap.gc_count() - before;
                }
                assert_eq!(keep.get(cx).value, 42);
                at_safepoints
            })
        })
    };
    inside.wait();
    let t = Instant::now();
    heap.collect();
    heap.collect();
    assert_eq!(heap.stats().gc_count, 2);
    assert!(t.elapsed() < Duration::from_secs(10));
    stop.store(true, Ordering::SeqCst);
    let at_safepoints = busy.join().unwrap();
    assert_eq!(
        at_safepoints, 2,
        "both collections ran at the busy mutator's safepoints"
    );
}

/// Mutator threads that exit (dropping their mutators, even with objects
/// still in their caches) deregister: later collections do not wait for
/// them, and their live objects stay live through roots.
#[test]
fn exiting_mutators_deregister() {
    let heap = Heap::<Exits>::new(Config::builder().verify(true).build().unwrap()).unwrap();
    let roots: Vec<_> = (0..4u64)
        .map(|t| {
            let heap = heap.clone();
            std::thread::spawn(move || {
                let mut m = heap.mutator();
                m.enter(|cx| {
                    let mut head = None;
                    for i in 0..1000 {
                        head = Some(cx.alloc(Link {
                            value: t * 1000 + i,
                            next: head,
                        }));
                    }
                    cx.root(head.unwrap())
                })
            })
            .join()
            .unwrap()
        })
        .collect();
    heap.collect();
    let mut m = heap.mutator();
    m.enter(|cx| {
        for (t, r) in roots.iter().enumerate() {
            let mut n = Some(r.get(cx));
            let mut count = 0;
            while let Some(c) = n {
                assert_eq!(c.value, t as u64 * 1000 + 999 - count);
                count += 1;
                n = c.next;
            }
            assert_eq!(count, 1000);
        }
    });
    assert_eq!(heap.stats().objects_marked, 4000);
}

/// A mutator inside `blocking` does not hold up collections.
#[test]
fn blocking_lets_collections_run() {
    let heap = Heap::<Blocks>::new(Config::default()).unwrap();
    let started = Arc::new(Barrier::new(2));
    let release = Arc::new(Barrier::new(2));
    let t = {
        let (heap, started, release) = (heap.clone(), started.clone(), release.clone());
        std::thread::spawn(move || {
            let mut m = heap.mutator();
            m.enter(|cx| {
                let r = cx.root(cx.alloc(Cell::<Blocks> {
                    value: 7,
                    next: GcCell::new(None),
                }));
                cx.blocking(|| {
                    started.wait();
                    release.wait();
                });
                assert_eq!(r.get(cx).value, 7);
            });
        })
    };
    started.wait();
    heap.collect(); // would deadlock if the blocked mutator counted as running
    release.wait();
    t.join().unwrap();
    assert_eq!(heap.stats().gc_count, 1);
}

/// Many threads allocating with automatic collections, one of which keeps
/// entering and leaving its scope: no deadlock, consistent stats.
#[test]
fn allocation_triggered_collections_across_threads() {
    let heap = Heap::<Busy>::new(Config::builder().gc_percent(Some(25)).build().unwrap()).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let heap = heap.clone();
            s.spawn(move || {
                let mut m = heap.mutator();
                for round in 0..50 {
                    m.enter(|cx| {
                        let keep = cx.root(cx.alloc(Cell::<Busy> {
                            value: t,
                            next: GcCell::new(None),
                        }));
                        for i in 0..2000u64 {
                            let c = cx.alloc(Cell::<Busy> {
                                value: i,
                                next: GcCell::new(None),
                            });
                            std::hint::black_box(c);
                            if i % 100 == 0 {
                                cx.safepoint();
                            }
                        }
                        assert_eq!(keep.get(cx).value, t, "round {round}");
                    });
                }
            });
        }
    });
    let s = heap.stats();
    assert!(s.gc_count > 0, "{s}");
    assert_eq!(s.objects_allocated_total, 4 * 50 * 2001);
}

/// Collecting from inside a scope through the heap handle would deadlock;
/// it panics instead. So does a nested scope on the same heap (a second
/// mutator's, on the same thread) where it would wait for a collection;
/// until then it works.
#[test]
fn reentrant_collect_and_nested_enter_panic() {
    spangc::brand!(Nested);
    let heap = Heap::<Nested>::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        m.enter(|_| heap.collect());
    }));
    assert!(panic_message(r).contains("inside a scope of the same heap"));
    let mut m2 = heap.mutator();
    let sum = m.enter(|cx| {
        let a = cx.alloc(1u32);
        *a + m2.enter(|cx2| *cx2.alloc(2u32))
    });
    assert_eq!(sum, 3, "a nested scope that waits for nothing works");
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        m.enter(|_| m2.enter(|cx| cx.collect()));
    }));
    assert!(panic_message(r).contains("nested Mutator::enter"));
    // The heap is still usable.
    heap.collect();
    m.enter(|cx| cx.collect());
    m2.enter(|cx| cx.collect());
}

/// A nested scope on one thread while another thread collects: that
/// collection waits for both scopes; the inner one panics at its next
/// safepoint instead of parking (its thread could never bring the outer
/// one to a safepoint), the panic leaves both scopes, and the collection
/// completes. The inner mutator, made inside the outer scope, is dropped
/// while the panic unwinds, during the collection: it leaves its cache to
/// the collector instead of waiting for it (verify mode checks the spans
/// it had cached are swept once).
#[test]
fn a_nested_scope_panics_at_a_safepoint_of_another_threads_collection() {
    spangc::brand!(NestedRace);
    static DROPS: AtomicU64 = AtomicU64::new(0);
    #[derive(Trace)]
    #[gc(brand = NestedRace, allow_drop)]
    struct Counted(u64);
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::SeqCst);
        }
    }
    let config = Config::builder().verify(true).build().unwrap();
    let heap = Heap::<NestedRace>::new(config).unwrap();
    let mut outer = heap.mutator();
    let started = Arc::new(AtomicBool::new(false));
    let collector = {
        let (heap, started) = (heap.clone(), started.clone());
        std::thread::spawn(move || {
            started.store(true, Ordering::SeqCst);
            heap.collect();
            heap.gc_count()
        })
    };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        outer.enter(|_| {
            let mut inner = heap.mutator();
            inner.enter(|cx| {
                // Garbage in the inner cache's spans, for the collector to
                // deal with.
                for i in 0..1000u64 {
                    cx.alloc(Counted(i));
                }
                while !started.load(Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
                // Safepoints until the collection is under way and one of
                // them would park.
                loop {
                    cx.safepoint();
                }
            })
        })
    }));
    assert!(panic_message(r).contains("nested Mutator::enter"));
    assert!(collector.join().unwrap() >= 1, "the collection completed");
    outer.enter(|cx| assert_eq!(*cx.alloc(5u8), 5));
    heap.collect();
    assert_eq!(
        DROPS.load(Ordering::SeqCst),
        1000,
        "the orphaned cache's spans were given back and swept"
    );
}

/// A destructor run by the sweeper that collects through a scope of its
/// own would deadlock (on the background sweeper it waits for its own
/// sweep; on the collector's thread, for its own collection): it panics,
/// the panic is caught and counted, and the heap goes on.
#[test]
fn a_destructor_that_collects_panics_instead_of_deadlocking() {
    spangc::brand!(CollectingDrop);
    #[derive(Trace)]
    #[gc(brand = CollectingDrop, allow_drop)]
    struct Collects(#[gc(skip)] Heap<CollectingDrop>);
    impl Drop for Collects {
        fn drop(&mut self) {
            self.0.mutator().enter(|cx| cx.collect());
        }
    }
    // The destructors run on this thread: a destructor on the background
    // sweeper that enters a scope while a collection waits for that very
    // sweep would stall (a documented liveness rule, not caught).
    let config = Config::builder()
        .verify(true)
        .background_sweep(false)
        .build()
        .unwrap();
    let heap = Heap::<CollectingDrop>::new(config).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        for _ in 0..10 {
            cx.alloc(Collects(heap.clone()));
        }
    });
    heap.collect();
    heap.collect();
    assert_eq!(heap.stats().destructor_panics, 10);
    m.enter(|cx| assert_eq!(*cx.alloc(3u8), 3));
}

/// The message of a caught panic.
fn panic_message(r: std::thread::Result<()>) -> String {
    let e = r.unwrap_err();
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

/// A mutator that leaves its scope with spans cached and stays outside
/// across several collections: the collector flushes its stale cache (in
/// verify mode every span must be swept exactly once per generation), and
/// when the mutator comes back it allocates from fresh spans and its
/// earlier objects are intact.
#[test]
fn idle_mutators_caches_are_flushed_by_the_collector() {
    spangc::brand!(Idle);
    let heap = Heap::<Idle>::new(Config::builder().verify(true).build().unwrap()).unwrap();
    let mut idle = heap.mutator();
    let keep = idle.enter(|cx| {
        let mut head = None;
        for i in 0..500 {
            head = Some(cx.alloc(Cell::<Idle> {
                value: i,
                next: GcCell::new(head),
            }));
            // garbage in the same spans
            cx.alloc(Cell::<Idle> {
                value: 0,
                next: GcCell::new(None),
            });
        }
        cx.root(head.unwrap())
    });
    for _ in 0..3 {
        heap.collect();
    }
    idle.enter(|cx| {
        for i in 0..2000 {
            cx.alloc(Cell::<Idle> {
                value: i,
                next: GcCell::new(None),
            });
        }
        let mut n = Some(keep.get(cx));
        let mut count = 0;
        while let Some(c) = n {
            count += 1;
            n = c.next.get();
        }
        assert_eq!(count, 500);
        cx.collect();
    });
    assert_eq!(heap.stats().objects_marked, 500);
}

/// `Heap::collect` sweeps the garbage in the spans an idle mutator has
/// cached: its destructors have run when `collect` returns, without the
/// mutator entering a scope again.
#[test]
fn heap_collect_sweeps_idle_mutators_garbage() {
    spangc::brand!(IdleDrops);
    static DROPS: AtomicU64 = AtomicU64::new(0);
    #[derive(Trace)]
    #[gc(brand = IdleDrops, allow_drop)]
    struct Counted(u64);
    impl Drop for Counted {
        fn drop(&mut self) {
            DROPS.fetch_add(1, Ordering::SeqCst);
        }
    }
    let heap = Heap::<IdleDrops>::new(Config::builder().verify(true).build().unwrap()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        for i in 0..10 {
            cx.alloc(Counted(i));
        }
    });
    heap.collect();
    assert_eq!(DROPS.load(Ordering::SeqCst), 10);
    // And the mutator's cache is usable afterwards.
    m.enter(|cx| assert_eq!(cx.alloc(Counted(7)).0, 7));
    drop(m);
    heap.collect();
    assert_eq!(DROPS.load(Ordering::SeqCst), 11);
}

/// The stress tests' size: `SPANGC_STRESS_SCALE` (default 1).
fn stress_scale() -> u64 {
    std::env::var("SPANGC_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// The rounds of a stress loop: `0..min`, and on until `heap` has finished
/// two collections since the loop began, so that collections race the
/// loop however the threads are scheduled (on two cores, the collecting
/// thread could start only after the loop had ended).
fn rounds<B: spangc::Brand>(heap: &Heap<B>, min: u64) -> impl Iterator<Item = u64> + '_ {
    let start = heap.stats().gc_count;
    (0..).take_while(move |&i| i < min || heap.stats().gc_count < start + 2)
}

/// Runs `work(heap, t)` on two threads (`t` = 0, 1) while a third thread
/// collects `heap` over and over; returns the workers' results and the
/// number of collections, checking that at least two ran.
fn race_collections<B: spangc::Brand, R: Send + 'static>(
    heap: &Heap<B>,
    work: impl Fn(Heap<B>, u64) -> R + Clone + Send + 'static,
) -> (Vec<R>, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let collector = {
        let (heap, stop) = (heap.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                heap.collect();
                n += 1;
            }
            n
        })
    };
    let workers: Vec<_> = (0..2u64)
        .map(|t| {
            let (heap, work) = (heap.clone(), work.clone());
            std::thread::spawn(move || work(heap, t))
        })
        .collect();
    let results = workers.into_iter().map(|w| w.join().unwrap()).collect();
    stop.store(true, Ordering::SeqCst);
    let collections = collector.join().unwrap();
    assert!(collections >= 2);
    (results, collections)
}

/// A rooted `Cell` holding `value`, for a stress worker to hang objects on.
fn kept<B: spangc::Brand>(
    m: &mut spangc::Mutator<B>,
    value: u64,
) -> spangc::Root<Cell<'static, B>, B> {
    m.enter(|cx| {
        cx.root(cx.alloc(Cell::<B> {
            value,
            next: GcCell::new(None),
        }))
    })
}

/// Many short scopes on two threads (the lock-free enter and exit) while a
/// third thread collects over and over, in verify mode: every collection
/// flushes the caches of mutators it finds outside, so a mutator that
/// entered without the collector noticing would corrupt its cache and the
/// verifier's recount. Objects kept in roots must survive with their
/// contents. Size: `SPANGC_STRESS_SCALE` (default 1).
#[test]
fn short_scopes_race_collections() {
    spangc::brand!(Short);
    let scale = stress_scale();
    let heap = Heap::<Short>::new(Config::builder().verify(true).build().unwrap()).unwrap();
    race_collections(&heap, move |heap, t| {
        let mut m = heap.mutator();
        let kept = kept(&mut m, t);
        for i in rounds(&heap, 20_000 * scale) {
            m.enter(|cx| {
                let c = cx.alloc(Cell::<Short> {
                    value: i,
                    next: GcCell::new(None),
                });
                assert_eq!(c.value, i);
                if i % 64 == 0 {
                    kept.get(cx).next.set(cx, Some(c));
                }
            });
        }
        m.enter(|cx| {
            let k = kept.get(cx);
            assert_eq!(k.value, t);
            let last = k.next.get().expect("a kept object");
            assert_eq!(last.value % 64, 0);
        });
    });
}

/// Nested scopes under fire: two threads each open scopes of a second,
/// short-lived mutator inside their outer scope, allocate and reach
/// safepoints there, while a third thread collects over and over, in
/// verify mode. An inner safepoint that would wait for a collection
/// panics (caught inside the outer scope, which goes on); an inner
/// mutator dropped during a collection hands its cache over. Nothing may
/// deadlock, the outer scope's unrooted objects stay intact until its own
/// safepoint, and rooted ones survive. Size: `SPANGC_STRESS_SCALE`
/// (default 1).
#[test]
fn nested_scopes_race_collections() {
    spangc::brand!(NestedStress);
    let scale = stress_scale();
    let heap = Heap::<NestedStress>::new(Config::builder().verify(true).build().unwrap()).unwrap();
    let (caught, collections) = race_collections(&heap, move |heap, t| {
        let mut outer = heap.mutator();
        let kept = kept(&mut outer, t);
        let mut caught = 0u64;
        for i in rounds(&heap, 2_000 * scale) {
            outer.enter(|cx| {
                let mine = cx.alloc(Cell::<NestedStress> {
                    value: i,
                    next: GcCell::new(None),
                });
                let mut inner = heap.mutator();
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    inner.enter(|cx2| {
                        for j in 0..16u64 {
                            assert_eq!(*cx2.alloc(j), j);
                        }
                        cx2.safepoint();
                    })
                }));
                if r.is_err() {
                    caught += 1;
                }
                // `inner` is dropped here, inside the outer scope, during a
                // collection or not.
                drop(inner);
                assert_eq!(mine.value, i, "no collection ran under the outer scope");
                if i % 16 == 0 {
                    kept.get(cx).next.set(cx, Some(mine));
                }
            });
            outer.safepoint();
        }
        outer.enter(|cx| {
            let k = kept.get(cx);
            assert_eq!(k.value, t);
            assert_eq!(k.next.get().expect("a kept object").value % 16, 0);
        });
        caught
    });
    let caught: u64 = caught.iter().sum();
    eprintln!("{collections} collections, {caught} inner safepoints refused");
}
