//! The workloads, written once against the [`Heap`] trait.
//!
//! Each workload is a driver (`binary_trees`, `gcbench`, `churn`, `threads`,
//! `grow_shrink`) that decides *what* to allocate, keep, check and drop; each
//! Rust system implements [`Heap`] to say *how*, in the idiom of that system
//! (a `Box` tree, an `Rc<RefCell<_>>` tree, a `gc_arena::Gc` tree built inside
//! `Arena::mutate`, ...). Sharing the drivers this way guarantees that every
//! Rust system runs the same algorithm and computes the same checksum; the Go
//! and C programs in `benches/go` and `benches/c` repeat the same drivers in
//! their languages (same constants, same checksum arithmetic), and the
//! harness flags any checksum that disagrees.
//!
//! The trait is deliberately coarse: one call builds, checks or drops a whole
//! tree, so the trait boundary (a static call, usually inlined) costs nothing
//! next to the thousands of allocations inside it, and each system's
//! allocation loop is its own idiomatic recursive code.
//!
//! Sizes: every workload takes one `size` number on the command line
//! ([`Workload::params`] says what it means and derives the rest). The
//! derived constants are fixed so that the Go and C programs, which also get
//! only `size`, derive the same ones; tests build smaller [`Params`] directly.

use crate::report::{GcStats, HeapCycle, Outcome};

pub mod binary_trees;
pub mod churn;
pub mod gcbench;
pub mod grow_shrink;
pub mod threads;

/// The order in which a tree is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Children first, then the parent that points at them (binary-trees'
    /// `bottomUpTree`, GCBench's `MakeTree`): no pointer is ever written into
    /// an object after it was allocated.
    BottomUp,
    /// Parent first, then each child is allocated and stored into the
    /// existing parent before being populated itself (GCBench's `Populate`):
    /// every store goes from an older object to a newer one, which is what a
    /// write barrier sees.
    TopDown,
}

/// The churn workload's object: 32 bytes of payload, no pointers.
pub type Record = [u64; 4];

/// The record the churn workload allocates as its `i`-th object.
#[must_use]
pub fn record(i: u64) -> Record {
    [i, i.wrapping_mul(3), i.wrapping_mul(5), i.wrapping_mul(7)]
}

/// What the churn workload adds to its checksum for a record it reads back.
#[must_use]
pub fn digest(r: &Record) -> u64 {
    r.iter().fold(0, |acc, &w| acc.wrapping_add(w))
}

/// Number of nodes in a complete binary tree of `depth` (a depth-0 tree is
/// one node). This is what [`Heap::check`] and [`Heap::temporary`] return.
#[must_use]
pub fn tree_size(depth: u32) -> u64 {
    (1u64 << (depth + 1)) - 1
}

/// One system's heap, as the workload drivers use it.
///
/// A heap owns a root set of numbered *tree slots* (each holds one tree or
/// nothing) and *record slots* (each holds one [`Record`] or nothing), plus
/// at most one array of doubles. Trees are complete binary trees of two-pointer
/// nodes; `check` counts their nodes by walking them, so a tree that was not
/// really built, or was freed while still reachable, shows in the checksum.
///
/// Implementations must not hold anything in thread-locals that outlives the
/// heap value, except their collector's own thread-local state.
pub trait Heap {
    /// A heap with `tree_slots` empty tree slots and `record_slots` empty
    /// record slots.
    fn new(tree_slots: usize, record_slots: usize) -> Self;

    /// Builds a tree of `depth` in `shape` order, walks it and drops it;
    /// returns its node count.
    fn temporary(&mut self, shape: Shape, depth: u32) -> u64;

    /// Builds a tree of `depth` in `shape` order and links it into tree
    /// `slot`, dropping the tree the slot held.
    fn keep(&mut self, slot: usize, shape: Shape, depth: u32);

    /// Walks the tree in `slot`; returns its node count, 0 if the slot is
    /// empty.
    fn check(&self, slot: usize) -> u64;

    /// Drops the tree in `slot`.
    fn release(&mut self, slot: usize);

    /// Keeps `values` as the heap's long-lived array of doubles (GCBench),
    /// stored the way the system stores a large pointer-free object.
    fn keep_array(&mut self, values: Vec<f64>);

    /// Element `index` of the long-lived array.
    fn array_probe(&self, index: usize) -> f64;

    /// Allocates a new object holding `record` into record `slot` and
    /// returns what the object the slot held contained, if any. The churn
    /// driver replaces slots in ring order `0, 1, ..., n-1, 0, 1, ...`.
    fn replace_record(&mut self, slot: usize, record: Record) -> Option<Record>;

    /// Called between units of work (after each tree, every few thousand
    /// records): where the system's documentation says to let the collector
    /// run, it runs here. Systems that collect by themselves do nothing.
    fn safepoint(&mut self);

