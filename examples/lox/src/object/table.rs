//! `Table`: the hash table of globals, instance fields and class methods,
//! keyed by interned strings.
//!
//! Open addressing with linear probing over a power-of-two array, as in
//! clox. Keys are interned, so a key matches by pointer; the hash is the
//! string's cached FNV-1a hash, so no probe touches the text. The array
//! grows at 3/4 load. Lox never deletes a global, field or method, so there
//! are no tombstones.
//!
//! The entry array is itself a heap object (a spangc slice of
//! `GcCell<Entry>`), not a `Vec`: so an instance or class owns no malloc'd
//! memory, has no drop glue, and dies by having its mark bit unset, like
//! every other object. A lookup is a pointer load, the probe, and one
//! 16-byte read; there is no `RefCell` flag to check. Writes go through the
//! entries' cells with the scope that `Heap` carries. Growing allocates the
//! bigger array and leaves the old one to the collector.
//!
//! An entry is two words (key pointer, NaN-boxed value).

use std::cell::Cell;

use spangc::{GcCell, Trace};

use super::{Gc, Heap, ObjString, StringObject, Value};

#[derive(Clone, Copy, Trace)]
struct Entry<'gc> {
    key: Option<Gc<'gc, ObjString>>,
    value: Value<'gc>,
}

/// A map from interned string to value. See the module docs.
#[derive(Trace)]
pub struct Table<'gc> {
    /// Power-of-two length, or `None` before the first insertion.
    entries: GcCell<Option<Gc<'gc, [GcCell<Entry<'gc>>]>>>,
    /// Occupied entries; kept at most 3/4 of the array's length.
    count: Cell<usize>,
}

impl<'gc> Table<'gc> {
    /// An empty table (allocates nothing until the first insertion).
    pub fn new() -> Table<'gc> {
        Table {
            entries: GcCell::new(None),
            count: Cell::new(0),
        }
    }

    /// The value of `key`, if present.
    #[inline]
    pub fn get(&self, key: Gc<'gc, ObjString>) -> Option<Value<'gc>> {
        let entries = Gc::get(self.entries.get()?);
        let entry = entries[find_slot(entries, key)].get();
        entry.key.map(|_| entry.value)
    }

    /// Sets `key` to `value`; returns whether the key was new.
    pub fn set(&self, heap: Heap<'gc>, key: Gc<'gc, ObjString>, value: Value<'gc>) -> bool {
        let capacity = self.entries.get().map_or(0, |e| e.len());
        if (self.count.get() + 1) * 4 > capacity * 3 {
            self.grow(heap, capacity);
        }
        let entries = Gc::get(self.entries.get().expect("grown above"));
        let cell = &entries[find_slot(entries, key)];
        let is_new = cell.get().key.is_none();
        if is_new {
            self.count.set(self.count.get() + 1);
        }
        cell.set(
            heap.scope(),
            Entry {
                key: Some(key),
                value,
            },
        );
        is_new
    }

    /// Sets `key` to `value` only if it is present; returns whether it was.
    #[inline]
    pub fn set_existing(
        &self,
        heap: Heap<'gc>,
        key: Gc<'gc, ObjString>,
        value: Value<'gc>,
    ) -> bool {
        let Some(entries) = self.entries.get() else {
            return false;
        };
        let entries = Gc::get(entries);
        let cell = &entries[find_slot(entries, key)];
        if cell.get().key.is_none() {
            return false;
        }
        cell.set(
            heap.scope(),
            Entry {
                key: Some(key),
                value,
            },
        );
        true
    }

    /// Every key and value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Gc<'gc, ObjString>, Value<'gc>)> + 'gc {
        self.entries
            .get()
            .map_or(&[][..], Gc::get)
            .iter()
            .filter_map(|cell| {
                let entry = cell.get();
                entry.key.map(|key| (key, entry.value))
            })
    }

    /// Replaces the array by one twice as big (at least 4 entries) holding
    /// the same entries.
    fn grow(&self, heap: Heap<'gc>, capacity: usize) {
        let cx = heap.scope();
        let capacity = (capacity * 2).max(4);
        let empty = Entry {
            key: None,
            value: Value::NIL,
        };
        let grown = cx.alloc_slice_from_iter((0..capacity).map(|_| GcCell::new(empty)));
        for (key, value) in self.iter() {
            grown[find_slot(&grown, key)].set(
                cx,
                Entry {
                    key: Some(key),
                    value,
                },
            );
        }
        self.entries.set(cx, Some(grown));
    }
}

impl Default for Table<'_> {
    fn default() -> Self {
        Table::new()
    }
}

/// The slot holding `key`, or the empty slot where it would go. The array
/// is never full (load at most 3/4), so the probe ends.
#[inline]
fn find_slot(entries: &[GcCell<Entry<'_>>], key: Gc<'_, ObjString>) -> usize {
    let mask = entries.len() - 1;
    let mut index = key.hash() as usize & mask;
    loop {
        match entries[index].get().key {
            Some(k) if !Gc::ptr_eq(k, key) => index = (index + 1) & mask,
            _ => return index,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Table;
    use crate::object::{Value, test_heap};

    #[test]
    fn set_get_and_grow() {
        let mut heap = test_heap();
        heap.enter(|m| {
            let heap = m.heap();
            let table = Table::new();
            let keys: Vec<_> = (0..100).map(|i| heap.intern(&format!("k{i}"))).collect();
            assert_eq!(table.get(keys[0]), None);
            assert!(!table.set_existing(heap, keys[0], Value::TRUE));
            for (i, &key) in keys.iter().enumerate() {
                assert!(table.set(heap, key, Value::number(i as f64)));
            }
            assert!(!table.set(heap, keys[7], Value::NIL));
            assert!(table.set_existing(heap, keys[8], Value::TRUE));
            assert_eq!(table.get(keys[7]), Some(Value::NIL));
            assert_eq!(table.get(keys[8]), Some(Value::TRUE));
            assert_eq!(table.get(keys[99]), Some(Value::number(99.0)));
            assert_eq!(table.iter().count(), 100);
            assert_eq!(table.get(heap.intern("absent")), None);
        });
    }
}
