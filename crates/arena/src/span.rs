//! Span records: a run of pages and everything every layer of the heap
//! needs to know about it.
//!
//! A [`Span`] describes `npages` pages starting at `start`. Its `state` says
//! what the pages are used for:
//!
//! ```text
//!            alloc_span            sweep frees it
//!   Free ───────────────> InUse ──────────────────> Free
//!    │  alloc_manual                 free_manual
//!    └─────────────────> Manual ───────────────────> Free
//!   Dead: the record is in the span pool, describing nothing.
//! ```
//!
//! Every transition is checked; an illegal one panics after printing the
//! span (see `SpanState`'s users in the page heap).
//!
//! # Sharing and who writes what
//!
//! Span records are shared between threads through the span map, the
//! central span sets, mutator caches and sweepers, and they are never
//! freed: a record returns to the span pool when its pages are freed and is
//! reused for a later span, but its memory is never given back (as the seed's
//! `spanalloc` with `zero = false`). So a stale `&Span` always reads a valid
//! record, perhaps describing a different span than the reader expected;
//! readers that can see stale records validate with `state` and `sweepgen`.
//!
//! Every field is an atomic, so no access is a data race. Most are only
//! ever loaded and stored with `Relaxed` ordering, which compiles to plain
//! moves; ordering between threads comes from the protocols that hand a span
//! from one owner to another (a lock, a span-set push/pop, a `sweepgen`
//! CAS), each of which has release/acquire semantics. Each field says which
//! protocol protects it:
//!
//! * *identity* (`start`, `npages`, `limit`, `elem_size`, `nelems`,
//!   `div_mul`, `span_class`): written by the page heap while it owns the
//!   pages (before the span is published), read by anyone afterwards.
//! * *allocation state* (`free_index`, `alloc_count`, `alloc_cache`,
//!   `alloc_bits`, `needzero`): owned by whoever owns the span for
//!   allocation or sweeping at that moment: one mutator cache, or one
//!   sweeper holding the span's sweep claim. Nobody else writes them.
//! * `gcmark_bits`: replaced by the sweeper that owns the span, read by
//!   markers while the world is stopped; bits are set with atomic OR.
//! * `sweepgen`: the sweep protocol (see the sweep crate). It is the one
//!   field with non-Relaxed accesses.
//! * `type_tag`: an opaque word for the layers above (the facade stores a
//!   pointer to its type record). Written with the identity fields.
//! * `specials`: guarded by its own mutex; owned by the specials crate.

use std::sync::Mutex;

use crate::sizeclass::{self, SpanClass};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize};

/// What a span's pages are used for. See the state diagram at the top of
/// this module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SpanState {
    /// The record is unused (in the span pool).
    Dead = 0,
    /// Garbage-collected objects of one span class.
    InUse = 1,
    /// Memory the heap hands out but does not collect (e.g. gcBits chunks).
    Manual = 2,
    /// Free pages owned by the page allocator.
    Free = 3,
}

impl SpanState {
    /// Whether the page heap may move a span record from `self` to `to`:
    /// `Dead -> InUse | Manual` (allocation), `InUse | Manual -> Free`
    /// (freeing), `Free -> Dead` (the record returns to the pool).
    pub const fn can_become(self, to: SpanState) -> bool {
        matches!(
            (self, to),
            (SpanState::Dead, SpanState::InUse)
                | (SpanState::Dead, SpanState::Manual)
                | (SpanState::InUse, SpanState::Free)
                | (SpanState::Manual, SpanState::Free)
                | (SpanState::Free, SpanState::Dead)
        )
    }

    /// Decodes a state stored with `as u8`.
    pub fn from_u8(v: u8) -> SpanState {
        match v {
            0 => SpanState::Dead,
            1 => SpanState::InUse,
            2 => SpanState::Manual,
            3 => SpanState::Free,
            _ => panic!("span state byte {v} is not a SpanState"),
        }
    }
}

/// `sweepgen` value stored in records that describe no span (dead, free or
/// manual). It is odd, and `h - 2` is even for every heap sweepgen `h`
/// (which starts at 0 and moves by 2), so no sweeper's claim CAS from
/// `h - 2` can ever succeed on such a record, even through a stale pointer.
pub const SWEEPGEN_DEAD: u32 = u32::MAX;

