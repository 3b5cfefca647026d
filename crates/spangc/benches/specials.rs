//! Costs of special records (issue 6): attaching a finalizer, making and
//! upgrading weak references, ephemeron lookups, and the sweep cost of
//! spans whose objects have specials against spans whose objects have none.
//! Runs as `cargo bench -p spangc --bench specials`; prints ns per
//! operation (best of 5 rounds).

use spangc::{Config, EphemeronMap, Gc, Heap, Trace, Weak};
use std::time::Instant;

spangc::brand!(Bench);

#[derive(Trace)]
#[gc(brand = Bench)]
struct Obj {
    value: u64,
}

#[derive(Trace)]
#[gc(brand = Bench)]
struct Table<'gc> {
    map: EphemeronMap<'gc, Obj, u64, Bench>,
    keys: Vec<Gc<'gc, Obj, Bench>>,
    weaks: Vec<Weak<'gc, Obj, Bench>>,
}

const N: usize = 100_000;

fn best_of(rounds: usize, mut f: impl FnMut() -> f64) -> f64 {
    (0..rounds).map(|_| f()).fold(f64::INFINITY, f64::min)
}

fn main() {
    let heap = Heap::<Bench>::new(
        Config::builder()
            .gc_percent(None)
            .background_sweep(false)
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut m = heap.mutator();
    println!("special records, {N} objects per round, best of 5 (ns per operation)");

    let set_finalizer = best_of(5, || {
        m.enter(|cx| {
            let objs: Vec<_> = (0..N as u64).map(|v| cx.alloc(Obj { value: v })).collect();
            let t = Instant::now();
            for &o in &objs {
                cx.set_local_finalizer(o, |_, _| ()).unwrap();
            }
            let ns = t.elapsed().as_nanos() as f64 / N as f64;
            for &o in &objs {
                cx.clear_finalizer(o);
            }
            ns
        })
    });
    println!("set_finalizer        {set_finalizer:8.1}");

    let (weak_new, weak_upgrade, eph_get) = m.enter(|cx| {
        let keys: Vec<_> = (0..N as u64).map(|v| cx.alloc(Obj { value: v })).collect();
        let t = Instant::now();
        let weaks: Vec<_> = keys.iter().map(|&k| Weak::new(cx, k)).collect();
        let weak_new = t.elapsed().as_nanos() as f64 / N as f64;
        let table = cx.alloc(Table {
            map: EphemeronMap::new(),
            keys: keys.clone(),
            weaks,
        });
        for (i, &k) in keys.iter().enumerate() {
            table.map.insert(cx, k, i as u64);
        }
        let root = cx.root(table);
        cx.collect(); // upgrades now see swept spans
        let table = root.get(cx);
        let upgrade = best_of(5, || {
            let t = Instant::now();
            let mut sum = 0;
            for w in &table.weaks {
                sum += w.upgrade(cx).map_or(0, |o| o.value);
            }
            std::hint::black_box(sum);
            t.elapsed().as_nanos() as f64 / N as f64
        });
        let get = best_of(5, || {
            let t = Instant::now();
            let mut sum = 0;
            for &k in &table.keys {
                sum += *table.map.get(k).unwrap();
            }
            std::hint::black_box(sum);
            t.elapsed().as_nanos() as f64 / N as f64
        });
        (weak_new, upgrade, get)
    });
    println!("Weak::new            {weak_new:8.1}");
    println!("Weak::upgrade        {weak_upgrade:8.1}");
    println!("ephemeron get        {eph_get:8.1}");

    // Sweep cost: N dead objects in spans without specials, then N dead
    // objects each with a cleanup (the cheapest special that fires).
    for (label, with_specials) in [("without specials", false), ("with cleanups", true)] {
        let ns = best_of(5, || {
            m.enter(|cx| {
                for v in 0..N as u64 {
                    let o = cx.alloc(Obj { value: v });
                    if with_specials {
                        cx.add_cleanup(o, || ());
                    }
                }
                // `collect` finds them dead and finishes the sweep before it
                // returns; only the sweep's time is counted.
                let before = heap.stats().sweep_finish_ns;
                cx.collect();
                (heap.stats().sweep_finish_ns - before) as f64 / N as f64
            })
        });
        println!("sweep, {label:<17}{ns:8.1} per dead object");
    }
    heap.wait_finalizers();
}
