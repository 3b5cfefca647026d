//! Loom models of the chunk allocator (`--cfg loom`, where CHUNK_BYTES is
//! 256: 128 usable bytes, so a chunk fills in a few allocations):
//!
//! * bump allocation racing with the addition of a new chunk: two threads
//!   allocate across a chunk boundary; results are disjoint, aligned and
//!   inside usable chunk memory, and no chunk is lost (a chunk mapped by the
//!   loser of the race ends up on `free`);
//! * bump allocation racing with a rotation: the bitmap lands wholly in the
//!   epoch before or wholly in the one after, and the byte counts agree.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p spangc-gcbits --release --lib loom`

use loom::sync::Arc;
use loom::thread;

use super::*;

/// (chunk base, list name) of every chunk, checking the list lengths and
/// that every mapped chunk is on a list.
fn chunks(a: &GcBitsArenas) -> Vec<(usize, &'static str)> {
    let lists = a.lock();
    let next = List {
        head: a.next.load(Relaxed),
        len: lists.next_len,
    };
    let mut v = Vec::new();
    for (name, list) in [
        ("next", &next),
        ("current", &lists.current),
        ("previous", &lists.previous),
        ("free", &lists.free),
    ] {
        let before = v.len();
        v.extend(list.iter().map(|c| (c.base.as_ptr() as usize, name)));
        assert_eq!(v.len() - before, list.len, "{name} length");
    }
    assert_eq!(v.len(), lists.chunks_mapped, "a chunk is lost");
    v
}

/// The list holding bitmap `[p, p + bytes)`, which must lie in the usable
/// part of one chunk.
fn list_of(chunks: &[(usize, &'static str)], p: usize, bytes: usize) -> &'static str {
    let &(_, name) = chunks
        .iter()
        .find(|&&(base, _)| base <= p && p + bytes <= base + CHUNK_USABLE)
        .unwrap_or_else(|| panic!("{p:#x}+{bytes} is in no chunk's usable memory"));
    name
}

#[test]
fn loom_bump_races_chunk_addition() {
    loom::model(|| {
        let a = Arc::new(GcBitsArenas::new());
        // 96 of the first chunk's 128 usable bytes: one 24-byte bitmap still
        // fits, so the four below need exactly one more chunk's worth.
        let first = a.new_mark_bits(12 * 64).unwrap().as_ptr() as usize;
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let a = a.clone();
                thread::spawn(move || {
                    (0..2)
                        .map(|_| a.new_mark_bits(3 * 64).unwrap().as_ptr() as usize)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut got = vec![(first, 96)];
        for h in hs {
            got.extend(h.join().unwrap().into_iter().map(|p| (p, 24)));
        }
        got.sort();
        for w in got.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "{got:x?} overlap");
        }
        let cs = chunks(&a);
        for &(p, bytes) in &got {
            assert_eq!(p % 8, 0);
            assert_eq!(list_of(&cs, p, bytes), "next");
        }
        let s = a.stats();
        // Two chunks in use; a chunk mapped by the loser of a race is kept
        // on `free`, clean.
        assert_eq!(s.next_chunks, 2, "{s:?}");
        assert_eq!(s.chunks_mapped, 2 + s.free_chunks, "{s:?}");
        assert!(s.free_chunks <= 1, "{s:?}");
        assert_eq!(s.chunks_zeroed, 0);
    });
}

#[test]
fn loom_bump_races_rotation() {
    loom::model(|| {
        let a = Arc::new(GcBitsArenas::new());
        a.new_mark_bits(64).unwrap(); // opens the head chunk: 8 bytes used
        let t = {
            let a = a.clone();
            thread::spawn(move || a.new_mark_bits(2 * 64).unwrap().as_ptr() as usize)
        };
        a.next_epoch();
        let p = t.join().unwrap();
        let s = a.stats();
        match list_of(&chunks(&a), p, 16) {
            // Bumped before the rotation: its bits rotated with the chunk.
            "current" => assert_eq!((s.current_bytes, s.next_bytes), (24, 0), "{s:?}"),
            // After: the closed chunk was skipped and a new one opened.
            "next" => assert_eq!((s.current_bytes, s.next_bytes), (8, 16), "{s:?}"),
            other => panic!("bitmap on {other}"),
        }
    });
}
