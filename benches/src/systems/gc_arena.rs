//! gc-arena (0.7): trees of `Gc<'gc, RefLock<Node<'gc>>>` inside an `Arena`.
//!
//! gc-arena's pointers are branded with the arena's `'gc` lifetime and can
//! only be touched inside `Arena::mutate` (or `mutate_root`, which may change
//! the root); no collection happens during a mutate call, so everything
//! reachable afterwards must hang off the root. The heap's root is
//! [`Roots`]: the tree slots, the record slots and the array. Each heap
//! operation is one mutate call, and [`Heap::safepoint`] is where the arena
//! collects, incrementally, as its documentation recommends: when the
//! allocation debt is positive, `collect_debt` does work proportional to it
//! (the pacing is the crate's default, `Pacing::DEFAULT`). A temporary tree
//! is built, walked and abandoned inside a single mutate call; the next
//! safepoints sweep it.
//!
//! `RefLock` (gc-arena's `RefCell`, whose `borrow_mut` takes the `Mutation`
//! witness and so runs the write barrier) holds each node because top-down
//! building stores into existing nodes, as in the crate's linked-list
//! example. The crate counts live objects but not cycles, so the table shows
//! no GC count; the longest pause is the longest `collect_debt` call.

use gc_arena::lock::RefLock;
use gc_arena::{Arena, Collect, Gc, Mutation, Rootable};

use crate::report::{GcStats, Outcome};
use crate::workloads::{self, Heap, Params, Record, Shape};

type Link<'gc> = Gc<'gc, RefLock<Node<'gc>>>;

#[derive(Default, Collect)]
#[collect(no_drop)]
struct Node<'gc> {
    left: Option<Link<'gc>>,
    right: Option<Link<'gc>>,
}

/// Everything the arena keeps alive between mutate calls.
#[derive(Collect)]
#[collect(no_drop)]
struct Roots<'gc> {
    trees: Vec<Option<Link<'gc>>>,
    records: Vec<Option<Gc<'gc, Record>>>,
    array: Option<Gc<'gc, Vec<f64>>>,
}

fn leaf<'gc>(mc: &Mutation<'gc>) -> Link<'gc> {
    Gc::new(mc, RefLock::new(Node::default()))
}

fn bottom_up<'gc>(mc: &Mutation<'gc>, depth: u32) -> Link<'gc> {
    if depth == 0 {
        return leaf(mc);
    }
    Gc::new(
        mc,
        RefLock::new(Node {
            left: Some(bottom_up(mc, depth - 1)),
            right: Some(bottom_up(mc, depth - 1)),
        }),
    )
}

fn populate<'gc>(mc: &Mutation<'gc>, node: Link<'gc>, depth: u32) {
    if depth == 0 {
        return;
    }
    let (left, right) = (leaf(mc), leaf(mc));
    {
        let mut n = node.borrow_mut(mc);
        n.left = Some(left);
        n.right = Some(right);
    }
    populate(mc, left, depth - 1);
    populate(mc, right, depth - 1);
}

fn build<'gc>(mc: &Mutation<'gc>, shape: Shape, depth: u32) -> Link<'gc> {
    match shape {
        Shape::BottomUp => bottom_up(mc, depth),
        Shape::TopDown => {
            let root = leaf(mc);
            populate(mc, root, depth);
            root
        }
    }
}

fn check(node: Link<'_>) -> u64 {
    let n = node.borrow();
    1 + n.left.map_or(0, check) + n.right.map_or(0, check)
}

/// The gc-arena heap: one arena and the longest collection step seen.
pub struct ArenaHeap {
    arena: Arena<Rootable![Roots<'_>]>,
    /// No count (see the module comment); the longest `collect_debt`.
    stats: GcStats,
}

impl Heap for ArenaHeap {
    fn new(tree_slots: usize, record_slots: usize) -> Self {
        ArenaHeap {
            arena: Arena::new(|_| Roots {
                trees: vec![None; tree_slots],
                records: vec![None; record_slots],
                array: None,
            }),
            stats: GcStats::default(),
        }
    }

    fn temporary(&mut self, shape: Shape, depth: u32) -> u64 {
        self.arena.mutate(|mc, _| check(build(mc, shape, depth)))
    }

    fn keep(&mut self, slot: usize, shape: Shape, depth: u32) {
        self.arena
            .mutate_root(|mc, root| root.trees[slot] = Some(build(mc, shape, depth)));
    }

    fn check(&self, slot: usize) -> u64 {
        self.arena
            .mutate(|_, root| root.trees[slot].map_or(0, check))
    }

    fn release(&mut self, slot: usize) {
        self.arena.mutate_root(|_, root| root.trees[slot] = None);
    }

    fn keep_array(&mut self, values: Vec<f64>) {
        self.arena
            .mutate_root(|mc, root| root.array = Some(Gc::new(mc, values)));
    }

    fn array_probe(&self, index: usize) -> f64 {
        self.arena
            .mutate(|_, root| root.array.map_or(f64::NAN, |a| a[index]))
    }

    fn replace_record(&mut self, slot: usize, record: Record) -> Option<Record> {
        self.arena.mutate_root(|mc, root| {
            root.records[slot]
                .replace(Gc::new(mc, record))
                .map(|old| *old)
        })
    }

    fn safepoint(&mut self) {
        if self.arena.metrics().allocation_debt() > 0.0 {
            let step = GcStats::timed(|| self.arena.collect_debt());
            // A step is not a cycle: keep only its pause.
            self.stats = self.stats.merge(GcStats {
                count: None,
                ..step
            });
        }
    }

    fn gc_stats(&self) -> GcStats {
        self.stats
    }
}

/// Runs a workload on gc-arena.
pub fn run(params: &Params) -> Outcome {
    workloads::run::<ArenaHeap>(params)
}
