//! Brand erasure: naming a heap type without the scope's lifetime.
//!
//! Objects are stored brand-erased: a `Node<'s>` allocated in a scope lives
//! in the heap as a `Node<'static>` and is re-branded with the current scope
//! borrow whenever safe code reaches it again (allocation, `Root::get`,
//! reading a field through a `Gc`). Two traits carry the mapping:
//!
//! * [`Branded<'gc>`]: "this type, branded with `'gc`, erases to
//!   `Self::Erased`". Allocation and rooting require `T: Branded<'s>` for the
//!   *current* borrow `'s`. Without that bound one object could be seen both
//!   as `Node<'static>` and as its exact type, and a `Gc<'static, _>` would
//!   escape the scope (the "brand laundering" hole the prototype found; see
//!   `docs/api.md`).
//! * [`Rootable`]: the way back: `Root<Node<'static>>::get(cx)` yields a
//!   `Gc<'s, Node<'s>>`.
//!
//! `#[derive(Trace)]` implements both for types with at most one lifetime
//! parameter. This module implements them for std types whose brand is
//! their element's, and for `'static` leaf types (which erase to
//! themselves).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, LinkedList, VecDeque};
use std::marker::PhantomData;
use std::sync::Arc;

/// A type branded with the scope borrow `'gc`; `Erased` is the same type
/// with every `'gc` replaced by `'static`.
///
/// Objects are stored brand-erased: a `Node<'s>` allocated in a scope lives
/// in the heap as a `Node<'static>`, which is also how a [`Root`](crate::Root)
/// names it (`Root<Node<'static>>`). Allocation and rooting require
/// `T: Branded<'s>` for the *current* scope borrow `'s`, so only values
/// branded with this scope go in. `#[derive(Trace)]` implements it; this
/// crate implements it for std types (whose brand is their elements') and
/// for `'static` leaf types (which erase to themselves).
///
/// Embedders meet it as a bound on generic helpers:
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Scope = spangc::Scope<Doc>;
/// # type Root<R> = spangc::Root<R, Doc>;
/// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
/// use spangc::{Branded, Config, Trace};
///
/// #[derive(Trace)]
/// # #[gc(brand = Doc)]
/// struct Node<'gc> {
///     label: Gc<'gc, str>,
/// }
///
/// /// Allocates any heap value and roots it. The root names the value's
/// /// type without the scope lifetime: `T::Erased`.
/// fn keep<'s, T: Trace<Doc> + Branded<'s> + 's>(cx: &'s Scope, value: T) -> Root<T::Erased> {
///     cx.root(cx.alloc(value))
/// }
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let node: Root<Node<'static>> = keep(cx, Node { label: cx.alloc_str("n") });
///     let pair: Root<(u32, String)> = keep(cx, (7u32, "seven".to_string()));
///     cx.collect();
///     assert_eq!(&*node.get(cx).label, "n");
///     assert_eq!(pair.get(cx).1, "seven");
/// });
/// ```
///
/// # Safety
///
/// `Self` and `Self::Erased` must differ only in lifetimes (same layout,
/// same drop glue, same `Trace` behaviour), and `Self` must mention no
/// lifetime other than `'gc`.
pub unsafe trait Branded<'gc> {
    /// `Self` with `'gc` replaced by `'static`.
    ///
    /// ```
    /// use spangc::{Branded, Gc};
    /// use std::any::TypeId;
    ///
    /// fn erased<'gc, T: Branded<'gc> + ?Sized>() -> TypeId {
    ///     TypeId::of::<T::Erased>()
    /// }
    ///
    /// assert_eq!(erased::<Gc<'_, str>>(), TypeId::of::<Gc<'static, str>>());
    /// assert_eq!(erased::<(u8, Vec<Gc<'_, u64>>)>(), TypeId::of::<(u8, Vec<Gc<'static, u64>>)>());
    /// assert_eq!(erased::<String>(), TypeId::of::<String>()); // no lifetime: itself
    /// ```
    type Erased: Rootable + ?Sized;
}

