//! Weak tables: [`EphemeronMap`] (a value lives only while its key does)
//! and [`WeakSet`] (members that do not keep themselves alive: an
//! interpreter's string table).
//!
//! Both are ordinary heap objects (fields of a traced type, or allocated
//! themselves) whose `Trace` impl does not trace their entries. Instead it
//! registers the table with the marker ([`WeakTableObj`]). When the main
//! mark is done, the marker iterates to a fixpoint: it traces the value of
//! every ephemeron entry whose key is marked, drains, and repeats until a
//! round marks nothing new (a value may make another entry's key
//! reachable: chains and cycles through values resolve this way). Then it
//! removes every entry whose key is unmarked, with the world still
//! stopped, so no lookup can ever return a dead object.
//!
//! Keys are compared by address (the heap never moves objects); a weak
//! set's members are found by a caller-supplied hash and equality.

use crate::barrier;
use crate::brand::{Brand, Global};
use crate::branded::{Branded, Rootable};
use crate::gc::Gc;
use crate::layout::Object;
use crate::mark::Tracer;
use crate::mutator::Scope;
use crate::trace::Trace;
use std::cell::{Ref, RefCell};
use std::collections::HashMap;
use std::ptr::NonNull;

/// What the marker needs from a weak table (see the module docs).
pub(crate) trait WeakTableObj {
    /// Traces what the entries with live keys keep alive.
    fn trace_live(&self, live: &dyn Fn(NonNull<u8>) -> bool, tracer: &mut Tracer<'_>);
    /// Removes the entries whose keys are not live.
    fn prune(&self, live: &dyn Fn(NonNull<u8>) -> bool);
    /// Visits every key and value (heap verification).
    fn visit_all(&self, tracer: &mut Tracer<'_>);
}

/// A map from objects to values that keeps each value alive only while its
/// key is alive (an ephemeron table).
///
/// For data attached to objects from outside (a debugger's annotations,
/// a property table of a host object): an entry lives exactly as long as
/// its key, even when the value points back to the key. The map is an
/// ordinary heap value (a field of a traced type, or allocated itself);
/// the collector traces a value only once its key is found alive, and
/// removes the entries of dead keys at the end of marking, so a lookup
/// never sees a dead object. Keys are compared by address.
///
/// Writes ([`insert`](EphemeronMap::insert),
/// [`remove`](EphemeronMap::remove)) take the scope, like the cells; like
/// them, the map is `!Sync`.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
/// # type EphemeronMap<'gc, K, V> = spangc::EphemeronMap<'gc, K, V, Doc>;
/// use spangc::{Config, Trace};
///
/// #[derive(Trace)]
/// # #[gc(brand = Doc)]
/// struct Notes<'gc> {
///     // Object -> its annotation; kept only while the object lives.
///     by_object: EphemeronMap<'gc, str, Gc<'gc, str>>,
/// }
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let notes = cx.root(cx.alloc(Notes { by_object: EphemeronMap::new() }));
///     let (kept, dropped) = (cx.alloc_str("kept"), cx.alloc_str("dropped"));
///     let map = &notes.get(cx).by_object;
///     map.insert(cx, kept, cx.alloc_str("a note"));
///     map.insert(cx, dropped, cx.alloc_str("another"));
///     assert_eq!(map.len(), 2);
///     let kept = cx.root(kept);
///
///     cx.collect(); // `dropped` is unreachable: its entry goes
///     let map = &notes.get(cx).by_object;
///     assert_eq!(map.len(), 1);
///     assert_eq!(&**map.get(kept.get(cx)).unwrap(), "a note");
///
///     assert_eq!(map.remove(cx, kept.get(cx)).as_deref(), Some("a note"));
///     assert!(map.is_empty());
/// });
/// ```
pub struct EphemeronMap<'gc, K: ?Sized, V, B: Brand = Global> {
    entries: RefCell<Entries<'gc, K, V, B>>,
}

/// Entries by key address.
type Entries<'gc, K, V, B> = HashMap<usize, (Gc<'gc, K, B>, V)>;

