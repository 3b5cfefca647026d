// `&mut *gc` is rejected: there is no `DerefMut` for `Gc`.
use spangc::{Config, Heap, Trace};

#[derive(Trace)]
struct Leaf {
    value: u64,
}

fn main() {
    let heap: Heap = Heap::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        #[allow(unused_mut)]
        let mut leaf = cx.alloc(Leaf { value: 1 });
        let inner: &mut Leaf = &mut *leaf;
        inner.value = 2;
    });
}
