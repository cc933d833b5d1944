//! The PNG chart: one metric over time, with the analysis drawn on top (trend line,
//! warm-up and heap-dump shading, labelled event lines, the judged points with their
//! values), the verdict in the title, the target and the run under it, and a sentence
//! saying which series the verdict judged and how much it grew. Made to be read by
//! someone who was not there (a chart attached to a failed CI job).
//!
//! Long series are reduced for drawing only: each pixel column keeps the minimum and
//! maximum of its samples, so spikes survive whatever the sample count.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::types::RangedCoordf64;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::*;
use plotters::style::register_font;

use crate::analyze::{Analysis, TrendLine, Verdict};
use crate::recording::{Event, EventKind, Line, Recording};
use crate::sample::Metric;
use crate::units::{Bytes, Delta, Elapsed};

/// The size charts are drawn at unless asked otherwise, pixels.
pub const DEFAULT_SIZE: (u32, u32) = (1280, 720);
/// The least size a chart stays readable at.
pub const MIN_SIZE: (u32, u32) = (320, 200);

/// Why a chart could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("nothing to chart: the recording has no samples")]
    NoSamples,
    #[error("nothing to chart: {0} was not recorded")]
    NoMetric(Metric),
    #[error("nothing to chart: every {0} value is unknown")]
    NoValues(Metric),
    #[error("chart size {0}x{1} is too small (the least is {min_w}x{min_h})", min_w = MIN_SIZE.0, min_h = MIN_SIZE.1)]
    TooSmall(u32, u32),
    #[error("the embedded chart font cannot be loaded")]
    Font,
    #[error("cannot draw the chart: {0}")]
    Draw(String),
    #[error("cannot encode the chart as PNG: {0}")]
    Encode(#[from] png::EncodingError),
    #[error("cannot write '{}': {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for ChartError {
    fn from(err: DrawingAreaErrorKind<E>) -> ChartError {
        ChartError::Draw(err.to_string())
    }
}

/// What the chart cannot know from the samples: what was watched, and which series the
/// verdict judged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChartContext {
    /// The target and the run, one line under the verdict, e.g.
    /// `pid 4242: node server.js · 2 min · stopped at --duration`. Empty: no such line.
    pub run: String,
    /// The series the verdict judged: a metric's name (`rss`) or `settled`. Empty: the
    /// metric drawn.
    pub judged: String,
    /// The metric's own verdict when another series was judged, e.g. `rss on its own:
    /// growing (linear): floor +1.20 MiB/min, p < 0.001`. Empty: none.
    pub beside: String,
    /// The judged series' name in the legend (`cgroup`, `total pss`). Empty: the metric's.
    pub label: String,
    /// More lines under the title: which total a tree was judged on and why, the cgroup
    /// against its limit.
    pub notes: Vec<String>,
    /// A memory limit drawn across the plot (a cgroup's).
    pub limit: Option<LimitLine>,
    /// `--follow`: each joined life, its warm-up shaded and the whole's trend drawn over it
    /// (one line across the lives would cross the gaps).
    pub lives: Vec<LifeMarks>,
    /// `--tree`: the processes that grew most, each one's RSS drawn thin under the total.
    pub members: Vec<(String, Vec<(f64, f64)>)>,
}

/// A limit to draw: bytes, and whether the y axis reaches up to it (the cgroup is judged:
/// the room left is the point) or it is drawn only when the judged data's scale holds it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LimitLine {
    pub bytes: f64,
    pub in_range: bool,
}

/// One life of a followed target on the chart.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LifeMarks {
    pub start_s: f64,
    /// Its warm-up ends here.
    pub window_start_s: f64,
    /// The whole's fitted floor over this life, on the run's clock and values.
    pub trend: TrendLine,
}

impl ChartContext {
    /// The line for a live run: `pid 4242: node server.js · 2 min · duration reached`.
    pub fn describe_run(pid: i32, command: &str, duration_s: f64, ended: &str) -> String {
        let mut text = format!("pid {pid}: {command} · {}", Elapsed(duration_s));
        if !ended.is_empty() {
            text.push_str(" · ");
            text.push_str(ended);
        }
        text
    }
}

/// Draws `metric` of `rec` with `analysis` on top and returns the PNG file's bytes.
pub fn render_png(
    rec: &Recording,
    metric: Metric,
    analysis: &Analysis,
    size: (u32, u32),
    context: &ChartContext,
) -> Result<Vec<u8>, ChartError> {
    let rendered = render_rgb(rec, metric, analysis, size, context)?;
    encode_png(&rendered.rgb, size)
}

/// `render_png`, written to `path`.
pub fn write_png(
    path: &Path,
    rec: &Recording,
    metric: Metric,
    analysis: &Analysis,
    size: (u32, u32),
    context: &ChartContext,
) -> Result<(), ChartError> {
    let bytes = render_png(rec, metric, analysis, size, context)?;
    std::fs::write(path, bytes).map_err(|source| ChartError::Write {
        path: path.to_path_buf(),
        source,
    })
}

// ---------------------------------------------------------------------------------------
// Scales: units and tick marks
// ---------------------------------------------------------------------------------------

/// A binary size unit for the y axis and the slope in the title.
#[derive(Clone, Copy, Debug, PartialEq)]
struct ByteUnit {
    name: &'static str,
    bytes: f64,
}

const BYTE_UNITS: [ByteUnit; 5] = [
    ByteUnit {
        name: "B",
        bytes: 1.0,
    },
    ByteUnit {
        name: "KiB",
        bytes: 1024.0,
    },
    ByteUnit {
        name: "MiB",
        bytes: 1024.0 * 1024.0,
    },
    ByteUnit {
        name: "GiB",
        bytes: 1024.0 * 1024.0 * 1024.0,
    },
    ByteUnit {
        name: "TiB",
        bytes: 1024.0 * 1024.0 * 1024.0 * 1024.0,
    },
];

impl ByteUnit {
    /// The largest unit in which `magnitude` bytes is at least 1.
    fn for_magnitude(magnitude: f64) -> ByteUnit {
        let magnitude = magnitude.abs();
        BYTE_UNITS
            .into_iter()
            .rev()
            .find(|u| magnitude >= u.bytes)
            .unwrap_or(BYTE_UNITS[0])
    }
}

/// A time unit for the x axis and the slope in the title.
#[derive(Clone, Copy, Debug, PartialEq)]
struct TimeUnit {
    name: &'static str,
    seconds: f64,
}

const SECONDS: TimeUnit = TimeUnit {
    name: "s",
    seconds: 1.0,
};
const MINUTES: TimeUnit = TimeUnit {
    name: "min",
    seconds: 60.0,
};
const HOURS: TimeUnit = TimeUnit {
    name: "h",
    seconds: 3600.0,
};

impl TimeUnit {
    /// Seconds up to 3 minutes, minutes up to 3 hours, hours beyond.
    fn for_duration(duration_s: f64) -> TimeUnit {
        if duration_s < 3.0 * 60.0 {
            SECONDS
        } else if duration_s < 3.0 * 3600.0 {
            MINUTES
        } else {
            HOURS
        }
    }
}

/// Round tick positions inside `lo..=hi`: multiples of 1, 2 or 5 times a power of ten,
/// as many as fit in `max_count` (at least 2). Returns the ticks and their step.
fn nice_ticks(lo: f64, hi: f64, max_count: usize) -> (Vec<f64>, f64) {
    let span = hi - lo;
    if span <= 0.0 || !span.is_finite() {
        return (vec![lo], 1.0);
    }
    let max_count = max_count.max(2) as i64;
    let count =
        |step: f64| (hi / step + 1e-9).floor() as i64 - (lo / step - 1e-9).ceil() as i64 + 1;
    // Start a decade below the average spacing and take the first step that fits.
    let mut magnitude = 10f64.powf((span / max_count as f64).log10().floor() - 1.0);
    let step = loop {
        if let Some(step) = [1.0, 2.0, 5.0]
            .into_iter()
            .map(|m| m * magnitude)
            .find(|&step| count(step) <= max_count)
        {
            break step;
        }
        magnitude *= 10.0;
    };
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    let ticks = (first..=last).map(|k| k as f64 * step).collect();
    (ticks, step)
}

/// Decimal places needed to tell ticks `step` apart (0 for steps of 1 and more).
fn decimals_for_step(step: f64) -> usize {
    if step <= 0.0 || !step.is_finite() {
        return 0;
    }
    (-step.log10() - 1e-9).ceil().max(0.0) as usize
}

/// `value` with `decimals` places, never "-0".
fn format_number(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.starts_with('-') && text[1..].chars().all(|c| c == '0' || c == '.') {
        text[1..].to_string()
    } else {
        text
    }
}

// ---------------------------------------------------------------------------------------
// Downsampling
// ---------------------------------------------------------------------------------------

/// The samples of one pixel column: their extremes, and the first and last in order so
/// that neighbouring columns can be joined the way the series runs.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Column {
    min: f64,
    max: f64,
    first: f64,
    last: f64,
    /// An unknown (NaN) value lies between this column and the previous known value:
    /// the line is broken here.
    gap_before: bool,
}

/// Splits `t_lo..=t_hi` into `columns` equal buckets and reduces the samples falling in
/// each to a `Column` (`None` where a bucket holds no known value). Unknown (NaN) or
/// infinite values break the line; samples with a non-finite time or outside the range
/// are skipped. Allocates only the `columns` buckets.
fn downsample(
    time: &[f64],
    values: impl Iterator<Item = f64>,
    t_lo: f64,
    t_hi: f64,
    columns: usize,
) -> Vec<Option<Column>> {
    let mut out: Vec<Option<Column>> = vec![None; columns];
    if columns == 0 {
        return out;
    }
    let span = t_hi - t_lo;
    let scale = if span > 0.0 {
        columns as f64 / span
    } else {
        0.0
    };
    let last_column = columns - 1;
    let mut pending_gap = false;
    let mut seen_value = false;
    for (&t, v) in time.iter().zip(values) {
        if !v.is_finite() {
            pending_gap = seen_value;
            continue;
        }
        if !t.is_finite() || t < t_lo || t > t_hi {
            continue;
        }
        let index = (((t - t_lo) * scale) as usize).min(last_column);
        match &mut out[index] {
            Some(col) => {
                col.min = col.min.min(v);
                col.max = col.max.max(v);
                col.last = v;
            }
            slot @ None => {
                *slot = Some(Column {
                    min: v,
                    max: v,
                    first: v,
                    last: v,
                    gap_before: pending_gap,
                });
            }
        }
        pending_gap = false;
        seen_value = true;
    }
    out
}

/// The time at the centre of bucket `index` of `downsample`.
fn column_time(index: usize, t_lo: f64, t_hi: f64, columns: usize) -> f64 {
    t_lo + (index as f64 + 0.5) * (t_hi - t_lo) / columns as f64
}

// ---------------------------------------------------------------------------------------
// What to draw: ranges, series, title
// ---------------------------------------------------------------------------------------

const METRIC_COLOR: RGBColor = RGBColor(31, 119, 180);
const ANON_COLOR: RGBColor = RGBColor(44, 160, 44);
/// Pure red, used for nothing else: the tests look for it.
const TREND_GROWING_COLOR: RGBColor = RGBColor(255, 0, 0);
const TREND_COLOR: RGBColor = RGBColor(110, 110, 110);
/// Tinted, so that no antialiased grey of black text takes its exact colour.
const WARMUP_FILL: RGBColor = RGBColor(226, 228, 234);
const EXCLUDED_FILL: RGBColor = RGBColor(255, 222, 173);
const SIGNAL_COLOR: RGBColor = RGBColor(148, 103, 189);
const SETTLED_COLOR: RGBColor = RGBColor(23, 190, 207);
const HEAP_COLOR: RGBColor = RGBColor(0, 128, 128);
/// Pure black, used for nothing else: the judged points (and their values).
const JUDGED_COLOR: RGBColor = RGBColor(0, 0, 0);
const DUMP_COLOR: RGBColor = RGBColor(230, 115, 0);
const OTHER_EVENT_COLOR: RGBColor = RGBColor(120, 120, 120);
const LOAD_COLOR: RGBColor = RGBColor(140, 86, 75);
const GRID_COLOR: RGBColor = RGBColor(222, 222, 222);
const AXIS_COLOR: RGBColor = RGBColor(80, 80, 80);
const TEXT_COLOR: RGBColor = RGBColor(25, 25, 25);
const GROWING_TITLE_COLOR: RGBColor = RGBColor(185, 20, 20);
const SWATCH_BORDER: RGBColor = RGBColor(170, 170, 170);
/// A cgroup's memory limit.
const LIMIT_COLOR: RGBColor = RGBColor(150, 20, 60);
/// The tree's top processes, light, under the total.
const MEMBER_COLORS: [RGBColor; 3] = [
    RGBColor(158, 202, 225),
    RGBColor(253, 174, 107),
    RGBColor(188, 189, 220),
];

