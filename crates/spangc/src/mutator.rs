//! Mutators and scopes: where a thread allocates, and where collections
//! may happen.
//!
//! A [`Mutator`] is one thread's registration with a heap: its allocation
//! cache and its status in the stop-the-world protocol (`world.rs`). It is
//! `!Send`: the cache belongs to the thread.
//!
//! [`Mutator::enter`] opens a [`Scope`] and passes `&mut Scope` to a closure
//! that is generic over the borrow's lifetime, so nothing branded with it
//! can leave. Inside:
//!
//! * `&'s Scope` methods (`alloc`, `root`, `Root::get`, cell writes) cannot
//!   collect. Every `Gc<'s, _>` borrows the scope for `'s`.
//! * `&mut Scope` methods (`safepoint`, `collect`, `blocking`) may collect;
//!   taking `&mut` ends every outstanding `Gc`. Values that must survive are
//!   rooted (or stored in a rooted object).
//!
//! So an interpreter's dispatch loop lets collections happen without
//! returning from its outermost function: it keeps its state in a rooted
//! object, re-reads it after each `safepoint()`, and the borrow checker
//! rejects any stale `Gc` (see `docs/api.md`).
//!
//! Outside a scope, and while `blocking`, a mutator never holds up a
//! collection. It keeps its cached spans (entering a scope is cheap), and a
//! collector that runs meanwhile flushes its cache if it went stale (see
//! `World::idle_caches`); entering checks for a collection it missed.

use crate::alloc::{AllocError, AllocErrorKind, SizeReq};
use crate::brand::{Brand, Global};
use crate::branded::{Branded, Rootable};
use crate::gc::Gc;
use crate::heap::{EXIT_WAIT, Heap, HeapInner, Reason};
use crate::layout::{TypeInfo, WithTail, owner_of_tag};
use crate::owner::Owner;
use crate::root::Root;
use crate::special::{
    Finalizer, FinalizerFn, Hooks, IN_DESTRUCTOR, LocalRun, SpecialData, ThreadBound,
};
use crate::trace::Trace;
use crate::world::{CachePtr, MutatorId};
use spangc_specials::Kind;
use spangc_sweep::MCache;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// One thread's handle on a heap: its allocation cache and its place in
/// the stop-the-world protocol.
///
/// Made by [`Heap::mutator`]; `!Send`, so it stays on the thread that made
/// it. All heap access happens inside [`Mutator::enter`], which hands a
/// [`Scope`] to a closure. Outside a scope (and while
/// [`Scope::blocking`]), a mutator never holds up another thread's
/// collection. Dropping the mutator deregisters the thread; finalizers
/// still due on it are dropped unrun. If the thread allocated objects whose
/// drop glue must run on it (types with drop glue that are not `Send`),
/// dropping its last mutator of the heap on a thread other than the main
/// one first runs a collection, if no other mutator is inside a scope, so
/// that the dead ones are dropped on this thread before it exits (see
/// `docs/api.md`, "Destructors and threads").
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// use spangc::Config;
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// let greeting = m.enter(|cx| cx.root(cx.alloc_str("hello")));
/// // Between scopes the thread may block, sleep or compute freely.
/// let shout = m.enter(|cx| greeting.get(cx).to_uppercase());
/// assert_eq!(shout, "HELLO");
/// ```
pub struct Mutator<B: Brand = Global> {
    inner: Box<MutatorInner<B>>,
}

pub(crate) struct MutatorInner<B: Brand> {
    pub(crate) heap: Arc<HeapInner<B>>,
    pub(crate) id: MutatorId,
    /// The allocation cache, in an allocation of its own (a raw pointer,
    /// so that no `&mut Mutator` claims it: the collector flushes idle
    /// mutators' caches through the world's copy of this pointer). Touched
    /// by this mutator's thread inside a scope or in `Drop`, one call at a
    /// time, or by a collector while this mutator is idle and cannot.
    cache: NonNull<MCache>,
    /// This thread's owner record in the heap (see `owner.rs`).
    pub(crate) owner: Arc<Owner>,
    /// `owner.tag_bits()`, here so that allocating need not load the owner
    /// record.
    owner_bits: usize,
    /// Not `Send`, not `Sync`: the cache belongs to the thread.
    _thread: PhantomData<*mut ()>,
}

impl<B: Brand> Mutator<B> {
    pub(crate) fn new(heap: Arc<HeapInner<B>>) -> Mutator<B> {
        let mut mcache = heap.mheap.new_cache();
        if let Some(profiler) = &heap.hooks.profiler {
            let mut sampler = profiler.sampler();
            mcache.set_sampler(Some(Box::new(move || sampler.next_distance())));
        }
        let owner = heap.hooks.owners.add_mutator(|| {
            let mut in_use = Vec::new();
            heap.mheap
                .for_each_in_use_span(|s| in_use.push(owner_of_tag(s.type_tag())));
            in_use
        });
        let cache = NonNull::from(Box::leak(Box::new(mcache)));
        let id = heap.world.register(CachePtr(cache));
        Mutator {
            inner: Box::new(MutatorInner {
                heap,
                id,
                cache,
                owner_bits: owner.tag_bits(),
                owner,
                _thread: PhantomData,
            }),
        }
    }

    /// The heap this mutator allocates in (a new handle on it).
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let m = Heap::new(Config::default()).unwrap().mutator();
    /// // The mutator keeps the heap alive; get a handle back from it.
    /// let heap = m.heap();
    /// heap.collect();
    /// assert_eq!(heap.gc_count(), 1);
    /// ```
    pub fn heap(&self) -> Heap<B> {
        Heap::from_inner(self.inner.heap.clone())
    }

    /// Lets a wanted collection run, from outside a scope: for embedders
    /// that enter a scope per operation and reach their safepoints between
    /// operations. Costs one load when no collection is wanted.
    ///
    /// Allocation never collects; it only asks for a collection, which runs
    /// at the next safepoint of some mutator.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// for request in 0..200u32 {
    ///     // Each operation allocates 100 KB of garbage...
    ///     let len = m.enter(|cx| cx.alloc_slice_copy(&[request as u8; 100_000]).len());
    ///     assert_eq!(len, 100_000);
    ///     m.safepoint(); // ...and the heap collects between operations.
    /// }
    /// assert!(heap.gc_count() >= 1);
    /// assert!(heap.stats().heap_in_use_bytes < 8 << 20, "20 MB allocated, most of it freed");
    /// ```
    pub fn safepoint(&mut self) {
        if self.inner.heap.world.poll() {
            self.enter(|cx| cx.safepoint());
        }
    }

