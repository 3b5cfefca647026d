// `Gc::from_raw` is the only way to make a `Gc` from an address, and it is
// `unsafe`: safe code cannot forge a pointer to a freed object (or cast one
// to another type or a longer lifetime).
use spangc::{Config, Gc, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    let addr = m.enter(|cx| Gc::as_raw(cx.alloc(Leaf { value: 1 })));
    let forged: Gc<'static, Leaf> = Gc::from_raw(addr);
    println!("{}", forged.value);
}
