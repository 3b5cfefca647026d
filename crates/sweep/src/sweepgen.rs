//! Sweep generations: which spans need sweeping, who sweeps each, and when
//! sweeping is done.
//!
//! The heap's sweep generation `h` advances by 2 at the end of every mark
//! phase. A span's own `sweepgen` says, relative to `h` (the seed's
//! comment on `mspan.sweepgen`):
//!
//! | span's sweepgen | meaning |
//! |---|---|
//! | `h - 2` | needs sweeping |
//! | `h - 1` | being swept (someone holds the claim) |
//! | `h`     | swept and ready to use |
//! | `h + 1` | cached by a mutator before this sweep began; still cached, needs sweeping |
//! | `h + 3` | swept, then cached by a mutator; still cached |
//! | `SWEEPGEN_DEAD` | the record describes no in-use span |
//!
//! The arithmetic is modulo 2^31 ([`SWEEPGEN_MASK`]), so that no live
//! state ever equals `SWEEPGEN_DEAD` (`u32::MAX`) when the counter wraps;
//! [`SpanSweepState::sweepgen`] computes each row of the table.
//!
//! Transitions, each by exactly one party:
//!
//! ```text
//!          advance (h += 2)         claim CAS            sweep done
//!   h ──────────────────────> h-2 ────────────> h-1 ────────────────> h
//!   │ cache (refill)                                   (or freed: DEAD)
//!   v            advance              uncache: store h-1, sweep
//!  h+3 ─────────────────────> h+1 ──────────────────────────────────> h
//!   │ uncache                                          (or freed: DEAD)
//!   └───────────────> h
//! ```
//!
//! **Claiming** a span for sweeping is a CAS from `h-2` to `h-1`
//! ([`try_claim`]): whoever wins sweeps it; everyone else moves on. The win
//! is a [`SweepClaim`], a witness value that only a successful CAS returns
//! and that the sweep function consumes, so code that has not claimed a
//! span cannot sweep it. Mutators never CAS: a span they cache was swept
//! first (so it is at `h`, and only its owner may change it), and a stale
//! cached span (`h+1`) is owned by the cache, which stores `h-1` itself.
//!
//! Spans allocated during a cycle are born swept (`h`): the page heap
//! stores the sweepgen before publishing the span.
//!
//! # Sweep done
//!
//! "Sweeping is done for this generation" is one atomic word
//! ([`SweepDone`]): a *drained* bit, set once no unswept span is left to
//! hand out, plus a count of sweepers active. Sweeping is done exactly
//! when the word equals the drained bit alone. Every party that claims
//! spans registers first (the background sweeper, `finish_sweep`,
//! proportional sweep, a cache refill sweeping its class, the page
//! reclaimer) and is refused once the drained bit is set, so the word can
//! never go from done back to not done within a generation (Go issues
//! 45315 and 46500, where a flag that was set early flapped back), and
//! "done" is never reported while a registered party still holds a claim.
//!
//! The one exception is a stale cached span (`h+1`): it is in no span set,
//! and its owner sweeps it when it next flushes its cache, registered or
//! not. "Done" therefore means "every span not held by a stale cache is
//! swept"; the protocol requires every cache to be flushed after a
//! collection before the next one marks (the facade's world protocol
//! ensures it, and `Mheap::verify` checks it).

use crate::primitive::{AtomicU32, Word32};
use spangc_arena::span::{SWEEPGEN_DEAD, Span, SpanState};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

/// A span's sweep state relative to the heap's generation. See the module
/// docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanSweepState {
    /// `h - 2`: needs sweeping.
    NeedsSweep,
    /// `h - 1`: someone holds the claim.
    BeingSwept,
    /// `h`: swept and ready.
    Swept,
    /// `h + 1`: cached since before this generation; needs sweeping when
    /// uncached.
    CachedUnswept,
    /// `h + 3`: swept, then cached.
    CachedSwept,
    /// `SWEEPGEN_DEAD`: describes no in-use span.
    Dead,
}