    /// Runs `f` inside a scope. Waits first if a collection is in progress.
    ///
    /// Nothing branded with the scope can be returned or leak out: `f` is
    /// generic over the scope borrow. If `f` panics, the scope is left
    /// correctly and the panic continues.
    ///
    /// A scope opened inside another scope of the same heap on one thread
    /// (through a second mutator) works until it would wait for a
    /// collection or begin one (a safepoint that parks or collects,
    /// `blocking`, entering during a collection): there it panics, since
    /// the collection would wait for the outer scope. A thread inside a
    /// scope of one heap can enter scopes of other heaps freely.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// // Return plain values, or roots for objects that must outlive the scope.
    /// let (len, root) = m.enter(|cx| {
    ///     let s = cx.alloc_str("scoped");
    ///     (s.len(), cx.root(s))
    /// });
    /// assert_eq!(len, 6);
    /// assert_eq!(m.enter(|cx| root.get(cx).to_string()), "scoped");
    /// ```
    pub fn enter<R>(&mut self, f: impl for<'x> FnOnce(&'x mut Scope<B>) -> R) -> R {
        let m = &*self.inner;
        m.heap.world.enter(&m.id);
        let _exit = ExitGuard(m);
        let mut scope = Scope {
            m: NonNull::from(m),
            cache: m.cache,
            poll: NonNull::from(m.heap.world.poll_flag()),
            verify: m.heap.config.verify,
            _not_send_sync: PhantomData,
        };
        // A collection may have run while this mutator was outside; if the
        // collector did not flush the cache then, it is stale now.
        scope.after_collection();
        f(&mut scope)
    }
}

impl<B: Brand> Drop for Mutator<B> {
    fn drop(&mut self) {
        self.before_exit();
        let m = &*self.inner;
        // Finalizers due on this thread will never run: drop them (their
        // objects are freed at the next collection that finds them dead).
        drop(m.heap.hooks.take_local(m.id.index()));
        if m.heap.world.deregister(&m.id) {
            // Deregistered, so no collector can reach the cache, and no
            // scope is open (`&mut self`). Dropping the cache gives its
            // spans back.
            // SAFETY: the box was leaked in `new` and is reclaimed once, here.
            drop(unsafe { Box::from_raw(m.cache.as_ptr()) });
        }
        // Otherwise the world took the cache over (dropped during a
        // collection inside another scope of this thread; see
        // `World::deregister`) and frees it when the collection ends.
        m.owner.remove_mutator();
    }
}

impl<B: Brand> Mutator<B> {
    /// Before the thread's last mutator of the heap goes, if the thread
    /// ever allocated objects whose drop glue must run on it: collects, so
    /// that those now dead are dropped here rather than never (the thread
    /// may be about to exit; see `owner.rs`), waits for the sweep, in which
    /// other threads hand this thread's dead objects to it, and runs what
    /// they handed over.
    ///
    /// Nothing here may wait for another thread indefinitely, since that
    /// thread may be waiting for this one (a join): the collection runs
    /// from outside any scope, only if no other mutator is inside one, and
    /// every wait for other threads (a running collection, sweepers, one
    /// of which may be running a destructor that joins this thread) gives
    /// up after [`EXIT_WAIT`]. Nor does it collect when no other handle
    /// keeps the heap (it is torn down on this thread next, which drops
    /// them anyway), or on the main thread, whose exit ends the
    /// process (its objects are dropped when it next sweeps or uses a
    /// mutator, or at teardown; a benchmark handle dropping its mutator
    /// before its last `Root` paid a full collection at exit for nothing).
    /// None of it while the thread unwinds or runs destructors for a
    /// sweeper.
    fn before_exit(&self) {
        let m = &*self.inner;
        let last = m.owner.has_allocated() && m.owner.mutators() == 1;
        if last && !std::thread::panicking() && !IN_DESTRUCTOR.with(|f| f.get()) {
            // The sweep first, bounded: then the collection's own finishing
            // of it will not wait (and it gives up if it would).
            let swept = m.heap.mheap.finish_sweep_within(EXIT_WAIT);
            if swept
                && Arc::strong_count(&m.heap) > 1
                && std::thread::current().name() != Some("main")
            {
                m.heap.collect_cycle(None, Reason::ThreadExit);
                m.heap.mheap.finish_sweep_within(EXIT_WAIT);
            }
        }
        m.heap.hooks.drain(&m.owner);
    }
}

/// Leaves the scope on every path out of `enter`, unwinding included.
struct ExitGuard<'m, B: Brand>(&'m MutatorInner<B>);

impl<B: Brand> Drop for ExitGuard<'_, B> {
    fn drop(&mut self) {
        self.0.heap.world.exit(&self.0.id);
    }
}

/// A mutation scope: allocate, root, read and write objects; reach
/// safepoints.
///
/// [`Mutator::enter`] passes `&mut Scope` to its closure. The scope's
/// methods come in two kinds:
///
/// * `&'s self` methods ([`alloc`](Scope::alloc), [`root`](Scope::root),
///   [`Root::get`], cell writes) cannot collect. Every `Gc<'s, _>` they
///   return borrows the scope for `'s`.
/// * `&mut self` methods ([`safepoint`](Scope::safepoint),
///   [`collect`](Scope::collect), [`blocking`](Scope::blocking)) may
///   collect; taking `&mut` ends every outstanding `Gc`. Values that must
///   survive are rooted, or stored in a rooted object.
///
/// So a long-running loop (an interpreter's dispatch loop) lets collections
/// happen without returning: it keeps its state in a rooted object,
/// re-reads it after each safepoint, and the borrow checker rejects any
/// stale `Gc`. Functions that take `&Scope` cannot collect and pass `Gc`s
/// freely; functions that take `&mut Scope` may collect.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Scope = spangc::Scope<Doc>;
/// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
/// use spangc::{Config, GcRefCell, Trace};
///
/// #[derive(Trace)]
/// # #[gc(brand = Doc)]
/// struct Vm<'gc> {
///     stack: GcRefCell<Vec<Gc<'gc, [u64]>>>,
/// }
///
/// /// Cannot collect: takes `&Scope`, returns a `Gc` of the same borrow.
/// fn step<'s>(cx: &'s Scope, i: u64) -> Gc<'s, [u64]> {
///     cx.alloc_slice_copy(&[i; 1024])
/// }
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let vm = cx.root(cx.alloc(Vm { stack: GcRefCell::new(Vec::new()) }));
///     for i in 0..1000 {
///         let block = step(cx, i); // 8 KiB, mostly garbage
///         if i % 100 == 0 {
///             vm.get(cx).stack.borrow_mut(cx).push(block); // keep every 100th
///         }
///         cx.safepoint(); // collections happen here; `block` is dead after it
///     }
///     let vm = vm.get(cx);
///     let stack = vm.stack.borrow();
///     assert_eq!(stack.len(), 10);
///     assert_eq!(stack[9][0], 900);
/// });
/// assert!(heap.gc_count() >= 1);
/// ```
pub struct Scope<B: Brand = Global> {
    m: NonNull<MutatorInner<B>>,
    /// The mutator's allocation cache (`MutatorInner::cache`, whose
    /// allocation outlives the scope), cached so the inlined allocation
    /// path starts one load nearer the cache's table: binary-trees depth
    /// 21 on `spangc-2`, eight interleaved pairs, median 5.06 -> 4.96 s
    /// (faster or even in seven of the eight).
    cache: NonNull<MCache>,
    /// The heap's safepoint poll flag, cached so a poll is one load.
    poll: NonNull<AtomicBool>,
    /// The heap's verify setting, cached for the write barrier.
    verify: bool,
    /// `!Send + !Sync`: a scope is its thread's alone.
    _not_send_sync: PhantomData<*mut ()>,
}

