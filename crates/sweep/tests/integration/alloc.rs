//! The allocation path (issue 3): filling spans through a cache, zeroing,
//! the fast and slow paths, the cache's table, large objects, and two
//! threads against one central.

use crate::common::*;
use spangc_arena::PAGE_SIZE;
use spangc_arena::sizeclass::{class_nelems, class_size};
use spangc_gcbits::SpanBits;
use std::collections::HashSet;
use std::sync::Arc;

fn addr(p: std::ptr::NonNull<u8>) -> usize {
    p.as_ptr() as usize
}

/// Fills one span of each of a range of classes slot by slot and checks
/// every address, the counts, and the alloc bits after a sweep.
#[test]
fn fill_a_span_slot_by_slot() {
    for bytes in [8, 16, 24, 48, 256, 1024, 3072, 8192, 32768] {
        let heap = heap(false, false, Arc::new(Hooks::default()));
        let mut cache = heap.new_cache();
        let class = class_for(bytes);
        let (size, nelems) = (
            class_size(class.size_class()),
            class_nelems(class.size_class()),
        );
        let first = addr(cache.alloc(TAG_PLAIN, class).unwrap());
        let span = heap.page_heap().span_of_heap(first).expect("in a span");
        assert_eq!(
            (span.elem_size(), span.nelems() as usize, span.start()),
            (size, nelems, first),
            "{bytes}-byte class: a fresh span, filled from slot 0"
        );
        let mut seen = HashSet::from([first]);
        for i in 1..nelems {
            let p = addr(cache.alloc(TAG_PLAIN, class).unwrap());
            assert_eq!(p, span.start() + i * size, "{bytes}: slot {i} in order");
            assert!(p + size <= span.limit() && p + size <= span.end());
            assert_eq!((p - span.start()) % size, 0, "on a slot boundary");
            assert_eq!(p % 8, 0, "8-byte aligned");
            if size.is_power_of_two() && size <= PAGE_SIZE {
                assert_eq!(p % size, 0, "power-of-two sizes are size-aligned");
            }
            assert!(seen.insert(p), "{p:#x} handed out twice");
        }
        let next = addr(cache.alloc(TAG_PLAIN, class).unwrap());
        assert!(
            !(span.start()..span.end()).contains(&next),
            "{bytes}: a full span is left for a new one"
        );
        cache.release_all();
        assert_eq!(span.alloc_count() as usize, nelems, "{bytes}: counted");
        assert_eq!(span.free_index() as usize, nelems);
        assert_eq!(span.count_allocated(), 0, "alloc bits change only at sweep");
        let st = heap.sweep_stats();
        assert_eq!(st.objects_allocated as usize, nelems + 1);
        assert_eq!(st.bytes_allocated as usize, (nelems + 1) * size);
        heap.verify().unwrap();

        // Every object marked: after the sweep the alloc bits are all set.
        let live: Vec<usize> = (0..nelems)
            .map(|i| span.slot_addr(i))
            .chain([next])
            .collect();
        collect(&heap, live);
        heap.finish_sweep();
        assert_eq!(span.count_allocated() as usize, nelems);
        assert_eq!(span.alloc_count() as usize, nelems);
        assert!((0..nelems).all(|i| span.is_allocated(i) && !span.is_free(i)));
        heap.verify().unwrap();
    }
}

/// `alloc_fast` takes every slot of a cached span (crossing the words of
/// its alloc bits without leaving the cache) and declines only when the
/// cache has no span of the class or the span is full.
#[test]
fn fast_path_declines_only_when_the_span_is_full() {
    let heap = heap(false, false, Arc::new(Hooks::default()));
    let mut cache = heap.new_cache();
    let class = class_for(8); // 1024 slots: 16 words of alloc bits
    assert!(cache.alloc_fast(TAG_PLAIN, class).is_none(), "empty cache");
    let first = addr(cache.alloc_slow(TAG_PLAIN, class).unwrap());
    let mut last = first;
    for _ in 1..1024 {
        let p = addr(cache.alloc_fast(TAG_PLAIN, class).expect("a free slot"));
        assert_eq!(p, last + 8, "consecutive slots of one span");
        last = p;
    }
    assert!(cache.alloc_fast(TAG_PLAIN, class).is_none(), "span full");
}

