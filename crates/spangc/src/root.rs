//! Roots: owned handles that keep an object alive across safepoints.
//!
//! A [`Root`] names one slot in its heap's root table. The slot holds the
//! object's address; the marker starts from every occupied slot. A root is
//! created from a `Gc` inside a scope ([`Scope::root`](crate::Scope::root)),
//! outlives the scope and every safepoint, may be sent to another thread
//! when its type is `Send + Sync` (like `Arc`), and frees its slot when
//! dropped, from any thread.
//!
//! A root gives no access by itself (no `Deref`: it would expose the
//! brand-erased `'static` type); [`Root::get`] re-brands the object with a
//! scope borrow.
//!
//! # The table
//!
//! Slots live in fixed 256-slot chunks that never move, so a root's slot
//! pointer stays valid while the table grows. A free list threads through
//! unused slots. One mutex guards allocation, freeing and the marker's
//! scan; a slot's address word is also an atomic so that `Root::get` reads
//! it without the lock (only the owning `Root` writes it, and only the
//! marker and `get` read it). The mutex is the table's own: a `Root`
//! dropped by the sweeper (inside a dead object's drop glue) takes no other
//! heap lock, so it cannot deadlock with the collector, which holds this
//! mutex only to copy the roots out while the world is stopped.

use crate::brand::{Brand, Global};
use crate::branded::Rootable;
use crate::gc::Gc;
use crate::heap::HeapInner;
use crate::mutator::Scope;
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

const CHUNK: usize = 256;

/// One root slot: an object address, or 0 when free.
struct Slot {
    addr: AtomicUsize,
}

#[derive(Default)]
pub(crate) struct Table {
    // Boxed so that a chunk never moves when the vector grows: roots hold
    // pointers to their slots.
    #[allow(clippy::vec_box)]
    chunks: Vec<Box<[Slot; CHUNK]>>,
    /// Indices of free slots.
    free: Vec<usize>,
    /// Occupied slots.
    live: usize,
}

/// A heap's root table. See the module docs.
#[derive(Default)]
pub(crate) struct RootTable {
    table: Mutex<Table>,
}

impl RootTable {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // No user code runs under this lock; recover from poisoning.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Occupies a slot with `addr` and returns it with its index.
    fn insert(&self, addr: NonNull<u8>) -> (NonNull<Slot>, usize) {
        Self::insert_locked(&mut self.lock(), addr)
    }

    fn insert_locked(t: &mut Table, addr: NonNull<u8>) -> (NonNull<Slot>, usize) {
        let i = match t.free.pop() {
            Some(i) => i,
            None => {
                let base = t.chunks.len() * CHUNK;
                t.chunks.push(Box::new(std::array::from_fn(|_| Slot {
                    addr: AtomicUsize::new(0),
                })));
                t.free.extend((base + 1..base + CHUNK).rev());
                base
            }
        };
        t.live += 1;
        let slot = &t.chunks[i / CHUNK][i % CHUNK];
        slot.addr.store(addr.as_ptr() as usize, Relaxed);
        (NonNull::from(slot), i)
    }

    /// Frees slot `index`.
    fn remove(&self, index: usize) {
        let mut t = self.lock();
        t.chunks[index / CHUNK][index % CHUNK]
            .addr
            .store(0, Relaxed);
        t.free.push(index);
        t.live -= 1;
    }

    /// Calls `f` with every rooted address. The world must be stopped (no
    /// `Root::get` or `Root::set` runs), though `Root`s may still be
    /// created by non-mutator threads cloning a root, or dropped.
    pub(crate) fn for_each(&self, mut f: impl FnMut(NonNull<u8>)) {
        let t = self.lock();
        for chunk in &t.chunks {
            for slot in chunk.iter() {
                if let Some(p) = NonNull::new(slot.addr.load(Relaxed) as *mut u8) {
                    f(p);
                }
            }
        }
    }

    /// Number of live roots.
    pub(crate) fn len(&self) -> usize {
        self.lock().live
    }
}

/// An owned root: keeps its object alive until dropped.
///
/// Made from a `Gc` by [`Scope::root`]. A root outlives the scope and
/// every safepoint, may be stored in any Rust structure, may be sent to
/// another thread when its type is `Send + Sync` (like `Arc`), and frees
/// its slot in the heap's root table when dropped, from any thread.
/// Cloning makes another root to the same object. A root keeps its heap
/// alive too.
///
/// `R` is the brand-erased type (`Root<Node<'static>>`);
/// [`Root::get`] gives a `Gc<'s, Node<'s>>`. A root gives no access by
/// itself (no `Deref`): reading needs a scope.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Root<R> = spangc::Root<R, Doc>;
/// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
/// use spangc::{Config, Trace};
///
/// /// Immutable, so `Sync`: its roots may move between threads.
/// #[derive(Trace)]
/// # #[gc(brand = Doc)]
/// struct Entry<'gc> {
///     key: Gc<'gc, str>,
///     value: u64,
/// }
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// let entry: Root<Entry<'static>> = m.enter(|cx| {
///     cx.root(cx.alloc(Entry { key: cx.alloc_str("answer"), value: 42 }))
/// });
/// heap.collect(); // the entry and its key survive
///
/// let reader = {
///     let (heap, entry) = (heap.clone(), entry.clone());
///     std::thread::spawn(move || heap.mutator().enter(|cx| entry.get(cx).value))
/// };
/// assert_eq!(reader.join().unwrap(), 42);
/// assert_eq!(m.enter(|cx| entry.get(cx).key.to_string()), "answer");
/// ```
pub struct Root<R: ?Sized + Rootable, B: Brand = Global> {
    slot: NonNull<Slot>,
    index: usize,
    heap: Arc<HeapInner<B>>,
    _marker: PhantomData<Box<R>>,
}

