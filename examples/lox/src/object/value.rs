//! `Value`: a Lox value in one 64-bit word (NaN-boxing).
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
//! by `Value::from(Gc<T>)`. That is the whole safety argument of the one
//! `unsafe` block here (`as_object`): the field is private, the only
//! constructor of object words is `From<Gc<T>>`, and the tag identifies `T`
//! because `ObjKind` is sealed with distinct tags. The alternative, a 16-byte
//! `enum`, needs no unsafe at all but doubles the stack, every table entry
//! and every field; NaN-boxing is what fast Lox VMs use.
//!
//! Addresses must fit in 48 bits; `Heap` checks this once per allocation,
//! which is where `Gc`s are born. On the port, a spangc `Gc` is a thin
//! pointer into an arena, and the same encoding applies.

use std::fmt;

use super::{
    Gc, ObjBoundMethod, ObjClass, ObjClosure, ObjFunction, ObjInstance, ObjKind, ObjNative,
    ObjString,
};
use crate::number::FormatG;

const QNAN: u64 = 0x7ffc_0000_0000_0000;
const SIGN_BIT: u64 = 0x8000_0000_0000_0000;
const OBJ_PREFIX: u64 = SIGN_BIT | QNAN;
const TAG_MASK: u64 = 0b111;
/// The bits an object's address may use: 48 bits, 8-byte aligned.
pub(super) const ADDRESS_MASK: u64 = 0x0000_ffff_ffff_fff8;

/// A Lox value: nil, a boolean, a number or an object, in one word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Value(u64);

/// A value taken apart, for code that handles every kind (printing, calls).
/// Hot paths use the specific tests instead (`as_number`, `as_object`).
#[derive(Clone, Copy, Debug)]
pub enum Unpacked {
    /// `nil`.
    Nil,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(f64),
    /// A string.
    String(Gc<ObjString>),
    /// A bare function (only ever a constant of `OP_CLOSURE`).
    Function(Gc<ObjFunction>),
    /// A native function.
    Native(Gc<ObjNative>),
    /// A closure.
    Closure(Gc<ObjClosure>),
    /// A class.
    Class(Gc<ObjClass>),
    /// An instance.
    Instance(Gc<ObjInstance>),
    /// A bound method.
    BoundMethod(Gc<ObjBoundMethod>),
}

impl Value {
    /// `nil`.
    pub const NIL: Value = Value(QNAN | 1);
    /// `false`.
    pub const FALSE: Value = Value(QNAN | 2);
    /// `true`.
    pub const TRUE: Value = Value(QNAN | 3);

    /// A number. Every NaN becomes the canonical `f64::NAN` (see the module
    /// comment: this is what keeps numbers and objects apart).
    #[inline(always)]
    pub fn number(n: f64) -> Value {
        if n.is_nan() {
            Value(f64::NAN.to_bits())
        } else {
            Value(n.to_bits())
        }
    }

    /// A boolean.
    #[inline(always)]
    pub fn bool(b: bool) -> Value {
        if b { Value::TRUE } else { Value::FALSE }
    }

    /// The number, if this is one.
    #[inline(always)]
    pub fn as_number(self) -> Option<f64> {
        (self.0 & QNAN != QNAN).then(|| f64::from_bits(self.0))
    }

    /// Whether this is `nil` or `false`, Lox's only falsey values.
    #[inline(always)]
    pub fn is_falsey(self) -> bool {
        self == Value::NIL || self == Value::FALSE
    }

    /// The object of kind `T`, if this is one.
    #[inline(always)]
    pub fn as_object<T: ObjKind>(self) -> Option<Gc<T>> {
        if self.0 & (OBJ_PREFIX | TAG_MASK) != OBJ_PREFIX | T::TAG {
            return None;
        }
        let addr = usize::try_from(self.0 & ADDRESS_MASK).expect("a 48-bit address fits in usize");
        // SAFETY: only `From<Gc<T>>` makes words with the object prefix
        // (numbers are canonicalised, nil and booleans lack the sign bit),
        // and it stores `T::TAG`, which no other kind shares; so these bits
        // are `Gc::<T>::expose_addr` of a `T` allocated by the heap, which
        // checked that the address fits in `ADDRESS_MASK`. Objects outlive
        // every value that names them (placeholder: nothing is ever freed).
        Some(unsafe { Gc::from_exposed_addr(addr) })
    }

