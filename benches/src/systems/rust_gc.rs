//! The `gc` crate (0.5): `Gc<GcCell<Node>>` trees.
//!
//! A thread-local, stop-the-world mark-sweep collector in the style of
//! `Rc`: every `Gc` handle tracks whether it is a root (a count on the
//! pointee, adjusted as handles move in and out of the heap), and a
//! collection runs inside `Gc::new` once the thread has allocated past its
//! threshold. Nothing needs calling at safepoints. `GcCell` is the crate's
//! `RefCell` for traced data, used here because top-down building stores
//! children into existing nodes; records and the array are never mutated
//! and are plain `Gc<T>`.
//!
//! The collection count comes from `gc::stats()` (the crate's
//! `unstable-stats` feature), per thread; the crate does not time its
//! collections.

// gc_derive 0.5 wraps its impls (`Trace`, `Finalize`, and a `Drop` that
// runs the finalizer) in `const` blocks, which the `non_local_definitions`
// lint, newer than the crate, flags. The derive is the crate's documented
// way to make a type traceable, and its `Drop` is part of what `gc` costs.
#![allow(non_local_definitions)]

use std::iter;

use gc::{Finalize, Gc, GcCell, Trace};

use crate::report::{GcStats, Outcome};
use crate::workloads::{self, Heap, Params, Record, Shape};

type Link = Gc<GcCell<Node>>;

#[derive(Default, Trace, Finalize)]
struct Node {
    left: Option<Link>,
    right: Option<Link>,
}

fn leaf() -> Link {
    Gc::new(GcCell::new(Node::default()))
}

fn bottom_up(depth: u32) -> Link {
    if depth == 0 {
        return leaf();
    }
    Gc::new(GcCell::new(Node {
        left: Some(bottom_up(depth - 1)),
        right: Some(bottom_up(depth - 1)),
    }))
}

fn populate(node: &GcCell<Node>, depth: u32) {
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

fn check(node: &GcCell<Node>) -> u64 {
    let n = node.borrow();
    1 + n.left.as_deref().map_or(0, check) + n.right.as_deref().map_or(0, check)
}

fn collections() -> u64 {
    gc::stats().collections_performed as u64
}

/// The `gc` heap: slots hold rooted `Gc` handles.
pub struct GcHeap {
    trees: Vec<Option<Link>>,
    records: Vec<Option<Gc<Record>>>,
    array: Option<Gc<Vec<f64>>>,
    /// `collections()` when the heap was made (the counter is per thread
    /// and never reset).
    collections_before: u64,
}

impl Heap for GcHeap {
    fn new(tree_slots: usize, record_slots: usize) -> Self {
        GcHeap {
            trees: iter::repeat_with(|| None).take(tree_slots).collect(),
            records: iter::repeat_with(|| None).take(record_slots).collect(),
            array: None,
            collections_before: collections(),
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
            count: Some(collections() - self.collections_before),
            max_pause_ns: None,
        }
    }
}

/// Runs a workload on the `gc` crate.
pub fn run(params: &Params) -> Outcome {
    workloads::run::<GcHeap>(params)
}
