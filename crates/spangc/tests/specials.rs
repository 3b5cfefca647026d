//! Finalizers, cleanups, weak references, ephemerons and weak sets
//! (issue 6's tests).

use spangc::{Config, EphemeronMap, Gc, GcCell, GcRefCell, Heap, Root, Trace, Weak, WeakSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};

fn verify() -> Config {
    Config::builder().verify(true).build().unwrap()
}

#[derive(Trace)]
#[gc(brand = B)]
struct Obj<'gc, B: spangc::Brand> {
    id: u64,
    child: GcCell<Option<Gc<'gc, Obj<'gc, B>, B>>>,
}

fn obj<'s, B: spangc::Brand>(cx: &'s spangc::Scope<B>, id: u64) -> Gc<'s, Obj<'s, B>, B> {
    cx.alloc(Obj {
        id,
        child: GcCell::new(None),
    })
}

/// A finalizer runs exactly once, sees everything its object reaches, and
/// the object takes two collections to free; one resurrected by its
/// finalizer lives while reachable and is freed once dropped again.
#[test]
fn finalizers_run_once_and_resurrect() {
    spangc::brand!(Fin);
    let heap = Heap::<Fin>::new(verify()).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let seen_child = Arc::new(AtomicU64::new(0));
    let mut m = heap.mutator();
    // A slot a finalizer can store its object into (resurrection).
    type Keeper = Root<GcRefCell<Vec<Gc<'static, Obj<'static, Fin>, Fin>>>, Fin>;
    let keeper: Keeper = m.enter(|cx| {
        let v: Vec<Gc<'_, Obj<'_, Fin>, Fin>> = Vec::new();
        cx.root(cx.alloc(GcRefCell::new(v)))
    });
    // Shared by the test and the local finalizer, on this thread only.
    let keeper = std::rc::Rc::new(keeper);
    m.enter(|cx| {
        let o = obj(cx, 1);
        o.child.set(cx, Some(obj(cx, 2)));
        let (runs, seen_child, keeper) = (runs.clone(), seen_child.clone(), keeper.clone());
        cx.set_local_finalizer(o, move |cx, o| {
            runs.fetch_add(1, SeqCst);
            // Everything the object reaches is still valid.
            seen_child.store(o.child.get().unwrap().id, SeqCst);
            keeper.get(cx).borrow_mut(cx).push(o); // resurrect
        })
        .unwrap();
        assert_eq!(
            cx.set_local_finalizer(o, |_, _| ()),
            Err(spangc::FinalizerError::AlreadySet)
        );
    });
    m.enter(|cx| {
        cx.collect();
        assert_eq!(cx.run_finalizers(), 1);
        assert_eq!(runs.load(SeqCst), 1);
        assert_eq!(seen_child.load(SeqCst), 2);
        // Resurrected: alive while the keeper holds it, across collections.
        cx.collect();
        cx.collect();
        assert_eq!(keeper.get(cx).borrow()[0].id, 1);
        assert_eq!(keeper.get(cx).borrow()[0].child.get().unwrap().id, 2);
        assert_eq!(cx.run_finalizers(), 0, "the finalizer runs once");
        let before = heap.stats().objects_freed_total;
        keeper.get(cx).borrow_mut(cx).clear();
        cx.collect();
        assert_eq!(
            heap.stats().objects_freed_total - before,
            2,
            "freed once dropped again"
        );
    });
    assert_eq!(runs.load(SeqCst), 1);
}

/// An object with a finalizer survives the first collection that finds it
/// dead (its finalizer is queued) and is freed by the next one.
#[test]
fn finalized_object_takes_two_collections() {
    spangc::brand!(Two);
    let heap = Heap::<Two>::new(verify()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let o = obj(cx, 9);
        cx.set_local_finalizer(o, |_, o| assert_eq!(o.id, 9))
            .unwrap();
        let base = heap.stats().objects_freed_total;
        cx.collect();
        assert_eq!(
            heap.stats().objects_freed_total,
            base,
            "resurrected for its finalizer"
        );
        assert_eq!(cx.run_finalizers(), 1);
        cx.collect();
        assert_eq!(heap.stats().objects_freed_total, base + 1);
    });
}

#[derive(Trace)]
#[gc(brand = Shared)]
struct Frozen {
    value: u64,
}
spangc::brand!(Shared);

