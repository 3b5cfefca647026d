//! Alloc and mark bit access on a span record, and the allocator's
//! `alloc_cache` (the seed's `mspan` bit helpers: `isFree`, `markBits`,
//! `countAlloc`, `refillAllocCache`, `nextFreeIndex`, and malloc's
//! `nextFreeFast`).
//!
//! # Bitmaps
//!
//! A span of `nelems` slots has two bitmaps of `ceil(nelems / 64)` words
//! from [`GcBitsArenas`](crate::GcBitsArenas): slot `i` is bit `i % 64` of
//! word `i / 64`. They are viewed as `&[AtomicU64]` (`words`, the one
//! unsafe step) and every access is atomic, so a stale reader (a marker
//! holding a span record that the sweeper is changing) is never a data
//! race. Loads and stores are `Relaxed`: a bit publishes nothing; the
//! protocols around the bits (the world stopped for marking, the sweep
//! claim on `sweepgen`) order them.
//!
//! * *alloc bits* say which slots were allocated when the span was last
//!   swept (or none, for a fresh span). They are not updated by allocation:
//!   slots below `free_index` are allocated whatever their bit says (the
//!   seed's rule), hence [`SpanBits::is_free`].
//! * *mark bits* are set by the markers ([`SpanBits::set_marked`], atomic,
//!   exactly one winner per bit) and become the next alloc bits when the
//!   span is swept.
//!
//! # alloc_cache
//!
//! The allocator finds free slots through the span's `alloc_cache`: the
//! complement of the alloc-bit word holding `free_index`, shifted so that
//! bit 0 is slot `free_index`. `trailing_zeros` then gives the distance to
//! the next free slot. Bits shifted in from the top are zero ("not free"),
//! so the cache never claims slots past the end of its word.
//! [`next_free_run`] takes a whole run of consecutive free slots at a time
//! (a second `trailing_zeros`, on the shifted cache, gives its length),
//! loading the next word of alloc bits when the cache runs out; the
//! allocation cache bumps through the run (the seed's `nextFreeFast` /
//! `nextFreeIndex` find one slot per call instead; docs/sweep.md has the
//! measurement). It does not touch `alloc_count`: the caller counts.
//!
//! # Raw words or bitvec
//!
//! The hot paths work on raw `u64` words; `bitvec` serves as the reference
//! model in the tests. `benches/bits.rs` measures both where it matters;
//! the figures are in the comments on [`count_bits`] and on `set_bit`
//! (behind [`SpanBits::set_marked`]), and in docs/PERFORMANCE.md.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use spangc_arena::span::Span;

use crate::{MAX_NELEMS, bitmap_words};

/// Bit access on a span's alloc and mark bitmaps. Implemented for
/// [`Span`].
///
/// Every method panics, printing the span, if the bitmap it needs is not
/// installed (null), if `nelems` exceeds [`MAX_NELEMS`], or if a slot index
/// is not below `nelems`.
///
/// ```
/// use spangc_arena::span::Span;
/// use spangc_gcbits::SpanBits;
///
/// let span = Span::new_dead(); // no bitmaps installed yet
/// let r = std::panic::catch_unwind(|| span.is_marked(0));
/// assert!(r.is_err()); // "mark bits of span 0x0..0x0 ... are null"
/// ```
pub trait SpanBits {
    /// Whether slot `i`'s alloc bit is set: it was allocated when the span
    /// was last swept. Slots below `free_index` have been allocated since,
    /// whatever their bit; use [`is_free`](Self::is_free) to ask whether a
    /// slot is in use.
    fn is_allocated(&self, i: usize) -> bool;

    /// Whether slot `i` is free: `i >= free_index` and its alloc bit is
    /// clear (the seed's `isFree`).
    fn is_free(&self, i: usize) -> bool;

    /// Whether slot `i`'s mark bit is set.
    fn is_marked(&self, i: usize) -> bool;

