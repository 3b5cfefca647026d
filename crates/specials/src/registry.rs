//! The specials registry: per-span lists of special records (the seed's
//! `special`, `addspecial`, `removespecial`).
//!
//! A special record attaches something to one heap object: a finalizer, a
//! weak handle, a cleanup, an allocation-profile record. The records of a
//! span form a list sorted by (object offset, kind), reached from the
//! span's `specials` word and guarded by the span's mutex. Records live in a
//! [`Pool`] off the garbage-collected heap.
//!
//! The seed keeps the list linked through the records, so adding or
//! finding a record walks the list. Objects are mostly given records in
//! address order, so every add walked to the end: 1.1 µs per
//! `set_finalizer` and 2 µs per `Weak::new` on a span of 1024 small objects
//! (`cargo bench -p spangc --bench specials`). Here the span's word points
//! to a sorted vector of record pointers instead, searched by bisection:
//! the records themselves stay in the pool, the vector is the index.
//!
//! The arena's per-page `page_specials` bit of the span's first page is kept
//! equal to "the list is non-empty" (set and cleared under the span's
//! lock), so the sweeper and the marker find spans with specials by
//! scanning a bitmap, and sweeping a span without specials costs nothing
//! extra: not even the lock.
//!
//! Kinds sort finalizers first, as in the seed: when the sweeper meets a
//! dead object, it must know whether the object has a finalizer (and so
//! survives this cycle) before deciding what to do with its other records.
//! At most one record of each kind per object, except cleanups, of which an
//! object may have several (kept in the order they were added).
//!
//! What a record holds is the caller's type `P` ([`Payload`]); this crate
//! only keeps the lists.

use crate::pool::Pool;
use spangc_arena::PageHeap;
use spangc_arena::span::Span;
use std::ptr::NonNull;
use std::sync::MutexGuard;

/// Kinds of special records, in list order within one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    /// Run a function when the object becomes unreachable, keeping it
    /// alive for one more cycle.
    Finalizer = 0,
    /// The object's canonical weak cell.
    WeakHandle = 1,
    /// Run a function when the object becomes unreachable, without
    /// resurrecting it (several per object).
    Cleanup = 2,
    /// The object was sampled by the allocation profiler.
    Profile = 3,
}

impl Kind {
    /// Whether an object may have at most one record of this kind.
    pub fn unique(self) -> bool {
        self != Kind::Cleanup
    }
}

/// What a record carries.
pub trait Payload: Send + 'static {
    /// The record's kind.
    fn kind(&self) -> Kind;
}

/// One special record.
struct Special<P> {
    /// Byte offset of the object from the span's start.
    offset: u32,
    payload: P,
}

impl<P: Payload> Special<P> {
    fn key(&self) -> (u32, Kind) {
        (self.offset, self.payload.kind())
    }
}

/// A span's index: its records' pointers, sorted by key (cleanups of one
/// object in insertion order).
type Index<P> = Vec<NonNull<Special<P>>>;

/// The registry. See the module docs.
pub struct Specials<P: Payload> {
    pool: Pool<Special<P>>,
}

impl<P: Payload> Default for Specials<P> {
    fn default() -> Self {
        Specials {
            pool: Pool::default(),
        }
    }
}

/// A span's index, locked: the span's `specials` word holds a pointer to a
/// boxed `Index` (0 while the span has no records).
struct List<'s, P> {
    word: MutexGuard<'s, usize>,
    _p: std::marker::PhantomData<P>,
}

