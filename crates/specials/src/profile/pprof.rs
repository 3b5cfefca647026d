//! The heap profile in pprof's protobuf format (`profile.proto` of
//! github.com/google/pprof), written by hand.
//!
//! The message is small and write-only, so a varint and length-delimited
//! writer of about forty lines does the job; prost would bring a build
//! script and generated code for it. Nested messages are encoded into a
//! scratch buffer and then copied behind their length, which costs a copy
//! per message but keeps the writer one pass and obviously correct.
//!
//! What we write, as Go's `runtime/pprof` does for a heap profile:
//!
//! * sample types `alloc_objects/count`, `alloc_space/bytes`,
//!   `inuse_objects/count`, `inuse_space/bytes` (pprof shows the last,
//!   in-use space, by default); period type `space/bytes`, period = rate;
//! * one sample per bucket: its stack as location ids (innermost first),
//!   its four values unbiased (see `unbias` in `mod.rs`), and a numeric label
//!   `bytes` = the object size, which `pprof -tags` breaks down by;
//! * one location per distinct call address, with the source frames the
//!   address symbolizes to (inlined callees first) as lines; the top of
//!   each stack loses the allocator's own frames (`Profiler::hide_source`),
//!   so an address whose inline frames were trimmed there is a location of
//!   its own;
//! * one function per distinct (name, symbol, file);
//! * one mapping covering the whole address space, flagged as having
//!   functions, file names, line numbers and inline frames: we symbolize
//!   in-process, so pprof must not try (it would look for the binary by
//!   the mapping's file name and give up noisily without one);
//! * the string table, `""` first.
//!
//! Uncompressed. pprof sniffs the gzip magic and reads plain protobuf as
//! well; gzip would need a deflate dependency (and a CRC-32) for a file of
//! a few kilobytes per hundred buckets, and a caller who wants it can wrap
//! `w` in any gzip encoder.

use super::buckets::BucketRecord;
use super::estimates;
use super::symbols::{Frames, SourceFrame, Symbols, call_address};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io::{self, Write};

/// Field numbers of profile.proto.
mod field {
    pub const PROFILE_SAMPLE_TYPE: u32 = 1;
    pub const PROFILE_SAMPLE: u32 = 2;
    pub const PROFILE_MAPPING: u32 = 3;
    pub const PROFILE_LOCATION: u32 = 4;
    pub const PROFILE_FUNCTION: u32 = 5;
    pub const PROFILE_STRING_TABLE: u32 = 6;
    pub const PROFILE_TIME_NANOS: u32 = 9;
    pub const PROFILE_PERIOD_TYPE: u32 = 11;
    pub const PROFILE_PERIOD: u32 = 12;

    pub const VALUE_TYPE_TYPE: u32 = 1;
    pub const VALUE_TYPE_UNIT: u32 = 2;

    pub const SAMPLE_LOCATION_ID: u32 = 1;
    pub const SAMPLE_VALUE: u32 = 2;
    pub const SAMPLE_LABEL: u32 = 3;

    pub const LABEL_KEY: u32 = 1;
    pub const LABEL_NUM: u32 = 3;
    pub const LABEL_NUM_UNIT: u32 = 4;

    pub const MAPPING_ID: u32 = 1;
    pub const MAPPING_MEMORY_START: u32 = 2;
    pub const MAPPING_MEMORY_LIMIT: u32 = 3;
    pub const MAPPING_FILENAME: u32 = 5;
    pub const MAPPING_HAS_FUNCTIONS: u32 = 7;
    pub const MAPPING_HAS_FILENAMES: u32 = 8;
    pub const MAPPING_HAS_LINE_NUMBERS: u32 = 9;
    pub const MAPPING_HAS_INLINE_FRAMES: u32 = 10;

    pub const LOCATION_ID: u32 = 1;
    pub const LOCATION_MAPPING_ID: u32 = 2;
    pub const LOCATION_ADDRESS: u32 = 3;
    pub const LOCATION_LINE: u32 = 4;

