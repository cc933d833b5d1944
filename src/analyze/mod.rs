//! The analyser: decides, from one metric's series, whether memory grows.
//! Pure functions, no I/O. See `docs/verdict.md` for the method.

use crate::units::{Bytes, Count, Elapsed, PValue, PctPerHour, Rate};
use serde::Serialize;
use std::borrow::Cow;
use std::fmt;

pub mod stats;
#[doc(hidden)]
pub mod synth;

/// The answer a run ends with. Its exit code is the CI gate's (DESIGN.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Growing,
    Stable,
    Inconclusive,
}

impl Verdict {
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Stable => 0,
            Verdict::Growing => 1,
            Verdict::Inconclusive => 3,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Growing => "growing",
            Verdict::Stable => "stable",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A finer description of the series' shape, for people; the verdict is what gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pattern {
    /// Steady growth.
    Linear,
    /// Growth in steps that are never given back.
    Steps,
    /// GC-like rise and fall; the floor decides the verdict.
    Sawtooth,
    /// Growth during warm-up, then flat.
    Plateau,
    /// No trend worth the name.
    Flat,
    /// Memory goes down.
    Shrinking,
    /// Slow rise and fall with no net trend.
    Oscillating,
    /// Too little data to say.
    Unknown,
}

impl Pattern {
    /// The pattern's word, as in summary.json: `linear`, `plateau`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Pattern::Linear => "linear",
            Pattern::Steps => "steps",
            Pattern::Sawtooth => "sawtooth",
            Pattern::Plateau => "plateau",
            Pattern::Flat => "flat",
            Pattern::Shrinking => "shrinking",
            Pattern::Oscillating => "oscillating",
            Pattern::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long the start of a run is left out of the analysis.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Warmup {
    /// A share of the run with a floor and a cap (see `Thresholds::default` docs).
    Auto,
    /// This many seconds from the run's first sample.
    Fixed(f64),
}

impl Warmup {
    /// The seconds left out at the start of a run of `run_s` seconds. One answer for every
    /// part of a run that needs it: the analysis of each series (the metric, the settled
    /// samples, the managed heap: all counted from the run's start) and the heap-snapshot
    /// schedule set before the run.
    pub fn seconds(self, run_s: f64) -> f64 {
        match self {
            Warmup::Auto => auto_warmup_s(run_s),
            Warmup::Fixed(s) => s.max(0.0),
        }
    }
}

/// The run a series was taken in, on the run's clock: from its first sample to its last.
/// The run's length is what `duration_s` says, and its warm-up is counted from its start,
/// whichever of its series is judged (settled samples and heap readings are sparser and
/// start later than the run).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Run {
    pub start_s: f64,
    pub end_s: f64,
}

impl Run {
    /// The span of `time_s` (its finite times), to the millisecond as samples.csv holds it;
    /// `None` without a finite time.
    pub fn of(time_s: &[f64]) -> Option<Run> {
        let mut finite = time_s.iter().copied().filter(|t| t.is_finite());
        let first = finite.next()?;
        let (lo, hi) = finite.fold((first, first), |(lo, hi), t| (lo.min(t), hi.max(t)));
        Some(Run {
            start_s: to_millis(lo),
            end_s: to_millis(hi),
        })
    }

    pub fn length_s(&self) -> f64 {
        (self.end_s - self.start_s).max(0.0)
    }
}

/// The least total growth over the analysed window that counts as a leak: bytes, or percent
/// of the floor at the start of the analysed window.
pub use crate::options::SizeOrPct as MinGrowth;

/// The gates the analyser applies; every one must pass for "growing".
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Thresholds {
    pub warmup: Warmup,
    /// Least absolute slope, bytes per second.
    pub min_slope_bytes_per_s: f64,
    /// Least relative slope, percent of the starting floor per hour.
    pub min_slope_pct_per_hour: f64,
    pub min_growth: MinGrowth,
    /// Significance level of the trend test.
    pub p_value: f64,
    /// The two slope gates are judged over at most this many seconds: over a longer
    /// window, a rise of (minimum slope × horizon) passes them, however slowly it came.
    /// A slow rate adds up on a long run. `f64::INFINITY`: pure rates.
    pub slope_horizon_s: f64,
}

/// A straight line from (t0, v0) to (t1, v1), seconds and bytes: the fitted trend.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TrendLine {
    pub t0: f64,
    pub v0: f64,
    pub t1: f64,
    pub v1: f64,
}

/// Everything the analyser concluded, ready for the reporters.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Analysis {
    pub verdict: Verdict,
    pub pattern: Pattern,
    /// All samples in the series / those inside the analysed window and not excluded.
    pub samples: usize,
    pub samples_analysed: usize,
    /// The run's length, from its first sample to its last (not the judged series' span).
    pub duration_s: f64,
    /// Left out at the start of the run.
    pub warmup_s: f64,
    /// The analysed window, seconds on the run's clock.
    pub window_start_s: f64,
    pub window_end_s: f64,
    /// The floor's slope, `None` when the series could not be judged (inconclusive):
    /// unknown, never 0.
    pub slope_bytes_per_s: Option<f64>,
    pub slope_pct_per_hour: Option<f64>,
    /// Slope times the analysed window's length; `None` when not judged.
    pub growth_bytes: Option<f64>,
    /// Of the trend test; `None` when not judged.
    pub p_value: Option<f64>,
    /// First, last and highest value of the whole series.
    pub start_bytes: f64,
    pub end_bytes: f64,
    pub peak_bytes: f64,
    pub trend: Option<TrendLine>,
    /// Periods left out (heap dumps being written), seconds.
    pub excluded: Vec<(f64, f64)>,
    /// Steps taken out of the series at the end of excluded periods (a heap dump's memory
    /// that stayed): (seconds, bytes). The trend is fitted without them; add them back,
    /// from their time on, to draw it over the recorded values.
    pub steps: Vec<(f64, f64)>,
    /// The judged points: each window's minimum (seconds, bytes), on which the trend test
    /// and the slope were computed; dump steps taken out, like `trend`. Empty when the
    /// analysis could not start (too few samples).
    pub floor: Vec<(f64, f64)>,
    pub thresholds: Thresholds,
    /// One sentence saying why, e.g. "floor rose 12.1 MiB at 0.1 MiB/s (p < 0.001)".
    pub reason: String,
}

/// The verdict in a few words, written the same way wherever it is shown (the live line,
/// the chart's title): `growing (linear): floor +2.03 MiB/s, p < 0.001`, `stable (plateau)`,
/// `stable (shrinking): floor -1.20 MiB/min, p < 0.001`,
/// `inconclusive: 6 samples after the 5 s warm-up`. A slope is given only with the
/// patterns that are a trend (growing, or shrinking), so words and figure never disagree.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Headline {
    pub verdict: Verdict,
    pub pattern: Pattern,
    pub slope_bytes_per_s: Option<f64>,
    pub p_value: Option<f64>,
    pub samples_analysed: usize,
    pub warmup_s: f64,
}

impl Analysis {
    /// The analysed window's length, seconds: what the slope and the growth are measured
    /// over (`duration_s` is the whole run).
    pub fn window_s(&self) -> f64 {
        (self.window_end_s - self.window_start_s).max(0.0)
    }

    pub fn headline(&self) -> Headline {
        Headline {
            verdict: self.verdict,
            pattern: self.pattern,
            slope_bytes_per_s: self.slope_bytes_per_s,
            p_value: self.p_value,
            samples_analysed: self.samples_analysed,
            warmup_s: self.warmup_s,
        }
    }
}

impl fmt::Display for Headline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.verdict == Verdict::Inconclusive {
            return write!(
                f,
                "inconclusive: {} after the {} warm-up",
                Count(self.samples_analysed as u64, "sample"),
                Elapsed(self.warmup_s)
            );
        }
        write!(f, "{} ({})", self.verdict, self.pattern)?;
        if let (true, Some(slope), Some(p)) = (
            self.verdict == Verdict::Growing || self.pattern == Pattern::Shrinking,
            self.slope_bytes_per_s,
            self.p_value,
        ) {
            write!(f, ": floor {}, {}", Rate(slope), PValue(p))?;
        }
        Ok(())
    }
}

