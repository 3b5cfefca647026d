//! Finding sweep work: the loop every party that sweeps "whatever is
//! next" runs (the background sweeper, proportional sweep, and
//! `finish_sweep`), and the shared cursor that spreads concurrent sweepers
//! over the centrals.
//!
//! [`Mheap::sweep_spans`] registers with the sweep-done word once per
//! batch, then repeatedly pops a span from an unswept set, claims it and
//! sweeps it, until its caller says stop or nothing is left (then it marks
//! the generation drained). The unswept sets are visited in registry order
//! through `sweep_cursor`: each central's partial, then full set, then the
//! large set; a sweeper that finds the cursor's sets empty moves the cursor
//! on. The cursor only moves forward within a generation, which is safe
//! because nothing is pushed onto an unswept set during a generation
//! (sweeping pushes onto the swept sets), and a central created during the
//! generation has nothing unswept.
//!
//! Each batch reads the clock twice, for the stats' sweep time by who
//! swept; sweeping a span itself reads no clock.

use crate::central::Central;
use crate::mheap::{CursorAt, Mheap};
use crate::spanset::SpanRef;
use crate::sweep::{Empty, Who};
use crate::sweepgen::{SweepClaim, try_claim};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// A sweeper's copy of where the shared cursor pointed when it last
/// looked, so that it reads the registry (a lock and an `Arc` clone) only
/// when the cursor moves.
struct LocalCursor {
    index: usize,
    at: CursorAt,
}

impl Mheap {
    /// Sweeps one span after another while `more()` (asked before each)
    /// says so and unswept spans are left (see the module docs). Returns
    /// whether the generation was found drained: nothing left to claim.
    pub(crate) fn sweep_spans(&self, who: Who, mut more: impl FnMut() -> bool) -> bool {
        let Some(sweeper) = self.done.begin() else {
            return true;
        };
        let start = Instant::now();
        let h = self.sweepgen();
        let mut cursor = LocalCursor {
            index: usize::MAX, // no cursor value: read on first use
            at: CursorAt::End,
        };
        let drained = loop {
            if !more() {
                break false;
            }
            let Some((claim, central)) = self.claim_next(h, &mut cursor) else {
                self.done.mark_drained(&sweeper);
                break true;
            };
            let d = self.sweep_span(&claim, central.as_deref(), Empty::Reuse);
            self.dispose(claim, d, central.as_deref());
        };
        self.counters.add_time(who, start.elapsed());
        drained
    }

    /// Pops unswept spans until one can be claimed; returns the claim and
    /// the span's central (`None` for a large span), or `None` when every
    /// unswept set is empty.
    fn claim_next(
        &self,
        h: u32,
        cursor: &mut LocalCursor,
    ) -> Option<(SweepClaim<'_>, Option<Arc<Central>>)> {
        loop {
            let (s, central) = self.next_unswept(h, cursor)?;
            // SAFETY: spans in our sets belong to our page heap.
            let span = unsafe { s.get::<'_>() };
            // A failed claim: the span was swept through another route
            // (the reclaimer), and this was a stale entry.
            if let Some(claim) = try_claim(span, h) {
                return Some((claim, central));
            }
        }
    }

    /// Pops the next span from an unswept set (see the module docs).
    fn next_unswept(
        &self,
        h: u32,
        cursor: &mut LocalCursor,
    ) -> Option<(SpanRef, Option<Arc<Central>>)> {
        loop {
            let i = self.sweep_cursor.load(Relaxed);
            if cursor.index != i {
                *cursor = LocalCursor {
                    index: i,
                    at: self.cursor_at(i),
                };
            }
            let found = match &cursor.at {
                CursorAt::Central(c) => c
                    .partial_unswept(h)
                    .pop()
                    .or_else(|| c.full_unswept(h).pop())
                    .map(|s| (s, Some(c.clone()))),
                CursorAt::Large => self.large_unswept(h).pop().map(|s| (s, None)),
                CursorAt::End => return None,
            };
            if found.is_some() {
                return found;
            }
            let _ = self
                .sweep_cursor
                .compare_exchange(i, i + 1, Relaxed, Relaxed);
        }
    }

    /// Sweeps everything left of this generation and waits for other
    /// sweepers to finish. Called before stopping the world, with mutators
    /// still running (the pause does no sweeping), and by `collect()` so its
    /// stats are final.
    pub fn finish_sweep(&self) {
        self.finish_sweep_by(None);
    }

    /// [`Mheap::finish_sweep`], but waits for other sweepers no longer than
    /// `limit`; returns whether the sweep is done. For a caller that must
    /// not wait on a sweeper indefinitely: one running a destructor that
    /// waits for the caller's thread (a join) would never finish.
    pub fn finish_sweep_within(&self, limit: std::time::Duration) -> bool {
        self.finish_sweep_by(Some(Instant::now() + limit))
    }

    fn finish_sweep_by(&self, deadline: Option<Instant>) -> bool {
        let mut spins = 0u32;
        loop {
            // Sweep again now and then while waiting: if a collection
            // began a new generation meanwhile, nobody else may sweep it.
            if spins.is_multiple_of(64) {
                self.sweep_spans(Who::Finish, || true);
            }
            // Other sweepers may still hold claims.
            if self.done.is_done() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            spins = spins.saturating_add(1);
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Sweeps enough to stay on the proportional sweep line before an
    /// allocation that adds `add` bytes to `heap_live` and takes `sub`
    /// out of it (a refill: the new span's bytes, the old span's unused
    /// slots; see `pacing`).
    pub(crate) fn deduct_sweep_credit(&self, add: usize, sub: usize) {
        let projected = || self.heap_live().saturating_add(add).saturating_sub(sub);
        if self.done.is_done() || !self.pacing.in_debt(projected()) {
            return;
        }
        self.sweep_spans(Who::Proportional, || self.pacing.in_debt(projected()));
    }
}
