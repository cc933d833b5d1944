//! The PNG chart: one metric over time, with the analysis drawn on top (trend line,
//! warm-up and heap-dump shading, event markers) and the verdict in the title.
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

use crate::analyze::{Analysis, Pattern, TrendLine, Verdict};
use crate::recording::{Event, EventKind, Recording};
use crate::sample::Metric;

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

/// Draws `metric` of `rec` with `analysis` on top and returns the PNG file's bytes.
pub fn render_png(
    rec: &Recording,
    metric: Metric,
    analysis: &Analysis,
    size: (u32, u32),
) -> Result<Vec<u8>, ChartError> {
    let rendered = render_rgb(rec, metric, analysis, size)?;
    encode_png(&rendered.rgb, size)
}

/// `render_png`, written to `path`.
pub fn write_png(
    path: &Path,
    rec: &Recording,
    metric: Metric,
    analysis: &Analysis,
    size: (u32, u32),
) -> Result<(), ChartError> {
    let bytes = render_png(rec, metric, analysis, size)?;
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
    values: &[f64],
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
    for (&t, &v) in time.iter().zip(values) {
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
const WARMUP_FILL: RGBColor = RGBColor(228, 228, 228);
const EXCLUDED_FILL: RGBColor = RGBColor(255, 222, 173);
const SIGNAL_COLOR: RGBColor = RGBColor(148, 103, 189);
const SETTLED_COLOR: RGBColor = RGBColor(23, 190, 207);
const DUMP_COLOR: RGBColor = RGBColor(230, 115, 0);
const OTHER_EVENT_COLOR: RGBColor = RGBColor(150, 150, 150);
const GRID_COLOR: RGBColor = RGBColor(222, 222, 222);
const AXIS_COLOR: RGBColor = RGBColor(80, 80, 80);
const TEXT_COLOR: RGBColor = RGBColor(25, 25, 25);
const GROWING_TITLE_COLOR: RGBColor = RGBColor(185, 20, 20);
const SWATCH_BORDER: RGBColor = RGBColor(170, 170, 170);

/// Series with at most this many samples also get a dot per sample, so that one or two
/// samples still show.
const MARKER_LIMIT: usize = 100;

/// One line of the chart, reduced to pixel columns.
struct Series<'a> {
    label: &'static str,
    color: RGBColor,
    values: &'a [f64],
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

fn pattern_name(pattern: Pattern) -> Option<&'static str> {
    match pattern {
        Pattern::Linear => Some("linear"),
        Pattern::Steps => Some("steps"),
        Pattern::Sawtooth => Some("sawtooth"),
        Pattern::Plateau => Some("plateau"),
        Pattern::Flat => Some("flat"),
        Pattern::Shrinking => Some("shrinking"),
        Pattern::Oscillating => Some("oscillating"),
        Pattern::Unknown => None,
    }
}

fn format_p_value(p: f64) -> Option<String> {
    if !p.is_finite() {
        None
    } else if p < 0.001 {
        Some("p < 0.001".to_string())
    } else {
        Some(format!("p = {p:.3}"))
    }
}

/// The verdict in a line: "growing: +12.3 MiB/min, p < 0.001 (linear)",
/// "stable: +102 B/min (flat)", "inconclusive: 8 samples after warm-up".
fn title_text(analysis: &Analysis, per: TimeUnit) -> String {
    let slope = analysis.slope_bytes_per_s;
    let slope_text = slope
        .is_finite()
        .then(|| format!("{}/{}", crate::units::Delta(slope * per.seconds), per.name));
    let mut parts: Vec<String> = Vec::new();
    if analysis.verdict == Verdict::Inconclusive {
        let n = analysis.samples_analysed;
        let noun = if n == 1 { "sample" } else { "samples" };
        parts.push(format!("{n} {noun} after warm-up"));
    }
    parts.extend(slope_text);
    if analysis.verdict != Verdict::Stable {
        parts.extend(format_p_value(analysis.p_value));
    }
    let mut title = format!("{}: {}", analysis.verdict.as_str(), parts.join(", "));
    if let Some(name) = pattern_name(analysis.pattern) {
        title.push_str(&format!(" ({name})"));
    }
    title
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

fn register_fonts() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    ok.then_some(()).ok_or(ChartError::Font)
}

fn render_rgb(
    rec: &Recording,
    metric: Metric,
    analysis: &Analysis,
    size: (u32, u32),
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
    let reduce = |label, color, values| Series {
        label,
        color,
        values,
        columns: downsample(&rec.time_s, values, t_lo, t_hi, columns),
    };
    let mut series = vec![reduce(metric.name(), METRIC_COLOR, values)];
    if metric == Metric::Rss {
        if let Some(anon) = rec.metric(Metric::Anon) {
            let anon = reduce(Metric::Anon.name(), ANON_COLOR, anon);
            if anon.columns.iter().any(Option::is_some) {
                series.push(anon);
            }
        }
    }
    let (v_lo, v_hi) = {
        let known = series
            .iter()
            .flat_map(|s| s.columns.iter().flatten())
            .flat_map(|c| [c.min, c.max]);
        let trend = analysis.trend.iter().flat_map(|l| [l.v0, l.v1]);
        let main_known = series[0].columns.iter().any(Option::is_some);
        match finite_extent(known.chain(trend)) {
            Some((lo, hi)) if main_known => value_range(lo, hi),
            _ => return Err(ChartError::NoValues(metric)),
        }
    };

    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    let plot = {
        let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
        let frame = Frame {
            t: (t_lo, t_hi),
            v: (v_lo, v_hi),
            time_unit: TimeUnit::for_duration(t_hi - t_lo),
            byte_unit: ByteUnit::for_magnitude(v_lo.abs().max(v_hi.abs())),
        };
        let plot = draw(&root, &layout, &frame, rec, &series, analysis)?;
        root.present()?;
        plot
    };
    Ok(Rendered { rgb, plot })
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

fn draw(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    layout: &Layout,
    frame: &Frame,
    rec: &Recording,
    series: &[Series<'_>],
    analysis: &Analysis,
) -> Result<(std::ops::Range<i32>, std::ops::Range<i32>), ChartError> {
    root.fill(&WHITE)?;
    let legend = legend_items(rec, series, analysis);
    let header_height = draw_header(
        root,
        layout,
        &title_text(analysis, frame.time_unit),
        analysis.verdict,
        &legend,
    )?;
    let (_, body) = root.split_vertically(header_height);

    let (width, height) = root.dim_in_pixel();
    let plot_width = layout.plot_width(width) as f64;
    let plot_height =
        height.saturating_sub(header_height + layout.margin + layout.x_label_area) as f64;
    let (x_lo, x_hi) = (frame.x(frame.t.0), frame.x(frame.t.1));
    let (y_lo, y_hi) = (frame.y(frame.v.0), frame.y(frame.v.1));
    let (x_ticks, x_step) = nice_ticks(x_lo, x_hi, (plot_width / (95.0 * layout.scale)) as usize);
    let (y_ticks, y_step) = nice_ticks(y_lo, y_hi, (plot_height / (55.0 * layout.scale)) as usize);
    let (x_decimals, y_decimals) = (decimals_for_step(x_step), decimals_for_step(y_step));

    let mut chart = ChartBuilder::on(&body)
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
    debug_assert_eq!(
        chart.plotting_area().dim_in_pixel().0 as usize,
        series[0].columns.len(),
        "one downsampling column per pixel"
    );

    // Shading first, so that the grid stays visible on it.
    let warmup_end = rec.time_s.first().copied().unwrap_or(0.0) + analysis.warmup_s;
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

    // Signals over the settled marks that follow them closely, dumps over both.
    let mut events: Vec<&Event> = rec.events.iter().collect();
    events.sort_by_key(|e| event_layer(&e.kind));
    // A settled sample comes seconds after its signal: a short mark at the top keeps the
    // two apart where a second full line would blur into the first.
    let settled_bottom = y_hi - (y_hi - y_lo) * 0.05;
    let event_lines = events.into_iter().filter_map(|event| {
        let x = frame.x(event.elapsed_s);
        (frame.t.0..=frame.t.1).contains(&event.elapsed_s).then(|| {
            let (color, width) = event_style(&event.kind);
            let bottom = match event.kind {
                EventKind::Settled => settled_bottom,
                _ => y_lo,
            };
            let width = layout.px(f64::from(width)).max(1) as u32;
            PathElement::new(vec![(x, bottom), (x, y_hi)], color.stroke_width(width))
        })
    });
    chart.draw_series(event_lines)?;

    // Reverse, so that the chosen metric is drawn last, on top.
    for s in series.iter().rev() {
        let style = s.color.stroke_width(layout.px(1.5).max(1) as u32);
        let columns = s.columns.len();
        let x_of = |i: usize| frame.x(column_time(i, frame.t.0, frame.t.1, columns));
        // Each column's extent as its own vertical segment (a path doubling back on
        // itself draws badly when thick), then the line joining the columns in order.
        let extents = s.columns.iter().enumerate().filter_map(|(i, c)| {
            let c = c.as_ref().filter(|c| c.max > c.min)?;
            let x = x_of(i);
            Some(PathElement::new(
                vec![(x, frame.y(c.min)), (x, frame.y(c.max))],
                style,
            ))
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
            chart.draw_series(std::iter::once(PathElement::new(points, style)))?;
        }
        if rec.len() <= MARKER_LIMIT {
            let dots = rec
                .time_s
                .iter()
                .zip(s.values)
                .filter(|(t, v)| t.is_finite() && v.is_finite())
                .map(|(&t, &v)| {
                    Circle::new((frame.x(t), frame.y(v)), layout.px(3.5), s.color.filled())
                });
            chart.draw_series(dots)?;
        }
    }

    if let Some(line) = analysis.trend {
        let (color, width) = trend_style(analysis.verdict);
        let style = color.stroke_width(layout.px(width).max(1) as u32);
        let segments = trend_segments(&line, &analysis.steps);
        chart.draw_series(segments.into_iter().map(|((ta, va), (tb, vb))| {
            PathElement::new(
                vec![(frame.x(ta), frame.y(va)), (frame.x(tb), frame.y(vb))],
                style,
            )
        }))?;
    }

    Ok(chart.plotting_area().get_pixel_range())
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

fn event_style(kind: &EventKind) -> (RGBColor, u32) {
    match kind {
        EventKind::Signal(_) => (SIGNAL_COLOR, 1),
        EventKind::Settled => (SETTLED_COLOR, 3),
        EventKind::DumpStart(_) | EventKind::Dump(_) => (DUMP_COLOR, 2),
        EventKind::Other(_) => (OTHER_EVENT_COLOR, 1),
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
        EventKind::Other(_) => "event",
    }
}

/// The legend: the series, then only what this chart shows.
fn legend_items(rec: &Recording, series: &[Series<'_>], analysis: &Analysis) -> Vec<LegendItem> {
    let mut items: Vec<LegendItem> = series
        .iter()
        .map(|s| LegendItem {
            swatch: Swatch::Line(s.color),
            label: s.label.to_string(),
        })
        .collect();
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
    let mut labels: Vec<&'static str> = Vec::new();
    for event in &rec.events {
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

/// Draws the title and, below it, the legend (wrapped to the width). Returns the height
/// they take.
fn draw_header(
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
    layout: &Layout,
    title: &str,
    verdict: Verdict,
    legend: &[LegendItem],
) -> Result<u32, ChartError> {
    let (width, _) = root.dim_in_pixel();
    let left = layout.margin as i32;
    let right = width as i32 - layout.margin as i32;
    let title_color = if verdict == Verdict::Growing {
        GROWING_TITLE_COLOR
    } else {
        TEXT_COLOR
    };
    let title_font = layout.font(layout.title_font, FontStyle::Bold);
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
    let top = layout.px(52.0);
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

fn encode_png(rgb: &[u8], (width, height): (u32, u32)) -> Result<Vec<u8>, ChartError> {
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
        let cols = downsample(&time, &values, 0.0, 999.0, 10);
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
        let cols = downsample(&time, &values, 0.0, 10.0, 10);
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
        let cols = downsample(&[2.0, 2.0], &[1.0, 3.0], 2.0, 2.0, 4);
        let c0 = cols[0].unwrap();
        assert_eq!((c0.min, c0.max, c0.first, c0.last), (1.0, 3.0, 1.0, 3.0));
        assert!(
            downsample(&[], &[], 0.0, 1.0, 4)
                .iter()
                .all(Option::is_none)
        );
        assert!(downsample(&[1.0], &[1.0], 0.0, 1.0, 0).is_empty());
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
            slope_bytes_per_s: 0.0,
            slope_pct_per_hour: 0.0,
            growth_bytes: 0.0,
            p_value: f64::NAN,
            start_bytes: 0.0,
            end_bytes: 0.0,
            peak_bytes: 0.0,
            trend: None,
            excluded: Vec::new(),
            steps: Vec::new(),
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
        a.slope_bytes_per_s = 0.2 * MIB;
        a.p_value = 1e-9;
        a.trend = Some(TrendLine {
            t0: 720.0,
            v0: 459.0 * MIB,
            t1: 7199.0,
            v1: 1755.0 * MIB,
        });
        a.excluded = vec![(3600.0, 3680.0)];
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
        a.slope_bytes_per_s = 1.7;
        a.p_value = 0.4;
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
        let bytes = render_png(rec, Metric::Rss, a, size).unwrap();
        if let Some(dir) = std::env::var_os("MEMWATCH_CHART_DIR") {
            std::fs::write(Path::new(&dir).join(format!("{name}.png")), &bytes).unwrap();
        }
        let plot = render_rgb(rec, Metric::Rss, a, size).unwrap().plot;
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
        let err = render_png(&empty, Metric::Rss, &a, DEFAULT_SIZE).unwrap_err();
        assert!(matches!(err, ChartError::NoSamples), "{err}");

        // A recording never stores a column of only NaN; one with no finite value is as bad.
        let rec = recording(&[0.0, 1.0], &[f64::NAN, f64::NAN], None);
        let err = render_png(&rec, Metric::Rss, &a, DEFAULT_SIZE).unwrap_err();
        assert!(matches!(err, ChartError::NoMetric(Metric::Rss)), "{err}");
        let rec = recording(&[0.0, 1.0], &[f64::INFINITY, f64::NAN], None);
        let err = render_png(&rec, Metric::Rss, &a, DEFAULT_SIZE).unwrap_err();
        assert!(matches!(err, ChartError::NoValues(Metric::Rss)), "{err}");
        let err = render_png(&rec, Metric::Pss, &a, DEFAULT_SIZE).unwrap_err();
        assert_eq!(err.to_string(), "nothing to chart: pss was not recorded");

        let (rec, a) = stable();
        let err = render_png(&rec, Metric::Rss, &a, (100, 100)).unwrap_err();
        assert!(matches!(err, ChartError::TooSmall(100, 100)), "{err}");
    }

    #[test]
    fn write_png_writes_a_png_file() {
        let (rec, a) = stable();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.png");
        write_png(&path, &rec, Metric::Rss, &a, (640, 360)).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let err = write_png(
            &dir.path().join("no/such/dir.png"),
            &rec,
            Metric::Rss,
            &a,
            (640, 360),
        );
        assert!(matches!(err, Err(ChartError::Write { .. })));
    }

    #[test]
    fn titles_say_verdict_slope_and_p() {
        let (rec, mut a) = growing();
        a.slope_bytes_per_s = 12.3 * MIB / 60.0;
        a.pattern = Pattern::Linear;
        assert_eq!(
            title_text(&a, MINUTES),
            "growing: +12.3 MiB/min, p < 0.001 (linear)"
        );
        a.verdict = Verdict::Stable;
        a.pattern = Pattern::Flat;
        a.slope_bytes_per_s = 0.1 * 1024.0 / 60.0;
        assert_eq!(title_text(&a, MINUTES), "stable: +102 B/min (flat)");
        let mut a = analysis(Verdict::Inconclusive, Pattern::Unknown, &rec, 0.0);
        a.samples_analysed = 8;
        a.slope_bytes_per_s = f64::NAN;
        assert_eq!(
            title_text(&a, SECONDS),
            "inconclusive: 8 samples after warm-up"
        );
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
