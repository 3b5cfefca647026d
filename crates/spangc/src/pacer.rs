//! The GC pacer: when the next collection starts, as a pure function of
//! sizes.
//!
//! Marking stops the world, so the pacer's job is simpler than Go's
//! concurrent pacer: pick the heap goal (how big the heap may grow before
//! the next collection) and a trigger a little below it, so that the heap
//! peaks near the goal even though mutators keep allocating until they
//! reach a safepoint.
//!
//! # Heap goal
//!
//! As Go 1.18 does with stacks and globals, the goal counts scan work done
//! outside the heap (`outside_scan_bytes`): the root handles (8 bytes
//! each) and the buffers of std containers the marker scanned (the
//! elements of a `Vec<Gc<_>>`, of a `HashMap` holding `Gc`s, ...: memory
//! of the global allocator, so not in `marked`). A collection does that
//! work whatever the heap size, so the runway grows with it, and the cost
//! of marking per byte allocated stays near what `gc_percent` sets. (A
//! `Vec` of 100,000 pointers held by a heap object is 800 KB of scanning
//! each cycle; Go, whose slices live in its heap, counts the same bytes as
//! heap.)
//!
//! ```text
//! goal_gc    = marked + external + (marked + outside_scan_bytes) * gc_percent / 100   (at least 4 MiB * gc_percent/100)
//! goal_limit = (memory_limit - overhead) * 97%                               (3% headroom, Go 1.19)
//! goal       = max(min(goal_gc, goal_limit), marked + external + MIN_RUNWAY)
//! ```
//!
//! The goal bounds the heap *and* the external bytes the embedder reports
//! (`Heap::add_external`), so both sides of `goal <= goal_limit` count
//! them. `overhead` is memory the heap maps that is not live objects:
//! metadata, bitmaps and fragmentation in in-use spans. With `gc_percent`
//! off only the limit applies; with neither, the goal is unbounded and
//! collections happen only on request. The `max` leaves the mutator at
//! least [`MIN_RUNWAY`] to allocate before the next collection, so the goal
//! exceeds the limit only when the live heap (with its external bytes) is
//! within `MIN_RUNWAY` of the limit or above it.
//!
//! # Trigger
//!
//! A mutator that crosses the trigger only *requests* a collection; every
//! mutator keeps allocating until it reaches its next safepoint. The bytes
//! allocated in between are the *overshoot*. The pacer keeps a running
//! estimate of it (`runway`, an average of the last cycles' overshoot) and
//! sets `trigger = goal - min(runway, (goal - marked) / 2)`, so the heap
//! peaks at about the goal and never triggers below half-way.
//!
//! # Other outputs
//!
//! The scavenger keeps retained memory near `goal * 1.10` (Go 1.19's
//! retained-heap goal), and the sweeper's proportional pacing is set from
//! the trigger (see the sweep crate).
//!
//! # Example
//!
//! The pacer is a pure function of sizes, so a scenario runs without a
//! heap: a live heap of 40 MiB, then a limit of 64 MiB set at run time.
//!
//! ```
//! use spangc::GcPercent;
//! use spangc::pacer::{MarkReport, Pacer};
//!
//! const MIB: usize = 1 << 20;
//! let mut p = Pacer::new(GcPercent::Percent(100), None);
//! let report = MarkReport { heap_marked: 40 * MIB, ..MarkReport::default() };
//! assert_eq!(p.end_cycle(&report).heap_goal, 80 * MIB);
//! p.set_memory_limit(Some(64 * MIB), &report);
//! assert_eq!(p.goals().heap_goal, 64 * MIB / 100 * 97);
//! ```

use crate::config::GcPercent;

/// The smallest heap goal at `gc_percent = 100` (Go's `heapMinimum`),
/// scaled by `gc_percent / 100`.
///
/// ```
/// use spangc::GcPercent;
/// use spangc::pacer::{MIN_HEAP_GOAL, Pacer};
///
/// // A fresh heap may grow to the minimum goal before its first collection.
/// assert_eq!(Pacer::new(GcPercent::Percent(100), None).goals().heap_goal, MIN_HEAP_GOAL);
/// assert_eq!(Pacer::new(GcPercent::Percent(50), None).goals().heap_goal, MIN_HEAP_GOAL / 2);
/// ```
pub const MIN_HEAP_GOAL: usize = 4 << 20;
/// The goal is always at least this much above the live heap, so a heap at
/// its limit still makes progress between collections.
///
/// ```
/// use spangc::GcPercent;
/// use spangc::pacer::{MIN_RUNWAY, MarkReport, Pacer};
///
/// // A live heap of 100 MiB against a 64 MiB limit: the goal exceeds the
/// // limit only by the runway.
/// let pacer = Pacer::new(GcPercent::Percent(100), Some(64 << 20));
/// let goals = pacer.plan(&MarkReport { heap_marked: 100 << 20, ..Default::default() });
/// assert_eq!(goals.heap_goal, (100 << 20) + MIN_RUNWAY);
/// ```
pub const MIN_RUNWAY: usize = 256 << 10;
/// Headroom below the memory limit, in percent.
const LIMIT_HEADROOM_PERCENT: usize = 3;
/// Retained-memory goal for the scavenger, in percent of the heap goal.
const SCAVENGE_GOAL_PERCENT: usize = 110;

