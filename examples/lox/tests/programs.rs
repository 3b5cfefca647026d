//! The bundled programs (`programs/*.lox`) at small sizes, checked against
//! known checksums, and the command-line behaviour of the `lox` binary
//! (exit codes, the REPL, the flags).
//!
//! Each bundled program sets its size on a line ending in `// size`; the
//! test replaces that line so that a debug build finishes quickly. Every
//! program ends by printing `elapsed` and a number, which is not checked.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn lox() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lox"))
}

fn lines(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Writes `program` with its size line replaced by `size_line` to a
/// scratch file named after `label` (unique per test, as tests run in
/// parallel) and returns the path.
fn resized(label: &str, program: &str, size_line: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("programs")
        .join(program);
    let source = std::fs::read_to_string(&path).expect("bundled program is readable");
    let mut replaced = false;
    let resized: String = source
        .lines()
        .map(|line| {
            if !replaced && line.ends_with("// size") {
                replaced = true;
                size_line
            } else {
                line
            }
        })
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(replaced, "{program} has no `// size` line");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{label}_{program}"));
    std::fs::write(&out, resized).expect("scratch file is writable");
    out
}

fn check_program(program: &str, size_line: &str, expected: &[&str]) {
    for extra in [&[][..], &["--gc-stress"][..]] {
        let output = lox()
            .args(extra)
            .arg(resized("check", program, size_line))
            .output()
            .expect("lox runs");
        assert!(
            output.status.success(),
            "{program} {extra:?} failed: {output:?}"
        );
        let stdout = lines(&output.stdout);
        let (elapsed, checked) = stdout.split_last().expect("program printed something");
        assert_eq!(checked, expected, "{program} {extra:?}");
        assert!(
            elapsed.parse::<f64>().is_ok(),
            "{program}: elapsed is {elapsed:?}"
        );
    }
}

#[test]
fn binary_trees() {
    check_program(
        "binary_trees.lox",
        "var maxDepth = 6; // size",
        &[
            "stretch tree check",
            "255",
            "trees of depth",
            "4",
            "1984",
            "trees of depth",
            "6",
            "2032",
            "long lived tree check",
            "127",
            "checksum",
            "4398",
            "elapsed",
        ],
    );
}

#[test]
fn fib() {
    check_program(
        "fib.lox",
        "var n = 20; // size",
        &["checksum", "6765", "elapsed"],
    );
}

#[test]
fn method_call() {
    check_program(
        "method_call.lox",
        "var n = 30; // size",
        &[
            "toggle trues",
            "150",
            "nth toggle trues",
            "150",
            "checksum",
            "300",
            "elapsed",
        ],
    );
}

#[test]
fn instantiation() {
    check_program(
        "instantiation.lox",
        "var n = 1000; // size",
        &["checksum", "1000", "elapsed"],
    );
}

#[test]
fn strings() {
    check_program(
        "strings.lox",
        "var size = 20; // size",
        &[
            "rebuilt strings",
            "210",
            "rebuild matches",
            "40",
            "distinct strings",
            "400",
            "checksum",
            "440",
            "elapsed",
        ],
    );
}

#[test]
fn closures() {
    check_program(
        "closures.lox",
        "var n = 1000; // size",
        &["checksum", "1000", "elapsed"],
    );
}

fn run_stdin(args: &[&str], input: &str) -> Output {
    let mut child = lox()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lox starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("lox reads stdin");
    child.wait_with_output().expect("lox exits")
}

#[test]
fn repl_keeps_globals_and_survives_errors() {
    let output = run_stdin(
        &[],
        "var a = 1;\nprint a + 1;\nprint nope;\nprint a +;\nfun f() { return a * 10; }\nprint f();\n",
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(lines(&output.stdout), vec!["> > 2", "> > > > 10", "> "]);
    assert_eq!(
        lines(&output.stderr),
        vec![
            "Undefined variable 'nope'.",
            "[line 1] in script",
            "[line 1] Error at ';': Expect expression.",
        ]
    );
}

#[test]
fn usage_error_exits_64() {
    for args in [
        &["--bogus"][..],
        &["a.lox", "b.lox"],
        &["--gc-percent"],
        &["--gc-percent", "x"],
    ] {
        let output = lox().args(args).output().expect("lox runs");
        assert_eq!(output.status.code(), Some(64), "{args:?}");
        let stderr = lines(&output.stderr);
        assert!(
            stderr.last().is_some_and(|l| l.starts_with("Usage: lox")),
            "{stderr:?}"
        );
    }
}

#[test]
fn missing_file_exits_74() {
    let output = lox()
        .arg("/nonexistent/script.lox")
        .output()
        .expect("lox runs");
    assert_eq!(output.status.code(), Some(74));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("Could not read file \"/nonexistent/script.lox\""),
        "{stderr}"
    );
}

#[test]
fn gc_flags_reach_the_heap() {
    let script = resized("gc_flags", "fib.lox", "var n = 15; // size");
    let stats = |args: &[&str]| {
        let output = lox().args(args).arg(&script).output().expect("lox runs");
        assert!(output.status.success(), "{output:?}");
        lines(&output.stderr)
    };
    let collections = |stderr: &[String]| -> u64 {
        let line = stderr
            .iter()
            .find(|l| l.starts_with("gc-stats: collections = "))
            .expect("stats list collections");
        line["gc-stats: collections = ".len()..]
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a count")
    };
    let plain = stats(&["--gc-stats"]);
    assert!(
        plain
            .iter()
            .any(|l| l.starts_with("gc-stats: objects_allocated = "))
    );
    assert_eq!(collections(&plain), 0, "a small script never fills 1 MiB");
    assert!(collections(&stats(&["--gc-stats", "--gc-stress"])) > 1000);
    assert_eq!(
        collections(&stats(&[
            "--gc-stats",
            "--gc-stress",
            "--gc-percent",
            "off"
        ])),
        collections(&stats(&["--gc-stats", "--gc-stress", "--gc-percent", "50"])),
    );
    assert!(stats(&[]).is_empty(), "no stats without --gc-stats");
}

#[test]
fn disassemble_prints_bytecode_then_runs() {
    let output = run_stdin(&["--disassemble"], "print 1 + 2;\n");
    let stdout = lines(&output.stdout);
    assert_eq!(
        stdout,
        vec![
            "> == <script> ==",
            "0000    1 OP_CONSTANT         0 '1'",
            "0002    | OP_CONSTANT         1 '2'",
            "0004    | OP_ADD",
            "0005    | OP_PRINT",
            "0006    2 OP_NIL",
            "0007    | OP_RETURN",
            "3",
            "> ",
        ]
    );
}
