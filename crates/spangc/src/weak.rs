//! Weak references: `Weak<'gc, T>`, one word, upgradeable to a `Gc` while
//! its object lives.
//!
//! As Go 1.24's weak pointers: every object has at most one *weak cell*, a
//! small heap object holding the object's address, found through the
//! object's weak-handle special record (created by the first `Weak::new`).
//! A `Weak` points to the cell, and tracing a `Weak` marks the cell, not
//! the object: the cell lives as long as some `Weak` (or the object's
//! special record) holds it. All weak references to one object therefore
//! share one cell, and clearing it clears them all at once.
//!
//! The sweeper clears the cell when it finds the object dead, before any
//! finalizer or cleanup of the object runs, and the record goes away, so
//! the cell stays cleared even if a finalizer resurrects the object.
//!
//! # Upgrading never yields a dead object
//!
//! Marking stops the world, so an upgrade never races with it: the marker
//! sees any `Gc` an upgrade produced. The race to close is with *lazy
//! sweeping*: after a collection, a dead object's cell is still set until
//! its span is swept. So `upgrade` asks the span (read through the cell's
//! address) how far sweeping got in this generation:
//!
//! * swept (or swept and cached): the sweep cleared the cell if the object
//!   was dead, so a cell that is still set names a live object;
//! * not yet swept (or cached since before the collection): the object is
//!   alive exactly if the last mark marked it;
//! * being swept right now: wait for that sweep (one span) and look again.
//!
//! The sweeper clears the cell (Release) before releasing its claim on the
//! span (Release); `upgrade` reads the span's sweepgen (Acquire) before
//! re-reading the cell, so it sees the clearing.

use crate::brand::{Brand, Global};
use crate::branded::{Branded, Rootable};
use crate::gc::Gc;
use crate::heap::HeapInner;
use crate::mark::Tracer;
use crate::mutator::Scope;
use crate::special::SpecialData;
use crate::trace::Trace;
use spangc_gcbits::SpanBits;
use spangc_specials::Kind;
use spangc_sweep::sweepgen::SpanSweepState;
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The canonical weak cell of an object: its address, or 0 once dead.
pub(crate) struct WeakCell {
    target: AtomicUsize,
}

impl WeakCell {
    /// Clears the cell at `cell` (the sweeper, for a dead object).
    pub(crate) fn clear(cell: NonNull<u8>) {
        // SAFETY: weak-handle records hold the address of a live WeakCell
        // (the record keeps it alive: the marker treats it as a root).
        let c = unsafe { cell.cast::<WeakCell>().as_ref() };
        c.target.store(0, Ordering::Release);
    }
}

// SAFETY: a weak cell holds no `Gc` the marker should follow (that is the
// point), so it is noscan; it has no drop glue.
unsafe impl<B: Brand> Trace<B> for WeakCell {
    const NEEDS_TRACE: bool = false;
    fn trace(&self, _: &mut Tracer<'_>) {}
}

// SAFETY: no lifetime: its own erasure.
unsafe impl<'gc> Branded<'gc> for WeakCell {
    type Erased = WeakCell;
}

// SAFETY: as above.
unsafe impl Rootable for WeakCell {
    type At<'gc> = WeakCell;
}

/// A weak reference to a `T`: does not keep it alive; [`Weak::upgrade`]
/// gives it back while it lives. One word; `Copy`.
///
/// Like a `Gc`, a `Weak<'s, T>` is branded with the scope borrow: to keep
/// one across safepoints, store it in a heap object (it is `Trace`) and
/// root that. All weak references to one object share one small heap
/// cell, created by the first [`Weak::new`]; the sweeper clears it when
/// the object dies, before any finalizer or cleanup of the object runs,
/// and it stays cleared.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
/// # type Weak<'gc, T> = spangc::Weak<'gc, T, Doc>;
/// use spangc::{Config, Trace};
///
/// /// A cache entry that does not keep its value alive.
/// #[derive(Trace)]
/// # #[gc(brand = Doc)]
/// struct Cache<'gc> {
///     last: Weak<'gc, str>,
/// }
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let page = cx.alloc_str("<html>");
///     let kept = cx.root(page);
///     let cache = cx.root(cx.alloc(Cache { last: Weak::new(cx, page) }));
///
///     cx.collect();
///     let hit = cache.get(cx).last.upgrade(cx);
///     assert_eq!(hit.as_deref(), Some("<html>")); // alive: `kept` roots it
///
///     drop(kept);
///     cx.collect();
///     assert!(cache.get(cx).last.upgrade(cx).is_none()); // collected
/// });
/// ```
pub struct Weak<'gc, T: ?Sized, B: Brand = Global> {
    cell: Gc<'gc, WeakCell, B>,
    _target: PhantomData<Gc<'gc, T, B>>,
}

impl<T: ?Sized, B: Brand> Clone for Weak<'_, T, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized, B: Brand> Copy for Weak<'_, T, B> {}

impl<T: ?Sized, B: Brand> fmt::Debug for Weak<'_, T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Weak({:#x})", self.cell.target.load(Ordering::Relaxed))
    }
}

