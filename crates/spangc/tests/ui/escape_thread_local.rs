// A `Gc` cannot be parked in a thread-local (it would need `'static`).
use spangc::{Config, Gc, Heap, Trace};
use std::cell::Cell;

#[derive(Trace)]
struct Leaf {
    value: u64,
}

thread_local! {
    static SLOT: Cell<Option<Gc<'static, Leaf>>> = const { Cell::new(None) };
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| SLOT.with(|slot| slot.set(Some(cx.alloc(Leaf { value: 1 })))));
    SLOT.with(|slot| println!("{}", slot.get().unwrap().value));
}
