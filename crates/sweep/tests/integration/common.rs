//! A mock embedder for the sweep layer's tests: free hooks that record
//! what died, a heap constructor, the "collector" (mark chosen objects and
//! advance the generation, as the facade's `collect_cycle` does), a seeded
//! random generator and the stress scale.

use spangc_arena::PageHeap;
use spangc_arena::sizeclass::{SpanClass, size_to_class};
use spangc_arena::span::Span;
use spangc_gcbits::SpanBits;
use spangc_sweep::{Mheap, MheapConfig, SweepHooks};
use std::collections::HashSet;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex, RwLock};

/// A type tag whose objects need no free hook (swept by bitmap words).
pub const TAG_PLAIN: usize = 0x1000;
/// A type tag whose dead objects go through the free hook.
pub const TAG_HOOKED: usize = 0x2000;
/// A second hooked tag (a different central for the same span class).
pub const TAG_HOOKED2: usize = 0x3000;
/// A hooked tag whose hook can be made to block (see [`Hooks::gate`]).
pub const TAG_GATED: usize = 0x4000;

/// The small span class for objects of `bytes` (scan).
pub fn class_for(bytes: usize) -> SpanClass {
    SpanClass::new(size_to_class(bytes).expect("a small size"), false)
}

/// What the tests' free hook does and has seen.
#[derive(Default)]
pub struct Hooks {
    /// Dead objects passed to the hook.
    pub frees: AtomicU64,
    /// Their addresses, if `record` is set.
    pub freed: Mutex<Vec<usize>>,
    /// Record every address in `freed` (tests that compare sets).
    pub record: bool,
    /// Objects that must not die now: the hook panics if it sees one.
    pub live: RwLock<HashSet<usize>>,
    /// Objects freed while in `live` (counted as well as panicking, in
    /// case the panic is on a background thread).
    pub wrongly_freed: AtomicU64,
    /// Blocks hooks on [`TAG_GATED`] objects while closed.
    pub gate: Gate,
}

impl Hooks {
    pub fn recording() -> Hooks {
        Hooks {
            record: true,
            ..Hooks::default()
        }
    }

    /// The recorded addresses, sorted.
    pub fn freed_sorted(&self) -> Vec<usize> {
        let mut v = self.freed.lock().unwrap().clone();
        v.sort_unstable();
        v
    }

    pub fn frees(&self) -> u64 {
        self.frees.load(Relaxed)
    }
}

impl SweepHooks for Hooks {
    fn needs_free_hook(&self, type_tag: usize) -> bool {
        type_tag != TAG_PLAIN
    }

    fn free_object(&self, type_tag: usize, addr: NonNull<u8>) -> bool {
        assert_ne!(type_tag, TAG_PLAIN, "free hook on a tag that needs none");
        let a = addr.as_ptr() as usize;
        if type_tag == TAG_GATED {
            self.gate.pass();
        }
        self.frees.fetch_add(1, Relaxed);
        if self.record {
            self.freed.lock().unwrap().push(a);
        }
        if self.live.read().unwrap().contains(&a) {
            self.wrongly_freed.fetch_add(1, Relaxed);
            panic!("the free hook saw live object {a:#x}");
        }
        true
    }

    fn sweep_specials(&self, _: &PageHeap, span: &Span) -> u32 {
        // These tests attach no special records, so no span may have its
        // page_specials bit set.
        panic!("sweep_specials called for {span}, which has no specials in these tests");
    }
}

/// A gate a hook can wait at: open by default; `close` makes hooks on
/// [`TAG_GATED`] block (after counting themselves in `waiting`) until
/// `open`.
#[derive(Default)]
pub struct Gate {
    state: Mutex<(bool, usize)>, // (closed, waiting)
    cv: Condvar,
}

impl Gate {
    pub fn close(&self) {
        self.state.lock().unwrap().0 = true;
    }

    pub fn open(&self) {
        self.state.lock().unwrap().0 = false;
        self.cv.notify_all();
    }

