// std `OnceCell` is not traceable: setting it would write a `Gc` without
// the scope.
use spangc::{Gc, Trace};
use std::cell::OnceCell;

#[derive(Trace)]
struct Node<'gc> {
    value: u64,
    next: OnceCell<Gc<'gc, Node<'gc>>>,
}

fn main() {}
