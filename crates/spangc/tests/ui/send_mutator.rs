// A `Mutator` belongs to its thread (its allocation cache and its place in
// the stop-the-world protocol): it cannot be sent to another.
use spangc::{Config, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    std::thread::spawn(move || m.enter(|cx| cx.alloc(Leaf { value: 1 }).value))
        .join()
        .unwrap();
}
