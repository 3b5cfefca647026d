//! The allocation profiler's core (Go's `runtime/mprof.go`, `nextSample`
//! in `malloc.go`, and `runtime/pprof`'s heap profile writer): sampling,
//! stack buckets, unbiased estimates and the pprof file. The facade wires
//! it into the allocator (sampling, [`Profiler::record_alloc`], a
//! [`Kind::Profile`](crate::Kind::Profile) record carrying the
//! [`BucketId`]) and the sweeper ([`Profiler::record_free`] for dead
//! objects with that record). See `docs/specials.md`, "Allocation
//! profiles".
//!
//! # Pieces
//!
//! * [`Sampler`] (`sampler.rs`), one per thread: the distance in bytes to
//!   the next sampled allocation, exponential with mean `rate`.
//! * [`Profiler`], shared: the bucket table (`buckets.rs`), keyed by
//!   (object size, raw call stack), counting sampled allocs and frees; a
//!   symbol cache (`symbols.rs`) used only when reading the table out; the
//!   pprof writer (`pprof.rs`) and [`Profiler::snapshot`].
//!
//! # How the allocator calls it
//!
//! ```text
//! // per thread, in the allocation cache (the fast path: a compare and a
//! // subtract)
//! if sampler.sample(size) {                 // size: the slot size
//!     profile_alloc(obj, size);             // #[inline(never)], cold
//! }
//! // profile_alloc:
//! let bucket = profiler.record_alloc(size, skip);
//! specials.add(heap, span, offset, Payload::Profile(bucket));
//! // sweeper, for a dead object whose records include Profile(bucket):
//! profiler.record_free(bucket, size);
//! ```
//!
//! `skip` is the number of the allocator's own physical frames to leave
//! out, counting `record_alloc`'s caller: for `user_fn` → `Mutator::alloc`
//! → `alloc_slow` → `profile_alloc` → `record_alloc`, all but `user_fn`
//! `#[inline(never)]`, `skip = 3` makes `user_fn` the top frame, and
//! `skip = 0` would show `profile_alloc`. Two things change the physical
//! frames, and the count must follow them:
//!
//! * Inlining: an inlined function shares its caller's frame and is not
//!   counted. An allocation entry point inlined into user code shows up as
//!   the innermost inline frame of the user's location (pprof lists it as
//!   its own frame, marked inline).
//! * Tail calls: a function whose last act is a call (`fn f() -> B {
//!   g() }`) may jump to the callee instead, leaving itself no frame.
//!   Keep work after the call on the profiled path (adding the special
//!   record does that), or pass the result through
//!   `std::hint::black_box`. The tests were bitten by exactly this in
//!   release builds.
//!
//! `skip` can only leave out whole physical frames, and how many the
//! allocator has depends on the entry point and the optimisation level
//! (in a debug build `Scope::alloc` → `try_alloc` → `alloc_raw` are each
//! a frame; in a release build they are inlined into the caller). So the
//! allocator also names its source: [`Profiler::hide_source`] takes a path
//! prefix, and source frames in files under it (inlined or not) are left
//! out of the top of each stack when it is symbolized, for
//! [`BucketStats::top_frame`] and the pprof file alike. `skip` then only
//! saves the stack walk a few frames. A test in the facade allocates from
//! a known function through several entry points and checks `top_frame`
//! in both debug and release builds.
//!
//! Buckets are per call *instruction*: a loop the compiler unrolled gives
//! one bucket per copy of the call, and two call sites in one function
//! two buckets. pprof merges them by function and line; a summary by site
//! should group [`Profiler::snapshot`] by `top_frame`.
//!
//! `size` should be the size the sampler counted (the slot size): the
//! estimate for a bucket divides by the probability that an object of
//! exactly that size was sampled.
//!
//! # Estimates
//!
//! An object of `size` bytes is sampled with probability
//! `p = 1 - exp(-size / rate)` (see `sampler.rs`), so each sampled object
//! stands for `1 / p` objects: a bucket with `n` sampled objects estimates
//! `n / p` objects and `n * size / p` bytes (Go's `scaleHeapSample`).
//! Objects of `rate` bytes or more are sampled almost always; tiny objects
//! rarely, each then counting for many. The estimate is unbiased; its
//! standard deviation for `N` real objects is `sqrt(N (1 - p) / p)`
//! objects.
//!
//! # Not like Go
//!
//! Go publishes heap profile counts only at the end of a GC cycle (its
//! three `future` slots), so in-use counts describe the heap as of the
//! last completed mark rather than including garbage not yet swept. Here
//! counts are live: an object that died since the last sweep still counts
//! as in use until the sweeper frees it. A cycle-consistent view would be
//! a `flush_cycle` hook for the facade to call at sweep termination; the
//! counters would then move from per-cycle slots into the published ones.

