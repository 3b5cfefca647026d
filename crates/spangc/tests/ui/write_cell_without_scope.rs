// Every cell write takes the scope (the write-barrier hook): `GcCell::set`
// without it does not compile.
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
        let head = cx.alloc(Node {
            value: 1,
            next: GcCell::new(None),
        });
        let tail = cx.alloc(Node {
            value: 2,
            next: GcCell::new(None),
        });
        head.next.set(Some(tail));
    });
}
