//! dumpster 2, both flavours: `unsync` (thread-local) and `sync`
//! (thread-safe, one heap for all threads).
//!
//! dumpster is reference counting plus cycle detection: a `Gc` is freed when
//! its count reaches zero, and when a collect condition says so (by default,
//! once more `Gc`s were dropped since the last collection than exist) it
//! scans the handles dropped since, to find cycles that counts cannot free.
//! No call is needed at safepoints. Each flavour installs a collect condition
//! that is the default one plus a per-thread count of collections started
//! (the only collection statistic dumpster exposes); it does not time them.

use std::cell::Cell;

pub mod sync;
pub mod unsync;

thread_local! {
    /// Collections this thread's collect conditions started.
    static COLLECTIONS: Cell<u64> = const { Cell::new(0) };
}

/// Counts a collection if the default condition said to collect; returns
/// the condition's answer unchanged.
fn count_collection(collect: bool) -> bool {
    if collect {
        COLLECTIONS.with(|c| c.set(c.get() + 1));
    }
    collect
}

/// Collections started on this thread so far.
fn collections() -> u64 {
    COLLECTIONS.with(Cell::get)
}
