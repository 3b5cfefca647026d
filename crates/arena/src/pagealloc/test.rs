//! Exhaustive and model tests of the bitmap, summary and search code.
//!
//! The page allocator never touches the pages it manages, so these tests
//! give it arenas at made-up addresses (metadata only, no reservation).

use super::chunk::{CHUNK_PAGES, CHUNK_WORDS, ChunkBits, find_bit_range64};
use super::summary::{MAX_PACKED, Sum};
use super::*;
use crate::PAGES_PER_ARENA;

/// A tiny deterministic PRNG (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// A word with a density of set bits chosen at random, sometimes with
    /// long runs.
    fn word(&mut self) -> u64 {
        match self.below(6) {
            0 => 0,
            1 => !0,
            2 => self.next() & self.next(),
            3 => self.next() | self.next(),
            4 => {
                let a = self.below(64);
                let n = self.below(65 - a);
                if n == 64 { !0 } else { ((1u64 << n) - 1) << a }
            }
            _ => self.next(),
        }
    }
}

fn naive_find_bit_range(c: u64, n: u32) -> u32 {
    (0..=64 - n)
        .find(|&i| (i..i + n).all(|b| c & (1 << b) != 0))
        .unwrap_or(64)
}

#[test]
fn find_bit_range64_every_n() {
    let mut rng = Rng(1);
    let mut words: Vec<u64> = (0..64)
        .flat_map(|a| (1..=64 - a).map(move |n| if n == 64 { !0 } else { ((1u64 << n) - 1) << a }))
        .collect();
    words.extend((0..3000).map(|_| rng.word()));
    words.extend([0, !0, 0x5555_5555_5555_5555, 0x8000_0000_0000_0001]);
    for n in 1..=64 {
        for &w in &words {
            assert_eq!(
                find_bit_range64(w, n),
                naive_find_bit_range(w, n),
                "word {w:#x} n {n}"
            );
        }
    }
}

fn random_chunk(rng: &mut Rng) -> ChunkBits {
    let mut c = ChunkBits::default();
    for w in 0..CHUNK_WORDS {
        c.alloc[w] = rng.word();
        c.scav[w] = rng.word() & !c.alloc[w];
    }
    c
}

fn is_free(c: &ChunkBits, p: usize) -> bool {
    c.alloc[p / 64] & (1 << (p % 64)) == 0
}

fn slow_summary(c: &ChunkBits) -> (usize, usize, usize) {
    let start = (0..CHUNK_PAGES).take_while(|&p| is_free(c, p)).count();
    let end = (0..CHUNK_PAGES)
        .rev()
        .take_while(|&p| is_free(c, p))
        .count();
    let mut max = 0;
    let mut run = 0;
    for p in 0..CHUNK_PAGES {
        run = if is_free(c, p) { run + 1 } else { 0 };
        max = max.max(run);
    }
    (start, max, end)
}

#[test]
fn summaries_equal_slow_reference() {
    let mut rng = Rng(2);
    for _ in 0..5000 {
        let c = random_chunk(&mut rng);
        let s = c.summarize();
        assert_eq!((s.start(), s.max(), s.end()), slow_summary(&c), "{c:x?}");
    }
    let empty = ChunkBits::default();
    assert_eq!(empty.summarize(), Sum::free(CHUNK_PAGES));
}

#[test]
fn chunk_find_is_first_fit() {
    let mut rng = Rng(3);
    for _ in 0..300 {
        let c = random_chunk(&mut rng);
        let from = if rng.below(2) == 0 {
            0
        } else {
            rng.below(CHUNK_PAGES)
        };
        for n in (1..=70).chain([100, 128, 200, 256, 511, 512]) {
            let want = (from..=CHUNK_PAGES.saturating_sub(n))
                .find(|&p| (p..p + n).all(|q| is_free(&c, q)));
            assert_eq!(c.find(n, from), want, "n {n} from {from} {c:x?}");
        }
    }
}

#[test]
fn packed_summaries_round_trip_and_merge() {
    let mut rng = Rng(4);
    for (s, m, e) in [(0, 0, 0), (1, 5, 2), (MAX_PACKED - 1, MAX_PACKED - 1, 0)] {
        let p = Sum::pack(s, m, e);
        assert_eq!((p.start(), p.max(), p.end()), (s, m, e));
    }
    let full = Sum::free(MAX_PACKED);
    assert_eq!(
        (full.start(), full.max(), full.end()),
        (MAX_PACKED, MAX_PACKED, MAX_PACKED)
    );
    // Merging chunk summaries equals summarising the concatenated bits.
    for _ in 0..1000 {
        let chunks: Vec<ChunkBits> = (0..8)
            .map(|_| {
                if rng.below(3) == 0 {
                    ChunkBits::default()
                } else {
                    random_chunk(&mut rng)
                }
            })
            .collect();
        let merged = Sum::merge(chunks.iter().map(|c| c.summarize()), CHUNK_PAGES);
        let free = |p: usize| is_free(&chunks[p / CHUNK_PAGES], p % CHUNK_PAGES);
        let total = 8 * CHUNK_PAGES;
        let start = (0..total).take_while(|&p| free(p)).count();
        let end = (0..total).rev().take_while(|&p| free(p)).count();
        let (mut max, mut run) = (0, 0);
        for p in 0..total {
            run = if free(p) { run + 1 } else { 0 };
            max = max.max(run);
        }
        assert_eq!(
            (merged.start(), merged.max(), merged.end()),
            (start, max, end)
        );
    }
}

