//! spangc: an embeddable, garbage-collected heap for language runtimes.
//!
//! Objects live in a tracing, non-moving, mark-sweep heap built on the Go
//! runtime's page heap design: size-classed spans in 64 MiB arenas, mark
//! bits in epoch-managed bitmaps, parallel marking, and sweeping that
//! happens concurrently and lazily, never in a pause.
//!
//! ```
//! use spangc::{Config, Gc, GcCell, Heap, Trace};
//!
//! #[derive(Trace)]
//! struct Node<'gc> {
//!     value: i64,
//!     next: GcCell<Option<Gc<'gc, Node<'gc>>>>,
//! }
//!
//! # spangc::brand!(Doc);
//! let heap = Heap::<Doc>::new(Config::default()).unwrap();
//! # // The example uses its own brand so doctests can run in parallel.
//! # #[derive(Trace)] #[gc(brand = Doc)]
//! # struct DocNode<'gc> { value: i64, next: GcCell<Option<Gc<'gc, DocNode<'gc>, Doc>>> }
//! let mut m = heap.mutator();
//! let sum = m.enter(|cx| {
//!     // Build a list; root its head so it survives safepoints.
//!     let head = cx.alloc(DocNode { value: 1, next: GcCell::new(None) });
//!     let tail = cx.alloc(DocNode { value: 2, next: GcCell::new(None) });
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
//! # let _ = Node { value: 0, next: GcCell::new(None) };
//! ```
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
pub use config::{Config, ConfigBuilder, ConfigError, GcPercent, Resolved};
pub use gc::Gc;
pub use heap::{Heap, HeapError};
pub use layout::{Object, WithTail};
pub use mark::Tracer;
pub use mutator::{FinalizerError, Mutator, Scope};
pub use root::Root;
pub use spangc_derive::Trace;
pub use spangc_specials::profile::BucketStats;
pub use stats::{STATS_VERSION, Stats, TypeStats};
pub use trace::Trace;
pub use weak::Weak;
pub use weaktable::{EphemeronMap, WeakSet};

/// Prints `why` and aborts: for the few failures the heap cannot survive
/// (a panic in the middle of marking).
#[cold]
pub(crate) fn abort_with(why: &str) -> ! {
    eprintln!("spangc: fatal: {why}");
    std::process::abort()
}
