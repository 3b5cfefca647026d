//! Centrals: per (span class, type tag), the spans with objects of that
//! class and type that no mutator cache holds.
//!
//! Each central has four span sets per generation parity (the seed's
//! `mcentral` after Go 1.15): partial (some free slots) and full, swept and
//! unswept. Because the heap's sweepgen moves by 2 per cycle, the swept
//! sets of generation `h` are the unswept sets of `h + 2`: index
//! `h / 2 % 2` is swept, the other unswept, and the roles trade at every
//! advance with no copying.
//!
//! A cache refill ([`Central::cache_span`]) tries, in order: a partial swept
//! span; a partial unswept span, sweeping it (claim first); a full unswept
//! span, sweeping it in the hope that it frees something (a bounded number
//! of tries, so one refill never sweeps the world); then a new span from
//! the page heap. A span handed to a cache is marked `h + 3`.
//! [`Central::uncache_span`] takes a span back from a cache: a span cached
//! before the last advance (`h + 1`) is swept first; others go back to the
//! partial or full swept set.
//!
//! The facade keys centrals by (span class, type tag) because a span holds
//! objects of one Rust type (see `docs/ARCHITECTURE.md`); to this crate the
//! tag is opaque.

use crate::mheap::{AllocError, Mheap};
use crate::source::SpanSource;
use crate::spanset::SpanSet;
use crate::sweep::{Dispose, Empty, Who};
use crate::sweepgen::{SpanSweepState, SweepClaim, cache_word, publish_word, try_claim};
use spangc_arena::sizeclass::{SpanClass, class_npages};
use spangc_arena::span::Span;
use spangc_arena::{CountShare, SplitCount};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// How many unswept spans one refill may sweep before it grows the heap
/// instead (the seed's `spanBudget`).
const SPAN_BUDGET: usize = 100;

/// What identifies a central.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CentralKey {
    /// The span class (small classes only).
    pub class: SpanClass,
    /// The facade's type tag.
    pub tag: usize,
}

/// Spans of one (span class, type tag). See the module docs.
pub struct Central {
    pub(crate) key: CentralKey,
    partial: [SpanSet; 2],
    full: [SpanSet; 2],
    /// Spans of this central in use (anywhere: sets or caches): each cache
    /// slot counts the spans it takes from the page heap in its own share,
    /// sweepers count the spans they free in the shared part. One counter
    /// written by every allocating thread at every refill was a contended
    /// line (two threads, 256-byte objects: a quarter of the refill's own
    /// time, `perf annotate`); see `SplitCount`.
    spans_in_use: SplitCount,
    /// Objects allocated from this central's spans, ever (added when the
    /// allocating cache flushes).
    pub(crate) objects_allocated: AtomicU64,
    /// Objects freed by sweeping this central's spans, ever.
    pub(crate) objects_freed: AtomicU64,
}

fn swept_index(h: u32) -> usize {
    (h / 2 % 2) as usize
}

fn unswept_index(h: u32) -> usize {
    1 - swept_index(h)
}

impl Central {
    pub(crate) fn new(key: CentralKey) -> Central {
        assert!(!key.class.is_large(), "centrals hold small spans only");
        Central {
            key,
            partial: Default::default(),
            full: Default::default(),
            spans_in_use: SplitCount::default(),
            objects_allocated: AtomicU64::new(0),
            objects_freed: AtomicU64::new(0),
        }
    }

    pub(crate) fn partial_swept(&self, h: u32) -> &SpanSet {
        &self.partial[swept_index(h)]
    }
    pub(crate) fn full_swept(&self, h: u32) -> &SpanSet {
        &self.full[swept_index(h)]
    }
    pub(crate) fn partial_unswept(&self, h: u32) -> &SpanSet {
        &self.partial[unswept_index(h)]
    }
    pub(crate) fn full_unswept(&self, h: u32) -> &SpanSet {
        &self.full[unswept_index(h)]
    }

    /// Spans of this central in use (exact with the world stopped; a sum
    /// over the caches that allocate from it).
    pub(crate) fn spans_in_use(&self) -> usize {
        self.spans_in_use.get()
    }

    /// Counts one span of this central freed.
    pub(crate) fn span_freed(&self) {
        self.spans_in_use.add(-1);
    }

    /// A new cache slot's share of the span count.
    pub(crate) fn new_share(&self) -> Arc<CountShare> {
        self.spans_in_use.new_share()
    }

    /// Folds a dropped cache slot's share into the central's own count.
    pub(crate) fn drop_share(&self, share: &Arc<CountShare>) {
        self.spans_in_use.drop_share(share);
    }

    /// Whether `span` belongs to this central.
    pub(crate) fn owns(&self, span: &Span) -> bool {
        span.span_class_raw() == self.key.class.raw() && span.type_tag() == self.key.tag
    }

