//! The per-workload table, its checksum verdict and the summary line.
//!
//! Figures per system are medians over its runs (wall time, CPU time, peak
//! RSS, GC count); the pause column is the longest pause of any run, since
//! a worst case is what a pause column is for. The ratio column divides each
//! system's median wall time by the fastest spangc system's, or, while no
//! spangc system has results, by `box`'s (the table says which).
//!
//! The checksum verdict: the reference checksum is the one most runs
//! reported (ties go to the system listed first); a system with any run that
//! disagrees is marked `MISMATCH` and cannot be the best peer.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::child::RunError;
use crate::report::Outcome;
use crate::systems::{Kind, System};
use crate::workloads::Workload;

/// Bytes in a MiB, for the tables and charts.
pub const MIB: f64 = 1024.0 * 1024.0;

/// One successful run.
#[derive(Clone, Debug)]
pub struct Run {
    /// Spawn to exit.
    pub wall: Duration,
    /// User plus system CPU time.
    pub cpu: Duration,
    /// Peak RSS in bytes.
    pub max_rss_bytes: u64,
    /// What the child reported.
    pub outcome: Outcome,
}

/// Why a system stopped being run before its last round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// A run took longer than the repeat limit; it is not repeated.
    Slow(Duration),
    /// A run failed; the failure.
    Error(RunError),
}

/// A system's line in the table.
#[derive(Clone, Debug)]
pub enum RowState {
    /// The system could not run at all: the status word ("not
    /// installed", "build failed") and the reason.
    Unavailable(&'static str, String),
    /// The system ran.
    Ran {
        /// Its successful runs, in order.
        runs: Vec<Run>,
        /// Why it stopped early, if it did.
        stopped: Option<Stopped>,
    },
}

/// A system and what happened to it.
#[derive(Clone, Debug)]
pub struct Row {
    /// The system.
    pub system: &'static System,
    /// What happened.
    pub state: RowState,
}

impl Row {
    /// The successful runs (none if the system was unavailable).
    #[must_use]
    pub fn runs(&self) -> &[Run] {
        match &self.state {
            RowState::Ran { runs, .. } => runs,
            RowState::Unavailable(..) => &[],
        }
    }

    /// The run with the median wall time (the upper median for an even
    /// count): the run whose time series the charts draw.
    #[must_use]
    pub fn median_run(&self) -> Option<&Run> {
        let mut runs: Vec<&Run> = self.runs().iter().collect();
        runs.sort_by_key(|r| r.wall);
        runs.get(runs.len() / 2).copied()
    }
}

/// Median of a non-empty list (mean of the middle two for an even count).
fn median_u64(mut values: Vec<u64>) -> Option<u64> {
    values.sort_unstable();
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some(
            values[n / 2 - 1] / 2
                + values[n / 2] / 2
                + (values[n / 2 - 1] % 2 + values[n / 2] % 2) / 2,
        ),
    }
}

fn median_duration(values: impl Iterator<Item = Duration>) -> Option<Duration> {
    median_u64(
        values
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .collect(),
    )
    .map(Duration::from_nanos)
}

/// A row's figures.
#[derive(Clone, Debug)]
pub struct Figures {
    /// Median wall time.
    pub wall: Duration,
    /// Median CPU time.
    pub cpu: Duration,
    /// Median peak RSS in bytes.
    pub max_rss_bytes: u64,
    /// Median GC count, if reported.
    pub gc_count: Option<u64>,
    /// Longest pause over all runs, if reported.
    pub max_pause_ns: Option<u64>,
}

/// The figures of a row with at least one successful run.
#[must_use]
pub fn figures(row: &Row) -> Option<Figures> {
    let runs = row.runs();
    Some(Figures {
        wall: median_duration(runs.iter().map(|r| r.wall))?,
        cpu: median_duration(runs.iter().map(|r| r.cpu))?,
        max_rss_bytes: median_u64(runs.iter().map(|r| r.max_rss_bytes).collect())?,
        gc_count: median_u64(runs.iter().filter_map(|r| r.outcome.gc.count).collect()),
        max_pause_ns: runs.iter().filter_map(|r| r.outcome.gc.max_pause_ns).max(),
    })
}