impl<R: ?Sized + Rootable, B: Brand> Root<R, B> {
    /// Roots `gc` (use [`Scope::root`]).
    pub(crate) fn new(heap: &Arc<HeapInner<B>>, addr: NonNull<u8>) -> Self {
        let (slot, index) = heap.roots.insert(addr);
        Root {
            slot,
            index,
            heap: heap.clone(),
            _marker: PhantomData,
        }
    }

    fn slot(&self) -> &Slot {
        // SAFETY: the slot is in our heap's table, whose chunks never move
        // and which lives as long as `self.heap`.
        unsafe { self.slot.as_ref() }
    }

    /// The object, branded with the scope borrow `'s`.
    ///
    /// Panics if `cx` belongs to a different heap (possible only with
    /// several heaps of one brand over time, never at once).
    ///
    /// Cheap (one load); re-read a root after each safepoint rather than
    /// keeping the `Gc`.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{Config, GcCell};
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let counter = cx.root(cx.alloc(GcCell::new(0u32)));
    ///     for _ in 0..3 {
    ///         let c = counter.get(cx);
    ///         c.set(cx, c.get() + 1);
    ///         cx.safepoint(); // `c` ends here; `counter` lives on
    ///     }
    ///     assert_eq!(counter.get(cx).get(), 3);
    /// });
    /// ```
    #[inline]
    pub fn get<'s>(&self, cx: &'s Scope<B>) -> Gc<'s, R::At<'s>, B> {
        assert!(
            Arc::ptr_eq(&self.heap, cx.heap_inner()),
            "Root::get with a scope of another heap"
        );
        let addr = self.slot().addr.load(Relaxed);
        // The slot was stored from a `Gc` (live then), and being a root
        // kept its object alive since. `R::At<'s>` is `R` re-branded with
        // the scope borrow, which lasts until the next safepoint.
        // SAFETY: the slot holds the address of a live `R` of this heap.
        unsafe { Gc::from_raw(NonNull::new_unchecked(addr as *mut u8)) }
    }

    /// Points the root at another object (of the same type), without a new
    /// slot; the old object is no longer kept alive by this root.
    ///
    /// Panics if `cx` belongs to a different heap.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let current = cx.root(cx.alloc_str("v1"));
    ///     for version in ["v2", "v3"] {
    ///         current.set(cx, cx.alloc_str(version));
    ///         cx.collect(); // the previous version is garbage now
    ///     }
    ///     assert_eq!(&*current.get(cx), "v3");
    ///     assert_eq!(cx.heap().stats().objects_marked, 1);
    /// });
    /// ```
    #[inline]
    pub fn set<'s>(&self, cx: &'s Scope<B>, gc: Gc<'s, R::At<'s>, B>) {
        assert!(
            Arc::ptr_eq(&self.heap, cx.heap_inner()),
            "Root::set with a scope of another heap"
        );
        self.slot()
            .addr
            .store(Gc::as_raw(gc).as_ptr() as usize, Relaxed);
    }
}

impl<R: ?Sized + Rootable, B: Brand> Clone for Root<R, B> {
    /// Another root to the same object.
    fn clone(&self) -> Self {
        let addr = self.slot().addr.load(Relaxed);
        // SAFETY: a live root's slot is never 0.
        Root::new(&self.heap, unsafe {
            NonNull::new_unchecked(addr as *mut u8)
        })
    }
}

impl<R: ?Sized + Rootable, B: Brand> Drop for Root<R, B> {
    fn drop(&mut self) {
        self.heap.roots.remove(self.index);
    }
}

impl<R: ?Sized + Rootable, B: Brand> fmt::Debug for Root<R, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Root<{}>({:#x})",
            std::any::type_name::<R>(),
            self.slot().addr.load(Relaxed)
        )
    }
}

// SAFETY: a root shares its object like an `Arc` does: moving it to another
// thread lets that thread reach the object while others may too, which is
// sound when `R: Send + Sync`. The slot itself is only touched through
// atomics and the table's mutex.
unsafe impl<R: ?Sized + Rootable + Send + Sync, B: Brand> Send for Root<R, B> {}
// SAFETY: as above.
unsafe impl<R: ?Sized + Rootable + Send + Sync, B: Brand> Sync for Root<R, B> {}
