//! Differential stress test with a mock embedder (issue 5).
//!
//! Several mutator threads each own a random graph of nodes (ids tracked in
//! a side model), mutate it, and reach safepoints where collections happen
//! (triggered by any thread's allocation). Each node carries a drop token
//! that records its id when the collector frees it. After every safepoint a
//! thread checks its part of the model against what was freed:
//!
//! * no node reachable from the thread's roots was ever freed;
//! * every node that became unreachable before collection `g` started is
//!   freed once collection `g + 1` has begun (collection `g` found it dead,
//!   and the sweep of its result finishes before the next collection);
//! * each node is freed at most once.
//!
//! The heap runs in verify mode, so every collection also checks the
//! heap's own invariants. Size: `SPANGC_STRESS_SCALE` (default 1, a few
//! seconds; 50 is a soak run).

use spangc::{Config, Gc, GcRefCell, Heap, Scope, Trace};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

spangc::brand!(Stress);

/// Ids of freed nodes, with how often each was freed.
static FREED: Mutex<Option<HashMap<u64, u32>>> = Mutex::new(None);

/// Records its id in `FREED` when the collector drops the node.
struct DropToken(u64);

impl Drop for DropToken {
    fn drop(&mut self) {
        *FREED
            .lock()
            .unwrap()
            .get_or_insert_with(HashMap::new)
            .entry(self.0)
            .or_insert(0) += 1;
    }
}

#[derive(Trace)]
#[gc(brand = Stress)]
struct Node<'gc> {
    #[gc(skip)]
    token: DropToken,
    payload: Vec<u64>,
    edges: GcRefCell<Vec<Gc<'gc, Node<'gc>, Stress>>>,
}

/// The thread's model: node id -> ids it points to, and the root ids.
#[derive(Default)]
struct Model {
    edges: HashMap<u64, Vec<u64>>,
    roots: Vec<u64>,
    /// Ids that became unreachable, with the gc_count when they did.
    dead_since: HashMap<u64, u64>,
}

impl Model {
    fn reachable(&self) -> HashSet<u64> {
        let mut seen = HashSet::new();
        let mut stack = self.roots.clone();
        while let Some(id) = stack.pop() {
            if seen.insert(id) {
                stack.extend(self.edges[&id].iter().copied());
            }
        }
        seen
    }

