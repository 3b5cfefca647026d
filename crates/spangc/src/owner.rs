//! Owner threads: where the drop glue of objects of non-`Send` types runs.
//!
//! The brief's rule 4: the destructor of a type that is not `Send` never
//! runs on another thread. Sweeping runs on whatever thread sweeps (the
//! background sweeper, a mutator refilling its cache, a collector finishing
//! the sweep), so an object whose drop glue is bound to a thread carries
//! that thread, and a sweeper on any other thread hands it over instead of
//! dropping it.
//!
//! # Bound types and owner tags
//!
//! A type is *bound* when it has drop glue and is not known to be `Send`
//! (`Trace::SEND` is false; `TypeInfo::bound`). Each thread that
//! creates a mutator of a heap is an *owner* there, with an index in
//! `1..MAX_OWNERS`. A bound object's span carries its allocating thread's
//! index in the high bits of its type tag (`layout::OWNER_SHIFT`), so a
//! span of a bound type holds the objects of one owner, and the centrals,
//! keyed by tag, are per owner too. Other types have index 0 in their tags
//! and share spans across threads. A scope ORs its index into a bound
//! type's tag; whether a type is bound is a constant the compiler folds
//! per type, so the allocation fast path of other types is unchanged.
//!
//! # Sweeping a dead bound object ([`Owners::fate`])
//!
//! * On the owner's thread, its drop glue runs and the slot is freed, as
//!   for any object.
//! * On another thread, while the owner lives, the object is *deferred*:
//!   the sweeper keeps its slot allocated (the free hook answers `false`)
//!   and queues it to the owner. The owner runs queued drop glue when it
//!   next may ([`Owners::drain`]: the first time it enters a scope or
//!   leaves a safepoint after a collection, on its cache's slow path, in
//!   `collect`, when it drops a mutator; a thread that does none of these
//!   holds them until it does) and moves those addresses from *queued* to
//!   *dropped*. Nothing can reach a deferred
//!   object, so the next sweep of its span finds it dead again: still
//!   queued, it is kept again; dropped, it is freed without drop glue. A
//!   deferred object's slot is freed in the cycle after its owner dropped
//!   it.
//! * Once the owner thread has exited (its thread-local mark was
//!   destroyed) and its last mutator of the heap is gone, the drop glue can
//!   never run where it must, and the object is freed without it: Rust
//!   allows leaking a value, not dropping it on the wrong thread.
//!   `Stats::destructors_skipped_total` counts these. The same holds at
//!   heap teardown for objects of other threads. Addresses of a batch the
//!   owner is running (`Deferred::draining`) are kept whatever its state.
//!
//! A thread's identity is a constant thread-local with no destructor, so
//! a mutator kept in a thread-local and dropped while the thread's
//! thread-locals are destroyed still knows its objects as its own.
//!
//! So that a thread's dead objects are dropped before it exits, the
//! thread's last mutator of the heap, when dropped after the thread
//! allocated bound objects, collects (`Mutator::before_exit`), waits for
//! the sweep and runs what others handed over. Another thread may be
//! waiting for this one (a join, maybe in a destructor a sweeper runs), so
//! nothing there waits indefinitely: no collection if another mutator is
//! inside a scope, and every wait for other threads bounded
//! (`heap::EXIT_WAIT`).
//!
//! # Costs
//!
//! Nothing for `Send` types and types without drop glue. For bound types, a
//! sweep on the owner's thread costs a thread-local read and one load per
//! dead object; elsewhere a lock and a hash-set insert per dead object,
//! and the owner pays the drop glue later plus a hash-set move.
//!
//! # Owner indices
//!
//! 2047 per heap: 11 bits from bit 48 keep a tag below 2^59, which the
//! allocation cache's keys need. Indices are not reused while a span may
//! carry them: when all are taken, [`Owners::add_mutator`] asks for the
//! indices in use on spans and reuses those of exited threads with nothing
//! deferred (so a heap serves any number of threads over its life, 2047 at
//! once). The records themselves live as long as the heap, since a sweeper
//! may hold one.

