//! spangc, with one or two mark threads.
//!
//! Each heap handle is a `Mutator` on a spangc `Heap` plus one rooted
//! object ([`Roots`]) holding the handle's tree slots, record slots and
//! array: the embedding `docs/api.md` recommends (state in one rooted
//! object). Every operation of the workload trait is one scope
//! (`Mutator::enter`), as an embedder that calls into the heap per
//! operation would do; between operations the driver's safepoint calls
//! `Mutator::safepoint`, which enters only when a collection is wanted.
//! Collections are triggered by the pacer (default `gc_percent` 100).
//!
//! Tree nodes are two `GcCell<Option<Gc<Node>>>` fields, 16 bytes with no
//! header: top-down building stores into existing nodes through the cells,
//! bottom-up building never does. Records and the array of doubles are
//! noscan objects. The threads workload shares one heap between the
//! threads, each with its own mutator and its own slots (objects holding
//! cells are not `Sync`, so a thread's live set is its own); the other
//! workloads use one mutator.
//!
//! The heap-over-time chart: after each safepoint that saw a new
//! collection, one `heap_cycle` sample (heap marked, heap goal, RSS), kept
//! in [`CYCLES`] until `run` moves them into the outcome (the generic
//! drivers own the heap handle and return only the checksum and stats).

use spangc::{Config, Gc, GcCell, GcRefCell, Heap as GcHeap, Mutator, Root, Scope, Trace};
use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::report::{GcStats, HeapCycle, Outcome};
use crate::rss::current_rss_bytes;
use crate::workloads::{self, Heap, Params, Record, Shape};

type Link<'gc> = GcCell<Option<Gc<'gc, Node<'gc>>>>;

#[derive(Trace, Default)]
struct Node<'gc> {
    left: Link<'gc>,
    right: Link<'gc>,
}

/// A churn record as a heap object (noscan: no pointers).
#[derive(Trace)]
struct Boxed(Record);

/// Everything a handle keeps alive between operations.
#[derive(Trace)]
struct Roots<'gc> {
    trees: GcRefCell<Vec<Option<Gc<'gc, Node<'gc>>>>>,
    records: GcRefCell<Vec<Option<Gc<'gc, Boxed>>>>,
    array: GcCell<Option<Gc<'gc, [f64]>>>,
}

fn node<'s>(cx: &'s Scope) -> Gc<'s, Node<'s>> {
    cx.alloc(Node::default())
}

fn bottom_up<'s>(cx: &'s Scope, depth: u32) -> Gc<'s, Node<'s>> {
    if depth == 0 {
        return node(cx);
    }
    let (l, r) = (bottom_up(cx, depth - 1), bottom_up(cx, depth - 1));
    cx.alloc(Node {
        left: GcCell::new(Some(l)),
        right: GcCell::new(Some(r)),
    })
}

fn populate<'s>(cx: &'s Scope, n: Gc<'s, Node<'s>>, depth: u32) {
    if depth == 0 {
        return;
    }
    let (l, r) = (node(cx), node(cx));
    n.left.set(cx, Some(l));
    n.right.set(cx, Some(r));
    populate(cx, l, depth - 1);
    populate(cx, r, depth - 1);
}

fn build<'s>(cx: &'s Scope, shape: Shape, depth: u32) -> Gc<'s, Node<'s>> {
    match shape {
        Shape::BottomUp => bottom_up(cx, depth),
        Shape::TopDown => {
            let root = node(cx);
            populate(cx, root, depth);
            root
        }
    }
}

/// Per-cycle samples of one heap, shared by its handles.
type Cycles = Arc<Mutex<Vec<HeapCycle>>>;

fn check(n: &Node<'_>) -> u64 {
    1 + n.left.get().map_or(0, |l| check(&l)) + n.right.get().map_or(0, |r| check(&r))
}

/// A spangc heap handle (see the module docs). `MARK_THREADS` is the heap's
/// mark-thread count.
pub struct SpangcHeap<const MARK_THREADS: usize> {
    heap: GcHeap,
    /// In a cell because the trait's read operations take `&self`.
    mutator: RefCell<Mutator>,
    roots: Root<Roots<'static>>,
    start: Instant,
    seen_cycles: u64,
    cycles: Cycles,
}

impl<const MARK_THREADS: usize> SpangcHeap<MARK_THREADS> {
    fn config() -> Config {
        Config::builder()
            .mark_threads(MARK_THREADS)
            .build()
            .expect("valid spangc configuration")
    }

    /// A handle with its own mutator and slots on `heap`, recording the
    /// cycles it sees in `cycles` (shared by the handles of one heap).
    fn on(heap: GcHeap, tree_slots: usize, record_slots: usize, cycles: Cycles) -> Self {
        let mut mutator = heap.mutator();
        let roots = mutator.enter(|cx| {
            cx.root(cx.alloc(Roots {
                trees: GcRefCell::new(vec![None; tree_slots]),
                records: GcRefCell::new(vec![None; record_slots]),
                array: GcCell::new(None),
            }))
        });
        SpangcHeap {
            heap,
            mutator: RefCell::new(mutator),
            roots,
            start: Instant::now(),
            seen_cycles: 0,
            cycles,
        }
    }
}

impl<const MARK_THREADS: usize> Heap for SpangcHeap<MARK_THREADS> {
    fn new(tree_slots: usize, record_slots: usize) -> Self {
        let heap = GcHeap::new(Self::config()).expect("spangc heap");
        Self::on(heap, tree_slots, record_slots, Cycles::default())
    }

