//! The per-thread allocation cache (the seed's `mcache`).
//!
//! A mutator thread owns one [`MCache`]: for every (type tag, span class)
//! it allocates, a slot holding one span and an allocation cursor copied
//! out of it (`base`, `elem_size`, `nelems`, `free_index`, `alloc_cache`).
//! The fast path ([`MCache::alloc_fast`]) hashes the key to its home slot,
//! compares, and takes the next free slot from the cursor with
//! `trailing_zeros` (`spangc_gcbits::next_free_fast`): no lock, no atomic
//! read-modify-write, no shared write at all. Keeping the cursor in the
//! slot rather than in the span record makes it plain memory the compiler
//! may keep in registers, instead of relaxed atomics it may not.
//!
//! The slow path refills: it writes the cursor back to the span, asks the
//! span for the next free slot past a word boundary, and when the span is
//! full gives it back to its central and takes another (after paying any
//! proportional sweep debt). Keys that collide on a home slot live in
//! another slot of the open-addressing table and always take the slow
//! path; the table doubles at half load so that is rare.
//!
//! # Zeroing
//!
//! [`MCache::alloc`] returns zeroed memory: slots of a span whose memory is
//! fresh from the OS (or scavenged) are zero already and are not zeroed
//! again (`needzero` false); slots of a reused span are zeroed one object
//! at a time. [`MCache::alloc_fast`] / [`MCache::alloc_slow`] return the slot
//! uninitialised, for callers that write every byte they will ever read
//! (the facade writes the whole value at once); zeroing first would double
//! the stores of a small allocation.
//!
//! # Generations
//!
//! Cached spans are marked `h + 3` (swept, cached). After a collection
//! advances the generation they are `h + 1` (stale): the owner must call
//! [`MCache::prepare_for_sweep`] before allocating again, which gives every
//! span back, sweeping the stale ones. [`MCache::release_all`] gives every
//! span back (a mutator leaving its scope holds none).

use crate::central::{Central, CentralKey};
use crate::mheap::{AllocError, Mheap};
use crate::sweep::allocated_count;
use crate::sweepgen::SpanSweepState;
use spangc_arena::sizeclass::{SpanClass, class_npages};
use spangc_arena::span::Span;
use spangc_arena::{PAGE_SIZE, PageCache};
use spangc_gcbits::{SpanBits, next_free_fast};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

const INITIAL_SLOTS: usize = 64;

#[derive(Default)]
struct Slot {
    /// `key_of(tag, class)`; 0 for an empty slot.
    key: usize,
    central: Option<Arc<Central>>,
    span: Option<NonNull<Span>>,
    base: usize,
    elem_size: usize,
    nelems: u32,
    free_index: u32,
    alloc_cache: u64,
    needzero: bool,
    /// The span's allocated slots when it was cached.
    allocated_at_cache: u32,
}

/// The key of a (type tag, span class) pair: the tag is an address, so
/// shifting it left by 8 loses nothing and leaves room for the class.
#[inline(always)]
fn key_of(tag: usize, class: SpanClass) -> usize {
    (tag << 8) | class.raw() as usize
}

/// Home slot of a key (Fibonacci hashing on the high bits).
#[inline(always)]
fn home(key: usize, mask: usize) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) & mask
}

/// A mutator's allocation cache. See the module docs.
pub struct MCache {
    heap: Arc<Mheap>,
    slots: Box<[Slot]>,
    used: usize,
    /// The heap sweepgen when this cache last gave back stale spans.
    flush_gen: u32,
    page_cache: PageCache,
}

// SAFETY: the cache is used by one thread at a time (`&mut self`); the
// span pointers it holds are records of `heap`, shared by design.
unsafe impl Send for MCache {}

impl MCache {
    pub(crate) fn new(heap: Arc<Mheap>) -> MCache {
        let flush_gen = heap.sweepgen();
        MCache {
            heap,
            slots: (0..INITIAL_SLOTS).map(|_| Slot::default()).collect(),
            used: 0,
            flush_gen,
            page_cache: PageCache::new(),
        }
    }

    /// The heap this cache allocates from.
    pub fn heap(&self) -> &Arc<Mheap> {
        &self.heap
    }

