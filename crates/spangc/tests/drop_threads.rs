//! Destructors and threads: the drop glue of an object whose type is not
//! `Send` runs only on the thread that allocated it, exactly once, however
//! the sweeping is spread over threads; `Send` types are dropped by
//! whichever thread sweeps them. See docs/api.md, "Destructors and
//! threads".

use spangc::{Config, Gc, GcCell, Heap, Trace};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;

/// Records where each drop ran. `Send`, so it may be a skipped field.
struct Probe {
    id: u64,
    owner: ThreadId,
    log: Arc<Log>,
}

#[derive(Default)]
struct Log {
    drops: AtomicU64,
    wrong_thread: AtomicU64,
    ids: Mutex<Vec<u64>>,
}

impl Log {
    fn probe(self: &Arc<Self>, id: u64) -> Probe {
        Probe {
            id,
            owner: std::thread::current().id(),
            log: self.clone(),
        }
    }

    fn drops(&self) -> u64 {
        self.drops.load(SeqCst)
    }

    /// Checks that drops ran on their own threads, each id at most once.
    fn check(&self) {
        assert_eq!(
            self.wrong_thread.load(SeqCst),
            0,
            "drop glue ran on another thread"
        );
        let mut ids = self.ids.lock().unwrap().clone();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "an object was dropped twice");
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        if std::thread::current().id() != self.owner {
            self.log.wrong_thread.fetch_add(1, SeqCst);
        }
        self.log.ids.lock().unwrap().push(self.id);
        self.log.drops.fetch_add(1, SeqCst);
    }
}

spangc::brand!(Deferred);
spangc::brand!(Exited);
spangc::brand!(LastMutator);
spangc::brand!(Racing);
spangc::brand!(Anywhere);

/// Not `Send`: a `GcCell` makes it `!Sync`, so a `Gc` to it is `!Send`.
#[derive(Trace)]
#[gc(brand = B)]
struct Node<'gc, B: spangc::Brand> {
    next: GcCell<Option<Gc<'gc, Node<'gc, B>, B>>>,
    #[gc(skip)]
    _probe: Probe,
}

/// `Send`, with drop glue: dropped wherever it is swept.
#[derive(Trace)]
#[gc(brand = Anywhere)]
struct Plain {
    #[gc(skip)]
    _probe: Probe,
}

fn node<'gc, B: spangc::Brand>(
    cx: &'gc spangc::Scope<B>,
    log: &Arc<Log>,
    id: u64,
) -> Gc<'gc, Node<'gc, B>, B> {
    cx.alloc(Node {
        next: GcCell::new(None),
        _probe: log.probe(id),
    })
}

/// Runs a thread that makes a mutator of `heap`, allocates a node for each
/// id, drops them all and exits; returns once it has.
fn garbage_on_a_thread<B: spangc::Brand>(
    heap: &Heap<B>,
    log: &Arc<Log>,
    ids: std::ops::Range<u64>,
) {
    let (h, l) = (heap.clone(), log.clone());
    std::thread::spawn(move || {
        let mut m = h.mutator();
        m.enter(|cx| {
            for i in ids {
                node(cx, &l, i);
            }
        });
    })
    .join()
    .unwrap();
}

fn driven<B: spangc::Brand>() -> Heap<B> {
    // No background sweeper and no automatic collections: the test says
    // which thread sweeps.
    let config = Config::builder()
        .background_sweep(false)
        .gc_percent(None)
        .verify(true)
        .build()
        .unwrap();
    Heap::new(config).unwrap()
}

/// A recursive `Send` type: the compiler's answer covers the field that
/// names the type itself.
#[derive(Trace)]
#[gc(brand = Anywhere)]
struct List {
    next: Option<Box<List>>,
    name: String,
}

/// A generic type: not known to be `Send`.
#[derive(Trace)]
#[gc(brand = Anywhere)]
struct Pair<T> {
    items: Vec<T>,
    count: u32,
}

/// Two `'static` types naming each other through a `RefCell`: `SEND` is
/// no cycle.
#[derive(Trace)]
#[gc(brand = Anywhere)]
struct Ping {
    pong: std::cell::RefCell<Vec<Pong>>,
}

