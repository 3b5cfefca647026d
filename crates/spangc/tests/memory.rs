//! Memory bounds: the heap stays near its live size, the memory limit holds
//! (and `try_alloc` reports crossing it), and released memory leaves the
//! process.

use spangc::{AllocErrorKind, Config, Gc, GcRefCell, Heap, Trace};

const MIB: usize = 1 << 20;

#[derive(Trace)]
#[gc(brand = B)]
struct Blob<'gc, B: spangc::Brand> {
    bytes: [u8; 1000],
    next: Option<Gc<'gc, Blob<'gc, B>, B>>,
}

#[derive(Trace)]
#[gc(brand = B)]
struct Holder<'gc, B: spangc::Brand> {
    items: GcRefCell<Vec<Gc<'gc, [u8], B>>>,
    blobs: GcRefCell<Vec<Gc<'gc, Blob<'gc, B>, B>>>,
}

/// The tests here read the process's resident set, so they must not run
/// at the same time as each other.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<usize>()
        .unwrap()
        * 4096
}

/// 100,000 allocations of 1 KiB garbage with a small live set grow heap
/// sys by at most 16 MiB. Heap sys grows by whole 64 MiB arenas, most of
/// their pages never touched (counted as released), so the bound is
/// checked on what the heap holds of them too: sys minus released.
#[test]
fn garbage_does_not_grow_the_heap() {
    let _serial = serial();
    spangc::brand!(Footprint);
    let heap = Heap::<Footprint>::new(Config::builder().verify(true).build().unwrap()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let live = cx.root(cx.alloc(Blob::<Footprint> {
            bytes: [1; 1000],
            next: None,
        }));
        let s = heap.stats();
        let (before, held_before) = (s.heap_sys_bytes, s.heap_sys_bytes - s.heap_released_bytes);
        for i in 0..100_000u32 {
            let b = cx.alloc(Blob::<Footprint> {
                bytes: [i as u8; 1000],
                next: None,
            });
            std::hint::black_box(b);
            cx.safepoint();
        }
        let s = heap.stats();
        assert!(s.gc_count > 5, "{s}");
        assert!(
            s.heap_sys_bytes <= before + 16 * MIB,
            "heap sys grew from {before} to {}",
            s.heap_sys_bytes
        );
        let held = s.heap_sys_bytes - s.heap_released_bytes;
        assert!(
            held <= held_before + 16 * MIB,
            "heap memory held grew from {held_before} to {held}"
        );
        assert_eq!(live.get(cx).bytes[999], 1);
    });
}

/// With a memory limit, a live heap ramped to 80% of the limit keeps
/// resident memory under the limit plus a small bound; going past the limit
/// makes `try_alloc` fail (returning the value) and the heap stays usable.
#[test]
fn memory_limit_holds_and_try_alloc_reports_it() {
    let _serial = serial();
    spangc::brand!(Limited);
    let limit = 64 * MIB;
    let heap = Heap::<Limited>::new(
        Config::builder()
            .memory_limit(Some(limit))
            .verify(true)
            .build()
            .unwrap(),
    )
    .unwrap();
    let rss_base = rss();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let holder = cx.root(cx.alloc(Holder::<Limited> {
            items: GcRefCell::new(Vec::new()),
            blobs: GcRefCell::new(Vec::new()),
        }));
        // Ramp the live heap to 80% of the limit, with as much garbage.
        let chunk = 64 * 1024;
        let target = limit * 8 / 10;
        let mut live = 0;
        let mut peak_rss = 0;
        while live < target {
            let keep = cx.alloc_slice_copy(&vec![7u8; chunk]);
            holder.get(cx).items.borrow_mut(cx).push(keep);
            let junk = cx.alloc_slice_copy(&vec![9u8; chunk]);
            std::hint::black_box(junk);
            live += chunk;
            cx.safepoint();
            peak_rss = peak_rss.max(rss().saturating_sub(rss_base));
        }
        let s = heap.stats();
        assert!(s.heap_goal_bytes <= limit, "{s}");
        assert!(
            peak_rss <= limit + 8 * MIB,
            "resident memory of the heap peaked at {peak_rss} against a limit of {limit}"
        );
        // Now fill to the limit without safepoints: try_alloc must fail
        // cleanly, hand the value back, and leave the heap usable.
        let mut failed = None;
        for i in 0..100_000u32 {
            match cx.try_alloc(Blob::<Limited> {
                bytes: [i as u8; 1000],
                next: None,
            }) {
                Ok(b) => holder.get(cx).blobs.borrow_mut(cx).push(b),
                Err(e) => {
                    failed = Some((i, e));
                    break;
                }
            }
        }
        let (i, e) = failed.expect("allocation beyond the limit must fail");
        assert!(
            matches!(e.kind(), AllocErrorKind::MemoryLimit { .. }),
            "{e}"
        );
        assert_eq!(e.into_value().bytes[0], i as u8, "the value comes back");
        // Free the live set; after a collection allocation works again.
        holder.get(cx).items.borrow_mut(cx).clear();
        holder.get(cx).blobs.borrow_mut(cx).clear();
        cx.collect();
        let b = cx.try_alloc(Blob::<Limited> {
            bytes: [3; 1000],
            next: None,
        });
        assert!(b.is_ok());
    });
}

