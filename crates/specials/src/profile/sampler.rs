//! Sampling distances: how many bytes a thread allocates before its next
//! profiled allocation (Go's `nextSample` and `fastexprand`).
//!
//! # The model
//!
//! Think of a thread's allocations as one long stream of bytes in which
//! every byte is a *sample point* independently, with a small probability
//! (a Poisson process of rate `1 / rate` per byte). An object is sampled
//! when it contains a sample point. The distance to the next sample point
//! is then exponentially distributed with mean `rate`, so the allocator
//! need not flip a coin per byte: it draws a distance, counts it down by
//! each allocation's size, and samples the allocation that reaches it.
//!
//! Precisely: [`Sampler::next_distance`] returns `D = floor(X) + 1` with
//! `X ~ Exp(mean = rate)`, and an allocation of `size` bytes is sampled
//! when `size >= remaining` (otherwise `remaining -= size`); after a
//! sample, `remaining` is drawn afresh. `D` is geometric, hence memoryless:
//! whatever was counted down before, the next object of `size` bytes is
//! sampled with probability exactly
//!
//! ```text
//! P(D <= size) = P(X < size) = 1 - exp(-size / rate)
//! ```
//!
//! independently of every other object. That is the probability the
//! profile writer divides by to unbias its counts (Go's `scaleHeapSample`).
//! Restarting the count at the end of a sampled object, rather than at its
//! sample point, is exact for the same reason (memorylessness), and is
//! what Go does too.
//!
//! # Edge rates
//!
//! * `rate == 0`: never sample; the distance is `usize::MAX`, which no
//!   allocator counts down in practice (it is 16 EiB of allocation).
//! * `rate == 1`: sample every allocation; the distance is 0, which every
//!   size reaches (the exponential draw would miss some one-byte objects,
//!   and the profile writer treats rate 1 as "unscaled", as Go does).
//!
//! # Randomness
//!
//! Go uses its per-M `fastrand` (wyrand on 64-bit) and a table-driven
//! `fastlog2`, because the runtime cannot call into `math` everywhere. We
//! can call `f64::ln` (about 20 ns, once per sample, that is once per
//! 512 KiB at the default rate), and use wyrand for the uniform draw: one
//! 128-bit multiply, statistically strong enough for sampling, and a
//! single `u64` of state so a `Sampler` fits in a thread's allocation
//! cache. Seeds come from std's `RandomState` (per-thread random keys,
//! stepped on each call), so threads do not sample in lockstep; tests pass
//! their own seed for reproducibility.

use std::hash::BuildHasher;

/// The default sampling rate: one sample per 512 KiB allocated on average
/// (Go's `MemProfileRate`).
pub const DEFAULT_RATE: usize = 512 * 1024;

/// Per-thread sampling state: a PRNG and the bytes left until the next
/// sample. Owned by one thread's allocation cache; no locks, no atomics.
#[derive(Debug, Clone)]
pub struct Sampler {
    /// Mean bytes between samples; 0 never samples, 1 samples everything.
    rate: usize,
    /// wyrand state.
    state: u64,
    /// Bytes until the next sample, as counted by [`Sampler::sample`].
    remaining: usize,
}

impl Sampler {
    /// A sampler drawing distances with mean `rate_bytes`, seeded from the
    /// process's random state.
    pub fn new(rate_bytes: usize) -> Self {
        Self::with_seed(
            rate_bytes,
            std::collections::hash_map::RandomState::new().hash_one(0u64),
        )
    }

    /// A sampler with a fixed seed (reproducible draws, for tests).
    pub fn with_seed(rate_bytes: usize, seed: u64) -> Self {
        let mut s = Sampler {
            rate: rate_bytes,
            state: seed,
            remaining: 0,
        };
        s.remaining = s.next_distance();
        s
    }

    /// Mean bytes between samples.
    pub fn rate(&self) -> usize {
        self.rate
    }

    /// Bytes until the next sample point: `floor(X) + 1` with `X`
    /// exponential of mean `rate`; 0 for rate 1, `usize::MAX` for rate 0.
    /// See the module docs for how an allocator uses it.
    pub fn next_distance(&mut self) -> usize {
        match self.rate {
            0 => usize::MAX,
            1 => 0,
            rate => {
                // 53 random bits give u in (0, 1]: never 0, so ln is finite
                // (at most 36.7, so X is at most about 37 * rate).
                let u = ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
                let x = -u.ln() * rate as f64;
                // `as` saturates, so a huge rate cannot wrap.
                (x as usize).saturating_add(1)
            }
        }
    }

    /// Counts an allocation of `size` bytes against the current distance;
    /// returns whether this allocation is the one to sample (and then draws
    /// the next distance). This is the allocator's fast path, written out
    /// once: an allocator may equally keep the count in its own cache and
    /// call [`Sampler::next_distance`] itself.
    #[inline]
    pub fn sample(&mut self, size: usize) -> bool {
        if size >= self.remaining {
            self.remaining = self.next_distance();
            true
        } else {
            self.remaining -= size;
            false
        }
    }

    /// wyrand: Wang Yi's 64-bit generator (the one Go's `fastrand` uses on
    /// 64-bit platforms).
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.state) * u128::from(self.state ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) ^ t) as u64
    }
}
