//! The analyser: decides, from one metric's series, whether memory grows.
//! Pure functions, no I/O. See `docs/verdict.md` for the method.

use serde::Serialize;

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

/// How long the start of a run is left out of the analysis.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Warmup {
    /// A share of the run with a floor and a cap (see `Thresholds::default` docs).
    Auto,
    /// This many seconds from the first sample.
    Fixed(f64),
}

/// The least total growth over the analysed window that counts as a leak.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MinGrowth {
    Bytes(f64),
    /// Percent of the floor at the start of the analysed window.
    Percent(f64),
}

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
    pub duration_s: f64,
    pub warmup_s: f64,
    /// The analysed window, seconds on the run's clock.
    pub window_start_s: f64,
    pub window_end_s: f64,
    pub slope_bytes_per_s: f64,
    pub slope_pct_per_hour: f64,
    /// Slope times the analysed window's length.
    pub growth_bytes: f64,
    pub p_value: f64,
    /// First, last and highest value of the whole series.
    pub start_bytes: f64,
    pub end_bytes: f64,
    pub peak_bytes: f64,
    pub trend: Option<TrendLine>,
    /// Periods left out (heap dumps being written), seconds.
    pub excluded: Vec<(f64, f64)>,
    pub thresholds: Thresholds,
    /// One sentence saying why, e.g. "floor rose 12.1 MiB at 0.1 MiB/s (p < 0.001)".
    pub reason: String,
}

// TEMPORARY until the analyser lands (branch `analyze` replaces this).
impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            warmup: Warmup::Auto,
            min_slope_bytes_per_s: 0.0,
            min_slope_pct_per_hour: 0.0,
            min_growth: MinGrowth::Percent(1.0),
            p_value: 0.01,
        }
    }
}
