//! The intended way to continue after a safepoint: every `Gc` from before it
//! is dead, so the program re-reads what it needs through a root, including
//! objects reached through the rooted one's fields.
use spangc::{Config, Gc, GcCell, GcRefCell, Heap, Root, Scope, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

#[derive(Trace)]
struct Parent<'gc> {
    child: GcCell<Option<Gc<'gc, Leaf>>>,
    log: GcRefCell<Vec<Gc<'gc, str>>>,
}

fn child_value(cx: &Scope, root: &Root<Parent<'static>>) -> u64 {
    root.get(cx).child.get().map_or(0, |c| c.value)
}

fn main() {
    let config = Config::builder()
        .verify(true)
        .gc_stress(true)
        .build()
        .unwrap();
    let heap: Heap = Heap::new(config).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let parent = cx.alloc(Parent {
            child: GcCell::new(None),
            log: GcRefCell::new(Vec::new()),
        });
        parent.child.set(cx, Some(cx.alloc(Leaf { value: 7 })));
        let root = cx.root(parent);
        cx.safepoint();
        assert_eq!(child_value(cx, &root), 7);

        // Write through the re-read root, collect, read again.
        let p = root.get(cx);
        p.log.borrow_mut(cx).push(cx.alloc_str("first"));
        p.child.set(cx, Some(cx.alloc(Leaf { value: 8 })));
        cx.collect();
        let p = root.get(cx);
        assert_eq!(p.child.get().unwrap().value, 8);
        assert_eq!(&*p.log.borrow()[0], "first");

        // `safepoint_requested` polls without ending any borrow.
        let _ = cx.safepoint_requested();
        assert_eq!(root.get(cx).child.get().unwrap().value, 8);
    });
}
