//! SVG charts of a comparison, drawn with plotters' SVG backend.
//!
//! Only the SVG backend is compiled in (no bitmap backend, no font
//! loading): text goes into the file as `<text>` elements that the viewer
//! renders, so the harness draws charts on a headless machine with no fonts
//! installed. Three kinds:
//!
//! * [`workload_bars`]: one file per workload, median wall time and median
//!   peak RSS per system, as horizontal bars;
//! * [`rss_over_time`]: a system's RSS samples over a run (grow-shrink), and
//!   [`rss_overlay`], every system's in one chart;
//! * [`heap_cycles`]: a system's heap live, heap goal and RSS at the end of
//!   each GC cycle, from `heap_cycle` lines (spangc prints them; any
//!   system that does gets the chart).

use std::error::Error;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::table::MIB;
use crate::report::{HeapCycle, RssSample};

/// What a chart function can fail with.
pub type PlotResult = Result<(), Box<dyn Error>>;

/// One system's bars.
#[derive(Clone, Debug)]
pub struct Bar {
    /// System name.
    pub name: &'static str,
    /// Median wall time in seconds.
    pub wall_s: f64,
    /// Median peak RSS in MiB.
    pub rss_mib: f64,
}

fn bar_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    caption: &str,
    bars: &[Bar],
    value: fn(&Bar) -> f64,
) -> PlotResult {
    // Segment 0 is the bottom of the chart: list the bars bottom-up so the
    // chart reads top-down in table order.
    let at = |i: usize| &bars[bars.len() - 1 - i];
    let max = bars.iter().map(value).fold(0.0, f64::max).max(1e-9) * 1.2;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(130)
        .build_cartesian_2d(0.0..max, (0..bars.len()).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len())
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if *i < bars.len() => at(*i).name.to_owned(),
            _ => String::new(),
        })
        .draw()?;
    chart.draw_series((0..bars.len()).map(|i| {
        let b = at(i);
        let mut bar = Rectangle::new(
            [
                (0.0, SegmentValue::Exact(i)),
                (value(b), SegmentValue::Exact(i + 1)),
            ],
            BLUE.mix(0.6).filled(),
        );
        bar.set_margin(3, 3, 0, 0);
        bar
    }))?;
    chart.draw_series((0..bars.len()).map(|i| {
        let b = at(i);
        let v = value(b);
        Text::new(
            format!(
                " {}",
                if v < 10.0 {
                    format!("{v:.3}")
                } else {
                    format!("{v:.1}")
                }
            ),
            (v, SegmentValue::CenterOf(i)),
            ("sans-serif", 12),
        )
    }))?;
    Ok(())
}

/// Writes a workload's time and RSS bars to `path`.
///
/// # Errors
/// The file cannot be written.
pub fn workload_bars(path: &Path, title: &str, bars: &[Bar]) -> PlotResult {
    let height = 140 + 30 * u32::try_from(bars.len()).unwrap_or(100);
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let (left, right) = root.split_horizontally(550);
    bar_panel(&left, "median wall time (s)", bars, |b| b.wall_s)?;
    bar_panel(&right, "median peak RSS (MiB)", bars, |b| b.rss_mib)?;
    root.present()?;
    Ok(())
}

/// One line of a line chart.
struct Line<'a> {
    label: &'a str,
    color: RGBAColor,
    points: Vec<(f64, f64)>,
}

