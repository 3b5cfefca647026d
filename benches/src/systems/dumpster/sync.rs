//! dumpster's `sync` flavour: `Gc<Node>` trees with `OnceLock` children, one
//! heap shared by all threads.
//!
//! A sync `Gc` needs `Send + Sync` contents. Top-down building needs to
//! store children into existing nodes; each child is stored exactly once, so
//! the node's children are `OnceLock`s (std's write-once cell, which dumpster
//! traces) rather than the `Mutex` of dumpster's sync example, whose lock on
//! every visit of every node would measure locking rather than collection.
//!
//! The tree slots are a shared live set, a `Gc<Vec<Mutex<Option<Gc<Node>>>>>`
//! (a slot is overwritten many times, so it takes a `Mutex`). In the threads
//! workload both threads hold handles on one such ring, each owning its own
//! half of the slots (see `workloads::threads`); elsewhere the ring is the
//! heap's own. The tree algorithms are shared with the handle-based systems
//! (`handles`); the heap is this module's, for the shared ring.

use std::iter;
use std::sync::{Mutex, OnceLock};

use dumpster::Trace;
use dumpster::sync::{CollectInfo, Gc, default_collect_condition, set_collect_condition};

use crate::report::{GcStats, Outcome};
use crate::systems::handles::{Link, build};
use crate::workloads::{self, Heap, Params, Record, Shape, threads};

#[derive(Default, Trace)]
struct Node {
    left: OnceLock<Gc<Node>>,
    right: OnceLock<Gc<Node>>,
}

impl Link for Gc<Node> {
    fn leaf() -> Self {
        Gc::new(Node::default())
    }

    fn branch(left: Self, right: Self) -> Self {
        Gc::new(Node {
            left: OnceLock::from(left),
            right: OnceLock::from(right),
        })
    }

    fn set_children(&self, left: Self, right: Self) {
        let set = self.left.set(left).is_ok() && self.right.set(right).is_ok();
        assert!(set, "top-down building set a node's children twice");
    }

    fn with_children<R>(&self, f: impl FnOnce(Option<&Self>, Option<&Self>) -> R) -> R {
        f(self.left.get(), self.right.get())
    }

    fn check(&self) -> u64 {
        1 + self.left.get().map_or(0, Link::check) + self.right.get().map_or(0, Link::check)
    }
}

type Ring = Gc<Vec<Mutex<Option<Gc<Node>>>>>;

fn counting_condition(info: &CollectInfo) -> bool {
    super::count_collection(default_collect_condition(info))
}

fn new_ring(slots: usize) -> Ring {
    Gc::new(iter::repeat_with(|| Mutex::new(None)).take(slots).collect())
}

/// A handle on a dumpster `sync` heap: tree slots `0..n` are slots
/// `offset..offset + n` of a possibly shared ring.
pub struct SyncHeap {
    ring: Ring,
    offset: usize,
    records: Vec<Option<Gc<Record>>>,
    array: Option<Gc<Vec<f64>>>,
    collections_before: u64,
}

impl SyncHeap {
    fn attach(ring: Ring, offset: usize, record_slots: usize) -> SyncHeap {
        set_collect_condition(counting_condition);
        SyncHeap {
            ring,
            offset,
            records: iter::repeat_with(|| None).take(record_slots).collect(),
            array: None,
            collections_before: super::collections(),
        }
    }

    fn slot(&self, slot: usize) -> &Mutex<Option<Gc<Node>>> {
        &self.ring[self.offset + slot]
    }
}

impl Heap for SyncHeap {
    fn new(tree_slots: usize, record_slots: usize) -> Self {
        SyncHeap::attach(new_ring(tree_slots), 0, record_slots)
    }

    fn temporary(&mut self, shape: Shape, depth: u32) -> u64 {
        build::<Gc<Node>>(shape, depth).check()
    }

    fn keep(&mut self, slot: usize, shape: Shape, depth: u32) {
        let tree = build(shape, depth);
        // The old tree is dropped after the lock is released: a drop may
        // start a collection, which visits this slot.
        let old = self.slot(slot).lock().expect("poisoned slot").replace(tree);
        drop(old);
    }

    fn check(&self, slot: usize) -> u64 {
        // Walked under the lock: cloning the handle out would count as a
        // drop for dumpster's collect condition.
        let tree = self.slot(slot).lock().expect("poisoned slot");
        tree.as_ref().map_or(0, Link::check)
    }

    fn release(&mut self, slot: usize) {
        let old = self.slot(slot).lock().expect("poisoned slot").take();
        drop(old);
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

/// Runs a workload on dumpster `sync`; in the threads workload both
/// threads share one ring.
pub fn run(params: &Params) -> Outcome {
    match params {
        Params::Threads(p) => {
            let ring = new_ring(p.threads * p.ring);
            threads::run(p, |t| SyncHeap::attach(ring.clone(), t * p.ring, 0))
        }
        other => workloads::run::<SyncHeap>(other),
    }
}
