//! Sweeping one span (the seed's `mspan.sweep`).
//!
//! With the span's claim held ([`SweepClaim`]):
//!
//! 1. **Zombie check.** A mark bit on a slot that was free when marking
//!    began means someone kept a pointer to a freed object. Found word by
//!    word as `mark & !allocated`; panics with the span, slot and address.
//!    It costs one AND per bitmap word, so it always runs.
//! 2. **Dead objects** are `allocated & !mark` (allocated = alloc bit set,
//!    or below `free_index`). Only if the span's type needs a free hook
//!    (drop glue), or the heap poisons freed memory (verify mode), are
//!    they visited one by one; otherwise sweeping costs O(bitmap words),
//!    not O(objects). The hook may keep a dead object for now (the facade
//!    does when its destructor must run on another thread first): the
//!    sweeper then sets its mark bit, so it stays allocated, and counts it
//!    live.
//! 3. **Bits.** The mark bits become the alloc bits; the span gets fresh
//!    zeroed mark bits from the gcBits `next` epoch; `free_index` goes to
//!    0, `alloc_count` to the marked count, `alloc_cache` is refilled.
//!    Freed slots are dirty, so `needzero` is set. A span left empty that
//!    goes back to the page heap skips this step (its bitmaps are simply
//!    dropped), unless it is kept (see below).
//! 4. **Disposal** ([`Dispose`]): an empty span goes back to the page heap;
//!    a large-object span whose object died likewise; others go to their
//!    central's swept partial or full set (or the heap's large swept set).
//!    The claim is released (`sweepgen = h`) *before* the span is pushed, so
//!    whoever pops it sees it swept.
//!
//! # Empty spans ([`Empty`])
//!
//! A refill that sweeps a span for its cache keeps it whatever it holds
//! (the seed's `preserve`). Other sweepers keep an empty small-object
//! span in its central for reuse when its objects died in the last cycle
//! (it was allocated from, so its class is likely to want it again) and
//! the heap allows it ([`Mheap::set_reuse_empty_spans`]: the facade turns
//! it off when the memory limit sets the goal, and while
//! `release_memory` sweeps, and then frees the kept ones with
//! [`Mheap::free_kept_empty_spans`]); an empty span that nobody allocated
//! from for a whole cycle, and every empty span the page reclaimer
//! sweeps, go back to the page heap. docs/sweep.md has the costs. Go
//! frees every empty span; reusing them spares a
//! page-heap free and a page-heap allocation (summary updates, a fresh
//! span record and bitmaps) per span in the steady state of a heap that
//! allocates and drops one size class, at the cost of holding a cycle's
//! worth of empty spans at most: binary-trees depth 21 on `spangc-2`,
//! eight interleaved pairs, median 5.11 -> 4.87 s, peak RSS unchanged
//! (161 MiB).

use crate::central::Central;
use crate::mheap::Mheap;
use crate::sweepgen::SweepClaim;
use spangc_arena::span::Span;
use spangc_gcbits::SpanBits;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Byte written over freed objects in verify mode (as Go's `0xdeadbeef`
/// habit; a pointer made of it faults on x86-64).
pub const POISON: u8 = 0xdb;

/// Who is sweeping (for the stats: sweep time by who swept; each party
/// times its own loop, so sweeping a span reads no clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    Background,
    Alloc,
    Proportional,
    Reclaim,
    Finish,
    Uncache,
}

/// What a sweeper does with a span it finds empty (see "Empty spans").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Empty {
    /// Keep it: a refill sweeping the span for its cache.
    Keep,
    /// Keep it in its central if its objects died in the last cycle and
    /// the heap allows it; else free it.
    Reuse,
    /// Free it: the page reclaimer, sweeping to free pages.
    Free,
}

/// What to do with a span after sweeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dispose {
    /// No object survived: return the pages.
    Free,
    /// Some slots are free.
    KeepPartial,
    /// Every slot is allocated.
    KeepFull,
}

/// A bitmap as atomic words.
fn words(bits: *mut u64, nelems: u32) -> &'static [std::sync::atomic::AtomicU64] {
    assert!(!bits.is_null(), "sweeping a span without bitmaps");
    let n = spangc_gcbits::bitmap_words(nelems);
    // Bitmaps installed on spans come from the heap's GcBitsArenas and stay
    // mapped while the heap lives, which outlives every sweep (the 'static
    // here never escapes a sweep call).
    // SAFETY: `bits` is such a bitmap: `n` words for `nelems`, 8-byte
    // aligned, only accessed atomically.
    unsafe { std::slice::from_raw_parts(bits as *const AtomicU64, n) }
}

/// Mask of slots `[64 * w, 64 * w + 64)` that are below `limit`.
fn below(limit: u32, w: usize) -> u64 {
    let lo = 64 * w as u32;
    match limit.saturating_sub(lo) {
        0 => 0,
        n if n >= 64 => !0,
        n => (1u64 << n) - 1,
    }
}

