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
///
/// The series always has a sample taken by `start` before it returns and
/// one taken by `stop`, so even a run shorter than one interval has its
/// start and end.
pub struct Sampler {
    start: Instant,
    first: Option<RssSample>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<RssSample>>,
}

fn sample_since(start: Instant) -> Option<RssSample> {
    let rss_bytes = current_rss_bytes()?;
    let t_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    Some(RssSample { t_ms, rss_bytes })
}

impl Sampler {
    /// Samples now, then every `interval` until stopped.
    #[must_use]
    pub fn start(interval: Duration) -> Sampler {
        let start = Instant::now();
        let first = sample_since(start);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut samples = Vec::new();
            loop {
                thread::park_timeout(interval);
                // Relaxed: the flag carries no data; `join` orders the rest.
                if flag.load(Ordering::Relaxed) {
                    return samples;
                }
                samples.extend(sample_since(start));
            }
        });
        Sampler {
            start,
            first,
            stop,
            thread,
        }
    }

    /// Stops the sampler, samples once more, and returns the series.
    #[must_use]
    pub fn stop(self) -> Vec<RssSample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.thread().unpark();
        let middle = self.thread.join().expect("RSS sampler panicked");
        self.first
            .into_iter()
            .chain(middle)
            .chain(sample_since(self.start))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_shorter_than_the_interval_still_has_start_and_end() {
        let samples = Sampler::start(Duration::from_secs(3600)).stop();
        assert_eq!(samples.len(), 2, "{samples:?}");
        assert!(samples.iter().all(|s| s.rss_bytes > 0));
    }
}
