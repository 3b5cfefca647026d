//! `Heap::stats()`: the figures an embedder needs, in one versioned struct
//! with units in the field names.
//!
//! Each figure has one source, so two reports can never disagree: page
//! accounting comes from the page heap, sweep counters from the sweeper,
//! cycle figures from the collector. In verify mode every collection
//! re-derives the page and object counts with a slow walk and panics if
//! the running counters disagree (see `verify.rs`).

use std::fmt;

/// A snapshot of the heap's figures, from [`Heap::stats`](crate::Heap::stats).
///
/// Units are in the field names (`_bytes`, `_ns`, `_total` for counters
/// since the heap was created). Each figure has one source, so two fields
/// never disagree; in verify mode every collection checks the page and
/// object counts against a walk of the heap. `Display` prints a compact
/// report. The struct is `#[non_exhaustive]`: new fields may be added,
/// and [`Stats::version`] changes when a field changes meaning.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// use spangc::{Config, STATS_VERSION};
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let kept = cx.root(cx.alloc_slice_copy(&[0u64; 1000]));
///     for i in 0..1000u64 {
///         cx.alloc(i);
///     }
///     cx.collect();
///     let s = cx.heap().stats();
///     assert_eq!(s.version, STATS_VERSION);
///     assert_eq!(s.gc_count, 1);
///     assert_eq!(s.objects_marked, 1);
///     assert!(s.objects_allocated_total >= 1001);
///     assert!(s.heap_marked_bytes >= 8000);
///     assert!(s.pause_max_ns >= s.pause_last_ns && s.pause_last_ns >= s.mark_last_ns);
///     assert!(s.to_string().starts_with("gc: 1 collections"));
///     drop(kept);
/// });
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Version of this struct's layout (bumped when fields change meaning).
    pub version: u32,

    // ---- heap size ----
    /// Bytes of objects allocated and not known to be dead: live at the last
    /// mark plus everything allocated since (counted when a span is
    /// cached, as Go's `heap_live`).
    pub heap_live_bytes: usize,
    /// Bytes found live by the last mark.
    pub heap_marked_bytes: usize,
    /// The heap goal of the current cycle (heap live + external bytes at
    /// which the next collection aims to start).
    pub heap_goal_bytes: usize,
    /// Bytes of in-use spans (objects and their slack).
    pub heap_in_use_bytes: usize,
    /// Bytes of free pages the heap retains or has released.
    pub heap_idle_bytes: usize,
    /// Bytes of idle pages returned to the OS.
    pub heap_released_bytes: usize,
    /// Bytes of heap arenas mapped: `heap_in_use + heap_idle`.
    pub heap_sys_bytes: usize,
    /// Bytes of the collector's own memory: arena metadata, span records,
    /// gcBits, and the grey stacks marking keeps between collections
    /// (freed by [`Heap::release_memory`](crate::Heap::release_memory)).
    pub metadata_sys_bytes: usize,
    /// Bytes the embedder reported holding outside the heap.
    pub external_bytes: usize,

    // ---- objects ----
    /// Objects found live by the last mark.
    pub objects_marked: u64,
    /// Objects allocated since the heap was created.
    pub objects_allocated_total: u64,
    /// Bytes allocated since the heap was created.
    pub bytes_allocated_total: u64,
    /// Objects freed by sweeping since the heap was created.
    pub objects_freed_total: u64,

    // ---- collections ----
    /// Completed collections.
    pub gc_count: u64,
    /// Stop-the-world pause of the last collection.
    pub pause_last_ns: u64,
    /// Longest stop-the-world pause.
    pub pause_max_ns: u64,
    /// Sum of all stop-the-world pauses.
    pub pause_total_ns: u64,
    /// Mark time of the last collection (part of its pause).
    pub mark_last_ns: u64,
    /// Sum of all mark times.
    pub mark_total_ns: u64,
    /// Threads that marked in the last collection.
    pub mark_threads: u32,

    // ---- sweeping (never part of a pause) ----
    /// Pages swept since the heap was created.
    pub pages_swept_total: u64,
    /// Pages the page reclaimer freed since the heap was created.
    pub pages_reclaimed_total: u64,
    /// Spans freed back to the page heap by sweeping.
    pub spans_freed_total: u64,
    /// Time spent sweeping by the background sweeper.
    pub sweep_background_ns: u64,
    /// Time spent sweeping by allocation (refilling a cache).
    pub sweep_alloc_ns: u64,
    /// Time spent sweeping to keep up with proportional pacing.
    pub sweep_proportional_ns: u64,
    /// Time spent sweeping by the page reclaimer.
    pub sweep_reclaim_ns: u64,
    /// Time spent finishing the sweep before a collection.
    pub sweep_finish_ns: u64,

    // ---- scavenging ----
    /// Bytes returned to the OS since the heap was created.
    pub scavenged_bytes_total: u64,

    // ---- specials ----
    /// Finalizers run, ever.
    pub finalizers_run_total: u64,
    /// Cleanups run, ever.
    pub cleanups_run_total: u64,
    /// Special records attached to objects now (finalizers, weak handles,
    /// cleanups).
    pub special_records: usize,

    // ---- faults ----
    /// Destructors that panicked during sweeping (the panic was caught and
    /// logged; the object's memory was freed).
    pub destructor_panics: u64,

    // ---- destructors and threads (see docs/api.md) ----
    /// Dead objects of non-`Send` types with drop glue that a sweep on
    /// another thread handed to their allocating thread, ever.
    pub destructors_deferred_total: u64,
    /// Dead objects of non-`Send` types with drop glue freed without it,
    /// because their allocating thread had exited (or, at heap teardown,
    /// was another thread), ever.
    pub destructors_skipped_total: u64,
}

