//! spangc's page heap: the lowest layer of the collector.
//!
//! This crate owns memory from the OS up to spans: the OS layer ([`os`]),
//! heap arenas and their metadata, span records and their states, size
//! classes, the page allocator and the scavenger. It knows nothing of Rust
//! types or of garbage collection policy: an object is an address inside a
//! span, and a span is a run of pages with a state.
//!
//! The entry point is [`PageHeap`]: spans in and out (`alloc_span`,
//! `free_span`, `alloc_manual`, `free_manual`), lookups from any address
//! (`span_of`, `span_of_heap`, `find_object`), the per-page bitmaps, the
//! scavenger, [`PageHeapStats`] and a `verify` walk. Small spans come from
//! a per-thread [`PageCache`] without the heap lock.
//!
//! ```
//! use spangc_arena::{PageCache, PageHeap, PageHeapConfig, SpanClass, size_to_class};
//!
//! let heap = PageHeap::new(PageHeapConfig::default())?;
//! let class = SpanClass::new(size_to_class(48).unwrap(), false);
//! let mut cache = PageCache::new();
//! let span = heap.alloc_span(1, class, 0, 0, Some(&mut cache))?;
//! assert!(!span.needzero(), "fresh memory reads as zero");
//! let obj = heap.find_object(span.start() + 100).unwrap();
//! assert_eq!((obj.index, obj.base), (2, span.start() + 96));
//! heap.free_span(span, Some(&mut cache));
//! cache.flush(&heap);
//! heap.verify()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! See `docs/arena.md` for the design.

pub mod arena;
mod cache;
mod clock;
mod config;
mod error;
mod heap;
mod mapped;
pub mod os;
mod pagealloc;
mod scavenger;
pub mod sizeclass;
pub mod span;
mod spanpool;
pub mod splitcount;
mod stats;
#[cfg(test)]
mod tests;
mod verify;

pub use arena::{ArenasSnapshot, HeapArena, PAGE_WORDS_PER_ARENA};
pub use cache::PageCache;
pub use clock::{Clock, FakeClock, RealClock, Wakeup};
pub use config::{ArenaHints, PageHeapConfig};
pub use error::ArenaError;
pub use heap::{CACHE_MAX_PAGES, ObjectRef, PageHeap};
pub use scavenger::{BG_UNIT_PAGES, MIN_WORK_NS};
pub use sizeclass::{SizeClass, SpanClass, size_to_class};
pub use span::{SWEEPGEN_DEAD, Span, SpanState};
pub use splitcount::{CountShare, SplitCount};
pub use stats::PageHeapStats;
pub use verify::VerifyError;

/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: usize = 13;
/// The heap's unit of memory: 8 KiB, as in the Go runtime. Every span is a
/// whole number of pages; the page allocator, the span map and the
/// `page_in_use` / `page_marks` bitmaps all count in pages.
pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;

/// log2 of [`ARENA_SIZE`].
pub const ARENA_SHIFT: usize = 26;
/// Heap arenas are reserved from the OS in aligned blocks of 64 MiB, as the
/// Go runtime does on 64-bit Linux. Each has its own metadata (span map and
/// per-page bitmaps), found from any address in O(1).
pub const ARENA_SIZE: usize = 1 << ARENA_SHIFT;
/// Pages in one arena: 8192.
pub const PAGES_PER_ARENA: usize = ARENA_SIZE / PAGE_SIZE;
