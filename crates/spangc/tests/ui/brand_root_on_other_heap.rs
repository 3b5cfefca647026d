// A pointer into heap `A` cannot be rooted in heap `B`'s root table.
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
    ma.enter(|cx_a| {
        let leaf = cx_a.alloc(LeafA { value: 1 });
        let _root = mb.enter(|cx_b| cx_b.root(leaf));
    });
}