impl<K: ?Sized, V, B: Brand> Default for EphemeronMap<'_, K, V, B> {
    fn default() -> Self {
        EphemeronMap {
            entries: RefCell::new(HashMap::new()),
        }
    }
}

fn key_of<K: ?Sized, B: Brand>(k: Gc<'_, K, B>) -> usize {
    Gc::as_raw(k).as_ptr() as usize
}

impl<'gc, K: ?Sized, V, B: Brand> EphemeronMap<'gc, K, V, B> {
    /// An empty map. [`EphemeronMap`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type EphemeronMap<'gc, K, V> = spangc::EphemeronMap<'gc, K, V, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let map = cx.alloc(EphemeronMap::<str, u32>::new());
    ///     assert!(map.is_empty());
    /// });
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `key` to `value`, returning the previous value. Keys are
    /// compared by address, not content. [`EphemeronMap`] has another
    /// example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type EphemeronMap<'gc, K, V> = spangc::EphemeronMap<'gc, K, V, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let map = cx.alloc(EphemeronMap::<str, u32>::new());
    ///     let key = cx.alloc_str("k");
    ///     assert_eq!(map.insert(cx, key, 1), None);
    ///     assert_eq!(map.insert(cx, key, 2), Some(1));
    ///     assert_eq!(map.insert(cx, cx.alloc_str("k"), 3), None); // another object
    ///     assert_eq!(map.len(), 2);
    /// });
    /// ```
    pub fn insert(&self, cx: &Scope<B>, key: Gc<'gc, K, B>, value: V) -> Option<V>
    where
        V: Trace<B>,
    {
        barrier::write::<B, _>(cx, &key);
        barrier::write::<B, V>(cx, &value);
        self.entries
            .borrow_mut()
            .insert(key_of(key), (key, value))
            .map(|(_, v)| v)
    }

    /// The value for `key`, borrowed (a `Ref`: drop it before writing to
    /// the map). [`EphemeronMap`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type EphemeronMap<'gc, K, V> = spangc::EphemeronMap<'gc, K, V, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let map = cx.alloc(EphemeronMap::<str, Vec<u8>>::new());
    ///     let key = cx.alloc_str("k");
    ///     map.insert(cx, key, vec![1, 2]);
    ///     assert_eq!(map.get(key).as_deref(), Some(&vec![1, 2]));
    ///     assert!(map.get(cx.alloc_str("k")).is_none()); // same content, other object
    /// });
    /// ```
    pub fn get(&self, key: Gc<'gc, K, B>) -> Option<Ref<'_, V>> {
        Ref::filter_map(self.entries.borrow(), |e| {
            e.get(&key_of(key)).map(|(_, v)| v)
        })
        .ok()
    }

    /// Removes `key`'s entry, returning its value. [`EphemeronMap`] has
    /// another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type EphemeronMap<'gc, K, V> = spangc::EphemeronMap<'gc, K, V, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let map = cx.alloc(EphemeronMap::<str, u8>::new());
    ///     let key = cx.alloc_str("k");
    ///     map.insert(cx, key, 5);
    ///     assert_eq!(map.remove(cx, key), Some(5));
    ///     assert_eq!(map.remove(cx, key), None);
    /// });
    /// ```
    pub fn remove(&self, cx: &Scope<B>, key: Gc<'gc, K, B>) -> Option<V> {
        barrier::write::<B, _>(cx, &key);
        self.entries
            .borrow_mut()
            .remove(&key_of(key))
            .map(|(_, v)| v)
    }

    /// Number of entries (entries whose key died are removed at the next
    /// collection). [`EphemeronMap`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type EphemeronMap<'gc, K, V> = spangc::EphemeronMap<'gc, K, V, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let table = cx.root(cx.alloc(EphemeronMap::<str, u8>::new()));
    ///     let kept = cx.root(cx.alloc_str("kept"));
    ///     table.get(cx).insert(cx, kept.get(cx), 1);
    ///     table.get(cx).insert(cx, cx.alloc_str("dropped"), 2);
    ///     assert_eq!(table.get(cx).len(), 2);
    ///     cx.collect(); // the entry of the dead key goes
    ///     assert_eq!(table.get(cx).len(), 1);
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    /// Whether the map is empty. [`EphemeronMap`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type EphemeronMap<'gc, K, V> = spangc::EphemeronMap<'gc, K, V, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let map = cx.alloc(EphemeronMap::<str, u8>::new());
    ///     assert!(map.is_empty());
    ///     let key = cx.alloc_str("k");
    ///     map.insert(cx, key, 1);
    ///     assert!(!map.is_empty());
    ///     map.remove(cx, key);
    ///     assert!(map.is_empty());
    /// });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<K: ?Sized, V: Trace<B>, B: Brand> WeakTableObj for EphemeronMap<'_, K, V, B> {
    fn trace_live(&self, live: &dyn Fn(NonNull<u8>) -> bool, tracer: &mut Tracer<'_>) {
        for (k, v) in self.entries.borrow().values() {
            if live(Gc::as_raw(*k)) {
                tracer.trace::<B, V>(v);
            }
        }
    }

    fn prune(&self, live: &dyn Fn(NonNull<u8>) -> bool) {
        self.entries
            .borrow_mut()
            .retain(|_, (k, _)| live(Gc::as_raw(*k)));
    }

    fn visit_all(&self, tracer: &mut Tracer<'_>) {
        for (k, v) in self.entries.borrow().values() {
            tracer.trace::<B, _>(k);
            tracer.trace::<B, V>(v);
        }
    }
}

// SAFETY: the entries are reported to the marker as a weak table, which
// traces every value whose key is marked (the ephemeron rule) and removes
// the entries of dead keys before anyone can read them (rule 1, weakened
// on purpose); NEEDS_TRACE is true so the table is always seen; drop glue
// drops keys (no glue) and values (rule 4 by their own impls).
unsafe impl<K: ?Sized, V: Trace<B>, B: Brand> Trace<B> for EphemeronMap<'_, K, V, B> {
    const NEEDS_TRACE: bool = true;
    fn trace(&self, tracer: &mut Tracer<'_>) {
        tracer.weak_table(self);
    }
}

// SAFETY: keys and values carry the brand and erase by their own impls.
unsafe impl<'gc, K: ?Sized + Branded<'gc>, V: Branded<'gc>, B: Brand> Branded<'gc>
    for EphemeronMap<'gc, K, V, B>
where
    V::Erased: Sized,
    for<'x> <V::Erased as Rootable>::At<'x>: Sized,
{
    type Erased = EphemeronMap<'static, K::Erased, V::Erased, B>;
}

// SAFETY: the inverse of the impl above.
unsafe impl<K: ?Sized + Rootable, V: Rootable, B: Brand> Rootable for EphemeronMap<'static, K, V, B>
where
    for<'x> V::At<'x>: Sized,
{
    type At<'gc> = EphemeronMap<'gc, K::At<'gc>, V::At<'gc>, B>;
}

/// A set of objects that does not keep its members alive: members that die
/// disappear at the next collection. Members are found by a hash and an
/// equality the caller supplies (for interning: the content of a string).
///
/// An open-addressed table of (hash, member) slots, linear probing, at most
/// 3/4 full; a probe compares stored hashes before looking at a member, so
/// passing over other members costs no cache miss on them. Members leave
/// only when the marker prunes dead ones, which rebuilds the table, so no
/// tombstones are needed.
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// # type Scope = spangc::Scope<Doc>;
/// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
/// # type WeakSet<'gc, T> = spangc::WeakSet<'gc, T, Doc>;
/// use spangc::{Config, Trace};
/// use std::hash::{BuildHasher, RandomState};
///
/// #[derive(Trace)]
/// # #[gc(brand = Doc)]
/// struct Strings<'gc> {
///     set: WeakSet<'gc, str>,
///     #[gc(skip)]
///     hasher: RandomState,
/// }
///
/// /// Returns the one string object with this content.
/// fn intern<'s>(cx: &'s Scope, table: &Strings<'s>, s: &str) -> Gc<'s, str> {
///     let hash = table.hasher.hash_one(s);
///     table.set.find(hash, |member| member == s).unwrap_or_else(|| {
///         let new = cx.alloc_str(s);
///         table.set.insert(cx, hash, new);
///         new
///     })
/// }
///
/// let heap = Heap::new(Config::default()).unwrap();
/// let mut m = heap.mutator();
/// m.enter(|cx| {
///     let table = cx.root(cx.alloc(Strings { set: WeakSet::new(), hasher: RandomState::new() }));
///     let kept = cx.root(intern(cx, &table.get(cx), "print"));
///     intern(cx, &table.get(cx), "temporary");
///     assert!(Gc::ptr_eq(intern(cx, &table.get(cx), "print"), kept.get(cx)));
///     assert_eq!(table.get(cx).set.len(), 2);
///
///     cx.collect(); // "temporary" was not referenced: it leaves the set
///     assert_eq!(table.get(cx).set.len(), 1);
///     assert!(Gc::ptr_eq(intern(cx, &table.get(cx), "print"), kept.get(cx)));
/// });
/// ```
pub struct WeakSet<'gc, T: ?Sized, B: Brand = Global> {
    table: RefCell<Slots<'gc, T, B>>,
}