    fn temporary(&mut self, shape: Shape, depth: u32) -> u64 {
        self.mutator
            .get_mut()
            .enter(|cx| check(&build(cx, shape, depth)))
    }

    fn keep(&mut self, slot: usize, shape: Shape, depth: u32) {
        let roots = &self.roots;
        self.mutator.get_mut().enter(|cx| {
            let tree = build(cx, shape, depth);
            roots.get(cx).trees.borrow_mut(cx)[slot] = Some(tree);
        });
    }

    fn check(&self, slot: usize) -> u64 {
        self.mutator
            .borrow_mut()
            .enter(|cx| self.roots.get(cx).trees.borrow()[slot].map_or(0, |t| check(&t)))
    }

    fn release(&mut self, slot: usize) {
        let roots = &self.roots;
        self.mutator
            .get_mut()
            .enter(|cx| roots.get(cx).trees.borrow_mut(cx)[slot] = None);
    }

    fn keep_array(&mut self, values: Vec<f64>) {
        let roots = &self.roots;
        self.mutator.get_mut().enter(|cx| {
            let a = cx.alloc_slice_copy(&values);
            roots.get(cx).array.set(cx, Some(a));
        });
    }

    fn array_probe(&self, index: usize) -> f64 {
        self.mutator.borrow_mut().enter(|cx| {
            self.roots
                .get(cx)
                .array
                .get()
                .map_or(f64::NAN, |a| a[index])
        })
    }

    fn replace_record(&mut self, slot: usize, record: Record) -> Option<Record> {
        let roots = &self.roots;
        self.mutator.get_mut().enter(|cx| {
            let new = cx.alloc(Boxed(record));
            roots.get(cx).records.borrow_mut(cx)[slot]
                .replace(new)
                .map(|old| old.0)
        })
    }

    fn safepoint(&mut self) {
        self.mutator.get_mut().safepoint();
        let count = self.heap.gc_count();
        if count != self.seen_cycles {
            self.seen_cycles = count;
            let mut cycles = self.cycles.lock().unwrap_or_else(|e| e.into_inner());
            // Handles that share a heap (the threads workload) see the same
            // cycles: the first to see one records it.
            if cycles.last().is_none_or(|c| c.cycle < count) {
                let s = self.heap.stats();
                cycles.push(HeapCycle {
                    cycle: count,
                    t_ms: self.start.elapsed().as_millis() as u64,
                    heap_live_bytes: s.heap_marked_bytes as u64,
                    heap_goal_bytes: s.heap_goal_bytes as u64,
                    rss_bytes: current_rss_bytes().unwrap_or(0),
                });
            }
        }
    }

    fn gc_stats(&self) -> GcStats {
        let s = self.heap.stats();
        GcStats {
            count: Some(s.gc_count),
            max_pause_ns: Some(s.pause_max_ns),
        }
    }

    fn heap_cycles(&self) -> Vec<HeapCycle> {
        self.cycles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Held while a run's heap lives: one heap of spangc's default brand may
/// be alive at a time (`HeapError::BrandInUse`). The harness runs one
/// system per process; the crate's tests run systems on parallel threads.
static ONE_HEAP: Mutex<()> = Mutex::new(());

fn run<const MARK_THREADS: usize>(params: &Params) -> Outcome {
    let _one = ONE_HEAP.lock().unwrap_or_else(|e| e.into_inner());
    match params {
        Params::Threads(p) => {
            let heap = GcHeap::new(SpangcHeap::<MARK_THREADS>::config()).expect("spangc heap");
            let cycles = Cycles::default();
            workloads::threads::run(p, |_| {
                SpangcHeap::<MARK_THREADS>::on(heap.clone(), p.ring, 0, cycles.clone())
            })
        }
        _ => workloads::run::<SpangcHeap<MARK_THREADS>>(params),
    }
}

/// Runs a workload on spangc with one mark thread.
pub fn run_1(params: &Params) -> Outcome {
    run::<1>(params)
}

/// Runs a workload on spangc with two mark threads.
pub fn run_2(params: &Params) -> Outcome {
    run::<2>(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workloads::{churn, threads};

    /// Each recorded cycle once, in order, and none the heap did not run.
    fn assert_cycles_recorded_once(outcome: &Outcome) {
        let cycles = &outcome.heap_cycles;
        assert!(!cycles.is_empty(), "no cycle recorded");
        assert!(
            cycles.windows(2).all(|w| w[0].cycle < w[1].cycle),
            "cycles out of order or twice: {:?}",
            cycles.iter().map(|c| c.cycle).collect::<Vec<_>>()
        );
        assert!(cycles.last().unwrap().cycle <= outcome.gc.count.unwrap());
    }

    /// Two handles share one heap in the threads workload: the first to
    /// see a cycle records it, and the outcome has the whole list.
    #[test]
    fn the_threads_workload_records_each_cycle_once() {
        let outcome = run_2(&Params::Threads(threads::Params {
            threads: 2,
            iterations: 2000,
            depth: 10,
            ring: 8,
        }));
        assert!(outcome.gc.count.unwrap() >= 2, "{:?}", outcome.gc);
        assert_cycles_recorded_once(&outcome);
    }

    #[test]
    fn churn_records_each_cycle_once() {
        let outcome = run_1(&Params::Churn(churn::Params {
            total: 1_000_000,
            window: 10_000,
        }));
        assert_cycles_recorded_once(&outcome);
    }
}
