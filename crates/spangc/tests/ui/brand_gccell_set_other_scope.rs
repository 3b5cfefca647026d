// `GcCell::set` with the scope of another heap is rejected: the value must
// be `Trace` for the scope's brand.
use spangc::{Config, Gc, GcCell, Heap, Trace};

spangc::brand!(A);
spangc::brand!(B);

#[derive(Trace)]
#[gc(brand = A)]
struct NodeA<'gc> {
    value: u64,
    next: GcCell<Option<Gc<'gc, NodeA<'gc>, A>>>,
}

fn main() {
    let heap_a = Heap::<A>::new(Config::default()).unwrap();
    let heap_b = Heap::<B>::new(Config::default()).unwrap();
    let (mut ma, mut mb) = (heap_a.mutator(), heap_b.mutator());
    ma.enter(|cx_a| {
        let head = cx_a.alloc(NodeA {
            value: 1,
            next: GcCell::new(None),
        });
        let tail = cx_a.alloc(NodeA {
            value: 2,
            next: GcCell::new(None),
        });
        mb.enter(|cx_b| head.next.set(cx_b, Some(tail)));
    });
}
