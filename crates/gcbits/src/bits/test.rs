//! Model tests of bit access: every operation against a `bitvec` reference
//! over random bitmaps, for the `nelems` of every Go size class and every
//! `nelems` up to `MAX_NELEMS`; parallel `set_marked`; the panics.

use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64};

use bitvec::prelude::*;
use proptest::prelude::*;

use super::*;
use crate::{GcBitsArenas, MAX_NELEMS};

/// Go's small size classes (Go 1.19, `seed/sizeclasses.tsv`): object size,
/// span bytes, objects per span. Single- and multi-page classes; the large
/// object span (one slot) is added by [`class_nelems`].
const CLASSES: [(u32, u32, u32); 67] = [
    (8, 8192, 1024),
    (16, 8192, 512),
    (24, 8192, 341),
    (32, 8192, 256),
    (48, 8192, 170),
    (64, 8192, 128),
    (80, 8192, 102),
    (96, 8192, 85),
    (112, 8192, 73),
    (128, 8192, 64),
    (144, 8192, 56),
    (160, 8192, 51),
    (176, 8192, 46),
    (192, 8192, 42),
    (208, 8192, 39),
    (224, 8192, 36),
    (240, 8192, 34),
    (256, 8192, 32),
    (288, 8192, 28),
    (320, 8192, 25),
    (352, 8192, 23),
    (384, 8192, 21),
    (416, 8192, 19),
    (448, 8192, 18),
    (480, 8192, 17),
    (512, 8192, 16),
    (576, 8192, 14),
    (640, 8192, 12),
    (704, 8192, 11),
    (768, 8192, 10),
    (896, 8192, 9),
    (1024, 8192, 8),
    (1152, 8192, 7),
    (1280, 8192, 6),
    (1408, 16384, 11),
    (1536, 8192, 5),
    (1792, 16384, 9),
    (2048, 8192, 4),
    (2304, 16384, 7),
    (2688, 8192, 3),
    (3072, 24576, 8),
    (3200, 16384, 5),
    (3456, 24576, 7),
    (4096, 8192, 2),
    (4864, 24576, 5),
    (5376, 16384, 3),
    (6144, 24576, 4),
    (6528, 32768, 5),
    (6784, 40960, 6),
    (6912, 49152, 7),
    (8192, 8192, 1),
    (9472, 57344, 6),
    (9728, 49152, 5),
    (10240, 40960, 4),
    (10880, 32768, 3),
    (12288, 24576, 2),
    (13568, 40960, 3),
    (14336, 57344, 4),
    (16384, 16384, 1),
    (18432, 73728, 4),
    (19072, 57344, 3),
    (20480, 40960, 2),
    (21760, 65536, 3),
    (24576, 24576, 1),
    (27264, 81920, 3),
    (28672, 57344, 2),
    (32768, 32768, 1),
];

/// `nelems` of every size class (span bytes / object size), plus 1 for a
/// large object's span.
fn class_nelems() -> Vec<u32> {
    let mut v: Vec<u32> = CLASSES
        .iter()
        .map(|&(size, span, objects)| {
            assert_eq!(span / size, objects, "class of size {size}");
            objects
        })
        .collect();
    v.push(1);
    v
}

/// A span record the tests can build with any `nelems`.
struct MockSpan {
    nelems: u32,
    alloc_bits: AtomicPtr<u64>,
    gcmark_bits: AtomicPtr<u64>,
    free_index: AtomicU32,
    alloc_cache: AtomicU64,
}

impl fmt::Display for MockSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mock span nelems {} free_index {}",
            self.nelems,
            self.free_index.load(Relaxed)
        )
    }
}

impl MockSpan {
    fn set_free_index(&self, v: u32) {
        self.free_index.store(v, Relaxed)
    }
}