/// Sweep generations are counted modulo 2^31: the heap's `h` and every
/// value derived from it (`h - 2` ... `h + 3`) are masked to 31 bits, so
/// none of them can ever equal [`SWEEPGEN_DEAD`] (`u32::MAX`). Plain
/// 32-bit wrapping would let `h - 1` (when `h` wraps to 0) or `h + 1` (when
/// `h` is `u32::MAX - 1`) collide with it, and a span being swept or cached
/// would then read as dead. Only parity and differences up to 4 matter, so
/// 31 bits lose nothing: the counter wraps after 2^30 collections.
pub const SWEEPGEN_MASK: u32 = (1 << 31) - 1;

impl SpanSweepState {
    /// Every state, for tests and tables.
    pub const ALL: [SpanSweepState; 6] = [
        SpanSweepState::NeedsSweep,
        SpanSweepState::BeingSwept,
        SpanSweepState::Swept,
        SpanSweepState::CachedUnswept,
        SpanSweepState::CachedSwept,
        SpanSweepState::Dead,
    ];

    /// The span sweepgen that means `self` when the heap's generation is
    /// `h` (the table in the module docs, masked to 31 bits).
    #[inline]
    pub const fn sweepgen(self, h: u32) -> u32 {
        let delta: i32 = match self {
            SpanSweepState::NeedsSweep => -2,
            SpanSweepState::BeingSwept => -1,
            SpanSweepState::Swept => 0,
            SpanSweepState::CachedUnswept => 1,
            SpanSweepState::CachedSwept => 3,
            SpanSweepState::Dead => return SWEEPGEN_DEAD,
        };
        h.wrapping_add(delta as u32) & SWEEPGEN_MASK
    }

    /// Classifies a span's `sweepgen` `sg` against the heap's `h`; panics
    /// on a value no protocol step produces.
    ///
    /// The relative states are tested first: `SWEEPGEN_DEAD` (u32::MAX) is
    /// also `h - 1`, `h + 1` or `h + 3` for three values of `h` (the counter
    /// wraps), so for a record that may not describe an in-use span the
    /// caller must check the span's state before trusting this. (Claims
    /// are unaffected: they compare against the even `h - 2`.)
    pub fn of(sg: u32, h: u32) -> SpanSweepState {
        SpanSweepState::ALL
            .into_iter()
            .find(|s| s.sweepgen(h) == sg)
            .unwrap_or_else(|| {
                panic!("sweepgen {sg} is not a valid state relative to heap sweepgen {h}")
            })
    }
}

/// The heap's sweep generation counter `h` (starts at 0, +2 per cycle,
/// wraps at 2^31: see [`SWEEPGEN_MASK`]).
pub(crate) fn next_generation(h: u32) -> u32 {
    h.wrapping_add(2) & SWEEPGEN_MASK
}

/// The protocol on a sweepgen word, generic over the atomic so that the
/// loom models run it on a model span.
pub(crate) fn try_claim_word(sweepgen: &impl Word32, h: u32) -> bool {
    let want = SpanSweepState::NeedsSweep.sweepgen(h);
    // The plain load first avoids the CAS's cache-line ownership traffic
    // when (as usual for a scan) the span was swept already. Acquire on
    // success: we must see the previous owner's writes to the span.
    sweepgen.load(Relaxed) == want
        && sweepgen
            .compare_exchange(
                want,
                SpanSweepState::BeingSwept.sweepgen(h),
                AcqRel,
                Relaxed,
            )
            .is_ok()
}

/// Ends a claim, or a cache's hold on a span, by storing `to` with
/// Release: whoever next takes the span (a claim CAS, which acquires, or a
/// span-set pop after the push that follows this store) sees every write
/// the owner made to it.
#[inline]
pub(crate) fn publish_word(sweepgen: &impl Word32, to: SpanSweepState, h: u32) {
    sweepgen.store(to.sweepgen(h), Release);
}

/// A cache takes a span that it popped from a swept set (or that was just
/// allocated for it): `h + 3`. Relaxed: the pop (or the page heap's
/// publication) already ordered the take after the previous owner's
/// writes, and nobody else reads a cached span's state to act on it.
#[inline]
pub(crate) fn cache_word(sweepgen: &impl Word32, h: u32) {
    sweepgen.store(SpanSweepState::CachedSwept.sweepgen(h), Relaxed);
}

