//! `Value<'gc>`: a Lox value in one 64-bit word (NaN-boxing), and its
//! `Trace` impl.
//!
//! Layout of the word:
//!
//! ```text
//! number   any f64 whose bits are not a quiet NaN with bit 50 set
//! nil      0x7ffc_0000_0000_0001
//! false    0x7ffc_0000_0000_0002
//! true     0x7ffc_0000_0000_0003
//! object   0xfffc_0000_0000_0000 | address | tag   (address: 48 bits, 8-aligned;
//!                                                    tag: 3 bits, `ObjKind::TAG`)
//! ```
//!
//! `QNAN` (exponent all ones, bits 51 and 50 set) never occurs in a number
//! because `Value::number` canonicalises every NaN to `f64::NAN`
//! (`0x7ff8_0000_0000_0000`), which lacks bit 50. So the bits alone tell a
//! number from the rest, and a word with the object prefix was always made
//! by `Value::from(Gc<'gc, T>)`. The address is spangc's `Gc::as_raw`: the
//! object's first byte (its length word, for strings and closures). spangc
//! slots are 8-aligned (every size class is a multiple of 8, spans start on
//! pages) and its arenas are mapped in user space, below 2^48; `From`
//! checks both, so a word that would not decode is never made.
//!
//! This file holds the object layer's only `unsafe` code:
//!
//! * `as_object` turns the bits back into a `Gc<'gc, T>`. Its argument: the
//!   field is private; the only constructor of object words is
//!   `From<Gc<'gc, T>>`, which stores `T::TAG` (distinct per kind, `ObjKind`
//!   is sealed) and the address of a live object; and the lifetime `'gc` is
//!   the scope borrow that `Gc` carried, or that of the traced slot the value
//!   was read from. Either way `'gc` ends at the next safepoint, the only
//!   place spangc frees anything, so the object is still there.
//! * `Trace for Value` reports that address to the marker with
//!   `Tracer::mark_raw`, whose contract is exactly "an address a `Gc` to a
//!   live object of this heap would hold".
//!
//! The alternative, a 16-byte `enum` of `Gc`s, needs no unsafe at all but
//! doubles the stack, every table entry and every field; NaN-boxing is what
//! fast Lox VMs use.

use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;

use spangc::{Branded, Global, Rootable, Trace, Tracer};

use super::{
    ClosureObject, Gc, ObjBoundMethod, ObjClass, ObjClosure, ObjFunction, ObjInstance, ObjKind,
    ObjNative, ObjString, StringObject, tag,
};
use crate::number::FormatG;

const QNAN: u64 = 0x7ffc_0000_0000_0000;
const SIGN_BIT: u64 = 0x8000_0000_0000_0000;
const OBJ_PREFIX: u64 = SIGN_BIT | QNAN;
const TAG_MASK: u64 = 0b111;
/// The bits an object's address may use: 48 bits, 8-byte aligned.
const ADDRESS_MASK: u64 = 0x0000_ffff_ffff_fff8;

/// A Lox value: nil, a boolean, a number or an object, in one word. `'gc`
/// is the scope borrow its object (if any) is valid for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Value<'gc> {
    bits: u64,
    _brand: PhantomData<&'gc ()>,
}

