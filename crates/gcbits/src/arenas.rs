//! Bitmap chunk arenas: the memory that alloc and mark bitmaps live in, and
//! the epochs that retire it (the seed's `gcBitsArenas`).
//!
//! # Chunks and bump allocation
//!
//! Bitmap memory comes from the OS layer ([`spangc_arena::os::map`]) in
//! chunks of [`CHUNK_BYTES`] (64 KiB, as the seed's `gcBitsChunkBytes`: big
//! enough that adding a chunk, the only step that takes the lock, happens
//! once per ~500 000 object slots, small enough that a small heap wastes
//! little). A chunk's header (its bump offset and list link) lives in a
//! small boxed `Chunk` beside the memory rather than inside it, so that
//! the header's atomics can be loom's under `--cfg loom`; headers are
//! boxed only when a chunk is mapped, never on the allocation path.
//!
//! A bitmap of `nelems` slots is `ceil(nelems / 64)` words, 8-byte aligned.
//! Allocation bumps the head chunk of the `next` list with one `fetch_add`
//! on its offset (`Chunk::try_alloc`, the seed's `tryAlloc`): no lock.
//! When the head chunk is full, the allocator takes the lock, tries the
//! head again (another thread may have added a chunk meanwhile: the seed's
//! `newMarkBits`), and otherwise pushes a chunk taken from `free` (zeroed)
//! or freshly mapped. The OS call and the header's box happen with the lock
//! released; if another thread added a chunk meanwhile, the fresh chunk goes
//! to `free` as it is, marked clean, so it is not zeroed when reused (the
//! seed's TODO "Mark it already zeroed").
//!
//! # Epochs
//!
//! ```text
//!           new_mark_bits / new_alloc_bits bump here
//!                          │
//!  rotation k:   next ──> current ──> previous ──> free ──┐
//!                 ^                                        │ zeroed, reused
//!                 └────────────────────────────────────────┘ when `next` needs a chunk
//! ```
//!
//! [`GcBitsArenas::next_epoch`] (the seed's `nextMarkBitArenaEpoch`) moves
//! every chunk one step right under the lock, and `next` starts empty. Bits
//! handed out between rotations k-1 and k are in `next`; rotation k makes
//! them `current`, k+1 `previous`, k+2 `free`. So **bits stay valid (never
//! handed out again, never zeroed) until the third rotation after they were
//! handed out**. The sweeper builds its protocol on that (docs/gcbits.md:
//! "Contract for the sweeper").
//!
//! *Rotation racing with allocation.* A thread may load the head of `next`,
//! be preempted across a rotation, then bump the chunk, which is now in
//! `current`: its bits would be one epoch older than the contract says. So
//! a chunk can be bumped only while it is *open*: rotation *closes* every
//! chunk of `next` by swapping its offset to `CLOSED`, and a chunk is
//! reopened only when it is pushed onto `next` again (under the lock).
//! Every bump is a read-modify-write of the offset, so it lands either
//! before the closing swap (the bits belong to the epoch being rotated) or
//! after it (it fails and the thread takes the slow path). Allocation is
//! therefore linearizable with rotation, and `next_epoch` may run while
//! other threads allocate.
//!
//! # Zeroing
//!
//! Chunks taken from `free` are zeroed before reuse, but only the bytes that
//! were handed out in their last life (recorded when the chunk was closed):
//! fresh OS memory is zero and the slack is never written. Zeroing uses
//! relaxed atomic stores, because a stale reader (a marker holding an old
//! span record) may still read the old bits; with atomics on both sides that
//! read is a race in the logic, not a data race (it sees old bits or zeros,
//! and the sweep protocol discards it).
//!
//! # Memory safety for stale readers
//!
//! Chunk memory is unmapped only when the `GcBitsArenas` is dropped, and
//! the last [`CHUNK_SLACK_BYTES`] of every chunk are never handed out. A
//! bitmap starts at least `CHUNK_SLACK_BYTES` = `MAX_NELEMS / 8` bytes
//! before the end of its chunk, so reading any bit index below
//! [`MAX_NELEMS`] from the start of any bitmap ever handed out stays inside
//! mapped memory: a span record whose `nelems` changed under a stale reader
//! never makes a bit read go out of bounds.

use std::ptr::{self, NonNull};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use spangc_arena::os::{self, OsError};

use crate::primitive::{AtomicPtr, AtomicUsize, Mutex, MutexGuard};
use crate::{MAX_NELEMS, bitmap_words};

