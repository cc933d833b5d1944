//! Which series of a run is judged, and judging it. In order of preference: the managed heap
//! after forced GCs (with `--runtime`: what the program keeps alive, without a lazy
//! collector's slack), the settled samples taken after each signal (the post-GC floor of
//! RSS), then the configured metric. Whenever another series than the metric is judged, the
//! metric is judged too and shown beside it. Every series is judged within the run: one
//! warm-up, counted from the run's first sample, and the run's length. Heap-dump periods are
//! left out. The same function serves a live run and `memwatch report`, so the same samples
//! give the same verdict.

use crate::analyze::{self, Analysis, MIN_SAMPLES, MinGrowth, Run, Thresholds, Verdict};
use crate::error::{Error, Result};
use crate::recording::Recording;
use crate::sample::Metric;

/// Whether the verdict is judged on the settled (post-signal) samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettledUse {
    /// When there are enough settled samples to decide.
    Auto,
    /// `--metric settled`.
    Always,
}

#[derive(Clone, Debug)]
pub struct AnalysisConfig {
    pub metric: Metric,
    pub settled: SettledUse,
    pub thresholds: Thresholds,
}

/// The series name of the managed heap after GC (with `external`, what the runtime holds
/// for the program after a full GC).
pub const MANAGED: &str = "heap-after-gc";

/// The analysis of the judged series, its name, and the metric's own analysis beside it.
pub struct Judged {
    pub analysis: Analysis,
    /// `rss`, `settled`, `heap-after-gc`, ...
    pub series: String,
    /// Why a preferred series was not judged, in words (too few points, ...).
    pub note: Option<String>,
    /// The configured metric's analysis, when another series was judged.
    pub beside: Option<Analysis>,
}

/// The managed-heap series: heap after GC plus what the runtime holds outside it for JS
/// objects (Node's `external`: Buffers), at the ticks that have a reading.
pub fn managed_series(rec: &Recording) -> Option<(Vec<f64>, Vec<f64>)> {
    let after = rec.metric(Metric::HeapAfterGc)?;
    let external = rec.metric(Metric::External);
    let mut t = Vec::new();
    let mut v = Vec::new();
    for (i, &heap) in after.iter().enumerate() {
        if heap.is_finite() {
            let ext = external
                .and_then(|e| e.get(i).copied())
                .filter(|x| x.is_finite());
            t.push(rec.time_s[i]);
            v.push(heap + ext.unwrap_or(0.0));
        }
    }
    (!t.is_empty()).then_some((t, v))
}

/// The gates for the managed heap, with their relative parts measured against the process's
/// memory (the metric's floor, RSS by default) rather than the heap's own size. The heap is
/// often a small part of the process: V8's compiled code and a few bytes a connection can
/// move a 7 MiB heap by 4% in two minutes while the process's 60 MiB do not notice, and a
/// leak gate is about the process's memory. The absolute gates are kept as they are.
fn relative_to_process(t: &Thresholds, process: &Analysis) -> Thresholds {
    let level = process
        .trend
        .map(|l| l.v0)
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(process.start_bytes);
    if !(level.is_finite() && level > 0.0) {
        return *t;
    }
    let mut out = *t;
    if let MinGrowth::Percent(p) = t.min_growth {
        out.min_growth = MinGrowth::Bytes(p / 100.0 * level);
    }
    out.min_slope_bytes_per_s = t
        .min_slope_bytes_per_s
        .max(t.min_slope_pct_per_hour / 100.0 * level / 3600.0);
    out.min_slope_pct_per_hour = 0.0;
    out
}

