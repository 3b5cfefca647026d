//! bacon_rajan_cc (0.4): `Cc<RefCell<Node>>` trees.
//!
//! Reference counting with Bacon and Rajan's synchronous cycle collector: a
//! `Cc` whose count drops to a non-zero value is buffered as a possible
//! cycle root, and `collect_cycles()` (which the crate's documentation says
//! to call periodically) scans the buffered roots. [`Heap::safepoint`] is
//! that periodic call, made whenever roots are buffered; it is timed and
//! counted, so the GC columns show the cycle collections and the longest
//! one. The trees here are acyclic and never cloned, so counts free them and
//! few or no collections are expected.
//!
//! Types are traced by hand (`impl Trace`), as the crate's examples do; the
//! crate has no `Trace` for arrays, so a record is wrapped in [`Rec`].

use std::cell::RefCell;
use std::iter;

use bacon_rajan_cc::{Cc, Trace, Tracer, collect_cycles, number_of_roots_buffered};

use crate::report::{GcStats, Outcome};
use crate::workloads::{self, Heap, Params, Record, Shape};

type Link = Cc<RefCell<Node>>;

#[derive(Default)]
struct Node {
    left: Option<Link>,
    right: Option<Link>,
}

impl Trace for Node {
    fn trace(&self, tracer: &mut Tracer) {
        self.left.trace(tracer);
        self.right.trace(tracer);
    }
}

/// A churn record; holds no `Cc`.
struct Rec(Record);

impl Trace for Rec {
    fn trace(&self, _tracer: &mut Tracer) {}
}

fn leaf() -> Link {
    Cc::new(RefCell::new(Node::default()))
}

fn bottom_up(depth: u32) -> Link {
    if depth == 0 {
        return leaf();
    }
    Cc::new(RefCell::new(Node {
        left: Some(bottom_up(depth - 1)),
        right: Some(bottom_up(depth - 1)),
    }))
}

fn populate(node: &RefCell<Node>, depth: u32) {
    if depth == 0 {
        return;
    }
    {
        let mut n = node.borrow_mut();
        n.left = Some(leaf());
        n.right = Some(leaf());
    }
    let n = node.borrow();
    for child in [&n.left, &n.right].into_iter().flatten() {
        populate(child, depth - 1);
    }
}

fn build(shape: Shape, depth: u32) -> Link {
    match shape {
        Shape::BottomUp => bottom_up(depth),
        Shape::TopDown => {
            let root = leaf();
            populate(&root, depth);
            root
        }
    }
}

fn check(node: &RefCell<Node>) -> u64 {
    let n = node.borrow();
    1 + n.left.as_deref().map_or(0, check) + n.right.as_deref().map_or(0, check)
}

/// The bacon_rajan_cc heap and its cycle-collection statistics.
pub struct BaconHeap {
    trees: Vec<Option<Link>>,
    records: Vec<Option<Cc<Rec>>>,
    array: Option<Cc<Vec<f64>>>,
    stats: GcStats,
}

impl Heap for BaconHeap {
    fn new(tree_slots: usize, record_slots: usize) -> Self {
        BaconHeap {
            trees: iter::repeat_with(|| None).take(tree_slots).collect(),
            records: iter::repeat_with(|| None).take(record_slots).collect(),
            array: None,
            stats: GcStats {
                count: Some(0),
                max_pause_ns: None,
            },
        }
    }

    fn temporary(&mut self, shape: Shape, depth: u32) -> u64 {
        check(&build(shape, depth))
    }

    fn keep(&mut self, slot: usize, shape: Shape, depth: u32) {
        self.trees[slot] = Some(build(shape, depth));
    }

    fn check(&self, slot: usize) -> u64 {
        self.trees[slot].as_deref().map_or(0, check)
    }

    fn release(&mut self, slot: usize) {
        self.trees[slot] = None;
    }

    fn keep_array(&mut self, values: Vec<f64>) {
        self.array = Some(Cc::new(values));
    }

    fn array_probe(&self, index: usize) -> f64 {
        self.array.as_ref().map_or(f64::NAN, |a| a[index])
    }

    fn replace_record(&mut self, slot: usize, record: Record) -> Option<Record> {
        self.records[slot]
            .replace(Cc::new(Rec(record)))
            .map(|old| old.0)
    }

    fn safepoint(&mut self) {
        if number_of_roots_buffered() > 0 {
            self.stats = self.stats.merge(GcStats::timed(collect_cycles));
        }
    }

    fn gc_stats(&self) -> GcStats {
        self.stats
    }
}

/// Runs a workload on bacon_rajan_cc.
pub fn run(params: &Params) -> Outcome {
    workloads::run::<BaconHeap>(params)
}
