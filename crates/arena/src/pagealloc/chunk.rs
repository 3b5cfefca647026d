//! One chunk of the page allocator: 512 pages, an alloc bit and a scavenged
//! bit per page (Go's `pallocData`).
//!
//! The bits live in the arena record ([`crate::arena::HeapArena`]) as
//! atomics; the page allocator copies a chunk's 16 words into a
//! [`ChunkBits`] value, works on the copy with plain integer operations,
//! and stores back the words it changed. Keeping the algorithms on plain
//! `u64`s makes them easy to test exhaustively (see `test.rs`) and costs 16
//! loads, which is noise next to a summary update.
//!
//! Bit `i` of word `w` is page `64 * w + i` of the chunk. An alloc bit of 1
//! means the page is not available to the allocator (in a span, in a page
//! cache, or being scavenged). A scavenged bit of 1 means the page's memory
//! has been returned to the OS (or was never touched) and reads as zero; it
//! is only ever set on free pages.

use super::summary::Sum;

/// Pages per chunk. 512 pages of 8 KiB is 4 MiB, as in Go: small enough
/// that summarising a chunk is eight words of work, large enough that the
/// radix tree above it is shallow (five levels for 47 bits).
pub(crate) const CHUNK_PAGES: usize = 512;
/// log2 of [`CHUNK_PAGES`].
pub(crate) const LOG_CHUNK_PAGES: usize = 9;
/// 64-bit words per chunk bitmap.
pub(crate) const CHUNK_WORDS: usize = CHUNK_PAGES / 64;

/// The lowest `i` such that bits `i .. i + n` of `c` are all set, or 64 if
/// there is none. `n` is in `1..=64`.
///
/// Go's `findBitRange64`: shifting `c` right by `k` and AND-ing leaves a bit
/// set only where a run of `k + 1` ones starts, and doubling the shift each
/// round finds a run of `n` in `log2(n)` steps instead of `n`.
#[inline]
pub(crate) fn find_bit_range64(mut c: u64, n: u32) -> u32 {
    debug_assert!((1..=64).contains(&n));
    // Runs of length `k` are marked in `c`; we need `p` more shifts.
    let mut p = n - 1;
    let mut k = 1;
    while p > 0 {
        if p <= k {
            c &= c >> p;
            break;
        }
        c &= c >> k;
        if c == 0 {
            return 64;
        }
        p -= k;
        k *= 2;
    }
    c.trailing_zeros()
}

/// Set bits `i .. i + n` of a word (`i + n <= 64`).
#[inline]
fn word_mask(i: usize, n: usize) -> u64 {
    if n == 64 { !0 } else { ((1u64 << n) - 1) << i }
}

/// Calls `f(word_index, mask)` for each word touched by pages
/// `first .. first + n` of a chunk.
fn for_each_word(first: usize, n: usize, mut f: impl FnMut(usize, u64)) {
    let mut i = first;
    let end = first + n;
    while i < end {
        let w = i / 64;
        let b = i % 64;
        let len = (64 - b).min(end - i);
        f(w, word_mask(b, len));
        i += len;
    }
}

/// A copy of one chunk's bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct ChunkBits {
    pub(crate) alloc: [u64; CHUNK_WORDS],
    pub(crate) scav: [u64; CHUNK_WORDS],
}

impl ChunkBits {
    /// The chunk's summary: free pages at the start, the longest free run,
    /// free pages at the end.
    pub(crate) fn summarize(&self) -> Sum {
        let mut start = 0;
        let mut run = 0; // free pages ending at the current position
        let mut max = 0;
        let mut in_prefix = true;
        for &w in &self.alloc {
            if w == 0 {
                run += 64;
                if in_prefix {
                    start += 64;
                }
                continue;
            }
            let tz = w.trailing_zeros() as usize;
            if in_prefix {
                start += tz;
                in_prefix = false;
            }
            max = max.max(run + tz);
            // A run strictly inside the word can only beat `max` if the
            // word has more free pages than `max`.
            let free = !w;
            if free.count_ones() as usize > max {
                max = max.max(longest_run(free >> tz));
            }
            run = w.leading_zeros() as usize;
        }
        max = max.max(run);
        Sum::pack(start, max, run)
    }