    /// Sets slot `i`'s mark bit and returns whether it was **already** set.
    /// Parallel markers race on it; exactly one of them gets `false` and
    /// must scan the object.
    fn set_marked(&self, i: usize) -> bool;

    /// [`set_marked`](Self::set_marked) for a marker that is the only
    /// thread setting mark bits (one mark worker): a plain load and store
    /// instead of the atomic read-modify-write, which is 30% of
    /// single-threaded mark time on binary-trees (5.7 vs 8.0 ns per object,
    /// measured with the facade's mark probe of commit 7912b8a, since
    /// replaced by `crates/spangc/benches/mark.rs`). Memory-safe either way
    /// (every access is atomic), but with a second concurrent marker a
    /// mark could be lost, so callers must know they are alone.
    fn set_marked_sole(&self, i: usize) -> bool;

    /// Sets the mark bits `mask` of mark word `word` (slots `64 * word ..`)
    /// in one atomic OR and returns those of them that were clear before:
    /// the objects this caller marked and must scan. Parallel markers
    /// combine the marks of neighbouring objects into one such call.
    fn set_marked_word(&self, word: usize, mask: u64) -> u64;

    /// The mark bitmap as `ceil(nelems / 64)` words, checked once (bit `i`
    /// of word `w` is slot `64 * w + i`): for a marker that tests and sets
    /// many bits of one span ([`set_bit_sole`], `fetch_or`). Bits past
    /// `nelems` in the last word must stay clear.
    fn mark_words(&self) -> &[AtomicU64];

    /// Number of marked slots (popcount of the mark bits below `nelems`).
    fn count_marked(&self) -> u32;

    /// Number of set alloc bits below `nelems` (slots allocated at the last
    /// sweep, not counting allocations since through `free_index`).
    fn count_allocated(&self) -> u32;

    /// Loads `alloc_cache` with the complement of the 64 alloc bits starting
    /// at byte `whichbyte` of the alloc bitmap (the seed's
    /// `refillAllocCache`). `whichbyte` must be a multiple of 8 (bitmaps are
    /// words; the seed always passes `freeindex / 8` with `freeindex` a
    /// multiple of 64) and inside the bitmap; both are asserted.
    fn refill_alloc_cache(&self, whichbyte: u32);

    /// Points `alloc_cache` at `free_index`: refills it from the word
    /// holding `free_index` and shifts out the slots below it, as the seed's
    /// `mcentral.cacheSpan` does before handing a span to a cache. Call it
    /// after sweeping (with `free_index` 0) or after setting up a fresh
    /// span. Does nothing when `free_index == nelems` (the span is full).
    fn init_alloc_cache(&self);
}

/// A run of consecutive free slots, `[start, start + len)`, found by
/// [`next_free_run`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreeRun {
    /// The first slot.
    pub start: u32,
    /// How many slots (at least 1; a run never crosses a word of alloc
    /// bits).
    pub len: u32,
}