/// Bytes per bitmap chunk: 64 KiB (the seed's `gcBitsChunkBytes`).
///
/// Under `--cfg loom` it is 256 bytes (128 usable after the slack), so that
/// the model fills a chunk in two or three allocations and stays tractable.
#[cfg(not(loom))]
pub const CHUNK_BYTES: usize = 64 << 10;
/// Bytes per bitmap chunk: 256 under loom (see the non-loom definition).
#[cfg(loom)]
pub const CHUNK_BYTES: usize = 256;

/// Bytes at the end of every chunk that are never handed out: the longest
/// bitmap, `MAX_NELEMS / 8` = 128 bytes. See "Memory safety for stale
/// readers" in the module documentation.
pub const CHUNK_SLACK_BYTES: usize = MAX_NELEMS as usize / 8;

/// Bytes of a chunk that bitmaps may occupy.
const CHUNK_USABLE: usize = CHUNK_BYTES - CHUNK_SLACK_BYTES;

/// The most bytes [`GcBitsArenas::reserve`] hands out at once: 1 KiB, or
/// a whole usable chunk when chunks are smaller (under loom).
pub const MAX_RESERVE_BYTES: usize = if CHUNK_USABLE < 1024 {
    CHUNK_USABLE
} else {
    1024
};

/// The bump offset of a closed chunk (one not on the `next` list). Far
/// above [`CHUNK_USABLE`], so every bump attempt on a closed chunk fails,
/// and far below `usize::MAX`, so the failed attempts' `fetch_add`s (each
/// at most [`MAX_RESERVE_BYTES`]) can never wrap it.
const CLOSED: usize = usize::MAX / 2;

const _: () = assert!(CHUNK_USABLE >= CHUNK_SLACK_BYTES && CHUNK_USABLE.is_multiple_of(8));

/// Bytes to map for one chunk: [`CHUNK_BYTES`] rounded up to the OS page
/// size (equal to it except under loom).
fn chunk_map_bytes() -> usize {
    CHUNK_BYTES.next_multiple_of(os::phys_page_size())
}

/// The header of one chunk of bitmap memory.
///
/// Headers are boxed when their chunk is mapped and freed with it, only in
/// [`GcBitsArenas`]'s `Drop`; a thread holding a stale pointer to a header
/// (loaded from `next` before a rotation) therefore always reads a live
/// header.
struct Chunk {
    /// Offset of the chunk's next free byte. Below [`CLOSED`] only while
    /// the chunk is on the `next` list ("open"): bumped with `fetch_add`
    /// (Acquire) by allocators without the lock; stored (Release) when the
    /// chunk is opened and swapped to `CLOSED` at rotation, both under the
    /// lock.
    free: AtomicUsize,
    /// The next chunk on whichever list this chunk is on. Protected by the
    /// lock (Relaxed accesses while holding it).
    link: AtomicPtr<Chunk>,
    /// Bytes used during the chunk's last time on `next` (bitmaps handed
    /// out, and the tail a failed bump skipped), which must be zeroed before
    /// it is reused; 0 for a fresh chunk. Protected by the lock.
    dirty: AtomicUsize,
    /// The chunk's memory: [`chunk_map_bytes`] bytes from `os::map`,
    /// page-aligned. Immutable.
    base: NonNull<u8>,
}

impl Chunk {
    /// Maps a fresh, zeroed, closed chunk. Called without the lock held.
    fn map() -> Result<NonNull<Chunk>, OsError> {
        let base = os::map(chunk_map_bytes(), os::phys_page_size())?;
        let chunk = Box::new(Chunk {
            free: AtomicUsize::new(CLOSED),
            link: AtomicPtr::new(ptr::null_mut()),
            dirty: AtomicUsize::new(0),
            base,
        });
        Ok(NonNull::from(Box::leak(chunk)))
    }

