//! Marking: from the roots, set the mark bit of every reachable object,
//! in parallel.
//!
//! The world is stopped while marking, so the object graph does not change
//! underneath and no write barrier is needed. `mark_threads` workers run at
//! once (the collecting thread and `mark_threads - 1` threads of a rayon
//! pool), or the collecting thread alone when the last collection scanned
//! too little to share (`PARALLEL_SCAN_MIN` in `heap.rs`: a lone worker
//! sets mark bits with plain stores and wakes no one), each with:
//!
//! * a local stack of grey objects (a plain `Vec`: pushing and popping it
//!   costs no atomics), and
//! * a crossbeam-deque `Worker` it shares surplus into when another worker
//!   is idle, so idle workers can steal. Sharing only when someone is
//!   hungry keeps the common path (one busy worker, or all busy) free of
//!   deque traffic. Surplus goes in packets of up to [`PACKET`] grey
//!   objects, so that a thief pays one steal per packet, not per object.
//!
//! Marking an object (`Worker::mark`): find its span from the address
//! (three dependent loads through the arena map, skipped when it lies in
//! the span of the last mark, whose range, magic multiplier and mark
//! bitmap the worker keeps), compute the slot index with the span's magic
//! multiplier, and set the mark bit. A lone worker
//! sets bits with plain stores, and scans what it marked. The span's type
//! record says how to scan an object, or that it is noscan and needs no
//! scan at all. The first mark in a span also sets the span's `page_marks`
//! bit, which the page reclaimer uses to find wholly dead spans without
//! looking inside.
//!
//! # Pending marks
//!
//! Workers that share the bits need an atomic OR per mark, and a locked
//! instruction per object was what kept two workers from scaling on a tree
//! (1.22x). So a shared-bits worker keeps its new marks *pending*, per mark
//! word, in a small direct-mapped table (`Worker::pend`, [`PENDING`]
//! words), and turns the object grey at once; a word's marks are applied
//! with one `fetch_or` when its entry is evicted, every [`FLUSH_EVERY`]
//! objects scanned, and before the worker looks for work elsewhere (so when
//! all workers are idle, every bit is set). A 64-bit mark word covers 64
//! neighbouring slots, and a depth-first walk of objects allocated together
//! (a subtree) stays in one word for dozens of marks: one locked
//! instruction instead of dozens. Before marking, a worker looks at the bit
//! and at its own pending word, so it never greys an object twice itself.
//! Two workers can both grey an object whose bit neither has applied yet:
//! both scan it (scanning only reads, and marking is idempotent), and only
//! the one whose OR set the bit counts it, so the marked counts are exact
//! (`smoke.rs`, `shared_children_are_counted_once_by_two_mark_threads`);
//! `FLUSH_EVERY` bounds how long such duplicate work can go on. Tree of
//! 1 GiB (`benches/mark.rs`), two workers against one: 1.61x-1.63x with the
//! marks of one object's scan combined, 1.69x-1.77x with pending marks.
//!
//! # Runs of one type
//!
//! A grey entry carries its object's scan function (the type record's
//! `trace_erased::<T>`), which `drain` calls through a pointer. After each
//! object, that function asks [`Tracer::next_grey`] for the next one: the
//! worker does its per-object bookkeeping (pending marks, balancing) and
//! pops the top of its stack if that entry has the same scan function, and
//! the function loops. A tree of one node type is then scanned in one call,
//! with `T::trace` inlined in the loop, instead of one indirect call (and
//! six saved registers) per object: `benches/mark.rs`, tree of 1 GiB, two
//! interleaved runs each, one thread 95.0-95.8 -> 71.5-73.6 ms, two
//! 55.9-57.7 -> 43.8-46.8 ms; binary-trees depth 21 on `spangc-2`, three
//! interleaved pairs, 5.68-5.93 -> 5.22-5.43 s. A mismatch (another type
//! on top, or the same function at two addresses from two codegen units)
//! only ends the loop.
//!
//! # Runs of pointers
//!
//! A container of `Gc` (a `Vec`, a slice, an array, a `VecDeque`, of `Gc`
//! or `Option<Gc>`) hands the marker all its pointers at once
//! ([`Trace::trace_slice`], which `Gc` overrides to call
//! [`Tracer::mark_all`]). A lone worker then marks the run in one loop
//! (`Worker::mark_all_sole`) that holds the last span's range, multiplier
//! and scan function, the mark word being set and the count of new marks
//! in registers, and writes the word back only when the run moves to
//! another word or span. Marking one by one, each mark read back the word
//! the previous one had just stored, and counted through memory, so a run
//! of pointers into one span was a chain of store-to-load round trips.
//! Churn's ring (100,000 `Option<Gc>`, marked in each of 500 collections):
//! 140-150 -> 100-106 us per mark on a scratch copy, and the harness's
//! churn 0.387 -> 0.341 s (medians of nine interleaved runs). Workers that
//! share the bits mark a run one by one (their pending marks already
//! batch the atomic ORs).
//!
//! # Grey stacks
//!
//! A worker's local stack is as deep as the grey set it holds: a few dozen
//! entries on a tree, millions when one object holds millions of pointers
//! (an interpreter's table, the root table of the random graph in
//! `benches/mark.rs`: 16 bytes per entry, 256 MiB for a graph of 1 GiB).
//! Grown fresh in each collection, such a stack page-faulted its memory in
//! every time, and the faults were most of the scan of that one object,
//! which one worker does alone ([`GreyStacks`] has the figures). So the
//! stacks are kept between collections in [`GreyStacks`], one per worker
//! index, each shrunk after a collection to twice the depth it reached
//! there when it has room for more than four times that (the depth is
//! sampled every [`BALANCE_EVERY`] objects scanned and when work is shared
//! or taken), those of workers a collection did not use freed,
//! counted as the collector's own memory (`metadata_sys_bytes`, the memory
//! limit, the pacer's overhead) and freed by `release_memory` and when an
//! allocation meets the memory limit.
//!
//! Termination: a worker that finds no local work, nothing in its deque and
//! nothing to steal counts itself idle; marking is over when all workers
//! are idle at once. A worker re-checks for work (and un-counts itself)
//! before stealing, so "all idle" cannot be seen while an item is in
//! flight between deques.

