//! The VM's memory: a spangc heap, this thread's mutator, and the facade the
//! VM allocates and writes objects through.
//!
//! Three types, one per lifetime:
//!
//! * `GcHeap` lives as long as the VM. It owns the spangc `Heap` (configured
//!   from `HeapConfig`: `--gc-stress` and `--gc-percent`), the `Mutator`,
//!   and a `Root` of the object layer's own state (`HeapRoots`: the
//!   interning set and the interned `"init"`). `enter` opens a scope.
//! * `Mutation<'m>` is one scope (`&mut spangc::Scope`): the safepoint
//!   (`safepoint`, `&mut self`, may collect) and the poll
//!   (`safepoint_requested`, one load). Between REPL lines the VM leaves
//!   the scope; its roots keep everything alive meanwhile.
//! * `Heap<'s>` is the facade of one safepoint interval: a `Copy` pair of
//!   the shared scope borrow `&'s Scope` and the object layer's state. All
//!   allocation and every write of an object field after its allocation go
//!   through it (`alloc_*`, `intern`, `concat`, `set_field`, `add_method`,
//!   `inherit`, `close_upvalue`, and `Table::set`, which takes it). None of
//!   them collects, so Rust locals may hold fresh `Gc`s between safepoints
//!   without rooting them; every `Gc<'s, _>` it hands out borrows `'s`, so
//!   `Mutation::safepoint` cannot be called while any is alive.
//!
//! That split is spangc's own (`Scope::alloc(&self)`,
//! `Scope::safepoint(&mut self)`); this module only gives it the VM's
//! vocabulary, so the VM names no spangc type but `Gc`, `Root`,
//! `GcRefCell` and the `Trace` derive of its state object (and `Stats` and
//! `HeapError` to report), all re-exported by `object`.

use std::cell::RefMut;

use spangc::{Branded, Config, Mutator, Rootable, Scope, Trace};

use super::intern::Interner;
use super::{
    ClosureHead, Gc, GcRefCell, HeapError, NativeFn, ObjBoundMethod, ObjClass, ObjClosure,
    ObjFunction, ObjInstance, ObjNative, ObjString, ObjUpvalue, Root, Stats, Table, UpvalueState,
    Value,
};

/// How the heap paces collections; the CLI's `--gc-stress` and
/// `--gc-percent` end up here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapConfig {
    /// Collect at every safepoint.
    pub stress: bool,
    /// Let the heap grow by this percentage between collections; `None` turns
    /// automatic collection off.
    pub gc_percent: Option<u32>,
}

impl Default for HeapConfig {
    fn default() -> HeapConfig {
        HeapConfig {
            stress: false,
            gc_percent: Some(100),
        }
    }
}

/// The object layer's own roots.
#[derive(Trace)]
struct HeapRoots<'gc> {
    interner: Interner<'gc>,
    /// The interned "init", to recognise initializers in `add_method`.
    init: Gc<'gc, ObjString>,
}

/// The VM's heap. See the module docs.
pub struct GcHeap {
    mutator: Mutator,
    roots: Root<HeapRoots<'static>>,
    heap: spangc::Heap,
}

impl GcHeap {
    /// A heap configured by `config` (and, for what it leaves unset, by
    /// spangc's `SPANGC_*` environment variables).
    pub fn new(config: HeapConfig) -> Result<GcHeap, HeapError> {
        let config = Config::builder()
            .gc_stress(config.stress)
            .gc_percent(config.gc_percent)
            .build()?;
        let heap = spangc::Heap::new(config)?;
        let mut mutator = heap.mutator();
        let roots = mutator.enter(|cx| {
            let interner = Interner::new();
            let init = interner.intern(cx, "init");
            cx.root(cx.alloc(HeapRoots { interner, init }))
        });
        Ok(GcHeap {
            mutator,
            roots,
            heap,
        })
    }

    /// The heap's figures (`--gc-stats`).
    pub fn stats(&self) -> Stats {
        self.heap.stats()
    }

