//! The single-pass compiler: clox's Pratt parser, emitting bytecode as it
//! parses, with no syntax tree.
//!
//! Layout: this file holds the compiler's state, token handling, error
//! reporting, code emission, and variable resolution (locals, upvalues,
//! globals); `expr.rs` has the Pratt table and the expression parsers;
//! `stmt.rs` has declarations and statements.
//!
//! Output is a tree of `FunctionProto`s (see `chunk.rs`): the compiler never
//! touches the runtime heap. One `FunctionState` per function being compiled
//! forms a stack (the book's `Compiler` linked list); one `ClassState` per
//! class being compiled tells `this` and `super` whether they are legal.
//!
//! Errors follow the book exactly: each is reported at a token as
//! `[line N] Error at 'lexeme': message` (or `at end`, or nothing for a
//! scanner error); after the first error the parser is in panic mode and
//! reports nothing until it resynchronises at a statement boundary. Every
//! limit the book enforces is enforced here with its message (256 constants
//! per chunk, 256 locals, 256 upvalues, 255 parameters and arguments, 16-bit
//! jumps).

mod expr;
mod stmt;

use std::fmt;

use crate::chunk::{Chunk, Constant, FunctionProto, OpCode};
use crate::scanner::{Scanner, Token, TokenKind};

/// One compile error, printed as clox prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// The line of the offending token.
    pub line: u32,
    /// `" at 'x'"`, `" at end"`, or empty for a scanner error.
    pub location: String,
    /// The message.
    pub message: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[line {}] Error{}: {}",
            self.line, self.location, self.message
        )
    }
}

/// Compiles a script. On failure, returns every error reported (at most one
/// per statement, thanks to panic mode).
pub fn compile(source: &str) -> Result<FunctionProto, Vec<CompileError>> {
    let mut compiler = Compiler::new(source);
    compiler.advance();
    while !compiler.matches(TokenKind::Eof) {
        compiler.declaration();
    }
    let (script, _) = compiler.end_function();
    if compiler.errors.is_empty() {
        Ok(script)
    } else {
        Err(compiler.errors)
    }
}

/// The most locals (including slot 0) and upvalues a function may have: the
/// book's `UINT8_COUNT`, since operands are one byte.
const MAX_SLOTS: usize = 256;

/// What kind of function is being compiled; decides slot 0 and returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FunctionKind {
    Script,
    Function,
    Method,
    Initializer,
}

#[derive(Clone, Copy, Debug)]
struct Local<'src> {
    name: &'src str,
    /// The scope depth; `None` while its initializer is being compiled.
    depth: Option<u32>,
    is_captured: bool,
}

/// An upvalue of the function being compiled: a local slot of the enclosing
/// function, or an upvalue of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Upvalue {
    index: u8,
    is_local: bool,
}

struct FunctionState<'src> {
    proto: FunctionProto,
    kind: FunctionKind,
    locals: Vec<Local<'src>>,
    upvalues: Vec<Upvalue>,
    scope_depth: u32,
}

struct ClassState {
    has_superclass: bool,
}

struct Compiler<'src> {
    scanner: Scanner<'src>,
    current: Token<'src>,
    previous: Token<'src>,
    panic_mode: bool,
    errors: Vec<CompileError>,
    /// The functions being compiled, innermost last; never empty.
    functions: Vec<FunctionState<'src>>,
    /// The classes being compiled, innermost last.
    classes: Vec<ClassState>,
}

