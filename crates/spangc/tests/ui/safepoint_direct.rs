// A `Gc` cannot be used after `safepoint()`: it borrows the scope, which the
// safepoint takes mutably.
use spangc::{Config, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let leaf = cx.alloc(Leaf { value: 1 });
        cx.safepoint();
        println!("{}", leaf.value);
    });
}