/// `alloc`, unlike `try_alloc`, panics past the memory limit, with a
/// message that names the reason (the panic comes from the out-of-line
/// part of the allocation path); the scope is left on the way out and the
/// heap stays usable.
#[test]
fn alloc_past_the_limit_panics_with_the_reason() {
    let _serial = serial();
    spangc::brand!(Panicky);
    let heap = Heap::<Panicky>::new(
        Config::builder()
            .memory_limit(Some(16 * MIB))
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut m = heap.mutator();
    let mut made = 0usize;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        m.enter(|cx| {
            // No safepoint: nothing can be collected, so this must hit
            // the limit.
            loop {
                std::hint::black_box(cx.alloc([made; 64]));
                made += 1;
            }
        })
    }));
    let e = r.expect_err("allocation past the limit must panic");
    let msg = e
        .downcast_ref::<String>()
        .map(String::as_str)
        .unwrap_or("(not a string)");
    assert!(
        msg.starts_with("spangc: allocation failed: memory limit"),
        "{msg}"
    );
    assert!(made > 1000, "only {made} objects before the limit");
    m.enter(|cx| {
        cx.collect();
        assert_eq!(*cx.alloc(5u32), 5);
    });
}

/// A collection that greys many objects at once (one object holding
/// 200,000 pointers) keeps its grey stack for the next collection, counted
/// in `metadata_sys_bytes`; a collection with a small grey set trims it,
/// and `release_memory` frees it; with one mark thread and with two
/// (where the collections after a deep one mark on one thread, and the
/// second worker's stack must not stay behind).
#[test]
fn grey_stacks_are_kept_counted_trimmed_and_released() {
    let _serial = serial();
    spangc::brand!(Stacks);
    for threads in [1, 2] {
        grey_stacks_case::<Stacks>(threads);
    }
}

