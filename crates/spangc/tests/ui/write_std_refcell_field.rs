// std `RefCell` is traced only with `'static` contents, so it cannot hold a
// `Gc` (which could then be written without the scope and the barrier).
use spangc::{Gc, Trace};
use std::cell::RefCell;

#[derive(Trace)]
struct Node<'gc> {
    value: u64,
    children: RefCell<Vec<Gc<'gc, Node<'gc>>>>,
}

fn main() {}
