//! The scavenger: exact amounts, order, real RSS, reuse, and the paced
//! background thread (on a fake clock).
//!
//! Tests here measure the process's resident set, so they run one at a
//! time (`SERIAL`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use spangc_arena::*;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn config() -> PageHeapConfig {
    PageHeapConfig::default().arena_hints(ArenaHints::Kernel)
}

fn touch(s: &Span) {
    // SAFETY: the span's pages are Ready heap memory this test owns.
    unsafe { std::ptr::write_bytes(s.start() as *mut u8, 0xa5, s.npages() * PAGE_SIZE) };
}

fn reads_zero(s: &Span) -> bool {
    // SAFETY: as in `touch`.
    let b = unsafe { std::slice::from_raw_parts(s.start() as *const u8, s.npages() * PAGE_SIZE) };
    b.iter().all(|&x| x == 0)
}

#[test]
fn scavenge_releases_exact_amounts() {
    let _g = serial();
    let h = PageHeap::new(config()).unwrap();
    let s = h
        .alloc_span(100, SpanClass::LARGE_SCAN, 0, 0, None)
        .unwrap();
    h.free_span(s, None);
    assert_eq!(h.scavenge(3 * PAGE_SIZE), 3 * PAGE_SIZE);
    assert_eq!(
        h.scavenge(PAGE_SIZE + 1),
        2 * PAGE_SIZE,
        "rounded up to pages"
    );
    assert_eq!(h.scavenge(1), PAGE_SIZE);
    assert_eq!(h.scavenge(0), 0);
    assert_eq!(
        h.scavenge(usize::MAX),
        94 * PAGE_SIZE,
        "only what is available"
    );
    assert_eq!(h.scavenge(PAGE_SIZE), 0);
    assert_eq!(h.scavenge_all(), 0);
    let st = h.stats();
    assert_eq!(st.released_bytes, st.idle_bytes);
    assert_eq!(st.scavenged_released_bytes, 100 * PAGE_SIZE as u64);
    h.verify().unwrap();
}

#[test]
fn scavenge_goes_highest_address_first() {
    let _g = serial();
    let h = PageHeap::new(config()).unwrap();
    let x = h.alloc_span(10, SpanClass::LARGE_SCAN, 0, 0, None).unwrap();
    let y = h.alloc_span(10, SpanClass::LARGE_SCAN, 0, 0, None).unwrap();
    let z = h.alloc_span(10, SpanClass::LARGE_SCAN, 0, 0, None).unwrap();
    let guard = h.alloc_span(1, SpanClass::LARGE_SCAN, 0, 0, None).unwrap();
    assert!(x.start() < y.start() && y.start() < z.start() && z.end() == guard.start());
    let (xs, zs) = (x.start(), z.start());
    touch(x);
    touch(z);
    h.free_span(x, None);
    h.free_span(z, None);
    assert_eq!(h.scavenge(10 * PAGE_SIZE), 10 * PAGE_SIZE);
    // First fit takes x's pages (dirty), then z's (released: zero).
    let a = h.alloc_span(10, SpanClass::LARGE_SCAN, 0, 0, None).unwrap();
    assert_eq!(a.start(), xs);
    assert!(a.needzero() && !a.scavenged());
    let b = h.alloc_span(10, SpanClass::LARGE_SCAN, 0, 0, None).unwrap();
    assert_eq!(b.start(), zs);
    assert!(!b.needzero() && b.scavenged());
    assert!(reads_zero(b), "released pages read as zero");
    h.verify().unwrap();
}