    /// Distinct strings in the interning set (weak: strings that died
    /// leave it at the next collection; see `intern.rs`).
    pub fn strings_interned(&mut self) -> usize {
        self.enter(|m| m.heap().strings_interned())
    }

    /// Runs `f` inside a mutation scope.
    pub fn enter<R>(&mut self, f: impl for<'m> FnOnce(&mut Mutation<'m>) -> R) -> R {
        let roots = &self.roots;
        self.mutator.enter(|cx| f(&mut Mutation { cx, roots }))
    }
}

/// One mutation scope. See the module docs.
pub struct Mutation<'m> {
    cx: &'m mut Scope,
    roots: &'m Root<HeapRoots<'static>>,
}

impl Mutation<'_> {
    /// The allocation facade, valid until the next safepoint.
    #[inline]
    pub fn heap(&self) -> Heap<'_> {
        let cx: &Scope = self.cx;
        Heap {
            cx,
            roots: Gc::get(self.roots.get(cx)),
        }
    }

    /// A safepoint: a collection may run here. Every object not reachable
    /// from a root is freed; every `Gc` from before is unusable after (the
    /// borrow checker enforces it).
    pub fn safepoint(&mut self) {
        self.cx.safepoint();
    }
}

/// The allocation and write facade of one safepoint interval. See the
/// module docs.
#[derive(Clone, Copy)]
pub struct Heap<'s> {
    cx: &'s Scope,
    roots: &'s HeapRoots<'s>,
}

