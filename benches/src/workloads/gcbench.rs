//! GCBench, after Hans Boehm's classic (John Ellis and Pete Kovac's design).
//!
//! With `max_depth` (16 in the original): build and drop a *stretch* tree of
//! depth `max_depth + 2` bottom-up; build a *long-lived* tree of depth
//! `max_depth` top-down (`Populate`) and keep it; keep a long-lived array of
//! 500,000 doubles whose first half is `a[i] = 1/i`; then for
//! `d = 4, 6, ..., max_depth` build `num_iters(d)` trees top-down and the same
//! number bottom-up (`MakeTree`), where `num_iters(d) =
//! 2 * tree_size(stretch) / tree_size(d)`, so each depth allocates about the
//! same number of nodes. Finally the long-lived tree and `a[1000]` are
//! checked, which is what keeps them alive in the original.
//!
//! Two differences from Boehm's program, the same for every system:
//! * each temporary tree is walked (its nodes counted) before it is dropped,
//!   so the checksum proves every system did the same work and no allocator
//!   can elide a tree nobody reads;
//! * nodes are the same two-pointer nodes as binary-trees' (the original's
//!   node also carries two unused ints `i, j`), so each system allocates one
//!   node type in every workload.

use super::{Heap, Shape, tree_size};
use crate::report::Outcome;

/// Depth of the smallest temporary trees (`kMinTreeDepth`).
const MIN_DEPTH: u32 = 4;

/// Length of the long-lived array (`kArraySize`).
pub const ARRAY_LEN: usize = 500_000;

/// The array element the end of the run checks (as the original does).
const PROBE: usize = 1000;

/// GCBench parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// `kMaxTreeDepth` and `kLongLivedTreeDepth`; the stretch tree is
    /// `max_depth + 2` deep (`kStretchTreeDepth`).
    pub max_depth: u32,
    /// `kArraySize`.
    pub array_len: usize,
}

impl Params {
    /// `size` is `kMaxTreeDepth` (16 in the original); the array keeps its
    /// original length. Depths below 4 are raised to 4.
    #[must_use]
    pub fn for_size(size: u64) -> Params {
        Params {
            max_depth: u32::try_from(size).unwrap_or(u32::MAX).clamp(MIN_DEPTH, 30),
            array_len: ARRAY_LEN,
        }
    }

    fn stretch_depth(&self) -> u32 {
        self.max_depth + 2
    }

    fn num_iters(&self, depth: u32) -> u64 {
        2 * tree_size(self.stretch_depth()) / tree_size(depth)
    }
}

/// The long-lived array: `a[i] = 1/i` for the first half (so `a[0]` is
/// infinite, as in the original), zero after.
#[must_use]
pub fn array(len: usize) -> Vec<f64> {
    let mut a = vec![0.0; len];
    for (i, x) in a.iter_mut().enumerate().take(len / 2) {
        *x = 1.0 / i as f64;
    }
    a
}

/// Runs GCBench on `H`.
pub fn run<H: Heap>(p: &Params) -> Outcome {
    let mut heap = H::new(1, 0);
    let mut checksum = heap.temporary(Shape::BottomUp, p.stretch_depth());
    heap.safepoint();
    heap.keep(0, Shape::TopDown, p.max_depth);
    heap.keep_array(array(p.array_len));
    heap.safepoint();
    for depth in (MIN_DEPTH..=p.max_depth).step_by(2) {
        for shape in [Shape::TopDown, Shape::BottomUp] {
            for _ in 0..p.num_iters(depth) {
                checksum = checksum.wrapping_add(heap.temporary(shape, depth));
                heap.safepoint();
            }
        }
    }
    checksum = checksum.wrapping_add(heap.check(0));
    // The original fails unless a[1000] == 1/1000; count that as 1.
    checksum = checksum.wrapping_add(u64::from(heap.array_probe(PROBE) == 1.0 / PROBE as f64));
    super::outcome(checksum, &heap)
}

/// The checksum `run` must produce (closed form, for the tests).
#[cfg(test)]
pub fn expected_checksum(p: &Params) -> u64 {
    let mut sum = tree_size(p.stretch_depth()) + tree_size(p.max_depth) + 1;
    for depth in (MIN_DEPTH..=p.max_depth).step_by(2) {
        sum += 2 * p.num_iters(depth) * tree_size(depth);
    }
    sum
}
