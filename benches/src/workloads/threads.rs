//! threads: two mutators allocating and linking at once.
//!
//! Each of `threads` (2) mutator threads builds `iterations` trees of depth
//! `depth` (6: 127 nodes) bottom-up; after building tree `i` it links it into
//! its part of the live set, slot `i % ring` of `ring` (4096) slots, which
//! drops the tree built `ring` iterations before, and walks the new tree. At
//! the end each thread walks every tree it still holds. Each tree is thus a
//! short-lived structure that stays reachable from the live set for `ring`
//! iterations, and the live set is about `threads * ring * 127` nodes (1
//! million).
//!
//! Where the live set lives is the system's choice, made through the `make`
//! argument of [`run`]: systems whose heap can be shared between threads
//! (dumpster's `sync`, Go, Boehm, spangc) give every thread a handle on one
//! shared ring of `threads * ring` slots, thread `t` owning slots
//! `t * ring .. (t + 1) * ring`; systems with thread-local heaps (`Rc`, gc,
//! gc-arena, dumpster's `unsync`, bacon_rajan_cc) and the malloc baselines
//! give each thread its own heap and ring. Either way the trees and so the
//! checksum are the same; the table's note column says which it was.

use std::thread;

use super::{Heap, Shape};
use crate::report::{GcStats, HeapCycle, Outcome};

/// Mutator threads.
pub const THREADS: usize = 2;
/// Live-set slots per thread.
pub const RING: usize = 4096;
/// Depth of each tree (127 nodes).
pub const DEPTH: u32 = 6;

/// threads parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Mutator threads.
    pub threads: usize,
    /// Trees each thread builds.
    pub iterations: u64,
    /// Live-set slots per thread.
    pub ring: usize,
    /// Depth of each tree.
    pub depth: u32,
}

impl Params {
    /// `size` trees per thread; the rest fixed.
    #[must_use]
    pub fn for_size(size: u64) -> Params {
        Params {
            threads: THREADS,
            iterations: size,
            ring: RING,
            depth: DEPTH,
        }
    }
}

/// Runs the threads workload; `make(t)` is called on thread `t` and returns
/// that thread's heap handle, whose tree slots `0..ring` are the thread's
/// part of the live set.
pub fn run<H: Heap>(p: &Params, make: impl Fn(usize) -> H + Sync) -> Outcome {
    let make = &make;
    let per_thread: Vec<(u64, GcStats, Vec<HeapCycle>)> = thread::scope(|s| {
        let handles: Vec<_> = (0..p.threads)
            .map(|t| s.spawn(move || mutator(p, make(t))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("mutator thread panicked"))
            .collect()
    });
    let mut outcome = Outcome::default();
    for (checksum, gc, cycles) in per_thread {
        outcome.checksum = outcome.checksum.wrapping_add(checksum);
        outcome.gc = outcome.gc.merge(gc);
        // Handles of one shared heap report one list, each as far as it
        // had got when its thread finished: keep the longest.
        if cycles.len() > outcome.heap_cycles.len() {
            outcome.heap_cycles = cycles;
        }
    }
    outcome
}

fn mutator<H: Heap>(p: &Params, mut heap: H) -> (u64, GcStats, Vec<HeapCycle>) {
    let mut checksum = 0u64;
    let mut slot = 0;
    for _ in 0..p.iterations {
        heap.keep(slot, Shape::BottomUp, p.depth);
        checksum = checksum.wrapping_add(heap.check(slot));
        heap.safepoint();
        slot += 1;
        if slot == p.ring {
            slot = 0;
        }
    }
    for slot in 0..p.ring {
        checksum = checksum.wrapping_add(heap.check(slot));
    }
    (checksum, heap.gc_stats(), heap.heap_cycles())
}

/// The checksum `run` must produce (closed form, for the tests).
#[cfg(test)]
pub fn expected_checksum(p: &Params) -> u64 {
    let held = p.iterations.min(p.ring as u64);
    p.threads as u64 * (p.iterations + held) * super::tree_size(p.depth)
}
