//! First end-to-end checks: allocation, rooting, collection, destructors.

use spangc::{Brand, Config, Gc, GcCell, Heap, Scope, Trace};
use std::sync::atomic::{AtomicUsize, Ordering};

spangc::brand!(Trees);
spangc::brand!(Drops);
spangc::brand!(Strings);

#[derive(Trace)]
#[gc(brand = B)]
struct Node<'gc, B: Brand> {
    left: Option<Gc<'gc, Node<'gc, B>, B>>,
    right: Option<Gc<'gc, Node<'gc, B>, B>>,
}

static DROPS: AtomicUsize = AtomicUsize::new(0);

#[derive(Trace)]
#[gc(brand = Drops, allow_drop)]
struct Counted(u64);

impl Drop for Counted {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Trace)]
#[gc(brand = Drops)]
struct Holder<'gc> {
    item: GcCell<Option<Gc<'gc, Counted, Drops>>>,
}

fn tree<'s, B: Brand>(cx: &'s Scope<B>, depth: u32) -> Gc<'s, Node<'s, B>, B> {
    if depth == 0 {
        cx.alloc(Node {
            left: None,
            right: None,
        })
    } else {
        let l = tree(cx, depth - 1);
        let r = tree(cx, depth - 1);
        cx.alloc(Node {
            left: Some(l),
            right: Some(r),
        })
    }
}

fn count<B: Brand>(n: Gc<'_, Node<'_, B>, B>) -> usize {
    1 + n.left.map_or(0, count) + n.right.map_or(0, count)
}

#[test]
fn trees_survive_when_rooted_and_die_when_not() {
    let heap = Heap::<Trees>::new(Config::builder().verify(true).build().unwrap()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let keep = tree(cx, 10);
        let root = cx.root(keep);
        for _ in 0..20 {
            let _garbage = tree(cx, 12);
            cx.collect();
            assert_eq!(count(root.get(cx)), 2047);
        }
        let s = heap.stats();
        assert_eq!(s.gc_count, 20);
        assert_eq!(s.objects_marked, 2047);
        assert!(s.objects_freed_total >= 19 * 8191, "{s}");
    });
    drop(m);
    heap.collect();
    assert_eq!(heap.stats().objects_marked, 0);
}

#[test]
fn destructors_run_once_for_dead_objects_only() {
    DROPS.store(0, Ordering::SeqCst);
    let heap = Heap::<Drops>::new(Config::builder().verify(true).build().unwrap()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let h = cx.alloc(Holder {
            item: GcCell::new(None),
        });
        let live = cx.alloc(Counted(7));
        h.item.set(cx, Some(live));
        let root = cx.root(h);
        for i in 0..1000 {
            cx.alloc(Counted(i));
        }
        cx.collect();
        assert_eq!(DROPS.load(Ordering::SeqCst), 1000);
        let h = root.get(cx);
        assert_eq!(h.item.get().unwrap().0, 7);
        h.item.set(cx, None);
        cx.collect();
        assert_eq!(DROPS.load(Ordering::SeqCst), 1001);
    });
}

spangc::brand!(Bombs);

static BOMB_DROPS: AtomicUsize = AtomicUsize::new(0);

/// Its destructor panics for odd values.
#[derive(Trace)]
#[gc(brand = Bombs, allow_drop)]
struct Bomb(u64);

impl Drop for Bomb {
    fn drop(&mut self) {
        BOMB_DROPS.fetch_add(1, Ordering::SeqCst);
        assert!(self.0.is_multiple_of(2), "bomb {} goes off", self.0);
    }
}

#[test]
fn a_panicking_destructor_is_caught_counted_and_its_object_freed() {
    let heap = Heap::<Bombs>::new(Config::builder().verify(true).build().unwrap()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let kept = cx.root(cx.alloc(Bomb(1)));
        for i in 0..100 {
            cx.alloc(Bomb(i));
        }
        let freed_before = heap.stats().objects_freed_total;
        cx.collect();
        let s = heap.stats();
        assert_eq!(
            BOMB_DROPS.load(Ordering::SeqCst),
            100,
            "every dead bomb dropped once"
        );
        assert_eq!(s.destructor_panics, 50, "{s}");
        assert!(s.objects_freed_total >= freed_before + 100, "{s}");
        // The heap goes on: the live one is intact, and more cycles run.
        assert_eq!(kept.get(cx).0, 1);
        for i in 0..100 {
            cx.alloc(Bomb(2 * i));
        }
        cx.collect();
        assert_eq!(BOMB_DROPS.load(Ordering::SeqCst), 200);
        assert_eq!(heap.stats().destructor_panics, 50);
    });
}