/// One line of the table: name, status, the seven number columns, note.
fn line(name: &str, status: &str, cells: [String; 7], note: &str) -> String {
    let [runs, wall, cpu, rss, gcs, pause, ratio] = cells;
    format!(
        "{name:<16} {status:<13} {runs:>4} {wall:>9} {cpu:>9} {rss:>10} {gcs:>7} {pause:>10} {ratio:>9}  {note}"
    )
    .trim_end()
    .to_owned()
}

/// A workload's results.
pub struct Table<'a> {
    /// The workload.
    workload: Workload,
    /// Its size.
    size: u64,
    /// Rounds requested.
    rounds: usize,
    /// The repeat limit: a run slower than this is not repeated.
    repeat_limit: Duration,
    /// One row per system, in registry order.
    rows: &'a [Row],
    /// The checksum most runs agree on.
    reference: Option<u64>,
}

/// The checksum most runs agree on (ties go to the row listed first).
fn reference_checksum(rows: &[Row]) -> Option<u64> {
    let mut votes: HashMap<u64, (usize, usize)> = HashMap::new();
    for (order, row) in rows.iter().enumerate() {
        for run in row.runs() {
            votes.entry(run.outcome.checksum).or_insert((0, order)).0 += 1;
        }
    }
    votes
        .into_iter()
        .max_by(|(_, (na, oa)), (_, (nb, ob))| na.cmp(nb).then(ob.cmp(oa)))
        .map(|(checksum, _)| checksum)
}