    /// Bump-allocates `bytes` (a multiple of 8) from this chunk, or returns
    /// `None` if it is closed or has no room. Safe to call concurrently
    /// (the seed's `tryAlloc`).
    #[inline]
    fn try_alloc(&self, bytes: usize) -> Option<NonNull<u64>> {
        // A plain load first keeps threads from bumping (and bouncing the
        // cache line of) a chunk that is already full or closed.
        if self.free.load(Relaxed) + bytes > CHUNK_USABLE {
            return None;
        }
        // Acquire: if this chunk was reused, its zeroing happened before
        // the Release store that reopened it, which this RMW reads from
        // (directly or through the release sequence of other bumps).
        let start = self.free.fetch_add(bytes, Acquire);
        if start + bytes > CHUNK_USABLE {
            return None;
        }
        // SAFETY: `start + bytes <= CHUNK_USABLE`, so the offset is inside
        // the chunk's mapping. `start` is a multiple of 8 (every bump is)
        // and `base` is page-aligned, so the result is 8-byte aligned.
        Some(unsafe { self.base.add(start) }.cast())
    }

    /// Sets every handed-out byte of a closed chunk back to zero, with
    /// relaxed atomic stores because stale readers may still read the old
    /// bits (see "Zeroing" in the module documentation). Returns whether
    /// there was anything to zero. Lock held.
    fn zero_dirty(&self) -> bool {
        let dirty = self.dirty.swap(0, Relaxed);
        if dirty == 0 {
            return false;
        }
        let words = self.words(dirty / 8);
        for w in words {
            w.store(0, Relaxed);
        }
        true
    }

    /// The first `n` words of the chunk as atomics (`n * 8 <= CHUNK_USABLE`).
    fn words(&self, n: usize) -> &[AtomicU64] {
        assert!(n * 8 <= CHUNK_USABLE);
        // `base` is page-aligned and maps at least CHUNK_BYTES bytes until
        // `GcBitsArenas` drops, which `&self` (borrowed from it) prevents;
        // chunk memory is only ever accessed through atomics (here and in
        // `bits`), and AtomicU64 has the size and alignment of u64.
        // SAFETY: so the first `n` words are a valid shared slice of atomics.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().cast::<AtomicU64>(), n) }
    }
}

/// A list of chunk headers linked through [`Chunk::link`]. Protected by the
/// lock.
struct List {
    head: *mut Chunk,
    len: usize,
}

impl List {
    const EMPTY: List = List {
        head: ptr::null_mut(),
        len: 0,
    };

    fn push(&mut self, chunk: NonNull<Chunk>) {
        // SAFETY: headers live until Drop (see `Chunk`).
        unsafe { chunk.as_ref() }.link.store(self.head, Relaxed);
        self.head = chunk.as_ptr();
        self.len += 1;
    }

    fn pop(&mut self) -> Option<NonNull<Chunk>> {
        let chunk = NonNull::new(self.head)?;
        // SAFETY: headers live until Drop (see `Chunk`).
        self.head = unsafe { chunk.as_ref() }.link.load(Relaxed);
        self.len -= 1;
        Some(chunk)
    }

    /// Moves every chunk of `other` to the front of `self`.
    fn splice_front(&mut self, other: List) {
        let Some(mut last) = NonNull::new(other.head) else {
            return;
        };
        // SAFETY: headers live until Drop (see `Chunk`).
        while let Some(next) = NonNull::new(unsafe { last.as_ref() }.link.load(Relaxed)) {
            last = next;
        }
        // SAFETY: headers live until Drop (see `Chunk`).
        unsafe { last.as_ref() }.link.store(self.head, Relaxed);
        self.head = other.head;
        self.len += other.len;
    }

    /// Iterates the headers (lock held).
    fn iter(&self) -> impl Iterator<Item = &Chunk> {
        let mut cur = self.head;
        std::iter::from_fn(move || {
            // SAFETY: headers live until Drop (see `Chunk`); the list is not
            // changed while `&self` is borrowed.
            let chunk = unsafe { cur.as_ref() }?;
            cur = chunk.link.load(Relaxed);
            Some(chunk)
        })
    }
}

/// Everything the lock protects.
struct Lists {
    /// Chunks on the `next` list (its head is [`GcBitsArenas::next`]).
    next_len: usize,
    current: List,
    previous: List,
    free: List,
    /// Bytes used in the chunks now in `current` / `previous` (recorded
    /// when they were closed; see `GcBitsStats::next_bytes`).
    current_bytes: usize,
    previous_bytes: usize,
    /// Chunks ever mapped; each is on exactly one of the four lists.
    chunks_mapped: usize,
    /// Reused chunks that had to be zeroed.
    chunks_zeroed: u64,
    /// Rotations so far.
    epoch: u64,
}

