//! The `gc` crate (0.5): `Gc<GcCell<Node>>` trees.
//!
//! A thread-local, stop-the-world mark-sweep collector in the style of
//! `Rc`: every `Gc` handle tracks whether it is a root (a count on the
//! pointee, adjusted as handles move in and out of the heap), and a
//! collection runs inside `Gc::new` once the thread has allocated past its
//! threshold. Nothing needs calling at safepoints. `GcCell` is the crate's
//! `RefCell` for traced data, used here because top-down building stores
//! children into existing nodes; records and the array are never mutated
//! and are plain `Gc<T>`. The tree algorithms and the heap are shared with
//! the other handle-based systems (`handles`).
//!
//! The collection count comes from `gc::stats()` (the crate's
//! `unstable-stats` feature), per thread; the crate does not time its
//! collections.

// gc_derive 0.5 wraps its impls (`Trace`, `Finalize`, and a `Drop` that
// runs the finalizer) in `const` blocks, which the `non_local_definitions`
// lint, newer than the crate, flags. The derive is the crate's documented
// way to make a type traceable, and its `Drop` is part of what `gc` costs.
#![allow(non_local_definitions)]

use gc::{Finalize, Gc, GcCell, Trace};

use super::handles::{HandleHeap, HandleSystem, cell_link};
use crate::report::{GcStats, Outcome};
use crate::workloads::{self, Params, Record};

#[derive(Default, Trace, Finalize)]
struct Node {
    left: Option<GcLink>,
    right: Option<GcLink>,
}

type GcLink = Gc<GcCell<Node>>;

cell_link!(Gc, GcCell, Node);

fn collections() -> u64 {
    gc::stats().collections_performed as u64
}

/// The `gc` crate as a handle system.
struct GcSystem {
    /// `collections()` when the heap was made (the counter is per thread
    /// and never reset).
    collections_before: u64,
}

impl HandleSystem for GcSystem {
    type Link = GcLink;
    type Record = Gc<Record>;
    type Array = Gc<Vec<f64>>;

    fn start() -> Self {
        GcSystem {
            collections_before: collections(),
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
            count: Some(collections() - self.collections_before),
            max_pause_ns: None,
        }
    }
}

/// Runs a workload on the `gc` crate.
pub fn run(params: &Params) -> Outcome {
    workloads::run::<HandleHeap<GcSystem>>(params)
}
