//! Page heap configuration: one validated struct with a builder.
//!
//! Every option has a default that suits an embedded collector
//! ([`PageHeapConfig::default`]); builder methods change one option each,
//! and [`crate::PageHeap::new`] validates the whole before anything is
//! mapped, returning [`ArenaError::InvalidConfig`] naming the bad value.
//! The clock is part of the configuration so that tests can run the
//! scavenger on a [`crate::FakeClock`].

use std::fmt;
use std::sync::Arc;

use crate::ARENA_SIZE;
use crate::arena::ADDR_BITS;
use crate::clock::{Clock, RealClock};
use crate::error::ArenaError;

/// Where the heap asks the OS to put new arenas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArenaHints {
    /// Go's hints: try `0x00c0_0000_0000`, then `0x01c0_0000_0000`, ...,
    /// `0x7fc0_0000_0000`, each growing upward arena by arena so the heap
    /// stays contiguous; a hint whose address is taken is dropped for the
    /// next. When all are used up, the kernel chooses. The addresses are far
    /// from where Linux puts ordinary mappings (just below the stack and
    /// above the program), so the heap rarely collides with them.
    Go,
    /// Start at this address (a multiple of `ARENA_SIZE` below 2^47) and
    /// grow upward; the kernel chooses once that fails.
    At(usize),
    /// Let the kernel choose every arena.
    Kernel,
}

/// Configuration of a [`crate::PageHeap`]. Start from
/// [`PageHeapConfig::default`] and change fields with the builder methods;
/// [`crate::PageHeap::new`] validates it.
#[derive(Clone)]
pub struct PageHeapConfig {
    pub(crate) arena_hints: ArenaHints,
    pub(crate) max_heap_bytes: usize,
    pub(crate) background_scavenger: bool,
    pub(crate) scavenger_cpu_fraction: f64,
    pub(crate) scavenge_goal_bytes: usize,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Default for PageHeapConfig {
    /// Go's arena hints; no heap limit beyond the 47-bit address space;
    /// background scavenger not started (the facade starts it), paced to 1%
    /// of a CPU, with no goal (it releases nothing until given one); the
    /// real clock.
    fn default() -> Self {
        PageHeapConfig {
            arena_hints: ArenaHints::Go,
            max_heap_bytes: 1 << ADDR_BITS,
            background_scavenger: false,
            scavenger_cpu_fraction: 0.01,
            scavenge_goal_bytes: usize::MAX,
            clock: Arc::new(RealClock::new()),
        }
    }
}

impl fmt::Debug for PageHeapConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageHeapConfig")
            .field("arena_hints", &self.arena_hints)
            .field("max_heap_bytes", &self.max_heap_bytes)
            .field("background_scavenger", &self.background_scavenger)
            .field("scavenger_cpu_fraction", &self.scavenger_cpu_fraction)
            .field("scavenge_goal_bytes", &self.scavenge_goal_bytes)
            .finish_non_exhaustive()
    }
}

impl PageHeapConfig {
    /// Where new arenas go.
    pub fn arena_hints(mut self, hints: ArenaHints) -> Self {
        self.arena_hints = hints;
        self
    }

    /// The most memory the heap may reserve (rounded down to whole
    /// arenas; at least one arena). Growing past it is an
    /// [`ArenaError::HeapLimit`].
    pub fn max_heap_bytes(mut self, bytes: usize) -> Self {
        self.max_heap_bytes = bytes;
        self
    }

    /// Start the background scavenger with the heap.
    pub fn background_scavenger(mut self, on: bool) -> Self {
        self.background_scavenger = on;
        self
    }

    /// The share of one CPU the background scavenger aims to use, in
    /// `(0, 1]`; Go uses 1%.
    pub fn scavenger_cpu_fraction(mut self, fraction: f64) -> Self {
        self.scavenger_cpu_fraction = fraction;
        self
    }

    /// The initial retained-memory goal (see
    /// [`crate::PageHeap::set_scavenge_goal`]); `usize::MAX` for none.
    pub fn scavenge_goal_bytes(mut self, bytes: usize) -> Self {
        self.scavenge_goal_bytes = bytes;
        self
    }

    /// The clock for pacing and `unused_since` stamps.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), ArenaError> {
        if let ArenaHints::At(a) = self.arena_hints
            && (a % ARENA_SIZE != 0 || a >= 1 << ADDR_BITS || a == 0)
        {
            return Err(ArenaError::InvalidConfig(format!(
                "arena hint {a:#x} must be a non-zero multiple of {ARENA_SIZE:#x} below 2^{ADDR_BITS}"
            )));
        }
        if self.max_heap_bytes < ARENA_SIZE {
            return Err(ArenaError::InvalidConfig(format!(
                "max_heap_bytes {} is below one arena ({ARENA_SIZE} bytes)",
                self.max_heap_bytes
            )));
        }
        let f = self.scavenger_cpu_fraction;
        if !(f > 0.0 && f <= 1.0) {
            return Err(ArenaError::InvalidConfig(format!(
                "scavenger_cpu_fraction {f} is not in (0, 1]"
            )));
        }
        Ok(())
    }

    /// The heap limit in pages, whole arenas, capped at the address space.
    pub(crate) fn max_pages(&self) -> usize {
        (self.max_heap_bytes.min(1 << ADDR_BITS) / ARENA_SIZE) * crate::PAGES_PER_ARENA
    }
}