/// Series with at most this many samples also get a dot per sample, so that one or two
/// samples still show.
const MARKER_LIMIT: usize = 100;

/// One line of the chart, reduced to pixel columns.
struct Series<'a> {
    label: String,
    color: RGBColor,
    values: Line<'a>,
    columns: Vec<Option<Column>>,
}

/// The finite time range of the samples, padded by 1% (or a second each side when all
/// samples share one instant) so that dots at the ends are not cut.
fn time_range(time: &[f64]) -> Option<(f64, f64)> {
    let (lo, hi) = finite_extent(time.iter().copied())?;
    let span = hi - lo;
    Some(if span > 0.0 {
        (lo - span * 0.01, hi + span * 0.01)
    } else {
        (lo - 1.0, hi + 1.0)
    })
}

/// The value range to show: `lo..hi` padded by 6% each side, or by 5% of the value (at
/// least 1 KiB) when it is a single value. Never below zero when the data is not.
fn value_range(lo: f64, hi: f64) -> (f64, f64) {
    let span = hi - lo;
    let pad = if span > 0.0 {
        span * 0.06
    } else {
        (hi.abs() * 0.05).max(1024.0)
    };
    let padded_lo = if lo >= 0.0 {
        (lo - pad).max(0.0)
    } else {
        lo - pad
    };
    (padded_lo, hi + pad)
}

fn finite_extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    (lo <= hi).then_some((lo, hi))
}

/// The y range to show, before padding: everything drawn (every series, the judged and
/// settled points, the managed heap's readings, the trend), so no sample falls off the
/// plot. At least 10% of the level from bottom to top: a rise of a few tenths of a percent
/// (noise, for the verdict) must not fill the plot and look like a leak.
fn shown_extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = finite_extent(values)?;
    let least = 0.1 * hi.abs();
    Some(if hi - lo < least {
        let mid = 0.5 * (lo + hi);
        let lo = (mid - 0.5 * least).max(0.0).min(lo);
        (lo, hi.max(lo + least))
    } else {
        (lo, hi)
    })
}

/// The polyline `points` (pixels) where it is inside the plot's y range `(lo, hi)`.
fn draw_clipped(
    chart: &mut Plot<'_, '_>,
    points: &[(f64, f64)],
    (lo, hi): (f64, f64),
    style: ShapeStyle,
) -> Result<(), ChartError> {
    chart.draw_series(
        clip_y(points, lo, hi)
            .into_iter()
            .map(|p| PathElement::new(p, style)),
    )?;
    Ok(())
}

/// The parts of the polyline `points` with y inside `lo..=hi`, as separate runs.
fn clip_y(points: &[(f64, f64)], lo: f64, hi: f64) -> Vec<Vec<(f64, f64)>> {
    let inside = |y: f64| y >= lo && y <= hi;
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    for (i, &p) in points.iter().enumerate() {
        if i == 0 {
            if inside(p.1) {
                current.push(p);
            }
            continue;
        }
        let q = points[i - 1];
        // The share of the segment q -> p that lies inside, as parameters 0..=1.
        let (dy, dx) = (p.1 - q.1, p.0 - q.0);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        if dy == 0.0 {
            if !inside(q.1) {
                (t0, t1) = (1.0, 0.0);
            }
        } else {
            let (a, b) = ((lo - q.1) / dy, (hi - q.1) / dy);
            t0 = t0.max(a.min(b));
            t1 = t1.min(a.max(b));
        }
        if t0 > t1 {
            if !current.is_empty() {
                runs.push(std::mem::take(&mut current));
            }
            continue;
        }
        let at = |t: f64| (q.0 + dx * t, q.1 + dy * t);
        if t0 > 0.0 || current.is_empty() {
            if !current.is_empty() {
                runs.push(std::mem::take(&mut current));
            }
            current.push(at(t0));
        }
        current.push(at(t1));
        if t1 < 1.0 {
            runs.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// The judged points as recorded: the analysis' floor points with the heap-dump steps
/// it took out added back, each moved from the middle of its window (where the analysis
/// puts it) to the sample that holds its value, so the dots sit on the drawn series.
/// `time` and `values` are the judged series', in time order.
fn judged_points(analysis: &Analysis, time: &[f64], values: &[f64]) -> Vec<(f64, f64)> {
    let floor = &analysis.floor;
    floor
        .iter()
        .enumerate()
        .map(|(i, &(t, v))| {
            let lift: f64 = analysis.steps.iter().filter(|s| s.0 < t).map(|s| s.1).sum();
            let v = v + lift;
            // The window is about halfway to each neighbour.
            let lo = i
                .checked_sub(1)
                .map_or(f64::NEG_INFINITY, |j| 0.5 * (floor[j].0 + t));
            let hi = floor.get(i + 1).map_or(f64::INFINITY, |p| 0.5 * (p.0 + t));
            let from = time.partition_point(|&x| x < lo);
            let to = time.partition_point(|&x| x <= hi).max(from);
            let at = time[from..to]
                .iter()
                .zip(&values[from.min(values.len())..to.min(values.len())])
                .filter(|p| (p.1 - v).abs() < 0.5)
                .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
                .map_or(t, |p| *p.0);
            (at, v)
        })
        .collect()
}

/// The text above the plot: the verdict's headline (the same words as the live line and
/// the end summary), the target and the run, and what was judged.
fn header_lines(
    analysis: &Analysis,
    context: &ChartContext,
    metric: Metric,
    axis_from: f64,
) -> Vec<String> {
    let judged = if context.judged.is_empty() {
        metric.name()
    } else {
        context.judged.as_str()
    };
    let judged_line = if context.lives.is_empty() {
        judged_text(analysis, judged, Some(axis_from))
    } else {
        lives_text(analysis, judged, context.lives.len())
    };
    let mut lines = vec![
        analysis.headline().to_string(),
        context.run.clone(),
        judged_line,
    ];
    lines.extend(context.notes.iter().cloned());
    if !context.beside.is_empty() {
        lines.push(format!("{}.", context.beside));
    }
    lines
}

/// The sentence under the title saying what the verdict judged and how much it grew.
fn judged_text(analysis: &Analysis, judged: &str, axis_from: Option<f64>) -> String {
    let (Some(line), Some(growth)) = (
        analysis.trend.filter(|_| !analysis.floor.is_empty()),
        analysis.growth_bytes,
    ) else {
        return format!("Not judged: {}.", analysis.reason);
    };
    let what = if judged == "settled" {
        "the settled samples (taken after each signal, hollow dots), their lowest in each window"
            .to_string()
    } else if judged == crate::judge::MANAGED {
        // Not drawn as a line: the dots are the runtime's own readings, not RSS.
        "the managed heap right after forced GCs (asked of the runtime: a lazy GC cannot \
         hide a leak there), its lowest in each window"
            .to_string()
    } else {
        format!("the {judged} floor, its lowest value in each window")
    };
    let end = line.v0 + growth;
    let pct = if line.v0 > 0.0 {
        format!(" ({:+.1}%)", growth / line.v0 * 100.0)
    } else {
        String::new()
    };
    let mut text = format!(
        "Judged: {what} (black dots), after the {} warm-up. Fitted floor {} → {}, {}{pct}.",
        Elapsed(analysis.warmup_s),
        Bytes(line.v0),
        Bytes(end),
        Delta(growth)
    );
    let stepped: f64 = analysis.steps.iter().map(|s| s.1).sum();
    if stepped > 0.0 {
        text.push_str(&format!(
            " Steps of {} across heap dumps left out.",
            Bytes(stepped)
        ));
    }
    if let Some(from) = axis_from.filter(|v| *v > 0.0) {
        text.push_str(&format!(" The y axis starts at {}, not 0.", Bytes(from)));
    }
    text
}

/// The sentence under the title for a followed target: what was judged, over its lives.
fn lives_text(analysis: &Analysis, judged: &str, lives: usize) -> String {
    let (Some(_), Some(growth)) = (analysis.trend, analysis.growth_bytes) else {
        return format!("Not judged: {}.", analysis.reason);
    };
    format!(
        "Judged: the {judged} floor of {} joined end to end (each life's warm-up, and the drop \
         and the gap at each restart, left out; black dots), its trend drawn over each life: \
         {} over {} of life.",
        crate::segments::lives_word(lives),
        Delta(growth),
        Elapsed(analysis.trend.map_or(0.0, |t| t.t1 - t.t0))
    )
}

/// The words on an event's line: `SIGUSR2`, `load start`, `dump start`, `dump written`.
fn event_text(kind: &EventKind) -> String {
    match kind {
        EventKind::Signal(sig) => sig.clone(),
        EventKind::Settled => "settled".to_string(),
        EventKind::DumpStart(_) => "dump start".to_string(),
        EventKind::Dump(_) => "dump written".to_string(),
        EventKind::Other(text) => match (text.split_once(':'), kind.restarted()) {
            (_, Some(pid)) => format!("restart: pid {pid}"),
            (Some(("gone", pid)), _) => format!("pid {pid} gone"),
            _ => text.replace(['-', '_'], " "),
        },
    }
}

// ---------------------------------------------------------------------------------------
// Drawing
// ---------------------------------------------------------------------------------------

/// Pixel sizes of the parts of the chart, scaled with the image.
struct Layout {
    scale: f64,
    margin: u32,
    y_label_area: u32,
    x_label_area: u32,
    title_font: f64,
    label_font: f64,
}

impl Layout {
    fn new((width, height): (u32, u32)) -> Layout {
        // By area, so that a square chart keeps readable text; small charts keep it too.
        let scale = (f64::from(width) * f64::from(height) / (1280.0 * 720.0))
            .sqrt()
            .clamp(0.75, 2.0);
        let px = |v: f64| (v * scale).round() as u32;
        Layout {
            scale,
            margin: px(18.0),
            y_label_area: px(100.0),
            x_label_area: px(48.0),
            title_font: even(22.0 * scale),
            label_font: even(14.0 * scale),
        }
    }

    fn px(&self, v: f64) -> i32 {
        (v * self.scale).round() as i32
    }

    /// Width of the plot area in pixels: one downsampling column each.
    fn plot_width(&self, width: u32) -> u32 {
        width
            .saturating_sub(2 * self.margin + self.y_label_area)
            .max(1)
    }

    fn font(&self, size: f64, style: FontStyle) -> FontDesc<'static> {
        FontDesc::new(FontFamily::SansSerif, size, style)
    }
}

/// A linear axis with grid lines and labels exactly at the ticks we chose.
struct TickedAxis {
    linear: RangedCoordf64,
    ticks: Vec<f64>,
}

impl TickedAxis {
    fn new(lo: f64, hi: f64, ticks: Vec<f64>) -> TickedAxis {
        TickedAxis {
            linear: (lo..hi).into(),
            ticks,
        }
    }
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.linear.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.linear.range()
    }
}

/// `size` rounded to an even number of pixels: plotters places each glyph at half the
/// font size, rounded, so an odd size makes letters jump up and down.
fn even(size: f64) -> f64 {
    (size / 2.0).round().max(4.0) * 2.0
}

/// What a legend entry shows before its label.
enum Swatch {
    Line(RGBColor),
    Fill(RGBColor),
    Dot(RGBColor),
    Ring(RGBColor),
}

struct LegendItem {
    swatch: Swatch,
    label: String,
}

/// A drawn chart before encoding: RGB pixels and where the plot area ended up.
struct Rendered {
    rgb: Vec<u8>,
    /// Plot area, pixels: x range and y range. Only the tests look at it.
    #[cfg_attr(not(test), allow(dead_code))]
    plot: (std::ops::Range<i32>, std::ops::Range<i32>),
}

pub(crate) fn register_fonts() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    ok.then_some(()).ok_or(ChartError::Font)
}

