//! The allocation profiler's core: sampling distances, stack buckets and
//! their estimates, driven by a mock allocator; concurrency; cost.
//!
//! Statistical tolerances. With rate `R`, an object of `s` bytes is
//! sampled with probability `p = 1 - exp(-s/R)`, independently of the
//! others (the sampler's distances are memoryless; see `sampler.rs`). For
//! `N` objects the sampled count is Binomial(N, p), so the estimate
//! `count / p` has mean `N` and standard deviation `sqrt(N (1 - p) / p)`.
//! The checks allow 4 standard deviations (a false failure in about 1 of
//! 16 000 draws per check), plus one object for rounding. Seeds are fixed,
//! so each run draws the same numbers; the tolerance says the seeds were
//! not picked to pass.

use spangc_specials::profile::{BucketId, BucketStats, DEFAULT_RATE, Profiler, Sampler};
use std::sync::mpsc;
use std::time::Instant;

// ---- sampling distances ----

/// Mean, variance and the fraction of draws at most the rate, over `n`
/// draws.
fn draw_stats(rate: usize, seed: u64, n: usize) -> (f64, f64, f64) {
    let mut s = Sampler::with_seed(rate, seed);
    let (mut sum, mut sum_sq, mut below) = (0.0, 0.0, 0usize);
    for _ in 0..n {
        let d = s.next_distance() as f64;
        sum += d;
        sum_sq += d * d;
        below += usize::from(d <= rate as f64);
    }
    let mean = sum / n as f64;
    (
        mean,
        sum_sq / n as f64 - mean * mean,
        below as f64 / n as f64,
    )
}

#[test]
fn distance_mean_is_the_rate() {
    const N: usize = 1_000_000;
    for (rate, seed) in [(DEFAULT_RATE, 1), (4096, 2), (1 << 30, 3)] {
        let (mean, var, below) = draw_stats(rate, seed, N);
        // Exponential: sd = mean, so the sample mean's sd is rate/sqrt(N),
        // 0.1% here; 1% is 10 sd. (floor(X) + 1 adds half a byte.)
        let rel = (mean - rate as f64).abs() / rate as f64;
        assert!(rel < 0.01, "rate {rate}: mean {mean} ({rel:.4} off)");
        // Exponential shape: variance = mean^2; P(D <= rate) = 1 - 1/e.
        let sd_ratio = var.sqrt() / mean;
        assert!(
            (sd_ratio - 1.0).abs() < 0.02,
            "rate {rate}: sd/mean {sd_ratio}"
        );
        let p = 1.0 - (-1.0f64).exp();
        // Binomial sd of the fraction: sqrt(p(1-p)/N) = 0.00048; 10 sd.
        assert!(
            (below - p).abs() < 0.005,
            "rate {rate}: P(D <= rate) = {below}"
        );
    }
}

#[test]
fn distance_edge_rates() {
    let mut never = Sampler::with_seed(0, 7);
    let mut always = Sampler::with_seed(1, 7);
    for size in [1, 8, 4096, 1 << 40] {
        assert_eq!(never.next_distance(), usize::MAX);
        assert!(!never.sample(size));
        assert_eq!(always.next_distance(), 0);
        assert!(always.sample(size));
    }
    // A huge rate saturates instead of wrapping.
    let mut huge = Sampler::with_seed(usize::MAX, 7);
    for _ in 0..1000 {
        assert!(huge.next_distance() >= 1);
    }
}

#[test]
fn sampled_fraction_is_one_minus_exp() {
    // The probability the profile divides by: P(an object of s bytes is
    // sampled) = 1 - exp(-s/R), whatever came before it.
    const R: usize = 8192;
    const N: usize = 200_000;
    for (size, seed) in [(16, 11), (1024, 12), (8192, 13), (50_000, 14)] {
        let mut s = Sampler::with_seed(R, seed);
        let hits = (0..N).filter(|_| s.sample(size)).count() as f64;
        let p = 1.0 - (-(size as f64) / R as f64).exp();
        let sd = (N as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (hits - N as f64 * p).abs() <= 4.0 * sd + 1.0,
            "size {size}: {hits} sampled, expected {} +- {sd}",
            N as f64 * p
        );
    }
}

