// `GcRefCell::borrow` gives shared access only; mutation needs
// `borrow_mut(cx)`.
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
        let stack = cx.alloc(Stack {
            items: GcRefCell::new(Vec::new()),
        });
        stack.items.borrow().push(cx.alloc(Leaf { value: 1 }));
    });
}
