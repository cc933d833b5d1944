//! The CI gate's hard limits beside the verdict: `--max-rss`, `--max-growth`, `--max-slope`,
//! `--fail-on-inconclusive` and the `--baseline` regression check. Pure: the judged series'
//! `Figures` (from the analysis) and the `Limits` in, a `GateResult` out (reading the baseline
//! file is the only I/O, in `Baseline::load`). See `docs/ci.md`.
//!
//! What each limit is checked against (all on the judged metric, RSS by default):
//! - `max-rss`: `peak_bytes`, the highest value of the whole run (warm-up included): a hard
//!   limit that needs no trend, checked whatever the verdict;
//! - `max-growth`: `growth_bytes`, the rise of the floor over the analysed window (slope times
//!   the window's length). A percentage is of the floor at the window's start (the fitted
//!   trend's `v0`), or of `start_bytes` when there is no trend;
//! - `max-slope`: `slope_bytes_per_s`, the Theil–Sen slope of the floor;
//! - baseline: slope and peak against an earlier run's summary.json, with a tolerance;
//! - `min-time-to-limit` (`--cgroup`): the time until the cgroup's memory reaches its limit
//!   at its floor's slope, against a least duration.
//!
//! An inconclusive run has no slope and no growth: the limits on them are not judged
//! (`passed: null`, "not judged" in words), never passed on a made-up 0, and an inconclusive
//! summary.json is refused as a baseline.

use crate::analyze::{Analysis, TrendLine, Verdict};
use crate::exit::Exit;
pub use crate::options::SizeOrPct as GrowthLimit;
use crate::units::{Bytes, Delta, Elapsed, Rate, whole_bytes};
use serde::Serialize;
use std::path::Path;

/// `--baseline-tolerance` when not given, percent. Peak RSS of the same build under the same
/// load repeats within a few percent from run to run (allocator, JIT and GC timing); 10% leaves
/// room for that noise and still catches a regression worth a look. Slopes near zero are not
/// compared against zero (see `BaselineComparison::slope_floor_bytes_per_s`).
pub const DEFAULT_BASELINE_TOLERANCE_PCT: f64 = 10.0;

/// What the gate checks: the judged series' figures, as the analysis found them. `None` is
/// unknown: no sample at all (peak, start), or a series too short to judge (growth, slope).
#[derive(Clone, Debug, PartialEq)]
pub struct Figures<'a> {
    /// The judged series' name (`rss`, `settled`, ...).
    pub metric: &'a str,
    pub verdict: Verdict,
    pub peak_bytes: Option<f64>,
    pub start_bytes: Option<f64>,
    pub growth_bytes: Option<f64>,
    pub slope_bytes_per_s: Option<f64>,
    pub trend: Option<TrendLine>,
    /// The analyser's least slopes, for the baseline's slope floor.
    pub min_slope_bytes_per_s: f64,
    pub min_slope_pct_per_hour: f64,
    /// Why the slope and growth are unknown, when they are (the analysis' reason).
    pub not_judged_because: &'a str,
    /// With a cgroup watched: how far its limit is.
    pub limit: Option<LimitFigures>,
}

/// A watched cgroup against its memory limit.
#[derive(Clone, Debug, PartialEq)]
pub struct LimitFigures {
    /// The cgroup, as /proc/PID/cgroup names it.
    pub cgroup: String,
    /// `None`: no limit on it or above it.
    pub limit_bytes: Option<f64>,
    pub headroom_bytes: Option<f64>,
    /// The slope of the cgroup's floor, bytes per second.
    pub slope_bytes_per_s: f64,
    /// At that slope, when growing; `None` when it does not grow or there is no limit.
    pub time_to_limit_s: Option<f64>,
}

impl<'a> Figures<'a> {
    pub fn of(analysis: &'a Analysis, metric: &'a str) -> Figures<'a> {
        let known = |x: f64| Some(x).filter(|x| x.is_finite());
        Figures {
            metric,
            verdict: analysis.verdict,
            peak_bytes: known(analysis.peak_bytes),
            start_bytes: known(analysis.start_bytes),
            growth_bytes: analysis.growth_bytes,
            slope_bytes_per_s: analysis.slope_bytes_per_s,
            trend: analysis.trend,
            min_slope_bytes_per_s: analysis.thresholds.min_slope_bytes_per_s,
            min_slope_pct_per_hour: analysis.thresholds.min_slope_pct_per_hour,
            not_judged_because: &analysis.reason,
            limit: None,
        }
    }
}

/// The gate's settings beyond the analyser's thresholds.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Bytes; checked against the peak of the judged metric.
    pub max_rss: Option<u64>,
    pub max_growth: Option<GrowthLimit>,
    /// Bytes per second; checked against the floor's slope.
    pub max_slope: Option<f64>,
    /// Inconclusive (exit 3) fails the gate (exit 1) instead.
    pub fail_on_inconclusive: bool,
    pub baseline: Option<Baseline>,
    /// Percent by which slope and peak may exceed the baseline's.
    pub baseline_tolerance_pct: f64,
    /// Seconds: the watched cgroup must not reach its limit sooner (`--min-time-to-limit`).
    pub min_time_to_limit_s: Option<f64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rss: None,
            max_growth: None,
            max_slope: None,
            fail_on_inconclusive: false,
            baseline: None,
            baseline_tolerance_pct: DEFAULT_BASELINE_TOLERANCE_PCT,
            min_time_to_limit_s: None,
        }
    }
}

