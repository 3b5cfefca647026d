//! The `Trace` trait: how the collector finds the `Gc` pointers inside a
//! value, and what a traced type promises about itself.
//!
//! A type is allocated on the heap only if it implements [`Trace<B>`] for
//! the heap's brand `B`. Usually `#[derive(Trace)]` writes the impl; this
//! module has the impls for std types. The impls for the crate's own types
//! (`Gc`, `GcCell`, `GcRefCell`, ...) sit beside those types.
//!
//! `NEEDS_TRACE` is how noscan works: a type whose values can hold no `Gc`
//! says `false`, its objects go to noscan spans, and the marker never looks
//! inside them. Containers pass their element's answer through, so a
//! `Vec<f64>` is noscan and a `Vec<Gc<_>>` is not.
//!
//! Containers of `Gc` hand the marker a whole slice at a time
//! ([`Trace::trace_slice`], which `Gc` overrides: see "Runs of pointers"
//! in `mark.rs`), and those whose buffers live outside the heap (`Vec`,
//! `VecDeque`, `Box`, maps, sets) tell the tracer how many bytes they scan
//! there, which the pacer counts as scan work (`pacer.rs`, "Heap goal").
//!
//! `SEND` says whether a type is known to be `Send`: objects of types with
//! drop glue that are not are dropped only on the thread that allocated
//! them (`owner.rs`). Containers pass their elements' answer on.
//!
//! What is deliberately missing: references other than `&'static str`
//! (re-branding a reference would let it outlive what it points to), `Rc`
//! (its drop glue is not sound on any thread, which rule 4 asks of every
//! traced type), raw pointers and
//! `fn` pointers (they can hide `Gc`s), and std `Cell`/`RefCell` holding
//! anything that is not `'static` (every write of a `Gc` must go through the
//! crate's cells, see `cell.rs`).

use crate::brand::{Brand, Global};
use crate::mark::Tracer;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, LinkedList, VecDeque};
use std::marker::PhantomData;
use std::sync::Arc;

/// A type the collector can trace: what may be allocated in a heap of
/// brand `B` and stored in its objects.
///
/// [`#[derive(Trace)]`](derive@crate::Trace) writes the impl for structs
/// and enums; the crate implements it for `Gc`, its cells and weak types,
/// and for std types: numbers, `bool`, `char`, `String`,
/// `str`, `&'static str`, `Option`, `Result`, `Box`, `Vec`, `VecDeque`,
/// `LinkedList`, `BinaryHeap`, `BTreeSet`, `BTreeMap`, `HashSet`,
/// `HashMap`, arrays, slices, tuples up to 8, `Arc` of `Send + Sync`
/// values, `Cell`/`RefCell` of `'static` values, and a few leaf types
/// (`Duration`, `Instant`, `PathBuf`, ...). It is deliberately
/// missing for references other than `&'static str`, `Rc`, raw and `fn`
/// pointers, which could hide a `Gc` from the collector or drop on the
/// wrong thread.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
/// use spangc::{Config, Trace};
/// use std::collections::HashMap;
///
/// #[derive(Trace)]
/// # #[gc(brand = Doc)]
/// struct Module<'gc> {
///     exports: HashMap<String, Gc<'gc, str>>,
///     lines: Vec<u32>,
/// }
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let exports = HashMap::from([("main".to_string(), cx.alloc_str("fn main"))]);
///     let module = cx.root(cx.alloc(Module { exports, lines: vec![1, 2] }));
///     cx.collect(); // the string is reached through the map, so it survives
///     assert_eq!(&*module.get(cx).exports["main"], "fn main");
/// });
/// ```
///
/// Hand-written impls are for types the derive cannot describe: see
/// [`Tracer`] and [`Tracer::mark_raw`].
///
/// # Safety
///
/// Implementing `Trace` promises:
///
/// 1. `trace` calls `tracer.trace(..)` (or, for `Gc` itself,
///    `Tracer::mark`) on every `Gc` the value owns, directly or through
///    owned containers (`Box`, `Vec`, ...). A missed `Gc` is freed while
///    still reachable. An impl that overrides `trace_slice` or
///    `trace_option_slice` traces every (present) element there too.
/// 2. `NEEDS_TRACE` is `false` only if no value of the type can hold a `Gc`.
/// 3. `trace` reads the value and nothing else: it does not allocate, block,
///    touch any heap object but through the tracer, or panic (a panic while
///    marking aborts the process, since a half-marked heap cannot be swept).
/// 4. Dropping a value of the type is sound on any thread, and its drop
///    glue never reads through a `Gc` (the object behind it may already be
///    freed). `#[derive(Trace)]` enforces both; hand-written impls must too.
///    (Objects of types that are not known to be `Send` are still only
///    dropped on the thread that allocated them: see [`Trace::SEND`].)
/// 5. Every `Gc` the value holds belongs to a heap of brand `B`.
/// 6. `SEND` is `false` if the type is not `Send`.
pub unsafe trait Trace<B: Brand = Global> {
    /// Whether values of this type can hold `Gc` pointers. When `false`,
    /// objects of the type are never scanned: they go to *noscan* spans the
    /// marker never looks into. Containers pass their elements' answer on.
    ///
    /// ```
    /// use spangc::{Gc, Trace};
    ///
    /// assert!(!<Vec<f64> as Trace>::NEEDS_TRACE);
    /// assert!(!<(String, Box<[u8]>) as Trace>::NEEDS_TRACE);
    /// assert!(<Vec<Gc<'static, str>> as Trace>::NEEDS_TRACE);
    /// assert!(<Option<Gc<'static, u64>> as Trace>::NEEDS_TRACE);
    /// ```
    const NEEDS_TRACE: bool;

