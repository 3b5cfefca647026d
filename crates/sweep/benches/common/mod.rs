//! What the sweep crate's benchmarks share.

use spangc_sweep::{Mheap, MheapConfig, SweepHooks};
use std::sync::Arc;

/// A heap with no background sweeper or scavenger and no poisoning: the
/// benchmark drives every sweep itself, so nothing else runs in the timed
/// region.
pub fn quiet_heap(hooks: Arc<dyn SweepHooks>) -> Arc<Mheap> {
    let config = MheapConfig {
        background_sweep: false,
        background_scavenge: false,
        poison: false,
    };
    Mheap::new(config, hooks).unwrap()
}
