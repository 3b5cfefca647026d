// std `Mutex` is not traceable: it would be a write path that bypasses the
// crate's cells (and would let objects holding `Gc`s be shared).
use spangc::{Gc, Trace};
use std::sync::Mutex;

#[derive(Trace)]
struct Node<'gc> {
    value: u64,
    next: Mutex<Option<Gc<'gc, Node<'gc>>>>,
}

fn main() {}
