// `Box::leak` cannot make a `Gc` live forever: the leaked reference is only
// as long as the `Gc` inside, which is the scope borrow.
use spangc::{Config, Gc, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn keep_forever(leaf: &'static Gc<'static, Leaf>) {
    std::thread::spawn(move || println!("{}", leaf.value));
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let leaked = Box::leak(Box::new(cx.alloc(Leaf { value: 1 })));
        keep_forever(leaked);
    });
}
