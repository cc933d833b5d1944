//! The sampling loop: samples the target on the deadline schedule until --duration, the
//! target's exit, or a stop request, streaming each sample to its consumers as it comes.

use crate::analyze::{Thresholds, Verdict, analyze};
use crate::config::Sampling;
use crate::error::{Error, Result};
use crate::interrupt::{Interrupts, Wake, wait_until};
use crate::recording::{Event, Recording};
use crate::report::csv::CsvWriter;
use crate::report::live::{LiveTrend, LiveView};
use crate::sample::Metric;
use crate::sample::reader::ReadError;
use crate::sample::{MemStatus, ProcReader, Sample, Schedule};
use crate::target::Target;
use std::io::{self, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Why sampling stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    Duration,
    TargetExited,
    Interrupted {
        signal: i32,
    },
    /// The CSV reader went away (`--csv -` piped into `head`): not an error.
    OutputClosed,
}

pub struct WatchResult {
    pub recording: Recording,
    pub missed: u64,
    pub stop: StopReason,
}

/// The streaming consumers of samples.
pub struct Sinks {
    pub csv: CsvWriter<Box<dyn Write>>,
    pub live: LiveView,
}

pub fn watch(
    target: &Target,
    reader: &mut ProcReader,
    first: MemStatus,
    sampling: &Sampling,
    interrupts: &Interrupts,
    sinks: &mut Sinks,
) -> Result<WatchResult> {
    let t0 = Instant::now();
    let capacity = sampling.duration.map_or(4096, |d| {
        (d.as_secs_f64() / sampling.interval.as_secs_f64()).min(1e7) as usize + 2
    });
    let mut rec = Recording::with_capacity(capacity);
    let mut schedule = Schedule::new(t0, sampling.interval);
    let end = sampling.duration.map(|d| t0 + d);
    let mut next_pss = t0;
    let tick_events: Vec<Event> = Vec::new();
    let mut taken: u64 = 0;
    let mut next_trend = t0 + Duration::from_secs(5);

    let mut mem = first;
    let mut now = t0;
    let stop = loop {
        let mut sample = Sample {
            elapsed_s: now.duration_since(t0).as_secs_f64(),
            unix_ms: unix_ms(),
            pid: target.pid,
            mem,
            pss: None,
            uss: None,
        };
        if let Some(every) = sampling.pss_interval
            && now >= next_pss
        {
            if let Ok(Some((pss, uss))) = reader.read_smaps() {
                sample.pss = Some(pss);
                sample.uss = Some(uss);
            }
            next_pss = now + every;
        }
        rec.push(&sample);
        taken += 1;
        if let Err(e) = sinks.csv.write(&sample, &tick_events) {
            if e.kind() == io::ErrorKind::BrokenPipe {
                break StopReason::OutputClosed;
            }
            return Err(Error::Io {
                context: "cannot write the samples CSV".into(),
                source: e,
            });
        }
        if sinks.live.is_on() && now >= next_trend {
            // Periodic, not per sample: the analyser allocates. Slower on long runs so it
            // never costs more than ~1% of the time.
            let started = Instant::now();
            sinks.live.set_trend(live_trend(&rec));
            next_trend = now + Duration::from_secs(5).max(started.elapsed() * 100);
        }
        sinks.live.update(&sample, taken, schedule.missed(), now);
        schedule.advance(now);

        let deadline = schedule.next_deadline();
        let (wake_at, last) = match end {
            Some(end) if deadline > end + Duration::from_micros(500) => (end, true),
            _ => (deadline, false),
        };
        match wait_until(wake_at, interrupts, target.pidfd()).map_err(|e| Error::Io {
            context: "waiting for the next sample".into(),
            source: e,
        })? {
            Wake::Interrupt => {
                break StopReason::Interrupted {
                    signal: interrupts.take().unwrap_or(libc::SIGINT),
                };
            }
            Wake::TargetExited => break StopReason::TargetExited,
            Wake::Deadline if last => break StopReason::Duration,
            Wake::Deadline => {}
        }
        now = Instant::now();
        mem = match reader.read_status() {
            Ok(m) => m,
            Err(ReadError::Exited | ReadError::NoMemoryMap) => break StopReason::TargetExited,
            Err(ReadError::Malformed { file, line }) => {
                return Err(Error::Parse {
                    path: format!("/proc/{}/{file}", target.pid).into(),
                    message: format!("line {line} is malformed"),
                });
            }
            Err(ReadError::Io(e)) => {
                return Err(Error::Io {
                    context: format!("cannot read /proc/{}/status", target.pid),
                    source: e,
                });
            }
        };
    };
    rec.finish();
    Ok(WatchResult {
        recording: rec,
        missed: schedule.missed(),
        stop,
    })
}

/// The trend for the live line: the full analysis of RSS so far, once it can decide.
fn live_trend(rec: &Recording) -> Option<LiveTrend> {
    let rss = rec.metric(Metric::Rss)?;
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

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