impl<'src> Compiler<'src> {
    fn new(source: &'src str) -> Compiler<'src> {
        let eof = Token {
            kind: TokenKind::Eof,
            lexeme: "",
            line: 1,
        };
        let mut compiler = Compiler {
            scanner: Scanner::new(source),
            current: eof,
            previous: eof,
            panic_mode: false,
            errors: Vec::new(),
            functions: Vec::new(),
            classes: Vec::new(),
        };
        compiler.begin_function(FunctionKind::Script, None);
        compiler
    }

    // ----- Tokens -----

    fn advance(&mut self) {
        self.previous = self.current;
        loop {
            self.current = self.scanner.scan_token();
            if self.current.kind != TokenKind::Error {
                break;
            }
            self.error_at(self.current, self.current.lexeme);
        }
    }

    fn consume(&mut self, kind: TokenKind, message: &'static str) {
        if self.current.kind == kind {
            self.advance();
        } else {
            self.error_at_current(message);
        }
    }

    fn check(&self, kind: TokenKind) -> bool {
        self.current.kind == kind
    }

    fn matches(&mut self, kind: TokenKind) -> bool {
        if !self.check(kind) {
            return false;
        }
        self.advance();
        true
    }

    // ----- Errors -----

    /// Reports an error at the token just consumed.
    fn error(&mut self, message: &'static str) {
        self.error_at(self.previous, message);
    }

    /// Reports an error at the token about to be consumed.
    fn error_at_current(&mut self, message: &'static str) {
        self.error_at(self.current, message);
    }

    fn error_at(&mut self, token: Token<'src>, message: &str) {
        if self.panic_mode {
            return;
        }
        self.panic_mode = true;
        let location = match token.kind {
            TokenKind::Eof => " at end".to_owned(),
            // A scanner error's lexeme is its message, not source text.
            TokenKind::Error => String::new(),
            _ => format!(" at '{}'", token.lexeme),
        };
        self.errors.push(CompileError {
            line: token.line,
            location,
            message: message.to_owned(),
        });
    }

    // ----- Emission -----

    fn function(&mut self) -> &mut FunctionState<'src> {
        self.functions
            .last_mut()
            .expect("the script's state is never popped while parsing")
    }

    fn chunk(&mut self) -> &mut Chunk {
        &mut self.function().proto.chunk
    }

    fn emit_byte(&mut self, byte: u8) {
        let line = self.previous.line;
        self.chunk().write(byte, line);
    }

    fn emit_op(&mut self, op: OpCode) {
        self.emit_byte(op as u8);
    }

    fn emit_op_arg(&mut self, op: OpCode, operand: u8) {
        self.emit_op(op);
        self.emit_byte(operand);
    }

    fn emit_return(&mut self) {
        if self.function().kind == FunctionKind::Initializer {
            self.emit_op_arg(OpCode::GetLocal, 0);
        } else {
            self.emit_op(OpCode::Nil);
        }
        self.emit_op(OpCode::Return);
    }

    /// Adds a constant; reports "Too many constants in one chunk." past 256.
    fn make_constant(&mut self, constant: Constant) -> u8 {
        let index = self.chunk().add_constant(constant);
        u8::try_from(index).unwrap_or_else(|_| {
            self.error("Too many constants in one chunk.");
            0
        })
    }

    fn emit_constant(&mut self, constant: Constant) {
        let index = self.make_constant(constant);
        self.emit_op_arg(OpCode::Constant, index);
    }

    /// Emits a forward jump with a placeholder offset; returns where the
    /// offset is, for `patch_jump`.
    fn emit_jump(&mut self, op: OpCode) -> usize {
        self.emit_op(op);
        self.emit_byte(0xff);
        self.emit_byte(0xff);
        self.chunk().code.len() - 2
    }

    fn patch_jump(&mut self, offset: usize) {
        // -2 for the offset bytes themselves.
        let distance = self.chunk().code.len() - offset - 2;
        let distance = u16::try_from(distance).unwrap_or_else(|_| {
            self.error("Too much code to jump over.");
            u16::MAX
        });
        self.chunk().code[offset..offset + 2].copy_from_slice(&distance.to_be_bytes());
    }

    fn emit_loop(&mut self, loop_start: usize) {
        self.emit_op(OpCode::Loop);
        // +2 for the offset bytes of this instruction.
        let distance = self.chunk().code.len() - loop_start + 2;
        let distance = u16::try_from(distance).unwrap_or_else(|_| {
            self.error("Loop body too large.");
            u16::MAX
        });
        let [high, low] = distance.to_be_bytes();
        self.emit_byte(high);
        self.emit_byte(low);
    }

    // ----- Functions -----

    fn begin_function(&mut self, kind: FunctionKind, name: Option<&str>) {
        // Slot 0 holds the callee; in methods it is `this`.
        let slot_zero = if kind == FunctionKind::Function || kind == FunctionKind::Script {
            ""
        } else {
            "this"
        };
        self.functions.push(FunctionState {
            proto: FunctionProto {
                name: name.map(Box::from),
                ..FunctionProto::default()
            },
            kind,
            locals: vec![Local {
                name: slot_zero,
                depth: Some(0),
                is_captured: false,
            }],
            upvalues: Vec::new(),
            scope_depth: 0,
        });
    }