impl<P: Payload> List<'_, P> {
    /// The index, if the span has one.
    fn index(&self) -> Option<&Index<P>> {
        // SAFETY: a non-zero word is a `Box<Index<P>>` made by
        // `index_mut`; we hold the span's lock, which guards it.
        (*self.word != 0).then(|| unsafe { &*(*self.word as *const Index<P>) })
    }

    /// The index, created if absent.
    fn index_mut(&mut self) -> &mut Index<P> {
        if *self.word == 0 {
            *self.word = Box::into_raw(Box::new(Index::<P>::new())) as usize;
        }
        // SAFETY: as in `index`; the lock makes this the only reference.
        unsafe { &mut *(*self.word as *mut Index<P>) }
    }

    /// Frees the index once it is empty.
    fn shrink(&mut self) {
        if self.index().is_some_and(Vec::is_empty) {
            // SAFETY: the word holds the box made in `index_mut`; it is
            // reset so the box is freed exactly once.
            drop(unsafe { Box::from_raw(*self.word as *mut Index<P>) });
            *self.word = 0;
        }
    }

    fn is_empty(&self) -> bool {
        self.index().is_none_or(Vec::is_empty)
    }
}

/// The key of the record at `r`.
///
/// # Safety
///
/// `r` must be a live record on a list whose lock the caller holds.
unsafe fn key_of<P: Payload>(r: NonNull<Special<P>>) -> (u32, Kind) {
    // SAFETY: per the contract.
    unsafe { r.as_ref() }.key()
}