/// Finalizers of `Send + Sync` objects run on the finalizer thread.
#[test]
fn thread_finalizers_run_on_the_finalizer_thread() {
    let heap = Heap::<Shared>::new(verify()).unwrap();
    let ran_on = Arc::new(std::sync::Mutex::new(None));
    let mut m = heap.mutator();
    m.enter(|cx| {
        for i in 0..100 {
            let o = cx.alloc(Frozen { value: i });
            let ran_on = ran_on.clone();
            cx.set_finalizer(o, move |_, o| {
                assert!(o.value < 100);
                *ran_on.lock().unwrap() = std::thread::current().name().map(String::from);
            })
            .unwrap();
        }
        cx.collect();
    });
    heap.wait_finalizers();
    assert_eq!(heap.stats().finalizers_run_total, 100);
    assert_eq!(ran_on.lock().unwrap().as_deref(), Some("spangc-finalizer"));
    heap.collect();
    assert_eq!(heap.stats().objects_marked, 0);
}

/// Cleanups run once each, after their object dies, which is freed in the
/// same collection.
#[test]
fn cleanups_run_once_and_do_not_resurrect() {
    spangc::brand!(Clean);
    let heap = Heap::<Clean>::new(verify()).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let mut m = heap.mutator();
    m.enter(|cx| {
        for i in 0..50 {
            let o = obj(cx, i);
            for _ in 0..3 {
                let count = count.clone();
                cx.add_cleanup(o, move || {
                    count.fetch_add(1, SeqCst);
                });
            }
        }
        let base = heap.stats().objects_freed_total;
        cx.collect();
        assert_eq!(
            heap.stats().objects_freed_total - base,
            50,
            "freed in the first collection"
        );
    });
    heap.wait_finalizers();
    assert_eq!(count.load(SeqCst), 150);
    assert_eq!(heap.stats().cleanups_run_total, 150);
    assert_eq!(heap.stats().special_records, 0);
}

/// Once `wait_finalizers` has returned, the finalizer thread holds no
/// handle to the heap: dropping the last `Heap` tears it down on the spot
/// and frees its brand, even when a cleanup upgraded a `WeakHeap` (a race
/// here once left the brand taken for a moment after the drop).
#[test]
fn heap_drop_after_wait_finalizers_tears_down_at_once() {
    spangc::brand!(Torn);
    for round in 0..200 {
        let heap = Heap::<Torn>::new(Config::default()).unwrap();
        let mut m = heap.mutator();
        m.enter(|cx| {
            let o = obj(cx, round);
            cx.add_external(64);
            let weak = cx.heap().downgrade();
            cx.add_cleanup(o, move || {
                if let Some(heap) = weak.upgrade() {
                    heap.sub_external(64);
                }
            });
        });
        heap.collect();
        heap.wait_finalizers();
        assert_eq!(heap.stats().external_bytes, 0);
        drop(m);
        drop(heap);
        assert!(
            Heap::<Torn>::new(Config::default()).is_ok(),
            "round {round}: the brand is still taken after the last handle was dropped"
        );
    }
}

/// Weak references upgrade while their object lives, share one cell per
/// object, and are cleared (and stay cleared) before the object's
/// finalizer runs.
#[test]
fn weak_references() {
    spangc::brand!(Weaks);
    let heap = Heap::<Weaks>::new(verify()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let live = obj(cx, 1);
        let dead = obj(cx, 2);
        let w1 = Weak::new(cx, live);
        let w2 = Weak::new(cx, live);
        assert!(Weak::ptr_eq(w1, w2), "one canonical cell per object");
        let wd = Weak::new(cx, dead);
        let fin = obj(cx, 3);
        let wf = Weak::new(cx, fin);
        cx.set_local_finalizer(fin, |_, _| ()).unwrap();
        // Hold the weak refs (and the live object) across the collection.
        #[derive(Trace)]
        #[gc(brand = Weaks)]
        struct Holder<'gc> {
            live: Gc<'gc, Obj<'gc, Weaks>, Weaks>,
            weaks: Vec<Weak<'gc, Obj<'gc, Weaks>, Weaks>>,
        }
        let h = cx.root(cx.alloc(Holder {
            live,
            weaks: vec![w1, wd, wf],
        }));
        cx.collect();
        let w = h.get(cx);
        assert_eq!(w.weaks[0].upgrade(cx).unwrap().id, 1);
        assert!(w.weaks[1].upgrade(cx).is_none(), "dead object");
        assert!(
            w.weaks[2].upgrade(cx).is_none(),
            "cleared before its finalizer runs"
        );
        assert_eq!(cx.run_finalizers(), 1);
        assert!(h.get(cx).weaks[2].upgrade(cx).is_none(), "stays cleared");
    });
}