    /// Finishes the innermost function; returns it and its upvalues.
    fn end_function(&mut self) -> (FunctionProto, Vec<Upvalue>) {
        self.emit_return();
        let state = self.functions.pop().expect("a function is being compiled");
        let mut proto = state.proto;
        proto.upvalue_count = state.upvalues.len();
        (proto, state.upvalues)
    }

    // ----- Scopes and variables -----

    fn begin_scope(&mut self) {
        self.function().scope_depth += 1;
    }

    fn end_scope(&mut self) {
        let function = self.function();
        function.scope_depth -= 1;
        let depth = function.scope_depth;
        while let Some(local) = self.function().locals.last().copied() {
            if local.depth.is_none_or(|d| d <= depth) {
                break;
            }
            self.emit_op(if local.is_captured {
                OpCode::CloseUpvalue
            } else {
                OpCode::Pop
            });
            self.function().locals.pop();
        }
    }

    fn identifier_constant(&mut self, name: &str) -> u8 {
        self.make_constant(Constant::String(name.into()))
    }

    fn add_local(&mut self, name: &'src str) {
        if self.function().locals.len() == MAX_SLOTS {
            self.error("Too many local variables in function.");
            return;
        }
        self.function().locals.push(Local {
            name,
            depth: None,
            is_captured: false,
        });
    }

    /// Declares the variable just named by `previous` in the current scope
    /// (nothing to do for globals, which are late bound).
    fn declare_variable(&mut self) {
        let name = self.previous.lexeme;
        let function = self.function();
        if function.scope_depth == 0 {
            return;
        }
        let depth = function.scope_depth;
        let duplicate = function
            .locals
            .iter()
            .rev()
            .take_while(|local| local.depth.is_none_or(|d| d >= depth))
            .any(|local| local.name == name);
        if duplicate {
            self.error("Already a variable with this name in this scope.");
        }
        self.add_local(name);
    }

    /// Parses a variable name; returns its constant for a global, or 0 for
    /// a local.
    fn parse_variable(&mut self, message: &'static str) -> u8 {
        self.consume(TokenKind::Identifier, message);
        self.declare_variable();
        if self.function().scope_depth > 0 {
            return 0;
        }
        self.identifier_constant(self.previous.lexeme)
    }

    fn mark_initialized(&mut self) {
        let function = self.function();
        if function.scope_depth == 0 {
            return;
        }
        let depth = function.scope_depth;
        if let Some(local) = function.locals.last_mut() {
            local.depth = Some(depth);
        }
    }

    fn define_variable(&mut self, global: u8) {
        if self.function().scope_depth > 0 {
            self.mark_initialized();
            return;
        }
        self.emit_op_arg(OpCode::DefineGlobal, global);
    }

    /// The slot of local `name` in function `level` of the stack.
    fn resolve_local(&mut self, level: usize, name: &str) -> Option<u8> {
        let (slot, local) = self.functions[level]
            .locals
            .iter()
            .enumerate()
            .rev()
            .find(|(_, local)| local.name == name)?;
        if local.depth.is_none() {
            self.error("Can't read local variable in its own initializer.");
        }
        Some(u8::try_from(slot).expect("at most 256 locals"))
    }

    /// The upvalue index of `name` in function `level`, capturing it through
    /// every enclosing function as needed.
    fn resolve_upvalue(&mut self, level: usize, name: &str) -> Option<u8> {
        let enclosing = level.checked_sub(1)?;
        if let Some(slot) = self.resolve_local(enclosing, name) {
            self.functions[enclosing].locals[usize::from(slot)].is_captured = true;
            return Some(self.add_upvalue(level, slot, true));
        }
        let index = self.resolve_upvalue(enclosing, name)?;
        Some(self.add_upvalue(level, index, false))
    }

    fn add_upvalue(&mut self, level: usize, index: u8, is_local: bool) -> u8 {
        let upvalue = Upvalue { index, is_local };
        let upvalues = &self.functions[level].upvalues;
        if let Some(existing) = upvalues.iter().position(|u| *u == upvalue) {
            return u8::try_from(existing).expect("at most 256 upvalues");
        }
        if upvalues.len() == MAX_SLOTS {
            self.error("Too many closure variables in function.");
            return 0;
        }
        self.functions[level].upvalues.push(upvalue);
        u8::try_from(self.functions[level].upvalues.len() - 1).expect("at most 256 upvalues")
    }
}
