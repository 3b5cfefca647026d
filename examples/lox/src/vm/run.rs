//! The dispatch loop.
//!
//! One `match` over the opcode per iteration. The running frame's code,
//! constants, instruction index and stack base are cached in a `Cursor` held
//! in locals (registers, mostly); the frame record on `Vm::frames` is only
//! brought up to date when something else needs it: a call or return
//! (frames change), a runtime error (the trace reads every frame's `ip`),
//! and a safepoint. Nothing here allocates except the instructions whose
//! job is to allocate (`OP_CLOSURE`, `OP_CLASS`, string `OP_ADD`, calling a
//! class, binding a method, capturing an upvalue), which allocate the object
//! and the buffers it owns; besides those, a hash table (globals, fields,
//! methods) grows when a new key no longer fits, and a runtime error formats
//! its message.
//!
//! # Safepoints
//!
//! At the top of every iteration the loop polls `Heap::safepoint_requested`
//! (one compare). If a collection is due it saves `ip`, calls
//! `Heap::safepoint`, and rebuilds the cursor from the frame. At that point
//! no Rust local holds a heap reference other than the cursor (which is
//! rebuilt), and every live value is on the stack, in a frame, in an open
//! upvalue or in a global. Calls and returns need no poll of their own: each
//! ends its iteration, and the next iteration's poll is the safepoint that
//! follows it. Between two polls the loop runs exactly one instruction, so
//! the time to reach a safepoint is bounded by the longest instruction (a
//! native call, or a string concatenation).

use std::io::Write as _;

use super::{CallFrame, RunError, Vm};
use crate::chunk::OpCode;
use crate::object::{
    Gc, ObjClass, ObjClosure, ObjFunction, ObjInstance, ObjString, UpvalueState, Value,
};

/// The running frame, unpacked for the dispatch loop.
struct Cursor<'h> {
    closure: &'h ObjClosure,
    code: &'h [u8],
    constants: &'h [Value],
    ip: usize,
    base: usize,
}

impl<'h> Cursor<'h> {
    fn new(frame: &CallFrame) -> Cursor<'h> {
        let closure = frame.closure.get();
        let function = closure.function.get();
        Cursor {
            closure,
            code: &function.code,
            constants: &function.constants,
            ip: frame.ip,
            base: frame.base,
        }
    }

    #[inline(always)]
    fn byte(&mut self) -> u8 {
        let byte = self.code[self.ip];
        self.ip += 1;
        byte
    }

    #[inline(always)]
    fn short(&mut self) -> usize {
        let high = usize::from(self.byte());
        let low = usize::from(self.byte());
        high << 8 | low
    }

    #[inline(always)]
    fn constant(&mut self) -> Value {
        self.constants[usize::from(self.byte())]
    }

    #[inline(always)]
    fn string(&mut self) -> Gc<ObjString> {
        self.constant()
            .as_object()
            .expect("name operands are string constants")
    }
}

/// Pops two numbers and pushes `make(a op b)`, or fails with the book's
/// message.
macro_rules! binary_number {
    ($vm:ident, $cursor:ident, $make:path, $op:tt) => {{
        let len = $vm.stack.len();
        match ($vm.stack[len - 2].as_number(), $vm.stack[len - 1].as_number()) {
            (Some(a), Some(b)) => {
                $vm.stack.pop();
                $vm.stack[len - 2] = $make(a $op b);
            }
            _ => return Err($vm.fail(&$cursor, "Operands must be numbers.")),
        }
    }};
}