    /// The fast path: a slot for an object of `class` in spans tagged
    /// `tag`, from the cached span's cursor, or `None` (take the slow
    /// path). The slot's contents are unspecified (see the module docs).
    #[inline(always)]
    pub fn alloc_fast(&mut self, tag: usize, class: SpanClass) -> Option<NonNull<u8>> {
        let key = key_of(tag, class);
        let i = home(key, self.slots.len() - 1);
        // SAFETY: `home` masks with `len - 1` and the length is a power of
        // two, so `i < len`.
        let slot = unsafe { self.slots.get_unchecked_mut(i) };
        if slot.key != key {
            return None;
        }
        let f = next_free_fast(slot.free_index, slot.alloc_cache, slot.nelems)?;
        slot.free_index = f.free_index;
        slot.alloc_cache = f.alloc_cache;
        let addr = slot.base + f.slot as usize * slot.elem_size;
        // SAFETY: a slot address inside a mapped span is non-null.
        Some(unsafe { NonNull::new_unchecked(addr as *mut u8) })
    }

    /// The slow path of [`MCache::alloc_fast`]: continues in the cached
    /// span past a word boundary, or refills from the central (sweeping or
    /// growing the heap as needed). Contents unspecified.
    pub fn alloc_slow(&mut self, tag: usize, class: SpanClass) -> Result<NonNull<u8>, AllocError> {
        let i = self.slot_for(tag, class);
        if let Some(p) = self.next_in_span(i) {
            return Ok(p);
        }
        self.refill(i)?;
        Ok(self
            .next_in_span(i)
            .expect("a span from the central has a free slot"))
    }

    /// A zeroed slot for an object of `class` in spans tagged `tag`.
    pub fn alloc(&mut self, tag: usize, class: SpanClass) -> Result<NonNull<u8>, AllocError> {
        let p = match self.alloc_fast(tag, class) {
            Some(p) => p,
            None => self.alloc_slow(tag, class)?,
        };
        let slot = &self.slots[self.find(key_of(tag, class)).expect("slot just used")];
        if slot.needzero {
            // SAFETY: `p` is a fresh slot of `elem_size` bytes that nobody
            // else references.
            unsafe { std::ptr::write_bytes(p.as_ptr(), 0, slot.elem_size) };
        }
        Ok(p)
    }

    /// A large object of `bytes` in a span of its own, tagged `tag`.
    /// Returns the object's address and whether its memory may be dirty
    /// (`needzero`); the caller initialises it.
    pub fn alloc_large(
        &mut self,
        bytes: usize,
        tag: usize,
        noscan: bool,
    ) -> Result<(NonNull<u8>, bool), AllocError> {
        let npages = bytes
            .checked_add(PAGE_SIZE - 1)
            .ok_or(AllocError::TooLarge { bytes })?
            / PAGE_SIZE;
        let heap = &*self.heap;
        if !heap.sweep_done() {
            heap.reclaim(npages);
        }
        heap.deduct_sweep_credit(npages * PAGE_SIZE);
        let class = if noscan {
            SpanClass::LARGE_NOSCAN
        } else {
            SpanClass::LARGE_SCAN
        };
        let h = heap.sweepgen();
        let span = heap.alloc_span(npages, class, tag, Some(&mut self.page_cache))?;
        span.set_free_index(1);
        span.set_alloc_count(1);
        span.set_alloc_cache(0);
        heap.large_swept(h).push(span);
        heap.add_heap_live(npages * PAGE_SIZE);
        heap.counters.objects_allocated.fetch_add(1, Relaxed);
        heap.counters
            .bytes_allocated
            .fetch_add((npages * PAGE_SIZE) as u64, Relaxed);
        // SAFETY: a span start is non-null.
        let p = unsafe { NonNull::new_unchecked(span.start() as *mut u8) };
        Ok((p, span.needzero()))
    }

    /// After a collection: if the heap's generation moved since this cache
    /// last checked, gives every span back (sweeping the stale ones).
    pub fn prepare_for_sweep(&mut self) {
        let h = self.heap.sweepgen();
        if self.flush_gen != h {
            self.release_all();
            self.flush_gen = h;
        }
    }

    /// Gives every cached span back to its central and the page cache's
    /// pages back to the page heap.
    pub fn release_all(&mut self) {
        for i in 0..self.slots.len() {
            self.uncache(i);
        }
        self.page_cache.flush(self.heap.page_heap());
        self.flush_gen = self.heap.sweepgen();
    }