/// Fewer samples than this after the warm-up (and exclusions) give `Inconclusive`.
pub const MIN_SAMPLES: usize = 10;
/// Automatic warm-up: this share of the run...
pub const AUTO_WARMUP_SHARE: f64 = 0.2;
/// ...but at least this many seconds...
pub const AUTO_WARMUP_MIN_S: f64 = 10.0;
/// ...and at most this many (and never more than half the run).
pub const AUTO_WARMUP_MAX_S: f64 = 600.0;
/// The default `Thresholds::slope_horizon_s`: 10 hours.
pub const DEFAULT_SLOPE_HORIZON_S: f64 = 36_000.0;
/// Windows (floor points) the analysed span is cut into: at most this many...
const MAX_WINDOWS: usize = 40;
/// ...at least this many (when there are that many samples)...
const MIN_WINDOWS: usize = 10;
/// ...aiming at this many samples per window.
const SAMPLES_PER_WINDOW: usize = 4;
/// A window spans at least this many detected GC cycles, when that leaves `MIN_WINDOWS`.
const GC_CYCLES_PER_WINDOW: f64 = 1.5;
/// Growth counts as sustained unless the floor's slope over the later half of the
/// window is confidently (90% upper bound) below this share of the overall slope.
const SUSTAINED_SHARE: f64 = 0.3;
/// ...or a curve that levels off fits the floor better than a line by this F statistic
/// (divided by the persistence of what the curve leaves)...
const LEVELLED_F: f64 = 6.0;
/// ...and its slope at the end of the window is below this share of the line's.
const LEVELLED_END_SHARE: f64 = 0.3;
/// The floor is known to within the climb between two samples of a GC cycle (the samples
/// can catch the cycle at a phase that drifts): growth must be at least this many times it.
const RESOLUTION_FACTOR: f64 = 1.5;
/// A rise whose floor fell back by more than this share of it on the way (beyond the
/// floor's noise and resolution) is wander, not a leak: a leak keeps what it takes.
const WANDER_SHARE: f64 = 0.15;
/// The floor's rise, less this many times the amplitude of its slow wander (beyond its white
/// noise), must still reach the minimum growth: a wander of 1% rises 2% now and then.
const WANDER_SDS: f64 = 2.0;

impl Default for Thresholds {
    /// The defaults, calibrated on the synthetic cases in `tests/analyze_cases.rs`
    /// (see `docs/verdict.md`):
    ///
    /// - `warmup: Auto` — 20% of the run, at least 10 s, at most 10 min, never
    ///   more than half the run: start-up allocation (caches, JIT, pools) is not a leak.
    /// - `min_slope_bytes_per_s: 16` — one 4 KiB page every 4 minutes (1.4 MB a
    ///   day); below that, RSS granularity makes a slope meaningless.
    /// - `min_slope_pct_per_hour: 1` — growth slower than 1%/h takes days to matter;
    ///   the slow leaks we must catch grow a few %/h.
    /// - `min_growth: Percent(2)` — the floor must rise at least 2% of its
    ///   starting level over the analysed window: smaller rises are within what
    ///   allocator noise, fragmentation and a GC cycle move the floor; a 2-minute
    ///   load test with a real leak rises ~10%.
    /// - `p_value: 0.01` — two-sided, after the autocorrelation correction: one
    ///   false alarm in a hundred stable runs at most, from the test alone; the
    ///   other gates make it rarer still.
    /// - `slope_horizon_s: 36000` (10 h) — the slopes are asked of the run's first
    ///   10 hours' worth: on a longer window a rise of 10% of the floor (and 576 KB)
    ///   passes the slope gates, so a service that gains 50% in four weeks (0.07%/h)
    ///   is growing while a few % of drift over days is not.
    fn default() -> Self {
        Thresholds {
            warmup: Warmup::Auto,
            min_slope_bytes_per_s: 16.0,
            min_slope_pct_per_hour: 1.0,
            min_growth: MinGrowth::Percent(2.0),
            p_value: 0.01,
            slope_horizon_s: DEFAULT_SLOPE_HORIZON_S,
        }
    }
}

/// The warm-up `Warmup::Auto` picks for a run of `duration_s` seconds.
pub fn auto_warmup_s(duration_s: f64) -> f64 {
    if duration_s.is_nan() || duration_s <= 0.0 {
        return 0.0;
    }
    (AUTO_WARMUP_SHARE * duration_s)
        .clamp(AUTO_WARMUP_MIN_S, AUTO_WARMUP_MAX_S)
        .min(0.5 * duration_s)
}

/// `seconds` to the millisecond, exactly as samples.csv writes `elapsed_s` (the integer
/// number of ms, `(s * 1000).round()`, over 1000 is the f64 nearest the decimal the CSV
/// holds), so a recording analysed live and read back from its CSV gives the same answer.
/// Idempotent; infinities stay.
pub fn to_millis(seconds: f64) -> f64 {
    if seconds.is_finite() {
        (seconds * 1000.0).round() / 1000.0
    } else {
        seconds
    }
}

/// One floor point: the minimum of a time window and where it sits in time.
#[derive(Clone, Copy, Debug)]
struct FloorPoint {
    t: f64,
    v: f64,
}

/// Typical period of GC-like sharp drops in the analysed samples, if there are at least 3.
/// A drop is a fall between consecutive samples larger than both 6 robust
/// standard deviations of the sample-to-sample changes and 0.5% of the level.
fn gc_period(samples: &Analysed) -> Option<(f64, usize)> {
    let n = samples.len();
    if n < 4 {
        return None;
    }
    // The medians are streamed: a long recording is never copied for them.
    let changes = || pairs(samples.iter()).map(|(a, b)| b.1 - a.1);
    let med = stats::median_streamed(n - 1, changes);
    let mad = stats::median_streamed(n - 1, || changes().map(|d| (d - med).abs())) * 1.4826;
    let level = stats::median_streamed(n, || samples.iter().map(|p| p.1));
    let threshold = (6.0 * mad).max(0.005 * level.abs());
    let mut drops = pairs(samples.iter())
        .filter(|(a, b)| b.1 - a.1 < -threshold)
        .map(|(_, b)| b.0);
    let first = drops.next()?;
    let (last, count) = drops.fold((first, 1usize), |(_, k), t| (t, k + 1));
    if count < 3 {
        return None;
    }
    let period = (last - first) / (count - 1) as f64;
    (period > 0.0).then_some((period, count))
}

/// Cut the analysed samples into windows and keep each window's minimum.
fn floor_points(samples: &Analysed, gc: Option<f64>) -> Vec<FloorPoint> {
    let n = samples.len();
    let (Some(t0), Some(t1)) = (samples.first_t(), samples.last_t()) else {
        return Vec::new();
    };
    let span = t1 - t0;
    let mut windows = (n / SAMPLES_PER_WINDOW)
        .clamp(MIN_WINDOWS, MAX_WINDOWS)
        .min(n);
    if let Some(p) = gc {
        let by_gc = (span / (GC_CYCLES_PER_WINDOW * p)).floor() as usize;
        windows = windows.min(by_gc.max(MIN_WINDOWS.min(n)));
    }
    if span.is_nan() || span <= 0.0 || windows < 2 {
        return samples.iter().map(|(t, v)| FloorPoint { t, v }).collect();
    }
    let width = span / windows as f64;
    let mut points = Vec::with_capacity(windows);
    let mut cur: Option<(usize, f64, f64, f64)> = None; // (window, min, first t, last t)
    for (ti, vi) in samples.iter() {
        let w = (((ti - t0) / width) as usize).min(windows - 1);
        match cur.as_mut() {
            Some(c) if c.0 == w => {
                c.1 = c.1.min(vi);
                c.3 = ti;
            }
            _ => {
                if let Some(c) = cur {
                    points.push(FloorPoint {
                        t: 0.5 * (c.2 + c.3),
                        v: c.1,
                    });
                }
                cur = Some((w, vi, ti, ti));
            }
        }
    }
    if let Some(c) = cur {
        points.push(FloorPoint {
            t: 0.5 * (c.2 + c.3),
            v: c.1,
        });
    }
    points
}

