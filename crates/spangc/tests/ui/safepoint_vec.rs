// `Gc`s kept in a Rust `Vec` are as dead after `safepoint()` as a single one.
use spangc::{Config, Gc, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let leaves: Vec<Gc<Leaf>> = (0..3).map(|i| cx.alloc(Leaf { value: i })).collect();
        cx.safepoint();
        println!("{}", leaves[0].value);
    });
}