/// A run of pages. See the module documentation for which protocol protects
/// each field.
#[derive(Debug)]
pub struct Span {
    // ---- identity: written by the page heap before publication ----
    /// Address of the first byte of the first page.
    pub(crate) start: AtomicUsize,
    /// Number of pages.
    pub(crate) npages: AtomicUsize,
    /// End of the usable data: `start + nelems * elem_size` for in-use
    /// spans, the end of the pages for manual spans.
    pub(crate) limit: AtomicUsize,
    /// Bytes per object slot (the size class's size, or the whole span for
    /// a large object).
    pub(crate) elem_size: AtomicUsize,
    /// Number of object slots.
    pub(crate) nelems: AtomicU32,
    /// Magic multiplier for slot index = (offset * div_mul) >> 32, valid for
    /// every offset inside the span (see `sizeclass`). 0 for large spans.
    pub(crate) div_mul: AtomicU32,
    /// A `SpanState` as u8.
    pub(crate) state: AtomicU8,
    /// A span class as u8 (size class << 1 | noscan).
    pub(crate) span_class: AtomicU8,

    // ---- allocation state: owned by the span's current owner ----
    /// The span's memory may hold non-zero bytes in free slots (it was used
    /// before). Fresh OS memory and scavenged pages are zero.
    pub(crate) needzero: AtomicBool,
    /// Some of the span's pages had been scavenged when it was allocated.
    pub(crate) scavenged: AtomicBool,
    /// Slot index at which to look for the next free slot; all slots below
    /// it are allocated.
    pub(crate) free_index: AtomicU32,
    /// Number of allocated slots.
    pub(crate) alloc_count: AtomicU32,
    /// The complement of the alloc bits starting at `free_index`, so that
    /// `trailing_zeros` finds the next free slot.
    pub(crate) alloc_cache: AtomicU64,
    /// One bit per slot: allocated. 8-byte aligned, from a gcBits chunk.
    pub(crate) alloc_bits: AtomicPtr<u64>,
    /// One bit per slot: marked in the current cycle. 8-byte aligned, from
    /// a gcBits chunk.
    pub(crate) gcmark_bits: AtomicPtr<u64>,

    // ---- sweeping ----
    /// Sweep generation relative to the heap's (see the sweep crate):
    /// h-2 needs sweeping, h-1 being swept, h swept, h+1 cached unswept,
    /// h+3 cached swept; [`SWEEPGEN_DEAD`] for records not in use.
    /// Survives reuse of the record.
    pub(crate) sweepgen: AtomicU32,
    /// When the pages became free (nanoseconds on the scavenger's clock).
    pub(crate) unused_since: AtomicU64,

    // ---- for the layers above ----
    /// Opaque word for the facade (its per-span type record).
    pub(crate) type_tag: AtomicUsize,
    /// Head of the span's special records (an address owned by the
    /// specials crate; 0 when empty), guarded by this mutex.
    pub specials: Mutex<usize>,
}

