//! The specials registry: per-span lists of special records (the seed's
//! `special`, `addspecial`, `removespecial`).
//!
//! A special record attaches something to one heap object: a finalizer, a
//! weak handle, a cleanup, an allocation-profile record. Records of a span
//! form a singly linked list sorted by (object offset, kind), whose head is
//! the span's `specials` word; the span's mutex guards the list and every
//! record on it. Records live in a [`Pool`] off the garbage-collected heap.
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
    /// Next record of the span (null: end); guarded by the span's lock.
    next: *mut Special<P>,
    /// Byte offset of the object from the span's start.
    offset: u32,
    payload: P,
}

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

/// The span's list, locked.
struct List<'s, P> {
    head: MutexGuard<'s, usize>,
    _p: std::marker::PhantomData<P>,
}

impl<P> List<'_, P> {
    fn first(&self) -> *mut Special<P> {
        *self.head as *mut Special<P>
    }
}

impl<P: Payload> Specials<P> {
    /// A registry with an empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock<'s>(&self, span: &'s Span) -> List<'s, P> {
        List {
            head: span.specials.lock().unwrap_or_else(|e| e.into_inner()),
            _p: std::marker::PhantomData,
        }
    }

    /// Keeps the span's `page_specials` bit equal to "list non-empty".
    fn sync_bit(heap: &PageHeap, span: &Span, list: &List<'_, P>) {
        let has = !list.first().is_null();
        if has != heap.has_page_special(span) {
            if has {
                heap.set_page_special(span);
            } else {
                heap.clear_page_special(span);
            }
        }
    }

    /// Attaches `payload` to the object at `offset` in `span`. Fails (giving
    /// the payload back) if the object already has a record of a unique
    /// kind.
    pub fn add(&self, heap: &PageHeap, span: &Span, offset: u32, payload: P) -> Result<(), P> {
        let kind = payload.kind();
        let mut list = self.lock(span);
        // Find the splice point: after every record < (offset, kind), and
        // after records equal to it (cleanups keep insertion order).
        let mut link: *mut *mut Special<P> = (&mut *list.head as *mut usize).cast();
        // SAFETY: `link` points at the head word or at a `next` field of a
        // record on this span's list; we hold the span's lock, which guards
        // both, and records on the list are live pool slots.
        unsafe {
            while let Some(r) = NonNull::new(*link) {
                let r = r.as_ptr();
                let (o, k) = ((*r).offset, (*r).payload.kind());
                if (o, k) == (offset, kind) && kind.unique() {
                    return Err(payload);
                }
                if (o, k) > (offset, kind) {
                    break;
                }
                link = &raw mut (*r).next;
            }
            let rec = self.pool.alloc();
            rec.as_ptr().write(Special {
                next: *link,
                offset,
                payload,
            });
            *link = rec.as_ptr();
        }
        Self::sync_bit(heap, span, &list);
        Ok(())
    }

    /// Removes the first record of `kind` of the object at `offset` and
    /// returns its payload.
    pub fn remove(&self, heap: &PageHeap, span: &Span, offset: u32, kind: Kind) -> Option<P> {
        let mut list = self.lock(span);
        let mut link: *mut *mut Special<P> = (&mut *list.head as *mut usize).cast();
        // SAFETY: as in `add`; an unlinked record is moved out of exactly
        // once and its slot returned to the pool.
        let found = unsafe {
            loop {
                let Some(r) = NonNull::new(*link) else {
                    break None;
                };
                let (o, k) = ((*r.as_ptr()).offset, (*r.as_ptr()).payload.kind());
                if (o, k) == (offset, kind) {
                    *link = (*r.as_ptr()).next;
                    let rec = r.as_ptr().read();
                    self.pool.free(r);
                    break Some(rec.payload);
                }
                if (o, k) > (offset, kind) {
                    break None;
                }
                link = &raw mut (*r.as_ptr()).next;
            }
        };
        Self::sync_bit(heap, span, &list);
        found
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
        let mut r = list.first();
        // SAFETY: walking this span's list under its lock.
        unsafe {
            while let Some(rec) = r.as_ref() {
                let k = rec.payload.kind();
                if (rec.offset, k) == (offset, kind) {
                    return f(Some(&rec.payload));
                }
                if (rec.offset, k) > (offset, kind) {
                    break;
                }
                r = rec.next;
            }
        }
        f(None)
    }

    /// Calls `f(offset, payload)` for every record of the span, in list
    /// order, under the span's lock (`f` must not touch this span's
    /// specials).
    pub fn for_each(&self, span: &Span, mut f: impl FnMut(u32, &P)) {
        let list = self.lock(span);
        let mut r = list.first();
        // SAFETY: walking this span's list under its lock.
        unsafe {
            while let Some(rec) = r.as_ref() {
                f(rec.offset, &rec.payload);
                r = rec.next;
            }
        }
    }

    /// Sweeps the span's records: for every object that has records and is
    /// dead (`is_dead(offset)`), takes its records off the list (in list
    /// order) and calls `f(offset, records)`; whatever `f` leaves in the
    /// vector is put back. Records of live objects are untouched.
    pub fn sweep(
        &self,
        heap: &PageHeap,
        span: &Span,
        mut is_dead: impl FnMut(u32) -> bool,
        mut f: impl FnMut(u32, &mut Vec<P>),
    ) {
        let mut list = self.lock(span);
        let mut link: *mut *mut Special<P> = (&mut *list.head as *mut usize).cast();
        let mut batch = Vec::new();
        // SAFETY: as in `add` and `remove`. Each dead object's run of
        // records is unlinked and moved out before `f` sees it; the kept
        // payloads are written into fresh pool slots and spliced back at
        // the same place, so the list stays sorted.
        unsafe {
            while let Some(r) = NonNull::new(*link) {
                let offset = (*r.as_ptr()).offset;
                if !is_dead(offset) {
                    // Skip every record of this live object.
                    let mut q = r.as_ptr();
                    while let Some(n) = (*q).next.as_mut().filter(|n| n.offset == offset) {
                        q = n;
                    }
                    link = &raw mut (*q).next;
                    continue;
                }
                // Unlink the object's run of records.
                let mut q = *link;
                while let Some(rec) = NonNull::new(q).filter(|p| (*p.as_ptr()).offset == offset) {
                    q = (*rec.as_ptr()).next;
                    let special = rec.as_ptr().read();
                    self.pool.free(rec);
                    batch.push(special.payload);
                }
                *link = q;
                f(offset, &mut batch);
                for payload in batch.drain(..).rev() {
                    let rec = self.pool.alloc();
                    rec.as_ptr().write(Special {
                        next: *link,
                        offset,
                        payload,
                    });
                    *link = rec.as_ptr();
                }
                // Step past what was put back.
                while let Some(n) = NonNull::new(*link).filter(|p| (*p.as_ptr()).offset == offset) {
                    link = &raw mut (*n.as_ptr()).next;
                }
            }
        }
        Self::sync_bit(heap, span, &list);
    }

    /// Takes every record off the span (in list order).
    pub fn take_all(&self, heap: &PageHeap, span: &Span) -> Vec<(u32, P)> {
        let mut list = self.lock(span);
        let mut out = Vec::new();
        let mut r = list.first();
        // SAFETY: unlinking the whole list under the span's lock; each
        // record is moved out once and its slot freed.
        unsafe {
            while let Some(rec) = NonNull::new(r) {
                r = (*rec.as_ptr()).next;
                let special = rec.as_ptr().read();
                self.pool.free(rec);
                out.push((special.offset, special.payload));
            }
        }
        *list.head = 0;
        Self::sync_bit(heap, span, &list);
        out
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