    /// Whether the type is known to be `Send`. It must be `false` for a
    /// type that is not `Send`; `false` for a `Send` type only costs time.
    /// The default is `false`; the derive asks the compiler where its impl
    /// is not generic (and answers `false` for generic types), and
    /// containers pass their elements' answer on.
    ///
    /// It decides where an object's drop glue runs: an object of a type
    /// with drop glue and `SEND == false` is dropped only on the thread
    /// that allocated it (see `docs/api.md`, "Destructors and threads");
    /// other objects are dropped by whichever thread sweeps them.
    ///
    /// ```
    /// use spangc::{Gc, GcRefCell, Trace};
    ///
    /// assert!(<Vec<String> as Trace>::SEND);
    /// assert!(<(u8, Option<Box<[u64]>>) as Trace>::SEND);
    /// // A `Gc` is `Send` only if its target is `Sync`, which `Trace`
    /// // does not know, so containers of them answer `false`.
    /// assert!(!<Vec<Gc<'static, u64>> as Trace>::SEND);
    /// assert!(!<GcRefCell<Vec<Gc<'static, str>>> as Trace>::SEND);
    /// ```
    const SEND: bool = false;

    /// Reports every `Gc` the value owns to `tracer`. Called by the marker
    /// with the world stopped; [`Tracer`] has another hand-written impl.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// use spangc::{Config, Trace, Tracer};
    ///
    /// enum Value<'gc> {
    ///     Number(f64),
    ///     Str(Gc<'gc, str>),
    /// }
    ///
    /// // By hand for the example; `#[derive(Trace)]` would write the same.
    /// // SAFETY: the only `Gc` a value can own is traced (rules 1, 2, 5);
    /// // `trace` only reads (rule 3); no drop glue (rule 4).
    /// unsafe impl Trace<Doc> for Value<'_> {
    ///     const NEEDS_TRACE: bool = true;
    ///     fn trace(&self, tracer: &mut Tracer<'_>) {
    ///         if let Value::Str(s) = self {
    ///             tracer.trace::<Doc, _>(s);
    ///         }
    ///     }
    /// }
    ///
    /// #[derive(Trace)]
    /// # #[gc(brand = Doc)]
    /// struct Registers<'gc> {
    ///     values: Vec<Value<'gc>>, // traced through `Value::trace`
    /// }
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let values = vec![Value::Number(1.5), Value::Str(cx.alloc_str("traced"))];
    ///     let regs = cx.root(cx.alloc(Registers { values }));
    ///     cx.collect(); // the string survives: `trace` reported it
    ///     let Value::Str(s) = &regs.get(cx).values[1] else { unreachable!() };
    ///     assert_eq!(&**s, "traced");
    /// });
    /// ```
    fn trace(&self, tracer: &mut Tracer<'_>);

    /// Traces every element of `items`: what the std containers of `Self`
    /// (`Vec`, slices, arrays, `VecDeque`) call instead of tracing element
    /// by element. The default does exactly that; `Gc` overrides it so that
    /// a lone mark worker sets a run of mark bits with the mark word in a
    /// register. Hand-written impls have no reason to override it.
    ///
    /// ```
    /// use spangc::{Config, Gc, Heap, Trace};
    ///
    /// let heap: Heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let ring: Vec<Gc<'_, u64>> = (0..1000).map(|i| cx.alloc(i)).collect();
    ///     let ring = cx.root(cx.alloc(ring)); // `Vec::trace` calls `Gc::trace_slice`
    ///     cx.collect();
    ///     assert_eq!(*ring.get(cx)[999], 999);
    /// });
    /// ```
    #[inline]
    fn trace_slice(items: &[Self], tracer: &mut Tracer<'_>)
    where
        Self: Sized,
    {
        for x in items {
            tracer.trace::<B, Self>(x);
        }
    }

    /// Traces every present element of `items`: what [`Trace::trace_slice`]
    /// of `Option<Self>` calls, so that `Gc` can override it as it does
    /// `trace_slice`.
    ///
    /// ```
    /// use spangc::{Config, Gc, Heap};
    ///
    /// let heap: Heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let slots: Vec<Option<Gc<'_, u64>>> = vec![Some(cx.alloc(7)), None];
    ///     let slots = cx.root(cx.alloc(slots)); // through `Gc::trace_option_slice`
    ///     cx.collect();
    ///     assert_eq!(slots.get(cx)[0].map(|n| *n), Some(7));
    /// });
    /// ```
    #[inline]
    fn trace_option_slice(items: &[Option<Self>], tracer: &mut Tracer<'_>)
    where
        Self: Sized,
    {
        for x in items.iter().flatten() {
            tracer.trace::<B, Self>(x);
        }
    }
}

/// Types that hold no `Gc`: tracing does nothing.
macro_rules! noscan {
    ($($(#[$m:meta])* [$($g:tt)*] $t:ty $(=> $send:expr)?;)*) => {$(
        $(#[$m])*
        // SAFETY: the type holds no `Gc` (rules 1, 2, 5), its drop glue is
        // std's own and thread-agnostic (rule 4), and tracing reads nothing.
        // `SEND` is true (every leaf type here is `Send`) unless given.
        unsafe impl<B: Brand, $($g)*> Trace<B> for $t {
            const NEEDS_TRACE: bool = false;
            const SEND: bool = true $(&& $send)?;
            #[inline]
            fn trace(&self, _: &mut Tracer<'_>) {}
        }
    )*};
}

noscan! {
    [] (); [] bool; [] char; [] u8; [] u16; [] u32; [] u64; [] u128; [] usize;
    [] i8; [] i16; [] i32; [] i64; [] i128; [] isize; [] f32; [] f64;
    [] String; [] str; [] &'static str; [] std::time::Duration; [] std::time::Instant;
    [] std::num::NonZeroU32; [] std::num::NonZeroU64; [] std::num::NonZeroUsize;
    [] std::path::PathBuf; [] std::ffi::OsString; [] std::ffi::CString;
    /// Not known to be `Send`: `T` need not implement `Trace`.
    [T: ?Sized] PhantomData<T> => false;
    /// `'static` contents cannot hold a branded `Gc`.
    [T: Trace<B> + 'static] Cell<T> => T::SEND;
    /// `'static` contents cannot hold a branded `Gc`.
    [T: Trace<B> + 'static] RefCell<T> => T::SEND;
    /// Shared ownership outside the heap; `Send + Sync` contents keep the
    /// drop thread-agnostic.
    [T: ?Sized + Send + Sync + 'static] Arc<T>;
}

/// Containers of one element type `T`: `NEEDS_TRACE` is the element's,
/// and `trace`, when it is true, runs the container's own body, which
/// traces every element: with [`Trace::trace_slice`] where they lie in
/// slices, one by one otherwise. Containers whose buffer is outside the
/// heap first report its bytes ([`Tracer::note_outside`]).
macro_rules! elements {
    ($([$($g:tt)*] $t:ty => |$c:ident, $tr:ident| $body:block)*) => {$(
        // SAFETY: every element is traced, by the body (rule 1);
        // NEEDS_TRACE is the element's (rule 2); drop glue is std's,
        // dropping elements whose own impls uphold rule 4.
        unsafe impl<B: Brand, $($g)*> Trace<B> for $t {
            const NEEDS_TRACE: bool = T::NEEDS_TRACE;
            // `Send` if the elements are (and the hasher, bounded `Send`).
            const SEND: bool = T::SEND;
            #[inline]
            fn trace(&self, tracer: &mut Tracer<'_>) {
                if T::NEEDS_TRACE {
                    let ($c, $tr) = (self, tracer);
                    $body
                }
            }
        }
    )*};
}

/// The body of a container whose elements are traced one by one, from a
/// buffer outside the heap.
macro_rules! each {
    ($c:ident, $tr:ident) => {{
        $tr.note_outside($c.len() * size_of::<T>());
        for x in $c.iter() {
            $tr.trace::<B, T>(x);
        }
    }};
}

elements! {
    [T: Trace<B>] [T] => |c, tr| { T::trace_slice(c, tr) }
    [T: Trace<B>, const N: usize] [T; N] => |c, tr| { T::trace_slice(c, tr) }
    [T: Trace<B>] Vec<T> => |c, tr| {
        tr.note_outside(c.len() * size_of::<T>());
        T::trace_slice(c, tr);
    }
    [T: Trace<B>] VecDeque<T> => |c, tr| {
        tr.note_outside(c.len() * size_of::<T>());
        let (front, back) = c.as_slices();
        T::trace_slice(front, tr);
        T::trace_slice(back, tr);
    }
    [T: Trace<B>] LinkedList<T> => |c, tr| { each!(c, tr) }
    [T: Trace<B>] BinaryHeap<T> => |c, tr| { each!(c, tr) }
    [T: Trace<B>] BTreeSet<T> => |c, tr| { each!(c, tr) }
    // The hasher is not traced: it must hold no `Gc` (`'static`) and
    // drop on any thread (`Send`).
    [T: Trace<B>, S: 'static + Send] HashSet<T, S> => |c, tr| { each!(c, tr) }
}

// SAFETY: the value, if any, is traced (rule 1); NEEDS_TRACE is the
// value's (rule 2); drop glue drops a T (rule 4). A slice of options goes
// to `T::trace_option_slice`, which traces the present ones.
unsafe impl<B: Brand, T: Trace<B>> Trace<B> for Option<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const SEND: bool = T::SEND;
    #[inline(always)]
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if let Some(x) = self {
            tracer.trace::<B, T>(x);
        }
    }
    #[inline]
    fn trace_slice(items: &[Self], tracer: &mut Tracer<'_>) {
        T::trace_option_slice(items, tracer);
    }
}

// SAFETY: traces the boxed value (rule 1); NEEDS_TRACE passes through
// (rule 2); Box's drop glue drops a T, which upholds rule 4.
unsafe impl<B: Brand, T: ?Sized + Trace<B>> Trace<B> for Box<T> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    const SEND: bool = T::SEND;
    #[inline]
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if T::NEEDS_TRACE {
            tracer.note_outside(size_of_val::<T>(self));
            tracer.trace::<B, T>(self);
        }
    }
}

// SAFETY: traces whichever side is present (rule 1); NEEDS_TRACE is true if
// either side needs it (rule 2); drop glue drops a T or an E (rule 4).
unsafe impl<B: Brand, T: Trace<B>, E: Trace<B>> Trace<B> for Result<T, E> {
    const NEEDS_TRACE: bool = T::NEEDS_TRACE || E::NEEDS_TRACE;
    const SEND: bool = T::SEND && E::SEND;
    #[inline]
    fn trace(&self, tracer: &mut Tracer<'_>) {
        match self {
            Ok(t) => tracer.trace::<B, T>(t),
            Err(e) => tracer.trace::<B, E>(e),
        }
    }
}

/// Maps: trace keys and values.
macro_rules! map {
    ($([$($g:tt)*] $t:ty;)*) => {$(
        // SAFETY: every key and value is traced (rule 1); NEEDS_TRACE is
        // true if either needs it (rule 2); drop glue drops keys and values
        // (rule 4).
        unsafe impl<B: Brand, K: Trace<B>, V: Trace<B>, $($g)*> Trace<B> for $t {
            const NEEDS_TRACE: bool = K::NEEDS_TRACE || V::NEEDS_TRACE;
            // The hasher, if any, is bounded `Send`.
            const SEND: bool = K::SEND && V::SEND;
            #[inline]
            fn trace(&self, tracer: &mut Tracer<'_>) {
                if Self::NEEDS_TRACE {
                    tracer.note_outside(self.len() * (size_of::<K>() + size_of::<V>()));
                    for (k, v) in self.iter() {
                        tracer.trace::<B, K>(k);
                        tracer.trace::<B, V>(v);
                    }
                }
            }
        }
    )*};
}

map! {
    // The hasher must be `'static + Send`, as for `HashSet`.
    [S: 'static + Send] HashMap<K, V, S>;
    [] BTreeMap<K, V>;
}

/// Tuples: trace each field.
macro_rules! tuple {
    ($(($($n:tt $t:ident),+);)*) => {$(
        // SAFETY: every field is traced (rule 1); NEEDS_TRACE is true if any
        // field needs it (rule 2); drop glue drops the fields (rule 4).
        unsafe impl<B: Brand, $($t: Trace<B>),+> Trace<B> for ($($t,)+) {
            const NEEDS_TRACE: bool = false $(|| $t::NEEDS_TRACE)+;
            const SEND: bool = true $(&& $t::SEND)+;
            #[inline]
            fn trace(&self, tracer: &mut Tracer<'_>) {
                $(tracer.trace::<B, $t>(&self.$n);)+
            }
        }
    )*};
}

tuple! {
    (0 A);
    (0 A, 1 C);
    (0 A, 1 C, 2 D);
    (0 A, 1 C, 2 D, 3 E);
    (0 A, 1 C, 2 D, 3 E, 4 F);
    (0 A, 1 C, 2 D, 3 E, 4 F, 5 G);
    (0 A, 1 C, 2 D, 3 E, 4 F, 5 G, 6 H);
    (0 A, 1 C, 2 D, 3 E, 4 F, 5 G, 6 H, 7 I);
}
