//! spangc's sweeper and small-object allocation path: sweep generations,
//! span sets, centrals, per-thread caches, sweeping, proportional sweep
//! pacing, page reclaim and the background sweeper.
//!
//! This layer sits between the page heap (`spangc-arena`) and gcBits
//! (`spangc-gcbits`) below and the facade above. It knows objects only as
//! slots of spans; the facade tells it, through [`SweepHooks`], what to do
//! when an object dies. See `docs/sweep.md` for the design.

mod background;
mod central;
#[cfg(all(test, loom))]
mod loom_tests;
mod mcache;
mod mheap;
mod pacing;
mod primitive;
mod reclaim;
mod source;
mod spanset;
mod stats;
mod sweep;
mod sweeper;
pub mod sweepgen;
#[cfg(all(test, not(loom)))]
mod tests;
mod verify;

pub use background::YIELD_EVERY;
pub use central::CentralKey;
pub use mcache::MCache;
pub use mheap::{AllocError, Mheap, MheapConfig, SweepHooks};
pub use reclaim::RECLAIM_CHUNK_PAGES;
pub use stats::{ClassStats, SweepStats};
pub use sweep::POISON;