mod buckets;
mod pprof;
mod sampler;
mod symbols;

pub use buckets::{BucketId, MAX_DEPTH};
pub use sampler::{DEFAULT_RATE, Sampler};

use buckets::{BucketRecord, Buckets};
use std::io::{self, Write};
use symbols::{SourceFrame, Symbols};

/// One bucket's counts, estimated from its samples, for stats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketStats {
    /// The bucket.
    pub id: BucketId,
    /// Size of each object in the bucket.
    pub object_size_bytes: usize,
    /// Sampled allocations recorded (raw, unscaled).
    pub sampled_allocs: u64,
    /// Sampled frees recorded (raw, unscaled).
    pub sampled_frees: u64,
    /// Estimated objects allocated from this stack.
    pub alloc_objects: u64,
    /// Estimated bytes allocated from this stack.
    pub alloc_bytes: u64,
    /// Estimated objects from this stack not yet freed.
    pub inuse_objects: u64,
    /// Estimated bytes from this stack not yet freed.
    pub inuse_bytes: u64,
    /// The innermost function of the allocation site (after `skip` and
    /// the hidden sources, see [`Profiler::hide_source`]), demangled; `None` for an empty or unsymbolizable stack. Names come
    /// from debug info: full paths (`crate::module::function`) with full
    /// debug info, bare names (`function`, `{closure#0}`) with
    /// `debug = "line-tables-only"`, our release profile's setting.
    pub top_frame: Option<String>,
}

/// The shared profiler. `Send + Sync`: any thread records allocations and
/// frees; see the module docs.
pub struct Profiler {
    /// Mean bytes between samples; fixed, since estimates divide by it.
    rate: usize,
    buckets: Buckets,
    symbols: Symbols,
    /// Path prefixes of the allocator's own source files.
    hidden: Vec<String>,
}

impl Default for Profiler {
    /// A profiler at [`DEFAULT_RATE`].
    fn default() -> Self {
        Self::new(DEFAULT_RATE)
    }
}

impl Profiler {
    /// A profiler whose samplers draw with mean `rate_bytes` (0: the
    /// allocator samples nothing).
    pub fn new(rate_bytes: usize) -> Self {
        Profiler {
            rate: rate_bytes,
            buckets: Buckets::default(),
            symbols: Symbols::default(),
            hidden: Vec::new(),
        }
    }

    /// Leaves source frames from files whose path starts with `prefix`
    /// (the allocator's own code) out of the top of every stack when it is
    /// read out; see "How the allocator calls it" in the module docs.
    pub fn hide_source(mut self, prefix: impl Into<String>) -> Self {
        self.hidden.push(prefix.into());
        self
    }

    /// Mean bytes between samples.
    pub fn rate(&self) -> usize {
        self.rate
    }

    /// A fresh per-thread sampler at this profiler's rate.
    pub fn sampler(&self) -> Sampler {
        Sampler::new(self.rate)
    }

    /// Records a sampled allocation of `size` bytes: captures the call
    /// stack from this function's caller outwards, leaving out its first
    /// `skip` frames (the allocator's own; see the module docs), and
    /// counts one allocation in the bucket of (size, stack), created if
    /// new. Returns the bucket, for the object's profile record.
    ///
    /// Costs one stack walk (microseconds; see `buckets.rs`) and a read
    /// lock; never symbolizes, never waits for a profile writer.
    #[inline(never)]
    pub fn record_alloc(&self, size: usize, skip: usize) -> BucketId {
        // The anchor frame the walk looks for: this function's. It is
        // `#[inline(never)]`, so its frame exists and its address is the
        // start of the code the unwinder attributes that frame to.
        let anchor: fn(&Profiler, usize, usize) -> BucketId = Profiler::record_alloc;
        self.buckets.record_alloc(anchor as usize, size, skip)
    }

