//! Stopping the world: how a collector gets every mutator to a safepoint,
//! and how mutators wait for it.
//!
//! Each registered mutator has a status word:
//!
//! ```text
//!            enter                      safepoint while a collector is active
//!  Outside ─────────> Running ───────────────────────────────────────> Parked
//!     ^    <───────── │  ^  │                                            │
//!     │      exit     │  │  └── blocking() ──> Blocking ── returns ──┐   │
//!     │               │  └──────────────────────────────────────────┘   │
//!     │               └── becomes the collector (is not waited for)     │
//!     └── a new mutator starts Outside        restart sets Running  <───┘
//! ```
//!
//! A collection:
//!
//! 1. [`World::begin_collection`]: become *the* collector. If another is
//!    active, a mutator parks (it must: that collector is waiting for it)
//!    and a non-mutator thread waits; either then retries.
//! 2. The collector finishes sweeping while mutators still run (so no
//!    sweeping happens with the world stopped).
//! 3. [`World::stop`]: raise the safepoint flag and wait until no mutator
//!    other than the collector is `Running`. `Outside` and `Blocking`
//!    mutators hold no `Gc`; `Parked` ones are at a safepoint.
//! 4. The collector marks; nothing else touches the heap.
//! 5. [`World::restart`]: every `Parked` mutator becomes `Running` *under
//!    the lock, by the collector*, and is woken. A mutator that has not yet
//!    been scheduled therefore counts as running for the next collection,
//!    which will wait for it to flush its (now stale) allocation cache and
//!    reach a safepoint again: a stale cache never survives into a second
//!    collection.
//!
//! # Entering and leaving without the lock
//!
//! Every status change happens under the world lock except the two a
//! mutator makes most often, entering and leaving its scope (an embedder
//! may enter once per call into its VM: the churn benchmark enters 50
//! million times). Those are a store and a load, Dekker style:
//!
//! ```text
//! enter:  status = Running; light fence     collector:  collecting = true; heavy fence   (under the lock)
//!         if collecting: slow path                      then reads every status
//! exit:   status = Outside; light fence                 stopping = true; heavy fence     (under the lock)
//!         if stopping: lock, notify                     then reads every status, waits while one is Running
//! ```
//!
//! The two fences are ordered one way or the other: either the mutator's
//! load comes after the collector's store (the mutator sees it and takes
//! the locked path), or the collector's reads come after the mutator's
//! store (the collector sees `Running` and waits for the mutator, or sees
//! `Outside` and may flush its cache: the mutator touches its cache only
//! after its check found no collector). Status stores are Release and
//! loads Acquire, so a collector that reads `Outside` also sees everything
//! the mutator did to its cache before.
//!
//! The fences are *asymmetric*: the mutator's is only a compiler fence and
//! the collector's is `membarrier(2)`, which makes every running thread of
//! the process execute a full barrier ([`spangc_arena::os::process_barrier`],
//! the pairing RCU and folly use). A `fence(SeqCst)` on each enter and
//! exit drains the store buffer of everything the scope wrote and cost
//! half the time of the churn benchmark, which enters once per object;
//! the collector pays two system calls per collection instead. Where
//! `membarrier` is unavailable both sides use `fence(SeqCst)`, as the
//! `loom` models do (loom models SeqCst fences, not membarrier). The slow path of `enter` goes back
//! to `Outside` under the lock, wakes a collector that saw it `Running`,
//! and waits for the collection to end. `exit` takes the lock only when a
//! collector is stopping the world, to wake it; the lock orders the notify
//! after the collector's check, so no wakeup is lost. The `loom` model
//! `loom_enter_exit_against_a_collector` checks this against a collector
//! that flushes idle caches.
//!
//! # Nested scopes
//!
//! A thread inside a scope of a heap (one mutator `Running`) may open a
//! scope of the same heap through a second mutator. That is harmless until
//! the thread waits for a collection or runs one: the collection waits for
//! the outer scope, which cannot go on until the thread does. The same
//! holds for a thread that is running a collection and calls back into the
//! heap (a destructor or `Trace` impl). So every place where a thread would
//! wait for a collection or begin one (a safepoint that parks or collects,
//! `enter` during a collection, `begin_blocking`, `Heap::collect`) first
//! checks, under the lock, that no other mutator of its thread is
//! `Running` and that it is not the collector (`State::nested`, by the
//! thread each mutator registered on), and panics instead of deadlocking,
//! after letting go of the lock and before changing any state.
//! `deregister` cannot panic (it runs while such a panic unwinds): there a
//! nested mutator leaves its cache to the world instead of waiting, and
//! `restart` frees it. The check is on those rare paths only: entering and
//! leaving stay a store and a load each. (A thread-local set of entered
//! heaps, checked at every `enter`, cost a tenth of the churn benchmark,
//! which enters once per object.)
//!
//! A safepoint's fast path is one relaxed load of [`World::poll`]: it is
//! set while a collection is wanted (the allocator crossed the trigger) or
//! in progress. Liveness needs every `Running` mutator to reach a safepoint
//! or `blocking()` soon; see `docs/api.md` for what embedders must do.