/// The next run of free slots at or after the cursor `(free_index,
/// alloc_cache)` (kept as the span keeps them; see "alloc_cache"), moving
/// the cursor past it; `None` when there is none, with the cursor at
/// `nelems`. `word(w)` loads word `w` of the alloc bits: the allocation
/// cache reads them through a pointer it holds, so the cursor can live in
/// registers or in the cache rather than in the span.
///
/// At a word boundary below `nelems` the cache is reloaded from the next
/// word, so `alloc_cache` always describes the word holding `free_index`.
/// A run that reaches the end of its word goes on into the next one while
/// the slots there are free, so a free span is one run, not one per 64
/// slots, and the cache leaves its inlined bump path once per span rather
/// than once per 64 objects: `cargo bench -p spangc-sweep --bench alloc`,
/// one thread, two interleaved runs, the zeroing `alloc` of 16 bytes
/// 1.42-1.44 -> 1.38-1.39 ns (32 and 64 bytes within noise);
/// binary-trees depth 21 on `spangc-2` faster in six of eight interleaved
/// pairs (the VM changed speed halfway, so the medians say little).
///
/// ```
/// use spangc_gcbits::{FreeRun, next_free_run};
///
/// // 140 slots; slots 0, 1, 5 and 130 allocated, the rest free.
/// let words = [0b100011u64, 0, 0b100];
/// let (mut fi, mut cache) = (0, !words[0]);
/// let mut next = || next_free_run(&mut fi, &mut cache, 140, |w| words[w as usize]);
/// assert_eq!(next(), Some(FreeRun { start: 2, len: 3 }));
/// assert_eq!(next(), Some(FreeRun { start: 6, len: 124 })); // across two words
/// assert_eq!(next(), Some(FreeRun { start: 131, len: 9 }));
/// assert_eq!(next(), None);
/// ```
#[inline]
pub fn next_free_run(
    free_index: &mut u32,
    alloc_cache: &mut u64,
    nelems: u32,
    mut word: impl FnMut(u32) -> u64,
) -> Option<FreeRun> {
    loop {
        if *alloc_cache != 0 {
            let bit = alloc_cache.trailing_zeros();
            let start = *free_index + bit;
            if start >= nelems {
                break; // bits past the last slot read as free
            }
            let c = *alloc_cache >> bit;
            let mut len = (!c).trailing_zeros().min(nelems - start);
            *alloc_cache = c.checked_shr(len).unwrap_or(0);
            *free_index = start + len;
            while free_index.is_multiple_of(64) && *free_index < nelems {
                *alloc_cache = !word(*free_index / 64);
                // The run goes on while the next word starts free.
                let more = alloc_cache.trailing_ones().min(nelems - *free_index);
                if more == 0 {
                    break;
                }
                *alloc_cache = alloc_cache.checked_shr(more).unwrap_or(0);
                *free_index += more;
                len += more;
            }
            return Some(FreeRun { start, len });
        }
        // The rest of this word is allocated: on to the next one.
        let next = (*free_index & !63) + 64;
        if next >= nelems {
            break;
        }
        *free_index = next;
        *alloc_cache = !word(next / 64);
    }
    *free_index = nelems;
    *alloc_cache = 0;
    None
}

/// The fields of a span record that bit access needs. [`Span`] is the
/// real implementor; the tests implement it for a mock record, because a
/// `Span` with a given `nelems` can only be built by the page heap.
///
/// # Safety
///
/// A non-null `alloc_bits()` / `gcmark_bits()` must point to at least
/// `ceil(nelems() / 64)` 8-byte aligned words that stay mapped while the
/// record is borrowed and are only ever accessed atomically. Bitmaps from
/// [`GcBitsArenas`](crate::GcBitsArenas) satisfy this for any
/// `nelems() <= MAX_NELEMS` for as long as the arenas live (chunks are never
/// unmapped before Drop, and the chunk slack covers a `nelems` that changed
/// under a stale reader).
pub(crate) unsafe trait SpanRecord: fmt::Display {
    fn nelems(&self) -> u32;
    fn alloc_bits(&self) -> *mut u64;
    fn gcmark_bits(&self) -> *mut u64;
    fn free_index(&self) -> u32;
    fn alloc_cache(&self) -> u64;
    fn set_alloc_cache(&self, v: u64);
}

// SAFETY: `Span::set_alloc_bits` / `set_gcmark_bits` are unsafe with exactly
// this contract ("at least ceil(nelems / 64) 8-byte aligned words that stay
// valid until the bitmap is replaced"); the sweep crate installs only
// bitmaps from GcBitsArenas, which stay mapped after replacement too.
unsafe impl SpanRecord for Span {
    #[inline(always)]
    fn nelems(&self) -> u32 {
        Span::nelems(self)
    }
    #[inline(always)]
    fn alloc_bits(&self) -> *mut u64 {
        Span::alloc_bits(self)
    }
    #[inline(always)]
    fn gcmark_bits(&self) -> *mut u64 {
        Span::gcmark_bits(self)
    }
    #[inline(always)]
    fn free_index(&self) -> u32 {
        Span::free_index(self)
    }
    #[inline(always)]
    fn alloc_cache(&self) -> u64 {
        Span::alloc_cache(self)
    }
    #[inline(always)]
    fn set_alloc_cache(&self, v: u64) {
        Span::set_alloc_cache(self, v)
    }
}