#[test]
fn scavenge_candidate_is_highest_run() {
    let mut rng = Rng(5);
    for _ in 0..1000 {
        let c = random_chunk(&mut rng);
        let below = rng.below(CHUNK_PAGES + 1);
        let max = 1 + rng.below(100);
        let cand = |p: usize| p < below && is_free(&c, p) && c.scav[p / 64] & (1 << (p % 64)) == 0;
        let want = (0..below).rev().find(|&p| cand(p)).map(|top| {
            let mut first = top;
            while first > 0 && top + 1 - first < max && cand(first - 1) {
                first -= 1;
            }
            (first, top + 1 - first)
        });
        assert_eq!(c.scavenge_candidate(below, max), want);
    }
}

/// A page allocator over `narenas` contiguous made-up arenas, with a model:
/// one bool per page, true = allocated.
struct Fixture {
    table: ArenaTable,
    pa: PageAlloc,
    base: usize,
    model: Vec<bool>,
}

impl Fixture {
    fn new(narenas: usize) -> Fixture {
        let table = ArenaTable::new().unwrap();
        let mut pa = PageAlloc::new().unwrap();
        let base = 0x3000_0000_0000;
        for k in 0..narenas {
            table.add(base + k * ARENA_SIZE).unwrap();
        }
        pa.grow(&table, base, narenas * ARENA_SIZE);
        Fixture {
            table,
            pa,
            base,
            model: vec![false; narenas * PAGES_PER_ARENA],
        }
    }

    fn addr(&self, page: usize) -> usize {
        self.base + page * PAGE_SIZE
    }

    fn page(&self, addr: usize) -> usize {
        (addr - self.base) / PAGE_SIZE
    }

    fn model_first_fit(&self, n: usize) -> Option<usize> {
        let mut run = 0;
        for (p, &used) in self.model.iter().enumerate() {
            run = if used { 0 } else { run + 1 };
            if run == n {
                return Some(self.addr(p + 1 - n));
            }
        }
        None
    }

    fn alloc(&mut self, n: usize) -> Option<usize> {
        let (a, _) = self.pa.alloc(&self.table, n)?;
        let p = self.page(a);
        for used in &mut self.model[p..p + n] {
            assert!(!*used, "allocated a used page");
            *used = true;
        }
        Some(a)
    }

    fn free(&mut self, a: usize, n: usize) {
        self.pa.free_range(&self.table, a, n, false);
        let p = self.page(a);
        self.model[p..p + n].fill(false);
    }

    fn check(&self) {
        self.pa.verify(&self.table).unwrap();
    }
}

#[test]
fn first_fit_returns_lowest_address_for_1_to_2049_pages() {
    // Two contiguous arenas (32 chunks), fragmented with free runs of
    // every length up to a few chunks, many straddling chunk boundaries.
    let mut f = Fixture::new(2);
    let total = f.model.len();
    let all = f.alloc(total).unwrap();
    assert_eq!(all, f.base);
    let mut rng = Rng(6);
    let mut p = 0;
    while p < total {
        let used = 1 + rng.below(40);
        let free = match rng.below(4) {
            0 => 1 + rng.below(8),
            1 => 1 + rng.below(200),
            2 => 1 + rng.below(700),
            _ => 1 + rng.below(2300),
        };
        p += used;
        let n = free.min(total.saturating_sub(p));
        if n > 0 {
            let a = f.addr(p);
            f.free(a, n);
        }
        p += n;
    }
    f.check();
    for n in 1..=2049 {
        assert_eq!(
            f.pa.find(&f.table, n),
            f.model_first_fit(n),
            "first fit of {n} pages"
        );
    }
    // A run straddling a chunk boundary and nothing lower: found exactly.
    let mut g = Fixture::new(1);
    let all = g.alloc(PAGES_PER_ARENA).unwrap();
    let straddle = all + (CHUNK_PAGES - 3) * PAGE_SIZE;
    g.free(straddle, 10);
    g.free(all + 4000 * PAGE_SIZE, 9);
    g.check();
    assert_eq!(g.pa.find(&g.table, 10), Some(straddle));
    assert_eq!(g.pa.find(&g.table, 9), Some(straddle));
    assert_eq!(g.pa.find(&g.table, 11), None);
}