spangc::brand!(Generic);

/// A derived struct with a data type parameter and a const parameter.
#[derive(Trace)]
#[gc(brand = B)]
struct Slots<'gc, T, B: Brand, const N: usize> {
    items: [T; N],
    first: Option<Gc<'gc, Node<'gc, B>, B>>,
}

/// A derived enum with a data type parameter.
#[derive(Trace)]
#[gc(brand = B)]
enum Either<'gc, T, B: Brand> {
    Data(T),
    Node(Gc<'gc, Node<'gc, B>, B>),
}

#[test]
fn derived_generic_types_trace_their_parameters() {
    let heap = Heap::<Generic>::new(Config::builder().verify(true).build().unwrap()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        // Type arguments that hold Gc pointers (traced through `T`: were
        // they not, the trees in `items` would be freed) and one that
        // holds none.
        let slots = cx.root(cx.alloc(Slots::<_, Generic, 3> {
            items: [Some(tree(cx, 2)), None, Some(tree(cx, 3))],
            first: Some(tree(cx, 1)),
        }));
        let either = cx.root(cx.alloc(Slots::<_, Generic, 2> {
            items: [Either::Data(Some(tree(cx, 4))), Either::Node(tree(cx, 0))],
            first: None,
        }));
        let plain = cx.root(cx.alloc(Slots::<u64, Generic, 2> {
            items: [5, 6],
            first: None,
        }));
        for _ in 0..3 {
            for _ in 0..1000 {
                tree(cx, 3);
            }
            cx.collect();
        }
        let s = slots.get(cx);
        let sizes: Vec<_> = s.items.iter().map(|t| t.map_or(0, count)).collect();
        assert_eq!(sizes, [7, 0, 15]);
        assert_eq!(count(s.first.unwrap()), 3);
        match &either.get(cx).items {
            [Either::Data(Some(t)), Either::Node(n)] => {
                assert_eq!((count(*t), count(*n)), (31, 1));
            }
            _ => panic!("wrong variants"),
        }
        assert_eq!(plain.get(cx).items, [5, 6]);
        // Exactly the rooted trees and the three holders are live.
        let marked = heap.stats().objects_marked;
        assert_eq!(marked, 7 + 15 + 3 + 31 + 1 + 3);
    });
}

#[test]
fn strings_and_slices() {
    let heap = Heap::<Strings>::new(Config::builder().verify(true).build().unwrap()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let s = cx.alloc_str("hello, spangc");
        let v = cx.alloc_slice_copy(&[1u64, 2, 3, 4]);
        let big = cx.alloc_slice_from_iter((0..100_000u32).map(|i| i * 2));
        let (rs, rv, rb) = (cx.root(s), cx.root(v), cx.root(big));
        cx.collect();
        assert_eq!(&*rs.get(cx), "hello, spangc");
        assert_eq!(&*rv.get(cx), &[1, 2, 3, 4]);
        assert_eq!(rb.get(cx).len(), 100_000);
        assert_eq!(rb.get(cx)[99_999], 199_998);
    });
}

