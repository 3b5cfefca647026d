//! The sweep layer's heap verifier: a slow walk that re-derives every
//! count and placement the fast paths maintain (mimalloc's habit of a
//! validity walker for the counting invariants).
//!
//! [`Mheap::verify`] runs with the world stopped, after sweeping finished
//! and every cache flushed since the last collection, before marking. It
//! checks, and describes the first violation of:
//!
//! 1. the page heap's own accounting ([`PageHeap::verify`](spangc_arena::PageHeap::verify));
//! 2. sweeping is done, and the generation swept exactly the spans that
//!    were in use at its start (claims counted against the count at the
//!    advance; with every span now swept, equal counts mean none was swept
//!    twice);
//! 3. every unswept span set is empty; every span in a swept set is in use,
//!    swept, in exactly one set, in its own central's set (span class and
//!    type tag), partial exactly when it has a free slot, and large spans
//!    are in the large set only;
//! 4. every in-use span is either in a set (swept) or held by a cache
//!    (cached swept): none is lost, none is stale-cached, none is
//!    unswept; a swept span's `alloc_count` equals the popcount of its
//!    alloc bits plus the slots below `free_index`; no mark bit is set;
//! 5. the span counts (large spans, and per central) equal the walk's;
//! 6. `heap_live` equals what the protocol says it is (module docs of
//!    `mheap`): allocated bytes of swept small spans, whole spans for the
//!    spans caches hold (a refill counts every free slot as live until the
//!    cache gives the span back), and whole large spans.

use crate::central::CentralKey;
use crate::mheap::Mheap;
use crate::spanset::{SpanRef, SpanSet};
use crate::sweep::allocated_count;
use crate::sweepgen::SpanSweepState;
use spangc_arena::sizeclass::SpanClass;
use spangc_arena::span::Span;
use spangc_arena::{PAGE_SIZE, SpanState};
use spangc_gcbits::SpanBits;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;

/// Where the verifier found a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Partial(CentralKey),
    Full(CentralKey),
    Large,
}

/// The first violation found, keeping the walk going so that every set
/// drained is pushed back.
#[derive(Default)]
struct Findings(Option<String>);

impl Findings {
    fn check(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok && self.0.is_none() {
            self.0 = Some(msg());
        }
    }
}

impl Mheap {
    /// Checks the sweep layer's invariants (see the module docs of
    /// `verify.rs`); describes the first violation.
    ///
    /// Call it with the world stopped (no thread allocating or sweeping),
    /// after [`Mheap::finish_sweep`], after every cache has flushed since
    /// the last collection ([`MCache::prepare_for_sweep`](crate::MCache::prepare_for_sweep)),
    /// and before marking (it expects every mark bit clear).
    pub fn verify(&self) -> Result<(), String> {
        self.page_heap().verify().map_err(|e| e.to_string())?;
        if !self.done.is_done() {
            return Err("sweeping not finished".into());
        }
        let h = self.sweepgen();
        let mut f = Findings::default();
        let places = self.verify_sets(h, &mut f);
        if let Some(e) = f.0 {
            return Err(e);
        }
        self.verify_spans(h, &places, &mut f);
        // Last: with every span now found swept, equal counts mean none
        // was swept twice (the more specific findings above come first).
        let expected = self.in_use_at_advance.load(Relaxed);
        let swept = self.swept_this_gen.load(Relaxed);
        f.check(
            swept == expected || self.counters.cycles.load(Relaxed) == 0,
            || {
                format!(
                    "{swept} spans swept this generation, but {expected} were in use at its start: \
                 every one must be swept exactly once"
                )
            },
        );
        f.0.map_or(Ok(()), Err)
    }

