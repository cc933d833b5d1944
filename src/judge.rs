//! Which series of a run is judged, and judging it: the configured metric, or the settled
//! (post-signal, post-GC) samples when there are enough of them to decide. Heap-dump periods
//! are left out. The same function serves a live run and `memwatch report`, so the same
//! samples give the same verdict.

use crate::analyze::{self, Analysis, Thresholds, Verdict};
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

/// The analysis of the judged series, and that series' name (`rss`, `settled`, ...).
pub struct Judged {
    pub analysis: Analysis,
    pub series: String,
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
    let (settled_t, settled_v) = rec.settled(values);
    if !settled_t.is_empty() || cfg.settled == SettledUse::Always {
        if settled_t.is_empty() {
            return Err(Error::Usage(
                "--metric settled: the run has no settled samples (they come from --settle after a signal)".into(),
            ));
        }
        let a = analyze::analyze(&settled_t, &settled_v, &excluded, &cfg.thresholds);
        if cfg.settled == SettledUse::Always || a.verdict != Verdict::Inconclusive {
            return Ok(Judged {
                analysis: a,
                series: "settled".into(),
            });
        }
    }
    let a = analyze::analyze(&rec.time_s, values, &excluded, &cfg.thresholds);
    Ok(Judged {
        analysis: a,
        series: cfg.metric.name().into(),
    })
}