    /// The first page index `>= from` starting `npages` free pages, or
    /// `None`. Address-ordered first fit within the chunk; `npages <=
    /// CHUNK_PAGES`.
    pub(crate) fn find(&self, npages: usize, from: usize) -> Option<usize> {
        debug_assert!((1..=CHUNK_PAGES).contains(&npages) && from < CHUNK_PAGES);
        let mut size = 0; // free pages in the run ending at the current word
        let mut run_start = 0;
        for wi in from / 64..CHUNK_WORDS {
            let mut w = self.alloc[wi];
            if wi == from / 64 {
                // Pages below `from` are treated as allocated.
                w |= (1u64 << (from % 64)) - 1;
            }
            if w == !0 {
                size = 0;
                continue;
            }
            let tz = w.trailing_zeros() as usize;
            if size == 0 {
                run_start = wi * 64;
            }
            if size + tz >= npages {
                return Some(run_start);
            }
            if npages <= 64 {
                let i = find_bit_range64(!w, npages as u32);
                if i < 64 {
                    return Some(wi * 64 + i as usize);
                }
            }
            if w == 0 {
                size += 64;
            } else {
                size = w.leading_zeros() as usize;
                run_start = wi * 64 + 64 - size;
            }
        }
        None
    }

    /// Marks pages `first .. first + n` allocated and not scavenged, and
    /// returns how many of them were scavenged. Panics if any was already
    /// allocated (the summaries said they were free: a page allocator bug).
    pub(crate) fn alloc_range(&mut self, first: usize, n: usize) -> usize {
        let mut scav = 0;
        for_each_word(first, n, |w, m| {
            assert!(
                self.alloc[w] & m == 0,
                "page allocator: allocating pages already allocated (chunk word {w}: {:#x} & {m:#x})",
                self.alloc[w]
            );
            self.alloc[w] |= m;
            scav += (self.scav[w] & m).count_ones() as usize;
            self.scav[w] &= !m;
        });
        scav
    }

    /// Marks pages `first .. first + n` free; `scavenged` says whether their
    /// memory was released. Panics if any was already free (a double free).
    pub(crate) fn free_range(&mut self, first: usize, n: usize, scavenged: bool) {
        for_each_word(first, n, |w, m| {
            assert!(
                self.alloc[w] & m == m,
                "page allocator: freeing pages that are already free (chunk word {w}: {:#x}, freeing {m:#x})",
                self.alloc[w]
            );
            self.alloc[w] &= !m;
            if scavenged {
                self.scav[w] |= m;
            }
        });
    }

    /// Number of free pages.
    pub(crate) fn free_pages(&self) -> usize {
        self.alloc.iter().map(|w| w.count_zeros() as usize).sum()
    }

    /// The highest run of free, unscavenged pages lying entirely below page
    /// `below` (`<= CHUNK_PAGES`), at most `max` pages long (taking the
    /// top of a longer run): `(first, n)`.
    pub(crate) fn scavenge_candidate(&self, below: usize, max: usize) -> Option<(usize, usize)> {
        // Free, unscavenged pages of word `wi` below `below`.
        let cand = |wi: usize| {
            let usable = below.saturating_sub(wi * 64).min(64);
            if usable == 0 {
                0
            } else {
                !self.alloc[wi] & !self.scav[wi] & word_mask(0, usable)
            }
        };
        let mut wi = below.div_ceil(64);
        let (top_word, top_bit) = loop {
            if wi == 0 {
                return None;
            }
            wi -= 1;
            let c = cand(wi);
            if c != 0 {
                break (wi, 63 - c.leading_zeros() as usize);
            }
        };
        // The run ends at `top` (inclusive); extend it downwards.
        let top = top_word * 64 + top_bit;
        let mut first = top;
        while first > 0 && top + 1 - first < max {
            let p = first - 1;
            if cand(p / 64) & (1 << (p % 64)) == 0 {
                break;
            }
            first = p;
        }
        Some((first, top + 1 - first))
    }
}

/// The longest run of set bits in `x`.
fn longest_run(mut x: u64) -> usize {
    let mut n = 0;
    while x != 0 {
        x &= x >> 1;
        n += 1;
    }
    n
}