    /// Forgets nodes no longer reachable, stamping when they died.
    fn prune(&mut self, gc_count: u64) {
        let live = self.reachable();
        let dead: Vec<u64> = self
            .edges
            .keys()
            .filter(|id| !live.contains(id))
            .copied()
            .collect();
        for id in dead {
            self.edges.remove(&id);
            self.dead_since.insert(id, gc_count);
        }
    }
}

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn scale() -> u64 {
    std::env::var("SPANGC_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn check(model: &Model, gc_count: u64) {
    let freed = FREED.lock().unwrap();
    let freed = freed.as_ref();
    let times = |id: u64| freed.and_then(|f| f.get(&id)).copied().unwrap_or(0);
    for id in model.reachable() {
        assert_eq!(times(id), 0, "reachable node {id} was freed");
    }
    for (&id, &since) in &model.dead_since {
        let t = times(id);
        assert!(t <= 1, "node {id} freed {t} times");
        if gc_count >= since + 2 {
            assert_eq!(
                t, 1,
                "node {id} dead since gc {since}, not freed at gc {gc_count}"
            );
        }
    }
}

/// One mutator thread's life: build, mutate and check its graph.
fn mutator_thread(heap: Heap<Stress>, thread: u64, steps: u64) {
    let mut m = heap.mutator();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (thread + 1));
    let mut model = Model::default();
    let mut next_id = thread << 40;
    // The thread's roots: one per root id, parallel to model.roots.
    let mut roots: Vec<spangc::Root<Node<'static>, Stress>> = Vec::new();
    m.enter(|cx| {
        for step in 0..steps {
            // Find nodes by id through the roots (the graph is small).
            let mut by_id: HashMap<u64, Gc<'_, Node<'_>, Stress>> = HashMap::new();
            let mut stack: Vec<_> = roots.iter().map(|r| r.get(cx)).collect();
            while let Some(n) = stack.pop() {
                if by_id.insert(n.token.0, n).is_none() {
                    stack.extend(n.edges.borrow().iter().copied());
                }
            }
            let ids: Vec<u64> = by_id.keys().copied().collect();
            for _ in 0..20 {
                match rng.below(10) {
                    // New node, linked from a random existing one or rooted.
                    0..=3 => {
                        let id = next_id;
                        next_id += 1;
                        let n = alloc_node(cx, id, rng.below(40));
                        model.edges.insert(id, Vec::new());
                        if ids.is_empty() || rng.below(4) == 0 {
                            roots.push(cx.root(n));
                            model.roots.push(id);
                        } else {
                            let from = ids[rng.below(ids.len())];
                            by_id[&from].edges.borrow_mut(cx).push(n);
                            model.edges.get_mut(&from).unwrap().push(id);
                        }
                        by_id.insert(id, n);
                    }
                    // New edge between existing nodes (cycles welcome).
                    4..=6 if !ids.is_empty() => {
                        let (a, b) = (ids[rng.below(ids.len())], ids[rng.below(ids.len())]);
                        by_id[&a].edges.borrow_mut(cx).push(by_id[&b]);
                        model.edges.get_mut(&a).unwrap().push(b);
                    }
                    // Drop an edge.
                    7 | 8 if !ids.is_empty() => {
                        let a = ids[rng.below(ids.len())];
                        let mut e = by_id[&a].edges.borrow_mut(cx);
                        if !e.is_empty() {
                            let i = rng.below(e.len());
                            e.remove(i);
                            model.edges.get_mut(&a).unwrap().remove(i);
                        }
                    }
                    // Drop a root.
                    _ if !roots.is_empty() => {
                        let i = rng.below(roots.len());
                        roots.swap_remove(i);
                        model.roots.swap_remove(i);
                    }
                    _ => {}
                }
            }
            // Garbage that was never linked.
            for _ in 0..rng.below(50) {
                let id = next_id;
                next_id += 1;
                alloc_node(cx, id, 8);
                model.dead_since.insert(id, heap.stats().gc_count);
            }
            model.prune(heap.stats().gc_count);
            if step % 16 == 0 {
                cx.collect();
            } else {
                cx.safepoint();
            }
            check(&model, heap.stats().gc_count);
        }
        // Drop everything; two collections later every node is freed.
        roots.clear();
        model.roots.clear();
        model.prune(heap.stats().gc_count);
        cx.collect();
        cx.collect();
        check(&model, heap.stats().gc_count);
    });
}

fn alloc_node<'s>(cx: &'s Scope<Stress>, id: u64, payload: usize) -> Gc<'s, Node<'s>, Stress> {
    cx.alloc(Node {
        token: DropToken(id),
        payload: vec![id; payload],
        edges: GcRefCell::new(Vec::new()),
    })
}

#[test]
fn reachable_objects_survive_and_unreachable_ones_die() {
    let heap = Heap::<Stress>::new(
        Config::builder()
            .verify(true)
            .gc_percent(Some(10))
            .build()
            .unwrap(),
    )
    .unwrap();
    let threads = 3;
    let steps = 150 * scale();
    std::thread::scope(|s| {
        for t in 0..threads {
            let heap = heap.clone();
            s.spawn(move || mutator_thread(heap, t, steps));
        }
    });
    let stats = heap.stats();
    // Each thread asked for steps / 16 collections; requests made while
    // another thread's collection runs are covered by it.
    assert!(stats.gc_count >= steps / 16, "{stats}");
    assert_eq!(stats.destructor_panics, 0);
}
