// A raw pointer cannot be a field of a traced type: it could hide a `Gc`
// (or a pointer into the heap) from the collector.
use spangc::Trace;

#[derive(Trace)]
struct Leaf {
    value: u64,
}

#[derive(Trace)]
struct Hidden {
    ptr: *const Leaf,
}

fn main() {}
