// No `Gc` can be used inside `blocking`: a collection may run meanwhile.
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
        let doubled = cx.blocking(|| leaf.value * 2);
        println!("{doubled}");
    });
}