    fn pass(&self) {
        let mut s = self.state.lock().unwrap();
        s.1 += 1;
        self.cv.notify_all();
        while s.0 {
            s = self.cv.wait(s).unwrap();
        }
    }

    /// Opens the gate when dropped, so that a failing assertion does not
    /// leave a hook blocked (and the test's thread scope waiting forever).
    pub fn open_on_drop(&self) -> impl Drop + '_ {
        struct Opener<'a>(&'a Gate);
        impl Drop for Opener<'_> {
            fn drop(&mut self) {
                self.0.open();
            }
        }
        Opener(self)
    }

    /// Waits until some hook has reached the gate.
    pub fn wait_for_waiter(&self) {
        let mut s = self.state.lock().unwrap();
        while s.1 == 0 {
            s = self.cv.wait(s).unwrap();
        }
    }
}

/// A heap with the tests' hooks; no background scavenger (it would make
/// page counts move under the tests).
pub fn heap(background_sweep: bool, poison: bool, hooks: Arc<Hooks>) -> Arc<Mheap> {
    Mheap::new(
        MheapConfig {
            background_sweep,
            background_scavenge: false,
            poison,
        },
        hooks,
    )
    .expect("heap")
}

/// Marks the objects at `live` (world stopped, after `prepare_mark`), as
/// the facade's marker does: mark bit and page mark. Returns the marked
/// bytes (slot sizes), counting each object once.
pub fn mark(heap: &Mheap, live: impl IntoIterator<Item = usize>) -> usize {
    let mut bytes = 0;
    for a in live {
        let o = heap
            .page_heap()
            .find_object(a)
            .unwrap_or_else(|| panic!("marking {a:#x}: not an object of the heap"));
        if !o.span.set_marked(o.index) {
            bytes += o.span.elem_size();
        }
        heap.page_heap().set_page_mark(o.span);
    }
    bytes
}

/// One collection with the world stopped (no thread allocating): finishes
/// the previous sweep, marks `live`, and starts the next generation.
/// Caches may keep spans; their owners must `prepare_for_sweep` before
/// allocating again.
pub fn collect(heap: &Mheap, live: impl IntoIterator<Item = usize>) -> usize {
    heap.finish_sweep();
    heap.prepare_mark();
    let bytes = mark(heap, live);
    heap.finish_mark(bytes);
    bytes
}

/// [`collect`], then the whole sweep of the generation it started.
pub fn collect_and_sweep(heap: &Mheap, live: impl IntoIterator<Item = usize>) -> usize {
    let bytes = collect(heap, live);
    heap.finish_sweep();
    bytes
}

/// xorshift64*: a small seeded generator, so failures replay.
pub struct Rng(u64);

impl Rng {
    /// Seeded from `SPANGC_SEED` if set, else from `default`; prints the
    /// seed so that a failing run can be replayed.
    pub fn from_env(default: u64) -> Rng {
        let seed = std::env::var("SPANGC_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default);
        eprintln!("seed {seed} (replay with SPANGC_SEED={seed})");
        Rng::new(seed)
    }

    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `p` percent.
    pub fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// `SPANGC_STRESS_SCALE` (default 1): stress tests multiply their sizes by
/// it. 1 keeps a debug-build run to a few seconds; 50 is a soak.
pub fn stress_scale() -> usize {
    std::env::var("SPANGC_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// Writes `stamp` over the first word of the object at `addr`.
///
/// # Safety
///
/// `addr` is an allocated object of at least 8 bytes that the caller owns.
pub unsafe fn write_stamp(addr: usize, stamp: u64) {
    // SAFETY: per the contract; slots are at least 8-byte aligned.
    unsafe { (addr as *mut u64).write(stamp) }
}

/// Reads the first word of the object at `addr`.
///
/// # Safety
///
/// As for [`write_stamp`]: a live object of at least 8 bytes.
pub unsafe fn read_stamp(addr: usize) -> u64 {
    // SAFETY: per the contract.
    unsafe { (addr as *const u64).read() }
}