impl Vm {
    /// Runs until the script's frame returns.
    pub(super) fn run(&mut self) -> Result<(), RunError> {
        let mut cursor = self.cursor();
        loop {
            if self.heap.safepoint_requested() {
                self.save(&cursor);
                self.heap.safepoint();
                cursor = self.cursor();
            }
            let byte = cursor.byte();
            let op = OpCode::from_byte(byte).unwrap_or_else(|| panic!("bad opcode {byte}"));
            match op {
                OpCode::Constant => {
                    let value = cursor.constant();
                    self.stack.push(value);
                }
                OpCode::Nil => self.stack.push(Value::NIL),
                OpCode::True => self.stack.push(Value::TRUE),
                OpCode::False => self.stack.push(Value::FALSE),
                OpCode::Pop => {
                    self.pop();
                }
                OpCode::GetLocal => {
                    let slot = cursor.base + usize::from(cursor.byte());
                    self.stack.push(self.stack[slot]);
                }
                OpCode::SetLocal => {
                    let slot = cursor.base + usize::from(cursor.byte());
                    self.stack[slot] = self.peek(0);
                }
                OpCode::GetGlobal => {
                    let name = cursor.string();
                    match self.globals.get(name) {
                        Some(value) => self.stack.push(value),
                        None => return Err(self.fail(&cursor, undefined_variable(name))),
                    }
                }
                OpCode::DefineGlobal => {
                    let name = cursor.string();
                    self.globals.set(name, self.peek(0));
                    self.pop();
                }
                OpCode::SetGlobal => {
                    let name = cursor.string();
                    if !self.globals.set_existing(name, self.peek(0)) {
                        return Err(self.fail(&cursor, undefined_variable(name)));
                    }
                }
                OpCode::GetUpvalue => {
                    let upvalue = cursor.closure.upvalues[usize::from(cursor.byte())];
                    let value = match upvalue.state() {
                        UpvalueState::Open(slot) => self.stack[slot],
                        UpvalueState::Closed(value) => value,
                    };
                    self.stack.push(value);
                }
                OpCode::SetUpvalue => {
                    let upvalue = cursor.closure.upvalues[usize::from(cursor.byte())];
                    let value = self.peek(0);
                    match upvalue.state() {
                        UpvalueState::Open(slot) => self.stack[slot] = value,
                        UpvalueState::Closed(_) => self.heap.close_upvalue(upvalue, value),
                    }
                }
                OpCode::GetProperty => {
                    let name = cursor.string();
                    let Some(instance) = self.peek(0).as_object::<ObjInstance>() else {
                        return Err(self.fail(&cursor, "Only instances have properties."));
                    };
                    if let Some(value) = instance.field(name) {
                        *self.top() = value;
                    } else if let Err(message) = self.bind_method(instance.class, name) {
                        return Err(self.fail(&cursor, message));
                    }
                }
                OpCode::SetProperty => {
                    let name = cursor.string();
                    let Some(instance) = self.peek(1).as_object::<ObjInstance>() else {
                        return Err(self.fail(&cursor, "Only instances have fields."));
                    };
                    let value = self.pop();
                    self.heap.set_field(instance, name, value);
                    *self.top() = value;
                }
                OpCode::GetSuper => {
                    let name = cursor.string();
                    let superclass = self.pop_class();
                    if let Err(message) = self.bind_method(superclass, name) {
                        return Err(self.fail(&cursor, message));
                    }
                }
                OpCode::Equal => {
                    let b = self.pop();
                    let a = self.top();
                    *a = Value::bool(a.equals(b));
                }
                OpCode::Greater => binary_number!(self, cursor, Value::bool, >),
                OpCode::Less => binary_number!(self, cursor, Value::bool, <),
                OpCode::Add => self.add(&cursor)?,
                OpCode::Subtract => binary_number!(self, cursor, Value::number, -),
                OpCode::Multiply => binary_number!(self, cursor, Value::number, *),
                OpCode::Divide => binary_number!(self, cursor, Value::number, /),
                OpCode::Not => {
                    let top = self.top();
                    *top = Value::bool(top.is_falsey());
                }
                OpCode::Negate => {
                    let Some(n) = self.peek(0).as_number() else {
                        return Err(self.fail(&cursor, "Operand must be a number."));
                    };
                    *self.top() = Value::number(-n);
                }
                OpCode::Print => {
                    let value = self.pop();
                    writeln!(self.out, "{value}")?;
                }
                OpCode::Jump => {
                    let offset = cursor.short();
                    cursor.ip += offset;
                }
                OpCode::JumpIfFalse => {
                    let offset = cursor.short();
                    if self.peek(0).is_falsey() {
                        cursor.ip += offset;
                    }
                }
                OpCode::Loop => {
                    let offset = cursor.short();
                    cursor.ip -= offset;
                }
                OpCode::Call => {
                    let argc = usize::from(cursor.byte());
                    self.save(&cursor);
                    if let Err(message) = self.call_value(self.peek(argc), argc) {
                        return Err(self.fail(&cursor, message));
                    }
                    cursor = self.cursor();
                }
                OpCode::Invoke => {
                    let name = cursor.string();
                    let argc = usize::from(cursor.byte());
                    self.save(&cursor);
                    if let Err(message) = self.invoke(name, argc) {
                        return Err(self.fail(&cursor, message));
                    }
                    cursor = self.cursor();
                }
                OpCode::SuperInvoke => {
                    let name = cursor.string();
                    let argc = usize::from(cursor.byte());
                    let superclass = self.pop_class();
                    self.save(&cursor);
                    if let Err(message) = self.invoke_from_class(superclass, name, argc) {
                        return Err(self.fail(&cursor, message));
                    }
                    cursor = self.cursor();
                }
                OpCode::Closure => {
                    let function: Gc<ObjFunction> = cursor
                        .constant()
                        .as_object()
                        .expect("OP_CLOSURE names a function constant");
                    let upvalues = (0..function.upvalue_count)
                        .map(|_| {
                            let is_local = cursor.byte() == 1;
                            let index = usize::from(cursor.byte());
                            if is_local {
                                self.capture_upvalue(cursor.base + index)
                            } else {
                                cursor.closure.upvalues[index]
                            }
                        })
                        .collect();
                    let closure = self.heap.alloc_closure(function, upvalues);
                    self.stack.push(Value::from(closure));
                }
                OpCode::CloseUpvalue => {
                    self.close_upvalues(self.stack.len() - 1);
                    self.pop();
                }
                OpCode::Return => {
                    let result = self.pop();
                    self.close_upvalues(cursor.base);
                    self.frames.pop();
                    if self.frames.is_empty() {
                        // Pop the script's closure.
                        self.pop();
                        return Ok(());
                    }
                    self.stack.truncate(cursor.base);
                    self.stack.push(result);
                    cursor = self.cursor();
                }
                OpCode::Class => {
                    let name = cursor.string();
                    let class = self.heap.alloc_class(name);
                    self.stack.push(Value::from(class));
                }
                OpCode::Inherit => {
                    let Some(superclass) = self.peek(1).as_object::<ObjClass>() else {
                        return Err(self.fail(&cursor, "Superclass must be a class."));
                    };
                    let subclass = self.pop_class();
                    self.heap.inherit(subclass, superclass);
                }
                OpCode::Method => {
                    let name = cursor.string();
                    let method = self
                        .pop()
                        .as_object::<ObjClosure>()
                        .expect("OP_METHOD follows OP_CLOSURE");
                    let class = self
                        .peek(0)
                        .as_object::<ObjClass>()
                        .expect("OP_METHOD runs with the class below the method");
                    self.heap.add_method(class, name, method);
                }
            }
        }
    }