impl Limits {
    /// Whether any limit was configured (then summary.json reports the gate).
    pub fn is_set(&self) -> bool {
        self.max_rss.is_some()
            || self.max_growth.is_some()
            || self.max_slope.is_some()
            || self.fail_on_inconclusive
            || self.baseline.is_some()
            || self.min_time_to_limit_s.is_some()
    }
}

/// The figures of an earlier run that the current one must not be worse than.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Baseline {
    pub slope_bytes_per_s: f64,
    pub peak_bytes: f64,
    /// The metric the baseline judged, when its summary says (`rss`, `pss`...).
    pub metric: Option<String>,
    pub path: String,
}

impl Baseline {
    /// Reads a memwatch `summary.json` (from `memwatch run` or `memwatch report`).
    pub fn load(path: &Path) -> Result<Baseline, String> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "--baseline '{shown}': cannot read it ({e}): give the summary.json of an earlier memwatch run"
            )
        })?;
        Baseline::from_json(&text, &shown)
    }

    /// Parses the text of a memwatch `summary.json`; `path` is only used in messages. The
    /// summary of an inconclusive run is refused: it has no slope to compare with.
    pub fn from_json(text: &str, path: &str) -> Result<Baseline, String> {
        let not_summary = |what: &str| {
            format!(
                "--baseline '{path}' is not a memwatch summary.json ({what}): give the summary.json \
                 an earlier 'memwatch run' or 'memwatch report' wrote"
            )
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| not_summary(&format!("not JSON: {e}")))?;
        let object = value
            .as_object()
            .ok_or_else(|| not_summary("not a JSON object"))?;
        if !object.contains_key("memwatch_version") || !object.contains_key("verdict") {
            return Err(not_summary("no 'memwatch_version' or 'verdict' field"));
        }
        let slope_unknown = object
            .get("slope_bytes_per_s")
            .is_some_and(serde_json::Value::is_null);
        if object.get("verdict").and_then(serde_json::Value::as_str) == Some("inconclusive")
            || slope_unknown
        {
            return Err(format!(
                "--baseline '{path}' is the summary of an inconclusive run: its slope was never \
                 judged, so it cannot be the bar for this one; give the summary.json of a run \
                 that reached a verdict (stable or growing)"
            ));
        }
        let number = |key: &str| {
            object
                .get(key)
                .and_then(serde_json::Value::as_f64)
                .filter(|v| v.is_finite())
                .ok_or_else(|| not_summary(&format!("no number in '{key}'")))
        };
        Ok(Baseline {
            slope_bytes_per_s: number("slope_bytes_per_s")?,
            peak_bytes: number("peak_bytes")?,
            metric: object
                .get("metric")
                .and_then(serde_json::Value::as_str)
                .map(String::from),
            path: path.to_string(),
        })
    }

    /// A baseline that judged another metric cannot be compared: check before sampling.
    pub fn check_metric(&self, metric: &str) -> Result<(), String> {
        match &self.metric {
            Some(m) if m != metric => Err(format!(
                "--baseline '{}' judged '{m}' but this run judges '{metric}': give '--metric {m}' \
                 or a baseline recorded with '--metric {metric}'",
                self.path
            )),
            _ => Ok(()),
        }
    }
}

/// One configured limit and how the run did against it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// `max-rss`, `max-growth`, `max-slope`, `baseline-slope` or `baseline-peak`.
    pub rule: &'static str,
    /// The limit for people: `512 MiB`, `10% (10.0 MiB)`, `+1.00 MiB/min`.
    pub limit: String,
    /// The run's figure for people; `not judged` when it is unknown.
    pub actual: String,
    /// `None` (null in summary.json): not judged, the run's figure is unknown (an
    /// inconclusive run has no slope or growth). Neither a pass nor a breach.
    pub passed: Option<bool>,
    /// One sentence, e.g. "peak RSS 612 MiB is over --max-rss 512 MiB by 100 MiB (19.5%)".
    pub message: String,
}

/// A limit the run broke. Any breach fails the gate (exit 1).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Breach {
    pub rule: &'static str,
    pub limit: String,
    pub actual: String,
    pub message: String,
}

/// The run against a baseline: both sides' figures and what was allowed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BaselineComparison {
    pub path: String,
    pub tolerance_pct: f64,
    pub baseline_slope_bytes_per_s: f64,
    /// The least slope the analyser calls growth in this run (the larger of `--min-slope`'s
    /// absolute and relative gates). A baseline slope below it is raised to it before the
    /// tolerance is added: otherwise a flat baseline (slope ~0) would fail any later run on
    /// noise.
    pub slope_floor_bytes_per_s: f64,
    /// max(baseline slope, floor) × (1 + tolerance).
    pub allowed_slope_bytes_per_s: f64,
    /// `None`: this run's slope was not judged (inconclusive).
    pub current_slope_bytes_per_s: Option<f64>,
    /// Whole bytes, as every size in summary.json.
    pub baseline_peak_bytes: Option<u64>,
    /// Baseline peak × (1 + tolerance).
    pub allowed_peak_bytes: Option<u64>,
    /// `None`: this run has no sample.
    pub current_peak_bytes: Option<u64>,
    /// `None` when not judged.
    pub slope_regressed: Option<bool>,
    pub peak_regressed: Option<bool>,
}

