// A `Gc` cannot be written into a variable that outlives the scope.
use spangc::{Config, Gc, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    let mut saved: Option<Gc<Leaf>> = None;
    m.enter(|cx| {
        saved = Some(cx.alloc(Leaf { value: 1 }));
    });
    println!("{}", saved.unwrap().value);
}
