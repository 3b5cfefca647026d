//! Allocation requests and errors.
//!
//! [`SizeReq`] turns a type's size and alignment into a span class (small
//! objects) or a byte count (large objects, which get a span of their own).
//! For a sized type it is a constant: the allocation fast path does no size
//! lookup at run time.
//!
//! Alignment: slots of a span start at `span start + i * size`, and spans
//! start on 8 KiB pages, so a slot is aligned to the largest power of two
//! dividing its size class's size. A type aligned to more than 8 bytes gets
//! the smallest class whose size is a multiple of its alignment. Large
//! objects are page-aligned; alignment above 8 KiB is rejected at compile
//! time (the constant's evaluation panics).

use spangc_arena::sizeclass::{self, SizeClass, SpanClass};
use std::alloc::Layout;
use std::fmt;

/// Where an object of a given layout is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SizeReq {
    /// In a slot of this span class (small object).
    Small(SpanClass),
    /// In a span of its own (large object).
    Large {
        /// The object's size in bytes.
        bytes: usize,
    },
}

impl SizeReq {
    /// The request for a value of `layout`, in a scan or noscan span.
    pub(crate) const fn for_layout_in(layout: Layout, noscan: bool) -> SizeReq {
        let size = if layout.size() == 0 { 1 } else { layout.size() };
        let align = layout.align();
        assert!(
            align <= spangc_arena::PAGE_SIZE,
            "spangc: objects aligned to more than 8 KiB are not supported"
        );
        let mut class = match sizeclass::size_to_class(size) {
            Some(c) => c,
            None => return SizeReq::Large { bytes: size },
        };
        while !sizeclass::class_size(class).is_multiple_of(align) {
            class = match SizeClass::new(class.index() + 1) {
                Some(c) => c,
                None => return SizeReq::Large { bytes: size },
            };
        }
        SizeReq::Small(SpanClass::new(class, noscan))
    }

    /// The request for a `T` (a constant per type).
    #[inline(always)]
    pub(crate) fn of<B: crate::Brand, T: crate::Trace<B>>() -> SizeReq {
        struct Req<B, T>(std::marker::PhantomData<(fn() -> B, T)>);
        impl<B: crate::Brand, T: crate::Trace<B>> Req<B, T> {
            const REQ: SizeReq = SizeReq::for_layout_in(Layout::new::<T>(), !T::NEEDS_TRACE);
        }
        Req::<B, T>::REQ
    }

    /// Bytes the request will occupy (for the memory limit check).
    pub(crate) fn bytes(self) -> usize {
        match self {
            SizeReq::Small(c) => sizeclass::class_size(c.size_class()),
            SizeReq::Large { bytes } => bytes,
        }
    }
}

/// Why an allocation failed: see [`AllocError`] and
/// [`Scope::try_alloc`](crate::Scope::try_alloc). `#[non_exhaustive]`, so
/// a `match` needs a wildcard arm.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// use spangc::{AllocErrorKind, Config, MIN_MEMORY_LIMIT};
///
/// fn advice(kind: &AllocErrorKind) -> &'static str {
///     match kind {
///         AllocErrorKind::MemoryLimit { .. } => "collect, then retry",
///         AllocErrorKind::TooLarge { .. } => "split the object",
///         AllocErrorKind::OutOfMemory(_) => "give up",
///         _ => "unknown",
///     }
/// }
///
/// let config = Config::builder().memory_limit(Some(MIN_MEMORY_LIMIT)).build().unwrap();
/// let heap = Heap::new(config).unwrap();
/// heap.mutator().enter(|cx| {
///     let err = (0u64..).find_map(|i| cx.try_alloc([i; 512]).err()).unwrap();
///     assert_eq!(advice(err.kind()), "collect, then retry");
///     assert!(err.kind().to_string().starts_with("memory limit of 4194304 bytes"));
/// });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AllocErrorKind {
    /// The heap would need more memory than its memory limit allows, even
    /// after returning all idle memory to the OS. A collection (at the next
    /// safepoint) may free enough.
    MemoryLimit {
        /// The configured limit, in bytes.
        limit: usize,
        /// Memory the heap would map with this allocation, in bytes.
        needed: usize,
    },
    /// The object is larger than the heap can ever hold.
    TooLarge {
        /// The requested size in bytes.
        bytes: usize,
    },
    /// The operating system refused memory.
    OutOfMemory(String),
}

impl fmt::Display for AllocErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocErrorKind::MemoryLimit { limit, needed } => write!(
                f,
                "memory limit of {limit} bytes reached (the heap would need {needed} bytes); \
                 collect at a safepoint or raise the limit"
            ),
            AllocErrorKind::TooLarge { bytes } => {
                write!(
                    f,
                    "object of {bytes} bytes is larger than the heap can hold"
                )
            }
            AllocErrorKind::OutOfMemory(why) => write!(f, "out of memory: {why}"),
        }
    }
}