/// What the gate decided, beside the verdict. Goes into summary.json as `gate`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateResult {
    /// Every limit configured, passed or not, in a fixed order.
    pub checks: Vec<Check>,
    /// The checks that failed.
    pub breaches: Vec<Breach>,
    /// The verdict is "growing".
    pub verdict_failed: bool,
    /// The verdict is "inconclusive" and `--fail-on-inconclusive` was given.
    pub inconclusive_failed: bool,
    pub fail_on_inconclusive: bool,
    pub baseline: Option<BaselineComparison>,
}

impl GateResult {
    /// The exit code of the run, from the one it would have without limits (`verdict_exit`:
    /// the verdict's 0, 1 or 3; or 4 when the command or the load failed).
    ///
    /// Any breach gives 1; otherwise inconclusive (3) gives 1 with `--fail-on-inconclusive`;
    /// otherwise `verdict_exit`. Codes other than 0, 1 and 3 (2, 4) are kept: a run whose
    /// command failed is not evidence either way (README, "Exit codes"), and the breaches are
    /// still reported.
    pub fn exit_code(&self, verdict_exit: Exit) -> Exit {
        match verdict_exit {
            Exit::Passed | Exit::Grew | Exit::Inconclusive if !self.breaches.is_empty() => {
                Exit::Grew
            }
            Exit::Inconclusive if self.inconclusive_failed => Exit::Grew,
            code => code,
        }
    }
}

/// The exit code a verdict gives before any limit is checked.
pub fn verdict_exit(verdict: Verdict) -> Exit {
    match verdict {
        Verdict::Stable => Exit::Passed,
        Verdict::Growing => Exit::Grew,
        Verdict::Inconclusive => Exit::Inconclusive,
    }
}

/// The level percentages are relative to: the floor at the analysed window's start (the fitted
/// trend's `v0`), or the first value when there is no trend; `None` without either.
pub fn reference_level(summary: &Figures<'_>) -> Option<f64> {
    summary
        .trend
        .map(|t| t.v0)
        .filter(|v| v.is_finite() && *v > 0.0)
        .or(summary.start_bytes)
}

/// `x` as a share of `of`, for messages: `19.5%`.
fn share(x: f64, of: f64) -> String {
    if of > 0.0 && x.is_finite() {
        format!("{:.1}%", 100.0 * x / of)
    } else {
        "n/a".to_string()
    }
}

/// The metric's name for messages: `RSS`, `PSS`, `anon`.
fn metric_label(metric: &str) -> String {
    match metric {
        "rss" | "pss" | "uss" | "vsz" | "hwm" => metric.to_uppercase(),
        other => other.to_string(),
    }
}

/// What `actual` says of a figure that is unknown.
pub const NOT_JUDGED: &str = "not judged";

/// A limit on a figure the run does not have: neither passed nor breached.
fn not_judged(rule: &'static str, limit: String, message: String) -> Check {
    Check {
        rule,
        limit,
        actual: NOT_JUDGED.to_string(),
        passed: None,
        message,
    }
}

/// Checks `summary` against `limits`.
pub fn evaluate(summary: &Figures<'_>, limits: &Limits) -> GateResult {
    let mut checks = Vec::new();
    let metric = metric_label(summary.metric);
    let because = summary.not_judged_because;

    if let Some(max) = limits.max_rss {
        checks.push(check_max_rss(summary.peak_bytes, max as f64, &metric));
    }

    if let Some(limit) = limits.max_growth {
        checks.push(check_max_growth(summary, limit, &metric));
    }
    if let Some(max) = limits.max_slope {
        checks.push(check_max_slope(
            summary.slope_bytes_per_s,
            max,
            &metric,
            because,
        ));
    }

    let baseline = limits
        .baseline
        .as_ref()
        .map(|b| compare_baseline(summary, b, limits.baseline_tolerance_pct));
    if let Some(c) = &baseline {
        checks.push(check_baseline_slope(
            c,
            limits.baseline_tolerance_pct,
            &metric,
            because,
        ));
        checks.push(check_baseline_peak(
            c,
            limits.baseline_tolerance_pct,
            &metric,
        ));
    }

    if let Some(least) = limits.min_time_to_limit_s {
        checks.push(time_to_limit_check(summary.limit.as_ref(), least));
    }

    let breaches = checks
        .iter()
        .filter(|c| c.passed == Some(false))
        .map(|c| Breach {
            rule: c.rule,
            limit: c.limit.clone(),
            actual: c.actual.clone(),
            message: c.message.clone(),
        })
        .collect();
    GateResult {
        checks,
        breaches,
        verdict_failed: summary.verdict == Verdict::Growing,
        inconclusive_failed: summary.verdict == Verdict::Inconclusive
            && limits.fail_on_inconclusive,
        fail_on_inconclusive: limits.fail_on_inconclusive,
        baseline,
    }
}

