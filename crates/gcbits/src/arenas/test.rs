//! Model tests of the chunk arenas and their epochs: alignment, zeroing,
//! disjointness, the three-rotation validity rule, reuse only through
//! `free`, zeroing counts, the slack for stale readers, and concurrent
//! allocation (with and without a rotation racing it).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use super::*;
use crate::bitmap_words;

/// Which list each chunk is on: chunk base address -> list name.
fn chunk_lists(a: &GcBitsArenas) -> BTreeMap<usize, &'static str> {
    let lists = a.lock();
    let next = List {
        head: a.next.load(Relaxed),
        len: lists.next_len,
    };
    let mut m = BTreeMap::new();
    for (name, list) in [
        ("next", &next),
        ("current", &lists.current),
        ("previous", &lists.previous),
        ("free", &lists.free),
    ] {
        let mut n = 0;
        for c in list.iter() {
            assert!(m.insert(c.base.as_ptr() as usize, name).is_none());
            n += 1;
        }
        assert_eq!(n, list.len, "{name} list length");
    }
    assert_eq!(m.len(), lists.chunks_mapped, "a chunk is on no list");
    m
}

/// The chunk holding address `p`, and its list.
fn chunk_of(m: &BTreeMap<usize, &'static str>, p: usize) -> (usize, &'static str) {
    let (&base, &list) = m.range(..=p).next_back().expect("not in any chunk");
    assert!(p < base + CHUNK_BYTES, "{p:#x} not in chunk {base:#x}");
    (base, list)
}

/// The words of a bitmap handed out by `a` (which outlives the slice).
fn words(p: NonNull<u64>, nelems: u32) -> &'static [AtomicU64] {
    // SAFETY: a bitmap of `nelems` slots from arenas that every test keeps
    // alive while it uses the slice; chunk memory is accessed atomically.
    unsafe { std::slice::from_raw_parts(p.as_ptr().cast(), bitmap_words(nelems)) }
}

/// A handed-out bitmap: start, length in bytes, epoch it was handed out in,
/// and the pattern written into it.
#[derive(Clone, Copy, Debug)]
struct Handed {
    start: usize,
    bytes: usize,
    epoch: u64,
    pattern: u64,
}

/// `used` (a `*_bytes` stat) is `handed` plus at most one skipped tail of
/// under 128 bytes per chunk.
fn assert_used(used: usize, handed: usize, chunks: usize) {
    assert!(
        used >= handed && used <= handed + 120 * chunks,
        "used {used}, handed out {handed}, {chunks} chunks"
    );
}

fn overlaps(a: &Handed, start: usize, bytes: usize) -> bool {
    a.start < start + bytes && start < a.start + a.bytes
}

/// Deterministic pseudo-random numbers.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn nelems(&mut self) -> u32 {
        1 + (self.next() % MAX_NELEMS as u64) as u32
    }
}

#[test]
fn bits_are_aligned_zeroed_disjoint() {
    let a = GcBitsArenas::new();
    let mut rng = Rng(7);
    let mut got: Vec<(usize, usize)> = Vec::new();
    let mut total = 0;
    // Several chunks' worth.
    while total < 5 * CHUNK_BYTES {
        let n = rng.nelems();
        let p = a.new_mark_bits(n).unwrap();
        assert_eq!(p.as_ptr() as usize % 8, 0);
        let w = words(p, n);
        assert!(w.iter().all(|w| w.load(Relaxed) == 0));
        w.iter().for_each(|w| w.store(!0, Relaxed));
        got.push((p.as_ptr() as usize, w.len() * 8));
        total += w.len() * 8;
    }
    got.sort();
    for pair in got.windows(2) {
        assert!(pair[0].0 + pair[0].1 <= pair[1].0, "{pair:x?} overlap");
    }
    let s = a.stats();
    assert_used(s.next_bytes, total, s.next_chunks);
    assert_eq!(s.chunks_mapped, s.next_chunks);
    assert_eq!(s.sys_bytes, s.chunks_mapped * CHUNK_BYTES);
    assert_eq!(s.chunks_zeroed, 0, "fresh chunks are not zeroed");
    // Every bitmap lies in a chunk of `next`, clear of the slack.
    let m = chunk_lists(&a);
    for &(p, bytes) in &got {
        let (base, list) = chunk_of(&m, p);
        assert_eq!(list, "next");
        assert!(p + bytes <= base + CHUNK_USABLE);
    }
}