/// A brand-erased type, as roots and the heap name it; `At<'gc>` re-brands
/// it.
///
/// This is the way back from [`Branded`]: `Root<Node<'static>>::get(cx)`
/// gives a `Gc<'s, Node<'s>>`, because `<Node<'static> as Rootable>::At<'s>`
/// is `Node<'s>`. `#[derive(Trace)]` implements it. Embedders name it when
/// they keep roots in their own (non-heap) structures, which must spell
/// object types with `'static`:
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Scope = spangc::Scope<Doc>;
/// # type Root<R> = spangc::Root<R, Doc>;
/// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
/// use spangc::{Config, GcRefCell, Rootable, Trace};
///
/// #[derive(Trace)]
/// # #[gc(brand = Doc)]
/// struct Env<'gc> {
///     names: GcRefCell<Vec<Gc<'gc, str>>>,
/// }
///
/// /// Interpreter state that lives outside the heap.
/// struct Interpreter {
///     globals: Root<Env<'static>>,
/// }
///
/// impl Interpreter {
///     fn globals<'s>(&self, cx: &'s Scope) -> Gc<'s, Env<'s>> {
///         self.globals.get(cx) // Env<'static> re-branded as Env<'s>
///     }
/// }
///
/// /// Works for the roots of any type.
/// fn same_object<R: Rootable + ?Sized>(cx: &Scope, a: &Root<R>, b: &Root<R>) -> bool {
///     Gc::ptr_eq(a.get(cx), b.get(cx))
/// }
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let env = cx.alloc(Env { names: GcRefCell::new(Vec::new()) });
///     let vm = Interpreter { globals: cx.root(env) };
///     cx.safepoint();
///     vm.globals(cx).names.borrow_mut(cx).push(cx.alloc_str("print"));
///     assert_eq!(&*vm.globals(cx).names.borrow()[0], "print");
///     assert!(same_object(cx, &vm.globals, &vm.globals.clone()));
/// });
/// ```
///
/// # Safety
///
/// `Self::At<'gc>` must be `Self` with `'static` replaced by `'gc` in the
/// brand positions (same layout and behaviour), and it must erase back to
/// `Self`.
pub unsafe trait Rootable: 'static {
    /// `Self` branded with `'gc`.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// use spangc::{Config, Rootable};
    ///
    /// // What a root of `Vec<Gc<'static, str>>` hands out in a scope `'s`.
    /// type Strings<'s> = <Vec<Gc<'static, str>> as Rootable>::At<'s>;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let v: Strings<'_> = vec![cx.alloc_str("re-branded")];
    ///     let root = cx.root(cx.alloc(v));
    ///     let back: Gc<Strings<'_>> = root.get(cx);
    ///     assert_eq!(&*back[0], "re-branded");
    /// });
    /// ```
    type At<'gc>: Branded<'gc, Erased = Self> + ?Sized;
}

/// `'static` leaf types: erase to themselves.
macro_rules! leaf {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: the type has no lifetime, so it is its own erasure.
        unsafe impl<'gc> Branded<'gc> for $t {
            type Erased = $t;
        }
        // SAFETY: as above.
        unsafe impl Rootable for $t {
            type At<'gc> = $t;
        }
    )*};
}

leaf!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    str,
    &'static str,
    std::time::Duration,
    std::time::Instant,
    std::num::NonZeroU32,
    std::num::NonZeroU64,
    std::num::NonZeroUsize,
    std::path::PathBuf,
    std::ffi::OsString,
    std::ffi::CString,
);

