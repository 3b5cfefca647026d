// An object of heap brand `B` cannot hold a pointer into a heap of brand `A`:
// `Gc<_, _, A>` implements `Trace<A>` only, so B's collector could never
// trace (or be asked to keep alive) A's object.
use spangc::{Config, Gc, GcCell, Heap, Trace};

spangc::brand!(A);
spangc::brand!(B);

#[derive(Trace)]
#[gc(brand = A)]
struct LeafA {
    value: u64,
}

#[derive(Trace)]
#[gc(brand = B)]
struct HolderB<'gc> {
    foreign: GcCell<Option<Gc<'gc, LeafA, A>>>,
}

fn main() {
    let heap_a = Heap::<A>::new(Config::default()).unwrap();
    let heap_b = Heap::<B>::new(Config::default()).unwrap();
    let (mut ma, mut mb) = (heap_a.mutator(), heap_b.mutator());
    ma.enter(|cx_a| {
        mb.enter(|cx_b| {
            let holder = cx_b.alloc(HolderB {
                foreign: GcCell::new(None),
            });
            holder
                .foreign
                .set(cx_a, Some(cx_a.alloc(LeafA { value: 1 })));
        })
    });
}
