//! The heap handle and one collection cycle.
//!
//! [`Heap`] is a cheap, cloneable, `Send + Sync` handle on a heap; each
//! thread that allocates makes a [`Mutator`] from it. The heap lives until
//! the last handle, mutator and root are gone; then every remaining object
//! is dropped and all memory returns to the OS.
//!
//! # A collection cycle ([`HeapInner::collect_cycle`])
//!
//! ```text
//!  mutators running ──────────────────────┐               ┌──────── mutators running
//!  1 become the collector                  │ 3 stop world  │ 7 restart; parked mutators
//!  2 finish sweeping (concurrent)          │ 4 mark        │   flush their stale caches
//!                                          │ 5 sweepgen+=2 │ 8 sweeping proceeds
//!                                          │ 6 pacer       │   concurrently
//!                                          └── pause ──────┘
//! ```
//!
//! The pause (3-7) does no sweeping: the sweep of the previous cycle is
//! finished in step 2 while mutators still run, and the new cycle's sweep
//! starts after the restart. Each cycle is a `tracing` span `gc` with the
//! figures the brief asks for.

use crate::alloc::AllocErrorKind;
use crate::brand::{Brand, Global};
use crate::config::{Config, ConfigError, GcPercent, Resolved};
use crate::layout::TypeInfo;
use crate::mark;
use crate::mutator::Mutator;
use crate::pacer::{Goals, MarkReport, Pacer};
use crate::root::RootTable;
use crate::special::{self, Hooks, IN_DESTRUCTOR};
use crate::stats::{STATS_VERSION, Stats, TypeStats};
use crate::verify;
use crate::world::{MutatorId, World};
use spangc_arena::span::Span;
use spangc_specials::profile::{BucketStats, Profiler};
use spangc_sweep::{Mheap, MheapConfig};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

/// Why a heap could not be created.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// use spangc::{Config, HeapError};
///
/// // A `ConfigError` converts, so `?` works on both steps.
/// fn start(threads: usize) -> Result<Heap, HeapError> {
///     let config = Config::builder().mark_threads(threads).build()?;
///     Heap::new(config)
/// }
///
/// assert!(matches!(start(0), Err(HeapError::Config(e)) if e.field == "mark_threads"));
/// let heap = start(1).unwrap();
/// match start(1) {
///     Err(e @ HeapError::BrandInUse(_)) => {
///         assert!(e.to_string().contains("is already alive"), "{e}");
///     }
///     other => panic!("expected BrandInUse, got {other:?}"),
/// }
/// # drop(heap);
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum HeapError {
    /// An option (or its `SPANGC_*` variable) is invalid.
    Config(ConfigError),
    /// Another heap of this brand is alive; use another brand
    /// ([`brand!`](crate::brand!)) to have both at once.
    BrandInUse(&'static str),
    /// The OS refused the memory the heap needs to start.
    Os(String),
}

impl fmt::Display for HeapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeapError::Config(e) => e.fmt(f),
            HeapError::BrandInUse(b) => write!(
                f,
                "a heap of brand {b} is already alive; declare another brand with spangc::brand! to use two heaps at once"
            ),
            HeapError::Os(e) => write!(f, "cannot create heap: {e}"),
        }
    }
}

impl std::error::Error for HeapError {}

impl From<ConfigError> for HeapError {
    fn from(e: ConfigError) -> Self {
        HeapError::Config(e)
    }
}

/// Why a collection runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Allocation crossed the trigger (or stress mode).
    Trigger,
    /// `collect()` or `release_memory()`.
    Explicit,
    /// The last mutator of a thread that may exit, before it goes: only if
    /// it waits for no other thread longer than [`EXIT_WAIT`]
    /// (`World::begin_exit_collection`).
    ThreadExit,
}

/// How long a thread whose last mutator is being dropped waits for other
/// threads (a running collection, sweepers) before it gives up on
/// collecting and sweeping for its own objects' sake (see
/// `Mutator::before_exit`). Such waits take microseconds to milliseconds;
/// the bound is for a thread that waits for this one (a destructor that
/// joins it), which would wait forever.
pub(crate) const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// A handle on a garbage-collected heap.
///
/// A `Heap` is cheap to clone (an `Arc`), `Send` and `Sync`. Each thread
/// that allocates makes a [`Mutator`] from it; the heap-wide operations
/// (collection, limits, statistics) are here. The heap lives until the last
/// handle, mutator and [`Root`](crate::Root) are gone; then every remaining
/// object is dropped and all its memory returns to the OS.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// use spangc::Config;
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let worker = {
///     let heap = heap.clone();
///     std::thread::spawn(move || {
///         let mut m = heap.mutator(); // one mutator per thread
///         m.enter(|cx| cx.alloc_slice_from_iter((1..11u32).map(u64::from)).iter().sum::<u64>())
///     })
/// };
/// assert_eq!(worker.join().unwrap(), 55);
/// heap.collect();
/// assert!(heap.stats().gc_count >= 1);
/// ```
pub struct Heap<B: Brand = Global> {
    inner: Arc<HeapInner<B>>,
}

/// A handle to a [`Heap`] that does not keep it alive; see
/// [`Heap::downgrade`]. For closures the heap itself runs (cleanups,
/// finalizers), which would otherwise keep it alive forever.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// use spangc::Config;
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let weak = heap.downgrade();
/// assert_eq!(weak.upgrade().map(|h| h.gc_count()), Some(0));
/// drop(heap);
/// assert!(weak.upgrade().is_none(), "the heap is gone");
/// ```
pub struct WeakHeap<B: Brand = Global> {
    inner: Weak<HeapInner<B>>,
}

impl<B: Brand> WeakHeap<B> {
    /// The heap, if some [`Heap`], [`Mutator`](crate::Mutator) or
    /// [`Root`](crate::Root) still keeps it alive. [`Heap::downgrade`] has
    /// another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let weak = heap.downgrade();
    /// let m = heap.mutator();
    /// drop(heap);
    /// let again = weak.upgrade().expect("the mutator keeps the heap alive");
    /// again.collect();
    /// drop((m, again));
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub fn upgrade(&self) -> Option<Heap<B>> {
        self.inner.upgrade().map(Heap::from_inner)
    }
}

impl<B: Brand> Clone for WeakHeap<B> {
    fn clone(&self) -> Self {
        WeakHeap {
            inner: self.inner.clone(),
        }
    }
}

impl<B: Brand> std::fmt::Debug for WeakHeap<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeakHeap")
            .field("alive", &(self.inner.strong_count() > 0))
            .finish()
    }
}