/// The bitmap chunk arenas of one heap (the seed's `gcBitsArenas`): where
/// every span's alloc and mark bits live. See the module documentation for
/// the design and `docs/gcbits.md` for the contract the sweeper follows.
///
/// ```
/// use spangc_gcbits::GcBitsArenas;
///
/// let arenas = GcBitsArenas::new();
/// let bits = arenas.new_mark_bits(341).unwrap(); // 24-byte class: 6 words
/// assert_eq!(bits.as_ptr() as usize % 8, 0);
/// arenas.next_epoch(); // the bits are now in `current`
/// assert_eq!(arenas.stats().current_bytes, 48);
/// ```
pub struct GcBitsArenas {
    /// Head of the `next` list. Loaded with Acquire without the lock by the
    /// allocation fast path (pairs with the Release stores here, which
    /// publish the header's `free`, `link` and `base`); stored only while
    /// holding `lists`.
    next: AtomicPtr<Chunk>,
    /// The lock: taken to add a chunk to `next`, to rotate, and for stats.
    lists: Mutex<Lists>,
}

// SAFETY: the raw pointers in `GcBitsArenas` are chunk headers and chunk
// memory that it owns (freed only by its Drop). Every field shared between
// threads is an atomic or is behind `lists`; chunk memory is only accessed
// through atomics. So it may be sent to and shared by other threads.
unsafe impl Send for GcBitsArenas {}
// SAFETY: see the Send impl above.
unsafe impl Sync for GcBitsArenas {}

impl Default for GcBitsArenas {
    fn default() -> Self {
        GcBitsArenas::new()
    }
}

/// A snapshot of [`GcBitsArenas`]'s counters, taken under its lock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcBitsStats {
    /// Chunks mapped from the OS so far (never unmapped before Drop). Each
    /// is on exactly one list: `chunks_mapped == next_chunks +
    /// current_chunks + previous_chunks + free_chunks`.
    pub chunks_mapped: usize,
    /// Bytes mapped from the OS for chunks (`chunks_mapped` times 64 KiB).
    pub sys_bytes: usize,
    /// Chunks in the `next` epoch.
    pub next_chunks: usize,
    /// Chunks in the `current` epoch.
    pub current_chunks: usize,
    /// Chunks in the `previous` epoch.
    pub previous_chunks: usize,
    /// Chunks in the `free` list.
    pub free_chunks: usize,
    /// Bytes of `next`'s chunks used so far: the bitmaps and reserved
    /// blocks handed out, plus in each full chunk the tail (shorter than
    /// the request) left behind by the bump that first did not fit (as in
    /// the seed).
    pub next_bytes: usize,
    /// Bytes used (as for `next_bytes`) in the epoch that is now `current`.
    pub current_bytes: usize,
    /// Bytes used (as for `next_bytes`) in the epoch that is now `previous`.
    pub previous_bytes: usize,
    /// Chunks zeroed on reuse (fresh chunks and chunks that were never
    /// bumped are not zeroed).
    pub chunks_zeroed: u64,
    /// Calls to [`GcBitsArenas::next_epoch`] so far.
    pub epoch: u64,
}

impl GcBitsArenas {
    /// Empty arenas; the first allocation maps the first chunk.
    pub fn new() -> GcBitsArenas {
        GcBitsArenas {
            next: AtomicPtr::new(ptr::null_mut()),
            lists: Mutex::new(Lists {
                next_len: 0,
                current: List::EMPTY,
                previous: List::EMPTY,
                free: List::EMPTY,
                current_bytes: 0,
                previous_bytes: 0,
                chunks_mapped: 0,
                chunks_zeroed: 0,
                epoch: 0,
            }),
        }
    }

    /// A zeroed mark bitmap for a span of `nelems` slots: `ceil(nelems/64)`
    /// 8-byte aligned words from the `next` epoch (the seed's
    /// `newMarkBits`). Lock-free unless the head chunk is full.
    ///
    /// The bits stay valid until the third [`next_epoch`](Self::next_epoch)
    /// after this call returns, and stay mapped (readable, contents
    /// meaningless once retired) until `self` is dropped.
    ///
    /// # Errors
    ///
    /// The OS error if a new chunk was needed and could not be mapped.
    ///
    /// # Panics
    ///
    /// If `nelems` is 0 or above [`MAX_NELEMS`].
    #[inline]
    pub fn new_mark_bits(&self, nelems: u32) -> Result<NonNull<u64>, OsError> {
        assert!(
            nelems > 0 && nelems <= MAX_NELEMS,
            "gcbits: bitmap for {nelems} slots (must be 1..={MAX_NELEMS})"
        );
        self.alloc(bitmap_words(nelems) * 8)
    }