impl<'a> Table<'a> {
    /// The table of `rows`.
    #[must_use]
    pub fn new(
        workload: Workload,
        size: u64,
        rounds: usize,
        repeat_limit: Duration,
        rows: &'a [Row],
    ) -> Table<'a> {
        Table {
            workload,
            size,
            rounds,
            repeat_limit,
            rows,
            reference: reference_checksum(rows),
        }
    }

    fn agrees(&self, row: &Row) -> bool {
        row.runs()
            .iter()
            .all(|r| Some(r.outcome.checksum) == self.reference)
    }

    /// The fastest row of `kind` whose checksums agree.
    fn fastest(&self, kind: Kind) -> Option<(&Row, Figures)> {
        self.rows
            .iter()
            .filter(|r| r.system.kind == kind && self.agrees(r))
            .filter_map(|r| figures(r).map(|f| (r, f)))
            .min_by_key(|(_, f)| f.wall)
    }

    /// The row the ratio column divides by, and whether it is the fallback.
    fn ratio_base(&self) -> Option<(&Row, Figures, bool)> {
        if let Some((row, f)) = self.fastest(Kind::Spangc) {
            return Some((row, f, false));
        }
        let row = self
            .rows
            .iter()
            .find(|r| r.system.name == "box" && self.agrees(r))?;
        figures(row).map(|f| (row, f, true))
    }

    /// The table, ready to print.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let base = self.ratio_base();
        let ratio_header = base.as_ref().map_or("ratio".to_owned(), |(row, _, _)| {
            format!("x {}", row.system.name)
        });
        let _ = writeln!(
            out,
            "== {} (size {}: {}; runs per system: up to {}, round-robin) ==",
            self.workload.name(),
            self.size,
            self.workload.size_meaning(),
            self.rounds
        );
        let header = [
            "runs",
            "wall s",
            "cpu s",
            "peak MiB",
            "GCs",
            "pause ms",
            ratio_header.as_str(),
        ];
        out.push_str(&line("system", "status", header.map(String::from), "note"));
        out.push('\n');
        for row in self.rows {
            out.push_str(&self.render_row(row, base.as_ref().map(|(_, f, _)| f.wall)));
            out.push('\n');
        }
        match self.reference {
            None => out.push_str("checksum: no system produced a result\n"),
            Some(reference) => {
                let wrong: Vec<String> = self
                    .rows
                    .iter()
                    .filter(|r| !self.agrees(r))
                    .map(|r| {
                        let got: Vec<String> = r
                            .runs()
                            .iter()
                            .map(|x| x.outcome.checksum.to_string())
                            .collect();
                        format!("{} got {}", r.system.name, got.join(","))
                    })
                    .collect();
                if wrong.is_empty() {
                    let _ = writeln!(
                        out,
                        "checksum: {reference}, the same from every system that ran"
                    );
                } else {
                    let _ = writeln!(
                        out,
                        "checksum MISMATCH: reference {reference}; {}",
                        wrong.join("; ")
                    );
                }
            }
        }
        if let Some((row, _, true)) = &base {
            let _ = writeln!(
                out,
                "ratios are against {} because no spangc system has results yet",
                row.system.name
            );
        }
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }

    fn render_row(&self, row: &Row, base_wall: Option<Duration>) -> String {
        let name = row.system.name;
        let (runs, stopped) = match &row.state {
            RowState::Unavailable(status, reason) => {
                return line(name, status, ["-"; 7].map(String::from), reason);
            }
            RowState::Ran { runs, stopped } => (runs, stopped),
        };
        let mut notes = Vec::new();
        if self.workload == Workload::Threads {
            notes.push(row.system.threads.note().to_owned());
        }
        if let Some(run) = row.median_run() {
            let rss = &run.outcome.rss;
            if let (Some(end), Some(peak)) = (rss.last(), rss.iter().map(|s| s.rss_bytes).max()) {
                notes.push(format!(
                    "RSS at end {:.1} MiB, sampled peak {:.1} MiB",
                    end.rss_bytes as f64 / MIB,
                    peak as f64 / MIB
                ));
            }
        }
        match stopped {
            Some(Stopped::Slow(wall)) => notes.push(format!(
                "{:.0} s > {} s: not repeated",
                wall.as_secs_f64(),
                self.repeat_limit.as_secs()
            )),
            Some(Stopped::Error(RunError::Killed(after))) => {
                notes.push(format!(
                    "run {} killed after {} s",
                    runs.len() + 1,
                    after.as_secs()
                ));
            }
            Some(Stopped::Error(RunError::Failed(why) | RunError::BadOutput(why))) => {
                notes.push(format!("run {} failed: {why}", runs.len() + 1));
            }
            None => {}
        }
        let status = match (runs.is_empty(), stopped) {
            (true, Some(Stopped::Error(RunError::Killed(_)))) => "killed",
            (true, _) => "failed",
            (false, _) if !self.agrees(row) => "MISMATCH",
            (false, _) => "ok",
        };
        let note = notes.join("; ");
        let Some(f) = figures(row) else {
            let mut cells = ["-"; 7].map(String::from);
            cells[0] = "0".into();
            return line(name, status, cells, &note);
        };
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
        let cells = [
            runs.len().to_string(),
            format!("{:.3}", f.wall.as_secs_f64()),
            format!("{:.3}", f.cpu.as_secs_f64()),
            format!("{:.1}", f.max_rss_bytes as f64 / MIB),
            opt(f.gc_count.map(|c| c.to_string())),
            opt(f.max_pause_ns.map(|p| format!("{:.3}", p as f64 / 1e6))),
            opt(base_wall.map(|b| format!("{:.2}", f.wall.as_secs_f64() / b.as_secs_f64()))),
        ];
        line(name, status, cells, &note)
    }

    /// `summary <workload> best_peer=<name> spangc_vs_best_peer=<ratio>`:
    /// the fastest other collector, and the fastest spangc system's median
    /// wall time divided by its (below 1: spangc is faster); `none` and `n/a`
    /// when either side has no agreeing result.
    #[must_use]
    pub fn summary_line(&self) -> String {
        let peer = self.fastest(Kind::Collector);
        let spangc = self.fastest(Kind::Spangc);
        let ratio = match (&peer, &spangc) {
            (Some((_, p)), Some((_, s))) => {
                format!("{:.3}", s.wall.as_secs_f64() / p.wall.as_secs_f64())
            }
            _ => "n/a".to_owned(),
        };
        format!(
            "summary {} best_peer={} spangc_vs_best_peer={ratio}",
            self.workload.name(),
            peer.map_or("none", |(r, _)| r.system.name)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::GcStats;
    use crate::systems::find;

    fn run(wall_ms: u64, checksum: u64) -> Run {
        Run {
            wall: Duration::from_millis(wall_ms),
            cpu: Duration::from_millis(wall_ms),
            max_rss_bytes: 1 << 20,
            outcome: Outcome {
                checksum,
                gc: GcStats {
                    count: Some(3),
                    max_pause_ns: Some(wall_ms * 1000),
                },
                ..Outcome::default()
            },
        }
    }

    fn ran(name: &str, runs: Vec<Run>) -> Row {
        Row {
            system: find(name).unwrap(),
            state: RowState::Ran {
                runs,
                stopped: None,
            },
        }
    }

    fn table(rows: &[Row]) -> Table<'_> {
        Table::new(Workload::BinaryTrees, 6, 5, Duration::from_secs(60), rows)
    }

    #[test]
    fn medians_and_even_counts() {
        assert_eq!(median_u64(vec![]), None);
        assert_eq!(median_u64(vec![5, 1, 3]), Some(3));
        assert_eq!(median_u64(vec![4, 1, 3, 2]), Some(2));
        assert_eq!(median_u64(vec![u64::MAX, u64::MAX]), Some(u64::MAX));
    }

    #[test]
    fn without_spangc_ratios_fall_back_to_box_and_summary_says_na() {
        let rows = vec![
            Row {
                system: find("spangc-1").unwrap(),
                state: RowState::Unavailable("not installed", "no go".into()),
            },
            ran("box", vec![run(100, 9), run(120, 9), run(110, 9)]),
            ran("gc", vec![run(400, 9)]),
            ran("dumpster-sync", vec![run(300, 9)]),
        ];
        let t = table(&rows);
        let text = t.render();
        assert!(text.contains("x box"), "{text}");
        assert!(
            text.contains("because no spangc system has results yet"),
            "{text}"
        );
        assert!(text.contains("not installed"), "{text}");
        assert!(text.contains("checksum: 9"), "{text}");
        assert_eq!(
            t.summary_line(),
            "summary binary-trees best_peer=dumpster-sync spangc_vs_best_peer=n/a"
        );
    }

    #[test]
    fn with_spangc_the_ratio_and_summary_use_it() {
        let rows = vec![
            ran("spangc-1", vec![run(50, 9)]),
            ran("spangc-2", vec![run(40, 9)]),
            ran("box", vec![run(100, 9)]),
            ran("go", vec![run(80, 9)]),
        ];
        let t = table(&rows);
        assert!(t.render().contains("x spangc-2"));
        assert_eq!(
            t.summary_line(),
            "summary binary-trees best_peer=go spangc_vs_best_peer=0.500"
        );
    }

    #[test]
    fn a_wrong_checksum_is_flagged_and_never_the_best_peer() {
        let rows = vec![
            ran("box", vec![run(100, 9)]),
            ran("gc", vec![run(200, 9)]),
            ran("go", vec![run(10, 8)]),
            ran("boehm", vec![run(150, 9)]),
        ];
        let t = table(&rows);
        let text = t.render();
        assert!(text.contains("MISMATCH"), "{text}");
        assert!(text.contains("go got 8"), "{text}");
        assert!(t.summary_line().contains("best_peer=boehm"));
    }

    #[test]
    fn slow_and_failed_systems_say_so() {
        let rows = vec![
            Row {
                system: find("gc").unwrap(),
                state: RowState::Ran {
                    runs: vec![run(61_000, 9)],
                    stopped: Some(Stopped::Slow(Duration::from_secs(61))),
                },
            },
            Row {
                system: find("gc-arena").unwrap(),
                state: RowState::Ran {
                    runs: vec![],
                    stopped: Some(Stopped::Error(RunError::Failed(
                        "exit status 1: oops".into(),
                    ))),
                },
            },
        ];
        let text = table(&rows).render();
        assert!(text.contains("61 s > 60 s: not repeated"), "{text}");
        assert!(text.contains("run 1 failed: exit status 1: oops"), "{text}");
    }
}