impl<B: Brand> Clone for Heap<B> {
    fn clone(&self) -> Self {
        Heap {
            inner: self.inner.clone(),
        }
    }
}

impl<B: Brand> fmt::Debug for Heap<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Heap")
            .field("brand", &std::any::type_name::<B>())
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

/// Figures of the current and past cycles (the collector writes them with
/// the world stopped; `stats()` reads them under the same lock).
#[derive(Default)]
struct CycleState {
    pacer: Option<Pacer>,
    last_report: MarkReport,
    gc_count: u64,
    objects_marked: u64,
    /// Objects with pointers the last mark scanned.
    objects_scanned: usize,
    heap_marked: usize,
    pause_last_ns: u64,
    pause_max_ns: u64,
    pause_total_ns: u64,
    mark_last_ns: u64,
    mark_total_ns: u64,
    mark_threads: u32,
    /// Sweep totals when the last cycle's sweep was finished, to report
    /// what each generation's sweep did.
    swept_before: SweepTotals,
}

/// The sweep counters a cycle reports the difference of.
#[derive(Default, Clone, Copy)]
struct SweepTotals {
    pages_swept: u64,
    pages_reclaimed: u64,
    spans_freed: u64,
    objects_freed: u64,
}

impl SweepTotals {
    fn of(s: &spangc_sweep::SweepStats) -> SweepTotals {
        SweepTotals {
            pages_swept: s.pages_swept,
            pages_reclaimed: s.pages_reclaimed,
            spans_freed: s.spans_freed,
            objects_freed: s.objects_freed,
        }
    }
}

pub(crate) struct HeapInner<B: Brand> {
    /// Distinguishes heaps in `Debug` output.
    pub(crate) id: usize,
    pub(crate) config: Resolved,
    pub(crate) mheap: Arc<Mheap>,
    pub(crate) world: World,
    pub(crate) roots: RootTable,
    pub(crate) hooks: Arc<Hooks<B>>,
    /// This heap, weakly: for threads the heap starts (the finalizer
    /// thread), which must not keep it alive.
    pub(crate) this: Weak<HeapInner<B>>,
    cycle: Mutex<CycleState>,
    /// `Goals::trigger`, for the allocation slow path's check.
    trigger: AtomicUsize,
    /// The memory limit in bytes (0: none); changeable at run time.
    memory_limit: AtomicUsize,
    external: AtomicUsize,
    /// Completed collections, readable without the cycle lock.
    gc_count: AtomicU64,
    mark_pool: Option<rayon::ThreadPool>,
    /// At most this many threads mark (1 to `config.mark_threads`);
    /// changeable at run time.
    mark_threads: AtomicUsize,
    /// The mark workers' grey stacks, kept between collections.
    grey_stacks: mark::GreyStacks,
    _brand: PhantomData<fn() -> B>,
}

static NEXT_HEAP_ID: AtomicUsize = AtomicUsize::new(1);

/// Below this many objects with pointers scanned by the previous
/// collection, marking runs on the collecting thread only. Two workers pay
/// atomic read-modify-writes on the mark bits (one per mark word they
/// touch, see `mark.rs`) instead of plain stores, and the wake-up of the
/// mark threads, and only the scanning of objects with
/// pointers can be shared: noscan objects are marked by whoever scans their
/// parent. `spangc-bench compare churn --systems spangc-1,spangc-2` (100,000
/// noscan records held by one array: 2 objects scanned per cycle, 500
/// cycles) took 0.99 s with two mark threads against 0.89 s with one when
/// every collection used both; the Lox interpreter's binary_trees (87,000
/// objects scanned per cycle) pauses half as long with two as with one
/// (`cargo bench -p lox --bench gc_overhead`: 65 against 113 ms in all).
/// 16,384 objects is about 0.1 ms of scanning, a few times the wake-up.
pub(crate) const PARALLEL_SCAN_MIN: usize = 16 << 10;

