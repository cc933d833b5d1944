//! The live status line on stderr: redrawn in place on a terminal, plain periodic lines
//! otherwise, nothing with --quiet. Reuses one buffer: no allocation per sample.

use crate::analyze::{Analysis, Headline, Verdict};
use crate::judge::{AnalysisConfig, judge};
use crate::recording::Recording;
use crate::sample::{Metric, Sample};
use crate::units::{Bytes, Count, Delta, Elapsed, Rate};
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiveMode {
    /// Redraw one line in place; colour unless NO_COLOR is set.
    Terminal {
        color: bool,
    },
    /// A plain line every so often (logs, CI).
    Plain {
        every: Duration,
    },
    Off,
}

impl LiveMode {
    /// Picks the mode for stderr as it is now.
    pub fn detect(quiet: bool) -> LiveMode {
        if quiet {
            LiveMode::Off
        } else if std::io::stderr().is_terminal() {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
            LiveMode::Terminal {
                color: !no_color && !dumb,
            }
        } else {
            LiveMode::Plain {
                every: Duration::from_secs(10),
            }
        }
    }

    pub fn color(self) -> bool {
        matches!(self, LiveMode::Terminal { color: true })
    }
}

/// The verdict so far, shown once there are enough samples: the analysis' own headline
/// (`growing (linear): floor +2.03 MiB/s, p < 0.001`, `stable (plateau)`), so the live
/// line words it as the chart and the end summary do, and the series it judged when that is
/// not RSS (the line's own figures).
#[derive(Clone, Debug, PartialEq)]
pub struct LiveTrend {
    pub headline: Headline,
    /// `None` for RSS; `heap-after-gc`, `settled`, `pss`, ...
    pub series: Option<String>,
}

impl From<&Analysis> for LiveTrend {
    fn from(a: &Analysis) -> LiveTrend {
        LiveTrend {
            headline: a.headline(),
            series: None,
        }
    }
}

const HISTORY: usize = 61;

pub struct LiveView {
    mode: LiveMode,
    line: String,
    last_draw: Option<Instant>,
    start_rss: Option<u64>,
    /// (elapsed_s, rss) about one second apart, for the rate over the last minute.
    history: [(f64, f64); HISTORY],
    history_len: usize,
    history_next: usize,
    trend: Option<LiveTrend>,
    drawn: bool,
    /// With `--tree`: the processes summed in the figures shown (the target included).
    processes: usize,
    /// What the figure is: `RSS`, or a tree's `total`, or the `cgroup`.
    label: &'static str,
    /// With `--tree`: the process holding the most (PID, RSS).
    largest: Option<(i32, u64)>,
}

impl LiveView {
    pub fn new(mode: LiveMode) -> LiveView {
        LiveView {
            mode,
            line: String::with_capacity(256),
            last_draw: None,
            start_rss: None,
            history: [(0.0, 0.0); HISTORY],
            history_len: 0,
            history_next: 0,
            trend: None,
            drawn: false,
            processes: 1,
            label: "RSS",
            largest: None,
        }
    }

    pub fn is_on(&self) -> bool {
        self.mode != LiveMode::Off
    }

    pub fn set_trend(&mut self, trend: Option<LiveTrend>) {
        self.trend = trend;
    }

    /// Records a sample and redraws when it is time to.
    pub fn update(&mut self, s: &Sample, samples: u64, missed: u64, now: Instant) {
        let rss = s.mem.rss;
        self.start_rss.get_or_insert(rss);
        self.remember(s.elapsed_s, rss as f64);
        let every = match self.mode {
            LiveMode::Off => return,
            LiveMode::Terminal { .. } => Duration::from_millis(100),
            LiveMode::Plain { every } => every,
        };
        if self
            .last_draw
            .is_some_and(|t| now.duration_since(t) < every)
        {
            return;
        }
        self.last_draw = Some(now);
        self.compose(s, samples, missed);
        let mut err = std::io::stderr().lock();
        let _ = match self.mode {
            LiveMode::Terminal { .. } => write!(err, "\r\x1b[2K{}", self.line),
            _ => writeln!(err, "memwatch: {}", self.line),
        };
        let _ = err.flush();
        self.drawn = true;
    }