impl From<spangc_sweep::AllocError> for AllocErrorKind {
    fn from(e: spangc_sweep::AllocError) -> Self {
        match e {
            spangc_sweep::AllocError::TooLarge { bytes } => AllocErrorKind::TooLarge { bytes },
            other => AllocErrorKind::OutOfMemory(other.to_string()),
        }
    }
}

/// A failed allocation: why, and the value that was not stored, so nothing
/// is lost. Returned by [`Scope::try_alloc`](crate::Scope::try_alloc),
/// which has another example.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Scope = spangc::Scope<Doc>;
/// use spangc::{AllocError, AllocErrorKind, Config};
///
/// type Block = [u64; 64];
///
/// /// Allocates a block, collecting once and retrying if the heap is full;
/// /// returns its first word.
/// fn alloc_or_collect(cx: &mut Scope, block: Block) -> Result<u64, AllocError<Block>> {
///     let block = match cx.try_alloc(block) {
///         Ok(gc) => return Ok(gc[0]),
///         Err(e) => e.into_value(), // take the value back
///     };
///     cx.collect();
///     cx.try_alloc(block).map(|gc| gc[0])
/// }
///
/// let config = Config::builder().memory_limit(Some(8 << 20)).build().unwrap();
/// let heap = Heap::new(config).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let mut failure = None;
///     for i in 0..1_000_000 {
///         if let Err(e) = cx.try_alloc([i; 64]) {
///             failure = Some(e);
///             break;
///         }
///     }
///     let e = failure.expect("8 MiB cannot hold 512 MB");
///     let AllocErrorKind::MemoryLimit { limit, needed } = *e.kind() else { panic!("{e}") };
///     assert!(needed > limit);
///     assert!(e.to_string().starts_with("spangc: allocation failed: memory limit"));
///     assert_eq!(alloc_or_collect(cx, [9; 64]).unwrap(), 9);
/// });
/// ```
pub struct AllocError<T> {
    value: T,
    kind: AllocErrorKind,
}

impl<T> AllocError<T> {
    pub(crate) fn new(value: T, kind: AllocErrorKind) -> Self {
        AllocError { value, kind }
    }

    /// Why the allocation failed. [`AllocError`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::{AllocErrorKind, Config};
    ///
    /// let heap = Heap::new(Config::builder().memory_limit(Some(8 << 20)).build().unwrap()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let err = (0u64..).find_map(|i| cx.try_alloc([i; 512]).err()).unwrap();
    ///     match err.kind() {
    ///         AllocErrorKind::MemoryLimit { limit, needed } => {
    ///             assert_eq!(*limit, 8 << 20);
    ///             assert!(needed > limit);
    ///         }
    ///         other => panic!("unexpected: {other}"),
    ///     }
    /// });
    /// ```
    pub fn kind(&self) -> &AllocErrorKind {
        &self.kind
    }

    /// The value that was to be allocated, given back so that nothing is
    /// lost. [`AllocError`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::builder().memory_limit(Some(8 << 20)).build().unwrap()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let mut n = 0;
    ///     let err = loop {
    ///         match cx.try_alloc([n; 512]) {
    ///             Ok(_) => n += 1,
    ///             Err(e) => break e,
    ///         }
    ///     };
    ///     let block: [u64; 512] = err.into_value();
    ///     assert_eq!(block[0], n, "the block that did not fit");
    ///     cx.collect(); // the earlier blocks were garbage
    ///     assert_eq!(cx.try_alloc(block).unwrap()[0], n);
    /// });
    /// ```
    pub fn into_value(self) -> T {
        self.value
    }
}

impl<T> fmt::Debug for AllocError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllocError")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl<T> fmt::Display for AllocError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spangc: allocation failed: {}", self.kind)
    }
}

impl<T> std::error::Error for AllocError<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alignment_picks_a_class_that_keeps_slots_aligned() {
        for align in [1usize, 2, 4, 8, 16, 32, 64, 128, 256, 4096, 8192] {
            for size in [1usize, 7, 8, 24, 40, 100, 1000, 5000, 30000] {
                let size = size.next_multiple_of(align);
                let l = Layout::from_size_align(size, align).unwrap();
                match SizeReq::for_layout_in(l, false) {
                    SizeReq::Small(c) => {
                        let cs = sizeclass::class_size(c.size_class());
                        assert!(
                            cs >= size && cs.is_multiple_of(align),
                            "{size}/{align} -> {cs}"
                        );
                    }
                    SizeReq::Large { bytes } => assert_eq!(bytes, size),
                }
            }
        }
    }

    #[test]
    fn zero_sized_types_take_the_smallest_class() {
        let r = SizeReq::for_layout_in(Layout::new::<()>(), true);
        assert_eq!(r.bytes(), 8);
    }
}
