//! The pprof file written by `Profiler::write_pprof` parses back: a small
//! protobuf decoder below reads it and checks every part against what was
//! recorded; and, where Go is installed, `go tool pprof` reads it too.

use spangc_specials::profile::Profiler;
use std::collections::HashMap;
use std::process::Command;

/// Profile rate of these tests.
const RATE: usize = 4096;

// ---- call sites, each its own function so they get their own stacks ----

#[inline(never)]
fn pprof_site_small(p: &Profiler) -> Vec<spangc_specials::profile::BucketId> {
    let mut ids = Vec::new();
    for _ in 0..100 {
        ids.push(p.record_alloc(1000, 0));
    }
    ids
}

#[inline(never)]
fn pprof_site_large(p: &Profiler) -> Vec<spangc_specials::profile::BucketId> {
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(p.record_alloc(100_000, 0));
    }
    ids
}

/// Builds a profile: 100 samples of 1000 bytes (30 freed) and 10 of
/// 100000 bytes (none freed).
fn recorded() -> Profiler {
    let p = Profiler::new(RATE);
    let small = pprof_site_small(&p);
    pprof_site_large(&p);
    for &b in &small[..30] {
        p.record_free(b, 1000);
    }
    p
}

/// The unbiased estimate of `n` samples of `size` bytes at `RATE`,
/// computed here independently of the crate.
fn expected(n: u64, size: usize) -> (i64, i64) {
    let p = 1.0 - (-(size as f64) / RATE as f64).exp();
    (
        (n as f64 / p).round() as i64,
        (n as f64 * size as f64 / p).round() as i64,
    )
}

/// The raw sample counts `(allocs, in use)` behind `samples` of `size`
/// bytes, checking that each sample's four values are exactly the
/// estimates of its counts. (A site may have several samples: one per
/// call instruction, and release builds unroll the loops below.)
fn raw_counts(samples: &[&Sample], size: usize) -> (u64, u64) {
    let p = 1.0 - (-(size as f64) / RATE as f64).exp();
    let mut sums = (0, 0);
    for s in samples {
        let allocs = (s.values[0] as f64 * p).round() as u64;
        let inuse = (s.values[2] as f64 * p).round() as u64;
        let (ao, ab) = expected(allocs, size);
        let (io, ib) = expected(inuse, size);
        assert_eq!(s.values, [ao, ab, io, ib], "{s:?}");
        sums = (sums.0 + allocs, sums.1 + inuse);
    }
    sums
}

// ---- a protobuf decoder, just enough for profile.proto ----

#[derive(Debug)]
enum Value {
    Varint(u64),
    Bytes(Vec<u8>),
}

/// Reads one varint off the front of `buf`.
fn varint(buf: &mut &[u8]) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first().expect("truncated varint");
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return v;
        }
    }
    panic!("varint longer than 10 bytes");
}

/// The fields of one message, in order.
fn fields(mut buf: &[u8]) -> Vec<(u32, Value)> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf);
        let field = (key >> 3) as u32;
        match key & 7 {
            0 => out.push((field, Value::Varint(varint(&mut buf)))),
            2 => {
                let len = varint(&mut buf) as usize;
                assert!(len <= buf.len(), "field {field}: length {len} past the end");
                out.push((field, Value::Bytes(buf[..len].to_vec())));
                buf = &buf[len..];
            }
            w => panic!("field {field}: wire type {w} not used by profile.proto"),
        }
    }
    out
}

/// A repeated varint field's values, packed or not.
fn repeated(v: &Value) -> Vec<u64> {
    match v {
        Value::Varint(x) => vec![*x],
        Value::Bytes(b) => {
            let mut rest = &b[..];
            let mut out = Vec::new();
            while !rest.is_empty() {
                out.push(varint(&mut rest));
            }
            out
        }
    }
}

fn uint(v: &Value) -> u64 {
    match v {
        Value::Varint(x) => *x,
        Value::Bytes(_) => panic!("expected a varint, got bytes"),
    }
}

fn bytes(v: &Value) -> &[u8] {
    match v {
        Value::Bytes(b) => b,
        Value::Varint(_) => panic!("expected bytes, got a varint"),
    }
}

/// The profile, decoded (fields this writer uses).
#[derive(Debug, Default)]
struct Profile {
    sample_types: Vec<(u64, u64)>,
    samples: Vec<Sample>,
    mappings: Vec<Mapping>,
    locations: HashMap<u64, Location>,
    functions: HashMap<u64, Function>,
    strings: Vec<String>,
    period_type: (u64, u64),
    period: u64,
    time_nanos: u64,
}

#[derive(Debug, Default)]
struct Sample {
    location_ids: Vec<u64>,
    values: Vec<i64>,
    /// (key, num, num_unit)
    num_labels: Vec<(u64, u64, u64)>,
}

#[derive(Debug, Default)]
struct Mapping {
    id: u64,
    memory_limit: u64,
    filename: u64,
    has_functions: bool,
}