use crate::brand::Brand;
use crate::layout::TypeInfo;
use crate::trace::Trace;
use crate::weaktable::WeakTableObj;
use crossbeam_deque::{Steal, Stealer, Worker as Deque};
use crossbeam_utils::CachePadded;
use spangc_arena::PageHeap;
use spangc_gcbits::SpanBits;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// How a marker scans an object of one type (from its `TypeInfo`).
pub(crate) type TraceFn = unsafe fn(NonNull<u8>, &mut Tracer<'_>);

/// A grey object: marked, not yet scanned, with the function that scans
/// it.
#[derive(Clone, Copy)]
struct Grey {
    addr: NonNull<u8>,
    trace: TraceFn,
}

// SAFETY: a grey entry is an address and a function pointer; it moves
// between mark workers while the world is stopped, and the object it
// names is only read (by its trace function).
unsafe impl Send for Grey {}

/// A worker with more grey objects than this shares half of them when
/// another worker is hungry. Small, because a tree's depth-first stack
/// stays short: each entry shared is a whole subtree.
const SHARE_MIN: usize = 2;

/// Most grey objects in one packet of shared work. A thief takes a whole
/// packet with one steal and scans it from its local stack; with objects
/// shared one by one it took a deque operation (with its fence) and a
/// trip through `find_work` per object, and two workers marked the random
/// graph of `benches/mark.rs` at 0.84x-1.14x the speed of one (now
/// 1.28x-2.19x in seven runs; see docs/PERFORMANCE.md, "Marking").
const PACKET: usize = 256;

/// Grey objects shared as one unit.
type Packet = Vec<Grey>;

/// Objects scanned between checks for hungry workers. The check reads a
/// line other workers write, so doing it per object made two workers
/// slower than one (23 vs 8 ns per object on binary-trees).
const BALANCE_EVERY: u32 = 32;

/// Mark words whose pending marks a shared-bits worker keeps (see "Pending
/// marks" in the module docs). A power of two.
const PENDING: usize = 16;

/// Objects a shared-bits worker scans before it applies its pending marks
/// anyway, which bounds how long another worker can miss them (and so how
/// long two workers can duplicate work on a shared subgraph; each object
/// is still scanned at most once per worker, as a worker checks its own
/// pending word). A flush applies every non-empty entry with a locked OR,
/// and on a depth-first walk of a tree every entry is non-empty, so the
/// interval sets the atomics per object: binary-trees depth 21 on
/// `spangc-2`, interleaved runs, 64 -> 256 objects 5.02 -> 4.85 s (three
/// pairs), 256 -> 1024 4.86 -> 4.70 s (three pairs; three of four more
/// pairs agreed); `benches/mark.rs` 2 threads vs 1 unchanged within its
/// noise (tree 1.78x-1.96x, graph 1.76x-2.37x across the three).
const FLUSH_EVERY: u32 = 1024;

/// Marks a worker has made in one mark word and not yet applied.
#[derive(Clone, Copy)]
struct Pending {
    span: *const spangc_arena::span::Span,
    word: usize,
    mask: u64,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            span: std::ptr::null(),
            word: 0,
            mask: 0,
        }
    }
}

/// The pending-marks entry for mark word `word` of `span`.
#[inline(always)]
fn pending_slot(span: &spangc_arena::span::Span, word: usize) -> usize {
    ((std::ptr::from_ref(span) as usize >> 7) ^ word) & (PENDING - 1)
}

/// Handed to [`Trace::trace`]: reports the `Gc` pointers a value holds.
///
/// Only hand-written `Trace` impls meet it (the derive writes the calls):
/// a `trace` method passes each field that may hold a `Gc` to
/// [`Tracer::trace`].
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
/// use spangc::{Brand, Config, Trace, Tracer};
///
/// /// A slot table. Think of a container from another crate: the derive
/// /// cannot see into it, so a wrapper traces its elements by hand.
/// struct Slots<T> {
///     items: Vec<Option<T>>,
/// }
///
/// // SAFETY: every element, and so every `Gc` in it, is traced (rule 1);
/// // NEEDS_TRACE is the element's (rule 2); `trace` only reads (rule 3);
/// // the drop glue is `Vec`'s, dropping elements whose own impls uphold
/// // rule 4; elements are `Trace<B>`, so their pointers are of brand B
/// // (rule 5).
/// unsafe impl<B: Brand, T: Trace<B>> Trace<B> for Slots<T> {
///     const NEEDS_TRACE: bool = T::NEEDS_TRACE;
///     fn trace(&self, tracer: &mut Tracer<'_>) {
///         for item in self.items.iter().flatten() {
///             tracer.trace::<B, T>(item);
///         }
///     }
/// }
///
/// #[derive(spangc::Trace)]
/// # #[gc(brand = Doc)]
/// struct Registry<'gc> {
///     names: Slots<Gc<'gc, str>>,
/// }
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let names = Slots { items: vec![Some(cx.alloc_str("a")), None, Some(cx.alloc_str("c"))] };
///     let reg = cx.root(cx.alloc(Registry { names }));
///     cx.collect();
///     let reg = reg.get(cx);
///     let names: Vec<_> = reg.names.items.iter().map(|n| n.as_deref()).collect();
///     assert_eq!(names, [Some("a"), None, Some("c")]);
///     assert!(!<Slots<u32> as Trace<Doc>>::NEEDS_TRACE); // noscan
/// });
/// ```
pub struct Tracer<'a> {
    kind: Kind<'a>,
}

enum Kind<'a> {
    Mark {
        worker: &'a mut Worker,
        cx: &'a MarkCx<'a>,
    },
    Visit(&'a mut dyn FnMut(NonNull<u8>)),
}

