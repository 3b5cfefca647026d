// A `#[gc(skip)]` field must be `'static + Send`: it is never traced, and the
// sweeper drops it on its own thread. `Rc<u8>` is not `Send`.
use spangc::Trace;
use std::rc::Rc;

#[derive(Trace)]
struct Cached {
    value: u64,
    #[gc(skip)]
    cache: Rc<u8>,
}

fn main() {}
