//! Resident-set sampling from inside a benchmark child.
//!
//! A background thread reads the second field of `/proc/self/statm`
//! (resident pages) every `interval` and records it with the time since the
//! sampler started. It allocates only its own sample vector (system malloc),
//! touches no collector, and holds no GC pointer, so it perturbs the heap
//! under test as little as a sampler can; the Go and C programs run the same
//! loop in a goroutine and a pthread.
//!
//! Linux only, like the rest of the harness: on a system without
//! `/proc/self/statm` the samples are simply absent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::report::RssSample;

/// The page size, asked of the OS once.
fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions; it only reads a constant.
        let raw = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        u64::try_from(raw).unwrap_or(4096)
    })
}

/// The process's resident set size in bytes, if `/proc` can say.
#[must_use]
pub fn current_rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// A running sampler; [`Sampler::stop`] ends it and returns the series.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<RssSample>>,
}

impl Sampler {
    /// Starts sampling now, then every `interval`.
    #[must_use]
    pub fn start(interval: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let start = Instant::now();
            let mut samples = Vec::new();
            // Relaxed: the flag carries no data; `join` orders the rest.
            while !flag.load(Ordering::Relaxed) {
                if let Some(rss_bytes) = current_rss_bytes() {
                    let t_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                    samples.push(RssSample { t_ms, rss_bytes });
                }
                thread::park_timeout(interval);
            }
            samples
        });
        Sampler { stop, thread }
    }

    /// Stops the sampler and returns its samples.
    #[must_use]
    pub fn stop(self) -> Vec<RssSample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        self.thread.join().expect("RSS sampler panicked")
    }
}
