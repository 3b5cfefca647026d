// A `Gc` cannot be captured by a `'static` closure (a callback registered
// for later).
use spangc::{Config, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn on_exit(callback: impl Fn() -> u64 + 'static) {
    std::mem::forget(Box::new(callback));
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let leaf = cx.alloc(Leaf { value: 1 });
        on_exit(move || leaf.value);
    });
}
