//! The VM's rooted state, and `Exec`: its view of that state during one
//! safepoint interval.
//!
//! `VmState` is a heap object (rooted by `Vm`) whose growing parts sit in
//! `GcRefCell`s: the stack, the frames and the open upvalues; the globals
//! are a `Table`, which has its own cells. Keeping them in the heap rather
//! than in Rust fields of `Vm` is what makes them roots: the collector
//! traces the object like any other, and a `Value<'s>` can only be stored
//! where the type system knows it is traced.
//!
//! `with_exec` opens an interval: it re-gets the state from its root and
//! *moves* the stack, frames and open upvalues out of their cells into an
//! `Exec` (two `RefCell` flag writes per vector per interval, none per
//! instruction), so that the dispatch loop indexes the stack as a field of
//! its own, exactly as a VM with no collector would; it moves them back when
//! the interval ends. That is sound because nothing can collect during the
//! interval (a collection needs the `&mut` scope that the interval's shared
//! borrow `'s` excludes), so it does not matter that the vectors are
//! outside the heap meanwhile; and everything in `Exec` is branded with
//! `'s`, so nothing in it can outlive `with_exec`, which puts the vectors
//! back before it returns and before the caller can reach
//! `Mutation::safepoint`. (If the interval panicked, the VM would be dead
//! with empty vectors: nothing dangles.)

use std::cell::RefMut;
use std::io::Write;

use super::RuntimeError;
use crate::object::{
    ClosureObject, Gc, GcRefCell, Heap, ObjClosure, ObjUpvalue, Root, StringObject, Table, Trace,
    Value,
};

/// The VM's roots: see the module docs.
#[derive(Trace)]
pub(super) struct VmState<'gc> {
    stack: GcRefCell<Vec<Value<'gc>>>,
    frames: GcRefCell<Vec<CallFrame<'gc>>>,
    /// Open upvalues, sorted by stack slot, lowest first.
    open_upvalues: GcRefCell<Vec<Gc<'gc, ObjUpvalue<'gc>>>>,
    pub(super) globals: Table<'gc>,
}

impl VmState<'_> {
    /// Empty state with room for `frames_max` frames of 256 slots.
    pub(super) fn new<'gc>(frames_max: usize) -> VmState<'gc> {
        VmState {
            stack: GcRefCell::new(Vec::with_capacity(frames_max * 256)),
            frames: GcRefCell::new(Vec::with_capacity(frames_max)),
            open_upvalues: GcRefCell::new(Vec::new()),
            globals: Table::new(),
        }
    }
}

/// One active call.
#[derive(Clone, Copy, Trace)]
pub(super) struct CallFrame<'gc> {
    /// The closure running.
    pub(super) closure: Gc<'gc, ObjClosure<'gc>>,
    /// The next instruction, as an index into its function's code. Saved
    /// only when the frame is left or inspected (calls, errors, safepoints);
    /// the dispatch loop keeps the live copy in a register.
    pub(super) ip: usize,
    /// The stack index of the frame's slot 0 (the callee or `this`).
    pub(super) base: usize,
}

/// How an interval of the dispatch loop ended.
pub(super) enum Interval {
    /// A collection is wanted: step out, reach the safepoint, come back.
    Safepoint,
    /// The script returned or failed.
    Finished(Result<(), super::RunError>),
}

/// The VM's state as one interval sees it. See the module docs.
pub(super) struct Exec<'s, 'a> {
    pub(super) heap: Heap<'s>,
    pub(super) stack: Vec<Value<'s>>,
    pub(super) frames: Vec<CallFrame<'s>>,
    pub(super) open_upvalues: Vec<Gc<'s, ObjUpvalue<'s>>>,
    pub(super) globals: &'s Table<'s>,
    pub(super) out: &'a mut dyn Write,
}

/// Runs `f` with the VM's state moved into an `Exec` for one interval, and
/// moves it back afterwards.
pub(super) fn with_exec<'s, R>(
    heap: Heap<'s>,
    state: &Root<VmState<'static>>,
    out: &mut dyn Write,
    f: impl FnOnce(&mut Exec<'s, '_>) -> R,
) -> R {
    let state = Gc::get(heap.get(state));
    let mut exec = Exec {
        heap,
        stack: take(heap.write(&state.stack)),
        frames: take(heap.write(&state.frames)),
        open_upvalues: take(heap.write(&state.open_upvalues)),
        globals: &state.globals,
        out,
    };
    let result = f(&mut exec);
    *heap.write(&state.stack) = exec.stack;
    *heap.write(&state.frames) = exec.frames;
    *heap.write(&state.open_upvalues) = exec.open_upvalues;
    result
}

/// Moves a vector out of its cell, leaving an empty one (which does not
/// allocate).
fn take<T>(mut cell: RefMut<'_, Vec<T>>) -> Vec<T> {
    std::mem::take(&mut *cell)
}

impl Exec<'_, '_> {
    /// Builds the error for `message` with the current stack trace, then
    /// resets the stack. The innermost frame's `ip` must be saved.
    pub(super) fn runtime_error(&mut self, message: String) -> RuntimeError {
        let trace = self
            .frames
            .iter()
            .rev()
            .map(|frame| {
                let function = frame.closure.function();
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
