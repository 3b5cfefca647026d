//! `spangc-bench compare`: the interleaved comparison.
//!
//! For each workload, each system runs `rounds` times in its own child
//! process, round-robin: round 1 runs every system once, then round 2, and
//! so on, so that a slow drift of the machine (another engineer's build, a
//! thermal limit) spreads over all systems instead of landing on whichever
//! ran last. A system stops being run when a run fails, is killed at the
//! timeout, or takes longer than the repeat limit (60 s): one such run is
//! its whole result, which keeps `compare all` under 30 minutes even with
//! the crates that take minutes on binary-trees.
//!
//! Systems that cannot run (no `go`, no libgc, a failed build) get a row
//! that says so instead of failing the comparison.
//!
//! Output: the table and summary line on stdout, progress on stderr, and
//! SVG charts in `benches/out/` (see `plot`).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::child::{self, Measurement};
use super::plot::{self, Bar};
use super::table::{MIB, Row, RowState, Run, Stopped, Table, figures};
use crate::systems::external::{self, Availability};
use crate::systems::{Runner, System};
use crate::workloads::Workload;

/// What `compare` was asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    /// Workloads, in order.
    pub workloads: Vec<Workload>,
    /// Systems, in table order.
    pub systems: Vec<&'static System>,
    /// Runs per system (at most).
    pub rounds: usize,
    /// Size for every workload, instead of each one's default.
    pub size: Option<u64>,
    /// A run slower than this is not repeated.
    pub repeat_limit: Duration,
    /// A run is killed after this long.
    pub timeout: Duration,
    /// Where charts go.
    pub out_dir: PathBuf,
}

/// How to start one system's child.
enum Launch {
    /// This binary's `run` subcommand.
    Harness(PathBuf),
    /// A built Go or C program.
    Program(PathBuf),
}

/// Whether the environment variable `name` tunes a system's collector
/// (spangc's `SPANGC_*` overrides, Go's `GOGC`, `GOMEMLIMIT`, `GODEBUG`,
/// `GOMAXPROCS`, the Boehm collector's `GC_*`): the children run without
/// them, so every system runs at its defaults whatever the caller's shell
/// has set.
fn tunes_a_collector(name: &str) -> bool {
    ["SPANGC_", "GC_"].iter().any(|p| name.starts_with(p))
        || ["GOGC", "GOMEMLIMIT", "GODEBUG", "GOMAXPROCS"].contains(&name)
}

impl Launch {
    fn command(&self, system: &System, workload: Workload, size: u64) -> Command {
        let mut cmd = self.bare_command(system, workload, size);
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(tunes_a_collector) {
                cmd.env_remove(name);
            }
        }
        cmd
    }

    fn bare_command(&self, system: &System, workload: Workload, size: u64) -> Command {
        let size = size.to_string();
        match self {
            Launch::Harness(exe) => {
                let mut cmd = Command::new(exe);
                cmd.args([
                    "run",
                    "--system",
                    system.name,
                    "--workload",
                    workload.name(),
                ])
                .args(["--size", &size]);
                cmd
            }
            Launch::Program(path) => {
                let mut cmd = Command::new(path);
                cmd.args([workload.name(), &size]);
                cmd
            }
        }
    }
}

