//! grow-shrink: does memory go back to the OS?
//!
//! The live set is a FIFO of *chunks*, each a tree of `chunk_depth` (14:
//! 32,767 nodes, about 1 MB with 32-byte nodes). Phase 1 (grow) adds one
//! chunk per step until `chunks` (100 by default) are live; phase 2
//! (shrink) drops the oldest chunk per step until none is left. Each step of
//! both phases also builds and drops `garbage_per_step` (4) temporary trees
//! of the same depth, so the collector has work and reasons to run. Phase 3
//! (idle) sleeps `idle_ticks` (20) times `tick` (100 ms), building one small
//! tree per tick so that collectors which only act on allocation get the
//! chance.
//!
//! Meanwhile a sampler thread records the RSS every `sample_every` (100 ms);
//! the series goes out as `rss` lines and the harness draws it. A system
//! whose RSS comes back down in phases 2 and 3 returns memory to the OS; one
//! whose RSS stays at the phase-1 peak keeps it.

use std::thread;
use std::time::Duration;

use super::{Heap, Shape};
use crate::report::Outcome;
use crate::rss::Sampler;

/// Depth of each chunk's tree.
pub const CHUNK_DEPTH: u32 = 14;
/// Temporary trees per step.
pub const GARBAGE_PER_STEP: u32 = 4;
/// Idle ticks after the shrink phase.
pub const IDLE_TICKS: u32 = 20;
/// Length of one idle tick, and the RSS sampling interval.
pub const TICK: Duration = Duration::from_millis(100);
/// Depth of the one tree built per idle tick.
const IDLE_DEPTH: u32 = 10;

/// grow-shrink parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Peak number of live chunks.
    pub chunks: usize,
    /// Depth of each chunk's tree.
    pub chunk_depth: u32,
    /// Temporary trees per step.
    pub garbage_per_step: u32,
    /// Idle ticks after the shrink phase.
    pub idle_ticks: u32,
    /// Length of one idle tick.
    pub tick: Duration,
    /// RSS sampling interval.
    pub sample_every: Duration,
}

impl Params {
    /// `size` chunks at the peak; the rest fixed.
    #[must_use]
    pub fn for_size(size: u64) -> Params {
        Params {
            chunks: usize::try_from(size).unwrap_or(usize::MAX),
            chunk_depth: CHUNK_DEPTH,
            garbage_per_step: GARBAGE_PER_STEP,
            idle_ticks: IDLE_TICKS,
            tick: TICK,
            sample_every: TICK,
        }
    }
}

/// Runs grow-shrink on `H`.
pub fn run<H: Heap>(p: &Params) -> Outcome {
    let sampler = Sampler::start(p.sample_every);
    let mut heap = H::new(p.chunks, 0);
    let mut checksum = 0u64;
    let garbage = |heap: &mut H, checksum: &mut u64| {
        for _ in 0..p.garbage_per_step {
            *checksum = checksum.wrapping_add(heap.temporary(Shape::BottomUp, p.chunk_depth));
            heap.safepoint();
        }
    };
    for slot in 0..p.chunks {
        heap.keep(slot, Shape::BottomUp, p.chunk_depth);
        checksum = checksum.wrapping_add(heap.check(slot));
        heap.safepoint();
        garbage(&mut heap, &mut checksum);
    }
    for slot in 0..p.chunks {
        heap.release(slot);
        heap.safepoint();
        garbage(&mut heap, &mut checksum);
    }
    for _ in 0..p.idle_ticks {
        thread::sleep(p.tick);
        checksum = checksum.wrapping_add(heap.temporary(Shape::BottomUp, IDLE_DEPTH));
        heap.safepoint();
    }
    Outcome {
        rss: sampler.stop(),
        ..super::outcome(checksum, &heap)
    }
}

/// The checksum `run` must produce (closed form, for the tests).
#[cfg(test)]
pub fn expected_checksum(p: &Params) -> u64 {
    use super::tree_size;
    let chunk = tree_size(p.chunk_depth);
    let built = p.chunks as u64 * (1 + 2 * u64::from(p.garbage_per_step));
    built * chunk + u64::from(p.idle_ticks) * tree_size(IDLE_DEPTH)
}
