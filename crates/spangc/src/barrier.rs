//! The write barrier hook.
//!
//! Every write of a traced value into a heap object goes through
//! [`write`] (the crate's cells call it; nothing else can write into an
//! object). Today's collector marks with the world stopped, so the graph
//! cannot change while it marks and no barrier work is needed: in normal
//! builds `write` compiles to nothing.
//!
//! It exists so that a concurrent or incremental marker can be added
//! without changing the public API: such a marker needs to see writes made
//! while it runs (a Dijkstra barrier shades the new value, a Yuasa barrier
//! the old one; `GcRefCell::borrow_mut` calls it before any write, which
//! suits the latter). The open question in `docs/api.md` is whether it
//! also needs the written object's address (card marking needs it; the
//! cells do not know it).
//!
//! In verify mode the hook checks every `Gc` being stored: it must be an
//! object of this heap (a cross-heap pointer would be freed by the wrong
//! collector).

use crate::brand::Brand;
use crate::mark::Tracer;
use crate::mutator::Scope;
use crate::trace::Trace;

/// Called before `value` is stored into a heap object. See the module docs.
#[inline(always)]
pub(crate) fn write<B: Brand, T: ?Sized + Trace<B>>(cx: &Scope<B>, value: &T) {
    if T::NEEDS_TRACE && cx.verify() {
        check(cx, value);
    }
}

#[cold]
fn check<B: Brand, T: ?Sized + Trace<B>>(cx: &Scope<B>, value: &T) {
    let pages = cx.heap_inner().mheap.page_heap();
    let mut visit = |p: std::ptr::NonNull<u8>| {
        let a = p.as_ptr() as usize;
        let span = pages.span_of_heap(a).unwrap_or_else(|| {
            panic!("spangc verify: storing a pointer {a:#x} that is not an object of this heap")
        });
        assert_eq!(
            span.slot_addr(span.slot_index(a)),
            a,
            "spangc verify: storing a pointer {a:#x} into the middle of an object in {span}"
        );
    };
    Tracer::visit(&mut visit).trace::<B, T>(value);
}
