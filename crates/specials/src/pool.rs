//! Fixed-size record pools (the seed's `fixalloc`): memory for special
//! records, off the garbage-collected heap.
//!
//! Records are allocated in chunks of [`CHUNK`] that are never moved or
//! freed while the pool lives, so a record's address is stable for as long
//! as it is in use; freed records go on a free list and are reused. One
//! mutex guards the chunk list and the free list (the seed's
//! `speciallock`); it is held only for a push or pop.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::Mutex;

/// Records per chunk.
pub const CHUNK: usize = 128;

type Chunk<T> = Box<[UnsafeCell<MaybeUninit<T>>; CHUNK]>;

struct Inner<T> {
    chunks: Vec<Chunk<T>>,
    free: Vec<NonNull<T>>,
}

/// A pool of `T`-sized slots. See the module docs.
pub struct Pool<T> {
    inner: Mutex<Inner<T>>,
}

// SAFETY: the pool hands out uninitialised slots; what is stored in them
// is the caller's business (the registry stores `Send` payloads and
// accesses each record under its span's lock).
unsafe impl<T: Send> Send for Pool<T> {}
// SAFETY: as above; the chunk and free lists are behind the mutex.
unsafe impl<T: Send> Sync for Pool<T> {}

impl<T> Default for Pool<T> {
    fn default() -> Self {
        Pool {
            inner: Mutex::new(Inner {
                chunks: Vec::new(),
                free: Vec::new(),
            }),
        }
    }
}

impl<T> Pool<T> {
    /// An uninitialised slot, valid until given back with [`Pool::free`].
    pub fn alloc(&self) -> NonNull<T> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = inner.free.pop() {
            return p;
        }
        let chunk: Chunk<T> = Box::new(std::array::from_fn(|_| {
            UnsafeCell::new(MaybeUninit::uninit())
        }));
        let first = NonNull::new(chunk[0].get().cast::<T>()).expect("box memory is non-null");
        let rest: Vec<NonNull<T>> = chunk[1..]
            .iter()
            .map(|c| NonNull::new(c.get().cast::<T>()).expect("box memory is non-null"))
            .collect();
        inner.free.extend(rest);
        inner.chunks.push(chunk);
        first
    }

    /// Returns a slot to the pool.
    ///
    /// # Safety
    ///
    /// `p` must come from [`Pool::alloc`] of this pool, its value must have
    /// been moved out or dropped, and nobody may use it afterwards.
    pub unsafe fn free(&self, p: NonNull<T>) {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .free
            .push(p);
    }

    /// Slots handed out and not freed.
    pub fn in_use(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.chunks.len() * CHUNK - inner.free.len()
    }

    /// Bytes of memory the pool holds.
    pub fn sys_bytes(&self) -> usize {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.chunks.len() * CHUNK * size_of::<T>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_stable_and_reused() {
        let pool = Pool::<[u64; 3]>::default();
        let mut got: Vec<NonNull<[u64; 3]>> = (0..3 * CHUNK).map(|_| pool.alloc()).collect();
        let set: std::collections::HashSet<_> = got.iter().copied().collect();
        assert_eq!(set.len(), got.len());
        assert_eq!(pool.in_use(), 3 * CHUNK);
        for (i, p) in got.iter().enumerate() {
            // SAFETY: fresh slots of our pool, written before read.
            unsafe { p.as_ptr().write([i as u64; 3]) };
        }
        for (i, p) in got.iter().enumerate() {
            // SAFETY: written above.
            assert_eq!(unsafe { p.as_ptr().read() }, [i as u64; 3]);
        }
        let last = got.pop().unwrap();
        // SAFETY: from this pool; plain data, nothing to drop.
        unsafe { pool.free(last) };
        assert_eq!(pool.alloc(), last, "freed slots are reused");
    }
}
