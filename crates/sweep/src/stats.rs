//! Sweep and allocation counters: one source per figure, all atomics
//! (relaxed: each is an independent monotone count). Pages swept are
//! counted by the proportional pacer (`pacing`), which needs them anyway.

use crate::sweep::Who;
use spangc_arena::sizeclass::SpanClass;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) pages_reclaimed: AtomicU64,
    pub(crate) spans_freed: AtomicU64,
    pub(crate) objects_freed: AtomicU64,
    pub(crate) objects_allocated: AtomicU64,
    pub(crate) bytes_allocated: AtomicU64,
    pub(crate) cycles: AtomicU64,
    background_ns: AtomicU64,
    alloc_ns: AtomicU64,
    proportional_ns: AtomicU64,
    reclaim_ns: AtomicU64,
    finish_ns: AtomicU64,
}

impl Counters {
    /// Adds sweep time to the account of whoever swept. Time sweeping
    /// while uncaching a stale span counts as allocation's.
    pub(crate) fn add_time(&self, who: Who, d: Duration) {
        let c = match who {
            Who::Background => &self.background_ns,
            Who::Alloc | Who::Uncache => &self.alloc_ns,
            Who::Proportional => &self.proportional_ns,
            Who::Reclaim => &self.reclaim_ns,
            Who::Finish => &self.finish_ns,
        };
        c.fetch_add(d.as_nanos() as u64, Relaxed);
    }

    /// The counters, with `pages_swept` (kept by the pacer, which owns
    /// that count) filled in by the caller.
    pub(crate) fn snapshot(&self, pages_swept: u64) -> SweepStats {
        SweepStats {
            pages_swept,
            pages_reclaimed: self.pages_reclaimed.load(Relaxed),
            spans_freed: self.spans_freed.load(Relaxed),
            objects_freed: self.objects_freed.load(Relaxed),
            objects_allocated: self.objects_allocated.load(Relaxed),
            bytes_allocated: self.bytes_allocated.load(Relaxed),
            background_ns: self.background_ns.load(Relaxed),
            alloc_ns: self.alloc_ns.load(Relaxed),
            proportional_ns: self.proportional_ns.load(Relaxed),
            reclaim_ns: self.reclaim_ns.load(Relaxed),
            finish_ns: self.finish_ns.load(Relaxed),
            classes: Vec::new(),
        }
    }
}

/// Per-central figures: one row per (span class, type tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassStats {
    /// The span class.
    pub span_class: SpanClass,
    /// The facade's type tag.
    pub type_tag: usize,
    /// Spans in use (in sets or caches).
    pub spans_in_use: usize,
    /// Objects allocated, ever (counted when a cache gives a span back).
    pub objects_allocated: u64,
    /// Objects freed by sweeping, ever.
    pub objects_freed: u64,
}

/// A snapshot of the sweep layer's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepStats {
    /// Pages swept, ever.
    pub pages_swept: u64,
    /// Pages the reclaimer returned to the page heap, ever.
    pub pages_reclaimed: u64,
    /// Spans returned to the page heap by sweeping, ever.
    pub spans_freed: u64,
    /// Objects freed, ever.
    pub objects_freed: u64,
    /// Objects allocated, ever (small objects counted when their span
    /// leaves a cache).
    pub objects_allocated: u64,
    /// Bytes allocated, ever (slot sizes; same timing).
    pub bytes_allocated: u64,
    /// Time the background sweeper spent sweeping.
    pub background_ns: u64,
    /// Time allocation spent sweeping (cache refills, stale caches).
    pub alloc_ns: u64,
    /// Time spent sweeping to stay on the proportional line.
    pub proportional_ns: u64,
    /// Time the page reclaimer spent.
    pub reclaim_ns: u64,
    /// Time spent finishing sweeps before collections.
    pub finish_ns: u64,
    /// Per (span class, type tag).
    pub classes: Vec<ClassStats>,
}
