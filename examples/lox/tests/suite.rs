//! The Lox test corpus: runs the built `lox` binary on every `.lox` file
//! under `tests/lox/` and checks it against the expectations written in the
//! file, in the style of the *Crafting Interpreters* test suite:
//!
//! * `// expect: TEXT`: the next line of stdout is TEXT.
//! * `// Error at 'x': MESSAGE` (or `// Error: ...`, `// Error at end: ...`):
//!   a compile error reported on this comment's line, i.e. stderr has
//!   `[line N] Error at 'x': MESSAGE`. `// [line N] Error ...` names the line
//!   explicitly. Any compile error means exit code 65 and no stdout.
//! * `// expect runtime error: MESSAGE`: stderr starts with MESSAGE and then
//!   a trace line `[line N] in ...` for this comment's line; exit code 70.
//!   `// trace: LINE` comments, if present, give the whole trace exactly.
//!
//! Every file runs twice, plainly and with `--gc-stress`; both must pass.
//! All failures are collected and reported together, each with a diff.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a test file says should happen.
#[derive(Debug, Default)]
struct Expectation {
    stdout: Vec<String>,
    compile_errors: Vec<String>,
    runtime_error: Option<(String, u32)>,
    trace: Vec<String>,
}

impl Expectation {
    fn parse(source: &str) -> Expectation {
        let mut expected = Expectation::default();
        for (index, line) in source.lines().enumerate() {
            let line_number = u32::try_from(index + 1).expect("test files are short");
            let after = |marker: &str| line.find(marker).map(|at| &line[at + marker.len()..]);
            if let Some(text) = after("// expect:") {
                let text = text.strip_prefix(' ').unwrap_or(text);
                expected.stdout.push(text.to_owned());
            } else if let Some(message) = after("// expect runtime error: ") {
                expected.runtime_error = Some((message.to_owned(), line_number));
            } else if let Some(trace) = after("// trace: ") {
                expected.trace.push(trace.to_owned());
            } else if let Some(error) = after("// Error") {
                expected
                    .compile_errors
                    .push(format!("[line {line_number}] Error{error}"));
            } else if let Some(error) = after("// [line ") {
                expected.compile_errors.push(format!("[line {error}"));
            }
        }
        expected
    }

    fn exit_code(&self) -> i32 {
        if !self.compile_errors.is_empty() {
            65
        } else if self.runtime_error.is_some() {
            70
        } else {
            0
        }
    }
}

/// Every `.lox` file under `dir`, sorted.
fn lox_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("corpus directory is readable") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "lox") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("lox")
}

/// Lines of `actual` against `expected`, marking each mismatch.
fn diff(label: &str, expected: &[String], actual: &[String]) -> Option<String> {
    if expected == actual {
        return None;
    }
    let mut out = format!("  {label}:\n");
    for i in 0..expected.len().max(actual.len()) {
        let e = expected.get(i).map_or("<none>", String::as_str);
        let a = actual.get(i).map_or("<none>", String::as_str);
        if e == a {
            let _ = writeln!(out, "      {e}");
        } else {
            let _ = writeln!(out, "    - {e}\n    + {a}");
        }
    }
    Some(out)
}

/// Runs one file; returns a description of every way it failed.
fn check_file(path: &Path, extra_args: &[&str]) -> Option<String> {
    let source = std::fs::read_to_string(path).expect("test file is readable");
    let expected = Expectation::parse(&source);
    let output = Command::new(env!("CARGO_BIN_EXE_lox"))
        .args(extra_args)
        .arg(path)
        .output()
        .expect("lox runs");
    let stdout: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let stderr: Vec<String> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_owned)
        .collect();

    let mut problems = String::new();
    let code = output.status.code().unwrap_or(-1);
    if code != expected.exit_code() {
        let _ = writeln!(
            problems,
            "  exit code: expected {}, got {code}",
            expected.exit_code()
        );
    }
    if let Some(d) = diff("stdout", &expected.stdout, &stdout) {
        problems.push_str(&d);
    }
    let expected_stderr = if let Some((message, line)) = &expected.runtime_error {
        let mut lines = vec![message.clone()];
        if expected.trace.is_empty() {
            // Only the innermost frame's line is pinned; keep the rest as is.
            let prefix = format!("[line {line}] in ");
            match stderr.get(1) {
                Some(first) if first.starts_with(&prefix) => {
                    lines.extend(stderr.iter().skip(1).cloned());
                }
                _ => lines.push(format!("{prefix}...")),
            }
        } else {
            lines.extend(expected.trace.iter().cloned());
        }
        lines
    } else {
        expected.compile_errors.clone()
    };
    if let Some(d) = diff("stderr", &expected_stderr, &stderr) {
        problems.push_str(&d);
    }
    (!problems.is_empty()).then(|| format!("{}\n{problems}", path.display()))
}

fn run_corpus(extra_args: &[&str]) {
    let files = lox_files(&corpus_dir());
    assert!(files.len() > 150, "corpus has only {} files", files.len());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| check_file(path, extra_args))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} corpus files failed with args {extra_args:?}:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus() {
    run_corpus(&[]);
}

/// The same corpus collecting at every safepoint (after every instruction
/// that may allocate, loop, call or return): the test that finds rooting
/// bugs, such as a `Trace` impl that misses a field (then most of
/// `gc/`, `class/` and `closure/` fail). Run it with `SPANGC_VERIFY=on` in
/// the environment to have spangc also check the heap after each
/// collection and poison freed memory (about four times slower).
#[test]
fn corpus_under_gc_stress() {
    run_corpus(&["--gc-stress"]);
}

#[test]
fn expectation_parser() {
    let expected = Expectation::parse(
        "print 1; // expect: 1\n\
         print \"\"; // expect: \n\
         x; // Error at 'x': Bad.\n\
         // [line 9] Error at end: Worse.\n\
         y(); // expect runtime error: Nope.\n\
         // trace: [line 5] in script\n",
    );
    assert_eq!(expected.stdout, vec!["1", ""]);
    assert_eq!(
        expected.compile_errors,
        vec![
            "[line 3] Error at 'x': Bad.",
            "[line 9] Error at end: Worse."
        ]
    );
    assert_eq!(expected.runtime_error, Some(("Nope.".to_owned(), 5)));
    assert_eq!(expected.trace, vec!["[line 5] in script"]);
    assert_eq!(expected.exit_code(), 65);
}
