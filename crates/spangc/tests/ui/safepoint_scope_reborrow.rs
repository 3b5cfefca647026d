// A shared reborrow of the scope cannot be held across `safepoint()` (it
// would allocate and root with a pre-safepoint borrow).
use spangc::{Config, Heap, Scope, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let shared: &Scope = cx;
        cx.safepoint();
        let leaf = shared.alloc(Leaf { value: 1 });
        println!("{}", leaf.value);
    });
}
