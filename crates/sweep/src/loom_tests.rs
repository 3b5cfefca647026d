//! Loom models of the sweep protocol, run with
//! `RUSTFLAGS="--cfg loom" cargo test -p spangc-sweep --release --lib loom`.
//!
//! The models run the crate's own protocol functions (`try_claim_word`,
//! `publish_word`, `cache_word`, `SweepDone`) on a model span whose
//! sweepgen is a loom atomic and whose allocation state is a loom
//! `UnsafeCell`, so loom reports any access to the span that the protocol
//! does not order (a sweeper and an allocator touching it concurrently) as
//! well as the assertions failing. Span sets are modelled as locked
//! vectors: crossbeam's `Injector` is not loom-aware, and what the protocol
//! needs of it (a pop happens after the push it returns) a lock gives too.

use crate::primitive::AtomicU32;
use crate::sweepgen::{SpanSweepState, SweepDone, cache_word, publish_word, try_claim_word};
use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicUsize;
use loom::sync::{Arc, Mutex};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

/// The heap generation the models run in: the span starts at `h - 2`.
const H: u32 = 4;

/// A span as far as the protocol is concerned.
struct ModelSpan {
    sweepgen: AtomicU32,
    /// The span's allocation state (owned by a claim holder or a cache).
    state: UnsafeCell<SpanState>,
}

struct SpanState {
    /// The generation it was last swept for.
    swept_for: u32,
    sweeps: u32,
    allocated: u32,
}

impl ModelSpan {
    fn unswept() -> ModelSpan {
        ModelSpan {
            sweepgen: AtomicU32::new(SpanSweepState::NeedsSweep.sweepgen(H)),
            state: UnsafeCell::new(SpanState {
                swept_for: H - 2,
                sweeps: 0,
                allocated: 0,
            }),
        }
    }

    /// Sweeps the span; the caller holds the claim.
    fn sweep(&self) {
        self.state.with_mut(|s| {
            // SAFETY: the claim makes this thread the span's only user
            // (loom checks exactly that).
            let s = unsafe { &mut *s };
            assert_eq!(s.swept_for, H - 2, "swept twice in one generation");
            s.swept_for = H;
            s.sweeps += 1;
        });
    }

    /// Allocates from the span; the caller holds it in its cache.
    fn allocate(&self) {
        self.state.with_mut(|s| {
            // SAFETY: the cache owns the span (loom checks it).
            let s = unsafe { &mut *s };
            assert_eq!(s.swept_for, H, "the allocator used an unswept span");
            s.allocated += 1;
        });
    }

    fn sweeps(&self) -> u32 {
        // SAFETY: callers read after every user is done (loom checks it).
        self.state.with(|s| unsafe { (*s).sweeps })
    }
}

/// A span set: pushing and popping the one model span.
type Set = Mutex<Vec<()>>;

fn pop(set: &Set) -> bool {
    set.lock().unwrap().pop().is_some()
}

fn push(set: &Set) {
    set.lock().unwrap().push(());
}

