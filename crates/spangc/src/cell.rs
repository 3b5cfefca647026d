//! Interior mutability for heap objects: the only way to write a `Gc` (or
//! anything traced) into an object.
//!
//! A `Gc` gives `&T`, never `&mut T`, so fields of heap objects change
//! through cells. Both cells take the current [`Scope`] for every write and
//! pass the write to [`barrier::write`](crate::barrier::write): the hook
//! point where a concurrent or generational collector will record the
//! write. Today's collector stops the world to mark, so it needs no
//! barrier; in verify mode the hook checks that every `Gc` being stored is
//! an allocated object of this heap.
//!
//! Reads need no scope: `GcCell::get` and `GcRefCell::borrow` re-brand what
//! they return with the lifetime of the object reference they read through,
//! which is the scope borrow.
//!
//! Both cells are `!Sync` (like `Cell` and `RefCell`), so an object holding
//! one is not shared between mutator threads.

use crate::barrier;
use crate::brand::Brand;
use crate::branded::{Branded, Rootable};
use crate::mark::Tracer;
use crate::mutator::Scope;
use crate::trace::Trace;
use std::cell::{Cell, Ref, RefCell, RefMut};
use std::fmt;

/// A `Cell` for heap objects: copy values in and out, every write through
/// the scope.
///
/// A [`Gc`](crate::Gc) gives `&T`, never `&mut T`, so a field of a heap
/// object that changes is a cell. [`GcCell::get`] reads without the scope;
/// [`GcCell::set`] and [`GcCell::replace`] take the current
/// [`Scope`](crate::Scope), which is the collector's write-barrier hook and
/// keeps pointers of other heaps out (`T: Trace<B>` for the scope's brand).
/// For values that are not `Copy` (a `Vec`, a `String`), use
/// [`GcRefCell`]. Like `Cell`, it is `!Sync`: an object holding one stays
/// on its thread.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
/// use spangc::{Config, GcCell, Trace};
///
/// #[derive(Trace)]
/// # #[gc(brand = Doc)]
/// struct Page<'gc> {
///     hits: GcCell<u64>,
///     referrer: GcCell<Option<Gc<'gc, str>>>,
/// }
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let page = cx.alloc(Page { hits: GcCell::new(0), referrer: GcCell::new(None) });
///     page.hits.set(cx, page.hits.get() + 1);
///     page.referrer.set(cx, Some(cx.alloc_str("/index.html")));
///
///     assert_eq!(page.hits.get(), 1);
///     assert_eq!(page.referrer.get().as_deref(), Some("/index.html"));
/// });
/// ```
#[derive(Default)]
pub struct GcCell<T> {
    value: Cell<T>,
}

impl<T> GcCell<T> {
    /// A cell holding `value`. Needs no scope: the cell is not in the heap
    /// yet. [`GcCell`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{Config, GcCell};
    ///
    /// let cell = GcCell::new(3u32); // built outside any scope
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let obj = cx.alloc(cell); // moved into the heap
    ///     assert_eq!(obj.get(), 3);
    /// });
    /// ```
    pub const fn new(value: T) -> Self {
        GcCell {
            value: Cell::new(value),
        }
    }
}

impl<T: Copy> GcCell<T> {
    /// The current value (a copy). Needs no scope: the value read is
    /// re-branded with the lifetime of the object reference it is read
    /// through, the scope borrow. [`GcCell`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// use spangc::{Config, GcCell};
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let slot = cx.alloc(GcCell::new(cx.alloc_str("first")));
    ///     let s: Gc<str> = slot.get(); // a copy of the pointer; no scope needed
    ///     assert_eq!(&*s, "first");
    /// });
    /// ```
    #[inline]
    pub fn get(&self) -> T {
        self.value.get()
    }

    /// Stores `value`. `T: Trace<B>` keeps pointers of other heaps out.
    /// [`GcCell`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// use spangc::{Config, GcCell};
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let slot = cx.root(cx.alloc(GcCell::<Option<Gc<str>>>::new(None)));
    ///     slot.get(cx).set(cx, Some(cx.alloc_str("stored")));
    ///     cx.collect(); // the string is reached through the rooted cell
    ///     assert_eq!(slot.get(cx).get().as_deref(), Some("stored"));
    /// });
    /// ```
    #[inline]
    pub fn set<B: Brand>(&self, cx: &Scope<B>, value: T)
    where
        T: Trace<B>,
    {
        barrier::write::<B, T>(cx, &value);
        self.value.set(value);
    }