    /// Records the free of a sampled object of `size` bytes from `bucket`.
    ///
    /// # Panics
    ///
    /// If `bucket` is not one of this profiler's, or its objects are not
    /// `size` bytes (the caller lost track of which record is whose).
    pub fn record_free(&self, bucket: BucketId, size: usize) {
        self.buckets.record_free(bucket, size);
    }

    /// Every bucket's estimated counts, in bucket id order. Symbolizes
    /// each bucket's top frame (the first call in a process loads debug
    /// info; see `symbols.rs`).
    pub fn snapshot(&self) -> Vec<BucketStats> {
        let records = self.buckets.records();
        records
            .into_iter()
            .map(|r| {
                let top_frame = self.top_frame(r.stack());
                let [alloc_objects, alloc_bytes, inuse_objects, inuse_bytes] =
                    estimates(&r, self.rate);
                BucketStats {
                    id: r.id,
                    object_size_bytes: r.size(),
                    sampled_allocs: r.allocs,
                    sampled_frees: r.frees,
                    alloc_objects,
                    alloc_bytes,
                    inuse_objects,
                    inuse_bytes,
                    top_frame,
                }
            })
            .collect()
    }

    /// Writes a heap profile in pprof's protobuf format (uncompressed) to
    /// `w`: allocated and in-use objects and bytes by stack, unbiased. Open
    /// it with `go tool pprof FILE` or any pprof reader. See `pprof.rs`.
    pub fn write_pprof(&self, w: impl Write) -> io::Result<()> {
        let hidden = |f: &SourceFrame| self.is_hidden(f);
        pprof::write(
            &self.buckets.records(),
            &self.symbols,
            &hidden,
            self.rate,
            w,
        )
    }

    /// Whether `frame` is in the allocator's own source.
    fn is_hidden(&self, frame: &SourceFrame) -> bool {
        self.hidden
            .iter()
            .any(|p| frame.file.starts_with(p.as_str()))
    }

    /// The innermost source frame of `stack` not hidden, symbolizing
    /// addresses outwards until one has such a frame.
    fn top_frame(&self, stack: &[usize]) -> Option<String> {
        stack.iter().find_map(|&ip| {
            let frames = self.symbols.lookup([ip]).pop()?;
            frames
                .iter()
                .find(|f| !self.is_hidden(f))
                .map(|f| f.function.clone())
        })
    }
}

/// Unbiased estimates `(objects, bytes)` from `count` sampled objects of
/// `size` bytes totalling `bytes` (Go's `scaleHeapSample`): each sampled
/// object stands for `1 / (1 - exp(-size / rate))` objects. Rates 0 and 1
/// mean nothing was left out (everything recorded was recorded by hand, or
/// every allocation was sampled), so counts are returned unscaled.
fn unbias(count: u64, bytes: u64, size: usize, rate: usize) -> (u64, u64) {
    if count == 0 || size == 0 || rate <= 1 {
        return (count, bytes);
    }
    // -expm1(-x) = 1 - exp(-x), without cancellation for small x.
    let p = -(-(size as f64) / rate as f64).exp_m1();
    (
        (count as f64 / p).round() as u64,
        (bytes as f64 / p).round() as u64,
    )
}

/// A bucket's unbiased estimates: allocated objects and bytes, in-use
/// objects and bytes (the order of pprof's sample types).
fn estimates(r: &BucketRecord, rate: usize) -> [u64; 4] {
    let (alloc_objects, alloc_bytes) = unbias(r.allocs, r.alloc_bytes, r.size(), rate);
    let (inuse_objects, inuse_bytes) = unbias(
        r.allocs - r.frees,
        r.alloc_bytes - r.free_bytes,
        r.size(),
        rate,
    );
    [alloc_objects, alloc_bytes, inuse_objects, inuse_bytes]
}