    fn find(&self, key: usize) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut i = home(key, mask);
        loop {
            match self.slots[i].key {
                k if k == key => return Some(i),
                0 => return None,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// The slot of (tag, class), created on first use.
    fn slot_for(&mut self, tag: usize, class: SpanClass) -> usize {
        assert!(
            tag != 0 && tag < 1 << 56,
            "type tag {tag:#x} must be a non-null address"
        );
        assert!(!class.is_large(), "small span classes only");
        let key = key_of(tag, class);
        if let Some(i) = self.find(key) {
            return i;
        }
        if 2 * (self.used + 1) > self.slots.len() {
            self.grow_table();
        }
        let mask = self.slots.len() - 1;
        let mut i = home(key, mask);
        while self.slots[i].key != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = Slot {
            key,
            central: Some(self.heap.central(CentralKey { class, tag })),
            ..Slot::default()
        };
        self.used += 1;
        i
    }

    fn grow_table(&mut self) {
        let old = std::mem::take(&mut self.slots);
        let n = old.len() * 2;
        self.slots = (0..n).map(|_| Slot::default()).collect();
        let mask = n - 1;
        for s in old.into_vec().into_iter().filter(|s| s.key != 0) {
            let mut i = home(s.key, mask);
            while self.slots[i].key != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }

    /// The next free slot of slot `i`'s span, refilling the cursor from the
    /// span's alloc bits across word boundaries; `None` if the span is
    /// full (or there is none).
    fn next_in_span(&mut self, i: usize) -> Option<NonNull<u8>> {
        let slot = &mut self.slots[i];
        let span_ptr = slot.span?;
        let idx = match next_free_fast(slot.free_index, slot.alloc_cache, slot.nelems) {
            Some(f) => {
                slot.free_index = f.free_index;
                slot.alloc_cache = f.alloc_cache;
                f.slot
            }
            None => {
                // SAFETY: cached spans are records of our heap.
                let span = unsafe { span_ptr.as_ref() };
                span.set_free_index(slot.free_index);
                span.set_alloc_cache(slot.alloc_cache);
                let idx = span.next_free_index();
                slot.free_index = span.free_index();
                slot.alloc_cache = span.alloc_cache();
                if idx >= slot.nelems {
                    return None;
                }
                idx
            }
        };
        let addr = slot.base + idx as usize * slot.elem_size;
        // SAFETY: a slot address inside a mapped span is non-null.
        Some(unsafe { NonNull::new_unchecked(addr as *mut u8) })
    }

    /// Gives slot `i`'s span back (if any) and caches a span with free
    /// slots from the central.
    fn refill(&mut self, i: usize) -> Result<(), AllocError> {
        self.uncache(i);
        let central = self.slots[i].central.clone().expect("slot has a central");
        let class = central.key.class;
        self.heap
            .deduct_sweep_credit(class_npages(class.size_class()) * PAGE_SIZE);
        let span = central.cache_span(&self.heap, &mut self.page_cache)?;
        let allocated = span.alloc_count();
        self.heap
            .add_heap_live((span.nelems() - allocated) as usize * span.elem_size());
        let slot = &mut self.slots[i];
        slot.span = Some(NonNull::from(span));
        slot.base = span.start();
        slot.elem_size = span.elem_size();
        slot.nelems = span.nelems();
        slot.free_index = span.free_index();
        slot.alloc_cache = span.alloc_cache();
        slot.needzero = span.needzero();
        slot.allocated_at_cache = allocated;
        Ok(())
    }

    /// Writes slot `i`'s cursor back to its span and returns the span to
    /// its central.
    fn uncache(&mut self, i: usize) {
        let heap = &*self.heap;
        let slot = &mut self.slots[i];
        let Some(span_ptr) = slot.span.take() else {
            return;
        };
        // SAFETY: cached spans are records of our heap.
        let span = unsafe { span_ptr.as_ref() };
        span.set_free_index(slot.free_index);
        span.set_alloc_cache(slot.alloc_cache);
        let allocated = allocated_count(span);
        span.set_alloc_count(allocated);
        let new = allocated - slot.allocated_at_cache;
        heap.counters
            .objects_allocated
            .fetch_add(new as u64, Relaxed);
        heap.counters
            .bytes_allocated
            .fetch_add(new as u64 * slot.elem_size as u64, Relaxed);
        let stale = span.sweepgen().load(Relaxed)
            == SpanSweepState::CachedUnswept.sweepgen(heap.sweepgen());
        if !stale {
            // Refill counted every free slot as live; undo the unused ones.
            // (A stale span's share was reset with heap_live at the mark.)
            heap.sub_heap_live((slot.nelems - allocated) as usize * slot.elem_size);
        }
        let central = slot.central.clone().expect("slot has a central");
        slot.free_index = 0;
        slot.alloc_cache = 0;
        slot.nelems = 0;
        central.uncache_span(heap, span, new);
    }
}

impl Drop for MCache {
    fn drop(&mut self) {
        self.release_all();
    }
}