impl Mheap {
    /// Sweeps the claimed span (steps 1-3 of the module docs) and says
    /// what to do with it; the caller disposes of it ([`Mheap::dispose`])
    /// or hands it to a cache. `central` is the span's central (`None` for
    /// a large span); `empty` says whether an empty span is kept (see
    /// "Empty spans": a kept one comes back as `KeepPartial`) or goes back
    /// to the page heap (`Free`, its bitmaps not renewed).
    pub(crate) fn sweep_span(
        &self,
        claim: &SweepClaim<'_>,
        central: Option<&Central>,
        empty: Empty,
    ) -> Dispose {
        let span = claim.span();
        let nelems = span.nelems();
        let free_index = span.free_index();
        let alloc = words(span.alloc_bits(), nelems);
        let mark = words(span.gcmark_bits(), nelems);
        if self.page_heap().has_page_special(span) {
            let resurrected = self.hooks.sweep_specials(self.page_heap(), span);
            self.add_heap_live(resurrected as usize * span.elem_size());
        }

        // 1. Zombies, and 2. dead objects.
        let tag = span.type_tag();
        let hook = self.hooks.needs_free_hook(tag);
        let visit = self.poison || hook;
        let mut nfreed = 0u32;
        let mut nalloc = 0u32;
        let mut kept = 0u32;
        for w in 0..alloc.len() {
            let valid = below(nelems, w);
            let allocated = (alloc[w].load(Relaxed) | below(free_index, w)) & valid;
            let marked = mark[w].load(Relaxed) & valid;
            let zombies = marked & !allocated;
            if zombies != 0 {
                zombie(span, 64 * w + zombies.trailing_zeros() as usize);
            }
            nalloc += marked.count_ones();
            let mut dead = allocated & !marked;
            nfreed += dead.count_ones();
            if visit {
                while dead != 0 {
                    let i = 64 * w + dead.trailing_zeros() as usize;
                    dead &= dead - 1;
                    if !self.free_object(span, tag, hook, i) {
                        // The hook keeps the object (its destructor must
                        // run elsewhere first): its mark bit, which we may
                        // set while we hold the claim, becomes an alloc bit.
                        span.set_marked(i);
                        kept += 1;
                    }
                }
            }
        }
        if kept > 0 {
            nalloc += kept;
            nfreed -= kept;
            self.add_heap_live(kept as usize * span.elem_size());
        }
        self.note_swept(span, central, nfreed);
        if nalloc == 0 {
            let keep = match empty {
                Empty::Keep => true,
                Empty::Reuse => central.is_some() && nfreed > 0 && self.reuse_empty_spans(),
                Empty::Free => false,
            };
            if !keep {
                return Dispose::Free;
            }
        }

        // 3. Mark bits become alloc bits; fresh mark bits.
        let fresh = self.bits.new_mark_bits(nelems).unwrap_or_else(|e| {
            panic!("spangc: out of memory for mark bits while sweeping {span}: {e}")
        });
        // Both bitmaps come from this heap's GcBitsArenas and are sized for
        // `nelems`; the old mark bits (now alloc bits) were handed out
        // within the last two epochs, so they stay valid until the next
        // sweep of this span replaces them.
        // SAFETY: we hold the claim, so we own the span's allocation state.
        unsafe {
            span.set_alloc_bits(span.gcmark_bits());
            span.set_gcmark_bits(fresh.as_ptr());
        }
        span.set_free_index(0);
        span.set_alloc_count(nalloc);
        span.init_alloc_cache();
        if nfreed > 0 {
            span.set_needzero(true);
        }
        if nalloc == nelems {
            Dispose::KeepFull
        } else {
            Dispose::KeepPartial
        }
    }

    /// Runs the free hook on slot `i` (if `hook`: the type has one) and
    /// poisons it (in verify mode). Returns `false` if the hook keeps the
    /// object (nothing is poisoned then).
    fn free_object(&self, span: &Span, tag: usize, hook: bool, i: usize) -> bool {
        let addr = span.slot_addr(i);
        // SAFETY: slot addresses of an in-use span are non-null.
        let p = unsafe { NonNull::new_unchecked(addr as *mut u8) };
        if hook {
            let abort = AbortOnUnwind;
            let freed = self.hooks.free_object(tag, p);
            std::mem::forget(abort);
            if !freed {
                return false;
            }
        }
        if self.poison {
            // SAFETY: the object is dead and its destructor has run;
            // nobody may read it again (a zombie read would see poison),
            // and the slot lies inside the span's pages.
            unsafe { std::ptr::write_bytes(p.as_ptr(), POISON, span.elem_size()) };
        }
        true
    }

    /// Step 4: releases the claim and puts the span where it belongs
    /// (`central` as for [`Mheap::sweep_span`]).
    pub(crate) fn dispose(&self, claim: SweepClaim<'_>, d: Dispose, central: Option<&Central>) {
        let span = claim.span();
        let h = claim.generation();
        if d == Dispose::Free {
            claim.release_freed();
            self.free_span(span, central);
            return;
        }
        claim.release_swept();
        match central {
            Some(c) => c.push_swept(span, h),
            None => self.large_swept(h).push(span),
        }
    }
}

/// Aborts the process if dropped, which happens only while unwinding out
/// of a free hook (see [`SweepHooks::free_object`](crate::SweepHooks::free_object)):
/// the sweeper holds a claim it cannot give back halfway.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        eprintln!("spangc: a free hook panicked while sweeping; aborting");
        std::process::abort();
    }
}

/// The zombie check's report (out of line: it never happens in a correct
/// program).
#[cold]
#[inline(never)]
fn zombie(span: &Span, i: usize) -> ! {
    panic!(
        "spangc: found a pointer to a free object (zombie): slot {i} at {:#x} of {span} \
         was free when marking began but is marked",
        span.slot_addr(i)
    );
}

/// Number of allocated slots of a span not held by a cache: alloc bits,
/// plus every slot below `free_index`.
pub(crate) fn allocated_count(span: &Span) -> u32 {
    let nelems = span.nelems();
    let free_index = span.free_index();
    let alloc = words(span.alloc_bits(), nelems);
    (0..alloc.len())
        .map(|w| ((alloc[w].load(Relaxed) | below(free_index, w)) & below(nelems, w)).count_ones())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_masks() {
        assert_eq!(below(0, 0), 0);
        assert_eq!(below(3, 0), 0b111);
        assert_eq!(below(64, 0), !0);
        assert_eq!(below(64, 1), 0);
        assert_eq!(below(70, 1), 0b111111);
        assert_eq!(below(1024, 15), !0);
    }
}
