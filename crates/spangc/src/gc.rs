//! `Gc<'s, T, B>`: a pointer to a heap object, valid until the next
//! safepoint.
//!
//! A `Gc` is one thin pointer. Its lifetime `'s` is a shared borrow of the
//! [`Scope`](crate::Scope) it came from; `Scope::safepoint` takes `&mut`,
//! so the borrow checker ends every `Gc` at the next safepoint, which is the
//! only place a collection can happen. Between safepoints nothing is freed,
//! so dereferencing is a plain load: no reference count, no root
//! registration, no check.
//!
//! `Gc` is `Copy`, `Send`/`Sync` exactly like `&'s T` (both need
//! `T: Sync`), gives `&T` only (writes go through the crate's cells), and
//! points at the object's first byte for sized types or at its length word
//! for `str`, `[T]` and [`WithTail`](crate::WithTail) (see `layout.rs`).

use crate::brand::{Brand, Global};
use crate::branded::{Branded, Rootable};
use crate::layout::Object;
use crate::mark::Tracer;
use crate::trace::Trace;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;

/// A pointer to a garbage-collected `T`, valid for the scope borrow `'s`.
///
/// A `Gc` is one thin pointer, `Copy`, and dereferences with one load: no
/// reference count, no check. Its lifetime `'s` is a shared borrow of the
/// [`Scope`](crate::Scope) it came from (allocation, [`Root::get`](crate::Root::get),
/// or a field read through another `Gc`). Safepoints take `&mut Scope`, so
/// the borrow checker ends every `Gc` at the next safepoint, the only place
/// a collection can happen: an object that must live longer is rooted
/// ([`Scope::root`](crate::Scope::root)) or stored in a rooted object.
///
/// It gives `&T` only (fields that change are [`GcCell`](crate::GcCell)s
/// or [`GcRefCell`](crate::GcRefCell)s), and is `Send`/`Sync` exactly like
/// `&'s T`. `T` may be a sized type, `str`, `[T]` or a
/// [`WithTail`](crate::WithTail); `B` is the heap's brand.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
/// use spangc::{Config, Trace};
///
/// #[derive(Trace)]
/// # #[gc(brand = Doc)]
/// struct Person<'gc> {
///     name: Gc<'gc, str>,
///     age: u32,
/// }
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let ada: Gc<Person> = cx.alloc(Person { name: cx.alloc_str("Ada"), age: 36 });
///     let same = ada; // Copy: two pointers to one object
///     assert_eq!(&*same.name, "Ada");
///     assert_eq!(ada.age, 36);
///     assert_eq!(format!("{}", ada.name), "Ada"); // Display and Debug forward
///
///     let root = cx.root(ada);
///     cx.safepoint(); // `ada` and `same` end here; using them is a compile error
///     assert_eq!(root.get(cx).age, 36);
/// });
/// ```
#[repr(transparent)]
pub struct Gc<'s, T: ?Sized, B: Brand = Global> {
    ptr: NonNull<u8>,
    _target: PhantomData<&'s T>,
    _brand: PhantomData<fn() -> B>,
}

impl<'s, T: ?Sized, B: Brand> Gc<'s, T, B> {
    /// Wraps a pointer to a live object: the inverse of [`Gc::as_raw`], for
    /// embedders that store pointers in another form (a NaN-boxed value, a
    /// tagged word) and must rebuild the `Gc`.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let s = cx.alloc_str("tagged");
    ///     let word = Gc::as_raw(s).as_ptr() as usize | 1; // objects are 8-aligned
    ///
    ///     let untagged = std::ptr::NonNull::new((word & !1) as *mut u8).unwrap();
    ///     // SAFETY: the address came from `Gc::as_raw` of a `str` object of
    ///     // this heap, and no safepoint has passed since (`s` is still usable).
    ///     let back: Gc<str> = unsafe { Gc::from_raw(untagged) };
    ///     assert_eq!(&*back, "tagged");
    ///     assert!(Gc::ptr_eq(back, s));
    /// });
    /// ```
    ///
    /// [`Tracer::mark_raw`](crate::Tracer::mark_raw) has a complete tagged
    /// value, traced by hand.
    ///
    /// # Safety
    ///
    /// `ptr` must point to the start of a live, fully initialised object of
    /// type `T` (in its brand-erased form) in a heap of brand `B`, and the
    /// object must stay alive for `'s`: `'s` must be a borrow of a scope of
    /// that heap, taken while the object is reachable or before the next
    /// safepoint.
    #[inline]
    pub unsafe fn from_raw(ptr: NonNull<u8>) -> Self {
        Gc {
            ptr,
            _target: PhantomData,
            _brand: PhantomData,
        }
    }