/// For each system: how to launch it, or why it cannot run.
fn prepare(systems: &[&'static System]) -> io::Result<Vec<Result<Launch, RowState>>> {
    let exe = std::env::current_exe()?;
    let mut go = None;
    let mut boehm = None;
    let external = |availability: &Availability| match availability {
        Availability::Ready(path) => Ok(Launch::Program(path.clone())),
        Availability::NotInstalled(why) => Err(RowState::Unavailable("not installed", why.clone())),
        Availability::BuildFailed(why) => Err(RowState::Unavailable("build failed", why.clone())),
    };
    Ok(systems
        .iter()
        .map(|s| match s.runner {
            Runner::Rust(_) => Ok(Launch::Harness(exe.clone())),
            Runner::Go => external(go.get_or_insert_with(external::build_go)),
            Runner::Boehm => external(boehm.get_or_insert_with(external::build_boehm)),
        })
        .collect())
}

fn write_charts(out_dir: &Path, workload: Workload, size: u64, rows: &[Row]) {
    let mut written = Vec::new();
    let mut failed = Vec::new();
    let mut emit = |path: PathBuf, result: plot::PlotResult| match result {
        Ok(()) => written.push(path),
        Err(e) => failed.push(format!("{}: {e}", path.display())),
    };
    let bars: Vec<Bar> = rows
        .iter()
        .filter_map(|r| {
            figures(r).map(|f| Bar {
                name: r.system.name,
                wall_s: f.wall.as_secs_f64(),
                rss_mib: f.max_rss_bytes as f64 / MIB,
            })
        })
        .collect();
    if !bars.is_empty() {
        let path = out_dir.join(format!("{}.svg", workload.name()));
        let title = format!("{} (size {size})", workload.name());
        emit(path.clone(), plot::workload_bars(&path, &title, &bars));
    }
    let rss: Vec<(&str, &[_])> = rows
        .iter()
        .filter_map(|r| {
            r.median_run()
                .map(|run| (r.system.name, &run.outcome.rss[..]))
        })
        .filter(|(_, samples)| !samples.is_empty())
        .collect();
    if !rss.is_empty() {
        let path = out_dir.join(format!("{}-rss.svg", workload.name()));
        let title = format!("{}: RSS over time (median runs)", workload.name());
        emit(path.clone(), plot::rss_overlay(&path, &title, &rss));
    }
    for row in rows {
        let Some(run) = row.median_run() else {
            continue;
        };
        let name = row.system.name;
        if !run.outcome.rss.is_empty() {
            let path = out_dir.join(format!("{}-rss-{name}.svg", workload.name()));
            let title = format!("{}: RSS over time, {name} (median run)", workload.name());
            emit(
                path.clone(),
                plot::rss_over_time(&path, &title, &run.outcome.rss),
            );
        }
        if !run.outcome.heap_cycles.is_empty() {
            let path = out_dir.join(format!("{}-heap-{name}.svg", workload.name()));
            let title = format!(
                "{}: heap per GC cycle, {name} (median run)",
                workload.name()
            );
            emit(
                path.clone(),
                plot::heap_cycles(&path, &title, &run.outcome.heap_cycles),
            );
        }
    }
    for path in written {
        eprintln!("wrote {}", path.display());
    }
    for failure in failed {
        eprintln!("chart not written: {failure}");
    }
}

fn record(state: &mut RowState, m: Measurement, repeat_limit: Duration) {
    let RowState::Ran { runs, stopped } = state else {
        return;
    };
    match m.result {
        Ok(outcome) => {
            runs.push(Run {
                wall: m.wall,
                cpu: m.cpu,
                max_rss_bytes: m.max_rss_bytes,
                outcome,
            });
            if m.wall > repeat_limit {
                *stopped = Some(Stopped::Slow(m.wall));
            }
        }
        Err(e) => *stopped = Some(Stopped::Error(e)),
    }
}

/// Runs the comparison and prints its tables.
///
/// # Errors
/// A child could not be started or waited for, or the output directory
/// cannot be created.
pub fn compare(opts: &Options) -> io::Result<()> {
    std::fs::create_dir_all(&opts.out_dir)?;
    let launches = prepare(&opts.systems)?;
    for &workload in &opts.workloads {
        let size = opts.size.unwrap_or(workload.default_size());
        let mut rows: Vec<Row> = opts
            .systems
            .iter()
            .zip(&launches)
            .map(|(&system, launch)| Row {
                system,
                state: match launch {
                    Ok(_) => RowState::Ran {
                        runs: Vec::new(),
                        stopped: None,
                    },
                    Err(state) => state.clone(),
                },
            })
            .collect();
        for round in 1..=opts.rounds {
            for (row, launch) in rows.iter_mut().zip(&launches) {
                let (Ok(launch), RowState::Ran { stopped: None, .. }) = (launch, &row.state) else {
                    continue;
                };
                eprint!(
                    "[{} size {size}, round {round}/{}] {:<16}",
                    workload.name(),
                    opts.rounds,
                    row.system.name
                );
                let m = child::measure(launch.command(row.system, workload, size), opts.timeout)?;
                match &m.result {
                    Ok(_) => eprintln!("{:>9.3} s", m.wall.as_secs_f64()),
                    Err(e) => eprintln!("{:>9.3} s  {e:?}", m.wall.as_secs_f64()),
                }
                record(&mut row.state, m, opts.repeat_limit);
            }
        }
        let table = Table::new(workload, size, opts.rounds, opts.repeat_limit, &rows);
        println!("{}", table.render());
        write_charts(&opts.out_dir, workload, size, &rows);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::tunes_a_collector;

    #[test]
    fn collector_tunings_are_recognised_and_nothing_else() {
        for name in [
            "SPANGC_GC_PERCENT",
            "SPANGC_MARK_THREADS",
            "GOGC",
            "GOMEMLIMIT",
        ] {
            assert!(tunes_a_collector(name), "{name}");
        }
        for name in ["GC_INITIAL_HEAP_SIZE", "GODEBUG", "GOMAXPROCS"] {
            assert!(tunes_a_collector(name), "{name}");
        }
        for name in ["PATH", "HOME", "GOPATH", "GOCACHE", "RUST_LOG", "XGOGC"] {
            assert!(!tunes_a_collector(name), "{name}");
        }
    }
}