/// What the pacer learns from a finished mark phase: the input of
/// [`Pacer::end_cycle`] and [`Pacer::plan`].
///
/// ```
/// use spangc::GcPercent;
/// use spangc::pacer::{MarkReport, Pacer};
///
/// const MIB: usize = 1 << 20;
/// let pacer = Pacer::new(GcPercent::Percent(100), None);
/// let report = MarkReport {
///     heap_marked: 10 * MIB,
///     outside_scan_bytes: 2 * MIB, // roots and container buffers scanned
///     external_bytes: 30 * MIB,     // counted as live
///     ..MarkReport::default()
/// };
/// // goal = marked + external + (marked + outside scan) * 100%
/// assert_eq!(pacer.plan(&report).heap_goal, 10 * MIB + 30 * MIB + 12 * MIB);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MarkReport {
    /// Bytes of objects found live.
    pub heap_marked: usize,
    /// Scan work outside the heap, in bytes: 8 per root handle, plus the
    /// buffers of std containers (`Vec`, `VecDeque`, `Box`, maps, sets)
    /// the marker scanned (see "Heap goal" in the module docs).
    pub outside_scan_bytes: usize,
    /// Bytes the embedder reported holding outside the heap.
    pub external_bytes: usize,
    /// Memory the heap maps that is not live objects.
    pub overhead_bytes: usize,
    /// Heap live bytes when the world stopped (the cycle's peak).
    pub heap_live_at_stop: usize,
    /// The trigger the cycle started from, if it was triggered by
    /// allocation (not by `collect()`).
    pub triggered_at: Option<usize>,
}

/// Goals for the next cycle: the output of the [`Pacer`].
///
/// ```
/// use spangc::GcPercent;
/// use spangc::pacer::Pacer;
///
/// let g = Pacer::new(GcPercent::Percent(100), None).goals();
/// assert!(g.trigger <= g.heap_goal);
/// assert_eq!(g.scavenge_goal, g.heap_goal / 100 * 110); // 10% above the goal
/// assert!(!g.limited);
/// // A 4 MiB limit is below the 4 MiB minimum plus headroom: it sets the goal.
/// assert!(Pacer::new(GcPercent::Percent(100), Some(4 << 20)).goals().limited);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Goals {
    /// The heap size (live + new allocation, plus external bytes) the next
    /// collection aims to start at.
    pub heap_goal: usize,
    /// Request a collection when heap live + external reaches this.
    pub trigger: usize,
    /// Retained-memory goal for the scavenger.
    pub scavenge_goal: usize,
    /// The memory limit sets the goal (it is below what `gc_percent` would
    /// allow): memory is short, so the heap gives empty spans back to the
    /// page heap at once instead of keeping them a cycle for reuse.
    pub limited: bool,
}

/// The pacer's state between cycles.
///
/// A pure function of sizes: the heap feeds it a [`MarkReport`] after each
/// mark and applies the [`Goals`] it returns. Embedders use it to predict
/// or simulate a configuration without running a heap.
///
/// ```
/// use spangc::GcPercent;
/// use spangc::pacer::{MarkReport, Pacer};
///
/// const MIB: usize = 1 << 20;
/// // 64 MiB stays live; the program allocates until the trigger, then the
/// // collection starts at its next safepoint, 256 KiB later.
/// let mut pacer = Pacer::new(GcPercent::Percent(100), None);
/// let mut peaks = Vec::new();
/// for _ in 0..20 {
///     let trigger = pacer.goals().trigger;
///     let peak = trigger.max(64 * MIB) + 256 * 1024;
///     peaks.push((peak, pacer.goals().heap_goal));
///     pacer.end_cycle(&MarkReport {
///         heap_marked: 64 * MIB,
///         heap_live_at_stop: peak,
///         triggered_at: Some(trigger),
///         ..MarkReport::default()
///     });
/// }
/// // In steady state the heap peaks within 5% of a goal of twice the live heap.
/// for &(peak, goal) in &peaks[10..] {
///     assert_eq!(goal, 128 * MIB);
///     assert!(peak.abs_diff(goal) <= goal / 20);
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Pacer {
    gc_percent: GcPercent,
    memory_limit: Option<usize>,
    /// Running estimate of the bytes allocated between the trigger and the
    /// world stopping.
    runway: usize,
    goals: Goals,
}

