// A `Gc` gives `&T` only (no `DerefMut`): fields cannot be assigned through
// it; writes go through `GcCell`/`GcRefCell` and the scope.
use spangc::{Config, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let leaf = cx.alloc(Leaf { value: 1 });
        leaf.value = 2;
    });
}