impl<P: Payload> Specials<P> {
    /// A registry with an empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock<'s>(&self, span: &'s Span) -> List<'s, P> {
        List {
            word: span.specials.lock().unwrap_or_else(|e| e.into_inner()),
            _p: std::marker::PhantomData,
        }
    }

    /// Keeps the span's `page_specials` bit equal to "list non-empty".
    fn sync_bit(heap: &PageHeap, span: &Span, list: &List<'_, P>) {
        let has = !list.is_empty();
        if has != heap.has_page_special(span) {
            if has {
                heap.set_page_special(span);
            } else {
                heap.clear_page_special(span);
            }
        }
    }

    /// Takes a record out of the pool, moving its payload out.
    ///
    /// # Safety
    ///
    /// `r` must be a live record of this registry that is on no list any
    /// more.
    unsafe fn release(&self, r: NonNull<Special<P>>) -> Special<P> {
        // SAFETY: per the contract: read once, then the slot is freed.
        unsafe {
            let rec = r.as_ptr().read();
            self.pool.free(r);
            rec
        }
    }

    /// Puts a record into the pool.
    fn make(&self, offset: u32, payload: P) -> NonNull<Special<P>> {
        let r = self.pool.alloc();
        // SAFETY: a fresh, unshared slot of our pool.
        unsafe { r.as_ptr().write(Special { offset, payload }) };
        r
    }

    /// Attaches `payload` to the object at `offset` in `span`. Fails (giving
    /// the payload back) if the object already has a record of a unique
    /// kind.
    pub fn add(&self, heap: &PageHeap, span: &Span, offset: u32, payload: P) -> Result<(), P> {
        let key = (offset, payload.kind());
        let mut list = self.lock(span);
        let index = list.index_mut();
        // SAFETY: every pointer in the index is a live record of this
        // span's list, and we hold its lock.
        let pos = index.partition_point(|&r| unsafe { key_of(r) } <= key);
        // SAFETY: as above.
        if key.1.unique() && pos > 0 && unsafe { key_of(index[pos - 1]) } == key {
            list.shrink();
            return Err(payload);
        }
        let r = self.make(offset, payload);
        index.insert(pos, r);
        Self::sync_bit(heap, span, &list);
        Ok(())
    }

    /// Position of the first record with `key`, if any.
    fn find(index: &Index<P>, key: (u32, Kind)) -> Option<usize> {
        // SAFETY: callers hold the span's lock; the index holds live
        // records.
        let pos = index.partition_point(|&r| unsafe { key_of(r) } < key);
        // SAFETY: as above.
        (pos < index.len() && unsafe { key_of(index[pos]) } == key).then_some(pos)
    }

    /// Removes the first record of `kind` of the object at `offset` and
    /// returns its payload.
    pub fn remove(&self, heap: &PageHeap, span: &Span, offset: u32, kind: Kind) -> Option<P> {
        let mut list = self.lock(span);
        let found = list
            .index()
            .and_then(|index| Self::find(index, (offset, kind)));
        let payload = found.map(|pos| {
            let r = list.index_mut().remove(pos);
            // SAFETY: just taken off the list, under its lock.
            unsafe { self.release(r) }.payload
        });
        list.shrink();
        Self::sync_bit(heap, span, &list);
        payload
    }

    /// Calls `f` with the first record of `kind` of the object at `offset`
    /// (or `None`), under the span's lock.
    pub fn with<R>(
        &self,
        span: &Span,
        offset: u32,
        kind: Kind,
        f: impl FnOnce(Option<&P>) -> R,
    ) -> R {
        let list = self.lock(span);
        let rec = list.index().and_then(|index| {
            let pos = Self::find(index, (offset, kind))?;
            // SAFETY: a live record of this span's list; we hold its lock.
            Some(unsafe { &index[pos].as_ref().payload })
        });
        f(rec)
    }

    /// Calls `f(offset, payload)` for every record of the span, in list
    /// order, under the span's lock (`f` must not touch this span's
    /// specials).
    pub fn for_each(&self, span: &Span, mut f: impl FnMut(u32, &P)) {
        let list = self.lock(span);
        for &r in list.index().into_iter().flatten() {
            // SAFETY: a live record of this span's list; we hold its lock.
            let rec = unsafe { r.as_ref() };
            f(rec.offset, &rec.payload);
        }
    }

    /// Sweeps the span's records: for every object that has records and is
    /// dead (`is_dead(offset)`), takes its records off the list (in list
    /// order) and calls `f(offset, records)`; whatever `f` leaves in the
    /// vector is put back (in kind order). Records of live objects are
    /// untouched.
    pub fn sweep(
        &self,
        heap: &PageHeap,
        span: &Span,
        mut is_dead: impl FnMut(u32) -> bool,
        mut f: impl FnMut(u32, &mut Vec<P>),
    ) {
        let mut list = self.lock(span);
        let Some(index) = list.index() else { return };
        let old: Index<P> = index.clone();
        let mut new = Index::with_capacity(old.len());
        let mut batch = Vec::new();
        let mut i = 0;
        while i < old.len() {
            // SAFETY: live records of this span's list, under its lock.
            let offset = unsafe { old[i].as_ref() }.offset;
            // SAFETY: as above.
            let run = old[i..].partition_point(|&r| unsafe { r.as_ref() }.offset == offset);
            if is_dead(offset) {
                for &r in &old[i..i + run] {
                    // SAFETY: taken off the list (the index is rebuilt
                    // from `new`), each record exactly once.
                    batch.push(unsafe { self.release(r) }.payload);
                }
                f(offset, &mut batch);
                batch.sort_by_key(|p| p.kind());
                new.extend(batch.drain(..).map(|p| self.make(offset, p)));
            } else {
                new.extend_from_slice(&old[i..i + run]);
            }
            i += run;
        }
        *list.index_mut() = new;
        list.shrink();
        Self::sync_bit(heap, span, &list);
    }

    /// Takes every record off the span (in list order).
    pub fn take_all(&self, heap: &PageHeap, span: &Span) -> Vec<(u32, P)> {
        let mut list = self.lock(span);
        let records: Vec<(u32, P)> = list
            .index_mut()
            .drain(..)
            .map(|r| {
                // SAFETY: taken off the list under its lock, once each.
                let rec = unsafe { self.release(r) };
                (rec.offset, rec.payload)
            })
            .collect();
        list.shrink();
        Self::sync_bit(heap, span, &list);
        records
    }

    /// Records in use across all spans.
    pub fn len(&self) -> usize {
        self.pool.in_use()
    }

    /// Whether no record is in use.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the record pool holds.
    pub fn sys_bytes(&self) -> usize {
        self.pool.sys_bytes()
    }
}

// SAFETY: the pool and every list are guarded (pool mutex, span mutexes)
// and payloads are `Send`; record pointers are only followed under a
// span's lock.
unsafe impl<P: Payload> Sync for Specials<P> {}
// SAFETY: as above.
unsafe impl<P: Payload> Send for Specials<P> {}