    /// Lox equality: numbers by IEEE (so `nan != nan`), everything else by
    /// identity, which for interned strings is equality of text.
    #[inline(always)]
    pub fn equals(self, other: Value) -> bool {
        match (self.as_number(), other.as_number()) {
            (Some(a), Some(b)) => a == b,
            _ => self == other,
        }
    }

    /// The value taken apart.
    pub fn unpack(self) -> Unpacked {
        if let Some(n) = self.as_number() {
            return Unpacked::Number(n);
        }
        match self {
            Value::NIL => return Unpacked::Nil,
            Value::FALSE => return Unpacked::Bool(false),
            Value::TRUE => return Unpacked::Bool(true),
            _ => {}
        }
        match self.0 & TAG_MASK {
            ObjString::TAG => self.as_object().map(Unpacked::String),
            ObjFunction::TAG => self.as_object().map(Unpacked::Function),
            ObjNative::TAG => self.as_object().map(Unpacked::Native),
            ObjClosure::TAG => self.as_object().map(Unpacked::Closure),
            ObjClass::TAG => self.as_object().map(Unpacked::Class),
            ObjInstance::TAG => self.as_object().map(Unpacked::Instance),
            ObjBoundMethod::TAG => self.as_object().map(Unpacked::BoundMethod),
            _ => None,
        }
        .unwrap_or_else(|| panic!("malformed value bits {:#018x}", self.0))
    }
}

impl<T: ObjKind> From<Gc<T>> for Value {
    #[inline(always)]
    fn from(object: Gc<T>) -> Value {
        let addr = object.expose_addr() as u64;
        debug_assert_eq!(addr & !ADDRESS_MASK, 0, "checked at allocation");
        Value(OBJ_PREFIX | addr | T::TAG)
    }
}

/// Prints a value the way clox's `printValue` does.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unpack() {
            Unpacked::Nil => f.write_str("nil"),
            Unpacked::Bool(b) => write!(f, "{b}"),
            Unpacked::Number(n) => write!(f, "{}", FormatG(n)),
            Unpacked::String(s) => f.write_str(s.as_str()),
            Unpacked::Function(function) => write_function(f, &function),
            Unpacked::Native(_) => f.write_str("<native fn>"),
            Unpacked::Closure(closure) => write_function(f, &closure.function),
            Unpacked::Class(class) => f.write_str(class.name.as_str()),
            Unpacked::Instance(instance) => write!(f, "{} instance", instance.class.name.as_str()),
            Unpacked::BoundMethod(bound) => write_function(f, &bound.method.function),
        }
    }
}

fn write_function(f: &mut fmt::Formatter<'_>, function: &ObjFunction) -> fmt::Result {
    match function.name {
        Some(name) => write!(f, "<fn {}>", name.as_str()),
        None => f.write_str("<script>"),
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::{Unpacked, Value};
    use crate::object::{Heap, HeapConfig, ObjClass, ObjString};

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
        let heap = Heap::new(HeapConfig::default());
        let name = heap.intern("Point");
        let value = Value::from(name);
        assert_eq!(value.as_object::<ObjString>(), Some(name));
        assert!(value.as_object::<ObjClass>().is_none());
        assert_eq!(value.as_number(), None);
        let class = heap.alloc_class(name);
        let class_value = Value::from(class);
        assert!(class_value.as_object::<ObjString>().is_none());
        assert_eq!(class_value.to_string(), "Point");
        assert!(value.equals(Value::from(heap.intern("Point"))));
        assert!(!value.equals(class_value));
    }
}