/// Consecutive pairs of `items`.
fn pairs<T: Copy>(mut items: impl Iterator<Item = T>) -> impl Iterator<Item = (T, T)> {
    let first = items.next();
    items.scan(first, |previous, item| {
        let before = previous.replace(item)?;
        Some((before, item))
    })
}

/// The usable samples (finite, in time order, times at the CSV's 1 ms precision): borrowed
/// when the input already is that, as a recording read back from its CSV or a live one is;
/// copied (and sorted) only when it is not.
fn usable<'a>(time_s: &'a [f64], values: &'a [f64]) -> (Cow<'a, [f64]>, Cow<'a, [f64]>) {
    let n = time_s.len().min(values.len());
    let (time_s, values) = (&time_s[..n], &values[..n]);
    let clean = time_s
        .iter()
        .zip(values)
        .all(|(&t, &v)| t.is_finite() && v.is_finite() && to_millis(t) == t)
        && time_s.windows(2).all(|w| w[0] <= w[1]);
    if clean {
        return (Cow::Borrowed(time_s), Cow::Borrowed(values));
    }
    let mut t: Vec<f64> = Vec::with_capacity(n);
    let mut v: Vec<f64> = Vec::with_capacity(n);
    for (&ti, &vi) in time_s.iter().zip(values) {
        if ti.is_finite() && vi.is_finite() {
            t.push(to_millis(ti));
            v.push(vi);
        }
    }
    if t.windows(2).any(|w| w[1] < w[0]) {
        let mut idx: Vec<usize> = (0..t.len()).collect();
        idx.sort_by(|&a, &b| t[a].total_cmp(&t[b]));
        let (ts, vs) = idx.iter().map(|&i| (t[i], v[i])).unzip();
        t = ts;
        v = vs;
    }
    (Cow::Owned(t), Cow::Owned(v))
}

/// The analysed samples: the runs of usable samples after the warm-up and outside every
/// excluded period, with the steps heap dumps left taken out as they are read. A view, not a
/// copy: a month-long recording is analysed in the memory it was read into.
struct Analysed<'a> {
    t: &'a [f64],
    v: &'a [f64],
    runs: Vec<std::ops::Range<usize>>,
    len: usize,
    /// (time, bytes), by time: taken out of every sample after that time.
    steps: Vec<(f64, f64)>,
}

