// `Root::get` brands the object with the scope borrow it is given, so the
// result cannot leave that scope either.
use spangc::{Config, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    let root = m.enter(|cx| cx.root(cx.alloc(Leaf { value: 1 })));
    let leaf = m.enter(|cx| root.get(cx));
    println!("{}", leaf.value);
}
