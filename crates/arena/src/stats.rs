//! Accounting: the page heap's counters and the stats snapshot.
//!
//! Every page of every arena is in exactly one of these places, and the
//! counters follow it:
//!
//! ```text
//! sys      = in_use + manual + idle                  (pages of all arenas)
//! idle     = free pages in the bitmaps
//!          + free pages held by page caches
//!          + pages the scavenger has taken out while it releases them
//! released = scavenged free pages in the bitmaps
//!          + scavenged pages held by page caches     (<= idle)
//! retained = sys - released                          (what the OS backs, at most)
//! ```
//!
//! Fresh arena memory counts as released: it has never been touched and
//! costs no resident memory, exactly like scavenged memory. `manual` (spans
//! the heap hands out but does not collect, such as gcBits chunks) is part
//! of `sys` and not of `in_use`, as Go's `stacks_inuse` is not part of
//! `heap_inuse`.
//!
//! The counters are atomics updated with `Relaxed` where the pages move,
//! some under the heap lock and some (page-cache allocations) without it;
//! the in-use count is split between a shared counter and one share per
//! page cache that only the cache's thread writes (`SplitCount`). A snapshot taken while
//! other threads allocate may be off by the operations in flight; at quiescent points the identities hold exactly,
//! and [`crate::PageHeap::verify`] re-derives every counter from the
//! bitmaps and the span map.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use crate::PAGE_SIZE;
use crate::splitcount::{CountShare, SplitCount};

/// The live counters. Each says who updates it.
#[derive(Default)]
pub(crate) struct Counters {
    /// Pages of all arenas. Under the heap lock (growth).
    pub(crate) sys_pages: AtomicUsize,
    /// Pages of in-use spans: a shared part (spans allocated or freed
    /// without a page cache, `fetch_add`) and one share per page cache
    /// bound to this heap, which only the cache's thread writes (see
    /// `SplitCount`).
    pub(crate) in_use_pages: SplitCount,
    /// Pages of manual spans. Under the heap lock.
    pub(crate) manual_pages: AtomicUsize,
    /// Free scavenged pages, in the bitmaps or in page caches.
    pub(crate) released_pages: AtomicUsize,
    /// The part of `released_pages` held by page caches.
    pub(crate) cached_released_pages: AtomicUsize,
    /// Scavenged pages that allocations have consumed, ever.
    pub(crate) scav_consumed_pages: AtomicU64,
    /// Pages the scavenger has released, ever.
    pub(crate) scav_released_pages: AtomicU64,
    /// Releases the OS refused (the pages stay unscavenged).
    pub(crate) scavenge_errors: AtomicU64,
}

impl Counters {
    /// Adds `n` in-use pages to `cache`'s share if given, else to the
    /// shared part.
    #[inline]
    pub(crate) fn add_in_use(&self, cache: Option<&CountShare>, n: isize) {
        match cache {
            Some(c) => c.add(n),
            None => self.in_use_pages.add(n),
        }
    }

    /// `sys - released`: the most memory the heap can have resident.
    pub(crate) fn retained_bytes(&self) -> usize {
        self.sys_pages
            .load(Relaxed)
            .saturating_sub(self.released_pages.load(Relaxed))
            * PAGE_SIZE
    }

    /// Scavenged pages allocated (from the bitmaps when `cached` is false,
    /// from a page cache when true).
    pub(crate) fn consume_scavenged(&self, pages: usize, cached: bool) {
        if pages == 0 {
            return;
        }
        self.released_pages.fetch_sub(pages, Relaxed);
        if cached {
            self.cached_released_pages.fetch_sub(pages, Relaxed);
        }
        self.scav_consumed_pages.fetch_add(pages as u64, Relaxed);
    }
}

/// A snapshot of the page heap's accounting. See the module documentation
/// of `stats` (and `docs/arena.md`) for the identities between the fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageHeapStats {
    /// Bytes of all arenas (reserved and mapped read-write).
    pub sys_bytes: usize,
    /// Bytes of in-use spans (garbage-collected objects).
    pub in_use_bytes: usize,
    /// Bytes of manual spans.
    pub manual_bytes: usize,
    /// Bytes of free pages: `sys - in_use - manual`.
    pub idle_bytes: usize,
    /// Bytes of free pages whose memory has been returned to the OS (or was
    /// never touched). At most `idle_bytes`.
    pub released_bytes: usize,
    /// `sys - released`: the memory the heap may have resident.
    pub retained_bytes: usize,
    /// Pages of in-use spans (`in_use_bytes / PAGE_SIZE`).
    pub pages_in_use: usize,
    /// Arenas reserved.
    pub arenas: usize,
    /// Span records ever created (the pool never shrinks).
    pub span_records: usize,
    /// Scavenged bytes that allocations have reused, ever (their memory
    /// comes back zeroed, faulted in by the OS on first touch).
    pub scavenged_consumed_bytes: u64,
    /// Bytes the scavenger has released to the OS, ever.
    pub scavenged_released_bytes: u64,
    /// Releases the OS refused.
    pub scavenge_errors: u64,
    /// The background scavenger's retained-memory goal (`usize::MAX`: none).
    pub scavenge_goal_bytes: usize,
    /// Whether the background scavenger thread is running.
    pub bg_scavenger_running: bool,
    /// Time the background scavenger spent working, by the heap's clock.
    pub bg_scavenger_work_ns: u64,
    /// Time the background scavenger spent pacing itself (sleeping).
    pub bg_scavenger_sleep_ns: u64,
    /// Bytes the background scavenger released.
    pub bg_scavenger_released_bytes: u64,
}
