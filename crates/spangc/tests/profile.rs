//! The allocation profiler end to end (issue 6): sampled allocations are
//! attributed to the function that called the allocator, whichever entry
//! point it used and whatever the optimisation level; estimates track the
//! real counts; the sweeper counts sampled objects' frees; the pprof file
//! leaves the allocator's own frames out.

use spangc::{BucketStats, Config, Gc, GcCell, Heap, Scope, Trace};

/// Small enough that every site below is sampled hundreds of times.
const RATE: usize = 4096;

#[derive(Trace)]
#[gc(brand = B)]
struct Leaf<B: spangc::Brand> {
    words: [u64; 6],
    _brand: std::marker::PhantomData<B>,
}

#[derive(Trace)]
#[gc(brand = B)]
struct Link<'gc, B: spangc::Brand> {
    value: u64,
    next: GcCell<Option<Gc<'gc, Link<'gc, B>, B>>>,
}

/// Garbage from `Scope::alloc`.
#[inline(never)]
fn profiled_leaf_objects<B: spangc::Brand>(cx: &Scope<B>, n: usize) -> u64 {
    let mut sum = 0;
    for i in 0..n {
        let leaf = cx.alloc(Leaf::<B> {
            words: [i as u64; 6],
            _brand: std::marker::PhantomData,
        });
        sum += leaf.words[0];
    }
    sum
}

/// Garbage from `Scope::alloc_str`.
#[inline(never)]
fn profiled_strings<B: spangc::Brand>(cx: &Scope<B>, n: usize) -> usize {
    // A loop, not an iterator adaptor: in a release build a closure's
    // frame is named `{closure#0}` alone, without its function.
    let mut len = 0;
    for i in 0..n {
        len += cx.alloc_str(&format!("string number {i:08}")).len();
    }
    len
}

/// A list of `n` links that stays alive (the caller roots its head).
#[inline(never)]
fn profiled_kept_list<'s, B: spangc::Brand>(cx: &'s Scope<B>, n: usize) -> Gc<'s, Link<'s, B>, B> {
    let head = cx.alloc(Link {
        value: 0,
        next: GcCell::new(None),
    });
    let mut tail = head;
    for i in 1..n {
        let link = cx.alloc(Link {
            value: i as u64,
            next: GcCell::new(None),
        });
        tail.next.set(cx, Some(link));
        tail = link;
    }
    head
}

/// The buckets whose top frame names `function`.
fn site<'a>(summary: &'a [BucketStats], function: &str) -> Vec<&'a BucketStats> {
    summary
        .iter()
        .filter(|b| b.top_frame.as_deref().is_some_and(|f| f.contains(function)))
        .collect()
}

fn total(buckets: &[&BucketStats], f: impl Fn(&BucketStats) -> u64) -> u64 {
    buckets.iter().map(|b| f(b)).sum()
}

/// `estimate` is within `tolerance` (a fraction) of `real`.
fn close(estimate: u64, real: u64, tolerance: f64) -> bool {
    (estimate as f64 - real as f64).abs() <= tolerance * real as f64
}

