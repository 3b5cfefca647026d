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

/// A heap brand: a type that tells one heap's pointers from another's at
/// compile time.
///
/// Every heap type, handle and pointer carries a brand parameter `B`
/// ([`Global`] unless named). A `Gc<'s, T, B>` can only be stored in
/// objects of a heap with brand `B`, and only rooted, read and written
/// through a `Scope<B>`, so a pointer of one heap can never be traced,
/// rooted or freed by another. A brand separates heaps only if at most one
/// heap of that brand is alive at a time: [`Heap::new`](crate::Heap::new)
/// checks it and returns [`HeapError::BrandInUse`](crate::HeapError::BrandInUse)
/// otherwise.
///
/// Most programs use one heap and never name a brand. Declare brands with
/// [`brand!`](crate::brand!); write code that works with any heap by being
/// generic over `B: Brand`:
///
/// ```
/// use spangc::{Brand, Config, Heap};
///
/// /// Interns `s` in a heap of any brand and returns its length.
/// fn stored_len<B: Brand>(heap: &Heap<B>, s: &str) -> usize {
///     heap.mutator().enter(|cx| cx.alloc_str(s).len())
/// }
///
/// spangc::brand!(Compiler);
/// spangc::brand!(Runtime);
/// let compiler = Heap::<Compiler>::new(Config::default()).unwrap();
/// let runtime = Heap::<Runtime>::new(Config::default()).unwrap();
/// assert_eq!(stored_len(&compiler, "fn"), 2);
/// assert_eq!(stored_len(&runtime, "hello"), 5);
/// ```
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
///
/// A program with one heap never names it: `Heap` means `Heap<Global>`,
/// `Gc<'s, T>` means `Gc<'s, T, Global>`, and `#[derive(Trace)]` implements
/// `Trace<Global>` unless told otherwise (`#[gc(brand = ..)]`).
///
/// ```
/// use spangc::{Gc, Global, Heap, Root, Scope};
/// use std::any::TypeId;
///
/// assert_eq!(TypeId::of::<Heap>(), TypeId::of::<Heap<Global>>());
/// assert_eq!(TypeId::of::<Scope>(), TypeId::of::<Scope<Global>>());
/// assert_eq!(TypeId::of::<Root<str>>(), TypeId::of::<Root<str, Global>>());
/// assert_eq!(
///     TypeId::of::<Gc<'static, u64>>(),
///     TypeId::of::<Gc<'static, u64, Global>>(),
/// );
/// ```
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
/// `brand!(Name)`, optionally with attributes, doc comments and a
/// visibility before the name (as below), declares an uninhabited
/// `enum Name {}` deriving `Debug`, `Clone`, `Copy`, `PartialEq`, `Eq` and
/// `Hash`, and implements [`Brand`](crate::Brand) for it with a flag of its
/// own. At most one heap of each brand may be alive at a time.
///
/// ```
/// use spangc::{Config, Heap, HeapError};
///
/// spangc::brand!(
///     /// The heap scripts allocate in.
///     pub Scripts
/// );
/// spangc::brand!(Scratch);
///
/// // Two brands, two heaps alive at once.
/// let scripts = Heap::<Scripts>::new(Config::default()).unwrap();
/// let scratch = Heap::<Scratch>::new(Config::default()).unwrap();
///
/// // A second heap of a brand in use is refused...
/// let again = Heap::<Scripts>::new(Config::default());
/// assert!(matches!(again, Err(HeapError::BrandInUse(_))));
///
/// // ...until the first one is gone (every handle, mutator and root).
/// drop(scripts);
/// let scripts = Heap::<Scripts>::new(Config::default()).unwrap();
/// # drop((scripts, scratch));
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
