//! The virtual machine: loads compiled scripts onto the heap and runs them.
//!
//! Layout: this file holds the VM's state, loading (`FunctionProto` to heap
//! objects), runtime errors with their stack traces, and the native
//! functions; `run.rs` is the dispatch loop; `calls.rs` is calls, method
//! invocation, binding, and upvalue capture and closing.
//!
//! # State and roots
//!
//! The VM's state is its value stack, its call frames (at most 64, the
//! book's `FRAMES_MAX`), the open upvalues (sorted by stack slot, so
//! closing the upvalues of a returning frame pops from the end), and the
//! globals. These are exactly the GC roots: every object the running program
//! can reach is reachable from them whenever the dispatch loop stands at a
//! safepoint (the top of an iteration), because every instruction leaves its
//! results on the stack. On spangc they move into one rooted heap object
//! (`VmState`) as API-DESIGN.md describes.
//!
//! # Output and errors
//!
//! `print` writes to the VM's output (buffered stdout in the binary). A
//! runtime error carries the book's message and one trace line per active
//! frame, innermost first; after one, the VM's stack is reset and it can run
//! the next REPL line with its globals intact.

mod calls;
mod run;

use std::fmt;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::time::Instant;

use crate::chunk::{Constant, FunctionProto};
use crate::object::{
    Gc, Heap, HeapConfig, HeapStats, ObjClosure, ObjFunction, ObjUpvalue, Table, Value,
};

/// The deepest call stack, counting the script's frame: clox's `FRAMES_MAX`.
const FRAMES_MAX: usize = 64;

/// One active call.
#[derive(Clone, Copy, Debug)]
struct CallFrame {
    /// The closure running.
    closure: Gc<ObjClosure>,
    /// The next instruction, as an index into its function's code. Saved
    /// only when the frame is left or inspected (calls, errors, safepoints);
    /// the dispatch loop keeps the live copy in a register.
    ip: usize,
    /// The stack index of the frame's slot 0 (the callee or `this`).
    base: usize,
}

/// A runtime error: the message and the stack trace, as clox prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeError {
    /// The message, e.g. `Operands must be numbers.`.
    pub message: String,
    /// `[line N] in f()` / `[line N] in script`, innermost first.
    pub trace: Vec<String>,
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.message)?;
        for line in &self.trace {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// Why running a script stopped early.
#[derive(Debug)]
pub enum RunError {
    /// The program failed (exit code 70).
    Runtime(RuntimeError),
    /// Writing the program's output failed (exit code 74).
    Io(io::Error),
}

impl From<io::Error> for RunError {
    fn from(error: io::Error) -> RunError {
        RunError::Io(error)
    }
}

/// A Lox virtual machine with its heap and globals.
pub struct Vm {
    heap: Heap,
    stack: Vec<Value>,
    frames: Vec<CallFrame>,
    /// Open upvalues, sorted by stack slot, lowest first.
    open_upvalues: Vec<Gc<ObjUpvalue>>,
    globals: Table,
    out: Box<dyn Write>,
}

impl Vm {
    /// A VM that prints to `out`, with the native `clock` defined.
    pub fn new(config: HeapConfig, out: Box<dyn Write>) -> Vm {
        let heap = Heap::new(config);
        let mut globals = Table::new();
        let clock_name = heap.intern("clock");
        globals.set(clock_name, Value::from(heap.alloc_native(clock)));
        // Start the clock now, so clock() counts from the VM's birth.
        START.get_or_init(Instant::now);
        Vm {
            heap,
            stack: Vec::with_capacity(FRAMES_MAX * 256),
            frames: Vec::with_capacity(FRAMES_MAX),
            open_upvalues: Vec::new(),
            globals,
            out,
        }
    }

    /// What the heap has done so far.
    pub fn heap_stats(&self) -> HeapStats {
        self.heap.stats()
    }

    /// Loads and runs a compiled script. Output is flushed before returning.
    pub fn interpret(&mut self, script: FunctionProto) -> Result<(), RunError> {
        let function = self.load(script);
        let closure = self.heap.alloc_closure(function, Box::new([]));
        self.stack.push(Value::from(closure));
        let result = match self.call_closure(closure, 0) {
            Ok(()) => self.run(),
            Err(message) => Err(RunError::Runtime(self.runtime_error(message))),
        };
        self.out.flush()?;
        result
    }

    /// Turns a compiled function (and those nested in it) into heap objects,
    /// interning its string constants.
    fn load(&self, proto: FunctionProto) -> Gc<ObjFunction> {
        let constants = proto
            .chunk
            .constants
            .into_iter()
            .map(|constant| match constant {
                Constant::Number(n) => Value::number(n),
                Constant::String(text) => Value::from(self.heap.intern(&text)),
                Constant::Function(inner) => Value::from(self.load(*inner)),
            })
            .collect();
        self.heap.alloc_function(ObjFunction {
            name: proto.name.map(|name| self.heap.intern(&name)),
            arity: proto.arity,
            upvalue_count: proto.upvalue_count,
            code: proto.chunk.code.into_boxed_slice(),
            lines: proto.chunk.lines.into_boxed_slice(),
            constants,
        })
    }

    /// Builds the error for `message` with the current stack trace, then
    /// resets the stack. The innermost frame's `ip` must be saved.
    fn runtime_error(&mut self, message: String) -> RuntimeError {
        let trace = self
            .frames
            .iter()
            .rev()
            .map(|frame| {
                let function = &frame.closure.function;
                let line = function.lines[frame.ip.saturating_sub(1)];
                match function.name {
                    Some(name) => format!("[line {line}] in {}()", name.as_str()),
                    None => format!("[line {line}] in script"),
                }
            })
            .collect();
        self.stack.clear();
        self.frames.clear();
        self.open_upvalues.clear();
        RuntimeError { message, trace }
    }
}

/// When the first VM was created; `clock()` counts from here.
static START: OnceLock<Instant> = OnceLock::new();

/// `clock()`: seconds since the VM started, as a number. (clox returns
/// processor time; a single-threaded interpreter's wall time is the same
/// thing up to I/O waits, and benchmarks want wall time.)
fn clock(_args: &[Value]) -> Value {
    Value::number(START.get_or_init(Instant::now).elapsed().as_secs_f64())
}
