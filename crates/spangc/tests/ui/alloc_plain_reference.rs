// A plain reference cannot be allocated (it would outlive its referent once
// the object is rooted).
use spangc::{Config, Heap};

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    let local = 5u64;
    m.enter(|cx| {
        let boxed = cx.alloc(&local);
        println!("{}", **boxed);
    });
}
