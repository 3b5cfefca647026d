//! Building the Go and C/Boehm programs, and the command that runs each.
//!
//! The sources live in `benches/go` and `benches/c`; `compare` builds them
//! into `<target>/<profile>/spangc-bench-ext/` (beside the harness binary)
//! before the first run, every time, which costs well under a second when
//! nothing changed (Go caches its builds; the C program is three small
//! files). A missing toolchain is not an error: the table reports the system
//! as "not installed" and says what to install. A build that fails for
//! another reason is reported as "build failed" with the compiler's first
//! error line.
//!
//! Go is built with `GOTOOLCHAIN=local` and `GOPROXY=off` (the program has
//! no dependencies, and a build must never try the network) and with its
//! build cache in the output directory, so that it builds the same in an
//! environment without `$HOME` (a CI job).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Whether an external program can run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    /// Built; the path of the binary.
    Ready(PathBuf),
    /// Its toolchain or library is missing; says which and how to get it.
    NotInstalled(String),
    /// The toolchain is there but the build failed; the first error line.
    BuildFailed(String),
}

/// Where this package's sources are.
fn source_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// Where built programs go: beside the harness binary.
fn output_dir() -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .ok_or_else(|| io::Error::other("harness binary has no parent directory"))?
        .join("spangc-bench-ext");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Runs a build command and classifies the result. `missing` maps the
/// compiler's error text to a "not installed" reason when the failure is a
/// missing library.
fn build(
    mut cmd: Command,
    binary: PathBuf,
    tool: &str,
    install: &str,
    missing: impl Fn(&str) -> Option<String>,
) -> Availability {
    let output: Output = match cmd.output() {
        Ok(output) => output,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Availability::NotInstalled(format!("no `{tool}` ({install})"));
        }
        Err(e) => return Availability::BuildFailed(format!("cannot run `{tool}`: {e}")),
    };
    if output.status.success() {
        return Availability::Ready(binary);
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if let Some(reason) = missing(&stderr) {
        return Availability::NotInstalled(reason);
    }
    let first = stderr
        .lines()
        .find(|l| l.contains("error"))
        .or_else(|| stderr.lines().next())
        .unwrap_or("no output");
    Availability::BuildFailed(first.trim().to_owned())
}

/// Builds the Go program.
#[must_use]
pub fn build_go() -> Availability {
    let dir = match output_dir() {
        Ok(dir) => dir,
        Err(e) => return Availability::BuildFailed(e.to_string()),
    };
    let out = dir.join("spangc-bench-go");
    let mut cmd = Command::new("go");
    cmd.arg("build")
        .arg("-o")
        .arg(&out)
        .arg(".")
        .current_dir(source_dir("go"))
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOCACHE", dir.join("go-cache"));
    build(cmd, out, "go", "apt-get install golang-go", |_| None)
}

/// Builds the C program against the Boehm collector.
#[must_use]
pub fn build_boehm() -> Availability {
    let out = match output_dir() {
        Ok(dir) => dir.join("spangc-bench-boehm"),
        Err(e) => return Availability::BuildFailed(e.to_string()),
    };
    let mut cmd = Command::new("cc");
    cmd.args(["-O2", "-o"])
        .arg(&out)
        .args(["main.c", "trees.c", "workloads.c", "-lgc", "-lpthread"])
        .current_dir(source_dir("c"));
    build(cmd, out, "cc", "apt-get install gcc", |stderr| {
        (stderr.contains("gc.h") || stderr.contains("-lgc"))
            .then(|| "no Boehm GC library (apt-get install libgc-dev)".to_owned())
    })
}

#[cfg(test)]
mod tests {
    //! The Go and C programs against the same closed-form checksums as the
    //! Rust systems, at small sizes. Skipped (with a note) where the
    //! toolchain is missing, as on a CI machine without Go or libgc.

    use std::process::Command;
    use std::thread;

    use super::{Availability, build_boehm, build_go};
    use crate::report::Outcome;
    use crate::workloads::{Workload, expected_checksum};

    /// Sizes that exercise every code path (the churn ring wraps, the
    /// threads ring wraps) in well under a second, plus grow-shrink's
    /// fixed two-second idle phase.
    const SMALL: [(Workload, u64); 5] = [
        (Workload::BinaryTrees, 8),
        (Workload::GcBench, 6),
        (Workload::Churn, 250_000),
        (Workload::Threads, 5_000),
        (Workload::GrowShrink, 2),
    ];

    fn check_program(availability: Availability) {
        let binary = match availability {
            Availability::Ready(path) => path,
            Availability::NotInstalled(why) => {
                eprintln!("skipped: {why}");
                return;
            }
            Availability::BuildFailed(why) => panic!("build failed: {why}"),
        };
        for (workload, size) in SMALL {
            let output = Command::new(&binary)
                .args([workload.name(), &size.to_string()])
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{} {size}: {output:?}",
                workload.name()
            );
            let out = Outcome::parse(&String::from_utf8_lossy(&output.stdout)).unwrap();
            assert_eq!(
                out.checksum,
                expected_checksum(&workload.params(size)),
                "{} on {} {size}",
                binary.display(),
                workload.name()
            );
            assert!(
                out.gc.count.is_some(),
                "no GC count from {}",
                binary.display()
            );
            assert_eq!(workload == Workload::GrowShrink, !out.rss.is_empty());
        }
    }

    #[test]
    fn go_and_boehm_programs_agree_with_the_rust_drivers() {
        let go = thread::spawn(|| check_program(build_go()));
        let boehm = thread::spawn(|| check_program(build_boehm()));
        go.join().unwrap();
        boehm.join().unwrap();
    }
}
