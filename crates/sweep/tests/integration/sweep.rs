//! Sweeping by hand (issue 4, 2): mark chosen objects, advance, and check
//! that exactly the unmarked ones die; spans, large objects, stale caches,
//! the zombie check, the verifier itself, and the sweep-done word.

use crate::common::*;
use spangc_arena::PAGE_SIZE;
use spangc_arena::span::Span;
use spangc_gcbits::SpanBits;
use spangc_sweep::{Mheap, POISON};
use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

fn addr(p: std::ptr::NonNull<u8>) -> usize {
    p.as_ptr() as usize
}

fn span_of(heap: &Mheap, a: usize) -> Option<&Span> {
    heap.page_heap().span_of_heap(a)
}

/// An object the test allocated: address, size, tag and serial number
/// (written into its first word).
#[derive(Clone, Copy, Debug)]
struct Obj {
    addr: usize,
    size: usize,
    tag: usize,
    serial: u64,
}

/// Marks a random half of 3000 objects of three kinds (two hooked tags and
/// a plain one), except every object of one span, which dies whole; then
/// checks that exactly the unmarked objects died, once each, survivors
/// keep their contents, the dead span went back to the page heap (empty
/// spans are not kept for reuse here; `empty_spans_*` test that), alloc
/// bits equal the marks, freed slots are poisoned in verify mode, and
/// freed slots are what the next allocations reuse. With and without the
/// background sweeper.
#[test]
fn exactly_the_unmarked_objects_die() {
    for (background, poison) in [(false, false), (false, true), (true, false)] {
        let hooks = Arc::new(Hooks::recording());
        let heap = heap(background, poison, hooks.clone());
        heap.set_reuse_empty_spans(false);
        let mut cache = heap.new_cache();
        let mut rng = Rng::from_env(0x5eed);
        let mut objs = Vec::new();
        for i in 0..3000u64 {
            let (tag, size) = match i % 3 {
                0 => (TAG_HOOKED, 32),
                1 => (TAG_HOOKED2, 208),
                _ => (TAG_PLAIN, 64),
            };
            let a = addr(cache.alloc(tag, class_for(size)).unwrap());
            // SAFETY: a fresh slot of at least 32 bytes that we own.
            unsafe { write_stamp(a, i) };
            objs.push(Obj {
                addr: a,
                size,
                tag,
                serial: i,
            });
        }
        cache.release_all();
        let doomed = span_of(&heap, objs[0].addr).unwrap().start();
        let (live, dead): (Vec<Obj>, Vec<Obj>) = objs
            .iter()
            .partition(|o| span_of(&heap, o.addr).unwrap().start() != doomed && rng.percent(50));
        let doomed_span = span_of(&heap, doomed).unwrap();
        let doomed_pages = doomed_span.npages();
        let pages_before = heap.page_stats().pages_in_use;
        *hooks.live.write().unwrap() = live.iter().map(|o| o.addr).collect();

        let marked = collect(&heap, live.iter().map(|o| o.addr));
        assert_eq!(marked, live.iter().map(|o| o.size).sum::<usize>());
        heap.finish_sweep();

        let mut want: Vec<usize> = dead
            .iter()
            .filter(|o| o.tag != TAG_PLAIN)
            .map(|o| o.addr)
            .collect();
        want.sort_unstable();
        assert_eq!(hooks.freed_sorted(), want, "the hook sees exactly the dead");
        let st = heap.sweep_stats();
        assert_eq!(
            st.objects_freed as usize,
            dead.len(),
            "counted, hook or not"
        );
        for o in &live {
            // SAFETY: live objects stay allocated.
            assert_eq!(unsafe { read_stamp(o.addr) }, o.serial, "survivor {o:?}");
            let s = span_of(&heap, o.addr).unwrap();
            assert!(s.is_allocated(s.slot_index(o.addr)), "alloc bit = mark bit");
        }
        assert!(span_of(&heap, doomed).is_none(), "the dead span was freed");
        assert!(heap.page_stats().pages_in_use <= pages_before - doomed_pages);
        assert!(st.spans_freed >= 1);
        for o in dead.iter().filter(|o| o.addr != doomed) {
            let Some(s) = span_of(&heap, o.addr) else {
                continue; // its whole span died
            };
            assert!(s.is_free(s.slot_index(o.addr)), "{o:?} freed");
            if poison {
                // SAFETY: a free slot of an in-use span is mapped memory.
                let b = unsafe { std::slice::from_raw_parts(o.addr as *const u8, o.size) };
                assert!(b.iter().all(|&x| x == POISON), "{o:?} poisoned");
            }
        }
        heap.verify().unwrap();

        // Reuse: the free slots of the surviving 32-byte spans are exactly
        // what the next allocations of that kind get, before any new span.
        let mut free_slots = HashSet::new();
        let spans: HashSet<usize> = live
            .iter()
            .filter(|o| o.tag == TAG_HOOKED)
            .map(|o| span_of(&heap, o.addr).unwrap().start())
            .collect();
        for &start in &spans {
            let s = span_of(&heap, start).unwrap();
            free_slots.extend(
                (0..s.nelems() as usize)
                    .filter(|&i| s.is_free(i))
                    .map(|i| s.slot_addr(i)),
            );
        }
        assert!(
            dead.iter()
                .filter(|o| o.tag == TAG_HOOKED
                    && spans.contains(&span_of(&heap, o.addr).map_or(0, |s| s.start())))
                .all(|o| free_slots.contains(&o.addr)),
            "every dead slot of a surviving span is free"
        );
        cache.prepare_for_sweep();
        let n = free_slots.len();
        for _ in 0..n {
            let a = addr(cache.alloc(TAG_HOOKED, class_for(32)).unwrap());
            assert!(
                free_slots.remove(&a),
                "{a:#x} is not a freed slot of a surviving span"
            );
        }
        assert!(free_slots.is_empty());
        cache.release_all();
        heap.verify().unwrap();
    }
}

