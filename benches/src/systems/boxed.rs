//! `Box`: trees of `Box<Node>`, freed the moment their owner drops them.
//!
//! The malloc baseline: every node is a separate `malloc` (glibc's, the
//! system allocator) and every drop a `free`, with no collector and no
//! reference count. Top-down building writes children through `&mut`.

use std::iter;

use crate::report::{GcStats, Outcome};
use crate::workloads::{self, Heap, Params, Record, Shape};

#[derive(Default)]
struct Node {
    left: Option<Box<Node>>,
    right: Option<Box<Node>>,
}

fn bottom_up(depth: u32) -> Box<Node> {
    if depth == 0 {
        return Box::default();
    }
    Box::new(Node {
        left: Some(bottom_up(depth - 1)),
        right: Some(bottom_up(depth - 1)),
    })
}

fn populate(node: &mut Node, depth: u32) {
    if depth == 0 {
        return;
    }
    let left = node.left.insert(Box::default());
    let right = node.right.insert(Box::default());
    populate(left, depth - 1);
    populate(right, depth - 1);
}

fn build(shape: Shape, depth: u32) -> Box<Node> {
    match shape {
        Shape::BottomUp => bottom_up(depth),
        Shape::TopDown => {
            let mut root = Box::<Node>::default();
            populate(&mut root, depth);
            root
        }
    }
}

fn check(node: &Node) -> u64 {
    1 + node.left.as_deref().map_or(0, check) + node.right.as_deref().map_or(0, check)
}

/// The `Box` heap: slots own their trees and records.
pub struct BoxHeap {
    trees: Vec<Option<Box<Node>>>,
    records: Vec<Option<Box<Record>>>,
    array: Box<[f64]>,
}

impl Heap for BoxHeap {
    fn new(tree_slots: usize, record_slots: usize) -> Self {
        BoxHeap {
            trees: iter::repeat_with(|| None).take(tree_slots).collect(),
            records: vec![None; record_slots],
            array: Box::default(),
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
        self.array = values.into_boxed_slice();
    }

    fn array_probe(&self, index: usize) -> f64 {
        self.array[index]
    }

    fn replace_record(&mut self, slot: usize, record: Record) -> Option<Record> {
        self.records[slot].replace(Box::new(record)).map(|old| *old)
    }

    fn safepoint(&mut self) {}

    fn gc_stats(&self) -> GcStats {
        GcStats::default()
    }
}

/// Runs a workload on `Box`.
pub fn run(params: &Params) -> Outcome {
    workloads::run::<BoxHeap>(params)
}