/// Two sweepers and one allocator race for one span that needs sweeping,
/// on the paths the heap really has:
///
/// * the background sweeper (`Mheap::sweep_one` in a loop): registers,
///   pops the unswept set, claims, sweeps, publishes `h`, pushes the span
///   on the swept set; drains the generation when the set is empty;
/// * the page reclaimer: registers, finds the span without any set (by
///   its page bits), claims, sweeps, publishes, pushes it on the swept set
///   (leaving a stale entry in the unswept set);
/// * a cache refill (`Central::cache_span`), on this thread: pops the
///   swept set and caches the span (`h + 3`); else registers, pops the
///   unswept set, claims, sweeps and caches; then allocates from it.
///
/// Checked: exactly one party sweeps the span; the allocator never uses it
/// unswept (nor concurrently with a sweep: loom's cell check); the span
/// ends cached or in the swept set, never both; and whenever the
/// allocator sees the generation done, the sweep is complete and visible.
#[test]
fn loom_two_sweepers_and_an_allocator() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let span = Arc::new(ModelSpan::unswept());
        let unswept: Arc<Set> = Arc::new(Mutex::new(vec![()]));
        let swept: Arc<Set> = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(SweepDone::new());

        let background = {
            let (span, unswept, swept, done) =
                (span.clone(), unswept.clone(), swept.clone(), done.clone());
            loom::thread::spawn(move || {
                let Some(me) = done.begin() else { return };
                while pop(&unswept) {
                    if try_claim_word(&span.sweepgen, H) {
                        span.sweep();
                        publish_word(&span.sweepgen, SpanSweepState::Swept, H);
                        push(&swept);
                    }
                }
                done.mark_drained(&me);
            })
        };
        let reclaimer = {
            let (span, swept, done) = (span.clone(), swept.clone(), done.clone());
            loom::thread::spawn(move || {
                let Some(_me) = done.begin() else { return };
                if try_claim_word(&span.sweepgen, H) {
                    span.sweep();
                    publish_word(&span.sweepgen, SpanSweepState::Swept, H);
                    push(&swept);
                }
            })
        };

        // The refill.
        if done.is_done() {
            assert_eq!(span.sweeps(), 1, "done before the span was swept");
        }
        let cached = if pop(&swept) {
            cache_word(&span.sweepgen, H);
            true
        } else if let Some(_me) = done.begin() {
            let claimed = pop(&unswept) && try_claim_word(&span.sweepgen, H);
            if claimed {
                span.sweep();
                publish_word(&span.sweepgen, SpanSweepState::CachedSwept, H);
            }
            claimed
        } else {
            false
        };
        if cached {
            span.allocate();
        }

        background.join().unwrap();
        reclaimer.join().unwrap();
        assert_eq!(span.sweeps(), 1, "exactly one party sweeps the span");
        assert!(
            done.is_done(),
            "the background sweeper drained the generation"
        );
        let sg = span.sweepgen.load(Relaxed);
        let in_swept = swept.lock().unwrap().len();
        if cached {
            assert_eq!(SpanSweepState::of(sg, H), SpanSweepState::CachedSwept);
            assert_eq!(in_swept, 0, "cached and in a set");
        } else {
            assert_eq!(SpanSweepState::of(sg, H), SpanSweepState::Swept);
            assert_eq!(in_swept, 1, "swept but in no set");
        }
    });
}

/// The claim CAS on its own: of two sweepers, exactly one claims the span,
/// and a reader that sees it swept sees the sweep's writes.
#[test]
fn loom_claim_word() {
    loom::model(|| {
        let sg = Arc::new(AtomicU32::new(SpanSweepState::NeedsSweep.sweepgen(H)));
        let data = Arc::new(AtomicUsize::new(0)); // "swept contents"
        let wins = Arc::new(AtomicUsize::new(0));
        let sweepers: Vec<_> = (0..2)
            .map(|_| {
                let (sg, data, wins) = (sg.clone(), data.clone(), wins.clone());
                loom::thread::spawn(move || {
                    if try_claim_word(&*sg, H) {
                        wins.fetch_add(1, SeqCst);
                        data.store(1, Relaxed); // the sweep's writes
                        publish_word(&*sg, SpanSweepState::Swept, H);
                    }
                })
            })
            .collect();
        let s = sg.load(Acquire);
        if s == H {
            assert_eq!(
                data.load(Relaxed),
                1,
                "saw swept sweepgen but not the sweep"
            );
        } else {
            assert!(s == H - 2 || s == H - 1, "unexpected {s}");
        }
        for t in sweepers {
            t.join().unwrap();
        }
        assert_eq!(wins.load(SeqCst), 1, "exactly one sweeper claims the span");
        assert_eq!(sg.load(Relaxed), H);
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
                    seen_done.store(1, Release);
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
        if seen_done.load(Acquire) == 1 {
            assert!(d.is_done(), "flapped back");
        }
    });
}