    /// A zeroed block of `bytes` (a multiple of 8, at most
    /// [`MAX_RESERVE_BYTES`]) from the `next` epoch, for a caller that
    /// carves several bitmaps out of it with no atomic operation each (a
    /// per-thread allocation cache). Every bitmap carved from the block
    /// has the contract of one from [`new_mark_bits`](Self::new_mark_bits)
    /// as long as it is carved before the next
    /// [`next_epoch`](Self::next_epoch): a carver must drop what is left of
    /// its block when the epoch moves, or the bitmaps it hands out after
    /// would be an epoch older than their spans.
    ///
    /// # Errors
    ///
    /// As [`new_mark_bits`](Self::new_mark_bits).
    ///
    /// # Panics
    ///
    /// If `bytes` is 0, not a multiple of 8, or above
    /// [`MAX_RESERVE_BYTES`].
    pub fn reserve(&self, bytes: usize) -> Result<NonNull<u64>, OsError> {
        assert!(
            bytes > 0 && bytes.is_multiple_of(8) && bytes <= MAX_RESERVE_BYTES,
            "gcbits: reserve({bytes}) (must be a multiple of 8 in 8..={MAX_RESERVE_BYTES})"
        );
        self.alloc(bytes)
    }

    /// `bytes` from the head of `next`, adding a chunk if it is full.
    #[inline]
    fn alloc(&self, bytes: usize) -> Result<NonNull<u64>, OsError> {
        if let Some(p) = self.try_alloc_head(bytes) {
            return Ok(p);
        }
        self.alloc_slow(bytes)
    }

    /// A zeroed alloc bitmap for a freshly allocated span: the same memory
    /// and contract as [`new_mark_bits`](Self::new_mark_bits) (the seed's
    /// `newAllocBits`; swept spans reuse their mark bits as alloc bits
    /// instead).
    ///
    /// # Errors
    ///
    /// As [`new_mark_bits`](Self::new_mark_bits).
    ///
    /// # Panics
    ///
    /// As [`new_mark_bits`](Self::new_mark_bits).
    #[inline]
    pub fn new_alloc_bits(&self, nelems: u32) -> Result<NonNull<u64>, OsError> {
        self.new_mark_bits(nelems)
    }

    /// Bumps the head of `next`, if there is one with room.
    #[inline]
    fn try_alloc_head(&self, bytes: usize) -> Option<NonNull<u64>> {
        let head = self.next.load(Acquire);
        // SAFETY: a non-null head is a live header: headers are freed only
        // by Drop, which has `&mut self`.
        unsafe { head.as_ref() }?.try_alloc(bytes)
    }

    /// The slow path of [`new_mark_bits`](Self::new_mark_bits): add a chunk
    /// to `next` (the seed's `newMarkBits` after its first `tryAlloc`).
    #[cold]
    #[inline(never)]
    fn alloc_slow(&self, bytes: usize) -> Result<NonNull<u64>, OsError> {
        let mut lists = self.lock();
        // Under the lock the head of `next` cannot change, but its offset
        // still can: another thread may have pushed a chunk just before we
        // took the lock.
        if let Some(p) = self.try_alloc_head(bytes) {
            return Ok(p);
        }
        let chunk = match lists.free.pop() {
            Some(chunk) => {
                // SAFETY: headers live until Drop (see `Chunk`).
                if unsafe { chunk.as_ref() }.zero_dirty() {
                    lists.chunks_zeroed += 1;
                }
                chunk
            }
            None => {
                // Map without the lock: a system call is too long to make
                // other allocators wait for.
                drop(lists);
                let fresh = Chunk::map()?;
                lists = self.lock();
                lists.chunks_mapped += 1;
                if let Some(p) = self.try_alloc_head(bytes) {
                    // Someone else added a chunk meanwhile: keep ours for
                    // later. It is clean (`dirty == 0`), so it will not be
                    // zeroed when reused.
                    lists.free.push(fresh);
                    return Ok(p);
                }
                fresh
            }
        };
        // Open the chunk with our bitmap already taken at offset 0: a stale
        // thread may bump it as soon as the offset drops below CLOSED, and
        // this way it can never take our bytes. Release: publishes the
        // zeroing above to stale bumpers (their fetch_add is Acquire).
        // SAFETY: headers live until Drop (see `Chunk`).
        let c = unsafe { chunk.as_ref() };
        c.free.store(bytes, Release);
        c.link.store(self.next.load(Relaxed), Relaxed);
        // Release: publishes the header to the lock-free fast path.
        self.next.store(chunk.as_ptr(), Release);
        lists.next_len += 1;
        Ok(c.base.cast())
    }

