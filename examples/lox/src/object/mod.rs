//! The object layer: every runtime object of the VM, the `Value` that points at
//! them, and the `Heap` facade that allocates and mutates them.
//!
//! This module is the seam between the interpreter and its memory manager.
//! Nothing outside it knows how objects are stored; the rest of the VM sees
//! only:
//!
//! * `Gc<T>`: a copyable handle to an object of type `T` that derefs to it
//!   (one load). It stands in for `spangc::Gc<'s, T>`.
//! * the object types (`ObjString`, `ObjFunction`, `ObjNative`, `ObjClosure`,
//!   `ObjUpvalue`, `ObjClass`, `ObjInstance`, `ObjBoundMethod`), whose
//!   immutable fields are public and whose mutable state is read through
//!   methods and written only through `Heap` (as spangc's cells are written
//!   only with a `&Scope`);
//! * `Value`, NaN-boxed (see `value.rs`), and `Table`, the string-keyed hash
//!   table of globals, fields and methods;
//! * `Heap`: allocation, string interning, the writes, and the safepoint.
//!
//! # The scaffold
//!
//! spangc's public API does not exist yet, so `Heap` is a placeholder store:
//! every object is a leaked `Box` and nothing is ever freed. A `Gc<T>` is
//! then a `&'static T`, which is trivially valid forever. Mutable state lives
//! in `Cell`/`RefCell`, the shapes spangc's `GcCell`/`GcRefCell` will take.
//! Allocation takes `&Heap` and never collects; only `Heap::safepoint` (which
//! takes `&mut Heap`) may, exactly the split of spangc's `Scope::alloc(&self)`
//! and `Scope::safepoint(&mut self)`. The port replaces this module's
//! internals, adds the `'s` lifetime to `Gc` and `Value`, and leaves the rest of
//! the VM's logic alone; README.md ("Moving onto spangc") lists the steps.
//!
//! Objects that a `Value` can hold are *kinds* (`ObjKind`), each with a 3-bit
//! tag stored in the low bits of the boxed pointer, so that type tests
//! (`is this a string?`) never touch memory. Upvalues are not values; they
//! are reached only through closures.

mod heap;
mod table;
mod value;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::ops::Deref;

pub use heap::{Heap, HeapConfig, HeapStats};
pub use table::Table;
pub use value::{Unpacked, Value};

/// A handle to a heap object of type `T`: `Copy`, compared by identity, and
/// dereferenced with one load. The placeholder for `spangc::Gc<'s, T>`.
pub struct Gc<T: 'static>(&'static T);

impl<T> Gc<T> {
    /// The object, for as long as the handle may be used (in the port: until
    /// the next safepoint, which the `'s` lifetime enforces).
    #[inline(always)]
    pub fn get(self) -> &'static T {
        self.0
    }

    /// Whether two handles name the same object.
    #[inline(always)]
    pub fn ptr_eq(self, other: Gc<T>) -> bool {
        std::ptr::eq(self.0, other.0)
    }

    /// The object's address with its provenance exposed, for NaN-boxing.
    fn expose_addr(self) -> usize {
        std::ptr::from_ref(self.0).expose_provenance()
    }

    /// Rebuilds a handle from an address made by `expose_addr`.
    ///
    /// # Safety
    ///
    /// `addr` must be the result of `Gc::<T>::expose_addr` for the same `T`,
    /// on an object that is still allocated. (The placeholder heap never
    /// frees, so the second half always holds here.)
    unsafe fn from_exposed_addr(addr: usize) -> Gc<T> {
        let ptr = std::ptr::with_exposed_provenance::<T>(addr);
        // SAFETY: by this function's contract `ptr` came from a `&'static T`
        // to a live, initialised object, and its provenance was exposed.
        Gc(unsafe { &*ptr })
    }
}

impl<T> Clone for Gc<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Gc<T> {}

impl<T> Deref for Gc<T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        self.0
    }
}

impl<T> PartialEq for Gc<T> {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(*other)
    }
}

impl<T> Eq for Gc<T> {}

impl<T: fmt::Debug> fmt::Debug for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gc({:?})", self.0)
    }
}

/// A heap object type that a `Value` can hold, with the tag that marks it in
/// a boxed value. Sealed: only this module's types implement it, each with a
/// distinct tag, which `value.rs`'s safety argument relies on.
pub trait ObjKind: sealed::Sealed + Sized + 'static {
    /// The 3-bit tag of this kind in a NaN-boxed value.
    const TAG: u64;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! kinds {
    ($($ty:ident = $tag:literal,)*) => {
        $(
            impl sealed::Sealed for $ty {}
            impl ObjKind for $ty {
                const TAG: u64 = $tag;
            }
            // The tag lives in the low three bits of the address.
            const _: () = assert!(std::mem::align_of::<$ty>() >= 8);
        )*
    };
}

