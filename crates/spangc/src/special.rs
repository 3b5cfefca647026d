//! What happens when objects die: destructors, and the special records
//! (finalizers, weak handles, cleanups) the sweeper finds on dead objects.
//!
//! [`Hooks`] is the sweep layer's callback ([`SweepHooks`]): it runs the
//! drop glue of dead objects, and for spans with special records it decides
//! each dead object's fate before the sweeper frees anything:
//!
//! * **Finalizer.** The object is *resurrected*: its mark bit is set, so
//!   this sweep keeps it, and its finalizer is queued. Everything it
//!   reaches is alive too, because the marker marked *from* every object
//!   with a finalizer (not the object itself: [`mark_roots`]). The queued
//!   job roots the object until the finalizer has run; the finalizer record
//!   is gone, so once the object is unreachable again the next collection
//!   frees it. An object with a finalizer therefore takes at least two
//!   collections to free. Its cleanups and profile record stay for its
//!   real death.
//! * **Weak handle.** The object's canonical weak cell is cleared (and
//!   stays cleared, resurrected or not), before any finalizer or cleanup
//!   runs, and the record dropped.
//! * **Cleanup.** Queued to run, unless a finalizer resurrected the
//!   object. Cleanups never see the object: they are `'static` closures.
//! * **Profile.** The free is counted in the object's allocation-profile
//!   bucket (unless a finalizer resurrected it).
//!
//! Finalizers run outside every heap lock. Those registered with
//! `Scope::set_finalizer` (objects of `Send + Sync` types) and all cleanups
//! run on the heap's finalizer thread, started on first use; those
//! registered with `Scope::set_local_finalizer` (objects of any type) run
//! on the registering mutator's own thread, when it calls
//! `Scope::run_finalizers`: a `!Sync` object graph belongs to the thread
//! that built it.
//!
//! Ordering and cycles (see `docs/specials.md`): finalizers run in no
//! particular order; in a cycle of objects with finalizers, all are
//! resurrected together and all finalizers are queued in the same cycle;
//! a finalizer may store its object somewhere reachable (resurrection),
//! and the object then lives as long as it is reachable, without a
//! finalizer unless one is set again.

use crate::brand::Brand;
use crate::heap::HeapInner;
use crate::layout::TypeInfo;
use crate::mutator::Scope;
use crate::owner::{Fate, Owner, Owners};
use crate::weak::WeakCell;
use spangc_arena::PageHeap;
use spangc_arena::span::Span;
use spangc_gcbits::SpanBits;
use spangc_specials::profile::{BucketId, Profiler};
use spangc_specials::{Kind, Payload, Specials};
use spangc_sweep::SweepHooks;
use std::collections::{HashMap, VecDeque};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, Weak as ArcWeak};
use std::thread::JoinHandle;

/// A finalizer, erased: runs with a scope and the object's address.
pub(crate) type FinalizerFn<B> = Box<dyn FnOnce(&Scope<B>, NonNull<u8>) + Send>;

/// A value that may move between threads but is only used or dropped on
/// the thread that created it (local finalizers need not be `Send`: they
/// run on their mutator's thread, but the sweeper of another thread hands
/// them over). Dropped elsewhere, it is leaked rather than dropped.
pub(crate) struct ThreadBound<T> {
    value: std::mem::ManuallyDrop<T>,
    origin: std::thread::ThreadId,
}

// SAFETY: the value is only ever accessed (taken or dropped) on `origin`:
// `take` checks the thread, and `Drop` leaks it on any other thread. Moving
// the bytes between threads in between touches nothing.
unsafe impl<T> Send for ThreadBound<T> {}

impl<T> ThreadBound<T> {
    pub(crate) fn new(value: T) -> Self {
        ThreadBound {
            value: std::mem::ManuallyDrop::new(value),
            origin: std::thread::current().id(),
        }
    }

    /// The value; panics on another thread than the one that made it.
    pub(crate) fn take(self) -> T {
        assert_eq!(
            std::thread::current().id(),
            self.origin,
            "spangc: a thread-bound finalizer used on another thread"
        );
        let mut this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again, so the value is
        // moved out exactly once.
        unsafe { std::mem::ManuallyDrop::take(&mut this.value) }
    }
}