#[test]
fn nelems_is_checked() {
    let a = GcBitsArenas::new();
    assert!(std::panic::catch_unwind(|| a.new_mark_bits(0)).is_err());
    assert!(std::panic::catch_unwind(|| a.new_alloc_bits(MAX_NELEMS + 1)).is_err());
    assert!(a.new_mark_bits(MAX_NELEMS).is_ok());
}

#[test]
fn slack_covers_max_nelems_from_any_bitmap() {
    // One-word bitmaps pack the chunk ends as tightly as possible: the last
    // one in each chunk starts 8 bytes before CHUNK_USABLE.
    let a = GcBitsArenas::new();
    let ps: Vec<usize> = (0..3 * CHUNK_USABLE / 8)
        .map(|_| a.new_mark_bits(64).unwrap().as_ptr() as usize)
        .collect();
    let m = chunk_lists(&a);
    let max_read = MAX_NELEMS as usize / 8;
    let mut tightest = usize::MAX;
    for &p in &ps {
        let (base, _) = chunk_of(&m, p);
        assert!(p + max_read <= base + CHUNK_BYTES, "{p:#x} in {base:#x}");
        tightest = tightest.min(base + CHUNK_BYTES - (p + max_read));
        // And the read itself is fine (it would fault past the mapping).
        let stale = words(NonNull::new(p as *mut u64).unwrap(), MAX_NELEMS);
        stale.iter().for_each(|w| {
            w.load(Relaxed);
        });
    }
    assert_eq!(tightest, 8, "the slack is not the minimum");
}

/// Random allocations over many rotations, checked against a model of
/// the contract: a bitmap handed out in epoch `e` is never handed out
/// again, and its contents never change, before rotation `e + 3`; every
/// bitmap handed out reads as zero even though every earlier one was
/// dirtied; and a bitmap's chunk is on `next`, then `current`, then
/// `previous`, as rotations go by.
#[test]
fn epoch_model() {
    let a = GcBitsArenas::new();
    let mut rng = Rng(0x5eed);
    let mut live: Vec<Handed> = Vec::new();
    for epoch in 0..12u64 {
        // Vary the demand so chunks are sometimes reused, sometimes mapped,
        // sometimes left partly used.
        let demand = (rng.next() % (3 * CHUNK_BYTES as u64)) as usize;
        let mut used = 0;
        while used < demand {
            let n = rng.nelems();
            let p = a.new_mark_bits(n).unwrap();
            let (start, bytes) = (p.as_ptr() as usize, bitmap_words(n) * 8);
            for h in &live {
                assert!(
                    !overlaps(h, start, bytes),
                    "epoch {epoch}: {start:#x}+{bytes} reuses {h:x?}"
                );
            }
            let w = words(p, n);
            assert!(w.iter().all(|w| w.load(Relaxed) == 0), "not zeroed");
            let pattern = rng.next() | 1;
            w.iter().for_each(|w| w.store(pattern, Relaxed));
            live.push(Handed {
                start,
                bytes,
                epoch,
                pattern,
            });
            used += bytes;
        }
        // Contents of every still-valid bitmap are intact, and each is on
        // the list its age says.
        let m = chunk_lists(&a);
        for h in &live {
            let w = words(
                NonNull::new(h.start as *mut u64).unwrap(),
                h.bytes as u32 * 8,
            );
            assert!(
                w.iter().all(|w| w.load(Relaxed) == h.pattern),
                "{h:x?} changed"
            );
            let want = ["next", "current", "previous"][(epoch - h.epoch) as usize];
            assert_eq!(chunk_of(&m, h.start).1, want, "{h:x?} at epoch {epoch}");
        }
        let s = a.stats();
        let in_epoch = |e: u64| {
            live.iter()
                .filter(|h| h.epoch == e)
                .map(|h| h.bytes)
                .sum::<usize>()
        };
        assert_used(s.next_bytes, in_epoch(epoch), s.next_chunks);
        if epoch >= 1 {
            assert_used(s.current_bytes, in_epoch(epoch - 1), s.current_chunks);
        }
        if epoch >= 2 {
            assert_used(s.previous_bytes, in_epoch(epoch - 2), s.previous_chunks);
        }
        a.next_epoch();
        // Rotation `epoch + 1` done: bits from `epoch - 2` are now free.
        live.retain(|h| epoch + 1 - h.epoch < 3);
    }
    let s = a.stats();
    assert_eq!(s.epoch, 12);
    assert!(s.chunks_zeroed > 0, "the model never reused a chunk: {s:?}");
}

