//! Zero-initialised metadata in OS memory.
//!
//! The heap's metadata (the arena table, the page allocator's summary
//! levels, each arena's span map and bitmaps) comes from [`os::map`] rather
//! than the Rust allocator, for two reasons. Sizes: the summary levels cover
//! the whole 47-bit address space (about 300 MiB of address space) so that
//! an index is a shift, and only the parts the heap touches ever become
//! resident; the allocator would zero-fill them at once. Independence: the
//! embedding program's allocator may itself be instrumented or slow, and
//! the collector's metadata should not depend on it (Go's `persistentalloc`
//! plays the same role).
//!
//! Every type stored here must be valid when all its bytes are zero (fresh
//! OS memory reads as zero), which the [`ZeroValid`] marker states; the
//! atomics used for metadata all are. Nothing is ever dropped in place:
//! atomics have no destructors, and the memory goes back with `munmap`.

use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize};

use crate::os::{self, OsError};

/// Types whose all-zero bit pattern is a valid value and that need no drop.
///
/// # Safety
///
/// Implementors must be valid for any memory that reads as all zero bytes,
/// must not need `Drop` to run, and must be usable through a shared
/// reference from several threads (`Sync`).
pub(crate) unsafe trait ZeroValid: Sync {}

// SAFETY: an atomic integer of zero bits is the value 0; atomics have no
// destructor and are Sync.
unsafe impl ZeroValid for AtomicU64 {}
// SAFETY: as above.
unsafe impl ZeroValid for AtomicUsize {}
// SAFETY: a zero AtomicPtr is the null pointer; no destructor; Sync.
unsafe impl<T> ZeroValid for AtomicPtr<T> {}
// SAFETY: an array of zero-valid elements is zero-valid.
unsafe impl<T: ZeroValid, const N: usize> ZeroValid for [T; N] {}

/// `len` zero-initialised values of `T` in their own OS mapping, unmapped on
/// drop.
pub(crate) struct MappedSlice<T: ZeroValid> {
    ptr: NonNull<T>,
    len: usize,
    bytes: usize,
    _owns: PhantomData<T>,
}

// SAFETY: the mapping is owned by this value and only reached through it;
// `T: ZeroValid` implies `T: Sync`, so sharing `&[T]` across threads is
// sound, and sending the owner moves nothing but the pointer.
unsafe impl<T: ZeroValid> Send for MappedSlice<T> {}
// SAFETY: as above: `&MappedSlice<T>` only gives out `&[T]` with `T: Sync`.
unsafe impl<T: ZeroValid> Sync for MappedSlice<T> {}

impl<T: ZeroValid> MappedSlice<T> {
    /// Maps `len` (non-zero) values. Memory is only resident once touched.
    pub(crate) fn new(len: usize) -> Result<MappedSlice<T>, OsError> {
        let page = os::phys_page_size();
        let bytes = (len.max(1) * size_of::<T>()).next_multiple_of(page);
        let align = align_of::<T>().max(page);
        let p = os::map(bytes, align)?;
        Ok(MappedSlice {
            ptr: p.cast(),
            len,
            bytes,
            _owns: PhantomData,
        })
    }
}

impl<T: ZeroValid> Deref for MappedSlice<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        // `ptr` is a live, Ready, suitably aligned mapping of at least
        // `len * size_of::<T>()` bytes that we own until drop; it was zero
        // when mapped and is only accessed through `&T` of a ZeroValid
        // (hence interior-mutable or immutable) type.
        // SAFETY: so the mapping holds `len` valid `T`s for `&self`'s life.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: ZeroValid> Drop for MappedSlice<T> {
    fn drop(&mut self) {
        // SAFETY: our own mapping of `bytes` bytes; `&mut self` means no
        // reference into it survives (they all borrowed `self`).
        let r = unsafe { os::unmap(self.ptr.cast(), self.bytes) };
        debug_assert!(r.is_ok(), "unmapping metadata: {r:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn zeroed_and_writable() {
        let s: MappedSlice<AtomicU64> = MappedSlice::new(100_000).unwrap();
        assert_eq!(s.len(), 100_000);
        assert!(s.iter().all(|w| w.load(Relaxed) == 0));
        s[99_999].store(7, Relaxed);
        assert_eq!(s[99_999].load(Relaxed), 7);
        let a: MappedSlice<[AtomicUsize; 3]> = MappedSlice::new(1).unwrap();
        assert_eq!(a[0][2].load(Relaxed), 0);
    }
}
