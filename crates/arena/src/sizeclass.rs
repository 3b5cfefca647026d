//! Size classes and span classes.
//!
//! Small objects (up to [`MAX_SMALL_SIZE`], 32 KiB) are rounded up to one of
//! 67 size classes, Go's table (`runtime/sizeclasses.go`, copied as data in
//! `tests/data/sizeclasses.tsv` and checked against these constants by a
//! test). Each class has a fixed span size in pages, chosen by Go's
//! `mksizeclasses.go` so that the tail waste of a span stays under 12.5%.
//! Class 0 stands for "large": an object with a span of its own.
//!
//! # Lookup without a search
//!
//! [`size_to_class`] uses two byte tables, as Go's `size_to_class8` and
//! `size_to_class128`: sizes up to 1024 bytes are indexed in steps of 8 (129
//! entries), larger ones in steps of 128 (249 entries). Every class size
//! above 1024 is a multiple of 128 and every one below is a multiple of 8,
//! so rounding the size up to the step never skips a class. Both tables are
//! built at compile time from [`CLASS_SIZE`]. A binary search over 67 sizes
//! was rejected: it is 6 or 7 unpredictable branches on the allocation fast
//! path, where the table costs one load.
//!
//! # Division by multiplication
//!
//! Mapping an interior pointer to its slot needs `offset / elem_size`, and
//! the marker does it for every pointer it follows. A hardware divide costs
//! 20 to 40 cycles; instead each class stores `div_mul = u32::MAX / size + 1`
//! and computes `(offset * div_mul) >> 32`. Writing `div_mul * size = 2^32 +
//! e` with `0 <= e < size`, the product is `offset / size + offset * e /
//! (size * 2^32)`; the floor is exact when `offset * e < 2^32`, and here
//! `offset < 80 KiB < 2^17` and `e < size <= 2^15`. A test checks every
//! offset of every class anyway rather than trusting the argument.
//!
//! # Span classes
//!
//! A [`SpanClass`] is `size_class << 1 | noscan`: spans of pointer-free
//! objects are kept apart so the marker never scans them. Class 0 gives the
//! two large span classes, [`SpanClass::LARGE_SCAN`] and
//! [`SpanClass::LARGE_NOSCAN`].

use std::fmt;

/// Number of size classes including class 0 (large).
pub const NUM_SIZE_CLASSES: usize = 68;
/// Number of span classes (every size class, scan and noscan).
pub const NUM_SPAN_CLASSES: usize = NUM_SIZE_CLASSES << 1;
/// The largest object size served from a size class; bigger objects get a
/// span of their own.
pub const MAX_SMALL_SIZE: usize = 32 << 10;

/// Bytes per object of each size class (class 0: large, size 0).
pub const CLASS_SIZE: [u16; NUM_SIZE_CLASSES] = [
    0, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320,
    352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792,
    2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728,
    10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672,
    32768,
];

/// Pages per span of each size class (class 0: decided per object).
pub const CLASS_NPAGES: [u8; NUM_SIZE_CLASSES] = [
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 2, 1, 2, 1, 2, 1, 3, 2, 3, 1, 3, 2, 3, 4, 5, 6, 1, 7, 6, 5, 4, 3, 5, 7, 2, 9, 7, 5, 8,
    3, 10, 7, 4,
];

/// Objects per span of each size class, computed at compile time so that
/// setting up a span needs no divide.
const CLASS_NELEMS: [u16; NUM_SIZE_CLASSES] = build_class_nelems();

const fn build_class_nelems() -> [u16; NUM_SIZE_CLASSES] {
    let mut t = [0u16; NUM_SIZE_CLASSES];
    let mut c = 1;
    while c < NUM_SIZE_CLASSES {
        t[c] = (CLASS_NPAGES[c] as usize * crate::PAGE_SIZE / CLASS_SIZE[c] as usize) as u16;
        c += 1;
    }
    t
}

const SMALL_SIZE_MAX: usize = 1024;
const SMALL_SIZE_DIV: usize = 8;
const LARGE_SIZE_DIV: usize = 128;

