//! Stack buckets: the profiler's table from (object size, call stack) to
//! counts (Go's `bucket`, `stkbucket`, `mProf_Malloc`, `mProf_Free`).
//!
//! # Capture
//!
//! A sampled allocation records its caller's stack as raw instruction
//! pointers, unsymbolized; names are looked up only when a profile is
//! written (`symbols.rs`). The walk uses the unwinder (`backtrace::trace`,
//! `_Unwind_Backtrace` on Linux) rather than frame pointers, because Rust
//! builds omit frame pointers by default and we cannot ask the embedder to
//! rebuild with `-C force-frame-pointers`. It is not free, but it runs once
//! per sample (once per 512 KiB allocated at the default rate):
//!
//! Measured on this 2-core machine, shared with other builds (release
//! build, 30 frames of recursion below a test's entry, so the walk visits
//! about 35 frames; the `record_alloc_cost` test in `tests/profile.rs`
//! prints the figure): 3.3 us per sample in the best runs, up to 6.5 us
//! under load. Almost all of it is the walk: a bare `backtrace::trace`
//! over 34 frames took 3.5 us in the same runs (about 100 ns per frame in
//! libgcc's unwinder), and walking 3 frames with the anchor check 0.45 us;
//! the bucket lookup and count were within the noise. At the default rate
//! that is about 3.5 us per 512 KiB allocated, well under 1% of the time
//! it takes to allocate and initialise 512 KiB.
//!
//! The walk starts inside the unwinder, so the frames above the allocation
//! site are found by an anchor, not a count: the walk looks for the frame
//! of `record_alloc` itself (a frame whose enclosing function is
//! `record_alloc`; it is `#[inline(never)]` so it has one), and then skips
//! `skip` more frames, the allocator's own. Counting frames from the
//! unwinder's entry instead would depend on how much of the unwinding
//! crate got inlined, which changes with the optimisation level. Only the
//! first few frames pay for the anchor check (a lookup in the unwind
//! tables each).
//!
//! # The table
//!
//! Buckets are keyed by (size, stack) as in Go: one bucket holds objects of
//! one size, so unbiasing its counts with `1 / (1 - exp(-size / rate))` is
//! exact rather than an estimate from the bucket's average size. With
//! size classes that adds few buckets. Buckets are never freed (as in Go):
//! a [`BucketId`] stays valid for the table's life, so a profile special
//! record need only carry the id (4 bytes).
//!
//! Concurrency: `table` is one `RwLock` over the stack index and the bucket
//! vector. Looking up an existing stack and counting a free take the read
//! lock only; a new stack takes the write lock once. The counters are
//! atomics, so readers count concurrently. Symbolization never takes this
//! lock for long: a profile writer copies the buckets out first.
//!
//! Counter ordering. Each sampled object's alloc is counted before its free
//! (the allocator records the alloc, then publishes the object; the
//! sweeper frees it after finding it through that publication, which
//! orders the two). The free side is bumped with `Release` and read first
//! with `Acquire`; so a reader that sees a free also sees its alloc, and
//! `allocs >= frees` (and `alloc_bytes >= free_bytes`) in every copy, even
//! one taken while other threads count.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The deepest stack a bucket keeps (Go's `maxStack`); deeper stacks are
/// cut at the root end, keeping the frames nearest the allocation.
pub const MAX_DEPTH: usize = 32;

/// How many frames from the unwinder's entry are searched for the anchor
/// frame (`record_alloc`). The unwinding crate puts one to three frames
/// before it, depending on inlining.
const ANCHOR_SEARCH: usize = 8;

/// Identifies a bucket of one [`Profiler`](super::Profiler); valid for the
/// profiler's whole life. A profile special record carries it from the
/// sampled allocation to the object's free.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BucketId(u32);

impl BucketId {
    /// The bucket's index: buckets are numbered 0, 1, 2... in the order
    /// their stacks were first seen.
    pub fn index(self) -> u32 {
        self.0
    }
}

/// One bucket: its key and counts of sampled objects.
struct Bucket {
    /// `[size, ip0, ip1, ...]`: the object size followed by the stack,
    /// innermost frame (the allocation site) first. Shared with the index.
    key: Arc<[usize]>,
    /// Sampled allocations and their bytes. Updated atomically (`Relaxed`:
    /// ordered before the matching free by the allocator's publication).
    allocs: AtomicU64,
    alloc_bytes: AtomicU64,
    /// Sampled frees and their bytes. Updated atomically with `Release`,
    /// read with `Acquire` before the alloc side (module docs).
    frees: AtomicU64,
    free_bytes: AtomicU64,
}

impl Bucket {
    fn count_alloc(&self, size: usize) {
        self.allocs.fetch_add(1, Ordering::Relaxed);
        self.alloc_bytes.fetch_add(size as u64, Ordering::Relaxed);
    }
}

/// A copy of one bucket's key and counts.
#[derive(Debug, Clone)]
pub(crate) struct BucketRecord {
    pub id: BucketId,
    /// `[size, stack...]`, as in the table.
    key: Arc<[usize]>,
    pub allocs: u64,
    pub alloc_bytes: u64,
    pub frees: u64,
    pub free_bytes: u64,
}

impl BucketRecord {
    /// Size of each object in the bucket.
    pub fn size(&self) -> usize {
        self.key[0]
    }

    /// Return addresses, innermost first.
    pub fn stack(&self) -> &[usize] {
        &self.key[1..]
    }
}

/// The stack index and the buckets, under one lock.
#[derive(Default)]
struct Table {
    /// Key (`[size, stack...]`) to bucket.
    index: HashMap<Arc<[usize]>, BucketId>,
    /// Buckets by id.
    buckets: Vec<Bucket>,
}