    /// Stores `value` and returns the old value.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{Config, GcCell};
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let current = cx.alloc(GcCell::new(cx.alloc_str("draft")));
    ///     let old = current.replace(cx, cx.alloc_str("final"));
    ///     assert_eq!((&*old, &*current.get()), ("draft", "final"));
    /// });
    /// ```
    #[inline]
    pub fn replace<B: Brand>(&self, cx: &Scope<B>, value: T) -> T
    where
        T: Trace<B>,
    {
        barrier::write::<B, T>(cx, &value);
        self.value.replace(value)
    }
}

impl<T: Copy + fmt::Debug> fmt::Debug for GcCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("GcCell").field(&self.get()).finish()
    }
}

// SAFETY: traces the current value (rule 1; the world is stopped while
// marking, so it cannot change underneath); NEEDS_TRACE is the value's
// (rule 2); drop glue drops a T (rule 4).
unsafe impl<B: Brand, T: Copy + Trace<B>> Trace<B> for GcCell<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    // A `Cell<T>`: `Send` if `T` is.
    const SEND: bool = T::SEND;

    #[inline]
    fn trace(&self, tracer: &mut Tracer<'_>) {
        tracer.trace::<B, T>(&self.value.get());
    }
}

/// A `RefCell` for heap objects: borrow to read, borrow mutably through the
/// scope to write.
///
/// The cell for fields that are not `Copy`: a `Vec` of pointers (an
/// interpreter's value stack), a map, a `String`. [`GcRefCell::borrow`]
/// reads without the scope; [`GcRefCell::borrow_mut`] and
/// [`GcRefCell::replace`] take the current [`Scope`](crate::Scope) (the
/// write-barrier hook). Borrows are checked at run time as with `RefCell`.
/// A `RefMut` borrows the scope, so it cannot be held across a safepoint:
/// drop it first (see [`Scope::safepoint_requested`](crate::Scope::safepoint_requested)).
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
/// use spangc::{Config, GcRefCell, Trace};
///
/// #[derive(Trace)]
/// # #[gc(brand = Doc)]
/// struct Vm<'gc> {
///     stack: GcRefCell<Vec<Gc<'gc, str>>>,
/// }
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let root = cx.root(cx.alloc(Vm { stack: GcRefCell::new(Vec::new()) }));
///     let vm = root.get(cx);
///     vm.stack.borrow_mut(cx).push(cx.alloc_str("a"));
///     vm.stack.borrow_mut(cx).push(cx.alloc_str("b"));
///
///     cx.safepoint(); // the strings are reachable from the rooted VM
///
///     let vm = root.get(cx); // the old `vm` ended at the safepoint
///     let stack = vm.stack.borrow();
///     let items: Vec<&str> = stack.iter().map(|s| &**s).collect();
///     assert_eq!(items, ["a", "b"]);
/// });
/// ```
#[derive(Default)]
pub struct GcRefCell<T> {
    value: RefCell<T>,
}

impl<T> GcRefCell<T> {
    /// A cell holding `value`. Needs no scope: the cell is not in the heap
    /// yet. [`GcRefCell`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{Config, GcRefCell};
    ///
    /// let lines = GcRefCell::new(vec!["a".to_string()]); // outside any scope
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let obj = cx.alloc(lines);
    ///     assert_eq!(obj.borrow()[0], "a");
    /// });
    /// ```
    pub const fn new(value: T) -> Self {
        GcRefCell {
            value: RefCell::new(value),
        }
    }

