//! Object layout: how objects sit in their slots, and the per-span type
//! record that replaces an object header.
//!
//! # No header
//!
//! Every span holds objects of one Rust type, so the type is recorded once,
//! on the span (`Span::type_tag` points to a [`TypeInfo`]), not in a header
//! word per object. A two-pointer tree node is 16 bytes, not 24. The
//! marker already loads the span to find the mark bits, so reading the
//! type record there costs one more load from a line it has in cache.
//!
//! # Sized and dynamically sized objects
//!
//! A sized `T` occupies the start of its slot; a `Gc<T>` points at it.
//! Dynamically sized objects keep their element count in a one-word prefix
//! so that a `Gc` to them stays one thin pointer:
//!
//! ```text
//! WithTail<H, T>:  [ len: usize | head: H | tail: [T; len] ]   (repr(C))
//! [T]:             stored as WithTail<(), T>
//! str:             stored as WithTail<(), u8>, valid UTF-8
//! ```
//!
//! [`Object::from_thin`] turns the thin pointer back into a (fat) pointer
//! to the value; for sized types it is a cast, so dereferencing a `Gc` is
//! one load.
//!
//! # Type records
//!
//! [`TypeInfo`] holds what the collector needs to know about a type: how
//! to trace an object (or `None` for noscan types), how to drop it (or
//! `None` when it has no drop glue, which lets the sweeper free a span by
//! bitmap words alone), and its name for stats. One record per type is a
//! promoted constant (`&'static`); the same type may get more than one
//! record if the compiler duplicates the constant across codegen units,
//! which only means more than one span stream for that type.
//!
//! A span's type tag is the record's address, with the allocating thread's
//! owner index in the bits from [`OWNER_SHIFT`] up for types whose drop
//! glue must run on that thread (see `owner.rs`); [`TypeInfo::from_tag`]
//! masks them off.

use crate::brand::Brand;
use crate::mark::Tracer;
use crate::trace::Trace;
use std::alloc::Layout;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

/// A type that can be the target of a `Gc`: how its thin pointer becomes a
/// pointer to the value.
///
/// Implemented by this crate for every sized type, for `str`, `[T]` and
/// [`WithTail<H, T>`]; a `Gc` to a sized type points at the value, and the
/// others keep their length in a word before the data so that a `Gc` stays
/// one thin pointer. Embedders do not implement it; they name it as a
/// bound in code that reads through a `Gc` to any target, sized or not:
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
/// use spangc::{Config, Object};
/// use std::fmt::Debug;
///
/// fn show<T: ?Sized + Object + Debug>(gc: Gc<'_, T>) -> String {
///     format!("{:?}", &*gc)
/// }
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     assert_eq!(show(cx.alloc(7u8)), "7");
///     assert_eq!(show(cx.alloc_str("hi")), "\"hi\"");
///     assert_eq!(show(cx.alloc_slice_copy(&[1, 2])), "[1, 2]");
/// });
/// ```
///
/// # Safety
///
/// `from_thin` must return a pointer to the value stored at `p` in this
/// type's layout (see the module docs), with the right metadata.
pub unsafe trait Object {
    /// Whether dropping a value runs any code (`mem::needs_drop`, extended
    /// to the dynamically sized layouts). Objects of types without drop
    /// glue are freed without visiting them.
    ///
    /// ```
    /// use spangc::{Object, WithTail};
    ///
    /// assert!(!<u64 as Object>::NEEDS_DROP);
    /// assert!(!<str as Object>::NEEDS_DROP);
    /// assert!(<[String] as Object>::NEEDS_DROP);
    /// assert!(<WithTail<Vec<u8>, u32> as Object>::NEEDS_DROP);
    /// ```
    const NEEDS_DROP: bool;

    /// Rebuilds the pointer to the value from the object's address (what
    /// dereferencing a `Gc` does; for sized types a cast).
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// use spangc::{Config, Object};
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let s = cx.alloc_str("four");
    ///     // SAFETY: the address is a live `str` object's (`s` is usable).
    ///     let p = unsafe { <str as Object>::from_thin(Gc::as_raw(s)) };
    ///     assert_eq!(p.as_ptr() as *const str, &*s as *const str);
    ///     // SAFETY: as above; the object lives until the next safepoint.
    ///     assert_eq!(unsafe { p.as_ref() }, "four");
    /// });
    /// ```
    ///
    /// # Safety
    ///
    /// `p` must point to a live object of this type.
    unsafe fn from_thin(p: NonNull<u8>) -> NonNull<Self>;
}