/// `SIZE_TO_CLASS8[(size + 7) / 8]` for sizes up to 1024.
static SIZE_TO_CLASS8: [u8; SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1] = build_size_to_class8();
/// `SIZE_TO_CLASS128[(size - 1024 + 127) / 128]` for sizes in (1024, 32768].
static SIZE_TO_CLASS128: [u8; (MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1] =
    build_size_to_class128();

/// The smallest class whose size is at least `size` (`size <= 32768`).
const fn smallest_class_for(size: usize) -> u8 {
    let mut c = 1;
    while (CLASS_SIZE[c] as usize) < size {
        c += 1;
    }
    c as u8
}

const fn build_size_to_class8() -> [u8; SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1] {
    let mut t = [0u8; SMALL_SIZE_MAX / SMALL_SIZE_DIV + 1];
    let mut i = 0;
    while i < t.len() {
        t[i] = smallest_class_for(i * SMALL_SIZE_DIV);
        i += 1;
    }
    t
}

const fn build_size_to_class128() -> [u8; (MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1] {
    let mut t = [0u8; (MAX_SMALL_SIZE - SMALL_SIZE_MAX) / LARGE_SIZE_DIV + 1];
    let mut i = 0;
    while i < t.len() {
        t[i] = smallest_class_for(SMALL_SIZE_MAX + i * LARGE_SIZE_DIV);
        i += 1;
    }
    t
}

/// A size class: an index into [`CLASS_SIZE`]. Class 0 is "large".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SizeClass(u8);

impl SizeClass {
    /// Class 0: objects bigger than [`MAX_SMALL_SIZE`], one per span.
    pub const LARGE: SizeClass = SizeClass(0);

    /// The class with index `c`, if it exists.
    pub const fn new(c: u8) -> Option<SizeClass> {
        if (c as usize) < NUM_SIZE_CLASSES {
            Some(SizeClass(c))
        } else {
            None
        }
    }

    /// The class's index.
    #[inline]
    pub const fn index(self) -> u8 {
        self.0
    }

    /// Whether this is class 0 (large objects).
    #[inline]
    pub const fn is_large(self) -> bool {
        self.0 == 0
    }

    /// Every small class (1 to 67), in increasing size.
    pub fn small_classes() -> impl Iterator<Item = SizeClass> {
        (1..NUM_SIZE_CLASSES as u8).map(SizeClass)
    }
}

/// The size class for an object of `bytes` bytes: the smallest class that
/// fits it, or `None` above [`MAX_SMALL_SIZE`] (a large object). A zero-byte
/// request maps to the smallest class (8 bytes).
#[inline]
pub const fn size_to_class(bytes: usize) -> Option<SizeClass> {
    let c = if bytes <= SMALL_SIZE_MAX {
        let c = SIZE_TO_CLASS8[bytes.div_ceil(SMALL_SIZE_DIV)];
        if c == 0 { 1 } else { c }
    } else if bytes <= MAX_SMALL_SIZE {
        SIZE_TO_CLASS128[(bytes - SMALL_SIZE_MAX).div_ceil(LARGE_SIZE_DIV)]
    } else {
        return None;
    };
    Some(SizeClass(c))
}

/// Bytes per object of class `c` (0 for [`SizeClass::LARGE`]).
#[inline]
pub const fn class_size(c: SizeClass) -> usize {
    CLASS_SIZE[c.0 as usize] as usize
}

/// Pages per span of class `c` (0 for [`SizeClass::LARGE`]: a large span
/// has as many pages as its object needs).
#[inline]
pub const fn class_npages(c: SizeClass) -> usize {
    CLASS_NPAGES[c.0 as usize] as usize
}

/// Objects per span of class `c` (0 for [`SizeClass::LARGE`]).
#[inline]
pub const fn class_nelems(c: SizeClass) -> usize {
    CLASS_NELEMS[c.0 as usize] as usize
}

/// The magic multiplier of class `c`: for every byte offset `off` inside a
/// span of the class, `(off * div_mul) >> 32 == off / size`. 0 for
/// [`SizeClass::LARGE`], whose spans have one slot, so the formula gives 0.
#[inline]
pub const fn class_div_mul(c: SizeClass) -> u32 {
    match class_size(c) {
        0 => 0,
        size => (u32::MAX / size as u32).wrapping_add(1),
    }
}

/// A span class: size class << 1 | noscan. Spans of one span class hold
/// objects of one size that either all may contain pointers (scan) or all
/// cannot (noscan).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpanClass(u8);

impl SpanClass {
    /// A large object that may contain pointers.
    pub const LARGE_SCAN: SpanClass = SpanClass(0);
    /// A large object without pointers.
    pub const LARGE_NOSCAN: SpanClass = SpanClass(1);

    /// The span class of objects of size class `c`.
    #[inline]
    pub const fn new(c: SizeClass, noscan: bool) -> SpanClass {
        SpanClass(c.0 << 1 | noscan as u8)
    }

    /// Decodes a stored span class.
    #[inline]
    pub const fn from_raw(raw: u8) -> Option<SpanClass> {
        if (raw as usize) < NUM_SPAN_CLASSES {
            Some(SpanClass(raw))
        } else {
            None
        }
    }

    /// The encoded value (size class << 1 | noscan); also an index in
    /// `0..NUM_SPAN_CLASSES` for per-class tables.
    #[inline]
    pub const fn raw(self) -> u8 {
        self.0
    }

    /// The size class.
    #[inline]
    pub const fn size_class(self) -> SizeClass {
        SizeClass(self.0 >> 1)
    }

    /// Whether objects of this class contain no pointers.
    #[inline]
    pub const fn noscan(self) -> bool {
        self.0 & 1 != 0
    }

    /// Whether this is one of the two large span classes.
    #[inline]
    pub const fn is_large(self) -> bool {
        self.0 >> 1 == 0
    }
}

impl fmt::Debug for SpanClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SpanClass({}{})",
            self.size_class().index(),
            if self.noscan() { " noscan" } else { " scan" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PAGE_SIZE;

    #[test]
    fn table_matches_go_tsv() {
        let tsv = include_str!("../tests/data/sizeclasses.tsv");
        let mut rows = 0;
        for line in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let f: Vec<usize> = line
                .split('\t')
                .take(4)
                .map(|x| x.parse().unwrap())
                .collect();
            let c = SizeClass::new(f[0] as u8).unwrap();
            assert_eq!(class_size(c), f[1], "class {} size", f[0]);
            assert_eq!(
                class_npages(c) * PAGE_SIZE,
                f[2],
                "class {} span bytes",
                f[0]
            );
            assert_eq!(class_nelems(c), f[3], "class {} objects", f[0]);
            rows += 1;
        }
        assert_eq!(rows, NUM_SIZE_CLASSES - 1);
    }

    #[test]
    fn seed_tsv_unchanged_if_present() {
        // The shared seed is the origin of our copy; if it is reachable,
        // the copy must still equal it.
        let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/seed/sizeclasses.tsv");
        if let Ok(s) = std::fs::read_to_string(seed) {
            assert_eq!(s, include_str!("../tests/data/sizeclasses.tsv"));
        }
    }

    #[test]
    fn size_to_class_is_the_smallest_fit() {
        for bytes in 0..=MAX_SMALL_SIZE {
            let c = size_to_class(bytes).unwrap();
            assert!(class_size(c) >= bytes.max(1), "{bytes} -> {c:?}");
            let smaller = SizeClass(c.0 - 1);
            assert!(
                smaller.is_large() || class_size(smaller) < bytes,
                "{bytes} -> {c:?} but {smaller:?} fits"
            );
        }
        assert_eq!(size_to_class(MAX_SMALL_SIZE + 1), None);
        assert_eq!(size_to_class(usize::MAX), None);
    }

    #[test]
    fn div_mul_is_exact_for_every_offset_of_every_class() {
        for c in SizeClass::small_classes() {
            let size = class_size(c);
            let m = class_div_mul(c) as u64;
            for off in 0..(class_npages(c) * PAGE_SIZE) as u64 {
                assert_eq!(
                    ((off * m) >> 32) as usize,
                    off as usize / size,
                    "class {c:?} offset {off}"
                );
            }
        }
        assert_eq!(class_div_mul(SizeClass::LARGE), 0);
    }

    #[test]
    fn span_class_round_trips() {
        for c in 0..NUM_SIZE_CLASSES as u8 {
            for noscan in [false, true] {
                let sc = SpanClass::new(SizeClass::new(c).unwrap(), noscan);
                assert_eq!(sc.size_class().index(), c);
                assert_eq!(sc.noscan(), noscan);
                assert_eq!(sc.is_large(), c == 0);
                assert_eq!(SpanClass::from_raw(sc.raw()), Some(sc));
            }
        }
        assert_eq!(SpanClass::from_raw(NUM_SPAN_CLASSES as u8), None);
        assert!(SpanClass::LARGE_NOSCAN.noscan() && SpanClass::LARGE_NOSCAN.is_large());
        assert_eq!(format!("{:?}", SpanClass::LARGE_SCAN), "SpanClass(0 scan)");
    }
}