#[test]
fn first_fit_after_random_alloc_and_free_matches_model() {
    let mut f = Fixture::new(3);
    let mut rng = Rng(7);
    let mut live: Vec<(usize, usize)> = Vec::new();
    for step in 0..3000 {
        if live.is_empty() || rng.below(3) != 0 {
            let n = match rng.below(10) {
                0 => 1 + rng.below(2049),
                1..=3 => 1 + rng.below(64),
                _ => 1 + rng.below(4),
            };
            let want = f.model_first_fit(n);
            let got = f.alloc(n);
            assert_eq!(got, want, "step {step}: alloc {n}");
            if let Some(a) = got {
                live.push((a, n));
            }
        } else {
            let (a, n) = live.swap_remove(rng.below(live.len()));
            f.free(a, n);
        }
        if step % 100 == 0 {
            f.check();
        }
    }
    f.check();
}

#[test]
fn exhaustion_is_exact() {
    let mut f = Fixture::new(1);
    let mut got = 0;
    for n in [1, 7, 64, 300, 512, 1000] {
        f.alloc(n).unwrap();
        got += n;
    }
    // Fill the rest exactly.
    f.alloc(PAGES_PER_ARENA - got).unwrap();
    f.check();
    assert_eq!(f.pa.find(&f.table, 1), None);
    assert_eq!(f.pa.alloc(&f.table, 1), None);
    // One page back: exactly one page can be had, at that address.
    f.free(f.base + 5000 * PAGE_SIZE, 1);
    assert_eq!(f.pa.find(&f.table, 2), None);
    assert_eq!(f.alloc(1), Some(f.base + 5000 * PAGE_SIZE));
    assert_eq!(f.pa.find(&f.table, 1), None);
    f.check();
}

#[test]
fn alloc_free_alloc_returns_the_same_address() {
    let mut f = Fixture::new(2);
    f.alloc(100).unwrap();
    for n in [1, 3, 64, 511, 512, 513, 4096, 9000] {
        let a = f.alloc(n).unwrap();
        f.free(a, n);
        assert_eq!(f.alloc(n), Some(a), "{n} pages");
        f.free(a, n);
        f.check();
    }
}

#[test]
fn fresh_pages_are_scavenged_and_allocation_reports_them() {
    let mut f = Fixture::new(1);
    let (a, scav) = f.pa.alloc(&f.table, 10).unwrap();
    assert_eq!(scav, 10);
    f.pa.free_range(&f.table, a, 10, false);
    // Dirty now; take 12: 10 dirty + 2 fresh.
    let (b, scav) = f.pa.alloc(&f.table, 12).unwrap();
    assert_eq!((b, scav), (a, 2));
    f.pa.verify(&f.table).unwrap();
}

#[test]
fn scavenging_goes_highest_address_first() {
    let mut f = Fixture::new(2);
    let a = f.alloc(2 * PAGES_PER_ARENA).unwrap();
    // Free three runs (dirty), in the first and second arena.
    for (p, n) in [(10, 5), (3000, 40), (PAGES_PER_ARENA + 700, 600)] {
        f.free(a + p * PAGE_SIZE, n);
    }
    f.check();
    let mut got = Vec::new();
    while let Some((addr, n)) = f.pa.scavenge_candidate(&f.table, 64) {
        f.pa.alloc_range(&f.table, addr, n);
        f.pa.free_range(&f.table, addr, n, true);
        got.push(((addr - a) / PAGE_SIZE, n));
        f.check();
    }
    let mut want = Vec::new();
    // 600 pages from arena page 700 straddle a chunk boundary at 1024:
    // taken top down in pieces of at most 64 within each chunk.
    let mut top = PAGES_PER_ARENA + 1300;
    while top > PAGES_PER_ARENA + 700 {
        let chunk_floor = ((top - 1) / CHUNK_PAGES * CHUNK_PAGES).max(PAGES_PER_ARENA + 700);
        let n = (top - chunk_floor).min(64);
        want.push((top - n, n));
        top -= n;
    }
    want.extend([(3000, 40), (10, 5)]);
    assert_eq!(got, want);
}

#[test]
fn page_cache_blocks_round_trip() {
    let mut f = Fixture::new(1);
    let a = f.alloc(3).unwrap();
    let (block, free, scav) = f.pa.take_block(&f.table).unwrap();
    assert_eq!(block, a);
    assert_eq!(free, !0b111);
    assert_eq!(scav, free);
    // The whole block is allocated now: the next page comes after it.
    assert_eq!(f.pa.find(&f.table, 1), Some(a + 64 * PAGE_SIZE));
    f.check();
    f.pa.return_block(&f.table, block, free, scav & 0xff00);
    f.check();
    assert_eq!(f.pa.find(&f.table, 1), Some(a + 3 * PAGE_SIZE));
    let (_, scav) = f.pa.alloc(&f.table, 13).unwrap();
    assert_eq!(scav, 8);
}