/// A span with holes (objects marked in an irregular pattern) is handed
/// out run by run: exactly its free slots, each once, in address order,
/// also when caches give it back in the middle of a run and another cache
/// continues from there (the cursor is rewound to the run's next slot).
#[test]
fn runs_of_free_slots_across_caches() {
    let heap = heap(false, false, Arc::new(Hooks::default()));
    let class = class_for(16); // 512 slots: 8 words
    let mut cache = heap.new_cache();
    let objs: Vec<usize> = (0..512)
        .map(|_| addr(cache.alloc(TAG_PLAIN, class).unwrap()))
        .collect();
    cache.release_all();
    let keep = |i: usize| {
        i.is_multiple_of(7) || i.is_multiple_of(5) || (130..200).contains(&i) || i == 511
    };
    collect(&heap, (0..512).filter(|&i| keep(i)).map(|i| objs[i]));
    heap.finish_sweep();
    let span = heap.page_heap().span_of_heap(objs[0]).unwrap();
    let free: Vec<usize> = (0..512).filter(|&i| !keep(i)).map(|i| objs[i]).collect();
    let mut got = Vec::new();
    for (k, chunk) in [3, 1, 40, 2, 64, 100, 7].into_iter().cycle().enumerate() {
        if got.len() == free.len() {
            break;
        }
        let mut c = heap.new_cache();
        for _ in 0..chunk.min(free.len() - got.len()) {
            let p = addr(if k % 2 == 0 {
                c.alloc(TAG_PLAIN, class).unwrap()
            } else {
                match c.alloc_fast(TAG_PLAIN, class) {
                    Some(p) => p,
                    None => c.alloc_slow(TAG_PLAIN, class).unwrap(),
                }
            });
            got.push(p);
        }
        drop(c); // gives the span back mid-run
        assert_eq!(span.alloc_count() as usize, 512 - free.len() + got.len());
        heap.verify().unwrap();
    }
    assert_eq!(got, free, "exactly the free slots, in order");
}

/// Objects from `alloc` are zeroed: slots of a reused span are cleared
/// (whatever they held: data, or poison in verify mode), while slots of
/// fresh OS memory are not written at all. The latter is detected by
/// planting a canary in a free slot of a fresh span: `alloc` hands the slot
/// out with the canary intact.
#[test]
fn alloc_zeroes_reused_slots_but_not_fresh_memory() {
    for poison in [false, true] {
        let heap = heap(false, poison, Arc::new(Hooks::default()));
        let mut cache = heap.new_cache();
        let class = class_for(64);
        let a = addr(cache.alloc(TAG_PLAIN, class).unwrap());
        let span = heap.page_heap().span_of_heap(a).unwrap();
        assert!(!span.needzero(), "fresh memory reads as zero");
        // SAFETY: the next slot of the span is free memory of this test's
        // heap (deliberately dirtied to detect a redundant clear).
        unsafe { std::ptr::write_bytes((a + 64) as *mut u8, 0x5a, 64) };
        let b = addr(cache.alloc(TAG_PLAIN, class).unwrap());
        assert_eq!(b, a + 64);
        // SAFETY: `b` is an allocated 64-byte slot.
        let got = unsafe { std::slice::from_raw_parts(b as *const u8, 64) };
        assert!(
            got.iter().all(|&x| x == 0x5a),
            "fresh memory was zeroed again"
        );
        for _ in 2..span.nelems() {
            let p = addr(cache.alloc(TAG_PLAIN, class).unwrap());
            // SAFETY: `p` is an allocated 64-byte slot.
            unsafe { std::ptr::write_bytes(p as *mut u8, 0xab, 64) };
        }
        cache.release_all();
        collect(&heap, [a]); // the span survives, with 127 dead slots
        heap.finish_sweep();
        assert!(span.needzero(), "a span with freed slots is dirty");
        cache.prepare_for_sweep();
        for _ in 1..span.nelems() {
            let p = addr(cache.alloc(TAG_PLAIN, class).unwrap());
            assert!((span.start()..span.limit()).contains(&p), "reuses the span");
            // SAFETY: `p` is an allocated 64-byte slot.
            let got = unsafe { std::slice::from_raw_parts(p as *const u8, 64) };
            assert!(
                got.iter().all(|&x| x == 0),
                "poison {poison}: {p:#x} not zeroed"
            );
        }
    }
}