    /// Checks 3 of the module docs; returns where each span in a set is.
    fn verify_sets(&self, h: u32, f: &mut Findings) -> HashMap<SpanRef, Place> {
        let mut places = HashMap::new();
        let mut visit = |set: &SpanSet, place: Place, what: &str| {
            let spans = set.drain();
            for &s in &spans {
                // SAFETY: spans in our sets are records of our page heap,
                // which `self` owns.
                let span = unsafe { s.get::<'_>() };
                f.check(!what.contains("unswept"), || {
                    format!("{span} is left in a {what} set after sweeping finished")
                });
                if let Some(prev) = places.insert(s, place) {
                    f.check(false, || {
                        format!("{span} is in two span sets ({prev:?} and {what})")
                    });
                }
                f.check(span.state() == SpanState::InUse, || {
                    format!("{span} in a span set is not in use")
                });
                let sg = span.sweepgen().load(Relaxed);
                f.check(SpanSweepState::of(sg, h) == SpanSweepState::Swept, || {
                    format!("{span} in a span set is not swept (heap sweepgen {h})")
                });
                let large = span.span_class_raw() <= 1;
                match place {
                    Place::Large => {
                        f.check(large, || format!("{span} is small but in the large set"))
                    }
                    Place::Partial(key) | Place::Full(key) => {
                        f.check(
                            !large
                                && SpanClass::from_raw(span.span_class_raw()) == Some(key.class)
                                && span.type_tag() == key.tag,
                            || {
                                format!(
                                    "{span} (tag {:#x}) is in the set of {key:?}",
                                    span.type_tag()
                                )
                            },
                        );
                        let full = span.alloc_count() == span.nelems();
                        f.check(full == matches!(place, Place::Full(_)), || {
                            format!("{span} is in the {what} set")
                        });
                    }
                }
            }
            for s in spans {
                // SAFETY: as above.
                set.push(unsafe { s.get::<'_>() });
            }
        };
        for c in self.all_centrals() {
            let k = c.key;
            visit(c.partial_unswept(h), Place::Partial(k), "partial unswept");
            visit(c.full_unswept(h), Place::Full(k), "full unswept");
            visit(c.partial_swept(h), Place::Partial(k), "partial swept");
            visit(c.full_swept(h), Place::Full(k), "full swept");
        }
        visit(self.large_unswept(h), Place::Large, "large unswept");
        visit(self.large_swept(h), Place::Large, "large swept");
        places
    }

    /// Checks 4 to 6 of the module docs.
    fn verify_spans(&self, h: u32, places: &HashMap<SpanRef, Place>, f: &mut Findings) {
        let mut total = 0usize;
        let mut in_sets = 0usize;
        let mut per_central: HashMap<CentralKey, usize> = HashMap::new();
        let mut live = 0usize;
        self.for_each_in_use_span(|span: &Span| {
            total += 1;
            let large = span.span_class_raw() <= 1;
            if !large {
                let class = SpanClass::from_raw(span.span_class_raw()).expect("span class");
                *per_central
                    .entry(CentralKey {
                        class,
                        tag: span.type_tag(),
                    })
                    .or_default() += 1;
            }
            let sg = span.sweepgen().load(Relaxed);
            match SpanSweepState::of(sg, h) {
                SpanSweepState::Swept => {
                    let placed = places.contains_key(&SpanRef::new(span));
                    f.check(placed, || format!("{span} is swept but in no span set (lost)"));
                    in_sets += usize::from(placed);
                    let counted = allocated_count(span);
                    f.check(counted == span.alloc_count(), || {
                        format!(
                            "{span}: alloc_count {} but {counted} slots allocated (alloc bits + below free_index)",
                            span.alloc_count()
                        )
                    });
                    live += if large {
                        span.npages() * PAGE_SIZE
                    } else {
                        span.alloc_count() as usize * span.elem_size()
                    };
                }
                SpanSweepState::CachedSwept => {
                    f.check(!large, || format!("{span} is large but cached"));
                    live += span.nelems() as usize * span.elem_size();
                }
                SpanSweepState::CachedUnswept => f.check(false, || {
                    format!(
                        "{span} is held by a cache that was not flushed since the last collection \
                         (prepare_for_sweep)"
                    )
                }),
                other => f.check(false, || format!("{span} is {other:?} after sweeping finished")),
            }
            f.check(span.count_marked() == 0, || {
                format!("{span} has {} mark bits set before marking", span.count_marked())
            });
        });
        f.check(in_sets == places.len(), || {
            format!(
                "{} spans in span sets, but only {in_sets} of them are in-use spans of the heap",
                places.len()
            )
        });
        let counter = self.spans_in_use();
        f.check(counter == total, || {
            format!("the span counters say {counter} in use, the heap walk found {total}")
        });
        for c in self.all_centrals() {
            let n = per_central.get(&c.key).copied().unwrap_or(0);
            let said = c.spans_in_use();
            f.check(said == n, || {
                format!(
                    "central {:?} counts {said} spans in use, the walk found {n}",
                    c.key
                )
            });
        }
        let heap_live = self.heap_live();
        f.check(heap_live == live, || {
            format!(
                "heap_live is {heap_live}, but the spans account for {live} \
                 (swept: allocated slots; cached: whole spans; large: whole spans)"
            )
        });
    }
}