fn render_rgb<'a>(
    rec: &'a Recording,
    metric: Metric,
    analysis: &Analysis,
    size: (u32, u32),
    context: &ChartContext,
) -> Result<Rendered, ChartError> {
    let (width, height) = size;
    if width < MIN_SIZE.0 || height < MIN_SIZE.1 {
        return Err(ChartError::TooSmall(width, height));
    }
    if rec.is_empty() {
        return Err(ChartError::NoSamples);
    }
    let values = rec.metric(metric).ok_or(ChartError::NoMetric(metric))?;
    let (t_lo, t_hi) = time_range(&rec.time_s).ok_or(ChartError::NoSamples)?;
    register_fonts()?;

    let layout = Layout::new(size);
    let columns = layout.plot_width(width) as usize;
    let reduce = |label: String, color, values: Line<'a>| Series {
        label,
        color,
        values,
        columns: downsample(&rec.time_s, values.iter(), t_lo, t_hi, columns),
    };
    let label = if context.label.is_empty() {
        metric.name().to_string()
    } else {
        context.label.clone()
    };
    let mut series = vec![reduce(label, METRIC_COLOR, Line::Exact(values))];
    if metric == Metric::Rss
        && context.label.is_empty()
        && let Some(anon) = rec.line(Metric::Anon)
    {
        series.push(reduce(Metric::Anon.name().to_string(), ANON_COLOR, anon));
    }
    let points = Points::of(rec, values, analysis, &context.judged);
    let (v_lo, v_hi) =
        y_range(&series, &points, analysis, context).ok_or(ChartError::NoValues(metric))?;

    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    let plot = {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        let frame = Frame {
            t: (t_lo, t_hi),
            v: (v_lo, v_hi),
            time_unit: TimeUnit::for_duration(t_hi - t_lo),
            byte_unit: ByteUnit::for_magnitude(v_lo.abs().max(v_hi.abs())),
        };
        let header = header_lines(analysis, context, metric, v_lo);
        let plot = draw(
            &root, &layout, &frame, rec, &series, analysis, &header, &points, context,
        )?;
        root.present()?;
        plot
    };
    Ok(Rendered { rgb, plot })
}

/// The y range shown, padded: everything drawn (see `shown_extent`).
fn y_range(
    series: &[Series<'_>],
    points: &Points,
    analysis: &Analysis,
    context: &ChartContext,
) -> Option<(f64, f64)> {
    let lines = series.iter().flat_map(|s| s.values.iter());
    // A followed target's trend is drawn over each life, not as one line; a limit is
    // in range when its series is the one judged.
    let whole = analysis.trend.filter(|_| context.lives.is_empty());
    let trend = whole
        .iter()
        .flat_map(|l| trend_segments(l, &analysis.steps))
        .flat_map(|(a, b)| [a.1, b.1])
        .chain(context.lives.iter().flat_map(|l| [l.trend.v0, l.trend.v1]))
        .chain(context.limit.filter(|l| l.in_range).map(|l| l.bytes))
        // --tree: the processes drawn thin under the total.
        .chain(
            context
                .members
                .iter()
                .flat_map(|(_, p)| p.iter().map(|p| p.1)),
        );
    let dots = points
        .judged
        .iter()
        .chain(&points.settled)
        .chain(&points.heap)
        .map(|p| p.1);
    shown_extent(lines.chain(trend).chain(dots)).map(|(lo, hi)| value_range(lo, hi))
}

/// The points drawn as dots: the judged floor points, the settled samples, and the
/// managed heap's readings (when it was judged: a line of its own).
struct Points {
    judged: Vec<(f64, f64)>,
    settled: Vec<(f64, f64)>,
    heap: Vec<(f64, f64)>,
}

impl Points {
    /// The points of the series `judged` names (`settled`, `heap-after-gc`, or the metric
    /// drawn, whose `values` are given).
    fn of(rec: &Recording, values: &[f64], analysis: &Analysis, judged: &str) -> Points {
        let (settled_t, settled_v) = rec.settled(values);
        let heap = (judged == crate::judge::MANAGED)
            .then(|| crate::judge::managed_series(rec))
            .flatten();
        let judged_on = if judged == "settled" {
            judged_points(analysis, &settled_t, &settled_v)
        } else if let Some((t, v)) = &heap {
            judged_points(analysis, t, v)
        } else {
            judged_points(analysis, &rec.time_s, values)
        };
        Points {
            judged: judged_on,
            settled: settled_t.into_iter().zip(settled_v).collect(),
            heap: heap
                .map(|(t, v)| t.into_iter().zip(v).collect())
                .unwrap_or_default(),
        }
    }
}

/// The data ranges shown (seconds, bytes) and the units the axes use.
struct Frame {
    t: (f64, f64),
    v: (f64, f64),
    time_unit: TimeUnit,
    byte_unit: ByteUnit,
}

impl Frame {
    fn x(&self, t_s: f64) -> f64 {
        t_s / self.time_unit.seconds
    }
    fn y(&self, bytes: f64) -> f64 {
        bytes / self.byte_unit.bytes
    }
    /// `lo..hi` seconds clamped to the time range, in axis units; `None` if outside it.
    fn x_span(&self, lo: f64, hi: f64) -> Option<(f64, f64)> {
        let (lo, hi) = (lo.max(self.t.0), hi.min(self.t.1));
        (lo < hi).then(|| (self.x(lo), self.x(hi)))
    }
}

/// The plot as plotters holds it: the chart's area with its two ticked axes.
type Plot<'a, 'b> = plotters::chart::ChartContext<
    'a,
    BitMapBackend<'b>,
    plotters::coord::cartesian::Cartesian2d<TickedAxis, TickedAxis>,
>;

/// Draws the chart in layers, bottom to top: the verdict text (header), the frame, the
/// warm-up and dump shading (and each later life's warm-up), the axes, the event lines, the
/// tree's top processes, the series, the limit, the trend (or its piece over each life), the
/// judged points with their values, the event words. Returns the plot's pixel range.
#[allow(clippy::too_many_arguments)]
fn draw(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    layout: &Layout,
    frame: &Frame,
    rec: &Recording,
    series: &[Series<'_>],
    analysis: &Analysis,
    header: &[String],
    marks: &Points,
    context: &ChartContext,
) -> Result<(std::ops::Range<i32>, std::ops::Range<i32>), ChartError> {
    root.fill(&WHITE)?;
    let mut legend = legend_items(rec, series, analysis, marks, frame.t);
    legend.extend(service_legend(context, frame));
    let header_height = draw_header(root, layout, header, analysis.verdict, &legend)?;
    let (mut chart, decimals) = draw_frame(root, header_height, layout, frame)?;
    debug_assert_eq!(
        chart.plotting_area().dim_in_pixel().0 as usize,
        series[0].columns.len(),
        "one downsampling column per pixel"
    );
    // Shading first, so that the grid stays visible on it.
    draw_shading(&mut chart, frame, analysis)?;
    draw_life_warmups(&mut chart, frame, &context.lives)?;
    draw_axes(&mut chart, layout, frame, decimals)?;
    if frame.v.0 > 0.0 {
        draw_axis_break(root, &chart, layout)?;
    }
    let events = draw_event_lines(&mut chart, layout, frame, rec)?;
    draw_members(&mut chart, layout, frame, &context.members)?;
    draw_series(&mut chart, layout, frame, rec, series)?;
    draw_heap(&mut chart, layout, frame, &marks.heap)?;
    draw_limit(&mut chart, layout, frame, context.limit)?;
    if context.lives.is_empty() {
        draw_trend(&mut chart, layout, frame, analysis)?;
    } else {
        draw_life_trends(&mut chart, layout, frame, analysis.verdict, &context.lives)?;
    }
    draw_marks(&mut chart, layout, frame, marks)?;
    // Event words last, on top of everything, at the top of their lines.
    draw_event_words(&mut chart, layout, frame, &events)?;
    Ok(chart.plotting_area().get_pixel_range())
}

/// The plot under the header, its axes ticked at round values; with the decimals each
/// axis's labels need.
fn draw_frame<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    header_height: u32,
    layout: &Layout,
    frame: &Frame,
) -> Result<(Plot<'a, 'b>, (usize, usize)), ChartError> {
    let (_, body) = root.split_vertically(header_height);
    let (width, height) = root.dim_in_pixel();
    let plot_width = layout.plot_width(width) as f64;
    let plot_height =
        height.saturating_sub(header_height + layout.margin + layout.x_label_area) as f64;
    let (x_lo, x_hi) = (frame.x(frame.t.0), frame.x(frame.t.1));
    let (y_lo, y_hi) = (frame.y(frame.v.0), frame.y(frame.v.1));
    let (x_ticks, x_step) = nice_ticks(x_lo, x_hi, (plot_width / (95.0 * layout.scale)) as usize);
    let (y_ticks, y_step) = nice_ticks(y_lo, y_hi, (plot_height / (55.0 * layout.scale)) as usize);
    let chart = ChartBuilder::on(&body)
        .margin_left(layout.margin)
        .margin_right(layout.margin)
        .margin_top(layout.margin / 2)
        .margin_bottom(layout.margin / 2)
        .x_label_area_size(layout.x_label_area)
        .y_label_area_size(layout.y_label_area)
        .build_cartesian_2d(
            TickedAxis::new(x_lo, x_hi, x_ticks),
            TickedAxis::new(y_lo, y_hi, y_ticks),
        )?;
    Ok((
        chart,
        (decimals_for_step(x_step), decimals_for_step(y_step)),
    ))
}

/// The warm-up and the excluded (heap-dump) periods, shaded. The analysed window starts
/// where the judged series' warm-up ends (the settled series starts with the first settled
/// sample, not with the run).
fn draw_shading(
    chart: &mut Plot<'_, '_>,
    frame: &Frame,
    analysis: &Analysis,
) -> Result<(), ChartError> {
    let (y_lo, y_hi) = (frame.y(frame.v.0), frame.y(frame.v.1));
    let warmup_end = analysis.window_start_s;
    let warmup = (analysis.warmup_s > 0.0)
        .then(|| frame.x_span(f64::NEG_INFINITY, warmup_end))
        .flatten();
    let excluded = analysis
        .excluded
        .iter()
        .filter_map(|&(lo, hi)| frame.x_span(lo, hi));
    let shades = warmup
        .map(|span| (span, WARMUP_FILL))
        .into_iter()
        .chain(excluded.map(|span| (span, EXCLUDED_FILL)));
    chart.draw_series(
        shades.map(|((x0, x1), color)| Rectangle::new([(x0, y_lo), (x1, y_hi)], color.filled())),
    )?;
    Ok(())
}

/// A y axis that does not start at 0 is marked with a break (two slanted strokes across
/// its foot), as on a hand-drawn chart.
fn draw_axis_break(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    chart: &Plot<'_, '_>,
    layout: &Layout,
) -> Result<(), ChartError> {
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let (x, y) = (xs.start - 1, ys.end - layout.px(14.0));
    let (w, h, gap) = (layout.px(7.0), layout.px(4.0), layout.px(4.0));
    let stroke = AXIS_COLOR.stroke_width(layout.px(1.5).max(1) as u32);
    root.draw(&Polygon::new(
        vec![
            (x - w, y + h),
            (x + w, y - h),
            (x + w, y - h - gap),
            (x - w, y + h - gap),
        ],
        WHITE.filled(),
    ))?;
    for dy in [0, gap] {
        root.draw(&PathElement::new(
            vec![(x - w, y + h - dy), (x + w, y - h - dy)],
            stroke,
        ))?;
    }
    Ok(())
}

/// The grid, the axes and their labels.
fn draw_axes(
    chart: &mut Plot<'_, '_>,
    layout: &Layout,
    frame: &Frame,
    (x_decimals, y_decimals): (usize, usize),
) -> Result<(), ChartError> {
    let label_style = layout
        .font(layout.label_font, FontStyle::Normal)
        .color(&TEXT_COLOR);
    let x_formatter = |x: &f64| format_number(*x, x_decimals);
    let y_formatter =
        |y: &f64| format!("{} {}", format_number(*y, y_decimals), frame.byte_unit.name);
    chart
        .configure_mesh()
        .bold_line_style(GRID_COLOR.stroke_width(1))
        .light_line_style(TRANSPARENT)
        .axis_style(AXIS_COLOR.stroke_width(1))
        .set_all_tick_mark_size(layout.px(5.0))
        .label_style(label_style.clone())
        .axis_desc_style(label_style)
        .x_desc(format!("time ({})", frame.time_unit.name))
        .x_label_formatter(&x_formatter)
        .y_label_formatter(&y_formatter)
        .draw()?;
    Ok(())
}

/// A line for each event in the time range (settled samples are dots, drawn later),
/// signals under dumps; returns the events drawn, for their words.
fn draw_event_lines<'r>(
    chart: &mut Plot<'_, '_>,
    layout: &Layout,
    frame: &Frame,
    rec: &'r Recording,
) -> Result<Vec<&'r Event>, ChartError> {
    let (y_lo, y_hi) = (frame.y(frame.v.0), frame.y(frame.v.1));
    let mut events: Vec<&Event> = rec
        .events
        .iter()
        .filter(|e| e.kind != EventKind::Settled && !e.kind.is_mark())
        .filter(|e| (frame.t.0..=frame.t.1).contains(&e.elapsed_s))
        .collect();
    events.sort_by_key(|e| event_layer(&e.kind));
    chart.draw_series(events.iter().map(|event| {
        let x = frame.x(event.elapsed_s);
        let (color, width) = event_style(&event.kind);
        let width = layout.px(f64::from(width)).max(1) as u32;
        PathElement::new(vec![(x, y_lo), (x, y_hi)], color.stroke_width(width))
    }))?;
    Ok(events)
}