/// A span with no marked object goes back to the page heap at once when
/// the heap does not reuse empty spans; with nothing marked at all, the
/// heap ends up empty.
#[test]
fn empty_spans_return_to_the_page_heap() {
    let heap = heap(false, false, Arc::new(Hooks::default()));
    heap.set_reuse_empty_spans(false);
    let mut cache = heap.new_cache();
    for _ in 0..3 * 128 {
        cache.alloc(TAG_PLAIN, class_for(64)).unwrap();
    }
    cache.release_all();
    assert_eq!(heap.page_stats().pages_in_use, 3);
    collect_and_sweep(&heap, []);
    let st = heap.sweep_stats();
    assert_eq!(
        (st.spans_freed, st.objects_freed, st.pages_swept),
        (3, 384, 3)
    );
    let p = heap.page_stats();
    assert_eq!((p.pages_in_use, p.in_use_bytes), (0, 0));
    assert_eq!(heap.heap_live(), 0);
    heap.verify().unwrap();
}

/// By default an empty span whose objects died in the last cycle stays with
/// its central: the next allocations of its class reuse it without taking
/// pages from the page heap, and one nobody allocated from for a whole
/// cycle goes back then. A large span is never kept.
#[test]
fn empty_spans_are_reused_and_go_back_after_a_cycle_unused() {
    let heap = heap(false, false, Arc::new(Hooks::default()));
    let mut cache = heap.new_cache();
    let first: HashSet<usize> = (0..3 * 128)
        .map(|_| addr(cache.alloc(TAG_PLAIN, class_for(64)).unwrap()))
        .collect();
    cache.alloc_large(100_000, TAG_PLAIN, true).unwrap();
    cache.release_all();
    let large_pages = heap.page_stats().pages_in_use - 3;
    collect_and_sweep(&heap, []);
    let st = heap.sweep_stats();
    assert_eq!(
        (st.objects_freed, st.spans_freed),
        (385, 1),
        "only the large span freed"
    );
    assert_eq!(
        heap.page_stats().pages_in_use,
        3,
        "the three small spans kept"
    );
    assert!(large_pages > 0);
    assert_eq!(heap.heap_live(), 0);
    heap.verify().unwrap();

    // Two spans' worth of allocation reuses kept spans: no new pages.
    cache.prepare_for_sweep();
    let again: HashSet<usize> = (0..2 * 128)
        .map(|_| addr(cache.alloc(TAG_PLAIN, class_for(64)).unwrap()))
        .collect();
    cache.release_all();
    assert_eq!(heap.page_stats().pages_in_use, 3);
    assert!(again.is_subset(&first), "the kept spans' slots, reused");
    heap.verify().unwrap();

    // Next cycle: the two used spans die again and are kept; the third,
    // unused for a whole cycle, goes back.
    collect_and_sweep(&heap, []);
    assert_eq!(heap.page_stats().pages_in_use, 2);
    heap.verify().unwrap();
    // And with nothing allocated for another cycle, so do they.
    collect_and_sweep(&heap, []);
    assert_eq!(heap.page_stats().pages_in_use, 0);
    assert_eq!(heap.sweep_stats().spans_freed, 4);
    heap.verify().unwrap();

    // A sweep inside `freeing_empty_spans` keeps none, reuse on or not.
    cache.prepare_for_sweep();
    for _ in 0..128 {
        cache.alloc(TAG_PLAIN, class_for(64)).unwrap();
    }
    cache.release_all();
    assert_eq!(heap.page_stats().pages_in_use, 1);
    heap.freeing_empty_spans(|| {
        collect_and_sweep(&heap, []);
    });
    assert_eq!(heap.page_stats().pages_in_use, 0);
    heap.verify().unwrap();
}

