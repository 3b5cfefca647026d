//! A `Root` of a `Send + Sync` object moves to another thread, which opens
//! it in its own mutator's scope. Meanwhile the first thread waits inside
//! `blocking`, so the other thread's collections do not wait for it.
use spangc::{Config, Gc, Heap, Root, Trace};

#[derive(Trace)]
struct Tree<'gc> {
    value: u64,
    left: Option<Gc<'gc, Tree<'gc>>>,
    right: Option<Gc<'gc, Tree<'gc>>>,
}

fn total(t: Gc<'_, Tree<'_>>) -> u64 {
    t.value + t.left.map_or(0, total) + t.right.map_or(0, total)
}

fn main() {
    let config = Config::builder().verify(true).build().unwrap();
    let heap: Heap = Heap::new(config).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let leaf = |v| Tree {
            value: v,
            left: None,
            right: None,
        };
        let l = cx.alloc(leaf(1));
        let r = cx.alloc(leaf(2));
        let tree: Root<Tree<'static>> = cx.root(cx.alloc(Tree {
            value: 3,
            left: Some(l),
            right: Some(r),
        }));
        let heap2 = heap.clone();
        let sum = cx.blocking(move || {
            std::thread::spawn(move || {
                let mut m2 = heap2.mutator();
                m2.enter(|cx2| {
                    cx2.collect();
                    total(tree.get(cx2))
                })
            })
            .join()
            .unwrap()
        });
        assert_eq!(sum, 6);
    });
    assert_eq!(heap.root_count(), 0);
}
