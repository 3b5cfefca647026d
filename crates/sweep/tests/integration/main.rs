//! Integration tests of the sweep layer through its public API, driving
//! collections by hand (see `common`): one test binary, so the workspace
//! links it once.

mod alloc;
mod common;
mod pacing;
mod reclaim;
mod stress;
mod sweep;
