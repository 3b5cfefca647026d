// A `Gc` cannot move into a `'static` thread: the thread could outlive the
// scope (and run across its safepoints).
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
        std::thread::spawn(move || println!("{}", leaf.value));
    });
}
