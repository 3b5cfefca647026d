//! Raw `u64` words against `bitvec` on the bit-access hot paths, and the
//! load-before-RMW in `set_marked`. The winners are kept in `src/bits.rs`
//! with these figures in their comments; docs/PERFORMANCE.md has the table.
//!
//! Run: `cargo bench -p spangc-gcbits --bench bits`

use std::hint::black_box;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bitvec::prelude::*;
use criterion::{Criterion, criterion_group, criterion_main};
use spangc_gcbits::bits::bench_support::{count_bits, set_bit};
use spangc_gcbits::{GcBitsArenas, MAX_NELEMS, bitmap_words};

/// A bitmap of `nelems` slots from real chunk memory, half the bits set.
fn bitmap(arenas: &GcBitsArenas, nelems: u32) -> &[AtomicU64] {
    let p = arenas.new_mark_bits(nelems).unwrap();
    // SAFETY: a bitmap of `nelems` slots from `arenas`, which outlives the
    // slice (it is borrowed); chunk memory is accessed atomically.
    let w: &[AtomicU64] =
        unsafe { std::slice::from_raw_parts(p.as_ptr().cast(), bitmap_words(nelems)) };
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for (i, word) in w.iter().enumerate() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let valid = nelems as usize - 64 * i;
        let mask = if valid >= 64 { !0 } else { (1 << valid) - 1 };
        word.store(x & mask, Relaxed);
    }
    w
}

/// `set_marked` without the plain load first: always the atomic RMW.
#[inline(always)]
fn set_bit_rmw_only(words: &[AtomicU64], i: usize) -> bool {
    let mask = 1u64 << (i % 64);
    words[i / 64].fetch_or(mask, Relaxed) & mask != 0
}

/// `set_marked`'s algorithm (look, then set) on `bitvec`: its atomic bit
/// slices have no test-and-set that reports the old bit, so this is a
/// load and a `set_aliased` (an unconditional `fetch_or`) when clear. Not
/// race-free as a mark (two markers can both see the bit clear): it only
/// prices bitvec's indexing against the raw words'.
#[inline(always)]
fn set_bit_bitvec(bits: &BitSlice<AtomicU64, Lsb0>, i: usize) -> bool {
    if bits[i] {
        return true;
    }
    bits.set_aliased(i, true);
    false
}

fn count(c: &mut Criterion) {
    let arenas = GcBitsArenas::new();
    let mut g = c.benchmark_group("count");
    for nelems in [MAX_NELEMS, 341] {
        let w = bitmap(&arenas, nelems);
        g.bench_function(format!("raw/{nelems}"), |b| {
            b.iter(|| count_bits(black_box(w), black_box(nelems)))
        });
        g.bench_function(format!("bitvec/{nelems}"), |b| {
            b.iter(|| {
                let bits = BitSlice::<AtomicU64, Lsb0>::from_slice(black_box(w));
                bits[..black_box(nelems) as usize].count_ones() as u32
            })
        });
    }
    g.finish();
}

fn set_marked(c: &mut Criterion) {
    let arenas = GcBitsArenas::new();
    let n = MAX_NELEMS as usize;
    let mut g = c.benchmark_group("set_marked");
    // Re-marking: every bit already set (a marker reaching an object that
    // another path already marked, the common case in a connected graph).
    let full = bitmap(&arenas, MAX_NELEMS);
    full.iter().for_each(|w| w.store(!0, Relaxed));
    g.bench_function("load_first/already_set_x1024", |b| {
        b.iter(|| (0..n).filter(|&i| set_bit(black_box(full), i)).count())
    });
    g.bench_function("bitvec/already_set_x1024", |b| {
        b.iter(|| {
            let bits = BitSlice::<AtomicU64, Lsb0>::from_slice(black_box(full));
            (0..n).filter(|&i| set_bit_bitvec(bits, i)).count()
        })
    });
    g.bench_function("rmw_only/already_set_x1024", |b| {
        b.iter(|| {
            (0..n)
                .filter(|&i| set_bit_rmw_only(black_box(full), i))
                .count()
        })
    });
    // First marks: every bit clear (the bitmap is cleared inside the timed
    // loop, 16 stores, the same for both).
    let clear = bitmap(&arenas, MAX_NELEMS);
    g.bench_function("load_first/clear_x1024", |b| {
        b.iter(|| {
            clear.iter().for_each(|w| w.store(0, Relaxed));
            (0..n).filter(|&i| set_bit(black_box(clear), i)).count()
        })
    });
    g.bench_function("bitvec/clear_x1024", |b| {
        b.iter(|| {
            clear.iter().for_each(|w| w.store(0, Relaxed));
            let bits = BitSlice::<AtomicU64, Lsb0>::from_slice(black_box(clear));
            (0..n).filter(|&i| set_bit_bitvec(bits, i)).count()
        })
    });
    g.bench_function("rmw_only/clear_x1024", |b| {
        b.iter(|| {
            clear.iter().for_each(|w| w.store(0, Relaxed));
            (0..n)
                .filter(|&i| set_bit_rmw_only(black_box(clear), i))
                .count()
        })
    });
    g.finish();
}

fn config() -> Criterion {
    // Short runs: the machine is shared; these are ratios, not absolutes.
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(20)
}

criterion_group! { name = benches; config = config(); targets = count, set_marked }
criterion_main!(benches);