use crate::layout::{OWNER_SHIFT, owner_of_tag};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Owner indices per heap, index 0 (no owner) included: 11 bits above
/// `OWNER_SHIFT`, so that a tag stays below 2^59, which the allocation
/// cache's keys need (`MCache::alloc`).
pub(crate) const MAX_OWNERS: usize = 2048;
const _: () = assert!((MAX_OWNERS << OWNER_SHIFT) <= 1 << 59);

static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

/// The owners a thread is, to mark them exited when its thread-locals are
/// destroyed.
struct ThreadMark {
    owners: RefCell<Vec<Weak<Owner>>>,
}

impl Drop for ThreadMark {
    fn drop(&mut self) {
        for o in self.owners.get_mut().iter().filter_map(Weak::upgrade) {
            o.exited.store(true, Release);
        }
    }
}

thread_local! {
    /// The thread's identity for owners (0 until first asked). A constant
    /// initialiser and no destructor: readable while the thread's other
    /// thread-locals are destroyed, when a mutator kept in one may drop.
    static THREAD_ID: Cell<u64> = const { Cell::new(0) };
    static THREAD: ThreadMark = const {
        ThreadMark {
            owners: RefCell::new(Vec::new()),
        }
    };
}

/// The calling thread's identity: unique for the process's life.
fn this_thread() -> u64 {
    THREAD_ID.with(|id| {
        if id.get() == 0 {
            id.set(NEXT_THREAD.fetch_add(1, Relaxed));
        }
        id.get()
    })
}

/// One thread's part of one heap. See the module docs.
pub(crate) struct Owner {
    index: usize,
    thread: u64,
    /// Set when the thread's thread-locals are destroyed.
    exited: AtomicBool,
    /// Mutators of the heap alive on the thread: while there is one, the
    /// thread can still run drop glue, exiting or not.
    mutators: AtomicUsize,
    /// Whether `deferred` holds any address: sweepers on the owner's thread
    /// skip the lock when it does not.
    busy: AtomicBool,
    /// Whether `deferred.pending` is non-empty: the owner's check.
    pending: AtomicBool,
    /// Set when the thread first allocates a bound object.
    allocated: AtomicBool,
    /// Set (under the table's lock) when the index went back to the free
    /// list: the record belongs to nobody.
    retired: AtomicBool,
    deferred: Mutex<Deferred>,
}

#[derive(Default)]
struct Deferred {
    /// Batches the owner is running (taken from `pending`, still
    /// `queued`; more than one if drop glue drops a mutator, which drains
    /// too): none of them may be freed meanwhile, whatever the owner's
    /// state.
    draining: u32,
    /// Queued and not yet taken by a drain: (address, type tag).
    pending: Vec<(usize, usize)>,
    /// Queued, drop glue not yet run (includes `pending`).
    queued: HashSet<usize>,
    /// Drop glue run, slot not yet freed.
    dropped: HashSet<usize>,
}

impl Owner {
    /// The bits a scope of this owner ORs into bound types' tags.
    pub(crate) fn tag_bits(&self) -> usize {
        self.index << OWNER_SHIFT
    }

    /// Notes that the thread allocated a bound object.
    pub(crate) fn note_allocated(&self) {
        if !self.allocated.load(Relaxed) {
            self.allocated.store(true, Relaxed);
        }
    }

    /// Whether the thread ever allocated a bound object.
    pub(crate) fn has_allocated(&self) -> bool {
        self.allocated.load(Relaxed)
    }

    /// Counts a mutator of the thread gone (after its last drain).
    pub(crate) fn remove_mutator(&self) {
        self.mutators.fetch_sub(1, AcqRel);
    }

    /// Mutators of the heap on the thread.
    pub(crate) fn mutators(&self) -> usize {
        self.mutators.load(Acquire)
    }

    /// Whether the thread can still run drop glue: it has not exited, or
    /// a mutator of it is still being dropped.
    fn alive(&self) -> bool {
        !self.exited.load(Acquire) || self.mutators.load(Acquire) > 0
    }

