//! The dispatch loop.
//!
//! One `match` over the opcode per iteration. The running frame's code,
//! constants, instruction index and stack base are cached in a `Cursor` held
//! in locals (registers, mostly); the frame record is only brought up to
//! date when something else needs it: a call or return (frames change), a
//! runtime error (the trace reads every frame's `ip`), and a safepoint.
//! Nothing here allocates except the instructions whose job is to allocate
//! (`OP_CLOSURE`, `OP_CLASS`, string `OP_ADD`, calling a class, binding a
//! method, capturing an upvalue), which allocate one object each on spangc;
//! besides those, a hash table (globals, fields, methods) grows when a new
//! key no longer fits, and a runtime error formats its message.
//!
//! # Safepoints
//!
//! The loop runs inside one interval (see `state.rs`): the stack and frames
//! are `Exec`'s own vectors for its whole length. After each instruction
//! that may allocate, or that jumps backwards or between frames (the list
//! is `safepoint_after`), it polls `Heap::safepoint_requested`. When a
//! collection is due, it writes `ip` back into the frame and returns
//! `Interval::Safepoint`; `Vm`'s outer loop puts the vectors back, calls the
//! safepoint, and starts the next interval, which rebuilds the cursor from
//! the frame. At that moment no Rust local holds a heap reference, and every
//! live value is on the stack, in a frame, in an open upvalue or in a global
//! (or reachable from one). The time to reach a safepoint is at most one
//! function's straight-line code, and under `--gc-stress` spangc collects
//! at every poll.

use super::RunError;
use super::state::{CallFrame, Exec, Interval};
use crate::chunk::OpCode;
use crate::object::{
    ClosureObject, Gc, ObjClass, ObjClosure, ObjFunction, ObjInstance, ObjString, ObjUpvalue,
    StringObject, UpvalueState, Value,
};

/// The running frame, unpacked for the dispatch loop.
struct Cursor<'s> {
    /// A thin pointer: `&ObjClosure` would be a fat one (closures are
    /// dynamically sized), and the extra word pushes the cursor out of
    /// registers (measured: calls 20% slower).
    closure: Gc<'s, ObjClosure<'s>>,
    code: &'s [u8],
    constants: &'s [Value<'s>],
    ip: usize,
    base: usize,
}

impl<'s> Cursor<'s> {
    fn new(frame: &CallFrame<'s>) -> Cursor<'s> {
        let function = Gc::get(frame.closure.function());
        Cursor {
            closure: frame.closure,
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
    fn constant(&mut self) -> Value<'s> {
        self.constants[usize::from(self.byte())]
    }

    #[inline(always)]
    fn upvalue(&mut self) -> Gc<'s, ObjUpvalue<'s>> {
        let index = usize::from(self.byte());
        Gc::get(self.closure).upvalues()[index]
    }

    #[inline(always)]
    fn string(&mut self) -> Gc<'s, ObjString> {
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
            _ => return $vm.fail(&$cursor, "Operands must be numbers."),
        }
    }};
}

