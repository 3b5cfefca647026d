// `#[gc(allow_drop)]` is only for types that hold no `Gc`: it requires
// `Self: 'static + Send`, which a type branded with `'gc` is not.
use spangc::{Gc, Trace};

#[derive(Trace)]
#[gc(allow_drop)]
struct Node<'gc> {
    value: u64,
    next: Option<Gc<'gc, Node<'gc>>>,
}

impl Drop for Node<'_> {
    fn drop(&mut self) {
        if let Some(next) = self.next {
            println!("dropping the node before {}", next.value);
        }
    }
}

fn main() {}
