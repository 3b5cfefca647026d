//! The background sweeper: a thread that sweeps one span at a time between
//! collections, so that little sweeping is left for allocation.
//!
//! It parks on a condition variable until a generation starts
//! ([`Background::wake`] from `finish_mark`), then sweeps spans until none
//! is left, in batches (`Mheap::sweep_spans`) of about [`YIELD_EVERY`] of
//! sweeping, yielding the CPU to other threads between batches. Not after
//! every span: `sched_yield` costs a few hundred nanoseconds, more than
//! sweeping a dead span of a type without destructors.
//!
//! The thread holds only a `Weak` reference to the heap (upgraded per
//! batch), so it never keeps the heap alive; `stop` joins it.

use crate::mheap::Mheap;
use crate::sweep::Who;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Sweeping time between yields.
pub const YIELD_EVERY: Duration = Duration::from_micros(50);

#[derive(Default)]
struct State {
    /// Generations started (wakes).
    wakes: u64,
}

#[derive(Default)]
struct Signal {
    state: Mutex<State>,
    cv: Condvar,
    /// Set (under `state`'s lock, so a waiter cannot miss it) to stop the
    /// thread; read between spans without the lock. Relaxed: a flag, and
    /// `stop` then joins the thread.
    stopping: AtomicBool,
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
            let _s = self.signal.state.lock().unwrap_or_else(|e| e.into_inner());
            self.signal.stopping.store(true, Relaxed);
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
            while s.wakes == seen && !signal.stopping.load(Relaxed) {
                s = signal.cv.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            if signal.stopping.load(Relaxed) {
                return;
            }
            seen = s.wakes;
        }
        let Some(heap) = heap.upgrade() else { return };
        loop {
            let batch_start = Instant::now();
            let drained = heap.sweep_spans(Who::Background, || {
                !signal.stopping.load(Relaxed) && batch_start.elapsed() < YIELD_EVERY
            });
            if signal.stopping.load(Relaxed) {
                return;
            }
            if drained {
                break;
            }
            std::thread::yield_now();
        }
    }
}
