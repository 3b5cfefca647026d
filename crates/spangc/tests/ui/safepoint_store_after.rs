// An unrooted `Gc` cannot be stored into a (rooted) object after
// `safepoint()`: its object may be gone.
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
        let root = cx.root(cx.alloc(Node {
            value: 1,
            next: GcCell::new(None),
        }));
        let orphan = cx.alloc(Node {
            value: 2,
            next: GcCell::new(None),
        });
        cx.safepoint();
        root.get(cx).next.set(cx, Some(orphan));
    });
}
