// A root of heap `A` cannot be re-pointed with a scope of heap `B`.
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
        let root = cx_a.root(cx_a.alloc(LeafA { value: 1 }));
        let other = cx_a.alloc(LeafA { value: 2 });
        mb.enter(|cx_b| root.set(cx_b, other));
    });
}