struct Slots<'gc, T: ?Sized, B: Brand> {
    /// Power-of-two length, or empty.
    slots: Vec<Option<(u64, Gc<'gc, T, B>)>>,
    count: usize,
}

impl<'gc, T: ?Sized, B: Brand> Slots<'gc, T, B> {
    fn with_capacity(members: usize) -> Self {
        let len = if members == 0 {
            0
        } else {
            (members * 4 / 3 + 1).next_power_of_two().max(16)
        };
        Slots {
            slots: vec![None; len],
            count: 0,
        }
    }

    /// Puts a member in its first free slot (the table has room).
    fn place(&mut self, hash: u64, member: Gc<'gc, T, B>) {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        while self.slots[i].is_some() {
            i = (i + 1) & mask;
        }
        self.slots[i] = Some((hash, member));
        self.count += 1;
    }

    fn members(&self) -> impl Iterator<Item = (u64, Gc<'gc, T, B>)> + '_ {
        self.slots.iter().flatten().copied()
    }
}

impl<T: ?Sized, B: Brand> Default for WeakSet<'_, T, B> {
    fn default() -> Self {
        WeakSet {
            table: RefCell::new(Slots::with_capacity(0)),
        }
    }
}

impl<'gc, T: ?Sized + Object, B: Brand> WeakSet<'gc, T, B> {
    /// An empty set. [`WeakSet`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type WeakSet<'gc, T> = spangc::WeakSet<'gc, T, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let set = cx.alloc(WeakSet::<str>::new());
    ///     assert_eq!(set.len(), 0);
    ///     assert!(set.find(0, |_| true).is_none());
    /// });
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The member with this hash for which `eq` holds. [`WeakSet`] has
    /// another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type Gc<'gc, T> = spangc::Gc<'gc, T, Doc>;
    /// # type WeakSet<'gc, T> = spangc::WeakSet<'gc, T, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let set = cx.alloc(WeakSet::<str>::new());
    ///     let hello = cx.alloc_str("hello");
    ///     set.insert(cx, 5, hello); // 5: any hash the caller computes from the content
    ///     assert!(Gc::ptr_eq(set.find(5, |s| s == "hello").unwrap(), hello));
    ///     assert!(set.find(5, |s| s == "world").is_none()); // same hash, not equal
    ///     assert!(set.find(6, |s| s == "hello").is_none()); // another hash
    /// });
    /// ```
    pub fn find(&self, hash: u64, eq: impl Fn(&T) -> bool) -> Option<Gc<'gc, T, B>> {
        let t = self.table.borrow();
        if t.slots.is_empty() {
            return None;
        }
        let mask = t.slots.len() - 1;
        let mut i = hash as usize & mask;
        while let Some((h, m)) = t.slots[i] {
            if h == hash && eq(Gc::get(m)) {
                return Some(m);
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Adds `member` under `hash` (the caller checks with
    /// [`WeakSet::find`] first if members must be unique). [`WeakSet`] has
    /// another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type WeakSet<'gc, T> = spangc::WeakSet<'gc, T, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let set = cx.alloc(WeakSet::<u64>::new());
    ///     for i in 0..100u64 {
    ///         set.insert(cx, i, cx.alloc(i)); // the table grows as needed
    ///     }
    ///     assert_eq!(set.len(), 100);
    ///     assert!((0..100u64).all(|i| set.find(i, |m| *m == i).is_some()));
    /// });
    /// ```
    pub fn insert(&self, cx: &Scope<B>, hash: u64, member: Gc<'gc, T, B>) {
        barrier::write::<B, _>(cx, &member);
        let mut t = self.table.borrow_mut();
        if (t.count + 1) * 4 > t.slots.len() * 3 {
            let mut bigger = Slots::with_capacity((t.count + 1) * 2);
            for (h, m) in t.members() {
                bigger.place(h, m);
            }
            *t = bigger;
        }
        t.place(hash, member);
    }

    /// Number of members (dead members are removed at the next
    /// collection). [`WeakSet`] has another example.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type WeakSet<'gc, T> = spangc::WeakSet<'gc, T, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// heap.mutator().enter(|cx| {
    ///     let set = cx.root(cx.alloc(WeakSet::<str>::new()));
    ///     let kept = cx.root(cx.alloc_str("kept"));
    ///     set.get(cx).insert(cx, 1, kept.get(cx));
    ///     set.get(cx).insert(cx, 2, cx.alloc_str("temporary"));
    ///     assert_eq!(set.get(cx).len(), 2);
    ///     cx.collect(); // "temporary" was referenced only by the set
    ///     assert_eq!(set.get(cx).len(), 1);
    /// });
    /// ```
    pub fn len(&self) -> usize {
        self.table.borrow().count
    }

    /// Whether the set is empty.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// # type WeakSet<'gc, T> = spangc::WeakSet<'gc, T, Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::default()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let set = cx.root(cx.alloc(WeakSet::<u64>::new()));
    ///     assert!(set.get(cx).is_empty());
    ///     set.get(cx).insert(cx, 1, cx.alloc(1u64)); // referenced by nothing else
    ///     assert!(!set.get(cx).is_empty());
    ///     cx.collect();
    ///     assert!(set.get(cx).is_empty());
    /// });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: ?Sized, B: Brand> WeakTableObj for WeakSet<'_, T, B> {
    fn trace_live(&self, _: &dyn Fn(NonNull<u8>) -> bool, _: &mut Tracer<'_>) {}

    fn prune(&self, live: &dyn Fn(NonNull<u8>) -> bool) {
        let mut t = self.table.borrow_mut();
        let keep: Vec<_> = t.members().filter(|(_, m)| live(Gc::as_raw(*m))).collect();
        let mut fresh = Slots::with_capacity(keep.len());
        for (h, m) in keep {
            fresh.place(h, m);
        }
        *t = fresh;
    }

    fn visit_all(&self, tracer: &mut Tracer<'_>) {
        for (_, m) in self.table.borrow().members() {
            tracer.trace::<B, _>(&m);
        }
    }
}

// SAFETY: members are deliberately not traced; the marker removes dead
// ones before anyone can read them (see EphemeronMap's impl); NEEDS_TRACE
// is true so the set is always seen; no drop glue beyond the map's.
unsafe impl<T: ?Sized, B: Brand> Trace<B> for WeakSet<'_, T, B> {
    const NEEDS_TRACE: bool = true;
    fn trace(&self, tracer: &mut Tracer<'_>) {
        tracer.weak_table(self);
    }
}

// SAFETY: the member type carries the brand and erases by its own impl.
unsafe impl<'gc, T: ?Sized + Branded<'gc>, B: Brand> Branded<'gc> for WeakSet<'gc, T, B> {
    type Erased = WeakSet<'static, T::Erased, B>;
}

// SAFETY: the inverse of the impl above.
unsafe impl<T: ?Sized + Rootable, B: Brand> Rootable for WeakSet<'static, T, B> {
    type At<'gc> = WeakSet<'gc, T::At<'gc>, B>;
}
