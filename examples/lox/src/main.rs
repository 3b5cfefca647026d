//! `lox`: a bytecode interpreter for Lox, the language of *Crafting
//! Interpreters*, in the book's clox flavour, and the showcase embedder of
//! spangc.
//!
//! `lox FILE` runs a script; `lox` alone reads a line at a time from stdin
//! (the REPL), keeping globals between lines. Exit codes are clox's: 0 on
//! success, 64 for a usage error, 65 for a compile error, 70 for a runtime
//! error, 74 for an I/O error (a missing or unreadable script, or failed
//! output); and 64 too for GC flags that spangc rejects, 71 if the heap
//! cannot be created at all. See README.md for the flags and the design.
//!
//! Pipeline: `scanner` → `compiler` (a single pass to `chunk::FunctionProto`,
//! no heap objects) → `vm` (loads the prototypes onto the heap and runs
//! them). `object` is the heap layer: the only module that knows how
//! objects live on spangc.

mod chunk;
mod compiler;
mod disassemble;
mod number;
mod object;
mod options;
mod scanner;
mod vm;

use std::fs;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use object::HeapError;
use options::{Options, USAGE};
use vm::{RunError, Vm};

/// Writes a diagnostic to stderr. A closed or full stderr loses the
/// message but never the exit code (`eprintln!` would panic, exit 101).
macro_rules! diag {
    ($($arg:tt)*) => {{
        let _ = writeln!(io::stderr(), $($arg)*);
    }};
}

/// How running one piece of source ended; each has its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    CompileError,
    RuntimeError,
    IoError,
}

impl Outcome {
    fn exit_code(self) -> ExitCode {
        ExitCode::from(match self {
            Outcome::Ok => 0,
            Outcome::CompileError => 65,
            Outcome::RuntimeError => 70,
            Outcome::IoError => 74,
        })
    }
}

fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(error) => {
            diag!("lox: {error}");
            diag!("{USAGE}");
            return ExitCode::from(64);
        }
    };
    let out = Box::new(BufWriter::new(io::stdout()));
    let mut vm = match Vm::new(options.heap_config(), out) {
        Ok(vm) => vm,
        Err(error) => {
            diag!("lox: {error}");
            return ExitCode::from(match error {
                HeapError::Config(_) => 64,
                _ => 71,
            });
        }
    };
    let outcome = match &options.script {
        Some(path) => run_file(&mut vm, path, &options),
        None => repl(&mut vm, &options),
    };
    if options.gc_stats {
        print_gc_stats(&mut vm);
    }
    outcome.exit_code()
}

fn run_file(vm: &mut Vm, path: &Path, options: &Options) -> Outcome {
    match fs::read_to_string(path) {
        Ok(source) => run_source(vm, &source, options),
        Err(error) => {
            diag!("Could not read file \"{}\": {error}.", path.display());
            Outcome::IoError
        }
    }
}

/// Reads lines from stdin and runs each; errors are reported and the
/// session goes on. Ends at end of input (exit 0) or an I/O error.
fn repl(vm: &mut Vm, options: &Options) -> Outcome {
    let mut stdin = io::stdin().lock();
    let mut line = String::new();
    loop {
        let mut stdout = io::stdout();
        if write!(stdout, "> ").and_then(|()| stdout.flush()).is_err() {
            return Outcome::IoError;
        }
        line.clear();
        match stdin.read_line(&mut line) {
            Ok(0) => {
                return match writeln!(io::stdout()) {
                    Ok(()) => Outcome::Ok,
                    Err(_) => Outcome::IoError,
                };
            }
            Ok(_) => {
                if run_source(vm, &line, options) == Outcome::IoError {
                    return Outcome::IoError;
                }
            }
            Err(error) => {
                diag!("lox: reading stdin failed: {error}");
                return Outcome::IoError;
            }
        }
    }
}

fn run_source(vm: &mut Vm, source: &str, options: &Options) -> Outcome {
    let script = match compiler::compile(source) {
        Ok(script) => script,
        Err(errors) => {
            for error in errors {
                diag!("{error}");
            }
            return Outcome::CompileError;
        }
    };
    if options.disassemble && write!(io::stdout(), "{}", disassemble::disassemble(&script)).is_err()
    {
        return Outcome::IoError;
    }
    match vm.interpret(script) {
        Ok(()) => Outcome::Ok,
        Err(RunError::Runtime(error)) => {
            // The trace ends in a newline already.
            let _ = write!(io::stderr(), "{error}");
            Outcome::RuntimeError
        }
        Err(RunError::Io(error)) => {
            diag!("lox: writing output failed: {error}");
            Outcome::IoError
        }
    }
}

/// `--gc-stats`: spangc's report, on stderr so that it never mixes with
/// the program's output.
fn print_gc_stats(vm: &mut Vm) {
    diag!("{}", vm.heap_stats());
    diag!(
        "strings: {} interned (a weak set: dead strings leave it at each collection)",
        vm.strings_interned()
    );
}
