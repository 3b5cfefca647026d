// Rooting an object does not revive the `Gc` it was rooted from: writing
// into the object through that stale `Gc` after `safepoint()` is rejected.
use spangc::{Config, Gc, GcCell, Heap, Trace};

#[derive(Trace)]
struct Node<'gc> {
    value: u64,
    next: GcCell<Option<Gc<'gc, Node<'gc>>>>,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let parent = cx.alloc(Node {
            value: 1,
            next: GcCell::new(None),
        });
        let _root = cx.root(parent);
        cx.safepoint();
        let child = cx.alloc(Node {
            value: 2,
            next: GcCell::new(None),
        });
        parent.next.set(cx, Some(child));
    });
}
