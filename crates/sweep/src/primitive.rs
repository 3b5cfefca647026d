//! Atomics for the lock-free protocols of this crate, switched to `loom`'s
//! under `--cfg loom` so the model tests check the same code (crossbeam's
//! habit).
//!
//! Only the protocol state words go through here: the sweep-done word,
//! and the sweepgen transitions (claim, release, caching), which are
//! written generically over [`Word32`] so that the loom models run the
//! same functions on a model span's loom atomic.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::AtomicU32;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicU32;

/// A 32-bit atomic word the sweepgen protocol runs on: `Span::sweepgen`
/// (always std) in the heap, a loom atomic in the models.
pub(crate) trait Word32 {
    fn load(&self, order: std::sync::atomic::Ordering) -> u32;
    fn store(&self, v: u32, order: std::sync::atomic::Ordering);
    fn compare_exchange(
        &self,
        current: u32,
        new: u32,
        success: std::sync::atomic::Ordering,
        failure: std::sync::atomic::Ordering,
    ) -> Result<u32, u32>;
}

macro_rules! word32 {
    ($t:ty) => {
        impl Word32 for $t {
            #[inline(always)]
            fn load(&self, order: std::sync::atomic::Ordering) -> u32 {
                <$t>::load(self, order)
            }
            #[inline(always)]
            fn store(&self, v: u32, order: std::sync::atomic::Ordering) {
                <$t>::store(self, v, order)
            }
            #[inline(always)]
            fn compare_exchange(
                &self,
                current: u32,
                new: u32,
                success: std::sync::atomic::Ordering,
                failure: std::sync::atomic::Ordering,
            ) -> Result<u32, u32> {
                <$t>::compare_exchange(self, current, new, success, failure)
            }
        }
    };
}

word32!(std::sync::atomic::AtomicU32);
#[cfg(loom)]
word32!(loom::sync::atomic::AtomicU32);