// SAFETY: the tests install only bitmaps from a GcBitsArenas that outlives
// the mock (see `Fixture`), with `nelems <= MAX_NELEMS`.
unsafe impl SpanRecord for MockSpan {
    fn nelems(&self) -> u32 {
        self.nelems
    }
    fn alloc_bits(&self) -> *mut u64 {
        self.alloc_bits.load(Relaxed)
    }
    fn gcmark_bits(&self) -> *mut u64 {
        self.gcmark_bits.load(Relaxed)
    }
    fn free_index(&self) -> u32 {
        self.free_index.load(Relaxed)
    }
    fn alloc_cache(&self) -> u64 {
        self.alloc_cache.load(Relaxed)
    }
    fn set_alloc_cache(&self, v: u64) {
        self.alloc_cache.store(v, Relaxed)
    }
}

impl_span_bits!(MockSpan);

/// Arenas and a span whose bitmaps come from them. Field order: the span
/// is dropped before the arenas.
struct Fixture {
    span: MockSpan,
    arenas: GcBitsArenas,
}

impl Fixture {
    /// A fresh span as the allocator sets one up: zeroed alloc and mark
    /// bits, free_index 0, alloc_cache pointing at it.
    fn new(nelems: u32) -> Fixture {
        let arenas = GcBitsArenas::new();
        let span = MockSpan {
            nelems,
            alloc_bits: AtomicPtr::new(arenas.new_alloc_bits(nelems).unwrap().as_ptr()),
            gcmark_bits: AtomicPtr::new(arenas.new_mark_bits(nelems).unwrap().as_ptr()),
            free_index: AtomicU32::new(0),
            alloc_cache: AtomicU64::new(0),
        };
        span.init_alloc_cache();
        Fixture { span, arenas }
    }

    /// Sweeps the span as the sweeper will: the mark bits become the alloc
    /// bits, fresh mark bits, free_index 0, alloc_cache refilled.
    fn sweep(&self) {
        let s = &self.span;
        s.alloc_bits.store(s.gcmark_bits.load(Relaxed), Relaxed);
        let fresh = self.arenas.new_mark_bits(s.nelems).unwrap();
        s.gcmark_bits.store(fresh.as_ptr(), Relaxed);
        s.set_free_index(0);
        s.init_alloc_cache();
    }

    /// Marks exactly the slots set in `model`, checking set_marked's result
    /// (rotating through the atomic and the sole-marker variants and the
    /// word-level sole set on `mark_words`, which must all agree).
    fn mark(&self, model: &BitSlice) {
        let words = self.span.mark_words();
        assert_eq!(words.len(), crate::bitmap_words(self.span.nelems));
        for (n, i) in model.iter_ones().enumerate() {
            let set = |i: usize| match n % 3 {
                0 => self.span.set_marked(i),
                1 => self.span.set_marked_sole(i),
                _ => crate::set_bit_sole(&words[i / 64], 1 << (i % 64)),
            };
            assert!(!set(i), "slot {i} marked twice");
            assert!(set(i), "slot {i} not marked");
        }
    }

    /// The mark bitmap's words, for tests that write outside the API.
    fn mark_words(&self) -> &[AtomicU64] {
        Self::words(&self.span.gcmark_bits, self.span.nelems)
    }

    /// The alloc bitmap's words, as the allocation cache reads them.
    fn alloc_words(&self) -> &[AtomicU64] {
        Self::words(&self.span.alloc_bits, self.span.nelems)
    }

    fn words(bits: &AtomicPtr<u64>, nelems: u32) -> &[AtomicU64] {
        let p = NonNull::new(bits.load(Relaxed)).unwrap();
        // SAFETY: a bitmap of `nelems` slots from the fixture's arenas,
        // which live as long as the fixture that `bits` belongs to.
        unsafe { std::slice::from_raw_parts(p.as_ptr().cast(), crate::bitmap_words(nelems)) }
    }
}

