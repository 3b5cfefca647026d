//! The background sweeper: a thread that sweeps one span at a time between
//! collections, so that little sweeping is left for allocation.
//!
//! It parks on a condition variable until a generation starts
//! ([`Background::wake`] from `finish_mark`), then sweeps spans until none
//! is left. Between spans it yields the CPU to other threads, but not after
//! every span: `sched_yield` costs a few hundred nanoseconds, more than
//! sweeping a dead span of a type without destructors, so it yields once
//! per [`YIELD_EVERY`] of sweeping instead.
//!
//! The thread holds only a `Weak` reference to the heap (upgraded per
//! batch), so it never keeps the heap alive; `stop` joins it.

use crate::mheap::Mheap;
use crate::sweep::Who;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Sweeping time between yields.
pub const YIELD_EVERY: Duration = Duration::from_micros(50);

#[derive(Default)]
struct State {
    /// Generations started (wakes).
    wakes: u64,
    stop: bool,
}

#[derive(Default)]
struct Signal {
    state: Mutex<State>,
    cv: Condvar,
}

/// Handle on the background sweeper. See the module docs.
#[derive(Default)]
pub(crate) struct Background {
    signal: Arc<Signal>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Background {
    pub(crate) fn start(heap: &Arc<Mheap>) -> std::io::Result<()> {
        let weak: Weak<Mheap> = Arc::downgrade(heap);
        let signal = heap.background.signal.clone();
        let t = std::thread::Builder::new()
            .name("spangc-sweep".into())
            .spawn(move || run(weak, &signal))?;
        *heap
            .background
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(t);
        Ok(())
    }

    pub(crate) fn wake(&self) {
        let mut s = self.signal.state.lock().unwrap_or_else(|e| e.into_inner());
        s.wakes += 1;
        self.signal.cv.notify_one();
    }

    pub(crate) fn stop(&self) {
        {
            let mut s = self.signal.state.lock().unwrap_or_else(|e| e.into_inner());
            s.stop = true;
            self.signal.cv.notify_one();
        }
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

fn run(heap: Weak<Mheap>, signal: &Signal) {
    let mut seen = 0;
    loop {
        {
            let mut s = signal.state.lock().unwrap_or_else(|e| e.into_inner());
            while s.wakes == seen && !s.stop {
                s = signal.cv.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            if s.stop {
                return;
            }
            seen = s.wakes;
        }
        let Some(heap) = heap.upgrade() else { return };
        let mut since_yield = Instant::now();
        while heap.sweep_one(Who::Background).is_some() {
            if signal.state.lock().unwrap_or_else(|e| e.into_inner()).stop {
                return;
            }
            if since_yield.elapsed() >= YIELD_EVERY {
                std::thread::yield_now();
                since_yield = Instant::now();
            }
        }
    }
}