#[test]
fn type_summary_counts_live_objects_by_type() {
    spangc::brand!(Summary);
    let heap = Heap::<Summary>::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let keep: Vec<_> = (0..1000u32).map(|i| cx.root(cx.alloc(i as u64))).collect();
        for _ in 0..5000 {
            cx.alloc(1.5f32);
        }
        let big = cx.root(cx.alloc_slice_copy(&[0u8; 100_000]));
        let text = cx.root(cx.alloc_str("named as a str"));
        let headed = cx.root(cx.alloc_tail_copy(7u32, &[1u16, 2]));
        cx.collect();
        let summary = heap.type_summary();
        let find = |name: &str| summary.iter().find(|t| t.name == name).cloned();
        let u = find("u64").expect("u64 objects");
        assert_eq!(u.objects, 1000);
        assert_eq!(u.bytes, 8000);
        assert!(find("f32").is_none(), "dead f32s are gone: {summary:?}");
        // Slices and strings carry their own types' names; other objects
        // with a trailing array, their `WithTail`'s.
        let bytes = find("[u8]").expect("the big slice");
        assert_eq!(bytes.objects, 1);
        assert!(bytes.bytes >= 100_008, "length word and bytes: {bytes:?}");
        assert_eq!(find("str").expect("the string").objects, 1);
        let headed_name = "spangc::layout::WithTail<u32, u16>";
        assert_eq!(find(headed_name).expect("the headed array").objects, 1);
        drop((keep, big, text, headed));
    });
}

/// Every std type with a `Trace` impl can also be allocated and rooted
/// directly (it has `Branded` and `Rootable` impls too).
#[test]
fn std_types_allocate_and_root() {
    use std::collections::{BinaryHeap, LinkedList};
    use std::time::{Duration, Instant};
    spangc::brand!(StdTypes);
    let heap = Heap::<StdTypes>::new(Config::default()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let path = cx.root(cx.alloc(std::path::PathBuf::from("/tmp")));
        let d = cx.alloc(Duration::from_millis(5));
        let _ = cx.alloc(Instant::now());
        let _ = cx.alloc(std::num::NonZeroU64::new(3).unwrap());
        let _ = cx.alloc(std::ffi::CString::new("c").unwrap());
        let _ = cx.alloc(std::ffi::OsString::from("os"));
        let cell = cx.root(cx.alloc(std::cell::Cell::new(1u32)));
        let _ = cx.alloc(std::cell::RefCell::new(String::from("r")));
        let shared: std::sync::Arc<str> = "shared".into();
        let arc = cx.root(cx.alloc(shared));
        let _ = cx.alloc(std::marker::PhantomData::<u8>);
        let list = cx.alloc(LinkedList::from([1u8, 2, 3]));
        let _ = cx.alloc(BinaryHeap::from(vec![3u8, 1, 2]));
        let t7 = cx.alloc((1u8, 2u16, 3u32, 4u64, 5i8, 6i16, 7i32));
        let t8 = cx.root(cx.alloc((1u8, 2u8, 3u8, 4u8, 5u8, 6u8, 7u8, 8u8)));
        assert_eq!(*d, Duration::from_millis(5));
        assert_eq!(list.len(), 3);
        assert_eq!(t7.6, 7);
        cx.collect();
        assert_eq!(path.get(cx).to_str(), Some("/tmp"));
        cell.get(cx).set(2);
        assert_eq!(cell.get(cx).get(), 2);
        assert_eq!(&**arc.get(cx), "shared");
        assert_eq!(t8.get(cx).7, 8);
    });
}

/// A heap that collects only when asked, marking on `threads` threads.
fn collected_by_hand<B: Brand>(threads: usize, verify: bool) -> Heap<B> {
    let config = Config::builder()
        .mark_threads(threads)
        .verify(verify)
        .gc_percent(None)
        .build()
        .unwrap();
    Heap::new(config).unwrap()
}

/// `Stats::mark_threads` tells how many threads marked: every configured
/// thread for the first collection; then one while the last collection
/// scanned fewer than 16,384 objects with pointers (noscan objects do not
/// count: a second worker costs more than it gains there), every thread
/// once it scanned more; and always every thread in verify mode (tests on
/// small heaps reach the parallel marker).
#[test]
fn mark_threads_follow_the_scan_work() {
    spangc::brand!(Threads);
    for verify in [false, true] {
        let heap = collected_by_hand::<Threads>(2, verify);
        let mut m = heap.mutator();
        let mib = vec![0u8; 1 << 20];
        m.enter(|cx| {
            let threads = |cx: &mut Scope<Threads>| {
                cx.collect();
                cx.heap().stats().mark_threads
            };
            // 8 MiB of bytes: big, but nothing to scan.
            let bytes: Vec<_> = (0..8).map(|_| cx.root(cx.alloc_slice_copy(&mib))).collect();
            assert_eq!(threads(cx), 2, "the first collection");
            assert_eq!(threads(cx), if verify { 2 } else { 1 });
            // A tree of 32,767 nodes: the next collection scans them all,
            // and the one after shares the work.
            let nodes = cx.root(tree(cx, 14));
            assert_eq!(threads(cx), if verify { 2 } else { 1 });
            assert_eq!(threads(cx), 2);
            drop((bytes, nodes));
        });
    }
}

