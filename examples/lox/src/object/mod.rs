//! The object layer: every runtime object of the VM, the `Value` that points
//! at them, the `Table` they keep their names in, and the facade through
//! which the VM allocates them on spangc and writes them.
//!
//! This module is the seam between the interpreter and its memory manager.
//! The rest of the VM sees:
//!
//! * `Gc<'s, T>` (spangc's): a copyable pointer to an object, one load to
//!   dereference, valid until the next safepoint: `'s` is a shared borrow of
//!   the mutation scope, and the safepoint takes it mutably, so the borrow
//!   checker ends every `Gc` (and every `Value`, `&T` or `RefMut` derived
//!   from one) there.
//! * the object types, each generic over that lifetime (`'gc` in the type
//!   definitions). Immutable fields are public; mutable state sits in
//!   spangc's cells and is written only through `Heap`, which holds the
//!   scope borrow the cells ask for.
//! * `Value<'gc>`, NaN-boxed (`value.rs`), and `Table<'gc>` (`table.rs`).
//! * `GcHeap` (owns the spangc heap and this thread's mutator),
//!   `Mutation` (one scope: the safepoint and the poll) and `Heap<'s>` (the
//!   allocation and write facade of one safepoint interval); see `heap.rs`.
//!
//! # Object shapes
//!
//! spangc keeps an object's type on its span, so objects have no header
//! word. Strings and closures are spangc `WithTail` objects: a string is
//! `[len | hash | bytes]` and a closure `[len | function | upvalues]`, one
//! allocation each with no drop glue, so the sweeper frees them by bitmap
//! alone. Their accessors are the traits `StringObject` and
//! `ClosureObject`, since a type alias of spangc's type cannot have
//! inherent methods. Tables keep their entries in a heap array (see
//! `table.rs`), so instances and classes have no drop glue either; only
//! functions (bytecode in `Box`es, one per function in the program) do.
//!
//! Objects that a `Value` can hold are *kinds* (`ObjKind`), each with a
//! 3-bit tag stored in the low bits of the boxed pointer, so that type tests
//! (`is this a string?`) never touch memory. Upvalues are not values; they
//! are reached only through closures.

mod heap;
mod intern;
mod table;
mod value;

use spangc::{GcCell, WithTail};

#[cfg(test)]
pub use heap::test_heap;
pub use heap::{GcHeap, Heap, HeapConfig, Mutation};
pub use spangc::{Gc, GcRefCell, HeapError, Root, Stats, Trace};
pub use table::Table;
pub use value::{Unpacked, Value};

/// A heap object type that a `Value` can hold, with the tag that marks it
/// in a boxed value. Sealed: only this module's types implement it, each
/// with a distinct tag, which `value.rs`'s safety argument relies on. The
/// lifetime ties the object type's brand to the value's: a `Value<'gc>`
/// yields only `ObjClass<'gc>`, never an `ObjClass<'static>`.
pub trait ObjKind<'gc>: sealed::Sealed + 'gc {
    /// The 3-bit tag of this kind in a NaN-boxed value.
    const TAG: u64;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! kinds {
    ($($ty:ty = $tag:ident = $value:literal,)*) => {
        /// Each kind's tag by name, for `match`es on a value's tag bits.
        mod tag {
            $(pub const $tag: u64 = $value;)*
        }
        $(
            impl<'gc> sealed::Sealed for $ty {}
            impl<'gc> ObjKind<'gc> for $ty {
                const TAG: u64 = tag::$tag;
            }
        )*
    };
}

kinds! {
    ObjString = STRING = 0,
    ObjFunction<'gc> = FUNCTION = 1,
    ObjNative = NATIVE = 2,
    ObjClosure<'gc> = CLOSURE = 3,
    ObjClass<'gc> = CLASS = 4,
    ObjInstance<'gc> = INSTANCE = 5,
    ObjBoundMethod<'gc> = BOUND_METHOD = 6,
}

/// The fixed part of a string object: its hash. The field is private to
/// the object layer, so only the interner (`intern.rs`) makes strings.
#[derive(Trace)]
pub struct StringHead {
    hash: u32,
}

/// An interned string: its hash, then its UTF-8 bytes, in one object. Two
/// `Gc<ObjString>` are the same object iff their texts are equal.
pub type ObjString = WithTail<StringHead, u8>;

/// Reading a string object.
pub trait StringObject {
    /// The text. (Checks UTF-8 on each call, which keeps the object layer
    /// free of `unsafe` here; only printing and error messages ask, and
    /// they are linear in the text anyway.)
    fn as_str(&self) -> &str;
    /// The FNV-1a hash of the text, computed once at interning.
    fn hash(&self) -> u32;
}

impl StringObject for ObjString {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.tail).expect("strings are made from `str`s")
    }

    #[inline(always)]
    fn hash(&self) -> u32 {
        self.head.hash
    }
}