impl<T> Drop for ThreadBound<T> {
    fn drop(&mut self) {
        if std::thread::current().id() == self.origin {
            // SAFETY: dropped once, here, on its own thread.
            unsafe { std::mem::ManuallyDrop::drop(&mut self.value) }
        }
    }
}

/// A local finalizer's closure (need not be `Send`).
pub(crate) type LocalRun<B> = Box<dyn FnOnce(&Scope<B>, NonNull<u8>)>;

/// A local finalizer: bound to its mutator's thread.
pub(crate) type LocalFinalizerFn<B> = ThreadBound<LocalRun<B>>;

/// How a finalizer runs.
pub(crate) enum Finalizer<B: Brand> {
    /// On the finalizer thread.
    Thread(FinalizerFn<B>),
    /// On mutator `id`'s thread, in `run_finalizers`.
    Local(LocalFinalizerFn<B>, usize),
}

/// What a special record carries.
pub(crate) enum SpecialData<B: Brand> {
    Finalizer(Finalizer<B>),
    /// The address of the object's canonical `WeakCell` (a heap object).
    Weak(NonNull<u8>),
    Cleanup(Box<dyn FnOnce() + Send>),
    /// The object was sampled by the allocation profiler: its bucket and
    /// slot size, to count its free.
    Profile(BucketId, usize),
}

// SAFETY: thread finalizers and cleanups are `Send`, local finalizers are
// `ThreadBound`; the weak cell address is only dereferenced as the atomic
// `WeakCell` it points to.
unsafe impl<B: Brand> Send for SpecialData<B> {}

impl<B: Brand> Payload for SpecialData<B> {
    fn kind(&self) -> Kind {
        match self {
            SpecialData::Finalizer(..) => Kind::Finalizer,
            SpecialData::Weak(_) => Kind::WeakHandle,
            SpecialData::Cleanup(_) => Kind::Cleanup,
            SpecialData::Profile(..) => Kind::Profile,
        }
    }
}

/// A finalizer waiting to run; its object is a root until then.
pub(crate) struct Pending<F> {
    pub(crate) addr: NonNull<u8>,
    pub(crate) run: F,
}

// SAFETY: the address is only used as a root by the marker and re-branded
// by the thread that runs the finalizer; the closure is `Send` (or
// `ThreadBound`).
unsafe impl<F: Send> Send for Pending<F> {}

/// Work for the finalizer thread.
enum Job<B: Brand> {
    Finalize(Pending<FinalizerFn<B>>),
    Cleanup(Box<dyn FnOnce() + Send>),
}

#[derive(Default)]
struct ThreadQueue<B: Brand> {
    jobs: VecDeque<Job<B>>,
    stop: bool,
    /// Set while the finalizer thread holds a strong handle to the heap
    /// (from before it takes its first job until after it has dropped
    /// the handle), so that once `wait_thread_idle` returns, dropping the
    /// last user handle tears the heap down on the user's thread.
    busy: bool,
}

/// Sweep hooks and everything they feed. See the module docs.
pub(crate) struct Hooks<B: Brand> {
    pub(crate) specials: Specials<SpecialData<B>>,
    thread_queue: Mutex<ThreadQueue<B>>,
    thread_cv: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Finalizers due on a given mutator's thread, by mutator id.
    local: Mutex<HashMap<usize, Vec<Pending<LocalFinalizerFn<B>>>>>,
    pub(crate) destructor_panics: AtomicU64,
    pub(crate) finalizers_run: AtomicU64,
    pub(crate) cleanups_run: AtomicU64,
    /// The allocation profiler (`None` when `profile_rate` is 0).
    pub(crate) profiler: Option<Profiler>,
    /// Threads that own objects whose drop glue must run on them.
    pub(crate) owners: Owners,
    /// Set when the heap is being destroyed (see `begin_teardown`).
    teardown: AtomicBool,
}

