// A plain reference cannot be a field of a traced type: the object would
// keep it after what it points to is gone (re-branding cannot shorten it).
use spangc::{Gc, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

#[derive(Trace)]
struct View<'gc> {
    leaf: Gc<'gc, Leaf>,
    borrowed: &'gc Leaf,
}

fn main() {}