#[test]
fn scavenging_lowers_rss_and_reuse_reads_zero() {
    let _g = serial();
    let h = PageHeap::new(config()).unwrap();
    let n = 4096; // 32 MiB
    let s = h
        .alloc_span(n, SpanClass::LARGE_NOSCAN, 0, 0, None)
        .unwrap();
    let start = s.start();
    touch(s);
    h.free_span(s, None);
    let before = os::resident_bytes().unwrap();
    let released = h.scavenge_all();
    let after = os::resident_bytes().unwrap();
    assert!(released >= n * PAGE_SIZE);
    let dropped = before.saturating_sub(after);
    assert!(
        dropped >= n * PAGE_SIZE * 3 / 4,
        "RSS fell by {dropped} bytes after releasing {released}"
    );
    let t = h
        .alloc_span(n, SpanClass::LARGE_NOSCAN, 0, 0, None)
        .unwrap();
    assert_eq!(t.start(), start);
    assert!(!t.needzero() && t.scavenged());
    assert!(reads_zero(t));
    assert_eq!(
        h.stats().scavenged_consumed_bytes as usize,
        2 * n * PAGE_SIZE
    );
    h.verify().unwrap();
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn background_scavenger_paces_to_one_percent_and_converges() {
    let _g = serial();
    let tick = 10_000; // each clock reading: 10 us of work
    let clock = Arc::new(FakeClock::new(tick));
    let h = PageHeap::new(config().clock(clock.clone())).unwrap();
    let s = h
        .alloc_span(4000, SpanClass::LARGE_SCAN, 0, 0, None)
        .unwrap();
    let keep = h
        .alloc_span(100, SpanClass::LARGE_SCAN, 0, 0, None)
        .unwrap();
    h.free_span(s, None);
    assert_eq!(h.stats().retained_bytes, 4100 * PAGE_SIZE);
    let goal = 1000 * PAGE_SIZE;
    h.set_scavenge_goal(goal);
    h.start_scavenger().unwrap();
    h.start_scavenger().unwrap(); // idempotent
    wait_until("convergence", || {
        h.scavenger_parked() && h.stats().retained_bytes <= goal
    });
    let st = h.stats();
    assert!(st.bg_scavenger_running);
    assert!(
        st.retained_bytes > goal - BG_UNIT_PAGES * PAGE_SIZE,
        "overshot the goal: retained {} goal {goal}",
        st.retained_bytes
    );
    assert_eq!(st.bg_scavenger_released_bytes as usize, 3100 * PAGE_SIZE);
    let share = st.bg_scavenger_work_ns as f64
        / (st.bg_scavenger_work_ns + st.bg_scavenger_sleep_ns) as f64;
    assert!((share - 0.01).abs() < 0.001, "CPU share {share}");
    assert!(st.bg_scavenger_work_ns >= MIN_WORK_NS, "worked in batches");

    // A lower goal wakes it.
    h.set_scavenge_goal(500 * PAGE_SIZE);
    wait_until("the lower goal", || {
        h.scavenger_parked() && h.stats().retained_bytes <= 500 * PAGE_SIZE
    });
    // Retained memory above the goal with nothing free to release: it
    // parks; a free gives it work and wakes it.
    let big = h
        .alloc_span(3000, SpanClass::LARGE_SCAN, 0, 0, None)
        .unwrap();
    wait_until("parking with nothing to do", || h.scavenger_parked());
    assert!(h.stats().retained_bytes > 500 * PAGE_SIZE);
    h.free_span(big, None);
    wait_until("the freed span to be released", || {
        h.scavenger_parked() && h.stats().retained_bytes <= 500 * PAGE_SIZE
    });
    h.free_span(keep, None);
    h.stop_scavenger();
    assert!(!h.stats().bg_scavenger_running);
    h.verify().unwrap();
    drop(h);
    assert!(clock.slept_ns() > 0);
}

#[test]
fn background_scavenger_on_the_real_clock_lowers_rss() {
    let _g = serial();
    let h = PageHeap::new(config().background_scavenger(true)).unwrap();
    let s = h
        .alloc_span(2048, SpanClass::LARGE_SCAN, 0, 0, None)
        .unwrap(); // 16 MiB
    touch(s);
    h.free_span(s, None);
    let before = os::resident_bytes().unwrap();
    h.set_scavenge_goal(0);
    wait_until("the real-clock scavenger", || h.stats().retained_bytes == 0);
    let after = os::resident_bytes().unwrap();
    assert!(
        before.saturating_sub(after) >= 2048 * PAGE_SIZE * 3 / 4,
        "RSS {before} -> {after}"
    );
    // Dropping the heap stops the thread (joining it).
    drop(h);
}
