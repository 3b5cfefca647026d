//! Heap brands: keeping two heaps' pointers apart at compile time.
//!
//! Every heap type, handle and pointer carries a brand type parameter `B`
//! (default [`Global`]). A `Gc<'s, T, B>` can only be stored in objects of a
//! heap with the same brand (the `Trace<B>` impl of `Gc` exists for its own
//! brand only), only rooted, read and written through a `Scope<B>`. So a
//! pointer from one heap can never be traced, rooted or freed by another.
//!
//! Lifetimes cannot do this job: two scopes' borrow lifetimes can unify, so a
//! brand must be a *type*. And a type only separates heaps if at most one
//! heap with that brand is alive at a time, which [`Heap::new`] checks with
//! the brand's [`Brand::live_heap`] flag and reports as
//! [`HeapError::BrandInUse`].
//!
//! Most programs use one heap and never name a brand. Programs (and test
//! suites, whose tests run in parallel) that need several heaps at once
//! declare one brand per heap with [`brand!`](crate::brand!).
//!
//! [`Heap::new`]: crate::Heap::new
//! [`HeapError::BrandInUse`]: crate::HeapError::BrandInUse

use std::sync::atomic::AtomicBool;

/// A heap brand. See the module documentation.
///
/// # Safety
///
/// [`Brand::live_heap`] must return the same flag on every call, and no two
/// brand types may share a flag: the flag is what guarantees that at most
/// one heap of this brand is alive. Implement it with [`brand!`](crate::brand!),
/// which declares a fresh `static` per brand.
pub unsafe trait Brand: 'static + Send + Sync {
    /// The flag that is set while a heap of this brand is alive.
    #[doc(hidden)]
    fn live_heap() -> &'static AtomicBool;
}

/// The default brand, used by `Heap`, `Gc`, `Root` and friends when no
/// brand is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Global {}

// SAFETY: `GLOBAL_LIVE` is a static used by no other brand.
unsafe impl Brand for Global {
    fn live_heap() -> &'static AtomicBool {
        static GLOBAL_LIVE: AtomicBool = AtomicBool::new(false);
        &GLOBAL_LIVE
    }
}

/// Declares a new heap brand type, for programs that keep several heaps
/// alive at once.
///
/// ```
/// spangc::brand!(pub ScratchHeap);
/// let heap = spangc::Heap::<ScratchHeap>::new(spangc::Config::default()).unwrap();
/// # drop(heap);
/// ```
#[macro_export]
macro_rules! brand {
    ($(#[$meta:meta])* $vis:vis $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {}

        // SAFETY: the flag is a static declared here for this brand only.
        unsafe impl $crate::Brand for $name {
            fn live_heap() -> &'static ::std::sync::atomic::AtomicBool {
                static LIVE: ::std::sync::atomic::AtomicBool =
                    ::std::sync::atomic::AtomicBool::new(false);
                &LIVE
            }
        }
    };
}