    /// The object's address (its first byte, or its length word for
    /// dynamically sized objects). Stable for the object's life: the heap
    /// never moves objects. An associated function (`Gc::as_raw(gc)`), so
    /// that it does not shadow a method of `T`.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let n = cx.alloc(7u64);
    ///     let root = cx.root(n);
    ///     let before = Gc::as_raw(n);
    ///     cx.collect();
    ///     // The object did not move: an address is a stable identity (a hash key).
    ///     assert_eq!(Gc::as_raw(root.get(cx)), before);
    ///     // For a sized type it is the value's address.
    ///     assert_eq!(before.as_ptr() as *const u64, &*root.get(cx) as *const u64);
    /// });
    /// ```
    #[inline]
    pub fn as_raw(this: Self) -> NonNull<u8> {
        this.ptr
    }

    /// Whether two pointers point to the same object (identity, not
    /// equality of contents).
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let a = cx.alloc_str("x");
    ///     let b = cx.alloc_str("x");
    ///     assert_eq!(&*a, &*b);
    ///     assert!(!Gc::ptr_eq(a, b));
    ///     assert!(Gc::ptr_eq(a, a));
    /// });
    /// ```
    #[inline]
    pub fn ptr_eq(a: Self, b: Gc<'_, T, B>) -> bool {
        a.ptr == b.ptr
    }
}

impl<'s, T: ?Sized + Object, B: Brand> Gc<'s, T, B> {
    /// Borrows the object for the whole scope borrow `'s` (longer than
    /// `Deref` allows, which borrows for the life of the `Gc` value). Use it
    /// to return a reference into an object from a helper, or to borrow
    /// through a temporary `Gc`.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// use spangc::{Config, Trace};
    ///
    /// #[derive(Trace)]
    /// # #[gc(brand = Doc)]
    /// struct Person<'gc> {
    ///     name: Gc<'gc, str>,
    /// }
    ///
    /// // `&p.name` would borrow the local `p`; `Gc::get` borrows the object.
    /// fn name<'s>(p: Gc<'s, Person<'s>>) -> &'s str {
    ///     Gc::get(Gc::get(p).name)
    /// }
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let root = cx.root(cx.alloc(Person { name: cx.alloc_str("Grace") }));
    ///     let name: &str = name(root.get(cx));
    ///     assert_eq!(name, "Grace");
    /// });
    /// ```
    #[inline]
    pub fn get(this: Self) -> &'s T {
        // SAFETY: `from_raw`'s contract: the object is live and initialised
        // for `'s`, and `Object::from_thin` rebuilds the pointer metadata
        // from the object's own layout.
        unsafe { &*T::from_thin(this.ptr).as_ptr() }
    }
}

impl<T: ?Sized + Object, B: Brand> Deref for Gc<'_, T, B> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        Gc::get(*self)
    }
}

impl<T: ?Sized, B: Brand> Clone for Gc<'_, T, B> {
    #[inline]
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized, B: Brand> Copy for Gc<'_, T, B> {}

// SAFETY: a `Gc` is a shared reference in all but name: sending it or
// sharing it is sound exactly when sharing `&T` is, i.e. `T: Sync`.
unsafe impl<T: ?Sized + Sync, B: Brand> Send for Gc<'_, T, B> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync, B: Brand> Sync for Gc<'_, T, B> {}

impl<T: ?Sized + Object + fmt::Debug, B: Brand> fmt::Debug for Gc<'_, T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<T: ?Sized + Object + fmt::Display, B: Brand> fmt::Display for Gc<'_, T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<T: ?Sized, B: Brand> fmt::Pointer for Gc<'_, T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Pointer::fmt(&self.ptr, f)
    }
}

// SAFETY: marks the object (rule 1); a `Gc` always needs tracing (rule 2);
// no drop glue (rule 4); the impl exists for the pointer's own brand only
// (rule 5). There is no bound on `T`: the marker finds the object's trace
// function on its span, and requiring `T: Trace` here would make every
// recursive type's derived impl a trait-solver cycle.
unsafe impl<T: ?Sized, B: Brand> Trace<B> for Gc<'_, T, B> {
    const NEEDS_TRACE: bool = true;

    #[inline(always)]
    fn trace(&self, tracer: &mut Tracer<'_>) {
        tracer.mark(self.ptr);
    }

    #[inline]
    fn trace_slice(items: &[Self], tracer: &mut Tracer<'_>) {
        tracer.mark_all(items.iter().map(|g| g.ptr));
    }

    #[inline]
    fn trace_option_slice(items: &[Option<Self>], tracer: &mut Tracer<'_>) {
        tracer.mark_all(items.iter().flatten().map(|g| g.ptr));
    }
}

// SAFETY: the pointee carries the brand; `Gc<'gc, T>` and
// `Gc<'static, T::Erased>` have the same representation.
unsafe impl<'gc, T: ?Sized + Branded<'gc>, B: Brand> Branded<'gc> for Gc<'gc, T, B> {
    type Erased = Gc<'static, T::Erased, B>;
}

// SAFETY: the inverse of the impl above.
unsafe impl<T: ?Sized + Rootable, B: Brand> Rootable for Gc<'static, T, B> {
    type At<'gc> = Gc<'gc, T::At<'gc>, B>;
}
