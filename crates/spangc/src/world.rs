//! Stopping the world: how a collector gets every mutator to a safepoint,
//! and how mutators wait for it.
//!
//! Each registered mutator has a status, changed only under the world
//! lock:
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
//!    mutators hold no `Gc` and no cached spans; `Parked` ones are at a
//!    safepoint.
//! 4. The collector marks; nothing else touches the heap.
//! 5. [`World::restart`]: every `Parked` mutator becomes `Running` *under
//!    the lock, by the collector*, and is woken. A mutator that has not yet
//!    been scheduled therefore counts as running for the next collection,
//!    which will wait for it to flush its (now stale) allocation cache and
//!    reach a safepoint again: a stale cache never survives into a second
//!    collection.
//!
//! A safepoint's fast path is one relaxed load of [`World::poll`]: it is
//! set while a collection is wanted (the allocator crossed the trigger) or
//! in progress. Liveness needs every `Running` mutator to reach a safepoint
//! or `blocking()` soon; see `docs/api.md` for what embedders must do.

use spangc_sweep::MCache;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// A mutator's allocation cache, as the world knows it: the collector
/// flushes the caches of idle mutators (see [`World::idle_caches`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CachePtr(pub(crate) NonNull<MCache>);

// SAFETY: the pointer is dereferenced only by the collector, and only for
// mutators that cannot touch their cache at that moment (see
// `World::idle_caches`).
unsafe impl Send for CachePtr {}

/// A mutator's index in the world's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MutatorId(usize);

impl MutatorId {
    /// The index (reused after the mutator deregisters).
    pub(crate) fn index(self) -> usize {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Outside,
    Running,
    Parked,
    Blocking,
    /// The mutator is the active collector.
    Collecting,
}

#[derive(Debug, Default)]
struct State {
    /// Indexed by `MutatorId`; `None` for deregistered slots.
    mutators: Vec<Option<Status>>,
    /// Each registered mutator's cache, parallel to `mutators`.
    caches: Vec<Option<CachePtr>>,
    /// Whether a collector holds the world (from `begin_collection` to
    /// `restart`).
    collecting: bool,
    /// Collections started; a waiter compares it to know one finished.
    epoch: u64,
    /// Whether the collector has asked mutators to stop.
    stopping: bool,
}

/// The stop-the-world protocol. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct World {
    state: Mutex<State>,
    /// Signalled when a collection ends.
    resumed: Condvar,
    /// Signalled when a mutator stops running (parks, blocks, exits).
    stopped: Condvar,
    /// Safepoint poll flag: set while a collection is wanted or active.
    /// Relaxed: a mutator that misses a fresh store sees it at its next
    /// safepoint; the protocol's real decisions happen under the lock.
    poll: AtomicBool,
    /// Whether allocation asked for a collection.
    wanted: AtomicBool,
    /// Stress mode: every safepoint collects, so the poll flag stays up.
    stress: bool,
}

/// Proof that the caller is the collector; [`World::restart`] consumes it.
#[must_use = "the world must be restarted"]
pub(crate) struct Collector {
    me: Option<MutatorId>,
    /// The epoch of this collection.
    pub(crate) epoch: u64,
}

