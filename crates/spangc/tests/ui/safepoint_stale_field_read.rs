// A `Gc` read out of a field of a rooted object is unrooted itself: after
// `safepoint()` it is dead (re-read it through the root instead).
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
        head.next.set(cx, Some(tail));
        let root = cx.root(head);
        let second = root.get(cx).next.get().unwrap();
        cx.safepoint();
        println!("{}", second.value);
    });
}
