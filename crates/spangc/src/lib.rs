//! spangc: an embeddable, garbage-collected heap for language runtimes.
//!
//! Objects live in a tracing, non-moving, mark-sweep heap built on the Go
//! runtime's page heap design: size-classed spans in 64 MiB arenas, mark
//! bits in epoch-managed bitmaps, parallel marking, and sweeping that
//! happens concurrently and lazily, never in a pause.
//!
//! ```
//! use spangc::{Config, GcCell, Trace};
//! # // Doctests run in parallel and at most one heap per brand may be alive,
//! # // so this example uses a brand of its own instead of the default.
//! # spangc::brand!(Doc);
//! # type Heap = spangc::Heap<Doc>;
//! # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
//!
//! #[derive(Trace)]
//! # #[gc(brand = Doc)]
//! struct Node<'gc> {
//!     value: i64,
//!     next: GcCell<Option<Gc<'gc, Node<'gc>>>>,
//! }
//!
//! let heap = Heap::new(Config::default())?;
//! let mut m = heap.mutator();
//! let sum = m.enter(|cx| {
//!     // Build a list; root its head so it survives safepoints.
//!     let head = cx.alloc(Node { value: 1, next: GcCell::new(None) });
//!     let tail = cx.alloc(Node { value: 2, next: GcCell::new(None) });
//!     head.next.set(cx, Some(tail));
//!     let root = cx.root(head);
//!
//!     cx.safepoint(); // may collect: `head` and `tail` are unusable now
//!
//!     let mut sum = 0;
//!     let mut node = Some(root.get(cx));
//!     while let Some(n) = node {
//!         sum += n.value;
//!         node = n.next.get();
//!     }
//!     sum
//! });
//! assert_eq!(sum, 3);
//! # Ok::<(), spangc::HeapError>(())
//! ```
//!
//! The pieces, in the order an embedder meets them:
//!
//! * [`Heap`] (with [`Config`]): the heap handle, one per heap, shared by
//!   every thread;
//! * [`Mutator`] and [`Scope`]: one mutator per thread; inside
//!   [`Mutator::enter`] a scope allocates, roots, and reaches safepoints;
//! * [`Gc`]: a copyable pointer valid until the next safepoint; [`Root`]:
//!   an owned handle that keeps an object alive across safepoints;
//! * [`GcCell`] and [`GcRefCell`]: interior mutability for heap objects;
//! * [`Trace`](trait@Trace) and `#[derive(Trace)]`: what may live in the
//!   heap; [`Branded`] and [`Rootable`] (derived too) name a type with and
//!   without its scope lifetime;
//! * [`WithTail`], [`Weak`], [`EphemeronMap`], [`WeakSet`], finalizers
//!   ([`Scope::set_finalizer`]) and cleanups ([`Scope::add_cleanup`]);
//! * [`Stats`] and the [`pacer`] for tuning; [`brand!`] for programs that
//!   keep several heaps alive at once.
//!
//! The examples in these docs create their heaps with a brand of their
//! own, in hidden lines, because doctests run in parallel and only one heap
//! per brand may be alive at a time (see [`brand!`]). A program with one
//! heap writes them exactly as shown, with `use spangc::{Gc, Heap, ...}`,
//! and never names a brand.
//!
//! See `docs/api.md` for the safety model: how roots work, when a
//! collection can happen, and why no safe code can reach a freed object.

extern crate self as spangc;

mod alloc;
mod barrier;
mod brand;
mod branded;
mod cell;
mod config;
mod gc;
mod heap;
mod layout;
mod mark;
mod mutator;
mod owner;
pub mod pacer;
mod root;
mod special;
mod stats;
mod trace;
mod verify;
mod weak;
mod weaktable;
mod world;