impl<B: Brand> Scope<B> {
    #[inline(always)]
    fn m(&self) -> &MutatorInner<B> {
        // SAFETY: a scope exists only inside `Mutator::enter`, which holds
        // a borrow of the boxed `MutatorInner` for the scope's whole life.
        unsafe { self.m.as_ref() }
    }

    #[inline(always)]
    pub(crate) fn heap_inner(&self) -> &Arc<HeapInner<B>> {
        &self.m().heap
    }

    /// The heap this scope allocates in (a new handle on it).
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let root = cx.root(cx.alloc(1u32));
    ///     assert_eq!(cx.heap().root_count(), 1);
    ///     drop(root);
    ///     assert_eq!(cx.heap().root_count(), 0);
    /// });
    /// ```
    pub fn heap(&self) -> Heap<B> {
        Heap::from_inner(self.m().heap.clone())
    }

    /// The mutator's allocation cache.
    ///
    /// # Safety
    ///
    /// The caller must not let the reference outlive its own call, and must
    /// not call back into anything that reaches the cache while holding it
    /// (allocation is not re-entrant; destructors run during cache refill
    /// cannot reach a `Scope`).
    #[inline(always)]
    // The cache is the mutator's, behind an `UnsafeCell`; `&self` is the
    // scope, which may be shared within the thread, hence the contract.
    #[allow(clippy::mut_from_ref)]
    unsafe fn cache(&self) -> &mut MCache {
        // SAFETY: per the contract, this is the only live reference: the
        // cache belongs to this thread (`Scope` is `!Send`), and while a
        // scope is open the mutator is not idle, so no collector touches it.
        unsafe { &mut *self.cache.as_ptr() }
    }

    /// Allocates `value` and returns a pointer to it, valid until the next
    /// safepoint.
    ///
    /// Panics if the heap cannot grow (memory limit reached, or the OS
    /// refused memory); [`Scope::try_alloc`] returns the error instead.
    /// Never collects: crossing the heap goal only asks for a collection at
    /// the next safepoint.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// use spangc::{Config, Trace};
    ///
    /// #[derive(Trace)]
    /// # #[gc(brand = Doc)]
    /// struct Point {
    ///     x: f64,
    ///     y: f64,
    /// }
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let p: Gc<Point> = cx.alloc(Point { x: 3.0, y: 4.0 });
    ///     assert_eq!((p.x * p.x + p.y * p.y).sqrt(), 5.0);
    ///     let n = cx.alloc(42u64); // any `Trace` value
    ///     assert_eq!(*n, 42);
    /// });
    /// ```
    #[inline]
    pub fn alloc<'s, T: Trace<B> + Branded<'s>>(&'s self, value: T) -> Gc<'s, T, B> {
        let p = match self.bump::<T>() {
            Some(p) => p,
            None => self
                .slot_outlined(TypeInfo::of::<B, T>(), SizeReq::of::<B, T>())
                .unwrap_or_else(|kind| alloc_failed(kind)),
        };
        // SAFETY: a fresh slot of this scope's cache, from `bump` or
        // `slot_outlined`, sized and aligned for a `T` (its size class is
        // `SizeReq::of`), that nothing else references.
        unsafe { self.init(p, value) }
    }

    /// Allocates `value`, or gives it back in the error if the heap cannot
    /// grow. The heap stays usable after an error.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{AllocErrorKind, Config};
    ///
    /// let config = Config::builder().memory_limit(Some(16 << 20)).build().unwrap();
    /// let heap = Heap::new(config).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     // Fill the heap without a safepoint, so nothing can be collected.
    ///     let mut blocks = 0;
    ///     let err = loop {
    ///         match cx.try_alloc([blocks; 512]) {
    ///             Ok(_) => blocks += 1,
    ///             Err(e) => break e,
    ///         }
    ///     };
    ///     assert!(matches!(err.kind(), AllocErrorKind::MemoryLimit { .. }), "{err}");
    ///     assert_eq!(err.into_value()[0], blocks, "the value comes back");
    ///
    ///     cx.collect(); // the blocks were garbage
    ///     assert!(cx.try_alloc([0u64; 512]).is_ok());
    /// });
    /// ```
    #[inline]
    pub fn try_alloc<'s, T: Trace<B> + Branded<'s>>(
        &'s self,
        value: T,
    ) -> Result<Gc<'s, T, B>, AllocError<T>> {
        let p = match self.bump::<T>() {
            Some(p) => p,
            None => match self.slot_outlined(TypeInfo::of::<B, T>(), SizeReq::of::<B, T>()) {
                Ok(p) => p,
                Err(kind) => return Err(AllocError::new(value, kind)),
            },
        };
        // SAFETY: as in `alloc`.
        Ok(unsafe { self.init(p, value) })
    }

    /// A slot for a `T` from the current run of the cache's span for its
    /// class, or `None`. Only the bump (loads, a compare and a store) is
    /// inlined into `alloc` and `try_alloc`; everything past it is behind
    /// one call out of line, so the inlined path makes no call and saves
    /// no registers for one (`bottom_up` in benches/ now inlines the
    /// allocation and calls nothing on its fast path). binary-trees depth
    /// 21, spangc-2, seven interleaved pairs: 5.25-5.72 s (median 5.36)
    /// with the next run and the slow path inline, 5.05-5.41 s (median
    /// 5.26) out of line.
    #[inline(always)]
    fn bump<T: Trace<B>>(&self) -> Option<NonNull<u8>> {
        self.bump_raw(TypeInfo::of::<B, T>(), SizeReq::of::<B, T>())
    }

    /// The span tag for objects of type `info` allocated here: the record's
    /// address, with this thread's owner index if the type's drop glue
    /// must run on this thread (`owner.rs`). `bound` is a constant per
    /// type, so for other types this folds to the address.
    #[inline(always)]
    fn tag(&self, info: &'static TypeInfo) -> usize {
        if info.bound {
            info.tag() | self.m().owner_bits
        } else {
            info.tag()
        }
    }