#[derive(Debug, Default)]
struct Location {
    mapping_id: u64,
    address: u64,
    /// (function id, line)
    lines: Vec<(u64, u64)>,
}

#[derive(Debug, Default)]
struct Function {
    name: u64,
    system_name: u64,
    filename: u64,
}

fn value_type(b: &[u8]) -> (u64, u64) {
    let mut t = (0, 0);
    for (f, v) in fields(b) {
        match f {
            1 => t.0 = uint(&v),
            2 => t.1 = uint(&v),
            _ => panic!("ValueType field {f}"),
        }
    }
    t
}

fn decode(buf: &[u8]) -> Profile {
    let mut p = Profile::default();
    for (f, v) in fields(buf) {
        match f {
            1 => p.sample_types.push(value_type(bytes(&v))),
            2 => {
                let mut s = Sample::default();
                for (f, v) in fields(bytes(&v)) {
                    match f {
                        1 => s.location_ids.extend(repeated(&v)),
                        2 => s.values.extend(repeated(&v).into_iter().map(|x| x as i64)),
                        3 => {
                            let mut l = (0, 0, 0);
                            for (f, v) in fields(bytes(&v)) {
                                match f {
                                    1 => l.0 = uint(&v),
                                    3 => l.1 = uint(&v),
                                    4 => l.2 = uint(&v),
                                    _ => panic!("Label field {f}"),
                                }
                            }
                            s.num_labels.push(l);
                        }
                        _ => panic!("Sample field {f}"),
                    }
                }
                p.samples.push(s);
            }
            3 => {
                let mut m = Mapping::default();
                for (f, v) in fields(bytes(&v)) {
                    match f {
                        1 => m.id = uint(&v),
                        3 => m.memory_limit = uint(&v),
                        5 => m.filename = uint(&v),
                        7 => m.has_functions = uint(&v) != 0,
                        2 | 4 | 6 | 8..=10 => {}
                        _ => panic!("Mapping field {f}"),
                    }
                }
                p.mappings.push(m);
            }
            4 => {
                let (mut id, mut l) = (0, Location::default());
                for (f, v) in fields(bytes(&v)) {
                    match f {
                        1 => id = uint(&v),
                        2 => l.mapping_id = uint(&v),
                        3 => l.address = uint(&v),
                        4 => {
                            let mut line = (0, 0);
                            for (f, v) in fields(bytes(&v)) {
                                match f {
                                    1 => line.0 = uint(&v),
                                    2 => line.1 = uint(&v),
                                    _ => panic!("Line field {f}"),
                                }
                            }
                            l.lines.push(line);
                        }
                        _ => panic!("Location field {f}"),
                    }
                }
                assert!(id != 0, "location without an id");
                assert!(p.locations.insert(id, l).is_none(), "location {id} twice");
            }
            5 => {
                let (mut id, mut fun) = (0, Function::default());
                for (f, v) in fields(bytes(&v)) {
                    match f {
                        1 => id = uint(&v),
                        2 => fun.name = uint(&v),
                        3 => fun.system_name = uint(&v),
                        4 => fun.filename = uint(&v),
                        _ => panic!("Function field {f}"),
                    }
                }
                assert!(id != 0, "function without an id");
                assert!(p.functions.insert(id, fun).is_none(), "function {id} twice");
            }
            6 => p
                .strings
                .push(String::from_utf8(bytes(&v).to_vec()).expect("utf-8 string")),
            9 => p.time_nanos = uint(&v),
            11 => p.period_type = value_type(bytes(&v)),
            12 => p.period = uint(&v),
            _ => panic!("Profile field {f}"),
        }
    }
    p
}

impl Profile {
    fn s(&self, id: u64) -> &str {
        &self.strings[id as usize]
    }

    /// Function names at a location, innermost first.
    fn names(&self, loc: u64) -> Vec<&str> {
        self.locations[&loc]
            .lines
            .iter()
            .map(|&(f, _)| self.s(self.functions[&f].name))
            .collect()
    }

    /// The samples whose first location is in a function named `site`.
    fn samples_of(&self, site: &str) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                self.names(s.location_ids[0])
                    .iter()
                    .any(|n| n.ends_with(site))
            })
            .collect()
    }
}

fn written(p: &Profiler) -> Vec<u8> {
    let mut buf = Vec::new();
    p.write_pprof(&mut buf).expect("writing to a Vec");
    buf
}

