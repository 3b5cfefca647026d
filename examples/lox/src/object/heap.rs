//! `Heap`: the VM's memory facade, currently a placeholder store that never
//! frees. This is the file the spangc port rewrites.
//!
//! What it provides, and what the port must keep providing:
//!
//! * allocation of each object kind (`alloc_*`), through `&self`, never
//!   collecting: a caller may hold fresh `Gc`s in Rust locals between two
//!   safepoints without rooting them;
//! * string interning (`intern`, `concat`): one `ObjString` per distinct
//!   text, found by FNV-1a hash, so strings compare by identity. Here the
//!   interning table holds strings strongly; on spangc it becomes the weak
//!   table from the specials crate, so unused strings die;
//! * every write to an object after its allocation (`set_field`,
//!   `add_method`, `inherit`, `close_upvalue`), through `&self`: the hook
//!   where spangc's cells (and a future write barrier) sit;
//! * the safepoint: `safepoint_requested` (a cheap poll) and `safepoint`
//!   (`&mut self`, may collect). The VM polls at the top of every dispatch
//!   iteration; its roots at that moment are its stack, frames, open
//!   upvalues and globals.
//!
//! The placeholder leaks one `Box` per object, so a `Gc` is a `&'static`
//! reference, valid forever. It still runs the pacing arithmetic a collector
//! would (a collection becomes due when the bytes allocated since the last
//! one exceed `gc_percent`% of those before it, or at every safepoint under
//! `stress`) and counts the collections it would have run, so that
//! `--gc-stats`, `--gc-stress` and `--gc-percent` are wired end to end.
//! Byte counts are approximate: the object plus the buffers it owns.

use std::cell::{Cell, RefCell};
use std::mem::size_of;

use super::value::ADDRESS_MASK;
use super::{
    Gc, NativeFn, ObjBoundMethod, ObjClass, ObjClosure, ObjFunction, ObjInstance, ObjNative,
    ObjString, ObjUpvalue, Table, UpvalueState, Value,
};

/// How the heap paces collections; the CLI's `--gc-stress` and
/// `--gc-percent` end up here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapConfig {
    /// Collect at every safepoint.
    pub stress: bool,
    /// Let the heap grow by this percentage between collections; `None` turns
    /// automatic collection off.
    pub gc_percent: Option<u32>,
}

impl Default for HeapConfig {
    fn default() -> HeapConfig {
        HeapConfig {
            stress: false,
            gc_percent: Some(100),
        }
    }
}

/// What the heap has done so far. `--gc-stats` prints it at exit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Objects allocated (and, in the placeholder, still held).
    pub objects_allocated: u64,
    /// Bytes allocated for objects and the buffers they own (approximate).
    pub bytes_allocated: u64,
    /// Distinct strings in the interning table.
    pub strings_interned: u64,
    /// Safepoints at which a collection was due (the placeholder only
    /// counts them; nothing is freed).
    pub collections: u64,
}

/// The VM's heap. See the module comment.
pub struct Heap {
    config: HeapConfig,
    /// The interning table: every `ObjString`, keyed by itself, found by
    /// text. Values are unused (nil).
    strings: RefCell<Table>,
    /// A reusable buffer for `concat`, so that concatenating to an existing
    /// string allocates nothing.
    scratch: RefCell<String>,
    /// The interned "init", to recognise initializers in `add_method`.
    init_string: Cell<Option<Gc<ObjString>>>,
    objects_allocated: Cell<u64>,
    bytes_allocated: Cell<u64>,
    /// `bytes_allocated` at which the next collection is due.
    next_collection_bytes: Cell<u64>,
    collections: u64,
}

/// The first collection is due after this many bytes (as Go's 4 MiB minimum
/// heap goal, scaled down: Lox test programs are small).
const MIN_COLLECTION_BYTES: u64 = 1 << 20;

impl Heap {
    /// An empty heap.
    pub fn new(config: HeapConfig) -> Heap {
        let heap = Heap {
            config,
            strings: RefCell::new(Table::new()),
            scratch: RefCell::new(String::new()),
            init_string: Cell::new(None),
            objects_allocated: Cell::new(0),
            bytes_allocated: Cell::new(0),
            next_collection_bytes: Cell::new(0),
            collections: 0,
        };
        heap.pace();
        heap.init_string.set(Some(heap.intern("init")));
        heap
    }

