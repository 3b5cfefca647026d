// A `Gc` cannot be sent out of the scope through a channel created outside
// it.
use spangc::{Config, Gc, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    let (tx, rx) = std::sync::mpsc::channel();
    m.enter(|cx| tx.send(cx.alloc(Leaf { value: 1 })).unwrap());
    let leaf: Gc<Leaf> = rx.recv().unwrap();
    println!("{}", leaf.value);
}
