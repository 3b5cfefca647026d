//! Command-line options: one validated struct, parsed in one place.
//!
//! ```text
//! lox [--gc-stats] [--gc-stress] [--gc-percent N|off] [--disassemble] [FILE]
//! ```
//!
//! The GC flags configure the heap (`HeapConfig`, which the object layer
//! turns into a spangc `Config`). Values spangc rejects (a `--gc-percent`
//! above 1000000) are reported when the heap is made, with the same exit
//! code as a usage error.

use std::fmt;
use std::path::PathBuf;

use crate::object::HeapConfig;

/// Everything the command line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Print the heap's statistics to stderr at exit.
    pub gc_stats: bool,
    /// Collect at every safepoint (flushes out rooting bugs).
    pub gc_stress: bool,
    /// Heap growth between collections, in percent; `None` (`off`) disables
    /// automatic collection.
    pub gc_percent: Option<u32>,
    /// Print the bytecode of the script before running it.
    pub disassemble: bool,
    /// The script to run; `None` starts the REPL.
    pub script: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            gc_stats: false,
            gc_stress: false,
            gc_percent: HeapConfig::default().gc_percent,
            disassemble: false,
            script: None,
        }
    }
}

/// A command line that does not parse (exit code 64).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError {
    /// An option this program does not know.
    UnknownOption(String),
    /// `--gc-percent` without a value.
    MissingValue(&'static str),
    /// `--gc-percent` with something other than a number or `off`.
    BadPercent(String),
    /// More than one script.
    ExtraArgument(String),
}

/// The usage line printed with every usage error.
pub const USAGE: &str =
    "Usage: lox [--gc-stats] [--gc-stress] [--gc-percent N|off] [--disassemble] [path]";

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsageError::UnknownOption(option) => write!(f, "unknown option '{option}'"),
            UsageError::MissingValue(option) => write!(f, "{option} needs a value"),
            UsageError::BadPercent(value) => {
                write!(
                    f,
                    "--gc-percent takes a whole number or 'off', not '{value}'"
                )
            }
            UsageError::ExtraArgument(arg) => write!(f, "unexpected argument '{arg}'"),
        }
    }
}

impl Options {
    /// Parses the arguments after the program name.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Options, UsageError> {
        let mut options = Options::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--gc-stats" => options.gc_stats = true,
                "--gc-stress" => options.gc_stress = true,
                "--disassemble" => options.disassemble = true,
                "--gc-percent" => {
                    let value = args
                        .next()
                        .ok_or(UsageError::MissingValue("--gc-percent"))?;
                    options.gc_percent = match value.as_str() {
                        "off" => None,
                        number => Some(number.parse().map_err(|_| UsageError::BadPercent(value))?),
                    };
                }
                option if option.starts_with('-') && option != "-" => {
                    return Err(UsageError::UnknownOption(arg));
                }
                _ if options.script.is_some() => return Err(UsageError::ExtraArgument(arg)),
                _ => options.script = Some(PathBuf::from(arg)),
            }
        }
        Ok(options)
    }

    /// The heap configuration the GC flags ask for.
    pub fn heap_config(&self) -> HeapConfig {
        HeapConfig {
            stress: self.gc_stress,
            gc_percent: self.gc_percent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Options, UsageError};

    fn parse(args: &[&str]) -> Result<Options, UsageError> {
        Options::parse(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn defaults_and_flags() {
        assert_eq!(parse(&[]), Ok(Options::default()));
        let options =
            parse(&["--gc-stats", "--gc-stress", "--gc-percent", "50", "a.lox"]).expect("parses");
        assert!(options.gc_stats && options.gc_stress && !options.disassemble);
        assert_eq!(options.gc_percent, Some(50));
        assert_eq!(options.script.as_deref(), Some("a.lox".as_ref()));
        assert_eq!(
            parse(&["--gc-percent", "off"]).map(|o| o.gc_percent),
            Ok(None)
        );
        assert!(parse(&["--disassemble"]).is_ok_and(|o| o.disassemble));
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse(&["--nope"]),
            Err(UsageError::UnknownOption("--nope".into()))
        );
        assert_eq!(
            parse(&["--gc-percent"]),
            Err(UsageError::MissingValue("--gc-percent"))
        );
        assert_eq!(
            parse(&["--gc-percent", "-5"]),
            Err(UsageError::BadPercent("-5".into()))
        );
        assert_eq!(
            parse(&["a", "b"]),
            Err(UsageError::ExtraArgument("b".into()))
        );
    }
}
