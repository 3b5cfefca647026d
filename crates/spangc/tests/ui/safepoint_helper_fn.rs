// A function taking `&mut Scope` may collect, so no `Gc` survives a call to
// it.
use spangc::{Config, Heap, Scope, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn step(cx: &mut Scope) {
    cx.safepoint();
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let leaf = cx.alloc(Leaf { value: 1 });
        step(cx);
        println!("{}", leaf.value);
    });
}
