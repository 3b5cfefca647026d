//! The virtual machine: loads compiled scripts onto the heap and runs them.
//!
//! Layout: this file holds the `Vm` (the heap, the root of the VM's state,
//! the output), loading (`FunctionProto` to heap objects), the outer run
//! loop that reaches safepoints, runtime errors and the native functions;
//! `state.rs` is the VM's rooted state and `Exec`, its view of that state
//! during one safepoint interval; `run.rs` is the dispatch loop; `calls.rs`
//! is calls, method invocation, binding, and upvalue capture and closing.
//!
//! # Roots and safepoints
//!
//! The VM's state (value stack, call frames, open upvalues, globals) is one
//! heap object, `VmState`, held by a `Root` for the VM's whole life: these
//! are exactly the GC roots, with the object layer's own root (the
//! interning set and `"init"`). Running a script alternates two steps:
//!
//! 1. an *interval*: `state::with_exec` borrows the state's cells once
//!    (`RefMut`s held for the whole interval, so the dispatch loop pays no
//!    `RefCell` flag per instruction) and runs the dispatch loop, which
//!    polls `Heap::safepoint_requested` after every instruction that may
//!    allocate or that jumps backwards or between frames (`run.rs`) and
//!    returns `Interval::Safepoint` when it says so, after writing the
//!    running frame's `ip` back;
//! 2. the *safepoint*: with every borrow dropped, `Mutation::safepoint`
//!    (which takes `&mut`, so no `Gc` of the interval can survive it; the
//!    compiler rejects any that tried) lets spangc collect.
//!
//! At a safepoint every object the program can still reach is reachable
//! from the roots, because every instruction leaves its results on the
//! stack, in a frame, an upvalue, a global or a field: the dispatch loop
//! holds nothing else but the cursor, which it rebuilds from the frames.
//!
//! # Output and errors
//!
//! `print` writes to the VM's output (buffered stdout in the binary). A
//! runtime error carries the book's message and one trace line per active
//! frame, innermost first; after one, the VM's stack is reset and it can run
//! the next REPL line with its globals intact.

mod calls;
mod run;
mod state;

use std::fmt;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::time::Instant;

use crate::chunk::{Constant, FunctionProto};
use crate::object::{
    Gc, GcHeap, Heap, HeapConfig, HeapError, Mutation, ObjFunction, Root, Stats, Value,
};
use state::{Interval, VmState, with_exec};

/// The deepest call stack, counting the script's frame: clox's `FRAMES_MAX`.
const FRAMES_MAX: usize = 64;

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
    heap: GcHeap,
    /// The stack, frames, open upvalues and globals (see the module docs).
    state: Root<VmState<'static>>,
    out: Box<dyn Write>,
}

impl Vm {
    /// A VM that prints to `out`, with the native `clock` defined. Fails if
    /// the heap cannot be made (an invalid `SPANGC_*` variable, or the OS
    /// refusing memory).
    pub fn new(config: HeapConfig, out: Box<dyn Write>) -> Result<Vm, HeapError> {
        let mut heap = GcHeap::new(config)?;
        let state = heap.enter(|m| {
            let heap = m.heap();
            let state = heap.alloc_root(VmState::new(FRAMES_MAX));
            let clock_name = heap.intern("clock");
            let clock = Value::from(heap.alloc_native(clock));
            heap.get(&state).globals.set(heap, clock_name, clock);
            state
        });
        // Start the clock now, so clock() counts from the VM's birth.
        START.get_or_init(Instant::now);
        Ok(Vm { heap, state, out })
    }

    /// The heap's figures so far.
    pub fn heap_stats(&self) -> Stats {
        self.heap.stats()
    }

    /// Distinct strings interned so far.
    pub fn strings_interned(&mut self) -> usize {
        self.heap.strings_interned()
    }

    /// Loads and runs a compiled script. Output is flushed before returning.
    pub fn interpret(&mut self, script: FunctionProto) -> Result<(), RunError> {
        let Vm { heap, state, out } = self;
        let result = heap.enter(|m| {
            let started = with_exec(m.heap(), state, &mut **out, |exec| {
                let function = load(exec.heap, script);
                let closure = exec.heap.alloc_closure(function, []);
                exec.stack.push(Value::from(closure));
                exec.call_closure(closure, 0)
                    .map_err(|message| exec.runtime_error(message))
            });
            match started {
                Ok(()) => run(m, state, &mut **out),
                Err(error) => Err(RunError::Runtime(error)),
            }
        });
        out.flush()?;
        result
    }
}

/// Runs intervals of the dispatch loop, with a safepoint between each two,
/// until the script's frame returns or fails.
fn run(
    m: &mut Mutation<'_>,
    state: &Root<VmState<'static>>,
    out: &mut dyn Write,
) -> Result<(), RunError> {
    loop {
        match with_exec(m.heap(), state, &mut *out, |exec| exec.run_interval()) {
            Interval::Safepoint => m.safepoint(),
            Interval::Finished(result) => return result,
        }
    }
}

/// Turns a compiled function (and those nested in it) into heap objects,
/// interning its string constants. Allocates the whole tree with no
/// safepoint in between, so the fresh objects need no rooting until the
/// caller pushes the script's closure on the stack.
fn load<'s>(heap: Heap<'s>, proto: FunctionProto) -> Gc<'s, ObjFunction<'s>> {
    let constants = proto
        .chunk
        .constants
        .into_iter()
        .map(|constant| match constant {
            Constant::Number(n) => Value::number(n),
            Constant::String(text) => Value::from(heap.intern(&text)),
            Constant::Function(inner) => Value::from(load(heap, *inner)),
        })
        .collect();
    heap.alloc_function(ObjFunction {
        name: proto.name.map(|name| heap.intern(&name)),
        arity: proto.arity,
        upvalue_count: proto.upvalue_count,
        code: proto.chunk.code.into_boxed_slice(),
        lines: proto.chunk.lines.into_boxed_slice(),
        constants,
    })
}

/// When the first VM was created; `clock()` counts from here.
static START: OnceLock<Instant> = OnceLock::new();

/// `clock()`: seconds since the VM started, as a number. (clox returns
/// processor time; a single-threaded interpreter's wall time is the same
/// thing up to I/O waits, and benchmarks want wall time.)
fn clock<'gc>(_args: &[Value<'gc>]) -> Value<'gc> {
    Value::number(START.get_or_init(Instant::now).elapsed().as_secs_f64())
}