/// Proof that the holder won the sweep claim on a span for generation `h`.
/// Only [`try_claim`] and the cache's stale-uncache path make one; sweeping
/// consumes it. See the module docs.
#[must_use = "a claimed span must be swept, or it stays 'being swept' forever"]
pub struct SweepClaim<'a> {
    span: &'a Span,
    h: u32,
}

impl<'a> SweepClaim<'a> {
    /// The claimed span.
    pub fn span(&self) -> &'a Span {
        self.span
    }

    /// The generation the claim is for.
    pub fn generation(&self) -> u32 {
        self.h
    }

    /// Ends the claim with the span swept (`h`), publishing the sweeper's
    /// writes to whoever reads the span next.
    pub(crate) fn release_swept(self) {
        publish_word(self.span.sweepgen(), SpanSweepState::Swept, self.h);
    }

    /// Ends the claim with the span freed (the page heap stores
    /// `SWEEPGEN_DEAD` itself); consumes the witness.
    pub(crate) fn release_freed(self) {}

    /// Ends the claim with the span swept and handed straight to a cache
    /// (`h + 3`).
    pub(crate) fn release_cached(self) {
        publish_word(self.span.sweepgen(), SpanSweepState::CachedSwept, self.h);
    }

    /// Claims a stale cached span (`h + 1`) being uncached by its owner
    /// (nobody else may touch a cached span, so a store suffices).
    pub(crate) fn from_stale_cached(span: &'a Span, h: u32) -> SweepClaim<'a> {
        let sg = span.sweepgen().load(Relaxed);
        assert_eq!(
            SpanSweepState::of(sg, h),
            SpanSweepState::CachedUnswept,
            "uncaching a stale span in the wrong state: {span}"
        );
        span.sweepgen()
            .store(SpanSweepState::BeingSwept.sweepgen(h), Relaxed);
        SweepClaim { span, h }
    }
}

/// Claims `span` for sweeping in generation `h` if it is an in-use span
/// that needs sweeping and nobody else claimed it first.
pub fn try_claim(span: &Span, h: u32) -> Option<SweepClaim<'_>> {
    // State first (Acquire pairs with the page heap's Release publication):
    // a record that is dead or free is never claimable, even if a stale
    // sweepgen matched.
    if span.state_acquire() != SpanState::InUse {
        return None;
    }
    try_claim_word(span.sweepgen(), h).then_some(SweepClaim { span, h })
}

/// The sweep-done word (see the module docs).
pub(crate) struct SweepDone {
    state: AtomicU32,
}

const DRAINED: u32 = 1 << 31;

/// A registered sweeper; dropping it deregisters.
pub(crate) struct ActiveSweeper<'a> {
    done: &'a SweepDone,
}

impl SweepDone {
    pub(crate) fn new() -> SweepDone {
        SweepDone {
            state: AtomicU32::new(0),
        }
    }

    /// Registers a sweeper, or `None` if the generation is drained (there
    /// is nothing left to claim).
    pub(crate) fn begin(&self) -> Option<ActiveSweeper<'_>> {
        let mut s = self.state.load(Relaxed);
        loop {
            if s & DRAINED != 0 {
                return None;
            }
            match self.state.compare_exchange_weak(s, s + 1, Acquire, Relaxed) {
                Ok(_) => return Some(ActiveSweeper { done: self }),
                Err(now) => s = now,
            }
        }
    }

    /// Records that no unswept span is left to hand out. Called by a
    /// registered sweeper that found nothing.
    pub(crate) fn mark_drained(&self, _by: &ActiveSweeper<'_>) {
        self.state.fetch_or(DRAINED, Release);
    }

    /// Whether every span of this generation is swept: drained and no
    /// sweeper still working.
    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Acquire) == DRAINED
    }

    /// Resets for a new generation (the world is stopped).
    pub(crate) fn reset(&self) {
        let s = self.state.load(Relaxed);
        assert_eq!(
            s, DRAINED,
            "starting a sweep generation before the last one finished (state {s:#x})"
        );
        self.state.store(0, Release);
    }
}