/// A weak table registered during marking (see `weaktable.rs`). The table
/// is a marked heap object, alive and unchanging while the world is stopped,
/// which is the only time this pointer is used.
#[derive(Clone, Copy)]
struct WeakTableRef(*const (dyn WeakTableObj + 'static));

// SAFETY: used only by mark workers while the world is stopped, on tables
// that are live heap objects (see the type's docs).
unsafe impl Send for WeakTableRef {}

impl<'a> Tracer<'a> {
    /// A tracer that calls `f` with each object address it is given,
    /// without marking (heap verification and write-barrier checks).
    pub(crate) fn visit(f: &'a mut dyn FnMut(NonNull<u8>)) -> Tracer<'a> {
        Tracer {
            kind: Kind::Visit(f),
        }
    }

    /// Traces `value`: visits every `Gc` it owns. Does nothing (and costs
    /// nothing) when `T::NEEDS_TRACE` is false. `B` is the brand of the heap
    /// being traced; see also the example on [`Tracer`].
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// use spangc::{Brand, Config, Trace, Tracer};
    ///
    /// /// A value and a tag, from another crate: the derive cannot see in.
    /// struct Tagged<T> {
    ///     value: T,
    ///     tag: u64,
    /// }
    ///
    /// // SAFETY: the value, and so every `Gc` in it, is traced (rule 1);
    /// // NEEDS_TRACE is the value's (rule 2); `trace` only reads (rule 3);
    /// // the drop glue drops a `T`, whose own impl upholds rule 4; the
    /// // value is `Trace<B>`, so its pointers are of brand B (rule 5).
    /// unsafe impl<B: Brand, T: Trace<B>> Trace<B> for Tagged<T> {
    ///     const NEEDS_TRACE: bool = T::NEEDS_TRACE;
    ///     fn trace(&self, tracer: &mut Tracer<'_>) {
    ///         tracer.trace::<B, T>(&self.value);
    ///         tracer.trace::<B, u64>(&self.tag); // noscan: compiles to nothing
    ///     }
    /// }
    ///
    /// #[derive(spangc::Trace)]
    /// # #[gc(brand = Doc)]
    /// struct Named<'gc> {
    ///     name: Tagged<Gc<'gc, str>>,
    /// }
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let name = Tagged { value: cx.alloc_str("ada"), tag: 7 };
    ///     let named = cx.root(cx.alloc(Named { name }));
    ///     cx.collect(); // the string survives: traced through `Tagged`
    ///     let named = named.get(cx);
    ///     assert_eq!((&*named.name.value, named.name.tag), ("ada", 7));
    /// });
    /// ```
    #[inline(always)]
    pub fn trace<B: Brand, T: ?Sized + Trace<B>>(&mut self, value: &T) {
        if T::NEEDS_TRACE {
            value.trace(self);
        }
    }

    /// Registers a weak table (its `Trace` impl calls this instead of
    /// tracing its entries).
    pub(crate) fn weak_table(&mut self, table: &dyn WeakTableObj) {
        match &mut self.kind {
            Kind::Mark { cx, .. } => {
                // Only the lifetime is widened: the reference is used while
                // the world is stopped, and the table, a marked heap
                // object, cannot go away (see `WeakTableRef`).
                // SAFETY: the table outlives every use of the pointer.
                let ptr: *const (dyn WeakTableObj + 'static) =
                    unsafe { std::mem::transmute(table as *const dyn WeakTableObj) };
                cx.weak_tables
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(WeakTableRef(ptr));
            }
            Kind::Visit(_) => table.visit_all(self),
        }
    }

    /// Called by a scan function after each object it traced: when
    /// marking, does the per-object bookkeeping and takes the top grey
    /// object off the worker's stack if its scan function is `same`, for
    /// the caller to trace next (see "Runs of one type" in the module
    /// docs); `None` otherwise.
    #[inline(always)]
    pub(crate) fn next_grey(&mut self, same: TraceFn) -> Option<NonNull<u8>> {
        match &mut self.kind {
            Kind::Mark { worker, cx } => worker.next_grey(cx, same),
            Kind::Visit(_) => None,
        }
    }

    /// Notes that a `Trace` impl is about to scan `bytes` of a buffer
    /// outside the heap (a `Vec`'s elements): scan work the pacer counts
    /// (see "Heap goal" in `pacer.rs`).
    #[inline(always)]
    pub(crate) fn note_outside(&mut self, bytes: usize) {
        if let Kind::Mark { worker, .. } = &mut self.kind {
            worker.outside += bytes;
        }
    }

    /// Marks each object of `addrs` (what `Gc::trace_slice` calls): as
    /// [`Tracer::mark`] does one by one, but a lone marker keeps the mark
    /// word in a register along the run (see "Runs of pointers" in the
    /// module docs).
    #[inline(always)]
    pub(crate) fn mark_all(&mut self, addrs: impl Iterator<Item = NonNull<u8>>) {
        if let Kind::Mark { worker, cx } = &mut self.kind
            && cx.sole
        {
            return worker.mark_all_sole(cx, addrs);
        }
        for addr in addrs {
            self.mark(addr);
        }
    }

    /// Marks the object at `addr` (what `Gc::trace` calls).
    #[inline(always)]
    pub(crate) fn mark(&mut self, addr: NonNull<u8>) {
        match &mut self.kind {
            Kind::Mark { worker, cx } => worker.mark(cx, addr),
            Kind::Visit(f) => f(addr),
        }
    }

    /// Marks the object at `addr`, for hand-written `Trace` impls that keep
    /// pointers in another form than `Gc` (a NaN-boxed value, a tagged
    /// word).
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// use spangc::{Config, GcCell, Trace, Tracer};
    /// use std::ptr::NonNull;
    ///
    /// /// One word: an integer `2n + 1`, or (even) the address of a `str`
    /// /// object of the heap.
    /// #[derive(Clone, Copy)]
    /// struct Value(usize);
    ///
    /// impl Value {
    ///     fn int(n: usize) -> Value {
    ///         Value(n << 1 | 1)
    ///     }
    ///     fn str(s: Gc<'_, str>) -> Value {
    ///         Value(Gc::as_raw(s).as_ptr() as usize) // objects are 8-aligned
    ///     }
    ///     fn as_str<'s>(self, _cx: &'s spangc::Scope<Doc>) -> Option<Gc<'s, str>> {
    ///         let p = NonNull::new(self.0 as *mut u8).filter(|_| self.0 & 1 == 0)?;
    ///         // Even words are only made by `Value::str`, from a live
    ///         // object, and objects stored in the heap stay alive because
    ///         // `trace` marks them. (A `Value` kept in a Rust local across a
    ///         // safepoint would break this: the compiler cannot see it.)
    ///         // SAFETY: `p` is a live string object of this heap.
    ///         Some(unsafe { Gc::from_raw(p) })
    ///     }
    /// }
    ///
    /// // SAFETY: a string value's object is marked (rules 1 and 5: the
    /// // address is a `Gc::as_raw` of this heap's brand); `trace` only reads
    /// // (rule 3); no drop glue (rule 4).
    /// unsafe impl Trace<Doc> for Value {
    ///     const NEEDS_TRACE: bool = true;
    ///     fn trace(&self, tracer: &mut Tracer<'_>) {
    ///         if self.0 & 1 == 0 {
    ///             if let Some(p) = NonNull::new(self.0 as *mut u8) {
    ///                 // SAFETY: see `as_str`.
    ///                 unsafe { tracer.mark_raw(p) }
    ///             }
    ///         }
    ///     }
    /// }
    ///
    /// #[derive(Trace)]
    /// # #[gc(brand = Doc)]
    /// struct Register {
    ///     value: GcCell<Value>,
    /// }
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let r = cx.root(cx.alloc(Register { value: GcCell::new(Value::int(5)) }));
    ///     assert!(r.get(cx).value.get().as_str(cx).is_none());
    ///     r.get(cx).value.set(cx, Value::str(cx.alloc_str("boxed")));
    ///     cx.collect(); // the string survives: `trace` marked it
    ///     let s = r.get(cx).value.get().as_str(cx).unwrap();
    ///     assert_eq!(&*s, "boxed");
    /// });
    /// ```
    ///
    /// # Safety
    ///
    /// `addr` must be the address a `Gc` to a live object of the heap being
    /// traced would hold (`Gc::as_raw`).
    #[inline(always)]
    pub unsafe fn mark_raw(&mut self, addr: NonNull<u8>) {
        self.mark(addr)
    }
}

/// What all workers of one mark phase share.
pub(crate) struct MarkCx<'h> {
    pages: &'h PageHeap,
    stealers: Vec<Stealer<Packet>>,
    /// Workers currently idle (see the module docs on termination). Only
    /// changed when a worker runs out of work or finds some.
    idle: CachePadded<AtomicUsize>,
    /// Whether some worker is idle and would take shared work: what busy
    /// workers poll (rarely written, so it stays shared in their caches).
    hungry: CachePadded<AtomicBool>,
    done: CachePadded<AtomicBool>,
    /// Whether a pointer outside the heap is a fatal error (verify mode)
    /// rather than ignored.
    strict: bool,
    /// Whether one worker marks alone, so mark bits need no atomic
    /// read-modify-write (see `SpanBits::set_marked_sole`).
    sole: bool,
    /// Weak tables found while marking.
    weak_tables: std::sync::Mutex<Vec<WeakTableRef>>,
}

impl MarkCx<'_> {
    /// Whether the object at `addr` is marked.
    fn is_marked(&self, addr: NonNull<u8>) -> bool {
        let a = addr.as_ptr() as usize;
        self.pages
            .span_of(a)
            .is_some_and(|s| s.is_marked(s.slot_index(a)))
    }
}

/// One mark worker's state.
pub(crate) struct Worker {
    index: usize,
    local: Vec<Grey>,
    deque: Deque<Packet>,
    /// Bytes and objects this worker marked, and how many of those
    /// objects had pointers to scan; exact after `drain` (see
    /// `last_objects`).
    bytes: usize,
    objects: usize,
    scanned: usize,
    /// Bytes of container buffers outside the heap this worker scanned
    /// (the pacer counts them as scan work: see `pacer.rs`).
    outside: usize,
    /// Objects of `last_span` this worker marked alone and has not yet
    /// added to `objects` and `bytes`: one integer add per object instead
    /// of two, settled when the worker leaves the span. The compiler
    /// paired the two adds into one vector add through memory, whose
    /// store-to-load latency bound a run of noscan marks (churn's ring:
    /// see docs/PERFORMANCE.md, "Scopes and allocation in the facade").
    last_objects: usize,
    /// The span whose `page_marks` bit this worker set last: objects are
    /// mostly marked in runs within one span, and the page-mark lookup is
    /// a second walk of the arena map.
    last_page_marked: *const spangc_arena::span::Span,
    /// The span of the last object marked, and its `[start, limit)`:
    /// neighbours in a graph are often in one span, and checking the range
    /// is cheaper than the span-map walk.
    last_span: *const spangc_arena::span::Span,
    last_start: usize,
    last_len: usize,
    /// The scan function of `last_span`'s objects (its type record's),
    /// looked up once per span change rather than per mark (two dependent
    /// loads: the span's type tag, then the record). `benches/mark.rs`
    /// tree of 512 MiB, medians of three interleaved runs: one thread
    /// 46.3 -> 44.6 ms, two 27.8 -> 25.5 ms.
    last_trace: Option<TraceFn>,
    /// `last_span`'s slot-index multiplier and mark bitmap, so that a mark
    /// in the last span reads nothing of the span record: on binary-trees
    /// the checks and loads of the span's bitmap accessors were a fifth of
    /// the instructions per pointer marked.
    last_div_mul: u64,
    last_marks: *const std::sync::atomic::AtomicU64,
    /// Marks not yet applied (workers that share the bits only), per mark
    /// word, direct-mapped (see "Pending marks" in the module docs).
    pend: [Pending; PENDING],
    /// Objects popped before the pending marks are applied anyway.
    until_flush: u32,
    /// Objects scanned before the next check for hungry workers.
    until_balance: u32,
    /// The deepest the local stack was seen (see "Grey stacks").
    peak: usize,
}

// SAFETY: `last_page_marked` is only compared, never dereferenced;
// `last_span`, its mark bitmap `last_marks` and the pending spans are span
// records (and bitmaps) of the heap being marked,
// which outlives the mark phase and does not change while the world is
// stopped; the rest is owned data and a crossbeam deque, which is `Send`.
unsafe impl Send for Worker {}

impl Worker {
    fn new(index: usize, local: Vec<Grey>) -> Worker {
        debug_assert!(local.is_empty());
        Worker {
            index,
            local,
            deque: Deque::new_lifo(),
            bytes: 0,
            objects: 0,
            scanned: 0,
            outside: 0,
            last_objects: 0,
            last_page_marked: std::ptr::null(),
            last_span: std::ptr::null(),
            last_start: 0,
            last_len: 0,
            last_trace: None,
            last_div_mul: 0,
            last_marks: std::ptr::null(),
            pend: [Pending::default(); PENDING],
            until_flush: FLUSH_EVERY,
            until_balance: BALANCE_EVERY,
            peak: 0,
        }
    }

    #[inline(always)]
    fn mark(&mut self, cx: &MarkCx<'_>, addr: NonNull<u8>) {
        let a = addr.as_ptr() as usize;
        let mut off = a.wrapping_sub(self.last_start);
        if off >= self.last_len {
            if !self.enter_span(cx, a) {
                return;
            }
            off = a - self.last_start;
        }
        // SAFETY: `last_span` was set by `enter_span` during this mark
        // phase (see `Worker`).
        let span = unsafe { &*self.last_span };
        // The span's magic divide, exact below its `limit`.
        let idx = ((off as u64 * self.last_div_mul) >> 32) as usize;
        debug_assert_eq!(span.slot_addr(idx), a, "Gc to the inside of an object");
        let (word, bit) = (idx / 64, 1u64 << (idx % 64));
        // SAFETY: `last_marks` is `last_span`'s mark bitmap, `nelems`
        // bits long (`SpanBits::mark_words`, checked in `enter_span`), and
        // `idx < nelems` because `off < limit - start = nelems * elem_size`.
        let marks = unsafe { &*self.last_marks.add(word) };
        if cx.sole {
            if !spangc_gcbits::set_bit_sole(marks, bit) {
                let trace = self.span_marked(cx, span);
                self.marked(trace, addr);
            }
            return;
        }
        // Shared bits: look first (re-marks are common and a load is cheap),
        // then in the pending marks; a new mark joins them and the object
        // turns grey at once, before its bit is applied.
        if marks.load(Ordering::Relaxed) & bit != 0 {
            return;
        }
        let e = &mut self.pend[pending_slot(span, word)];
        if std::ptr::eq(e.span, span) && e.word == word {
            if e.mask & bit != 0 {
                return;
            }
            e.mask |= bit;
        } else {
            let old = std::mem::replace(
                e,
                Pending {
                    span,
                    word,
                    mask: bit,
                },
            );
            self.apply(old);
        }
        let trace = self.span_marked(cx, span);
        self.greyed(trace, addr);
    }

    /// Marks each object of `addrs` as a lone worker (see "Runs of
    /// pointers" in the module docs): [`Worker::mark`]'s sole-bits path
    /// with the last span's range, multiplier and bitmap, the mark word
    /// being set and the count of new marks in registers, written back
    /// when the run moves to another word or span and at its end.
    #[inline(always)]
    fn mark_all_sole(&mut self, cx: &MarkCx<'_>, addrs: impl Iterator<Item = NonNull<u8>>) {
        debug_assert!(cx.sole);
        let (mut start, mut len) = (self.last_start, self.last_len);
        let (mut div_mul, mut marks) = (self.last_div_mul, self.last_marks);
        let mut trace = self.last_trace;
        if !self.last_span.is_null() {
            // The last span's `page_marks` bit, for marks in it below (as
            // on entering a span in the loop).
            // SAFETY: `last_span` was set by `enter_span` during this mark
            // phase (see `Worker`).
            self.span_marked(cx, unsafe { &*self.last_span });
        }
        // The mark word being set (`word` of `marks`, `usize::MAX` for
        // none) and its new value.
        let (mut word, mut bits) = (usize::MAX, 0u64);
        let mut fresh = 0;
        for addr in addrs {
            let a = addr.as_ptr() as usize;
            let mut off = a.wrapping_sub(start);
            if off >= len {
                // Settle this span's word and count before leaving it.
                if word != usize::MAX {
                    // SAFETY: `word` indexes `marks`, the last span's
                    // bitmap (checked when it was loaded below).
                    unsafe { &*marks.add(word) }.store(bits, Ordering::Relaxed);
                    word = usize::MAX;
                }
                self.last_objects += fresh;
                fresh = 0;
                if !self.enter_span(cx, a) {
                    continue;
                }
                (start, len) = (self.last_start, self.last_len);
                (div_mul, marks) = (self.last_div_mul, self.last_marks);
                trace = self.last_trace;
                // The span's `page_marks` bit now rather than at its first
                // new mark: `a` is an object of it, marked by now or below.
                // SAFETY: `enter_span` just set `last_span`.
                self.span_marked(cx, unsafe { &*self.last_span });
                off = a - start;
            }
            // The span's magic divide, exact below its `limit` (as in `mark`).
            let idx = ((off as u64 * div_mul) >> 32) as usize;
            debug_assert_eq!(
                // SAFETY: `last_span` was set by `enter_span` during this
                // mark phase (see `Worker`).
                unsafe { &*self.last_span }.slot_addr(idx),
                a,
                "Gc to the inside of an object"
            );
            let (w, bit) = (idx / 64, 1u64 << (idx % 64));
            if w != word {
                // SAFETY: as in `mark`: `w < ceil(nelems / 64)`, the length
                // of `marks` (`SpanBits::mark_words`, checked in
                // `enter_span`), because `off < limit - start`.
                unsafe {
                    if word != usize::MAX {
                        (*marks.add(word)).store(bits, Ordering::Relaxed);
                    }
                    bits = (*marks.add(w)).load(Ordering::Relaxed);
                }
                word = w;
            }
            if bits & bit != 0 {
                continue;
            }
            bits |= bit;
            fresh += 1;
            self.greyed(trace, addr);
        }
        if word != usize::MAX {
            // SAFETY: as above.
            unsafe { &*marks.add(word) }.store(bits, Ordering::Relaxed);
        }
        self.last_objects += fresh;
    }

    /// Looks up the span of `a` and makes it the worker's last span, with
    /// its range, divide, mark bitmap and scan function; `false` if `a` is
    /// not in the heap (outside verify mode, which panics instead).
    #[inline(never)]
    fn enter_span(&mut self, cx: &MarkCx<'_>, a: usize) -> bool {
        self.settle_counts();
        // A `Gc` always points at an object of an in-use span of this heap
        // (brands keep heaps apart), so the plain span-map lookup and a
        // bounds check suffice; verify mode checks the span's state too.
        // `mark` relies on the bounds: its slot index and bitmap access
        // hold below `limit` (a page's tail past the last slot has no bit).
        let span = if cx.strict {
            cx.pages.span_of_heap(a).unwrap_or_else(|| {
                panic!("spangc verify: marking {a:#x}, which is not an object in this heap")
            })
        } else {
            match cx.pages.span_of(a) {
                Some(s) if s.contains_object_addr(a) => s,
                _ => return false,
            }
        };
        self.last_span = span;
        self.last_start = span.start();
        self.last_len = span.limit() - span.start();
        self.last_div_mul = u64::from(span.div_mul());
        self.last_marks = span.mark_words().as_ptr();
        // SAFETY: spans of this heap carry a type tag set by `Scope`'s
        // allocation path, the address of a `'static` TypeInfo.
        self.last_trace = unsafe { TypeInfo::from_tag(span.type_tag()) }.trace;
        true
    }

    /// Applies one word's pending marks with one atomic OR and counts the
    /// objects whose bits this worker set (the others were marked
    /// meanwhile by another worker, which counts them).
    #[inline(always)]
    fn apply(&mut self, p: Pending) {
        if p.mask == 0 {
            return;
        }
        // SAFETY: pending spans were set by `mark` during this mark phase
        // (see `Worker`).
        let span = unsafe { &*p.span };
        let fresh = span.set_marked_word(p.word, p.mask).count_ones() as usize;
        self.objects += fresh;
        self.bytes += fresh * span.elem_size();
    }

    /// Notes the local stack's depth in `peak` (see "Grey stacks").
    #[inline(always)]
    fn sample_depth(&mut self) {
        self.peak = self.peak.max(self.local.len());
    }

    /// Applies every pending mark.
    fn flush(&mut self) {
        for i in 0..PENDING {
            let p = std::mem::take(&mut self.pend[i]);
            self.apply(p);
        }
        self.until_flush = FLUSH_EVERY;
    }

    /// Notes that this worker marked objects in `span` (its `page_marks`
    /// bit) and returns the scan function of the span's objects (`None`
    /// for noscan spans).
    #[inline(always)]
    fn span_marked(&mut self, cx: &MarkCx<'_>, span: &spangc_arena::span::Span) -> Option<TraceFn> {
        if !std::ptr::eq(span, self.last_page_marked) {
            cx.pages.set_page_mark(span);
            self.last_page_marked = span;
        }
        debug_assert!(
            std::ptr::eq(span, self.last_span),
            "marked outside the last span"
        );
        self.last_trace
    }

    /// Records an object of `last_span` this worker marked alone: the
    /// count, and a grey entry if it has pointers to scan.
    #[inline(always)]
    fn marked(&mut self, trace: Option<TraceFn>, addr: NonNull<u8>) {
        self.last_objects += 1;
        self.greyed(trace, addr);
    }

    /// Adds the objects counted in `last_objects` to `objects` and `bytes`.
    fn settle_counts(&mut self) {
        if self.last_objects != 0 {
            // SAFETY: objects were counted, so `last_span` was set by
            // `enter_span` during this mark phase (see `Worker`).
            let span = unsafe { &*self.last_span };
            self.objects += self.last_objects;
            self.bytes += self.last_objects * span.elem_size();
            self.last_objects = 0;
        }
    }

    /// Pushes a grey entry for an object just marked, if it has pointers
    /// to scan.
    #[inline(always)]
    fn greyed(&mut self, trace: Option<TraceFn>, addr: NonNull<u8>) {
        if let Some(trace) = trace {
            // Start loading the object now; in a wide graph the scan of
            // its siblings' subtrees hides some of the latency. Cheap on a
            // tree, where the line is usually cached already
            // (benches/mark.rs: tree 7.8 -> 7.3 ns/object, random graph
            // unchanged at 42.5; shared machine, to re-measure).
            prefetch(addr);
            self.scanned += 1;
            self.local.push(Grey { addr, trace });
        }
    }

    /// Traces the children of the object at `addr` without marking the
    /// object itself.
    fn scan_unmarked(&mut self, cx: &MarkCx<'_>, addr: NonNull<u8>) {
        let a = addr.as_ptr() as usize;
        let Some(span) = cx.pages.span_of_heap(a) else {
            return;
        };
        // SAFETY: spans of this heap carry TypeInfo tags.
        let info = unsafe { TypeInfo::from_tag(span.type_tag()) };
        if let Some(trace) = info.trace {
            // The grey objects already on the stack are set aside, so the
            // scan function's run (`next_grey`) ends with this object's
            // children: this happens before the other workers start, and
            // a run could otherwise mark most of the heap on this worker
            // alone.
            let before = std::mem::take(&mut self.local);
            let mut t = Tracer {
                kind: Kind::Mark { worker: self, cx },
            };
            // SAFETY: a live object (its finalizer has not run) of the
            // span's type; the world is stopped.
            unsafe { trace(addr, &mut t) };
            let children = std::mem::replace(&mut self.local, before);
            self.local.extend(children);
        }
    }

    /// Scans grey objects until there is no work anywhere.
    ///
    /// Depth-first, straight from the grey stack. A prefetch-on-grey FIFO
    /// (Boehm's technique: prefetch each object as it turns grey, scan it
    /// a few objects later) was measured and dropped: on binary-trees,
    /// where children sit next to their parent, it broke the depth-first
    /// locality and cost 30% (8.0 -> 10.5 ns per object, one thread,
    /// with the mark probe of commit 7912b8a that `benches/mark.rs`
    /// replaced).
    fn drain(&mut self, cx: &MarkCx<'_>) {
        loop {
            while let Some(g) = self.local.pop() {
                let mut t = Tracer {
                    kind: Kind::Mark { worker: self, cx },
                };
                // `g` was pushed by `mark` with the trace function of the
                // object's own type; the trace function does the
                // bookkeeping of each object it scans (`next_grey`).
                // SAFETY: the object is live (just marked), of the trace
                // function's type, and unchanging (the world is stopped).
                unsafe { (g.trace)(g.addr, &mut t) };
            }
            // Every mark is applied before this worker can count itself
            // idle, so "all idle" means every mark bit is set.
            self.flush();
            if !self.find_work(cx) {
                self.settle_counts();
                return;
            }
        }
    }

    /// After an object is scanned: applies the pending marks every
    /// [`FLUSH_EVERY`] objects and shares work every [`BALANCE_EVERY`] if
    /// someone is hungry; then pops the top grey object if its scan
    /// function is `same` (see [`Tracer::next_grey`]).
    #[inline(always)]
    fn next_grey(&mut self, cx: &MarkCx<'_>, same: TraceFn) -> Option<NonNull<u8>> {
        // A lone worker has no pending marks.
        if !cx.sole {
            self.until_flush -= 1;
            if self.until_flush == 0 {
                self.flush();
            }
        }
        self.until_balance -= 1;
        if self.until_balance == 0 {
            self.until_balance = BALANCE_EVERY;
            self.sample_depth();
            if self.local.len() > SHARE_MIN && cx.hungry.load(Ordering::Relaxed) {
                self.share(cx);
            }
        }
        if !std::ptr::fn_addr_eq(self.local.last()?.trace, same) {
            return None;
        }
        self.local.pop().map(|g| g.addr)
    }

    /// Moves the bottom half of the local stack (the oldest, likely
    /// biggest subgraphs) to the shared deque, in packets of at most
    /// [`PACKET`] objects.
    fn share(&mut self, cx: &MarkCx<'_>) {
        self.share_half();
        cx.hungry.store(false, Ordering::Relaxed);
    }

    /// `share` without the flag: the packing, on its own for the tests.
    fn share_half(&mut self) {
        self.sample_depth();
        let n = self.local.len() / 2;
        for packet in self.local[..n].chunks(PACKET) {
            self.deque.push(packet.to_vec());
        }
        self.local.drain(..n);
    }

    /// Puts a shared packet on the local stack, its oldest object on top:
    /// the worker that takes it starts with the biggest subgraph, as when
    /// objects were stolen one at a time (in the packet's own order, tree
    /// of 1 GiB, two threads against one: 1.57x-1.60x; reversed,
    /// 1.72x-1.86x).
    fn take(&mut self, packet: &[Grey]) {
        self.local.extend(packet.iter().rev());
        self.sample_depth();
    }

    /// Refills the local stack from the own deque or by stealing; `false`
    /// when marking is over.
    fn find_work(&mut self, cx: &MarkCx<'_>) -> bool {
        if let Some(p) = self.deque.pop() {
            self.take(&p);
            return true;
        }
        if cx.stealers.len() == 1 {
            return false;
        }
        let n = cx.stealers.len();
        cx.idle.fetch_add(1, Ordering::SeqCst);
        let mut backoff = 0u32;
        loop {
            if cx.done.load(Ordering::SeqCst) {
                return false;
            }
            if cx.idle.load(Ordering::SeqCst) == n {
                cx.done.store(true, Ordering::SeqCst);
                return false;
            }
            // Look without touching shared state; only a deque that seems
            // non-empty is worth un-counting ourselves for.
            if cx.stealers.iter().all(|s| s.is_empty()) {
                if !cx.hungry.load(Ordering::Relaxed) {
                    cx.hungry.store(true, Ordering::Relaxed);
                }
                backoff += 1;
                if backoff < 64 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
                continue;
            }
            // Un-count before stealing so that a stolen item in flight is
            // never invisible to the "all idle" test.
            cx.idle.fetch_sub(1, Ordering::SeqCst);
            for k in 1..n {
                let victim = &cx.stealers[(self.index + k) % n];
                loop {
                    match victim.steal() {
                        Steal::Success(p) => {
                            self.take(&p);
                            return true;
                        }
                        Steal::Retry => continue,
                        Steal::Empty => break,
                    }
                }
            }
            cx.idle.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Entries a fresh grey stack starts with, and the least a kept one is
/// trimmed to.
const STACK_MIN: usize = 1024;

/// The mark workers' grey stacks, kept between collections (see "Grey
/// stacks" in the module docs), one slot per worker index: worker 0 marks
/// the roots and scans alone whatever they hold, so its stack is the one
/// that grows deep, and it must find it again. `benches/mark.rs` at 256
/// MiB: the random graph's root table (4 million pointers) took one worker
/// 38-41 ms to scan with a fresh stack and 15-17 ms with the last
/// collection's; the mark as a whole, 2 threads against 1, 1.29x -> 1.48x.
pub(crate) struct GreyStacks {
    /// Slot `i`: worker `i`'s stack between collections (no capacity: none).
    stacks: std::sync::Mutex<Vec<Vec<Grey>>>,
    /// Bytes of the kept stacks' buffers.
    bytes: AtomicUsize,
}

impl GreyStacks {
    pub(crate) fn new() -> GreyStacks {
        GreyStacks {
            stacks: std::sync::Mutex::new(Vec::new()),
            bytes: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Grey>>> {
        self.stacks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An empty stack for worker `worker`: the one it kept, or a new one.
    fn take(&self, worker: usize) -> Vec<Grey> {
        let kept = self.lock().get_mut(worker).map(std::mem::take);
        match kept {
            Some(v) if v.capacity() > 0 => {
                self.bytes
                    .fetch_sub(v.capacity() * size_of::<Grey>(), Ordering::Relaxed);
                v
            }
            _ => Vec::with_capacity(STACK_MIN),
        }
    }

    /// Keeps worker `worker`'s stack, emptied; if it has room for more than
    /// four times `peak` (the deepest it was seen in the collection that
    /// just ended), it shrinks to twice that.
    fn give_back(&self, worker: usize, mut stack: Vec<Grey>, peak: usize) {
        stack.clear();
        let keep = (2 * peak).max(STACK_MIN);
        if stack.capacity() > 2 * keep {
            stack.shrink_to(keep);
        }
        self.bytes
            .fetch_add(stack.capacity() * size_of::<Grey>(), Ordering::Relaxed);
        let mut stacks = self.lock();
        if stacks.len() <= worker {
            stacks.resize_with(worker + 1, Vec::new);
        }
        debug_assert_eq!(
            stacks[worker].capacity(),
            0,
            "worker {worker} kept two stacks"
        );
        stacks[worker] = stack;
    }

    /// Frees the stacks of workers `from` and up, which the collection
    /// that just ended did not use (it marked with fewer threads because
    /// the one before scanned little).
    fn free_unused(&self, from: usize) {
        let freed: usize = self
            .lock()
            .iter_mut()
            .skip(from)
            .map(|v| std::mem::take(v).capacity() * size_of::<Grey>())
            .sum();
        self.bytes.fetch_sub(freed, Ordering::Relaxed);
    }

    /// Bytes the kept stacks hold.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Frees every kept stack.
    pub(crate) fn release(&self) {
        self.free_unused(0);
    }
}

/// What a mark phase found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MarkOutcome {
    /// Bytes of marked objects (slot sizes).
    pub(crate) bytes: usize,
    /// Marked objects.
    pub(crate) objects: usize,
    /// Marked objects that had pointers to scan (not noscan): the work
    /// that a second mark worker can share.
    pub(crate) scanned: usize,
    /// Roots marked from.
    pub(crate) roots: usize,
    /// Bytes of container buffers outside the heap that were scanned
    /// ([`Tracer::note_outside`]).
    pub(crate) outside_bytes: usize,
    /// Workers that took part.
    pub(crate) workers: usize,
    /// Weak tables resolved.
    pub(crate) weak_tables: usize,
}

/// Who marks: the collecting thread alone, or with `helpers` threads of
/// `pool`.
#[derive(Clone, Copy)]
pub(crate) enum Markers<'p> {
    Alone,
    WithPool {
        pool: &'p rayon::ThreadPool,
        helpers: usize,
    },
}

impl Markers<'_> {
    /// Workers in all, the collecting thread included.
    fn workers(self) -> usize {
        match self {
            Markers::Alone => 1,
            Markers::WithPool { pool, helpers } => {
                assert!(
                    helpers <= pool.current_num_threads(),
                    "{helpers} mark helpers asked of a pool of {}",
                    pool.current_num_threads()
                );
                1 + helpers
            }
        }
    }
}

/// Marks everything reachable from `roots`, and everything reachable from
/// the objects in `scan_from` (but not those objects themselves: objects
/// with finalizers), with `markers`. Then resolves weak tables to a
/// fixpoint and prunes their dead entries. The world must be stopped and
/// every span swept, with fresh zeroed mark bits.
pub(crate) fn mark(
    pages: &PageHeap,
    stacks: &GreyStacks,
    roots: &[NonNull<u8>],
    scan_from: &[NonNull<u8>],
    markers: Markers<'_>,
    strict: bool,
) -> MarkOutcome {
    let threads = markers.workers();
    // Each worker on its own cache lines: workers write their counters
    // and stack length per object, and neighbours in one line made two
    // workers four times slower per object than one (benches/mark.rs,
    // tree: 13.9 ns/object with two workers against 6.9 with one).
    let mut workers: Vec<CachePadded<Worker>> = (0..threads)
        .map(|index| CachePadded::new(Worker::new(index, stacks.take(index))))
        .collect();
    let cx = MarkCx {
        pages,
        stealers: workers.iter().map(|w| w.deque.stealer()).collect(),
        idle: CachePadded::new(AtomicUsize::new(0)),
        hungry: CachePadded::new(AtomicBool::new(false)),
        done: CachePadded::new(AtomicBool::new(false)),
        strict,
        sole: threads == 1,
        weak_tables: std::sync::Mutex::new(Vec::new()),
    };
    {
        let first = &mut workers[0];
        for &r in roots {
            first.mark(&cx, r);
        }
        // Scanning runs `Trace` impls: a panic in one aborts, as in `drain`.
        abort_on_unwind(|| {
            for &obj in scan_from {
                first.scan_unmarked(&cx, obj);
            }
        });
    }
    match markers {
        Markers::WithPool { pool, helpers } if helpers > 0 => {
            let (first, rest) = workers.split_first_mut().expect("at least one worker");
            let cx = &cx;
            pool.in_place_scope(|s| {
                for w in rest.iter_mut() {
                    s.spawn(move |_| abort_on_unwind(|| w.drain(cx)));
                }
                abort_on_unwind(|| first.drain(cx));
            });
        }
        _ => abort_on_unwind(|| workers[0].drain(&cx)),
    }
    let tables = resolve_weak_tables(&mut workers[0], &cx);
    for w in workers.iter_mut() {
        w.sample_depth();
        stacks.give_back(w.index, std::mem::take(&mut w.local), w.peak);
    }
    stacks.free_unused(threads);
    MarkOutcome {
        bytes: workers.iter().map(|w| w.bytes).sum(),
        objects: workers.iter().map(|w| w.objects).sum(),
        scanned: workers.iter().map(|w| w.scanned).sum(),
        roots: roots.len(),
        outside_bytes: workers.iter().map(|w| w.outside).sum(),
        workers: threads,
        weak_tables: tables,
    }
}

/// The weak-table fixpoint (see `weaktable.rs`), on one worker after the
/// parallel drain: trace what live keys keep alive, drain, repeat until a
/// round marks nothing new; then prune dead entries. Returns the number of
/// tables seen.
fn resolve_weak_tables(worker: &mut Worker, cx: &MarkCx<'_>) -> usize {
    // A one-worker context: the other workers have finished.
    let solo = MarkCx {
        pages: cx.pages,
        stealers: vec![worker.deque.stealer()],
        idle: CachePadded::new(AtomicUsize::new(0)),
        hungry: CachePadded::new(AtomicBool::new(false)),
        done: CachePadded::new(AtomicBool::new(false)),
        strict: cx.strict,
        sole: true,
        weak_tables: std::sync::Mutex::new(std::mem::take(
            &mut *cx.weak_tables.lock().unwrap_or_else(|e| e.into_inner()),
        )),
    };
    let live = |p: NonNull<u8>| solo.is_marked(p);
    loop {
        let before = worker.objects;
        let tables: Vec<WeakTableRef> = solo
            .weak_tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for t in &tables {
            let mut tracer = Tracer {
                kind: Kind::Mark { worker, cx: &solo },
            };
            // SAFETY: see `WeakTableRef`: a live table, world stopped.
            unsafe { &*t.0 }.trace_live(&live, &mut tracer);
        }
        abort_on_unwind(|| worker.drain(&solo));
        if worker.objects == before {
            for t in &tables {
                // SAFETY: as above.
                unsafe { &*t.0 }.prune(&live);
            }
            return tables.len();
        }
    }
}

/// Runs `f`; a panic inside (from a `Trace` impl) aborts the process: a
/// half-marked heap cannot be swept safely.
fn abort_on_unwind(f: impl FnOnce()) {
    let armed = crate::AbortOnUnwind("a Trace impl panicked during marking");
    f();
    armed.disarm();
}

/// Asks the CPU to start loading the cache line at `addr`.
#[inline(always)]
fn prefetch(addr: NonNull<u8>) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and has no effect on
    // program state, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            addr.as_ptr().cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey entry for slot `i` of a made-up range (never scanned).
    fn grey(i: usize) -> Grey {
        fn never(_: NonNull<u8>, _: &mut Tracer<'_>) {
            unreachable!("the test scans nothing")
        }
        Grey {
            addr: NonNull::new((0x10_0000 + 16 * i) as *mut u8).unwrap(),
            trace: never,
        }
    }

    /// A mark context over an empty heap, for the worker's own logic.
    fn cx_over(pages: &PageHeap, sole: bool) -> MarkCx<'_> {
        MarkCx {
            pages,
            stealers: Vec::new(),
            idle: CachePadded::new(AtomicUsize::new(0)),
            hungry: CachePadded::new(AtomicBool::new(false)),
            done: CachePadded::new(AtomicBool::new(false)),
            strict: false,
            sole,
            weak_tables: std::sync::Mutex::new(Vec::new()),
        }
    }

    // Different bodies: identical functions may be merged into one
    // address in release builds (a merged pair only ends runs sooner or
    // later; the test needs two addresses).
    fn scan_a(_: NonNull<u8>, _: &mut Tracer<'_>) {
        std::hint::black_box(1u8);
    }
    fn scan_b(_: NonNull<u8>, _: &mut Tracer<'_>) {
        std::hint::black_box(2u8);
    }

    #[test]
    fn next_grey_continues_only_with_the_same_scan_function_and_keeps_the_bookkeeping() {
        let pages = PageHeap::new(spangc_arena::PageHeapConfig::default()).unwrap();
        let with = |i: usize, trace: TraceFn| Grey { trace, ..grey(i) };
        let addr = |i: usize| grey(i).addr;
        for sole in [true, false] {
            let cx = cx_over(&pages, sole);
            let mut w = Worker::new(0, Vec::new());
            w.local = vec![
                with(0, scan_a),
                with(1, scan_b),
                with(2, scan_a),
                with(3, scan_a),
            ];
            // `scan_a` goes on with the two objects of its own on top...
            assert_eq!(w.next_grey(&cx, scan_a), Some(addr(3)));
            assert_eq!(w.next_grey(&cx, scan_a), Some(addr(2)));
            // ...and stops at `scan_b`'s, leaving it on the stack.
            assert_eq!(w.next_grey(&cx, scan_a), None);
            assert_eq!(addrs(&w.local), addrs(&[grey(0), grey(1)]));
            assert_eq!(w.next_grey(&cx, scan_b), Some(addr(1)));
            assert_eq!(w.next_grey(&cx, scan_b), None);
            // Each call counted one object scanned towards balancing and
            // (unless the worker is alone: no pending marks) flushing.
            assert_eq!(w.until_balance, BALANCE_EVERY - 5);
            let flush_left = if sole { FLUSH_EVERY } else { FLUSH_EVERY - 5 };
            assert_eq!(w.until_flush, flush_left);
            for _ in 5..BALANCE_EVERY {
                w.next_grey(&cx, scan_b);
            }
            assert_eq!(w.until_balance, BALANCE_EVERY, "rewound at the check");
            assert_eq!(w.peak, 1, "the depth is sampled at the balance check");
        }
        let mut f = |_: NonNull<u8>| {};
        let mut visit = Tracer::visit(&mut f);
        assert_eq!(visit.next_grey(scan_a), None, "no runs when visiting");
    }

    fn addrs(gs: &[Grey]) -> Vec<usize> {
        gs.iter().map(|g| g.addr.as_ptr() as usize).collect()
    }

    #[test]
    fn kept_grey_stacks_go_back_to_their_worker_are_trimmed_counted_and_released() {
        let stacks = GreyStacks::new();
        let mut deep = stacks.take(0);
        assert!(deep.is_empty() && deep.capacity() >= STACK_MIN);
        deep.extend((0..100_000).map(grey));
        stacks.give_back(0, deep, 100_000);
        stacks.give_back(1, stacks.take(1), 5);
        assert!(stacks.bytes() >= 100_000 * size_of::<Grey>());

        // Worker 0 finds its own deep stack, whatever the order of taking.
        let other = stacks.take(1);
        let again = stacks.take(0);
        assert!(again.is_empty(), "kept stacks come back empty");
        assert!(
            again.capacity() >= 100_000,
            "worker 0 gets its deep stack back"
        );
        assert!(other.capacity() < 100_000);
        assert_eq!(stacks.bytes(), 0, "a stack in use is not counted as kept");

        // A shallow collection: the stack shrinks to twice its peak (at
        // least STACK_MIN).
        stacks.give_back(1, other, 5);
        stacks.give_back(0, again, 10);
        assert!(
            stacks.bytes() < 8 * STACK_MIN * size_of::<Grey>(),
            "{} bytes kept after a collection 10 deep",
            stacks.bytes()
        );

        // A collection on one worker frees the others' stacks.
        let mut deep = stacks.take(1);
        deep.extend((0..100_000).map(grey));
        stacks.give_back(1, deep, 100_000);
        let mine = stacks.take(0);
        stacks.give_back(0, mine, 3);
        stacks.free_unused(1);
        assert!(
            stacks.bytes() < 4 * STACK_MIN * size_of::<Grey>(),
            "worker 1's deep stack was kept by a one-worker collection"
        );

        stacks.release();
        assert_eq!(stacks.bytes(), 0);
        assert_eq!(
            stacks.take(0).capacity(),
            STACK_MIN,
            "released: a new stack"
        );
    }

    #[test]
    fn sharing_moves_the_oldest_half_in_packets_and_a_thief_starts_with_the_oldest() {
        let mut victim = Worker::new(0, Vec::new());
        victim.local.extend((0..600).map(grey));
        victim.share_half();
        assert_eq!(
            addrs(&victim.local),
            addrs(&(300..600).map(grey).collect::<Vec<_>>())
        );

        let stealer = victim.deque.stealer();
        let mut thief = Worker::new(1, Vec::new());
        let Steal::Success(first) = stealer.steal() else {
            panic!("a packet to steal")
        };
        assert_eq!(first.len(), PACKET, "full packets first");
        thief.take(&first);
        assert_eq!(
            addrs(&[thief.local.pop().unwrap()]),
            addrs(&[grey(0)]),
            "oldest on top"
        );
        let Steal::Success(rest) = stealer.steal() else {
            panic!("a second packet")
        };
        assert_eq!(
            addrs(&rest),
            addrs(&(PACKET..300).map(grey).collect::<Vec<_>>())
        );
        assert!(stealer.steal().is_empty(), "300 objects in two packets");
    }
}
