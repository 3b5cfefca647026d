// std `Cell` is traced only with `'static` contents, so it cannot hold a
// `Gc` (which could then be written without the scope and the barrier).
use spangc::{Gc, Trace};
use std::cell::Cell;

#[derive(Trace)]
struct Node<'gc> {
    value: u64,
    next: Cell<Option<Gc<'gc, Node<'gc>>>>,
}

fn main() {}