#[test]
fn fresh_samplers_are_seeded_apart() {
    let a: Vec<usize> = {
        let mut s = Sampler::new(DEFAULT_RATE);
        (0..4).map(|_| s.next_distance()).collect()
    };
    let b: Vec<usize> = {
        let mut s = Sampler::new(DEFAULT_RATE);
        (0..4).map(|_| s.next_distance()).collect()
    };
    assert_ne!(a, b);
}

// ---- a mock allocator ----

/// An allocator that hands out nothing but sizes, sampling like the real
/// one: a per-thread sampler, a profiled slow path, frees from the sweeper.
struct MockAllocator<'p> {
    profiler: &'p Profiler,
    sampler: Sampler,
    /// Each object's size and, if sampled, its bucket (the profile record).
    objects: Vec<(usize, Option<BucketId>)>,
}

impl<'p> MockAllocator<'p> {
    fn new(profiler: &'p Profiler, seed: u64) -> Self {
        MockAllocator {
            profiler,
            sampler: Sampler::with_seed(profiler.rate(), seed),
            objects: Vec::new(),
        }
    }

    /// The allocation entry point; returns a handle.
    #[inline(never)]
    fn alloc(&mut self, size: usize) -> usize {
        // A plain `if`: a closure would be a frame of its own in debug
        // builds, and `skip` counts physical frames.
        let bucket = if self.sampler.sample(size) {
            Some(self.profile_alloc(size))
        } else {
            None
        };
        self.objects.push((size, bucket));
        self.objects.len() - 1
    }

    /// The profiled path: skips itself and `alloc`, so the top frame is
    /// the caller of `alloc`. `black_box` keeps the call from being a tail
    /// call: a tail call would reuse this frame, and `skip` counts frames.
    #[inline(never)]
    fn profile_alloc(&self, size: usize) -> BucketId {
        std::hint::black_box(self.profiler.record_alloc(size, 2))
    }

    /// The sweeper finding object `h` dead.
    fn free(&mut self, h: usize) {
        let (size, bucket) = &mut self.objects[h];
        if let Some(b) = bucket.take() {
            self.profiler.record_free(b, *size);
        }
    }
}

#[inline(never)]
fn site_small(a: &mut MockAllocator<'_>, n: usize) -> Vec<usize> {
    let mut hs = Vec::with_capacity(n);
    for _ in 0..n {
        hs.push(a.alloc(64));
    }
    hs
}

#[inline(never)]
fn site_medium(a: &mut MockAllocator<'_>, n: usize) -> Vec<usize> {
    let mut hs = Vec::with_capacity(n);
    for _ in 0..n {
        hs.push(a.alloc(4096));
    }
    hs
}

#[inline(never)]
fn site_large(a: &mut MockAllocator<'_>, n: usize) -> Vec<usize> {
    let mut hs = Vec::with_capacity(n);
    for _ in 0..n {
        hs.push(a.alloc(256 << 10));
    }
    hs
}

/// The buckets whose top frame is `site` (by name suffix). A site can
/// have several: one per call instruction, and the compiler may unroll a
/// loop around the call (release builds do).
fn buckets_of<'s>(stats: &'s [BucketStats], site: &str) -> Vec<&'s BucketStats> {
    stats
        .iter()
        .filter(|b| b.top_frame.as_deref().is_some_and(|f| f.ends_with(site)))
        .collect()
}

/// Sums of a set of buckets' counts.
#[derive(Debug, Default, PartialEq, Eq)]
struct Totals {
    sampled_allocs: u64,
    sampled_frees: u64,
    alloc_objects: u64,
    alloc_bytes: u64,
    inuse_objects: u64,
    inuse_bytes: u64,
}

fn totals<'s>(buckets: impl IntoIterator<Item = &'s BucketStats>) -> Totals {
    buckets.into_iter().fold(Totals::default(), |t, b| Totals {
        sampled_allocs: t.sampled_allocs + b.sampled_allocs,
        sampled_frees: t.sampled_frees + b.sampled_frees,
        alloc_objects: t.alloc_objects + b.alloc_objects,
        alloc_bytes: t.alloc_bytes + b.alloc_bytes,
        inuse_objects: t.inuse_objects + b.inuse_objects,
        inuse_bytes: t.inuse_bytes + b.inuse_bytes,
    })
}