/// A function loaded from a `FunctionProto`: bytecode with live constants.
#[derive(Trace)]
pub struct ObjFunction<'gc> {
    /// The name; `None` for the top-level script.
    pub name: Option<Gc<'gc, ObjString>>,
    /// The number of parameters.
    pub arity: u8,
    /// The number of upvalues `OP_CLOSURE` captures for it.
    pub upvalue_count: usize,
    /// The instructions.
    pub code: Box<[u8]>,
    /// The source line of each byte of `code`.
    pub lines: Box<[u32]>,
    /// The constants, as values.
    pub constants: Box<[Value<'gc>]>,
}

/// A native function: receives its arguments, returns its result.
pub type NativeFn = for<'gc> fn(&[Value<'gc>]) -> Value<'gc>;

/// A function implemented in Rust.
#[derive(Trace)]
pub struct ObjNative {
    /// The implementation.
    #[gc(skip)]
    pub function: NativeFn,
}

/// The fixed part of a closure object: the function it closes over.
#[derive(Trace)]
pub struct ClosureHead<'gc> {
    function: Gc<'gc, ObjFunction<'gc>>,
}

/// A function with its captured variables, in one object.
pub type ObjClosure<'gc> = WithTail<ClosureHead<'gc>, Gc<'gc, ObjUpvalue<'gc>>>;

/// Reading a closure object.
pub trait ClosureObject<'gc> {
    /// The code.
    fn function(&self) -> Gc<'gc, ObjFunction<'gc>>;
    /// The captured variables, in the order `OP_CLOSURE` lists them.
    fn upvalues(&self) -> &[Gc<'gc, ObjUpvalue<'gc>>];
}

impl<'gc> ClosureObject<'gc> for ObjClosure<'gc> {
    #[inline(always)]
    fn function(&self) -> Gc<'gc, ObjFunction<'gc>> {
        self.head.function
    }

    #[inline(always)]
    fn upvalues(&self) -> &[Gc<'gc, ObjUpvalue<'gc>>] {
        &self.tail
    }
}

/// Where a captured variable lives.
#[derive(Clone, Copy, Debug, Trace)]
pub enum UpvalueState<'gc> {
    /// Still on the VM stack, at this absolute slot.
    Open(usize),
    /// Moved off the stack when its scope ended.
    Closed(Value<'gc>),
}

/// A captured variable, shared by every closure that captured it.
#[derive(Trace)]
pub struct ObjUpvalue<'gc> {
    state: GcCell<UpvalueState<'gc>>,
}

impl<'gc> ObjUpvalue<'gc> {
    /// Where the variable is now.
    #[inline(always)]
    pub fn state(&self) -> UpvalueState<'gc> {
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
#[derive(Trace)]
pub struct ObjClass<'gc> {
    /// The name.
    pub name: Gc<'gc, ObjString>,
    /// Method name to closure (stored as values).
    methods: Table<'gc>,
    /// The `init` method, cached out of `methods` for instantiation.
    initializer: GcCell<Option<Gc<'gc, ObjClosure<'gc>>>>,
}

impl<'gc> ObjClass<'gc> {
    /// The method called `name`, own or inherited.
    #[inline]
    pub fn method(&self, name: Gc<'gc, ObjString>) -> Option<Gc<'gc, ObjClosure<'gc>>> {
        let method = self.methods.get(name)?;
        Some(
            method
                .as_object::<ObjClosure<'gc>>()
                .expect("only closures are stored as methods"),
        )
    }

    /// The initializer, if the class or a superclass defines `init`.
    #[inline]
    pub fn initializer(&self) -> Option<Gc<'gc, ObjClosure<'gc>>> {
        self.initializer.get()
    }
}

/// An instance of a class, with its fields.
#[derive(Trace)]
pub struct ObjInstance<'gc> {
    /// Its class.
    pub class: Gc<'gc, ObjClass<'gc>>,
    fields: Table<'gc>,
}

impl<'gc> ObjInstance<'gc> {
    /// The field called `name`, if set.
    #[inline]
    pub fn field(&self, name: Gc<'gc, ObjString>) -> Option<Value<'gc>> {
        self.fields.get(name)
    }
}

/// A method bound to its receiver, made by reading a method as a property.
#[derive(Trace)]
pub struct ObjBoundMethod<'gc> {
    /// `this` for the call.
    pub receiver: Value<'gc>,
    /// The method.
    pub method: Gc<'gc, ObjClosure<'gc>>,
}