/// `free_kept_empty_spans` gives back the kept empty spans and leaves the
/// partial ones where they were.
#[test]
fn kept_empty_spans_can_be_freed_at_once() {
    let heap = heap(false, false, Arc::new(Hooks::default()));
    let mut cache = heap.new_cache();
    let objs: Vec<usize> = (0..4 * 128)
        .map(|_| addr(cache.alloc(TAG_PLAIN, class_for(64)).unwrap()))
        .collect();
    cache.release_all();
    // One object survives in the last span: three spans kept empty, one
    // partial.
    collect_and_sweep(&heap, [objs[4 * 128 - 1]]);
    assert_eq!(heap.page_stats().pages_in_use, 4);
    assert_eq!(heap.free_kept_empty_spans(), 3);
    assert_eq!(heap.page_stats().pages_in_use, 1);
    assert_eq!(heap.free_kept_empty_spans(), 0);
    heap.verify().unwrap();
    // The partial span is still there for the next refill.
    cache.prepare_for_sweep();
    let a = addr(cache.alloc(TAG_PLAIN, class_for(64)).unwrap());
    assert_eq!(
        span_of(&heap, a).unwrap().start(),
        span_of(&heap, objs[4 * 128 - 1]).unwrap().start()
    );
    cache.release_all();
    heap.verify().unwrap();
}

/// Large objects: the dead ones' hooks run once at the object's start and
/// their spans go back whole; the marked one survives intact.
#[test]
fn large_objects_are_freed_whole() {
    let hooks = Arc::new(Hooks::recording());
    let heap = heap(false, true, hooks.clone());
    let mut cache = heap.new_cache();
    let sizes = [40 << 10, 1 << 20, 100 << 10, 33 << 10];
    let objs: Vec<usize> = sizes
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            let a = addr(cache.alloc_large(b, TAG_HOOKED, false).unwrap().0);
            // SAFETY: a fresh object of `b` bytes.
            unsafe { write_stamp(a, i as u64) };
            a
        })
        .collect();
    let pages = |b: usize| b.div_ceil(PAGE_SIZE);
    assert_eq!(
        heap.page_stats().pages_in_use,
        sizes.iter().map(|&b| pages(b)).sum::<usize>()
    );
    collect_and_sweep(&heap, [objs[1]]);
    let mut want = vec![objs[0], objs[2], objs[3]];
    want.sort_unstable();
    assert_eq!(hooks.freed_sorted(), want);
    assert_eq!(heap.page_stats().pages_in_use, pages(1 << 20));
    // SAFETY: the survivor is allocated.
    assert_eq!(unsafe { read_stamp(objs[1]) }, 1);
    assert!(want.iter().all(|&a| span_of(&heap, a).is_none()));
    assert_eq!(heap.heap_live(), 1 << 20);
    heap.verify().unwrap();
}

