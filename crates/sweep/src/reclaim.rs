//! The page reclaimer (the seed's `mheap.reclaim` and `reclaimChunk`).
//!
//! Before a large allocation grows the heap by N pages while sweeping is
//! unfinished, the allocator sweeps at least N pages of *wholly dead*
//! spans. It finds them without looking inside: a span with no marked
//! object has its first page set in `page_in_use` and clear in
//! `page_marks`, so `in_use & !marks` over a bitmap word names up to 64
//! candidate spans. Allocators take 512-page chunks of the arena snapshot
//! (taken when the generation started) from a shared atomic index, and
//! spare pages freed beyond what one needed go to a shared credit the next
//! one draws from first. A candidate still has to be claimed (sweepgen
//! CAS): it may be cached, born this generation (page marks were cleared
//! before marking), or swept already by someone else.
//!
//! 512 pages per chunk, as the seed: the scan runs at hundreds of GB of
//! heap per millisecond, freeing at tens of MB per millisecond, so a chunk
//! bounds one allocation's reclaim latency to roughly 100 µs.

use crate::central::Central;
use crate::mheap::Mheap;
use crate::sweep::{Dispose, Empty, Who};
use crate::sweepgen::try_claim;
use spangc_arena::{HeapArena, PAGES_PER_ARENA, PageHeap};
use std::ptr::NonNull;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Pages scanned per claim of the shared index.
pub const RECLAIM_CHUNK_PAGES: usize = 512;
const DONE: u64 = 1 << 63;

/// Arena metadata pointers; arenas are never unmapped while the heap lives.
#[derive(Clone, Copy)]
struct ArenaPtr(NonNull<HeapArena>);
// SAFETY: `HeapArena` is shared between threads by design (atomics only)
// and lives as long as the page heap.
unsafe impl Send for ArenaPtr {}
// SAFETY: as above.
unsafe impl Sync for ArenaPtr {}

/// Reclaimer state. See the module docs.
#[derive(Default)]
pub(crate) struct Reclaim {
    /// Next page index (into the snapshot, `arena * PAGES_PER_ARENA +
    /// page`) to scan; `>= DONE` when scanning is finished.
    index: AtomicU64,
    /// Pages freed beyond what their reclaimer needed.
    credit: AtomicUsize,
    arenas: RwLock<Arc<Vec<ArenaPtr>>>,
}

impl Reclaim {
    /// A new generation: snapshot the arenas, scan from the start.
    pub(crate) fn reset(&self, pages: &PageHeap) {
        let snap: Vec<ArenaPtr> = pages
            .arenas()
            .iter()
            .map(|a| ArenaPtr(NonNull::from(a)))
            .collect();
        *self.arenas.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snap);
        self.credit.store(0, Relaxed);
        self.index.store(0, Relaxed);
    }
}

impl Mheap {
    /// Sweeps until at least `npages` pages of wholly dead spans went back
    /// to the page heap, or there are no more candidates. Returns the
    /// pages freed for this caller.
    pub(crate) fn reclaim(&self, mut npages: usize) -> usize {
        let r = &self.reclaim;
        if r.index.load(Acquire) >= DONE {
            return 0;
        }
        // Register like every sweeper (see `sweepgen`): "done" waits for
        // our claims, and once drained no span is left at h-2 to find.
        let Some(_sweeper) = self.done.begin() else {
            return 0;
        };
        let start = Instant::now();
        let want = npages;
        let arenas = r.arenas.read().unwrap_or_else(|e| e.into_inner()).clone();
        let total = (arenas.len() * PAGES_PER_ARENA) as u64;
        while npages > 0 {
            let credit = r.credit.load(Relaxed);
            if credit > 0 {
                let take = credit.min(npages);
                if r.credit
                    .compare_exchange(credit, credit - take, Relaxed, Relaxed)
                    .is_ok()
                {
                    npages -= take;
                }
                continue;
            }
            let idx = r.index.fetch_add(RECLAIM_CHUNK_PAGES as u64, Relaxed);
            if idx >= total {
                r.index.store(DONE, Relaxed);
                break;
            }
            let found = self.reclaim_chunk(&arenas, idx as usize);
            if found <= npages {
                npages -= found;
            } else {
                r.credit.fetch_add(found - npages, Relaxed);
                npages = 0;
            }
        }
        self.counters.add_time(Who::Reclaim, start.elapsed());
        want - npages
    }

    /// Sweeps the unmarked in-use spans starting in pages
    /// `[idx, idx + RECLAIM_CHUNK_PAGES)` of the snapshot; returns pages
    /// freed.
    fn reclaim_chunk(&self, arenas: &[ArenaPtr], idx: usize) -> usize {
        // SAFETY: arenas of our page heap are never unmapped while it
        // lives, and `self` (which owns it) is alive.
        let arena = unsafe { arenas[idx / PAGES_PER_ARENA].0.as_ref() };
        let first = idx % PAGES_PER_ARENA;
        let h = self.sweepgen();
        let mut freed = 0;
        // The last central looked up: neighbouring spans are often of one
        // class and type.
        let mut last: Option<Arc<Central>> = None;
        for w in first / 64..(first + RECLAIM_CHUNK_PAGES) / 64 {
            let mut cand = arena.page_in_use_word(w) & !arena.page_marks_word(w);
            while cand != 0 {
                let p = 64 * w + cand.trailing_zeros() as usize;
                cand &= cand - 1;
                let Some(span) = arena.span_at_page(p) else {
                    continue;
                };
                let Some(claim) = try_claim(span, h) else {
                    continue;
                };
                let central = match last.take() {
                    Some(c) if c.owns(span) => Some(c),
                    _ => self.central_for(span),
                };
                let n = span.npages();
                let d = self.sweep_span(&claim, central.as_deref(), Empty::Free);
                if d == Dispose::Free {
                    freed += n;
                }
                self.dispose(claim, d, central.as_deref());
                last = central;
            }
        }
        self.counters
            .pages_reclaimed
            .fetch_add(freed as u64, Relaxed);
        freed
    }

    /// Scans every arena's page bitmaps for reclaim candidates without
    /// sweeping anything; returns how many candidate spans it saw (for the
    /// scan-speed benchmark).
    pub fn reclaim_scan_only(&self) -> usize {
        let mut n = 0;
        for arena in self.page_heap().arenas().iter() {
            for w in 0..spangc_arena::PAGE_WORDS_PER_ARENA {
                n += (arena.page_in_use_word(w) & !arena.page_marks_word(w)).count_ones() as usize;
            }
        }
        n
    }
}
