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

/// A reader that went away (`lox script | head`) loses the diagnostics,
/// never the exit code: a runtime error still exits 70 with stderr
/// closed, and a compile error 65 (Rust's `eprintln!` would panic there
/// and exit 101).
#[test]
fn closed_stderr_keeps_the_exit_code() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    // Some work first, so the pipe's reader is gone before anything is
    // written; then a deep recursion, whose trace is long.
    let runtime = dir.join("closed_stderr_runtime.lox");
    std::fs::write(
        &runtime,
        "var n = 0; while (n < 200000) n = n + 1;\nfun f() { f(); }\nf();\n",
    )
    .unwrap();
    let compile = dir.join("closed_stderr_compile.lox");
    std::fs::write(
        &compile,
        "var n = 0; while (n < 200000) n = n + 1;\nprint 1 +;\n",
    )
    .unwrap();
    for (script, code) in [(&runtime, 70), (&compile, 65)] {
        let mut child = lox()
            .arg(script)
            .arg("--gc-stats")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("lox runs");
        drop(child.stderr.take());
        let status = child.wait().expect("lox exits");
        assert_eq!(status.code(), Some(code), "{}", script.display());
    }
}

/// The figures of a `--gc-stats` report (spangc's `Stats` display), as
/// the tests need them.
#[derive(Debug)]
struct GcStats {
    collections: u64,
    live_mib: f64,
    in_use_mib: f64,
    allocated_mib: f64,
    live_objects_at_last_mark: u64,
}

impl GcStats {
    /// Parses the report out of stderr; panics (showing stderr) if absent.
    fn parse(stderr: &[String]) -> GcStats {
        let line = |prefix: &str| {
            stderr
                .iter()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no `{prefix}` line in {stderr:#?}"))
        };
        // The number right after `label` (e.g. "live 1.5 MiB").
        let after = |line: &str, label: &str| -> f64 {
            let at = line
                .find(label)
                .unwrap_or_else(|| panic!("{label} in {line}"));
            line[at + label.len()..]
                .split_whitespace()
                .next()
                .and_then(|n| n.trim_start_matches('(').parse().ok())
                .unwrap_or_else(|| panic!("a number after {label} in {line}"))
        };
        // The number right before `label` (e.g. "7 collections").
        let before = |line: &str, label: &str| -> f64 {
            let at = line
                .find(label)
                .unwrap_or_else(|| panic!("{label} in {line}"));
            line[..at]
                .split_whitespace()
                .last()
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("a number before {label} in {line}"))
        };
        let gc = line("gc: ");
        let heap = line("heap: ");
        let objects = line("objects: ");
        GcStats {
            collections: before(gc, " collections") as u64,
            live_mib: after(heap, "live "),
            in_use_mib: after(heap, "in use "),
            allocated_mib: after(objects, "allocated "),
            live_objects_at_last_mark: before(objects, " live at last mark") as u64,
        }
    }
}

/// Runs `script` with `args`; checks success and returns stdout and stderr.
fn run_ok(script: &Path, args: &[&str]) -> (Vec<String>, Vec<String>) {
    let output = lox().args(args).arg(script).output().expect("lox runs");
    assert!(output.status.success(), "{args:?} {script:?}: {output:?}");
    (lines(&output.stdout), lines(&output.stderr))
}

