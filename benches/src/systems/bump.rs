//! bumpalo: the allocation floor.
//!
//! Every object is bump-allocated (`Bump::alloc`, a pointer increment) and
//! nothing is ever freed one object at a time: memory comes back only when a
//! whole structure dies, by resetting (or dropping) the `Bump` it lives in.
//! This is the fastest a heap can hand out memory, so it bounds what any
//! collector's allocation path can achieve; it is not a general-purpose
//! heap, and the workloads are arranged so that it never frees anything it
//! should keep:
//!
//! * each temporary tree is built in a scratch `Bump` reset right after it
//!   is checked;
//! * each tree slot is a [`Region`]: its own `Bump` plus the tree in it;
//!   replacing the tree resets the `Bump` (keeping its memory for the next
//!   tree), releasing the slot drops it (giving the memory back to malloc);
//! * churn's records go into two generation `Bump`s used alternately: when
//!   generation `g` (allocations `g*window ..`) starts, every ring slot holds
//!   a record of generation `g - 1`, so the `Bump` that held generation
//!   `g - 2` is reset and reused. A generation is the "whole structure" that
//!   dies at once.
//!
//! A tree in a region refers into the region's own `Bump`, which Rust's
//! lifetimes cannot express for a value stored beside its arena; the region
//! keeps the tree as a raw pointer and hands out references tied to `&self`
//! (see the SAFETY comments). Nodes hold `&'b Node<'b>` children, as
//! bumpalo's documentation builds its structures.

use std::iter;
use std::ptr::NonNull;

use bumpalo::Bump;

use crate::report::{GcStats, Outcome};
use crate::workloads::{self, Heap, Params, Record, Shape};

#[derive(Default)]
struct Node<'b> {
    left: Option<&'b Node<'b>>,
    right: Option<&'b Node<'b>>,
}

fn bottom_up<'b>(bump: &'b Bump, depth: u32) -> &'b Node<'b> {
    if depth == 0 {
        return bump.alloc(Node::default());
    }
    let left = bottom_up(bump, depth - 1);
    let right = bottom_up(bump, depth - 1);
    bump.alloc(Node {
        left: Some(left),
        right: Some(right),
    })
}

/// Top-down: both children are allocated before either is populated, as in
/// GCBench's `Populate`. They are linked into the parent after being
/// populated, because a bump node is frozen (shared) once linked; with no
/// write barrier the store order changes nothing else.
fn populate<'b>(bump: &'b Bump, node: &mut Node<'b>, depth: u32) {
    if depth == 0 {
        return;
    }
    let left = bump.alloc(Node::default());
    let right = bump.alloc(Node::default());
    populate(bump, left, depth - 1);
    populate(bump, right, depth - 1);
    node.left = Some(left);
    node.right = Some(right);
}

fn build<'b>(bump: &'b Bump, shape: Shape, depth: u32) -> &'b Node<'b> {
    match shape {
        Shape::BottomUp => bottom_up(bump, depth),
        Shape::TopDown => {
            let root = bump.alloc(Node::default());
            populate(bump, root, depth);
            root
        }
    }
}

fn check(node: &Node<'_>) -> u64 {
    1 + node.left.map_or(0, check) + node.right.map_or(0, check)
}

/// A `Bump` and the one value built in it.
///
/// Invariant: `value`, when `Some`, points into memory of `bump` handed out
/// since `bump` was last reset. Only [`Region::fill`] sets `value`, with a
/// pointer its closure got from `bump`; the only way to reset the bump is
/// `fill`, which forgets `value` first; and the chunks of a `Bump` do not
/// move when the `Bump` value moves.
struct Region<T: ?Sized> {
    bump: Bump,
    value: Option<NonNull<T>>,
}

impl<T: ?Sized> Region<T> {
    fn new() -> Self {
        Region {
            bump: Bump::new(),
            value: None,
        }
    }

    /// Forgets the old value, resets the bump (keeping its largest chunk
    /// for reuse) and stores what `build` allocates in it.
    fn fill(&mut self, build: impl FnOnce(&Bump) -> NonNull<T>) {
        self.value = None;
        self.bump.reset();
        self.value = Some(build(&self.bump));
    }

