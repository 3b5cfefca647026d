//! What a per-thread cache grows spans from: its page cache and its gcBits
//! reservation.
//!
//! A refill that takes a fresh span from the page heap used to pay an
//! atomic read-modify-write on a line every cache shares for the span's
//! bitmaps: the bump of the gcBits head. On two threads that line moves
//! between the cores at every refill, and the locked instruction waits for
//! the store buffer of the objects just written. So a cache reserves
//! [`RESERVE_BYTES`] of bitmap memory at a time
//! (`GcBitsArenas::reserve`) and carves each fresh span's alloc and mark
//! bits out of it with plain arithmetic, as the page cache carves pages
//! out of a block taken under the heap lock.
//!
//! A reservation belongs to the gcBits epoch it was taken in, and bitmaps
//! carved after the epoch moved would be one epoch older than their span
//! (see docs/gcbits.md). The epochs rotate at `Mheap::prepare_mark` and
//! the sweep generation moves at the following `finish_mark`, both with
//! the world stopped (no cache allocating in between), so a reservation
//! taken in generation `h` is used only while the heap is still at `h`;
//! the rest of it is dropped (never handed out, freed with its chunk)
//! otherwise.

use std::ptr::NonNull;

use spangc_arena::PageCache;
use spangc_gcbits::{GcBitsArenas, MAX_RESERVE_BYTES};

/// Bytes of bitmap memory a cache reserves at once: both bitmaps of eight
/// fresh 16-byte-object spans, or of 64 spans of 256-byte objects.
const RESERVE_BYTES: usize = MAX_RESERVE_BYTES;

/// A cache's sources of fresh spans.
#[derive(Default)]
pub(crate) struct SpanSource {
    /// Pages and span records without the heap lock.
    pub(crate) pages: PageCache,
    bits: BitsReservation,
}

/// The unused part `[next, end)` of a block reserved in sweep generation
/// `sweepgen` (empty when `next == end`).
#[derive(Default)]
struct BitsReservation {
    sweepgen: u32,
    next: usize,
    end: usize,
}

impl SpanSource {
    /// `bytes` (a multiple of 8, at most [`RESERVE_BYTES`]) of zeroed
    /// bitmap memory from `arenas` for a span allocated in sweep generation
    /// `h`, with the contract of `GcBitsArenas::new_mark_bits`.
    pub(crate) fn bitmaps(
        &mut self,
        arenas: &GcBitsArenas,
        h: u32,
        bytes: usize,
    ) -> Result<NonNull<u64>, spangc_arena::os::OsError> {
        debug_assert!(bytes.is_multiple_of(8) && bytes <= RESERVE_BYTES);
        let r = &mut self.bits;
        if r.sweepgen != h || r.end - r.next < bytes {
            let block = arenas.reserve(RESERVE_BYTES)?;
            *r = BitsReservation {
                sweepgen: h,
                next: block.as_ptr() as usize,
                end: block.as_ptr() as usize + RESERVE_BYTES,
            };
        }
        let p = r.next;
        r.next += bytes;
        // SAFETY: `p` lies in a block `reserve` handed out (non-null).
        Ok(unsafe { NonNull::new_unchecked(p as *mut u64) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carves_zeroed_disjoint_bitmaps_and_drops_the_block_when_the_generation_moves() {
        let arenas = GcBitsArenas::new();
        let mut src = SpanSource::default();
        let a = src.bitmaps(&arenas, 2, 128).unwrap().as_ptr() as usize;
        let b = src.bitmaps(&arenas, 2, 16).unwrap().as_ptr() as usize;
        assert_eq!(b, a + 128, "carved from one block, one after the other");
        // SAFETY: 16 bytes of zeroed bitmap memory at `b`.
        let words = unsafe { std::slice::from_raw_parts(b as *const u64, 2) };
        assert_eq!(words, [0, 0]);
        // Fill the block: the next bitmap needs a new one.
        let mut used = 144;
        while used + 128 <= RESERVE_BYTES {
            src.bitmaps(&arenas, 2, 128).unwrap();
            used += 128;
        }
        let c = src.bitmaps(&arenas, 2, 128).unwrap().as_ptr() as usize;
        assert!(
            c < a || c >= a + RESERVE_BYTES,
            "a full block is not carved past its end"
        );
        // A new generation (after a rotation): not from the old block,
        // though it has room left.
        arenas.next_epoch();
        let d = src.bitmaps(&arenas, 4, 8).unwrap().as_ptr() as usize;
        assert!(
            d < c || d >= c + RESERVE_BYTES,
            "the old generation's block was used after the epoch moved"
        );
    }
}
