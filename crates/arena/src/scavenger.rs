//! The scavenger: giving free pages' memory back to the OS.
//!
//! Scavenging a free page means `madvise(MADV_DONTNEED)` on it
//! ([`crate::os::release`]): its physical memory leaves the process at once,
//! and the next touch faults in a zero page. The page stays free and is
//! marked scavenged; an allocation that takes it gets memory that reads as
//! zero (`needzero` false if every page of the span was scavenged) and the
//! `released` count goes down. No allocated page is ever marked scavenged.
//!
//! # Highest address first
//!
//! The page allocator fills the heap from the bottom, so the top of the
//! heap is where free pages are most likely to stay free: the scavenger
//! releases from the top down, run by run (Go 1.14's `scavengeOne` order),
//! starting from an index below which all remaining candidates lie.
//!
//! # Without the lock
//!
//! The heap lock is held only to find a run and to mark it allocated (so
//! no one allocates it meanwhile), and again to put it back as free and
//! scavenged; the `madvise` itself, which can take tens of microseconds
//! for a large run, runs unlocked (Go 1.19's change to the same end).
//!
//! # The background scavenger
//!
//! A thread keeps the heap's retained memory (`sys - released`) near a goal
//! the layer above sets at run time ([`crate::PageHeap::set_scavenge_goal`];
//! the facade passes heap goal x 1.10, as Go 1.19 does). It paces itself
//! to a fraction of one CPU (default 1%, Go's figure) the way Go 1.19's
//! does: it works in small units of [`BG_UNIT_PAGES`] pages until it has
//! worked at least [`MIN_WORK_NS`], then sleeps `worked * (1 - f) / f`, so
//! that over any stretch of time it works a fraction `f` of it. Small units
//! keep each lock hold and each `madvise` short; the 1 ms batch keeps the
//! number of sleeps (and so timer and wake-up costs) low. Time comes from
//! the heap's [`crate::Clock`], so tests check the pacing with a fake clock.
//!
//! When retained memory is at or below the goal, or nothing is left to
//! scavenge, the thread parks and costs nothing. It is woken when the goal
//! changes, when an allocation consumes scavenged pages or a span is freed
//! while it is parked and retained memory is above the goal, and when it is
//! told to stop (it is stopped when the `PageHeap` is dropped). The wake-up
//! is a Dekker-style handshake: the thread sets `parked` and then re-checks
//! the condition; wakers change the counters and then read `parked`, both
//! with a `SeqCst` fence in between, so one of them always sees the other.

use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, fence};

use crate::clock::Wakeup;
use crate::config::PageHeapConfig;
use crate::error::ArenaError;
use crate::heap::{PageHeap, Shared};
use crate::os;
use crate::pagealloc::chunk::CHUNK_PAGES;
use crate::{PAGE_SHIFT, PAGE_SIZE};

/// Pages the background scavenger releases per lock hold: 64 KiB, Go's
/// unit. Small enough that one unit never delays an allocation noticeably,
/// large enough that the per-unit overhead (two lock holds, one system
/// call) stays a small part of the work.
pub const BG_UNIT_PAGES: usize = (64 << 10) / PAGE_SIZE;
/// The background scavenger works at least this long between sleeps (1 ms,
/// as Go's `minScavWorkTime`).
pub const MIN_WORK_NS: u64 = 1_000_000;

/// The scavenger's shared state.
pub(crate) struct ScavengerState {
    /// Retained-memory goal in bytes; `usize::MAX`: none.
    goal: AtomicUsize,
    /// Set to ask the thread to exit.
    stop: AtomicBool,
    /// The thread is parked (or about to), waiting for work.
    parked: AtomicBool,
    /// Wakes the thread from parking or from a pacing sleep.
    wakeup: Wakeup,
    /// Target share of one CPU.
    cpu_fraction: f64,
    /// Time spent working, by the heap's clock.
    pub(crate) work_ns: AtomicU64,
    /// Time spent sleeping for pacing.
    pub(crate) sleep_ns: AtomicU64,
    /// Pages released by the thread.
    pub(crate) released_pages: AtomicU64,
}

impl ScavengerState {
    pub(crate) fn new(config: &PageHeapConfig) -> ScavengerState {
        ScavengerState {
            goal: AtomicUsize::new(config.scavenge_goal_bytes),
            stop: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            wakeup: Wakeup::default(),
            cpu_fraction: config.scavenger_cpu_fraction,
            work_ns: AtomicU64::new(0),
            sleep_ns: AtomicU64::new(0),
            released_pages: AtomicU64::new(0),
        }
    }

    pub(crate) fn goal(&self) -> usize {
        self.goal.load(Relaxed)
    }
}

impl Shared {
    /// Releases up to `want` free pages, highest address first, in runs of
    /// at most `unit` pages. Returns the pages released.
    pub(crate) fn scavenge_pages(&self, want: usize, unit: usize) -> usize {
        let mut done = 0;
        while done < want {
            let (addr, n) = {
                let mut l = self.lock();
                let Some((addr, n)) = l
                    .pages
                    .scavenge_candidate(&self.arenas, unit.min(want - done))
                else {
                    break;
                };
                let scav = l.pages.alloc_range(&self.arenas, addr, n);
                debug_assert_eq!(scav, 0, "scavenge candidate had scavenged pages");
                l.scavenging_pages += n;
                (addr, n)
            };
            let ptr = std::ptr::NonNull::new(addr as *mut u8).expect("heap page at address 0");
            // SAFETY: the pages are Ready arena memory, free, and now marked
            // allocated in the bitmaps with no span or cache holding them,
            // so nobody reads or writes them until we put them back.
            let ok = unsafe { os::release(ptr, n << PAGE_SHIFT) }.is_ok();
            let mut l = self.lock();
            l.pages.free_range(&self.arenas, addr, n, ok);
            l.scavenging_pages -= n;
            drop(l);
            if !ok {
                self.counters.scavenge_errors.fetch_add(1, Relaxed);
                break;
            }
            self.counters.released_pages.fetch_add(n, Relaxed);
            self.counters
                .scav_released_pages
                .fetch_add(n as u64, Relaxed);
            done += n;
        }
        done
    }

