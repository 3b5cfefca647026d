//! Mark throughput: one and two mark threads on a large heap of linked
//! objects (issue 5), plus pause and mark time per cycle.
//!
//! Builds `SPANGC_BENCH_HEAP_MIB` (default 1024) MiB of 64-byte nodes, each
//! pointing to four others, in two shapes: a *tree* (children allocated
//! next to their parent, the friendliest layout) and a *random graph*
//! (edges to uniformly random nodes, the hardest). Then it collects
//! several times with each mark-thread count, alternating on the one heap,
//! and prints the best and median mark time, mark throughput (GB/s and ns
//! per object), pause, and the median of each round's one-thread over
//! two-thread time. `SPANGC_BENCH_SHAPES` (default `tree,graph`) picks
//! the shapes.
//! Runs as `cargo bench -p spangc --bench mark`.

use spangc::{Config, Gc, GcCell, Heap, Root, Scope, Trace};

spangc::brand!(One);

/// An edge that may be empty.
type Edge<'gc, B> = GcCell<Option<Gc<'gc, Node<'gc, B>, B>>>;

#[derive(Trace)]
#[gc(brand = B)]
struct Node<'gc, B: spangc::Brand> {
    edges: [Edge<'gc, B>; 4],
    payload: [u64; 4],
}

#[derive(Trace)]
#[gc(brand = B)]
struct Table<'gc, B: spangc::Brand> {
    nodes: Vec<Gc<'gc, Node<'gc, B>, B>>,
}

fn node<'s, B: spangc::Brand>(cx: &'s Scope<B>, i: u64) -> Gc<'s, Node<'s, B>, B> {
    cx.alloc(Node {
        edges: Default::default(),
        payload: [i; 4],
    })
}

/// A 4-ary tree of `n` nodes in depth-first allocation order.
fn tree<'s, B: spangc::Brand>(cx: &'s Scope<B>, n: u64) -> Gc<'s, Node<'s, B>, B> {
    let root = node(cx, 0);
    let mut stack = vec![(root, n - 1)];
    let mut id = 1;
    while let Some((parent, below)) = stack.pop() {
        let per = below / 4;
        let mut extra = below % 4;
        for e in &parent.edges {
            let size = per + u64::from(extra > 0);
            extra = extra.saturating_sub(1);
            if size == 0 {
                continue;
            }
            let child = node(cx, id);
            id += 1;
            e.set(cx, Some(child));
            stack.push((child, size - 1));
        }
    }
    root
}

/// `n` nodes with four edges each to uniformly random nodes, held by a
/// table (so every node is reachable).
fn graph<'s, B: spangc::Brand>(cx: &'s Scope<B>, n: u64) -> Gc<'s, Table<'s, B>, B> {
    let nodes: Vec<_> = (0..n).map(|i| node(cx, i)).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for n in &nodes {
        for e in &n.edges {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            e.set(cx, Some(nodes[(x % nodes.len() as u64) as usize]));
        }
    }
    cx.alloc(Table { nodes })
}

/// One thread count's figures over the rounds.
struct Figures {
    best_ns: u64,
    median_ns: u64,
    pause_ns: u64,
}

impl Figures {
    fn of(mut marks: Vec<u64>, mut pauses: Vec<u64>) -> Figures {
        marks.sort_unstable();
        pauses.sort_unstable();
        Figures {
            best_ns: marks[0],
            median_ns: marks[marks.len() / 2],
            pause_ns: pauses[pauses.len() / 2],
        }
    }
}

/// What one shape measured: each thread count's figures, the heap marked,
/// and the median over the rounds of one thread's time over two threads'.
struct Measured {
    one: Figures,
    two: Figures,
    objects: u64,
    bytes: usize,
    paired: f64,
}

/// Collections per thread count.
const ROUNDS: usize = 7;

/// Builds the shape on one heap with two mark threads, then collects
/// [`ROUNDS`] times with one thread and with two, alternating
/// (`Heap::set_mark_threads`): the two thread counts mark the same objects
/// on the same pages, seconds apart, so neither where the pages landed nor
/// a drift of the machine between two separate runs enters the ratio.
fn measure(shape: &str, n: u64) -> Measured {
    let heap = Heap::<One>::new(
        Config::builder()
            .mark_threads(2)
            .gc_percent(None)
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let _root: Root<Node<'static, One>, One>;
        let _table: Root<Table<'static, One>, One>;
        if shape == "tree" {
            _root = cx.root(tree(cx, n));
        } else {
            _table = cx.root(graph(cx, n));
        }
        cx.collect(); // warm-up; also finishes the sweep of the build
        let mut marks = [Vec::new(), Vec::new()];
        let mut pauses = [Vec::new(), Vec::new()];
        let mut ratios = Vec::new();
        for _ in 0..ROUNDS {
            for threads in [1, 2] {
                heap.set_mark_threads(threads).unwrap();
                cx.collect();
                let s = heap.stats();
                assert_eq!(s.mark_threads as usize, threads);
                marks[threads - 1].push(s.mark_last_ns);
                pauses[threads - 1].push(s.pause_last_ns);
            }
            let round = marks.iter().map(|m| *m.last().unwrap() as f64);
            let [one, two]: [f64; 2] = round.collect::<Vec<_>>().try_into().unwrap();
            ratios.push(one / two);
        }
        ratios.sort_unstable_by(f64::total_cmp);
        let s = heap.stats();
        let [one, two] = marks;
        let [p1, p2] = pauses;
        Measured {
            one: Figures::of(one, p1),
            two: Figures::of(two, p2),
            objects: s.objects_marked,
            bytes: s.heap_marked_bytes,
            paired: ratios[ratios.len() / 2],
        }
    })
}

fn main() {
    let mib: u64 = std::env::var("SPANGC_BENCH_HEAP_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1024);
    let n = mib * (1 << 20) / 64;
    println!(
        "mark throughput, {mib} MiB of 64-byte nodes ({n} objects), {ROUNDS} collections \
         per thread count, alternating on one heap"
    );
    println!(
        "{:<7} {:>7} {:>11} {:>11} {:>9} {:>9} {:>11}",
        "shape", "threads", "best ms", "median ms", "GB/s", "ns/obj", "pause ms"
    );
    let shapes = std::env::var("SPANGC_BENCH_SHAPES").unwrap_or_else(|_| "tree,graph".into());
    for shape in shapes.split(',') {
        assert!(
            shape == "tree" || shape == "graph",
            "SPANGC_BENCH_SHAPES: unknown shape {shape:?} (tree, graph)"
        );
        let m = measure(shape, n);
        for (t, f) in [(1, &m.one), (2, &m.two)] {
            println!(
                "{:<7} {:>7} {:>11.1} {:>11.1} {:>9.2} {:>9.2} {:>11.1}",
                shape,
                t,
                f.best_ns as f64 / 1e6,
                f.median_ns as f64 / 1e6,
                m.bytes as f64 / f.best_ns as f64,
                f.best_ns as f64 / m.objects as f64,
                f.pause_ns as f64 / 1e6,
            );
        }
        println!(
            "{shape}: 2 threads vs 1: {:.2}x faster (best), {:.2}x (median), {:.2}x (median of the rounds' ratios)",
            m.one.best_ns as f64 / m.two.best_ns as f64,
            m.one.median_ns as f64 / m.two.median_ns as f64,
            m.paired,
        );
    }
}
