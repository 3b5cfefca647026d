// A closure that reaches a safepoint when called later holds the scope
// mutably from its creation: no `Gc` can be live across it.
use spangc::{Config, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let leaf = cx.alloc(Leaf { value: 1 });
        let mut later = || cx.safepoint();
        later();
        println!("{}", leaf.value);
    });
}