    /// Writes the status line for `s` into `self.line` (no allocation once it has grown).
    fn compose(&mut self, s: &Sample, samples: u64, missed: u64) {
        let rss = s.mem.rss;
        let start = self.start_rss.unwrap_or(rss);
        self.line.clear();
        let _ = write!(self.line, "pid {}", s.pid);
        if self.processes > 1 {
            let _ = write!(self.line, " + {} it started", self.processes - 1);
        }
        // RSS as it moves (start-up and GC peaks included), then the verdict on the floor:
        // two different things, each named.
        let _ = write!(
            self.line,
            "  {} {}  {} since start",
            self.label,
            Bytes(rss as f64),
            Delta(rss as f64 - start as f64)
        );
        if let Some((pid, largest)) = self.largest {
            let _ = write!(self.line, "  largest pid {pid} {}", Bytes(largest as f64));
        }
        if let Some(rate) = self.rate_last_minute(s.elapsed_s, rss as f64) {
            let _ = write!(self.line, ", {} in the last min", Rate(rate));
        }
        if let Some(t) = &self.trend {
            let colour = match t.headline.verdict {
                Verdict::Growing => "\x1b[31m",
                _ => "\x1b[32m",
            };
            self.line.push_str("  ");
            if let Some(series) = &t.series {
                let _ = write!(self.line, "{series} ");
            }
            self.line.push_str("floor so far: ");
            if self.mode.color() {
                let _ = write!(self.line, "{colour}{}\x1b[0m", t.headline);
            } else {
                let _ = write!(self.line, "{}", t.headline);
            }
        }
        let _ = write!(
            self.line,
            "  {}  {}",
            Count(samples, "sample"),
            Elapsed(s.elapsed_s)
        );
        if missed > 0 {
            let _ = write!(self.line, "  {missed} missed");
        }
    }

    /// Prints a one-off message on its own line (the live line is redrawn after it).
    pub fn note(&mut self, message: &str) {
        if self.mode == LiveMode::Off {
            return;
        }
        self.finish();
        eprintln!("memwatch: {}", crate::units::Printable(message));
        self.last_draw = None;
    }

    /// Erases the live line so the end summary starts on a clean line.
    pub fn finish(&mut self) {
        if self.drawn && matches!(self.mode, LiveMode::Terminal { .. }) {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
        self.drawn = false;
    }

    fn remember(&mut self, t: f64, rss: f64) {
        let last = (self.history_next + HISTORY - 1) % HISTORY;
        if self.history_len > 0 && t - self.history[last].0 < 1.0 {
            return;
        }
        self.history[self.history_next] = (t, rss);
        self.history_next = (self.history_next + 1) % HISTORY;
        self.history_len = (self.history_len + 1).min(HISTORY);
    }

    /// Bytes per second over (up to) the last minute; None before a second has passed.
    fn rate_last_minute(&self, t: f64, rss: f64) -> Option<f64> {
        if self.history_len == 0 {
            return None;
        }
        let oldest = (self.history_next + HISTORY - self.history_len) % HISTORY;
        let (t0, rss0) = self.history[oldest];
        (t - t0 >= 1.0).then(|| (rss - rss0) / (t - t0))
    }
}

/// The live line as a consumer of the sampler's ticks, with the verdict of the run so far
/// recomputed every few seconds (only when the line is shown: the analysis allocates), by
/// the judge and the gates the end of the run uses.
pub struct LiveSink {
    pub view: LiveView,
    next_trend: Option<Instant>,
    analysis: AnalysisConfig,
    /// The series judged: the figure shown is its value (a tree's PSS total, a cgroup's
    /// working set), the last known one while it is unknown.
    judged: crate::sampler::JudgedSeries,
    shown: Option<u64>,
}

impl LiveSink {
    pub fn new(mode: LiveMode, analysis: AnalysisConfig) -> LiveSink {
        LiveSink {
            view: LiveView::new(mode),
            next_trend: None,
            analysis,
            judged: crate::sampler::JudgedSeries::Target,
            shown: None,
        }
    }