// SAFETY: a sized value starts at the object's first byte.
unsafe impl<T> Object for T {
    const NEEDS_DROP: bool = std::mem::needs_drop::<T>();

    #[inline(always)]
    unsafe fn from_thin(p: NonNull<u8>) -> NonNull<T> {
        p.cast()
    }
}

/// A struct followed by a run of elements in one object, for interpreter
/// objects that would otherwise need a second allocation (a function's
/// constants, a closure's upvalues, a string's bytes).
///
/// Allocate with [`Scope::alloc_with_tail`](crate::Scope::alloc_with_tail)
/// or [`Scope::alloc_tail_copy`](crate::Scope::alloc_tail_copy); read
/// `head` and `tail` through the `Gc`. The length is fixed at allocation;
/// elements that change are cells.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
/// use spangc::{Config, GcCell, Trace, WithTail};
///
/// #[derive(Trace)]
/// # #[gc(brand = Doc)]
/// struct Proto<'gc> {
///     name: Gc<'gc, str>,
/// }
///
/// /// A closure: its prototype and its captured values, in one object.
/// type Closure<'gc> = WithTail<Proto<'gc>, GcCell<f64>>;
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let proto = Proto { name: cx.alloc_str("counter") };
///     let c: Gc<Closure> = cx.alloc_with_tail(proto, [1.0, 2.0].map(GcCell::new));
///     c.tail[1].set(cx, 5.0);
///     assert_eq!(&*c.head.name, "counter");
///     assert_eq!((c.len(), c.tail[0].get(), c.tail[1].get()), (2, 1.0, 5.0));
/// });
/// ```
#[repr(C)]
pub struct WithTail<H, T> {
    len: usize,
    /// The fixed part.
    pub head: H,
    /// The trailing elements.
    pub tail: [T],
}

// SAFETY: the length word at `p` is the tail's element count; casting a
// slice pointer with that count to `WithTail` gives it that metadata.
unsafe impl<H, T> Object for WithTail<H, T> {
    const NEEDS_DROP: bool = std::mem::needs_drop::<H>() || std::mem::needs_drop::<T>();

    #[inline]
    unsafe fn from_thin(p: NonNull<u8>) -> NonNull<Self> {
        // SAFETY: the caller guarantees a live object, whose first word is
        // its length.
        let len = unsafe { p.cast::<usize>().read() };
        let fat = ptr::slice_from_raw_parts_mut(p.as_ptr(), len) as *mut WithTail<H, T>;
        // SAFETY: `fat` has the address of `p`, which is non-null.
        unsafe { NonNull::new_unchecked(fat) }
    }
}

// SAFETY: a `[T]` object is a `WithTail<(), T>` whose tail is the slice.
unsafe impl<T> Object for [T] {
    const NEEDS_DROP: bool = std::mem::needs_drop::<T>();

    #[inline]
    unsafe fn from_thin(p: NonNull<u8>) -> NonNull<[T]> {
        // SAFETY: the caller guarantees a live `[T]` object, laid out as
        // `WithTail<(), T>`.
        let w = unsafe { WithTail::<(), T>::from_thin(p) };
        // SAFETY: projecting to a field of a valid object pointer; the
        // result is non-null because the object is.
        unsafe { NonNull::new_unchecked(ptr::addr_of_mut!((*w.as_ptr()).tail)) }
    }
}

// SAFETY: a `str` object is a `WithTail<(), u8>` holding UTF-8.
unsafe impl Object for str {
    const NEEDS_DROP: bool = false;

    #[inline]
    unsafe fn from_thin(p: NonNull<u8>) -> NonNull<str> {
        // SAFETY: as for `[u8]`.
        let bytes = unsafe { <[u8]>::from_thin(p) };
        // `str` and `[u8]` have the same layout and metadata.
        // SAFETY: non-null as `bytes` is.
        unsafe { NonNull::new_unchecked(bytes.as_ptr() as *mut str) }
    }
}