use spangc_sweep::MCache;
use std::ptr::NonNull;

#[cfg(loom)]
use loom::thread::{ThreadId, current as current_thread};
#[cfg(not(loom))]
use std::thread::{ThreadId, current as current_thread};

#[cfg(loom)]
use loom::sync::{
    Arc, Condvar, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicU8, Ordering, fence},
};
#[cfg(not(loom))]
use std::sync::{
    Arc, Condvar, Mutex, MutexGuard,
    atomic::{AtomicBool, AtomicU8, Ordering, fence},
};

/// A mutator's allocation cache, as the world knows it: the collector
/// flushes the caches of idle mutators (see [`World::idle_caches`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CachePtr(pub(crate) NonNull<MCache>);

// SAFETY: the pointer is dereferenced only by the collector, and only for
// mutators that cannot touch their cache at that moment (see
// `World::idle_caches`).
unsafe impl Send for CachePtr {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Status {
    Outside,
    Running,
    Parked,
    Blocking,
    /// The mutator is the active collector.
    Collecting,
}

/// A mutator's status word. Written by its mutator (enter, exit, and the
/// locked transitions) and by the collector under the lock (restart).
#[derive(Debug)]
struct StatusWord(AtomicU8);

impl StatusWord {
    fn get(&self) -> Status {
        match self.0.load(Ordering::Acquire) {
            0 => Status::Outside,
            1 => Status::Running,
            2 => Status::Parked,
            3 => Status::Blocking,
            4 => Status::Collecting,
            v => unreachable!("status word {v}"),
        }
    }

    fn set(&self, s: Status) {
        self.0.store(s as u8, Ordering::Release);
    }
}

/// A registered mutator: its index in the world's table and its status
/// word, which `enter` and `exit` use without the lock.
#[derive(Debug, Clone)]
pub(crate) struct MutatorId {
    index: usize,
    status: Arc<StatusWord>,
}

impl MutatorId {
    /// The index (reused after the mutator deregisters).
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    fn status(&self) -> Status {
        self.status.get()
    }
}

/// A registered mutator, as the world's table holds it.
#[derive(Debug)]
struct Registered {
    status: Arc<StatusWord>,
    cache: CachePtr,
    /// The thread it belongs to (a `Mutator` is not `Send`).
    thread: ThreadId,
}

#[derive(Debug, Default)]
struct State {
    /// Indexed by `MutatorId::index`; `None` for deregistered slots.
    mutators: Vec<Option<Registered>>,
    /// Whether a collector holds the world (from `begin_collection` to
    /// `restart`); mirrored in `World::collecting`.
    collecting: bool,
    /// Collections started; a waiter compares it to know one finished.
    epoch: u64,
    /// Whether the collector has asked mutators to stop; mirrored in
    /// `World::stopping`.
    stopping: bool,
    /// The thread of the active collector, if any.
    collector: Option<ThreadId>,
    /// The epoch of the last collection given up before it marked
    /// ([`World::abandon`]).
    abandoned: Option<u64>,
    /// Caches of mutators dropped during a collection (see
    /// [`World::deregister`]): the collector
    /// may be flushing them. [`World::idle_caches`] includes them, so the
    /// collector gives their spans back with the world stopped, and
    /// `restart` frees them, empty.
    orphans: Vec<CachePtr>,
}

impl State {
    fn statuses(&self) -> impl Iterator<Item = Status> + '_ {
        self.mutators.iter().flatten().map(|m| m.status.get())
    }

    /// Whether a mutator is inside a scope.
    fn any_running(&self) -> bool {
        self.statuses().any(|st| st == Status::Running)
    }

    /// Whether a mutator of the calling thread other than `me` is
    /// `Running`.
    fn running_here(&self, me: Option<&MutatorId>) -> bool {
        let here = current_thread().id();
        self.mutators.iter().enumerate().any(|(i, m)| {
            m.as_ref().is_some_and(|m| {
                m.thread == here
                    && m.status.get() == Status::Running
                    && me.is_none_or(|id| id.index != i)
            })
        })
    }

