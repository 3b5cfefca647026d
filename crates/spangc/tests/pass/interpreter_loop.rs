//! An interpreter-style dispatch loop: the VM state lives in one rooted heap
//! object, each iteration re-reads it through the root, and the loop reaches
//! a safepoint at the end of every iteration without returning from its
//! outermost function.
use spangc::{Config, Gc, GcRefCell, Heap, Scope, Trace};

#[derive(Trace, Clone, Copy)]
enum Value<'gc> {
    Int(i64),
    Pair(Gc<'gc, (Value<'gc>, Value<'gc>)>),
}

#[derive(Trace)]
struct Vm<'gc> {
    stack: GcRefCell<Vec<Value<'gc>>>,
}

#[derive(Clone, Copy)]
enum Op {
    Push(i64),
    MakePair,
    Sum,
}

/// Takes `&Scope`: cannot collect, so it may pass `Gc`s freely.
fn sum<'s>(_cx: &'s Scope, v: Value<'s>) -> i64 {
    match v {
        Value::Int(i) => i,
        Value::Pair(p) => sum(_cx, p.0) + sum(_cx, p.1),
    }
}

/// Takes `&mut Scope`: may collect, so it exchanges only roots.
fn run(cx: &mut Scope, program: &[Op]) -> i64 {
    let vm = cx.root(cx.alloc(Vm {
        stack: GcRefCell::new(Vec::new()),
    }));
    for _round in 0..50 {
        for op in program {
            let state = vm.get(cx);
            let mut stack = state.stack.borrow_mut(cx);
            match *op {
                Op::Push(i) => stack.push(Value::Int(i)),
                Op::MakePair => {
                    let b = stack.pop().unwrap();
                    let a = stack.pop().unwrap();
                    stack.push(Value::Pair(cx.alloc((a, b))));
                }
                Op::Sum => {
                    let v = stack.pop().unwrap();
                    stack.push(Value::Int(sum(cx, v)));
                }
            }
            drop(stack);
            cx.safepoint();
        }
    }
    let state = vm.get(cx);
    let stack = state.stack.borrow();
    stack
        .iter()
        .map(|v| if let Value::Int(i) = v { *i } else { 0 })
        .sum()
}

fn main() {
    let config = Config::builder()
        .verify(true)
        .gc_stress(true)
        .build()
        .unwrap();
    let heap: Heap = Heap::new(config).unwrap();
    let mut m = heap.mutator();
    let program = [
        Op::Push(1),
        Op::Push(2),
        Op::MakePair,
        Op::Push(3),
        Op::MakePair,
        Op::Sum,
    ];
    let total = m.enter(|cx| run(cx, &program));
    assert_eq!(total, 50 * 6);
}
