// `Branded` is an `unsafe trait`: a hand-written impl could brand
// `Node<'static>` with any scope borrow (brand laundering).
use spangc::{Branded, Gc, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

struct Node<'gc> {
    leaf: Gc<'gc, Leaf>,
}

impl<'gc> Branded<'gc> for Node<'static> {
    type Erased = Leaf;
}

fn main() {}