impl<H, T> WithTail<H, T> {
    /// The memory layout of an object with `len` tail elements, or `None`
    /// if it overflows `isize`.
    pub(crate) fn layout(len: usize) -> Option<Layout> {
        let (l, _) = Layout::new::<usize>().extend(Layout::new::<H>()).ok()?;
        let (l, _) = l.extend(Layout::array::<T>(len).ok()?).ok()?;
        Some(l.pad_to_align())
    }

    /// Writes the length word and the head of a fresh object at `p`, and
    /// returns the pointer to the first tail element.
    ///
    /// # Safety
    ///
    /// `p` must be valid for writes of `Self::layout(len)` bytes and
    /// aligned to it. Afterwards the object claims `len` tail elements;
    /// the caller must write them all before the object can be dropped,
    /// or lower the length with [`WithTail::set_len`] to what it wrote.
    pub(crate) unsafe fn init_head(p: NonNull<u8>, len: usize, head: H) -> *mut T {
        // SAFETY: the caller provides room for the whole object; the fat
        // pointer built from `len` has the layout `layout(len)` describes.
        unsafe {
            p.cast::<usize>().write(len);
            let obj = Self::from_thin(p).as_ptr();
            ptr::addr_of_mut!((*obj).head).write(head);
            ptr::addr_of_mut!((*obj).tail) as *mut T
        }
    }

    /// Rewrites the length word of the object at `p`.
    ///
    /// # Safety
    ///
    /// `p` must be an object of this type whose first `len` tail elements
    /// are initialised and not yet reachable by anyone else.
    pub(crate) unsafe fn set_len(p: NonNull<u8>, len: usize) {
        // SAFETY: the caller owns the fresh object.
        unsafe { p.cast::<usize>().write(len) }
    }

    /// Number of tail elements (`tail.len()`). [`WithTail`] has another
    /// example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let obj = cx.alloc_tail_copy("header", &[1u8, 2, 3]);
    ///     assert_eq!(obj.len(), 3);
    ///     assert_eq!(obj.len(), obj.tail.len());
    /// });
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tail is empty.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let empty = cx.alloc_tail_copy("header", &[] as &[u8]);
    ///     assert!(empty.is_empty());
    ///     assert_eq!(empty.head, "header");
    ///     assert!(!cx.alloc_tail_copy((), &[0u8]).is_empty());
    /// });
    /// ```
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

// SAFETY: traces the head and every tail element (rule 1); NEEDS_TRACE is
// true if either part needs it (rule 2); drop glue drops both parts, whose
// own impls uphold rule 4.
unsafe impl<B: Brand, H: Trace<B>, T: Trace<B>> Trace<B> for WithTail<H, T> {
    const NEEDS_TRACE: bool = H::NEEDS_TRACE || T::NEEDS_TRACE;
    const SEND: bool = H::SEND && T::SEND;

    #[inline]
    fn trace(&self, tracer: &mut Tracer<'_>) {
        tracer.trace::<B, H>(&self.head);
        if T::NEEDS_TRACE {
            for x in &self.tail {
                tracer.trace::<B, T>(x);
            }
        }
    }
}

// SAFETY: both parts carry the brand and erase by their own impls.
unsafe impl<'gc, H: crate::Branded<'gc>, T: crate::Branded<'gc>> crate::Branded<'gc>
    for WithTail<H, T>
where
    H::Erased: Sized,
    T::Erased: Sized,
    for<'x> <H::Erased as crate::Rootable>::At<'x>: Sized,
    for<'x> <T::Erased as crate::Rootable>::At<'x>: Sized,
{
    type Erased = WithTail<H::Erased, T::Erased>;
}

// SAFETY: the inverse of the impl above.
unsafe impl<H: crate::Rootable, T: crate::Rootable> crate::Rootable for WithTail<H, T>
where
    for<'gc> H::At<'gc>: Sized,
    for<'gc> T::At<'gc>: Sized,
{
    type At<'gc> = WithTail<H::At<'gc>, T::At<'gc>>;
}

/// What the collector knows about a type: the record a span's `type_tag`
/// points to. See the module docs.
pub struct TypeInfo {
    /// Traces an object at the given address; `None` for noscan types.
    pub(crate) trace: Option<unsafe fn(NonNull<u8>, &mut Tracer<'_>)>,
    /// Drops an object at the given address; `None` without drop glue.
    pub(crate) drop: Option<unsafe fn(NonNull<u8>)>,
    /// Whether the drop glue must run on the allocating thread (the type
    /// has drop glue and is not known to be `Send`): the type is *bound*,
    /// and a scope ORs its owner bits into the tag (`owner.rs`).
    pub(crate) bound: bool,
    /// The type's name, for stats and profiles.
    pub(crate) name: fn() -> &'static str,
}

impl TypeInfo {
    /// The record for `T` in heaps of brand `B`.
    #[inline(always)]
    pub(crate) fn of<B: Brand, T: ?Sized + Object + Trace<B>>() -> &'static TypeInfo {
        &InfoOf::<B, T>::INFO
    }

