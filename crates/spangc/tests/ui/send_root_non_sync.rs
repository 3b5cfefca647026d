// A `Root` is `Send` only when its object is `Send + Sync`: a root of an
// object with a cell stays on its thread.
use spangc::{Config, Gc, GcCell, Heap, Trace};

#[derive(Trace)]
struct Node<'gc> {
    value: u64,
    next: GcCell<Option<Gc<'gc, Node<'gc>>>>,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    let root = m.enter(|cx| {
        cx.root(cx.alloc(Node {
            value: 1,
            next: GcCell::new(None),
        }))
    });
    std::thread::spawn(move || {
        let mut m2 = heap.mutator();
        m2.enter(|cx| root.get(cx).next.set(cx, None));
    })
    .join()
    .unwrap();
}