kinds! {
    ObjString = 0,
    ObjFunction = 1,
    ObjNative = 2,
    ObjClosure = 3,
    ObjClass = 4,
    ObjInstance = 5,
    ObjBoundMethod = 6,
}

/// An interned string. Two `Gc<ObjString>` are equal iff their texts are.
#[derive(Debug)]
pub struct ObjString {
    hash: u32,
    chars: Box<str>,
}

impl ObjString {
    /// The text.
    #[inline(always)]
    pub fn as_str(&self) -> &str {
        &self.chars
    }

    /// The FNV-1a hash of the text, computed once at interning.
    #[inline(always)]
    pub fn hash(&self) -> u32 {
        self.hash
    }
}

/// A function loaded from a `FunctionProto`: bytecode with live constants.
#[derive(Debug)]
pub struct ObjFunction {
    /// The name; `None` for the top-level script.
    pub name: Option<Gc<ObjString>>,
    /// The number of parameters.
    pub arity: u8,
    /// The number of upvalues `OP_CLOSURE` captures for it.
    pub upvalue_count: usize,
    /// The instructions.
    pub code: Box<[u8]>,
    /// The source line of each byte of `code`.
    pub lines: Box<[u32]>,
    /// The constants, as values.
    pub constants: Box<[Value]>,
}

/// A native function: receives its arguments, returns its result.
pub type NativeFn = fn(&[Value]) -> Value;

/// A function implemented in Rust.
#[derive(Debug)]
pub struct ObjNative {
    /// The implementation.
    pub function: NativeFn,
}

/// A function with its captured variables.
#[derive(Debug)]
pub struct ObjClosure {
    /// The code.
    pub function: Gc<ObjFunction>,
    /// The captured variables, in the order `OP_CLOSURE` lists them.
    pub upvalues: Box<[Gc<ObjUpvalue>]>,
}

/// Where a captured variable lives.
#[derive(Clone, Copy, Debug)]
pub enum UpvalueState {
    /// Still on the VM stack, at this absolute slot.
    Open(usize),
    /// Moved off the stack when its scope ended.
    Closed(Value),
}

/// A captured variable, shared by every closure that captured it.
#[derive(Debug)]
pub struct ObjUpvalue {
    state: Cell<UpvalueState>,
}

impl ObjUpvalue {
    /// Where the variable is now.
    #[inline(always)]
    pub fn state(&self) -> UpvalueState {
        self.state.get()
    }

    /// The stack slot of an open upvalue; `None` once closed.
    pub fn open_slot(&self) -> Option<usize> {
        match self.state.get() {
            UpvalueState::Open(slot) => Some(slot),
            UpvalueState::Closed(_) => None,
        }
    }
}

/// A class: its name and methods.
#[derive(Debug)]
pub struct ObjClass {
    /// The name.
    pub name: Gc<ObjString>,
    /// Method name to closure (stored as values).
    methods: RefCell<Table>,
    /// The `init` method, cached out of `methods` for instantiation.
    initializer: Cell<Option<Gc<ObjClosure>>>,
}

impl ObjClass {
    /// The method called `name`, own or inherited.
    #[inline]
    pub fn method(&self, name: Gc<ObjString>) -> Option<Gc<ObjClosure>> {
        let method = self.methods.borrow().get(name)?;
        Some(
            method
                .as_object::<ObjClosure>()
                .expect("only closures are stored as methods"),
        )
    }

    /// The initializer, if the class or a superclass defines `init`.
    #[inline]
    pub fn initializer(&self) -> Option<Gc<ObjClosure>> {
        self.initializer.get()
    }
}

/// An instance of a class, with its fields.
#[derive(Debug)]
pub struct ObjInstance {
    /// Its class.
    pub class: Gc<ObjClass>,
    fields: RefCell<Table>,
}

impl ObjInstance {
    /// The field called `name`, if set.
    #[inline]
    pub fn field(&self, name: Gc<ObjString>) -> Option<Value> {
        self.fields.borrow().get(name)
    }
}

/// A method bound to its receiver, made by reading a method as a property.
#[derive(Debug)]
pub struct ObjBoundMethod {
    /// `this` for the call.
    pub receiver: Value,
    /// The method.
    pub method: Gc<ObjClosure>,
}
