//! The OS layer: the only code in spangc that asks the operating system for
//! memory or gives it back.
//!
//! # Contract
//!
//! Every function here follows the same rules, stated once:
//!
//! * Addresses passed in are aligned to [`phys_page_size`] and lengths are
//!   non-zero multiples of it. Violations are reported as
//!   [`OsError::Misaligned`] (checked in every build: the checks are a few
//!   instructions next to a system call).
//! * Errors come back as [`OsError`], carrying the call that failed and the
//!   `errno` it returned. Nothing here panics or aborts on an OS failure;
//!   the caller decides (the page heap turns "out of address space" into an
//!   allocation error).
//! * Memory moves through three states, as in the Go runtime's `mem_linux.go`:
//!
//!   ```text
//!   reserve ──> Reserved ──commit──> Ready ──release──> Ready (zero on next touch)
//!                  ^                   │
//!                  └──────decommit─────┘          unmap: any state ──> gone
//!   ```
//!
//!   *Reserved* address space is mapped `PROT_NONE`: it costs no memory and
//!   faults if touched. *Ready* memory is readable and writable; the kernel
//!   backs it lazily, so it costs resident memory only once touched.
//!   [`release`] (`MADV_DONTNEED`) drops the backing pages of Ready memory
//!   but keeps it Ready: the next touch faults in a zero page. This is what
//!   the scavenger uses, and why reused scavenged pages need no `commit`.
//!
//! Linux only for now; another platform replaces this one module. Besides
//! memory, the module has the one other system call spangc makes on a hot
//! protocol: a process-wide memory barrier ([`process_barrier`],
//! `membarrier(2)`), which lets mutators enter and leave their scopes
//! without a fence (see the facade's `world.rs`).

use std::fmt;
use std::io;
use std::ptr::NonNull;

/// Why an OS memory call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsError {
    /// An address or length broke the contract at the top of this module.
    Misaligned {
        /// The offending address.
        addr: usize,
        /// The offending length.
        len: usize,
    },
    /// The system call failed; `errno` says why (`ENOMEM`: out of address
    /// space or over a resource limit).
    Call {
        /// Which call failed: `"mmap"`, `"mprotect"`, `"madvise"` or `"munmap"`.
        call: &'static str,
        /// The raw OS error number.
        errno: i32,
    },
}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            OsError::Misaligned { addr, len } => write!(
                f,
                "OS memory request not page-aligned: addr {addr:#x}, len {len:#x} (page size {:#x})",
                phys_page_size()
            ),
            OsError::Call { call, errno } => {
                write!(f, "{call} failed: {}", io::Error::from_raw_os_error(errno))
            }
        }
    }
}

impl std::error::Error for OsError {}

/// The physical page size of the machine (4 KiB on x86-64 Linux).
pub fn phys_page_size() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static SIZE: AtomicUsize = AtomicUsize::new(0);
    // Relaxed: the value is the same whichever thread computes it first.
    let cached = SIZE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let size = if size > 0 { size as usize } else { 4096 };
    SIZE.store(size, Ordering::Relaxed);
    size
}

fn check(addr: usize, len: usize) -> Result<(), OsError> {
    let mask = phys_page_size() - 1;
    if len == 0 || addr & mask != 0 || len & mask != 0 {
        return Err(OsError::Misaligned { addr, len });
    }
    Ok(())
}