/// The bucket table. See the module docs.
#[derive(Default)]
pub(crate) struct Buckets {
    /// Guards the index and the bucket vector (not the counters, which are
    /// atomics).
    table: RwLock<Table>,
}

impl Buckets {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The bucket for (size, the caller's stack above `anchor`'s frame and
    /// `skip` more frames), created if new, with one allocation counted.
    /// `anchor` is the address of the `#[inline(never)]` function that
    /// calls this (the public `record_alloc`), which must be on the stack.
    #[inline(always)]
    pub fn record_alloc(&self, anchor: usize, size: usize, skip: usize) -> BucketId {
        let mut key = [0usize; MAX_DEPTH + 1];
        key[0] = size;
        let depth = capture(anchor, skip, &mut key[1..]);
        let key = &key[..depth + 1];

        {
            // The common case: a stack seen before, under the read lock.
            let table = self.read();
            if let Some(&id) = table.index.get(key) {
                table.buckets[id.0 as usize].count_alloc(size);
                return id;
            }
        }
        self.insert(key, size)
    }

    /// Adds a bucket for `key` unless another thread just did, and counts
    /// one allocation of `size` bytes in it.
    #[cold]
    fn insert(&self, key: &[usize], size: usize) -> BucketId {
        let mut table = self.table.write().unwrap_or_else(|e| e.into_inner());
        if let Some(&id) = table.index.get(key) {
            table.buckets[id.0 as usize].count_alloc(size);
            return id;
        }
        let id = BucketId(u32::try_from(table.buckets.len()).expect("profiler: 2^32 buckets"));
        let key: Arc<[usize]> = key.into();
        table.buckets.push(Bucket {
            key: key.clone(),
            allocs: AtomicU64::new(0),
            alloc_bytes: AtomicU64::new(0),
            frees: AtomicU64::new(0),
            free_bytes: AtomicU64::new(0),
        });
        table.buckets[id.0 as usize].count_alloc(size);
        table.index.insert(key, id);
        id
    }

    /// Counts the free of one object of `size` bytes from `bucket`.
    pub fn record_free(&self, bucket: BucketId, size: usize) {
        let table = self.read();
        let Some(b) = table.buckets.get(bucket.0 as usize) else {
            panic!(
                "profiler: free of {size} bytes from unknown {bucket:?} ({} buckets)",
                table.buckets.len()
            );
        };
        assert_eq!(
            b.key[0], size,
            "profiler: free of {size} bytes from {bucket:?}, a bucket of {}-byte objects",
            b.key[0]
        );
        b.free_bytes.fetch_add(size as u64, Ordering::Release);
        b.frees.fetch_add(1, Ordering::Release);
    }

    /// A copy of every bucket, in id order.
    pub fn records(&self) -> Vec<BucketRecord> {
        let table = self.read();
        table
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                // Free side first, with Acquire: see the module docs.
                let frees = b.frees.load(Ordering::Acquire);
                let free_bytes = b.free_bytes.load(Ordering::Acquire);
                BucketRecord {
                    id: BucketId(i as u32),
                    key: b.key.clone(),
                    allocs: b.allocs.load(Ordering::Relaxed),
                    alloc_bytes: b.alloc_bytes.load(Ordering::Relaxed),
                    frees,
                    free_bytes,
                }
            })
            .collect()
    }
}

/// Walks the stack, finds the frame of the function at `anchor`, skips
/// `skip` frames above it and writes the next return addresses (up to
/// `out.len()`) into `out`; returns how many.
#[inline(always)]
fn capture(anchor: usize, skip: usize, out: &mut [usize]) -> usize {
    let mut searched = 0;
    let mut found = false;
    let mut skip = skip;
    let mut n = 0;
    walk(|frame| {
        if !found && searched < ANCHOR_SEARCH {
            // The unwinder's frames, then the anchor's: none are recorded.
            searched += 1;
            found = frame.symbol_address() as usize == anchor;
            return true;
        }
        // Past the anchor (or, if it never showed, past the search window:
        // debug builds complain below; release builds keep what follows).
        if skip > 0 {
            skip -= 1;
            return true;
        }
        let ip = frame.ip() as usize;
        if ip == 0 {
            // The outermost frame (the thread's entry) returns nowhere.
            return false;
        }
        out[n] = ip;
        n += 1;
        n < out.len()
    });
    debug_assert!(
        found,
        "profiler: anchor frame {anchor:#x} not on the stack (searched {searched} frames)"
    );
    n
}

/// Calls `f` for each frame of the current stack, innermost first, until
/// it returns false.
#[inline(always)]
fn walk(f: impl FnMut(&backtrace::Frame) -> bool) {
    #[cfg(target_os = "linux")]
    // `trace_unsynchronized` differs from `trace` only in not taking the
    // crate's global lock. On Linux the walk is libgcc's
    // `_Unwind_Backtrace`, which is thread-safe on its own (it finds unwind
    // tables through `_dl_find_object` / `dl_iterate_phdr`, which lock for
    // themselves); the lock serializes dbghelp on Windows and backtrace's
    // own symbolization caches, which a walk does not touch. Skipping it
    // matters: a profile writer holds that lock while it symbolizes, which
    // can take a hundred milliseconds when debug info is first loaded, and
    // an allocating thread must not wait for that. `f` does not panic (it
    // only indexes within bounds it checks), so nothing unwinds through
    // the unwinder.
    // SAFETY: the walk is thread-safe without the lock (above).
    unsafe {
        backtrace::trace_unsynchronized(f)
    }
    #[cfg(not(target_os = "linux"))]
    backtrace::trace(f)
}