    pub const LINE_FUNCTION_ID: u32 = 1;
    pub const LINE_LINE: u32 = 2;

    pub const FUNCTION_ID: u32 = 1;
    pub const FUNCTION_NAME: u32 = 2;
    pub const FUNCTION_SYSTEM_NAME: u32 = 3;
    pub const FUNCTION_FILENAME: u32 = 4;
}

/// Protobuf wire types.
const WIRE_VARINT: u8 = 0;
const WIRE_LEN: u8 = 2;

/// The one mapping's id.
const MAPPING: u64 = 1;

/// A protobuf message being encoded.
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn tag(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    /// A `uint64`/`int64`/`bool` field; omitted when zero, proto3's
    /// default. (`int64` values go as their two's complement.)
    fn uint(&mut self, field: u32, v: u64) {
        if v != 0 {
            self.tag(field, WIRE_VARINT);
            self.varint(v);
        }
    }

    /// A length-delimited field, written even when empty (the string
    /// table's `""` must be there).
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.tag(field, WIRE_LEN);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    /// A packed repeated varint field.
    fn packed(&mut self, field: u32, vals: impl IntoIterator<Item = u64>) {
        let mut inner = Pb::default();
        vals.into_iter().for_each(|v| inner.varint(v));
        if !inner.0.is_empty() {
            self.bytes(field, &inner.0);
        }
    }

    /// A nested message.
    fn message(&mut self, field: u32, f: impl FnOnce(&mut Pb)) {
        let mut inner = Pb::default();
        f(&mut inner);
        self.bytes(field, &inner.0);
    }
}

/// The string table: index 0 is `""`.
struct Strings {
    index: HashMap<String, u64>,
    table: Vec<String>,
}

impl Strings {
    fn new() -> Self {
        Strings {
            index: HashMap::from([(String::new(), 0)]),
            table: vec![String::new()],
        }
    }

    fn id(&mut self, s: &str) -> u64 {
        if let Some(&id) = self.index.get(s) {
            return id;
        }
        let id = self.table.len() as u64;
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), id);
        id
    }
}

