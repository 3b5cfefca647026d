// A traced type holding a `Gc` cannot implement `Drop`: the sweeper may have
// freed the object behind the field before the destructor runs.
use spangc::{Gc, Trace};

#[derive(Trace)]
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