    /// Borrows the value. Panics if it is mutably borrowed. Needs no scope;
    /// [`GcRefCell`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{Config, GcRefCell};
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let words = cx.alloc(GcRefCell::new(vec![cx.alloc_str("a"), cx.alloc_str("b")]));
    ///     let (first, second) = (words.borrow(), words.borrow()); // shared borrows
    ///     let joined: String = first.iter().map(|s| &**s).collect();
    ///     assert_eq!((joined.as_str(), second.len()), ("ab", 2));
    /// });
    /// ```
    #[inline]
    pub fn borrow(&self) -> Ref<'_, T> {
        self.value.borrow()
    }

    /// Borrows the value, or `None` if it is mutably borrowed.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{Config, GcRefCell};
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let log = cx.alloc(GcRefCell::new(String::new()));
    ///     let mut w = log.borrow_mut(cx);
    ///     w.push_str("started");
    ///     assert!(log.try_borrow().is_none(), "mutably borrowed");
    ///     drop(w);
    ///     assert_eq!(log.try_borrow().as_deref().map(String::as_str), Some("started"));
    /// });
    /// ```
    #[inline]
    pub fn try_borrow(&self) -> Option<Ref<'_, T>> {
        self.value.try_borrow().ok()
    }

    /// Borrows the value mutably. Panics if it is borrowed. [`GcRefCell`]
    /// has another example.
    ///
    /// The write barrier runs at the borrow, before any write, on the
    /// value as it was (the shape a snapshot-at-the-beginning barrier
    /// needs); in verify mode the value is checked again when the borrow
    /// ends.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// use spangc::{Config, GcRefCell};
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let names = cx.root(cx.alloc(GcRefCell::new(Vec::<Gc<str>>::new())));
    ///     names.get(cx).borrow_mut(cx).push(cx.alloc_str("x"));
    ///     names.get(cx).borrow_mut(cx).push(cx.alloc_str("y"));
    ///     cx.collect(); // the strings are reached through the rooted vector
    ///     assert_eq!(&*names.get(cx).borrow()[1], "y");
    /// });
    /// ```
    #[inline]
    pub fn borrow_mut<'a, B: Brand>(&'a self, cx: &Scope<B>) -> RefMut<'a, T>
    where
        T: Trace<B>,
    {
        let guard = self.value.borrow_mut();
        barrier::write::<B, T>(cx, &*guard);
        guard
    }

    /// Replaces the value, returning the old one. Panics if it is borrowed.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{Config, GcRefCell};
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let frames = cx.alloc(GcRefCell::new(vec![cx.alloc_str("main")]));
    ///     let old = frames.replace(cx, Vec::new());
    ///     assert_eq!(&*old[0], "main");
    ///     assert!(frames.borrow().is_empty());
    /// });
    /// ```
    #[inline]
    pub fn replace<B: Brand>(&self, cx: &Scope<B>, value: T) -> T
    where
        T: Trace<B>,
    {
        barrier::write::<B, T>(cx, &value);
        self.value.replace(value)
    }
}

impl<T: fmt::Debug> fmt::Debug for GcRefCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value.try_borrow() {
            Ok(v) => f.debug_tuple("GcRefCell").field(&*v).finish(),
            Err(_) => f.write_str("GcRefCell(<borrowed>)"),
        }
    }
}

// SAFETY: traces the value (rule 1); NEEDS_TRACE is the value's (rule 2);
// drop glue drops a T (rule 4).
unsafe impl<B: Brand, T: Trace<B>> Trace<B> for GcRefCell<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    // A `RefCell<T>`: `Send` if `T` is.
    const SEND: bool = T::SEND;

    #[inline]
    fn trace(&self, tracer: &mut Tracer<'_>) {
        // The marking thread's own mutator is at a safepoint, which needs
        // `&mut Scope`, so every `RefMut` derived from a scope borrow has
        // ended, and every other mutator is parked the same way. The flag
        // may still say "borrowed" (a `mem::forget`-ed `RefMut`), so read
        // through the pointer instead of `borrow()`, which would refuse.
        // SAFETY: so no mutable borrow is in use while marking.
        tracer.trace::<B, T>(unsafe { &*self.value.as_ptr() });
    }
}

macro_rules! cell_brand {
    ($($cell:ident),*) => {$(
        // SAFETY: the contents carry the brand and erase by their own impl.
        unsafe impl<'gc, T: Branded<'gc>> Branded<'gc> for $cell<T>
        where
            T::Erased: Sized,
            for<'x> <T::Erased as Rootable>::At<'x>: Sized,
        {
            type Erased = $cell<T::Erased>;
        }

        // SAFETY: the inverse of the impl above.
        unsafe impl<T: Rootable> Rootable for $cell<T>
        where
            for<'gc> T::At<'gc>: Sized,
        {
            type At<'gc> = $cell<T::At<'gc>>;
        }
    )*};
}

cell_brand!(GcCell, GcRefCell);