/// Parallel marking counts every object once, however many parents it
/// has: a lattice where every node below the top has two parents (the
/// case where two mark workers race for the same child, each may scan it,
/// and only the one whose atomic OR set the bit counts it) marks exactly
/// as many objects and bytes with two threads as with one.
#[test]
fn shared_children_are_counted_once_by_two_mark_threads() {
    spangc::brand!(Lattice);
    const WIDTH: usize = 512;
    const LAYERS: usize = 64;
    let mut seen = Vec::new();
    for threads in [1, 2] {
        let heap = collected_by_hand::<Lattice>(threads, false);
        let mut m = heap.mutator();
        m.enter(|cx| {
            let leaves = (0..WIDTH).map(|_| tree(cx, 0)).collect::<Vec<_>>();
            let top = (1..LAYERS).fold(leaves, |below, _| {
                (0..WIDTH)
                    .map(|j| {
                        cx.alloc(Node {
                            left: Some(below[j]),
                            right: Some(below[(j + 1) % WIDTH]),
                        })
                    })
                    .collect()
            });
            let spine = top.iter().rev().fold(None, |next, &n| {
                Some(cx.alloc(Node {
                    left: Some(n),
                    right: next,
                }))
            });
            let root = cx.root(spine.unwrap());
            for _ in 0..4 {
                cx.collect();
                let s = cx.heap().stats();
                assert_eq!(s.mark_threads as usize, threads);
                assert_eq!(
                    s.objects_marked as usize,
                    WIDTH * LAYERS + WIDTH,
                    "{threads} threads"
                );
                seen.push(s.heap_marked_bytes);
            }
            drop(root);
        });
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "marked bytes: {seen:?}"
    );
}