/// Checks mark/alloc queries and the free-run walk against `model` (the
/// set of slots marked in the last cycle).
fn check_span(nelems: u32, model: &BitSlice, start: u32) {
    let f = Fixture::new(nelems);
    let s = &f.span;
    assert_eq!(s.count_marked(), 0);
    f.mark(model);
    for i in 0..nelems as usize {
        assert_eq!(s.is_marked(i), model[i], "is_marked({i}), nelems {nelems}");
    }
    assert_eq!(s.count_marked() as usize, model.count_ones());

    f.sweep();
    assert_eq!(s.count_allocated() as usize, model.count_ones());
    assert_eq!(s.count_marked(), 0);
    for i in 0..nelems as usize {
        assert_eq!(s.is_allocated(i), model[i], "is_allocated({i})");
        assert_eq!(s.is_free(i), !model[i], "is_free({i})");
    }

    // Start the search at `start`, as a span partly used before caching.
    s.set_free_index(start);
    s.init_alloc_cache();
    let expect: Vec<u32> = model
        .iter_zeros()
        .filter(|&i| i >= start as usize)
        .map(|i| i as u32)
        .collect();
    let words = f.alloc_words();
    let (mut fi, mut cache) = (s.free_index(), s.alloc_cache());
    let mut taken = Vec::new();
    while let Some(FreeRun { start, len }) = next_free_run(&mut fi, &mut cache, nelems, |w| {
        words[w as usize].load(Relaxed)
    }) {
        assert!(len >= 1, "{start}+{len}");
        assert_eq!(fi, start + len, "the cursor is past the run");
        if fi < nelems {
            // The cache describes the word holding the cursor.
            s.set_free_index(fi);
            s.init_alloc_cache();
            assert_eq!(cache, s.alloc_cache(), "cursor {fi}, nelems {nelems}");
        }
        // A run is maximal, across word boundaries too: the slot after it
        // is allocated or past the end.
        let after = start + len;
        assert!(after == nelems || model[after as usize], "{start}+{len}");
        taken.extend(start..start + len);
    }
    assert_eq!(taken, expect, "nelems {nelems}: free slots");
    assert_eq!((fi, cache), (nelems, 0));
    assert_eq!(
        next_free_run(&mut fi, &mut cache, nelems, |_| unreachable!()),
        None,
        "a full cursor stays full"
    );
}

fn random_bits(nelems: u32, seed: u64, density: u32) -> BitVec {
    // xorshift: deterministic, no extra dependency.
    let mut x = seed | 1;
    (0..nelems)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 100) < density as u64
        })
        .collect()
}

#[test]
fn every_size_class_against_model() {
    for nelems in class_nelems() {
        for (seed, density) in [(1, 0), (2, 100), (3, 50), (4, 10), (5, 90)] {
            let model = random_bits(nelems, seed, density);
            for start in [0, nelems / 3, nelems - 1] {
                check_span(nelems, &model, start);
            }
        }
    }
}

#[test]
fn word_boundaries() {
    // Tails of 0, 1 and 63 bits; free slots exactly at word edges.
    for nelems in [63, 64, 65, 127, 128, 129, 191, 192, 193, 1023, 1024] {
        let mut model = bitvec![1; nelems as usize];
        for i in [0usize, 62, 63, 64, 65, 127, 128, nelems as usize - 1] {
            if i < nelems as usize {
                model.set(i, false);
            }
        }
        for start in [0, 63, 64, nelems - 1].into_iter().filter(|&s| s < nelems) {
            check_span(nelems, &model, start);
        }
    }
}

proptest! {
    #[test]
    fn any_nelems_against_model(
        nelems in 1..=MAX_NELEMS,
        seed in any::<u64>(),
        density in 0..=100u32,
        start_frac in 0.0..1.0f64,
    ) {
        let model = random_bits(nelems, seed, density);
        let start = ((nelems as f64) * start_frac) as u32;
        check_span(nelems, &model, start.min(nelems - 1));
    }
}

#[test]
fn counts_ignore_bits_past_nelems() {
    for nelems in [1, 3, 63, 65, 341, 1000] {
        let f = Fixture::new(nelems);
        // Garbage in the tail of the last word, as a stale writer might
        // leave it (set_marked cannot: it asserts i < nelems).
        let words = f.mark_words();
        let tail = nelems % 64;
        if tail != 0 {
            words[words.len() - 1].store(!0 << tail, Relaxed);
        }
        assert_eq!(f.span.count_marked(), 0, "nelems {nelems}");
        f.span.set_marked(nelems as usize - 1);
        assert_eq!(f.span.count_marked(), 1);
    }
}