impl<B: Brand> Heap<B> {
    /// Creates a heap. Options not set in `config` come from `SPANGC_*`
    /// environment variables or their defaults (see [`Config`]).
    ///
    /// Fails if an option (or its variable) is invalid, if another heap of
    /// brand `B` is alive ([`HeapError::BrandInUse`]), or if the OS refuses
    /// memory. The heap starts its background sweeper and scavenger threads
    /// (unless configured off) and `mark_threads - 1` mark threads.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let config = Config::builder().mark_threads(2).build()?;
    /// let heap = Heap::new(config)?;
    /// assert_eq!(heap.config().mark_threads, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(config: Config) -> Result<Heap<B>, HeapError> {
        let config = config.resolve()?;
        if B::live_heap().swap(true, std::sync::atomic::Ordering::AcqRel) {
            return Err(HeapError::BrandInUse(std::any::type_name::<B>()));
        }
        // From here on the brand flag is ours: clear it on every error path.
        struct Flag<B: Brand>(PhantomData<B>);
        impl<B: Brand> Drop for Flag<B> {
            fn drop(&mut self) {
                B::live_heap().store(false, std::sync::atomic::Ordering::Release);
            }
        }
        let flag = Flag::<B>(PhantomData);
        let hooks = Arc::new(Hooks::<B>::new(config.profile_rate));
        let mheap = Mheap::new(
            MheapConfig {
                background_sweep: config.background_sweep,
                background_scavenge: config.background_scavenge,
                poison: config.verify,
            },
            hooks.clone(),
        )
        .map_err(|e| HeapError::Os(e.to_string()))?;
        let mark_pool = if config.mark_threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(config.mark_threads - 1)
                    .thread_name(|i| format!("spangc-mark-{i}"))
                    .build()
                    .map_err(|e| HeapError::Os(e.to_string()))?,
            )
        } else {
            None
        };
        let pacer = Pacer::new(config.gc_percent, config.memory_limit);
        let goals = pacer.goals();
        mheap.set_scavenge_goal(goals.scavenge_goal);
        let inner = Arc::new_cyclic(|this| HeapInner {
            this: this.clone(),
            id: NEXT_HEAP_ID.fetch_add(1, Relaxed),
            config,
            mheap,
            world: World::new(config.gc_stress),
            roots: RootTable::default(),
            hooks,
            cycle: Mutex::new(CycleState {
                pacer: Some(pacer),
                ..CycleState::default()
            }),
            trigger: AtomicUsize::new(goals.trigger),
            memory_limit: AtomicUsize::new(config.memory_limit.unwrap_or(0)),
            external: AtomicUsize::new(0),
            gc_count: AtomicU64::new(0),
            mark_pool,
            mark_threads: AtomicUsize::new(config.mark_threads),
            grey_stacks: mark::GreyStacks::new(),
            _brand: PhantomData,
        });
        std::mem::forget(flag); // HeapInner::drop clears it now.
        Ok(Heap { inner })
    }

    pub(crate) fn from_inner(inner: Arc<HeapInner<B>>) -> Heap<B> {
        Heap { inner }
    }

    /// A handle that does not keep the heap alive. Finalizers and cleanups
    /// that need the heap (say, to call [`Heap::sub_external`]) should
    /// capture one of these: a `Heap` captured there is a cycle (the heap
    /// owns the closure, the closure owns the heap), and a heap in a cycle
    /// is never torn down.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let buffer = cx.alloc(0u64); // stands for an object owning 1 MiB outside the heap
    ///     cx.add_external(1 << 20);
    ///     let weak = cx.heap().downgrade();
    ///     cx.add_cleanup(buffer, move || {
    ///         if let Some(heap) = weak.upgrade() {
    ///             heap.sub_external(1 << 20);
    ///         }
    ///     });
    /// });
    /// heap.collect();
    /// heap.wait_finalizers();
    /// assert_eq!(heap.stats().external_bytes, 0);
    /// drop(m);
    /// drop(heap); // torn down: the cleanup held no strong handle
    /// assert!(Heap::new(Config::default()).is_ok()); // so the brand is free again
    /// ```
    pub fn downgrade(&self) -> WeakHeap<B> {
        WeakHeap {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// A mutator for the calling thread. A mutator is `!Send`: each thread
    /// that allocates makes its own, and keeps it for as long as it uses the
    /// heap (it holds the thread's allocation cache).
    ///
    /// Panics if 2047 other threads hold mutators of the heap (or own
    /// objects in it that are still allocated): each thread is an owner of
    /// the heap while it does (see docs/api.md, "Destructors and
    /// threads").
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let lengths: Vec<usize> = std::thread::scope(|s| {
    ///     let threads: Vec<_> = ["one", "three"]
    ///         .into_iter()
    ///         .map(|word| {
    ///             let heap = &heap;
    ///             s.spawn(move || heap.mutator().enter(|cx| cx.alloc_str(word).len()))
    ///         })
    ///         .collect();
    ///     threads.into_iter().map(|t| t.join().unwrap()).collect()
    /// });
    /// assert_eq!(lengths, [3, 5]);
    /// ```
    pub fn mutator(&self) -> Mutator<B> {
        Mutator::new(self.inner.clone())
    }

    /// Runs a full collection and finishes sweeping; returns when the stats
    /// reflect it. Call from a thread that is not inside a scope of this
    /// heap (inside one, use [`Scope::collect`](crate::Scope::collect)).
    ///
    /// Panics if called from inside a scope of this heap (except inside
    /// [`Scope::blocking`](crate::Scope::blocking)) or from a destructor
    /// the sweeper or the collector is running (either would deadlock).
    ///
    /// The sweep includes the spans that idle mutators (outside their
    /// scope, or inside [`Scope::blocking`](crate::Scope::blocking)) had
    /// cached for allocation, so their garbage's destructors have run and
    /// its cleanups and finalizers are queued when this returns. A mutator
    /// that was inside a scope (stopped at a safepoint) gives its cached
    /// spans back when it resumes, and they are swept then.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// let kept = m.enter(|cx| {
    ///     for i in 0..1000u64 {
    ///         cx.alloc(i); // garbage
    ///     }
    ///     cx.root(cx.alloc_str("kept"))
    /// });
    /// let before = heap.gc_count();
    /// heap.collect(); // from outside any scope
    /// assert_eq!(heap.gc_count(), before + 1);
    /// assert_eq!(heap.stats().objects_marked, 1); // only the rooted string
    /// m.enter(|cx| assert_eq!(&*kept.get(cx), "kept"));
    /// ```
    pub fn collect(&self) {
        self.inner.check_may_wait("collect");
        self.inner.collect_cycle(None, Reason::Explicit);
        self.inner.mheap.finish_sweep();
        // Drop glue other threads' sweeps left to this one, if it owns any.
        if let Some(owner) = self.inner.hooks.owners.current() {
            self.inner.hooks.drain(&owner);
        }
    }

    /// Collects, then returns every free page to the OS, and frees the
    /// grey stacks marking keeps between collections. For a program that
    /// has dropped a large data set and wants its memory back now, rather
    /// than when the background scavenger gets to it.
    ///
    /// Panics where [`Heap::collect`] does.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     for _ in 0..100 {
    ///         cx.alloc_slice_copy(&[0u8; 100_000]); // 10 MB of garbage
    ///     }
    /// });
    /// drop(m);
    /// heap.release_memory();
    /// let s = heap.stats();
    /// assert!(s.heap_released_bytes >= 8 << 20, "{s}");
    /// assert!(s.heap_in_use_bytes < 1 << 20, "{s}");
    /// ```
    pub fn release_memory(&self) {
        self.inner.mheap.freeing_empty_spans(|| self.collect());
        // Spans kept by a sweep that ran outside the call (a collection
        // this one joined) go back too.
        self.inner.mheap.free_kept_empty_spans();
        self.inner.grey_stacks.release();
        self.inner.mheap.scavenge_all();
    }

    /// Changes the memory limit (see [`ConfigBuilder::memory_limit`](crate::ConfigBuilder::memory_limit)).
    /// Takes effect at once: the heap goal is recomputed from the last
    /// collection's figures. `None` removes the limit; a limit under 4 MiB
    /// is an error. [`Heap::config`] keeps showing the value the heap was
    /// created with.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let config = Config::builder().gc_percent(None).memory_limit(None).build().unwrap();
    /// let heap = Heap::new(config).unwrap();
    /// assert_eq!(heap.stats().heap_goal_bytes, usize::MAX); // never collects by itself
    /// heap.set_memory_limit(Some(64 << 20)).unwrap();
    /// assert!(heap.stats().heap_goal_bytes <= 64 << 20);
    /// assert_eq!(heap.set_memory_limit(Some(1024)).unwrap_err().field, "memory_limit");
    /// heap.set_memory_limit(None).unwrap();
    /// assert_eq!(heap.stats().heap_goal_bytes, usize::MAX);
    /// ```
    pub fn set_memory_limit(&self, bytes: Option<usize>) -> Result<(), ConfigError> {
        if let Some(b) = bytes
            && b < crate::config::MIN_MEMORY_LIMIT
        {
            return Err(ConfigError {
                field: "memory_limit",
                env_var: None,
                value: b.to_string(),
                expected: "a byte count of at least 4 MiB",
            });
        }
        self.inner.memory_limit.store(bytes.unwrap_or(0), Relaxed);
        let mut c = self.inner.lock_cycle();
        let last = c.last_report;
        let pacer = c.pacer.as_mut().expect("pacer");
        pacer.set_memory_limit(bytes, &last);
        let goals = pacer.goals();
        drop(c);
        self.inner.apply_goals(goals);
        Ok(())
    }

    /// Changes `gc_percent` (`None`: automatic collection off; see
    /// [`ConfigBuilder::gc_percent`](crate::ConfigBuilder::gc_percent)).
    /// Takes effect at once, like [`Heap::set_memory_limit`]; values over
    /// 1000000 are an error.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::builder().memory_limit(None).build().unwrap()).unwrap();
    /// heap.set_gc_percent(Some(400)).unwrap();
    /// let roomy = heap.stats().heap_goal_bytes;
    /// heap.set_gc_percent(Some(50)).unwrap();
    /// assert!(heap.stats().heap_goal_bytes < roomy);
    /// assert!(heap.set_gc_percent(Some(2_000_000)).is_err());
    /// ```
    pub fn set_gc_percent(&self, percent: Option<u32>) -> Result<(), ConfigError> {
        let checked = Config::builder().gc_percent(percent).build()?;
        let gc_percent = checked
            .resolve_with(|_| None)
            .map(|r| r.gc_percent)
            .unwrap_or(GcPercent::Percent(100));
        let mut c = self.inner.lock_cycle();
        let last = c.last_report;
        let pacer = c.pacer.as_mut().expect("pacer");
        pacer.set_gc_percent(gc_percent, &last);
        let goals = pacer.goals();
        drop(c);
        self.inner.apply_goals(goals);
        Ok(())
    }

    /// Changes how many threads mark, from 1 to the heap's configured
    /// `mark_threads` (its mark threads are started by [`Heap::new`], so
    /// this can use fewer, not more). Takes effect at the next collection;
    /// a collection that has little to scan still marks on one thread
    /// ([`Stats::mark_threads`](crate::Stats::mark_threads) tells how many
    /// did). Out of range is an error naming `mark_threads`.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::builder().mark_threads(2).build().unwrap()).unwrap();
    /// heap.set_mark_threads(1).unwrap();
    /// heap.mutator().enter(|cx| cx.collect());
    /// assert_eq!(heap.stats().mark_threads, 1);
    /// let e = heap.set_mark_threads(3).unwrap_err();
    /// assert_eq!((e.field, e.value.as_str()), ("mark_threads", "3"));
    /// ```
    pub fn set_mark_threads(&self, threads: usize) -> Result<(), ConfigError> {
        if threads == 0 || threads > self.inner.config.mark_threads {
            return Err(ConfigError {
                field: "mark_threads",
                env_var: None,
                value: threads.to_string(),
                expected: "a whole number from 1 to the mark_threads the heap was created with",
            });
        }
        self.inner.mark_threads.store(threads, Relaxed);
        Ok(())
    }

    /// Reports external memory (see [`Scope::add_external`](crate::Scope::add_external)),
    /// from any thread, inside a scope or not.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.add_external(3 << 20); // say, a texture owned by a heap object
    /// assert_eq!(heap.stats().external_bytes, 3 << 20);
    /// heap.sub_external(3 << 20); // the texture was freed
    /// assert_eq!(heap.stats().external_bytes, 0);
    /// ```
    pub fn add_external(&self, bytes: usize) {
        self.inner.add_external(bytes);
    }

    /// Reports released external memory (see [`Heap::add_external`]).
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.add_external(10 << 20); // two native buffers: 4 MiB and 6 MiB
    /// heap.sub_external(4 << 20); // the first was freed
    /// assert_eq!(heap.stats().external_bytes, 6 << 20);
    /// ```
    pub fn sub_external(&self, bytes: usize) {
        self.inner.sub_external(bytes);
    }

    /// The options the heap was created with, after resolving builder,
    /// environment and defaults.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{Config, GcPercent};
    ///
    /// let heap = Heap::new(Config::builder().gc_percent(Some(150)).build().unwrap()).unwrap();
    /// let r = heap.config();
    /// assert_eq!(r.gc_percent, GcPercent::Percent(150));
    /// assert!(r.mark_threads >= 1); // from SPANGC_MARK_THREADS or the default
    /// ```
    pub fn config(&self) -> Resolved {
        self.inner.config
    }

    /// Completed collections (one load; [`Heap::stats`] has the rest).
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let before = heap.gc_count();
    /// heap.collect();
    /// heap.collect();
    /// assert_eq!(heap.gc_count(), before + 2);
    /// ```
    pub fn gc_count(&self) -> u64 {
        self.inner.gc_count.load(Relaxed)
    }

    /// Current figures. [`Stats`] describes each and has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let before = heap.stats();
    /// heap.mutator().enter(|cx| {
    ///     for i in 0..1000u64 {
    ///         cx.alloc(i); // garbage
    ///     }
    ///     cx.collect();
    /// });
    /// let after = heap.stats();
    /// assert_eq!(after.gc_count, before.gc_count + 1);
    /// assert!(after.objects_freed_total >= before.objects_freed_total + 1000);
    /// println!("{after}"); // a compact report
    /// ```
    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Writes a heap profile in pprof's protobuf format (`go tool pprof`
    /// reads it): allocated and in-use objects and bytes by allocating
    /// stack, estimated from the sampled allocations. Empty when
    /// `profile_rate` is 0.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// // Sample about one allocation per 4 KiB (the default is 512 KiB).
    /// let heap = Heap::new(Config::builder().profile_rate(4096).build().unwrap()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     for i in 0..10_000u64 {
    ///         cx.alloc([i; 8]);
    ///     }
    /// });
    /// let mut profile = Vec::new(); // or a `std::fs::File`, for `go tool pprof`
    /// heap.write_heap_profile(&mut profile).unwrap();
    /// let mentions = |s: &str| profile.windows(s.len()).any(|w| w == s.as_bytes());
    /// assert!(mentions("inuse_space") && mentions("alloc_objects"));
    /// ```
    pub fn write_heap_profile(&self, w: impl std::io::Write) -> std::io::Result<()> {
        match &self.inner.hooks.profiler {
            Some(p) => p.write_pprof(w),
            None => Profiler::new(0).write_pprof(w),
        }
    }

    /// The allocation profile's buckets (estimated allocated and in-use
    /// objects and bytes per allocating stack and size). Empty when
    /// `profile_rate` is 0.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::builder().profile_rate(4096).build().unwrap()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     for i in 0..10_000u64 {
    ///         cx.alloc([i; 8]); // 64 bytes each
    ///     }
    /// });
    /// let estimate: u64 = heap
    ///     .profile_summary()
    ///     .iter()
    ///     .filter(|b| b.object_size_bytes == 64)
    ///     .map(|b| b.alloc_objects)
    ///     .sum();
    /// // About 1 in 65 of them was sampled; the estimate scales back up.
    /// assert!((5_000..15_000).contains(&estimate), "{estimate}");
    /// ```
    pub fn profile_summary(&self) -> Vec<BucketStats> {
        self.inner
            .hooks
            .profiler
            .as_ref()
            .map_or_else(Vec::new, Profiler::snapshot)
    }

    /// Live objects by type, largest first: objects allocated and not yet
    /// freed by sweeping (small objects count when their span leaves a
    /// mutator's cache, so a scope's latest allocations may be missing).
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let keep: Vec<_> = (0..1000u64).map(|i| cx.root(cx.alloc(i))).collect();
    ///     for _ in 0..5000 {
    ///         cx.alloc(1.5f32); // garbage
    ///     }
    ///     cx.collect();
    ///     let summary = cx.heap().type_summary();
    ///     let u64s = summary.iter().find(|t| t.name == "u64").unwrap();
    ///     assert_eq!((u64s.objects, u64s.bytes), (1000, 8000));
    ///     assert!(summary.iter().all(|t| t.name != "f32"), "the f32s are gone");
    ///     drop(keep);
    /// });
    /// ```
    pub fn type_summary(&self) -> Vec<TypeStats> {
        let mut by_name: std::collections::HashMap<&'static str, TypeStats> = Default::default();
        let mut add = |tag: usize, objects: u64, bytes: u64, spans: usize| {
            // SAFETY: type tags of this heap are TypeInfo addresses.
            let name = unsafe { TypeInfo::from_tag(tag) }.name();
            let e = by_name.entry(name).or_insert(TypeStats {
                name,
                objects: 0,
                bytes: 0,
                spans: 0,
            });
            e.objects += objects;
            e.bytes += bytes;
            e.spans += spans;
        };
        for c in self.inner.mheap.sweep_stats().classes {
            let live = c.objects_allocated.saturating_sub(c.objects_freed);
            let size = spangc_arena::sizeclass::class_size(c.span_class.size_class()) as u64;
            add(c.type_tag, live, live * size, c.spans_in_use);
        }
        self.inner.mheap.for_each_in_use_span(|s| {
            if s.span_class_raw() <= 1 {
                add(s.type_tag(), 1, s.elem_size() as u64, 1);
            }
        });
        let mut v: Vec<TypeStats> = by_name.into_values().filter(|t| t.objects > 0).collect();
        v.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(b.name)));
        v
    }

    /// Number of live [`Root`](crate::Root)s: a quick check for roots an
    /// embedder forgot to drop.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// let root = m.enter(|cx| cx.root(cx.alloc(1u8)));
    /// let copy = root.clone();
    /// assert_eq!(heap.root_count(), 2);
    /// drop((root, copy));
    /// assert_eq!(heap.root_count(), 0);
    /// ```
    pub fn root_count(&self) -> usize {
        self.inner.roots.len()
    }

    /// Blocks until the finalizer thread has run every finalizer and
    /// cleanup queued so far (those of objects found dead by sweeps that
    /// have happened). Call after [`Heap::collect`] to observe them.
    /// Finalizers set with `Scope::set_local_finalizer` run only in their
    /// mutator's `Scope::run_finalizers`. When it returns, the finalizer
    /// thread holds no handle to the heap, so dropping the last `Heap`
    /// (and every `Mutator` and `Root`) right after tears the heap down on
    /// the dropping thread.
    ///
    /// Panics where [`Heap::collect`] does.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let cleaned = Arc::new(AtomicUsize::new(0));
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     for i in 0..10u64 {
    ///         let cleaned = cleaned.clone();
    ///         cx.add_cleanup(cx.alloc(i), move || {
    ///             cleaned.fetch_add(1, Ordering::SeqCst);
    ///         });
    ///     }
    ///     cx.collect(); // the objects are dead: their cleanups are queued
    /// });
    /// heap.wait_finalizers(); // outside the scope
    /// assert_eq!(cleaned.load(Ordering::SeqCst), 10);
    /// ```
    pub fn wait_finalizers(&self) {
        self.inner.check_may_wait("wait_finalizers");
        self.inner.hooks.wait_thread_idle();
    }
}

impl<B: Brand> HeapInner<B> {
    fn lock_cycle(&self) -> std::sync::MutexGuard<'_, CycleState> {
        self.cycle.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check_may_wait(&self, what: &str) {
        assert!(
            !self.world.running_here(),
            "spangc: Heap::{what} called from inside a scope of the same heap; use Scope::collect"
        );
        assert!(
            !IN_DESTRUCTOR.with(|f| f.get()),
            "spangc: Heap::{what} called from a destructor run by the sweeper"
        );
    }

    /// The span of the object at `addr` and the object's offset in it.
    pub(crate) fn locate(&self, addr: NonNull<u8>) -> (&Span, u32) {
        let a = addr.as_ptr() as usize;
        let span = self
            .mheap
            .page_heap()
            .span_of_heap(a)
            .unwrap_or_else(|| panic!("spangc: {a:#x} is not an object of this heap"));
        (span, (a - span.start()) as u32)
    }

    pub(crate) fn add_external(&self, bytes: usize) {
        let now = self.external.fetch_add(bytes, Relaxed) + bytes;
        if self.mheap.heap_live() + now >= self.trigger.load(Relaxed) {
            self.world.want_collection();
        }
    }

    pub(crate) fn sub_external(&self, bytes: usize) {
        let r = self
            .external
            .fetch_update(Relaxed, Relaxed, |e| Some(e.saturating_sub(bytes)));
        debug_assert!(r.is_ok_and(|e| e >= bytes), "sub_external below zero");
    }

    /// Memory the heap maps, as the memory limit counts it.
    fn mapped_bytes(&self) -> usize {
        let p = self.mheap.page_stats();
        p.sys_bytes - p.released_bytes + self.metadata_bytes() + self.external.load(Relaxed)
    }

    /// The collector's own memory: the page heap's metadata and the grey
    /// stacks kept between collections.
    fn metadata_bytes(&self) -> usize {
        self.mheap.metadata_bytes() + self.grey_stacks.bytes()
    }

    /// Called before a cache refill or large allocation needing up to
    /// `bytes` of new span memory: enforces the memory limit.
    pub(crate) fn before_span_alloc(&self, bytes: usize) -> Result<(), AllocErrorKind> {
        let limit = self.memory_limit.load(Relaxed);
        if limit == 0 {
            return Ok(());
        }
        let needed = self.mapped_bytes() + bytes;
        if needed <= limit {
            return Ok(());
        }
        // Over: collect at the next safepoint; meanwhile make room now by
        // finishing the sweep (dead spans of the last collection go back
        // to the page heap, and so do empty spans kept for reuse) and
        // giving idle memory back.
        self.world.want_collection();
        self.grey_stacks.release();
        self.mheap.set_reuse_empty_spans(false);
        self.mheap.finish_sweep();
        self.mheap.free_kept_empty_spans();
        let over = (self.mapped_bytes() + bytes).saturating_sub(limit);
        self.mheap.scavenge(over);
        let needed = self.mapped_bytes() + bytes;
        if needed <= limit {
            return Ok(());
        }
        let p = self.mheap.page_stats();
        let in_use = p.in_use_bytes + self.metadata_bytes() + self.external.load(Relaxed);
        if in_use + bytes > limit {
            Err(AllocErrorKind::MemoryLimit { limit, needed })
        } else {
            // Idle pages remain but could not be released in whole pages
            // (fragmented): allow, the collection will tidy up.
            Ok(())
        }
    }

    /// Called after a cache refill or large allocation: asks for a
    /// collection once the trigger is crossed.
    pub(crate) fn after_span_alloc(&self) {
        if self.mheap.heap_live() + self.external.load(Relaxed) >= self.trigger.load(Relaxed) {
            self.world.want_collection();
        }
    }

    fn apply_goals(&self, goals: Goals) {
        self.trigger.store(goals.trigger, Relaxed);
        self.mheap.set_scavenge_goal(goals.scavenge_goal);
        self.mheap.set_sweep_pacing(goals.trigger);
        self.mheap.set_reuse_empty_spans(!goals.limited);
        if goals.limited {
            // Memory is short: the spans kept so far go back too.
            self.mheap.free_kept_empty_spans();
        }
    }

    /// Runs one collection cycle (see the module docs). `me` is the calling
    /// mutator, if any; it must be at a safepoint. Returns without
    /// collecting if another collector was active (a mutator parks behind
    /// it; its collection is as good).
    pub(crate) fn collect_cycle(&self, me: Option<&MutatorId>, reason: Reason) {
        // A destructor on the background sweeper that collects through a
        // scope of its own would wait in `finish_sweep` for the span it is
        // being run from (`Heap::collect` checks this in `check_may_wait`).
        assert!(
            !IN_DESTRUCTOR.with(|f| f.get()),
            "spangc: a collection started from a destructor run by the sweeper"
        );
        let collector = match reason {
            Reason::ThreadExit => self.world.begin_exit_collection(EXIT_WAIT),
            _ => self.world.begin_collection(me),
        };
        let Some(collector) = collector else {
            return;
        };
        let cycle = collector.epoch;
        let heap_live_before = self.mheap.heap_live();
        let span = tracing::info_span!(
            target: "spangc",
            "gc",
            cycle,
            heap_live_before,
            heap_live_after = tracing::field::Empty,
            heap_goal = tracing::field::Empty,
            pause_ns = tracing::field::Empty,
            mark_ns = tracing::field::Empty,
            mark_threads = tracing::field::Empty,
            pages_swept = tracing::field::Empty,
        );
        let _enter = span.enter();

        // 2. Finish the previous cycle's sweep while mutators run: idle
        //    mutators' caches first (they cannot touch them until we
        //    restart): every cached span goes back, so the coming sweep
        //    reaches their garbage, and stale ones are swept now, not in
        //    the pause. Then the rest.
        let t = Instant::now();
        for c in self.world.idle_caches(&collector) {
            // SAFETY: `idle_caches` guarantees the mutator cannot touch its
            // cache until `restart`, and we are the only collector.
            unsafe { &mut *c.0.as_ptr() }.prepare_idle_for_sweep();
        }
        if reason == Reason::ThreadExit {
            // A sweeper may be running a destructor that joins this thread.
            if !self.mheap.finish_sweep_within(EXIT_WAIT) {
                self.world.abandon(collector);
                return;
            }
        } else {
            self.mheap.finish_sweep();
        }
        let sweep_finish_ns = t.elapsed().as_nanos() as u64;
        // What the previous generation's sweep did, now that it is done.
        let swept = {
            let now = SweepTotals::of(&self.mheap.sweep_totals());
            let before = std::mem::replace(&mut self.lock_cycle().swept_before, now);
            SweepTotals {
                pages_swept: now.pages_swept - before.pages_swept,
                pages_reclaimed: now.pages_reclaimed - before.pages_reclaimed,
                spans_freed: now.spans_freed - before.spans_freed,
                objects_freed: now.objects_freed - before.objects_freed,
            }
        };
        span.record("pages_swept", swept.pages_swept);

        // 3. Stop the world.
        let pause_start = Instant::now();
        self.world.stop(&collector);
        // A panic from here to the restart (a verify failure, a broken
        // invariant) would leave every other thread waiting for a world
        // that never restarts: abort instead, after the panic's message.
        let stopped = crate::AbortOnUnwind("a panic while the world was stopped (see above)");
        let external = self.external.load(Relaxed);
        let heap_live_at_stop = self.mheap.heap_live() + external;
        self.mheap.prepare_mark();
        if self.config.verify {
            verify::before_mark(self);
        }

        // 4. Mark from the roots.
        let mark_start = Instant::now();
        let mut roots = Vec::with_capacity(self.roots.len());
        self.roots.for_each(|p| roots.push(p));
        let mut scan_from = Vec::new();
        special::mark_roots(
            &self.hooks,
            self.mheap.page_heap(),
            &mut roots,
            &mut scan_from,
        );
        // A heap whose last mark scanned fewer than PARALLEL_SCAN_MIN
        // objects is marked by this thread alone; the first collection
        // uses every thread. Verify mode always does, so that tests on
        // small heaps exercise the parallel marker.
        let (cycles, last_scanned) = {
            let c = self.lock_cycle();
            (c.gc_count, c.objects_scanned)
        };
        let threads = if self.config.verify || cycles == 0 || last_scanned >= PARALLEL_SCAN_MIN {
            self.mark_threads.load(Relaxed)
        } else {
            1
        };
        let marked = mark::mark(
            self.mheap.page_heap(),
            &self.grey_stacks,
            &roots,
            &scan_from,
            match &self.mark_pool {
                Some(pool) if threads > 1 => mark::Markers::WithPool {
                    pool,
                    helpers: threads - 1,
                },
                _ => mark::Markers::Alone,
            },
            self.config.verify,
        );
        let mark_ns = mark_start.elapsed().as_nanos() as u64;
        if self.config.verify {
            verify::after_mark(self, &marked);
        }

        // 5. Start the next sweep generation. A mutator that left its scope
        //    between step 2 and the stop still caches spans, stale now: they
        //    must be swept before anything but a stopped or running
        //    mutator's flush can give them back (dropping an idle mutator
        //    frees its cache with no collection waiting for it, and a
        //    sweep then would race the next mark), so they are given back,
        //    and swept, here, inside the pause, as Go's mark termination
        //    flushes every cache. Only caches that went idle in that window
        //    hold any: step 2 emptied the others.
        self.mheap.finish_mark(marked.bytes);
        for c in self.world.idle_caches(&collector) {
            // SAFETY: as in step 2; the world is still stopped.
            unsafe { &mut *c.0.as_ptr() }.prepare_idle_for_sweep();
        }

        // 6. Pace the next cycle.
        let page_stats = self.mheap.page_stats();
        let report = MarkReport {
            heap_marked: marked.bytes,
            outside_scan_bytes: marked.roots * size_of::<usize>() + marked.outside_bytes,
            external_bytes: external,
            overhead_bytes: self.metadata_bytes()
                + page_stats.in_use_bytes.saturating_sub(marked.bytes),
            heap_live_at_stop,
            triggered_at: (reason == Reason::Trigger).then(|| self.trigger.load(Relaxed)),
        };
        let mut c = self.lock_cycle();
        let goals = c.pacer.as_mut().expect("pacer").end_cycle(&report);
        self.apply_goals(goals);
        let pause_ns = pause_start.elapsed().as_nanos() as u64;
        c.last_report = report;
        c.gc_count += 1;
        self.gc_count.store(c.gc_count, Relaxed);
        c.objects_marked = marked.objects as u64;
        c.objects_scanned = marked.scanned;
        c.heap_marked = marked.bytes;
        c.pause_last_ns = pause_ns;
        c.pause_max_ns = c.pause_max_ns.max(pause_ns);
        c.pause_total_ns += pause_ns;
        c.mark_last_ns = mark_ns;
        c.mark_total_ns += mark_ns;
        c.mark_threads = marked.workers as u32;
        drop(c);

        // 7. Restart.
        stopped.disarm();
        self.world.restart(collector);
        span.record("heap_live_after", marked.bytes);
        span.record("heap_goal", goals.heap_goal);
        span.record("pause_ns", pause_ns);
        span.record("mark_ns", mark_ns);
        span.record("mark_threads", marked.workers);
        tracing::debug!(
            target: "spangc",
            cycle,
            heap_live_before,
            heap_live_after = marked.bytes,
            heap_goal = goals.heap_goal,
            objects = marked.objects,
            roots = marked.roots,
            pause_ns,
            mark_ns,
            sweep_finish_ns,
            prev_pages_swept = swept.pages_swept,
            prev_pages_reclaimed = swept.pages_reclaimed,
            prev_spans_freed = swept.spans_freed,
            prev_objects_freed = swept.objects_freed,
            "gc cycle done"
        );
    }

    fn stats(&self) -> Stats {
        let c = self.lock_cycle();
        let p = self.mheap.page_stats();
        let s = self.mheap.sweep_stats();
        Stats {
            version: STATS_VERSION,
            heap_live_bytes: self.mheap.heap_live(),
            heap_marked_bytes: c.heap_marked,
            heap_goal_bytes: c.pacer.as_ref().map_or(0, |p| p.goals().heap_goal),
            heap_in_use_bytes: p.in_use_bytes,
            heap_idle_bytes: p.idle_bytes,
            heap_released_bytes: p.released_bytes,
            heap_sys_bytes: p.sys_bytes,
            metadata_sys_bytes: self.metadata_bytes(),
            external_bytes: self.external.load(Relaxed),
            objects_marked: c.objects_marked,
            objects_allocated_total: s.objects_allocated,
            bytes_allocated_total: s.bytes_allocated,
            objects_freed_total: s.objects_freed,
            gc_count: c.gc_count,
            pause_last_ns: c.pause_last_ns,
            pause_max_ns: c.pause_max_ns,
            pause_total_ns: c.pause_total_ns,
            mark_last_ns: c.mark_last_ns,
            mark_total_ns: c.mark_total_ns,
            mark_threads: c.mark_threads,
            pages_swept_total: s.pages_swept,
            pages_reclaimed_total: s.pages_reclaimed,
            spans_freed_total: s.spans_freed,
            sweep_background_ns: s.background_ns,
            sweep_alloc_ns: s.alloc_ns,
            sweep_proportional_ns: s.proportional_ns,
            sweep_reclaim_ns: s.reclaim_ns,
            sweep_finish_ns: s.finish_ns,
            scavenged_bytes_total: p.scavenged_released_bytes,
            destructor_panics: self.hooks.destructor_panics.load(Relaxed),
            destructors_deferred_total: self.hooks.owners.deferred_total.load(Relaxed),
            destructors_skipped_total: self.hooks.owners.skipped_total.load(Relaxed),
            finalizers_run_total: self.hooks.finalizers_run.load(Relaxed),
            cleanups_run_total: self.hooks.cleanups_run.load(Relaxed),
            special_records: self.hooks.specials.len(),
        }
    }
}

impl<B: Brand> Drop for HeapInner<B> {
    fn drop(&mut self) {
        let (mheap, hooks) = (self.mheap.clone(), self.hooks.clone());
        if IN_DESTRUCTOR.with(|f| f.get()) {
            // The last handle was dropped by a destructor the sweeper is
            // running (a `Heap` or `Root` held by a dead object): tearing
            // down here would free the span being swept under the sweeper.
            // Finish on a thread of our own, after that sweep.
            let spawned = std::thread::Builder::new()
                .name("spangc-teardown".into())
                .spawn(move || teardown::<B>(&mheap, &hooks));
            if let Err(e) = spawned {
                // Without a thread, leak the heap (and keep its brand
                // taken) rather than tear it down under the sweeper.
                tracing::error!(target: "spangc", "cannot start the teardown thread: {e}; the heap is leaked");
            }
            return;
        }
        teardown::<B>(&mheap, &hooks);
    }
}

/// Destroys a heap nobody can reach any more: stops its threads, finishes
/// sweeping, runs the remaining destructors, drops the remaining special
/// records and queued finalizers (unrun, as the program is done with the
/// heap) and frees the brand. The page heap unmaps when the last `Arc` of
/// the `Mheap` goes.
fn teardown<B: Brand>(mheap: &Arc<Mheap>, hooks: &Arc<Hooks<B>>) {
    hooks.stop_thread();
    mheap.shutdown();
    mheap.finish_sweep();
    hooks.begin_teardown();
    let skipped = hooks.owners.skipped_total.load(Relaxed);
    mheap.free_all_objects();
    let skipped = hooks.owners.skipped_total.load(Relaxed) - skipped;
    if skipped > 0 {
        tracing::warn!(
            target: "spangc",
            skipped,
            "heap dropped with objects of other threads whose types are not Send: \
             their drop glue was skipped (it may only run on their own threads)"
        );
    }
    let pages = mheap.page_heap();
    let mut with_specials = Vec::new();
    mheap.for_each_in_use_span(|s| {
        if pages.has_page_special(s) {
            with_specials.push(s as *const Span);
        }
    });
    for s in with_specials {
        // SAFETY: records of our page heap, which is alive.
        hooks.drop_specials(pages, unsafe { &*s });
    }
    hooks.drop_jobs();
    B::live_heap().store(false, std::sync::atomic::Ordering::Release);
}
