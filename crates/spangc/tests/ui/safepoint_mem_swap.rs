// Swapping the `Gc`s out of a rooted object into a local does not root them:
// the local is dead after `safepoint()`.
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
        let leaf = cx.alloc(Leaf { value: 1 });
        let root = cx.root(cx.alloc(Stack {
            items: GcRefCell::new(vec![leaf]),
        }));
        let mut local = Vec::new();
        std::mem::swap(&mut local, &mut *root.get(cx).items.borrow_mut(cx));
        cx.safepoint();
        println!("{}", local[0].value);
    });
}
