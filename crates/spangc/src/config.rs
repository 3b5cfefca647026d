//! Heap configuration: one validated struct, a builder, typed errors, and
//! `SPANGC_*` environment overrides.
//!
//! Every option is declared once in [`Config`] with its default, its
//! validator and its environment variable. A value comes from, in order of
//! precedence: the builder (explicitly set by the program), the environment,
//! the default. So `GOGC`-style tuning works without code changes, and a
//! program that sets a value means it.
//!
//! | option | default | environment | meaning |
//! |---|---|---|---|
//! | `gc_percent` | 100 | `SPANGC_GC_PERCENT` (`off` or 0..=1000000) | heap growth between collections, in percent of the live heap; off = no automatic collection |
//! | `memory_limit` | none | `SPANGC_MEMORY_LIMIT` (`off`, or bytes with optional `KiB`/`MiB`/`GiB` suffix) | soft limit on memory the heap maps |
//! | `mark_threads` | available parallelism | `SPANGC_MARK_THREADS` (1..=256) | threads that mark in parallel |
//! | `background_sweep` | on | `SPANGC_BACKGROUND_SWEEP` (`on`/`off`/`1`/`0`/`true`/`false`) | a thread sweeps between collections |
//! | `background_scavenge` | on | `SPANGC_BACKGROUND_SCAVENGE` (same) | a thread returns idle memory to the OS |
//! | `verify` | off | `SPANGC_VERIFY` (same) | walk and check the whole heap after every collection; poison freed memory |
//! | `gc_stress` | off | `SPANGC_GC_STRESS` (same) | collect at every safepoint (flushes out rooting bugs) |
//! | `profile_rate` | 512 KiB | `SPANGC_PROFILE_RATE` (`off`, or bytes with optional suffix) | sample one allocation per this many bytes on average for the heap profile |
//!
//! Invalid values are errors naming the field (and the variable, for the
//! environment), never silently replaced by a default.

use std::fmt;

