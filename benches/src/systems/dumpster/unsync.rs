//! dumpster's `unsync` flavour: `Gc<RefCell<Node>>` trees, thread-local.
//!
//! As dumpster's own examples build mutable structures: a `RefCell` inside
//! the `Gc`, needed because top-down building stores children into existing
//! nodes. Records and the array are never mutated and are plain `Gc<T>`.

use std::cell::RefCell;
use std::iter;

use dumpster::Trace;
use dumpster::unsync::{CollectInfo, Gc, default_collect_condition, set_collect_condition};

use crate::report::{GcStats, Outcome};
use crate::workloads::{self, Heap, Params, Record, Shape};

type Link = Gc<RefCell<Node>>;

#[derive(Default, Trace)]
struct Node {
    left: Option<Link>,
    right: Option<Link>,
}

fn leaf() -> Link {
    Gc::new(RefCell::new(Node::default()))
}

fn bottom_up(depth: u32) -> Link {
    if depth == 0 {
        return leaf();
    }
    Gc::new(RefCell::new(Node {
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

fn counting_condition(info: &CollectInfo) -> bool {
    super::count_collection(default_collect_condition(info))
}

/// The dumpster `unsync` heap.
pub struct UnsyncHeap {
    trees: Vec<Option<Link>>,
    records: Vec<Option<Gc<Record>>>,
    array: Option<Gc<Vec<f64>>>,
    collections_before: u64,
}

impl Heap for UnsyncHeap {
    fn new(tree_slots: usize, record_slots: usize) -> Self {
        set_collect_condition(counting_condition);
        UnsyncHeap {
            trees: iter::repeat_with(|| None).take(tree_slots).collect(),
            records: iter::repeat_with(|| None).take(record_slots).collect(),
            array: None,
            collections_before: super::collections(),
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
        self.array = Some(Gc::new(values));
    }

    fn array_probe(&self, index: usize) -> f64 {
        self.array.as_ref().map_or(f64::NAN, |a| a[index])
    }

    fn replace_record(&mut self, slot: usize, record: Record) -> Option<Record> {
        self.records[slot].replace(Gc::new(record)).map(|old| *old)
    }

    fn safepoint(&mut self) {}

    fn gc_stats(&self) -> GcStats {
        GcStats {
            count: Some(super::collections() - self.collections_before),
            max_pause_ns: None,
        }
    }
}

/// Runs a workload on dumpster `unsync`.
pub fn run(params: &Params) -> Outcome {
    workloads::run::<UnsyncHeap>(params)
}