/// `--max-growth` against the floor's growth over the analysed window (a share of the
/// reference level for a percentage); not judged without a trend.
fn check_max_growth(summary: &Figures<'_>, limit: GrowthLimit, metric: &str) -> Check {
    let because = summary.not_judged_because;
    let level = reference_level(summary);
    let (max, limit_text) = match (limit, level) {
        (GrowthLimit::Bytes(b), _) => (Some(b), Bytes(b).to_string()),
        (GrowthLimit::Percent(p), Some(level)) => {
            let b = p / 100.0 * level;
            (Some(b), format!("{p}% ({} of {})", Bytes(b), Bytes(level)))
        }
        (GrowthLimit::Percent(p), None) => (None, format!("{p}%")),
    };
    match (summary.growth_bytes, max) {
        (Some(growth), Some(max)) => {
            let level = level.unwrap_or(f64::NAN);
            let over = growth > max;
            Check {
                rule: "max-growth",
                limit: limit_text.clone(),
                actual: format!("{} ({})", Delta(growth), share(growth, level)),
                passed: Some(!over),
                message: if over {
                    format!(
                        "{metric} floor growth {} over the analysed window is over \
                         --max-growth {limit_text} by {} ({} of the limit)",
                        Delta(growth),
                        Bytes(growth - max),
                        share(growth - max, max)
                    )
                } else {
                    format!(
                        "{metric} floor growth {} over the analysed window is within \
                         --max-growth {limit_text}",
                        Delta(growth)
                    )
                },
            }
        }
        _ => not_judged(
            "max-growth",
            limit_text.clone(),
            format!(
                "{metric} floor growth is not judged ({because}): --max-growth {limit_text} \
                 was not checked"
            ),
        ),
    }
}

/// `--max-slope` against the floor's slope, written per the limit's time unit; not judged
/// without a trend.
fn check_max_slope(slope: Option<f64>, max: f64, metric: &str, because: &str) -> Check {
    match slope {
        Some(slope) => {
            let over = slope > max;
            // one unit per comparison: the limit's
            let like = |r: f64| Rate(r).per_unit_of(Rate(max));
            Check {
                rule: "max-slope",
                limit: Rate(max).to_string(),
                actual: like(slope).to_string(),
                passed: Some(!over),
                message: if over {
                    format!(
                        "{metric} floor slope {} is over --max-slope {} by {} ({})",
                        like(slope),
                        Rate(max),
                        like(slope - max),
                        share(slope - max, max)
                    )
                } else {
                    format!(
                        "{metric} floor slope {} is within --max-slope {}",
                        like(slope),
                        Rate(max)
                    )
                },
            }
        }
        None => not_judged(
            "max-slope",
            Rate(max).to_string(),
            format!(
                "{metric} floor slope is not judged ({because}): --max-slope {} was not \
                 checked",
                Rate(max)
            ),
        ),
    }
}

/// `--max-rss` against the peak: needs no trend, so it is checked whatever the verdict;
/// not judged only without any sample.
fn check_max_rss(peak: Option<f64>, max: f64, metric: &str) -> Check {
    let Some(peak) = peak else {
        return not_judged(
            "max-rss",
            Bytes(max).to_string(),
            format!(
                "no {metric} sample was taken: --max-rss {} was not checked",
                Bytes(max)
            ),
        );
    };
    let over = peak > max;
    Check {
        rule: "max-rss",
        limit: Bytes(max).to_string(),
        actual: Bytes(peak).to_string(),
        passed: Some(!over),
        message: if over {
            format!(
                "peak {metric} {} is over --max-rss {} by {} ({})",
                Bytes(peak),
                Bytes(max),
                Bytes(peak - max),
                share(peak - max, max)
            )
        } else {
            format!(
                "peak {metric} {} is within --max-rss {}",
                Bytes(peak),
                Bytes(max)
            )
        },
    }
}

fn check_baseline_slope(c: &BaselineComparison, tol: f64, metric: &str, because: &str) -> Check {
    let hint = "; if this is expected, make this run's summary.json the new baseline";
    let allowed = c.allowed_slope_bytes_per_s;
    // one unit per comparison: the allowed slope's
    let like = |r: f64| Rate(r).per_unit_of(Rate(allowed));
    let slope_basis = if c.baseline_slope_bytes_per_s < c.slope_floor_bytes_per_s {
        format!(
            "baseline {}, raised to the --min-slope floor {}, + {tol}%",
            like(c.baseline_slope_bytes_per_s),
            like(c.slope_floor_bytes_per_s)
        )
    } else {
        format!("baseline {} + {tol}%", like(c.baseline_slope_bytes_per_s))
    };
    let limit = format!("{} ({slope_basis})", Rate(allowed));
    let (Some(current), Some(regressed)) = (c.current_slope_bytes_per_s, c.slope_regressed) else {
        return not_judged(
            "baseline-slope",
            limit,
            format!(
                "{metric} floor slope is not judged ({because}): it was not compared with the \
                 {} allowed by baseline '{}'",
                Rate(allowed),
                c.path
            ),
        );
    };
    Check {
        rule: "baseline-slope",
        limit,
        actual: like(current).to_string(),
        passed: Some(!regressed),
        message: if regressed {
            format!(
                "{metric} floor slope {} is over the {} allowed ({slope_basis}) by {} \
                 (baseline '{}'){hint}",
                like(current),
                Rate(allowed),
                like(current - allowed),
                c.path
            )
        } else {
            format!(
                "{metric} floor slope {} is within the {} allowed ({slope_basis}; \
                 baseline '{}')",
                like(current),
                Rate(allowed),
                c.path
            )
        },
    }
}