pub use alloc::{AllocError, AllocErrorKind};
pub use brand::{Brand, Global};
pub use branded::{Branded, Rootable};
pub use cell::{GcCell, GcRefCell};
pub use config::{Config, ConfigBuilder, ConfigError, GcPercent, MIN_MEMORY_LIMIT, Resolved};
pub use gc::Gc;
pub use heap::{Heap, HeapError, WeakHeap};
pub use layout::{Object, WithTail};
pub use mark::Tracer;
pub use mutator::{FinalizerError, Mutator, Scope};
pub use root::Root;
/// Derives [`Trace`](trait@Trace), [`Branded`] and [`Rootable`] for a
/// struct or enum, so that it can be allocated, rooted and stored in other
/// heap objects.
///
/// The type may have at most one lifetime parameter, the scope borrow its
/// pointers live for (conventionally `'gc`), and any number of type and
/// const parameters. Every field not marked `#[gc(skip)]` is traced, so its
/// type must implement `Trace` for the heap's brand; a `Gc` field that ever
/// changes must be a [`GcCell`] or [`GcRefCell`].
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
/// use spangc::{Config, GcRefCell, Trace};
///
/// #[derive(Trace)]
/// # #[gc(brand = Doc)]
/// struct Function<'gc> {
///     name: Gc<'gc, str>,
///     arity: u8,
///     constants: GcRefCell<Vec<Value<'gc>>>,
/// }
///
/// #[derive(Trace, Clone, Copy)]
/// # #[gc(brand = Doc)]
/// enum Value<'gc> {
///     Nil,
///     Number(f64),
///     Str(Gc<'gc, str>),
///     Function(Gc<'gc, Function<'gc>>),
/// }
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let f = cx.alloc(Function {
///         name: cx.alloc_str("greet"),
///         arity: 1,
///         constants: GcRefCell::new(vec![Value::Nil]),
///     });
///     f.constants.borrow_mut(cx).push(Value::Str(cx.alloc_str("hello")));
///     let root = cx.root(f);
///     cx.collect(); // everything `f` reaches was traced, so it survives
///
///     let f = root.get(cx);
///     assert_eq!((&*f.name, f.arity), ("greet", 1));
///     assert!(matches!(f.constants.borrow()[1], Value::Str(s) if &*s == "hello"));
/// });
/// ```
///
/// # Attributes
///
/// * `#[gc(skip)]` on a field: the field is not traced. Its type must be
///   `'static + Send` (so it cannot hold a `Gc`, and may be dropped on the
///   sweeper's thread); it need not implement `Trace`.
/// * `#[gc(allow_drop)]` on the type: allows a `Drop` impl, which the derive
///   otherwise rejects (a destructor could read a `Gc` field whose object
///   was already freed). The type must then be `'static + Send`: it holds
///   no `Gc`, and its destructor may run on the sweeper's thread.
/// * `#[gc(brand = B)]` on the type: implement `Trace<B>` for the heap
///   brand `B` instead of [`Global`]. `B` may be one of the type's own
///   type parameters, making the impl generic over brands.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// use spangc::{Config, Trace};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// static CLOSED: AtomicUsize = AtomicUsize::new(0);
///
/// /// A native resource: no `Gc` inside, so it may have a destructor.
/// #[derive(Trace)]
/// #[gc(allow_drop)]
/// # #[gc(brand = Doc)]
/// struct Handle {
///     fd: u32,
///     #[gc(skip)] // not traced: a plain Rust value
///     path: std::path::PathBuf,
/// }
///
/// impl Drop for Handle {
///     fn drop(&mut self) {
///         CLOSED.fetch_add(1, Ordering::SeqCst);
///     }
/// }
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let h = cx.alloc(Handle { fd: 3, path: "/tmp/log".into() });
///     assert_eq!((h.fd, h.path.to_str()), (3, Some("/tmp/log")));
///     cx.collect(); // `h` was not rooted: the sweeper runs its destructor
/// });
/// assert_eq!(CLOSED.load(Ordering::SeqCst), 1);
/// ```
///
/// A type generic over the brand works with every heap:
///
/// ```
/// use spangc::{Brand, Config, Gc, Heap, Trace};
///
/// #[derive(Trace)]
/// #[gc(brand = B)]
/// struct Pair<'gc, B: Brand> {
///     left: Gc<'gc, str, B>,
///     right: Gc<'gc, str, B>,
/// }
///
/// fn joined_len<B: Brand>(heap: &Heap<B>, left: &str, right: &str) -> usize {
///     heap.mutator().enter(|cx| {
///         let p = cx.alloc(Pair { left: cx.alloc_str(left), right: cx.alloc_str(right) });
///         p.left.len() + p.right.len()
///     })
/// }
///
/// spangc::brand!(Parser);
/// spangc::brand!(Runtime);
/// let parser = Heap::<Parser>::new(Config::default()).unwrap();
/// let runtime = Heap::<Runtime>::new(Config::default()).unwrap();
/// assert_eq!(joined_len(&parser, "a", "bc"), 3);
/// assert_eq!(joined_len(&runtime, "de", "fgh"), 5);
/// ```
pub use spangc_derive::Trace;
/// One bucket of the allocation profile, from
/// [`Heap::profile_summary`]: an allocating stack and object size, with
/// the estimated objects and bytes allocated there and still in use.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// use spangc::{BucketStats, Config};
///
/// let heap = Heap::new(Config::builder().profile_rate(4096).build().unwrap()).unwrap();
/// heap.mutator().enter(|cx| {
///     for i in 0..10_000u64 {
///         cx.alloc([i; 8]); // 64-byte garbage
///     }
///     cx.collect();
/// });
/// let garbage: Vec<BucketStats> =
///     heap.profile_summary().into_iter().filter(|b| b.object_size_bytes == 64).collect();
/// assert!(!garbage.is_empty());
/// for b in &garbage {
///     assert_eq!(b.sampled_frees, b.sampled_allocs); // the sweeper saw each die
///     assert_eq!((b.inuse_objects, b.inuse_bytes), (0, 0));
///     assert!(b.alloc_objects > b.sampled_allocs); // each sample stands for many
/// }
/// ```
pub use spangc_specials::profile::BucketStats;
pub use stats::{STATS_VERSION, Stats, TypeStats};
pub use trace::Trace;
pub use weak::Weak;
pub use weaktable::{EphemeronMap, WeakSet};

/// Prints `why` and aborts: for the few failures the heap cannot survive
/// (a panic in the middle of marking, or while the world is stopped).
#[cold]
pub(crate) fn abort_with(why: &str) -> ! {
    eprintln!("spangc: fatal: {why}");
    std::process::abort()
}

/// Aborts the process with its message if dropped while armed: set
/// around code that a panic must not unwind out of (the panic's own
/// message is printed first), and disarmed after it.
pub(crate) struct AbortOnUnwind(pub(crate) &'static str);

impl AbortOnUnwind {
    /// The guarded code is over.
    pub(crate) fn disarm(self) {
        std::mem::forget(self);
    }
}

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        abort_with(self.0);
    }
}