fn grey_stacks_case<Stacks: spangc::Brand>(threads: usize) {
    let heap =
        Heap::<Stacks>::new(Config::builder().mark_threads(threads).build().unwrap()).unwrap();
    let mut m = heap.mutator();
    let n = 200_000;
    let stack_bytes = n * 16; // one grey entry per blob
    let holder = m.enter(|cx| {
        cx.root(cx.alloc(Holder::<Stacks> {
            items: GcRefCell::new(Vec::new()),
            blobs: GcRefCell::new(Vec::new()),
        }))
    });
    // Fills the holder with `n` blobs and collects: the holder's scan greys
    // them all. Returns the metadata bytes before and after.
    let deep_collection = |m: &mut spangc::Mutator<Stacks>| {
        let before = heap.stats().metadata_sys_bytes;
        m.enter(|cx| {
            for _ in 0..n {
                let b = cx.alloc(Blob::<Stacks> {
                    bytes: [0; 1000],
                    next: None,
                });
                holder.get(cx).blobs.borrow_mut(cx).push(b);
            }
            cx.collect();
        });
        (before, heap.stats().metadata_sys_bytes)
    };
    let (before, kept) = deep_collection(&mut m);
    assert!(
        kept >= before + stack_bytes,
        "{threads} threads: metadata {before} -> {kept}: the grey stack of {stack_bytes} bytes is not counted"
    );
    // Drop the blobs: the next collections grey a handful of objects and
    // trim the stack.
    m.enter(|cx| {
        holder.get(cx).blobs.borrow_mut(cx).clear();
        cx.collect();
        cx.collect();
    });
    let trimmed = heap.stats().metadata_sys_bytes;
    assert!(
        trimmed + stack_bytes / 2 <= kept,
        "{threads} threads: metadata {kept} -> {trimmed}: not trimmed"
    );
    // Deep again, then `release_memory` (whose collection greys the blobs
    // once more) frees the stack.
    let (_, kept) = deep_collection(&mut m);
    heap.release_memory();
    let released = heap.stats().metadata_sys_bytes;
    assert!(
        released + stack_bytes / 2 <= kept,
        "{threads} threads: metadata {kept} -> {released}: release_memory kept the grey stack"
    );
}

/// After a burst is dropped, `release_memory` brings resident memory back
/// near the live heap.
#[test]
fn release_memory_returns_idle_pages() {
    let _serial = serial();
    spangc::brand!(Release);
    let heap = Heap::<Release>::new(
        Config::builder()
            .background_scavenge(false)
            .build()
            .unwrap(),
    )
    .unwrap();
    let base = rss();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let holder = cx.root(cx.alloc(Holder::<Release> {
            items: GcRefCell::new(Vec::new()),
            blobs: GcRefCell::new(Vec::new()),
        }));
        for _ in 0..1500 {
            let s = cx.alloc_slice_copy(&[5u8; 100_000]);
            holder.get(cx).items.borrow_mut(cx).push(s);
        }
        let burst = rss() - base;
        assert!(burst > 100 * MIB, "burst only {burst}");
        holder.get(cx).items.borrow_mut(cx).truncate(10);
        cx.collect();
    });
    heap.release_memory();
    let s = heap.stats();
    let after = rss().saturating_sub(base);
    let bound = (s.heap_in_use_bytes + s.metadata_sys_bytes) * 11 / 10 + 4 * MIB;
    assert!(
        after <= bound,
        "resident {after} after release, live heap + metadata {} (bound {bound})\n{s}",
        s.heap_in_use_bytes + s.metadata_sys_bytes
    );
}

/// Empty spans kept for reuse after a collection do not count against a
/// memory limit set afterwards: once the limit sets the goal they go back
/// to the page heap, and an allocation that fits under the limit succeeds.
#[test]
fn spans_kept_for_reuse_give_way_to_a_memory_limit() {
    let _serial = serial();
    spangc::brand!(KeptThenLimited);
    let config = Config::builder()
        .gc_percent(None)
        .memory_limit(None)
        .build()
        .unwrap();
    let heap = Heap::<KeptThenLimited>::new(config).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        for i in 0..600_000u64 {
            std::hint::black_box(cx.alloc([i; 8])); // 64-byte garbage, ~38 MiB
        }
    });
    heap.collect();
    let kept = heap.stats().heap_in_use_bytes;
    assert!(
        kept > 30 * MIB,
        "the dead spans were kept for reuse: {kept}"
    );
    heap.set_memory_limit(Some(24 * MIB)).unwrap();
    let s = heap.stats();
    assert!(s.heap_in_use_bytes < MIB, "kept spans went back: {s}");
    m.enter(|cx| {
        // 16 MiB more, without a safepoint (so without a collection).
        for i in 0..4096u64 {
            let r = cx.try_alloc([i; 512]).map(|_| ());
            assert!(r.is_ok(), "block {i} under a 24 MiB limit: {:?}", r.err());
        }
    });
}
