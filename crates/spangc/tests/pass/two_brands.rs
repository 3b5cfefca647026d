//! Two heaps side by side, each with its own brand, used from nested scopes
//! on one thread: each keeps its own objects and roots, and each collects
//! independently of the other.
use spangc::{Config, Gc, GcCell, Heap, Trace};

spangc::brand!(Left);
spangc::brand!(Right);

#[derive(Trace)]
#[gc(brand = Left)]
struct LeftNode<'gc> {
    value: u64,
    next: GcCell<Option<Gc<'gc, LeftNode<'gc>, Left>>>,
}

#[derive(Trace)]
#[gc(brand = Right)]
struct RightNode<'gc> {
    name: String,
    next: GcCell<Option<Gc<'gc, RightNode<'gc>, Right>>>,
}

fn main() {
    let config = Config::builder().verify(true).build().unwrap();
    let left = Heap::<Left>::new(config.clone()).unwrap();
    let right = Heap::<Right>::new(config).unwrap();
    let (mut ml, mut mr) = (left.mutator(), right.mutator());
    ml.enter(|cl| {
        let l = cl.alloc(LeftNode {
            value: 1,
            next: GcCell::new(None),
        });
        l.next.set(
            cl,
            Some(cl.alloc(LeftNode {
                value: 2,
                next: GcCell::new(None),
            })),
        );
        let lroot = cl.root(l);
        mr.enter(|cr| {
            let r = cr.alloc(RightNode {
                name: "r".into(),
                next: GcCell::new(None),
            });
            let rroot = cr.root(r);
            // Collecting one heap leaves the other's pointers usable.
            cr.collect();
            assert_eq!(l.next.get().unwrap().value, 2);
            assert_eq!(rroot.get(cr).name, "r");
        });
        cl.collect();
        assert_eq!(lroot.get(cl).next.get().unwrap().value, 2);
    });
    assert_eq!(left.stats().gc_count, 1);
    assert_eq!(right.stats().gc_count, 1);
}