    /// Whether sweepers have queued drop glue to this owner (the check
    /// before [`Owners::drain`]).
    #[inline(always)]
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Acquire)
    }

    fn here(&self) -> bool {
        this_thread() == self.thread
    }

    fn lock(&self) -> MutexGuard<'_, Deferred> {
        // No user code runs under this lock; recover from poisoning.
        self.deferred.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update_busy(&self, d: &Deferred) {
        if d.queued.is_empty() && d.dropped.is_empty() {
            self.busy.store(false, Release);
        }
    }
}

/// What the sweeper does with a dead object ([`Owners::fate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Run its drop glue here and free it.
    Drop,
    /// Free it without drop glue (already run, or never to run).
    Free,
    /// Keep it allocated: its owner has not run its drop glue yet.
    Keep,
}

struct Table {
    all: Vec<Arc<Owner>>,
    /// Indices free for a new owner.
    free: Vec<usize>,
    next: usize,
}

/// A heap's owners. See the module docs.
pub(crate) struct Owners {
    /// By index; null where no owner was ever made. A non-null entry points
    /// into an `Arc` in `table.all`, which lives as long as `self`.
    slots: Box<[AtomicPtr<Owner>]>,
    table: Mutex<Table>,
    pub(crate) deferred_total: AtomicU64,
    pub(crate) skipped_total: AtomicU64,
}