/// `estimate` is within 4 sd of `n` objects of `size` bytes at `rate`,
/// plus one object per bucket summed (each bucket's estimate is rounded).
fn assert_estimate(what: &str, estimate: u64, n: u64, size: usize, rate: usize, buckets: usize) {
    let p = 1.0 - (-(size as f64) / rate as f64).exp();
    let sd = (n as f64 * (1.0 - p) / p).sqrt();
    let err = (estimate as f64 - n as f64).abs();
    assert!(
        err <= 4.0 * sd + buckets as f64,
        "{what}: estimated {estimate}, real {n}, sd {sd:.1} ({:.1} sd off)",
        err / sd
    );
}

#[test]
fn estimates_match_real_allocation() {
    // 16 KiB keeps the run short while sampling every site often: about
    // 1600 samples of the 64-byte site (2.5% sd), 8800 of the 4 KiB site
    // (0.9%), and nearly every 256 KiB object.
    const RATE: usize = 16 << 10;
    let profiler = Profiler::new(RATE);
    let mut a = MockAllocator::new(&profiler, 0x5eed);

    // (site, size, objects per round, every k-th object freed)
    type Site = fn(&mut MockAllocator<'_>, usize) -> Vec<usize>;
    let sites: [(&str, Site, usize, usize, usize); 3] = [
        ("site_small", site_small, 64, 40_000, 3),
        ("site_medium", site_medium, 4096, 4_000, 2),
        ("site_large", site_large, 256 << 10, 50, 5),
    ];
    const ROUNDS: usize = 10;
    let mut freed = [0u64; 3];
    for _ in 0..ROUNDS {
        for (i, &(_, site, _, n, k)) in sites.iter().enumerate() {
            for (j, h) in site(&mut a, n).into_iter().enumerate() {
                if j % k == 0 {
                    a.free(h);
                    freed[i] += 1;
                }
            }
        }
    }

    let stats = profiler.snapshot();
    for (i, &(name, _, size, n, _)) in sites.iter().enumerate() {
        let total = (n * ROUNDS) as u64;
        let live = total - freed[i];
        let found = buckets_of(&stats, name);
        assert!(!found.is_empty(), "{name}: no bucket");
        assert!(
            found.iter().all(|b| b.object_size_bytes == size),
            "{found:?}"
        );
        let k = found.len();
        let t = totals(found);
        assert_estimate(
            &format!("{name} allocs"),
            t.alloc_objects,
            total,
            size,
            RATE,
            k,
        );
        assert_estimate(
            &format!("{name} in use"),
            t.inuse_objects,
            live,
            size,
            RATE,
            k,
        );
        // Bytes are objects times size, up to rounding.
        let slack = (k * size) as u64;
        assert!(t.alloc_bytes.abs_diff(t.alloc_objects * size as u64) <= slack);
        assert!(t.inuse_bytes.abs_diff(t.inuse_objects * size as u64) <= slack);
    }
    // Nothing else was sampled: the mock's frames were all skipped.
    let named = sites
        .iter()
        .map(|&(name, ..)| buckets_of(&stats, name).len())
        .sum::<usize>();
    assert_eq!(named, stats.len(), "{stats:#?}");
}

#[test]
fn buckets_split_by_size_and_skip_counts_frames() {
    let profiler = Profiler::new(1);
    let mut a = MockAllocator::new(&profiler, 1);
    // Rate 1 samples everything: the same site with two sizes makes two
    // buckets, counted exactly.
    // Returns the handles so that no call to `alloc` is a tail call.
    #[inline(never)]
    fn two_sizes(a: &mut MockAllocator<'_>) -> Vec<usize> {
        let mut hs = Vec::new();
        for _ in 0..3 {
            hs.push(a.alloc(32));
        }
        hs.push(a.alloc(48));
        hs
    }
    assert_eq!(two_sizes(&mut a).len(), 4);
    let stats = profiler.snapshot();
    let found = buckets_of(&stats, "two_sizes");
    let count = |size| {
        totals(
            found
                .iter()
                .copied()
                .filter(|b| b.object_size_bytes == size),
        )
    };
    assert_eq!(count(32).alloc_objects, 3, "{stats:#?}");
    assert_eq!(count(48).alloc_objects, 1);
    assert_eq!(totals(found).alloc_objects, 4);

    // skip = 0: the top frame is record_alloc's caller.
    let b = profiler.record_alloc(8, 0);
    let top = profiler.snapshot()[b.index() as usize].top_frame.clone();
    assert!(
        top.as_deref()
            .is_some_and(|f| f.ends_with("skip_counts_frames")),
        "{top:?}"
    );
}

#[test]
#[should_panic(expected = "a bucket of 16-byte objects")]
fn free_of_the_wrong_size_panics() {
    let profiler = Profiler::new(1);
    let b = profiler.record_alloc(16, 0);
    profiler.record_free(b, 32);
}

// ---- concurrency ----

#[inline(never)]
fn concurrent_site(p: &Profiler, size: usize) -> BucketId {
    // Not a tail call (which would leave this function no frame).
    std::hint::black_box(p.record_alloc(size, 0))
}

#[test]
fn concurrent_counts_are_exact() {
    // Allocating threads send every other sampled object to one sweeper
    // thread, which frees it; a reader snapshots and writes profiles all
    // the while. Rate 1 leaves counts unscaled, so they must be exact.
    const THREADS: usize = 3;
    const PER_THREAD: usize = 4_000;
    let profiler = Profiler::new(1);
    let (tx, rx) = mpsc::channel::<(BucketId, usize)>();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let profiler = &profiler;
        let sweeper = s.spawn(move || {
            let mut n = 0;
            for (b, size) in rx {
                profiler.record_free(b, size);
                n += 1;
            }
            n
        });
        let reader = s.spawn(|| {
            let mut rounds = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) || rounds == 0 {
                for b in profiler.snapshot() {
                    assert!(b.sampled_allocs >= b.sampled_frees, "{b:?}");
                }
                profiler.write_pprof(std::io::sink()).unwrap();
                rounds += 1;
            }
            rounds
        });
        let allocators: Vec<_> = (0..THREADS)
            .map(|t| {
                let tx = tx.clone();
                s.spawn(move || {
                    let size = 16 * (t + 1);
                    for i in 0..PER_THREAD {
                        let b = concurrent_site(profiler, size);
                        if i % 2 == 0 {
                            tx.send((b, size)).unwrap();
                        }
                    }
                })
            })
            .collect();
        drop(tx);
        allocators.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(sweeper.join().unwrap(), THREADS * PER_THREAD / 2);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });

    let stats = profiler.snapshot();
    for t in 0..THREADS {
        let size = 16 * (t + 1);
        let b: Vec<_> = stats
            .iter()
            .filter(|b| b.object_size_bytes == size)
            .collect();
        assert!(
            b.iter()
                .all(|b| b.top_frame.as_deref().unwrap().ends_with("concurrent_site")),
            "{b:?}"
        );
        let n = PER_THREAD as u64;
        assert_eq!(
            totals(b),
            Totals {
                sampled_allocs: n,
                sampled_frees: n / 2,
                alloc_objects: n,
                alloc_bytes: n * size as u64,
                inuse_objects: n / 2,
                inuse_bytes: n / 2 * size as u64,
            }
        );
    }
}

// ---- cost ----

/// Recurses `depth` frames, then records `n` samples; returns the time per
/// sample in nanoseconds.
#[inline(never)]
fn deep(p: &Profiler, depth: usize, n: u32) -> u128 {
    if depth > 0 {
        return std::hint::black_box(deep(p, depth - 1, n));
    }
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(p.record_alloc(64, 0));
    }
    t.elapsed().as_nanos() / u128::from(n)
}

#[test]
fn record_alloc_cost() {
    // Prints the cost of one sample (walk + lookup + count), 30 frames
    // below the test's entry. Run in release for the figure quoted in
    // buckets.rs: `cargo test --release -p spangc-specials --test profile
    // record_alloc_cost -- --nocapture`.
    let p = Profiler::new(DEFAULT_RATE);
    let n = if cfg!(debug_assertions) {
        2_000
    } else {
        20_000
    };
    let ns = deep(&p, 30, n);
    eprintln!("record_alloc: {ns} ns per sample (30 frames deep)");
    assert_eq!(totals(&p.snapshot()).sampled_allocs, u64::from(n));
}
