//! Packed summaries and the geometry of the radix tree.
//!
//! A summary describes the free pages of a power-of-two range of pages with
//! three numbers: free pages at the start, the longest free run, free pages
//! at the end (Go's `pallocSum`). Summaries of adjacent ranges merge into
//! the summary of their union without looking at the pages, which is what
//! makes the radix tree work: level 4 has one summary per chunk (512 pages),
//! and each level above has one summary per 8 entries of the level below,
//! up to level 0 whose entries cover 2^21 pages (16 GiB) each.
//!
//! Each field needs up to 21 bits (level 0's full value is 2^21, one too
//! many), so a summary packs into a `u64` as `start | max << 21 | end << 42`
//! and the value "completely free at level 0" (all three fields 2^21) is
//! encoded as bit 63 alone, as Go does. A zero word means "no free page",
//! which is also what never-touched OS memory reads as, so summaries of
//! address space outside the heap need no initialisation.
//!
//! Fan-out 8 (3 bits per level) is Go's choice: a search reads at most 8
//! summaries (one cache line) per level, and five levels cover the 47-bit
//! address space. Wider levels would make each step's scan longer; narrower
//! ones would add levels and dependent loads.

use super::chunk::{CHUNK_PAGES, LOG_CHUNK_PAGES};
use crate::PAGE_SHIFT;
use crate::arena::ADDR_BITS;

/// Levels of the radix tree; level `LEVELS - 1` has one entry per chunk.
pub(crate) const LEVELS: usize = 5;
/// log2 of the fan-out between levels.
pub(crate) const LEVEL_BITS: usize = 3;
/// log2 of the bytes in a chunk.
pub(crate) const LOG_CHUNK_BYTES: usize = LOG_CHUNK_PAGES + PAGE_SHIFT;
/// Chunks in the address space.
pub(crate) const CHUNK_COUNT: usize = 1 << (ADDR_BITS - LOG_CHUNK_BYTES);
/// The largest value a summary field can hold: the pages under one level-0
/// entry.
pub(crate) const MAX_PACKED: usize = CHUNK_PAGES << (LEVEL_BITS * (LEVELS - 1));
const LOG_MAX_PACKED: u32 = MAX_PACKED.trailing_zeros();
const FIELD_MASK: u64 = (1 << LOG_MAX_PACKED) - 1;
const ALL_FREE_BIT: u64 = 1 << 63;

/// log2 of the chunks under one entry of level `l`.
#[inline]
pub(crate) const fn level_shift(l: usize) -> usize {
    LEVEL_BITS * (LEVELS - 1 - l)
}

/// Pages under one entry of level `l`.
#[inline]
pub(crate) const fn entry_pages(l: usize) -> usize {
    CHUNK_PAGES << level_shift(l)
}

/// Entries in level `l`.
#[inline]
pub(crate) const fn level_len(l: usize) -> usize {
    CHUNK_COUNT >> level_shift(l)
}

/// The index at level `l` of the entry containing `addr`.
#[inline]
pub(crate) const fn level_index(l: usize, addr: usize) -> usize {
    addr >> (LOG_CHUNK_BYTES + level_shift(l))
}

/// A packed summary. See the module documentation.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Sum(pub(crate) u64);

impl Sum {
    /// No free page.
    pub(crate) const NONE: Sum = Sum(0);

    pub(crate) fn pack(start: usize, max: usize, end: usize) -> Sum {
        debug_assert!(start <= max && end <= max && max <= MAX_PACKED);
        if max == MAX_PACKED {
            debug_assert!(start == max && end == max);
            return Sum(ALL_FREE_BIT);
        }
        Sum(start as u64 | (max as u64) << LOG_MAX_PACKED | (end as u64) << (2 * LOG_MAX_PACKED))
    }

    /// A summary of `pages` free pages.
    pub(crate) fn free(pages: usize) -> Sum {
        Sum::pack(pages, pages, pages)
    }

    #[inline]
    pub(crate) fn start(self) -> usize {
        if self.0 & ALL_FREE_BIT != 0 {
            MAX_PACKED
        } else {
            (self.0 & FIELD_MASK) as usize
        }
    }

    #[inline]
    pub(crate) fn max(self) -> usize {
        if self.0 & ALL_FREE_BIT != 0 {
            MAX_PACKED
        } else {
            (self.0 >> LOG_MAX_PACKED & FIELD_MASK) as usize
        }
    }

    #[inline]
    pub(crate) fn end(self) -> usize {
        if self.0 & ALL_FREE_BIT != 0 {
            MAX_PACKED
        } else {
            (self.0 >> (2 * LOG_MAX_PACKED) & FIELD_MASK) as usize
        }
    }

    /// The summary of consecutive ranges of `child_pages` pages each.
    pub(crate) fn merge(children: impl IntoIterator<Item = Sum>, child_pages: usize) -> Sum {
        let mut start = 0;
        let mut in_prefix = true;
        let mut max = 0;
        let mut run = 0; // free pages ending at the end of the last child
        for c in children {
            let s = c.start();
            if in_prefix {
                start += s;
                in_prefix = s == child_pages;
            }
            max = max.max(c.max()).max(run + s);
            run = if s == child_pages { run + s } else { c.end() };
        }
        Sum::pack(start, max.max(run), run)
    }
}

impl std::fmt::Debug for Sum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sum({}, {}, {})", self.start(), self.max(), self.end())
    }
}
