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
//!
//! # Queues
//!
//! One queue per set made every refill of two threads allocating the same
//! class pop from the same head: each steal's loads and compare-and-swap
//! moved the head's line between cores (two threads, 256-byte objects:
//! `SpanSet::pop` 17% of the samples, a refill about 200 ns against 57 on
//! one thread). So a set is [`queue_count`] queues. A push goes to the
//! queue of its span's 1 MiB region (regions take the queues in turn), so
//! the spans a sweeper pushes spread over the queues; a pop tries the
//! popping thread's home queue (threads take home queues round-robin) and
//! then the others. Two threads refilling at once then pop from different
//! queues until one runs dry. Nothing depends on which queue a span sits
//! in.
//!
//! Regions, not pages: hashing each span's first page scattered
//! neighbouring spans over the queues, and a thread then wrote its spans
//! out of address order, which cost more than the contention saved (one
//! thread, 256 B, `alloc_fast` 4.55 -> 5.1 ns). `cargo bench -p
//! spangc-sweep --bench alloc`, interleaved runs of each build, 2 MiB
//! regions hashed to queues against one queue: two threads, 256 B,
//! `alloc_fast` 9.43 / 9.47 -> 7.05 / 6.77 ns, and in a second pair of runs
//! `alloc` 9.37 / 11.9 -> 7.54 / 6.86; 64 B and one thread unchanged. But
//! a small heap has few 2 MiB regions, and two can hash to one queue: two
//! threads with 64-byte objects (4 MiB) still spent 10% of their time in
//! `pop`. 1 MiB regions taken in turn, three interleaved runs against 2
//! MiB hashed: two threads, 64 B, `alloc` 3.43 / 3.51 / 3.44 -> 2.91 /
//! 3.04 / 3.22, `alloc_fast` 3.13 / 3.40 / 3.19 -> 2.87 / 2.68 / 2.82; 256
//! B on one and two threads unchanged (256 KiB regions lost some of the
//! one thread's locality: 256 B `alloc` 4.59-4.73 -> 4.66-5.20).

use crossbeam_deque::{Injector, Steal};
use spangc_arena::span::Span;
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

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

/// Most queues a set is split into (each queue holds an `Injector`
/// block of about 1 KiB from the start, and an empty set's pop checks
/// every queue).
const MAX_QUEUES: usize = 4;

/// Spans of one 1 MiB region share a queue (see "Queues").
const REGION_SHIFT: usize = 20;

/// Queues per set: the machine's parallelism rounded down to a power of
/// two (so that picking a queue is a mask, not a division), at most
/// [`MAX_QUEUES`].
fn queue_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        (1 << n.ilog2()).min(MAX_QUEUES)
    })
}

/// The calling thread's home queue index (before reduction by the queue
/// count): threads number themselves round-robin on first use.
fn home_queue() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static HOME: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    HOME.with(|h| {
        if h.get() == usize::MAX {
            h.set(NEXT.fetch_add(1, Relaxed));
        }
        h.get()
    })
}

/// A set of spans. See the module docs.
pub(crate) struct SpanSet {
    queues: Box<[Injector<SpanRef>]>,
}

impl Default for SpanSet {
    fn default() -> SpanSet {
        SpanSet {
            queues: (0..queue_count()).map(|_| Injector::new()).collect(),
        }
    }
}

impl SpanSet {
    /// Adds `span` to the queue of its 1 MiB region (see "Queues").
    pub(crate) fn push(&self, span: &Span) {
        let region = span.start() >> REGION_SHIFT;
        let i = region & (self.queues.len() - 1);
        self.queues[i].push(SpanRef::new(span));
    }

    /// Takes some span out of the set (FIFO order within a queue, not
    /// guaranteed), trying the calling thread's home queue first.
    ///
    /// An empty queue answers from two plain loads: `Injector::steal`
    /// issues a full fence before it reads the tail, which on x86 drains
    /// the store buffer, and a cache refill tries the (usually empty)
    /// partial set right after writing out a span's worth of objects (one
    /// thread, `cargo bench -p spangc-sweep --bench alloc`, two A/B pairs:
    /// `alloc_fast` 256 B 5.50 -> 5.35 ns, 64 B 1.94 -> 1.91). Missing a push
    /// that races with the check is what `steal` allows too; within a
    /// generation nobody pushes to an unswept set, and the verifier drains
    /// with the world stopped, so they see every span.
    pub(crate) fn pop(&self) -> Option<SpanRef> {
        let mask = self.queues.len() - 1;
        let first = home_queue();
        (0..=mask).find_map(|k| Self::pop_from(&self.queues[(first + k) & mask]))
    }

    fn pop_from(q: &Injector<SpanRef>) -> Option<SpanRef> {
        if q.is_empty() {
            return None;
        }
        loop {
            match q.steal() {
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