fn check_baseline_peak(c: &BaselineComparison, tol: f64, metric: &str) -> Check {
    let hint = "; if this is expected, make this run's summary.json the new baseline";
    let bytes = |b: Option<u64>| b.map_or(f64::NAN, |b| b as f64);
    let (allowed, base) = (bytes(c.allowed_peak_bytes), bytes(c.baseline_peak_bytes));
    let peak_basis = format!("baseline {} + {tol}%", Bytes(base));
    let limit = format!("{} ({peak_basis})", Bytes(allowed));
    let (Some(current), Some(regressed)) = (c.current_peak_bytes, c.peak_regressed) else {
        return not_judged(
            "baseline-peak",
            limit,
            format!(
                "no {metric} sample was taken: the peak was not compared with baseline '{}'",
                c.path
            ),
        );
    };
    let current = current as f64;
    Check {
        rule: "baseline-peak",
        limit,
        actual: Bytes(current).to_string(),
        passed: Some(!regressed),
        message: if regressed {
            format!(
                "peak {metric} {} is over the {} allowed ({peak_basis}) by {}, {} above \
                 the baseline (baseline '{}'){hint}",
                Bytes(current),
                Bytes(allowed),
                Bytes(current - allowed),
                share(current - base, base),
                c.path
            )
        } else {
            format!(
                "peak {metric} {} is within the {} allowed ({peak_basis}; baseline '{}')",
                Bytes(current),
                Bytes(allowed),
                c.path
            )
        },
    }
}

/// `--min-time-to-limit`: the cgroup must not reach its limit, at its floor's slope, sooner
/// than `least` seconds. A cgroup that does not grow, or has no limit, passes.
fn time_to_limit_check(limit: Option<&LimitFigures>, least: f64) -> Check {
    let least_text = Elapsed(least).to_string();
    let check = |passed: bool, actual: String, message: String| Check {
        rule: "min-time-to-limit",
        limit: least_text.clone(),
        actual,
        passed: Some(passed),
        message,
    };
    let Some(l) = limit else {
        return check(
            false,
            "n/a".into(),
            "no cgroup was read: --min-time-to-limit needs the cgroup's series (--cgroup)".into(),
        );
    };
    let Some(bytes) = l.limit_bytes else {
        return check(
            true,
            "no limit".into(),
            format!(
                "the cgroup {} has no memory limit (nor any cgroup above it): there is none to reach",
                l.cgroup
            ),
        );
    };
    match l.time_to_limit_s {
        Some(t) => {
            let words = format!(
                "at {} the {} limit of {} is reached in about {}",
                Rate(l.slope_bytes_per_s),
                Bytes(bytes),
                l.cgroup,
                Elapsed(t)
            );
            if t < least {
                check(
                    false,
                    Elapsed(t).to_string(),
                    format!("{words}, sooner than --min-time-to-limit {least_text}"),
                )
            } else {
                check(
                    true,
                    Elapsed(t).to_string(),
                    format!("{words}, not sooner than --min-time-to-limit {least_text}"),
                )
            }
        }
        None => check(
            true,
            "not growing".into(),
            format!(
                "the memory of {} does not grow: its {} limit is not in reach",
                l.cgroup,
                Bytes(bytes)
            ),
        ),
    }
}

