// Brand laundering: an object allocated as `Node<'static>` inside a scope
// would hand out `Gc<'static, _>`s from its fields. `alloc` requires the
// value to be branded with the current scope borrow exactly, so the result
// cannot be typed `Gc<_, Node<'static>>`. (A covariant `Node<'static>`
// value may still be passed: it is then allocated as a `Node<'s>`.)
use spangc::{Config, Gc, Heap, Trace};

#[derive(Trace)]
struct Node<'gc> {
    value: u64,
    next: Option<Gc<'gc, Node<'gc>>>,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let node: Gc<Node<'static>> = cx.alloc(Node {
            value: 1,
            next: None,
        });
        let escaped: Option<Gc<'static, Node<'static>>> = node.next;
        std::thread::spawn(move || escaped.map(|n| n.value));
    });
}