    /// [`Scope::bump`] for a type record and size: `None` for large
    /// objects, which have no runs.
    #[inline(always)]
    fn bump_raw(&self, info: &'static TypeInfo, req: SizeReq) -> Option<NonNull<u8>> {
        match req {
            SizeReq::Small(class) => {
                // SAFETY: the reference does not outlive this statement.
                unsafe { self.cache() }.alloc_bump(self.tag(info), class)
            }
            SizeReq::Large { .. } => None,
        }
    }

    /// Moves `value` into the fresh slot `p`; the `Gc` borrows the scope
    /// like every other this scope hands out.
    ///
    /// # Safety
    ///
    /// `p` must be a fresh slot of this heap, allocated in this scope since
    /// its last safepoint, with room and alignment for a `T`
    /// (`SizeReq::of`), that nothing else references.
    #[inline(always)]
    unsafe fn init<'s, T: Trace<B> + Branded<'s>>(
        &'s self,
        p: NonNull<u8>,
        value: T,
    ) -> Gc<'s, T, B> {
        // SAFETY: the caller's contract: room, alignment, no other
        // reference.
        unsafe { p.cast::<T>().write(value) };
        // SAFETY: `p` now holds an initialised `T` of this heap; nothing
        // can free it before the next safepoint, which ends `'s`.
        unsafe { Gc::from_raw(p) }
    }

    /// A slot past the bump of the current run (see [`Scope::bump`]). It
    /// returns only the slot: `alloc` and `try_alloc` write the value, so
    /// that their inlined path need not keep it in memory to pass its
    /// address here. Passing the value (as this function once did) made the
    /// compiler build each value on the stack and copy it into the slot
    /// with wider loads than the stores that built it, a store-forwarding
    /// stall per allocation (see docs/PERFORMANCE.md, "Scopes and allocation in the facade").
    #[inline(never)]
    fn slot_outlined(
        &self,
        info: &'static TypeInfo,
        req: SizeReq,
    ) -> Result<NonNull<u8>, AllocErrorKind> {
        self.alloc_past_bump(info, req)
    }

    /// Allocates a string: a `Gc<str>` is one thin pointer to the length
    /// and the bytes, in one object.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let s = cx.alloc_str(&format!("{}-{}", "key", 7));
    ///     assert_eq!(&*s, "key-7");
    ///     assert!(s.starts_with("key")); // a `str`: every `str` method works
    ///     assert_eq!(size_of_val(&s), size_of::<usize>());
    /// });
    /// ```
    pub fn alloc_str<'s>(&'s self, s: &str) -> Gc<'s, str, B> {
        // SAFETY: a `str` object is laid out as `WithTail<(), u8>`; this
        // one holds the bytes of a `str`, so they are valid UTF-8, and
        // `tail_copy` returns it initialised, of this scope's heap.
        unsafe { Gc::from_raw(self.tail_copy(TypeInfo::of::<B, str>(), (), s.as_bytes())) }
    }

    /// Allocates a slice, copying `items` (one `memcpy`).
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let code = cx.alloc_slice_copy(&[0x01u8, 0x2a, 0xff]);
    ///     assert_eq!(&*code, &[1, 42, 255]);
    ///     let strings = cx.alloc_slice_copy(&[cx.alloc_str("a"), cx.alloc_str("b")]);
    ///     assert_eq!(&*strings[1], "b");
    /// });
    /// ```
    pub fn alloc_slice_copy<'s, T: Copy + Trace<B> + Branded<'s>>(
        &'s self,
        items: &[T],
    ) -> Gc<'s, [T], B> {
        // SAFETY: a `[T]` object is laid out as `WithTail<(), T>`, and
        // `tail_copy` returns an initialised one of this scope's heap.
        unsafe { Gc::from_raw(self.tail_copy(TypeInfo::of::<B, [T]>(), (), items)) }
    }

    /// Allocates `head` followed by a copy of `tail` (one `memcpy`): see
    /// [`WithTail`].
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     // A chunk of bytecode: its line number, then its instructions.
    ///     let chunk = cx.alloc_tail_copy(12u32, &[0x01u8, 0x02, 0x03]);
    ///     assert_eq!(chunk.head, 12);
    ///     assert_eq!(&chunk.tail, &[1, 2, 3]);
    /// });
    /// ```
    pub fn alloc_tail_copy<'s, H, T>(&'s self, head: H, tail: &[T]) -> Gc<'s, WithTail<H, T>, B>
    where
        H: Trace<B> + Branded<'s>,
        T: Copy + Trace<B> + Branded<'s>,
    {
        // SAFETY: the record is the type's own; `tail_copy` returns an
        // initialised object of this scope's heap.
        unsafe { Gc::from_raw(self.tail_copy(TypeInfo::of::<B, WithTail<H, T>>(), head, tail)) }
    }

    /// `alloc_tail_copy` with the type record `info`: an initialised
    /// `WithTail<H, T>` object, returned as its address.
    ///
    /// # Safety
    ///
    /// `info` is the record of a type laid out as `WithTail<H, T>`, with
    /// its trace and drop glue: `WithTail<H, T>`'s own, or, when `H` is
    /// `()`, `[T]`'s (or `str`'s for `u8` elements that are UTF-8), so
    /// that slices and strings carry their own type's name.
    unsafe fn tail_copy<H: Trace<B>, T: Copy + Trace<B>>(
        &self,
        info: &'static TypeInfo,
        head: H,
        tail: &[T],
    ) -> NonNull<u8> {
        // SAFETY: the caller's contract on `info`.
        let (p, elems) = unsafe { self.begin_tail::<H, T>(info, head, tail.len()) };
        // SAFETY: `begin_tail` made room for `tail.len()` elements at
        // `elems`, a fresh object no one else sees; `T: Copy`, so a bitwise
        // copy is a valid value and needs no drop bookkeeping.
        unsafe {
            std::ptr::copy_nonoverlapping(tail.as_ptr(), elems, tail.len());
            WithTail::<H, T>::set_len(p, tail.len());
        }
        p
    }

    /// Allocates a `WithTail<H, T>` object of type record `info` with room
    /// for `len` elements, writes `head`, and returns the object and its
    /// first element's address. The length word says 0 until the caller
    /// raises it.
    ///
    /// # Safety
    ///
    /// As for [`Scope::tail_copy`]: `info` describes objects laid out as
    /// `WithTail<H, T>`.
    unsafe fn begin_tail<H, T>(
        &self,
        info: &'static TypeInfo,
        head: H,
        len: usize,
    ) -> (NonNull<u8>, *mut T)
    where
        H: Trace<B>,
        T: Trace<B>,
    {
        let layout = WithTail::<H, T>::layout(len)
            .unwrap_or_else(|| alloc_failed(AllocErrorKind::TooLarge { bytes: usize::MAX }));
        let req = SizeReq::for_layout_in(layout, !<WithTail<H, T> as Trace<B>>::NEEDS_TRACE);
        let p = match self.alloc_raw(info, req) {
            Ok(p) => p,
            Err(kind) => alloc_failed(kind),
        };
        // SAFETY: `p` is a fresh slot of at least `layout`, aligned to it;
        // the object claims no elements yet.
        let elems = unsafe { WithTail::<H, T>::init_head(p, 0, head) };
        (p, elems)
    }

    /// Allocates a slice from an iterator of known length.
    ///
    /// Panics if the iterator yields a different number of items than its
    /// `len()` said (the object is then left holding the items written so
    /// far, and is garbage). For `Copy` items in a slice,
    /// [`Scope::alloc_slice_copy`] is faster.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let squares = cx.alloc_slice_from_iter((1..=4u8).map(|i| u32::from(i * i)));
    ///     assert_eq!(&*squares, &[1, 4, 9, 16]);
    ///     let words = ["x", "yz"].map(String::from);
    ///     let owned = cx.alloc_slice_from_iter(words); // moves non-`Copy` items in
    ///     assert_eq!(owned[1], "yz");
    /// });
    /// ```
    pub fn alloc_slice_from_iter<'s, T: Trace<B> + Branded<'s>, I>(
        &'s self,
        items: I,
    ) -> Gc<'s, [T], B>
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        // SAFETY: a `[T]` object is laid out as `WithTail<(), T>`, and
        // `with_tail` returns an initialised one of this scope's heap.
        unsafe { Gc::from_raw(self.with_tail(TypeInfo::of::<B, [T]>(), (), items)) }
    }

    /// Allocates `head` followed by the items of `tail` in one object (see
    /// [`WithTail`]).
    ///
    /// Panics if the iterator yields a different number of items than its
    /// `len()` said.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{Config, GcCell};
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     // A function's name and its constants, one object.
    ///     let constants = [1.5, 2.5].into_iter().map(GcCell::new);
    ///     let f = cx.alloc_with_tail(cx.alloc_str("area"), constants);
    ///     f.tail[0].set(cx, 3.5);
    ///     assert_eq!(&*f.head, "area");
    ///     assert_eq!((f.tail[0].get(), f.tail[1].get()), (3.5, 2.5));
    /// });
    /// ```
    pub fn alloc_with_tail<'s, H, T, I>(&'s self, head: H, tail: I) -> Gc<'s, WithTail<H, T>, B>
    where
        H: Trace<B> + Branded<'s>,
        T: Trace<B> + Branded<'s>,
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        // SAFETY: the record is the type's own; `with_tail` returns an
        // initialised object of this scope's heap.
        unsafe { Gc::from_raw(self.with_tail(TypeInfo::of::<B, WithTail<H, T>>(), head, tail)) }
    }

    /// `alloc_with_tail` with the type record `info`: an initialised
    /// `WithTail<H, T>` object, returned as its address.
    ///
    /// # Safety
    ///
    /// As for [`Scope::tail_copy`]: `info` describes objects laid out as
    /// `WithTail<H, T>`.
    unsafe fn with_tail<H, T, I>(&self, info: &'static TypeInfo, head: H, tail: I) -> NonNull<u8>
    where
        H: Trace<B>,
        T: Trace<B>,
        I: IntoIterator<Item = T>,
        I::IntoIter: ExactSizeIterator,
    {
        let mut items = tail.into_iter();
        let len = items.len();
        // SAFETY: the caller's contract on `info`.
        let (p, elems) = unsafe { self.begin_tail::<H, T>(info, head, len) };
        // The length word is raised as each element is written: if the
        // iterator panics, the object (garbage from then on) drops exactly
        // the initialised prefix.
        // SAFETY: `begin_tail` made room for `len` elements at `elems`.
        unsafe {
            for i in 0..len {
                let item = items.next().unwrap_or_else(|| {
                    panic!("alloc_with_tail: iterator yielded {i} items, promised {len}")
                });
                elems.add(i).write(item);
                WithTail::<H, T>::set_len(p, i + 1);
            }
        }
        assert!(
            items.next().is_none(),
            "alloc_with_tail: iterator yielded more than the {len} items it promised"
        );
        p
    }

    /// The allocation path shared by every `alloc_*`: a slot for an object
    /// of type `info`, uninitialised. The fast path is the bump of the
    /// cache's current run, inlined; past it, [`Scope::alloc_past_bump`].
    #[inline(always)]
    fn alloc_raw(
        &self,
        info: &'static TypeInfo,
        req: SizeReq,
    ) -> Result<NonNull<u8>, AllocErrorKind> {
        match self.bump_raw(info, req) {
            Some(p) => Ok(p),
            None => self.alloc_past_bump(info, req),
        }
    }

    /// [`Scope::alloc_raw`] after the bump of the current run failed: the
    /// next run of the cached span, else the slow path.
    #[inline(always)]
    fn alloc_past_bump(
        &self,
        info: &'static TypeInfo,
        req: SizeReq,
    ) -> Result<NonNull<u8>, AllocErrorKind> {
        if let SizeReq::Small(class) = req
            // SAFETY: the reference does not outlive this statement.
            && let Some(p) = unsafe { self.cache() }.alloc_next_run(self.tag(info), class)
        {
            return Ok(p);
        }
        self.alloc_slow(info, req)
    }

    #[cold]
    #[inline(never)]
    fn alloc_slow(
        &self,
        info: &'static TypeInfo,
        req: SizeReq,
    ) -> Result<NonNull<u8>, AllocErrorKind> {
        let m = self.m();
        let heap = &m.heap;
        heap.before_span_alloc(req.bytes())?;
        // Drop glue other threads' sweeps left to this one.
        heap.hooks.drain(&m.owner);
        if info.bound {
            info.check_tag();
            m.owner.note_allocated();
        }
        let tag = self.tag(info);
        // SAFETY: the reference lives for this call only; refill may run
        // destructors, which cannot reach this scope.
        let cache = unsafe { self.cache() };
        let r = match req {
            SizeReq::Small(class) => cache.alloc_slow(tag, class),
            SizeReq::Large { bytes } => cache
                .alloc_large(bytes, tag, info.noscan())
                .map(|(p, _needzero)| p),
        };
        heap.after_span_alloc();
        let p = r.map_err(AllocErrorKind::from)?;
        // SAFETY: as above; no other reference to the cache is live.
        if unsafe { self.cache() }.took_sample() {
            self.record_sample(p, req.bytes());
        }
        Ok(p)
    }

    /// Records a sampled allocation for the heap profile: its stack in a
    /// profile bucket, and a profile record on the object (to count its
    /// free).
    #[cold]
    #[inline(never)]
    fn record_sample(&self, addr: NonNull<u8>, size: usize) {
        let m = self.m();
        let heap = &m.heap;
        let Some(profiler) = &heap.hooks.profiler else {
            return;
        };
        // Frames above the profiler that are spangc's own: this function
        // and `alloc_slow` (the public allocation functions above them are
        // inlined into the caller in optimised builds).
        let bucket = profiler.record_alloc(size, 2);
        let (span, off) = heap.locate(addr);
        let added = heap.hooks.specials.add(
            heap.mheap.page_heap(),
            span,
            off,
            SpecialData::Profile(bucket, size),
        );
        debug_assert!(added.is_ok(), "a fresh object has no profile record");
    }

    /// Roots `gc`: the object stays alive until the returned [`Root`] is
    /// dropped, across safepoints and outside the scope. Rooting takes a
    /// lock; an interpreter roots its state object once and keeps
    /// everything else reachable from it.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// let root = m.enter(|cx| {
    ///     let name = cx.alloc_str("config.toml");
    ///     let root = cx.root(name);
    ///     cx.collect();
    ///     assert_eq!(&*root.get(cx), "config.toml");
    ///     root
    /// });
    /// heap.collect(); // outside the scope too
    /// assert_eq!(m.enter(|cx| root.get(cx).len()), 11);
    /// ```
    pub fn root<'s, T: ?Sized + Branded<'s>>(&'s self, gc: Gc<'s, T, B>) -> Root<T::Erased, B> {
        Root::new(&self.m().heap, Gc::as_raw(gc))
    }

    /// Re-brands a root's object with this scope (same as [`Root::get`]).
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let root = cx.root(cx.alloc_str("x"));
    ///     assert!(Gc::ptr_eq(cx.get(&root), root.get(cx)));
    /// });
    /// ```
    #[inline]
    pub fn get<'s, R: ?Sized + Rootable>(&'s self, root: &Root<R, B>) -> Gc<'s, R::At<'s>, B> {
        root.get(self)
    }

    /// A safepoint: a collection may run here. Every `Gc` not reachable
    /// from a root is dead afterwards (the borrow checker enforces it).
    ///
    /// Costs one load when no collection is wanted. Long-running mutators
    /// should reach one regularly (an interpreter: every loop iteration or
    /// call), or other threads' collections wait for them.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let total = cx.root(cx.alloc(spangc::GcCell::new(0u64)));
    ///     for i in 0..1000u64 {
    ///         let tmp = cx.alloc([i; 1024]); // 8 KiB of garbage per iteration
    ///         total.get(cx).set(cx, total.get(cx).get() + tmp[1023]);
    ///         cx.safepoint();
    ///         // `tmp` cannot be used here: the safepoint ended its borrow.
    ///     }
    ///     assert_eq!(total.get(cx).get(), 499_500);
    /// });
    /// assert!(heap.gc_count() >= 1, "8 MiB of garbage crossed the 4 MiB goal");
    /// ```
    #[inline]
    pub fn safepoint(&mut self) {
        if self.safepoint_requested() {
            self.safepoint_slow();
        }
    }

    /// Whether the next [`Scope::safepoint`] would do anything (a
    /// collection is wanted or in progress): one load. A loop that holds
    /// borrows of heap objects between safepoints (an interpreter holding
    /// its value stack's `RefMut`) polls this and steps out to drop them
    /// and call `safepoint` when it says so. With
    /// [`gc_stress`](crate::ConfigBuilder::gc_stress) on it is always true,
    /// so such a loop should execute at least one step between polls.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// use spangc::{Config, GcRefCell, Trace};
    ///
    /// #[derive(Trace)]
    /// # #[gc(brand = Doc)]
    /// struct Vm<'gc> {
    ///     stack: GcRefCell<Vec<Gc<'gc, [u64]>>>,
    /// }
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let root = cx.root(cx.alloc(Vm { stack: GcRefCell::new(Vec::new()) }));
    ///     let mut executed = 0;
    ///     while executed < 5000 {
    ///         let vm = root.get(cx);
    ///         let mut stack = vm.stack.borrow_mut(cx); // held across instructions
    ///         loop {
    ///             // "Execute an instruction": push a fresh array, pop old ones.
    ///             stack.push(cx.alloc_slice_copy(&[executed; 128]));
    ///             if stack.len() > 100 {
    ///                 stack.remove(0);
    ///             }
    ///             executed += 1;
    ///             // Poll after the instruction, not before: with `gc_stress`
    ///             // a collection is always requested, and the loop must
    ///             // still make progress.
    ///             if executed == 5000 || cx.safepoint_requested() {
    ///                 break;
    ///             }
    ///         }
    ///         drop(stack); // step out of the borrows...
    ///         cx.safepoint(); // ...and let the collection run
    ///     }
    ///     let vm = root.get(cx);
    ///     assert_eq!(vm.stack.borrow().last().unwrap()[0], 4999);
    /// });
    /// assert!(heap.gc_count() >= 1);
    /// ```
    #[inline(always)]
    pub fn safepoint_requested(&self) -> bool {
        // SAFETY: the flag lives in the heap, which the mutator (and so the
        // scope's whole life) keeps alive.
        unsafe { self.poll.as_ref() }.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the heap runs in verify mode (for the write barrier).
    #[inline(always)]
    pub(crate) fn verify(&self) -> bool {
        self.verify
    }

    #[cold]
    fn safepoint_slow(&mut self) {
        let m = self.m();
        if m.heap.world.park_if_collecting(&m.id) {
            self.after_collection();
        } else if m.heap.world.collection_wanted() || m.heap.world.stress() {
            self.run_collection(Reason::Trigger);
        }
    }

    /// Runs a full collection now and finishes sweeping, so that
    /// [`Heap::stats`] reflects it when this returns. Waits for other
    /// mutators of the heap to reach a safepoint.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let kept = cx.root(cx.alloc(1u64));
    ///     for i in 0..999u64 {
    ///         cx.alloc(i);
    ///     }
    ///     let freed = cx.heap().stats().objects_freed_total;
    ///     cx.collect();
    ///     let s = cx.heap().stats();
    ///     assert_eq!(s.objects_marked, 1);
    ///     assert_eq!(s.objects_freed_total - freed, 999);
    ///     assert_eq!(*kept.get(cx), 1);
    /// });
    /// ```
    pub fn collect(&mut self) {
        self.run_collection(Reason::Explicit);
        let m = self.m();
        m.heap.mheap.finish_sweep();
        // Other sweepers may have deferred drop glue to this thread.
        m.heap.hooks.drain(&m.owner);
    }

    fn run_collection(&mut self, reason: Reason) {
        let m = self.m();
        m.heap.collect_cycle(Some(&m.id), reason);
        self.after_collection();
    }

    /// After a collection this mutator was stopped for: cached spans are
    /// stale (their sweep generation passed), so flush them, sweeping what
    /// needs it.
    ///
    /// And after a collection, runs the drop glue other threads' sweeps
    /// deferred to this one so far; later deferrals wait for the slow path
    /// or the next collection. The cache says whether a collection ran
    /// (`MCache::prepare_for_sweep`), with the compare it makes anyway:
    /// checking the owner's queue at every scope entry cost churn, which
    /// enters a scope per operation, 8% (0.366 -> 0.396 s, nine
    /// interleaved runs), and a flag of the cache's own 0.3 ns per empty
    /// scope (`cargo bench -p spangc --bench scope`: 1.65 -> 1.98 ns;
    /// now 1.40 against 1.63 before owners, two interleaved runs each).
    fn after_collection(&mut self) {
        // SAFETY: `&mut self`: no allocation is in progress.
        if unsafe { self.cache() }.prepare_for_sweep() {
            let m = self.m();
            m.heap.hooks.drain(&m.owner);
        }
    }

    /// Runs `f`, which must not touch the heap, while letting collections
    /// proceed without this mutator: for blocking I/O, locks, joins or
    /// long native computations inside a scope. No `Gc` can be used in `f`
    /// (it would need `&Scope`, which `&mut self` excludes).
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let kept = cx.root(cx.alloc_str("kept"));
    ///     let other = cx.heap();
    ///     // Wait for a thread that collects. Without `blocking` this would
    ///     // deadlock: its collection waits for this mutator to stop.
    ///     let gcs = cx.blocking(|| {
    ///         std::thread::spawn(move || {
    ///             other.collect();
    ///             other.gc_count()
    ///         })
    ///         .join()
    ///         .unwrap()
    ///     });
    ///     assert!(gcs >= 1);
    ///     assert_eq!(&*kept.get(cx), "kept");
    /// });
    /// ```
    pub fn blocking<R>(&mut self, f: impl FnOnce() -> R) -> R {
        struct Unblock<'a, B: Brand>(&'a mut Scope<B>);
        impl<B: Brand> Drop for Unblock<'_, B> {
            fn drop(&mut self) {
                let m = self.0.m();
                m.heap.world.end_blocking(&m.id);
                // Flush the cache if a collection made it stale meanwhile
                // (and its collector did not).
                self.0.after_collection();
            }
        }
        let m = self.m();
        m.heap.world.begin_blocking(&m.id);
        let _unblock = Unblock(self);
        f()
    }

    /// Runs `f` when `gc`'s object becomes unreachable, on the heap's
    /// finalizer thread. The object is kept alive, with everything it
    /// reaches, until `f` has run; `f` gets it back and may make it
    /// reachable again (then it lives on, without a finalizer). An object
    /// with a finalizer takes at least two collections to free.
    ///
    /// The object's type must be `Send + Sync` (it is handed to another
    /// thread); for other types use [`Scope::set_local_finalizer`]. Fails if
    /// the object has a finalizer already. Finalizers run in no particular
    /// order; see `docs/specials.md` for ordering and cycles. As with
    /// [`Scope::add_cleanup`], capture a [`WeakHeap`](crate::WeakHeap)
    /// rather than a `Heap`.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{Config, Trace};
    /// use std::sync::{Arc, Mutex};
    ///
    /// #[derive(Trace)]
    /// # #[gc(brand = Doc)]
    /// struct File {
    ///     fd: u32,
    /// }
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let closed = Arc::new(Mutex::new(Vec::new()));
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let file = cx.alloc(File { fd: 7 });
    ///     let closed = closed.clone();
    ///     cx.set_finalizer(file, move |_cx, file| closed.lock().unwrap().push(file.fd))
    ///         .unwrap();
    ///     cx.collect(); // `file` is unreachable: its finalizer is queued
    /// });
    /// heap.wait_finalizers();
    /// assert_eq!(*closed.lock().unwrap(), [7]);
    /// ```
    pub fn set_finalizer<'s, T, F>(&'s self, gc: Gc<'s, T, B>, f: F) -> Result<(), FinalizerError>
    where
        T: ?Sized + Branded<'s>,
        T::Erased: Send + Sync,
        F: for<'x> FnOnce(&'x Scope<B>, Gc<'x, <T::Erased as Rootable>::At<'x>, B>)
            + Send
            + 'static,
    {
        let heap = &self.m().heap;
        Hooks::ensure_thread(&heap.hooks, heap.this.clone());
        let run: FinalizerFn<B> = Box::new(move |cx: &Scope<B>, addr| {
            // SAFETY: the finalizer job rooted the object until now, it is
            // of the type the finalizer was set for (re-branded with this
            // scope), and `cx` is a scope of its heap.
            f(cx, unsafe { Gc::from_raw(addr) })
        });
        self.attach_finalizer(Gc::as_raw(gc), Finalizer::Thread(run))
    }

    /// As [`Scope::set_finalizer`], for objects of any type and closures
    /// that need not be `Send`: `f` runs on this mutator's thread, in
    /// [`Scope::run_finalizers`]. If the mutator is dropped first, `f` is
    /// dropped without running.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{Config, GcCell};
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// let seen = Rc::new(Cell::new(0)); // not `Send`: fine for a local finalizer
    /// m.enter(|cx| {
    ///     let counter = cx.alloc(GcCell::new(41u32)); // `!Sync`
    ///     let seen = seen.clone();
    ///     cx.set_local_finalizer(counter, move |_cx, c| seen.set(c.get() + 1))
    ///         .unwrap();
    ///     cx.collect();
    ///     assert_eq!(cx.run_finalizers(), 1); // runs here, on this thread
    /// });
    /// assert_eq!(seen.get(), 42);
    /// ```
    pub fn set_local_finalizer<'s, T, F>(
        &'s self,
        gc: Gc<'s, T, B>,
        f: F,
    ) -> Result<(), FinalizerError>
    where
        T: ?Sized + Branded<'s>,
        F: for<'x> FnOnce(&'x Scope<B>, Gc<'x, <T::Erased as Rootable>::At<'x>, B>) + 'static,
    {
        let run: LocalRun<B> = Box::new(move |cx: &Scope<B>, addr| {
            // SAFETY: as in `set_finalizer`.
            f(cx, unsafe { Gc::from_raw(addr) })
        });
        let id = self.m().id.index();
        self.attach_finalizer(Gc::as_raw(gc), Finalizer::Local(ThreadBound::new(run), id))
    }

    fn attach_finalizer(&self, addr: NonNull<u8>, fin: Finalizer<B>) -> Result<(), FinalizerError> {
        let heap = &self.m().heap;
        let (span, off) = heap.locate(addr);
        heap.hooks
            .specials
            .add(
                heap.mheap.page_heap(),
                span,
                off,
                SpecialData::Finalizer(fin),
            )
            .map_err(|_| FinalizerError::AlreadySet)
    }

    /// Removes the finalizer of `gc`'s object; returns whether it had one.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{Config, FinalizerError};
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let obj = cx.alloc(5u64);
    ///     cx.set_local_finalizer(obj, |_, _| unreachable!("cleared")).unwrap();
    ///     assert_eq!(cx.set_local_finalizer(obj, |_, _| ()), Err(FinalizerError::AlreadySet));
    ///     assert!(cx.clear_finalizer(obj));
    ///     assert!(!cx.clear_finalizer(obj));
    ///     cx.collect();
    ///     assert_eq!(cx.run_finalizers(), 0);
    /// });
    /// ```
    pub fn clear_finalizer<'s, T: ?Sized>(&'s self, gc: Gc<'s, T, B>) -> bool {
        let heap = &self.m().heap;
        let (span, off) = heap.locate(Gc::as_raw(gc));
        heap.hooks
            .specials
            .remove(heap.mheap.page_heap(), span, off, Kind::Finalizer)
            .is_some()
    }

    /// Runs `f` on the heap's finalizer thread after `gc`'s object becomes
    /// unreachable, without keeping it alive (as Go's `AddCleanup`). `f`
    /// cannot see the object (it is `'static`). An object may have several
    /// cleanups; each runs once. An object with only cleanups is freed by
    /// the collection that finds it dead. A cleanup that needs the heap
    /// should capture a [`WeakHeap`](crate::WeakHeap)
    /// ([`Heap::downgrade`](crate::Heap::downgrade)): a captured `Heap`
    /// would keep the heap alive for ever.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    /// use std::sync::mpsc;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let (tx, rx) = mpsc::channel();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let texture = cx.alloc(17u32); // stands for an object owning a GPU texture
    ///     let id = *texture;
    ///     cx.add_cleanup(texture, move || tx.send(id).unwrap());
    ///     cx.collect();
    /// });
    /// heap.wait_finalizers();
    /// assert_eq!(rx.try_recv(), Ok(17));
    /// ```
    pub fn add_cleanup<'s, T: ?Sized>(
        &'s self,
        gc: Gc<'s, T, B>,
        f: impl FnOnce() + Send + 'static,
    ) {
        let heap = &self.m().heap;
        Hooks::ensure_thread(&heap.hooks, heap.this.clone());
        let (span, off) = heap.locate(Gc::as_raw(gc));
        let added = heap.hooks.specials.add(
            heap.mheap.page_heap(),
            span,
            off,
            SpecialData::Cleanup(Box::new(f)),
        );
        debug_assert!(added.is_ok(), "cleanups are not unique records");
    }

    /// Runs the finalizers set with [`Scope::set_local_finalizer`] on this
    /// mutator whose objects were found unreachable; returns how many ran.
    /// Call it regularly (an interpreter: at safepoints).
    /// [`Scope::set_local_finalizer`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    /// use std::cell::Cell;
    /// use std::rc::Rc;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// let ran = Rc::new(Cell::new(0));
    /// m.enter(|cx| {
    ///     for i in 0..3u32 {
    ///         let ran = ran.clone();
    ///         cx.set_local_finalizer(cx.alloc(i), move |_cx, _obj| ran.set(ran.get() + 1))
    ///             .unwrap();
    ///     }
    ///     assert_eq!(cx.run_finalizers(), 0); // the objects were not collected yet
    ///     cx.collect();
    ///     assert_eq!(cx.run_finalizers(), 3);
    /// });
    /// assert_eq!(ran.get(), 3);
    /// ```
    pub fn run_finalizers(&mut self) -> usize {
        let m = self.m();
        let due = m.heap.hooks.take_local(m.id.index());
        let n = due.len();
        for p in due {
            (p.run.take())(self, p.addr);
        }
        m.heap
            .hooks
            .finalizers_run
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        n
    }

    /// Reports `bytes` the embedder now holds outside the heap on behalf
    /// of heap objects (buffers, native handles). The pacer counts them as
    /// live heap, so a program whose objects own much external memory
    /// collects often enough to free it. Report the release with
    /// [`Scope::sub_external`]. [`Heap::add_external`] does the same from
    /// outside a scope.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{Config, Trace};
    ///
    /// #[derive(Trace)]
    /// # #[gc(brand = Doc)]
    /// struct Image {
    ///     #[gc(skip)]
    ///     pixels: Vec<u8>, // malloc'ed: the heap does not see these bytes
    /// }
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let image = cx.alloc(Image { pixels: vec![0; 1 << 20] });
    ///     cx.add_external(image.pixels.capacity());
    ///     assert_eq!(cx.heap().stats().external_bytes, 1 << 20);
    ///     // ... when the embedder frees the pixels:
    ///     cx.sub_external(1 << 20);
    ///     assert_eq!(cx.heap().stats().external_bytes, 0);
    /// });
    /// ```
    pub fn add_external(&self, bytes: usize) {
        self.m().heap.add_external(bytes);
    }

    /// Reports that `bytes` of external memory were released.
    /// [`Scope::add_external`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{Config, Trace};
    ///
    /// #[derive(Trace)]
    /// # #[gc(brand = Doc)]
    /// struct Buffer {
    ///     #[gc(skip)]
    ///     bytes: Vec<u8>,
    /// }
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let buf = cx.alloc(Buffer { bytes: vec![0; 1 << 20] });
    ///     cx.add_external(buf.bytes.len());
    ///     // Report the release when the buffer's object dies.
    ///     cx.set_local_finalizer(buf, |cx, b| cx.sub_external(b.bytes.len())).unwrap();
    ///     assert_eq!(cx.heap().stats().external_bytes, 1 << 20);
    ///     cx.collect();
    ///     cx.run_finalizers();
    ///     assert_eq!(cx.heap().stats().external_bytes, 0);
    /// });
    /// ```
    pub fn sub_external(&self, bytes: usize) {
        self.m().heap.sub_external(bytes);
    }
}

/// Why a finalizer could not be set.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// use spangc::{Config, FinalizerError};
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let obj = cx.alloc(1u8);
///     cx.set_finalizer(obj, |_, _| ()).unwrap();
///     let again = cx.set_finalizer(obj, |_, _| ());
///     assert_eq!(again, Err(FinalizerError::AlreadySet));
///     assert_eq!(again.unwrap_err().to_string(), "the object already has a finalizer");
/// });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalizerError {
    /// The object already has a finalizer (clear it first).
    AlreadySet,
}

impl std::fmt::Display for FinalizerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the object already has a finalizer")
    }
}

impl std::error::Error for FinalizerError {}

#[cold]
#[inline(never)]
#[track_caller]
fn alloc_failed(kind: AllocErrorKind) -> ! {
    panic!("spangc: allocation failed: {kind}")
}