/// A value taken apart, for code that handles every kind (printing, calls).
/// Hot paths use the specific tests instead (`as_number`, `as_object`).
#[derive(Clone, Copy)]
pub enum Unpacked<'gc> {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A string.
    String(Gc<'gc, ObjString>),
    /// A bare function (only ever a constant of `OP_CLOSURE`).
    Function(Gc<'gc, ObjFunction<'gc>>),
    /// A native function.
    Native(Gc<'gc, ObjNative>),
    /// A closure.
    Closure(Gc<'gc, ObjClosure<'gc>>),
    /// A class.
    Class(Gc<'gc, ObjClass<'gc>>),
    /// An instance.
    Instance(Gc<'gc, ObjInstance<'gc>>),
    /// A bound method.
    BoundMethod(Gc<'gc, ObjBoundMethod<'gc>>),
}

impl<'gc> Value<'gc> {
    /// `nil`.
    pub const NIL: Value<'gc> = Value::from_bits(QNAN | 1);
    /// `false`.
    pub const FALSE: Value<'gc> = Value::from_bits(QNAN | 2);
    /// `true`.
    pub const TRUE: Value<'gc> = Value::from_bits(QNAN | 3);

    #[inline(always)]
    const fn from_bits(bits: u64) -> Value<'gc> {
        Value {
            bits,
            _brand: PhantomData,
        }
    }

    /// A number. Every NaN becomes the canonical `f64::NAN` (see the module
    /// comment: this is what keeps numbers and objects apart).
    #[inline(always)]
    pub fn number(n: f64) -> Value<'gc> {
        if n.is_nan() {
            Value::from_bits(f64::NAN.to_bits())
        } else {
            Value::from_bits(n.to_bits())
        }
    }

    /// A boolean.
    #[inline(always)]
    pub fn bool(b: bool) -> Value<'gc> {
        if b { Value::TRUE } else { Value::FALSE }
    }

    /// The number, if this is one.
    #[inline(always)]
    pub fn as_number(self) -> Option<f64> {
        (self.bits & QNAN != QNAN).then(|| f64::from_bits(self.bits))
    }

    /// Whether this is `nil` or `false`, Lox's only falsey values.
    #[inline(always)]
    pub fn is_falsey(self) -> bool {
        self == Value::NIL || self == Value::FALSE
    }

    /// The object's address, if this is an object of any kind.
    #[inline(always)]
    fn object_address(self) -> Option<NonNull<u8>> {
        if self.bits & OBJ_PREFIX != OBJ_PREFIX {
            return None;
        }
        let addr = usize::try_from(self.bits & ADDRESS_MASK).expect("a 48-bit address fits");
        NonNull::new(std::ptr::with_exposed_provenance_mut(addr))
    }

    /// The object of kind `T`, if this is one.
    #[inline(always)]
    pub fn as_object<T: ObjKind<'gc> + ?Sized>(self) -> Option<Gc<'gc, T>> {
        if self.bits & (OBJ_PREFIX | TAG_MASK) != OBJ_PREFIX | T::TAG {
            return None;
        }
        let address = self.object_address()?;
        // Only `From<Gc<'gc, T>>` makes words with the object prefix
        // (numbers are canonicalised, nil and booleans lack the sign bit),
        // and it stores `T::TAG`, which no other kind shares (`ObjKind` is
        // sealed), and the exposed address of a live object of kind `T` that
        // it checked fits `ADDRESS_MASK`. `'gc` is the scope borrow of the
        // `Gc` the word was made from (or of the traced slot it was read
        // from), and spangc frees only at a safepoint, which ends every
        // such borrow.
        // SAFETY: `address` is a live object of kind `T` for `'gc`.
        Some(unsafe { Gc::from_raw(address) })
    }

    /// Lox equality: numbers by IEEE (so `nan != nan`), everything else by
    /// identity, which for interned strings is equality of text.
    #[inline(always)]
    pub fn equals(self, other: Value<'gc>) -> bool {
        match (self.as_number(), other.as_number()) {
            (Some(a), Some(b)) => a == b,
            _ => self == other,
        }
    }

    /// The value taken apart.
    pub fn unpack(self) -> Unpacked<'gc> {
        if let Some(n) = self.as_number() {
            return Unpacked::Number(n);
        }
        match self {
            Value::NIL => return Unpacked::Nil,
            Value::FALSE => return Unpacked::Bool(false),
            Value::TRUE => return Unpacked::Bool(true),
            _ => {}
        }
        match self.bits & TAG_MASK {
            tag::STRING => self.as_object().map(Unpacked::String),
            tag::FUNCTION => self.as_object().map(Unpacked::Function),
            tag::NATIVE => self.as_object().map(Unpacked::Native),
            tag::CLOSURE => self.as_object().map(Unpacked::Closure),
            tag::CLASS => self.as_object().map(Unpacked::Class),
            tag::INSTANCE => self.as_object().map(Unpacked::Instance),
            tag::BOUND_METHOD => self.as_object().map(Unpacked::BoundMethod),
            _ => None,
        }
        .unwrap_or_else(|| panic!("malformed value bits {:#018x}", self.bits))
    }
}

impl<'gc, T: ObjKind<'gc> + ?Sized> From<Gc<'gc, T>> for Value<'gc> {
    #[inline(always)]
    fn from(object: Gc<'gc, T>) -> Value<'gc> {
        let addr = Gc::as_raw(object).as_ptr().expose_provenance() as u64;
        assert!(
            addr & !ADDRESS_MASK == 0,
            "object address {addr:#x} does not fit a NaN-boxed value"
        );
        Value::from_bits(OBJ_PREFIX | addr | T::TAG)
    }
}

// SAFETY: `trace` reports the one object a value can hold (rule 1), by the
// address `Gc::as_raw` gave when the word was made (`mark_raw`'s contract;
// see the module comment); a value may hold an object, so NEEDS_TRACE is
// true (rule 2); `trace` reads only the word and cannot panic (rule 3);
// there is no drop glue (rule 4); every object word came from a `Gc` of the
// `Global` heap the VM allocates in (rule 5).
unsafe impl Trace<Global> for Value<'_> {
    const NEEDS_TRACE: bool = true;

