// `&Scope` cannot go to another thread (`Scope` is `!Sync`): no allocation
// or rooting from a thread that is not the mutator's.
use spangc::{Config, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let shared = &*cx;
        std::thread::scope(|s| {
            s.spawn(move || shared.alloc(Leaf { value: 1 }).value);
        });
    });
}