/// A cache may keep a span across a collection; the span is then stale
/// (`h + 1`), the verifier refuses the heap until the owner flushes, and
/// flushing sweeps it: exactly the unmarked objects die, including those
/// allocated from the cached span before the collection.
#[test]
fn a_stale_cached_span_is_swept_when_its_cache_flushes() {
    let hooks = Arc::new(Hooks::recording());
    let heap = heap(false, false, hooks.clone());
    let mut cache = heap.new_cache();
    let objs: Vec<usize> = (0..10)
        .map(|_| addr(cache.alloc(TAG_HOOKED, class_for(32)).unwrap()))
        .collect();
    collect_and_sweep(&heap, objs.iter().copied().step_by(2)); // the cache keeps its span
    let e = heap.verify().unwrap_err();
    assert!(e.contains("not flushed"), "{e}");
    assert_eq!(hooks.frees(), 0, "a cached span is its owner's to sweep");
    cache.prepare_for_sweep();
    let mut want: Vec<usize> = objs.iter().copied().skip(1).step_by(2).collect();
    want.sort_unstable();
    assert_eq!(hooks.freed_sorted(), want);
    assert_eq!(heap.heap_live(), 5 * 32);
    heap.verify().unwrap();
    assert_eq!(heap.sweep_stats().objects_allocated, 10);
}

fn panic_message(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The zombie check: a mark on a slot that was free when marking began
/// (never allocated, or freed by the previous sweep) panics while sweeping,
/// naming the slot, its address and the span. In both modes.
#[test]
fn a_marked_free_slot_is_a_zombie() {
    for poison in [false, true] {
        for freed_before in [false, true] {
            let heap = heap(false, poison, Arc::new(Hooks::default()));
            let mut cache = heap.new_cache();
            let a = addr(cache.alloc(TAG_PLAIN, class_for(32)).unwrap());
            let b = addr(cache.alloc(TAG_PLAIN, class_for(32)).unwrap());
            cache.release_all();
            let span = span_of(&heap, a).unwrap();
            let zombie = if freed_before {
                collect_and_sweep(&heap, [a]); // b dies
                b
            } else {
                span.slot_addr(5) // never allocated
            };
            heap.prepare_mark();
            let bytes = mark(&heap, [a, zombie]);
            heap.finish_mark(bytes);
            let msg =
                panic_message(catch_unwind(AssertUnwindSafe(|| heap.finish_sweep())).unwrap_err());
            let slot = (zombie - span.start()) / 32;
            for want in [
                "zombie".to_string(),
                format!("slot {slot} "),
                format!("{zombie:#x}"),
                format!("span {:#x}", span.start()),
            ] {
                assert!(msg.contains(&want), "{msg:?} lacks {want:?}");
            }
        }
    }
}

/// The verifier itself fails on what it claims to check.
#[test]
fn verify_reports_broken_invariants() {
    let heap = heap(false, false, Arc::new(Hooks::default()));
    let mut cache = heap.new_cache();
    let a = addr(cache.alloc(TAG_PLAIN, class_for(32)).unwrap());
    cache.release_all();
    heap.verify().unwrap();
    let span = span_of(&heap, a).unwrap();

    span.set_alloc_count(7);
    let e = heap.verify().unwrap_err();
    assert!(e.contains("alloc_count 7 but 1"), "{e}");
    span.set_alloc_count(1);

    span.set_marked(3);
    let e = heap.verify().unwrap_err();
    assert!(e.contains("mark bits set before marking"), "{e}");
}

/// "Done" waits for every registered sweeper: a cache refill sweeping a
/// span of its class (blocked in a free hook) keeps the generation not
/// done, so `finish_sweep` on another thread waits for it.
///
/// Regression: refills (and the reclaimer, below) used to sweep without
/// registering, and `finish_sweep` returned while they still held claims.
#[test]
fn finish_sweep_waits_for_a_refill_that_is_sweeping() {
    done_waits_for(|cache| {
        cache.alloc(TAG_GATED, class_for(32)).unwrap();
    });
}

/// As above, for the page reclaimer sweeping a dead span before a large
/// allocation.
#[test]
fn finish_sweep_waits_for_the_reclaimer() {
    done_waits_for(|cache| {
        cache.alloc_large(64 << 10, TAG_PLAIN, true).unwrap();
    });
}

fn done_waits_for(sweeping_alloc: impl FnOnce(&mut spangc_sweep::MCache) + Send) {
    let hooks = Arc::new(Hooks::default());
    let heap = heap(false, false, hooks.clone());
    let mut cache = heap.new_cache();
    // One span of gated objects, all dead (so the reclaimer wants it and a
    // refill of its class sweeps it), and plain spans for finish_sweep.
    for _ in 0..10 {
        cache.alloc(TAG_GATED, class_for(32)).unwrap();
    }
    for _ in 0..300 {
        cache.alloc(TAG_PLAIN, class_for(32)).unwrap();
    }
    cache.release_all();
    collect(&heap, []);
    hooks.gate.close();
    std::thread::scope(|s| {
        let _open = hooks.gate.open_on_drop();
        let sweeper = s.spawn(move || {
            cache.prepare_for_sweep();
            sweeping_alloc(&mut cache);
        });
        hooks.gate.wait_for_waiter(); // the sweeper holds its claim
        let finisher = s.spawn(|| heap.finish_sweep());
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !finisher.is_finished(),
            "finish_sweep returned while a sweeper held a claim"
        );
        assert!(!heap.sweep_done(), "done while a sweeper held a claim");
        hooks.gate.open();
        finisher.join().unwrap();
        sweeper.join().unwrap();
    });
    assert!(heap.sweep_done());
    heap.verify().unwrap();
    let by_class: HashMap<usize, u64> = heap
        .sweep_stats()
        .classes
        .iter()
        .map(|c| (c.type_tag, c.objects_freed))
        .collect();
    assert_eq!(by_class[&TAG_GATED], 10);
}

