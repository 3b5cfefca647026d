//! The verifier: re-derives the page heap's state with a slow walk.
//!
//! [`PageHeap::verify`] takes the heap lock and checks, from scratch:
//!
//! * the page allocator: every chunk summary equals its bits, every summary
//!   above equals the merge of its children, summaries outside the heap are
//!   empty, no allocated page is marked scavenged, no free page lies below
//!   the search hint, no free unscavenged page above the scavenge index;
//! * the span map: walking every page of every arena in address order,
//!   each live span (`InUse` or `Manual`, found at its first page) has every
//!   page mapped to it and allocated in the bitmaps, spans do not overlap,
//!   `page_in_use` is set exactly on first pages of in-use spans, in-use
//!   spans have a real `sweepgen` and sane identity fields;
//! * the accounting: in-use and manual pages counted by the walk equal the
//!   counters, released pages equal scavenged bits plus the page caches'
//!   share, and `released <= idle`;
//! * the span pool: every free record is `Dead` with `SWEEPGEN_DEAD`.
//!
//! It is meant for tests and for the layers' verify mode, at quiescent
//! points: concurrent allocation through page caches (which takes no lock)
//! would make the counters disagree with the walk for a moment.

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;

use crate::heap::PageHeap;
use crate::pagealloc::PageAlloc;
use crate::pagealloc::chunk::CHUNK_PAGES;
use crate::span::{SWEEPGEN_DEAD, Span, SpanState};
use crate::{ARENA_SIZE, HeapArena, PAGE_SHIFT, PAGE_SIZE, PAGES_PER_ARENA};

/// What [`PageHeap::verify`] found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError(pub String);

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "page heap verification failed: {}", self.0)
    }
}

impl std::error::Error for VerifyError {}

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(VerifyError(format!($($fmt)*)));
        }
    };
}

