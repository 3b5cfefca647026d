//! The spangc API in one program: configuration, objects and cells, roots
//! and safepoints, strings and slices, weak references, finalizers, several
//! threads, stats. `cargo run -p spangc --example tour`.

use spangc::{Config, Gc, GcCell, GcRefCell, Heap, Scope, Trace, Weak};

/// A heap object: `'gc` is the scope borrow its pointers live for.
#[derive(Trace)]
struct Person<'gc> {
    name: Gc<'gc, str>,
    age: GcCell<u32>,
    friends: GcRefCell<Vec<Gc<'gc, Person<'gc>>>>,
}

fn person<'s>(cx: &'s Scope, name: &str, age: u32) -> Gc<'s, Person<'s>> {
    cx.alloc(Person {
        name: cx.alloc_str(name),
        age: GcCell::new(age),
        friends: GcRefCell::new(Vec::new()),
    })
}

fn main() {
    // Options come from the builder, else SPANGC_* variables, else defaults.
    let config = Config::builder()
        .gc_percent(Some(100))
        .build()
        .expect("valid config");
    let heap = Heap::new(config).expect("heap");
    let mut m = heap.mutator();

    let club = m.enter(|cx| {
        let ada = person(cx, "Ada", 36);
        let alan = person(cx, "Alan", 41);
        ada.friends.borrow_mut(cx).push(alan); // every write goes through a cell
        alan.age.set(cx, 42);

        // A weak reference does not keep its object alive.
        let stranger = person(cx, "Nobody", 0);
        let weak = Weak::new(cx, stranger);
        // A finalizer runs when its object becomes unreachable.
        cx.set_local_finalizer(alan, |_cx, p| println!("finalizing {}", p.name))
            .unwrap();

        // Roots keep objects alive across safepoints.
        let club = cx.root(ada);
        let weak_root = cx.root(cx.alloc(GcCell::new(Some(weak))));
        cx.collect(); // a safepoint: unrooted Gcs (alan, stranger) are unusable now

        let ada = club.get(cx);
        let friend = ada.friends.borrow()[0];
        println!(
            "{} ({}) is friends with {} ({})",
            ada.name,
            ada.age.get(),
            friend.name,
            friend.age.get()
        );
        let w = weak_root.get(cx).get().unwrap();
        println!(
            "the stranger is {}",
            if w.upgrade(cx).is_some() {
                "alive"
            } else {
                "gone"
            }
        );
        club
    });

    // Another thread, with its own mutator, on the same heap.
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut m = heap.mutator();
            m.enter(|cx| {
                let numbers = cx.alloc_slice_from_iter((0..1000u32).map(u64::from));
                let sum: u64 = numbers.iter().sum();
                println!("sum computed on another thread: {sum}");
            });
        });
    });

    // Drop Alan from the club: he becomes unreachable, his finalizer runs.
    m.enter(|cx| {
        club.get(cx).friends.borrow_mut(cx).clear();
        cx.collect();
        cx.run_finalizers();
    });

    drop(club);
    heap.release_memory(); // collect, then return free pages to the OS
    println!("{}", heap.stats());
    for t in heap.type_summary() {
        println!(
            "  {:>6} objects {:>8} bytes  {}",
            t.objects, t.bytes, t.name
        );
    }
}