    /// `OP_ADD`: numbers add, strings concatenate, anything else fails.
    #[inline(always)]
    fn add(&mut self, cursor: &Cursor<'_>) -> Result<(), RunError> {
        let len = self.stack.len();
        let (a, b) = (self.stack[len - 2], self.stack[len - 1]);
        let sum = if let (Some(a), Some(b)) = (a.as_number(), b.as_number()) {
            Value::number(a + b)
        } else if let (Some(a), Some(b)) = (a.as_object::<ObjString>(), b.as_object::<ObjString>())
        {
            Value::from(self.heap.concat(&a, &b))
        } else {
            return Err(self.fail(cursor, "Operands must be two numbers or two strings."));
        };
        self.stack.pop();
        self.stack[len - 2] = sum;
        Ok(())
    }

    /// The cursor of the innermost frame.
    fn cursor<'h>(&self) -> Cursor<'h> {
        Cursor::new(self.frames.last().expect("the loop runs only with a frame"))
    }

    /// Writes the cursor's `ip` back into its frame.
    fn save(&mut self, cursor: &Cursor<'_>) {
        self.frames
            .last_mut()
            .expect("the loop runs only with a frame")
            .ip = cursor.ip;
    }

    /// A runtime error at the cursor's instruction.
    #[cold]
    fn fail(&mut self, cursor: &Cursor<'_>, message: impl Into<String>) -> RunError {
        self.save(cursor);
        RunError::Runtime(self.runtime_error(message.into()))
    }

    #[inline(always)]
    fn pop(&mut self) -> Value {
        self.stack.pop().expect("the compiler balances the stack")
    }

    #[inline(always)]
    fn peek(&self, distance: usize) -> Value {
        self.stack[self.stack.len() - 1 - distance]
    }

    #[inline(always)]
    fn top(&mut self) -> &mut Value {
        self.stack
            .last_mut()
            .expect("the compiler balances the stack")
    }

    /// Pops the superclass that `super` expressions push (a local that
    /// `OP_INHERIT` checked to be a class).
    fn pop_class(&mut self) -> Gc<ObjClass> {
        self.pop()
            .as_object()
            .expect("`super` is bound to a class by OP_INHERIT")
    }
}

#[cold]
fn undefined_variable(name: Gc<ObjString>) -> String {
    format!("Undefined variable '{}'.", name.as_str())
}
