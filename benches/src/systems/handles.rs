//! Tree code and a heap shared by the systems whose pointers are plain
//! values: `Rc`, gc, dumpster and bacon_rajan_cc.
//!
//! In these systems a pointer is a handle value (`Rc<RefCell<Node>>`,
//! `Gc<GcCell<Node>>`, ...) that can live anywhere, the heap's root set is
//! just wherever handles are held, and a node's children are written through
//! the system's cell type. The tree algorithms are therefore the same for
//! all of them and are written once here against [`Link`]; each system's
//! module defines its node type (with its crate's `Trace` derive or impl),
//! implements `Link` for its handle in its crate's idiom, and describes its
//! records, array and statistics as a [`HandleSystem`]. [`HandleHeap`] is
//! then that system's `Heap`.
//!
//! Not here: `Box` (children are written through `&mut`, no cell), bumpalo
//! (nodes borrow their arena), gc-arena (every access needs the arena's
//! `Mutation` witness). dumpster's `sync` flavour uses the tree code but has
//! its own heap, whose tree slots are a ring shared between threads.

use std::iter;

use crate::report::GcStats;
use crate::workloads::{Heap, Record, Shape};

/// A handle on a tree node.
pub trait Link: Sized {
    /// A new node with no children.
    fn leaf() -> Self;
    /// A new node pointing at `left` and `right` (bottom-up building).
    fn branch(left: Self, right: Self) -> Self;
    /// Stores children into this existing, childless node (top-down
    /// building).
    fn set_children(&self, left: Self, right: Self);
    /// Calls `f` with the node's children.
    fn with_children<R>(&self, f: impl FnOnce(Option<&Self>, Option<&Self>) -> R) -> R;
    /// Counts the nodes of the tree under this node (each system walks its
    /// own node type).
    fn check(&self) -> u64;
}

/// Implements [`Link`] for `$ptr<$cell<$node>>`, the shape that `Rc`, gc,
/// dumpster `unsync` and bacon_rajan_cc share: a pointer with `new` and
/// `Default`, a `RefCell`-like `$cell` with `new`, `borrow` and
/// `borrow_mut`, and a `$node` with `Default` and `left`/`right:
/// Option<Self>` fields. Each of those modules defines its own node type
/// (its crate's tracing differs) and invokes this once.
macro_rules! cell_link {
    ($ptr:ident, $cell:ident, $node:ident) => {
        impl $crate::systems::handles::Link for $ptr<$cell<$node>> {
            fn leaf() -> Self {
                // The handle's `Default` builds the node in place; spelled
                // `$ptr::new($cell::new($node::default()))` it was built on
                // the stack and copied, which cost `Rc` 8% on binary-trees
                // (half the nodes are leaves).
                <$ptr<$cell<$node>>>::default()
            }

            fn branch(left: Self, right: Self) -> Self {
                $ptr::new($cell::new($node {
                    left: Some(left),
                    right: Some(right),
                }))
            }

            fn set_children(&self, left: Self, right: Self) {
                let mut node = self.borrow_mut();
                node.left = Some(left);
                node.right = Some(right);
            }

            fn with_children<R>(&self, f: impl FnOnce(Option<&Self>, Option<&Self>) -> R) -> R {
                let node = self.borrow();
                f(node.left.as_ref(), node.right.as_ref())
            }

            fn check(&self) -> u64 {
                fn walk(cell: &$cell<$node>) -> u64 {
                    let node = cell.borrow();
                    1 + node.left.as_deref().map_or(0, walk) + node.right.as_deref().map_or(0, walk)
                }
                walk(self)
            }
        }
    };
}
pub(crate) use cell_link;

fn bottom_up<L: Link>(depth: u32) -> L {
    if depth == 0 {
        return L::leaf();
    }
    L::branch(bottom_up(depth - 1), bottom_up(depth - 1))
}

/// GCBench's `Populate`: both children are stored into the existing node
/// before either is populated.
fn populate<L: Link>(node: &L, depth: u32) {
    if depth == 0 {
        return;
    }
    node.set_children(L::leaf(), L::leaf());
    node.with_children(|left, right| {
        for child in [left, right].into_iter().flatten() {
            populate(child, depth - 1);
        }
    });
}

/// Builds a tree of `depth` in `shape` order.
pub fn build<L: Link>(shape: Shape, depth: u32) -> L {
    match shape {
        Shape::BottomUp => bottom_up(depth),
        Shape::TopDown => {
            let root = L::leaf();
            populate(&root, depth);
            root
        }
    }
}

/// What a handle-based system keeps besides trees, and what it reports.
pub trait HandleSystem {
    /// Tree handle.
    type Link: Link;
    /// Handle on a churn record.
    type Record;
    /// Handle on GCBench's array.
    type Array;

    /// Collector state at the start of a heap (e.g. a counter's baseline).
    fn start() -> Self;
    /// Allocates a record.
    fn new_record(record: Record) -> Self::Record;
    /// Reads a record back.
    fn read_record(record: &Self::Record) -> Record;
    /// Stores the array.
    fn new_array(values: Vec<f64>) -> Self::Array;
    /// Reads an array element.
    fn array_element(array: &Self::Array, index: usize) -> f64;
    /// `Heap::safepoint`: runs the collector where the system's docs ask
    /// for explicit calls.
    fn safepoint(&mut self) {}
    /// Collector statistics since `start`.
    fn gc_stats(&self) -> GcStats;
}

/// The heap of a handle-based system: slots hold handles.
pub struct HandleHeap<S: HandleSystem> {
    trees: Vec<Option<S::Link>>,
    records: Vec<Option<S::Record>>,
    array: Option<S::Array>,
    system: S,
}

impl<S: HandleSystem> Heap for HandleHeap<S> {
    fn new(tree_slots: usize, record_slots: usize) -> Self {
        HandleHeap {
            trees: iter::repeat_with(|| None).take(tree_slots).collect(),
            records: iter::repeat_with(|| None).take(record_slots).collect(),
            array: None,
            system: S::start(),
        }
    }

    fn temporary(&mut self, shape: Shape, depth: u32) -> u64 {
        build::<S::Link>(shape, depth).check()
    }

    fn keep(&mut self, slot: usize, shape: Shape, depth: u32) {
        self.trees[slot] = Some(build(shape, depth));
    }

    fn check(&self, slot: usize) -> u64 {
        self.trees[slot].as_ref().map_or(0, Link::check)
    }

    fn release(&mut self, slot: usize) {
        self.trees[slot] = None;
    }

    fn keep_array(&mut self, values: Vec<f64>) {
        self.array = Some(S::new_array(values));
    }

    fn array_probe(&self, index: usize) -> f64 {
        self.array
            .as_ref()
            .map_or(f64::NAN, |a| S::array_element(a, index))
    }

    fn replace_record(&mut self, slot: usize, record: Record) -> Option<Record> {
        self.records[slot]
            .replace(S::new_record(record))
            .map(|old| S::read_record(&old))
    }

    fn safepoint(&mut self) {
        self.system.safepoint();
    }

    fn gc_stats(&self) -> GcStats {
        self.system.gc_stats()
    }
}
