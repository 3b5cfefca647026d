//! String interning: one `ObjString` per distinct text, so that string
//! equality and table lookups compare pointers.
//!
//! The table is spangc's `WeakSet`: it does not keep its strings alive. A
//! string nothing else references dies at the next collection, and the
//! collector removes it from the set while the world is stopped, so a
//! lookup never finds a dead string (and the string table does not grow
//! forever, as clox's would without its `tableRemoveWhite`). Strings are
//! found by their FNV-1a hash and their bytes.
//!
//! Strings are spangc `WithTail` objects (`[len | hash | bytes]`), so a
//! string is one allocation with no drop glue. Concatenation hashes and
//! compares the two halves in place and copies them straight into the new
//! object: a concatenation whose result already exists allocates nothing.
//! This is the only place a string is made (the string header's field is
//! private to the object layer).

use spangc::{Scope, Trace, WeakSet};

use super::{Gc, ObjString, StringHead};

/// The interning set. See the module docs.
#[derive(Trace)]
pub(super) struct Interner<'gc> {
    set: WeakSet<'gc, ObjString>,
}

impl<'gc> Interner<'gc> {
    /// An empty set.
    pub(super) fn new() -> Interner<'gc> {
        Interner {
            set: WeakSet::new(),
        }
    }

    /// The number of distinct strings (dead ones leave at the next
    /// collection).
    pub(super) fn len(&self) -> usize {
        self.set.len()
    }

    /// The one string with text `text`, allocated if new.
    pub(super) fn intern(&self, cx: &'gc Scope, text: &str) -> Gc<'gc, ObjString> {
        self.intern_parts(cx, text.as_bytes(), b"")
    }

    /// The string `a` followed by `b`, allocated if new.
    pub(super) fn concat(
        &self,
        cx: &'gc Scope,
        a: &ObjString,
        b: &ObjString,
    ) -> Gc<'gc, ObjString> {
        // Both halves are UTF-8 (every string is made from a `str` or by
        // concatenation), so their concatenation is too.
        self.intern_parts(cx, &a.tail, &b.tail)
    }

    /// The string whose bytes are `a` then `b`.
    fn intern_parts(&self, cx: &'gc Scope, a: &[u8], b: &[u8]) -> Gc<'gc, ObjString> {
        let hash = fnv1a(fnv1a(FNV_OFFSET, a), b);
        let same = |s: &ObjString| {
            let text = &s.tail;
            text.len() == a.len() + b.len() && text[..a.len()] == *a && text[a.len()..] == *b
        };
        if let Some(existing) = self.set.find(u64::from(hash), same) {
            return existing;
        }
        let string = if b.is_empty() {
            cx.alloc_tail_copy(StringHead { hash }, a)
        } else {
            let split = a.len();
            let bytes = (0..a.len() + b.len()).map(|i| if i < split { a[i] } else { b[i - split] });
            cx.alloc_with_tail(StringHead { hash }, bytes)
        };
        self.set.insert(cx, u64::from(hash), string);
        string
    }
}

const FNV_OFFSET: u32 = 2_166_136_261;

/// 32-bit FNV-1a (clox's string hash), continued from `hash` over `bytes`.
fn fnv1a(hash: u32, bytes: &[u8]) -> u32 {
    bytes.iter().fold(hash, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(16_777_619)
    })
}

#[cfg(test)]
mod tests {
    use super::{FNV_OFFSET, fnv1a};
    use crate::object::{Gc, StringObject, test_heap};

    #[test]
    fn fnv1a_matches_reference_values() {
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0x811c_9dc5);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xe40c_292c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0xbf9c_f968);
        assert_eq!(fnv1a(fnv1a(FNV_OFFSET, b"foo"), b"bar"), 0xbf9c_f968);
    }

    #[test]
    fn interning_gives_one_object_per_text() {
        let mut heap = test_heap();
        heap.enter(|m| {
            let heap = m.heap();
            let a = heap.intern("hello");
            assert!(Gc::ptr_eq(heap.intern("hello"), a));
            assert!(!Gc::ptr_eq(heap.intern("hell"), a));
            let (hel, lo) = (heap.intern("hel"), heap.intern("lo"));
            let before = heap.strings_interned();
            assert!(Gc::ptr_eq(heap.concat(&hel, &lo), a));
            assert_eq!(heap.strings_interned(), before, "found, not made");
            let made = heap.concat(&lo, &hel);
            assert_eq!(made.as_str(), "lohel");
            assert_eq!(made.hash(), fnv1a(FNV_OFFSET, b"lohel"));
            assert_eq!(heap.strings_interned(), before + 1);
            for i in 0..1000 {
                heap.intern(&i.to_string());
            }
            assert_eq!(heap.intern("999").as_str(), "999");
            assert_eq!(heap.strings_interned(), before + 1001);
        });
    }
}