impl Owners {
    pub(crate) fn new() -> Owners {
        Owners {
            slots: (0..MAX_OWNERS)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            table: Mutex::new(Table {
                all: Vec::new(),
                free: Vec::new(),
                next: 1,
            }),
            deferred_total: AtomicU64::new(0),
            skipped_total: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The calling thread's owner record, made on first use, for a new
    /// mutator of the thread, which it counts (under the table's lock, so
    /// that the index cannot be found reusable meanwhile). `in_use` lists
    /// the owner indices on spans (asked only when every index is taken,
    /// to reuse those of exited threads).
    ///
    /// Panics if `MAX_OWNERS - 1` threads that own objects exist at once.
    pub(crate) fn add_mutator(&self, in_use: impl FnOnce() -> Vec<usize>) -> Arc<Owner> {
        let me = this_thread();
        let mut t = self.lock();
        if let Some(o) = self.find(&t, me) {
            o.mutators.fetch_add(1, AcqRel);
            return o;
        }
        let index = match t.free.pop() {
            Some(i) => i,
            None if t.next < MAX_OWNERS => {
                t.next += 1;
                t.next - 1
            }
            None => {
                let free = reusable(&t, &in_use());
                // Their records are done with: the thread of one of them,
                // making a mutator while its thread-locals are destroyed,
                // must get a new record, not tag objects with an index
                // another thread is about to take.
                for o in t.all.iter().filter(|o| free.contains(&o.index)) {
                    o.retired.store(true, Relaxed);
                }
                t.free = free.into_iter().collect();
                t.free.pop().unwrap_or_else(|| {
                    panic!(
                        "spangc: more than {} threads own objects in this heap at once",
                        MAX_OWNERS - 1
                    )
                })
            }
        };
        let owner = Arc::new(Owner {
            index,
            thread: me,
            exited: AtomicBool::new(false),
            mutators: AtomicUsize::new(1),
            busy: AtomicBool::new(false),
            pending: AtomicBool::new(false),
            allocated: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            deferred: Mutex::new(Deferred::default()),
        });
        let marked = THREAD.try_with(|m| {
            let mut owners = m.owners.borrow_mut();
            owners.retain(|w| w.strong_count() > 0);
            owners.push(Arc::downgrade(&owner));
        });
        if marked.is_err() {
            // Made while the thread's thread-locals are destroyed: it has
            // exited already, as far as anyone after its mutators knows.
            owner.exited.store(true, Release);
        }
        self.slots[index].store(Arc::as_ptr(&owner).cast_mut(), Release);
        t.all.push(owner.clone());
        owner
    }

    /// The calling thread's owner record, if it has one.
    pub(crate) fn current(&self) -> Option<Arc<Owner>> {
        self.find(&self.lock(), this_thread())
    }

    /// The record of thread `me` in the table, if it has one. A record
    /// whose index went back to the free list belongs to nobody now.
    fn find(&self, t: &Table, me: u64) -> Option<Arc<Owner>> {
        t.all
            .iter()
            .rev()
            .find(|o| o.thread == me && !o.retired.load(Relaxed))
            .cloned()
    }

    /// The owner with index `i` (non-zero, from a bound span's tag).
    fn get(&self, i: usize) -> &Owner {
        let p = self.slots[i].load(Acquire);
        assert!(
            !p.is_null(),
            "spangc: a span carries owner index {i}, which was never made"
        );
        // SAFETY: non-null entries point into `Arc`s kept in `table.all`
        // for as long as `self` lives.
        unsafe { &*p }
    }

    /// What to do with the dead object at `addr` in a span with tag `tag`
    /// of a type with drop glue (see the module docs). `teardown`: the heap
    /// is being destroyed, so nothing can be kept.
    pub(crate) fn fate(&self, tag: usize, addr: usize, teardown: bool) -> Fate {
        let index = owner_of_tag(tag);
        if index == 0 {
            return Fate::Drop;
        }
        let owner = self.get(index);
        let alive = !teardown && owner.alive();
        if owner.busy.load(Acquire) {
            let mut d = owner.lock();
            if d.dropped.remove(&addr) {
                owner.update_busy(&d);
                return Fate::Free;
            }
            if d.queued.contains(&addr) {
                if alive || d.draining > 0 {
                    return Fate::Keep;
                }
                // It will never be drained.
                d.queued.remove(&addr);
                d.pending.clear();
                owner.update_busy(&d);
                return self.skip();
            }
        }
        // Dead since the last sweep of its span.
        if owner.here() {
            Fate::Drop
        } else if alive {
            let mut d = owner.lock();
            d.queued.insert(addr);
            d.pending.push((addr, tag));
            owner.busy.store(true, Release);
            owner.pending.store(true, Release);
            self.deferred_total.fetch_add(1, Relaxed);
            Fate::Keep
        } else {
            self.skip()
        }
    }

    /// Frees an object whose drop glue can never run where it must.
    fn skip(&self) -> Fate {
        self.skipped_total.fetch_add(1, Relaxed);
        Fate::Free
    }

    /// Runs the drop glue queued to `owner` (which must be the calling
    /// thread's), with `run(tag, addr)`, outside the lock, and marks those
    /// objects dropped. Callers check [`Owner::has_pending`] first.
    pub(crate) fn drain(&self, owner: &Owner, mut run: impl FnMut(usize, usize)) {
        debug_assert!(owner.here(), "draining another thread's owner");
        let batch = {
            let mut d = owner.lock();
            owner.pending.store(false, Relaxed);
            d.draining += 1;
            std::mem::take(&mut d.pending)
        };
        for &(addr, tag) in &batch {
            run(tag, addr);
        }
        let mut d = owner.lock();
        for (addr, _) in batch {
            if d.queued.remove(&addr) {
                d.dropped.insert(addr);
            }
        }
        d.draining -= 1;
    }
}

/// Indices of exited owners with nothing deferred that no span carries.
fn reusable(t: &Table, in_use: &[usize]) -> HashSet<usize> {
    let used: HashSet<usize> = in_use.iter().copied().collect();
    let mut live = HashSet::new();
    for o in &t.all {
        let quiet = !o.alive() && !o.busy.load(Acquire);
        if !quiet {
            live.insert(o.index);
        }
    }
    (1..MAX_OWNERS)
        .filter(|i| !used.contains(i) && !live.contains(i))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: usize = 0x1000;

    fn tag_of(o: &Owner) -> usize {
        TAG | o.tag_bits()
    }

    #[test]
    fn unbound_objects_drop_anywhere() {
        let owners = Owners::new();
        assert_eq!(owners.fate(TAG, 0x10, false), Fate::Drop);
    }

    #[test]
    fn one_owner_per_thread() {
        let owners = Owners::new();
        let a = owners.add_mutator(Vec::new);
        let b = owners.add_mutator(Vec::new);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.mutators(), 2);
        let c = std::thread::scope(|s| {
            s.spawn(|| {
                let c = owners.add_mutator(Vec::new);
                assert!(c.alive());
                c
            })
            .join()
        })
        .unwrap();
        assert_ne!(a.index, c.index);
        assert!(c.alive(), "exited, but its mutator is not dropped yet");
        c.remove_mutator();
        assert!(!c.alive(), "exited, and no mutator left");
    }

    /// The deferral protocol on one address: another thread keeps and
    /// queues it; the owner drains it; the next sweep frees it without
    /// drop glue; a second dead object swept on the owner's thread is
    /// dropped at once.
    #[test]
    fn deferred_objects_are_dropped_by_their_owner_once() {
        let owners = Owners::new();
        let owner = owners.add_mutator(Vec::new);
        let tag = tag_of(&owner);
        let sweep_elsewhere = |addr| {
            std::thread::scope(|s| s.spawn(|| owners.fate(tag, addr, false)).join()).unwrap()
        };
        assert_eq!(sweep_elsewhere(0x10), Fate::Keep);
        assert_eq!(sweep_elsewhere(0x10), Fate::Keep, "still queued");
        assert_eq!(
            owners.fate(tag, 0x10, false),
            Fate::Keep,
            "queued, even here"
        );
        assert_eq!(owners.fate(tag, 0x20, false), Fate::Drop);
        let mut ran = Vec::new();
        owners.drain(&owner, |t, a| ran.push((t, a)));
        assert_eq!(ran, [(tag, 0x10)]);
        assert!(!owner.has_pending(), "nothing left to drain");
        owners.drain(&owner, |_, _| panic!("drained twice"));
        assert_eq!(sweep_elsewhere(0x10), Fate::Free);
        assert!(!owner.busy.load(Acquire));
        assert_eq!(owners.deferred_total.load(Relaxed), 1);
        assert_eq!(owners.skipped_total.load(Relaxed), 0);
    }

    /// Objects of an exited thread are freed without drop glue, queued or
    /// not, and its index is reused once no span carries it.
    #[test]
    fn exited_owners_skip_drop_glue_and_free_their_index() {
        let owners = Owners::new();
        let (o, queued) = std::thread::scope(|s| {
            s.spawn(|| {
                let o = owners.add_mutator(Vec::new);
                let tag = tag_of(&o);
                let queued =
                    std::thread::scope(|s| s.spawn(|| owners.fate(tag, 0x10, false)).join())
                        .unwrap();
                o.remove_mutator();
                (o, queued)
            })
            .join()
        })
        .unwrap();
        assert_eq!(queued, Fate::Keep);
        let tag = tag_of(&o);
        assert_eq!(owners.fate(tag, 0x10, false), Fate::Free);
        assert_eq!(owners.fate(tag, 0x20, false), Fate::Free);
        assert_eq!(owners.skipped_total.load(Relaxed), 2);
        let t = owners.lock();
        assert!(
            !reusable(&t, &[o.index]).contains(&o.index),
            "a span carries it"
        );
        assert!(reusable(&t, &[]).contains(&o.index));
    }

    /// At teardown nothing is kept: the owner's thread drops its objects,
    /// other threads' objects are freed without drop glue.
    #[test]
    fn teardown_keeps_nothing() {
        let owners = Owners::new();
        let owner = owners.add_mutator(Vec::new);
        let tag = tag_of(&owner);
        assert_eq!(owners.fate(tag, 0x10, true), Fate::Drop);
        let other =
            std::thread::scope(|s| s.spawn(|| owners.fate(tag, 0x20, true)).join()).unwrap();
        assert_eq!(other, Fate::Free);
        assert_eq!(owners.skipped_total.load(Relaxed), 1);
    }
}
