//! Crate-internal tests of the page heap: the paths that must take no
//! lock, and the counters behind the stats.

use crate::*;
use std::sync::atomic::Ordering::Relaxed;

fn heap() -> PageHeap {
    PageHeap::new(PageHeapConfig::default().arena_hints(ArenaHints::Kernel)).unwrap()
}

fn class_1page() -> SpanClass {
    SpanClass::new(size_to_class(64).unwrap(), false)
}

#[test]
fn cached_alloc_and_free_take_no_lock() {
    let h = heap();
    let mut c = PageCache::new();
    // Warm up: binds the cache, fills the block and the records.
    let s = h.alloc_span(1, class_1page(), 0, 0, Some(&mut c)).unwrap();
    h.free_span(s, Some(&mut c));
    let before = h.shared.lock_count.load(Relaxed);
    for _ in 0..1000 {
        let a = h.alloc_span(1, class_1page(), 0, 0, Some(&mut c)).unwrap();
        let b = h
            .alloc_span(8, SpanClass::LARGE_NOSCAN, 0, 0, Some(&mut c))
            .unwrap();
        h.free_span(a, Some(&mut c));
        h.free_span(b, Some(&mut c));
    }
    assert_eq!(h.shared.lock_count.load(Relaxed), before);
    c.flush(&h);
    h.verify().unwrap();
}

#[test]
fn uncached_paths_lock_and_cache_refills_lock_once() {
    let h = heap();
    let before = h.shared.lock_count.load(Relaxed);
    let s = h.alloc_span(1, class_1page(), 0, 0, None).unwrap();
    h.free_span(s, None);
    assert_eq!(h.shared.lock_count.load(Relaxed), before + 2);
    let mut c = PageCache::new();
    let before = h.shared.lock_count.load(Relaxed);
    // 64 one-page spans: one refill, then lock-free until the block runs
    // out; records refill every RECORDS / 2.
    let spans: Vec<_> = (0..64)
        .map(|_| h.alloc_span(1, class_1page(), 0, 0, Some(&mut c)).unwrap())
        .collect();
    let locks = h.shared.lock_count.load(Relaxed) - before;
    assert!(
        locks <= 64 / 8 + 1,
        "{locks} lock acquisitions for 64 cached spans"
    );
    for s in spans {
        h.free_span(s, Some(&mut c));
    }
    drop(c);
    h.verify().unwrap();
}

#[test]
fn dropping_a_cache_returns_its_pages_even_after_the_heap() {
    let h = heap();
    let mut c = PageCache::new();
    let s = h.alloc_span(1, class_1page(), 0, 0, Some(&mut c)).unwrap();
    assert_eq!(c.free_bytes(), 63 * PAGE_SIZE);
    h.free_span(s, Some(&mut c));
    drop(c);
    h.verify().unwrap();
    let st = h.stats();
    assert_eq!(st.in_use_bytes, 0);
    // All pages free in the bitmaps again: one run of a whole arena.
    let all = h
        .alloc_span(PAGES_PER_ARENA, SpanClass::LARGE_SCAN, 0, 0, None)
        .unwrap();
    assert_eq!(h.stats().arenas, 1);
    h.free_span(all, None);
    // A cache outliving its heap still flushes into it safely.
    let mut c = PageCache::new();
    let s = h
        .alloc_span(2, SpanClass::LARGE_SCAN, 0, 0, Some(&mut c))
        .unwrap();
    h.free_span(s, Some(&mut c));
    drop(h);
    drop(c);
}

#[test]
fn cache_rebinds_to_another_heap() {
    let a = heap();
    let b = heap();
    let mut c = PageCache::new();
    let s = a.alloc_span(1, class_1page(), 0, 0, Some(&mut c)).unwrap();
    let t = b.alloc_span(1, class_1page(), 0, 0, Some(&mut c)).unwrap();
    // `a`'s block went back when the cache moved to `b`.
    a.verify().unwrap();
    assert_eq!(a.stats().in_use_bytes, PAGE_SIZE);
    // Freeing an `a` span with a cache bound to `b` goes through `a`'s lock.
    a.free_span(s, Some(&mut c));
    b.free_span(t, Some(&mut c));
    a.verify().unwrap();
    c.flush(&b);
    b.verify().unwrap();
}

#[test]
fn heap_is_send_and_sync_and_cache_is_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<PageHeap>();
    send_sync::<Span>();
    send::<PageCache>();
}

#[test]
fn cache_shares_of_the_in_use_count_survive_the_cache() {
    let h = heap();
    let mut c = PageCache::new();
    let spans: Vec<_> = (0..3)
        .map(|_| {
            h.alloc_span(2, SpanClass::LARGE_SCAN, 0, 0, Some(&mut c))
                .unwrap()
        })
        .collect();
    // Counted in the cache's share, which the shared counter does not hold.
    assert_eq!(h.shared.counters.in_use_pages.shared_part(), 0);
    assert_eq!(h.stats().pages_in_use, 6);
    // Freed without the cache: the shared part goes negative meanwhile.
    h.free_span(spans[0], None);
    assert_eq!(h.stats().pages_in_use, 4);
    h.verify().unwrap();
    // Dropping the cache folds its share into the shared counter.
    drop(c);
    assert_eq!(h.shared.counters.in_use_pages.shared_part(), 4);
    assert_eq!(h.stats().pages_in_use, 4);
    let mut d = PageCache::new();
    h.free_span(spans[1], Some(&mut d)); // not bound yet: shared counter
    let s = h
        .alloc_span(1, SpanClass::LARGE_SCAN, 0, 0, Some(&mut d))
        .unwrap();
    h.free_span(spans[2], Some(&mut d)); // bound: d's share
    assert_eq!(h.stats().pages_in_use, 1);
    h.free_span(s, Some(&mut d));
    assert_eq!(h.stats().pages_in_use, 0);
    h.verify().unwrap();
}

/// Allocates the 64 one-page spans of a fresh block through `c`.
fn fill_block<'h>(h: &'h PageHeap, c: &mut PageCache) -> Vec<&'h Span> {
    (0..64)
        .map(|_| h.alloc_span(1, class_1page(), 0, 0, Some(c)).unwrap())
        .collect()
}

fn block_of(s: &Span) -> usize {
    s.start() & !(64 * PAGE_SIZE - 1)
}

/// A cache whose block was freed by someone else (a sweeper) takes that
/// block again before the heap's lowest free block, while its pages still
/// hold data; once they are scavenged it takes the lowest again.
#[test]
fn cache_takes_its_own_dirty_block_back_first() {
    for scavenge in [false, true] {
        let h = heap();
        let (mut a, mut b) = (PageCache::new(), PageCache::new());
        let in_a = fill_block(&h, &mut a);
        let in_b = fill_block(&h, &mut b);
        let (block_a, block_b) = (block_of(in_a[0]), block_of(in_b[0]));
        assert!(block_a < block_b, "caches fill the heap from the bottom");
        for s in in_a.into_iter().chain(in_b) {
            h.free_span(s, None);
        }
        if scavenge {
            h.scavenge_all();
        }
        // b asks first: the lowest free block is a's.
        let s = h.alloc_span(1, class_1page(), 0, 0, Some(&mut b)).unwrap();
        let want = if scavenge { block_a } else { block_b };
        assert_eq!(block_of(s), want, "scavenged: {scavenge}");
        h.free_span(s, Some(&mut b));
        drop((a, b));
        h.verify().unwrap();
    }
}
