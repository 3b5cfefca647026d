//! The systems the harness compares, and how each one is run.
//!
//! [`SYSTEMS`] is the registry: one entry per system, in table order. An
//! entry says what kind of system it is (a malloc/bump baseline, another
//! collector, or spangc), how the threads workload uses it (one shared heap
//! or one heap per thread), and how to run it:
//!
//! * [`Runner::Rust`]: a function in this binary. The parent re-invokes the
//!   harness as `spangc-bench run --system NAME --workload W --size N`, and
//!   the child calls the function and prints its [`Outcome`]. Each Rust
//!   system is a module here implementing [`crate::workloads::Heap`]; its
//!   `run` is usually just `workloads::run::<ItsHeap>`.
//! * [`Runner::Go`], [`Runner::Boehm`]: programs in `benches/go` and
//!   `benches/c`, built by [`external`] when their toolchain exists.
//!
//! spangc itself is `systems/spangc.rs` (`spangc-1` and `spangc-2`, one and
//! two mark threads), which also reports per-cycle heap figures for the
//! heap-over-time chart.

use crate::report::Outcome;
use crate::workloads::Params;

pub mod bacon;
pub mod boxed;
pub mod bump;
pub mod dumpster;
pub mod external;
pub mod gc_arena;
pub mod handles;
pub mod rc;
pub mod rust_gc;
pub mod spangc;

/// What a system is, for the ratio column and the summary line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// No collector: malloc/free or a bump arena. Shown for scale, never a
    /// "peer".
    Baseline,
    /// Another garbage collector (or cycle collector): the peers spangc must
    /// beat.
    Collector,
    /// spangc itself.
    Spangc,
}

/// How the threads workload places its live set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadModel {
    /// One heap shared by both mutator threads.
    Shared,
    /// Each thread has its own heap (the system's heaps are thread-local, or
    /// malloc-based structures owned by one thread).
    PerThread,
}

impl ThreadModel {
    /// The table's note for the threads workload.
    #[must_use]
    pub fn note(self) -> &'static str {
        match self {
            ThreadModel::Shared => "one shared heap",
            ThreadModel::PerThread => "a heap per thread",
        }
    }
}

/// How to run a system.
#[derive(Clone, Copy, Debug)]
pub enum Runner {
    /// In this binary, in a child process (`spangc-bench run`).
    Rust(fn(&Params) -> Outcome),
    /// The Go program in `benches/go`.
    Go,
    /// The C program in `benches/c`, linked with the Boehm collector.
    Boehm,
}

/// One registry entry.
#[derive(Debug)]
pub struct System {
    /// Name on the command line and in the table.
    pub name: &'static str,
    /// Baseline, peer collector or spangc.
    pub kind: Kind,
    /// Threads workload placement.
    pub threads: ThreadModel,
    /// One line for the README's table and `--help`.
    pub description: &'static str,
    /// How to run it.
    pub runner: Runner,
}

/// Every system, in table order.
pub static SYSTEMS: &[System] = &[
    System {
        name: "spangc-1",
        kind: Kind::Spangc,
        threads: ThreadModel::Shared,
        description: "spangc, 1 mark thread",
        runner: Runner::Rust(spangc::run_1),
    },
    System {
        name: "spangc-2",
        kind: Kind::Spangc,
        threads: ThreadModel::Shared,
        description: "spangc, 2 mark threads",
        runner: Runner::Rust(spangc::run_2),
    },
    System {
        name: "box",
        kind: Kind::Baseline,
        threads: ThreadModel::PerThread,
        description: "Box<T>: system malloc/free, no collector",
        runner: Runner::Rust(boxed::run),
    },
    System {
        name: "rc",
        kind: Kind::Baseline,
        threads: ThreadModel::PerThread,
        description: "Rc<RefCell<T>> (Rc<T> where nothing mutates): reference counting, no cycle collection",
        runner: Runner::Rust(rc::run),
    },
    System {
        name: "bumpalo",
        kind: Kind::Baseline,
        threads: ThreadModel::PerThread,
        description: "bumpalo::Bump, reset when a whole structure dies: the allocation floor",
        runner: Runner::Rust(bump::run),
    },
    System {
        name: "gc",
        kind: Kind::Collector,
        threads: ThreadModel::PerThread,
        description: "gc 0.5: Gc/GcCell, thread-local stop-the-world mark-sweep",
        runner: Runner::Rust(rust_gc::run),
    },
    System {
        name: "gc-arena",
        kind: Kind::Collector,
        threads: ThreadModel::PerThread,
        description: "gc-arena 0.7: Arena::mutate, incremental collection via collect_debt",
        runner: Runner::Rust(gc_arena::run),
    },
    System {
        name: "dumpster-unsync",
        kind: Kind::Collector,
        threads: ThreadModel::PerThread,
        description: "dumpster 2 unsync: thread-local reference counting plus cycle detection",
        runner: Runner::Rust(dumpster::unsync::run),
    },
    System {
        name: "dumpster-sync",
        kind: Kind::Collector,
        threads: ThreadModel::Shared,
        description: "dumpster 2 sync: thread-safe reference counting plus cycle detection",
        runner: Runner::Rust(dumpster::sync::run),
    },
    System {
        name: "bacon-rajan-cc",
        kind: Kind::Collector,
        threads: ThreadModel::PerThread,
        description: "bacon_rajan_cc 0.4: reference counting plus synchronous cycle collection",
        runner: Runner::Rust(bacon::run),
    },
    System {
        name: "go",
        kind: Kind::Collector,
        threads: ThreadModel::Shared,
        description: "Go (Debian's golang-go), default GOGC and GOMAXPROCS",
        runner: Runner::Go,
    },
    System {
        name: "boehm",
        kind: Kind::Collector,
        threads: ThreadModel::Shared,
        description: "Boehm-Demers-Weiser collector (Debian's libgc-dev) from C, GC_MALLOC",
        runner: Runner::Boehm,
    },
];

