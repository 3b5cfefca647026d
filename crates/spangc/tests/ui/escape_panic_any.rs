// A `Gc` cannot leave the scope as a panic payload (`panic_any` needs
// `'static`).
use spangc::{Config, Gc, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        m.enter(|cx| std::panic::panic_any(cx.alloc(Leaf { value: 1 })))
    }));
    let leaf = caught.unwrap_err().downcast::<Gc<'static, Leaf>>().unwrap();
    println!("{}", leaf.value);
}
