//! Span sets: lock-free bags of spans with a single owner per span.
//!
//! Go 1.15 replaced the central's locked span lists with lock-free span
//! sets after the central locks capped allocation throughput on many cores
//! (Go issue 37487). A span set here is crossbeam-deque's `Injector`, a
//! lock-free MPMC queue of blocks: any thread pushes, any thread steals,
//! and each push/steal is a few atomic operations on the block's slots.
//! Ownership rule (the seed's): a span is in at most one set at a time,
//! and whoever pops it owns it; sweepers then still check its sweepgen,
//! because a span may be popped from an unswept set after someone else
//! swept it through another route (the page reclaimer, a cache refill).
//! Such stale entries are dropped by whoever pops them; every unswept set
//! is drained before a generation ends, so none survives into the next.

use crossbeam_deque::{Injector, Steal};
use spangc_arena::span::Span;
use std::ptr::NonNull;

/// A span record pointer that can sit in a queue shared between threads.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub(crate) struct SpanRef(NonNull<Span>);

// SAFETY: `Span` is all atomics and a mutex (`Sync`), and its records are
// never freed while their heap lives (the only place these are used).
unsafe impl Send for SpanRef {}
// SAFETY: as above.
unsafe impl Sync for SpanRef {}

impl SpanRef {
    pub(crate) fn new(span: &Span) -> SpanRef {
        SpanRef(NonNull::from(span))
    }

    /// The record.
    ///
    /// # Safety
    ///
    /// The heap the record belongs to must outlive `'a` (records are
    /// pooled, never freed, while the heap lives).
    pub(crate) unsafe fn get<'a>(self) -> &'a Span {
        // SAFETY: per the contract, the record is alive for 'a.
        unsafe { self.0.as_ref() }
    }
}

/// A set of spans. See the module docs.
#[derive(Default)]
pub(crate) struct SpanSet {
    q: Injector<SpanRef>,
}

impl SpanSet {
    pub(crate) fn push(&self, span: &Span) {
        self.q.push(SpanRef::new(span));
    }

    /// Takes some span out of the set (FIFO order, not guaranteed).
    ///
    /// An empty set answers from two plain loads: `Injector::steal` issues
    /// a full fence before it reads the tail, which on x86 drains the store
    /// buffer, and a cache refill tries the (usually empty) partial set
    /// right after writing out a span's worth of objects (one thread,
    /// `cargo bench -p spangc-sweep --bench alloc`, two A/B pairs:
    /// `alloc_fast` 256 B 5.50 -> 5.35 ns, 64 B 1.94 -> 1.91). Missing a push
    /// that races with the check is what `steal` allows too; within a
    /// generation nobody pushes to an unswept set, and the verifier drains
    /// with the world stopped, so they see every span.
    pub(crate) fn pop(&self) -> Option<SpanRef> {
        if self.q.is_empty() {
            return None;
        }
        loop {
            match self.q.steal() {
                Steal::Success(s) => return Some(s),
                Steal::Empty => return None,
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }

    /// Removes every span (for the verifier, with the world stopped; it
    /// pushes them back).
    pub(crate) fn drain(&self) -> Vec<SpanRef> {
        std::iter::from_fn(|| self.pop()).collect()
    }
}
