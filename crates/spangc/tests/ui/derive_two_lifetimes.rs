// The derive takes at most one lifetime (the scope brand): a second one
// could not be erased and re-branded soundly.
use spangc::{Gc, Trace};

#[derive(Trace)]
struct Pair<'a, 'b> {
    first: Gc<'a, u64>,
    second: Gc<'b, u64>,
}

fn main() {}
