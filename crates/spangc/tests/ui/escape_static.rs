// A `Gc` cannot be stored in a `static` (it would need `'static`).
use spangc::{Config, Gc, Heap, Trace};
use std::sync::Mutex;

#[derive(Trace)]
struct Leaf {
    value: u64,
}

static SLOT: Mutex<Option<Gc<'static, Leaf>>> = Mutex::new(None);

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| *SLOT.lock().unwrap() = Some(cx.alloc(Leaf { value: 1 })));
    println!("{}", SLOT.lock().unwrap().unwrap().value);
}
