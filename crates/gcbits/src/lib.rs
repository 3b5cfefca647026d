//! spangc's mark-bit epochs: where alloc and mark bitmaps live, and how the
//! allocator, the markers and the sweeper read and write them.
//!
//! Two parts, as in the Go runtime's `gcBits` code (`mheap.go`) and the
//! `mspan` bit helpers (`mbitmap.go`):
//!
//! * [`GcBitsArenas`] ([`arenas`]): 64 KiB chunks of bitmap memory grouped in
//!   four epochs, `next`, `current`, `previous` and `free`. Bitmaps are
//!   bump-allocated lock-free from the head chunk of `next`; the sweep
//!   retires them wholesale by rotating the epochs once per cycle
//!   ([`GcBitsArenas::next_epoch`]), so no bitmap is ever freed one at a
//!   time.
//! * [`SpanBits`] ([`bits`]): bit access on a [`Span`](spangc_arena::span::Span)
//!   record: alloc and mark bit tests, the markers' atomic
//!   [`set_marked`](SpanBits::set_marked), popcounts for the sweeper, and the
//!   allocator's 64-bit `alloc_cache` walked a run of free slots at a time
//!   ([`next_free_run`]).
//!
//! The design, the epoch diagram and the validity contract that the sweeper
//! must follow are in `docs/gcbits.md`; each module's top comment has the
//! part it implements.

pub mod arenas;
pub mod bits;
mod primitive;

pub use arenas::{CHUNK_BYTES, CHUNK_SLACK_BYTES, GcBitsArenas, GcBitsStats, MAX_RESERVE_BYTES};
pub use bits::{FreeRun, SpanBits, next_free_run, set_bit_sole};
pub use spangc_arena::os::OsError;

/// The most object slots a span can have, so the longest bitmap is
/// `MAX_NELEMS / 64` = 16 words (128 bytes). It is the 8-byte size class in
/// one 8 KiB page; every other small class has fewer slots per span
/// (multi-page classes have big objects: at most 11 slots), and a large
/// object's span has one.
///
/// Bitmap allocation asserts `nelems <= MAX_NELEMS`, and every chunk keeps
/// [`CHUNK_SLACK_BYTES`] = `MAX_NELEMS / 8` unused bytes at its end, so
/// that reading any bit index below `MAX_NELEMS` from the start of any
/// bitmap ever handed out stays inside mapped memory (see `arenas`).
pub const MAX_NELEMS: u32 = (spangc_arena::PAGE_SIZE / 8) as u32;

/// Words (`u64`) in the bitmap of a span of `nelems` slots:
/// `ceil(nelems / 64)`.
#[inline]
pub const fn bitmap_words(nelems: u32) -> usize {
    nelems.div_ceil(64) as usize
}