#[test]
fn pprof_parses_back() {
    let prof = recorded();
    let p = decode(&written(&prof));

    // String table.
    assert_eq!(p.strings.first().map(String::as_str), Some(""));
    let types: Vec<(&str, &str)> = p
        .sample_types
        .iter()
        .map(|&(t, u)| (p.s(t), p.s(u)))
        .collect();
    assert_eq!(
        types,
        [
            ("alloc_objects", "count"),
            ("alloc_space", "bytes"),
            ("inuse_objects", "count"),
            ("inuse_space", "bytes"),
        ]
    );
    assert_eq!(
        (p.s(p.period_type.0), p.s(p.period_type.1)),
        ("space", "bytes")
    );
    assert_eq!(p.period, RATE as u64);
    assert!(p.time_nanos > 0);

    // Mapping: one, with functions, naming this executable.
    assert_eq!(p.mappings.len(), 1);
    let m = &p.mappings[0];
    assert!(m.has_functions && m.memory_limit == u64::MAX);
    let exe = std::env::current_exe().unwrap();
    assert_eq!(p.s(m.filename), exe.display().to_string());

    // Samples: one per bucket, values unbiased, all from the two sites.
    let small = p.samples_of("pprof_site_small");
    let large = p.samples_of("pprof_site_large");
    assert_eq!(small.len() + large.len(), p.samples.len());
    assert_eq!(raw_counts(&small, 1000), (100, 70));
    assert_eq!(raw_counts(&large, 100_000), (10, 10));
    for (samples, size) in [(&small, 1000), (&large, 100_000)] {
        for s in samples.iter() {
            assert_eq!(s.num_labels.len(), 1);
            let (k, n, u) = s.num_labels[0];
            assert_eq!((p.s(k), n, p.s(u)), ("bytes", size, "bytes"));
        }
    }

    // Locations and functions: all referenced ids exist; the sites' own
    // frames name this file and a line in it; stacks go on to the callers.
    for s in &p.samples {
        assert!(s.location_ids.len() >= 2, "stack too short: {s:?}");
        for id in &s.location_ids {
            let l = &p.locations[id];
            assert_eq!(l.mapping_id, m.id);
            assert!(l.address != 0);
            assert!(!l.lines.is_empty(), "location {id} unsymbolized");
            for (f, _) in &l.lines {
                assert!(p.functions.contains_key(f), "function {f} missing");
            }
        }
        // The caller of every site is `recorded`.
        assert!(
            p.names(s.location_ids[1])
                .iter()
                .any(|n| n.ends_with("recorded"))
        );
    }
    for site in ["pprof_site_small", "pprof_site_large"] {
        let loc = &p.locations[&p.samples_of(site)[0].location_ids[0]];
        let &(fid, line) = loc
            .lines
            .iter()
            .find(|&&(f, _)| p.s(p.functions[&f].name).ends_with(site))
            .unwrap();
        let f = &p.functions[&fid];
        assert!(
            p.s(f.filename).ends_with("profile_pprof.rs"),
            "{}",
            p.s(f.filename)
        );
        assert!(line > 0);
        // The system name is the mangled symbol, which contains the name.
        assert!(p.s(f.system_name).contains(site));
    }
}

#[test]
fn empty_profile_parses_back() {
    let p = decode(&written(&Profiler::new(RATE)));
    assert!(p.samples.is_empty() && p.locations.is_empty() && p.functions.is_empty());
    assert_eq!(p.sample_types.len(), 4);
    assert_eq!(p.period, RATE as u64);
}

/// `go tool pprof` reads the file and names the call sites. Skipped (with
/// a note) where Go is not installed.
#[test]
fn go_tool_pprof_reads_it() {
    if Command::new("go").arg("version").output().is_err() {
        eprintln!("note: `go` not found; skipping the go tool pprof check");
        return;
    }
    let path = std::env::temp_dir().join(format!("spangc-profile-{}.pb", std::process::id()));
    std::fs::write(&path, written(&recorded())).unwrap();
    for index in ["alloc_space", "inuse_space"] {
        let out = Command::new("go")
            .args(["tool", "pprof", "-top", "-sample_index", index])
            .arg(&path)
            .output()
            .expect("running go tool pprof");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "pprof failed: {stderr}");
        for site in ["pprof_site_small", "pprof_site_large"] {
            assert!(
                stdout.contains(site),
                "{site} missing from pprof -top:\n{stdout}\n{stderr}"
            );
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// With this file's source hidden (as the facade hides its allocator),
/// every frame of it is trimmed off the top of each stack: the top
/// location and `top_frame` are the first frame outside it (the test
/// harness), in the pprof file and the summary alike.
#[test]
fn hidden_source_leaves_the_top_of_stacks() {
    let this_file = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/profile_pprof.rs");
    let prof = Profiler::new(RATE).hide_source(this_file);
    pprof_site_small(&prof);
    let p = decode(&written(&prof));
    assert!(!p.samples.is_empty());
    for s in &p.samples {
        let top = &p.locations[&s.location_ids[0]];
        assert!(!top.lines.is_empty(), "the top location has no frames left");
        for (f, _) in &top.lines {
            let file = p.s(p.functions[f].filename);
            assert_ne!(file, this_file, "a hidden frame is at the top: {s:?}");
        }
    }
    // The file's frames were symbolized with this path, or nothing above
    // was tested.
    let unhidden = decode(&written(&recorded()));
    assert!(
        unhidden
            .functions
            .values()
            .any(|f| unhidden.s(f.filename) == this_file),
        "symbolized paths differ from {this_file}"
    );
    for b in prof.snapshot() {
        let top = b.top_frame.unwrap_or_default();
        assert!(!top.contains("pprof_site_small"), "{top}");
    }
}
