// A `fn` pointer cannot be a field of a traced type: re-branding its
// signature could hide or dangle a `Gc`.
use spangc::{Gc, Trace};

#[derive(Trace)]
struct Callback<'gc> {
    run: fn(Gc<'gc, u64>) -> u64,
}

fn main() {}