    /// Starts a new epoch (the seed's `nextMarkBitArenaEpoch`): `previous`
    /// goes to `free`, `current` becomes `previous`, `next` becomes
    /// `current`, and `next` starts empty (the next allocation adds a
    /// chunk).
    ///
    /// Call it once per GC cycle, after every span has been swept and
    /// before marking starts (see docs/gcbits.md for the full contract).
    /// It may run while other threads allocate bits: each allocation lands
    /// wholly before or wholly after the rotation.
    pub fn next_epoch(&self) {
        let mut lists = self.lock();
        let lists = &mut *lists;
        // Close every chunk of `next`, so that a thread still holding the
        // old head cannot bump it once it is `current`. Relaxed: the swap
        // only has to be ordered against the bumps on the same word, which
        // read-modify-write order guarantees; it publishes nothing.
        let next = List {
            head: self.next.load(Relaxed),
            len: lists.next_len,
        };
        let mut next_bytes = 0;
        for chunk in next.iter() {
            let used = chunk.free.swap(CLOSED, Relaxed).min(CHUNK_USABLE);
            chunk.dirty.store(used, Relaxed);
            next_bytes += used;
        }
        let previous = std::mem::replace(&mut lists.previous, List::EMPTY);
        lists.free.splice_front(previous);
        lists.previous = std::mem::replace(&mut lists.current, next);
        lists.previous_bytes = std::mem::replace(&mut lists.current_bytes, next_bytes);
        lists.next_len = 0;
        // Relaxed: an empty head publishes nothing; fast paths that see it
        // go to the slow path and take the lock.
        self.next.store(ptr::null_mut(), Relaxed);
        lists.epoch += 1;
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> GcBitsStats {
        let lists = self.lock();
        let next = List {
            head: self.next.load(Relaxed),
            len: lists.next_len,
        };
        let next_bytes = next
            .iter()
            .map(|c| c.free.load(Relaxed).min(CHUNK_USABLE))
            .sum();
        GcBitsStats {
            chunks_mapped: lists.chunks_mapped,
            sys_bytes: lists.chunks_mapped * chunk_map_bytes(),
            next_chunks: lists.next_len,
            current_chunks: lists.current.len,
            previous_chunks: lists.previous.len,
            free_chunks: lists.free.len,
            next_bytes,
            current_bytes: lists.current_bytes,
            previous_bytes: lists.previous_bytes,
            chunks_zeroed: lists.chunks_zeroed,
            epoch: lists.epoch,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lists> {
        self.lists
            .lock()
            .expect("gcbits: lock poisoned (a panic while rotating or adding a chunk)")
    }
}

impl Drop for GcBitsArenas {
    fn drop(&mut self) {
        let lists = self.lock();
        let next = List {
            head: self.next.load(Relaxed),
            len: lists.next_len,
        };
        let mut all = Vec::with_capacity(lists.chunks_mapped);
        for list in [&next, &lists.current, &lists.previous, &lists.free] {
            all.extend(list.iter().map(NonNull::from));
        }
        assert_eq!(
            all.len(),
            lists.chunks_mapped,
            "gcbits: a chunk is on no list"
        );
        drop(lists);
        for chunk in all {
            // SAFETY: we own every header (each was leaked from a Box in
            // `Chunk::map` and is on exactly one list), `&mut self` means no
            // one else can reach them, and each is freed once.
            let chunk = unsafe { Box::from_raw(chunk.as_ptr()) };
            // SAFETY: the chunk's own mapping, and no bitmap pointer handed
            // out may be used after the arenas are dropped (the contract of
            // `Span::set_alloc_bits` and of `new_mark_bits`).
            let r = unsafe { os::unmap(chunk.base, chunk_map_bytes()) };
            debug_assert!(r.is_ok(), "gcbits: unmap failed: {r:?}");
        }
    }
}

#[cfg(all(test, not(loom)))]
mod test;

#[cfg(all(test, loom))]
mod loom_test;
