//! The live status line on stderr: redrawn in place on a terminal, plain periodic lines
//! otherwise, nothing with --quiet. Reuses one buffer: no allocation per sample.

use crate::sample::Sample;
use crate::units::{Bytes, Delta, Elapsed, Rate};
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

/// The trend shown once there are enough samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LiveTrend {
    pub slope_bytes_per_s: f64,
    pub growing: bool,
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
        let start = *self.start_rss.get_or_insert(rss);
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
        self.line.clear();
        let _ = write!(
            self.line,
            "pid {}  RSS {}  {} since start",
            s.pid,
            Bytes(rss as f64),
            Delta(rss as f64 - start as f64)
        );
        if let Some(rate) = self.rate_last_minute(s.elapsed_s, rss as f64) {
            let _ = write!(self.line, "  {} (last min)", Rate(rate));
        }
        if let Some(t) = self.trend {
            let (word, colour) = if t.growing {
                ("growing", "\x1b[31m")
            } else {
                ("flat", "\x1b[32m")
            };
            let _ = write!(self.line, "  trend {}, ", Rate(t.slope_bytes_per_s));
            if self.mode.color() {
                let _ = write!(self.line, "{colour}{word}\x1b[0m");
            } else {
                self.line.push_str(word);
            }
        }
        let _ = write!(self.line, "  {samples} samples  {}", Elapsed(s.elapsed_s));
        if missed > 0 {
            let _ = write!(self.line, "  {missed} missed");
        }
        let mut err = std::io::stderr().lock();
        let _ = match self.mode {
            LiveMode::Terminal { .. } => write!(err, "\r\x1b[2K{}", self.line),
            _ => writeln!(err, "memwatch: {}", self.line),
        };
        let _ = err.flush();
        self.drawn = true;
    }

    /// Prints a one-off message on its own line (the live line is redrawn after it).
    pub fn note(&mut self, message: &str) {
        if self.mode == LiveMode::Off {
            return;
        }
        self.finish();
        eprintln!("memwatch: {message}");
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

/// The live line as a consumer of the sampler's ticks, with the trend of the run so far
/// recomputed every few seconds (only when the line is shown: the analysis allocates).
pub struct LiveSink {
    pub view: LiveView,
    next_trend: Option<Instant>,
}

impl LiveSink {
    pub fn new(mode: LiveMode) -> LiveSink {
        LiveSink {
            view: LiveView::new(mode),
            next_trend: None,
        }
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
            self.view.set_trend(trend(tick.recording));
            self.next_trend = Some(tick.now + Duration::from_secs(5).max(started.elapsed() * 100));
        }
        self.view.update(sample, tick.taken, tick.missed, tick.now);
        Ok(())
    }

    fn note(&mut self, message: &str) {
        self.view.note(message);
    }

    fn finish(&mut self) {
        self.view.finish();
    }
}

/// The trend for the live line: the full analysis of RSS so far, once it can decide.
fn trend(rec: &crate::recording::Recording) -> Option<LiveTrend> {
    use crate::analyze::{Thresholds, Verdict, analyze};
    let rss = rec.metric(crate::sample::Metric::Rss)?;
    let a = analyze(
        &rec.time_s,
        rss,
        &rec.dump_periods(),
        &Thresholds::default(),
    );
    (a.verdict != Verdict::Inconclusive).then_some(LiveTrend {
        slope_bytes_per_s: a.slope_bytes_per_s,
        growing: a.verdict == Verdict::Growing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::MemStatus;

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