/// Upgrades between a collection and the sweep of the object's span see a
/// dead object as dead (the span is not swept yet, so the cell is still
/// set): background sweeping is off so the window is wide.
#[test]
fn weak_upgrade_before_sweep_sees_death() {
    spangc::brand!(Lazy);
    let heap = Heap::<Lazy>::new(
        Config::builder()
            .background_sweep(false)
            .verify(true)
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        #[derive(Trace)]
        #[gc(brand = Lazy)]
        struct Ws<'gc> {
            w: Vec<Weak<'gc, Obj<'gc, Lazy>, Lazy>>,
            keep: Vec<Gc<'gc, Obj<'gc, Lazy>, Lazy>>,
        }
        let mut w = Vec::new();
        let mut keep = Vec::new();
        for i in 0..1000 {
            let o = obj(cx, i);
            w.push(Weak::new(cx, o));
            if i % 3 == 0 {
                keep.push(o);
            }
        }
        let r = cx.root(cx.alloc(Ws { w, keep }));
        // A collection without finishing the sweep: spans stay unswept.
        heap_trigger(cx);
        let ws = r.get(cx);
        for (i, w) in ws.w.iter().enumerate() {
            assert_eq!(w.upgrade(cx).is_some(), i % 3 == 0, "object {i}");
        }
    });
}

/// Runs a collection without `collect()`'s final sweep: a safepoint with
/// stress on would do; here, a second mutator's `Heap::collect` finishes
/// its sweep too, so request one through allocation instead.
fn heap_trigger<B: spangc::Brand>(cx: &mut spangc::Scope<B>) {
    let before = cx.heap().stats().gc_count;
    while cx.heap().stats().gc_count == before {
        for _ in 0..1000 {
            std::hint::black_box(cx.alloc([0u64; 8]));
        }
        cx.safepoint();
    }
}

/// Several threads upgrade weak references to shared immutable objects
/// while others drop their strong references and collections run: an
/// upgrade never yields a freed object (verify mode poisons freed memory,
/// so reading one would see 0xdb...).
#[test]
fn weak_upgrade_stress() {
    spangc::brand!(WStress);
    #[derive(Trace)]
    #[gc(brand = WStress)]
    struct Leaf {
        value: u64,
    }
    #[derive(Trace)]
    #[gc(brand = WStress)]
    struct Weaks<'gc> {
        w: Vec<Weak<'gc, Leaf, WStress>>,
    }
    let heap = Heap::<WStress>::new(
        Config::builder()
            .verify(true)
            .gc_percent(Some(20))
            .build()
            .unwrap(),
    )
    .unwrap();
    let scale: usize = std::env::var("SPANGC_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let (weaks, strong) = {
        let mut m = heap.mutator();
        m.enter(|cx| {
            let leaves: Vec<_> = (0..2000u64).map(|v| cx.alloc(Leaf { value: v })).collect();
            let w = leaves.iter().map(|&l| Weak::new(cx, l)).collect();
            let weaks = cx.root(cx.alloc(Weaks { w }));
            let strong: Vec<_> = leaves.iter().map(|&l| cx.root(l)).collect();
            (weaks, strong)
        })
    };
    let weaks = Arc::new(weaks);
    let strong = Arc::new(std::sync::Mutex::new(strong));
    std::thread::scope(|s| {
        for t in 0..3 {
            let (heap, weaks, strong) = (heap.clone(), weaks.clone(), strong.clone());
            s.spawn(move || {
                let mut m = heap.mutator();
                for round in 0..100 * scale {
                    m.enter(|cx| {
                        if t == 0 && round % 2 == 0 {
                            // Drop some strong references.
                            let mut st = strong.lock().unwrap();
                            let n = st.len();
                            if n > 0 {
                                st.truncate(n - n.min(25));
                            }
                        }
                        for (i, w) in weaks.get(cx).w.iter().enumerate() {
                            if let Some(l) = w.upgrade(cx) {
                                assert_eq!(l.value, i as u64, "upgrade yielded a freed object");
                            }
                        }
                        for _ in 0..200 {
                            std::hint::black_box(cx.alloc(Leaf { value: 0 }));
                        }
                        cx.safepoint();
                    });
                }
            });
        }
    });
    heap.collect();
    let mut m = heap.mutator();
    let alive = m.enter(|cx| {
        weaks
            .get(cx)
            .w
            .iter()
            .filter(|w| w.upgrade(cx).is_some())
            .count()
    });
    assert_eq!(alive, strong.lock().unwrap().len());
}

