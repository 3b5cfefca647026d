//! Verify mode: re-derive the heap's invariants with slow walks, with the
//! world stopped, and panic (printing what disagreed) on any mismatch.
//!
//! Turned on by `Config::verify` (or `SPANGC_VERIFY=1`). Before marking it
//! checks that sweeping finished and the lower layers' own invariants hold
//! (page accounting, span lists, alloc counts against alloc bits). After
//! marking it checks the marker's work: every marked object's pointers
//! lead to marked objects (the mark is closed under reachability, so
//! nothing reachable is freed), and the marker's object and byte counts
//! equal a recount of the mark bits.

use crate::brand::Brand;
use crate::heap::HeapInner;
use crate::layout::TypeInfo;
use crate::mark::{MarkOutcome, Tracer};
use spangc_gcbits::SpanBits;
use std::ptr::NonNull;

pub(crate) fn before_mark<B: Brand>(heap: &HeapInner<B>) {
    debug_assert!(heap.world.is_stopped());
    if let Err(e) = heap.mheap.verify() {
        panic!("spangc verify (before mark): {e}");
    }
}

pub(crate) fn after_mark<B: Brand>(heap: &HeapInner<B>, marked: &MarkOutcome) {
    let pages = heap.mheap.page_heap();
    let (mut objects, mut bytes) = (0usize, 0usize);
    heap.mheap.for_each_in_use_span(|span| {
        for i in 0..span.nelems() as usize {
            if !span.is_marked(i) {
                continue;
            }
            objects += 1;
            bytes += span.elem_size();
            // SAFETY: in-use spans of this heap carry TypeInfo tags.
            let info = unsafe { TypeInfo::from_tag(span.type_tag()) };
            let Some(trace) = info.trace else { continue };
            let obj = span.slot_addr(i);
            let mut check = |p: NonNull<u8>| {
                let a = p.as_ptr() as usize;
                let target = pages.span_of_heap(a).unwrap_or_else(|| {
                    panic!("spangc verify: object {obj:#x} ({}) points to {a:#x}, outside the heap", info.name())
                });
                let j = target.slot_index(a);
                assert!(
                    target.is_marked(j),
                    "spangc verify: marked object {obj:#x} ({}) points to unmarked {a:#x} in {target}",
                    info.name()
                );
            };
            let mut t = Tracer::visit(&mut check);
            // SAFETY: a marked slot of an in-use span holds a live,
            // initialised object of the span's type (marked objects are
            // allocated: the marker only reaches allocated objects).
            unsafe { trace(NonNull::new_unchecked(obj as *mut u8), &mut t) };
        }
    });
    assert_eq!(
        (objects, bytes),
        (marked.objects, marked.bytes),
        "spangc verify: mark bits count {objects} objects / {bytes} bytes, the marker counted {} / {}",
        marked.objects,
        marked.bytes
    );
}
