// A `Gc` is `Send` only when its object is `Sync` (like `&T`): an object
// with a cell cannot be reached from another thread, even a scoped one.
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
        let node = cx.alloc(Node {
            value: 1,
            next: GcCell::new(None),
        });
        std::thread::scope(|s| {
            s.spawn(move || println!("{}", node.next.get().is_none()));
        });
    });
}
