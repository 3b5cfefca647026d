//! binary-trees, as in the Computer Language Benchmarks Game.
//!
//! With `max_depth = max(depth, 6)`: build, check and drop a *stretch* tree
//! of depth `max_depth + 1`; build a *long-lived* tree of depth `max_depth`
//! and keep it; then for `d = 4, 6, ..., max_depth` build, check and drop
//! `2^(max_depth - d + 4)` trees of depth `d`; finally check the long-lived
//! tree. All trees are built bottom-up from two-pointer nodes.
//!
//! The benchmarks-game program prints one line per depth; here the check
//! values are summed into the checksum instead (the same numbers, one line).
//! At depth 21 each of the 9 depths allocates about 2^26 nodes, some 600
//! million nodes in all, while the live set is the long-lived tree (4
//! million nodes) plus one temporary tree.
//!
//! One thread, as the reference numbers were measured.

use super::{Heap, Shape};
use crate::report::Outcome;

/// Smallest depth the iterations start from (the benchmarks game's
/// `min_depth`).
const MIN_DEPTH: u32 = 4;

/// binary-trees parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Depth of the long-lived tree; the stretch tree is one deeper.
    pub max_depth: u32,
}

impl Params {
    /// `size` is the benchmarks game's `n`, raised to at least
    /// `MIN_DEPTH + 2` as the original does.
    #[must_use]
    pub fn for_size(size: u64) -> Params {
        let n = u32::try_from(size).unwrap_or(u32::MAX).min(40);
        Params {
            max_depth: n.max(MIN_DEPTH + 2),
        }
    }
}

/// Runs binary-trees on `H`.
pub fn run<H: Heap>(p: &Params) -> Outcome {
    let mut heap = H::new(1, 0);
    let mut checksum = heap.temporary(Shape::BottomUp, p.max_depth + 1);
    heap.safepoint();
    heap.keep(0, Shape::BottomUp, p.max_depth);
    heap.safepoint();
    for depth in (MIN_DEPTH..=p.max_depth).step_by(2) {
        let iterations = 1u64 << (p.max_depth - depth + MIN_DEPTH);
        for _ in 0..iterations {
            checksum = checksum.wrapping_add(heap.temporary(Shape::BottomUp, depth));
            heap.safepoint();
        }
    }
    checksum = checksum.wrapping_add(heap.check(0));
    super::outcome(checksum, &heap)
}

/// The checksum `run` must produce, from the closed form of each tree's
/// node count (used by the tests to check every system).
#[cfg(test)]
pub fn expected_checksum(p: &Params) -> u64 {
    use super::tree_size;
    let mut sum = tree_size(p.max_depth + 1) + tree_size(p.max_depth);
    for depth in (MIN_DEPTH..=p.max_depth).step_by(2) {
        sum += (1u64 << (p.max_depth - depth + MIN_DEPTH)) * tree_size(depth);
    }
    sum
}