    /// Retained bytes above the goal.
    fn over_goal(&self) -> usize {
        self.counters
            .retained_bytes()
            .saturating_sub(self.scav.goal())
    }

    /// Wakes the background scavenger if it is parked and there may be
    /// work (called after the counters changed).
    pub(crate) fn maybe_wake_scavenger(&self) {
        fence(SeqCst);
        if self.scav.parked.load(Relaxed) && self.over_goal() > 0 {
            self.scav.wakeup.notify();
        }
    }

    /// The background scavenger's loop.
    fn run_scavenger(&self) {
        let s = &self.scav;
        let clock = &*self.clock;
        while !s.stop.load(SeqCst) {
            if self.over_goal() == 0 {
                self.park();
                continue;
            }
            let start = clock.now_ns();
            let mut worked;
            let mut exhausted = false;
            loop {
                let over = self.over_goal();
                let n = if over == 0 {
                    0
                } else {
                    self.scavenge_pages(over.div_ceil(PAGE_SIZE).min(BG_UNIT_PAGES), BG_UNIT_PAGES)
                };
                s.released_pages.fetch_add(n as u64, Relaxed);
                worked = clock.now_ns().saturating_sub(start);
                if n == 0 {
                    exhausted = over > 0;
                    break;
                }
                if worked >= MIN_WORK_NS {
                    break;
                }
            }
            s.work_ns.fetch_add(worked, Relaxed);
            if exhausted {
                // Over the goal but nothing free to release: wait for a
                // free or a new goal.
                self.park();
                continue;
            }
            let f = s.cpu_fraction;
            let sleep = (worked as f64 * (1.0 - f) / f) as u64;
            if sleep > 0 {
                s.sleep_ns.fetch_add(sleep, Relaxed);
                clock.sleep_ns(sleep, &s.wakeup);
            }
        }
    }

    /// Parks until woken (see the module documentation for the handshake).
    fn park(&self) {
        let s = &self.scav;
        s.parked.store(true, Relaxed);
        fence(SeqCst);
        let work = self.over_goal() > 0 && {
            let mut l = self.lock();
            l.pages.has_scavenge_candidate(&self.arenas)
        };
        if !s.stop.load(SeqCst) && !work {
            s.wakeup.wait_timeout(None);
        }
        s.parked.store(false, Relaxed);
    }
}

impl PageHeap {
    /// Releases free pages to the OS, highest address first, until `bytes`
    /// (rounded up to whole pages) have been released or no free,
    /// unscavenged page is left. Returns the bytes released:
    /// `min(ceil(bytes / PAGE_SIZE), available) * PAGE_SIZE`. Pages held by
    /// page caches are not available.
    pub fn scavenge(&self, bytes: usize) -> usize {
        self.shared
            .scavenge_pages(bytes.div_ceil(PAGE_SIZE), CHUNK_PAGES)
            * PAGE_SIZE
    }

    /// Releases every free page (not held by a page cache) that is not
    /// released yet. Returns the bytes released.
    pub fn scavenge_all(&self) -> usize {
        self.shared.scavenge_pages(usize::MAX, CHUNK_PAGES) * PAGE_SIZE
    }

    /// Sets the background scavenger's goal: keep retained memory (`sys -
    /// released`) at or below `bytes` (`usize::MAX`: no goal). Wakes the
    /// scavenger if it is parked.
    pub fn set_scavenge_goal(&self, bytes: usize) {
        self.shared.scav.goal.store(bytes, Relaxed);
        self.shared.scav.wakeup.notify();
    }

    /// The current goal (`usize::MAX`: none).
    pub fn scavenge_goal(&self) -> usize {
        self.shared.scav.goal()
    }

    /// Starts the background scavenger thread (nothing happens if it is
    /// running).
    pub fn start_scavenger(&self) -> Result<(), ArenaError> {
        let mut h = self.scavenger_handle();
        if h.is_some() {
            return Ok(());
        }
        self.shared.scav.stop.store(false, SeqCst);
        let shared = Arc::clone(&self.shared);
        let t = std::thread::Builder::new()
            .name("spangc-scavenger".into())
            .spawn(move || shared.run_scavenger())
            .map_err(|e| ArenaError::Thread(e.to_string()))?;
        *h = Some(t);
        Ok(())
    }

    /// Stops the background scavenger thread and waits for it to exit
    /// (nothing happens if it is not running).
    pub fn stop_scavenger(&self) {
        let mut h = self.scavenger_handle();
        if let Some(t) = h.take() {
            self.shared.scav.stop.store(true, SeqCst);
            self.shared.scav.wakeup.notify();
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p);
            }
        }
    }

    /// Whether the background scavenger is parked (waiting for work).
    pub fn scavenger_parked(&self) -> bool {
        self.shared.scav.parked.load(SeqCst)
    }
}
