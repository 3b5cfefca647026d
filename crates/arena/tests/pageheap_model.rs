//! Property test: random sequences of page heap operations against a
//! simple model (a map from span start to its pages and kind).
//!
//! After every step: spans never overlap, every page of a live span maps to
//! it, memory of a span that needs no zeroing really reads zero, the
//! accounting identities hold, scavenging released exactly what it said,
//! and `verify()` (which also checks that no allocated page is marked
//! scavenged) passes.

use std::collections::BTreeMap;

use proptest::prelude::*;
use spangc_arena::sizeclass::{SizeClass, class_npages};
use spangc_arena::*;

#[derive(Debug, Clone)]
enum Op {
    /// A span of `npages` (or of a small class), maybe through the cache.
    Alloc {
        npages: usize,
        class: Option<u8>,
        cached: bool,
    },
    Manual {
        npages: usize,
    },
    /// Free the live span at `index % live`.
    Free {
        index: usize,
        cached: bool,
    },
    Scavenge {
        pages: usize,
    },
    ScavengeAll,
    Grow {
        npages: usize,
    },
    Flush,
}

fn npages() -> impl Strategy<Value = usize> {
    prop_oneof![
        6 => 1..4usize,
        3 => 1..16usize,
        2 => 16..600usize,
        1 => 600..3000usize,
        1 => 8000..9000usize,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (npages(), any::<bool>()).prop_map(|(npages, cached)| Op::Alloc { npages, class: None, cached }),
        4 => (1..68u8, any::<bool>()).prop_map(|(c, cached)| Op::Alloc { npages: 0, class: Some(c), cached }),
        1 => (1..40usize).prop_map(|npages| Op::Manual { npages }),
        8 => (any::<usize>(), any::<bool>()).prop_map(|(index, cached)| Op::Free { index, cached }),
        2 => (1..2000usize).prop_map(|pages| Op::Scavenge { pages }),
        1 => Just(Op::ScavengeAll),
        1 => (1..9000usize).prop_map(|npages| Op::Grow { npages }),
        1 => Just(Op::Flush),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    InUse,
    Manual,
}

/// Reads the first word of every page of the span: all zero?
fn reads_zero(s: &Span) -> bool {
    (s.start()..s.end()).step_by(PAGE_SIZE).all(|p| {
        // SAFETY: the span's pages are Ready heap memory that this test
        // owns while the span is live.
        unsafe { (p as *const u64).read_volatile() == 0 }
    })
}

/// Dirties the first word of every page of the span.
fn scribble(s: &Span) {
    for p in (s.start()..s.end()).step_by(PAGE_SIZE) {
        // SAFETY: as in `reads_zero`.
        unsafe { (p as *mut u64).write_volatile(0xdead_beef) };
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let h = PageHeap::new(PageHeapConfig::default().arena_hints(ArenaHints::Kernel)).unwrap();
    let mut cache = PageCache::new();
    // start -> (npages, kind)
    let mut model: BTreeMap<usize, (usize, Kind)> = BTreeMap::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Alloc {
                npages,
                class,
                cached,
            } => {
                let (n, sc) = match class {
                    Some(c) => {
                        let c = SizeClass::new(c).unwrap();
                        (class_npages(c), SpanClass::new(c, step % 2 == 0))
                    }
                    None => (npages, SpanClass::LARGE_SCAN),
                };
                let s = h
                    .alloc_span(n, sc, step, step as u32 * 2, cached.then_some(&mut cache))
                    .unwrap();
                prop_assert_eq!(s.npages(), n);
                prop_assert_eq!(s.state(), SpanState::InUse);
                if !s.needzero() {
                    prop_assert!(
                        reads_zero(s),
                        "step {}: needzero false but dirty: {}",
                        step,
                        s
                    );
                }
                scribble(s);
                prop_assert!(model.insert(s.start(), (n, Kind::InUse)).is_none());
            }
            Op::Manual { npages } => {
                let s = h.alloc_manual(npages).unwrap();
                if !s.needzero() {
                    prop_assert!(
                        reads_zero(s),
                        "step {}: needzero false but dirty: {}",
                        step,
                        s
                    );
                }
                scribble(s);
                prop_assert!(model.insert(s.start(), (npages, Kind::Manual)).is_none());
            }
            Op::Free { index, cached } => {
                if model.is_empty() {
                    continue;
                }
                let start = *model.keys().nth(index % model.len()).unwrap();
                let (_, kind) = model.remove(&start).unwrap();
                let s = h.span_of(start).unwrap();
                match kind {
                    Kind::InUse => h.free_span(s, cached.then_some(&mut cache)),
                    Kind::Manual => h.free_manual(s),
                }
            }
            Op::Scavenge { pages } => {
                let st = h.stats();
                let cache_unreleased = cache.free_bytes() - cache.released_bytes();
                let available = st.idle_bytes - st.released_bytes - cache_unreleased;
                let want = pages * PAGE_SIZE - PAGE_SIZE / 2; // not page-aligned
                let got = h.scavenge(want);
                prop_assert_eq!(got, (pages * PAGE_SIZE).min(available));
                prop_assert_eq!(h.stats().released_bytes, st.released_bytes + got);
            }
            Op::ScavengeAll => {
                h.scavenge_all();
                let st = h.stats();
                let cache_unreleased = cache.free_bytes() - cache.released_bytes();
                prop_assert_eq!(st.idle_bytes - st.released_bytes, cache_unreleased);
            }
            Op::Grow { npages } => {
                let before = h.stats().sys_bytes;
                h.grow(npages).unwrap();
                prop_assert_eq!(
                    h.stats().sys_bytes - before,
                    npages.div_ceil(PAGES_PER_ARENA) * ARENA_SIZE
                );
            }
            Op::Flush => cache.flush(&h),
        }
        check(&h, &model, step)?;
    }
    for (&start, &(_, kind)) in &model {
        let s = h.span_of(start).unwrap();
        match kind {
            Kind::InUse => h.free_span(s, Some(&mut cache)),
            Kind::Manual => h.free_manual(s),
        }
    }
    cache.flush(&h);
    h.verify().map_err(|e| TestCaseError::fail(e.to_string()))?;
    // Nothing leaked: every page is free in the bitmaps again, so the
    // scavenger can release all of them.
    h.scavenge_all();
    let st = h.stats();
    prop_assert_eq!(st.idle_bytes, st.sys_bytes);
    prop_assert_eq!(st.released_bytes, st.sys_bytes);
    Ok(())
}

