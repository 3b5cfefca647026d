// A `RefMut` borrowed from a `GcRefCell` cannot be held across
// `safepoint()` (the marker would find the cell mutably borrowed).
use spangc::{Config, Gc, GcRefCell, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

#[derive(Trace)]
struct Stack<'gc> {
    items: GcRefCell<Vec<Gc<'gc, Leaf>>>,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let root = cx.root(cx.alloc(Stack {
            items: GcRefCell::new(Vec::new()),
        }));
        let stack = root.get(cx);
        let mut items = stack.items.borrow_mut(cx);
        cx.safepoint();
        items.clear();
    });
}
