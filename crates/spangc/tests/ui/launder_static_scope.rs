// Every `Gc<'static, _>` would need a `&'static Scope`, which `enter` never
// gives: its closure is generic over the scope borrow.
use spangc::{Config, Gc, Heap, Scope, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn alloc_forever(cx: &'static Scope) -> Gc<'static, Leaf> {
    cx.alloc(Leaf { value: 1 })
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let leaf = alloc_forever(cx);
        println!("{}", leaf.value);
    });
}