impl<'a> Analysed<'a> {
    /// The samples at or after `start` and after the end of every period of `ex` (sorted by
    /// start) that began at or before them.
    fn new(t: &'a [f64], v: &'a [f64], start: f64, ex: &[(f64, f64)]) -> Analysed<'a> {
        let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
        let mut k = 0;
        let mut reach = f64::NEG_INFINITY; // furthest end among periods starting at or before t
        let first = t.partition_point(|&x| x < start);
        for (i, &ti) in t.iter().enumerate().skip(first) {
            while k < ex.len() && ex[k].0 <= ti {
                reach = reach.max(ex[k].1);
                k += 1;
            }
            if ti > reach {
                match runs.last_mut() {
                    Some(run) if run.end == i => run.end = i + 1,
                    _ => runs.push(i..i + 1),
                }
            }
        }
        let len = runs.iter().map(|r| r.len()).sum();
        Analysed {
            t,
            v,
            runs,
            len,
            steps: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn first_t(&self) -> Option<f64> {
        self.runs.first().map(|r| self.t[r.start])
    }

    fn last_t(&self) -> Option<f64> {
        self.runs.last().map(|r| self.t[r.end - 1])
    }

    /// (seconds, bytes), in time order.
    fn iter(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        let mut next_step = 0;
        let mut taken_out = 0.0;
        self.runs.iter().flat_map(|r| r.clone()).map(move |i| {
            let t = self.t[i];
            while next_step < self.steps.len() && self.steps[next_step].0 < t {
                taken_out += self.steps[next_step].1;
                next_step += 1;
            }
            (t, self.v[i] - taken_out)
        })
    }
}

/// Upper bound (90% two-sided) of the Theil–Sen slope over the later half of the floor.
fn late_slope_upper(pts: &[FloorPoint]) -> f64 {
    let late = &pts[pts.len() / 2..];
    if late.len() < 3 {
        return f64::INFINITY; // too few points to say it levelled off
    }
    let t: Vec<f64> = late.iter().map(|p| p.t).collect();
    let v: Vec<f64> = late.iter().map(|p| p.v).collect();
    let inflation = stats::hamed_rao_factor(&v, v.len() - 1);
    let (_, hi) = stats::theil_sen_ci(&t, &v, 1.645, inflation);
    if hi.is_nan() { f64::INFINITY } else { hi }
}

/// Whether the floor rose and then levelled off: a curve that saturates
/// (`a + c·(1 − e^(−t/τ))`) fits it much better than a line and is nearly flat at the end.
/// A heap settling in under forced GCs rises in ever smaller steps; a leak keeps its pace.
fn levelled_off(pts: &[FloorPoint]) -> bool {
    let t: Vec<f64> = pts.iter().map(|p| p.t).collect();
    let v: Vec<f64> = pts.iter().map(|p| p.v).collect();
    // What the curve leaves moving together (wander) makes its F look larger than it is.
    stats::saturation(&t, &v)
        .is_some_and(|s| s.f / s.persistence > LEVELLED_F && s.end_share < LEVELLED_END_SHARE)
}

/// Changes between samples are read on at most about this many places, in runs of
/// `RESOLUTION_RUN` consecutive samples spread evenly over the window (runs, not a stride:
/// a stride could fall on the same phase of every cycle). The climb of a steady cycle is the
/// same all along.
const RESOLUTION_SAMPLES: usize = 1 << 13;
const RESOLUTION_RUN: usize = 256;

/// The systematic climb between two consecutive samples (bytes): what a GC cycle adds
/// between samples, when a few samples catch each cycle. The window minimum is the first
/// sample after a collection, up to one climb above the real trough, and where in the cycle
/// the samples fall drifts when the cycle is close to a multiple of the interval (aliasing):
/// the floor is known to within one climb. Two estimates: the median change outside the
/// sharp drops (three or more samples a cycle), and how much larger a change between
/// neighbours is than one between samples two apart (two a cycle: they alternate). White
/// noise and a steady leak give about 0.
fn floor_resolution(samples: &Analysed) -> f64 {
    let n = samples.len();
    if n < 4 {
        return 0.0;
    }
    let every = n.div_ceil(RESOLUTION_SAMPLES).max(1);
    let capacity = n.min(RESOLUTION_SAMPLES + RESOLUTION_RUN);
    let (mut one, mut two, mut level) = (
        Vec::with_capacity(capacity),
        Vec::with_capacity(capacity),
        Vec::with_capacity(capacity),
    );
    let mut last = [f64::NAN; 3];
    for (i, (_, v)) in samples.iter().enumerate() {
        last = [last[1], last[2], v];
        if i >= 2 && (i / RESOLUTION_RUN) % every == 0 {
            one.push(last[1] - last[0]);
            two.push((last[2] - last[0]).abs());
            level.push(last[0]);
        }
    }
    let med = stats::median(&one);
    let mad = 1.4826 * stats::median(&one.iter().map(|d| (d - med).abs()).collect::<Vec<_>>());
    let drop = (6.0 * mad).max(0.005 * stats::median_in_place(&mut level).abs());
    let climbs: Vec<f64> = one.iter().copied().filter(|d| *d >= -drop).collect();
    let climb = stats::median(&climbs);
    let alternate = stats::median(&one.iter().map(|d| d.abs()).collect::<Vec<_>>())
        - stats::median_in_place(&mut two);
    [climb, alternate, 0.0]
        .into_iter()
        .filter(|x| x.is_finite())
        .fold(0.0, f64::max)
}

/// How far the floor fell back on its way (bytes, ≥ 0): the largest fall of its running mean
/// over a sixth of the points (at least 3), less what the floor's noise (twice the standard
/// deviation of that mean, from the changes between neighbours) and its `resolution` allow.
fn fell_back(pts: &[FloorPoint], resolution: f64) -> f64 {
    let m = pts.len();
    let k = (m / 6).max(3);
    if m < 2 * k {
        return 0.0;
    }
    let v: Vec<f64> = pts.iter().map(|p| p.v).collect();
    let changes: Vec<f64> = v.windows(2).map(|w| w[1] - w[0]).collect();
    let med = stats::median(&changes);
    let spread = stats::median(&changes.iter().map(|d| (d - med).abs()).collect::<Vec<_>>());
    let noise = 1.4826 * spread / std::f64::consts::SQRT_2;
    let (mut peak, mut fall) = (f64::NEG_INFINITY, 0.0f64);
    for w in v.windows(k) {
        let mean = w.iter().sum::<f64>() / k as f64;
        peak = peak.max(mean);
        fall = fall.max(peak - mean);
    }
    (fall - resolution - 2.0 * noise / (k as f64).sqrt()).max(0.0)
}

/// Whether most of the floor's net rise came in a few jumps between windows.
fn is_stepwise(pts: &[FloorPoint], growth: f64) -> bool {
    if pts.len() < 4 || growth.is_nan() || growth <= 0.0 {
        return false;
    }
    let diffs: Vec<f64> = pts.windows(2).map(|w| w[1].v - w[0].v).collect();
    let med = stats::median(&diffs);
    let dev: Vec<f64> = diffs.iter().map(|d| (d - med).abs()).collect();
    let scale = 1.4826 * stats::median(&dev);
    let jumps: f64 = diffs
        .iter()
        .filter(|&&d| d > med + 5.0 * scale && d > 0.0)
        .sum();
    jumps >= 0.6 * growth
}

/// Whether the floor wanders slowly (persistent deviations) by at least `amount`.
fn is_oscillating(pts: &[FloorPoint], amount: f64) -> bool {
    if pts.len() < 6 {
        return false;
    }
    let vs: Vec<f64> = pts.iter().map(|p| p.v).collect();
    let mut sorted = vs.clone();
    sorted.sort_by(f64::total_cmp);
    let q = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    let range = q(0.9) - q(0.1);
    range >= amount && stats::autocorrelation(&vs, 1) > 0.5
}

/// Decide whether memory grows. `time_s` ascending seconds, `values` bytes
/// (same length; non-finite values are skipped), `excluded` time intervals to
/// leave out. The series is its own run (its warm-up counted from its first sample).
/// Pure; O(n log n) in the number of samples. See `docs/verdict.md`.
pub fn analyze(
    time_s: &[f64],
    values: &[f64],
    excluded: &[(f64, f64)],
    thresholds: &Thresholds,
) -> Analysis {
    analyze_series(None, time_s, values, excluded, thresholds)
}

/// [`analyze`] a series taken in `run` (a sparser series of a longer run: the settled
/// samples, the heap after GC): the warm-up is the run's, counted from its start, and
/// `duration_s` is the run's length.
pub fn analyze_in(
    run: Run,
    time_s: &[f64],
    values: &[f64],
    excluded: &[(f64, f64)],
    thresholds: &Thresholds,
) -> Analysis {
    analyze_series(Some(run), time_s, values, excluded, thresholds)
}

fn analyze_series(
    run: Option<Run>,
    time_s: &[f64],
    values: &[f64],
    excluded: &[(f64, f64)],
    thresholds: &Thresholds,
) -> Analysis {
    // 1. The usable samples, in time order, at the CSV's precision (1 ms): the live
    //    analysis and `memwatch report` on the samples.csv must see the same times.
    let (t, v) = usable(time_s, values);
    let (t, v) = (&t[..], &v[..]);
    let samples = t.len();
    let (start_bytes, end_bytes) = match (v.first(), v.last()) {
        (Some(&a), Some(&b)) => (a, b),
        _ => (f64::NAN, f64::NAN),
    };
    let peak_bytes = v.iter().copied().fold(f64::NAN, f64::max);
    let run = run.or_else(|| Run::of(t)).unwrap_or(Run {
        start_s: 0.0,
        end_s: 0.0,
    });
    let duration_s = run.length_s();
    let warmup_s = thresholds.warmup.seconds(duration_s);
    let window_start_s = run.start_s + warmup_s;
    let window_end_s = t.last().copied().unwrap_or(run.start_s).max(window_start_s);

    // 2. The analysed samples: after the warm-up and outside every excluded interval.
    let mut ex: Vec<(f64, f64)> = excluded
        .iter()
        .filter(|(a, b)| !a.is_nan() && !b.is_nan())
        .map(|&(a, b)| (to_millis(a), to_millis(b)))
        .map(|(a, b)| if a <= b { (a, b) } else { (b, a) })
        .collect();
    ex.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut analysed = Analysed::new(t, v, window_start_s, &ex);
    let samples_analysed = analysed.len();
    let steps = steps_across(&ex, t, v, &analysed);
    analysed.steps = steps.clone();
    analysed.steps.sort_by(|a, b| a.0.total_cmp(&b.0));
    let dump_steps: f64 = steps.iter().map(|s| s.1).sum();

    let mut out = Analysis {
        verdict: Verdict::Inconclusive,
        pattern: Pattern::Unknown,
        samples,
        samples_analysed,
        duration_s,
        warmup_s,
        window_start_s,
        window_end_s,
        slope_bytes_per_s: None,
        slope_pct_per_hour: None,
        growth_bytes: None,
        p_value: None,
        start_bytes,
        end_bytes,
        peak_bytes,
        trend: None,
        excluded: excluded.to_vec(),
        steps,
        floor: Vec::new(),
        thresholds: *thresholds,
        reason: String::new(),
    };
    if samples_analysed < MIN_SAMPLES {
        out.reason = format!(
            "only {} after the {} warm-up; at least {MIN_SAMPLES} are needed",
            Count(samples_analysed as u64, "sample"),
            Elapsed(warmup_s)
        );
        return out;
    }

    // 3. The floor: per-window minima, windows wide enough to span GC cycles.
    let gc = gc_period(&analysed);
    let pts = floor_points(&analysed, gc.map(|g| g.0));
    // 4. Trend test and slope on the floor.
    let fit = Fit::of(&pts, window_start_s, window_end_s, &mut out);
    // 5. Verdict, pattern and reason.
    let gates = Gates::of(&fit, &pts, &analysed, thresholds, gc.is_some());
    if gates.growing() {
        growing(&mut out, &fit, &gates, &pts);
    } else {
        let warmup_rise = warmup_rise(t, v, window_start_s, &ex, &pts);
        stable(&mut out, &fit, &gates, &pts, warmup_rise);
    }
    note_dump_steps(&mut out, dump_steps);
    out
}

/// The floor's trend over the analysed window: the trend test, Theil-Sen's slope, and what
/// they make of the window.
struct Fit {
    slope: f64,
    /// The analysed window's length, seconds, and the floor's growth over it.
    span: f64,
    growth: f64,
    pct_per_hour: f64,
    /// The fitted floor at the window's start (the level percentages are of).
    floor0: f64,
    p_value: f64,
    /// Mann-Kendall's S: its sign is the test's direction.
    mk_s: i64,
}

impl Fit {
    /// Fits the floor points and writes the figures into `out`.
    fn of(pts: &[FloorPoint], window_start_s: f64, window_end_s: f64, out: &mut Analysis) -> Fit {
        let pt: Vec<f64> = pts.iter().map(|p| p.t).collect();
        let pv: Vec<f64> = pts.iter().map(|p| p.v).collect();
        let test = stats::trend_test_monotone_at(&pt, &pv);
        let (slope, intercept) = stats::theil_sen(&pt, &pv);
        let (slope, intercept) = if slope.is_finite() {
            (slope, intercept)
        } else {
            (0.0, stats::median(&pv))
        };
        let span = window_end_s - window_start_s;
        let v0 = intercept + slope * window_start_s;
        let v1 = intercept + slope * window_end_s;
        let floor0 = if v0 > 0.0 {
            v0
        } else {
            stats::median(&pv).max(1.0)
        };
        let growth = slope * span;
        let pct_per_hour = slope / floor0 * 3600.0 * 100.0;
        out.slope_bytes_per_s = Some(slope);
        out.slope_pct_per_hour = Some(pct_per_hour);
        out.growth_bytes = Some(growth);
        out.p_value = Some(test.p_value);
        out.floor = pts.iter().map(|p| (p.t, p.v)).collect();
        out.trend = Some(TrendLine {
            t0: window_start_s,
            v0,
            t1: window_end_s,
            v1,
        });
        Fit {
            slope,
            span,
            growth,
            pct_per_hour,
            floor0,
            p_value: test.p_value,
            mk_s: test.mk.s,
        }
    }