fn check(
    h: &PageHeap,
    model: &BTreeMap<usize, (usize, Kind)>,
    step: usize,
) -> Result<(), TestCaseError> {
    let mut prev_end = 0;
    let (mut in_use, mut manual) = (0, 0);
    for (&start, &(n, kind)) in model {
        prop_assert!(
            start >= prev_end,
            "step {}: spans overlap at {:#x}",
            step,
            start
        );
        prev_end = start + n * PAGE_SIZE;
        let s = h.span_of(start).unwrap();
        prop_assert_eq!(s.start(), start);
        prop_assert_eq!(s.npages(), n);
        for p in [0, n / 2, n - 1] {
            let e = h.span_of(start + p * PAGE_SIZE + 1).unwrap();
            prop_assert!(
                std::ptr::eq(e, s),
                "step {}: page {} of {} maps to {}",
                step,
                p,
                s,
                e
            );
        }
        match kind {
            Kind::InUse => {
                prop_assert_eq!(s.state(), SpanState::InUse);
                prop_assert!(h.span_of_heap(start).is_some());
                in_use += n;
            }
            Kind::Manual => {
                prop_assert_eq!(s.state(), SpanState::Manual);
                manual += n;
            }
        }
    }
    let st = h.stats();
    prop_assert_eq!(st.in_use_bytes, in_use * PAGE_SIZE);
    prop_assert_eq!(st.manual_bytes, manual * PAGE_SIZE);
    prop_assert_eq!(
        st.in_use_bytes + st.manual_bytes + st.idle_bytes,
        st.sys_bytes
    );
    prop_assert!(st.released_bytes <= st.idle_bytes);
    prop_assert_eq!(st.retained_bytes, st.sys_bytes - st.released_bytes);
    h.verify()
        .map_err(|e| TestCaseError::fail(format!("step {step}: {e}")))?;
    Ok(())
}

fn cases() -> u32 {
    let scale: u32 = std::env::var("SPANGC_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    96 * scale
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn page_heap_matches_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
