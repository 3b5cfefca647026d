// A `&T` taken from a `Gc` (here with `Gc::get`, which lends for the whole
// scope borrow) cannot be used after `safepoint()` either.
use spangc::{Config, Gc, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let leaf: &Leaf = Gc::get(cx.alloc(Leaf { value: 1 }));
        cx.safepoint();
        println!("{}", leaf.value);
    });
}