#[test]
fn previous_is_not_reused_before_free() {
    let a = GcBitsArenas::new();
    // Two chunks in epoch 0.
    let old: Vec<usize> = (0..2 * CHUNK_USABLE / 128)
        .map(|_| a.new_mark_bits(MAX_NELEMS).unwrap().as_ptr() as usize)
        .collect();
    a.next_epoch();
    a.next_epoch();
    // Epoch 0 is `previous`, `free` is empty: heavy allocation must map
    // new chunks, not take the old ones.
    let s0 = a.stats();
    assert_eq!((s0.previous_chunks, s0.free_chunks), (2, 0));
    let m0 = chunk_lists(&a);
    for _ in 0..4 * CHUNK_USABLE / 128 {
        let p = a.new_mark_bits(MAX_NELEMS).unwrap().as_ptr() as usize;
        assert_ne!(chunk_of(&chunk_lists(&a), p).1, "previous");
    }
    assert_eq!(a.stats().chunks_mapped, 2 + 4);
    assert_eq!(
        chunk_lists(&a)
            .iter()
            .filter(|(_, l)| **l == "previous")
            .count(),
        2
    );
    // One more rotation: epoch 0's chunks pass through `free` and are
    // reused (zeroed) before anything new is mapped.
    a.next_epoch();
    let s = a.stats();
    assert_eq!(s.free_chunks, 2);
    let p = a.new_mark_bits(MAX_NELEMS).unwrap().as_ptr() as usize;
    assert!(m0.contains_key(&chunk_of(&chunk_lists(&a), p).0));
    assert!(
        old.iter()
            .any(|&o| chunk_of(&m0, o).0 == chunk_of(&chunk_lists(&a), p).0)
    );
    let s = a.stats();
    assert_eq!((s.chunks_mapped, s.chunks_zeroed, s.free_chunks), (6, 1, 1));
}

#[test]
fn reused_chunks_read_zero_and_fresh_ones_are_not_zeroed() {
    let a = GcBitsArenas::new();
    let fill = |a: &GcBitsArenas, chunks: usize| {
        for _ in 0..chunks * CHUNK_USABLE / 128 {
            let p = a.new_mark_bits(MAX_NELEMS).unwrap();
            let w = words(p, MAX_NELEMS);
            assert!(w.iter().all(|w| w.load(Relaxed) == 0));
            w.iter().for_each(|w| w.store(0xdead_beef, Relaxed));
        }
    };
    fill(&a, 3);
    assert_eq!(a.stats().chunks_zeroed, 0);
    for _ in 0..3 {
        a.next_epoch();
    }
    fill(&a, 3); // the same three chunks, dirty, so each is zeroed once
    let s = a.stats();
    assert_eq!((s.chunks_mapped, s.chunks_zeroed), (3, 3));
    fill(&a, 2); // fresh chunks: mapped, not zeroed
    let s = a.stats();
    assert_eq!((s.chunks_mapped, s.chunks_zeroed), (5, 3));

    // A clean chunk on `free` (as the add-chunk race leaves one) is reused
    // without zeroing.
    let b = GcBitsArenas::new();
    let clean = Chunk::map().unwrap();
    {
        let mut lists = b.lock();
        lists.chunks_mapped += 1;
        lists.free.push(clean);
    }
    b.new_mark_bits(64).unwrap();
    let s = b.stats();
    assert_eq!((s.chunks_mapped, s.chunks_zeroed, s.next_chunks), (1, 0, 1));
}