fn compare_baseline(summary: &Figures<'_>, b: &Baseline, tolerance_pct: f64) -> BaselineComparison {
    let factor = 1.0 + tolerance_pct / 100.0;
    let relative_floor = reference_level(summary).map_or(0.0, |level| {
        summary.min_slope_pct_per_hour / 100.0 * level / 3600.0
    });
    let floor = summary.min_slope_bytes_per_s.max(relative_floor).max(0.0);
    let allowed_slope = b.slope_bytes_per_s.max(floor) * factor;
    let allowed_peak = b.peak_bytes * factor;
    let current_slope = summary.slope_bytes_per_s;
    BaselineComparison {
        path: b.path.clone(),
        tolerance_pct,
        baseline_slope_bytes_per_s: b.slope_bytes_per_s,
        slope_floor_bytes_per_s: floor,
        allowed_slope_bytes_per_s: allowed_slope,
        current_slope_bytes_per_s: current_slope,
        baseline_peak_bytes: whole_bytes(b.peak_bytes),
        allowed_peak_bytes: whole_bytes(allowed_peak),
        current_peak_bytes: summary.peak_bytes.and_then(whole_bytes),
        slope_regressed: current_slope.map(|s| s > allowed_slope),
        peak_regressed: summary.peak_bytes.map(|p| p > allowed_peak),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::analyze::{Analysis, Pattern, Thresholds, TrendLine};

    const MIB: f64 = 1024.0 * 1024.0;

    /// The figures of `analysis(...)`, judged on RSS (the analysis lives as long as the test).
    fn summary(verdict: Verdict, slope: f64, peak: f64) -> Figures<'static> {
        Figures::of(Box::leak(Box::new(analysis(verdict, slope, peak))), "rss")
    }

    /// A run: 120 s, floor from 100 MiB rising at `slope` B/s after a 24 s warm-up. An
    /// inconclusive one has no slope, growth, p-value or trend (unknown), whatever `slope`.
    pub(crate) fn analysis(verdict: Verdict, slope: f64, peak: f64) -> Analysis {
        let window = 96.0;
        let judged = verdict != Verdict::Inconclusive;
        Analysis {
            verdict,
            pattern: match verdict {
                Verdict::Growing => Pattern::Linear,
                Verdict::Stable => Pattern::Flat,
                Verdict::Inconclusive => Pattern::Unknown,
            },
            samples: 600,
            samples_analysed: 480,
            duration_s: 120.0,
            warmup_s: 24.0,
            window_start_s: 24.0,
            window_end_s: 120.0,
            slope_bytes_per_s: judged.then_some(slope),
            slope_pct_per_hour: judged.then_some(slope * 3600.0 / (100.0 * MIB) * 100.0),
            growth_bytes: judged.then_some(slope * window),
            p_value: judged.then_some(if verdict == Verdict::Growing {
                0.0004
            } else {
                0.62
            }),
            start_bytes: 90.0 * MIB,
            end_bytes: 100.0 * MIB + slope * window,
            peak_bytes: peak,
            trend: judged.then_some(TrendLine {
                t0: 24.0,
                v0: 100.0 * MIB,
                t1: 120.0,
                v1: 100.0 * MIB + slope * window,
            }),
            excluded: Vec::new(),
            steps: Vec::new(),
            floor: Vec::new(),
            thresholds: Thresholds::default(),
            reason: "a test run".to_string(),
        }
    }

    fn rules(g: &GateResult) -> Vec<&'static str> {
        g.breaches.iter().map(|b| b.rule).collect()
    }

    #[test]
    fn no_limits_keeps_the_verdict_code() {
        for (verdict, code) in [
            (Verdict::Stable, Exit::Passed),
            (Verdict::Growing, Exit::Grew),
            (Verdict::Inconclusive, Exit::Inconclusive),
        ] {
            let g = evaluate(&summary(verdict, 0.0, 100.0 * MIB), &Limits::default());
            assert!(g.checks.is_empty() && g.breaches.is_empty());
            assert_eq!(g.exit_code(verdict_exit(verdict)), code);
            assert_eq!(g.verdict_failed, verdict == Verdict::Growing);
        }
    }

    #[test]
    fn max_rss_breach_fails_a_stable_run() {
        let s = summary(Verdict::Stable, 0.0, 612.0 * MIB);
        let limits = Limits {
            max_rss: Some(512 * 1024 * 1024),
            ..Limits::default()
        };
        let g = evaluate(&s, &limits);
        assert_eq!(rules(&g), ["max-rss"]);
        assert_eq!(
            g.breaches[0].message,
            "peak RSS 612 MiB is over --max-rss 512 MiB by 100 MiB (19.5%)"
        );
        assert_eq!(g.exit_code(Exit::Passed), Exit::Grew);
        // The command failing wins: the breach is reported but the code stays 4.
        assert_eq!(g.exit_code(Exit::CommandFailed), Exit::CommandFailed);

        let ok = evaluate(&summary(Verdict::Stable, 0.0, 400.0 * MIB), &limits);
        assert!(ok.breaches.is_empty());
        assert_eq!(ok.checks.len(), 1);
        assert_eq!(ok.checks[0].passed, Some(true));
        assert_eq!(ok.exit_code(Exit::Passed), Exit::Passed);
    }

    #[test]
    fn max_growth_in_bytes_and_percent_of_the_window_start() {
        // 100 KiB/s over 96 s = 9.375 MiB of growth on a 100 MiB floor.
        let s = summary(Verdict::Growing, 100.0 * 1024.0, 120.0 * MIB);
        let pct = |p| Limits {
            max_growth: Some(GrowthLimit::Percent(p)),
            ..Limits::default()
        };
        let g = evaluate(&s, &pct(5.0));
        assert_eq!(rules(&g), ["max-growth"]);
        assert!(
            g.breaches[0]
                .message
                .contains("over --max-growth 5% (5.00 MiB of 100 MiB)"),
            "{}",
            g.breaches[0].message
        );
        assert!(g.breaches[0].message.contains("by 4.38 MiB"));
        assert_eq!(g.exit_code(Exit::Grew), Exit::Grew);
        // 10% of the window-start floor (100 MiB), not of start_bytes (90 MiB): 9.375 < 10.
        assert!(evaluate(&s, &pct(10.0)).breaches.is_empty());

        let bytes = Limits {
            max_growth: Some(GrowthLimit::Bytes(8.0 * MIB)),
            ..Limits::default()
        };
        assert_eq!(rules(&evaluate(&s, &bytes)), ["max-growth"]);
    }

    #[test]
    fn max_growth_percent_without_trend_uses_start_bytes() {
        let mut s = summary(Verdict::Stable, 100.0 * 1024.0, 120.0 * MIB);
        s.trend = None;
        assert_eq!(reference_level(&s), Some(90.0 * MIB));
        let limits = Limits {
            max_growth: Some(GrowthLimit::Percent(10.0)),
            ..Limits::default()
        };
        // 9.375 MiB > 10% of 90 MiB.
        assert_eq!(rules(&evaluate(&s, &limits)), ["max-growth"]);
    }

    #[test]
    fn max_slope_breach() {
        let s = summary(Verdict::Growing, 2.0 * MIB, 400.0 * MIB);
        let limits = Limits {
            max_slope: Some(MIB),
            ..Limits::default()
        };
        let g = evaluate(&s, &limits);
        assert_eq!(rules(&g), ["max-slope"]);
        assert_eq!(
            g.breaches[0].message,
            "RSS floor slope +2.00 MiB/s is over --max-slope +1.00 MiB/s by +1.00 MiB/s (100.0%)"
        );
        // A slow stable slope under the limit passes.
        let slow = summary(Verdict::Stable, 10.0, 100.0 * MIB);
        assert!(evaluate(&slow, &limits).breaches.is_empty());
    }

    #[test]
    fn fail_on_inconclusive() {
        let s = summary(Verdict::Inconclusive, 0.0, 100.0 * MIB);
        let strict = Limits {
            fail_on_inconclusive: true,
            ..Limits::default()
        };
        let g = evaluate(&s, &strict);
        assert!(g.inconclusive_failed);
        assert_eq!(g.exit_code(Exit::Inconclusive), Exit::Grew);
        assert_eq!(
            evaluate(&s, &Limits::default()).exit_code(Exit::Inconclusive),
            Exit::Inconclusive
        );
        // Has no effect on a conclusive run.
        let stable = evaluate(&summary(Verdict::Stable, 0.0, MIB), &strict);
        assert!(!stable.inconclusive_failed);
        assert_eq!(stable.exit_code(Exit::Passed), Exit::Passed);
    }

    #[test]
    fn all_limits_breached_are_all_reported() {
        let s = summary(Verdict::Growing, 2.0 * MIB, 612.0 * MIB);
        let limits = Limits {
            max_rss: Some(512 * 1024 * 1024),
            max_growth: Some(GrowthLimit::Percent(10.0)),
            max_slope: Some(MIB),
            ..Limits::default()
        };
        let g = evaluate(&s, &limits);
        assert_eq!(rules(&g), ["max-rss", "max-growth", "max-slope"]);
        assert_eq!(g.exit_code(Exit::Grew), Exit::Grew);
    }

    fn baseline(slope: f64, peak: f64) -> Baseline {
        Baseline {
            slope_bytes_per_s: slope,
            peak_bytes: peak,
            metric: Some("rss".into()),
            path: "base/summary.json".into(),
        }
    }

    #[test]
    fn baseline_peak_regression() {
        let limits = Limits {
            baseline: Some(baseline(0.0, 100.0 * MIB)),
            ..Limits::default()
        };
        let within = evaluate(&summary(Verdict::Stable, 0.0, 109.0 * MIB), &limits);
        assert!(within.breaches.is_empty(), "{:?}", within.breaches);
        assert_eq!(within.checks.len(), 2);
        let over = evaluate(&summary(Verdict::Stable, 0.0, 115.0 * MIB), &limits);
        assert_eq!(rules(&over), ["baseline-peak"]);
        assert_eq!(
            over.breaches[0].message,
            "peak RSS 115 MiB is over the 110 MiB allowed (baseline 100 MiB + 10%) by 5.00 MiB, \
             15.0% above the baseline (baseline 'base/summary.json'); if this is expected, \
             make this run's summary.json the new baseline"
        );
        assert_eq!(over.exit_code(Exit::Passed), Exit::Grew);
        let c = over.baseline.as_ref().unwrap();
        assert_eq!(
            (c.peak_regressed, c.slope_regressed),
            (Some(true), Some(false))
        );
    }

    #[test]
    fn baseline_slope_near_zero_compares_against_the_min_slope_floor() {
        // Baseline flat (slope 0.5 B/s): floor = max(16 B/s, 1%/h of 100 MiB = 291 B/s).
        let limits = Limits {
            baseline: Some(baseline(0.5, 100.0 * MIB)),
            ..Limits::default()
        };
        let noise = evaluate(&summary(Verdict::Stable, 200.0, 100.0 * MIB), &limits);
        assert!(noise.breaches.is_empty(), "{:?}", noise.breaches);
        let c = noise.baseline.as_ref().unwrap();
        assert!((c.slope_floor_bytes_per_s - 100.0 * MIB * 0.01 / 3600.0).abs() < 1e-6);
        assert!((c.allowed_slope_bytes_per_s - c.slope_floor_bytes_per_s * 1.1).abs() < 1e-6);

        let leak = evaluate(&summary(Verdict::Growing, 4096.0, 100.0 * MIB), &limits);
        assert_eq!(rules(&leak), ["baseline-slope"]);
        assert!(
            leak.breaches[0]
                .message
                .contains("raised to the --min-slope floor"),
            "{}",
            leak.breaches[0].message
        );
        // A negative baseline slope (shrinking) is raised to the floor too.
        let shrinking = Limits {
            baseline: Some(baseline(-1000.0, 100.0 * MIB)),
            ..Limits::default()
        };
        assert!(
            evaluate(&summary(Verdict::Stable, 200.0, 100.0 * MIB), &shrinking)
                .breaches
                .is_empty()
        );
    }

    #[test]
    fn baseline_slope_with_a_known_leak_and_tolerance() {
        let limits = Limits {
            baseline: Some(baseline(MIB, 100.0 * MIB)),
            baseline_tolerance_pct: 20.0,
            ..Limits::default()
        };
        let s = |slope| summary(Verdict::Growing, slope, 100.0 * MIB);
        assert!(evaluate(&s(1.19 * MIB), &limits).breaches.is_empty());
        let worse = evaluate(&s(1.5 * MIB), &limits);
        assert_eq!(rules(&worse), ["baseline-slope"]);
        assert!(
            worse.breaches[0].message.starts_with(
                "RSS floor slope +1.50 MiB/s is over the +1.20 MiB/s allowed \
                              (baseline +1.00 MiB/s + 20%) by +307 KiB/s"
            ),
            "{}",
            worse.breaches[0].message
        );
    }

    /// Regression (issue 20 item 1): an inconclusive run's made-up slope and growth of 0
    /// passed --max-growth and --max-slope ("+0 B (0.0%) passed"). Limits on figures the run
    /// does not have are not judged: neither passed nor breached; the peak is still checked.
    #[test]
    fn regression_issue20_item1_limits_on_an_unknown_trend_are_not_judged() {
        let s = summary(Verdict::Inconclusive, 5.0 * MIB, 68.0 * MIB);
        assert_eq!((s.growth_bytes, s.slope_bytes_per_s), (None, None));
        let limits = Limits {
            max_rss: Some(64 * 1024 * 1024),
            max_growth: Some(GrowthLimit::Bytes(MIB)),
            max_slope: Some(MIB / 60.0),
            baseline: Some(baseline(0.0, 100.0 * MIB)),
            ..Limits::default()
        };
        let g = evaluate(&s, &limits);
        let passed: Vec<(&str, Option<bool>)> =
            g.checks.iter().map(|c| (c.rule, c.passed)).collect();
        assert_eq!(
            passed,
            [
                ("max-rss", Some(false)),
                ("max-growth", None),
                ("max-slope", None),
                ("baseline-slope", None),
                ("baseline-peak", Some(true)),
            ]
        );
        for c in g.checks.iter().filter(|c| c.passed.is_none()) {
            assert_eq!(c.actual, "not judged");
            assert!(
                c.message.contains("not judged") && c.message.contains("a test run"),
                "{}",
                c.message
            );
        }
        // the peak is a hard limit: its breach fails an inconclusive run
        assert_eq!(rules(&g), ["max-rss"]);
        assert_eq!(g.exit_code(Exit::Inconclusive), Exit::Grew);
        // limits not judged alone leave it inconclusive
        let unjudged = Limits {
            max_rss: None,
            ..limits
        };
        let g = evaluate(&s, &unjudged);
        assert!(g.breaches.is_empty());
        assert_eq!(g.exit_code(Exit::Inconclusive), Exit::Inconclusive);
        let c = g.baseline.unwrap();
        assert_eq!(
            (c.current_slope_bytes_per_s, c.slope_regressed),
            (None, None)
        );
        assert_eq!(c.peak_regressed, Some(false));
    }

    #[test]
    fn parsing_limits() {
        use crate::options::{ByteRate, Pct, Size};
        let growth = |t: &str| t.parse::<GrowthLimit>();
        assert_eq!(growth("512MiB"), Ok(GrowthLimit::Bytes(512.0 * MIB)));
        assert_eq!(growth("10%"), Ok(GrowthLimit::Percent(10.0)));
        assert_eq!(growth(" 2.5 % "), Ok(GrowthLimit::Percent(2.5)));
        assert!(growth("-5%").unwrap_err().contains("'-5%'"));
        assert!(growth("lots").unwrap_err().contains("'lots'"));
        assert_eq!("512MiB".parse::<Size>(), Ok(Size(512 * 1024 * 1024)));
        assert_eq!("60KiB/min".parse::<ByteRate>(), Ok(ByteRate(1024.0)));
        assert!(
            "5%/h"
                .parse::<ByteRate>()
                .unwrap_err()
                .contains("--max-growth")
        );
        assert_eq!("10%".parse::<Pct>(), Ok(Pct(10.0)));
        assert_eq!("0%".parse::<Pct>(), Ok(Pct(0.0)));
        assert!("0.1".parse::<Pct>().unwrap_err().contains("'0.1'"));
        assert!("-1%".parse::<Pct>().is_err());
    }

    #[test]
    fn gate_serializes() {
        let s = summary(Verdict::Stable, 0.0, 612.0 * MIB);
        let limits = Limits {
            max_rss: Some(512 * 1024 * 1024),
            baseline: Some(baseline(0.0, 600.0 * MIB)),
            ..Limits::default()
        };
        let json = serde_json::to_value(evaluate(&s, &limits)).unwrap();
        assert_eq!(json["breaches"][0]["rule"], "max-rss");
        assert_eq!(json["checks"].as_array().unwrap().len(), 3);
        assert_eq!(json["baseline"]["tolerance_pct"], 10.0);
    }

    #[test]
    fn time_to_limit_fails_when_the_limit_is_reached_too_soon() {
        let mut s = summary(Verdict::Growing, 1024.0, 200.0 * MIB);
        let limits = Limits {
            min_time_to_limit_s: Some(6.0 * 3600.0),
            ..Limits::default()
        };
        let cgroup = |limit: Option<f64>, time: Option<f64>| LimitFigures {
            cgroup: "/app".into(),
            limit_bytes: limit,
            headroom_bytes: limit.map(|l| l - 200.0 * MIB),
            slope_bytes_per_s: 12.0 * MIB / 60.0,
            time_to_limit_s: time,
        };
        s.limit = Some(cgroup(Some(512.0 * MIB), Some(3.0 * 3600.0 + 600.0)));
        let g = evaluate(&s, &limits);
        assert_eq!(rules(&g), ["min-time-to-limit"]);
        assert_eq!(
            g.breaches[0].message,
            "at +12.0 MiB/min the 512 MiB limit of /app is reached in about 3 h 10 min, sooner \
             than --min-time-to-limit 6 h"
        );
        assert_eq!(g.exit_code(Exit::Passed), Exit::Grew);
        s.limit = Some(cgroup(Some(512.0 * MIB), Some(7.0 * 3600.0)));
        assert!(evaluate(&s, &limits).breaches.is_empty());
        s.limit = Some(cgroup(Some(512.0 * MIB), None));
        let g = evaluate(&s, &limits);
        assert!(g.breaches.is_empty());
        assert!(
            g.checks[0].message.contains("does not grow"),
            "{:?}",
            g.checks
        );
        s.limit = Some(cgroup(None, None));
        assert!(
            evaluate(&s, &limits).checks[0]
                .message
                .contains("has no memory limit")
        );
        s.limit = None;
        assert_eq!(rules(&evaluate(&s, &limits)), ["min-time-to-limit"]);
    }
}
