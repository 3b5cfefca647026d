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
//! when the word equals the drained bit alone. A sweeper registers before
//! looking for work and is refused once the drained bit is set, so the
//! word can never go from done back to not done within a generation (Go
//! issues 45315 and 46500, where a flag that was set early flapped back).

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

impl SpanSweepState {
    /// Classifies a span's `sweepgen` `sg` against the heap's `h`; panics
    /// on a value no protocol step produces.
    ///
    /// The relative states are tested first: `SWEEPGEN_DEAD` (u32::MAX) is
    /// also `h - 1`, `h + 1` or `h + 3` for three values of `h` (the counter
    /// wraps), so for a record that may not describe an in-use span the
    /// caller must check the span's state before trusting this. (Claims
    /// are unaffected: they compare against the even `h - 2`.)
    pub fn of(sg: u32, h: u32) -> SpanSweepState {
        match sg {
            _ if sg == h.wrapping_sub(2) => SpanSweepState::NeedsSweep,
            _ if sg == h.wrapping_sub(1) => SpanSweepState::BeingSwept,
            _ if sg == h => SpanSweepState::Swept,
            _ if sg == h.wrapping_add(1) => SpanSweepState::CachedUnswept,
            _ if sg == h.wrapping_add(3) => SpanSweepState::CachedSwept,
            SWEEPGEN_DEAD => SpanSweepState::Dead,
            _ => panic!("sweepgen {sg} is not a valid state relative to heap sweepgen {h}"),
        }
    }
}

/// The heap's sweep generation counter `h` (starts at 0, +2 per cycle; it
/// wraps, which the relative states tolerate, and never equals
/// `SWEEPGEN_DEAD`'s parity).
pub(crate) fn next_generation(h: u32) -> u32 {
    h.wrapping_add(2)
}

/// The protocol on a sweepgen word, generic over the atomic so that the
/// loom models run it on a model span.
pub(crate) fn try_claim_word(sweepgen: &impl Word32, h: u32) -> bool {
    let want = h.wrapping_sub(2);
    // The plain load first avoids the CAS's cache-line ownership traffic
    // when (as usual for a scan) the span was swept already. Acquire on
    // success: we must see the previous owner's writes to the span.
    sweepgen.load(Relaxed) == want
        && sweepgen
            .compare_exchange(want, h.wrapping_sub(1), AcqRel, Relaxed)
            .is_ok()
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
        self.span.sweepgen().store(self.h, Release);
    }

    /// Ends the claim with the span freed (the page heap stores
    /// `SWEEPGEN_DEAD` itself); consumes the witness.
    pub(crate) fn release_freed(self) {}

    /// Ends the claim with the span swept and handed straight to a cache
    /// (`h + 3`).
    pub(crate) fn release_cached(self) {
        self.span.sweepgen().store(self.h.wrapping_add(3), Release);
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
        span.sweepgen().store(h.wrapping_sub(1), Relaxed);
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

    #[test]
    fn classify_every_state() {
        for h in [0u32, 2, 1000, u32::MAX - 5] {
            let h = h & !1;
            assert_eq!(
                SpanSweepState::of(h.wrapping_sub(2), h),
                SpanSweepState::NeedsSweep
            );
            assert_eq!(
                SpanSweepState::of(h.wrapping_sub(1), h),
                SpanSweepState::BeingSwept
            );
            assert_eq!(SpanSweepState::of(h, h), SpanSweepState::Swept);
            assert_eq!(
                SpanSweepState::of(h.wrapping_add(1), h),
                SpanSweepState::CachedUnswept
            );
            assert_eq!(
                SpanSweepState::of(h.wrapping_add(3), h),
                SpanSweepState::CachedSwept
            );
            let odd = [h.wrapping_sub(1), h.wrapping_add(1), h.wrapping_add(3)];
            if !odd.contains(&SWEEPGEN_DEAD) {
                assert_eq!(SpanSweepState::of(SWEEPGEN_DEAD, h), SpanSweepState::Dead);
            }
        }
    }

    #[test]
    #[should_panic(expected = "not a valid state")]
    fn classify_rejects_garbage() {
        SpanSweepState::of(10, 100);
    }

    #[test]
    fn dead_sweepgen_is_never_claimable() {
        // h - 2 is even for every even h; SWEEPGEN_DEAD is odd.
        for h in (0..=u32::MAX).step_by(1 << 20) {
            let h = h & !1;
            assert_ne!(h.wrapping_sub(2), SWEEPGEN_DEAD);
            assert_ne!(next_generation(h) & 1, 1);
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

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicUsize;
    use std::sync::atomic::Ordering::SeqCst;

    /// Two sweepers and one allocator race for one span in generation
    /// h = 4 (span at 2 = needs sweeping). Exactly one sweeper claims it;
    /// the allocator uses the span only after seeing it swept (4), never
    /// while unswept.
    #[test]
    fn loom_two_sweepers_and_an_allocator() {
        loom::model(|| {
            let h = 4u32;
            let sg = Arc::new(AtomicU32::new(h - 2));
            let data = Arc::new(AtomicUsize::new(0)); // "swept contents"
            let wins = Arc::new(AtomicUsize::new(0));
            let sweepers: Vec<_> = (0..2)
                .map(|_| {
                    let (sg, data, wins) = (sg.clone(), data.clone(), wins.clone());
                    loom::thread::spawn(move || {
                        if try_claim_word(&*sg, h) {
                            wins.fetch_add(1, SeqCst);
                            data.store(1, Relaxed); // the sweep's writes
                            sg.store(h, Release); // release the claim: swept
                        }
                    })
                })
                .collect();
            // The allocator (a cache refill): takes the span only if swept.
            let s = sg.load(Acquire);
            if s == h {
                assert_eq!(
                    data.load(Relaxed),
                    1,
                    "saw swept sweepgen but not the sweep"
                );
            } else {
                assert!(s == h - 2 || s == h - 1, "unexpected {s}");
            }
            for t in sweepers {
                t.join().unwrap();
            }
            assert_eq!(wins.load(SeqCst), 1, "exactly one sweeper claims the span");
            assert_eq!(sg.load(Relaxed), h);
        });
    }

    /// The done word: a sweeper that registered before the drain keeps the
    /// generation not-done until it finishes; once done, it stays done.
    #[test]
    fn loom_sweep_done_does_not_flap() {
        loom::model(|| {
            let d = Arc::new(SweepDone::new());
            let seen_done = Arc::new(AtomicUsize::new(0));
            let t = {
                let (d, seen_done) = (d.clone(), seen_done.clone());
                loom::thread::spawn(move || {
                    if let Some(s) = d.begin() {
                        d.mark_drained(&s);
                    }
                    if d.is_done() {
                        seen_done.store(1, SeqCst);
                    }
                })
            };
            let me = d.begin();
            if let Some(s) = &me {
                d.mark_drained(s);
                assert!(!d.is_done(), "done while a sweeper is active");
            }
            drop(me);
            t.join().unwrap();
            assert!(d.is_done(), "both sweepers finished after the drain");
            if seen_done.load(SeqCst) == 1 {
                assert!(d.is_done(), "flapped back");
            }
        });
    }
}