#[test]
fn gc_flags_reach_the_heap() {
    let script = resized("gc_flags", "fib.lox", "var n = 15; // size");
    let collections = |args: &[&str]| GcStats::parse(&run_ok(&script, args).1).collections;
    assert_eq!(
        collections(&["--gc-stats"]),
        0,
        "a script that allocates a few objects never reaches the first goal"
    );
    // Under stress every safepoint (after every instruction) collects.
    let stressed = collections(&["--gc-stats", "--gc-stress"]);
    assert!(stressed > 1000, "{stressed} collections");
    assert_eq!(
        collections(&["--gc-stats", "--gc-stress", "--gc-percent", "off"]),
        stressed
    );
    assert_eq!(
        collections(&["--gc-stats", "--gc-stress", "--gc-percent", "50"]),
        stressed
    );
    assert!(
        run_ok(&script, &[]).1.is_empty(),
        "no stats without --gc-stats"
    );
    // Out of spangc's range (0..=1000000): rejected like a usage error.
    let output = lox()
        .args(["--gc-percent", "2000000"])
        .arg(&script)
        .output()
        .expect("lox runs");
    assert_eq!(output.status.code(), Some(64), "{output:?}");
}

/// The GC-heavy programs at a size that takes several collections with a
/// small heap goal (`--gc-percent 10`) still compute the right checksums:
/// everything they use survives, and the garbage really is collected.
#[test]
fn gc_heavy_programs_collect_and_stay_correct() {
    let cases = [
        (
            "binary_trees.lox",
            "var maxDepth = 8; // size",
            &[
                "1023", "4", "7936", "6", "8128", "8", "8176", "511", "25774",
            ][..],
        ),
        ("closures.lox", "var n = 20000; // size", &["20000"][..]),
    ];
    for (program, size_line, numbers) in cases {
        let script = resized("gc_heavy", program, size_line);
        let (stdout, stderr) = run_ok(&script, &["--gc-percent", "10", "--gc-stats"]);
        let printed: Vec<&str> = stdout
            .iter()
            .map(String::as_str)
            .filter(|l| l.parse::<f64>().is_ok())
            .collect();
        // Every number the program prints but the elapsed time.
        assert_eq!(&printed[..printed.len() - 1], numbers, "{program}");
        let stats = GcStats::parse(&stderr);
        assert!(stats.collections > 0, "{program}: {stats:?}");
        assert!(
            stats.allocated_mib > 4.0 * stats.in_use_mib,
            "{program}: garbage was freed and reused: {stats:?}"
        );
    }
}

/// Memory stays bounded: eight times the garbage (complete binary trees of
/// depth 6, built and dropped in a loop) leaves the heap the same size.
#[test]
fn heap_stays_bounded_when_garbage_grows() {
    let program = |rounds: u32| {
        let source = format!(
            "class Node {{ init(l, r) {{ this.l = l; this.r = r; }} }}\n\
             fun tree(d) {{ if (d == 0) return Node(nil, nil); return Node(tree(d - 1), tree(d - 1)); }}\n\
             var kept = tree(4);\n\
             for (var i = 0; i < {rounds}; i = i + 1) tree(6);\n\
             print kept.l.l.l.l.l;\n"
        );
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bounded_{rounds}.lox"));
        std::fs::write(&path, source).expect("scratch file is writable");
        let (stdout, stderr) = run_ok(&path, &["--gc-stats"]);
        assert_eq!(stdout, ["nil"]);
        GcStats::parse(&stderr)
    };
    let small = program(1000);
    let large = program(8000);
    assert!(small.collections > 0, "{small:?}");
    assert!(large.allocated_mib > 80.0, "{large:?}");
    assert!(large.collections > small.collections, "{small:?} {large:?}");
    // Both heaps are held near the goal (4 MiB at the default gc_percent of
    // 100, plus the allocation between the trigger and the safepoint),
    // wherever in its cycle each program happened to end: the same bound
    // for eight times the garbage.
    for stats in [&small, &large] {
        assert!(stats.live_mib < 8.0, "{stats:?}");
        assert!(stats.in_use_mib < 10.0, "{stats:?}");
    }
    assert!(
        large.in_use_mib * 10.0 < large.allocated_mib,
        "memory was reused: {large:?}"
    );
    // Only the kept tree (31 nodes, their field arrays) and the VM's own
    // objects survive a collection.
    assert!(large.live_objects_at_last_mark < 1000, "{large:?}");
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
