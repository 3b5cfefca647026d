// Brand laundering through `root` (the prototype's hole): a
// `Gc<'s, Node<'static>>` must not be rootable. `root` requires
// `T: Branded<'s>` for the current borrow, which `Node<'static>` is only
// for `'s = 'static`. (`Node` is invariant here, as any node with a cell
// is, so no coercion to `Node<'s>` applies.)
use spangc::{Gc, GcCell, Root, Scope, Trace};

#[derive(Trace)]
struct Node<'gc> {
    value: u64,
    next: GcCell<Option<Gc<'gc, Node<'gc>>>>,
}

fn launder<'s>(cx: &'s Scope, node: Gc<'s, Node<'static>>) -> Root<Node<'static>> {
    cx.root(node)
}

fn main() {}
