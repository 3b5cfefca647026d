//! The span record pool: where [`Span`] records come from and go back to.
//!
//! Records are carved from OS memory in chunks of [`POOL_CHUNK_BYTES`] and
//! never given back while the heap lives, as the seed's `spanalloc` (a
//! fixalloc with `zero = false`): the span map, central span sets and
//! sweepers may hold a `&Span` after the span was freed, and such a stale
//! reference must still read a valid record. A freed record goes on the
//! free list and is reused for a later span; readers that can be stale
//! validate with `state_acquire` and `sweepgen` (a record in the pool holds
//! `Dead` and `SWEEPGEN_DEAD`).
//!
//! The free list is a plain vector of pointers protected by the heap lock
//! (the pool lives inside it). Per-thread page caches keep a few records of
//! their own ([`crate::PageCache`]) so that allocating a small span takes
//! no lock; they refill from here under the lock. A lock-free (Treiber)
//! free list was rejected: records are reused, so it would need ABA
//! protection, and the page cache already amortises the lock.
//!
//! The chunk size is 64 KiB: 585 records (a record is 112 bytes), so even
//! a heap of a few spans pays one small mapping, and a heap with a million
//! spans about 1,700 mappings.

use std::ptr::NonNull;

use crate::os::{self, OsError};
use crate::span::{SWEEPGEN_DEAD, Span, SpanState};

/// Bytes of OS memory carved into records at a time.
const POOL_CHUNK_BYTES: usize = 64 << 10;

/// The pool. Protected by the heap lock.
pub(crate) struct SpanPool {
    /// Records not describing any span, all `Dead`.
    free: Vec<NonNull<Span>>,
    /// Every chunk of records, for unmapping when the heap is dropped.
    chunks: Vec<NonNull<u8>>,
    /// Records ever created.
    created: usize,
}

// SAFETY: the pointers refer to records in chunks this pool owns; `Span`
// is Sync (every field is an atomic or a mutex), so handing the pool (and
// with it shared access to the records) to another thread is sound.
unsafe impl Send for SpanPool {}

impl SpanPool {
    pub(crate) fn new() -> SpanPool {
        SpanPool {
            free: Vec::new(),
            chunks: Vec::new(),
            created: 0,
        }
    }

    /// A `Dead` record with `sweepgen == SWEEPGEN_DEAD`.
    pub(crate) fn take(&mut self) -> Result<NonNull<Span>, OsError> {
        if self.free.is_empty() {
            self.grow()?;
        }
        let rec = self.free.pop().expect("span pool grew but is empty");
        Ok(rec)
    }

    /// Returns a record. It must come from this pool and be `Dead`.
    pub(crate) fn put(&mut self, rec: NonNull<Span>) {
        // SAFETY: the caller passes a record of this pool, and records are
        // never unmapped while the pool lives.
        let span = unsafe { rec.as_ref() };
        assert!(
            span.state() == SpanState::Dead
                && span.sweepgen().load(std::sync::atomic::Ordering::Relaxed) == SWEEPGEN_DEAD,
            "span record returned to the pool while live: {span}"
        );
        self.free.push(rec);
    }

    /// Records ever created.
    pub(crate) fn created(&self) -> usize {
        self.created
    }

    /// Records on the free list (for the verifier).
    pub(crate) fn free_records(&self) -> impl Iterator<Item = &Span> {
        // SAFETY: every free-list entry is a record of this pool, alive as
        // long as `self`.
        self.free.iter().map(|p| unsafe { p.as_ref() })
    }

    fn grow(&mut self) -> Result<(), OsError> {
        let chunk = os::map(POOL_CHUNK_BYTES, os::phys_page_size())?;
        self.chunks.push(chunk);
        let n = POOL_CHUNK_BYTES / size_of::<Span>();
        let first: *mut Span = chunk.as_ptr().cast();
        for i in (0..n).rev() {
            // SAFETY: slot `i < n` fits in the fresh, writable, page-aligned
            // (hence Span-aligned) chunk, and nothing refers to it yet.
            let slot = unsafe {
                let p = first.add(i);
                p.write(Span::new_dead());
                NonNull::new_unchecked(p)
            };
            self.free.push(slot);
        }
        self.created += n;
        Ok(())
    }
}

impl Drop for SpanPool {
    fn drop(&mut self) {
        for &c in &self.chunks {
            // The pool drops with the heap's shared state, after every
            // `&Span` (all borrow the heap) and every page cache holding
            // records (each holds the shared state). Records are not dropped
            // in place: atomics and a futex mutex have nothing to free.
            // SAFETY: so nothing refers to this chunk, our own, any more.
            let r = unsafe { os::unmap(c, POOL_CHUNK_BYTES) };
            debug_assert!(r.is_ok(), "unmapping span records: {r:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_dead_and_reused() {
        let mut pool = SpanPool::new();
        let a = pool.take().unwrap();
        // SAFETY: a record of `pool`.
        let s = unsafe { a.as_ref() };
        assert_eq!(s.state(), SpanState::Dead);
        assert_eq!(
            s.sweepgen().load(std::sync::atomic::Ordering::Relaxed),
            SWEEPGEN_DEAD
        );
        pool.put(a);
        assert_eq!(pool.take().unwrap(), a);
        let n = pool.created();
        let mut taken: Vec<_> = (0..n + 1).map(|_| pool.take().unwrap()).collect();
        assert!(pool.created() > n);
        taken.sort();
        taken.dedup();
        assert_eq!(taken.len(), n + 1);
        for t in taken {
            pool.put(t);
        }
    }

    #[test]
    #[should_panic(expected = "returned to the pool while live")]
    fn live_record_cannot_return() {
        let mut pool = SpanPool::new();
        let a = pool.take().unwrap();
        // SAFETY: a record of `pool`.
        unsafe { a.as_ref() }.transition(SpanState::Dead, SpanState::Manual, "test");
        pool.put(a);
    }
}