/// Which of a span's bitmaps, for [`words`] and its panic messages.
#[derive(Clone, Copy)]
enum Which {
    Alloc,
    Mark,
}

/// The span's alloc or mark bitmap as `ceil(nelems / 64)` atomic words:
/// the one place bit access turns a raw pointer into a reference.
#[inline(always)]
fn words<S: SpanRecord + ?Sized>(s: &S, which: Which) -> (&[AtomicU64], u32) {
    let p = match which {
        Which::Alloc => s.alloc_bits(),
        Which::Mark => s.gcmark_bits(),
    };
    let nelems = s.nelems();
    if p.is_null() || nelems > MAX_NELEMS {
        bad_bitmap(s, which, p, nelems);
    }
    // `p` is non-null, and by `SpanRecord`'s contract points to at least
    // ceil(nelems / 64) 8-byte aligned words that stay mapped while `s` is
    // borrowed (the returned slice borrows `s`) and are only accessed
    // atomically; AtomicU64 has the size and alignment of u64.
    // SAFETY: so the words are a valid shared slice of atomics.
    let words = unsafe { std::slice::from_raw_parts(p.cast_const().cast(), bitmap_words(nelems)) };
    (words, nelems)
}

#[cold]
#[inline(never)]
fn bad_bitmap<S: SpanRecord + ?Sized>(s: &S, which: Which, p: *mut u64, nelems: u32) -> ! {
    let name = match which {
        Which::Alloc => "alloc",
        Which::Mark => "mark",
    };
    if p.is_null() {
        panic!("gcbits: {name} bits of {s} are null");
    }
    panic!("gcbits: {name} bits of {s}: nelems {nelems} > MAX_NELEMS {MAX_NELEMS}");
}

#[cold]
#[inline(never)]
fn bad_index<S: SpanRecord + ?Sized>(s: &S, what: &str, i: usize) -> ! {
    panic!("gcbits: {what}({i}) out of range in {s}");
}

/// The word holding slot `i`'s bit, and its mask; panics (printing the
/// span) unless `i < nelems`.
#[inline(always)]
fn slot_bit<'a, S: SpanRecord + ?Sized>(
    s: &S,
    (words, nelems): (&'a [AtomicU64], u32),
    i: usize,
    what: &str,
) -> (&'a AtomicU64, u64) {
    if i >= nelems as usize {
        bad_index(s, what, i);
    }
    (&words[i / 64], 1 << (i % 64))
}

/// Popcount of the first `nelems` bits of `words`, ignoring the tail of
/// the last word.
///
/// Raw words, not `bitvec`: over the same words `BitSlice<AtomicU64,
/// Lsb0>::count_ones` took 16.7 ns for 1024 slots (raw 16.4 ns) and 8.1 ns
/// for 341 slots (raw 6.5 ns, 20% faster: the tail mask is one AND here),
/// benches/bits.rs `count/*`, one thread, 2-core x86-64 (baseline target,
/// so `count_ones` is not the `popcnt` instruction; see docs/PERFORMANCE.md).
#[doc(hidden)]
#[inline]
pub fn count_bits(words: &[AtomicU64], nelems: u32) -> u32 {
    let full = nelems as usize / 64;
    let tail = nelems % 64;
    let mut n = 0;
    for w in &words[..full] {
        n += w.load(Relaxed).count_ones();
    }
    if tail != 0 {
        n += (words[full].load(Relaxed) & ((1u64 << tail) - 1)).count_ones();
    }
    n
}

