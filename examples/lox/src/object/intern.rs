//! String interning: one `ObjString` per distinct text, so that string
//! equality and table lookups compare pointers.
//!
//! The table is a set of strings, open-addressed by their FNV-1a hash with
//! linear probing over a power-of-two array kept at most 3/4 full (as
//! clox's `findString`). It is **strong**: the set holds its strings like
//! any other traced field, so an interned string never dies. That is a
//! stopgap: spangc has no weak table yet (the specials crate's weak handles
//! are not exposed by the facade). When it has, the set becomes a weak set
//! whose entries the sweeper clears, and only this module changes: the
//! rest of the object layer calls nothing but `Interner::new`, `intern`,
//! `concat` and `len`, and this is the only place a string is made (the
//! string header's field is private to the object layer, and the layer
//! builds strings nowhere else).
//!
//! Strings are spangc `WithTail` objects (`[len | hash | bytes]`), so a
//! string is one allocation with no drop glue. Concatenation hashes and
//! probes the two halves in place and copies them straight into the new
//! object: a concatenation whose result already exists allocates nothing.

use spangc::{GcRefCell, Scope, Trace};

use super::{Gc, ObjString, StringHead};

/// The interning set. See the module docs.
#[derive(Trace)]
pub(super) struct Interner<'gc> {
    set: GcRefCell<StringSet<'gc>>,
}

#[derive(Default, Trace)]
struct StringSet<'gc> {
    /// Power-of-two length, or empty before the first string. Each slot
    /// keeps its string's hash beside the pointer, so a probe that passes
    /// over other strings never loads them (a cache miss each, in a big
    /// set).
    slots: Vec<Option<(u32, Gc<'gc, ObjString>)>>,
    /// Occupied slots; at most 3/4 of `slots.len()`.
    count: usize,
}

impl<'gc> Interner<'gc> {
    /// An empty set.
    pub(super) fn new() -> Interner<'gc> {
        Interner {
            set: GcRefCell::new(StringSet::default()),
        }
    }

    /// The number of distinct strings.
    pub(super) fn len(&self) -> usize {
        self.set.borrow().count
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
        let mut set = self.set.borrow_mut(cx);
        if (set.count + 1) * 4 > set.slots.len() * 3 {
            set.grow();
        }
        let mask = set.slots.len() - 1;
        let mut index = hash as usize & mask;
        while let Some((existing_hash, existing)) = set.slots[index] {
            if existing_hash == hash {
                let text = &Gc::get(existing).tail;
                if text.len() == a.len() + b.len() && text[..a.len()] == *a && text[a.len()..] == *b
                {
                    return existing;
                }
            }
            index = (index + 1) & mask;
        }
        let split = a.len();
        let bytes = (0..a.len() + b.len()).map(|i| if i < split { a[i] } else { b[i - split] });
        let string = cx.alloc_with_tail(StringHead { hash }, bytes);
        set.slots[index] = Some((hash, string));
        set.count += 1;
        string
    }
}

impl StringSet<'_> {
    /// Doubles the array (at least 64 slots) and reinserts every string.
    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(64);
        let old = std::mem::replace(&mut self.slots, vec![None; capacity]);
        let mask = capacity - 1;
        for (hash, string) in old.into_iter().flatten() {
            let mut index = hash as usize & mask;
            while self.slots[index].is_some() {
                index = (index + 1) & mask;
            }
            self.slots[index] = Some((hash, string));
        }
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
