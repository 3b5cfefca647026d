//! `Table`: the hash table of globals, instance fields, class methods and
//! interned strings, keyed by interned strings.
//!
//! Open addressing with linear probing over a power-of-two array, as in clox.
//! Keys are interned, so a key matches by pointer; the hash is the string's
//! cached FNV-1a hash, so no probe touches the text. The array grows at 3/4
//! load. Lox never deletes a global, field or method, so there are no
//! tombstones; the interning table finds strings by text through
//! `find_string`, the one lookup that compares characters.
//!
//! An entry is two words (key pointer, NaN-boxed value). On the port the
//! table becomes a traced type (keys and values are both references).

use super::{Gc, ObjString, Value};

#[derive(Clone, Copy, Debug)]
struct Entry {
    key: Option<Gc<ObjString>>,
    value: Value,
}

const EMPTY: Entry = Entry {
    key: None,
    value: Value::NIL,
};

/// A map from interned string to value.
#[derive(Debug, Default)]
pub struct Table {
    /// Power-of-two length, or empty before the first insertion.
    entries: Vec<Entry>,
    /// Occupied entries; kept at most 3/4 of `entries.len()`.
    count: usize,
}

impl Table {
    /// An empty table (allocates nothing until the first insertion).
    pub fn new() -> Table {
        Table::default()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.count
    }

    /// The value of `key`, if present.
    #[inline]
    pub fn get(&self, key: Gc<ObjString>) -> Option<Value> {
        if self.count == 0 {
            return None;
        }
        let entry = self.entries[self.find_slot(key)];
        entry.key.map(|_| entry.value)
    }

    /// Sets `key` to `value`; returns whether the key was new.
    pub fn set(&mut self, key: Gc<ObjString>, value: Value) -> bool {
        if (self.count + 1) * 4 > self.entries.len() * 3 {
            self.grow();
        }
        let slot = self.find_slot(key);
        let entry = &mut self.entries[slot];
        let is_new = entry.key.is_none();
        if is_new {
            self.count += 1;
        }
        *entry = Entry {
            key: Some(key),
            value,
        };
        is_new
    }

    /// Sets `key` to `value` only if it is present; returns whether it was.
    #[inline]
    pub fn set_existing(&mut self, key: Gc<ObjString>, value: Value) -> bool {
        if self.count == 0 {
            return false;
        }
        let slot = self.find_slot(key);
        let entry = &mut self.entries[slot];
        if entry.key.is_none() {
            return false;
        }
        entry.value = value;
        true
    }

    /// Every key and value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (Gc<ObjString>, Value)> + '_ {
        self.entries
            .iter()
            .filter_map(|entry| entry.key.map(|key| (key, entry.value)))
    }

    /// The key whose text is `text` (with hash `hash`), if any: the interning
    /// lookup.
    pub fn find_string(&self, text: &str, hash: u32) -> Option<Gc<ObjString>> {
        if self.count == 0 {
            return None;
        }
        let mask = self.entries.len() - 1;
        let mut index = hash as usize & mask;
        loop {
            let key = self.entries[index].key?;
            if key.hash() == hash && key.as_str() == text {
                return Some(key);
            }
            index = (index + 1) & mask;
        }
    }

    /// The slot holding `key`, or the empty slot where it would go. The
    /// table is never full (load at most 3/4), so the probe ends.
    #[inline]
    fn find_slot(&self, key: Gc<ObjString>) -> usize {
        let mask = self.entries.len() - 1;
        let mut index = key.hash() as usize & mask;
        loop {
            match self.entries[index].key {
                Some(k) if !k.ptr_eq(key) => index = (index + 1) & mask,
                _ => return index,
            }
        }
    }

    fn grow(&mut self) {
        let capacity = (self.entries.len() * 2).max(4);
        let old = std::mem::replace(&mut self.entries, vec![EMPTY; capacity]);
        for entry in old {
            if let Some(key) = entry.key {
                let slot = self.find_slot(key);
                self.entries[slot] = entry;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Table;
    use crate::object::{Heap, HeapConfig, Value};

    #[test]
    fn set_get_and_grow() {
        let heap = Heap::new(HeapConfig::default());
        let mut table = Table::new();
        let keys: Vec<_> = (0..100).map(|i| heap.intern(&format!("k{i}"))).collect();
        assert_eq!(table.get(keys[0]), None);
        assert!(!table.set_existing(keys[0], Value::TRUE));
        for (i, &key) in keys.iter().enumerate() {
            assert!(table.set(key, Value::number(i as f64)));
        }
        assert!(!table.set(keys[7], Value::NIL));
        assert!(table.set_existing(keys[8], Value::TRUE));
        assert_eq!(table.len(), 100);
        assert_eq!(table.get(keys[7]), Some(Value::NIL));
        assert_eq!(table.get(keys[8]), Some(Value::TRUE));
        assert_eq!(table.get(keys[99]), Some(Value::number(99.0)));
        assert_eq!(table.iter().count(), 100);
        assert_eq!(table.get(heap.intern("absent")), None);
    }
}
