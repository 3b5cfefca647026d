//! `Rc`: trees of `Rc<RefCell<Node>>`, freed when the last count drops.
//!
//! Reference counting with no cycle collection: the trees here have no
//! cycles, so everything is freed on time. Nodes sit in a `RefCell` because
//! top-down building stores children into existing nodes; records and the
//! array are never mutated and are plain `Rc<T>`. Children are written and
//! walked through borrows, never cloned, so no count changes except at
//! allocation and drop. The tree algorithms and the heap are shared with the
//! other handle-based systems (`handles`).

use std::cell::RefCell;
use std::rc::Rc;

use super::handles::{HandleHeap, HandleSystem, cell_link};
use crate::report::{GcStats, Outcome};
use crate::workloads::{self, Params, Record};

#[derive(Default)]
struct Node {
    left: Option<RcLink>,
    right: Option<RcLink>,
}

type RcLink = Rc<RefCell<Node>>;

cell_link!(Rc, RefCell, Node);

/// `Rc` as a handle system: no collector, nothing to report.
struct RcSystem;

impl HandleSystem for RcSystem {
    type Link = RcLink;
    type Record = Rc<Record>;
    type Array = Rc<[f64]>;

    fn start() -> Self {
        RcSystem
    }

    fn new_record(record: Record) -> Self::Record {
        Rc::new(record)
    }

    fn read_record(record: &Self::Record) -> Record {
        **record
    }

    fn new_array(values: Vec<f64>) -> Self::Array {
        values.into()
    }

    fn array_element(array: &Self::Array, index: usize) -> f64 {
        array[index]
    }

    fn gc_stats(&self) -> GcStats {
        GcStats::default()
    }
}

/// Runs a workload on `Rc`.
pub fn run(params: &Params) -> Outcome {
    workloads::run::<HandleHeap<RcSystem>>(params)
}
