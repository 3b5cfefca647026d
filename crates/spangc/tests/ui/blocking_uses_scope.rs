// The scope itself cannot be used inside `blocking` (no allocation, rooting
// or `Root::get` while parked).
use spangc::{Config, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let value = cx.blocking(|| cx.alloc(Leaf { value: 1 }).value);
        println!("{value}");
    });
}