impl<'s> Exec<'s, '_> {
    /// Runs the script from the innermost frame until it returns, fails, or
    /// a safepoint is due.
    ///
    /// Kept out of line: inlined into its caller, the loop's registers are
    /// allocated worse (measured: fib 7% slower).
    #[inline(never)]
    pub(super) fn run_interval(&mut self) -> Interval {
        let mut cursor = self.cursor();
        loop {
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
                        None => return self.fail(&cursor, undefined_variable(name)),
                    }
                }
                OpCode::DefineGlobal => {
                    let name = cursor.string();
                    self.globals.set(self.heap, name, self.peek(0));
                    self.pop();
                }
                OpCode::SetGlobal => {
                    let name = cursor.string();
                    if !self.globals.set_existing(self.heap, name, self.peek(0)) {
                        return self.fail(&cursor, undefined_variable(name));
                    }
                }
                OpCode::GetUpvalue => {
                    let upvalue = cursor.upvalue();
                    let value = match upvalue.state() {
                        UpvalueState::Open(slot) => self.stack[slot],
                        UpvalueState::Closed(value) => value,
                    };
                    self.stack.push(value);
                }
                OpCode::SetUpvalue => {
                    let upvalue = cursor.upvalue();
                    let value = self.peek(0);
                    match upvalue.state() {
                        UpvalueState::Open(slot) => self.stack[slot] = value,
                        UpvalueState::Closed(_) => self.heap.close_upvalue(upvalue, value),
                    }
                }
                OpCode::GetProperty => {
                    let name = cursor.string();
                    let Some(instance) = self.peek(0).as_object::<ObjInstance>() else {
                        return self.fail(&cursor, "Only instances have properties.");
                    };
                    if let Some(value) = instance.field(name) {
                        *self.top() = value;
                    } else if let Err(message) = self.bind_method(instance.class, name) {
                        return self.fail(&cursor, message);
                    }
                }
                OpCode::SetProperty => {
                    let name = cursor.string();
                    let Some(instance) = self.peek(1).as_object::<ObjInstance>() else {
                        return self.fail(&cursor, "Only instances have fields.");
                    };
                    let value = self.pop();
                    self.heap.set_field(instance, name, value);
                    *self.top() = value;
                }
                OpCode::GetSuper => {
                    let name = cursor.string();
                    let superclass = self.pop_class();
                    if let Err(message) = self.bind_method(superclass, name) {
                        return self.fail(&cursor, message);
                    }
                }
                OpCode::Equal => {
                    let b = self.pop();
                    let a = self.top();
                    *a = Value::bool(a.equals(b));
                }
                OpCode::Greater => binary_number!(self, cursor, Value::bool, >),
                OpCode::Less => binary_number!(self, cursor, Value::bool, <),
                OpCode::Add => {
                    let len = self.stack.len();
                    let (a, b) = (self.stack[len - 2], self.stack[len - 1]);
                    if let (Some(a), Some(b)) = (a.as_number(), b.as_number()) {
                        self.stack.pop();
                        self.stack[len - 2] = Value::number(a + b);
                        // Allocated nothing: no safepoint after it.
                        continue;
                    }
                    let (Some(a), Some(b)) =
                        (a.as_object::<ObjString>(), b.as_object::<ObjString>())
                    else {
                        return self.fail(&cursor, "Operands must be two numbers or two strings.");
                    };
                    let joined = self.heap.concat(&a, &b);
                    self.stack.pop();
                    self.stack[len - 2] = Value::from(joined);
                }
                OpCode::Subtract => binary_number!(self, cursor, Value::number, -),
                OpCode::Multiply => binary_number!(self, cursor, Value::number, *),
                OpCode::Divide => binary_number!(self, cursor, Value::number, /),
                OpCode::Not => {
                    let top = self.top();
                    *top = Value::bool(top.is_falsey());
                }
                OpCode::Negate => {
                    let Some(n) = self.peek(0).as_number() else {
                        return self.fail(&cursor, "Operand must be a number.");
                    };
                    *self.top() = Value::number(-n);
                }
                OpCode::Print => {
                    let value = self.pop();
                    if let Err(error) = writeln!(self.out, "{value}") {
                        return Interval::Finished(Err(error.into()));
                    }
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
                        return self.fail(&cursor, message);
                    }
                    cursor = self.cursor();
                }
                OpCode::Invoke => {
                    let name = cursor.string();
                    let argc = usize::from(cursor.byte());
                    self.save(&cursor);
                    if let Err(message) = self.invoke(name, argc) {
                        return self.fail(&cursor, message);
                    }
                    cursor = self.cursor();
                }
                OpCode::SuperInvoke => {
                    let name = cursor.string();
                    let argc = usize::from(cursor.byte());
                    let superclass = self.pop_class();
                    self.save(&cursor);
                    if let Err(message) = self.invoke_from_class(superclass, name, argc) {
                        return self.fail(&cursor, message);
                    }
                    cursor = self.cursor();
                }
                OpCode::Closure => {
                    let function: Gc<'s, ObjFunction<'s>> = cursor
                        .constant()
                        .as_object()
                        .expect("OP_CLOSURE names a function constant");
                    // Two operand bytes per upvalue: is-local, index. The
                    // iterator captures copies, not the cursor: a cursor
                    // whose address escapes into the (not inlined)
                    // allocation would live in memory for the whole loop.
                    let (code, operands, base) = (cursor.code, cursor.ip, cursor.base);
                    let enclosing = cursor.closure;
                    cursor.ip += 2 * function.upvalue_count;
                    let heap = self.heap;
                    let upvalues = (0..function.upvalue_count).map(|i| {
                        let index = usize::from(code[operands + 2 * i + 1]);
                        if code[operands + 2 * i] == 1 {
                            self.capture_upvalue(base + index)
                        } else {
                            enclosing.upvalues()[index]
                        }
                    });
                    // The upvalues go straight into the closure object as
                    // they are captured (which may allocate upvalues).
                    let closure = heap.alloc_closure(function, upvalues);
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
                        return Interval::Finished(Ok(()));
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
                        return self.fail(&cursor, "Superclass must be a class.");
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
            if safepoint_after(op) && self.heap.safepoint_requested() {
                self.save(&cursor);
                return Interval::Safepoint;
            }
        }
    }

    /// The cursor of the innermost frame.
    fn cursor(&self) -> Cursor<'s> {
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
    fn fail(&mut self, cursor: &Cursor<'_>, message: impl Into<String>) -> Interval {
        self.save(cursor);
        Interval::Finished(Err(RunError::Runtime(self.runtime_error(message.into()))))
    }

    #[inline(always)]
    fn pop(&mut self) -> Value<'s> {
        self.stack.pop().expect("the compiler balances the stack")
    }

    #[inline(always)]
    fn peek(&self, distance: usize) -> Value<'s> {
        self.stack[self.stack.len() - 1 - distance]
    }

    #[inline(always)]
    fn top(&mut self) -> &mut Value<'s> {
        self.stack
            .last_mut()
            .expect("the compiler balances the stack")
    }

    /// Pops the superclass that `super` expressions push (a local that
    /// `OP_INHERIT` checked to be a class).
    fn pop_class(&mut self) -> Gc<'s, ObjClass<'s>> {
        self.pop()
            .as_object()
            .expect("`super` is bound to a class by OP_INHERIT")
    }
}

/// Whether a safepoint follows `op`: it may have allocated (so a
/// collection may be due), or it jumped backwards or between frames (so
/// that every loop and every call reaches one). `OP_ADD` is listed for
/// strings; adding numbers skips the poll. The others run straight on: at
/// most one function's straight-line code (jumps forward only) separates two
/// safepoints. A `matches!` on the opcode compiles to a bit test.
#[inline(always)]
fn safepoint_after(op: OpCode) -> bool {
    matches!(
        op,
        OpCode::Loop
            | OpCode::Call
            | OpCode::Invoke
            | OpCode::SuperInvoke
            | OpCode::Return
            | OpCode::Closure
            | OpCode::Class
            | OpCode::Method
            | OpCode::Inherit
            | OpCode::Add
            | OpCode::GetProperty
            | OpCode::GetSuper
            | OpCode::SetProperty
            | OpCode::DefineGlobal
    )
}

#[cold]
fn undefined_variable(name: Gc<'_, ObjString>) -> String {
    format!("Undefined variable '{}'.", name.as_str())
}