#[test]
fn samples_are_attributed_estimated_and_freed() {
    spangc::brand!(Prof);
    let config = Config::builder()
        .profile_rate(RATE)
        .verify(true)
        .build()
        .unwrap();
    let heap = Heap::<Prof>::new(config).unwrap();
    let mut m = heap.mutator();
    const LEAVES: usize = 100_000;
    const STRINGS: usize = 80_000;
    const LINKS: usize = 100_000;
    let kept = m.enter(|cx| {
        assert!(profiled_leaf_objects(cx, LEAVES) > 0);
        assert!(profiled_strings(cx, STRINGS) > 0);
        cx.root(profiled_kept_list(cx, LINKS))
    });

    let summary = heap.profile_summary();
    let leaves = site(&summary, "profiled_leaf_objects");
    let strings = site(&summary, "profiled_strings");
    let links = site(&summary, "profiled_kept_list");
    for (name, buckets) in [
        ("profiled_leaf_objects", &leaves),
        ("profiled_strings", &strings),
        ("profiled_kept_list", &links),
    ] {
        assert!(
            !buckets.is_empty(),
            "no bucket's top frame is {name}: {:?}",
            summary.iter().map(|b| &b.top_frame).collect::<Vec<_>>()
        );
    }
    // No sample is attributed to the allocator itself.
    for b in &summary {
        let top = b.top_frame.as_deref().unwrap_or("");
        assert!(
            !top.contains("alloc_slow") && !top.contains("alloc_raw") && !top.contains("try_alloc"),
            "a bucket's top frame is the allocator's: {top}"
        );
    }
    // The unbiased estimates. An object of `size` bytes is sampled with
    // probability p = 1 - exp(-size / RATE), so the estimate's relative
    // standard deviation is sqrt((1 - p) / (n p)): 2.9% for the 100 000
    // leaves of 48 bytes (15% is five of them), 5.1% for the 100 000 links
    // of 16 bytes and 4.0% for the 80 000 strings of 32 bytes (25% is five
    // and six). With 20 000 strings it was 8%, 25% only three, and the
    // check fails about once in 600 runs (a `cargo test --workspace` of
    // 2026-11-26 saw this test fail once, most likely here; its output was
    // not kept).
    let leaf_size = leaves[0].object_size_bytes;
    assert_eq!(leaf_size, 48);
    let est = total(&leaves, |b| b.alloc_objects);
    assert!(
        close(est, LEAVES as u64, 0.15),
        "{est} leaves estimated, {LEAVES} allocated"
    );
    let est = total(&links, |b| b.alloc_objects);
    assert!(
        close(est, LINKS as u64, 0.25),
        "{est} links estimated, {LINKS} allocated"
    );
    let est = total(&strings, |b| b.alloc_objects);
    assert!(
        close(est, STRINGS as u64, 0.25),
        "{est} strings estimated, {STRINGS} allocated"
    );

    // Two collections: everything but the list is freed, and the sweeper
    // counted each sampled object's free.
    m.enter(|cx| {
        cx.collect();
        cx.collect();
    });
    let summary = heap.profile_summary();
    for name in ["profiled_leaf_objects", "profiled_strings"] {
        for b in site(&summary, name) {
            assert_eq!(b.sampled_frees, b.sampled_allocs, "{name}: {b:?}");
            assert_eq!((b.inuse_objects, b.inuse_bytes), (0, 0), "{name}: {b:?}");
        }
    }
    let links = site(&summary, "profiled_kept_list");
    assert_eq!(total(&links, |b| b.sampled_frees), 0);
    let inuse = total(&links, |b| b.inuse_objects);
    assert!(
        close(inuse, LINKS as u64, 0.25),
        "{inuse} links in use estimated"
    );

    // The pprof file names the sites and none of the allocator's frames.
    let mut pprof = Vec::new();
    heap.write_heap_profile(&mut pprof).unwrap();
    let contains = |s: &str| pprof.windows(s.len()).any(|w| w == s.as_bytes());
    for name in [
        "profiled_leaf_objects",
        "profiled_strings",
        "profiled_kept_list",
        "inuse_space",
    ] {
        assert!(contains(name), "the profile does not mention {name}");
    }
    for name in ["alloc_slow", "record_sample", "alloc_raw", "try_alloc"] {
        assert!(!contains(name), "the profile shows the allocator's {name}");
    }

    // Dropping the root frees the list too.
    drop(kept);
    m.enter(|cx| {
        cx.collect();
        cx.collect();
    });
    for b in site(&heap.profile_summary(), "profiled_kept_list") {
        assert_eq!(b.sampled_frees, b.sampled_allocs, "{b:?}");
    }
}

/// With `profile_rate` 0 nothing is sampled and the profile is empty but
/// well formed.
#[test]
fn profiling_off_records_nothing() {
    spangc::brand!(NoProf);
    let config = Config::builder().profile_rate(0).build().unwrap();
    let heap = Heap::<NoProf>::new(config).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| profiled_leaf_objects(cx, 10_000));
    assert!(heap.profile_summary().is_empty());
    let mut pprof = Vec::new();
    heap.write_heap_profile(&mut pprof).unwrap();
    let contains = |s: &str| pprof.windows(s.len()).any(|w| w == s.as_bytes());
    assert!(contains("inuse_space"), "sample types are still declared");
    assert!(!contains("profiled_leaf_objects"));
}