impl PageHeap {
    /// Re-derives the heap's state with a slow walk and returns the first
    /// inconsistency. See the `verify` module documentation for what is
    /// checked. Takes the heap lock; call it at a quiescent point.
    pub fn verify(&self) -> Result<(), VerifyError> {
        let shared = &self.shared;
        let l = shared.lock();
        l.pages.verify(&shared.arenas).map_err(VerifyError)?;
        let bases = l.pages.arena_bases();
        let c = &shared.counters;
        let sys = c.sys_pages.load(Relaxed);
        ensure!(
            bases.len() == shared.arenas.len() && sys == bases.len() * PAGES_PER_ARENA,
            "{} arenas in the allocator, {} in the table, sys {sys} pages",
            bases.len(),
            shared.arenas.len()
        );
        let mut in_use = 0;
        let mut manual = 0;
        let mut free = 0;
        let mut scavenged = 0;
        // The live span covering pages up to `covered_until`.
        let mut current: Option<&Span> = None;
        let mut covered_until = 0;
        for (k, &base) in bases.iter().enumerate() {
            let arena = shared
                .arenas
                .arena_of(base)
                .ok_or_else(|| VerifyError(format!("arena {base:#x} not in the table")))?;
            ensure!(
                arena.base() == base,
                "arena record for {base:#x} says {:#x}",
                arena.base()
            );
            if covered_until > base {
                ensure!(
                    k > 0 && bases[k - 1] + ARENA_SIZE == base,
                    "a span runs past arena {:#x} into a non-adjacent one",
                    bases[k - 1]
                );
            }
            for ci in 0..PAGES_PER_ARENA / CHUNK_PAGES {
                let bits =
                    PageAlloc::load_chunk(&shared.arenas, (base >> PAGE_SHIFT) / CHUNK_PAGES + ci);
                for q in 0..CHUNK_PAGES {
                    let p = ci * CHUNK_PAGES + q;
                    let addr = base + (p << PAGE_SHIFT);
                    let allocated = bits.alloc[q / 64] & (1 << (q % 64)) != 0;
                    let scav = bits.scav[q / 64] & (1 << (q % 64)) != 0;
                    let in_use_bit = HeapArena::test_bit(arena.page_in_use_bits(), p);
                    let entry = arena.span_at_page(p);
                    if addr < covered_until {
                        let s = current.expect("covered by a span");
                        ensure!(
                            entry.is_some_and(|e| std::ptr::eq(e, s)),
                            "page {addr:#x} inside {s} maps to {}",
                            entry.map_or("nothing".to_string(), |e| e.to_string())
                        );
                        ensure!(allocated, "page {addr:#x} of {s} is free in the bitmaps");
                        ensure!(!in_use_bit, "page_in_use set on page {addr:#x} inside {s}");
                        continue;
                    }
                    let live = entry.filter(|s| {
                        s.start() == addr
                            && matches!(s.state(), SpanState::InUse | SpanState::Manual)
                    });
                    match live {
                        Some(s) => {
                            check_span(s)?;
                            ensure!(allocated, "first page of {s} is free in the bitmaps");
                            let is_in_use = s.state() == SpanState::InUse;
                            ensure!(
                                in_use_bit == is_in_use,
                                "page_in_use is {in_use_bit} on the first page of {s}"
                            );
                            if is_in_use {
                                in_use += s.npages();
                            } else {
                                manual += s.npages();
                            }
                            current = Some(s);
                            covered_until = s.end();
                        }
                        None => {
                            ensure!(
                                !in_use_bit,
                                "page_in_use set on page {addr:#x} with no span"
                            );
                            if !allocated {
                                free += 1;
                                scavenged += scav as usize;
                            }
                        }
                    }
                }
            }
        }
        ensure!(
            covered_until <= bases.last().map_or(0, |b| b + ARENA_SIZE),
            "a span runs past the end of the heap"
        );
        let counted_in_use = c.in_use_pages.get();
        let counted_manual = c.manual_pages.load(Relaxed);
        ensure!(
            in_use == counted_in_use,
            "in-use spans hold {in_use} pages, the counter says {counted_in_use}"
        );
        ensure!(
            manual == counted_manual,
            "manual spans hold {manual} pages, the counter says {counted_manual}"
        );
        ensure!(
            in_use + manual + free <= sys,
            "{in_use} in-use + {manual} manual + {free} free pages > {sys} pages"
        );
        // Allocated pages outside spans are in page caches or being
        // scavenged.
        let held = sys - in_use - manual - free;
        ensure!(
            held >= l.scavenging_pages,
            "{held} allocated pages outside spans but {} being scavenged",
            l.scavenging_pages
        );
        let released = c.released_pages.load(Relaxed);
        let cached_released = c.cached_released_pages.load(Relaxed);
        ensure!(
            released == scavenged + cached_released,
            "released counter {released} pages, bitmaps hold {scavenged} scavenged free pages and caches {cached_released}"
        );
        ensure!(
            cached_released <= held - l.scavenging_pages,
            "caches hold {cached_released} released pages but only {} pages",
            held - l.scavenging_pages
        );
        let idle = sys - in_use - manual;
        ensure!(released <= idle, "released {released} pages > idle {idle}");
        for r in l.pool.free_records() {
            ensure!(
                r.state() == SpanState::Dead && r.sweepgen().load(Relaxed) == SWEEPGEN_DEAD,
                "pooled record is live: {r}"
            );
        }
        Ok(())
    }
}

/// Identity checks of one live span.
fn check_span(s: &Span) -> Result<(), VerifyError> {
    let bytes = s.npages() * PAGE_SIZE;
    ensure!(s.npages() > 0, "span of zero pages: {s}");
    ensure!(s.limit() <= s.start() + bytes, "limit past the end: {s}");
    if s.state() == SpanState::InUse {
        ensure!(
            s.sweepgen().load(Relaxed) != SWEEPGEN_DEAD,
            "in-use span with a dead sweepgen: {s}"
        );
        ensure!(
            s.nelems() as usize * s.elem_size() <= bytes
                && s.start() + s.nelems() as usize * s.elem_size() == s.limit(),
            "slots do not fit: {s}"
        );
    }
    Ok(())
}