#[test]
fn runs_cross_free_word_boundaries_and_stop_at_nelems() {
    // Slot 63 free, the next word free but for slot 70: one run across
    // the boundary, the cache reloaded from word 1 on the way.
    let words = [!(1u64 << 63), 1 << 6];
    let (mut fi, mut cache) = (0, 1u64 << 63);
    let next = |fi: &mut u32, cache: &mut u64| next_free_run(fi, cache, 128, |w| words[w as usize]);
    assert_eq!(
        next(&mut fi, &mut cache),
        Some(FreeRun { start: 63, len: 7 })
    );
    assert_eq!((fi, cache), (70, !(1u64 << 6) >> 6));
    assert_eq!(
        next(&mut fi, &mut cache),
        Some(FreeRun { start: 71, len: 57 })
    );
    assert_eq!((fi, cache), (128, 0));
    // A run that ends exactly at a word boundary leaves the cache on the
    // next word.
    let words = [!(1u64 << 63), !0];
    let (mut fi, mut cache) = (0, 1u64 << 63);
    assert_eq!(
        next_free_run(&mut fi, &mut cache, 128, |w| words[w as usize]),
        Some(FreeRun { start: 63, len: 1 })
    );
    assert_eq!((fi, cache), (64, 0));
    // Free bits at or past nelems are not slots.
    let (mut fi, mut cache) = (0, !0u64 << 10);
    assert_eq!(
        next_free_run(&mut fi, &mut cache, 10, |_| unreachable!()),
        None
    );
    assert_eq!((fi, cache), (10, 0));
    let (mut fi, mut cache) = (0, !0u64);
    assert_eq!(
        next_free_run(&mut fi, &mut cache, 10, |_| unreachable!()),
        Some(FreeRun { start: 0, len: 10 })
    );
}

/// Runs `marker` on four threads against one fresh span per round, each
/// thread returning which slots it won, and checks that every bit had
/// exactly one winner and ended up set.
fn race_for_bits(marker: impl Fn(&MockSpan, usize, usize) -> Vec<bool> + Sync) {
    const THREADS: usize = 4;
    let rounds = if cfg!(miri) { 2 } else { 200 };
    for round in 0..rounds {
        let f = Fixture::new(MAX_NELEMS);
        let wins: Vec<Vec<bool>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (span, marker) = (&f.span, &marker);
                    sc.spawn(move || marker(span, t, round))
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for i in 0..MAX_NELEMS as usize {
            let winners = wins.iter().filter(|w| w[i]).count();
            assert_eq!(winners, 1, "round {round}, bit {i}: {winners} winners");
        }
        assert_eq!(f.span.count_marked(), MAX_NELEMS);
    }
}

#[test]
fn set_marked_parallel_one_winner_per_bit() {
    race_for_bits(|span, t, round| {
        let n = MAX_NELEMS as usize;
        let mut won = vec![false; n];
        // Different orders per thread so they collide.
        for k in 0..n {
            let i = if t % 2 == 0 { k } else { n - 1 - k };
            let i = (i + round * 7) % n;
            won[i] = !span.set_marked(i);
        }
        won
    });
}