#[derive(Trace)]
#[gc(brand = Anywhere)]
struct Pong {
    ping: Option<Box<Ping>>,
}

/// The derive knows which types are `Send`.
#[test]
fn the_derive_answers_send() {
    const {
        assert!(!<Node<'static, Deferred> as Trace<Deferred>>::SEND);
        assert!(<Plain as Trace<Anywhere>>::SEND);
        assert!(<List as Trace<Anywhere>>::SEND);
        assert!(!<Pair<String> as Trace<Anywhere>>::SEND);
        assert!(<Ping as Trace<Anywhere>>::SEND && <Pong as Trace<Anywhere>>::SEND);
    }
}

/// Another thread's collection sweeps this thread's garbage: it defers the
/// drop glue instead of running it; this thread runs it when it next
/// enters a scope; the next collection frees the slots.
#[test]
fn another_threads_sweep_defers_to_the_owner() {
    const N: u64 = 1000;
    let heap = driven::<Deferred>();
    let log = Arc::new(Log::default());
    let mut m = heap.mutator();
    m.enter(|cx| {
        for i in 0..N {
            node(cx, &log, i);
        }
    });
    let other = heap.clone();
    std::thread::spawn(move || other.collect()).join().unwrap();
    assert_eq!(log.drops(), 0, "nothing dropped on the collecting thread");
    let s = heap.stats();
    assert_eq!(s.destructors_deferred_total, N);
    assert_eq!(s.objects_marked, 0);
    let freed = s.objects_freed_total;
    m.enter(|_| {});
    assert_eq!(log.drops(), N, "run on entering a scope");
    log.check();
    heap.collect();
    let s = heap.stats();
    assert_eq!(s.objects_freed_total - freed, N, "freed by the next sweep");
    assert_eq!(s.destructors_deferred_total, N, "not deferred twice");
    assert_eq!(log.drops(), N, "not dropped twice");
    assert_eq!(s.destructors_skipped_total, 0);
}

/// An object of a thread that has exited dies after it: its drop glue
/// cannot run anywhere and is skipped (counted), and its memory is freed.
#[test]
fn objects_of_an_exited_thread_are_freed_without_drop_glue() {
    let heap = driven::<Exited>();
    let log = Arc::new(Log::default());
    let (h, l) = (heap.clone(), log.clone());
    std::thread::spawn(move || {
        let mut m = h.mutator();
        let root = m.enter(|cx| {
            let a = node(cx, &l, 0);
            a.next.set(cx, Some(node(cx, &l, 1)));
            node(cx, &l, 2); // garbage now
            cx.root(a)
        });
        drop(m); // collects first: the garbage is dropped here
        assert_eq!(l.drops(), 1);
        drop(root); // the rooted pair dies after the mutator
    })
    .join()
    .unwrap();
    let before = heap.stats().objects_freed_total;
    heap.collect();
    let s = heap.stats();
    assert_eq!(log.drops(), 1, "the pair's drop glue is skipped");
    assert_eq!(s.destructors_skipped_total, 2);
    assert_eq!(s.objects_freed_total - before, 2, "and their memory freed");
    log.check();
}

/// A thread that drops its mutator while others hold the heap collects
/// first, so its garbage is dropped on it before it exits.
#[test]
fn the_last_mutator_of_a_thread_collects_its_garbage() {
    const N: u64 = 500;
    let heap = driven::<LastMutator>();
    let log = Arc::new(Log::default());
    let gcs = heap.gc_count();
    garbage_on_a_thread(&heap, &log, 0..N);
    assert_eq!(heap.gc_count(), gcs + 1);
    assert_eq!(log.drops(), N);
    log.check();
    assert_eq!(heap.stats().destructors_skipped_total, 0);
}

/// `Send` types are dropped by whichever thread sweeps them, at once.
#[test]
fn send_types_drop_on_the_sweeping_thread() {
    let heap = driven::<Anywhere>();
    let log = Arc::new(Log::default());
    let mut m = heap.mutator();
    m.enter(|cx| {
        for i in 0..100 {
            cx.alloc(Plain {
                _probe: log.probe(i),
            });
        }
    });
    let other = heap.clone();
    std::thread::spawn(move || other.collect()).join().unwrap();
    assert_eq!(log.drops(), 100);
    assert_eq!(
        log.wrong_thread.load(SeqCst),
        100,
        "on the collecting thread"
    );
    assert_eq!(heap.stats().destructors_deferred_total, 0);
    drop(m);
}

/// Several threads allocate, link and drop non-`Send` objects while the
/// background sweeper and their own collections sweep each other's spans:
/// every object is dropped exactly once, on its own thread, by the time
/// the threads have dropped their mutators (which they do when none of
/// them is inside a scope, so each can collect before it goes).
/// `SPANGC_STRESS_SCALE` scales the rounds.
#[test]
fn drops_stay_on_their_threads_under_racing_sweeps() {
    let scale: u64 = std::env::var("SPANGC_STRESS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let config = Config::builder().verify(true).build().unwrap();
    let heap = Heap::<Racing>::new(config).unwrap();
    let log = Arc::new(Log::default());
    let done = Arc::new(std::sync::Barrier::new(3));
    let threads: Vec<_> = (0..3u64)
        .map(|t| {
            let (h, l, done) = (heap.clone(), log.clone(), done.clone());
            std::thread::spawn(move || {
                let mut m = h.mutator();
                let mut made = 0;
                for round in 0..20 * scale {
                    m.enter(|cx| {
                        let keep = cx.root(node(cx, &l, t << 32 | made));
                        made += 1;
                        for _ in 0..2000 {
                            let n = node(cx, &l, t << 32 | made);
                            made += 1;
                            if made % 7 == 0 {
                                n.next.set(cx, keep.get(cx).next.get());
                                keep.get(cx).next.set(cx, Some(n));
                            }
                        }
                        if round % 5 == t {
                            cx.collect();
                        } else {
                            cx.safepoint();
                        }
                    });
                }
                done.wait();
                drop(m);
                made
            })
        })
        .collect();
    let made: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let s = heap.stats();
    log.check();
    assert_eq!(log.drops(), made, "every object dropped");
    assert_eq!(s.destructors_skipped_total, 0);
    assert!(s.gc_count >= 4, "collections ran: {}", s.gc_count);
    eprintln!(
        "{made} objects, {} collections, {} drops deferred to their threads",
        s.gc_count, s.destructors_deferred_total
    );
}

spangc::brand!(Teardown);

/// Tearing the heap down on the thread that allocated its objects drops
/// them there, rooted ones included; nothing is skipped.
#[test]
fn teardown_on_the_owner_thread_drops_everything() {
    let heap = driven::<Teardown>();
    let log = Arc::new(Log::default());
    let mut m = heap.mutator();
    let kept = m.enter(|cx| {
        for i in 0..100 {
            node(cx, &log, i);
        }
        cx.root(node(cx, &log, 100))
    });
    drop(heap);
    drop(m); // another handle (the root's) keeps the heap: this collects
    assert_eq!(log.drops(), 100, "the garbage, on this thread");
    drop(kept); // the last handle: teardown
    assert_eq!(log.drops(), 101);
    log.check();
}

spangc::brand!(InThreadLocal);
spangc::brand!(Joined);

/// A mutator kept in a thread-local is dropped while the thread's
/// thread-locals are destroyed: it still collects and drops the thread's
/// garbage on the thread.
#[test]
fn a_mutator_in_a_thread_local_drops_its_garbage_on_exit() {
    use std::cell::RefCell;
    thread_local! {
        static M: RefCell<Option<spangc::Mutator<InThreadLocal>>> = const { RefCell::new(None) };
    }
    let heap = driven::<InThreadLocal>();
    let log = Arc::new(Log::default());
    let (h, l) = (heap.clone(), log.clone());
    std::thread::spawn(move || {
        M.with(|m| {
            let mut m = m.borrow_mut();
            let m = m.insert(h.mutator());
            m.enter(|cx| {
                for i in 0..50 {
                    node(cx, &l, i);
                }
            });
        });
    })
    .join()
    .unwrap();
    assert_eq!(log.drops(), 50);
    log.check();
    assert_eq!(heap.stats().destructors_skipped_total, 0);
}

/// A thread inside a scope joins a worker that allocated: the worker's
/// mutator does not collect on its way out (that would wait for the
/// joining scope, which waits for the worker), so nothing hangs; the
/// worker's object, found dead after it exited, is freed without drop
/// glue.
#[test]
fn a_worker_joined_from_inside_a_scope_does_not_wait_for_it() {
    let heap = driven::<Joined>();
    let log = Arc::new(Log::default());
    let mut m = heap.mutator();
    m.enter(|cx| {
        garbage_on_a_thread(&heap, &log, 0..1);
        cx.collect();
    });
    assert_eq!(log.drops(), 0, "not on this thread");
    assert_eq!(heap.stats().destructors_skipped_total, 1);
    log.check();
}

spangc::brand!(JoinsInDrop);

/// A `Send` object whose destructor stops and joins a worker thread (a
/// pool handle).
#[derive(Trace)]
#[gc(brand = JoinsInDrop, allow_drop)]
struct Pool {
    #[gc(skip)]
    stop: Option<std::sync::mpsc::Sender<()>>,
    #[gc(skip)]
    worker: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        drop(self.stop.take());
        self.worker.take().unwrap().join().unwrap();
    }
}

/// A sweep runs a destructor that joins a worker whose last mutator is
/// being dropped after it allocated bound objects: the worker's wait for
/// the sweep, which holds a claim until the join returns, gives up after a
/// bound instead of deadlocking.
#[test]
fn a_sweeper_joining_an_exiting_worker_does_not_deadlock() {
    use std::sync::mpsc;
    let heap = driven::<JoinsInDrop>();
    let log = Arc::new(Log::default());
    let (done_tx, done_rx) = mpsc::channel();
    let h2 = heap.clone();
    std::thread::spawn(move || {
        let mut m = h2.mutator();
        m.enter(|cx| {
            let (stop, stopped) = mpsc::channel::<()>();
            let (ready_tx, ready) = mpsc::channel::<()>();
            let (h, l) = (cx.heap(), log.clone());
            let worker = std::thread::spawn(move || {
                let mut w = h.mutator();
                w.enter(|cx| {
                    node(cx, &l, 0);
                });
                ready_tx.send(()).unwrap();
                let _ = stopped.recv();
                drop(w); // its last mutator, which allocated a bound object
            });
            ready.recv().unwrap();
            // The pool goes into a third mutator's cache, which the next
            // collection hands to the unswept set.
            let h3 = cx.heap();
            let holder = std::thread::spawn(move || {
                let mut t = h3.mutator();
                t.enter(|cx| {
                    cx.alloc(Pool {
                        stop: Some(stop),
                        worker: Some(worker),
                    });
                });
            });
            cx.blocking(|| holder.join().unwrap());
            cx.collect(); // sweeps the pool: its destructor joins the worker
        });
        done_tx.send(()).unwrap();
    });
    assert!(
        done_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .is_ok(),
        "deadlock: a sweeper's destructor joins a worker that waits for the sweep"
    );
}

spangc::brand!(ManyThreads);

/// More threads over the heap's life than it has owner indices (2047),
/// each allocating objects bound to it: indices of exited threads are
/// reused once no span carries them, every object is dropped on its own
/// thread, and allocation keeps working (an owner index must fit the
/// allocation cache's key).
#[test]
fn more_threads_than_owner_indices_over_time() {
    const THREADS: u64 = 2100;
    let heap = driven::<ManyThreads>();
    let log = Arc::new(Log::default());
    for t in 0..THREADS {
        let (h, l) = (heap.clone(), log.clone());
        std::thread::spawn(move || {
            let mut m = h.mutator();
            m.enter(|cx| {
                let a = node(cx, &l, 2 * t);
                a.next.set(cx, Some(node(cx, &l, 2 * t + 1)));
            });
        })
        .join()
        .unwrap();
    }
    assert_eq!(log.drops(), 2 * THREADS);
    log.check();
    assert_eq!(heap.stats().destructors_skipped_total, 0);
}