/// The series, the chosen metric last (on top); values outside the y range are clipped
/// at its edges.
fn draw_series(
    chart: &mut Plot<'_, '_>,
    layout: &Layout,
    frame: &Frame,
    rec: &Recording,
    series: &[Series<'_>],
) -> Result<(), ChartError> {
    let (y_lo, y_hi) = (frame.y(frame.v.0), frame.y(frame.v.1));
    for s in series.iter().rev() {
        let style = s.color.stroke_width(layout.px(1.5).max(1) as u32);
        let columns = s.columns.len();
        let x_of = |i: usize| frame.x(column_time(i, frame.t.0, frame.t.1, columns));
        // Each column's extent as its own vertical segment (a path doubling back on
        // itself draws badly when thick), then the line joining the columns in order.
        let extents = s.columns.iter().enumerate().filter_map(|(i, c)| {
            let c = c.as_ref().filter(|c| c.max > c.min)?;
            let (lo, hi) = (frame.y(c.min).max(y_lo), frame.y(c.max).min(y_hi));
            (lo < hi).then(|| PathElement::new(vec![(x_of(i), lo), (x_of(i), hi)], style))
        });
        chart.draw_series(extents)?;
        for run in column_runs(&s.columns) {
            let points: Vec<(f64, f64)> = run
                .iter()
                .flat_map(|&(i, c)| {
                    let x = x_of(i);
                    [(x, frame.y(c.first)), (x, frame.y(c.last))]
                })
                .collect();
            draw_clipped(chart, &points, (y_lo, y_hi), style)?;
        }
        if rec.len() <= MARKER_LIMIT {
            let dots = rec
                .time_s
                .iter()
                .zip(s.values.iter())
                .filter(|(t, v)| t.is_finite() && v.is_finite())
                .map(|(&t, v)| (frame.x(t), frame.y(v)))
                .filter(|p| (y_lo..=y_hi).contains(&p.1))
                .map(|p| Circle::new(p, layout.px(2.5), s.color.filled()));
            chart.draw_series(dots)?;
        }
    }
    Ok(())
}

/// The managed heap's readings, all of them (the warm-up too), as a thin line of dots,
/// under the trend.
fn draw_heap(
    chart: &mut Plot<'_, '_>,
    layout: &Layout,
    frame: &Frame,
    heap: &[(f64, f64)],
) -> Result<(), ChartError> {
    if heap.is_empty() {
        return Ok(());
    }
    let (y_lo, y_hi) = (frame.y(frame.v.0), frame.y(frame.v.1));
    let style = HEAP_COLOR.stroke_width(layout.px(1.5).max(1) as u32);
    let points: Vec<(f64, f64)> = heap
        .iter()
        .map(|&(t, v)| (frame.x(t), frame.y(v)))
        .collect();
    draw_clipped(chart, &points, (y_lo, y_hi), style)?;
    chart.draw_series(
        points
            .into_iter()
            .filter(|p| (y_lo..=y_hi).contains(&p.1))
            .map(|p| Circle::new(p, layout.px(2.5), HEAP_COLOR.filled())),
    )?;
    Ok(())
}

/// The fitted trend, coloured by the verdict.
fn draw_trend(
    chart: &mut Plot<'_, '_>,
    layout: &Layout,
    frame: &Frame,
    analysis: &Analysis,
) -> Result<(), ChartError> {
    let Some(line) = analysis.trend else {
        return Ok(());
    };
    let segments = trend_segments(&line, &analysis.steps);
    draw_trend_segments(chart, layout, frame, analysis.verdict, &segments)
}

/// A straight piece of a trend: (seconds, bytes) at each end.
type Piece = ((f64, f64), (f64, f64));

/// Straight pieces of a fitted trend, coloured by the verdict, clipped to the plot.
fn draw_trend_segments(
    chart: &mut Plot<'_, '_>,
    layout: &Layout,
    frame: &Frame,
    verdict: Verdict,
    segments: &[Piece],
) -> Result<(), ChartError> {
    let (y_lo, y_hi) = (frame.y(frame.v.0), frame.y(frame.v.1));
    let (color, width) = trend_style(verdict);
    let style = color.stroke_width(layout.px(width).max(1) as u32);
    for (a, b) in segments {
        let points = [(frame.x(a.0), frame.y(a.1)), (frame.x(b.0), frame.y(b.1))];
        draw_clipped(chart, &points, (y_lo, y_hi), style)?;
    }
    Ok(())
}

/// The settled samples (hollow) and the judged points (filled), with values: the first
/// and the last point, and those between with room around them.
fn draw_marks(
    chart: &mut Plot<'_, '_>,
    layout: &Layout,
    frame: &Frame,
    marks: &Points,
) -> Result<(), ChartError> {
    let (y_lo, y_hi) = (frame.y(frame.v.0), frame.y(frame.v.1));
    let in_range = |&&(t, v): &&(f64, f64)| {
        (frame.t.0..=frame.t.1).contains(&t) && (y_lo..=y_hi).contains(&frame.y(v))
    };
    let ring = SETTLED_COLOR.stroke_width(layout.px(2.0).max(1) as u32);
    chart.draw_series(
        marks
            .settled
            .iter()
            .filter(in_range)
            .map(|&(t, v)| Circle::new((frame.x(t), frame.y(v)), layout.px(5.0), ring)),
    )?;
    let judged: Vec<&(f64, f64)> = marks.judged.iter().filter(in_range).collect();
    chart.draw_series(judged.iter().map(|&&(t, v)| {
        Circle::new(
            (frame.x(t), frame.y(v)),
            layout.px(4.0),
            JUDGED_COLOR.filled(),
        )
    }))?;
    let value_face = layout.font(layout.label_font * 0.9, FontStyle::Bold);
    let value_font = value_face.color(&JUDGED_COLOR);
    let value_spacing = layout.px(85.0);
    let pixel_x: Vec<i32> = judged
        .iter()
        .map(|&&(t, v)| chart.backend_coord(&(frame.x(t), frame.y(v))).0)
        .collect();
    let mut labelled: Vec<usize> = Vec::new();
    if let Some(last) = pixel_x.len().checked_sub(1) {
        for (i, &px) in pixel_x.iter().enumerate() {
            let after_previous = labelled
                .last()
                .is_none_or(|&j| px - pixel_x[j] >= value_spacing);
            let before_last = i == last || pixel_x[last] - px >= value_spacing;
            if i == 0 || (after_previous && before_last) {
                labelled.push(i);
            }
        }
    }
    for i in labelled {
        let &(t, v) = judged[i];
        // On a white band, so that the lines under it do not cross the figures.
        let text = Bytes(v).to_string();
        let (w, h) = value_face
            .box_size(&text)
            .map_err(|e| ChartError::Draw(e.to_string()))?;
        let (left, top) = (-layout.px(22.0), layout.px(9.0));
        let band = [
            (left - layout.px(2.0), top - layout.px(1.0)),
            (
                left + w as i32 + layout.px(2.0),
                top + h as i32 + layout.px(1.0),
            ),
        ];
        let label = EmptyElement::at((frame.x(t), frame.y(v)))
            + Rectangle::new(band, WHITE.mix(0.85).filled())
            + Text::new(text, (left, top), value_font.clone());
        chart.plotting_area().draw(&label)?;
    }
    Ok(())
}

/// The events' words at the top of their lines. Events closer than a label's width share
/// one label ("SIGUSR2 · dump start"), in the colour of the most important; the same words
/// repeated (a signal every few seconds) are written again only after some room, or they
/// would hide the data; a label that would overlap the previous one is left out (the legend
/// names every kind).
fn draw_event_words(
    chart: &mut Plot<'_, '_>,
    layout: &Layout,
    frame: &Frame,
    events: &[&Event],
) -> Result<(), ChartError> {
    let y_hi = frame.y(frame.v.1);
    let event_font = layout
        .font(layout.label_font * 0.9, FontStyle::Normal)
        .transform(FontTransform::Rotate90);
    let mut by_time = events.to_vec();
    by_time.sort_by(|a, b| {
        a.elapsed_s
            .total_cmp(&b.elapsed_s)
            .then(label_rank(&b.kind).cmp(&label_rank(&a.kind)))
    });
    let spacing = (layout.label_font * 1.3).round() as i32;
    let mut clusters: Vec<(i32, f64, Vec<String>, RGBColor, u8)> = Vec::new();
    for event in by_time {
        let x = frame.x(event.elapsed_s);
        let px = chart.backend_coord(&(x, y_hi)).0;
        let text = event_text(&event.kind);
        match clusters.last_mut() {
            Some(c) if px - c.0 < spacing => {
                if !c.2.contains(&text) {
                    c.2.push(text);
                }
                if label_rank(&event.kind) > c.4 {
                    c.3 = event_style(&event.kind).0;
                    c.4 = label_rank(&event.kind);
                }
            }
            _ => clusters.push((
                px,
                x,
                vec![text],
                event_style(&event.kind).0,
                label_rank(&event.kind),
            )),
        }
    }
    let plot_height_px = {
        let (_, ys) = chart.plotting_area().get_pixel_range();
        ys.end - ys.start
    };
    let mut last_label: Option<(i32, String)> = None;
    for (px, x, texts, color, _) in clusters {
        let text = texts.join(" · ");
        let needed = match &last_label {
            Some((_, last)) if *last == text => spacing * 8,
            _ => spacing,
        };
        if last_label
            .as_ref()
            .is_some_and(|(last, _)| px - last < needed)
        {
            continue;
        }
        // On a white band, so that the lines and dots under it do not eat letters.
        let (w, h) = event_font
            .box_size(&text)
            .map_err(|e| ChartError::Draw(e.to_string()))?;
        let (w, h) = (w as i32, h as i32);
        if w.max(h) > plot_height_px * 6 / 10 {
            continue; // a small chart: the legend names the lines
        }
        let (left, top) = (layout.px(3.0), layout.px(3.0));
        let band = [
            (left, top),
            (
                left + h.min(w) + layout.px(2.0),
                top + h.max(w) + layout.px(4.0),
            ),
        ];
        let label = EmptyElement::at((x, y_hi))
            + Rectangle::new(band, WHITE.mix(0.85).filled())
            + Text::new(
                text.clone(),
                (layout.px(14.0), layout.px(4.0)),
                event_font.color(&color),
            );
        chart.plotting_area().draw(&label)?;
        last_label = Some((px, text));
    }
    Ok(())
}

/// Each later life's warm-up of a followed target, shaded as the first one's is.
fn draw_life_warmups(
    chart: &mut Plot<'_, '_>,
    frame: &Frame,
    lives: &[LifeMarks],
) -> Result<(), ChartError> {
    let (y_lo, y_hi) = (frame.y(frame.v.0), frame.y(frame.v.1));
    chart.draw_series(
        lives
            .iter()
            .skip(1)
            .filter_map(|l| frame.x_span(l.start_s, l.window_start_s))
            .map(|(x0, x1)| Rectangle::new([(x0, y_lo), (x1, y_hi)], WARMUP_FILL.filled())),
    )?;
    Ok(())
}

/// The tree's processes that grew most, thin, under the total.
fn draw_members(
    chart: &mut Plot<'_, '_>,
    layout: &Layout,
    frame: &Frame,
    members: &[(String, Vec<(f64, f64)>)],
) -> Result<(), ChartError> {
    let (y_lo, y_hi) = (frame.y(frame.v.0), frame.y(frame.v.1));
    for (i, (_, points)) in members.iter().enumerate() {
        let color = MEMBER_COLORS[i % MEMBER_COLORS.len()];
        let style = color.stroke_width(layout.px(1.0).max(1) as u32);
        let points: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| (frame.t.0..=frame.t.1).contains(&p.0) && p.1.is_finite())
            .map(|&(t, v)| (frame.x(t), frame.y(v)))
            .collect();
        draw_clipped(chart, &points, (y_lo, y_hi), style)?;
    }
    Ok(())
}