/// Why a configuration was rejected: the option, where the value came
/// from, the value, and what was expected. Its `Display` says all four.
///
/// ```
/// use spangc::Config;
///
/// let e = Config::builder().mark_threads(0).build().unwrap_err();
/// assert_eq!((e.field, e.env_var, e.value.as_str()), ("mark_threads", None, "0"));
/// assert_eq!(
///     e.to_string(),
///     "invalid spangc configuration: mark_threads = 0: expected a whole number from 1 to 256",
/// );
///
/// // A bad environment variable is named too.
/// let env = |var: &str| (var == "SPANGC_GC_PERCENT").then(|| "lots".to_string());
/// let e = Config::default().resolve_with(env).unwrap_err();
/// assert_eq!((e.field, e.env_var), ("gc_percent", Some("SPANGC_GC_PERCENT")));
/// assert!(e.to_string().starts_with("invalid spangc configuration: SPANGC_GC_PERCENT=\"lots\""));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The option, as named in [`Config`] (e.g. `"mark_threads"`).
    pub field: &'static str,
    /// The environment variable the value came from, if it did.
    pub env_var: Option<&'static str>,
    /// The rejected value, as given.
    pub value: String,
    /// What a valid value looks like.
    pub expected: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.env_var {
            Some(var) => write!(
                f,
                "invalid spangc configuration: {var}={:?} (option {}): expected {}",
                self.value, self.field, self.expected
            ),
            None => write!(
                f,
                "invalid spangc configuration: {} = {}: expected {}",
                self.field, self.value, self.expected
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Heap options. Build with [`Config::builder`]; [`Config::default`] sets
/// nothing explicitly, so every option comes from the environment or its
/// default when the heap is created.
///
/// Each option's value comes from, in order of precedence: the builder
/// (set by the program), its `SPANGC_*` environment variable, its default.
/// Invalid values are errors naming the option (and the variable), never
/// silently replaced.
///
/// | option | default | environment |
/// |---|---|---|
/// | [`gc_percent`](ConfigBuilder::gc_percent) | 100 | `SPANGC_GC_PERCENT` (`off` or 0..=1000000) |
/// | [`memory_limit`](ConfigBuilder::memory_limit) | none | `SPANGC_MEMORY_LIMIT` (`off`, or bytes with an optional `KiB`/`MiB`/`GiB` suffix; at least 4 MiB) |
/// | [`mark_threads`](ConfigBuilder::mark_threads) | available parallelism | `SPANGC_MARK_THREADS` (1..=256) |
/// | [`background_sweep`](ConfigBuilder::background_sweep) | on | `SPANGC_BACKGROUND_SWEEP` (`on`/`off`/`1`/`0`/`true`/`false`) |
/// | [`background_scavenge`](ConfigBuilder::background_scavenge) | on | `SPANGC_BACKGROUND_SCAVENGE` (same) |
/// | [`verify`](ConfigBuilder::verify) | off | `SPANGC_VERIFY` (same) |
/// | [`gc_stress`](ConfigBuilder::gc_stress) | off | `SPANGC_GC_STRESS` (same) |
/// | [`profile_rate`](ConfigBuilder::profile_rate) | 512 KiB | `SPANGC_PROFILE_RATE` (`off`, or bytes with an optional suffix) |
///
/// ```
/// # spangc::brand!(Doc);
/// # type Heap = spangc::Heap<Doc>;
/// use spangc::{Config, GcPercent};
///
/// let config = Config::builder()
///     .gc_percent(Some(200))
///     .memory_limit(Some(256 << 20))
///     .build()
///     .unwrap();
/// let heap = Heap::new(config).unwrap();
/// assert_eq!(heap.config().gc_percent, GcPercent::Percent(200));
/// assert_eq!(heap.config().memory_limit, Some(256 << 20));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    gc_percent: Option<GcPercent>,
    memory_limit: Option<Option<usize>>,
    mark_threads: Option<usize>,
    background_sweep: Option<bool>,
    background_scavenge: Option<bool>,
    verify: Option<bool>,
    gc_stress: Option<bool>,
    profile_rate: Option<usize>,
}

/// The heap growth setting, as resolved (see
/// [`ConfigBuilder::gc_percent`]).
///
/// ```
/// use spangc::{Config, GcPercent};
///
/// let no_env = |_: &str| None;
/// let off = Config::builder().gc_percent(None).build().unwrap();
/// assert_eq!(off.resolve_with(no_env).unwrap().gc_percent, GcPercent::Off);
/// let default = Config::default().resolve_with(no_env).unwrap();
/// assert_eq!(default.gc_percent, GcPercent::Percent(100));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GcPercent {
    /// Collect when the heap has grown by this percentage of the live heap
    /// since the last collection.
    Percent(u32),
    /// No automatic collection (only `collect()` and the memory limit).
    Off,
}

const MAX_GC_PERCENT: u32 = 1_000_000;
const MAX_MARK_THREADS: usize = 256;
/// The smallest memory limit accepted: below this the heap's own
/// metadata would not fit.
///
/// ```
/// use spangc::{Config, MIN_MEMORY_LIMIT};
///
/// assert!(Config::builder().memory_limit(Some(MIN_MEMORY_LIMIT)).build().is_ok());
/// let e = Config::builder().memory_limit(Some(MIN_MEMORY_LIMIT - 1)).build().unwrap_err();
/// assert_eq!(e.field, "memory_limit");
/// ```
pub const MIN_MEMORY_LIMIT: usize = 4 << 20;