impl Pacer {
    /// A pacer before the first collection: the goal is the minimum heap
    /// (or below the memory limit, if that is smaller).
    ///
    /// ```
    /// use spangc::GcPercent;
    /// use spangc::pacer::{MIN_HEAP_GOAL, Pacer};
    ///
    /// let p = Pacer::new(GcPercent::Percent(100), Some(1 << 30));
    /// assert_eq!(p.goals().heap_goal, MIN_HEAP_GOAL);
    /// assert_eq!(p.memory_limit(), Some(1 << 30));
    /// // Neither growth nor a limit: no goal, collections only on request.
    /// assert_eq!(Pacer::new(GcPercent::Off, None).goals().trigger, usize::MAX);
    /// ```
    pub fn new(gc_percent: GcPercent, memory_limit: Option<usize>) -> Pacer {
        let mut p = Pacer {
            gc_percent,
            memory_limit,
            runway: 0,
            goals: Goals {
                heap_goal: 0,
                trigger: 0,
                scavenge_goal: 0,
                limited: false,
            },
        };
        p.goals = p.plan(&MarkReport::default());
        p
    }

    /// The current goals (those of the last [`Pacer::end_cycle`] or
    /// setting change). See also the example on [`Pacer`].
    ///
    /// ```
    /// use spangc::GcPercent;
    /// use spangc::pacer::{MarkReport, Pacer};
    ///
    /// const MIB: usize = 1 << 20;
    /// let mut p = Pacer::new(GcPercent::Percent(100), None);
    /// assert_eq!(p.goals().heap_goal, 4 * MIB); // the minimum before any mark
    /// let g = p.end_cycle(&MarkReport { heap_marked: 10 * MIB, ..MarkReport::default() });
    /// assert_eq!(p.goals(), g);
    /// assert_eq!(g.heap_goal, 20 * MIB);
    /// ```
    pub fn goals(&self) -> Goals {
        self.goals
    }

    /// The memory limit.
    ///
    /// ```
    /// use spangc::GcPercent;
    /// use spangc::pacer::{MarkReport, Pacer};
    ///
    /// let mut p = Pacer::new(GcPercent::Percent(100), Some(64 << 20));
    /// assert_eq!(p.memory_limit(), Some(64 << 20));
    /// p.set_memory_limit(None, &MarkReport::default());
    /// assert_eq!(p.memory_limit(), None);
    /// ```
    pub fn memory_limit(&self) -> Option<usize> {
        self.memory_limit
    }

    /// Changes the memory limit (takes effect at once, from the last mark's
    /// report).
    ///
    /// ```
    /// use spangc::GcPercent;
    /// use spangc::pacer::{MarkReport, Pacer};
    ///
    /// const MIB: usize = 1 << 20;
    /// let last = MarkReport { heap_marked: 100 * MIB, ..MarkReport::default() };
    /// let mut p = Pacer::new(GcPercent::Percent(100), None);
    /// p.end_cycle(&last);
    /// assert_eq!(p.goals().heap_goal, 200 * MIB);
    /// p.set_memory_limit(Some(150 * MIB), &last);
    /// assert_eq!(p.goals().heap_goal, 150 * MIB / 100 * 97); // 3% headroom
    /// ```
    pub fn set_memory_limit(&mut self, limit: Option<usize>, last: &MarkReport) {
        self.memory_limit = limit;
        self.goals = self.plan(last);
    }

    /// Changes `gc_percent` (takes effect at once, from the last mark's
    /// report).
    ///
    /// ```
    /// use spangc::GcPercent;
    /// use spangc::pacer::{MarkReport, Pacer};
    ///
    /// const MIB: usize = 1 << 20;
    /// let last = MarkReport { heap_marked: 100 * MIB, ..MarkReport::default() };
    /// let mut p = Pacer::new(GcPercent::Percent(100), None);
    /// p.set_gc_percent(GcPercent::Percent(50), &last);
    /// assert_eq!(p.goals().heap_goal, 150 * MIB);
    /// p.set_gc_percent(GcPercent::Off, &last);
    /// assert_eq!(p.goals().heap_goal, usize::MAX);
    /// ```
    pub fn set_gc_percent(&mut self, gc_percent: GcPercent, last: &MarkReport) {
        self.gc_percent = gc_percent;
        self.goals = self.plan(last);
    }