/// Sets bit `i` of `words` and returns whether it was already set: a plain
/// load first, and the atomic RMW only if the bit is clear.
///
/// The load first is the known win, measured (benches/bits.rs
/// `set_marked/*`, one thread): on bits already set it costs 0.58 ns per
/// call against 5.0 ns for an unconditional `fetch_or` (8.6x: a `lock or`
/// is a full barrier on x86-64 even when it changes nothing); on clear bits
/// both take 5.0 ns, so the extra load is free. With markers on several
/// threads the plain load also keeps already-marked words shared in every
/// cache instead of bouncing them exclusive between cores.
///
/// Raw words, not `bitvec`, for the contract rather than the speed:
/// bitvec's atomic bit slices have no test-and-set that returns the old
/// bit (`set_aliased` returns nothing), and exactly one racing marker must
/// learn that it set the bit. The same look-then-set on bitvec
/// (`set_marked/bitvec/*`, 2026-11-26) is as fast: 592 ns against 617 per
/// 1024 bits already set, 4.84 against 5.07 us per 1024 clear.
#[doc(hidden)]
#[inline(always)]
pub fn set_bit(words: &[AtomicU64], i: usize) -> bool {
    let (word, mask) = (&words[i / 64], 1u64 << (i % 64));
    if word.load(Relaxed) & mask != 0 {
        return true;
    }
    // Relaxed: RMWs on one word are totally ordered, so exactly one racing
    // marker sees the bit clear; the bit itself publishes nothing.
    word.fetch_or(mask, Relaxed) & mask != 0
}

#[inline]
pub(crate) fn is_allocated<S: SpanRecord + ?Sized>(s: &S, i: usize) -> bool {
    let (word, mask) = slot_bit(s, words(s, Which::Alloc), i, "is_allocated");
    word.load(Relaxed) & mask != 0
}

#[inline]
pub(crate) fn is_free<S: SpanRecord + ?Sized>(s: &S, i: usize) -> bool {
    let (word, mask) = slot_bit(s, words(s, Which::Alloc), i, "is_free");
    i >= s.free_index() as usize && word.load(Relaxed) & mask == 0
}

#[inline]
pub(crate) fn is_marked<S: SpanRecord + ?Sized>(s: &S, i: usize) -> bool {
    let (word, mask) = slot_bit(s, words(s, Which::Mark), i, "is_marked");
    word.load(Relaxed) & mask != 0
}

#[inline]
pub(crate) fn set_marked<S: SpanRecord + ?Sized>(s: &S, i: usize) -> bool {
    let (words, nelems) = words(s, Which::Mark);
    if i >= nelems as usize {
        bad_index(s, "set_marked", i);
    }
    set_bit(words, i)
}

#[inline]
pub(crate) fn set_marked_sole<S: SpanRecord + ?Sized>(s: &S, i: usize) -> bool {
    let (words, nelems) = words(s, Which::Mark);
    if i >= nelems as usize {
        bad_index(s, "set_marked_sole", i);
    }
    set_bit_sole(&words[i / 64], 1 << (i % 64))
}

/// Sets the bit `mask` of `word` with a plain load and store, for a
/// marker that is the only thread setting bits of the bitmap (see
/// [`SpanBits::set_marked_sole`]); returns whether it was already set.
#[inline(always)]
pub fn set_bit_sole(word: &AtomicU64, mask: u64) -> bool {
    let w = word.load(Relaxed);
    if w & mask != 0 {
        return true;
    }
    word.store(w | mask, Relaxed);
    false
}

#[inline]
pub(crate) fn set_marked_word<S: SpanRecord + ?Sized>(s: &S, word: usize, mask: u64) -> u64 {
    let (words, nelems) = words(s, Which::Mark);
    // The highest slot the mask names (the lowest when the mask is empty,
    // which is a caller's bug too).
    let top = 64 * word + (63 - mask.leading_zeros().min(63) as usize);
    if mask == 0 || top >= nelems as usize {
        bad_index(s, "set_marked_word", top);
    }
    // Relaxed: as in `set_bit`; each bit is flipped by exactly one RMW.
    mask & !words[word].fetch_or(mask, Relaxed)
}