/// The system called `name`.
#[must_use]
pub fn find(name: &str) -> Option<&'static System> {
    SYSTEMS.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    //! Every Rust system against the closed-form checksums, at sizes small
    //! enough for a debug build.

    use std::time::Duration;

    use super::{Runner, SYSTEMS};
    use crate::workloads::{
        Params, binary_trees, churn, expected_checksum, gcbench, grow_shrink, threads, tree_size,
    };

    fn rust_systems() -> impl Iterator<Item = (&'static str, fn(&Params) -> crate::report::Outcome)>
    {
        SYSTEMS.iter().filter_map(|s| match s.runner {
            Runner::Rust(run) => Some((s.name, run)),
            _ => None,
        })
    }

    /// Runs every Rust system on `params` and checks its checksum.
    fn check_all(params: &Params) -> Vec<crate::report::Outcome> {
        let expected = expected_checksum(params);
        let outcomes: Vec<_> = rust_systems()
            .map(|(name, run)| {
                let out = run(params);
                assert_eq!(out.checksum, expected, "{name} on {params:?}");
                out
            })
            .collect();
        assert!(
            outcomes.len() >= 8,
            "only {} Rust systems registered",
            outcomes.len()
        );
        outcomes
    }

    #[test]
    fn binary_trees_checksums_agree() {
        check_all(&Params::BinaryTrees(binary_trees::Params { max_depth: 6 }));
    }

    #[test]
    fn gcbench_checksums_agree() {
        // The array must be longer than 2 x 1000 for the probe to hit 1/1000.
        check_all(&Params::GcBench(gcbench::Params {
            max_depth: 6,
            array_len: 4_000,
        }));
    }

    #[test]
    fn churn_checksums_agree() {
        // Several times around the ring, so the bump system resets
        // generations and the collectors collect.
        check_all(&Params::Churn(churn::Params {
            total: 20_000,
            window: 3_000,
        }));
    }

    #[test]
    fn threads_checksums_agree() {
        check_all(&Params::Threads(threads::Params {
            threads: 2,
            iterations: 300,
            ring: 64,
            depth: 4,
        }));
    }

    #[test]
    fn grow_shrink_checksums_agree_and_rss_is_sampled() {
        let outcomes = check_all(&Params::GrowShrink(grow_shrink::Params {
            chunks: 8,
            chunk_depth: 8,
            garbage_per_step: 2,
            idle_ticks: 2,
            tick: Duration::from_millis(1),
            sample_every: Duration::from_millis(1),
        }));
        assert!(
            outcomes.iter().all(|o| !o.rss.is_empty()),
            "a system has no RSS samples"
        );
    }

    #[test]
    fn closed_forms_match_the_workload_definitions() {
        // Spot checks against numbers computed by hand, so a wrong closed
        // form cannot silently agree with a wrong driver.
        assert_eq!(tree_size(0), 1);
        assert_eq!(tree_size(4), 31);
        // binary-trees n=6: stretch 7 (255) + long-lived 6 (127)
        // + d=4: 64 trees x 31 + d=6: 16 trees x 127.
        assert_eq!(
            binary_trees::expected_checksum(&binary_trees::Params { max_depth: 6 }),
            255 + 127 + 64 * 31 + 16 * 127
        );
        assert_eq!(
            churn::expected_checksum(&churn::Params {
                total: 3,
                window: 1
            }),
            // records 0 and 1 read back: 0 + (1 + 3 + 5 + 7).
            16
        );
    }
}