    /// Shows the judged series' value, named `label` (`total`, `cgroup`), not RSS.
    pub fn showing(mut self, label: &'static str, judged: crate::sampler::JudgedSeries) -> Self {
        self.view.label = label;
        self.judged = judged;
        self
    }
}

impl crate::sampler::SampleSink for LiveSink {
    fn tick(&mut self, tick: &crate::sampler::Tick<'_>) -> std::io::Result<()> {
        let Some(sample) = tick.samples.first() else {
            return Ok(());
        };
        let due = *self
            .next_trend
            .get_or_insert(tick.now + Duration::from_secs(5));
        if self.view.is_on() && tick.now >= due {
            // Slower on long runs, so it never costs more than ~1% of the time.
            let started = Instant::now();
            self.view.set_trend(trend(tick.recording, &self.analysis));
            self.next_trend = Some(tick.now + Duration::from_secs(5).max(started.elapsed() * 100));
        }
        // With --tree the figures are the tree's total, judged as the end judges it.
        self.view.processes = tick.samples.len();
        let mut shown = *tick.total.unwrap_or(sample);
        let judged = match self.judged {
            crate::sampler::JudgedSeries::Cgroup => tick.cgroup.map(|c| c.working_set),
            crate::sampler::JudgedSeries::Target => self.analysis.metric.of(&shown),
        };
        if self.view.label != "RSS" {
            // Until the total is known (every process's PSS read once), nothing is shown.
            self.shown = judged.or(self.shown);
            let Some(value) = self.shown else {
                return Ok(());
            };
            shown.mem.rss = value;
        }
        self.view.largest = (tick.samples.len() > 1)
            .then(|| tick.samples.iter().max_by_key(|s| s.mem.rss))
            .flatten()
            .map(|s| (s.pid, s.mem.rss));
        self.view.update(&shown, tick.taken, tick.missed, tick.now);
        Ok(())
    }

    fn note(&mut self, message: &str) {
        self.view.note(message);
    }

