//! Time, as an input.
//!
//! The background scavenger paces itself by measuring how long its work
//! took and sleeping in proportion. Reading the time through the [`Clock`]
//! trait lets tests replace it with a [`FakeClock`] and check the pacing
//! exactly, without depending on how busy the machine is.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A source of time for the page heap (the scavenger's pacing and the
/// spans' `unused_since` stamps).
pub trait Clock: Send + Sync + 'static {
    /// Nanoseconds since an arbitrary origin; never decreases.
    fn now_ns(&self) -> u64;

    /// A cheaper reading of the same clock that may lag [`Clock::now_ns`]
    /// by a few milliseconds, for stamps on hot paths (a freed span's
    /// `unused_since`). Defaults to `now_ns`.
    fn coarse_now_ns(&self) -> u64 {
        self.now_ns()
    }

    /// Waits for `ns` nanoseconds of this clock's time, or until `wakeup`
    /// is signalled, whichever comes first.
    fn sleep_ns(&self, ns: u64, wakeup: &Wakeup);
}

/// The real, monotonic clock (`CLOCK_MONOTONIC`; its coarse reading is
/// `CLOCK_MONOTONIC_COARSE`, about 5 ns instead of about 20 through the
/// vDSO, with the kernel tick's resolution).
#[derive(Debug)]
pub struct RealClock {
    origin_ns: u64,
}

fn monotonic_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime writes only
    // it. Both clock ids exist on every Linux since 2.6.32.
    let r = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(r, 0, "clock_gettime failed");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl RealClock {
    /// A clock whose origin is now.
    pub fn new() -> RealClock {
        RealClock {
            origin_ns: monotonic_ns(libc::CLOCK_MONOTONIC),
        }
    }
}

impl Default for RealClock {
    fn default() -> Self {
        RealClock::new()
    }
}

impl Clock for RealClock {
    fn now_ns(&self) -> u64 {
        monotonic_ns(libc::CLOCK_MONOTONIC).saturating_sub(self.origin_ns)
    }

    fn coarse_now_ns(&self) -> u64 {
        monotonic_ns(libc::CLOCK_MONOTONIC_COARSE).saturating_sub(self.origin_ns)
    }

    fn sleep_ns(&self, ns: u64, wakeup: &Wakeup) {
        wakeup.wait_timeout(Some(Duration::from_nanos(ns)));
    }
}

/// A clock for tests: time moves only when told. Each [`Clock::now_ns`]
/// call advances it by `tick_ns` (modelling the time work takes between two
/// readings; [`Clock::coarse_now_ns`] does not tick), and
/// [`Clock::sleep_ns`] advances it by the time slept and returns at once.
#[derive(Debug)]
pub struct FakeClock {
    now: AtomicU64,
    tick_ns: u64,
    slept_ns: AtomicU64,
}

impl FakeClock {
    /// A clock at time 0 that advances `tick_ns` per reading.
    pub fn new(tick_ns: u64) -> FakeClock {
        FakeClock {
            now: AtomicU64::new(0),
            tick_ns,
            slept_ns: AtomicU64::new(0),
        }
    }

    /// Moves time forward.
    pub fn advance(&self, ns: u64) {
        self.now.fetch_add(ns, Relaxed);
    }

    /// Total time spent in `sleep_ns`.
    pub fn slept_ns(&self) -> u64 {
        self.slept_ns.load(Relaxed)
    }
}

impl Clock for FakeClock {
    fn now_ns(&self) -> u64 {
        self.now.fetch_add(self.tick_ns, Relaxed)
    }

    /// The current time, without ticking (stamps are not work).
    fn coarse_now_ns(&self) -> u64 {
        self.now.load(Relaxed)
    }

    fn sleep_ns(&self, ns: u64, _wakeup: &Wakeup) {
        self.now.fetch_add(ns, Relaxed);
        self.slept_ns.fetch_add(ns, Relaxed);
        // Let other threads (the test driving the heap) run.
        std::thread::yield_now();
    }
}

/// A sticky wake-up signal: [`Wakeup::notify`] before a wait makes that
/// wait return at once, so a notification is never lost between a check
/// and a wait.
#[derive(Debug, Default)]
pub struct Wakeup {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl Wakeup {
    /// Wakes the waiter (or the next one to wait).
    pub fn notify(&self) {
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Waits until notified, or until `timeout` passes if given. Consumes
    /// the notification.
    pub fn wait_timeout(&self, timeout: Option<Duration>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = timeout.map(|t| Instant::now() + t);
        while !*pending {
            match deadline {
                None => pending = self.cv.wait(pending).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    pending = self
                        .cv
                        .wait_timeout(pending, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        *pending = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_ticks_and_sleeps() {
        let c = FakeClock::new(5);
        assert_eq!(c.now_ns(), 0);
        assert_eq!(c.now_ns(), 5);
        c.sleep_ns(100, &Wakeup::default());
        assert_eq!(c.now_ns(), 110);
        assert_eq!(c.slept_ns(), 100);
    }

    #[test]
    fn wakeup_is_sticky_and_times_out() {
        let w = Wakeup::default();
        w.notify();
        w.wait_timeout(None); // returns at once
        let t = Instant::now();
        w.wait_timeout(Some(Duration::from_millis(20)));
        assert!(t.elapsed() >= Duration::from_millis(20));
        let r = RealClock::new();
        let a = r.now_ns();
        r.sleep_ns(1_000_000, &w);
        assert!(r.now_ns() - a >= 1_000_000);
        // The coarse clock lags by at most a few kernel ticks.
        let (fine, coarse) = (r.now_ns(), r.coarse_now_ns());
        assert!(coarse <= fine + 1_000 && fine - coarse.min(fine) < 50_000_000);
    }
}