fn last_errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Reserves `len` bytes of address space aligned to `align` (a power of two,
/// at least the physical page size), in the Reserved state.
///
/// `hint`, when given, is where the caller would like the region to start;
/// the kernel may ignore it (the page heap uses hints to keep arenas
/// contiguous, as the Go runtime's `arenaHints` do). The result is always
/// aligned, whether or not the hint was taken.
pub fn reserve(len: usize, align: usize, hint: Option<usize>) -> Result<NonNull<u8>, OsError> {
    check(0, len)?;
    if !align.is_power_of_two() || align < phys_page_size() {
        return Err(OsError::Misaligned { addr: align, len });
    }
    // First try exactly at the hint: when the kernel honours it no trimming
    // is needed and the heap stays contiguous.
    if let Some(h) = hint.filter(|h| h % align == 0) {
        let p = mmap_none(h, len)?;
        if p == h {
            return Ok(non_null(p));
        }
        // SAFETY: `p` is a mapping of `len` bytes we just created and have
        // not handed out.
        unsafe { unmap(non_null(p), len)? };
    }
    // Over-reserve by `align` and trim both ends to the aligned region.
    let total = len.checked_add(align).ok_or(OsError::Call {
        call: "mmap",
        errno: libc::ENOMEM,
    })?;
    let p = mmap_none(0, total)?;
    let start = (p + align - 1) & !(align - 1);
    let head = start - p;
    let tail = total - head - len;
    if head > 0 {
        // SAFETY: [p, start) is the unaligned head of our own fresh mapping.
        unsafe { unmap(non_null(p), head)? };
    }
    if tail > 0 {
        // SAFETY: [start+len, p+total) is the tail of our own fresh mapping.
        unsafe { unmap(non_null(start + len), tail)? };
    }
    Ok(non_null(start))
}

/// Makes Reserved memory Ready (readable and writable). Memory that was
/// never touched reads as zero.
///
/// # Safety
///
/// `[ptr, ptr+len)` must lie inside one region returned by [`reserve`] that
/// has not been unmapped.
pub unsafe fn commit(ptr: NonNull<u8>, len: usize) -> Result<(), OsError> {
    check(ptr.as_ptr() as usize, len)?;
    #[allow(clippy::disallowed_methods)]
    // SAFETY: the caller guarantees the range is our own mapping; changing
    // its protection affects no memory Rust code holds references into
    // (Reserved memory cannot be referenced: touching it faults).
    let r = unsafe { libc::mprotect(ptr.as_ptr().cast(), len, libc::PROT_READ | libc::PROT_WRITE) };
    if r != 0 {
        return Err(OsError::Call {
            call: "mprotect",
            errno: last_errno(),
        });
    }
    Ok(())
}

/// Returns Ready memory to Reserved: its contents are dropped and touching it
/// faults until it is committed again.
///
/// # Safety
///
/// The range must be inside one region from [`reserve`], and no live Rust
/// reference or pointer that will be dereferenced may point into it.
pub unsafe fn decommit(ptr: NonNull<u8>, len: usize) -> Result<(), OsError> {
    check(ptr.as_ptr() as usize, len)?;
    #[allow(clippy::disallowed_methods)]
    // SAFETY: the caller guarantees no one will read the range; mapping
    // fresh PROT_NONE pages over our own mapping (MAP_FIXED) drops the old
    // pages and keeps the address range reserved.
    let p = unsafe {
        libc::mmap(
            ptr.as_ptr().cast(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(OsError::Call {
            call: "mmap",
            errno: last_errno(),
        });
    }
    Ok(())
}

/// Gives the physical pages behind Ready memory back to the OS
/// (`MADV_DONTNEED`). The range stays Ready; the next touch of each page
/// faults in a zero page. This lowers the process's resident set at once.
///
/// # Safety
///
/// The range must be Ready memory from [`reserve`] + [`commit`] (or [`map`])
/// whose contents nobody needs: after the call it reads as zero.
pub unsafe fn release(ptr: NonNull<u8>, len: usize) -> Result<(), OsError> {
    check(ptr.as_ptr() as usize, len)?;
    #[allow(clippy::disallowed_methods)]
    // SAFETY: the caller guarantees the range is ours and its contents are
    // dead; MADV_DONTNEED on a private anonymous mapping only replaces the
    // contents with zero pages.
    let r = unsafe { libc::madvise(ptr.as_ptr().cast(), len, libc::MADV_DONTNEED) };
    if r != 0 {
        return Err(OsError::Call {
            call: "madvise",
            errno: last_errno(),
        });
    }
    Ok(())
}

/// Unmaps memory in any state; the address range may be handed out again by
/// the kernel.
///
/// # Safety
///
/// The range must be inside regions this module returned, and nothing may
/// use it afterwards.
pub unsafe fn unmap(ptr: NonNull<u8>, len: usize) -> Result<(), OsError> {
    check(ptr.as_ptr() as usize, len)?;
    #[allow(clippy::disallowed_methods)]
    // SAFETY: the caller guarantees the range is ours and dead.
    let r = unsafe { libc::munmap(ptr.as_ptr().cast(), len) };
    if r != 0 {
        return Err(OsError::Call {
            call: "munmap",
            errno: last_errno(),
        });
    }
    Ok(())
}

/// Reserves and commits `len` bytes aligned to `align` in one step: memory
/// for metadata (span maps, bitmap chunks) that is used as soon as it
/// exists. It reads as zero and costs resident memory only where touched.
pub fn map(len: usize, align: usize) -> Result<NonNull<u8>, OsError> {
    let p = reserve(len, align, None)?;
    // SAFETY: `p` is a fresh reservation of exactly `len` bytes.
    if let Err(e) = unsafe { commit(p, len) } {
        // SAFETY: as above; nobody has seen `p` yet.
        let _ = unsafe { unmap(p, len) };
        return Err(e);
    }
    Ok(p)
}

/// The process's resident set size in bytes, from `/proc/self/statm`.
/// Tests and the scavenger's checks use it to see that released memory
/// really left the process.
pub fn resident_bytes() -> io::Result<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| io::Error::other("malformed /proc/self/statm"))?;
    Ok(pages * phys_page_size())
}

/// Whether [`process_barrier`] works here: Linux's `membarrier(2)` with
/// `MEMBARRIER_CMD_PRIVATE_EXPEDITED`, registered for this process on the
/// first call (kernel 4.14 and later; a seccomp filter may forbid it).
/// Decided once per process.
pub fn process_barrier_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        // SAFETY: membarrier takes integer arguments only; QUERY and
        // REGISTER change nothing but the process's membarrier state.
        let supported = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) };
        if supported < 0 || supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED == 0 {
            return false;
        }
        // SAFETY: as above.
        let r = unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
                0,
                0,
            )
        };
        r == 0
    })
}