/// Ephemerons: a value lives only while its key does, including chains
/// (a value is the next entry's key) and cycles through values.
#[test]
fn ephemerons_follow_their_keys() {
    spangc::brand!(Eph);
    #[derive(Trace)]
    #[gc(brand = Eph)]
    struct Table<'gc> {
        map: EphemeronMap<'gc, Obj<'gc, Eph>, Gc<'gc, Obj<'gc, Eph>, Eph>, Eph>,
    }
    let heap = Heap::<Eph>::new(verify()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let table = cx.root(cx.alloc(Table {
            map: EphemeronMap::new(),
        }));
        let t = table.get(cx);
        // Chain: a -> b -> c (each value is the next key).
        let (a, b, c, d) = (obj(cx, 1), obj(cx, 2), obj(cx, 3), obj(cx, 4));
        t.map.insert(cx, a, b);
        t.map.insert(cx, b, c);
        t.map.insert(cx, c, d);
        // Cycle through values: x -> y, y -> x, unreachable otherwise.
        let (x, y) = (obj(cx, 10), obj(cx, 11));
        t.map.insert(cx, x, y);
        t.map.insert(cx, y, x);
        let root_a = cx.root(a);
        cx.collect();
        let t = table.get(cx);
        assert_eq!(t.map.len(), 3, "the chain survives from a; the cycle dies");
        let a = root_a.get(cx);
        let b = *t.map.get(a).unwrap();
        let c = *t.map.get(b).unwrap();
        assert_eq!((b.id, c.id, t.map.get(c).unwrap().id), (2, 3, 4));
        drop(root_a);
        cx.collect();
        assert_eq!(table.get(cx).map.len(), 0, "values die with their keys");
    });
}

/// A weak set forgets members that died; live members are found.
#[test]
fn weak_set_interning() {
    spangc::brand!(Intern);
    #[derive(Trace)]
    #[gc(brand = Intern)]
    struct Strings<'gc> {
        set: WeakSet<'gc, str, Intern>,
    }
    let heap = Heap::<Intern>::new(verify()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        fn hash(s: &str) -> u64 {
            s.bytes()
                .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
        }
        fn intern<'s>(
            cx: &'s spangc::Scope<Intern>,
            strings: &Root<Strings<'static>, Intern>,
            s: &str,
        ) -> Gc<'s, str, Intern> {
            let set = &strings.get(cx).set;
            set.find(hash(s), |m| m == s).unwrap_or_else(|| {
                let g = cx.alloc_str(s);
                set.insert(cx, hash(s), g);
                g
            })
        }
        let strings = cx.root(cx.alloc(Strings {
            set: WeakSet::new(),
        }));
        let kept = cx.root(intern(cx, &strings, "kept"));
        for i in 0..100 {
            intern(cx, &strings, &format!("temp{i}"));
        }
        let again = intern(cx, &strings, "kept");
        assert!(Gc::ptr_eq(again, kept.get(cx)));
        assert_eq!(strings.get(cx).set.len(), 101);
        cx.collect();
        assert_eq!(strings.get(cx).set.len(), 1);
        assert!(Gc::ptr_eq(intern(cx, &strings, "kept"), kept.get(cx)));
    });
}

/// Several threads add and remove finalizers and cleanups on their own
/// objects in shared spans while collections run: no record is lost,
/// doubled or run twice.
#[test]
fn specials_under_contention() {
    spangc::brand!(Contend);
    let heap = Heap::<Contend>::new(verify()).unwrap();
    let cleanups = Arc::new(AtomicUsize::new(0));
    let expected = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..4 {
            let (heap, cleanups, expected) = (heap.clone(), cleanups.clone(), expected.clone());
            s.spawn(move || {
                let mut m = heap.mutator();
                for round in 0..20 {
                    m.enter(|cx| {
                        for i in 0..200u64 {
                            let o = obj(cx, i);
                            cx.set_local_finalizer(o, |_, _| ()).unwrap();
                            if i % 2 == 0 {
                                assert!(cx.clear_finalizer(o));
                                assert!(!cx.clear_finalizer(o));
                            }
                            let c = cleanups.clone();
                            cx.add_cleanup(o, move || {
                                c.fetch_add(1, SeqCst);
                            });
                            expected.fetch_add(1, SeqCst);
                        }
                        if round % 5 == 0 {
                            cx.collect();
                        } else {
                            cx.safepoint();
                        }
                        cx.run_finalizers();
                    });
                }
                m.enter(|cx| {
                    cx.collect();
                    cx.run_finalizers();
                    cx.collect();
                });
            });
        }
    });
    heap.collect();
    heap.collect();
    heap.wait_finalizers();
    assert_eq!(cleanups.load(SeqCst), expected.load(SeqCst));
    assert_eq!(heap.stats().special_records, 0);
}