/// Containers of `Gc` are marked a run at a time (`Gc::trace_slice`): a
/// lone mark worker keeps the mark word and its count in registers along
/// the run. Runs that jump between spans and mark words, repeat objects,
/// skip `None`s, come in a `VecDeque`'s two halves or a fixed array, or
/// hold objects with pointers of their own mark exactly the objects they
/// reach, with one mark thread and with two (whose first collection marks
/// with shared bits, one object at a time), with and without verify mode
/// (which poisons what it frees, so a reached object freed by mistake would
/// read back wrong).
#[test]
fn runs_of_pointers_mark_exactly_what_they_hold() {
    use std::collections::VecDeque;
    spangc::brand!(Runs);
    // 8 bytes, noscan: 1,024 to a span, 64 to a mark word.
    #[derive(Trace)]
    #[gc(brand = Runs)]
    struct Leaf(u64);
    #[derive(Trace)]
    #[gc(brand = Runs)]
    struct Pair<'gc> {
        leaf: Gc<'gc, Leaf, Runs>,
    }
    #[derive(Trace)]
    #[gc(brand = Runs)]
    struct Ring<'gc> {
        leaves: Vec<Option<Gc<'gc, Leaf, Runs>>>,
        pairs: VecDeque<Gc<'gc, Pair<'gc>, Runs>>,
        fixed: [Gc<'gc, Leaf, Runs>; 3],
    }
    const N: usize = 10_000;
    for (threads, verify) in [(1, false), (1, true), (2, false), (2, true)] {
        let heap = collected_by_hand::<Runs>(threads, verify);
        let mut m = heap.mutator();
        m.enter(|cx| {
            let all: Vec<_> = (0..N).map(|i| cx.alloc(Leaf(i as u64))).collect();
            // Every leaf whose index is a multiple of 3, in an order that
            // jumps between spans and words (7919 is prime to N), with a
            // `None` for each index that is 1 more than a multiple of 3.
            let mut leaves: Vec<_> = (0..N)
                .map(|i| i * 7919 % N)
                .filter(|k| k % 3 != 2)
                .map(|k| (k % 3 == 0).then(|| all[k]))
                .collect();
            // Repeats, next to each other and far apart.
            leaves.extend([Some(all[0]), Some(all[0]), None, Some(all[3])]);
            // Pairs reach leaves 2 more than a multiple of 3, which nothing
            // else holds; the deque wraps, so it has two halves.
            let pair = |k: usize| cx.alloc(Pair { leaf: all[k] });
            let mut pairs = VecDeque::with_capacity(4);
            pairs.extend([pair(2), pair(5), pair(8)]);
            pairs.pop_front();
            pairs.pop_front();
            pairs.extend([pair(11), pair(14), pair(2)]);
            assert!(!pairs.as_slices().1.is_empty(), "the deque wraps");
            let fixed = [all[N - 1 - (N - 1) % 3], all[6], all[N - 1 - (N - 1) % 3]];
            let ring = cx.root(cx.alloc(Ring {
                leaves,
                pairs,
                fixed,
            }));
            drop(all);
            // The ring, the leaves at multiples of 3, four pairs and the
            // three leaves only they reach (8, 11, 14, with 2 twice).
            let expected = 1 + N.div_ceil(3) + 4 + 4;
            for _ in 0..3 {
                cx.collect();
                let s = cx.heap().stats();
                assert_eq!(
                    s.objects_marked as usize, expected,
                    "{threads} threads, verify {verify}"
                );
                let ring = ring.get(cx);
                for (i, leaf) in ring.leaves.iter().enumerate() {
                    if let Some(leaf) = leaf {
                        assert_eq!(leaf.0 % 3, 0, "leaf {i} reads {}", leaf.0);
                    }
                }
                let reached: Vec<u64> = ring.pairs.iter().map(|p| p.leaf.0).collect();
                assert_eq!(reached, [8, 11, 14, 2]);
                assert_eq!(ring.fixed.map(|l| l.0), [9999, 6, 9999]);
            }
        });
    }
}

/// The pacer counts what the marker scanned outside the heap as scan work,
/// as Go 1.18 counts stacks and globals: 8 bytes per root handle plus the
/// buffers of std containers holding `Gc`s (pacer.rs, "Heap goal"). A
/// rooted object holding a `Vec` of a million pointers, a `VecDeque`, a
/// `Box` and a `HashMap` of them: the goal is exactly marked + (marked +
/// those bytes) at `gc_percent` 100; noscan containers (`Vec<u64>`) add
/// nothing, since nothing in them is scanned.
#[test]
fn scanned_container_buffers_count_toward_the_heap_goal() {
    use std::collections::{HashMap, VecDeque};
    spangc::brand!(Outside);
    type Leaf<'gc> = Gc<'gc, u64, Outside>;
    #[derive(Trace)]
    #[gc(brand = Outside)]
    struct Holder<'gc> {
        ring: Vec<Option<Leaf<'gc>>>,
        queue: VecDeque<Leaf<'gc>>,
        boxed: Box<[Leaf<'gc>; 3]>,
        map: HashMap<u32, Leaf<'gc>>,
        bytes: Vec<u64>,
    }
    const N: usize = 1_000_000;
    let heap =
        Heap::<Outside>::new(Config::builder().gc_percent(Some(100)).build().unwrap()).unwrap();
    let mut m = heap.mutator();
    m.enter(|cx| {
        let leaf = cx.alloc(7u64);
        let holder = cx.root(cx.alloc(Holder {
            ring: (0..N).map(|_| Some(leaf)).collect(),
            queue: VecDeque::from([leaf; 5]),
            boxed: Box::new([leaf; 3]),
            map: HashMap::from([(1, leaf), (2, leaf)]),
            bytes: vec![0; N],
        }));
        cx.collect();
        let s = cx.heap().stats();
        let outside = 8 // the one root handle
            + N * 8 + 5 * 8 + 3 * 8 + 2 * (4 + 8);
        assert_eq!(s.heap_goal_bytes, 2 * s.heap_marked_bytes + outside);
        drop(holder);
    });
}