/// The current version of [`Stats`], for programs that store or export
/// the figures.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// use spangc::{Config, STATS_VERSION};
///
/// let heap = Heap::new(Config::default()).unwrap();
/// assert_eq!(heap.stats().version, STATS_VERSION);
/// ```
pub const STATS_VERSION: u32 = 1;

impl fmt::Display for Stats {
    /// A compact human-readable report (what `lox --gc-stats` prints).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn mib(b: usize) -> f64 {
            b as f64 / (1 << 20) as f64
        }
        fn ms(ns: u64) -> f64 {
            ns as f64 / 1e6
        }
        writeln!(
            f,
            "gc: {} collections, pause total {:.2} ms, max {:.2} ms, last {:.2} ms (mark {:.2} ms on {} thread{})",
            self.gc_count,
            ms(self.pause_total_ns),
            ms(self.pause_max_ns),
            ms(self.pause_last_ns),
            ms(self.mark_last_ns),
            self.mark_threads,
            if self.mark_threads == 1 { "" } else { "s" },
        )?;
        writeln!(
            f,
            "heap: live {:.1} MiB, marked {:.1} MiB, goal {:.1} MiB, in use {:.1} MiB, idle {:.1} MiB, released {:.1} MiB, sys {:.1} MiB, metadata {:.1} MiB, external {:.1} MiB",
            mib(self.heap_live_bytes),
            mib(self.heap_marked_bytes),
            mib(self.heap_goal_bytes),
            mib(self.heap_in_use_bytes),
            mib(self.heap_idle_bytes),
            mib(self.heap_released_bytes),
            mib(self.heap_sys_bytes),
            mib(self.metadata_sys_bytes),
            mib(self.external_bytes),
        )?;
        writeln!(
            f,
            "objects: {} allocated ({:.1} MiB), {} freed, {} live at last mark",
            self.objects_allocated_total,
            self.bytes_allocated_total as f64 / (1 << 20) as f64,
            self.objects_freed_total,
            self.objects_marked,
        )?;
        write!(
            f,
            "sweep: {} pages swept, {} reclaimed, {} spans freed; background {:.2} ms, alloc {:.2} ms, proportional {:.2} ms, reclaim {:.2} ms, finish {:.2} ms; scavenged {:.1} MiB",
            self.pages_swept_total,
            self.pages_reclaimed_total,
            self.spans_freed_total,
            ms(self.sweep_background_ns),
            ms(self.sweep_alloc_ns),
            ms(self.sweep_proportional_ns),
            ms(self.sweep_reclaim_ns),
            ms(self.sweep_finish_ns),
            self.scavenged_bytes_total as f64 / (1 << 20) as f64,
        )?;
        if self.destructors_deferred_total + self.destructors_skipped_total > 0 {
            write!(
                f,
                "\ndestructors: {} handed to their own threads, {} skipped (thread gone)",
                self.destructors_deferred_total, self.destructors_skipped_total,
            )?;
        }
        Ok(())
    }
}

/// Live objects of one type (see [`Heap::type_summary`](crate::Heap::type_summary)).
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// use spangc::Config;
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// let big = m.enter(|cx| cx.root(cx.alloc_slice_copy(&[0u8; 100_000])));
/// heap.collect();
/// let summary = heap.type_summary();
/// let t = summary.iter().find(|t| t.bytes >= 100_000).unwrap();
/// assert_eq!((t.objects, t.spans), (1, 1)); // a large object has a span of its own
/// assert!(t.name.contains("u8"), "{}", t.name);
/// # drop(big);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeStats {
    /// The type's name (`std::any::type_name`).
    pub name: &'static str,
    /// Objects allocated and not yet freed by sweeping.
    pub objects: u64,
    /// Their bytes (slot sizes).
    pub bytes: u64,
    /// Spans holding objects of the type.
    pub spans: usize,
}
