// A `Gc` cannot be the return value of `enter`: the closure is generic over
// the scope borrow, so its result cannot mention it.
use spangc::{Config, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    let leaf = m.enter(|cx| cx.alloc(Leaf { value: 1 }));
    println!("{}", leaf.value);
}