impl World {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Poisoning: a panic while holding this lock can only come from a
        // bug in this module (no user code runs under it); recover the
        // state rather than cascade.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new mutator (status `Outside`) with its cache.
    pub(crate) fn register(&self, cache: CachePtr) -> MutatorId {
        let mut s = self.lock();
        let i = match s.mutators.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                s.mutators.push(None);
                s.caches.push(None);
                s.mutators.len() - 1
            }
        };
        s.mutators[i] = Some(Status::Outside);
        s.caches[i] = Some(cache);
        MutatorId(i)
    }

    /// Removes a mutator, which must be `Outside`, waiting while a
    /// collection is in progress (the collector may be using its cache).
    /// Afterwards the caller owns its cache alone.
    pub(crate) fn deregister(&self, id: MutatorId) {
        let mut s = self.lock();
        while s.collecting {
            s = self.resumed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.caches[id.0] = None;
        let st = s.mutators[id.0].take();
        assert_eq!(
            st,
            Some(Status::Outside),
            "deregistering a mutator that is {st:?}"
        );
        Self::wake_stopper(&self.stopped, &s);
    }

    /// A world whose safepoints all collect (`stress`) or not.
    pub(crate) fn new(stress: bool) -> World {
        World {
            poll: AtomicBool::new(stress),
            stress,
            ..World::default()
        }
    }

    /// The safepoint poll: whether the slow path must run.
    #[inline(always)]
    pub(crate) fn poll(&self) -> bool {
        self.poll.load(Ordering::Relaxed)
    }

    /// The poll flag itself, for scopes that cache its address so that a
    /// poll is one load.
    pub(crate) fn poll_flag(&self) -> &AtomicBool {
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
    pub(crate) fn enter(&self, id: MutatorId) {
        let mut s = self.lock();
        while s.collecting {
            s = self.resumed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        let st = &mut s.mutators[id.0];
        assert_eq!(*st, Some(Status::Outside), "enter from {st:?}");
        *st = Some(Status::Running);
    }

    /// `Running -> Outside`.
    pub(crate) fn exit(&self, id: MutatorId) {
        let mut s = self.lock();
        let st = &mut s.mutators[id.0];
        assert_eq!(*st, Some(Status::Running), "exit from {st:?}");
        *st = Some(Status::Outside);
        Self::wake_stopper(&self.stopped, &s);
    }

    /// `Running -> Blocking`: the mutator will not touch the heap until
    /// [`World::end_blocking`].
    pub(crate) fn begin_blocking(&self, id: MutatorId) {
        let mut s = self.lock();
        let st = &mut s.mutators[id.0];
        assert_eq!(*st, Some(Status::Running), "blocking from {st:?}");
        *st = Some(Status::Blocking);
        Self::wake_stopper(&self.stopped, &s);
    }

    /// `Blocking -> Running`, waiting while a collection is in progress.
    pub(crate) fn end_blocking(&self, id: MutatorId) {
        let mut s = self.lock();
        while s.collecting {
            s = self.resumed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        let st = &mut s.mutators[id.0];
        assert_eq!(*st, Some(Status::Blocking), "end_blocking from {st:?}");
        *st = Some(Status::Running);
    }

    /// At a safepoint: if a collector is active, park until it restarts the
    /// world and return `true` (the caller's caches are stale). Returns
    /// `false` without waiting otherwise.
    pub(crate) fn park_if_collecting(&self, id: MutatorId) -> bool {
        let s = self.lock();
        if !s.collecting {
            return false;
        }
        drop(self.park_locked(s, id));
        true
    }

    fn park_locked<'a>(
        &'a self,
        mut s: MutexGuard<'a, State>,
        id: MutatorId,
    ) -> MutexGuard<'a, State> {
        let st = &mut s.mutators[id.0];
        assert_eq!(*st, Some(Status::Running), "park from {st:?}");
        *st = Some(Status::Parked);
        Self::wake_stopper(&self.stopped, &s);
        // `restart` sets us back to Running; wait for that, not merely for
        // `collecting` to drop (another collection may have begun since).
        while s.mutators[id.0] == Some(Status::Parked) {
            s = self.resumed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s
    }

    /// Becomes the collector. `me` is the calling mutator, if the caller is
    /// one (it must be `Running`). If another collection is active, a
    /// mutator parks until it ends and then `None` is returned (the caller
    /// decides whether it still needs to collect); a non-mutator waits.
    pub(crate) fn begin_collection(&self, me: Option<MutatorId>) -> Option<Collector> {
        let mut s = self.lock();
        if s.collecting {
            match me {
                Some(id) => drop(self.park_locked(s, id)),
                None => {
                    let epoch = s.epoch;
                    while s.collecting && s.epoch == epoch {
                        s = self.resumed.wait(s).unwrap_or_else(|e| e.into_inner());
                    }
                }
            }
            return None;
        }
        s.collecting = true;
        s.epoch += 1;
        if let Some(id) = me {
            let st = &mut s.mutators[id.0];
            assert_eq!(*st, Some(Status::Running), "collecting from {st:?}");
            *st = Some(Status::Collecting);
        }
        self.wanted.store(false, Ordering::Relaxed);
        self.poll.store(true, Ordering::Relaxed);
        Some(Collector { me, epoch: s.epoch })
    }

    /// The caches of mutators that are `Outside` or `Blocking`, for the
    /// collector to flush. Such a mutator cannot touch its cache until the
    /// collection ends: `enter`, `end_blocking` and `deregister` all wait
    /// while one is in progress; so the collector (the holder of `c`) has
    /// each returned cache to itself until it calls `restart`.
    pub(crate) fn idle_caches(&self, c: &Collector) -> Vec<CachePtr> {
        let s = self.lock();
        debug_assert!(s.collecting && s.epoch == c.epoch);
        s.mutators
            .iter()
            .zip(&s.caches)
            .filter(|(m, _)| matches!(m, Some(Status::Outside | Status::Blocking)))
            .filter_map(|(_, c)| *c)
            .collect()
    }

    /// Stops the world: returns once no mutator but the collector is
    /// `Running`.
    pub(crate) fn stop(&self, c: &Collector) {
        let mut s = self.lock();
        debug_assert!(s.collecting && s.epoch == c.epoch);
        s.stopping = true;
        while s.mutators.contains(&Some(Status::Running)) {
            s = self.stopped.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Ends the collection: parked mutators become `Running` and wake.
    pub(crate) fn restart(&self, c: Collector) {
        let mut s = self.lock();
        s.collecting = false;
        s.stopping = false;
        for m in s.mutators.iter_mut().flatten() {
            if *m == Status::Parked {
                *m = Status::Running;
            }
        }
        if let Some(id) = c.me {
            s.mutators[id.0] = Some(Status::Running);
        }
        // A collection requested while this one ran (e.g. a mutator that
        // crossed the new trigger already), or stress mode, keeps the poll
        // flag up.
        self.poll.store(
            self.stress || self.wanted.load(Ordering::Relaxed),
            Ordering::Relaxed,
        );
        self.resumed.notify_all();
    }

    /// Tells a collector waiting in [`World::stop`] that a mutator left
    /// `Running`. Only a stopping collector waits on `stopped`, so with
    /// none this skips the notify, a futex system call per scope exit
    /// (1 to 2% of binary-trees, which enters a scope per tree).
    fn wake_stopper(stopped: &Condvar, s: &State) {
        if s.stopping {
            stopped.notify_all();
        }
    }

    /// Whether the world is currently stopped (for assertions).
    pub(crate) fn is_stopped(&self) -> bool {
        let s = self.lock();
        s.stopping && !s.mutators.contains(&Some(Status::Running))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache pointer the protocol tests never dereference.
    fn no_cache() -> CachePtr {
        CachePtr(NonNull::dangling())
    }
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[test]
    fn collector_waits_for_running_mutator_to_park() {
        let w = Arc::new(World::default());
        let m = w.register(no_cache());
        w.enter(m);
        let parked = Arc::new(AtomicUsize::new(0));
        let t = {
            let (w, parked) = (w.clone(), parked.clone());
            std::thread::spawn(move || {
                // Run "code" until the poll flag says stop.
                while !w.poll() {
                    std::thread::yield_now();
                }
                assert!(w.park_if_collecting(m));
                parked.fetch_add(1, Ordering::SeqCst);
                w.exit(m);
            })
        };
        let c = w.begin_collection(None).expect("no other collector");
        w.stop(&c);
        assert!(w.is_stopped());
        assert_eq!(parked.load(Ordering::SeqCst), 0, "still parked");
        w.restart(c);
        t.join().unwrap();
        assert_eq!(parked.load(Ordering::SeqCst), 1);
        w.deregister(m);
    }

    #[test]
    fn second_collector_mutator_parks_then_gets_none() {
        let w = Arc::new(World::default());
        let a = w.register(no_cache());
        w.enter(a);
        let c = w.begin_collection(None).unwrap();
        let t = {
            let w = w.clone();
            std::thread::spawn(move || {
                let r = w.begin_collection(Some(a));
                assert!(r.is_none(), "must park behind the active collector");
                w.exit(a);
            })
        };
        w.stop(&c);
        w.restart(c);
        t.join().unwrap();
    }

    #[test]
    fn outside_and_blocking_mutators_do_not_hold_up_the_world() {
        let w = World::default();
        let a = w.register(no_cache());
        let b = w.register(no_cache());
        w.enter(b);
        w.begin_blocking(b);
        let c = w.begin_collection(None).unwrap();
        w.stop(&c); // returns at once: a is Outside, b is Blocking
        w.restart(c);
        w.end_blocking(b);
        w.exit(b);
        w.deregister(a);
        w.deregister(b);
    }

    #[test]
    fn a_woken_but_unscheduled_mutator_counts_as_running() {
        let w = Arc::new(World::default());
        let m = w.register(no_cache());
        w.enter(m);
        let c1 = w.begin_collection(None).unwrap();
        let t = {
            let w = w.clone();
            std::thread::spawn(move || {
                assert!(w.park_if_collecting(m));
                // Woken by the first restart. Sleep before the next
                // safepoint: the second collection must wait for us.
                std::thread::sleep(Duration::from_millis(50));
                assert!(w.park_if_collecting(m));
                w.exit(m);
            })
        };
        while !w.lock().mutators[m.0].eq(&Some(Status::Parked)) {
            std::thread::yield_now();
        }
        w.stop(&c1);
        w.restart(c1);
        let c2 = w.begin_collection(None).unwrap();
        w.stop(&c2);
        // The mutator re-parked (or exited) before stop returned.
        assert_ne!(w.lock().mutators[m.0], Some(Status::Running));
        w.restart(c2);
        t.join().unwrap();
    }
}
