//! The registry against a simple model, on real spans of a page heap:
//! random adds, removes and sweeps; after every step the lists equal the
//! model (sorted by offset and kind, cleanups in insertion order), unique
//! kinds are unique, and the span's `page_specials` bit says whether its
//! list is non-empty.

use proptest::prelude::*;
use spangc_arena::sizeclass::{SizeClass, SpanClass, class_npages};
use spangc_arena::{PageHeap, PageHeapConfig};
use spangc_specials::{Kind, Payload, Specials};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    kind: Kind,
    id: u32,
}

impl Payload for Rec {
    fn kind(&self) -> Kind {
        self.kind
    }
}

const KINDS: [Kind; 4] = [
    Kind::Finalizer,
    Kind::WeakHandle,
    Kind::Cleanup,
    Kind::Profile,
];

#[derive(Debug, Clone)]
enum Op {
    Add {
        span: usize,
        obj: u32,
        kind: usize,
    },
    Remove {
        span: usize,
        obj: u32,
        kind: usize,
    },
    Sweep {
        span: usize,
        dead_mask: u64,
        keep_finalized: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..16u32, 0..4usize).prop_map(|(span, obj, kind)| Op::Add { span, obj, kind }),
        2 => (0..3usize, 0..16u32, 0..4usize).prop_map(|(span, obj, kind)| Op::Remove { span, obj, kind }),
        1 => (0..3usize, any::<u64>(), any::<bool>())
            .prop_map(|(span, dead_mask, keep_finalized)| Op::Sweep { span, dead_mask, keep_finalized }),
    ]
}

/// Model: per span, offset -> records in list order.
type Model = Vec<BTreeMap<u32, Vec<Rec>>>;

fn expected(model: &BTreeMap<u32, Vec<Rec>>) -> Vec<(u32, Rec)> {
    let mut out = Vec::new();
    for (&off, recs) in model {
        let mut recs = recs.clone();
        // Stable sort by kind keeps cleanups in insertion order.
        recs.sort_by_key(|r| r.kind);
        out.extend(recs.into_iter().map(|r| (off, r)));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn registry_matches_model(ops in prop::collection::vec(op(), 1..200)) {
        let heap = PageHeap::new(PageHeapConfig::default().background_scavenger(false)).unwrap();
        let class = SizeClass::new(6).unwrap(); // 64-byte objects
        let spans: Vec<_> = (0..3)
            .map(|_| {
                heap.alloc_span(class_npages(class), SpanClass::new(class, false), 8, 0, None)
                    .unwrap()
            })
            .collect();
        let reg = Specials::<Rec>::new();
        let mut model: Model = vec![BTreeMap::new(); 3];
        let mut next_id = 0;
        for op in ops {
            match op {
                Op::Add { span, obj, kind } => {
                    let kind = KINDS[kind];
                    let off = obj * 64;
                    let rec = Rec { kind, id: next_id };
                    next_id += 1;
                    let exists = model[span].get(&off).is_some_and(|v| v.iter().any(|r| r.kind == kind));
                    let r = reg.add(&heap, spans[span], off, rec.clone());
                    if exists && kind.unique() {
                        prop_assert_eq!(r, Err(rec));
                    } else {
                        prop_assert!(r.is_ok());
                        model[span].entry(off).or_default().push(rec);
                    }
                }
                Op::Remove { span, obj, kind } => {
                    let kind = KINDS[kind];
                    let off = obj * 64;
                    let want = model[span].get_mut(&off).and_then(|v| {
                        let i = v.iter().position(|r| r.kind == kind)?;
                        Some(v.remove(i))
                    });
                    if model[span].get(&off).is_some_and(|v| v.is_empty()) {
                        model[span].remove(&off);
                    }
                    prop_assert_eq!(reg.remove(&heap, spans[span], off, kind), want);
                }
                Op::Sweep { span, dead_mask, keep_finalized } => {
                    let dead = |off: u32| dead_mask >> (off / 64) & 1 == 1;
                    let mut seen = Vec::new();
                    reg.sweep(&heap, spans[span], dead, |off, recs| {
                        seen.push((off, recs.clone()));
                        // Like a resurrection: keep everything but the
                        // finalizer; otherwise drop all.
                        if keep_finalized && recs.iter().any(|r| r.kind == Kind::Finalizer) {
                            recs.retain(|r| r.kind != Kind::Finalizer);
                        } else {
                            recs.clear();
                        }
                    });
                    let mut want_seen = Vec::new();
                    for (&off, recs) in model[span].iter_mut().filter(|(o, _)| dead(**o)) {
                        let mut sorted = recs.clone();
                        sorted.sort_by_key(|r| r.kind);
                        want_seen.push((off, sorted.clone()));
                        if keep_finalized && sorted.iter().any(|r| r.kind == Kind::Finalizer) {
                            sorted.retain(|r| r.kind != Kind::Finalizer);
                            *recs = sorted;
                        } else {
                            recs.clear();
                        }
                    }
                    model[span].retain(|_, v| !v.is_empty());
                    prop_assert_eq!(seen, want_seen);
                }
            }
            for (i, s) in spans.iter().enumerate() {
                let mut got = Vec::new();
                reg.for_each(s, |off, r| got.push((off, r.clone())));
                prop_assert_eq!(&got, &expected(&model[i]));
                prop_assert_eq!(heap.has_page_special(s), !got.is_empty());
            }
        }
        let total: usize = model.iter().map(|m| m.values().map(Vec::len).sum::<usize>()).sum();
        prop_assert_eq!(reg.len(), total);
        for s in &spans {
            let _ = reg.take_all(&heap, s);
            prop_assert!(!heap.has_page_special(s));
            heap.free_span(s, None);
        }
        prop_assert!(reg.is_empty());
    }
}
