//! spangc-bench: the comparison harness of spangc against other memory
//! managers (issue 8). See `benches/README.md` for what it measures and how
//! to read the tables; `docs/PERFORMANCE.md` holds results.
//!
//! ```text
//! spangc-bench compare <workload>|all [--systems a,b,..] [--runs N] [--size N]
//!                                     [--repeat-limit SECS] [--timeout SECS]
//! spangc-bench run --system S --workload W [--size N]
//! spangc-bench list
//! ```
//!
//! `compare` is the parent: it runs each system in a child process (this
//! binary's `run` for Rust systems, the Go and C programs for theirs), round
//! robin, and prints a table per workload (module `harness`). `run` is the
//! child: it runs one workload on one Rust system in this process and prints
//! the result lines of `report`. Arguments are parsed by hand to keep the
//! harness's dependencies to the systems it measures.

mod harness;
mod report;
mod rss;
mod systems;
mod workloads;

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use harness::compare::{self, Options};
use systems::{Runner, SYSTEMS, System};
use workloads::Workload;

const USAGE: &str = "\
usage:
  spangc-bench compare <workload>|all [--systems a,b,..] [--runs N] [--size N]
                                      [--repeat-limit SECS] [--timeout SECS]
  spangc-bench run --system S --workload W [--size N]
  spangc-bench list

compare  runs every system (or those named) N times (default 5), round-robin,
         each run in its own process, and prints a table per workload;
         charts go to benches/out/. A run slower than --repeat-limit
         (default 60 s) is not repeated; one slower than --timeout (default
         600 s) is killed.
run      runs one workload on one Rust system in this process and prints its
         result lines (what compare does in each child).
list     lists the workloads and systems.";

/// A command-line mistake, shown with the usage text.
struct UsageError(String);

/// Takes `--flag value` pairs after the positional arguments.
struct Flags {
    pairs: Vec<(String, String)>,
}

impl Flags {
    fn parse(args: &[String], known: &[&str]) -> Result<Flags, UsageError> {
        let mut pairs = Vec::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if !known.contains(&flag.as_str()) {
                return Err(UsageError(format!("unknown argument `{flag}`")));
            }
            let value = it
                .next()
                .ok_or_else(|| UsageError(format!("`{flag}` needs a value")))?;
            pairs.push((flag.clone(), value.clone()));
        }
        Ok(Flags { pairs })
    }

    fn get(&self, flag: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(f, _)| f == flag)
            .map(|(_, v)| v.as_str())
    }

    fn number(&self, flag: &str) -> Result<Option<u64>, UsageError> {
        self.get(flag)
            .map(|v| {
                v.parse()
                    .map_err(|_| UsageError(format!("`{flag} {v}`: not a number")))
            })
            .transpose()
    }
}

fn workload(name: &str) -> Result<Workload, UsageError> {
    Workload::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Workload::ALL.iter().map(|w| w.name()).collect();
        UsageError(format!(
            "unknown workload `{name}` (one of: {})",
            names.join(", ")
        ))
    })
}

fn system(name: &str) -> Result<&'static System, UsageError> {
    systems::find(name).ok_or_else(|| {
        let names: Vec<&str> = SYSTEMS.iter().map(|s| s.name).collect();
        UsageError(format!(
            "unknown system `{name}` (one of: {})",
            names.join(", ")
        ))
    })
}

fn seconds(flags: &Flags, flag: &str, default: u64) -> Result<Duration, UsageError> {
    Ok(Duration::from_secs(flags.number(flag)?.unwrap_or(default)))
}

fn cmd_compare(args: &[String]) -> Result<ExitCode, UsageError> {
    let (target, rest) = args
        .split_first()
        .ok_or_else(|| UsageError("compare needs a workload or `all`".into()))?;
    let flags = Flags::parse(
        rest,
        &[
            "--systems",
            "--runs",
            "--size",
            "--repeat-limit",
            "--timeout",
        ],
    )?;
    let workloads = if target == "all" {
        Workload::ALL.to_vec()
    } else {
        vec![workload(target)?]
    };
    let systems = match flags.get("--systems") {
        None => SYSTEMS.iter().collect(),
        Some(list) => list.split(',').map(system).collect::<Result<Vec<_>, _>>()?,
    };
    let rounds = flags.number("--runs")?.unwrap_or(5);
    if rounds == 0 {
        return Err(UsageError("--runs must be at least 1".into()));
    }
    let opts = Options {
        workloads,
        systems,
        rounds: usize::try_from(rounds).unwrap_or(usize::MAX),
        size: flags.number("--size")?,
        repeat_limit: seconds(&flags, "--repeat-limit", 60)?,
        timeout: seconds(&flags, "--timeout", 600)?,
        out_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("out"),
    };
    match compare::compare(&opts) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("spangc-bench: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn cmd_run(args: &[String]) -> Result<ExitCode, UsageError> {
    let flags = Flags::parse(args, &["--system", "--workload", "--size"])?;
    let system = system(
        flags
            .get("--system")
            .ok_or_else(|| UsageError("run needs --system".into()))?,
    )?;
    let workload = workload(
        flags
            .get("--workload")
            .ok_or_else(|| UsageError("run needs --workload".into()))?,
    )?;
    let Runner::Rust(run) = system.runner else {
        return Err(UsageError(format!(
            "`{}` is not a Rust system of this binary",
            system.name
        )));
    };
    let size = flags.number("--size")?.unwrap_or(workload.default_size());
    let outcome = run(&workload.params(size));
    let mut stdout = io::stdout().lock();
    if let Err(e) = outcome.write_to(&mut stdout).and_then(|()| stdout.flush()) {
        eprintln!("spangc-bench: cannot print the result: {e}");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_list() {
    println!("workloads (default size; what size counts):");
    for w in Workload::ALL {
        println!(
            "  {:<14} {:>10}  {}",
            w.name(),
            w.default_size(),
            w.size_meaning()
        );
    }
    println!("systems:");
    for s in SYSTEMS {
        println!("  {:<16} {}", s.name, s.description);
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        Some((cmd, rest)) if cmd == "compare" => cmd_compare(rest),
        Some((cmd, rest)) if cmd == "run" => cmd_run(rest),
        Some((cmd, _)) if cmd == "list" => {
            cmd_list();
            Ok(ExitCode::SUCCESS)
        }
        Some((cmd, _)) if cmd == "--help" || cmd == "-h" || cmd == "help" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(UsageError("no command".into())),
    };
    result.unwrap_or_else(|UsageError(msg)| {
        eprintln!("spangc-bench: {msg}\n\n{USAGE}");
        ExitCode::from(2)
    })
}