/// A memory barrier on every running thread of this process: when it
/// returns, each thread has executed a full barrier at some point during
/// the call (threads not running get one from the context switch). With
/// it, a rarely run path can pair with a frequent path that has only a
/// compiler fence where it would need a `fence(SeqCst)` (the asymmetric
/// fences of RCU and folly). Costs a system call and an interrupt per
/// CPU running this process's threads: microseconds.
///
/// # Panics
///
/// If [`process_barrier_available`] is false, or the call fails (it
/// cannot once registered).
pub fn process_barrier() {
    assert!(
        process_barrier_available(),
        "process_barrier: membarrier(PRIVATE_EXPEDITED) is not available"
    );
    // SAFETY: membarrier takes integer arguments only.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) };
    assert_eq!(r, 0, "membarrier failed: errno {}", last_errno());
}

// `uapi/linux/membarrier.h`.
const MEMBARRIER_CMD_QUERY: libc::c_long = 0;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

fn mmap_none(hint: usize, len: usize) -> Result<usize, OsError> {
    #[allow(clippy::disallowed_methods)]
    // SAFETY: a fresh anonymous PROT_NONE mapping without MAP_FIXED cannot
    // replace any existing mapping; `hint` is only advice.
    let p = unsafe {
        libc::mmap(
            hint as *mut libc::c_void,
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(OsError::Call {
            call: "mmap",
            errno: last_errno(),
        });
    }
    Ok(p as usize)
}

fn non_null(addr: usize) -> NonNull<u8> {
    NonNull::new(addr as *mut u8).expect("mmap returned address 0")
}

#[cfg(test)]
mod tests {

    /// The barrier is available on the machines we build on (Linux 4.14
    /// and later without a seccomp filter) and can be called repeatedly.
    #[test]
    fn process_barrier_runs() {
        if !process_barrier_available() {
            eprintln!("membarrier unavailable here: the world uses real fences");
            return;
        }
        for _ in 0..3 {
            process_barrier();
        }
    }

    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn reserve_is_aligned() {
        for align in [phys_page_size(), 2 * MIB, 64 * MIB] {
            let p = reserve(4 * MIB, align, None).unwrap();
            assert_eq!(p.as_ptr() as usize % align, 0);
            // SAFETY: our own fresh reservation.
            unsafe { unmap(p, 4 * MIB).unwrap() };
        }
    }

    #[test]
    fn commit_makes_zeroed_memory() {
        let p = reserve(MIB, phys_page_size(), None).unwrap();
        // SAFETY: fresh reservation of MIB bytes.
        unsafe { commit(p, MIB).unwrap() };
        // SAFETY: committed above; u8 has no invalid values.
        let s = unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), MIB) };
        assert!(s.iter().all(|&b| b == 0));
        s.fill(7);
        // SAFETY: our mapping, nothing refers to it after this.
        unsafe { unmap(p, MIB).unwrap() };
    }

    #[test]
    fn release_zeroes_and_lowers_rss() {
        let len = 64 * MIB;
        let p = map(len, phys_page_size()).unwrap();
        // SAFETY: `map` gave us `len` ready bytes.
        let s = unsafe { std::slice::from_raw_parts_mut(p.as_ptr(), len) };
        s.fill(1);
        let touched = resident_bytes().unwrap();
        // SAFETY: contents are dead from here; `s` is not read before being
        // re-derived below.
        unsafe { release(p, len).unwrap() };
        let after = resident_bytes().unwrap();
        assert!(
            touched - after >= len / 2,
            "release freed only {} of {len} bytes",
            touched.saturating_sub(after)
        );
        // SAFETY: the range is still Ready after release.
        let s = unsafe { std::slice::from_raw_parts(p.as_ptr(), len) };
        assert!(s.iter().step_by(4096).all(|&b| b == 0));
        // SAFETY: our mapping, dead from here.
        unsafe { unmap(p, len).unwrap() };
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(
            reserve(0, phys_page_size(), None),
            Err(OsError::Misaligned { .. })
        ));
        assert!(matches!(
            reserve(100, phys_page_size(), None),
            Err(OsError::Misaligned { .. })
        ));
        assert!(matches!(
            reserve(MIB, 3 * 4096, None),
            Err(OsError::Misaligned { .. })
        ));
        let huge = reserve(1 << 62, phys_page_size(), None);
        assert!(
            matches!(huge, Err(OsError::Call { call: "mmap", .. })),
            "{huge:?}"
        );
        assert!(huge.unwrap_err().to_string().contains("mmap failed"));
    }

    #[test]
    fn decommit_then_commit_reads_zero() {
        let p = map(MIB, phys_page_size()).unwrap();
        // SAFETY: `map` gave us MIB ready bytes.
        unsafe { p.as_ptr().write(9) };
        // SAFETY: nothing refers into the range.
        unsafe { decommit(p, MIB).unwrap() };
        // SAFETY: still our reservation.
        unsafe { commit(p, MIB).unwrap() };
        // SAFETY: committed again.
        assert_eq!(unsafe { p.as_ptr().read() }, 0);
        // SAFETY: dead from here.
        unsafe { unmap(p, MIB).unwrap() };
    }

    #[test]
    fn hint_is_honoured_when_free() {
        let align = 64 * MIB;
        let a = reserve(align, align, None).unwrap();
        let want = a.as_ptr() as usize + align;
        let b = reserve(align, align, Some(want)).unwrap();
        // The kernel usually honours a free hint; either way the result
        // must be aligned.
        assert_eq!(b.as_ptr() as usize % align, 0);
        // SAFETY: both are our own reservations.
        unsafe {
            unmap(a, align).unwrap();
            unmap(b, align).unwrap();
        }
    }
}