/// Options after resolving builder, environment and defaults: what a heap
/// runs with ([`Heap::config`](crate::Heap::config)), or what
/// [`Config::resolve`] says it would run with.
///
/// ```
/// use spangc::{Config, GcPercent};
///
/// let r = Config::builder()
///     .mark_threads(2)
///     .build()
///     .unwrap()
///     .resolve_with(|_| None) // as if no SPANGC_* variable were set
///     .unwrap();
/// assert_eq!(r.mark_threads, 2);
/// assert_eq!(r.gc_percent, GcPercent::Percent(100));
/// assert_eq!(r.memory_limit, None);
/// assert!(r.background_sweep && r.background_scavenge);
/// assert!(!r.verify && !r.gc_stress);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// See [`ConfigBuilder::gc_percent`].
    pub gc_percent: GcPercent,
    /// See [`ConfigBuilder::memory_limit`].
    pub memory_limit: Option<usize>,
    /// See [`ConfigBuilder::mark_threads`].
    pub mark_threads: usize,
    /// See [`ConfigBuilder::background_sweep`].
    pub background_sweep: bool,
    /// See [`ConfigBuilder::background_scavenge`].
    pub background_scavenge: bool,
    /// See [`ConfigBuilder::verify`].
    pub verify: bool,
    /// See [`ConfigBuilder::gc_stress`].
    pub gc_stress: bool,
    /// See [`ConfigBuilder::profile_rate`]; 0 when profiling is off.
    pub profile_rate: usize,
}