macro_rules! relaxed_getters {
    ($($(#[$m:meta])* $name:ident: $ty:ty;)*) => {$(
        $(#[$m])*
        #[inline]
        pub fn $name(&self) -> $ty {
            self.$name.load(Relaxed)
        }
    )*};
}

macro_rules! relaxed_setters {
    ($($(#[$m:meta])* $setter:ident => $field:ident: $ty:ty;)*) => {$(
        $(#[$m])*
        #[inline]
        pub fn $setter(&self, v: $ty) {
            self.$field.store(v, Relaxed)
        }
    )*};
}

use std::sync::atomic::Ordering::{self, Relaxed};

impl Span {
    /// A record describing nothing, as the span pool creates it.
    pub const fn new_dead() -> Span {
        Span {
            start: AtomicUsize::new(0),
            npages: AtomicUsize::new(0),
            limit: AtomicUsize::new(0),
            elem_size: AtomicUsize::new(0),
            nelems: AtomicU32::new(0),
            div_mul: AtomicU32::new(0),
            state: AtomicU8::new(SpanState::Dead as u8),
            span_class: AtomicU8::new(0),
            needzero: AtomicBool::new(false),
            scavenged: AtomicBool::new(false),
            free_index: AtomicU32::new(0),
            alloc_count: AtomicU32::new(0),
            alloc_cache: AtomicU64::new(0),
            alloc_bits: AtomicPtr::new(std::ptr::null_mut()),
            gcmark_bits: AtomicPtr::new(std::ptr::null_mut()),
            sweepgen: AtomicU32::new(SWEEPGEN_DEAD),
            unused_since: AtomicU64::new(0),
            type_tag: AtomicUsize::new(0),
            specials: Mutex::new(0),
        }
    }

    relaxed_getters! {
        /// Address of the span's first byte.
        start: usize;
        /// Number of pages.
        npages: usize;
        /// End of the usable data (see the field).
        limit: usize;
        /// Bytes per object slot.
        elem_size: usize;
        /// Number of object slots.
        nelems: u32;
        /// Magic multiplier for the slot index (0 for large spans).
        div_mul: u32;
        /// The memory may be dirty (see the field).
        needzero: bool;
        /// Some pages were scavenged when the span was allocated.
        scavenged: bool;
        /// Next slot index to search from.
        free_index: u32;
        /// Number of allocated slots.
        alloc_count: u32;
        /// Complement of the alloc bits from `free_index` (see the field).
        alloc_cache: u64;
        /// When the pages became free (scavenger clock, ns).
        unused_since: u64;
        /// The facade's opaque per-span word.
        type_tag: usize;
        /// The alloc bitmap (null until installed).
        alloc_bits: *mut u64;
        /// The mark bitmap (null until installed).
        gcmark_bits: *mut u64;
    }

    relaxed_setters! {
        /// Owner only: see "allocation state" in the module docs.
        set_needzero => needzero: bool;
        /// Owner only.
        set_free_index => free_index: u32;
        /// Owner only.
        set_alloc_count => alloc_count: u32;
        /// Owner only.
        set_alloc_cache => alloc_cache: u64;
    }

    /// The span's state.
    #[inline]
    pub fn state(&self) -> SpanState {
        SpanState::from_u8(self.state.load(Relaxed))
    }

    /// The span's state, loaded with `Acquire`: a reader that sees `InUse`
    /// also sees the `sweepgen` and identity fields stored before the
    /// page heap published the state with `Release`.
    #[inline]
    pub fn state_acquire(&self) -> SpanState {
        SpanState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// The span class as stored (size class << 1 | noscan).
    #[inline]
    pub fn span_class_raw(&self) -> u8 {
        self.span_class.load(Relaxed)
    }

    /// The span class (meaningful for in-use spans; manual spans and dead
    /// records hold [`SpanClass::LARGE_SCAN`]).
    #[inline]
    pub fn span_class(&self) -> SpanClass {
        SpanClass::from_raw(self.span_class_raw()).unwrap_or(SpanClass::LARGE_SCAN)
    }

    /// One past the span's last byte.
    #[inline]
    pub fn end(&self) -> usize {
        self.start() + (self.npages() << crate::PAGE_SHIFT)
    }

    /// Whether `addr` lies in `[start, limit)`.
    #[inline]
    pub fn contains_object_addr(&self, addr: usize) -> bool {
        addr >= self.start() && addr < self.limit()
    }

    /// The slot index of the object containing `addr`, which must lie in
    /// `[start, limit)` (checked in debug builds). Uses the size class's
    /// magic multiplier instead of a divide; large spans have one slot.
    #[inline]
    pub fn slot_index(&self, addr: usize) -> usize {
        debug_assert!(
            self.contains_object_addr(addr),
            "slot_index({addr:#x}) outside span [{:#x}, {:#x})",
            self.start(),
            self.limit()
        );
        let off = (addr - self.start()) as u64;
        ((off * self.div_mul() as u64) >> 32) as usize
    }

    /// The address of slot `i` (`i < nelems`, checked in debug builds).
    #[inline]
    pub fn slot_addr(&self, i: usize) -> usize {
        debug_assert!(i < self.nelems() as usize, "slot {i} of {}", self.nelems());
        self.start() + i * self.elem_size()
    }

    /// The sweep generation word, for the sweep protocol (which documents
    /// the orderings it uses on it).
    #[inline]
    pub fn sweepgen(&self) -> &AtomicU32 {
        &self.sweepgen
    }

    /// Installs the alloc bitmap.
    ///
    /// # Safety
    ///
    /// Caller owns the span's allocation state, and `bits` points to at
    /// least `ceil(nelems / 64)` 8-byte aligned words that stay valid until
    /// the bitmap is replaced (a gcBits epoch guarantees this for two
    /// sweep generations).
    #[inline]
    pub unsafe fn set_alloc_bits(&self, bits: *mut u64) {
        self.alloc_bits.store(bits, Relaxed)
    }

    /// Installs the mark bitmap.
    ///
    /// # Safety
    ///
    /// As for [`Span::set_alloc_bits`].
    #[inline]
    pub unsafe fn set_gcmark_bits(&self, bits: *mut u64) {
        self.gcmark_bits.store(bits, Relaxed)
    }

    /// Sets the facade's opaque word. Only the allocator of the span, before
    /// publishing it, may call this.
    #[inline]
    pub fn set_type_tag(&self, tag: usize) {
        self.type_tag.store(tag, Relaxed)
    }
}

/// Everything the page heap writes into a record before publishing it.
pub(crate) struct SpanInit {
    pub(crate) start: usize,
    pub(crate) npages: usize,
    /// `None` for a manual span.
    pub(crate) class: Option<SpanClass>,
    pub(crate) type_tag: usize,
    pub(crate) sweepgen: u32,
    pub(crate) needzero: bool,
    pub(crate) scavenged: bool,
}

impl Span {
    /// Writes the identity and allocation state of a record the caller
    /// owns (it is `Dead`, so unpublished: a stale reader may see the writes
    /// but validates with `state_acquire`, which only reports the new state
    /// after [`Span::transition`] publishes it with `Release`). Leaves
    /// `state` alone and resets the bitmap pointers to null: the sweep layer
    /// installs fresh ones.
    pub(crate) fn prepare(&self, init: SpanInit) {
        let bytes = init.npages << crate::PAGE_SHIFT;
        let (class, elem_size, nelems, div_mul) = match init.class {
            Some(c) if !c.is_large() => {
                let sc = c.size_class();
                debug_assert_eq!(bytes, sizeclass::class_npages(sc) << crate::PAGE_SHIFT);
                let (size, n) = (sizeclass::class_size(sc), sizeclass::class_nelems(sc));
                (c, size, n, sizeclass::class_div_mul(sc))
            }
            Some(c) => (c, bytes, 1, 0),
            None => (SpanClass::LARGE_SCAN, 0, 0, 0),
        };
        let limit = match init.class {
            Some(_) => init.start + nelems * elem_size,
            None => init.start + bytes,
        };
        self.start.store(init.start, Relaxed);
        self.npages.store(init.npages, Relaxed);
        self.limit.store(limit, Relaxed);
        self.elem_size.store(elem_size, Relaxed);
        self.nelems.store(nelems as u32, Relaxed);
        self.div_mul.store(div_mul, Relaxed);
        self.span_class.store(class.raw(), Relaxed);
        self.needzero.store(init.needzero, Relaxed);
        self.scavenged.store(init.scavenged, Relaxed);
        self.free_index.store(0, Relaxed);
        self.alloc_count.store(0, Relaxed);
        self.alloc_cache.store(0, Relaxed);
        self.alloc_bits.store(std::ptr::null_mut(), Relaxed);
        self.gcmark_bits.store(std::ptr::null_mut(), Relaxed);
        self.type_tag.store(init.type_tag, Relaxed);
        self.sweepgen.store(init.sweepgen, Relaxed);
    }

    /// Moves the record from state `from` to `to` with one compare-exchange
    /// (so two threads freeing the same span cannot both succeed), or panics
    /// naming `op` and printing the span if its state is not `from`.
    ///
    /// Success is `AcqRel`: the `Release` half publishes everything written
    /// before (identity, `sweepgen`, span map entries) to readers that load
    /// the state with [`Span::state_acquire`]; the `Acquire` half orders the
    /// caller's later writes (returning pages, reusing the record) after
    /// whatever the previous owner wrote before its own transition.
    pub(crate) fn transition(&self, from: SpanState, to: SpanState, op: &str) {
        assert!(
            from.can_become(to),
            "{op}: {from:?} -> {to:?} is not a span state transition"
        );
        if let Err(now) =
            self.state
                .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Relaxed)
        {
            panic!(
                "{op}: span is in state {:?}, expected {from:?} (double free or wrong kind of span?): {self}",
                SpanState::from_u8(now)
            );
        }
    }
}

impl Span {
    /// As [`Span::transition`], for a record the caller already owns
    /// exclusively (taken from the pool, or won by the `InUse -> Free`
    /// exchange), so no other thread can change its state: a checked load
    /// and a `Release` store, which is cheaper than a compare-exchange on
    /// the allocation fast path.
    pub(crate) fn transition_owned(&self, from: SpanState, to: SpanState, op: &str) {
        assert!(
            from.can_become(to),
            "{op}: {from:?} -> {to:?} is not a span state transition"
        );
        let now = SpanState::from_u8(self.state.load(Relaxed));
        assert!(
            now == from,
            "{op}: span is in state {now:?}, expected {from:?} (a record owned by the page heap changed state): {self}"
        );
        self.state.store(to as u8, Ordering::Release);
    }
}

impl Default for Span {
    fn default() -> Self {
        Span::new_dead()
    }
}

impl std::fmt::Display for Span {
    /// Prints the span the way panics and the verifier report it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "span {:#x}..{:#x} ({} pages) state {:?} class {} elem_size {} nelems {} alloc_count {} free_index {} sweepgen {}",
            self.start(),
            self.end(),
            self.npages(),
            self.state(),
            self.span_class_raw(),
            self.elem_size(),
            self.nelems(),
            self.alloc_count(),
            self.free_index(),
            self.sweepgen.load(Relaxed),
        )
    }
}