    /// Puts a swept span (sweepgen already `h`) on the right swept set.
    pub(crate) fn push_swept(&self, span: &Span, h: u32) {
        if span.alloc_count() < span.nelems() {
            self.partial_swept(h).push(span);
        } else {
            self.full_swept(h).push(span);
        }
    }

    /// A span with at least one free slot for a cache, marked cached
    /// (`h + 3`). See the module docs.
    ///
    /// A span taken from the page heap is counted in `share`, the cache
    /// slot's share of the span count.
    pub(crate) fn cache_span<'h>(
        &self,
        heap: &'h Mheap,
        source: &mut SpanSource,
        share: &CountShare,
    ) -> Result<&'h Span, AllocError> {
        let h = heap.sweepgen();
        if let Some(s) = self.partial_swept(h).pop() {
            // SAFETY: spans in our sets belong to `heap`, which outlives 'h.
            let span = unsafe { s.get::<'h>() };
            // Popped from a swept set: we own it and it is at `h`.
            cache_word(span.sweepgen(), h);
            return Ok(span);
        }
        // Sweeping here registers with the sweep-done word like every other
        // sweeper, so "done" is never reported while this refill holds a
        // claim; once the generation is drained there is nothing unswept
        // left to find, so skip straight to growing.
        // (The plain load first: once sweeping is done, as it is for most
        // of a cycle, a refill pays no read-modify-write on the shared
        // word.)
        let sweeper = if heap.done.is_done() {
            None
        } else {
            heap.done.begin()
        };
        if let Some(_sweeper) = sweeper {
            let mut budget = SPAN_BUDGET;
            while budget > 0 {
                let Some(s) = self.partial_unswept(h).pop() else {
                    break;
                };
                budget -= 1;
                // SAFETY: as above.
                let span = unsafe { s.get::<'h>() };
                if let Some(claim) = try_claim(span, h) {
                    let start = Instant::now();
                    let span = self.sweep_for_cache(heap, claim);
                    heap.counters.add_time(Who::Alloc, start.elapsed());
                    return Ok(span);
                }
                // Someone else swept it through another route; they own it.
            }
            while budget > 0 {
                let Some(s) = self.full_unswept(h).pop() else {
                    break;
                };
                budget -= 1;
                // SAFETY: as above.
                let span = unsafe { s.get::<'h>() };
                if let Some(claim) = try_claim(span, h) {
                    let start = Instant::now();
                    let span = claim.span();
                    let d = heap.sweep_span(&claim, Some(self), Empty::Keep);
                    let kept = d != Dispose::KeepFull;
                    if kept {
                        claim.release_cached();
                    } else {
                        heap.dispose(claim, d, Some(self));
                    }
                    heap.counters.add_time(Who::Alloc, start.elapsed());
                    if kept {
                        return Ok(span);
                    }
                }
            }
        }
        let span = self.grow(heap, source)?;
        share.add(1);
        Ok(span)
    }

    /// Sweeps a claimed partial span and hands it to the cache. Sweeping
    /// an unswept *partial* span cannot fill it, and a wholly dead one is
    /// kept for the cache rather than freed (the seed's `preserve`).
    fn sweep_for_cache<'h>(&self, heap: &'h Mheap, claim: SweepClaim<'h>) -> &'h Span {
        let span = claim.span();
        heap.sweep_span(&claim, Some(self), Empty::Keep);
        debug_assert!(span.alloc_count() < span.nelems());
        claim.release_cached();
        span
    }

    /// A fresh span from the page heap, born swept and cached.
    fn grow<'h>(&self, heap: &'h Mheap, source: &mut SpanSource) -> Result<&'h Span, AllocError> {
        let h = heap.sweepgen();
        let span = heap.alloc_span(
            class_npages(self.key.class.size_class()),
            self.key.class,
            self.key.tag,
            source,
        )?;
        cache_word(span.sweepgen(), h);
        Ok(span)
    }

    /// Takes `span` back from a cache (see the module docs).
    pub(crate) fn uncache_span(&self, heap: &Mheap, span: &Span) {
        let h = heap.sweepgen();
        let sg = span.sweepgen().load(Relaxed);
        if sg == SpanSweepState::CachedUnswept.sweepgen(h) {
            // Cached since before the last advance: ours to sweep.
            let start = Instant::now();
            let claim = SweepClaim::from_stale_cached(span, h);
            let d = heap.sweep_span(&claim, Some(self), Empty::Reuse);
            heap.dispose(claim, d, Some(self));
            heap.counters.add_time(Who::Uncache, start.elapsed());
        } else {
            assert_eq!(
                sg,
                SpanSweepState::CachedSwept.sweepgen(h),
                "uncaching a span that is not cached: {span} (heap sweepgen {h})"
            );
            publish_word(span.sweepgen(), SpanSweepState::Swept, h);
            self.push_swept(span, h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_trade_each_generation() {
        for h in [0u32, 2, 4, 6, 1000] {
            assert_eq!(swept_index(h), unswept_index(h + 2));
            assert_ne!(swept_index(h), unswept_index(h));
        }
    }
}