impl<'s, T: ?Sized, B: Brand> Weak<'s, T, B> {
    /// A weak reference to `gc`'s object: its canonical cell, created on
    /// first use (one small allocation and a special record). [`Weak`]
    /// has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Weak<'gc, T> = spangc::Weak<'gc, T, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let obj = cx.alloc(7u64);
    ///     let (w1, w2) = (Weak::new(cx, obj), Weak::new(cx, obj));
    ///     assert!(Weak::ptr_eq(w1, w2)); // the second reuses the object's cell
    ///     assert_eq!(w1.upgrade(cx).map(|g| *g), Some(7));
    /// });
    /// ```
    pub fn new(cx: &'s Scope<B>, gc: Gc<'s, T, B>) -> Weak<'s, T, B> {
        let heap = cx.heap_inner();
        let addr = Gc::as_raw(gc);
        let (span, off) = heap.locate(addr);
        loop {
            let existing = heap
                .hooks
                .specials
                .with(span, off, Kind::WeakHandle, |d| match d {
                    Some(SpecialData::Weak(cell)) => Some(*cell),
                    _ => None,
                });
            if let Some(cell) = existing {
                return Weak {
                    // SAFETY: the record keeps its cell alive (it is a root
                    // of every collection) and the object is live (we hold
                    // a `Gc`), so the cell is live for 's.
                    cell: unsafe { Gc::from_raw(cell) },
                    _target: PhantomData,
                };
            }
            let cell = cx.alloc(WeakCell {
                target: AtomicUsize::new(addr.as_ptr() as usize),
            });
            let data = SpecialData::Weak(Gc::as_raw(cell));
            if heap
                .hooks
                .specials
                .add(heap.mheap.page_heap(), span, off, data)
                .is_ok()
            {
                return Weak {
                    cell,
                    _target: PhantomData,
                };
            }
            // Another thread attached a cell first; use that one.
        }
    }

    /// The object, if it is still alive. Never yields an object the last
    /// collection found dead, even before the sweeper has reached it.
    /// [`Weak`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Weak<'gc, T> = spangc::Weak<'gc, T, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let kept = cx.root(cx.alloc_str("kept"));
    ///     let temp = cx.alloc_str("temp"); // referenced only weakly
    ///     let pair = cx.root(cx.alloc((Weak::new(cx, kept.get(cx)), Weak::new(cx, temp))));
    ///     cx.collect();
    ///     let (k, t) = *pair.get(cx);
    ///     assert_eq!(k.upgrade(cx).as_deref(), Some("kept"));
    ///     assert!(t.upgrade(cx).is_none());
    /// });
    /// ```
    pub fn upgrade(self, cx: &'s Scope<B>) -> Option<Gc<'s, T, B>> {
        let heap: &HeapInner<B> = cx.heap_inner();
        loop {
            let p = self.cell.target.load(Ordering::Acquire);
            let addr = NonNull::new(p as *mut u8)?;
            let span = heap.mheap.page_heap().span_of(p)?;
            if span.state_acquire() != spangc_arena::SpanState::InUse {
                // Freed since the load: the object died and its cell was
                // cleared before its span was freed.
                return None;
            }
            let h = heap.mheap.sweepgen();
            let sg = span.sweepgen().load(Ordering::Acquire);
            if span.state_acquire() != spangc_arena::SpanState::InUse {
                return None;
            }
            let live = match SpanSweepState::of(sg, h) {
                SpanSweepState::Swept | SpanSweepState::CachedSwept => {
                    self.cell.target.load(Ordering::Acquire) == p
                }
                SpanSweepState::NeedsSweep | SpanSweepState::CachedUnswept => {
                    span.is_marked(span.slot_index(p))
                }
                SpanSweepState::BeingSwept => {
                    std::thread::yield_now();
                    continue;
                }
                SpanSweepState::Dead => false,
            };
            // SAFETY: the object is alive (see the module docs), and it
            // stays so for 's: collections need `&mut Scope`.
            return live.then(|| unsafe { Gc::from_raw(addr) });
        }
    }

    /// Whether two weak references are to the same object (share a cell).
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Weak<'gc, T> = spangc::Weak<'gc, T, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let (a, b) = (cx.alloc(1u32), cx.alloc(1u32));
    ///     assert!(Weak::ptr_eq(Weak::new(cx, a), Weak::new(cx, a)));
    ///     assert!(!Weak::ptr_eq(Weak::new(cx, a), Weak::new(cx, b)));
    /// });
    /// ```
    pub fn ptr_eq(a: Self, b: Weak<'_, T, B>) -> bool {
        Gc::as_raw(a.cell) == Gc::as_raw(b.cell)
    }
}

// SAFETY: marks the cell, not the object: that is what makes it weak
// (rules 1 and 2 for the `Gc` it holds); no drop glue; own brand only.
unsafe impl<T: ?Sized, B: Brand> Trace<B> for Weak<'_, T, B> {
    const NEEDS_TRACE: bool = true;
    #[inline]
    fn trace(&self, tracer: &mut Tracer<'_>) {
        tracer.trace::<B, _>(&self.cell);
    }
}

// SAFETY: the target type carries the brand and erases by its own impl.
unsafe impl<'gc, T: ?Sized + Branded<'gc>, B: Brand> Branded<'gc> for Weak<'gc, T, B> {
    type Erased = Weak<'static, T::Erased, B>;
}

// SAFETY: the inverse of the impl above.
unsafe impl<T: ?Sized + Rootable, B: Brand> Rootable for Weak<'static, T, B> {
    type At<'gc> = Weak<'gc, T::At<'gc>, B>;
}

// SAFETY: a weak reference shares its cell like a `Gc` does, and upgrading
// gives a `Gc<T>`: sound to share exactly when `T: Sync`.
unsafe impl<T: ?Sized + Sync, B: Brand> Send for Weak<'_, T, B> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Sync, B: Brand> Sync for Weak<'_, T, B> {}
