//! What a call into the VM costs: entering and leaving a scope, and the
//! churn pattern (allocate a 32-byte record, put it in a ring of 100,000
//! slots, read back the one it replaces) with a scope per operation and
//! with one scope per 1024 operations, against the same ring of `Box`es.
//!
//! Each round runs every mode once, in turn; the bench prints each mode's
//! median ns per operation over the rounds and the ratios to `Box` within
//! each round (median). `SPANGC_BENCH_OPS` (default 10 million) sets the
//! operations per mode and round. Runs as
//! `cargo bench -p spangc --bench scope`.

use spangc::{Config, Gc, GcRefCell, Heap, Mutator, Root, Trace};
use std::hint::black_box;
use std::time::Instant;

spangc::brand!(Calls);

/// Ring slots (live records), as in churn.
const WINDOW: usize = 100_000;
/// Operations between safepoints, as in churn.
const SAFEPOINT_EVERY: usize = 1024;
const ROUNDS: usize = 5;

#[derive(Trace)]
#[gc(brand = Calls)]
struct Record([u64; 4]);

#[derive(Trace)]
#[gc(brand = Calls)]
struct Ring<'gc> {
    slots: GcRefCell<Vec<Option<Gc<'gc, Record, Calls>>>>,
}

fn record(i: usize) -> [u64; 4] {
    let i = i as u64;
    [i, i.wrapping_mul(3), i.wrapping_mul(5), i.wrapping_mul(7)]
}

/// Replaces slot `i % WINDOW` in one scope's ring; returns the old record's sum.
fn replace(cx: &spangc::Scope<Calls>, ring: &Root<Ring<'static>, Calls>, i: usize) -> u64 {
    let new = cx.alloc(Record(record(i)));
    let old = ring.get(cx).slots.borrow_mut(cx)[i % WINDOW].replace(new);
    old.map_or(0, |o| o.0.iter().sum())
}

/// Runs `mode` for `ops` operations; returns the checksum.
fn run(mode: &str, ops: usize, m: &mut Mutator<Calls>, ring: &Root<Ring<'static>, Calls>) -> u64 {
    let mut sum = 0u64;
    match mode {
        "enter" => {
            for i in 0..ops {
                m.enter(|cx| {
                    black_box(cx);
                });
                if i % SAFEPOINT_EVERY == SAFEPOINT_EVERY - 1 {
                    m.safepoint();
                }
            }
        }
        "scope per op" => {
            for i in 0..ops {
                sum = sum.wrapping_add(m.enter(|cx| replace(cx, ring, i)));
                if i % SAFEPOINT_EVERY == SAFEPOINT_EVERY - 1 {
                    m.safepoint();
                }
            }
        }
        "scope per 1024" => {
            for start in (0..ops).step_by(SAFEPOINT_EVERY) {
                m.enter(|cx| {
                    for i in start..(start + SAFEPOINT_EVERY).min(ops) {
                        sum = sum.wrapping_add(replace(cx, ring, i));
                    }
                });
                m.safepoint();
            }
        }
        "box" => {
            let mut slots: Vec<Option<Box<[u64; 4]>>> = vec![None; WINDOW];
            for i in 0..ops {
                let old = slots[i % WINDOW].replace(Box::new(record(i)));
                sum = sum.wrapping_add(old.map_or(0, |o| o.iter().sum()));
            }
        }
        _ => unreachable!("{mode}"),
    }
    sum
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let ops: usize = std::env::var("SPANGC_BENCH_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let heap = Heap::<Calls>::new(Config::default()).expect("heap");
    let mut m = heap.mutator();
    let modes = ["enter", "scope per op", "scope per 1024", "box"];
    let mut ns: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for _ in 0..ROUNDS {
        for (k, mode) in modes.iter().enumerate() {
            let ring = m.enter(|cx| {
                let slots = GcRefCell::new(vec![None; WINDOW]);
                cx.root(cx.alloc(Ring { slots }))
            });
            let t = Instant::now();
            black_box(run(mode, ops, &mut m, &ring));
            ns[k].push(t.elapsed().as_nanos() as f64 / ops as f64);
        }
    }
    println!("{ops} operations per mode, {ROUNDS} rounds; medians");
    println!("{:<16} {:>8} {:>8}", "mode", "ns/op", "x box");
    let boxed = ns[modes.len() - 1].clone();
    for (k, mode) in modes.iter().enumerate() {
        let mut ratios: Vec<f64> = ns[k].iter().zip(&boxed).map(|(a, b)| a / b).collect();
        let per_op = median(&mut ns[k].clone());
        println!("{mode:<16} {per_op:>8.2} {:>8.2}", median(&mut ratios));
    }
    println!("collections: {}", heap.gc_count());
}