    /// A size as a share of the floor, %.
    fn pct(&self, bytes: f64) -> f64 {
        bytes / self.floor0 * 100.0
    }
}

/// What each gate of the verdict found; growing needs them all.
struct Gates {
    rising: bool,
    falling: bool,
    slope_ok: bool,
    growth_ok: bool,
    /// The growth is more than the floor's resolution can make of a GC cycle's phase.
    resolved: bool,
    resolution: f64,
    sustained: bool,
    /// How far the floor fell back on the way up, and whether that says it wanders.
    fall: f64,
    wanders: bool,
    /// The floor's slow wander (one standard deviation), and whether the growth less twice
    /// it still reaches the minimum growth.
    wander: f64,
    above_wander: bool,
    min_growth_bytes: f64,
    sawtooth: bool,
}

impl Gates {
    fn of(
        fit: &Fit,
        pts: &[FloorPoint],
        analysed: &Analysed,
        thresholds: &Thresholds,
        sawtooth: bool,
    ) -> Gates {
        let (slope, growth) = (fit.slope, fit.growth);
        let min_growth_bytes = match thresholds.min_growth {
            MinGrowth::Bytes(b) => b,
            MinGrowth::Percent(p) => p / 100.0 * fit.floor0,
        };
        let significant = fit.p_value < thresholds.p_value;
        let span = fit.span;
        // On a window longer than the horizon the gates ask for the horizon's worth of growth.
        let horizon_share = if span > thresholds.slope_horizon_s && span > 0.0 {
            (thresholds.slope_horizon_s / span).max(0.0)
        } else {
            1.0
        };
        let resolution = floor_resolution(analysed);
        let fall = fell_back(pts, resolution);
        let residuals: Vec<f64> = pts.iter().map(|p| p.v - slope * p.t).collect();
        let wander = stats::wander_sd(&residuals);
        Gates {
            rising: significant && fit.mk_s > 0 && slope > 0.0,
            falling: significant && fit.mk_s < 0 && slope < 0.0,
            slope_ok: slope >= thresholds.min_slope_bytes_per_s * horizon_share
                && fit.pct_per_hour >= thresholds.min_slope_pct_per_hour * horizon_share,
            growth_ok: growth >= min_growth_bytes,
            resolved: growth >= RESOLUTION_FACTOR * resolution,
            resolution,
            sustained: late_slope_upper(pts) >= SUSTAINED_SHARE * slope && !levelled_off(pts),
            fall,
            wanders: fall > WANDER_SHARE * growth,
            wander,
            above_wander: growth - WANDER_SDS * wander >= min_growth_bytes,
            min_growth_bytes,
            sawtooth,
        }
    }

    /// A rise the test finds, fast and large enough.
    fn rose_enough(&self) -> bool {
        self.rising && self.slope_ok && self.growth_ok
    }

