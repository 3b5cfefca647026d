//! Rooting across safepoints: a rooted list survives collections at every
//! safepoint (`gc_stress`), and is re-read through its root after each.
use spangc::{Config, Gc, GcCell, Heap, Trace};

#[derive(Trace)]
struct Node<'gc> {
    value: u64,
    next: GcCell<Option<Gc<'gc, Node<'gc>>>>,
}

fn main() {
    let config = Config::builder()
        .verify(true)
        .gc_stress(true)
        .build()
        .unwrap();
    let heap: Heap = Heap::new(config).unwrap();
    let mut m = heap.mutator();
    let sum = m.enter(|cx| {
        let head = cx.root(cx.alloc(Node {
            value: 0,
            next: GcCell::new(None),
        }));
        for i in 1..=100 {
            // Prepend a node: read the head through the root, link, re-root.
            let old = head.get(cx);
            let node = cx.alloc(Node {
                value: i,
                next: GcCell::new(Some(old)),
            });
            head.set(cx, node);
            // Garbage that the collection below frees.
            cx.alloc(Node {
                value: 1000,
                next: GcCell::new(None),
            });
            cx.safepoint();
        }
        let mut sum = 0;
        let mut node = Some(head.get(cx));
        while let Some(n) = node {
            sum += n.value;
            node = n.next.get();
        }
        sum
    });
    assert_eq!(sum, 5050);
    assert!(heap.stats().gc_count >= 100);
}
