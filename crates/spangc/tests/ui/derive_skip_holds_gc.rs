// A `#[gc(skip)]` field cannot hold a `Gc`: it would not be traced (the
// object behind it freed while still reachable).
use spangc::{Gc, Trace};

#[derive(Trace)]
struct Node<'gc> {
    value: u64,
    #[gc(skip)]
    hidden: Option<Gc<'gc, Node<'gc>>>,
}

fn main() {}
