//! Proportional sweep: sweeping must finish before the next collection
//! would start.
//!
//! As in the seed's mheap, pacing is a line in the (heap_live,
//! pages_swept) plane through a basis point we control:
//!
//! ```text
//! target(live) = pages_swept_basis + pages_per_byte * (live - heap_live_basis)
//! ```
//!
//! with `pages_per_byte = unswept pages / (trigger - heap_live - 1 MiB)`
//! set when a generation starts, so every in-use page is swept before
//! `heap_live` reaches the next trigger (less 1 MiB of margin, the seed's
//! `sweepMinHeapDistance`). Before an allocation takes a new span, the
//! allocator sweeps until `pages_swept >= target(heap_live + span bytes)`.
//! The basis point (rather than the origin) lets the slope change at any
//! time without a jump in debt.
//!
//! Overflow and negative debt (Go issue 57523, where an overflow made every
//! allocating thread think it owed the whole heap): a live heap at or below
//! the basis owes nothing, the product is computed in `f64`, rounded up and
//! converted with a saturating cast, the sum saturates, and an allocator
//! that finds nothing left to sweep stops paying.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// Margin left between the end of sweeping and the trigger.
const SWEEP_MIN_HEAP_DISTANCE: usize = 1 << 20;

/// Proportional sweep state. Written when a generation starts (world
/// stopped) and when the pacer sets the goal; read by allocators without
/// a lock. `pages_swept_basis` is stored last with Release so that a
/// reader who sees it also sees the slope and live basis.
#[derive(Default, Debug)]
pub(crate) struct ProportionalSweep {
    /// Pages swept, ever (every sweeper adds; the stats report it).
    pages_swept: AtomicU64,
    /// `pages_swept` when the current generation started.
    gen_start_pages: AtomicU64,
    pages_swept_basis: AtomicU64,
    heap_live_basis: AtomicU64,
    /// `f64` bits; 0.0 means no pacing.
    pages_per_byte: AtomicU64,
}

impl ProportionalSweep {
    /// A new generation: nothing swept yet, no pacing until `set_goal`.
    pub(crate) fn reset(&self) {
        self.pages_per_byte.store(0f64.to_bits(), Relaxed);
        self.gen_start_pages
            .store(self.pages_swept.load(Relaxed), Relaxed);
    }

    pub(crate) fn add_pages_swept(&self, n: usize) {
        self.pages_swept.fetch_add(n as u64, Relaxed);
    }

    /// Pages swept, ever.
    pub(crate) fn pages_swept(&self) -> u64 {
        self.pages_swept.load(Relaxed)
    }

    /// Sets the line so that `pages_in_use` pages are swept by the time
    /// `heap_live` grows from its current value to `trigger`.
    pub(crate) fn set_goal(&self, heap_live: usize, trigger: usize, pages_in_use: usize) {
        let heap_distance = trigger
            .saturating_sub(heap_live)
            .saturating_sub(SWEEP_MIN_HEAP_DISTANCE)
            .max(spangc_arena::PAGE_SIZE);
        let swept = self.pages_swept.load(Relaxed);
        let this_gen = swept.saturating_sub(self.gen_start_pages.load(Relaxed));
        let distance_pages = (pages_in_use as u64).saturating_sub(this_gen);
        if distance_pages == 0 {
            self.pages_per_byte.store(0f64.to_bits(), Relaxed);
            return;
        }
        let slope = distance_pages as f64 / heap_distance as f64;
        self.pages_per_byte.store(slope.to_bits(), Relaxed);
        self.heap_live_basis.store(heap_live as u64, Relaxed);
        self.pages_swept_basis.store(swept, Release);
    }

    /// Whether an allocator that will bring `heap_live` to `live` is below
    /// the line (owes sweeping).
    pub(crate) fn in_debt(&self, live: usize) -> bool {
        let basis_pages = self.pages_swept_basis.load(Acquire);
        let slope = f64::from_bits(self.pages_per_byte.load(Relaxed));
        if slope <= 0.0 {
            return false;
        }
        let live = live as u64;
        let basis = self.heap_live_basis.load(Relaxed);
        if live <= basis {
            return false;
        }
        let owed = ((live - basis) as f64 * slope).ceil() as u64;
        let target = basis_pages.saturating_add(owed);
        self.pages_swept.load(Relaxed) < target
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn debt_follows_the_line() {
        let p = ProportionalSweep::default();
        p.reset();
        // 1000 pages to sweep over 100 MiB - 1 MiB of allocation.
        p.set_goal(100 * MIB, 200 * MIB, 1000);
        assert!(!p.in_debt(100 * MIB), "at the basis nothing is owed");
        assert!(
            p.in_debt(150 * MIB),
            "half-way: ~505 pages owed, none swept"
        );
        p.add_pages_swept(506);
        assert!(!p.in_debt(150 * MIB));
        assert!(p.in_debt(199 * MIB));
        p.add_pages_swept(494);
        assert!(
            !p.in_debt(199 * MIB),
            "all swept by the trigger less the margin"
        );
    }

    /// Regression: the target was truncated, and `pages / distance *
    /// distance` is below `pages` in floating point for many pairs (2046
    /// pages over 7 MiB + 8 KiB, for one), so at the end of the line one
    /// page was owed to nobody and sweeping was not finished when heap_live
    /// reached the trigger.
    #[test]
    fn the_whole_heap_is_owed_at_the_end_of_the_line() {
        for pages in 1..3000usize {
            for distance in [99 * MIB, 7 * MIB + 8192, 12_345_678, 1023 * MIB] {
                let p = ProportionalSweep::default();
                let live = 64 * MIB;
                p.set_goal(live, live + distance + SWEEP_MIN_HEAP_DISTANCE, pages);
                p.add_pages_swept(pages - 1);
                assert!(
                    p.in_debt(live + distance),
                    "{pages} pages over {distance} bytes: the last page is not owed"
                );
                // Rounding up may owe one page more than the line when the
                // float error goes the other way; an allocator that finds
                // nothing left to sweep stops paying, so that costs
                // nothing. Never two.
                p.add_pages_swept(2);
                assert!(!p.in_debt(live + distance));
            }
        }
    }

    #[test]
    fn negative_debt_and_overflow_owe_nothing_or_everything_finitely() {
        let p = ProportionalSweep::default();
        p.set_goal(100 * MIB, 200 * MIB, 1000);
        assert!(!p.in_debt(0), "live below the basis owes nothing");
        assert!(p.in_debt(usize::MAX), "saturates instead of wrapping");
        p.set_goal(usize::MAX, usize::MAX, usize::MAX);
        assert!(!p.in_debt(usize::MAX - 1));
    }

    #[test]
    fn nothing_to_sweep_means_no_pacing() {
        let p = ProportionalSweep::default();
        p.set_goal(MIB, 2 * MIB, 0);
        assert!(!p.in_debt(usize::MAX / 2));
    }

    #[test]
    fn trigger_below_live_still_paces_finitely() {
        let p = ProportionalSweep::default();
        p.set_goal(300 * MIB, 200 * MIB, 10);
        // Distance clamps to one page: owe everything at once, finitely.
        assert!(p.in_debt(300 * MIB + 1));
        p.add_pages_swept(10);
        assert!(!p.in_debt(300 * MIB + 1));
    }
}