/// A memory limit as a dashed line across the plot, when it is inside the y range.
fn draw_limit(
    chart: &mut Plot<'_, '_>,
    layout: &Layout,
    frame: &Frame,
    limit: Option<LimitLine>,
) -> Result<(), ChartError> {
    let Some(limit) = limit else {
        return Ok(());
    };
    let y = frame.y(limit.bytes);
    if !(frame.y(frame.v.0)..=frame.y(frame.v.1)).contains(&y) {
        return Ok(());
    }
    let (x0, x1) = (frame.x(frame.t.0), frame.x(frame.t.1));
    let dash = (x1 - x0) / 80.0;
    let style = LIMIT_COLOR.stroke_width(layout.px(2.0).max(1) as u32);
    chart.draw_series((0..80).step_by(2).map(|k| {
        let a = x0 + dash * f64::from(k);
        PathElement::new(vec![(a, y), ((a + dash).min(x1), y)], style)
    }))?;
    let font = layout
        .font(layout.label_font * 0.9, FontStyle::Bold)
        .color(&LIMIT_COLOR);
    let label = EmptyElement::at((x0, y))
        + Text::new(
            format!("limit {}", Bytes(limit.bytes)),
            (layout.px(6.0), -layout.px(18.0)),
            font,
        );
    chart.plotting_area().draw(&label)?;
    Ok(())
}

/// A followed target's fitted floor drawn over each life it joined, coloured by the verdict.
fn draw_life_trends(
    chart: &mut Plot<'_, '_>,
    layout: &Layout,
    frame: &Frame,
    verdict: Verdict,
    lives: &[LifeMarks],
) -> Result<(), ChartError> {
    let segments: Vec<Piece> = lives
        .iter()
        .map(|l| ((l.trend.t0, l.trend.v0), (l.trend.t1, l.trend.v1)))
        .collect();
    draw_trend_segments(chart, layout, frame, verdict, &segments)
}

/// The legend entries of the service layers: the top processes and the limit.
fn service_legend(context: &ChartContext, frame: &Frame) -> Vec<LegendItem> {
    let mut items: Vec<LegendItem> = context
        .members
        .iter()
        .enumerate()
        .map(|(i, (name, _))| LegendItem {
            swatch: Swatch::Line(MEMBER_COLORS[i % MEMBER_COLORS.len()]),
            label: name.clone(),
        })
        .collect();
    if let Some(l) = context.limit
        && (frame.v.0..=frame.v.1).contains(&l.bytes)
    {
        items.push(LegendItem {
            swatch: Swatch::Line(LIMIT_COLOR),
            label: "memory limit".to_string(),
        });
    }
    items
}

/// The fitted trend as drawn over the recorded values: one segment, or one per stretch
/// between heap-dump steps, each lifted by the steps the analyser took out before it.
fn trend_segments(line: &TrendLine, steps: &[(f64, f64)]) -> Vec<((f64, f64), (f64, f64))> {
    let at = |t: f64| {
        let span = line.t1 - line.t0;
        if span > 0.0 {
            line.v0 + (line.v1 - line.v0) * (t - line.t0) / span
        } else {
            line.v0
        }
    };
    let mut segments = Vec::new();
    let (mut start, mut lift) = (line.t0, 0.0);
    for &(t, bytes) in steps.iter().filter(|(t, _)| *t > line.t0 && *t < line.t1) {
        segments.push(((start, at(start) + lift), (t, at(t) + lift)));
        lift += bytes;
        start = t;
    }
    segments.push(((start, at(start) + lift), (line.t1, at(line.t1) + lift)));
    segments
}

/// Runs of consecutive known columns, split where the series has a gap, with their index.
fn column_runs(columns: &[Option<Column>]) -> Vec<Vec<(usize, Column)>> {
    let mut runs: Vec<Vec<(usize, Column)>> = Vec::new();
    for (i, col) in columns.iter().enumerate() {
        let Some(col) = *col else { continue };
        match runs.last_mut() {
            Some(run) if !col.gap_before => run.push((i, col)),
            _ => runs.push(vec![(i, col)]),
        }
    }
    runs
}

fn trend_style(verdict: Verdict) -> (RGBColor, f64) {
    match verdict {
        Verdict::Growing => (TREND_GROWING_COLOR, 3.0),
        _ => (TREND_COLOR, 2.0),
    }
}

fn is_load(kind: &EventKind) -> bool {
    matches!(kind, EventKind::Other(t) if t.starts_with("load"))
}

fn event_style(kind: &EventKind) -> (RGBColor, u32) {
    match kind {
        EventKind::Signal(_) => (SIGNAL_COLOR, 1),
        EventKind::Settled => (SETTLED_COLOR, 3),
        EventKind::DumpStart(_) | EventKind::Dump(_) => (DUMP_COLOR, 2),
        EventKind::Other(_) if is_load(kind) => (LOAD_COLOR, 2),
        EventKind::Other(_) => (OTHER_EVENT_COLOR, 1),
    }
}

/// Which event's colour a shared label takes: heap dumps, then load, then signals.
fn label_rank(kind: &EventKind) -> u8 {
    match kind {
        EventKind::DumpStart(_) | EventKind::Dump(_) => 3,
        EventKind::Other(_) if is_load(kind) => 2,
        EventKind::Signal(_) => 1,
        EventKind::Settled | EventKind::Other(_) => 0,
    }
}

fn event_layer(kind: &EventKind) -> u8 {
    match kind {
        EventKind::Other(_) => 0,
        EventKind::Settled => 1,
        EventKind::Signal(_) => 2,
        EventKind::DumpStart(_) | EventKind::Dump(_) => 3,
    }
}

fn event_label(kind: &EventKind) -> &'static str {
    match kind {
        EventKind::Signal(_) => "signal",
        EventKind::Settled => "settled",
        EventKind::DumpStart(_) | EventKind::Dump(_) => "heap dump",
        EventKind::Other(_) if is_load(kind) => "load",
        EventKind::Other(t) if kind.restarted().is_some() || t.starts_with("gone:") => "restart",
        EventKind::Other(_) => "event",
    }
}

/// A generic event's line ("runtime attached") drawn where another kind of event's line
/// is (within a few pixels): it cannot be seen, so the legend does not name it.
fn hidden_under_another(event: &Event, events: &[Event], t: (f64, f64)) -> bool {
    let near = 0.004 * (t.1 - t.0);
    event_label(&event.kind) == "event"
        && events.iter().any(|o| {
            o.kind != EventKind::Settled
                && event_label(&o.kind) != "event"
                && (o.elapsed_s - event.elapsed_s).abs() <= near
        })
}