    /// What the heap has done so far.
    pub fn stats(&self) -> HeapStats {
        HeapStats {
            objects_allocated: self.objects_allocated.get(),
            bytes_allocated: self.bytes_allocated.get(),
            strings_interned: self.strings.borrow().len() as u64,
            collections: self.collections,
        }
    }

    /// The poll: whether the VM should stop at a safepoint now. One compare.
    #[inline(always)]
    pub fn safepoint_requested(&self) -> bool {
        self.bytes_allocated.get() >= self.next_collection_bytes.get()
    }

    /// A safepoint: a collection may run here, so no `Gc` obtained before it
    /// may be used after it (on the port the borrow checker enforces this,
    /// since this takes `&mut self`). Everything live must be reachable
    /// from the VM's roots.
    #[cold]
    pub fn safepoint(&mut self) {
        if self.safepoint_requested() {
            self.collections += 1;
            self.pace();
        }
    }

    /// Sets the byte count at which the next collection is due.
    fn pace(&self) {
        let allocated = self.bytes_allocated.get();
        let next = match (self.config.stress, self.config.gc_percent) {
            (true, _) => 0,
            (false, None) => u64::MAX,
            (false, Some(percent)) => {
                let growth = allocated.saturating_mul(u64::from(percent)) / 100;
                allocated.saturating_add(growth).max(MIN_COLLECTION_BYTES)
            }
        };
        self.next_collection_bytes.set(next);
    }

    /// Stores `object` and returns its handle. Every allocation goes
    /// through here. `owned_bytes` counts the buffers the object owns.
    fn alloc<T>(&self, object: T, owned_bytes: usize) -> Gc<T> {
        let object: &'static T = Box::leak(Box::new(object));
        let gc = Gc(object);
        // NaN-boxing needs 48-bit, 8-aligned addresses; checked once here,
        // where every handle is born.
        assert_eq!(
            gc.expose_addr() as u64 & !ADDRESS_MASK,
            0,
            "object address {:#x} does not fit a NaN-boxed value",
            gc.expose_addr()
        );
        self.objects_allocated.set(self.objects_allocated.get() + 1);
        let bytes = (size_of::<T>() + owned_bytes) as u64;
        self.bytes_allocated.set(self.bytes_allocated.get() + bytes);
        gc
    }

    /// The one string with text `text`, allocated if new.
    pub fn intern(&self, text: &str) -> Gc<ObjString> {
        let hash = fnv1a(text);
        if let Some(existing) = self.strings.borrow().find_string(text, hash) {
            return existing;
        }
        let string = self.alloc(
            ObjString {
                hash,
                chars: text.into(),
            },
            text.len(),
        );
        self.strings.borrow_mut().set(string, Value::NIL);
        string
    }

    /// The interned concatenation of `a` and `b`. Allocates only if the
    /// result is a new string.
    pub fn concat(&self, a: &ObjString, b: &ObjString) -> Gc<ObjString> {
        let mut scratch = self.scratch.borrow_mut();
        scratch.clear();
        scratch.push_str(a.as_str());
        scratch.push_str(b.as_str());
        self.intern(&scratch)
    }

    /// A function; its name and constants must already be on this heap.
    pub fn alloc_function(&self, function: ObjFunction) -> Gc<ObjFunction> {
        let owned = function.code.len()
            + function.lines.len() * size_of::<u32>()
            + function.constants.len() * size_of::<Value>();
        self.alloc(function, owned)
    }

    /// A native function.
    pub fn alloc_native(&self, function: NativeFn) -> Gc<ObjNative> {
        self.alloc(ObjNative { function }, 0)
    }

    /// A closure over `function` with its captured variables.
    pub fn alloc_closure(
        &self,
        function: Gc<ObjFunction>,
        upvalues: Box<[Gc<ObjUpvalue>]>,
    ) -> Gc<ObjClosure> {
        let owned = upvalues.len() * size_of::<Gc<ObjUpvalue>>();
        self.alloc(ObjClosure { function, upvalues }, owned)
    }

    /// An open upvalue for the stack slot `slot`.
    pub fn alloc_upvalue(&self, slot: usize) -> Gc<ObjUpvalue> {
        self.alloc(
            ObjUpvalue {
                state: Cell::new(UpvalueState::Open(slot)),
            },
            0,
        )
    }