impl Config {
    /// A builder with nothing set.
    ///
    /// ```
    /// use spangc::Config;
    ///
    /// let config = Config::builder().mark_threads(1).verify(true).build().unwrap();
    /// let r = config.resolve().unwrap();
    /// assert_eq!((r.mark_threads, r.verify), (1, true));
    /// assert_ne!(config, Config::default());
    /// ```
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder(Config::default())
    }

    /// Resolves every option: explicitly set, else from `SPANGC_*`, else the
    /// default. [`Heap::new`](crate::Heap::new) does this; call it to see
    /// (or validate) what a heap would run with.
    ///
    /// ```
    /// use spangc::Config;
    ///
    /// // What `SPANGC_*` variables make of the defaults in this process:
    /// match Config::default().resolve() {
    ///     Ok(r) => assert!(r.mark_threads >= 1),
    ///     Err(e) => eprintln!("bad environment: {e}"),
    /// }
    /// // Explicit settings win over the environment.
    /// let config = Config::builder().gc_stress(false).build().unwrap();
    /// if let Ok(r) = config.resolve() {
    ///     assert!(!r.gc_stress);
    /// }
    /// ```
    pub fn resolve(&self) -> Result<Resolved, ConfigError> {
        self.resolve_with(|var| std::env::var(var).ok())
    }

    /// [`Config::resolve`] with the environment given as a function (for
    /// tests).
    ///
    /// ```
    /// use spangc::{Config, GcPercent};
    ///
    /// let env = |var: &str| match var {
    ///     "SPANGC_GC_PERCENT" => Some("off".to_string()),
    ///     "SPANGC_MEMORY_LIMIT" => Some("512 MiB".to_string()),
    ///     "SPANGC_MARK_THREADS" => Some("3".to_string()),
    ///     _ => None,
    /// };
    /// let r = Config::default().resolve_with(env).unwrap();
    /// assert_eq!(r.gc_percent, GcPercent::Off);
    /// assert_eq!(r.memory_limit, Some(512 << 20));
    /// assert_eq!(r.mark_threads, 3);
    ///
    /// // A value set in code beats the environment.
    /// let config = Config::builder().mark_threads(1).build().unwrap();
    /// assert_eq!(config.resolve_with(env).unwrap().mark_threads, 1);
    /// ```
    pub fn resolve_with(
        &self,
        env: impl Fn(&'static str) -> Option<String>,
    ) -> Result<Resolved, ConfigError> {
        fn pick<T>(
            explicit: Option<T>,
            var: &'static str,
            env: &dyn Fn(&'static str) -> Option<String>,
            parse: impl Fn(&str) -> Option<T>,
            field: &'static str,
            expected: &'static str,
            default: impl FnOnce() -> T,
        ) -> Result<T, ConfigError> {
            if let Some(v) = explicit {
                return Ok(v);
            }
            match env(var) {
                None => Ok(default()),
                Some(raw) => parse(raw.trim()).ok_or(ConfigError {
                    field,
                    env_var: Some(var),
                    value: raw,
                    expected,
                }),
            }
        }
        let env: &dyn Fn(&'static str) -> Option<String> = &env;
        Ok(Resolved {
            gc_percent: pick(
                self.gc_percent,
                "SPANGC_GC_PERCENT",
                env,
                parse_gc_percent,
                "gc_percent",
                GC_PERCENT_EXPECTED,
                || GcPercent::Percent(100),
            )?,
            memory_limit: pick(
                self.memory_limit,
                "SPANGC_MEMORY_LIMIT",
                env,
                parse_memory_limit,
                "memory_limit",
                MEMORY_LIMIT_EXPECTED,
                || None,
            )?,
            mark_threads: pick(
                self.mark_threads,
                "SPANGC_MARK_THREADS",
                env,
                |s| s.parse().ok().filter(|n| valid_mark_threads(*n)),
                "mark_threads",
                MARK_THREADS_EXPECTED,
                || {
                    std::thread::available_parallelism()
                        .map_or(1, |n| n.get())
                        .min(MAX_MARK_THREADS)
                },
            )?,
            background_sweep: pick(
                self.background_sweep,
                "SPANGC_BACKGROUND_SWEEP",
                env,
                parse_switch,
                "background_sweep",
                SWITCH_EXPECTED,
                || true,
            )?,
            background_scavenge: pick(
                self.background_scavenge,
                "SPANGC_BACKGROUND_SCAVENGE",
                env,
                parse_switch,
                "background_scavenge",
                SWITCH_EXPECTED,
                || true,
            )?,
            verify: pick(
                self.verify,
                "SPANGC_VERIFY",
                env,
                parse_switch,
                "verify",
                SWITCH_EXPECTED,
                || false,
            )?,
            gc_stress: pick(
                self.gc_stress,
                "SPANGC_GC_STRESS",
                env,
                parse_switch,
                "gc_stress",
                SWITCH_EXPECTED,
                || false,
            )?,
            profile_rate: pick(
                self.profile_rate,
                "SPANGC_PROFILE_RATE",
                env,
                parse_profile_rate,
                "profile_rate",
                PROFILE_RATE_EXPECTED,
                || DEFAULT_PROFILE_RATE,
            )?,
        })
    }
}

const GC_PERCENT_EXPECTED: &str = "`off` or a whole number from 0 to 1000000";
const MEMORY_LIMIT_EXPECTED: &str =
    "`off` or a byte count of at least 4 MiB, optionally with a KiB, MiB or GiB suffix";
const MARK_THREADS_EXPECTED: &str = "a whole number from 1 to 256";
const SWITCH_EXPECTED: &str = "on, off, true, false, 1 or 0";
const PROFILE_RATE_EXPECTED: &str =
    "`off` or a byte count, optionally with a KiB, MiB or GiB suffix";
/// One sample per 512 KiB allocated, on average (Go's `MemProfileRate`).
pub const DEFAULT_PROFILE_RATE: usize = 512 << 10;

fn parse_gc_percent(s: &str) -> Option<GcPercent> {
    if s.eq_ignore_ascii_case("off") {
        return Some(GcPercent::Off);
    }
    s.parse()
        .ok()
        .filter(|p| *p <= MAX_GC_PERCENT)
        .map(GcPercent::Percent)
}

fn parse_profile_rate(s: &str) -> Option<usize> {
    if s.eq_ignore_ascii_case("off") {
        return Some(0);
    }
    parse_bytes(s)
}

fn parse_memory_limit(s: &str) -> Option<Option<usize>> {
    if s.eq_ignore_ascii_case("off") {
        return Some(None);
    }
    parse_bytes(s).filter(|b| *b >= MIN_MEMORY_LIMIT).map(Some)
}

/// A byte count with an optional `KiB`/`MiB`/`GiB` (or `k`/`m`/`g`, `b`)
/// suffix.
fn parse_bytes(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let (digits, unit) = [
        ("gib", 1usize << 30),
        ("mib", 1 << 20),
        ("kib", 1 << 10),
        ("g", 1 << 30),
        ("m", 1 << 20),
        ("k", 1 << 10),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suffix, unit)| lower.strip_suffix(suffix).map(|d| (d.trim(), *unit)))
    .unwrap_or((lower.as_str(), 1));
    let n: usize = digits.parse().ok()?;
    n.checked_mul(unit)
}

fn parse_switch(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "on" | "true" | "yes" => Some(true),
        "0" | "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

fn valid_mark_threads(n: usize) -> bool {
    (1..=MAX_MARK_THREADS).contains(&n)
}

/// Builds a [`Config`]; [`ConfigBuilder::build`] validates what was set.
///
/// Options left unset come from the environment or their defaults when the
/// heap is created (see [`Config`]).
///
/// ```
/// use spangc::{Config, ConfigBuilder};
///
/// fn for_tests(builder: ConfigBuilder) -> ConfigBuilder {
///     builder.verify(true).gc_stress(true)
/// }
///
/// let config = for_tests(Config::builder().mark_threads(1)).build().unwrap();
/// let r = config.resolve_with(|_| None).unwrap();
/// assert!(r.verify && r.gc_stress);
/// assert_eq!(r.mark_threads, 1);
/// ```
#[derive(Debug, Clone)]
pub struct ConfigBuilder(Config);

impl ConfigBuilder {
    /// Heap growth between collections in percent of the live heap (like
    /// Go's `GOGC`); `None` turns automatic collection off. Default 100:
    /// the next collection starts when the heap has grown to about twice
    /// what the last one found live (at least 4 MiB, scaled by
    /// `gc_percent`/100). At most 1000000.
    ///
    /// ```
    /// use spangc::{Config, GcPercent};
    ///
    /// let c = Config::builder().gc_percent(Some(50)).build().unwrap();
    /// assert_eq!(c.resolve_with(|_| None).unwrap().gc_percent, GcPercent::Percent(50));
    /// let e = Config::builder().gc_percent(Some(2_000_000)).build().unwrap_err();
    /// assert_eq!(e.field, "gc_percent");
    /// ```
    pub fn gc_percent(mut self, percent: Option<u32>) -> Self {
        self.0.gc_percent = Some(percent.map_or(GcPercent::Off, GcPercent::Percent));
        self
    }

    /// A soft limit, in bytes, on all memory the heap maps (heap arenas and
    /// metadata) plus reported external memory. The pacer collects earlier
    /// as the heap nears it and idle memory is returned to the OS to stay
    /// under it; an allocation that would need more in-use memory than the
    /// limit fails (`try_` APIs) or panics. `None`: no limit. At least
    /// 4 MiB. Change it at run time with
    /// [`Heap::set_memory_limit`](crate::Heap::set_memory_limit).
    ///
    /// ```
    /// use spangc::Config;
    ///
    /// let c = Config::builder().memory_limit(Some(64 << 20)).build().unwrap();
    /// assert_eq!(c.resolve_with(|_| None).unwrap().memory_limit, Some(64 << 20));
    /// let e = Config::builder().memory_limit(Some(1 << 20)).build().unwrap_err();
    /// assert_eq!(e.field, "memory_limit");
    /// ```
    pub fn memory_limit(mut self, bytes: Option<usize>) -> Self {
        self.0.memory_limit = Some(bytes);
        self
    }

    /// Threads that mark in parallel during a collection (the collecting
    /// thread is one of them). Default: the available parallelism; 1 to
    /// 256. A heap whose last collection scanned fewer than 16,384 objects
    /// with pointers is marked by the collecting thread alone whatever this
    /// says (a second worker costs more than it gains there;
    /// `Stats::mark_threads` tells how many marked), except in
    /// [`verify`](ConfigBuilder::verify) mode.
    ///
    /// ```
    /// use spangc::Config;
    ///
    /// let c = Config::builder().mark_threads(4).build().unwrap();
    /// assert_eq!(c.resolve_with(|_| None).unwrap().mark_threads, 4);
    /// assert!(Config::builder().mark_threads(0).build().is_err());
    /// ```
    pub fn mark_threads(mut self, n: usize) -> Self {
        self.0.mark_threads = Some(n);
        self
    }

    /// Whether a background thread sweeps between collections (default
    /// on). Off, sweeping is done by allocation and before the next
    /// collection only.
    ///
    /// ```
    /// use spangc::Config;
    ///
    /// let c = Config::builder().background_sweep(false).build().unwrap();
    /// assert!(!c.resolve_with(|_| None).unwrap().background_sweep);
    /// ```
    pub fn background_sweep(mut self, on: bool) -> Self {
        self.0.background_sweep = Some(on);
        self
    }

    /// Whether a background thread returns idle memory to the OS (default
    /// on). Off, memory goes back only to stay under the memory limit and
    /// on [`Heap::release_memory`](crate::Heap::release_memory).
    ///
    /// ```
    /// use spangc::Config;
    ///
    /// let c = Config::builder().background_scavenge(false).build().unwrap();
    /// assert!(!c.resolve_with(|_| None).unwrap().background_scavenge);
    /// ```
    pub fn background_scavenge(mut self, on: bool) -> Self {
        self.0.background_scavenge = Some(on);
        self
    }

    /// Whether to verify the whole heap after every collection and poison
    /// freed memory (slow; for tests and debugging). Default off. Verify
    /// mode also checks every pointer stored through a cell, and marks
    /// with every mark thread however small the heap, so that tests reach
    /// the parallel marker.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::builder().verify(true).build().unwrap()).unwrap();
    /// assert!(heap.config().verify);
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let kept = cx.root(cx.alloc_str("kept"));
    ///     cx.collect(); // checks the running counters against a walk of the heap
    ///     assert_eq!(&*kept.get(cx), "kept");
    /// });
    /// ```
    pub fn verify(mut self, on: bool) -> Self {
        self.0.verify = Some(on);
        self
    }

    /// Whether to collect at every safepoint (very slow; flushes out
    /// rooting bugs in embedders). Default off.
    ///
    /// ```
    /// # spangc::brand!(Doc);
    /// # type Heap = spangc::Heap<Doc>;
    /// use spangc::Config;
    ///
    /// let heap = Heap::new(Config::builder().gc_stress(true).build().unwrap()).unwrap();
    /// let mut m = heap.mutator();
    /// m.enter(|cx| {
    ///     let before = cx.heap().gc_count();
    ///     cx.safepoint();
    ///     cx.safepoint();
    ///     assert_eq!(cx.heap().gc_count(), before + 2);
    /// });
    /// ```
    pub fn gc_stress(mut self, on: bool) -> Self {
        self.0.gc_stress = Some(on);
        self
    }

    /// Sample one allocation per `bytes` allocated, on average, for the
    /// heap profile ([`Heap::write_heap_profile`](crate::Heap::write_heap_profile)):
    /// each sample records the allocating stack. `0` turns profiling off.
    /// Default 512 KiB, as Go's `MemProfileRate`.
    ///
    /// ```
    /// use spangc::Config;
    ///
    /// let profiled = Config::builder().profile_rate(64 << 10).build().unwrap();
    /// assert_eq!(profiled.resolve().unwrap().profile_rate, 64 << 10);
    /// let off = Config::builder().profile_rate(0).build().unwrap();
    /// assert_eq!(off.resolve().unwrap().profile_rate, 0);
    /// ```
    pub fn profile_rate(mut self, bytes: usize) -> Self {
        self.0.profile_rate = Some(bytes);
        self
    }

    /// Validates the options that were set. Options taken from the
    /// environment are validated when the heap is created (or by
    /// [`Config::resolve`]).
    ///
    /// ```
    /// use spangc::Config;
    ///
    /// assert!(Config::builder().gc_percent(Some(300)).build().is_ok());
    /// let e = Config::builder().memory_limit(Some(100)).build().unwrap_err();
    /// assert_eq!(e.field, "memory_limit");
    /// ```
    pub fn build(self) -> Result<Config, ConfigError> {
        let c = &self.0;
        if let Some(GcPercent::Percent(p)) = c.gc_percent
            && p > MAX_GC_PERCENT
        {
            return Err(ConfigError {
                field: "gc_percent",
                env_var: None,
                value: p.to_string(),
                expected: GC_PERCENT_EXPECTED,
            });
        }
        if let Some(Some(limit)) = c.memory_limit
            && limit < MIN_MEMORY_LIMIT
        {
            return Err(ConfigError {
                field: "memory_limit",
                env_var: None,
                value: limit.to_string(),
                expected: MEMORY_LIMIT_EXPECTED,
            });
        }
        if let Some(n) = c.mark_threads
            && !valid_mark_threads(n)
        {
            return Err(ConfigError {
                field: "mark_threads",
                env_var: None,
                value: n.to_string(),
                expected: MARK_THREADS_EXPECTED,
            });
        }
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &'static str) -> Option<String> {
        None
    }

    #[test]
    fn defaults() {
        let r = Config::default().resolve_with(no_env).unwrap();
        assert_eq!(r.gc_percent, GcPercent::Percent(100));
        assert_eq!(r.memory_limit, None);
        assert!(r.mark_threads >= 1);
        assert!(r.background_sweep && r.background_scavenge);
        assert!(!r.verify && !r.gc_stress);
    }

    #[test]
    fn invalid_values_name_the_field() {
        let e = Config::builder().mark_threads(0).build().unwrap_err();
        assert_eq!(e.field, "mark_threads");
        assert!(e.to_string().contains("mark_threads = 0"), "{e}");
        let e = Config::builder()
            .memory_limit(Some(100))
            .build()
            .unwrap_err();
        assert_eq!(e.field, "memory_limit");
        let e = Config::builder()
            .gc_percent(Some(MAX_GC_PERCENT + 1))
            .build()
            .unwrap_err();
        assert_eq!(e.field, "gc_percent");
    }

    #[test]
    fn environment_overrides_defaults_and_names_the_variable() {
        let env = |var: &'static str| match var {
            "SPANGC_GC_PERCENT" => Some("off".to_string()),
            "SPANGC_MEMORY_LIMIT" => Some("512 MiB".to_string()),
            "SPANGC_MARK_THREADS" => Some("3".to_string()),
            "SPANGC_VERIFY" => Some("on".to_string()),
            _ => None,
        };
        let r = Config::default().resolve_with(env).unwrap();
        assert_eq!(r.gc_percent, GcPercent::Off);
        assert_eq!(r.memory_limit, Some(512 << 20));
        assert_eq!(r.mark_threads, 3);
        assert!(r.verify);

        let bad = |var: &'static str| (var == "SPANGC_MARK_THREADS").then(|| "lots".to_string());
        let e = Config::default().resolve_with(bad).unwrap_err();
        assert_eq!(e.env_var, Some("SPANGC_MARK_THREADS"));
        assert!(
            e.to_string().contains("SPANGC_MARK_THREADS=\"lots\""),
            "{e}"
        );
    }

    #[test]
    fn explicit_settings_beat_the_environment() {
        let env = |var: &'static str| (var == "SPANGC_GC_PERCENT").then(|| "50".to_string());
        let c = Config::builder().gc_percent(Some(300)).build().unwrap();
        assert_eq!(
            c.resolve_with(env).unwrap().gc_percent,
            GcPercent::Percent(300)
        );
    }

    #[test]
    fn memory_limit_syntax() {
        assert_eq!(parse_memory_limit("8MiB"), Some(Some(8 << 20)));
        assert_eq!(parse_memory_limit("2g"), Some(Some(2 << 30)));
        assert_eq!(parse_memory_limit("4194304"), Some(Some(4 << 20)));
        assert_eq!(parse_memory_limit("OFF"), Some(None));
        assert_eq!(parse_memory_limit("1KiB"), None, "below the minimum");
        assert_eq!(parse_memory_limit("12 parsecs"), None);
        assert_eq!(parse_memory_limit("99999999999999999999GiB"), None);
    }
}