/// Writes the profile of `records` (sampled at `rate`) to `w`.
pub(crate) fn write(
    records: &[BucketRecord],
    symbols: &Symbols,
    hidden: &dyn Fn(&SourceFrame) -> bool,
    rate: usize,
    mut w: impl Write,
) -> io::Result<()> {
    let mut pb = Pb::default();
    let mut strings = Strings::new();

    for (ty, unit) in [
        ("alloc_objects", "count"),
        ("alloc_space", "bytes"),
        ("inuse_objects", "count"),
        ("inuse_space", "bytes"),
    ] {
        value_type(&mut pb, field::PROFILE_SAMPLE_TYPE, &mut strings, ty, unit);
    }

    // Symbolize every return address once, then trim each stack's top:
    // whole addresses whose frames are all hidden, and the hidden inline
    // frames of the first address left. A location is an address and how
    // many of its frames were trimmed, numbered in order of first use.
    let mut ips: Vec<usize> = records.iter().flat_map(|r| r.stack()).copied().collect();
    ips.sort_unstable();
    ips.dedup();
    let symbolized: HashMap<usize, Frames> = ips
        .iter()
        .copied()
        .zip(symbols.lookup(ips.iter().copied()))
        .collect();
    let mut locations: HashMap<(usize, usize), u64> = HashMap::new();
    let mut order: Vec<(usize, usize)> = Vec::new();
    let bytes_key = strings.id("bytes");
    for r in records {
        let values = estimates(r, rate);
        let stack = r.stack();
        let hidden_frames = |ip: &usize| symbolized[ip].iter().take_while(|f| hidden(f)).count();
        let top = stack
            .iter()
            .position(|ip| hidden_frames(ip) < symbolized[ip].len().max(1))
            .unwrap_or(stack.len());
        let ids: Vec<u64> = stack[top..]
            .iter()
            .enumerate()
            .map(|(i, &ip)| {
                let trimmed = if i == 0 { hidden_frames(&ip) } else { 0 };
                match locations.entry((ip, trimmed)) {
                    Entry::Occupied(e) => *e.get(),
                    Entry::Vacant(e) => {
                        order.push((ip, trimmed));
                        *e.insert(order.len() as u64)
                    }
                }
            })
            .collect();
        pb.message(field::PROFILE_SAMPLE, |s| {
            s.packed(field::SAMPLE_LOCATION_ID, ids);
            s.packed(field::SAMPLE_VALUE, values);
            s.message(field::SAMPLE_LABEL, |l| {
                l.uint(field::LABEL_KEY, bytes_key);
                l.uint(field::LABEL_NUM, r.size() as u64);
                l.uint(field::LABEL_NUM_UNIT, bytes_key);
            });
        });
    }

    let executable = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let executable = strings.id(&executable);
    pb.message(field::PROFILE_MAPPING, |m| {
        m.uint(field::MAPPING_ID, MAPPING);
        m.uint(field::MAPPING_MEMORY_START, 0);
        m.uint(field::MAPPING_MEMORY_LIMIT, u64::MAX);
        m.uint(field::MAPPING_FILENAME, executable);
        for f in [
            field::MAPPING_HAS_FUNCTIONS,
            field::MAPPING_HAS_FILENAMES,
            field::MAPPING_HAS_LINE_NUMBERS,
            field::MAPPING_HAS_INLINE_FRAMES,
        ] {
            m.uint(f, 1);
        }
    });

    // Function ids by (name, system name, file), in order of first use.
    let mut functions: HashMap<(u64, u64, u64), u64> = HashMap::new();
    for (i, &(ip, trimmed)) in order.iter().enumerate() {
        let lines: Vec<(u64, u64)> = symbolized[&ip][trimmed..]
            .iter()
            .map(|f| {
                let key = (
                    strings.id(&f.function),
                    strings.id(&f.system_name),
                    strings.id(&f.file),
                );
                let next = functions.len() as u64 + 1;
                (*functions.entry(key).or_insert(next), u64::from(f.line))
            })
            .collect();
        pb.message(field::PROFILE_LOCATION, |l| {
            l.uint(field::LOCATION_ID, i as u64 + 1);
            l.uint(field::LOCATION_MAPPING_ID, MAPPING);
            l.uint(field::LOCATION_ADDRESS, call_address(ip) as u64);
            for (function, line) in lines {
                l.message(field::LOCATION_LINE, |ln| {
                    ln.uint(field::LINE_FUNCTION_ID, function);
                    ln.uint(field::LINE_LINE, line);
                });
            }
        });
    }
    let mut functions: Vec<_> = functions.into_iter().collect();
    functions.sort_unstable_by_key(|&(_, id)| id);
    for ((name, system_name, file), id) in functions {
        pb.message(field::PROFILE_FUNCTION, |f| {
            f.uint(field::FUNCTION_ID, id);
            f.uint(field::FUNCTION_NAME, name);
            f.uint(field::FUNCTION_SYSTEM_NAME, system_name);
            f.uint(field::FUNCTION_FILENAME, file);
        });
    }

    value_type(
        &mut pb,
        field::PROFILE_PERIOD_TYPE,
        &mut strings,
        "space",
        "bytes",
    );
    pb.uint(field::PROFILE_PERIOD, rate as u64);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    pb.uint(field::PROFILE_TIME_NANOS, now);

    for s in &strings.table {
        pb.bytes(field::PROFILE_STRING_TABLE, s.as_bytes());
    }
    w.write_all(&pb.0)?;
    w.flush()
}

/// A `ValueType` message (`type` and `unit` as string ids) in `field`.
fn value_type(pb: &mut Pb, field: u32, strings: &mut Strings, ty: &str, unit: &str) {
    let (ty, unit) = (strings.id(ty), strings.id(unit));
    pb.message(field, |v| {
        v.uint(field::VALUE_TYPE_TYPE, ty);
        v.uint(field::VALUE_TYPE_UNIT, unit);
    });
}
