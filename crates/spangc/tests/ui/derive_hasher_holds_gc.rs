// HOLE (compiles today): a `HashMap`/`HashSet` hasher `S` is neither traced
// nor bounded, so it can hide a `Gc` from the collector. After a collection
// the hasher's `Gc` points at a freed object: in verify mode this program
// prints 0xdbdbdbdbdbdbdbdb (the poison byte) instead of 42.
// Fix: bound `S: 'static + Send` in the `HashMap`/`HashSet` `Trace` impls.
use spangc::{Config, Gc, Heap, Trace};
use std::collections::HashSet;
use std::hash::{BuildHasher, DefaultHasher};

#[derive(Trace)]
struct Payload {
    value: u64,
}

struct HidingHasher<'gc>(Gc<'gc, Payload>);

impl BuildHasher for HidingHasher<'_> {
    type Hasher = DefaultHasher;
    fn build_hasher(&self) -> DefaultHasher {
        DefaultHasher::new()
    }
}

#[derive(Trace)]
struct Holder<'gc> {
    set: HashSet<u64, HidingHasher<'gc>>,
}

fn main() {
    let heap: Heap = Heap::new(Config::builder().verify(true).build().unwrap()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let payload = cx.alloc(Payload { value: 42 });
        let holder = cx.alloc(Holder {
            set: HashSet::with_hasher(HidingHasher(payload)),
        });
        let root = cx.root(holder);
        cx.collect();
        println!("{:#x}", root.get(cx).set.hasher().0.value);
    });
}
