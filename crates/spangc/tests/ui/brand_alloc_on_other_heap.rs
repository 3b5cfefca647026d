// A type traced for brand `A` cannot be allocated in a heap of brand `B`.
use spangc::{Config, Heap, Trace};

spangc::brand!(A);
spangc::brand!(B);

#[derive(Trace)]
#[gc(brand = A)]
struct LeafA {
    value: u64,
}

fn main() {
    let heap_b = Heap::<B>::new(Config::default()).unwrap();
    let mut mb = heap_b.mutator();
    mb.enter(|cx_b| {
        let leaf = cx_b.alloc(LeafA { value: 1 });
        println!("{}", leaf.value);
    });
}
