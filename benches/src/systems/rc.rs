//! `Rc`: trees of `Rc<RefCell<Node>>`, freed when the last count drops.
//!
//! Reference counting with no cycle collection: the trees here have no
//! cycles, so everything is freed on time. Nodes sit in a `RefCell` because
//! top-down building stores children into existing nodes; records and the
//! array are never mutated and are plain `Rc<T>`. Children are written and
//! walked through borrows, never cloned, so no count changes except at
//! allocation and drop.

use std::cell::RefCell;
use std::iter;
use std::rc::Rc;

use crate::report::{GcStats, Outcome};
use crate::workloads::{self, Heap, Params, Record, Shape};

type Link = Rc<RefCell<Node>>;

#[derive(Default)]
struct Node {
    left: Option<Link>,
    right: Option<Link>,
}

fn bottom_up(depth: u32) -> Link {
    if depth == 0 {
        return Link::default();
    }
    Rc::new(RefCell::new(Node {
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
        n.left = Some(Link::default());
        n.right = Some(Link::default());
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
            let root = Link::default();
            populate(&root, depth);
            root
        }
    }
}

fn check(node: &RefCell<Node>) -> u64 {
    let n = node.borrow();
    1 + n.left.as_deref().map_or(0, check) + n.right.as_deref().map_or(0, check)
}

/// The `Rc` heap: slots hold counted references.
pub struct RcHeap {
    trees: Vec<Option<Link>>,
    records: Vec<Option<Rc<Record>>>,
    array: Rc<[f64]>,
}

impl Heap for RcHeap {
    fn new(tree_slots: usize, record_slots: usize) -> Self {
        RcHeap {
            trees: iter::repeat_with(|| None).take(tree_slots).collect(),
            records: vec![None; record_slots],
            array: Rc::new([]),
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
        self.array = values.into();
    }

    fn array_probe(&self, index: usize) -> f64 {
        self.array[index]
    }

    fn replace_record(&mut self, slot: usize, record: Record) -> Option<Record> {
        self.records[slot].replace(Rc::new(record)).map(|old| *old)
    }

    fn safepoint(&mut self) {}

    fn gc_stats(&self) -> GcStats {
        GcStats::default()
    }
}

/// Runs a workload on `Rc`.
pub fn run(params: &Params) -> Outcome {
    workloads::run::<RcHeap>(params)
}