    /// Why the calling thread must not wait for a collection or begin one
    /// (`me` is its mutator doing so, if any), or `None`: another of its
    /// mutators is `Running` (a scope of this heap opened inside another
    /// on one thread), or the thread is the collector (a destructor or
    /// `Trace` impl calling back into the heap). Either way the
    /// collection would wait for this thread, which would wait for it (see
    /// "Nested scopes" in the module docs).
    fn nested(&self, me: Option<&MutatorId>) -> Option<&'static str> {
        if self.collector.is_some_and(|t| t == current_thread().id()) {
            return Some(
                "spangc: this thread is running a collection (a destructor or Trace impl called \
                 back into the heap), and waiting for a collection here would deadlock",
            );
        }
        self.running_here(me).then_some(
            "spangc: nested Mutator::enter: this thread is inside another scope of the same \
             heap, and waiting for a collection here would deadlock; use the outer scope instead",
        )
    }
}

/// The stop-the-world protocol. See the module docs.
#[derive(Debug)]
pub(crate) struct World {
    state: Mutex<State>,
    /// Signalled when a collection ends.
    resumed: Condvar,
    /// Signalled when a mutator stops running (parks, blocks, exits) while
    /// a collector is stopping the world.
    stopped: Condvar,
    /// `State::collecting` and `State::stopping` for the lock-free paths
    /// (see "Entering and leaving without the lock"); written under the
    /// lock.
    collecting: AtomicBool,
    stopping: AtomicBool,
    /// Safepoint poll flag: set while a collection is wanted or active.
    /// Relaxed: a mutator that misses a fresh store sees it at its next
    /// safepoint; the protocol's real decisions happen under the lock or
    /// through the status words. Always std's (scopes cache its address),
    /// also in the loom models, which do not depend on it.
    poll: std::sync::atomic::AtomicBool,
    /// Whether allocation asked for a collection (a hint, like `poll`).
    wanted: std::sync::atomic::AtomicBool,
    /// Stress mode: every safepoint collects, so the poll flag stays up.
    stress: bool,
    /// Whether the fences are asymmetric (see the module docs).
    asymmetric: bool,
}

/// Proof that the caller is the collector; [`World::restart`] consumes it.
#[must_use = "the world must be restarted"]
pub(crate) struct Collector {
    me: Option<MutatorId>,
    /// The epoch of this collection.
    pub(crate) epoch: u64,
    /// Whether a collection was wanted when this one began (it clears
    /// the request), for [`World::abandon`].
    was_wanted: bool,
}

impl World {
    /// A world whose safepoints all collect (`stress`) or not.
    pub(crate) fn new(stress: bool) -> World {
        World {
            state: Mutex::new(State::default()),
            resumed: Condvar::new(),
            stopped: Condvar::new(),
            collecting: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            poll: std::sync::atomic::AtomicBool::new(stress),
            wanted: std::sync::atomic::AtomicBool::new(false),
            stress,
            asymmetric: !cfg!(loom) && spangc_arena::os::process_barrier_available(),
        }
    }

