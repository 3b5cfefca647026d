//! bacon_rajan_cc (0.4): `Cc<RefCell<Node>>` trees.
//!
//! Reference counting with Bacon and Rajan's synchronous cycle collector: a
//! `Cc` whose count drops to a non-zero value is buffered as a possible
//! cycle root, and `collect_cycles()` (which the crate's documentation says
//! to call periodically) scans the buffered roots. `Heap::safepoint` is that
//! periodic call, made whenever roots are buffered; it is timed and counted,
//! so the GC columns show the cycle collections and the longest one. The
//! trees here are acyclic and never cloned, so counts free them and few or
//! no collections are expected. The tree algorithms and the heap are shared
//! with the other handle-based systems (`handles`).
//!
//! Types are traced by hand (`impl Trace`), as the crate's examples do; the
//! crate has no `Trace` for arrays, so a record is wrapped in [`Rec`].

use std::cell::RefCell;

use bacon_rajan_cc::{Cc, Trace, Tracer, collect_cycles, number_of_roots_buffered};

use super::handles::{HandleHeap, HandleSystem, cell_link};
use crate::report::{GcStats, Outcome};
use crate::workloads::{self, Params, Record};

#[derive(Default)]
struct Node {
    left: Option<CcLink>,
    right: Option<CcLink>,
}

impl Trace for Node {
    fn trace(&self, tracer: &mut Tracer) {
        self.left.trace(tracer);
        self.right.trace(tracer);
    }
}

type CcLink = Cc<RefCell<Node>>;

cell_link!(Cc, RefCell, Node);

/// A churn record; holds no `Cc`.
struct Rec(Record);

impl Trace for Rec {
    fn trace(&self, _tracer: &mut Tracer) {}
}

/// bacon_rajan_cc as a handle system; counts and times its cycle
/// collections.
struct BaconSystem {
    stats: GcStats,
}

impl HandleSystem for BaconSystem {
    type Link = CcLink;
    type Record = Cc<Rec>;
    type Array = Cc<Vec<f64>>;

    fn start() -> Self {
        BaconSystem {
            stats: GcStats {
                count: Some(0),
                max_pause_ns: None,
            },
        }
    }

    fn new_record(record: Record) -> Self::Record {
        Cc::new(Rec(record))
    }

    fn read_record(record: &Self::Record) -> Record {
        record.0
    }

    fn new_array(values: Vec<f64>) -> Self::Array {
        Cc::new(values)
    }

    fn array_element(array: &Self::Array, index: usize) -> f64 {
        array[index]
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
    workloads::run::<HandleHeap<BaconSystem>>(params)
}