/// Large objects: a span of their own, `needzero` false on fresh memory
/// and true once the pages were used, counted and freed whole.
#[test]
fn large_objects_have_a_span_each() {
    let heap = heap(false, false, Arc::new(Hooks::default()));
    let mut cache = heap.new_cache();
    let bytes = 32 * PAGE_SIZE - 100; // past the page cache: first fit
    let (p, needzero) = cache.alloc_large(bytes, TAG_PLAIN, false).unwrap();
    assert!(!needzero, "fresh memory");
    let a = addr(p);
    let span = heap.page_heap().span_of_heap(a).unwrap();
    assert_eq!((span.start(), span.npages(), span.nelems()), (a, 32, 1));
    assert_eq!(a % PAGE_SIZE, 0);
    assert_eq!(heap.heap_live(), 32 * PAGE_SIZE);
    // SAFETY: the object is ours, `bytes` long.
    unsafe { std::ptr::write_bytes(a as *mut u8, 0xcd, bytes) };
    heap.verify().unwrap();
    collect(&heap, []);
    heap.finish_sweep();
    assert!(heap.page_heap().span_of_heap(a).is_none(), "freed whole");
    assert_eq!(heap.page_stats().pages_in_use, 0);
    let (q, needzero) = cache.alloc_large(bytes, TAG_PLAIN, true).unwrap();
    assert_eq!(addr(q), a, "first fit reuses the pages");
    assert!(needzero, "the pages were written");
    assert_eq!(
        heap.sweep_stats().objects_allocated,
        0,
        "counted when the cache flushes"
    );
    cache.release_all();
    let st = heap.sweep_stats();
    assert_eq!(
        (st.objects_allocated, st.objects_freed, st.spans_freed),
        (2, 1, 1)
    );
    heap.verify().unwrap();
}

/// Two threads allocate from their own caches against one central (and
/// give spans back often, so each picks up the other's partial spans):
/// every address distinct, every object intact, exact counts.
#[test]
fn two_threads_against_one_central() {
    let heap = heap(false, false, Arc::new(Hooks::default()));
    let class = class_for(48);
    let nelems = class_nelems(class.size_class());
    let per_thread = 20 * nelems + 7;
    let lists: Vec<Vec<usize>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2u64)
            .map(|t| {
                let heap = heap.clone();
                s.spawn(move || {
                    let mut cache = heap.new_cache();
                    let mut v = Vec::with_capacity(per_thread);
                    for i in 0..per_thread {
                        let p = addr(cache.alloc(TAG_PLAIN, class).unwrap());
                        // SAFETY: a fresh 48-byte slot this thread owns.
                        unsafe { write_stamp(p, t << 32 | i as u64) };
                        v.push(p);
                        if i % 300 == 299 {
                            cache.release_all();
                        }
                    }
                    v
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut all = HashSet::new();
    for (t, list) in lists.iter().enumerate() {
        for (i, &p) in list.iter().enumerate() {
            assert!(all.insert(p), "{p:#x} handed to two objects");
            // SAFETY: every object is still allocated (no collection ran).
            assert_eq!(unsafe { read_stamp(p) }, (t as u64) << 32 | i as u64);
        }
    }
    let total = 2 * per_thread;
    let st = heap.sweep_stats();
    assert_eq!(st.objects_allocated as usize, total);
    let row = st.classes.iter().find(|c| c.span_class == class).unwrap();
    assert_eq!(row.objects_allocated as usize, total);
    assert!(
        row.spans_in_use <= total / nelems + 2,
        "{} spans for {total} objects of {nelems} per span: partial spans not reused",
        row.spans_in_use
    );
    assert_eq!(
        heap.heap_live(),
        total * 48,
        "heap_live counts every object"
    );
    heap.verify().unwrap();
}

/// One cache with many (tag, class) pairs: its table grows and home slots
/// collide, and every allocation still lands in a span of its own tag and
/// class, whether the pairs alternate or one pair runs (hot, on the fast
/// path even where it does not live in its home slot).
#[test]
fn many_tags_and_classes_in_one_cache() {
    let heap = heap(false, false, Arc::new(Hooks::default()));
    let mut cache = heap.new_cache();
    let classes = [class_for(16), class_for(512)];
    let mut seen = HashSet::new();
    for _round in 0..3 {
        for k in 0..100usize {
            let tag = 0x10_0000 + 0x40 * k;
            for class in classes {
                let p = addr(cache.alloc(tag, class).unwrap());
                assert!(seen.insert(p));
                let span = heap.page_heap().span_of_heap(p).unwrap();
                assert_eq!((span.type_tag(), span.span_class()), (tag, class));
            }
        }
    }
    for k in 0..100usize {
        let tag = 0x10_0000 + 0x40 * k;
        for class in classes {
            for _ in 0..3 {
                let p = match cache.alloc_fast(tag, class) {
                    Some(p) => p,
                    None => cache.alloc_slow(tag, class).unwrap(),
                };
                let p = addr(p);
                assert!(seen.insert(p));
                let span = heap.page_heap().span_of_heap(p).unwrap();
                assert_eq!((span.type_tag(), span.span_class()), (tag, class));
            }
        }
    }
    cache.release_all();
    assert_eq!(
        heap.sweep_stats().classes.len(),
        200,
        "one central per pair"
    );
    heap.verify().unwrap();
}