    /// Whether objects of this type are never scanned.
    #[inline]
    pub(crate) fn noscan(&self) -> bool {
        self.trace.is_none()
    }

    /// The type's name.
    pub fn name(&self) -> &'static str {
        (self.name)()
    }

    /// The record a span's type tag points to.
    ///
    /// # Safety
    ///
    /// `tag` must be a span's `type_tag` set by this crate (the address of
    /// a `'static` `TypeInfo`).
    #[inline(always)]
    pub(crate) unsafe fn from_tag(tag: usize) -> &'static TypeInfo {
        // SAFETY: the caller guarantees `tag` came from `TypeInfo::tag`,
        // maybe with owner bits, which the mask takes off.
        unsafe { &*((tag & TAG_ADDRESS) as *const TypeInfo) }
    }

    /// The tag to store on a span, without owner bits. Panics (on the slow
    /// path, where it is checked) if the record's address would collide
    /// with them.
    #[inline(always)]
    pub(crate) fn tag(&'static self) -> usize {
        self as *const TypeInfo as usize
    }

    /// Checks that the record's address leaves the owner bits clear.
    pub(crate) fn check_tag(&'static self) {
        assert_eq!(
            self.tag() & !TAG_ADDRESS,
            0,
            "spangc: type record of {} above 2^{OWNER_SHIFT}",
            self.name()
        );
    }
}

/// Where a type tag's owner index starts (see `owner.rs`). Type records are
/// static data, far below 2^48 on every 64-bit target spangc runs on
/// (`TypeInfo::check_tag`).
pub(crate) const OWNER_SHIFT: u32 = 48;
const TAG_ADDRESS: usize = (1 << OWNER_SHIFT) - 1;

/// The owner index in a type tag (0: none).
#[inline]
pub(crate) fn owner_of_tag(tag: usize) -> usize {
    tag >> OWNER_SHIFT
}

struct InfoOf<B, T: ?Sized>(PhantomData<fn() -> B>, PhantomData<*const T>);

impl<B: Brand, T: ?Sized + Object + Trace<B>> InfoOf<B, T> {
    const INFO: TypeInfo = TypeInfo {
        trace: if T::NEEDS_TRACE {
            Some(trace_erased::<B, T>)
        } else {
            None
        },
        drop: if T::NEEDS_DROP {
            Some(drop_erased::<T>)
        } else {
            None
        },
        bound: T::NEEDS_DROP && !T::SEND,
        name: std::any::type_name::<T>,
    };
}

/// Traces the object at `p`; when marking, goes on with the grey objects
/// of the same type on top of the marker's stack ([`Tracer::next_grey`]),
/// so a run of them costs one indirect call, not one each, and `T::trace`
/// is inlined in the loop.
unsafe fn trace_erased<B: Brand, T: ?Sized + Object + Trace<B>>(
    mut p: NonNull<u8>,
    tracer: &mut Tracer<'_>,
) {
    loop {
        // The marker only passes addresses of live objects of the type
        // this record was made for, and `next_grey` only returns grey
        // objects whose scan function has this one's address: of this
        // type, or of a type whose scan code is the same instructions (the
        // compiler may merge identical functions), which read the object
        // the same way.
        // SAFETY: `p` is a live object this function may read as a `T`.
        let v = unsafe { &*T::from_thin(p).as_ptr() };
        v.trace(tracer);
        match tracer.next_grey(trace_erased::<B, T>) {
            Some(q) => p = q,
            None => return,
        }
    }
}

unsafe fn drop_erased<T: ?Sized + Object>(p: NonNull<u8>) {
    // SAFETY: the sweeper only passes addresses of dead, initialised
    // objects of the type this record was made for, each exactly once.
    unsafe { ptr::drop_in_place(T::from_thin(p).as_ptr()) }
}