    #[inline]
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if let Some(address) = self.object_address() {
            // SAFETY: as above: `address` is what `Gc::as_raw` returned for
            // a live object of this heap; the value is reachable (it is being
            // traced), so the object still is.
            unsafe { tracer.mark_raw(address) }
        }
    }
}

// SAFETY: `Value<'gc>` and `Value<'static>` differ only in the phantom
// lifetime: same layout, no drop glue, same `Trace` behaviour.
unsafe impl<'gc> Branded<'gc> for Value<'gc> {
    type Erased = Value<'static>;
}

// SAFETY: the inverse of the impl above.
unsafe impl Rootable for Value<'static> {
    type At<'gc> = Value<'gc>;
}

/// Prints a value the way clox's `printValue` does.
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unpack() {
            Unpacked::Nil => f.write_str("nil"),
            Unpacked::Bool(b) => write!(f, "{b}"),
            Unpacked::Number(n) => write!(f, "{}", FormatG(n)),
            Unpacked::String(s) => f.write_str(s.as_str()),
            Unpacked::Function(function) => write_function(f, &function),
            Unpacked::Native(_) => f.write_str("<native fn>"),
            Unpacked::Closure(closure) => write_function(f, &closure.function()),
            Unpacked::Class(class) => f.write_str(class.name.as_str()),
            Unpacked::Instance(instance) => write!(f, "{} instance", instance.class.name.as_str()),
            Unpacked::BoundMethod(bound) => write_function(f, &bound.method.function()),
        }
    }
}

fn write_function(f: &mut fmt::Formatter<'_>, function: &ObjFunction<'_>) -> fmt::Result {
    match function.name {
        Some(name) => write!(f, "<fn {}>", name.as_str()),
        None => f.write_str("<script>"),
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::{Unpacked, Value};
    use crate::object::{Gc, ObjClass, ObjString, test_heap};

    #[test]
    fn immediates() {
        assert!(Value::NIL.is_falsey());
        assert!(Value::FALSE.is_falsey());
        assert!(!Value::TRUE.is_falsey());
        assert!(!Value::number(0.0).is_falsey());
        assert_eq!(Value::bool(true), Value::TRUE);
        assert_eq!(Value::NIL.as_number(), None);
        assert_eq!(Value::number(-2.5).as_number(), Some(-2.5));
        assert!(matches!(Value::TRUE.unpack(), Unpacked::Bool(true)));
        assert!(matches!(Value::NIL.unpack(), Unpacked::Nil));
    }

    #[test]
    fn every_nan_is_a_number() {
        for bits in [
            0x7ff8_0000_0000_0000_u64,
            0xfff8_0000_0000_0000,
            0x7ffc_0000_0000_0001,
            0xfffc_0000_0000_0000,
            0xffff_ffff_ffff_ffff,
        ] {
            let v = Value::number(f64::from_bits(bits));
            assert!(v.as_number().is_some_and(f64::is_nan));
            assert!(v.as_object::<ObjString>().is_none());
            assert!(!v.equals(v), "nan is not equal to itself");
        }
        let inf = Value::number(f64::NEG_INFINITY);
        assert_eq!(inf.as_number(), Some(f64::NEG_INFINITY));
    }

    #[test]
    fn objects_round_trip_with_their_kind() {
        let mut heap = test_heap();
        heap.enter(|m| {
            let heap = m.heap();
            let name = heap.intern("Point");
            let value = Value::from(name);
            let back = value.as_object::<ObjString>().expect("a string");
            assert!(Gc::ptr_eq(back, name));
            assert!(value.as_object::<ObjClass>().is_none());
            assert_eq!(value.as_number(), None);
            let class = heap.alloc_class(name);
            let class_value = Value::from(class);
            assert!(class_value.as_object::<ObjString>().is_none());
            assert_eq!(class_value.to_string(), "Point");
            assert!(value.equals(Value::from(heap.intern("Point"))));
            assert!(!value.equals(class_value));
        });
    }
}