/// `set_marked_word` hands each bit to exactly one caller, whether it
/// races with other word-wide calls or with `set_marked`, and reports
/// exactly the bits that were clear.
#[test]
fn set_marked_word_one_winner_per_bit() {
    race_for_bits(|span, t, round| {
        let n = MAX_NELEMS as usize;
        let mut won = vec![false; n];
        if t == 0 {
            for (i, w) in won.iter_mut().enumerate() {
                *w = !span.set_marked(i);
            }
            return won;
        }
        // Masks of a few neighbouring slots, as a marker combines
        // siblings, in a different pattern per thread and round.
        let mut i = (round * 5 + t) % 3;
        while i < n {
            let len = 1 + (i + t) % 4;
            let end = (i + len).min(n).min((i / 64 + 1) * 64);
            let mask = (i..end).fold(0u64, |m, j| m | 1 << (j % 64));
            let fresh = span.set_marked_word(i / 64, mask);
            assert_eq!(fresh & !mask, 0, "only bits of the mask");
            for (j, w) in won.iter_mut().enumerate().take(end).skip(i) {
                *w = fresh & (1 << (j % 64)) != 0;
            }
            i = end + t % 2;
        }
        won
    });
}

#[test]
fn set_marked_word_rejects_bits_past_nelems() {
    let f = Fixture::new(65);
    assert_eq!(f.span.set_marked_word(1, 1), 1, "slot 64 is the last");
    assert_eq!(f.span.set_marked_word(1, 1), 0, "already set");
    let r = std::panic::catch_unwind(|| f.span.set_marked_word(1, 0b10));
    let e = r.unwrap_err();
    let m = e.downcast_ref::<String>().unwrap();
    assert!(
        m.contains("set_marked_word(65) out of range in mock span nelems 65"),
        "{m}"
    );
    assert!(std::panic::catch_unwind(|| f.span.set_marked_word(0, 0)).is_err());
    assert!(std::panic::catch_unwind(|| f.span.set_marked_word(2, 1)).is_err());
}

#[test]
fn null_bitmap_panics_with_span() {
    let span = MockSpan {
        nelems: 8,
        alloc_bits: AtomicPtr::new(std::ptr::null_mut()),
        gcmark_bits: AtomicPtr::new(std::ptr::null_mut()),
        free_index: AtomicU32::new(3),
        alloc_cache: AtomicU64::new(0),
    };
    let msg = |r: std::thread::Result<()>| -> String {
        let e = r.unwrap_err();
        e.downcast_ref::<String>().cloned().unwrap_or_default()
    };
    let m = msg(std::panic::catch_unwind(|| {
        span.set_marked(1);
    }));
    assert!(
        m.contains("mark bits of mock span nelems 8 free_index 3 are null"),
        "{m}"
    );
    let m = msg(std::panic::catch_unwind(|| {
        span.mark_words();
    }));
    assert!(m.contains("mark bits of mock span"), "{m}");
    let m = msg(std::panic::catch_unwind(|| {
        span.count_allocated();
    }));
    assert!(m.contains("alloc bits of mock span"), "{m}");
    // The real Span prints itself the same way.
    let real = Span::new_dead();
    let m = msg(std::panic::catch_unwind(|| {
        real.is_marked(0);
    }));
    assert!(m.contains("mark bits of span 0x0..0x0"), "{m}");
}

#[test]
fn set_marked_out_of_range_panics() {
    let f = Fixture::new(65);
    let r = std::panic::catch_unwind(|| f.span.set_marked(65));
    let e = r.unwrap_err();
    let m = e.downcast_ref::<String>().unwrap();
    assert!(
        m.contains("set_marked(65) out of range in mock span nelems 65"),
        "{m}"
    );
    // A slot past nelems but inside the last word is still rejected.
    assert!(std::panic::catch_unwind(|| f.span.is_marked(66)).is_err());
    assert!(std::panic::catch_unwind(|| f.span.is_free(65)).is_err());
    assert!(std::panic::catch_unwind(|| f.span.is_allocated(127)).is_err());
    assert!(!f.span.is_marked(64) && f.span.is_free(64));
}

#[test]
fn refill_rejects_unaligned_byte() {
    let f = Fixture::new(128);
    assert!(std::panic::catch_unwind(|| f.span.refill_alloc_cache(4)).is_err());
    assert!(std::panic::catch_unwind(|| f.span.refill_alloc_cache(16)).is_err());
    f.span.refill_alloc_cache(8);
    assert_eq!(f.span.alloc_cache(), !0);
}