fn line_chart(path: &Path, title: &str, y_desc: &str, lines: &[Line<'_>]) -> PlotResult {
    let points = || lines.iter().flat_map(|l| l.points.iter().copied());
    let x_max = points().map(|p| p.0).fold(0.0, f64::max).max(1e-3);
    let y_max = points().map(|p| p.1).fold(0.0, f64::max).max(1e-3) * 1.1;
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the workload started")
        .y_desc(y_desc)
        .draw()?;
    for line in lines {
        let color = line.color;
        chart
            .draw_series(LineSeries::new(
                line.points.iter().copied(),
                color.stroke_width(2),
            ))?
            .label(line.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn seconds(t_ms: u64) -> f64 {
    t_ms as f64 / 1000.0
}

fn rss_points(samples: &[RssSample]) -> Vec<(f64, f64)> {
    samples
        .iter()
        .map(|s| (seconds(s.t_ms), s.rss_bytes as f64 / MIB))
        .collect()
}

/// Writes a system's RSS-over-time chart to `path`.
///
/// # Errors
/// The file cannot be written.
pub fn rss_over_time(path: &Path, title: &str, samples: &[RssSample]) -> PlotResult {
    let line = Line {
        label: "RSS",
        color: BLUE.to_rgba(),
        points: rss_points(samples),
    };
    line_chart(path, title, "RSS (MiB)", &[line])
}

/// Writes every system's RSS over time into one chart at `path`.
///
/// # Errors
/// The file cannot be written.
pub fn rss_overlay(path: &Path, title: &str, series: &[(&str, &[RssSample])]) -> PlotResult {
    let lines: Vec<Line<'_>> = series
        .iter()
        .enumerate()
        .map(|(i, (name, samples))| Line {
            label: name,
            color: Palette99::pick(i).to_rgba(),
            points: rss_points(samples),
        })
        .collect();
    line_chart(path, title, "RSS (MiB)", &lines)
}

/// Writes a system's heap-over-time chart (heap live, heap goal and RSS at
/// the end of each cycle) to `path`.
///
/// # Errors
/// The file cannot be written.
pub fn heap_cycles(path: &Path, title: &str, cycles: &[HeapCycle]) -> PlotResult {
    let series = |f: fn(&HeapCycle) -> u64| -> Vec<(f64, f64)> {
        cycles
            .iter()
            .map(|c| (seconds(c.t_ms), f(c) as f64 / MIB))
            .collect()
    };
    line_chart(
        path,
        title,
        "MiB at the end of each GC cycle",
        &[
            Line {
                label: "heap live",
                color: BLUE.to_rgba(),
                points: series(|c| c.heap_live_bytes),
            },
            Line {
                label: "heap goal",
                color: RED.to_rgba(),
                points: series(|c| c.heap_goal_bytes),
            },
            Line {
                label: "RSS",
                color: GREEN.to_rgba(),
                points: series(|c| c.rss_bytes),
            },
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("spangc-bench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn assert_svg_with_text(path: &Path, text: &str) {
        let svg = std::fs::read_to_string(path).unwrap();
        assert!(svg.starts_with("<svg"), "{svg:.80}");
        assert!(svg.contains(text), "{text} missing from {}", path.display());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn draws_bars_headless() {
        let path = temp("bars.svg");
        let bars = [
            Bar {
                name: "box",
                wall_s: 1.5,
                rss_mib: 30.0,
            },
            Bar {
                name: "go",
                wall_s: 2.0,
                rss_mib: 60.0,
            },
        ];
        workload_bars(&path, "binary-trees", &bars).unwrap();
        assert_svg_with_text(&path, "median peak RSS");
    }

    #[test]
    fn draws_rss_and_heap_series() {
        let path = temp("rss.svg");
        let samples: Vec<RssSample> = (0..10)
            .map(|i| RssSample {
                t_ms: i * 100,
                rss_bytes: (i + 1) << 20,
            })
            .collect();
        rss_over_time(&path, "grow-shrink: box", &samples).unwrap();
        assert_svg_with_text(&path, "grow-shrink: box");

        let path = temp("overlay.svg");
        rss_overlay(&path, "all", &[("box", &samples), ("go", &samples[2..])]).unwrap();
        assert_svg_with_text(&path, "go");

        let path = temp("heap.svg");
        let cycles: Vec<HeapCycle> = (1..6)
            .map(|i| HeapCycle {
                cycle: i,
                t_ms: i * 50,
                heap_live_bytes: i << 20,
                heap_goal_bytes: i << 21,
                rss_bytes: i << 22,
            })
            .collect();
        heap_cycles(&path, "spangc heap", &cycles).unwrap();
        assert_svg_with_text(&path, "heap goal");
    }
}
