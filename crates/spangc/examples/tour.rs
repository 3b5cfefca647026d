//! The spangc API in one program: configuration with a memory limit,
//! objects and cells, trailing arrays, roots and safepoints, weak
//! references, finalizers, external memory, fallible allocation, blocking
//! calls, several threads, stats. `cargo run -p spangc --example tour`.

use spangc::{Config, Gc, GcCell, GcRefCell, Heap, Scope, Trace, Weak};

/// A heap object: `'gc` is the scope borrow its pointers live for.
#[derive(Trace)]
struct Person<'gc> {
    name: Gc<'gc, str>,
    age: GcCell<u32>,
    friends: GcRefCell<Vec<Gc<'gc, Person<'gc>>>>,
}

fn person<'s>(cx: &'s Scope, name: &str, age: u32) -> Gc<'s, Person<'s>> {
    let (name, age, friends) = (cx.alloc_str(name), GcCell::new(age), GcRefCell::new(vec![]));
    cx.alloc(Person { name, age, friends })
}

fn main() {
    // Options come from the builder, else SPANGC_* variables, else defaults.
    let config = Config::builder().memory_limit(Some(16 << 20)).build();
    let heap = Heap::new(config.expect("valid config")).expect("heap");
    let mut m = heap.mutator();

    let club = m.enter(|cx| {
        let ada = person(cx, "Ada", 36);
        let alan = person(cx, "Alan", 41);
        ada.friends.borrow_mut(cx).push(alan); // every write goes through a cell
        alan.age.set(cx, 42);
        // Alan owns 1 MiB outside the heap (say, a buffer): report it, and
        // report its release in a finalizer, which runs once he is unreachable.
        cx.add_external(1 << 20);
        let bye = |cx: &Scope, p: Gc<Person>| {
            cx.sub_external(1 << 20);
            println!("finalizing {}", p.name);
        };
        cx.set_local_finalizer(alan, bye).unwrap();
        // A head and a run of elements in one object.
        let scores = cx.alloc_with_tail(cx.alloc_str("scores"), [90u8, 85, 77]);
        // A weak reference does not keep its object alive.
        let weak = Weak::new(cx, person(cx, "Nobody", 0));

        // Roots keep objects alive across safepoints.
        let (club, scores) = (cx.root(ada), cx.root(scores));
        let stranger = cx.root(cx.alloc(weak)); // a heap object holding the Weak
        for i in 0..1000u64 {
            cx.alloc([i; 1024]); // 8 KiB of garbage per step: collections happen
            cx.safepoint(); // an interpreter loop's safepoint: the heap may collect here
        }
        // Unrooted Gcs (`ada`, `alan`) are unusable after a safepoint; using one
        // is a compile error. Roots give the objects back.
        let ada = club.get(cx);
        let (friend, scores) = (ada.friends.borrow()[0], scores.get(cx));
        let (name, age) = (&friend.name, friend.age.get());
        println!("{} is friends with {name} ({age})", ada.name);
        println!("{}: {:?}", scores.head, &scores.tail);
        let alive = stranger.get(cx).upgrade(cx).is_some();
        println!("the stranger is {}", if alive { "alive" } else { "gone" });

        // Without a safepoint nothing is collected, so allocating on hits the
        // memory limit: `try_alloc` returns an error holding the value.
        let err = (0u64..)
            .find_map(|i| cx.try_alloc([i; 1024]).err())
            .unwrap();
        println!("{err}");
        cx.collect(); // the blocks were garbage
        assert!(cx.try_alloc(err.into_value()).is_ok());

        // Another thread with its own mutator on the same heap. Waiting for it
        // inside a scope goes through `blocking`, so it can collect meanwhile.
        let sum: u32 = cx.blocking(|| {
            let worker = || {
                heap.mutator()
                    .enter(|cx| cx.alloc_slice_from_iter(0..1000).iter().sum())
            };
            std::thread::scope(|s| s.spawn(worker).join().unwrap())
        });
        println!("sum computed on another thread: {sum}");
        club
    });

    // Drop Alan from the club: he becomes unreachable, his finalizer runs.
    m.enter(|cx| {
        club.get(cx).friends.borrow_mut(cx).clear();
        cx.collect();
        cx.run_finalizers();
        for t in cx.heap().type_summary() {
            println!("{:>6} objects {:>8} bytes  {}", t.objects, t.bytes, t.name);
        }
    });

    drop(club);
    heap.release_memory(); // collect, then return free pages to the OS
    println!("{}", heap.stats());
}
