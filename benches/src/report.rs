//! The line protocol between a benchmark child and the harness.
//!
//! Every child process (a Rust system run by `spangc-bench run`, the Go
//! program, the C/Boehm program) prints what it measured to standard output
//! as tagged lines of `key=value` words. The parent parses them back with
//! [`Outcome::parse`]; [`Outcome::write_to`] is the exact inverse, and the
//! Go and C programs print the same format by hand.
//!
//! ```text
//! result checksum=<u64> gc_count=<u64|-> max_pause_ns=<u64|->
//! rss t_ms=<u64> rss_bytes=<u64>
//! heap_cycle cycle=<u64> t_ms=<u64> heap_live_bytes=<u64> heap_goal_bytes=<u64> rss_bytes=<u64>
//! ```
//!
//! * `result`: exactly one per run. `checksum` is the workload's checksum,
//!   which must agree across systems for the same workload and size.
//!   `gc_count` and `max_pause_ns` are `-` (or absent) when the system does
//!   not report them.
//! * `rss`: zero or more, one per sample of the child's resident set (read
//!   from `/proc/self/statm`), in time order. The grow-shrink workload prints
//!   them; `t_ms` counts from the start of the workload.
//! * `heap_cycle`: zero or more, one per GC cycle, for systems that can say
//!   what their heap looked like at the end of each cycle (spangc prints
//!   these from its `stats()`). The harness draws them as a heap-over-time
//!   chart (`plot::heap_cycles`).
//!
//! Lines with other tags are ignored, so a child may print progress text; a
//! known tag with an unknown key is ignored too, so a child can add fields
//! before the harness learns them. A malformed value or a missing required
//! key is an error: a benchmark whose numbers cannot be read must not pass
//! silently.

use std::fmt;
use std::io::{self, Write};
use std::time::Instant;

/// What a system says about its collector during one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcStats {
    /// Number of collections, when the system reports it.
    pub count: Option<u64>,
    /// Longest single pause (or, for incremental collectors driven by the
    /// workload, the longest collection step), in nanoseconds.
    pub max_pause_ns: Option<u64>,
}

impl GcStats {
    /// Runs one collection step and returns its stats: one collection,
    /// whose pause is the time `collect` took. For collectors that the
    /// workload drives by explicit calls.
    pub fn timed(collect: impl FnOnce()) -> GcStats {
        let start = Instant::now();
        collect();
        GcStats {
            count: Some(1),
            max_pause_ns: Some(u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)),
        }
    }

    /// Combines the stats of two independent heaps (one per thread): counts
    /// add up, the longest pause is the longer one. Unknown stays unknown
    /// only if both sides are unknown.
    #[must_use]
    pub fn merge(self, other: GcStats) -> GcStats {
        fn either(a: Option<u64>, b: Option<u64>, f: fn(u64, u64) -> u64) -> Option<u64> {
            match (a, b) {
                (Some(a), Some(b)) => Some(f(a, b)),
                (a, b) => a.or(b),
            }
        }
        GcStats {
            count: either(self.count, other.count, u64::wrapping_add),
            max_pause_ns: either(self.max_pause_ns, other.max_pause_ns, u64::max),
        }
    }
}

/// One sample of the child's resident set size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RssSample {
    /// Milliseconds since the workload started.
    pub t_ms: u64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

/// The state of a collecting heap at the end of one GC cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapCycle {
    /// Cycle number, from 1.
    pub cycle: u64,
    /// Milliseconds since the workload started.
    pub t_ms: u64,
    /// Bytes marked live by the cycle.
    pub heap_live_bytes: u64,
    /// Heap size at which the next cycle starts.
    pub heap_goal_bytes: u64,
    /// Resident set size of the process at the end of the cycle.
    pub rss_bytes: u64,
}

/// Everything one run of one workload reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The workload's checksum.
    pub checksum: u64,
    /// Collector statistics.
    pub gc: GcStats,
    /// Resident-set samples over time (grow-shrink only).
    pub rss: Vec<RssSample>,
    /// Per-cycle heap states (systems that report them).
    pub heap_cycles: Vec<HeapCycle>,
}

/// Why a child's output could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

/// Writes an optional number as the protocol spells it.
struct Opt(Option<u64>);

impl fmt::Display for Opt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str("-"),
        }
    }
}

