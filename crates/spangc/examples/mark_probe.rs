//! Mark-time probe: minimum mark time over repeated collections of a rooted
//! binary tree (robust to a busy machine).
use spangc::{Config, Gc, Heap, Scope, Trace};

#[derive(Trace)]
struct Node<'gc> {
    left: Option<Gc<'gc, Node<'gc>>>,
    right: Option<Gc<'gc, Node<'gc>>>,
}

fn make<'s>(cx: &'s Scope, d: u32) -> Gc<'s, Node<'s>> {
    if d == 0 {
        cx.alloc(Node {
            left: None,
            right: None,
        })
    } else {
        let l = make(cx, d - 1);
        let r = make(cx, d - 1);
        cx.alloc(Node {
            left: Some(l),
            right: Some(r),
        })
    }
}

fn main() {
    let depth: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(18);
    let heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let root = cx.root(make(cx, depth));
        let mut best = u64::MAX;
        for _ in 0..30 {
            cx.collect();
            best = best.min(heap.stats().mark_last_ns);
        }
        let n = heap.stats().objects_marked;
        println!(
            "depth {depth}: {n} objects, best mark {:.3} ms = {:.2} ns/object on {} threads",
            best as f64 / 1e6,
            best as f64 / n as f64,
            heap.stats().mark_threads
        );
        drop(root);
    });
}