/// Wrappers whose `Trace` impls require `'static` contents: with no
/// lifetime inside they are their own erasure, like the leaves.
macro_rules! static_wrapper {
    ($($t:ident),* $(,)?) => {$(
        // SAFETY: `T: 'static` holds no branded lifetime, so the type is
        // its own erasure.
        unsafe impl<'gc, T: ?Sized + 'static> Branded<'gc> for $t<T> {
            type Erased = $t<T>;
        }
        // SAFETY: as above.
        unsafe impl<T: ?Sized + 'static> Rootable for $t<T> {
            type At<'gc> = $t<T>;
        }
    )*};
}

static_wrapper!(Cell, RefCell, Arc, PhantomData);

/// Generic containers: brand passes through the element types.
macro_rules! container {
    ($([$($g:ident),+] $($t:ident)::+ <$($a:ident),+>;)*) => {$(
        // SAFETY: only the element types carry the brand, and they erase
        // by their own (checked) impls.
        unsafe impl<'gc, $($g: Branded<'gc>),+> Branded<'gc> for $($t)::+<$($a),+>
        where $($g::Erased: Sized, for<'x> <$g::Erased as Rootable>::At<'x>: Sized),+
        {
            type Erased = $($t)::+<$($a::Erased),+>;
        }
        // SAFETY: the inverse of the impl above.
        unsafe impl<$($g: Rootable),+> Rootable for $($t)::+<$($a),+>
        where $(for<'gc> $g::At<'gc>: Sized),+
        {
            type At<'gc> = $($t)::+<$($a::At<'gc>),+>;
        }
    )*};
}

container! {
    [T] Vec<T>;
    [T] VecDeque<T>;
    [T] LinkedList<T>;
    [T] BinaryHeap<T>;
    [T] BTreeSet<T>;
    [T] HashSet<T>;
    [T] Box<T>;
    [T] Option<T>;
    [T, E] Result<T, E>;
    [K, V] HashMap<K, V>;
    [K, V] BTreeMap<K, V>;
}

// SAFETY: the element type carries the brand and erases by its own impl.
unsafe impl<'gc, T: Branded<'gc>> Branded<'gc> for [T]
where
    T::Erased: Sized,
    for<'x> <T::Erased as Rootable>::At<'x>: Sized,
{
    type Erased = [T::Erased];
}

// SAFETY: the inverse of the impl above.
unsafe impl<T: Rootable> Rootable for [T]
where
    for<'gc> T::At<'gc>: Sized,
{
    type At<'gc> = [T::At<'gc>];
}

// SAFETY: the element type carries the brand and erases by its own impl.
unsafe impl<'gc, T: Branded<'gc>, const N: usize> Branded<'gc> for [T; N]
where
    T::Erased: Sized,
    for<'x> <T::Erased as Rootable>::At<'x>: Sized,
{
    type Erased = [T::Erased; N];
}

// SAFETY: the inverse of the impl above.
unsafe impl<T: Rootable, const N: usize> Rootable for [T; N]
where
    for<'gc> T::At<'gc>: Sized,
{
    type At<'gc> = [T::At<'gc>; N];
}

/// Tuples: every field carries the brand.
macro_rules! tuple {
    ($(($($t:ident),+);)*) => {$(
        // SAFETY: each field erases by its own impl.
        unsafe impl<'gc, $($t: Branded<'gc>),+> Branded<'gc> for ($($t,)+)
        where $($t::Erased: Sized, for<'x> <$t::Erased as Rootable>::At<'x>: Sized),+
        {
            type Erased = ($($t::Erased,)+);
        }
        // SAFETY: the inverse of the impl above.
        unsafe impl<$($t: Rootable),+> Rootable for ($($t,)+)
        where $(for<'gc> $t::At<'gc>: Sized),+
        {
            type At<'gc> = ($($t::At<'gc>,)+);
        }
    )*};
}

tuple! {
    (A);
    (A, C);
    (A, C, D);
    (A, C, D, E);
    (A, C, D, E, F);
    (A, C, D, E, F, G);
    (A, C, D, E, F, G, H);
    (A, C, D, E, F, G, H, I);
}