/// The legend: the series, then only what this chart shows.
fn legend_items(
    rec: &Recording,
    series: &[Series<'_>],
    analysis: &Analysis,
    marks: &Points,
    t: (f64, f64),
) -> Vec<LegendItem> {
    let mut items: Vec<LegendItem> = series
        .iter()
        .map(|s| LegendItem {
            swatch: Swatch::Line(s.color),
            label: s.label.clone(),
        })
        .collect();
    if !marks.heap.is_empty() {
        items.push(LegendItem {
            swatch: Swatch::Line(HEAP_COLOR),
            label: "heap after GC".to_string(),
        });
    }
    if !marks.judged.is_empty() {
        items.push(LegendItem {
            swatch: Swatch::Dot(JUDGED_COLOR),
            label: "judged points".to_string(),
        });
    }
    if !marks.settled.is_empty() {
        items.push(LegendItem {
            swatch: Swatch::Ring(SETTLED_COLOR),
            label: "settled".to_string(),
        });
    }
    if analysis.trend.is_some() {
        items.push(LegendItem {
            swatch: Swatch::Line(trend_style(analysis.verdict).0),
            label: "trend".to_string(),
        });
    }
    if analysis.warmup_s > 0.0 {
        items.push(LegendItem {
            swatch: Swatch::Fill(WARMUP_FILL),
            label: "warm-up".to_string(),
        });
    }
    if !analysis.excluded.is_empty() {
        items.push(LegendItem {
            swatch: Swatch::Fill(EXCLUDED_FILL),
            label: "excluded (heap dump)".to_string(),
        });
    }
    // Only the events whose lines can be seen: in the time range, and not hidden under
    // another event's line at the same moment.
    let mut labels: Vec<&'static str> = Vec::new();
    let shown = |e: &&Event| {
        e.kind != EventKind::Settled
            && !e.kind.is_mark()
            && (t.0..=t.1).contains(&e.elapsed_s)
            && !hidden_under_another(e, &rec.events, t)
    };
    for event in rec.events.iter().filter(shown) {
        let label = event_label(&event.kind);
        if !labels.contains(&label) {
            labels.push(label);
            items.push(LegendItem {
                swatch: Swatch::Line(event_style(&event.kind).0),
                label: label.to_string(),
            });
        }
    }
    items
}

/// Draws the title (the first of `lines`, in bold), the other lines under it (empty ones
/// left out) and, below them, the legend (wrapped to the width). Returns the height
/// they take.
fn draw_header(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    layout: &Layout,
    lines: &[String],
    verdict: Verdict,
    legend: &[LegendItem],
) -> Result<u32, ChartError> {
    let (width, height) = root.dim_in_pixel();
    // The header never takes more than this, so that small charts keep a plot: lines that
    // do not fit are left out, the legend first, then the lines from the last.
    let budget = (f64::from(height) * 0.42) as i32;
    let left = layout.margin as i32;
    let right = width as i32 - layout.margin as i32;
    let title_color = if verdict == Verdict::Growing {
        GROWING_TITLE_COLOR
    } else {
        TEXT_COLOR
    };
    let title_font = layout.font(layout.title_font, FontStyle::Bold);
    let title = lines.first().map_or("", String::as_str);
    root.draw_text(
        title,
        &title_font.color(&title_color),
        (left, layout.px(14.0)),
    )?;

    let font = layout.font(layout.label_font, FontStyle::Normal);
    let text_style = font.color(&TEXT_COLOR);
    let swatch_width = layout.px(26.0);
    let row_height = layout.px(24.0);
    let gap = layout.px(22.0);
    let legend_rows = {
        let (mut x, mut rows) = (left, 1);
        for item in legend {
            let (text_width, _) = font
                .box_size(&item.label)
                .map_err(|e| ChartError::Draw(e.to_string()))?;
            let item_width = swatch_width + layout.px(7.0) + text_width as i32;
            if x > left && x + item_width > right {
                x = left;
                rows += 1;
            }
            x += item_width + gap;
        }
        rows
    };
    let legend_height = legend_rows * row_height + layout.px(10.0);
    let line_height = layout.px(21.0);
    let mut top = layout.px(48.0);
    let mut rows: Vec<String> = Vec::new();
    for line in lines.iter().skip(1).filter(|l| !l.is_empty()) {
        let wrapped = wrap_text(line, &font, (right - left).max(1))?;
        if top + (rows.len() + wrapped.len()) as i32 * line_height <= budget {
            rows.extend(wrapped);
        }
    }
    let with_legend = top + rows.len() as i32 * line_height + legend_height <= budget;
    for row in &rows {
        root.draw_text(row, &text_style, (left, top))?;
        top += line_height;
    }
    if !with_legend {
        return Ok((top + layout.px(4.0)) as u32);
    }
    top += layout.px(6.0);
    let (mut x, mut y) = (left, top);
    for item in legend {
        let (text_width, _) = font
            .box_size(&item.label)
            .map_err(|e| ChartError::Draw(e.to_string()))?;
        let item_width = swatch_width + layout.px(7.0) + text_width as i32;
        if x > left && x + item_width > right {
            x = left;
            y += row_height;
        }
        let mid = y + layout.px(8.0);
        match item.swatch {
            Swatch::Line(color) => root.draw(&PathElement::new(
                vec![(x, mid), (x + swatch_width, mid)],
                color.stroke_width(layout.px(3.0) as u32),
            ))?,
            Swatch::Dot(color) => root.draw(&Circle::new(
                (x + swatch_width / 2, mid),
                layout.px(5.0),
                color.filled(),
            ))?,
            Swatch::Ring(color) => root.draw(&Circle::new(
                (x + swatch_width / 2, mid),
                layout.px(5.0),
                color.stroke_width(layout.px(2.0).max(1) as u32),
            ))?,
            Swatch::Fill(color) => {
                let corners = [
                    (x, mid - layout.px(7.0)),
                    (x + swatch_width, mid + layout.px(7.0)),
                ];
                root.draw(&Rectangle::new(corners, color.filled()))?;
                root.draw(&Rectangle::new(corners, SWATCH_BORDER.stroke_width(1)))?;
            }
        }
        // Plotters puts the baseline half a font size below the given top; the
        // x-height's middle sits about a quarter size above the baseline.
        let text_top = mid - (0.23 * layout.label_font).round() as i32;
        root.draw_text(
            &item.label,
            &text_style,
            (x + swatch_width + layout.px(7.0), text_top),
        )?;
        x += item_width + gap;
    }
    Ok((y + row_height + layout.px(4.0)) as u32)
}

/// `text` cut at spaces into rows no wider than `width` pixels in `font`.
fn wrap_text(text: &str, font: &FontDesc<'_>, width: i32) -> Result<Vec<String>, ChartError> {
    let fits = |t: &str| -> Result<bool, ChartError> {
        let (w, _) = font
            .box_size(t)
            .map_err(|e| ChartError::Draw(e.to_string()))?;
        Ok(w as i32 <= width)
    };
    let mut rows: Vec<String> = Vec::new();
    let mut row = String::new();
    for word in text.split(' ') {
        let candidate = if row.is_empty() {
            word.to_string()
        } else {
            format!("{row} {word}")
        };
        if row.is_empty() || fits(&candidate)? {
            row = candidate;
        } else {
            rows.push(std::mem::replace(&mut row, word.to_string()));
        }
    }
    if !row.is_empty() {
        rows.push(row);
    }
    Ok(rows)
}

pub(crate) fn encode_png(rgb: &[u8], (width, height): (u32, u32)) -> Result<Vec<u8>, ChartError> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::analyze::Pattern;

    #[test]
    fn byte_unit_follows_magnitude() {
        assert_eq!(ByteUnit::for_magnitude(0.0).name, "B");
        assert_eq!(ByteUnit::for_magnitude(1023.0).name, "B");
        assert_eq!(ByteUnit::for_magnitude(1024.0).name, "KiB");
        assert_eq!(ByteUnit::for_magnitude(-5.0 * 1024.0 * 1024.0).name, "MiB");
        assert_eq!(ByteUnit::for_magnitude(3e9).name, "GiB");
        assert_eq!(ByteUnit::for_magnitude(1e16).name, "TiB");
    }

    #[test]
    fn time_unit_follows_duration() {
        assert_eq!(TimeUnit::for_duration(0.0), SECONDS);
        assert_eq!(TimeUnit::for_duration(179.0), SECONDS);
        assert_eq!(TimeUnit::for_duration(600.0), MINUTES);
        assert_eq!(TimeUnit::for_duration(4.0 * 3600.0), HOURS);
    }

    #[test]
    fn nice_ticks_are_round_and_inside() {
        let (ticks, step) = nice_ticks(0.0, 10.0, 6);
        assert_eq!(step, 2.0);
        assert_eq!(ticks, vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);

        let (ticks, step) = nice_ticks(95.3, 104.8, 8);
        assert_eq!(step, 2.0);
        assert_eq!(ticks, vec![96.0, 98.0, 100.0, 102.0, 104.0]);

        let (ticks, step) = nice_ticks(1.501, 1.509, 5);
        assert!((step - 0.002).abs() < 1e-12);
        assert!(ticks.len() <= 5 && !ticks.is_empty());
        assert!(ticks.iter().all(|&t| (1.501..=1.509).contains(&t)));

        let (ticks, _) = nice_ticks(3.0, 3.0, 5);
        assert_eq!(ticks, vec![3.0]);
    }

    #[test]
    fn tick_labels_have_just_enough_decimals() {
        assert_eq!(decimals_for_step(1.0), 0);
        assert_eq!(decimals_for_step(20.0), 0);
        assert_eq!(decimals_for_step(0.5), 1);
        assert_eq!(decimals_for_step(0.1), 1);
        assert_eq!(decimals_for_step(0.02), 2);
        assert_eq!(format_number(-0.0001, 2), "0.00");
        assert_eq!(format_number(2.5, 1), "2.5");
    }

    #[test]
    fn trend_is_lifted_after_each_dump_step() {
        let line = TrendLine {
            t0: 10.0,
            v0: 100.0,
            t1: 110.0,
            v1: 200.0,
        };
        assert_eq!(
            trend_segments(&line, &[]),
            vec![((10.0, 100.0), (110.0, 200.0))]
        );
        let segs = trend_segments(&line, &[(60.0, 1000.0), (200.0, 5.0)]);
        assert_eq!(
            segs,
            vec![
                ((10.0, 100.0), (60.0, 150.0)),
                ((60.0, 1150.0), (110.0, 1200.0))
            ]
        );
    }

    #[test]
    fn downsample_keeps_spikes_and_order() {
        // 1000 samples into 10 columns; one spike up and one down.
        let time: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        let mut values = vec![5.0; 1000];
        values[3] = 1.0;
        values[150] = 100.0;
        values[99] = 7.0;
        let cols = downsample(&time, values.iter().copied(), 0.0, 999.0, 10);
        assert_eq!(cols.len(), 10);
        let c0 = cols[0].unwrap();
        assert_eq!((c0.min, c0.max, c0.first, c0.last), (1.0, 7.0, 5.0, 7.0));
        let c1 = cols[1].unwrap();
        assert_eq!((c1.min, c1.max), (5.0, 100.0));
        assert!(cols.iter().all(|c| c.is_some()));
        // The last sample lands in the last column, not past it.
        assert_eq!(cols[9].unwrap().last, 5.0);
    }

    #[test]
    fn downsample_breaks_at_nan_and_leaves_empty_columns() {
        let time = [0.0, 1.0, 2.0, 3.0, 10.0];
        let values = [f64::NAN, 1.0, f64::NAN, 3.0, 4.0];
        let cols = downsample(&time, values.iter().copied(), 0.0, 10.0, 10);
        assert_eq!(cols[0], None);
        let c1 = cols[1].unwrap();
        assert!(!c1.gap_before, "leading NaNs are no gap");
        assert_eq!(cols[2], None);
        assert!(cols[3].unwrap().gap_before);
        assert!(cols[4..9].iter().all(Option::is_none));
        assert!(!cols[9].unwrap().gap_before);
    }

    #[test]
    fn downsample_handles_a_single_instant() {
        let cols = downsample(&[2.0, 2.0], [1.0, 3.0].into_iter(), 2.0, 2.0, 4);
        let c0 = cols[0].unwrap();
        assert_eq!((c0.min, c0.max, c0.first, c0.last), (1.0, 3.0, 1.0, 3.0));
        assert!(
            downsample(&[], std::iter::empty(), 0.0, 1.0, 4)
                .iter()
                .all(Option::is_none)
        );
        assert!(downsample(&[1.0], [1.0].into_iter(), 0.0, 1.0, 0).is_empty());
    }

    #[test]
    fn column_time_is_the_bucket_centre() {
        assert_eq!(column_time(0, 0.0, 10.0, 10), 0.5);
        assert_eq!(column_time(9, 0.0, 10.0, 10), 9.5);
    }

    // --- Whole charts ------------------------------------------------------------------

    use crate::analyze::{MinGrowth, Thresholds, TrendLine, Warmup};

    const MIB: f64 = 1024.0 * 1024.0;

    /// Deterministic noise in -1..1.
    struct Noise(u64);
    impl Noise {
        fn next(&mut self) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % 20_001) as f64 / 10_000.0 - 1.0
        }
    }

    fn recording(time: &[f64], rss: &[f64], anon: Option<&[f64]>) -> Recording {
        let mut rec = Recording::default();
        for (i, &t) in time.iter().enumerate() {
            let mut row = [f64::NAN; Metric::COUNT];
            row[Metric::Rss.index()] = rss[i];
            if let Some(anon) = anon {
                row[Metric::Anon.index()] = anon[i];
            }
            rec.push_row(t, &row);
        }
        rec
    }

    fn analysis(verdict: Verdict, pattern: Pattern, rec: &Recording, warmup_s: f64) -> Analysis {
        let n = rec.len();
        let end = rec.time_s.last().copied().unwrap_or(0.0);
        Analysis {
            verdict,
            pattern,
            samples: n,
            samples_analysed: n,
            duration_s: end,
            warmup_s,
            window_start_s: warmup_s,
            window_end_s: end,
            slope_bytes_per_s: Some(0.0),
            slope_pct_per_hour: Some(0.0),
            growth_bytes: Some(0.0),
            p_value: None,
            start_bytes: 0.0,
            end_bytes: 0.0,
            peak_bytes: 0.0,
            trend: None,
            excluded: Vec::new(),
            steps: Vec::new(),
            floor: Vec::new(),
            thresholds: Thresholds {
                warmup: Warmup::Auto,
                min_slope_bytes_per_s: 0.0,
                min_slope_pct_per_hour: 0.0,
                min_growth: MinGrowth::Bytes(0.0),
                p_value: 0.01,
                slope_horizon_s: f64::INFINITY,
            },
            reason: String::new(),
        }
    }

    /// Two hours at one sample a second: a sawtooth on a 12 MiB/min rise, with signals,
    /// a heap dump and its excluded period.
    fn growing() -> (Recording, Analysis) {
        let mut noise = Noise(7);
        let time: Vec<f64> = (0..7200).map(f64::from).collect();
        let rss: Vec<f64> = time
            .iter()
            .map(|t| {
                300.0 * MIB
                    + 0.2 * MIB * t
                    + 30.0 * MIB * ((t % 300.0) / 300.0)
                    + MIB * noise.next()
            })
            .collect();
        let anon: Vec<f64> = rss.iter().map(|v| v - 120.0 * MIB).collect();
        let mut rec = recording(&time, &rss, Some(&anon));
        for k in 1..6 {
            let t = k as f64 * 1200.0;
            rec.events.push(Event {
                elapsed_s: t,
                kind: EventKind::Signal("SIGUSR2".into()),
            });
            rec.events.push(Event {
                elapsed_s: t + 5.0,
                kind: EventKind::Settled,
            });
        }
        rec.events.push(Event {
            elapsed_s: 3600.0,
            kind: EventKind::DumpStart("a.heapsnapshot".into()),
        });
        rec.events.push(Event {
            elapsed_s: 3660.0,
            kind: EventKind::Dump("a.heapsnapshot".into()),
        });
        let mut a = analysis(Verdict::Growing, Pattern::Sawtooth, &rec, 720.0);
        a.slope_bytes_per_s = Some(0.2 * MIB);
        a.p_value = Some(1e-9);
        a.trend = Some(TrendLine {
            t0: 720.0,
            v0: 459.0 * MIB,
            t1: 7199.0,
            v1: 1755.0 * MIB,
        });
        a.excluded = vec![(3600.0, 3680.0)];
        a.growth_bytes = Some(1296.0 * MIB);
        a.floor = (0..20)
            .map(|k| {
                let t = 900.0 + f64::from(k) * 300.0;
                (t, 300.0 * MIB + 0.2 * MIB * t)
            })
            .collect();
        (rec, a)
    }

    /// Half an hour, flat with noise.
    fn stable() -> (Recording, Analysis) {
        let mut noise = Noise(11);
        let time: Vec<f64> = (0..1800).map(|i| f64::from(i) * 1.0).collect();
        let rss: Vec<f64> = time
            .iter()
            .map(|_| 48.0 * MIB + 0.4 * MIB * noise.next())
            .collect();
        let anon: Vec<f64> = rss.iter().map(|v| v - 20.0 * MIB).collect();
        let rec = recording(&time, &rss, Some(&anon));
        let mut a = analysis(Verdict::Stable, Pattern::Flat, &rec, 180.0);
        a.slope_bytes_per_s = Some(1.7);
        a.p_value = Some(0.4);
        a.trend = Some(TrendLine {
            t0: 180.0,
            v0: 48.0 * MIB,
            t1: 1799.0,
            v1: 48.0 * MIB + 2750.0,
        });
        (rec, a)
    }

    /// Where `render_png` keeps the charts it draws in tests, when asked to (set
    /// MEMWATCH_CHART_DIR to look at them).
    fn render(name: &str, rec: &Recording, a: &Analysis, size: (u32, u32)) -> Decoded {
        let bytes = render_png(rec, Metric::Rss, a, size, &ChartContext::default()).unwrap();
        if let Some(dir) = std::env::var_os("MEMWATCH_CHART_DIR") {
            std::fs::write(Path::new(&dir).join(format!("{name}.png")), &bytes).unwrap();
        }
        let plot = render_rgb(rec, Metric::Rss, a, size, &ChartContext::default())
            .unwrap()
            .plot;
        decode(&bytes, plot)
    }

    struct Decoded {
        width: u32,
        height: u32,
        rgb: Vec<u8>,
        plot: (std::ops::Range<i32>, std::ops::Range<i32>),
    }

    impl Decoded {
        fn pixel(&self, x: i32, y: i32) -> RGBColor {
            let i = (y as usize * self.width as usize + x as usize) * 3;
            RGBColor(self.rgb[i], self.rgb[i + 1], self.rgb[i + 2])
        }
        /// Pixels of `color` inside the plot area whose x is in `xs` (plot-relative share).
        fn count_in_plot(&self, color: RGBColor, xs: std::ops::Range<f64>) -> usize {
            let (px, py) = &self.plot;
            let w = f64::from(px.end - px.start);
            let x0 = px.start + (xs.start * w) as i32;
            let x1 = px.start + (xs.end * w) as i32;
            (x0..x1)
                .flat_map(|x| py.clone().map(move |y| (x, y)))
                .filter(|&(x, y)| self.pixel(x, y) == color)
                .count()
        }
        fn count(&self, color: RGBColor) -> usize {
            self.rgb
                .chunks_exact(3)
                .filter(|p| RGBColor(p[0], p[1], p[2]) == color)
                .count()
        }
    }

    fn decode(bytes: &[u8], plot: (std::ops::Range<i32>, std::ops::Range<i32>)) -> Decoded {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut rgb = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut rgb).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        rgb.truncate(info.buffer_size());
        Decoded {
            width: info.width,
            height: info.height,
            rgb,
            plot,
        }
    }

    fn render_with(rec: &Recording, a: &Analysis, context: &ChartContext) -> Decoded {
        let bytes = render_png(rec, Metric::Rss, a, DEFAULT_SIZE, context).unwrap();
        let plot = render_rgb(rec, Metric::Rss, a, DEFAULT_SIZE, context)
            .unwrap()
            .plot;
        decode(&bytes, plot)
    }

    /// A cgroup's limit is a dashed line across the plot: the y axis reaches it when the
    /// cgroup is judged; otherwise it is drawn only when the judged data's scale holds it.
    /// The tree's top processes are thin lines under the judged series.
    #[test]
    fn the_limit_and_the_top_processes_are_drawn() {
        let (rec, a) = growing();
        let peak = a.peak_bytes;
        let context = |in_range: bool, bytes: f64| ChartContext {
            label: "cgroup".into(),
            limit: Some(LimitLine { bytes, in_range }),
            ..ChartContext::default()
        };
        let png = render_with(&rec, &a, &context(true, 4.0 * peak));
        assert!(png.count_in_plot(LIMIT_COLOR, 0.0..1.0) > 300);
        let png = render_with(&rec, &a, &context(false, 4.0 * peak));
        assert_eq!(png.count_in_plot(LIMIT_COLOR, 0.0..1.0), 0, "off the scale");
        let middle = rec.metric(Metric::Rss).unwrap()[rec.len() / 2];
        let members = ChartContext {
            members: vec![(
                "7 (worker)".into(),
                rec.time_s.iter().map(|&t| (t, middle)).collect(),
            )],
            ..ChartContext::default()
        };
        let png = render_with(&rec, &a, &members);
        assert!(png.count_in_plot(MEMBER_COLORS[0], 0.0..1.0) > 300);
    }

    /// A followed target's trend is drawn over each life, not across the gaps; the later
    /// lives' warm-ups are shaded.
    #[test]
    fn a_followed_targets_trend_is_drawn_over_each_life() {
        let (rec, a) = growing();
        let (t0, t1) = (rec.time_s[0], *rec.time_s.last().unwrap());
        let third = (t1 - t0) / 3.0;
        let v = a.peak_bytes * 0.9;
        let life = |k: f64| LifeMarks {
            start_s: t0 + k * third,
            window_start_s: t0 + k * third + 0.2 * third,
            trend: TrendLine {
                t0: t0 + k * third + 0.2 * third,
                v0: v * 0.95,
                t1: t0 + (k + 0.8) * third,
                v1: v,
            },
        };
        let context = ChartContext {
            lives: vec![life(0.0), life(2.0)],
            ..ChartContext::default()
        };
        let png = render_with(&rec, &a, &context);
        // Red over the first and the last third; none over the middle one, which no life holds.
        assert!(png.count_in_plot(TREND_GROWING_COLOR, 0.1..0.3) > 100);
        assert!(png.count_in_plot(TREND_GROWING_COLOR, 0.75..0.95) > 100);
        assert_eq!(png.count_in_plot(TREND_GROWING_COLOR, 0.36..0.64), 0);
        assert!(png.count_in_plot(WARMUP_FILL, 0.68..0.72) > 1000);
    }

    #[test]
    fn growing_chart_has_a_red_trend_and_shading() {
        let (rec, a) = growing();
        let png = render("growing", &rec, &a, DEFAULT_SIZE);
        assert_eq!((png.width, png.height), DEFAULT_SIZE);
        // The trend line runs from the end of warm-up to the end: red all along.
        assert!(png.count_in_plot(TREND_GROWING_COLOR, 0.2..1.0) > 1000);
        assert_eq!(
            png.count_in_plot(TREND_GROWING_COLOR, 0.0..0.08),
            0,
            "no trend in warm-up"
        );
        // Warm-up shaded on the left only, the dump period in the middle.
        assert!(png.count_in_plot(WARMUP_FILL, 0.0..0.08) > 10_000);
        assert_eq!(png.count_in_plot(WARMUP_FILL, 0.2..1.0), 0);
        assert!(png.count_in_plot(EXCLUDED_FILL, 0.45..0.55) > 1000);
        assert!(png.count_in_plot(DUMP_COLOR, 0.45..0.55) > 100);
        assert!(png.count_in_plot(SIGNAL_COLOR, 0.0..1.0) > 100);
        assert!(png.count_in_plot(METRIC_COLOR, 0.0..1.0) > 1000);
        assert!(png.count_in_plot(ANON_COLOR, 0.0..1.0) > 1000);
    }

    #[test]
    fn stable_chart_has_no_red() {
        let (rec, a) = stable();
        let png = render("stable", &rec, &a, DEFAULT_SIZE);
        assert_eq!((png.width, png.height), DEFAULT_SIZE);
        assert_eq!(png.count(TREND_GROWING_COLOR), 0);
        assert!(png.count_in_plot(TREND_COLOR, 0.2..1.0) > 500);
        assert!(png.count_in_plot(WARMUP_FILL, 0.0..0.08) > 1000);
    }

    #[test]
    fn charts_take_the_size_asked_for() {
        let (rec, a) = stable();
        for size in [MIN_SIZE, (640, 360), (1920, 1080), (800, 800)] {
            let png = render(&format!("stable-{}x{}", size.0, size.1), &rec, &a, size);
            assert_eq!((png.width, png.height), size);
        }
    }

    #[test]
    fn one_or_two_samples_still_chart() {
        let rec = recording(&[0.0], &[10.0 * MIB], None);
        let a = analysis(Verdict::Inconclusive, Pattern::Unknown, &rec, 0.0);
        let png = render("one-sample", &rec, &a, DEFAULT_SIZE);
        assert!(png.count_in_plot(METRIC_COLOR, 0.0..1.0) > 10, "a dot");

        let rec = recording(
            &[0.0, 1.0],
            &[10.0 * MIB, 12.0 * MIB],
            Some(&[5.0 * MIB, f64::NAN]),
        );
        let a = analysis(Verdict::Inconclusive, Pattern::Unknown, &rec, 0.0);
        let png = render("two-samples", &rec, &a, DEFAULT_SIZE);
        assert!(png.count_in_plot(METRIC_COLOR, 0.0..1.0) > 100);
    }

    #[test]
    fn constant_and_gappy_series_chart() {
        let time: Vec<f64> = (0..50).map(|i| f64::from(i) * 2.0).collect();
        let rec = recording(&time, &[64.0 * MIB; 50], None);
        let a = analysis(Verdict::Stable, Pattern::Flat, &rec, 10.0);
        let png = render("constant", &rec, &a, DEFAULT_SIZE);
        assert!(png.count_in_plot(METRIC_COLOR, 0.0..1.0) > 500);

        let rss: Vec<f64> = time
            .iter()
            .map(|&t| {
                if (30.0..50.0).contains(&t) || t == 80.0 {
                    f64::NAN
                } else {
                    64.0 * MIB + t * 4096.0
                }
            })
            .collect();
        let rec = recording(&time, &rss, Some(&vec![f64::NAN; 50]));
        let a = analysis(Verdict::Inconclusive, Pattern::Unknown, &rec, 0.0);
        let png = render("nan-gaps", &rec, &a, DEFAULT_SIZE);
        assert_eq!(
            png.count_in_plot(METRIC_COLOR, 0.35..0.45),
            0,
            "no line across the gap"
        );
        assert_eq!(png.count_in_plot(ANON_COLOR, 0.0..1.0), 0);
    }

    #[test]
    fn a_single_spike_survives_downsampling() {
        let n = 200_000;
        let time: Vec<f64> = (0..n).map(|i| f64::from(i) * 0.01).collect();
        let mut rss = vec![100.0 * MIB; n as usize];
        rss[123_457] = 300.0 * MIB;
        let rec = recording(&time, &rss, None);
        let a = analysis(Verdict::Stable, Pattern::Flat, &rec, 0.0);
        let png = render("spike", &rec, &a, DEFAULT_SIZE);
        // The spike is the top of the value range and drawn full height: metric pixels
        // all the way up, in one column near 123457 / 200000 of the width.
        let (px, py) = &png.plot;
        let half = py.start + (py.end - py.start) / 2;
        let columns: Vec<i32> = px
            .clone()
            .filter(|&x| (py.start..half).any(|y| png.pixel(x, y) == METRIC_COLOR))
            .collect();
        assert!(!columns.is_empty() && columns.len() <= 3, "{columns:?}");
        let at = f64::from(columns[0] - px.start) / f64::from(px.end - px.start);
        assert!((at - 0.617).abs() < 0.01, "{at}");
        let x = columns[0];
        let tall = (py.start..half)
            .filter(|&y| png.pixel(x, y) == METRIC_COLOR)
            .count();
        assert!(tall as i32 > (half - py.start) * 3 / 4, "{tall}");
    }

    #[test]
    fn unusable_input_is_a_clear_error() {
        let empty = Recording::default();
        let a = analysis(Verdict::Inconclusive, Pattern::Unknown, &empty, 0.0);
        let err = render_png(
            &empty,
            Metric::Rss,
            &a,
            DEFAULT_SIZE,
            &ChartContext::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ChartError::NoSamples), "{err}");

        // A recording never stores a column of only NaN; one with no finite value is as bad.
        let rec = recording(&[0.0, 1.0], &[f64::NAN, f64::NAN], None);
        let err = render_png(
            &rec,
            Metric::Rss,
            &a,
            DEFAULT_SIZE,
            &ChartContext::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ChartError::NoMetric(Metric::Rss)), "{err}");
        let rec = recording(&[0.0, 1.0], &[f64::INFINITY, f64::NAN], None);
        let err = render_png(
            &rec,
            Metric::Rss,
            &a,
            DEFAULT_SIZE,
            &ChartContext::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ChartError::NoValues(Metric::Rss)), "{err}");
        let err = render_png(
            &rec,
            Metric::Pss,
            &a,
            DEFAULT_SIZE,
            &ChartContext::default(),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "nothing to chart: pss was not recorded");

        let (rec, a) = stable();
        let err =
            render_png(&rec, Metric::Rss, &a, (100, 100), &ChartContext::default()).unwrap_err();
        assert!(matches!(err, ChartError::TooSmall(100, 100)), "{err}");
    }

    #[test]
    fn write_png_writes_a_png_file() {
        let (rec, a) = stable();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.png");
        write_png(
            &path,
            &rec,
            Metric::Rss,
            &a,
            (640, 360),
            &ChartContext::default(),
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let err = write_png(
            &dir.path().join("no/such/dir.png"),
            &rec,
            Metric::Rss,
            &a,
            (640, 360),
            &ChartContext::default(),
        );
        assert!(matches!(err, Err(ChartError::Write { .. })));
    }

    /// Regression (issue 9 item 13): the chart's title gave the slope in KiB/s where the
    /// terminal said MiB/min for the same run. The title is now the analysis' headline, in
    /// the units of the reason and the live line.
    #[test]
    fn regression_chart_title_uses_the_terminal_units() {
        let (rec, mut a) = growing();
        a.slope_bytes_per_s = Some(184.0 * 1024.0); // 10.8 MiB/min, a 70 s run: seconds on the axis
        a.pattern = Pattern::Linear;
        let lines = header_lines(&a, &ChartContext::default(), Metric::Rss, 0.0);
        assert_eq!(lines[0], "growing (linear): floor +10.8 MiB/min, p < 0.001");
        assert_eq!(lines[0], a.headline().to_string());
        a.verdict = Verdict::Stable;
        a.pattern = Pattern::Flat;
        let lines = header_lines(&a, &ChartContext::default(), Metric::Rss, 0.0);
        assert_eq!(lines[0], "stable (flat)");
        let mut a = analysis(Verdict::Inconclusive, Pattern::Unknown, &rec, 5.0);
        a.samples_analysed = 8;
        a.reason = "only 8 samples after the 5 s warm-up; at least 10 are needed".into();
        let lines = header_lines(&a, &ChartContext::default(), Metric::Rss, 0.0);
        assert_eq!(lines[0], "inconclusive: 8 samples after the 5 s warm-up");
        assert_eq!(
            lines[2],
            "Not judged: only 8 samples after the 5 s warm-up; at least 10 are needed."
        );
    }

    /// Regression (issue 9 item 16): the title named neither the process nor the command,
    /// and nothing said which series the verdict used.
    #[test]
    fn regression_chart_names_the_run_and_the_judged_series() {
        let (_, a) = growing();
        let context = ChartContext {
            run: ChartContext::describe_run(4242, "node server.js", 125.0, "duration reached"),
            judged: "settled".into(),
            beside: String::new(),
            ..ChartContext::default()
        };
        let lines = header_lines(&a, &context, Metric::Rss, 300.0 * MIB);
        assert_eq!(
            lines[1],
            "pid 4242: node server.js · 2 min 5 s · duration reached"
        );
        assert!(
            lines[2].starts_with("Judged: the settled samples"),
            "{}",
            lines[2]
        );
        // the growth in %, and that the axis does not start at 0
        assert!(lines[2].contains("(+282.4%)"), "{}", lines[2]);
        assert!(
            lines[2].ends_with("The y axis starts at 300 MiB, not 0."),
            "{}",
            lines[2]
        );
        let lines = header_lines(&a, &ChartContext::default(), Metric::Rss, 0.0);
        assert!(lines[1].is_empty());
        assert!(
            lines[2].starts_with("Judged: the rss floor"),
            "{}",
            lines[2]
        );
        assert!(!lines[2].contains("not 0"), "{}", lines[2]);
        assert_eq!(lines.len(), 3);
        // The managed heap judged: the metric's own verdict is said too, not only in JSON.
        let context = ChartContext {
            judged: "heap-after-gc".into(),
            beside: "rss on its own: growing (linear): floor +1.20 MiB/min, p < 0.001".into(),
            ..ChartContext::default()
        };
        let lines = header_lines(&a, &context, Metric::Rss, 0.0);
        assert!(
            lines[2].starts_with(
                "Judged: the managed heap right after forced GCs (asked of the runtime"
            ),
            "{}",
            lines[2]
        );
        assert_eq!(
            lines[3],
            "rss on its own: growing (linear): floor +1.20 MiB/min, p < 0.001."
        );
    }

    /// A Node service under load: start-up from nothing to 42 MiB, then 48 -> 56 MiB with
    /// a GC sawtooth after the 14 s warm-up, load lines, signals and settled samples.
    fn node_under_load() -> (Recording, Analysis) {
        let time: Vec<f64> = (0..=350).map(|i| f64::from(i) * 0.2).collect();
        let rss: Vec<f64> = time
            .iter()
            .map(|&t| {
                if t < 0.6 {
                    0.02 * MIB + 70.0 * MIB * t
                } else {
                    42.0 * MIB + 0.2 * MIB * t.min(60.0) + 0.8 * MIB * ((t % 6.0) / 6.0)
                }
            })
            .collect();
        let mut rec = recording(&time, &rss, None);
        let mut events = vec![
            (0.6, EventKind::Other("load-start".into())),
            (60.8, EventKind::Other("load-end".into())),
        ];
        for k in 1..23 {
            let t = f64::from(k) * 3.0;
            events.push((t, EventKind::Signal("SIGUSR2".into())));
            events.push((t + 1.0, EventKind::Settled));
        }
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        rec.events = events
            .into_iter()
            .map(|(elapsed_s, kind)| Event { elapsed_s, kind })
            .collect();
        let mut a = analysis(Verdict::Growing, Pattern::Linear, &rec, 14.0);
        a.window_start_s = 14.0;
        a.slope_bytes_per_s = Some(0.2 * MIB);
        a.p_value = Some(1e-6);
        a.growth_bytes = Some(0.2 * MIB * 56.0);
        a.trend = Some(TrendLine {
            t0: 14.0,
            v0: 44.8 * MIB,
            t1: 70.0,
            v1: 44.8 * MIB + 0.2 * MIB * 56.0,
        });
        a.floor = (0..10)
            .map(|k| {
                let t = 17.0 + f64::from(k) * 5.5;
                (t, 42.0 * MIB + 0.2 * MIB * t.min(60.0))
            })
            .collect();
        (rec, a)
    }

    /// Regression (issue 20 item 18): the y axis was scaled to the judged data, so the first
    /// samples fell off the bottom. Now everything drawn is inside it; a y axis that does not
    /// start at 0 is marked (a break at its foot, and in words); a rise of a few tenths of a
    /// percent still does not fill the plot (issue 9 item 16).
    #[test]
    fn regression_item18_the_y_axis_shows_everything_drawn() {
        let (rec, a) = node_under_load();
        let rss = rec.metric(Metric::Rss).unwrap();
        let (lo, hi) = shown_extent(rss.iter().copied()).unwrap();
        assert!(lo < MIB && hi >= 54.5 * MIB, "{} {}", lo / MIB, hi / MIB);
        // at least 10% of the level is shown
        let flat = [47.6 * MIB, 47.7 * MIB, 47.8 * MIB];
        let (lo, hi) = shown_extent(flat.into_iter()).unwrap();
        assert!(hi - lo >= 4.7 * MIB, "{} {}", lo / MIB, hi / MIB);
        assert!(lo < 47.6 * MIB && hi > 47.8 * MIB);
        // The first sample (near 0) is drawn: a metric-coloured pixel in the plot's
        // lowest rows at its left end.
        let png = render("node_under_load", &rec, &a, DEFAULT_SIZE);
        let (px, py) = &png.plot;
        let low_rows = (py.end - 12)..py.end;
        let left = px.start..(px.start + 20);
        assert!(
            low_rows
                .clone()
                .any(|y| left.clone().any(|x| png.pixel(x, y) == METRIC_COLOR)),
            "the first sample is in the plot"
        );
        // A series well above 0: the axis is broken at its foot (white gap across it).
        let time: Vec<f64> = (0..100).map(f64::from).collect();
        let high: Vec<f64> = time.iter().map(|t| 100.0 * MIB + t * 0.1 * MIB).collect();
        let rec = recording(&time, &high, None);
        let a = analysis(Verdict::Growing, Pattern::Linear, &rec, 20.0);
        let png = render("axis_break", &rec, &a, DEFAULT_SIZE);
        let (px, py) = &png.plot;
        let axis_x = px.start - 1;
        let foot = (py.end - 40)..py.end;
        assert!(
            foot.clone().any(|y| png.pixel(axis_x, y) == WHITE),
            "a break in the axis line near its foot"
        );
        assert!(
            foot.clone().any(|y| png.pixel(axis_x, y) == AXIS_COLOR),
            "the axis line is there around the break"
        );
    }

    /// Regression (issue 9 item 16): the settled samples were ticks along the top edge and
    /// the judged points were not drawn; event lines had no words.
    #[test]
    fn regression_judged_points_and_event_words_are_drawn() {
        let (rec, a) = node_under_load();
        let png = render("node_points", &rec, &a, DEFAULT_SIZE);
        let (px, py) = &png.plot;
        let h = f64::from(py.end - py.start);
        let count_in = |color: RGBColor, ys: std::ops::Range<f64>| {
            let y0 = py.start + (ys.start * h) as i32;
            let y1 = py.start + (ys.end * h) as i32;
            (px.start..px.end)
                .flat_map(|x| (y0..y1).map(move |y| (x, y)))
                .filter(|&(x, y)| png.pixel(x, y) == color)
                .count()
        };
        // settled rings at the values, below the top band where ticks used to be
        assert!(count_in(SETTLED_COLOR, 0.1..1.0) > 200);
        // the ten judged points (and their values) in black
        assert!(count_in(JUDGED_COLOR, 0.0..1.0) > 10 * 40);
        // event words at the top: load start/end in their colour beside the lines (text is
        // antialiased: close to the colour)
        let near = |p: RGBColor, c: RGBColor| {
            (i32::from(p.0) - i32::from(c.0)).abs()
                + (i32::from(p.1) - i32::from(c.1)).abs()
                + (i32::from(p.2) - i32::from(c.2)).abs()
                < 60
        };
        let line_x = |t: f64| {
            let share = (t - rec.time_s[0] + 0.7) / (70.0 + 1.4);
            px.start + (share * f64::from(px.end - px.start)) as i32
        };
        let words_near = |t: f64, color: RGBColor| {
            let x = line_x(t);
            ((x - 20)..(x + 30))
                .flat_map(|x| (py.start..py.start + 120).map(move |y| (x, y)))
                .filter(|&(x, y)| near(png.pixel(x, y), color))
                .count()
        };
        assert!(words_near(0.6, LOAD_COLOR) > 20, "load start has words");
        assert!(words_near(60.8, LOAD_COLOR) > 20, "load end has words");
        assert!(
            words_near(3.0, SIGNAL_COLOR) > 20,
            "the first signal has words"
        );
        assert_eq!(
            event_text(&EventKind::Other("load-start".into())),
            "load start"
        );
        assert_eq!(event_text(&EventKind::Other("load-end".into())), "load end");
        assert_eq!(event_text(&EventKind::Signal("SIGUSR2".into())), "SIGUSR2");
        assert_eq!(event_text(&EventKind::DumpStart("a".into())), "dump start");
        assert_eq!(event_text(&EventKind::Dump("a".into())), "dump written");
    }

    /// The header (title, run, judged sentence, legend) never takes the plot's room.
    #[test]
    fn small_charts_keep_a_plot() {
        let (rec, a) = node_under_load();
        let context = ChartContext {
            run: ChartContext::describe_run(
                4242,
                "node server.js --port 8080",
                70.0,
                "load finished",
            ),
            judged: "settled".into(),
            beside: String::new(),
            ..ChartContext::default()
        };
        for size in [MIN_SIZE, (640, 360), DEFAULT_SIZE] {
            let plot = render_rgb(&rec, Metric::Rss, &a, size, &context)
                .unwrap()
                .plot;
            let height = plot.1.end - plot.1.start;
            assert!(
                f64::from(height) >= 0.4 * f64::from(size.1),
                "{size:?}: plot {height} px high"
            );
        }
    }

    #[test]
    fn judged_points_sit_on_the_samples_that_hold_their_values() {
        let (rec, mut a) = node_under_load();
        let rss = rec.metric(Metric::Rss).unwrap();
        let samples: Vec<(f64, f64)> = rec
            .time_s
            .iter()
            .copied()
            .zip(rss.iter().copied())
            .collect();
        // each floor point is the minimum of the samples around it, placed mid-window
        a.floor = (0..10)
            .map(|k| {
                let (t0, t1) = (14.0 + 5.6 * f64::from(k), 14.0 + 5.6 * f64::from(k + 1));
                let min = samples
                    .iter()
                    .filter(|p| p.0 >= t0 && p.0 < t1)
                    .map(|p| p.1)
                    .fold(f64::INFINITY, f64::min);
                (0.5 * (t0 + t1), min)
            })
            .collect();
        for (p, f) in judged_points(&a, &rec.time_s, rss).iter().zip(&a.floor) {
            assert_eq!(p.1, f.1);
            let i = rec
                .time_s
                .iter()
                .position(|&t| t == p.0)
                .expect("a sample's time");
            assert_eq!(rss[i], p.1, "the dot is on its sample");
        }
    }

    #[test]
    fn clip_y_keeps_what_is_inside() {
        let runs = clip_y(&[(0.0, -1.0), (1.0, 1.0), (2.0, 3.0), (3.0, 1.0)], 0.0, 2.0);
        assert_eq!(
            runs,
            vec![
                vec![(0.5, 0.0), (1.0, 1.0), (1.5, 2.0)],
                vec![(2.5, 2.0), (3.0, 1.0)]
            ]
        );
        assert!(clip_y(&[(0.0, 5.0), (1.0, 6.0)], 0.0, 2.0).is_empty());
        assert_eq!(clip_y(&[(0.0, 1.0)], 0.0, 2.0), vec![vec![(0.0, 1.0)]]);
    }

    #[test]
    fn value_range_pads_and_stays_positive() {
        assert_eq!(value_range(100.0, 200.0), (94.0, 206.0));
        assert_eq!(value_range(0.0, 100.0), (0.0, 106.0));
        let (lo, hi) = value_range(64.0 * MIB, 64.0 * MIB);
        assert!(lo < 64.0 * MIB && hi > 64.0 * MIB);
        let (lo, hi) = value_range(0.0, 0.0);
        assert_eq!((lo, hi), (0.0, 1024.0));
        assert_eq!(time_range(&[5.0]), Some((4.0, 6.0)));
        assert_eq!(time_range(&[f64::NAN]), None);
    }
}
