//! dumpster's `unsync` flavour: `Gc<RefCell<Node>>` trees, thread-local.
//!
//! As dumpster's own examples build mutable structures: a `RefCell` inside
//! the `Gc`, needed because top-down building stores children into existing
//! nodes. Records and the array are never mutated and are plain `Gc<T>`.
//! The tree algorithms and the heap are shared with the other handle-based
//! systems (`handles`).

use std::cell::RefCell;

use dumpster::Trace;
use dumpster::unsync::{CollectInfo, Gc, default_collect_condition, set_collect_condition};

use crate::report::{GcStats, Outcome};
use crate::systems::handles::{HandleHeap, HandleSystem, cell_link};
use crate::workloads::{self, Params, Record};

#[derive(Default, Trace)]
struct Node {
    left: Option<UnsyncLink>,
    right: Option<UnsyncLink>,
}

type UnsyncLink = Gc<RefCell<Node>>;

cell_link!(Gc, RefCell, Node);

fn counting_condition(info: &CollectInfo) -> bool {
    super::count_collection(default_collect_condition(info))
}

/// dumpster `unsync` as a handle system.
struct UnsyncSystem {
    collections_before: u64,
}

impl HandleSystem for UnsyncSystem {
    type Link = UnsyncLink;
    type Record = Gc<Record>;
    type Array = Gc<Vec<f64>>;

    fn start() -> Self {
        set_collect_condition(counting_condition);
        UnsyncSystem {
            collections_before: super::collections(),
        }
    }

    fn new_record(record: Record) -> Self::Record {
        Gc::new(record)
    }

    fn read_record(record: &Self::Record) -> Record {
        **record
    }

    fn new_array(values: Vec<f64>) -> Self::Array {
        Gc::new(values)
    }

    fn array_element(array: &Self::Array, index: usize) -> f64 {
        array[index]
    }

    fn gc_stats(&self) -> GcStats {
        GcStats {
            count: Some(super::collections() - self.collections_before),
            max_pause_ns: None,
        }
    }
}

/// Runs a workload on dumpster `unsync`.
pub fn run(params: &Params) -> Outcome {
    workloads::run::<HandleHeap<UnsyncSystem>>(params)
}
