//! The synchronisation primitives of the chunk allocator, switched to loom's
//! under `--cfg loom` (as crossbeam's `primitive` module does) so that the
//! loom model in `arenas` checks the very code the heap runs.
//!
//! Only the chunk allocator ([`crate::arenas`]) uses this module. Bit access
//! ([`crate::bits`]) deliberately uses `std::sync::atomic::AtomicU64`
//! directly: it views raw chunk memory as atomics, which only works with
//! types that have the layout of `u64`, and loom's atomics do not.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicUsize};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicPtr, AtomicUsize};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
