// `Trace` is an `unsafe trait`: a hand-written impl that skips a field (and
// so hides a `Gc` from the collector) needs `unsafe`.
use spangc::{Gc, Trace, Tracer};

struct Hidden<'gc> {
    inner: Gc<'gc, u64>,
}

impl Trace for Hidden<'_> {
    const NEEDS_TRACE: bool = false;
    fn trace(&self, _tracer: &mut Tracer<'_>) {}
}

fn main() {}
