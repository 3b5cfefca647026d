// `GcRefCell::borrow_mut` with the scope of another heap is rejected.
use spangc::{Config, Gc, GcRefCell, Heap, Trace};

spangc::brand!(A);
spangc::brand!(B);

#[derive(Trace)]
#[gc(brand = A)]
struct LeafA {
    value: u64,
}

#[derive(Trace)]
#[gc(brand = A)]
struct StackA<'gc> {
    items: GcRefCell<Vec<Gc<'gc, LeafA, A>>>,
}

fn main() {
    let heap_a = Heap::<A>::new(Config::default()).unwrap();
    let heap_b = Heap::<B>::new(Config::default()).unwrap();
    let (mut ma, mut mb) = (heap_a.mutator(), heap_b.mutator());
    ma.enter(|cx_a| {
        let stack = cx_a.alloc(StackA {
            items: GcRefCell::new(Vec::new()),
        });
        let leaf = cx_a.alloc(LeafA { value: 1 });
        mb.enter(|cx_b| stack.items.borrow_mut(cx_b).push(leaf));
    });
}
