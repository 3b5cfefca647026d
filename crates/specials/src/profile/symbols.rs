//! Symbolization of bucket stacks, cached by address.
//!
//! Buckets hold return addresses only; names, files and lines are looked
//! up when a profile or a summary is written, through the `backtrace`
//! crate's resolver (DWARF via gimli/addr2line on Linux). The first lookup
//! in a process loads and parses the binary's debug info, which can take
//! a hundred milliseconds; later lookups of a new address cost
//! microseconds, and the cache makes repeated profiles of the same stacks
//! cost a hash lookup per address. The cache only grows: it holds one
//! entry per distinct return address ever seen in a stack, a bounded set
//! (the program's call sites).
//!
//! A return address points after the call instruction, which can be the
//! first instruction of the next line (or of no function at all after a
//! call to a function that does not return), so we look up `ip - 1`, the
//! call itself; the profile also reports that address, as Go's does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One source frame at an address: the function, and where in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceFrame {
    /// Demangled name without the hash (`crate::module::function`).
    pub function: String,
    /// The symbol as the linker knows it (mangled), or the demangled name
    /// when the resolver gives no raw form.
    pub system_name: String,
    /// Source file, empty when unknown.
    pub file: String,
    /// Line, 0 when unknown.
    pub line: u32,
}

/// What one address symbolizes to: its source frames, innermost first (an
/// address in inlined code has the inlined callee first and the function
/// it was inlined into last). Empty when the address is unknown.
pub(crate) type Frames = Arc<[SourceFrame]>;

/// The cache. See the module docs.
#[derive(Default)]
pub(crate) struct Symbols {
    /// Call address (`ip - 1`) to frames. Guarded by the mutex, held
    /// across a batch of lookups (only profile writers and summaries come
    /// here, never the allocation path).
    cache: Mutex<HashMap<usize, Frames>>,
}

impl Symbols {
    /// The frames of each return address in `ips`, in order.
    pub fn lookup(&self, ips: impl IntoIterator<Item = usize>) -> Vec<Frames> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        ips.into_iter()
            .map(|ip| {
                let pc = call_address(ip);
                cache.entry(pc).or_insert_with(|| resolve(pc)).clone()
            })
            .collect()
    }
}

/// The address of the call instruction that returns to `ip`.
pub(crate) fn call_address(ip: usize) -> usize {
    ip.saturating_sub(1)
}

fn resolve(pc: usize) -> Frames {
    let mut frames = Vec::new();
    backtrace::resolve(pc as *mut std::ffi::c_void, |sym| {
        let name = sym.name();
        let function = name
            .as_ref()
            .map_or_else(|| "??".to_owned(), |n| format!("{n:#}"));
        let system_name = name
            .as_ref()
            .and_then(|n| n.as_str())
            .map_or_else(|| function.clone(), str::to_owned);
        frames.push(SourceFrame {
            function,
            system_name,
            file: sym
                .filename()
                .map(|f| f.display().to_string())
                .unwrap_or_default(),
            line: sym.lineno().unwrap_or(0),
        });
    });
    frames.into()
}
