//! Calls, method invocation and binding, and upvalues.
//!
//! Calling convention (the book's): the callee sits below its arguments on
//! the stack and becomes the new frame's slot 0; for methods slot 0 is the
//! receiver (`this`). A Lox call pushes a frame and returns; the dispatch
//! loop then continues in the callee. Natives run to completion here.
//!
//! `invoke` is `OP_INVOKE`'s fast path: `receiver.name(args)` looks the
//! method up and calls it directly, without the bound method that
//! `OP_GET_PROPERTY` followed by `OP_CALL` would allocate. A field holding a
//! function shadows a method of the same name, as the book requires.
//!
//! Errors are returned as the bare message; the dispatch loop attaches the
//! stack trace (`Exec::runtime_error`).

use super::FRAMES_MAX;
use super::state::{CallFrame, Exec};
use crate::object::{
    ClosureObject, Gc, ObjClass, ObjClosure, ObjInstance, ObjString, ObjUpvalue, StringObject,
    Unpacked, Value,
};

impl<'s> Exec<'s, '_> {
    /// Calls `callee`, which sits below `argc` arguments on the stack.
    pub(super) fn call_value(&mut self, callee: Value<'s>, argc: usize) -> Result<(), String> {
        if let Some(closure) = callee.as_object::<ObjClosure>() {
            return self.call_closure(closure, argc);
        }
        let callee_slot = self.stack.len() - argc - 1;
        match callee.unpack() {
            Unpacked::Native(native) => {
                let result = (native.function)(&self.stack[callee_slot + 1..]);
                self.stack.truncate(callee_slot);
                self.stack.push(result);
                Ok(())
            }
            Unpacked::Class(class) => {
                let instance = self.heap.alloc_instance(class);
                self.stack[callee_slot] = Value::from(instance);
                match class.initializer() {
                    Some(initializer) => self.call_closure(initializer, argc),
                    None if argc != 0 => Err(format!("Expected 0 arguments but got {argc}.")),
                    None => Ok(()),
                }
            }
            Unpacked::BoundMethod(bound) => {
                self.stack[callee_slot] = bound.receiver;
                self.call_closure(bound.method, argc)
            }
            _ => Err("Can only call functions and classes.".to_owned()),
        }
    }

    /// Pushes a frame for `closure`, whose slot 0 and arguments are the top
    /// `argc + 1` stack values.
    #[inline]
    pub(super) fn call_closure(
        &mut self,
        closure: Gc<'s, ObjClosure<'s>>,
        argc: usize,
    ) -> Result<(), String> {
        let arity = usize::from(closure.function().arity);
        if argc != arity {
            return Err(format!("Expected {arity} arguments but got {argc}."));
        }
        if self.frames.len() == FRAMES_MAX {
            return Err("Stack overflow.".to_owned());
        }
        self.frames.push(CallFrame {
            closure,
            ip: 0,
            base: self.stack.len() - argc - 1,
        });
        Ok(())
    }

    /// `OP_INVOKE`: calls method `name` of the receiver below `argc`
    /// arguments.
    pub(super) fn invoke(&mut self, name: Gc<'s, ObjString>, argc: usize) -> Result<(), String> {
        let receiver_slot = self.stack.len() - argc - 1;
        let Some(instance) = self.stack[receiver_slot].as_object::<ObjInstance>() else {
            return Err("Only instances have methods.".to_owned());
        };
        if let Some(field) = instance.field(name) {
            self.stack[receiver_slot] = field;
            return self.call_value(field, argc);
        }
        self.invoke_from_class(instance.class, name, argc)
    }

    /// Calls method `name` of `class` on the receiver below `argc`
    /// arguments (`OP_INVOKE` and `OP_SUPER_INVOKE`).
    #[inline]
    pub(super) fn invoke_from_class(
        &mut self,
        class: Gc<'s, ObjClass<'s>>,
        name: Gc<'s, ObjString>,
        argc: usize,
    ) -> Result<(), String> {
        match class.method(name) {
            Some(method) => self.call_closure(method, argc),
            None => Err(undefined_property(name)),
        }
    }

    /// Replaces the receiver on top of the stack by its method `name` of
    /// `class`, bound to it.
    pub(super) fn bind_method(
        &mut self,
        class: Gc<'s, ObjClass<'s>>,
        name: Gc<'s, ObjString>,
    ) -> Result<(), String> {
        let method = class.method(name).ok_or_else(|| undefined_property(name))?;
        let top = self.stack.len() - 1;
        let bound = self.heap.alloc_bound_method(self.stack[top], method);
        self.stack[top] = Value::from(bound);
        Ok(())
    }

    /// The upvalue for stack slot `slot`: the open one if some closure
    /// already captured it, else a new open upvalue.
    pub(super) fn capture_upvalue(&mut self, slot: usize) -> Gc<'s, ObjUpvalue<'s>> {
        let mut index = self.open_upvalues.len();
        while index > 0 {
            let upvalue = self.open_upvalues[index - 1];
            let open_slot = upvalue
                .open_slot()
                .expect("the open list holds open upvalues");
            if open_slot == slot {
                return upvalue;
            }
            if open_slot < slot {
                break;
            }
            index -= 1;
        }
        let created = self.heap.alloc_upvalue(slot);
        self.open_upvalues.insert(index, created);
        created
    }

    /// Closes every open upvalue at stack slot `first` or above.
    pub(super) fn close_upvalues(&mut self, first: usize) {
        while let Some(&upvalue) = self.open_upvalues.last() {
            let slot = upvalue
                .open_slot()
                .expect("the open list holds open upvalues");
            if slot < first {
                break;
            }
            self.heap.close_upvalue(upvalue, self.stack[slot]);
            self.open_upvalues.pop();
        }
    }
}

fn undefined_property(name: Gc<'_, ObjString>) -> String {
    format!("Undefined property '{}'.", name.as_str())
}