impl<'s> Heap<'s> {
    /// The scope borrow, for the object layer's cell writes.
    pub(super) fn scope(self) -> &'s Scope {
        self.cx
    }

    /// The poll: whether the VM should step out to a safepoint now. One
    /// load (two under `--gc-stress`).
    #[inline(always)]
    pub fn safepoint_requested(self) -> bool {
        self.cx.safepoint_requested()
    }

    /// Distinct strings interned so far.
    pub fn strings_interned(self) -> usize {
        self.roots.interner.len()
    }

    /// Allocates `value` and roots it: it lives until the `Root` is
    /// dropped. (For the VM's state object.)
    pub fn alloc_root<T: Trace + Branded<'s> + 's>(self, value: T) -> Root<T::Erased> {
        self.cx.root(self.cx.alloc(value))
    }

    /// The object `root` keeps alive.
    #[inline]
    pub fn get<R: Rootable>(self, root: &Root<R>) -> Gc<'s, R::At<'s>> {
        root.get(self.cx)
    }

    /// Borrows a cell of a heap object for writing.
    #[inline]
    pub fn write<'a, T: Trace>(self, cell: &'a GcRefCell<T>) -> RefMut<'a, T> {
        cell.borrow_mut(self.cx)
    }

    /// The one string with text `text`, allocated if new.
    pub fn intern(self, text: &str) -> Gc<'s, ObjString> {
        self.roots.interner.intern(self.cx, text)
    }

    /// The interned concatenation of `a` and `b`. Allocates only if the
    /// result is a new string.
    pub fn concat(self, a: &ObjString, b: &ObjString) -> Gc<'s, ObjString> {
        self.roots.interner.concat(self.cx, a, b)
    }

    /// A function; its name and constants must already be on this heap.
    pub fn alloc_function(self, function: ObjFunction<'s>) -> Gc<'s, ObjFunction<'s>> {
        self.cx.alloc(function)
    }

    /// A native function.
    pub fn alloc_native(self, function: NativeFn) -> Gc<'s, ObjNative> {
        self.cx.alloc(ObjNative { function })
    }

    /// A closure over `function` capturing `upvalues` (as many as the
    /// function's `upvalue_count`). The iterator may allocate.
    #[inline]
    pub fn alloc_closure<I>(
        self,
        function: Gc<'s, ObjFunction<'s>>,
        upvalues: I,
    ) -> Gc<'s, ObjClosure<'s>>
    where
        I: IntoIterator<Item = Gc<'s, ObjUpvalue<'s>>>,
        I::IntoIter: ExactSizeIterator,
    {
        self.cx.alloc_with_tail(ClosureHead { function }, upvalues)
    }

    /// An open upvalue for the stack slot `slot`.
    #[inline]
    pub fn alloc_upvalue(self, slot: usize) -> Gc<'s, ObjUpvalue<'s>> {
        self.cx.alloc(ObjUpvalue {
            state: spangc::GcCell::new(UpvalueState::Open(slot)),
        })
    }

    /// A class with no methods.
    pub fn alloc_class(self, name: Gc<'s, ObjString>) -> Gc<'s, ObjClass<'s>> {
        self.cx.alloc(ObjClass {
            name,
            methods: Table::new(),
            initializer: spangc::GcCell::new(None),
        })
    }

    /// An instance of `class` with no fields.
    #[inline]
    pub fn alloc_instance(self, class: Gc<'s, ObjClass<'s>>) -> Gc<'s, ObjInstance<'s>> {
        self.cx.alloc(ObjInstance {
            class,
            fields: Table::new(),
        })
    }

    /// `method` bound to `receiver`.
    #[inline]
    pub fn alloc_bound_method(
        self,
        receiver: Value<'s>,
        method: Gc<'s, ObjClosure<'s>>,
    ) -> Gc<'s, ObjBoundMethod<'s>> {
        self.cx.alloc(ObjBoundMethod { receiver, method })
    }

    /// Sets a field of an instance.
    #[inline]
    pub fn set_field(
        self,
        instance: Gc<'s, ObjInstance<'s>>,
        name: Gc<'s, ObjString>,
        value: Value<'s>,
    ) {
        Gc::get(instance).fields.set(self, name, value);
    }

    /// Adds (or replaces) a method of a class; `init` also becomes the
    /// class's initializer.
    pub fn add_method(
        self,
        class: Gc<'s, ObjClass<'s>>,
        name: Gc<'s, ObjString>,
        method: Gc<'s, ObjClosure<'s>>,
    ) {
        let class = Gc::get(class);
        class.methods.set(self, name, Value::from(method));
        if Gc::ptr_eq(name, self.roots.init) {
            class.initializer.set(self.cx, Some(method));
        }
    }

    /// Copies every method of `superclass` into `subclass` (before the
    /// subclass defines its own, which then override them).
    pub fn inherit(self, subclass: Gc<'s, ObjClass<'s>>, superclass: Gc<'s, ObjClass<'s>>) {
        let (subclass, superclass) = (Gc::get(subclass), Gc::get(superclass));
        for (name, method) in superclass.methods.iter() {
            subclass.methods.set(self, name, method);
        }
        subclass
            .initializer
            .set(self.cx, superclass.initializer.get());
    }

    /// Makes `upvalue` closed, holding `value`: both for closing an open
    /// upvalue and for assigning to a closed one.
    #[inline]
    pub fn close_upvalue(self, upvalue: Gc<'s, ObjUpvalue<'s>>, value: Value<'s>) {
        Gc::get(upvalue)
            .state
            .set(self.cx, UpvalueState::Closed(value));
    }
}

/// A heap for a unit test. spangc allows one live heap per brand, and the
/// object layer uses the global brand, so tests that make heaps take turns
/// (the lock is held until the returned heap is dropped).
#[cfg(test)]
pub fn test_heap() -> TestHeap {
    use std::sync::Mutex;
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    TestHeap {
        heap: GcHeap::new(HeapConfig::default()).expect("a heap"),
        _turn: turn,
    }
}

/// See `test_heap`. Fields drop in order: the heap before the lock.
#[cfg(test)]
pub struct TestHeap {
    heap: GcHeap,
    _turn: std::sync::MutexGuard<'static, ()>,
}

#[cfg(test)]
impl std::ops::Deref for TestHeap {
    type Target = GcHeap;
    fn deref(&self) -> &GcHeap {
        &self.heap
    }
}

#[cfg(test)]
impl std::ops::DerefMut for TestHeap {
    fn deref_mut(&mut self) -> &mut GcHeap {
        &mut self.heap
    }
}
