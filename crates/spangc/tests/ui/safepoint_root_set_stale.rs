// `Root::set` cannot re-root a `Gc` that went stale at a safepoint.
use spangc::{Config, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let root = cx.root(cx.alloc(Leaf { value: 1 }));
        let other = cx.alloc(Leaf { value: 2 });
        cx.safepoint();
        root.set(cx, other);
        println!("{}", root.get(cx).value);
    });
}