thread_local! {
    /// Set while this thread runs destructors for the sweeper: a destructor
    /// that asks for a collection would deadlock (the collector waits for
    /// sweepers to finish).
    pub(crate) static IN_DESTRUCTOR: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl<B: Brand> Hooks<B> {
    /// Hooks with an allocation profiler sampling one allocation per
    /// `profile_rate` bytes (none if 0).
    pub(crate) fn new(profile_rate: usize) -> Self {
        Hooks {
            specials: Specials::new(),
            thread_queue: Mutex::new(ThreadQueue {
                jobs: VecDeque::new(),
                stop: false,
                busy: false,
            }),
            thread_cv: Condvar::new(),
            thread: Mutex::new(None),
            local: Mutex::new(HashMap::new()),
            destructor_panics: AtomicU64::new(0),
            finalizers_run: AtomicU64::new(0),
            cleanups_run: AtomicU64::new(0),
            // Frames in this crate's source are the allocator's own (the
            // public allocation functions, inlined or not).
            profiler: (profile_rate > 0).then(|| {
                Profiler::new(profile_rate)
                    .hide_source(concat!(env!("CARGO_MANIFEST_DIR"), "/src/"))
            }),
            owners: Owners::new(),
            teardown: AtomicBool::new(false),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // No user code runs under these locks; recover from poisoning.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<B: Brand> SweepHooks for Hooks<B> {
    fn needs_free_hook(&self, type_tag: usize) -> bool {
        // SAFETY: type tags on our spans are TypeInfo addresses.
        unsafe { TypeInfo::from_tag(type_tag) }.drop.is_some()
    }

    fn free_object(&self, type_tag: usize, addr: NonNull<u8>) -> bool {
        let teardown = self.teardown.load(Relaxed);
        match self.owners.fate(type_tag, addr.as_ptr() as usize, teardown) {
            Fate::Drop => {
                // SAFETY: the sweeper calls this once per dead, initialised
                // object of the span's type, and `fate` says its drop glue
                // has not run and may run on this thread.
                unsafe { self.run_drop(type_tag, addr) };
                true
            }
            Fate::Free => true,
            Fate::Keep => false,
        }
    }

    fn sweep_specials(&self, pages: &PageHeap, span: &Span) -> u32 {
        let start = span.start();
        let slot = |off: u32| span.slot_index(start + off as usize);
        let mut due: Vec<Due<B>> = Vec::new();
        let mut resurrected = 0;
        self.specials.sweep(
            pages,
            span,
            |off| !span.is_marked(slot(off)),
            |off, recs| {
                // SAFETY: a slot address of an in-use span is non-null.
                let addr = unsafe { NonNull::new_unchecked((start + off as usize) as *mut u8) };
                let resurrect = recs.iter().any(|r| r.kind() == Kind::Finalizer);
                if resurrect {
                    // We hold the span's sweep claim; the bit set here
                    // becomes an alloc bit, so this sweep keeps the object.
                    span.set_marked(slot(off));
                    resurrected += 1;
                }
                let mut keep = Vec::new();
                for r in recs.drain(..) {
                    match r {
                        SpecialData::Weak(cell) => WeakCell::clear(cell),
                        SpecialData::Finalizer(Finalizer::Thread(run)) => {
                            due.push(Due::Thread(Job::Finalize(Pending { addr, run })))
                        }
                        SpecialData::Finalizer(Finalizer::Local(run, id)) => {
                            due.push(Due::Local(Pending { addr, run }, id))
                        }
                        SpecialData::Cleanup(f) if !resurrect => {
                            due.push(Due::Thread(Job::Cleanup(f)))
                        }
                        SpecialData::Profile(bucket, size) if !resurrect => {
                            if let Some(p) = &self.profiler {
                                p.record_free(bucket, size);
                            }
                        }
                        other => keep.push(other),
                    }
                }
                *recs = keep;
            },
        );
        self.enqueue(due);
        resurrected
    }
}

/// Work found by a sweep, and where it runs.
enum Due<B: Brand> {
    Thread(Job<B>),
    Local(Pending<LocalFinalizerFn<B>>, usize),
}

impl<B: Brand> Hooks<B> {
    /// Runs the drop glue of the object at `addr`, catching a panic (the
    /// object counts as freed either way).
    ///
    /// # Safety
    ///
    /// `addr` must be a dead, initialised object of the type `tag` names,
    /// whose drop glue has not run, and may run on this thread.
    unsafe fn run_drop(&self, tag: usize, addr: NonNull<u8>) {
        // SAFETY: type tags on our spans are TypeInfo addresses.
        let info = unsafe { TypeInfo::from_tag(tag) };
        let Some(drop) = info.drop else { return };
        let was = IN_DESTRUCTOR.with(|f| f.replace(true));
        // `AssertUnwindSafe`: a panicking destructor leaves only its own
        // object half-dropped, and that object is freed either way.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // SAFETY: per the contract.
            unsafe { drop(addr) }
        }));
        IN_DESTRUCTOR.with(|f| f.set(was));
        if r.is_err() {
            self.destructor_panics.fetch_add(1, Relaxed);
            tracing::error!(
                target: "spangc",
                ty = info.name(),
                addr = addr.as_ptr() as usize,
                "destructor panicked during sweeping; the object was freed"
            );
        }
    }

    /// Runs the drop glue that sweepers on other threads deferred to
    /// `owner`, the calling thread's owner (see `owner.rs`). Inline, one
    /// load when nothing is deferred: it runs on every cache slow path and
    /// at the first scope entry after each collection (out of line, the
    /// call cost churn, which enters a scope per operation, 8% of its
    /// samples when it ran at every entry).
    #[inline(always)]
    pub(crate) fn drain(&self, owner: &Owner) {
        if owner.has_pending() {
            self.drain_pending(owner);
        }
    }

    #[cold]
    #[inline(never)]
    fn drain_pending(&self, owner: &Owner) {
        self.owners.drain(owner, |tag, addr| {
            // SAFETY: the sweeper deferred this dead object of type `tag`
            // to its owner, this thread, and `drain` hands each deferred
            // object out once.
            unsafe { self.run_drop(tag, NonNull::new_unchecked(addr as *mut u8)) }
        });
    }

    /// From here on the free hook keeps nothing (the heap is being
    /// destroyed); runs what was deferred to the calling thread first.
    pub(crate) fn begin_teardown(&self) {
        if let Some(owner) = self.owners.current() {
            self.drain(&owner);
        }
        self.teardown.store(true, Relaxed);
    }

    /// Queues a sweep's work where it must run: one lock per queue and one
    /// wake-up per sweep, not per job (a futex wake per queued cleanup made
    /// sweeping a span of dead objects with cleanups cost 520 ns per
    /// object; `cargo bench -p spangc --bench specials`).
    fn enqueue(&self, due: Vec<Due<B>>) {
        if due.is_empty() {
            return;
        }
        let mut thread = Vec::new();
        for d in due {
            match d {
                Due::Local(p, id) => lock(&self.local).entry(id).or_default().push(p),
                Due::Thread(job) => thread.push(job),
            }
        }
        if !thread.is_empty() {
            lock(&self.thread_queue).jobs.extend(thread);
            self.thread_cv.notify_one();
        }
    }

    /// Calls `f` with the address of every object a pending finalizer
    /// holds: roots until the finalizer has run.
    pub(crate) fn pending_roots(&self, mut f: impl FnMut(NonNull<u8>)) {
        for job in &lock(&self.thread_queue).jobs {
            if let Job::Finalize(p) = job {
                f(p.addr);
            }
        }
        for pending in lock(&self.local).values() {
            for p in pending {
                f(p.addr);
            }
        }
    }

    /// Finalizers waiting for mutator `id`.
    pub(crate) fn take_local(&self, id: usize) -> Vec<Pending<LocalFinalizerFn<B>>> {
        lock(&self.local).remove(&id).unwrap_or_default()
    }

    /// Starts the finalizer thread if it is not running.
    pub(crate) fn ensure_thread(self: &Arc<Self>, heap: ArcWeak<HeapInner<B>>) {
        let mut t = lock(&self.thread);
        if t.is_some() {
            return;
        }
        let hooks = self.clone();
        let spawned = std::thread::Builder::new()
            .name("spangc-finalizer".into())
            .spawn(move || finalizer_thread(&hooks, &heap));
        match spawned {
            Ok(h) => *t = Some(h),
            // Without a thread the jobs wait in the queue; the heap still
            // works, and `wait_finalizers` would report them pending.
            Err(e) => tracing::error!(target: "spangc", "cannot start the finalizer thread: {e}"),
        }
    }

    /// Stops the finalizer thread (pending jobs are dropped, not run).
    pub(crate) fn stop_thread(&self) {
        lock(&self.thread_queue).stop = true;
        self.thread_cv.notify_all();
        let t = lock(&self.thread).take();
        if let Some(t) = t
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }

    /// Blocks until the finalizer thread's queue is empty and idle.
    pub(crate) fn wait_thread_idle(&self) {
        let mut q = lock(&self.thread_queue);
        while !q.stop && (!q.jobs.is_empty() || q.busy) {
            q = self.thread_cv.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Drops every special record of the span (heap teardown).
    pub(crate) fn drop_specials(&self, pages: &PageHeap, span: &Span) {
        drop(self.specials.take_all(pages, span));
    }

    /// Drops every queued job without running it (heap teardown).
    pub(crate) fn drop_jobs(&self) {
        let jobs = std::mem::take(&mut lock(&self.thread_queue).jobs);
        let local = std::mem::take(&mut *lock(&self.local));
        drop((jobs, local));
    }
}

/// The finalizer thread: runs finalizers of `Send + Sync` objects and all
/// cleanups. Holds only a weak reference to the heap while it waits, so it
/// never keeps the heap alive; while it has work it holds a strong one and
/// is `busy`, and it drops the handle before it clears `busy`, so a caller
/// of `wait_finalizers` that then drops the last `Heap` sees the heap torn
/// down at once. Each job runs in a scope of its own so collections can
/// happen between them.
fn finalizer_thread<B: Brand>(hooks: &Hooks<B>, heap: &ArcWeak<HeapInner<B>>) {
    loop {
        {
            let mut q = lock(&hooks.thread_queue);
            while q.jobs.is_empty() && !q.stop {
                q = hooks.thread_cv.wait(q).unwrap_or_else(|e| e.into_inner());
            }
            if q.stop {
                return;
            }
            q.busy = true;
        }
        let alive = heap
            .upgrade()
            .map(|h| run_jobs(hooks, crate::mutator::Mutator::new(h)));
        lock(&hooks.thread_queue).busy = false;
        hooks.thread_cv.notify_all();
        if alive.is_none() {
            // The heap is being torn down (teardown stops this thread and
            // drops the queued jobs); waiting for `stop` would spin.
            return;
        }
    }
}

/// Runs queued jobs until the queue is empty, then drops the mutator (and
/// with it the thread's strong handle to the heap).
fn run_jobs<B: Brand>(hooks: &Hooks<B>, mut m: crate::mutator::Mutator<B>) {
    // Take each job inside the scope: once out of the queue the object is
    // no longer a root, so no collection may run until the finalizer has it.
    while m.enter(|cx| {
        let Some(job) = lock(&hooks.thread_queue).jobs.pop_front() else {
            return false;
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match job {
            Job::Finalize(p) => {
                (p.run)(cx, p.addr);
                hooks.finalizers_run.fetch_add(1, Relaxed);
            }
            Job::Cleanup(f) => {
                f();
                hooks.cleanups_run.fetch_add(1, Relaxed);
            }
        }));
        if r.is_err() {
            tracing::error!(target: "spangc", "a finalizer or cleanup panicked");
        }
        true
    }) {}
}

/// Finds the roots the special records contribute to a collection (world
/// stopped): objects whose pending finalizer has not run (`roots`), the
/// weak cells of live weak handles (`roots`: a handle keeps its cell), and
/// objects with a finalizer, whose *children* must be marked so that a
/// resurrected object has everything it reaches (`scan_from`: not the
/// object itself, or it could never be found dead).
pub(crate) fn mark_roots<B: Brand>(
    hooks: &Hooks<B>,
    pages: &PageHeap,
    roots: &mut Vec<NonNull<u8>>,
    scan_from: &mut Vec<NonNull<u8>>,
) {
    hooks.pending_roots(|p| roots.push(p));
    if hooks.specials.is_empty() {
        return;
    }
    for arena in pages.arenas().iter() {
        for w in 0..spangc_arena::PAGE_WORDS_PER_ARENA {
            let mut bits = arena.page_specials_word(w);
            while bits != 0 {
                let p = 64 * w + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(span) = arena.span_at_page(p) else {
                    continue;
                };
                let start = span.start();
                hooks.specials.for_each(span, |off, data| {
                    // SAFETY: object and weak-cell addresses are non-null.
                    let obj = unsafe { NonNull::new_unchecked((start + off as usize) as *mut u8) };
                    match data {
                        SpecialData::Finalizer(..) => scan_from.push(obj),
                        SpecialData::Weak(cell) => roots.push(*cell),
                        SpecialData::Cleanup(_) | SpecialData::Profile(..) => {}
                    }
                });
            }
        }
    }
}
