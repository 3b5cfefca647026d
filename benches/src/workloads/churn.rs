//! churn: many small objects through a sliding window.
//!
//! A ring of `window` record slots (100,000). Object `i` (of `total`, 50
//! million by default) holds `record(i)`, 32 bytes of payload and no
//! pointers, and goes into slot `i % window`, replacing the oldest object;
//! the replaced object is read back into the checksum. So at any time
//! exactly `window` objects are live, and every object dies after `window`
//! more allocations: the steady state of a cache or a message queue, and the
//! case a generational or size-classed heap should make cheap.
//!
//! The driver calls [`Heap::safepoint`] every [`SAFEPOINT_EVERY`] objects.

use super::{Heap, digest, record};
use crate::report::Outcome;

/// Live objects at any time.
pub const WINDOW: usize = 100_000;

/// How many objects between two safepoints: small enough that an
/// incremental collector driven from safepoints keeps up, large enough that
/// the call costs nothing per object.
pub const SAFEPOINT_EVERY: u64 = 1024;

/// churn parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Objects allocated in all.
    pub total: u64,
    /// Ring slots (live objects).
    pub window: usize,
}

impl Params {
    /// `size` objects through a window of [`WINDOW`].
    #[must_use]
    pub fn for_size(size: u64) -> Params {
        Params {
            total: size,
            window: WINDOW,
        }
    }
}

/// Runs churn on `H`.
pub fn run<H: Heap>(p: &Params) -> Outcome {
    let mut heap = H::new(0, p.window);
    let mut checksum = 0u64;
    let mut slot = 0;
    for i in 0..p.total {
        if let Some(old) = heap.replace_record(slot, record(i)) {
            checksum = checksum.wrapping_add(digest(&old));
        }
        slot += 1;
        if slot == p.window {
            slot = 0;
        }
        if i % SAFEPOINT_EVERY == SAFEPOINT_EVERY - 1 {
            heap.safepoint();
        }
    }
    super::outcome(checksum, &heap)
}

/// The checksum `run` must produce: every record but the last `window` is
/// read back once.
#[cfg(test)]
pub fn expected_checksum(p: &Params) -> u64 {
    let read_back = p.total.saturating_sub(p.window as u64);
    (0..read_back).fold(0u64, |acc, i| acc.wrapping_add(digest(&record(i))))
}