    /// A class with no methods.
    pub fn alloc_class(&self, name: Gc<ObjString>) -> Gc<ObjClass> {
        self.alloc(
            ObjClass {
                name,
                methods: RefCell::new(Table::new()),
                initializer: Cell::new(None),
            },
            0,
        )
    }

    /// An instance of `class` with no fields.
    pub fn alloc_instance(&self, class: Gc<ObjClass>) -> Gc<ObjInstance> {
        self.alloc(
            ObjInstance {
                class,
                fields: RefCell::new(Table::new()),
            },
            0,
        )
    }

    /// `method` bound to `receiver`.
    pub fn alloc_bound_method(
        &self,
        receiver: Value,
        method: Gc<ObjClosure>,
    ) -> Gc<ObjBoundMethod> {
        self.alloc(ObjBoundMethod { receiver, method }, 0)
    }

    /// Sets a field of an instance.
    #[inline]
    pub fn set_field(&self, instance: Gc<ObjInstance>, name: Gc<ObjString>, value: Value) {
        instance.fields.borrow_mut().set(name, value);
    }

    /// Adds (or replaces) a method of a class; `init` also becomes the
    /// class's initializer.
    pub fn add_method(&self, class: Gc<ObjClass>, name: Gc<ObjString>, method: Gc<ObjClosure>) {
        class.methods.borrow_mut().set(name, Value::from(method));
        if self.init_string.get() == Some(name) {
            class.initializer.set(Some(method));
        }
    }

    /// Copies every method of `superclass` into `subclass` (before the
    /// subclass defines its own, which then override them).
    pub fn inherit(&self, subclass: Gc<ObjClass>, superclass: Gc<ObjClass>) {
        let inherited = superclass.methods.borrow();
        let mut methods = subclass.methods.borrow_mut();
        for (name, method) in inherited.iter() {
            methods.set(name, method);
        }
        subclass.initializer.set(superclass.initializer.get());
    }

    /// Makes `upvalue` closed, holding `value`: both for closing an open
    /// upvalue and for assigning to a closed one.
    #[inline]
    pub fn close_upvalue(&self, upvalue: Gc<ObjUpvalue>, value: Value) {
        upvalue.state.set(UpvalueState::Closed(value));
    }
}

/// 32-bit FNV-1a, clox's string hash.
fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(2_166_136_261_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(16_777_619)
    })
}

#[cfg(test)]
mod tests {
    use super::{Heap, HeapConfig, fnv1a};

    #[test]
    fn interning_gives_one_object_per_text() {
        let heap = Heap::new(HeapConfig::default());
        let a = heap.intern("hello");
        assert_eq!(heap.intern("hello"), a);
        assert_ne!(heap.intern("hell"), a);
        let before = heap.stats().objects_allocated;
        let joined = heap.concat(&heap.intern("hel"), &heap.intern("lo"));
        assert_eq!(joined, a);
        assert_eq!(heap.stats().objects_allocated, before + 2);
    }

    #[test]
    fn fnv1a_matches_reference_values() {
        assert_eq!(fnv1a(""), 0x811c_9dc5);
        assert_eq!(fnv1a("a"), 0xe40c_292c);
        assert_eq!(fnv1a("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn pacing() {
        let mut stressed = Heap::new(HeapConfig {
            stress: true,
            gc_percent: Some(100),
        });
        assert!(stressed.safepoint_requested());
        stressed.safepoint();
        stressed.safepoint();
        assert_eq!(stressed.stats().collections, 2);

        let mut off = Heap::new(HeapConfig {
            stress: false,
            gc_percent: None,
        });
        for i in 0..10_000 {
            off.intern(&i.to_string());
        }
        assert!(!off.safepoint_requested());
        off.safepoint();
        assert_eq!(off.stats().collections, 0);

        let mut paced = Heap::new(HeapConfig::default());
        assert!(!paced.safepoint_requested());
        let text = "x".repeat(1 << 20);
        paced.intern(&text);
        assert!(paced.safepoint_requested());
        paced.safepoint();
        assert!(!paced.safepoint_requested());
        assert_eq!(paced.stats().collections, 1);
    }
}
