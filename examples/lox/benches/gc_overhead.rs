//! What garbage collection costs the bundled programs: each runs with the
//! collector on (spangc's default pacing, `gc_percent` 100) and with
//! automatic collection off (`--gc-percent off`: the heap only grows), and
//! the medians of the wall-clock times are printed with their ratio.
//!
//! ```sh
//! cargo bench -p lox --bench gc_overhead                      # every program, 5 runs each
//! cargo bench -p lox --bench gc_overhead -- --runs 9 binary_trees
//! ```
//!
//! Times are measured here, from spawning `lox` to its exit, so they include
//! start-up, the whole run and the teardown of the heap; GC off pays for
//! the kernel handing out fresh pages for everything ever allocated, GC on
//! for marking and sweeping. The two settings alternate within each round,
//! so that load from other processes on a shared machine falls on both
//! alike. Collections and total pause come from `--gc-stats` (which prints
//! only at exit and costs nothing measurable).
//!
//! The target (issue 7): GC on / GC off at most 1.2 on binary_trees.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// One run: wall time and the `--gc-stats` figures.
struct Run {
    wall: Duration,
    collections: u64,
    pause_ms: f64,
}

fn main() {
    let mut runs = 5;
    let mut only: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            // `cargo bench` passes this to every bench target.
            "--bench" => {}
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage("--runs takes a positive number"));
            }
            name if !name.starts_with('-') => only.push(name.trim_end_matches(".lox").to_owned()),
            other => usage(&format!("unknown option {other}")),
        }
    }

    let programs = programs(&only);
    println!(
        "lox GC overhead: median wall time of {runs} runs each (GC on = default pacing, GC off = --gc-percent off)"
    );
    println!(
        "{:<15} {:>10} {:>11} {:>8} {:>12} {:>15}",
        "program", "GC on (s)", "GC off (s)", "on/off", "collections", "GC pause (ms)"
    );
    for path in programs {
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        let mut on = Vec::with_capacity(runs);
        let mut off = Vec::with_capacity(runs);
        for _ in 0..runs {
            on.push(run(&path, &[]));
            off.push(run(&path, &["--gc-percent", "off"]));
        }
        let (on_wall, off_wall) = (median_wall(&on), median_wall(&off));
        let last = on.last().expect("at least one run");
        println!(
            "{:<15} {:>10.3} {:>11.3} {:>8.2} {:>12} {:>15.1}",
            name,
            on_wall.as_secs_f64(),
            off_wall.as_secs_f64(),
            on_wall.as_secs_f64() / off_wall.as_secs_f64(),
            last.collections,
            last.pause_ms,
        );
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("gc_overhead: {problem}");
    eprintln!("usage: cargo bench -p lox --bench gc_overhead -- [--runs N] [PROGRAM...]");
    std::process::exit(2)
}

/// The bundled programs, or those named in `only`, sorted.
fn programs(only: &[String]) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| usage(&format!("cannot list {}: {e}", dir.display())))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "lox"))
        .filter(|p| {
            only.is_empty()
                || only
                    .iter()
                    .any(|name| p.file_stem().is_some_and(|s| s == name.as_str()))
        })
        .collect();
    found.sort();
    if found.is_empty() {
        usage(&format!("no program matches {only:?} in {}", dir.display()));
    }
    found
}

/// Runs `lox --gc-stats ARGS PROGRAM` once.
fn run(program: &Path, args: &[&str]) -> Run {
    let start = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_lox"))
        .arg("--gc-stats")
        .args(args)
        .arg(program)
        .output()
        .expect("lox runs");
    let wall = start.elapsed();
    assert!(
        output.status.success(),
        "{} {args:?} failed: {}",
        program.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    // "gc: N collections, pause total X ms, ..."
    let stderr = String::from_utf8_lossy(&output.stderr);
    let gc = stderr
        .lines()
        .find(|l| l.starts_with("gc: "))
        .expect("--gc-stats prints a gc line");
    let field = |after: &str| -> f64 {
        let at = gc.find(after).expect("gc line format") + after.len();
        gc[at..]
            .split([' ', ','])
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a number")
    };
    Run {
        wall,
        collections: field("gc: ") as u64,
        pause_ms: field("pause total "),
    }
}

fn median_wall(runs: &[Run]) -> Duration {
    let mut walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
    walls.sort();
    walls[walls.len() / 2]
}
