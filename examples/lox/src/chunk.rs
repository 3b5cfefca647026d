//! Bytecode: the instruction set and the GC-independent output of the compiler.
//!
//! The compiler allocates no runtime object. It produces a tree of
//! `FunctionProto`s whose constants are plain Rust data (`Constant`); the VM
//! turns the tree into heap objects when it loads a script
//! (`vm::Vm::load`), interning every string constant then. This keeps the
//! compiler out of the garbage collector's way entirely: nothing it makes
//! needs rooting, and nothing in it knows about spangc.
//!
//! The instruction set is clox's, operand for operand: one-byte opcodes, one-
//! byte constant and slot operands, two-byte big-endian jump offsets. A chunk
//! holds at most 256 constants (the book's limit; there is no
//! `OP_CONSTANT_LONG`), so "Too many constants in one chunk." is reported
//! exactly where the book reports it.

macro_rules! opcodes {
    ($($name:ident => $text:literal, $doc:literal;)*) => {
        /// One instruction's opcode. The doc of each variant gives its
        /// operands (the bytes following the opcode) and what it does.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        pub enum OpCode {
            $(#[doc = $doc] $name,)*
        }

        impl OpCode {
            /// The opcode a byte encodes, if any. (A `match` on the byte
            /// values rather than a table lookup: the compiler turns it into
            /// one range check, so decoding costs nothing in the dispatch
            /// loop.)
            #[inline(always)]
            pub fn from_byte(byte: u8) -> Option<OpCode> {
                #[allow(non_upper_case_globals)]
                mod byte_of {
                    $(pub const $name: u8 = super::OpCode::$name as u8;)*
                }
                match byte {
                    $(byte_of::$name => Some(OpCode::$name),)*
                    _ => None,
                }
            }

            /// The name the disassembler prints (clox's `OP_` names).
            pub fn name(self) -> &'static str {
                match self {
                    $(OpCode::$name => $text,)*
                }
            }
        }
    };
}

opcodes! {
    Constant => "OP_CONSTANT", "`index`: push `constants[index]`.";
    Nil => "OP_NIL", "Push nil.";
    True => "OP_TRUE", "Push true.";
    False => "OP_FALSE", "Push false.";
    Pop => "OP_POP", "Pop one value.";
    GetLocal => "OP_GET_LOCAL", "`slot`: push the frame's local `slot`.";
    SetLocal => "OP_SET_LOCAL", "`slot`: store the top (not popped) into local `slot`.";
    GetGlobal => "OP_GET_GLOBAL", "`name`: push the global named by constant `name`.";
    DefineGlobal => "OP_DEFINE_GLOBAL", "`name`: pop into a (re)defined global.";
    SetGlobal => "OP_SET_GLOBAL", "`name`: store the top into an existing global.";
    GetUpvalue => "OP_GET_UPVALUE", "`index`: push the closure's upvalue `index`.";
    SetUpvalue => "OP_SET_UPVALUE", "`index`: store the top into upvalue `index`.";
    GetProperty => "OP_GET_PROPERTY", "`name`: replace an instance by its field or bound method.";
    SetProperty => "OP_SET_PROPERTY", "`name`: set a field; leaves the assigned value.";
    GetSuper => "OP_GET_SUPER", "`name`: pop the superclass; bind its method to `this`.";
    Equal => "OP_EQUAL", "Pop two, push whether they are equal.";
    Greater => "OP_GREATER", "Pop two numbers, push `a > b`.";
    Less => "OP_LESS", "Pop two numbers, push `a < b`.";
    Add => "OP_ADD", "Pop two numbers or strings, push the sum or concatenation.";
    Subtract => "OP_SUBTRACT", "Pop two numbers, push `a - b`.";
    Multiply => "OP_MULTIPLY", "Pop two numbers, push `a * b`.";
    Divide => "OP_DIVIDE", "Pop two numbers, push `a / b`.";
    Not => "OP_NOT", "Replace the top by its falsiness.";
    Negate => "OP_NEGATE", "Replace a number by its negation.";
    Print => "OP_PRINT", "Pop and print a value.";
    Jump => "OP_JUMP", "`offset16`: jump forward.";
    JumpIfFalse => "OP_JUMP_IF_FALSE", "`offset16`: jump forward if the top (not popped) is falsey.";
    Loop => "OP_LOOP", "`offset16`: jump backward.";
    Call => "OP_CALL", "`argc`: call the value below the arguments.";
    Invoke => "OP_INVOKE", "`name argc`: call a method of the receiver below the arguments.";
    SuperInvoke => "OP_SUPER_INVOKE", "`name argc`: pop the superclass, call its method on `this`.";
    Closure => "OP_CLOSURE", "`function (is_local index)*`: push a new closure capturing upvalues.";
    CloseUpvalue => "OP_CLOSE_UPVALUE", "Close the upvalue of the top slot, then pop it.";
    Return => "OP_RETURN", "Pop the result, discard the frame, push the result.";
    Class => "OP_CLASS", "`name`: push a new class.";
    Inherit => "OP_INHERIT", "Copy the superclass's (below) methods into the class (top); pop it.";
    Method => "OP_METHOD", "`name`: pop a closure into the class below as a method.";
}

/// A constant of a chunk, before the VM turns it into a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Constant {
    /// A number literal.
    Number(f64),
    /// A string literal or an identifier (global, property or method name).
    String(Box<str>),
    /// A function compiled inside this one; `OP_CLOSURE` wraps it.
    Function(Box<FunctionProto>),
}

/// A sequence of instructions with their lines and constants.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunk {
    /// The instructions and their operands.
    pub code: Vec<u8>,
    /// The source line of each byte of `code` (same length).
    pub lines: Vec<u32>,
    /// The constants the instructions name by index.
    pub constants: Vec<Constant>,
}

impl Chunk {
    /// Appends one byte compiled from `line`.
    pub fn write(&mut self, byte: u8, line: u32) {
        self.code.push(byte);
        self.lines.push(line);
    }

    /// Appends a constant and returns its index (which may exceed a byte; the
    /// compiler checks).
    pub fn add_constant(&mut self, constant: Constant) -> usize {
        self.constants.push(constant);
        self.constants.len() - 1
    }
}

/// A compiled function: everything the VM needs to make an `ObjFunction`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FunctionProto {
    /// The function's name; `None` for the top-level script.
    pub name: Option<Box<str>>,
    /// How many parameters it takes (at most 255).
    pub arity: u8,
    /// How many upvalues its closures capture (at most 256).
    pub upvalue_count: usize,
    /// Its bytecode.
    pub chunk: Chunk,
}

#[cfg(test)]
mod tests {
    use super::OpCode;

    #[test]
    fn opcode_bytes_round_trip() {
        let mut count = 0;
        for byte in 0..=u8::MAX {
            if let Some(op) = OpCode::from_byte(byte) {
                assert_eq!(op as u8, byte);
                count += 1;
            }
        }
        assert_eq!(count, OpCode::Method as usize + 1);
        assert_eq!(OpCode::SuperInvoke.name(), "OP_SUPER_INVOKE");
    }
}