/// The `key=value` words of one line, with lookups that say what is wrong.
struct Fields<'a> {
    tag: &'a str,
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Fields<'a> {
    fn parse(line: &'a str) -> Option<Fields<'a>> {
        let mut words = line.split_whitespace();
        let tag = words.next()?;
        let pairs = words.filter_map(|w| w.split_once('=')).collect();
        Some(Fields { tag, pairs })
    }

    fn raw(&self, key: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn number(&self, key: &str) -> Result<u64, ParseError> {
        let raw = self
            .raw(key)
            .ok_or_else(|| ParseError(format!("`{}` line without `{key}=`", self.tag)))?;
        raw.parse().map_err(|_| {
            ParseError(format!(
                "`{}` line: `{key}={raw}` is not a number",
                self.tag
            ))
        })
    }

    fn optional(&self, key: &str) -> Result<Option<u64>, ParseError> {
        match self.raw(key) {
            None | Some("-") => Ok(None),
            Some(_) => self.number(key).map(Some),
        }
    }
}

impl Outcome {
    /// Prints the outcome in the protocol's format.
    ///
    /// # Errors
    /// Any error of the writer.
    pub fn write_to(&self, mut out: impl Write) -> io::Result<()> {
        for s in &self.rss {
            writeln!(out, "rss t_ms={} rss_bytes={}", s.t_ms, s.rss_bytes)?;
        }
        for c in &self.heap_cycles {
            writeln!(
                out,
                "heap_cycle cycle={} t_ms={} heap_live_bytes={} heap_goal_bytes={} rss_bytes={}",
                c.cycle, c.t_ms, c.heap_live_bytes, c.heap_goal_bytes, c.rss_bytes
            )?;
        }
        writeln!(
            out,
            "result checksum={} gc_count={} max_pause_ns={}",
            self.checksum,
            Opt(self.gc.count),
            Opt(self.gc.max_pause_ns)
        )
    }

    /// Reads a child's standard output.
    ///
    /// # Errors
    /// No `result` line, more than one, or a malformed known line.
    pub fn parse(text: &str) -> Result<Outcome, ParseError> {
        let mut result = None;
        let mut rss = Vec::new();
        let mut heap_cycles = Vec::new();
        for fields in text.lines().filter_map(Fields::parse) {
            match fields.tag {
                "result" => {
                    if result.is_some() {
                        return Err(ParseError("more than one `result` line".into()));
                    }
                    result = Some((
                        fields.number("checksum")?,
                        GcStats {
                            count: fields.optional("gc_count")?,
                            max_pause_ns: fields.optional("max_pause_ns")?,
                        },
                    ));
                }
                "rss" => rss.push(RssSample {
                    t_ms: fields.number("t_ms")?,
                    rss_bytes: fields.number("rss_bytes")?,
                }),
                "heap_cycle" => heap_cycles.push(HeapCycle {
                    cycle: fields.number("cycle")?,
                    t_ms: fields.number("t_ms")?,
                    heap_live_bytes: fields.number("heap_live_bytes")?,
                    heap_goal_bytes: fields.number("heap_goal_bytes")?,
                    rss_bytes: fields.number("rss_bytes")?,
                }),
                _ => {}
            }
        }
        let (checksum, gc) = result.ok_or_else(|| ParseError("no `result` line".into()))?;
        Ok(Outcome {
            checksum,
            gc,
            rss,
            heap_cycles,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let text = "warming up\n\
                    rss t_ms=0 rss_bytes=4096\n\
                    rss t_ms=100 rss_bytes=8192\n\
                    heap_cycle cycle=1 t_ms=40 heap_live_bytes=10 heap_goal_bytes=20 rss_bytes=30\n\
                    result gc_count=7 max_pause_ns=1500 checksum=42 future_key=1\n";
        let out = Outcome::parse(text).unwrap();
        assert_eq!(out.checksum, 42);
        assert_eq!(
            out.gc,
            GcStats {
                count: Some(7),
                max_pause_ns: Some(1500)
            }
        );
        assert_eq!(out.rss.len(), 2);
        assert_eq!(out.rss[1].rss_bytes, 8192);
        assert_eq!(out.heap_cycles[0].heap_goal_bytes, 20);
    }

    #[test]
    fn unreported_stats_are_none() {
        let a = Outcome::parse("result checksum=1 gc_count=- max_pause_ns=-").unwrap();
        let b = Outcome::parse("result checksum=1").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.gc, GcStats::default());
    }

    #[test]
    fn write_then_parse_is_identity() {
        let out = Outcome {
            checksum: u64::MAX,
            gc: GcStats {
                count: None,
                max_pause_ns: Some(9),
            },
            rss: vec![RssSample {
                t_ms: 5,
                rss_bytes: 6,
            }],
            heap_cycles: vec![HeapCycle {
                cycle: 1,
                t_ms: 2,
                heap_live_bytes: 3,
                heap_goal_bytes: 4,
                rss_bytes: 5,
            }],
        };
        let mut text = Vec::new();
        out.write_to(&mut text).unwrap();
        assert_eq!(Outcome::parse(&String::from_utf8(text).unwrap()), Ok(out));
    }

    #[test]
    fn rejects_missing_duplicate_and_malformed_results() {
        assert!(Outcome::parse("rss t_ms=1 rss_bytes=2").is_err());
        assert!(Outcome::parse("result checksum=1\nresult checksum=1").is_err());
        assert!(Outcome::parse("result checksum=x").is_err());
        assert!(Outcome::parse("result gc_count=1").is_err());
        assert!(Outcome::parse("result checksum=1\nrss t_ms=1").is_err());
    }

    #[test]
    fn merge_adds_counts_and_keeps_the_longest_pause() {
        let a = GcStats {
            count: Some(2),
            max_pause_ns: Some(10),
        };
        let b = GcStats {
            count: Some(3),
            max_pause_ns: None,
        };
        assert_eq!(
            a.merge(b),
            GcStats {
                count: Some(5),
                max_pause_ns: Some(10)
            }
        );
        assert_eq!(
            GcStats::default().merge(GcStats::default()),
            GcStats::default()
        );
    }
}