/// `free_all_objects` (the facade's last step when a heap is dropped) runs
/// the hook once for every object not freed already, whether its span was
/// swept this generation or not; with the sweeps before it, every object
/// ever allocated dies exactly once.
#[test]
fn free_all_objects_frees_each_remaining_object_once() {
    let hooks = Arc::new(Hooks::recording());
    let heap = heap(false, false, hooks.clone());
    let mut cache = heap.new_cache();
    let mut objs: Vec<usize> = (0..1000)
        .map(|i| {
            addr(if i % 100 == 0 {
                cache.alloc_large(40 << 10, TAG_HOOKED, false).unwrap().0
            } else if i % 2 == 0 {
                cache.alloc(TAG_HOOKED, class_for(32)).unwrap()
            } else {
                cache.alloc(TAG_HOOKED2, class_for(208)).unwrap()
            })
        })
        .collect();
    cache.release_all();
    collect(&heap, objs.iter().copied().step_by(3));
    // A refill sweeps one span of its class; the rest stay unswept.
    cache.prepare_for_sweep();
    objs.push(addr(cache.alloc(TAG_HOOKED, class_for(32)).unwrap()));
    cache.release_all();
    assert!(!heap.sweep_done());
    heap.shutdown();
    heap.free_all_objects();
    // Compared as multisets: the object allocated last reuses the slot of
    // one the refill's sweep freed, so that address dies twice, once per
    // object.
    let freed = hooks.freed_sorted();
    objs.sort_unstable();
    assert!(objs.windows(2).any(|w| w[0] == w[1]), "a slot was reused");
    assert_eq!(freed, objs, "every object dies exactly once");
}

/// Dropping a heap while its background sweeper is in the middle of a
/// generation neither hangs nor frees anything twice.
#[test]
fn dropping_a_heap_while_the_background_sweeper_sweeps() {
    let hooks = Arc::new(Hooks::default());
    let heap = heap(true, false, hooks.clone());
    let mut cache = heap.new_cache();
    for _ in 0..20_000 {
        cache.alloc(TAG_HOOKED, class_for(48)).unwrap();
    }
    drop(cache);
    collect(&heap, []);
    drop(heap); // the sweeper may hold the last reference; it stops either way
    assert!(hooks.frees() <= 20_000);
}