    fn get(&self) -> Option<&T> {
        // SAFETY: by the struct invariant the pointer is into `self.bump`,
        // which cannot be reset or dropped while `&self` is borrowed, and
        // the value was initialised by the allocation that returned it.
        self.value.map(|p| unsafe { p.as_ref() })
    }
}

/// A tree region. The stored lifetime is a placeholder: [`tree`] gives the
/// tree back with its lifetime shortened to the borrow of the region.
type TreeRegion = Region<Node<'static>>;

fn fill_tree(region: &mut TreeRegion, shape: Shape, depth: u32) {
    region.fill(|bump| NonNull::from(build(bump, shape, depth)).cast());
}

fn tree(region: &TreeRegion) -> Option<&Node<'_>> {
    region.get()
}

/// Churn's record ring over two alternating generation bumps (see the
/// module comment). Invariant: every `Some` slot points into
/// `generations[g % 2]` for the generation `g` in which it was written, and
/// that generation is the current one or the one before.
struct RecordRing {
    generations: [Bump; 2],
    slots: Vec<Option<NonNull<Record>>>,
    replaced: u64,
}

impl RecordRing {
    fn replace(&mut self, slot: usize, record: Record) -> Option<Record> {
        let window = self.slots.len() as u64;
        let generation = self.replaced / window;
        assert_eq!(
            slot as u64,
            self.replaced % window,
            "bumpalo's record ring must be replaced in ring order"
        );
        let bump = &mut self.generations[(generation % 2) as usize];
        if slot == 0 {
            // Generation `generation` starts: every slot was rewritten
            // during the previous generation, so nothing points into this
            // bump (it held generation `generation - 2`).
            bump.reset();
        }
        let new = NonNull::from(bump.alloc(record));
        self.replaced += 1;
        let old = self.slots[slot].replace(new)?;
        // SAFETY: `old` was written in the previous generation (each slot is
        // written once per generation), whose bump is reset only when the
        // next generation starts; it points at an initialised `Record`.
        Some(unsafe { old.read() })
    }
}

/// The bumpalo heap.
pub struct BumpHeap {
    scratch: Bump,
    trees: Vec<TreeRegion>,
    array: Region<[f64]>,
    records: RecordRing,
}

impl Heap for BumpHeap {
    fn new(tree_slots: usize, record_slots: usize) -> Self {
        BumpHeap {
            scratch: Bump::new(),
            trees: iter::repeat_with(Region::new).take(tree_slots).collect(),
            array: Region::new(),
            records: RecordRing {
                generations: [Bump::new(), Bump::new()],
                slots: vec![None; record_slots],
                replaced: 0,
            },
        }
    }

    fn temporary(&mut self, shape: Shape, depth: u32) -> u64 {
        let nodes = check(build(&self.scratch, shape, depth));
        self.scratch.reset();
        nodes
    }

    fn keep(&mut self, slot: usize, shape: Shape, depth: u32) {
        fill_tree(&mut self.trees[slot], shape, depth);
    }

    fn check(&self, slot: usize) -> u64 {
        tree(&self.trees[slot]).map_or(0, check)
    }

    fn release(&mut self, slot: usize) {
        // Dropping the region gives its chunks back to malloc; a reset
        // would keep the largest one.
        self.trees[slot] = Region::new();
    }

    fn keep_array(&mut self, values: Vec<f64>) {
        self.array
            .fill(|bump| NonNull::from(bump.alloc_slice_copy(&values)));
    }

    fn array_probe(&self, index: usize) -> f64 {
        self.array.get().map_or(f64::NAN, |a| a[index])
    }

    fn replace_record(&mut self, slot: usize, record: Record) -> Option<Record> {
        self.records.replace(slot, record)
    }

    fn safepoint(&mut self) {}

    fn gc_stats(&self) -> GcStats {
        GcStats::default()
    }
}

/// Runs a workload on bumpalo.
pub fn run(params: &Params) -> Outcome {
    workloads::run::<BumpHeap>(params)
}