    /// Learns from a finished mark phase and returns the next cycle's goals.
    /// A cycle started by the trigger also teaches the pacer how far the
    /// heap overshoots it before the world stops, so later triggers come
    /// early enough for the heap to peak near its goal. See also the
    /// example on [`Pacer`].
    ///
    /// ```
    /// use spangc::GcPercent;
    /// use spangc::pacer::{MarkReport, Pacer};
    ///
    /// const MIB: usize = 1 << 20;
    /// let mut p = Pacer::new(GcPercent::Percent(100), None);
    /// let report = |overshoot| MarkReport {
    ///     heap_marked: 16 * MIB,
    ///     heap_live_at_stop: 32 * MIB + overshoot,
    ///     triggered_at: Some(32 * MIB),
    ///     ..MarkReport::default()
    /// };
    /// let g = p.end_cycle(&report(0));
    /// assert_eq!((g.heap_goal, g.trigger), (32 * MIB, 32 * MIB));
    /// let g = p.end_cycle(&report(2 * MIB)); // the heap ran 2 MiB past the trigger
    /// assert_eq!(g.heap_goal, 32 * MIB);
    /// assert!(g.trigger < 32 * MIB, "triggers earlier now");
    /// ```
    pub fn end_cycle(&mut self, report: &MarkReport) -> Goals {
        if let Some(trigger) = report.triggered_at {
            let overshoot = report.heap_live_at_stop.saturating_sub(trigger);
            // Average with the previous estimate: one slow safepoint should
            // not halve the next cycle's runway.
            self.runway = (self.runway + overshoot) / 2;
        }
        self.goals = self.plan(report);
        self.goals
    }

