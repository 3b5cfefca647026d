// `Rc` cannot be a field of a traced type: the sweeper may drop the object
// on another thread.
use spangc::Trace;
use std::rc::Rc;

#[derive(Trace)]
struct Shared {
    value: Rc<u64>,
}

fn main() {}