impl Drop for ActiveSweeper<'_> {
    fn drop(&mut self) {
        // Release: the sweeper's work happens-before whoever sees `done`.
        self.done.state.fetch_sub(1, Release);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Heap generations to test at: the start, ordinary values, and both
    /// sides of the wrap at 2^31.
    const GENERATIONS: [u32; 6] = [0, 2, 1000, SWEEPGEN_MASK - 3, SWEEPGEN_MASK - 1, 1];

    #[test]
    fn classify_every_state() {
        for h in GENERATIONS {
            let h = h & !1;
            for s in SpanSweepState::ALL {
                assert_eq!(SpanSweepState::of(s.sweepgen(h), h), s, "h = {h}");
            }
            assert_eq!(
                SpanSweepState::of(h.wrapping_sub(2) & SWEEPGEN_MASK, h),
                SpanSweepState::NeedsSweep
            );
            assert_eq!(SpanSweepState::of(h, h), SpanSweepState::Swept);
            assert_eq!(SpanSweepState::of(SWEEPGEN_DEAD, h), SpanSweepState::Dead);
        }
    }

    /// Regression: with plain 32-bit wrapping, `h - 1` at `h == 0` and
    /// `h + 1` at `h == u32::MAX - 1` were `SWEEPGEN_DEAD`, so a span being
    /// swept (or a stale cached span, whose uncache asserts its state)
    /// read as dead once the counter wrapped.
    #[test]
    fn no_live_state_is_dead_across_the_wrap() {
        let mut h = SWEEPGEN_MASK - 5;
        for _ in 0..8 {
            for s in SpanSweepState::ALL
                .into_iter()
                .filter(|&s| s != SpanSweepState::Dead)
            {
                assert_ne!(s.sweepgen(h), SWEEPGEN_DEAD, "{s:?} at h = {h}");
                assert!(s.sweepgen(h) <= SWEEPGEN_MASK);
            }
            let next = next_generation(h);
            // Spans swept in generation h need sweeping in the next one.
            assert_eq!(
                SpanSweepState::NeedsSweep.sweepgen(next),
                SpanSweepState::Swept.sweepgen(h),
                "h = {h}"
            );
            // Spans cached swept in h are cached stale in the next one.
            assert_eq!(
                SpanSweepState::CachedUnswept.sweepgen(next),
                SpanSweepState::CachedSwept.sweepgen(h),
                "h = {h}"
            );
            h = next;
        }
        assert_eq!(next_generation(SWEEPGEN_MASK - 1), 0, "wraps to 0");
    }

    #[test]
    #[should_panic(expected = "not a valid state")]
    fn classify_rejects_garbage() {
        SpanSweepState::of(10, 100);
    }

    #[test]
    fn dead_sweepgen_is_never_claimable() {
        // h - 2 is even for every even h; SWEEPGEN_DEAD is odd.
        for h in (0..=SWEEPGEN_MASK)
            .step_by(1 << 20)
            .chain([SWEEPGEN_MASK - 1])
        {
            let h = h & !1;
            assert_ne!(SpanSweepState::NeedsSweep.sweepgen(h), SWEEPGEN_DEAD);
            assert_ne!(next_generation(h) & 1, 1);
            let w = std::sync::atomic::AtomicU32::new(SWEEPGEN_DEAD);
            assert!(!try_claim_word(&w, h));
        }
    }

    #[test]
    fn claim_word_once() {
        let w = std::sync::atomic::AtomicU32::new(4);
        assert!(try_claim_word(&w, 6));
        assert_eq!(w.load(Relaxed), 5);
        assert!(!try_claim_word(&w, 6), "second claim must fail");
    }

    #[test]
    fn sweep_done_never_flaps() {
        let d = SweepDone::new();
        let a = d.begin().unwrap();
        let b = d.begin().unwrap();
        d.mark_drained(&a);
        assert!(!d.is_done(), "b is still active");
        assert!(d.begin().is_none(), "no new sweeper after drained");
        drop(a);
        assert!(!d.is_done());
        drop(b);
        assert!(d.is_done());
        assert!(d.begin().is_none());
        assert!(d.is_done(), "still done");
        d.reset();
        assert!(!d.is_done());
    }
}