    fn growing(&self) -> bool {
        self.rose_enough() && self.resolved && self.sustained && !self.wanders && self.above_wander
    }
}

/// The verdict growing: its pattern and reason.
fn growing(out: &mut Analysis, fit: &Fit, gates: &Gates, pts: &[FloorPoint]) {
    out.verdict = Verdict::Growing;
    out.pattern = if gates.sawtooth {
        Pattern::Sawtooth
    } else if is_stepwise(pts, fit.growth) {
        Pattern::Steps
    } else {
        Pattern::Linear
    };
    out.reason = format!(
        "floor rose {} ({:.1}%) at {} ({})",
        Bytes(fit.growth),
        fit.pct(fit.growth),
        Rate(fit.slope),
        PValue(fit.p_value)
    );
}

/// The verdict stable: which gate said so (or that nothing rose), as its pattern and reason.
fn stable(out: &mut Analysis, fit: &Fit, g: &Gates, pts: &[FloorPoint], warmup_rise: f64) {
    out.verdict = Verdict::Stable;
    let (growth, slope) = (fit.growth, fit.slope);
    let pct = |b: f64| fit.pct(b);
    let p_txt = PValue(fit.p_value);
    let warm = Elapsed(out.warmup_s);
    let min_growth = min_growth_words(out.thresholds.min_growth);
    if g.falling && -growth >= g.min_growth_bytes && -slope >= out.thresholds.min_slope_bytes_per_s
    {
        out.pattern = Pattern::Shrinking;
        out.reason = format!(
            "floor fell {} ({:.1}%) at {} ({p_txt})",
            Bytes(-growth),
            pct(-growth),
            Rate(-slope)
        );
    } else if g.rose_enough() && !g.resolved {
        out.pattern = Pattern::Sawtooth;
        out.reason = format!(
            "floor rose {} ({:.1}%), within {RESOLUTION_FACTOR} times the {} a GC cycle climbs \
             between two samples: samples that catch the cycle at a drifting phase move the \
             floor that much ({p_txt})",
            Bytes(growth),
            pct(growth),
            Bytes(g.resolution)
        );
    } else if g.rose_enough() && g.wanders {
        out.pattern = Pattern::Oscillating;
        out.reason = format!(
            "floor rose {} ({:.1}%) but fell back {} on the way: it wanders, and a leak keeps \
             what it takes ({p_txt})",
            Bytes(growth),
            pct(growth),
            Bytes(g.fall)
        );
    } else if g.rose_enough() && !g.above_wander {
        out.pattern = Pattern::Oscillating;
        out.reason = format!(
            "floor rose {} ({:.1}%) but wanders slowly by {} (one standard deviation): less \
             twice that, it rose less than the {min_growth} minimum growth ({p_txt})",
            Bytes(growth),
            pct(growth),
            Bytes(g.wander),
        );
    } else if g.rose_enough() {
        out.pattern = Pattern::Plateau;
        out.reason = format!(
            "floor rose {} ({:.1}%) early in the window, then levelled off: not sustained",
            Bytes(growth),
            pct(growth)
        );
    } else if g.rising {
        out.pattern = Pattern::Flat;
        out.reason = if !g.growth_ok {
            format!(
                "floor rose only {} ({:.1}%) after the {warm} warm-up, less than the {min_growth} minimum growth ({p_txt})",
                Bytes(growth),
                pct(growth),
            )
        } else {
            format!(
                "floor rose {} ({:.1}%) at only {} ({}), below the minimum slope ({p_txt})",
                Bytes(growth),
                pct(growth),
                Rate(slope),
                PctPerHour(fit.pct_per_hour)
            )
        };
    } else {
        out.pattern = if warmup_rise >= g.min_growth_bytes.max(0.0) && warmup_rise > 0.0 {
            Pattern::Plateau
        } else if g.sawtooth {
            Pattern::Sawtooth
        } else if is_oscillating(pts, g.min_growth_bytes) {
            Pattern::Oscillating
        } else {
            Pattern::Flat
        };
        out.reason = match out.pattern {
            Pattern::Plateau => format!(
                "floor rose {} during the {warm} warm-up, then stayed flat ({p_txt})",
                Bytes(warmup_rise)
            ),
            Pattern::Oscillating => {
                format!(
                    "floor moves up and down with no net trend after the {warm} warm-up ({p_txt})"
                )
            }
            _ => format!("floor flat after {warm} warm-up ({p_txt})"),
        };
    }
}

/// The minimum growth as the reason writes it: `2%`, `1.00 MiB`.
fn min_growth_words(min_growth: MinGrowth) -> String {
    match min_growth {
        MinGrowth::Bytes(b) => Bytes(b).to_string(),
        MinGrowth::Percent(p) => format!("{p}%"),
    }
}

/// How much the floor rose during the warm-up (bytes): the lowest floor point of the window
/// against the lowest sample of the warm-up's first quarter. What a heap dump left behind is
/// not warm-up growth: when a dump period (`ex`, sorted) starts before the window's last
/// floor point, only what came before it counts (the floor points before it; or, when it
/// starts in the warm-up, the warm-up's last quarter before it).
fn warmup_rise(
    t: &[f64],
    v: &[f64],
    window_start_s: f64,
    ex: &[(f64, f64)],
    pts: &[FloorPoint],
) -> f64 {
    let lowest = |xs: &mut dyn Iterator<Item = f64>| xs.fold(f64::INFINITY, f64::min);
    let dump = ex.first().map_or(f64::INFINITY, |p| p.0);
    let warm_up = &v[..t.partition_point(|&ti| ti < window_start_s.min(dump))];
    if warm_up.len() < 2 {
        return 0.0;
    }
    let head = lowest(&mut warm_up[..warm_up.len().div_ceil(4)].iter().copied());
    let now = if dump > window_start_s {
        lowest(&mut pts.iter().filter(|p| p.t < dump).map(|p| p.v))
    } else {
        f64::INFINITY
    };
    let now = if now.is_finite() {
        now
    } else {
        lowest(&mut warm_up[warm_up.len() * 3 / 4..].iter().copied())
    };
    if now.is_finite() && head.is_finite() {
        now - head
    } else {
        0.0
    }
}

fn note_dump_steps(out: &mut Analysis, removed: f64) {
    if removed > 0.0 {
        out.reason += &format!("; steps of {} across heap dumps left out", Bytes(removed));
    }
}

/// A heap dump can leave its memory behind for good (V8 keeps what writing a snapshot
/// took, tens of MB). So besides leaving the excluded periods out, an abrupt step across
/// one is taken out of every later sample. The step is the jump the local trend does not
/// explain: on each side (a few seconds, up to the neighbouring periods) the floors of the
/// two halves give the trend, both sides are carried to the period by it, and what is left
/// counts when it exceeds four times the wiggle around the trend just before (so steady
/// growth or a GC sawtooth is never mistaken for a step, and a leak keeps all its growth).
/// Only periods with analysed samples on both sides matter. Returns the steps to take out:
/// (end of the period, bytes).
fn steps_across(ex: &[(f64, f64)], t: &[f64], v: &[f64], analysed: &Analysed) -> Vec<(f64, f64)> {
    let mut removed = Vec::new();
    if ex.is_empty() || t.len() < 2 {
        return removed;
    }
    let span = (t[t.len() - 1] - t[0]) / (t.len() - 1) as f64;
    let context = (8.0 * span).max(5.0);
    for (i, &(a, b)) in ex.iter().enumerate() {
        let inside = analysed.first_t().is_some_and(|first| a > first)
            && analysed.last_t().is_some_and(|last| b < last);
        if !inside {
            continue;
        }
        // the context on each side stops at the neighbouring periods (and their steps)
        let previous_end = ex[..i]
            .iter()
            .map(|p| p.1)
            .fold(f64::NEG_INFINITY, f64::max);
        let next_start = ex.get(i + 1).map_or(f64::INFINITY, |p| p.0);
        let before = Side::new(t, v, (a - context).max(previous_end + 1e-9), a - 1e-9);
        let after = Side::new(t, v, b + 1e-9, (b + context).min(next_start - 1e-9));
        let (Some(before), Some(after)) = (before, after) else {
            continue;
        };
        let slope = ((before.slope + after.slope) / 2.0).max(0.0);
        let before_at_a = before.late.1 + slope * (a - before.late.0);
        let after_at_b = after.early.1 - slope * (after.early.0 - b);
        let step = after_at_b - before_at_a - slope * (b - a);
        let wiggle = (before.max - before.early.1 - slope * (a - before.early.0)).max(0.0);
        if step > 0.0 && step > 4.0 * wiggle {
            removed.push((b, step));
        }
    }
    removed
}

/// The samples on one side of an excluded period: the floor (time, value) of its earlier
/// and later half, the trend between them, and its highest value.
struct Side {
    early: (f64, f64),
    late: (f64, f64),
    slope: f64,
    max: f64,
}

impl Side {
    fn new(t: &[f64], v: &[f64], lo: f64, hi: f64) -> Option<Side> {
        let from = t.partition_point(|&x| x < lo);
        let to = t.partition_point(|&x| x <= hi);
        if to < from + 2 {
            return None;
        }
        let mid = from + (to - from) / 2;
        let floor = |range: std::ops::Range<usize>| {
            range
                .map(|k| (t[k], v[k]))
                .reduce(|m, p| if p.1 < m.1 { p } else { m })
        };
        let (early, late) = (floor(from..mid)?, floor(mid..to)?);
        let slope = if late.0 > early.0 {
            (late.1 - early.1) / (late.0 - early.0)
        } else {
            0.0
        };
        let max = v[from..to]
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        Some(Side {
            early,
            late,
            slope,
            max,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ramp(n: usize, hz: f64, base: f64, per_s: f64) -> (Vec<f64>, Vec<f64>) {
        let t: Vec<f64> = (0..n).map(|i| i as f64 / hz).collect();
        let v = t.iter().map(|t| base + per_s * t).collect();
        (t, v)
    }

    #[test]
    fn clean_input_is_analysed_in_place() {
        let t = [0.0, 0.5, 1.25, 2.0];
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!(matches!(
            usable(&t, &v),
            (Cow::Borrowed(_), Cow::Borrowed(_))
        ));
        // Copied only when it must be: unknown values, times finer than the CSV's 1 ms, disorder.
        let (ut, uv) = usable(&[0.0, 1.0, 2.0], &[1.0, f64::NAN, 3.0]);
        assert_eq!((&ut[..], &uv[..]), (&[0.0, 2.0][..], &[1.0, 3.0][..]));
        let (ut, _) = usable(&[0.0, 1.0004], &[1.0, 2.0]);
        assert_eq!(&ut[..], &[0.0, 1.0]);
        let (ut, uv) = usable(&[2.0, 1.0], &[20.0, 10.0]);
        assert_eq!((&ut[..], &uv[..]), (&[1.0, 2.0][..], &[10.0, 20.0][..]));
    }

    #[test]
    fn the_analysed_view_skips_the_warm_up_and_excluded_periods_and_takes_steps_out() {
        let t: Vec<f64> = (0..10).map(f64::from).collect();
        let v: Vec<f64> = (0..10).map(|i| f64::from(i) * 10.0).collect();
        // warm-up until 2 s; periods (3.5, 4) and (5.5, 7) nest a shorter one (6, 6.5).
        let mut view = Analysed::new(&t, &v, 2.0, &[(3.5, 4.0), (5.5, 7.0), (6.0, 6.5)]);
        view.steps = vec![(4.0, 1.0), (7.0, 2.0)];
        let got: Vec<(f64, f64)> = view.iter().collect();
        assert_eq!(
            got,
            [
                (2.0, 20.0),
                (3.0, 30.0),
                (5.0, 49.0),
                (8.0, 77.0),
                (9.0, 87.0)
            ]
        );
        assert_eq!(view.len(), 5);
        assert_eq!((view.first_t(), view.last_t()), (Some(2.0), Some(9.0)));
        let empty = Analysed::new(&t, &v, 20.0, &[]);
        assert_eq!((empty.len(), empty.first_t()), (0, None));
    }

    #[test]
    fn steps_left_by_heap_dumps_are_not_growth() {
        // flat 100 MB with noise; two dumps each leave +30 MB behind for good
        let n = 1200;
        let t: Vec<f64> = (0..n).map(|i| i as f64 * 0.1).collect();
        let step =
            |ti: f64| 30e6 * (f64::from(u8::from(ti > 40.0)) + f64::from(u8::from(ti > 80.0)));
        let noise = |i: usize| ((i * 7919) % 17) as f64 * 20_000.0;
        let v: Vec<f64> = t
            .iter()
            .enumerate()
            .map(|(i, &ti)| 100e6 + step(ti) + noise(i))
            .collect();
        let dumps = [(39.9, 40.6), (79.9, 80.6)];
        // dumps closer together than the context window are each taken out too
        let close: Vec<f64> = t
            .iter()
            .enumerate()
            .map(|(i, &ti)| {
                let steps = f64::from(u8::from(ti > 60.0)) + f64::from(u8::from(ti > 63.0));
                100e6 + 30e6 * steps + noise(i)
            })
            .collect();
        let a = analyze(
            &t,
            &close,
            &[(59.9, 60.6), (62.9, 63.6)],
            &Thresholds::default(),
        );
        assert_eq!(a.steps.len(), 2, "{:?}", a.steps);
        assert_eq!(a.verdict, Verdict::Stable, "{}", a.reason);
        let a = analyze(&t, &v, &dumps, &Thresholds::default());
        assert_eq!(a.verdict, Verdict::Stable, "{}", a.reason);
        assert!(a.reason.contains("heap dumps left out"), "{}", a.reason);
        // without the dump periods the steps count as growth
        let raw = analyze(&t, &v, &[], &Thresholds::default());
        assert!(
            raw.slope_bytes_per_s.unwrap() > 300_000.0,
            "slope {:?}",
            raw.slope_bytes_per_s
        );

        // a real leak of 100 KB/s under the same steps is still found, at about its rate
        let leak: Vec<f64> = v.iter().zip(&t).map(|(v, t)| v + 100_000.0 * t).collect();
        let a = analyze(&t, &leak, &dumps, &Thresholds::default());
        assert_eq!(a.verdict, Verdict::Growing, "{}", a.reason);
        assert!(
            (a.slope_bytes_per_s.unwrap() - 100_000.0).abs() < 10_000.0,
            "slope {:?}",
            a.slope_bytes_per_s
        );
    }

    /// Regression: the step across a dump was measured from the floor 5 s before it, so a
    /// fast leak lost that much growth at every dump and a leaky Node service under load
    /// was once called stable.
    #[test]
    fn regression_dump_steps_do_not_eat_a_fast_leak() {
        // 30 s at 5 Hz: 700 KB/s leak, a 3 MB GC sawtooth every 2 s, snapshots at 18 s and
        // 27 s that each leave 12 MB behind
        let t: Vec<f64> = (0..150).map(|i| f64::from(i) * 0.2).collect();
        let v: Vec<f64> = t
            .iter()
            .map(|&ti| {
                let steps = f64::from(u8::from(ti > 18.5)) + f64::from(u8::from(ti > 27.5));
                60e6 + 700_000.0 * ti + 3e6 * ((ti % 2.0) / 2.0) + 12e6 * steps
            })
            .collect();
        let a = analyze(
            &t,
            &v,
            &[(18.0, 18.9), (27.0, 27.9)],
            &Thresholds::default(),
        );
        assert_eq!(a.verdict, Verdict::Growing, "{}", a.reason);
        assert!(
            (a.slope_bytes_per_s.unwrap() - 700_000.0).abs() < 105_000.0,
            "slope {:?}",
            a.slope_bytes_per_s
        );
        let removed: f64 = a.steps.iter().map(|s| s.1).sum();
        assert!((removed - 24e6).abs() < 5e6, "removed {removed}");
    }

    /// Regression (issue 9 item 12): a 678-hour recording whose floor rises 50%, steadily,
    /// was `stable (flat)`: its 0.07%/h was under the 1%/h minimum slope.
    #[test]
    fn regression_slow_leak_on_a_long_run_is_growing() {
        use synth::{Sawtooth, Shape, Spec, generate};
        let spec = |shape, seed| Spec {
            duration_s: 678.0 * 3600.0,
            hz: 1.0 / 60.0,
            base_bytes: 200e6,
            shape,
            sawtooth: Some(Sawtooth {
                amplitude: 0.04,
                period_s: 600.0,
                jitter: synth::GC_JITTER,
            }),
            white: 0.005,
            ar1: None,
            seed,
        };
        for seed in 0..4 {
            let s = generate(&spec(Shape::Linear { growth: 0.5 }, seed));
            let a = analyze(&s.time_s, &s.values, &[], &Thresholds::default());
            assert_eq!(a.verdict, Verdict::Growing, "seed {seed}: {}", a.reason);
            assert!(
                a.slope_pct_per_hour.unwrap() < 0.1,
                "{:?}",
                a.slope_pct_per_hour
            );
            // pure rates (no horizon) are what hid it
            let rates = Thresholds {
                slope_horizon_s: f64::INFINITY,
                ..Thresholds::default()
            };
            let b = analyze(&s.time_s, &s.values, &[], &rates);
            assert_eq!(b.verdict, Verdict::Stable, "seed {seed}: {}", b.reason);
            // a drift of 4% over four weeks is below the 10% the horizon asks for
            let s = generate(&spec(Shape::Linear { growth: 0.04 }, seed));
            let a = analyze(&s.time_s, &s.values, &[], &Thresholds::default());
            assert_eq!(a.verdict, Verdict::Stable, "seed {seed}: {}", a.reason);
        }
    }

    /// Regression (issue 20 item 5): the reason said "floor rose 68.6 MiB during the 10 s
    /// warm-up", counting what a heap snapshot written across the end of the warm-up left
    /// behind (no step taken out: the period began before the analysed window).
    #[test]
    fn regression_issue20_item5_a_dump_is_not_warm_up_growth() {
        let t: Vec<f64> = (0..120).map(|i| f64::from(i) * 0.5).collect();
        let v: Vec<f64> = t
            .iter()
            .enumerate()
            .map(|(i, &ti)| {
                let kept = if ti > 12.0 { 40e6 } else { 0.0 };
                100e6 + kept + ((i * 7919) % 13) as f64 * 4096.0
            })
            .collect();
        let th = Thresholds {
            warmup: Warmup::Fixed(10.0),
            ..Thresholds::default()
        };
        let a = analyze(&t, &v, &[(9.0, 12.0)], &th);
        assert_eq!(a.verdict, Verdict::Stable, "{}", a.reason);
        assert_eq!(a.pattern, Pattern::Flat, "{}", a.reason);
        assert!(!a.reason.contains("during the"), "{}", a.reason);
        // growth during the warm-up itself still counts
        let climbing: Vec<f64> = t
            .iter()
            .zip(&v)
            .map(|(&ti, &vi)| vi - 40e6 * f64::from(u8::from(ti > 12.0)) + 1e6 * ti.min(9.0))
            .collect();
        let a = analyze(&t, &climbing, &[(9.0, 12.0)], &th);
        assert_eq!(a.pattern, Pattern::Plateau, "{}", a.reason);
    }

    /// Regression (issue 20 item 1): a series too short to judge reported slope 0, growth 0
    /// and p-value 1, figures it never measured. They are unknown.
    #[test]
    fn regression_issue20_item1_too_few_samples_have_no_figures() {
        let (t, v) = ramp(12, 1.0, 1e8, 1e6);
        let a = analyze(&t, &v, &[], &Thresholds::default());
        assert_eq!(a.verdict, Verdict::Inconclusive);
        assert_eq!(
            (
                a.slope_bytes_per_s,
                a.slope_pct_per_hour,
                a.growth_bytes,
                a.p_value
            ),
            (None, None, None, None)
        );
        assert!(a.trend.is_none());
        // what was measured is still there
        assert_eq!((a.start_bytes, a.peak_bytes), (1e8, 1e8 + 11e6));
    }

    #[test]
    fn horizon_asks_for_its_worth_of_growth() {
        // 30 h at one sample a minute, clean ramps: 9% is below 1%/h x 10 h, 11% above
        for (growth, verdict) in [(0.09, Verdict::Stable), (0.11, Verdict::Growing)] {
            let n = 30 * 60 + 1;
            let t: Vec<f64> = (0..n).map(|i| i as f64 * 60.0).collect();
            let span = t[n - 1];
            let v: Vec<f64> = t.iter().map(|t| 1e8 * (1.0 + growth * t / span)).collect();
            let a = analyze(&t, &v, &[], &Thresholds::default());
            assert_eq!(a.verdict, verdict, "{growth}: {}", a.reason);
        }
    }

    /// Regression (issue 9 item 6): the same 10 s leak at 5 Hz got p = 8.3e-05 or 0.0029
    /// depending on sub-millisecond jitter: windows of 2 and 3 samples in turn put their
    /// floor points unevenly in time, and the autocorrelation correction, detrending by
    /// index, read that spacing as persistence. It now detrends in time.
    #[test]
    fn regression_a_clean_ramp_is_not_weakened_by_uneven_windows() {
        for jitter in [0.0, 0.0001, 0.0003] {
            let t: Vec<f64> = (0..51)
                .map(|k| f64::from(k) * 0.2 + if k % 3 == 1 { jitter } else { 0.0 })
                .collect();
            let v: Vec<f64> = t
                .iter()
                .map(|t| ((212_992.0 + 2_097_152.0 * t) / 4096.0_f64).round() * 4096.0)
                .collect();
            let a = analyze(&t, &v, &[], &Thresholds::default());
            assert_eq!(a.verdict, Verdict::Growing, "{}", a.reason);
            assert!(
                a.p_value.unwrap() < 0.001,
                "jitter {jitter}: p = {:?}",
                a.p_value
            );
        }
    }

    #[test]
    fn empty_series_is_inconclusive() {
        let a = analyze(&[], &[], &[], &Thresholds::default());
        assert_eq!(a.verdict, Verdict::Inconclusive);
        assert_eq!(a.pattern, Pattern::Unknown);
        assert_eq!(a.samples, 0);
        assert!(a.trend.is_none());
    }

    #[test]
    fn few_samples_after_warmup_are_inconclusive() {
        let (t, v) = ramp(12, 1.0, 1e8, 1e6);
        let a = analyze(&t, &v, &[], &Thresholds::default());
        assert_eq!(a.verdict, Verdict::Inconclusive);
        assert!(a.samples_analysed < MIN_SAMPLES);
        assert!(a.reason.contains("warm-up"), "{}", a.reason);
    }

    #[test]
    fn clean_ramp_grows_and_fields_are_filled() {
        let (t, mut v) = ramp(601, 1.0, 1e8, 1e4);
        v[5] = f64::NAN;
        let a = analyze(&t, &v, &[(300.0, 310.0)], &Thresholds::default());
        assert_eq!(a.verdict, Verdict::Growing);
        assert_eq!(a.pattern, Pattern::Linear);
        assert_eq!(a.samples, 600);
        assert_eq!(a.warmup_s, 120.0);
        // 120..=600 minus the 11 excluded samples 300..=310.
        assert_eq!(a.samples_analysed, 481 - 11);
        assert_eq!(a.excluded, vec![(300.0, 310.0)]);
        assert!((a.slope_bytes_per_s.unwrap() - 1e4).abs() < 1.0);
        assert!((a.growth_bytes.unwrap() - 1e4 * 480.0).abs() < 1e3);
        assert_eq!(a.start_bytes, 1e8);
        assert_eq!(a.peak_bytes, 1e8 + 600e4);
        assert_eq!(a.end_bytes, 1e8 + 600e4);
        assert_eq!(a.duration_s, 600.0);
        let tr = a.trend.unwrap();
        assert_eq!((tr.t0, tr.t1), (120.0, 600.0));
        assert!(a.reason.starts_with("floor rose"), "{}", a.reason);
    }

    #[test]
    fn flat_series_is_stable() {
        let (t, v) = ramp(300, 1.0, 5e7, 0.0);
        let a = analyze(&t, &v, &[], &Thresholds::default());
        assert_eq!(a.verdict, Verdict::Stable);
        assert_eq!(a.pattern, Pattern::Flat);
        assert_eq!(a.p_value, Some(1.0));
        assert!(a.reason.contains("flat"), "{}", a.reason);
    }

    #[test]
    fn fixed_warmup_and_shrinking() {
        let (t, v) = ramp(300, 1.0, 1e8, -2e4);
        let th = Thresholds {
            warmup: Warmup::Fixed(30.0),
            ..Thresholds::default()
        };
        let a = analyze(&t, &v, &[], &th);
        assert_eq!(a.warmup_s, 30.0);
        assert_eq!(a.window_start_s, 30.0);
        assert_eq!(a.verdict, Verdict::Stable);
        assert_eq!(a.pattern, Pattern::Shrinking);
    }

    #[test]
    fn tiny_growth_is_below_the_gates() {
        // +0.5% over the window: significant but less than the 2% minimum growth.
        let (t, v) = ramp(600, 1.0, 1e8, 1e8 * 0.005 / 600.0);
        let a = analyze(&t, &v, &[], &Thresholds::default());
        assert_eq!(a.verdict, Verdict::Stable);
        assert!(a.reason.contains("minimum growth"), "{}", a.reason);
        let th = Thresholds {
            min_growth: MinGrowth::Bytes(1e5),
            min_slope_pct_per_hour: 0.1,
            ..Thresholds::default()
        };
        assert_eq!(analyze(&t, &v, &[], &th).verdict, Verdict::Growing);
    }

    #[test]
    fn auto_warmup_share_floor_cap() {
        assert_eq!(auto_warmup_s(120.0), 24.0);
        assert_eq!(auto_warmup_s(30.0), 10.0);
        assert_eq!(auto_warmup_s(12.0), 6.0);
        assert_eq!(auto_warmup_s(7200.0), 600.0);
        assert_eq!(auto_warmup_s(0.0), 0.0);
    }

    /// Regression (issue 9 item 13): the live line said `trend +11.5 MiB/min, flat`.
    #[test]
    fn regression_headline_never_pairs_a_slope_with_flat() {
        let (t, v) = ramp(601, 1.0, 1e8, 1e4);
        let grows = analyze(&t, &v, &[], &Thresholds::default());
        assert_eq!(
            grows.headline().to_string(),
            "growing (linear): floor +586 KiB/min, p < 0.001"
        );
        // A fast rise that is still short of the 2% minimum growth: stable (flat), no slope.
        let (t, v) = ramp(601, 1.0, 1e10, 1e5);
        let flat = analyze(&t, &v, &[], &Thresholds::default());
        assert_eq!(flat.verdict, Verdict::Stable, "{}", flat.reason);
        assert!(flat.slope_bytes_per_s.unwrap() > 1e4);
        assert_eq!(
            flat.headline().to_string(),
            format!("stable ({})", flat.pattern)
        );
        let (t, v) = ramp(300, 1.0, 1e8, -2e4);
        let shrinks = analyze(&t, &v, &[], &Thresholds::default());
        assert_eq!(
            shrinks.headline().to_string(),
            "stable (shrinking): floor -1.14 MiB/min, p < 0.001"
        );
        let (t, v) = ramp(12, 1.0, 1e8, 1e6);
        let few = analyze(&t, &v, &[], &Thresholds::default());
        assert_eq!(
            few.headline().to_string(),
            "inconclusive: 6 samples after the 5.5 s warm-up"
        );
    }

    #[test]
    fn words_match_summary_json() {
        for p in [
            Pattern::Linear,
            Pattern::Steps,
            Pattern::Sawtooth,
            Pattern::Plateau,
            Pattern::Flat,
            Pattern::Shrinking,
            Pattern::Oscillating,
            Pattern::Unknown,
        ] {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        for v in [Verdict::Growing, Verdict::Stable, Verdict::Inconclusive] {
            assert_eq!(serde_json::to_value(v).unwrap(), v.to_string());
        }
    }
}