#[test]
fn concurrent_allocation_is_disjoint() {
    const THREADS: usize = 4;
    let per_thread = if cfg!(miri) { 50 } else { 20_000 };
    let a = GcBitsArenas::new();
    let got: Vec<Vec<(usize, usize)>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..THREADS)
            .map(|t| {
                let a = &a;
                sc.spawn(move || {
                    let mut rng = Rng(t as u64 + 1);
                    (0..per_thread)
                        .map(|_| {
                            let n = rng.nelems();
                            let p = a.new_mark_bits(n).unwrap();
                            let w = words(p, n);
                            assert!(w.iter().all(|w| w.load(Relaxed) == 0));
                            w.iter().for_each(|w| w.store(t as u64 + 1, Relaxed));
                            (p.as_ptr() as usize, w.len() * 8)
                        })
                        .collect()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<(usize, usize)> = got.concat();
    let total: usize = all.iter().map(|r| r.1).sum();
    all.sort();
    for pair in all.windows(2) {
        assert!(pair[0].0 + pair[0].1 <= pair[1].0, "{pair:x?} overlap");
    }
    for (t, ranges) in got.iter().enumerate() {
        for &(p, bytes) in ranges {
            let w = words(NonNull::new(p as *mut u64).unwrap(), bytes as u32 * 8);
            assert!(w.iter().all(|w| w.load(Relaxed) == t as u64 + 1));
        }
    }
    let s = a.stats();
    assert_used(s.next_bytes, total, s.next_chunks);
    // Racing chunk additions may leave clean chunks on `free`; none is lost.
    assert_eq!(s.chunks_mapped, s.next_chunks + s.free_chunks);
    chunk_lists(&a);
}

#[test]
fn concurrent_allocation_with_rotation() {
    use std::sync::atomic::AtomicUsize;
    const THREADS: usize = 3;
    let per_thread = if cfg!(miri) { 50 } else { 5_000 };
    let a = GcBitsArenas::new();
    let done = AtomicUsize::new(0);
    let rotations = AtomicUsize::new(0);
    let total: usize = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..THREADS)
            .map(|t| {
                let (a, done, rotations) = (&a, &done, &rotations);
                sc.spawn(move || {
                    let mut rng = Rng(t as u64 + 11);
                    let mut bytes = 0;
                    // Keep allocating until both rotations happened, so
                    // that they race with allocation.
                    let mut i = 0;
                    while i < per_thread || rotations.load(Relaxed) < 2 {
                        let n = rng.nelems();
                        a.new_mark_bits(n).unwrap();
                        done.fetch_add(1, Relaxed);
                        bytes += bitmap_words(n) * 8;
                        i += 1;
                    }
                    bytes
                })
            })
            .collect();
        // Two rotations while they allocate, each after at least 1000 more
        // allocations: nothing reaches `free`, so every byte handed out is
        // counted in exactly one live epoch.
        let mut seen = 0;
        for k in 1..=2 {
            while done.load(Relaxed) < seen + 1000 {
                std::hint::spin_loop();
            }
            a.next_epoch();
            rotations.store(k, Relaxed);
            seen = done.load(Relaxed);
        }
        hs.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let s = a.stats();
    assert!(s.current_bytes > 0 && s.previous_bytes > 0, "{s:?}");
    let used = s.next_bytes + s.current_bytes + s.previous_bytes;
    let chunks = s.next_chunks + s.current_chunks + s.previous_chunks;
    assert_used(used, total, chunks);
    assert_eq!(
        s.chunks_mapped,
        s.next_chunks + s.current_chunks + s.previous_chunks + s.free_chunks
    );
    chunk_lists(&a);
}

/// `reserve` hands out zeroed, 8-byte aligned blocks of up to
/// `MAX_RESERVE_BYTES` from `next`, disjoint from each other and from
/// bitmaps, each inside one chunk with the slack after it; other sizes
/// panic.
#[test]
fn reserved_blocks_are_zeroed_disjoint_and_inside_a_chunk() {
    let a = GcBitsArenas::new();
    let mut handed: Vec<(usize, usize)> = Vec::new();
    for i in 0..200 {
        let (p, bytes) = if i % 3 == 0 {
            (a.new_mark_bits(300).unwrap(), bitmap_words(300) * 8)
        } else {
            (a.reserve(MAX_RESERVE_BYTES).unwrap(), MAX_RESERVE_BYTES)
        };
        let start = p.as_ptr() as usize;
        assert_eq!(start % 8, 0);
        assert!(
            handed
                .iter()
                .all(|&(s, b)| start + bytes <= s || s + b <= start),
            "block {i} overlaps an earlier one"
        );
        // SAFETY: `bytes` of zeroed memory handed out at `p`.
        let words = unsafe { std::slice::from_raw_parts(p.as_ptr(), bytes / 8) };
        assert!(words.iter().all(|&w| w == 0), "block {i} is not zeroed");
        let lists = chunk_lists(&a);
        let (base, list) = chunk_of(&lists, start);
        assert_eq!(list, "next");
        assert!(
            start + bytes + CHUNK_SLACK_BYTES <= base + CHUNK_BYTES,
            "block {i} runs into the chunk's slack"
        );
        handed.push((start, bytes));
    }
    for bad in [0, 12, MAX_RESERVE_BYTES + 8] {
        assert!(
            std::panic::catch_unwind(|| a.reserve(bad)).is_err(),
            "reserve({bad}) must panic"
        );
    }
}
