// A scoped thread holding a `Gc` keeps the scope borrowed until it is joined:
// the spawning thread cannot reach a safepoint meanwhile.
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
        std::thread::scope(|s| {
            s.spawn(move || println!("{}", leaf.value));
            cx.safepoint();
        });
    });
}