    /// The goals for a given mark report (no state change): what-if
    /// questions.
    ///
    /// ```
    /// use spangc::GcPercent;
    /// use spangc::pacer::{MarkReport, Pacer};
    ///
    /// const MIB: usize = 1 << 20;
    /// let p = Pacer::new(GcPercent::Percent(100), Some(100 * MIB));
    /// for live in [10, 40, 60] {
    ///     let g = p.plan(&MarkReport { heap_marked: live * MIB, ..MarkReport::default() });
    ///     assert!(g.heap_goal <= 100 * MIB, "never above the limit for {live} MiB live");
    /// }
    /// assert_eq!(p.goals(), Pacer::new(GcPercent::Percent(100), Some(100 * MIB)).goals());
    /// ```
    pub fn plan(&self, r: &MarkReport) -> Goals {
        let marked = r.heap_marked.saturating_add(r.external_bytes);
        let gc_goal = match self.gc_percent {
            GcPercent::Off => usize::MAX,
            GcPercent::Percent(p) => {
                let growth =
                    (r.heap_marked as u128 + r.outside_scan_bytes as u128) * p as u128 / 100;
                let min = MIN_HEAP_GOAL as u128 * p as u128 / 100;
                let goal = (marked as u128 + growth).max(min);
                usize::try_from(goal).unwrap_or(usize::MAX)
            }
        };
        let limit_goal = self.memory_limit.map_or(usize::MAX, |limit| {
            let avail = limit.saturating_sub(r.overhead_bytes);
            avail / 100 * (100 - LIMIT_HEADROOM_PERCENT)
        });
        let heap_goal = gc_goal
            .min(limit_goal)
            .max(marked.saturating_add(MIN_RUNWAY));
        let trigger = if heap_goal == usize::MAX {
            usize::MAX
        } else {
            heap_goal - self.runway.min((heap_goal - marked) / 2)
        };
        let scavenge_goal = if heap_goal == usize::MAX {
            usize::MAX
        } else {
            heap_goal / 100 * SCAVENGE_GOAL_PERCENT
        };
        Goals {
            heap_goal,
            trigger,
            scavenge_goal,
            limited: limit_goal < gc_goal,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    /// A simulated mutator: `live` bytes survive each collection, it
    /// allocates garbage, and reaches a safepoint every `safepoint_bytes`.
    /// Returns (peak, goal) per cycle.
    fn simulate(
        pacer: &mut Pacer,
        live: &dyn Fn(usize) -> usize,
        safepoint_bytes: usize,
        cycles: usize,
    ) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut heap = live(0);
        for c in 0..cycles {
            let g = pacer.goals();
            // Allocate in safepoint-sized steps: the trigger is checked on
            // every allocation, the collection starts at the next safepoint.
            let mut triggered = false;
            while !triggered {
                heap += safepoint_bytes;
                triggered = heap >= g.trigger;
            }
            out.push((heap, g.heap_goal));
            let marked = live(c + 1);
            pacer.end_cycle(&MarkReport {
                heap_marked: marked,
                heap_live_at_stop: heap,
                triggered_at: Some(g.trigger),
                ..MarkReport::default()
            });
            heap = marked;
        }
        out
    }

    #[test]
    fn steady_state_peak_within_5_percent_of_goal() {
        for (live, step) in [(64 * MIB, 256 << 10), (8 * MIB, 64 << 10), (512 * MIB, MIB)] {
            let mut p = Pacer::new(GcPercent::Percent(100), None);
            let trace = simulate(&mut p, &|_| live, step, 40);
            for &(peak, goal) in &trace[10..] {
                let err = (peak as f64 - goal as f64).abs() / goal as f64;
                assert!(
                    err <= 0.05,
                    "live {live}: peak {peak} vs goal {goal} ({:.1}%)",
                    err * 100.0
                );
            }
        }
    }

    #[test]
    fn goal_follows_a_step_in_live_heap() {
        let mut p = Pacer::new(GcPercent::Percent(100), None);
        let live = |c: usize| if c < 10 { 16 * MIB } else { 64 * MIB };
        let trace = simulate(&mut p, &live, 128 << 10, 20);
        // Two cycles after the step the goal is 2x the new live heap.
        for &(_, goal) in &trace[12..] {
            assert_eq!(goal, 128 * MIB);
        }
    }

    #[test]
    fn goal_never_exceeds_limit_unless_live_heap_is_within_the_runway_of_it() {
        let limit = 100 * MIB;
        let near = limit - MIN_RUNWAY / 2;
        for live in [
            10 * MIB,
            40 * MIB,
            60 * MIB,
            95 * MIB,
            near,
            limit,
            120 * MIB,
        ] {
            let p = Pacer::new(GcPercent::Percent(100), Some(limit));
            let g = p.plan(&MarkReport {
                heap_marked: live,
                overhead_bytes: 2 * MIB,
                ..MarkReport::default()
            });
            if live + MIN_RUNWAY <= limit {
                assert!(g.heap_goal <= limit, "live {live}: goal {}", g.heap_goal);
            } else {
                assert_eq!(g.heap_goal, live + MIN_RUNWAY);
            }
            assert!(g.trigger <= g.heap_goal);
        }
    }

    #[test]
    fn outside_scan_bytes_and_minimum_count() {
        let p = Pacer::new(GcPercent::Percent(100), None);
        let g = p.plan(&MarkReport {
            heap_marked: 10 * MIB,
            outside_scan_bytes: 2 * MIB,
            ..MarkReport::default()
        });
        assert_eq!(g.heap_goal, 22 * MIB);
        let g = p.plan(&MarkReport::default());
        assert_eq!(g.heap_goal, MIN_HEAP_GOAL);
        let p = Pacer::new(GcPercent::Percent(50), None);
        assert_eq!(p.plan(&MarkReport::default()).heap_goal, MIN_HEAP_GOAL / 2);
    }

    #[test]
    fn off_means_only_the_limit_collects() {
        let p = Pacer::new(GcPercent::Off, None);
        assert_eq!(p.goals().trigger, usize::MAX);
        let p = Pacer::new(GcPercent::Off, Some(64 * MIB));
        assert!(p.goals().heap_goal <= 64 * MIB);
    }

    #[test]
    fn external_memory_counts() {
        let p = Pacer::new(GcPercent::Percent(100), None);
        let g = p.plan(&MarkReport {
            heap_marked: 10 * MIB,
            external_bytes: 30 * MIB,
            ..MarkReport::default()
        });
        assert_eq!(g.heap_goal, 50 * MIB, "external bytes count as live");
    }

    #[test]
    fn huge_values_do_not_overflow() {
        let p = Pacer::new(GcPercent::Percent(1_000_000), Some(usize::MAX));
        let g = p.plan(&MarkReport {
            heap_marked: usize::MAX / 2,
            outside_scan_bytes: usize::MAX / 2,
            external_bytes: usize::MAX / 2,
            overhead_bytes: usize::MAX,
            ..MarkReport::default()
        });
        assert!(g.trigger <= g.heap_goal);
    }
}