    /// Collector statistics since [`Heap::new`].
    fn gc_stats(&self) -> GcStats;

    /// The heap's state after each collection since [`Heap::new`] that a
    /// safepoint saw, oldest first, for the heap-over-time chart. Handles
    /// that share one heap report the same list. None by default.
    fn heap_cycles(&self) -> Vec<HeapCycle> {
        Vec::new()
    }
}

/// What a workload reports once its work on `heap` is done: `checksum`,
/// the collector's statistics and the per-cycle heap states.
fn outcome<H: Heap>(checksum: u64, heap: &H) -> Outcome {
    Outcome {
        checksum,
        gc: heap.gc_stats(),
        heap_cycles: heap.heap_cycles(),
        ..Outcome::default()
    }
}

/// The workloads, in the order `compare all` runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// The benchmarks-game binary-trees program.
    BinaryTrees,
    /// Boehm's GCBench.
    GcBench,
    /// A sliding window of small pointer-free objects.
    Churn,
    /// Two mutator threads building trees and linking them into a live set.
    Threads,
    /// A live set that grows, shrinks, then idles; samples RSS over time.
    GrowShrink,
}

/// A workload with all its parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum Params {
    /// See [`binary_trees`].
    BinaryTrees(binary_trees::Params),
    /// See [`gcbench`].
    GcBench(gcbench::Params),
    /// See [`churn`].
    Churn(churn::Params),
    /// See [`threads`].
    Threads(threads::Params),
    /// See [`grow_shrink`].
    GrowShrink(grow_shrink::Params),
}

impl Workload {
    /// Every workload.
    pub const ALL: [Workload; 5] = [
        Workload::BinaryTrees,
        Workload::GcBench,
        Workload::Churn,
        Workload::Threads,
        Workload::GrowShrink,
    ];

    /// The name used on the command line and in the Go and C programs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Workload::BinaryTrees => "binary-trees",
            Workload::GcBench => "gcbench",
            Workload::Churn => "churn",
            Workload::Threads => "threads",
            Workload::GrowShrink => "grow-shrink",
        }
    }

    /// The workload called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// The size `compare` uses unless told otherwise (the sizes the issue
    /// names).
    #[must_use]
    pub fn default_size(self) -> u64 {
        match self {
            Workload::BinaryTrees => 21,
            Workload::GcBench => 16,
            Workload::Churn => 50_000_000,
            Workload::Threads => 100_000,
            Workload::GrowShrink => 100,
        }
    }

    /// What `size` counts, for the usage text and the table header.
    #[must_use]
    pub fn size_meaning(self) -> &'static str {
        match self {
            Workload::BinaryTrees => "maximum tree depth",
            Workload::GcBench => "maximum tree depth (stretch tree is 2 deeper)",
            Workload::Churn => "objects allocated",
            Workload::Threads => "trees built per thread",
            Workload::GrowShrink => "peak number of live chunks",
        }
    }

    /// The full parameters for `size`.
    #[must_use]
    pub fn params(self, size: u64) -> Params {
        match self {
            Workload::BinaryTrees => Params::BinaryTrees(binary_trees::Params::for_size(size)),
            Workload::GcBench => Params::GcBench(gcbench::Params::for_size(size)),
            Workload::Churn => Params::Churn(churn::Params::for_size(size)),
            Workload::Threads => Params::Threads(threads::Params::for_size(size)),
            Workload::GrowShrink => Params::GrowShrink(grow_shrink::Params::for_size(size)),
        }
    }
}

/// Runs a workload on heap `H`, with one separate heap per thread in the
/// threads workload (systems that can share one heap between threads
/// override that case, see `systems::dumpster::sync`).
pub fn run<H: Heap>(params: &Params) -> Outcome {
    match params {
        Params::BinaryTrees(p) => binary_trees::run::<H>(p),
        Params::GcBench(p) => gcbench::run::<H>(p),
        Params::Churn(p) => churn::run::<H>(p),
        Params::Threads(p) => threads::run(p, |_| H::new(p.ring, 0)),
        Params::GrowShrink(p) => grow_shrink::run::<H>(p),
    }
}

/// The checksum a workload must produce, from closed forms (for the tests).
#[cfg(test)]
pub fn expected_checksum(params: &Params) -> u64 {
    match params {
        Params::BinaryTrees(p) => binary_trees::expected_checksum(p),
        Params::GcBench(p) => gcbench::expected_checksum(p),
        Params::Churn(p) => churn::expected_checksum(p),
        Params::Threads(p) => threads::expected_checksum(p),
        Params::GrowShrink(p) => grow_shrink::expected_checksum(p),
    }
}