#[inline]
pub(crate) fn mark_words<S: SpanRecord + ?Sized>(s: &S) -> &[AtomicU64] {
    words(s, Which::Mark).0
}

#[inline]
pub(crate) fn count_marked<S: SpanRecord + ?Sized>(s: &S) -> u32 {
    let (words, nelems) = words(s, Which::Mark);
    count_bits(words, nelems)
}

#[inline]
pub(crate) fn count_allocated<S: SpanRecord + ?Sized>(s: &S) -> u32 {
    let (words, nelems) = words(s, Which::Alloc);
    count_bits(words, nelems)
}

#[inline]
pub(crate) fn refill_alloc_cache<S: SpanRecord + ?Sized>(s: &S, whichbyte: u32) {
    let (words, _) = words(s, Which::Alloc);
    let w = whichbyte as usize / 8;
    if !whichbyte.is_multiple_of(8) || w >= words.len() {
        bad_index(s, "refill_alloc_cache", whichbyte as usize);
    }
    s.set_alloc_cache(!words[w].load(Relaxed));
}

#[inline]
pub(crate) fn init_alloc_cache<S: SpanRecord + ?Sized>(s: &S) {
    let free_index = s.free_index();
    if free_index >= s.nelems() {
        return;
    }
    refill_alloc_cache(s, (free_index & !63) / 8);
    s.set_alloc_cache(s.alloc_cache() >> (free_index % 64));
}

/// Implements [`SpanBits`] for a [`SpanRecord`] by forwarding to the
/// generic functions above; used for `Span` and for the tests' mock record,
/// so the tests run the same code.
macro_rules! impl_span_bits {
    ($t:ty) => {
        impl $crate::bits::SpanBits for $t {
            #[inline]
            fn is_allocated(&self, i: usize) -> bool {
                $crate::bits::is_allocated(self, i)
            }
            #[inline]
            fn is_free(&self, i: usize) -> bool {
                $crate::bits::is_free(self, i)
            }
            #[inline]
            fn is_marked(&self, i: usize) -> bool {
                $crate::bits::is_marked(self, i)
            }
            #[inline]
            fn set_marked(&self, i: usize) -> bool {
                $crate::bits::set_marked(self, i)
            }
            #[inline]
            fn set_marked_sole(&self, i: usize) -> bool {
                $crate::bits::set_marked_sole(self, i)
            }
            #[inline]
            fn set_marked_word(&self, word: usize, mask: u64) -> u64 {
                $crate::bits::set_marked_word(self, word, mask)
            }
            #[inline]
            fn mark_words(&self) -> &[std::sync::atomic::AtomicU64] {
                $crate::bits::mark_words(self)
            }
            #[inline]
            fn count_marked(&self) -> u32 {
                $crate::bits::count_marked(self)
            }
            #[inline]
            fn count_allocated(&self) -> u32 {
                $crate::bits::count_allocated(self)
            }
            #[inline]
            fn refill_alloc_cache(&self, whichbyte: u32) {
                $crate::bits::refill_alloc_cache(self, whichbyte)
            }
            #[inline]
            fn init_alloc_cache(&self) {
                $crate::bits::init_alloc_cache(self)
            }
        }
    };
}

impl_span_bits!(Span);

/// Not part of the API: the raw-word primitives behind [`SpanBits`],
/// exported for `benches/bits.rs` only (a `Span` with a given `nelems` can
/// only be built by the page heap, so the bench measures these directly).
#[doc(hidden)]
pub mod bench_support {
    pub use super::{count_bits, set_bit};
}

#[cfg(all(test, not(loom)))]
mod test;
