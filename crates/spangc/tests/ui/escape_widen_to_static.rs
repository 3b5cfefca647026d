// A `Gc` cannot be widened to `'static` (it is covariant, like `&'s T`, not
// the other way).
use spangc::{Config, Gc, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn widen<'s>(leaf: Gc<'s, Leaf>) -> Gc<'static, Leaf> {
    leaf
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let leaf = widen(cx.alloc(Leaf { value: 1 }));
        println!("{}", leaf.value);
    });
}