    fn finish(&mut self) {
        self.view.finish();
    }
}

/// The verdict for the live line: the run so far judged as its end will be, once it can
/// decide.
fn trend(rec: &Recording, analysis: &AnalysisConfig) -> Option<LiveTrend> {
    let judged = judge(rec, analysis).ok()?;
    let a = &judged.analysis;
    (a.verdict != Verdict::Inconclusive).then(|| LiveTrend {
        headline: a.headline(),
        series: (judged.series != Metric::Rss.name()).then_some(judged.series),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::MemStatus;

    fn sample(t: f64, rss: u64) -> Sample {
        Sample {
            elapsed_s: t,
            pid: 42,
            mem: MemStatus {
                rss,
                ..MemStatus::default()
            },
            ..Sample::default()
        }
    }

    /// Regression (issue 9 item 14): the first live line said "1 samples".
    #[test]
    fn regression_live_line_says_1_sample() {
        let mut v = LiveView::new(LiveMode::Off);
        let s = sample(0.0, 212_992);
        v.update(&s, 1, 0, Instant::now());
        v.compose(&s, 1, 0);
        assert_eq!(
            v.line,
            "pid 42  RSS 208 KiB  +0 B since start  1 sample  0 s"
        );
    }

    /// Regression (issue 9 item 13): the live line said `trend +11.5 MiB/min, flat`: the
    /// slope and the word came from different places. Both now come from the analysis'
    /// headline, in the units every other output uses.
    #[test]
    fn regression_live_line_trend_agrees_with_verdict() {
        use crate::analyze::{Thresholds, analyze};
        let mut v = LiveView::new(LiveMode::Plain {
            every: Duration::from_secs(10),
        });
        let t: Vec<f64> = (0..601).map(f64::from).collect();
        // rising fast, but by less than the 2% minimum growth: stable (flat)
        let flat: Vec<f64> = t.iter().map(|t| 1e10 + 1e5 * t).collect();
        let a = analyze(&t, &flat, &[], &Thresholds::default());
        assert_eq!(a.verdict, Verdict::Stable);
        v.set_trend(Some(LiveTrend::from(&a)));
        let s = sample(600.0, 10_060_000_000);
        v.update(&s, 601, 0, Instant::now());
        v.compose(&s, 601, 0);
        assert!(
            v.line.contains(&format!(
                "floor so far: stable ({})  601 samples  10 min",
                a.pattern
            )),
            "{}",
            v.line
        );
        assert!(!v.line.contains("trend"), "{}", v.line);
        // growing: the slope in the same words as the chart title
        let leak: Vec<f64> = t.iter().map(|t| 1e8 + 1e4 * t).collect();
        let a = analyze(&t, &leak, &[], &Thresholds::default());
        v.set_trend(Some(LiveTrend::from(&a)));
        v.compose(&s, 601, 2);
        assert!(
            v.line.ends_with(
                "floor so far: growing (linear): floor +586 KiB/min, p < 0.001  601 samples  10 min  2 missed"
            ),
            "{}",
            v.line
        );
    }

    /// The live line's "so far" is the end's verdict on the samples so far: the run's own
    /// gates and the series the end judges (it judged RSS with the default gates, so it
    /// could say growing where the end said stable).
    #[test]
    #[allow(clippy::unwrap_used)]
    fn live_verdict_is_judged_as_the_end_judges() {
        use crate::analyze::{MinGrowth, Thresholds};
        use crate::judge::SettledUse;
        let mut rec = Recording::default();
        let mut row = [f64::NAN; Metric::COUNT];
        for i in 0..600 {
            let t = f64::from(i);
            row[Metric::Rss.index()] = 100e6 + 10e3 * t; // +4.8% after the warm-up
            row[Metric::Pss.index()] = 50e6;
            rec.push_row(t, &row);
        }
        let config = |metric, min_growth| AnalysisConfig {
            metric,
            settled: SettledUse::Auto,
            thresholds: Thresholds {
                min_growth,
                ..Thresholds::default()
            },
        };
        let growing = trend(&rec, &config(Metric::Rss, MinGrowth::Percent(2.0))).unwrap();
        assert_eq!(growing.headline.verdict, Verdict::Growing);
        assert_eq!(growing.series, None);
        let gated = trend(&rec, &config(Metric::Rss, MinGrowth::Percent(10.0))).unwrap();
        assert_eq!(gated.headline.verdict, Verdict::Stable);
        let pss = trend(&rec, &config(Metric::Pss, MinGrowth::Percent(2.0))).unwrap();
        assert_eq!(pss.headline.verdict, Verdict::Stable);
        let mut v = LiveView::new(LiveMode::Off);
        v.set_trend(Some(pss));
        v.compose(&sample(599.0, 106_000_000), 600, 0);
        assert!(
            v.line.contains("pss floor so far: stable (flat)"),
            "{}",
            v.line
        );
    }

    #[test]
    fn rate_covers_the_last_minute_only() {
        let mut v = LiveView::new(LiveMode::Off);
        let now = Instant::now();
        // 1 KiB/s for 100 s, then flat for 70 s: the last-minute rate is 0.
        for i in 0..=170u64 {
            let rss = 1_000_000 + 1024 * i.min(100);
            let s = Sample {
                elapsed_s: i as f64,
                mem: MemStatus {
                    rss,
                    ..MemStatus::default()
                },
                ..Sample::default()
            };
            v.update(&s, i + 1, 0, now);
        }
        assert_eq!(
            v.rate_last_minute(170.0, (1_000_000 + 1024 * 100) as f64),
            Some(0.0)
        );
        let mut w = LiveView::new(LiveMode::Off);
        for i in 0..=30u64 {
            let s = Sample {
                elapsed_s: i as f64,
                mem: MemStatus {
                    rss: 2048 * i,
                    ..MemStatus::default()
                },
                ..Sample::default()
            };
            w.update(&s, i + 1, 0, now);
        }
        assert_eq!(w.rate_last_minute(30.0, 2048.0 * 30.0), Some(2048.0));
    }
}