/// Judges `rec` as configured.
pub fn judge(rec: &Recording, cfg: &AnalysisConfig) -> Result<Judged> {
    let values = match rec.metric(cfg.metric) {
        Some(values) => values,
        None if rec.is_empty() => &[],
        None => {
            return Err(Error::Usage(format!(
                "--metric {}: the recording has no '{}' column",
                cfg.metric,
                cfg.metric.column()
            )));
        }
    };
    let excluded = rec.dump_periods();
    // Every series within the run: its warm-up from the run's start, its length the run's.
    let run = Run::of(&rec.time_s);
    let within = |t: &[f64], v: &[f64], thresholds: &Thresholds| match run {
        Some(run) => analyze::analyze_in(run, t, v, &excluded, thresholds),
        None => analyze::analyze(t, v, &excluded, thresholds),
    };
    let judge_metric = || {
        if cfg.metric == Metric::HeapAfterGc {
            // Sparse: only the ticks with a reading.
            let (t, v) = managed_series(rec).unwrap_or_default();
            within(&t, &v, &cfg.thresholds)
        } else {
            within(&rec.time_s, values, &cfg.thresholds)
        }
    };
    let (settled_t, settled_v) = rec.settled(values);
    if cfg.settled == SettledUse::Always {
        if settled_t.is_empty() {
            return Err(Error::Usage(
                "--metric settled: the run has no settled samples (they come from --settle after a signal)".into(),
            ));
        }
        let a = within(&settled_t, &settled_v, &cfg.thresholds);
        return Ok(Judged {
            analysis: a,
            series: "settled".into(),
            note: None,
            beside: Some(judge_metric()),
        });
    }
    let mut note = None;
    if cfg.metric != Metric::HeapAfterGc
        && let Some((t, v)) = managed_series(rec)
    {
        let beside = judge_metric();
        let thresholds = relative_to_process(&cfg.thresholds, &beside);
        let a = within(&t, &v, &thresholds);
        if a.verdict != Verdict::Inconclusive {
            return Ok(Judged {
                analysis: a,
                series: MANAGED.into(),
                note: None,
                beside: Some(beside),
            });
        }
        note = Some(format!(
            "the managed heap after GC had too few readings to decide ({} after the warm-up, \
             {MIN_SAMPLES} needed): judged on {} instead",
            a.samples_analysed,
            cfg.metric.name()
        ));
    }
    if !settled_t.is_empty() {
        let a = within(&settled_t, &settled_v, &cfg.thresholds);
        if a.verdict != Verdict::Inconclusive {
            return Ok(Judged {
                analysis: a,
                series: "settled".into(),
                note,
                beside: Some(judge_metric()),
            });
        }
        note.get_or_insert(format!(
            "the settled (post-GC) samples were too few to decide ({} after the warm-up, \
             {MIN_SAMPLES} needed): judged on {} instead",
            a.samples_analysed,
            cfg.metric.name()
        ));
    }
    Ok(Judged {
        analysis: judge_metric(),
        series: cfg.metric.name().into(),
        note,
        beside: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::analyze::{TrendLine, Warmup};
    use crate::recording::{Event, EventKind};
    use crate::sample::{ManagedHeap, MemStatus, Sample};

    const MIB: f64 = 1024.0 * 1024.0;

    fn defaults() -> AnalysisConfig {
        AnalysisConfig {
            metric: Metric::Rss,
            settled: SettledUse::Auto,
            thresholds: Thresholds::default(),
        }
    }

    /// A flat run sampled every `every_s` up to `end_s`: RSS 60 MiB with a little noise, and
    /// the managed heap read at the ticks `heap_at` says.
    fn flat_run(end_s: f64, every_s: f64, heap_at: impl Fn(f64) -> bool) -> Recording {
        let mut rec = Recording::default();
        let n = (end_s / every_s).round() as u64;
        for k in 0..=n {
            let t = (k as f64 * every_s * 1000.0).round() / 1000.0;
            let wiggle = (k * 7919 % 13) * 4096;
            rec.push(&Sample {
                elapsed_s: t,
                mem: MemStatus {
                    rss: (60.0 * MIB) as u64 + wiggle,
                    ..MemStatus::default()
                },
                heap: ManagedHeap {
                    after_gc: heap_at(t).then_some((8.0 * MIB) as u64 + wiggle / 4),
                    ..ManagedHeap::default()
                },
                ..Sample::default()
            });
        }
        rec.finish();
        rec
    }

    /// Regression (issue 20 item 4): the managed heap, read from 4 s on, had a warm-up of its
    /// own (20% of its span, 22.8 s of a 2-minute run) while the heap snapshots were
    /// scheduled after the run's (24 s), and `duration_s` said the series' span. Every series
    /// of a run now has the run's warm-up, from the run's start, and the run's length.
    #[test]
    fn regression_issue20_item4_a_sparse_series_has_the_runs_warm_up() {
        let rec = flat_run(120.0, 0.5, |t| (4.0..=118.0).contains(&t) && t % 2.0 == 0.0);
        let judged = judge(&rec, &defaults()).unwrap();
        assert_eq!(judged.series, MANAGED);
        let a = &judged.analysis;
        // what config/mod.rs schedules snapshots after, for --duration 2m
        assert_eq!(a.warmup_s, Warmup::Auto.seconds(120.0));
        assert_eq!(a.warmup_s, 24.0);
        assert_eq!(a.window_start_s, 24.0);
        assert_eq!(a.duration_s, 120.0);
        assert_eq!(judged.beside.as_ref().unwrap().warmup_s, 24.0);
    }

    /// Signals every 10 s from 10 s, a settled sample 2 s after each, sampled every 200 ms
    /// for `end_s`: the README's forced-GC recipe.
    fn recipe_run(end_s: f64) -> Recording {
        let mut rec = flat_run(end_s, 0.2, |_| false);
        let mut at = 10.0;
        while at + 2.0 <= end_s {
            rec.events.push(Event {
                elapsed_s: at,
                kind: EventKind::Signal("SIGUSR2".into()),
            });
            rec.events.push(Event {
                elapsed_s: at + 2.0,
                kind: EventKind::Settled,
            });
            at += 10.0;
        }
        rec
    }

    /// Regression (issue 20 item 5): when the settled samples were judged, the configured
    /// metric was not judged beside them (docs/verdict.md says it is, summary.json `beside`).
    #[test]
    fn regression_issue20_item5_the_metric_is_beside_the_settled_samples() {
        let rec = recipe_run(200.0);
        let judged = judge(&rec, &defaults()).unwrap();
        assert_eq!(judged.series, "settled");
        let beside = judged
            .beside
            .as_ref()
            .expect("rss beside the settled samples");
        assert_eq!(beside.samples, rec.len());
        let always = AnalysisConfig {
            settled: SettledUse::Always,
            ..defaults()
        };
        assert!(judge(&rec, &always).unwrap().beside.is_some());
    }

    /// Regression (issue 20 item 6): the README's recipe (`--signal-every 10s --settle 2s`
    /// under a 2-minute load, ~125 s of run) gave 9 settled samples after a warm-up counted
    /// from the first settled sample, and fell back to RSS. Counted from the run's start, as
    /// for every series, it leaves 10, for any run from 122 s to 160 s.
    #[test]
    fn regression_issue20_item6_the_forced_gc_recipe_judges_settled_samples() {
        for end_s in [122.0, 125.4, 140.0, 159.0] {
            let judged = judge(&recipe_run(end_s), &defaults()).unwrap();
            assert_eq!(judged.series, "settled", "{end_s} s: {:?}", judged.note);
            assert!(judged.note.is_none());
            assert!(judged.analysis.samples_analysed >= MIN_SAMPLES, "{end_s} s");
        }
    }

    #[test]
    fn managed_heap_gates_are_relative_to_the_process() {
        let defaults = Thresholds::default();
        let mut rss = analyze::analyze(&[0.0, 1.0], &[1.0, 1.0], &[], &defaults);
        rss.trend = Some(TrendLine {
            t0: 0.0,
            v0: 60.0 * 1048576.0,
            t1: 1.0,
            v1: 60.0 * 1048576.0,
        });
        let t = relative_to_process(&defaults, &rss);
        // 2% of a 60 MiB process, not of the heap.
        assert_eq!(t.min_growth, MinGrowth::Bytes(0.02 * 60.0 * 1048576.0));
        // 1%/h of 60 MiB is 174.8 B/s, above the absolute 16 B/s.
        assert!((t.min_slope_bytes_per_s - 0.01 * 60.0 * 1048576.0 / 3600.0).abs() < 1e-9);
        assert_eq!(t.min_slope_pct_per_hour, 0.0);
        // No level to go by: the gates stay as they were.
        rss.trend = None;
        rss.start_bytes = f64::NAN;
        assert_eq!(relative_to_process(&defaults, &rss), defaults);
    }
}
