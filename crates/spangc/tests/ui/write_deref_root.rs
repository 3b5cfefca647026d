// A `Root` has no `Deref` (it would expose the brand-erased `'static` type):
// only `Root::get` with a scope reaches the object.
use spangc::{Config, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    let root = m.enter(|cx| cx.root(cx.alloc(Leaf { value: 1 })));
    let leaf: &Leaf = &*root;
    println!("{}", leaf.value);
}