    /// The mutator's side of the fence pair (see the module docs).
    #[inline(always)]
    fn light_fence(&self) {
        if self.asymmetric {
            std::sync::atomic::compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// The collector's side of the fence pair.
    fn heavy_fence(&self) {
        if self.asymmetric {
            spangc_arena::os::process_barrier();
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// Panics, after releasing the lock, if the calling thread must not
    /// wait for a collection or begin one (see `State::nested`).
    fn check_not_nested<'a>(
        &self,
        s: MutexGuard<'a, State>,
        me: Option<&MutatorId>,
    ) -> MutexGuard<'a, State> {
        if let Some(why) = s.nested(me) {
            drop(s);
            panic!("{why}");
        }
        s
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Poisoning: a panic while holding this lock can only come from a
        // bug in this module (no user code runs under it, and the nested-
        // scope check lets go of it before panicking); recover the state
        // rather than cascade.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, cv: &Condvar, s: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        cv.wait(s).unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new mutator (status `Outside`) of the calling thread,
    /// with its cache.
    pub(crate) fn register(&self, cache: CachePtr) -> MutatorId {
        self.register_on(cache, current_thread().id())
    }

    /// Registers a new mutator of `thread`.
    fn register_on(&self, cache: CachePtr, thread: ThreadId) -> MutatorId {
        let mut s = self.lock();
        let index = match s.mutators.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                s.mutators.push(None);
                s.mutators.len() - 1
            }
        };
        let status = Arc::new(StatusWord(AtomicU8::new(Status::Outside as u8)));
        s.mutators[index] = Some(Registered {
            status: status.clone(),
            cache,
            thread,
        });
        MutatorId { index, status }
    }

    /// Removes a mutator, which must be `Outside`. Returns `true` if the
    /// caller now owns its cache alone; `false` if the world took it over,
    /// which happens when the mutator is dropped during a collection (the
    /// collector may be flushing the cache, so `restart` frees it). Waiting
    /// for the collection instead could deadlock: from inside another scope
    /// of the thread (say, while a nested scope's panic unwinds), and when
    /// the collection waits for a sweeper running a destructor that joins
    /// this thread. The cache must be a leaked `Box<MCache>` (as
    /// `Mutator`'s is).
    pub(crate) fn deregister(&self, id: &MutatorId) -> bool {
        let mut s = self.lock();
        let st = id.status();
        assert_eq!(
            st,
            Status::Outside,
            "deregistering a mutator that is {st:?}"
        );
        if s.collecting {
            let m = s.mutators[id.index].take().expect("registered");
            s.orphans.push(m.cache);
            return false;
        }
        s.mutators[id.index] = None;
        true
    }

    /// The safepoint poll: whether the slow path must run.
    #[inline(always)]
    pub(crate) fn poll(&self) -> bool {
        self.poll.load(Ordering::Relaxed)
    }

    /// The poll flag itself, for scopes that cache its address so that a
    /// poll is one load.
    pub(crate) fn poll_flag(&self) -> &std::sync::atomic::AtomicBool {
        &self.poll
    }

    /// Whether every safepoint collects.
    pub(crate) fn stress(&self) -> bool {
        self.stress
    }

    /// Asks for a collection at the next safepoint (allocation crossed the
    /// trigger). Cheap to call repeatedly.
    pub(crate) fn want_collection(&self) {
        if !self.wanted.load(Ordering::Relaxed) {
            self.wanted.store(true, Ordering::Relaxed);
            self.poll.store(true, Ordering::Relaxed);
        }
    }

    /// Whether a collection was asked for and none has started since.
    pub(crate) fn collection_wanted(&self) -> bool {
        self.wanted.load(Ordering::Relaxed)
    }

    /// `Outside -> Running`, waiting while a collection is in progress.
    /// Without the lock unless a collector is active (see the module docs).
    #[inline(always)]
    pub(crate) fn enter(&self, id: &MutatorId) {
        debug_assert_eq!(id.status(), Status::Outside, "enter from {:?}", id.status());
        id.status.set(Status::Running);
        self.light_fence();
        if self.collecting.load(Ordering::Acquire) {
            self.enter_during_collection(id);
        }
    }

    /// The slow path of [`World::enter`]: a collector is active, and may
    /// have seen us Running: step back under the lock (waking it if it is
    /// waiting for us), then wait.
    #[cold]
    #[inline(never)]
    fn enter_during_collection(&self, id: &MutatorId) {
        let mut s = self.lock();
        id.status.set(Status::Outside);
        self.wake_stopper(&s);
        if s.collecting {
            s = self.check_not_nested(s, Some(id));
        }
        while s.collecting {
            s = self.wait(&self.resumed, s);
        }
        id.status.set(Status::Running);
    }

    /// `Running -> Outside`. Without the lock unless a collector is
    /// stopping the world (see the module docs).
    #[inline(always)]
    pub(crate) fn exit(&self, id: &MutatorId) {
        debug_assert_eq!(id.status(), Status::Running, "exit from {:?}", id.status());
        id.status.set(Status::Outside);
        self.light_fence();
        if self.stopping.load(Ordering::Relaxed) {
            self.exit_while_stopping();
        }
    }

    /// The slow path of [`World::exit`]: wake the collector that is
    /// stopping the world.
    #[cold]
    #[inline(never)]
    fn exit_while_stopping(&self) {
        let s = self.lock();
        self.wake_stopper(&s);
    }

    /// `Running -> Blocking`: the mutator will not touch the heap until
    /// [`World::end_blocking`].
    pub(crate) fn begin_blocking(&self, id: &MutatorId) {
        // Checked here, while still `Running`, not when blocking ends: a
        // panic then would leave the mutator `Blocking` (its cache open to
        // a collector) under a scope that goes on. While another mutator
        // of this thread is `Running`, no collection could run during the
        // blocking call anyway.
        let s = self.check_not_nested(self.lock(), Some(id));
        let st = id.status();
        assert_eq!(st, Status::Running, "blocking from {st:?}");
        id.status.set(Status::Blocking);
        self.wake_stopper(&s);
    }

    /// `Blocking -> Running`, waiting while a collection is in progress.
    pub(crate) fn end_blocking(&self, id: &MutatorId) {
        let mut s = self.lock();
        // Waiting cannot deadlock: `begin_blocking` checked that no other
        // mutator of this thread was `Running` and that the thread was not
        // the collector, scopes opened during the blocking call have
        // closed, and a collection it ran has ended.
        while s.collecting {
            s = self.wait(&self.resumed, s);
        }
        let st = id.status();
        assert_eq!(st, Status::Blocking, "end_blocking from {st:?}");
        id.status.set(Status::Running);
    }

    /// At a safepoint: if a collector is active, park until it restarts the
    /// world and return `true` (the caller's caches are stale). Returns
    /// `false` without waiting otherwise.
    pub(crate) fn park_if_collecting(&self, id: &MutatorId) -> bool {
        let s = self.lock();
        if !s.collecting {
            return false;
        }
        drop(self.park_locked(s, id));
        true
    }

    fn park_locked<'a>(
        &'a self,
        s: MutexGuard<'a, State>,
        id: &MutatorId,
    ) -> MutexGuard<'a, State> {
        let st = id.status();
        assert_eq!(st, Status::Running, "park from {st:?}");
        let mut s = self.check_not_nested(s, Some(id));
        id.status.set(Status::Parked);
        self.wake_stopper(&s);
        // `restart` sets us back to Running; wait for that, not merely for
        // `collecting` to drop (another collection may have begun since).
        while id.status() == Status::Parked {
            s = self.wait(&self.resumed, s);
        }
        s
    }

    /// Becomes the collector. `me` is the calling mutator, if the caller is
    /// one (it must be `Running`). If another collection is active, a
    /// mutator parks until it ends and then `None` is returned (the caller
    /// decides whether it still needs to collect); a non-mutator waits.
    pub(crate) fn begin_collection(&self, me: Option<&MutatorId>) -> Option<Collector> {
        // Every path below waits for a collection or runs one, which
        // waits for every `Running` mutator; checked before anything
        // changes, so a panic leaves the world as it was.
        let s = self.check_not_nested(self.lock(), me);
        self.begin_locked(s, me)
    }

    /// A collection for a thread whose last mutator is being dropped
    /// (`Mutator::before_exit`), begun from outside any scope. Nothing here
    /// may wait for another thread indefinitely, since that thread may be
    /// waiting for this one (a join): so `None` if another mutator is
    /// `Running` (inside a scope; a collection would wait for it) or the
    /// thread is nested, and if a collection is running, a wait of at most
    /// `limit` for it to end, then `None` (that collection, or none, has
    /// done the work). A mutator that enters meanwhile waits for the
    /// collection begun here instead of holding it up.
    pub(crate) fn begin_exit_collection(&self, limit: std::time::Duration) -> Option<Collector> {
        let deadline = std::time::Instant::now() + limit;
        let mut s = self.lock();
        if s.nested(None).is_some() {
            return None;
        }
        if s.collecting {
            while s.collecting && std::time::Instant::now() < deadline {
                drop(s);
                std::thread::sleep(std::time::Duration::from_micros(200));
                s = self.lock();
            }
            return None;
        }
        if s.any_running() {
            return None;
        }
        let c = self.begin_locked(s, None)?;
        // A mutator entering without the lock may have become `Running`
        // before it could see the collection: it would hold up `stop`.
        // After the fence in `begin_locked`, every later one sees it.
        if self.lock().any_running() {
            self.abandon(c);
            return None;
        }
        Some(c)
    }

    /// Ends a collection that has not stopped the world, having done
    /// nothing: as `restart`, and its waiters try again rather than take
    /// it for done, and a request for a collection it cleared stands.
    pub(crate) fn abandon(&self, c: Collector) {
        self.lock().abandoned = Some(c.epoch);
        if c.was_wanted {
            self.wanted.store(true, Ordering::Relaxed);
        }
        self.restart(c);
    }

    fn begin_locked<'a>(
        &'a self,
        mut s: MutexGuard<'a, State>,
        me: Option<&MutatorId>,
    ) -> Option<Collector> {
        while s.collecting {
            let epoch = s.epoch;
            s = match me {
                Some(id) => self.park_locked(s, id),
                None => {
                    while s.collecting && s.epoch == epoch {
                        s = self.wait(&self.resumed, s);
                    }
                    s
                }
            };
            // A collection abandoned before it marked did none of the
            // work its waiters wait for: try again.
            if s.abandoned != Some(epoch) {
                return None;
            }
        }
        s.collecting = true;
        s.collector = Some(current_thread().id());
        self.collecting.store(true, Ordering::Relaxed);
        self.heavy_fence();
        s.epoch += 1;
        if let Some(id) = me {
            let st = id.status();
            assert_eq!(st, Status::Running, "collecting from {st:?}");
            id.status.set(Status::Collecting);
        }
        let was_wanted = self.wanted.swap(false, Ordering::Relaxed);
        self.poll.store(true, Ordering::Relaxed);
        Some(Collector {
            me: me.cloned(),
            epoch: s.epoch,
            was_wanted,
        })
    }

    /// The caches of mutators that are `Outside` or `Blocking`, and the
    /// orphaned ones, for the collector to flush. Such a mutator cannot
    /// touch its cache until the collection ends: `end_blocking` and
    /// `deregister` wait while one is in progress (or orphan the cache),
    /// and `enter` backs off when it finds one (see the module docs); so
    /// the collector (the holder of `c`) has each returned cache to itself
    /// until it calls `restart`.
    pub(crate) fn idle_caches(&self, c: &Collector) -> Vec<CachePtr> {
        let s = self.lock();
        debug_assert!(s.collecting && s.epoch == c.epoch);
        s.mutators
            .iter()
            .flatten()
            .filter(|m| matches!(m.status.get(), Status::Outside | Status::Blocking))
            .map(|m| m.cache)
            .chain(s.orphans.iter().copied())
            .collect()
    }

    /// Stops the world: returns once no mutator but the collector is
    /// `Running`.
    pub(crate) fn stop(&self, c: &Collector) {
        let mut s = self.lock();
        debug_assert!(s.collecting && s.epoch == c.epoch);
        s.stopping = true;
        self.stopping.store(true, Ordering::Relaxed);
        self.heavy_fence();
        while s.statuses().any(|st| st == Status::Running) {
            s = self.wait(&self.stopped, s);
        }
    }

    /// Ends the collection: parked mutators become `Running` and wake.
    pub(crate) fn restart(&self, c: Collector) {
        let mut s = self.lock();
        s.collecting = false;
        s.collector = None;
        let orphans = std::mem::take(&mut s.orphans);
        s.stopping = false;
        self.stopping.store(false, Ordering::Relaxed);
        self.collecting.store(false, Ordering::Release);
        for m in s.mutators.iter().flatten() {
            if m.status.get() == Status::Parked {
                m.status.set(Status::Running);
            }
        }
        if let Some(id) = &c.me {
            id.status.set(Status::Running);
        }
        // A collection requested while this one ran (e.g. a mutator that
        // crossed the new trigger already), or stress mode, keeps the poll
        // flag up.
        self.poll.store(
            self.stress || self.wanted.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        drop(s);
        self.resumed.notify_all();
        for cache in orphans {
            // SAFETY: an orphan's mutator is gone and this collection, the
            // last user of its cache, is over; `deregister` documents that
            // the cache is a leaked `Box`, freed once, here.
            drop(unsafe { Box::from_raw(cache.0.as_ptr()) });
        }
    }

    /// Tells a collector waiting in [`World::stop`] that a mutator left
    /// `Running`. Only a stopping collector waits on `stopped`, so with
    /// none this skips the notify (a futex system call).
    fn wake_stopper(&self, s: &State) {
        if s.stopping {
            self.stopped.notify_all();
        }
    }

    /// Whether a mutator of the calling thread is `Running` (inside a
    /// scope of this heap).
    pub(crate) fn running_here(&self) -> bool {
        self.lock().running_here(None)
    }

    /// Whether the world is stopped (for assertions): a collector has
    /// stopped it and no mutator is `Running`. `enter` sets `Running`
    /// before it looks for a collector and steps back at once when it finds
    /// one, so a `Running` status seen here may be such a passing one
    /// (`verify::before_mark` saw one, in a stress test whose threads enter
    /// while another collects): this waits for those to step back, as
    /// `stop` does, and answers `false` if one is still `Running` after ten
    /// seconds.
    pub(crate) fn is_stopped(&self) -> bool {
        let mut s = self.lock();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while s.stopping && s.statuses().any(|st| st == Status::Running) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            s = match self.stopped.wait_timeout(s, left) {
                Ok((s, _)) => s,
                Err(e) => e.into_inner().0,
            };
        }
        s.stopping
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// A cache pointer the protocol tests never dereference.
    fn no_cache() -> CachePtr {
        CachePtr(NonNull::dangling())
    }

    /// A mutator for these tests, which move mutators between threads
    /// (the public `Mutator` cannot): registered on a thread that has
    /// exited, so no test thread counts as its own (see "Nested scopes").
    fn register(w: &World) -> MutatorId {
        let gone = std::thread::spawn(|| std::thread::current().id());
        w.register_on(no_cache(), gone.join().unwrap())
    }

    #[test]
    fn collector_waits_for_running_mutator_to_park() {
        let w = Arc::new(World::new(false));
        let m = register(&w);
        w.enter(&m);
        let parked = Arc::new(AtomicUsize::new(0));
        let t = {
            let (w, parked, m) = (w.clone(), parked.clone(), m.clone());
            std::thread::spawn(move || {
                // Run "code" until the poll flag says stop.
                while !w.poll() {
                    std::thread::yield_now();
                }
                assert!(w.park_if_collecting(&m));
                parked.fetch_add(1, Ordering::SeqCst);
                w.exit(&m);
            })
        };
        let c = w.begin_collection(None).expect("no other collector");
        w.stop(&c);
        assert!(w.is_stopped());
        assert_eq!(parked.load(Ordering::SeqCst), 0, "still parked");
        w.restart(c);
        t.join().unwrap();
        assert_eq!(parked.load(Ordering::SeqCst), 1);
        w.deregister(&m);
    }

    /// A mutator caught between `enter`'s `Running` store and its look at
    /// the collector flag is `Running` for a moment after `stop` returned;
    /// `is_stopped` waits for it to step back instead of answering `false`
    /// (as it did once in `tests/mutators.rs::nested_scopes_race_collections`,
    /// whose verify mode asserts it before marking).
    #[test]
    fn is_stopped_waits_for_a_mutator_passing_through_enter() {
        let w = Arc::new(World::new(false));
        let m = register(&w);
        let c = w.begin_collection(None).expect("no other collector");
        w.stop(&c);
        // `enter`'s first step, as another thread's `enter` would take it
        // now; its slow path follows a little later.
        m.status.set(Status::Running);
        let t = {
            let (w, m) = (w.clone(), m.clone());
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                w.enter_during_collection(&m);
                w.exit(&m);
            })
        };
        assert!(w.is_stopped());
        assert_eq!(m.status(), Status::Outside, "stepped back");
        w.restart(c);
        t.join().unwrap();
        w.deregister(&m);
    }

    #[test]
    fn second_collector_mutator_parks_then_gets_none() {
        let w = Arc::new(World::new(false));
        let a = register(&w);
        w.enter(&a);
        let c = w.begin_collection(None).unwrap();
        let t = {
            let (w, a) = (w.clone(), a.clone());
            std::thread::spawn(move || {
                let r = w.begin_collection(Some(&a));
                assert!(r.is_none(), "must park behind the active collector");
                w.exit(&a);
            })
        };
        w.stop(&c);
        w.restart(c);
        t.join().unwrap();
    }

    /// Waiters behind a collection that is abandoned (an exit collection
    /// whose sweep would wait too long) try again instead of taking it
    /// for done: the parked mutator and the non-mutator each get a
    /// collection of their own; and the request it cleared stands.
    #[test]
    fn waiters_behind_an_abandoned_collection_try_again() {
        let w = Arc::new(World::new(false));
        let a = register(&w);
        w.want_collection();
        let c = w.begin_collection(None).unwrap();
        assert!(!w.collection_wanted());
        w.abandon(c);
        assert!(w.collection_wanted(), "the request stands");
        let c = w.begin_collection(None).unwrap();
        let waiter = |me: Option<MutatorId>| {
            let w = w.clone();
            std::thread::spawn(move || {
                if let Some(id) = &me {
                    w.enter(id);
                }
                let c = w.begin_collection(me.as_ref()).expect("tries again");
                w.stop(&c);
                w.restart(c);
                if let Some(id) = &me {
                    w.exit(id);
                }
            })
        };
        let (t1, t2) = (waiter(Some(a)), waiter(None));
        std::thread::sleep(std::time::Duration::from_millis(50));
        w.abandon(c);
        t1.join().unwrap();
        t2.join().unwrap();
    }

    #[test]
    fn outside_and_blocking_mutators_do_not_hold_up_the_world() {
        let w = World::new(false);
        let a = register(&w);
        let b = register(&w);
        w.enter(&b);
        w.begin_blocking(&b);
        let c = w.begin_collection(None).unwrap();
        assert_eq!(w.idle_caches(&c).len(), 2);
        w.stop(&c); // returns at once: a is Outside, b is Blocking
        w.restart(c);
        w.end_blocking(&b);
        w.exit(&b);
        w.deregister(&a);
        w.deregister(&b);
    }

    #[test]
    fn a_woken_but_unscheduled_mutator_counts_as_running() {
        let w = Arc::new(World::new(false));
        let m = register(&w);
        w.enter(&m);
        let c1 = w.begin_collection(None).unwrap();
        let t = {
            let (w, m) = (w.clone(), m.clone());
            std::thread::spawn(move || {
                assert!(w.park_if_collecting(&m));
                // Woken by the first restart. Sleep before the next
                // safepoint: the second collection must wait for us.
                std::thread::sleep(Duration::from_millis(50));
                assert!(w.park_if_collecting(&m));
                w.exit(&m);
            })
        };
        while m.status() != Status::Parked {
            std::thread::yield_now();
        }
        w.stop(&c1);
        w.restart(c1);
        let c2 = w.begin_collection(None).unwrap();
        w.stop(&c2);
        // The mutator re-parked (or exited) before stop returned.
        assert_ne!(m.status(), Status::Running);
        w.restart(c2);
        t.join().unwrap();
    }

    /// The message of the panic `f` must raise.
    fn panic_of(f: impl FnOnce()) -> String {
        let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_err();
        e.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    /// "Nested scopes": with one mutator of this thread `Running`, another
    /// of its mutators, or the thread without one, cannot begin a
    /// collection, block or park; the panic changes nothing, so the
    /// running mutator itself can then collect. A thread running a
    /// collection cannot enter during it. Blocking mutators do not count.
    #[test]
    fn nested_scopes_panic_where_they_would_wait() {
        let w = World::new(false);
        let (a, b) = (w.register(no_cache()), w.register(no_cache()));
        w.enter(&a);
        w.enter(&b);
        let nested = "nested Mutator::enter";
        assert!(panic_of(|| drop(w.begin_collection(Some(&b)))).contains(nested));
        assert!(panic_of(|| drop(w.begin_collection(None))).contains(nested));
        assert!(panic_of(|| w.begin_blocking(&b)).contains(nested));
        assert_eq!(b.status(), Status::Running, "nothing changed");
        w.exit(&b);
        let c = w.begin_collection(Some(&a)).unwrap();
        assert!(panic_of(|| w.enter(&b)).contains("running a collection"));
        assert_eq!(b.status(), Status::Outside);
        w.stop(&c);
        w.restart(c);
        w.begin_blocking(&a);
        // `a` blocks: `b` may now collect.
        w.enter(&b);
        let c = w.begin_collection(Some(&b)).unwrap();
        w.stop(&c);
        w.restart(c);
        w.exit(&b);
        w.end_blocking(&a);
        w.exit(&a);
        assert!(w.deregister(&a) && w.deregister(&b));
    }

    /// A mutator entering while a collection is active takes the slow
    /// path: it waits for the restart, and the collector does not wait for
    /// it (it went back to `Outside`).
    #[test]
    fn enter_during_a_collection_waits_for_it() {
        let w = Arc::new(World::new(false));
        let m = register(&w);
        let c = w.begin_collection(None).unwrap();
        let entered = Arc::new(AtomicUsize::new(0));
        let t = {
            let (w, m, entered) = (w.clone(), m.clone(), entered.clone());
            std::thread::spawn(move || {
                w.enter(&m);
                entered.fetch_add(1, Ordering::SeqCst);
                w.exit(&m);
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        w.stop(&c); // must not wait for the entering mutator
        assert_eq!(
            entered.load(Ordering::SeqCst),
            0,
            "entered during the collection"
        );
        w.restart(c);
        t.join().unwrap();
        assert_eq!(entered.load(Ordering::SeqCst), 1);
        w.deregister(&m);
    }
}

/// Loom models of the lock-free enter and exit (run with
/// `RUSTFLAGS="--cfg loom" cargo test -p spangc --release --lib loom`).
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::cell::UnsafeCell;

    /// A mutator enters, uses its cache and exits, while a collector
    /// begins, flushes the caches it finds idle, stops the world and
    /// restarts it. The cache is a loom cell: if the collector ever
    /// flushed it while the mutator used it, loom reports the race. The
    /// collector's stop must also return (no lost wakeup), or the model
    /// deadlocks.
    #[test]
    fn loom_enter_exit_against_a_collector() {
        loom::model(|| {
            let w = Arc::new(World::new(false));
            let cache = Arc::new(UnsafeCell::new(0u32));
            // Registered by its own thread, as `Mutator` is.
            let mutator = {
                let (w, cache) = (w.clone(), cache.clone());
                loom::thread::spawn(move || {
                    let m = w.register(CachePtr(NonNull::dangling()));
                    w.enter(&m);
                    // SAFETY: the protocol under test gives the running
                    // mutator its cache to itself.
                    cache.with_mut(|c| unsafe { *c += 1 });
                    w.exit(&m);
                    m
                })
            };
            let c = w.begin_collection(None).unwrap();
            for _ in w.idle_caches(&c) {
                // SAFETY: as above, for an idle mutator's cache.
                cache.with_mut(|c| unsafe { *c += 10 });
            }
            w.stop(&c);
            w.restart(c);
            let m = mutator.join().unwrap();
            w.deregister(&m);
        });
    }
}
