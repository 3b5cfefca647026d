// A root of heap `A` cannot be opened with a scope of heap `B`.
use spangc::{Config, Heap, Trace};

spangc::brand!(A);
spangc::brand!(B);

#[derive(Trace)]
#[gc(brand = A)]
struct LeafA {
    value: u64,
}

fn main() {
    let heap_a = Heap::<A>::new(Config::default()).unwrap();
    let heap_b = Heap::<B>::new(Config::default()).unwrap();
    let (mut ma, mut mb) = (heap_a.mutator(), heap_b.mutator());
    let root = ma.enter(|cx_a| cx_a.root(cx_a.alloc(LeafA { value: 1 })));
    mb.enter(|cx_b| println!("{}", root.get(cx_b).value));
}
