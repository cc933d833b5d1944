//! The sampling loop: samples the target on the deadline schedule until --duration, the
//! target's exit, or a stop request, handing each tick to its consumers (`SampleSink`s: the
//! CSV, the live line) as it comes.
//!
//! The loop only keeps time. Everything else that happens on ticks is a *part*
//! (`part::TickPart`, one file each: signals, heap-dump watching, the load, PSS, the
//! process tree, the runtime probe's readings, reaping orphans); `part::parts` lists them.
//! A part adds events and figures to a tick, may ask for a tick of its own (a settle
//! sample), may end the run or hold its end, and adds what it saw to the result.
//!
//! The sampler knows no reporter: consumers implement `SampleSink`.

mod dumps;
mod load;
pub mod machine;
pub mod part;
mod pss;
mod reaper;
mod runtime;
mod signals;
mod tree;

use crate::dump::Dump;
use crate::error::{Error, Result};
use crate::interrupt::{Interrupts, Wake, wait_until};
use crate::load::{LoadPlan, LoadSummary};
use crate::recording::{Event, Kept, Recording};
use crate::runtime::{Probe, ProbeEvent};
use crate::sample::members;
use crate::sample::reader::ReadError;
use crate::sample::{ManagedHeap, MemStatus, ProcReader, Sample, Sampling, Schedule};
use crate::signal::{SignalPlan, signal_name};
use crate::target::Target;
use part::{Flow, Shared, TickIn, TickPart};
use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One tick of the sampler, as every consumer sees it.
pub struct Tick<'a> {
    /// The samples of this tick: one per process watched, the target first.
    pub samples: &'a [Sample],
    /// With `--tree`: their sum, the series judged.
    pub total: Option<&'a Sample>,
    /// What happened at this tick (signals, dumps, settle samples, load start/end).
    pub events: &'a [Event],
    /// The run so far, for consumers that show a trend.
    pub recording: &'a Recording,
    /// Samples taken and deadlines missed so far.
    pub taken: u64,
    pub missed: u64,
    pub now: Instant,
}

/// What consumes samples as they come: the CSV, the live line (later a Prometheus file).
pub trait SampleSink {
    /// Takes one tick. A `BrokenPipe` error ends the run quietly (the reader went away).
    fn tick(&mut self, tick: &Tick<'_>) -> io::Result<()>;
    /// A one-off message for people (the live line shows it; files ignore it).
    fn note(&mut self, _message: &str) {}
    /// The run is over: leave the terminal clean.
    fn finish(&mut self) {}
}

/// Every consumer of a run.
pub type Sinks<'a> = [&'a mut dyn SampleSink];

fn note(sinks: &mut Sinks<'_>, message: &str) {
    for sink in sinks.iter_mut() {
        sink.note(message);
    }
}

/// Why sampling stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    Duration,
    TargetExited,
    Interrupted {
        signal: i32,
    },
    /// The --load command ended (and --cooldown passed).
    LoadFinished,
    /// The CSV reader went away (`--csv -` piped into `head`): not an error.
    OutputClosed,
    /// `q` was pressed in `--all`'s live view.
    Quit,
}

impl StopReason {
    pub fn describe(self) -> String {
        match self {
            StopReason::Duration => "duration reached".into(),
            StopReason::TargetExited => "target exited".into(),
            StopReason::Interrupted { signal } => format!("interrupted by {}", signal_name(signal)),
            StopReason::LoadFinished => "load finished".into(),
            StopReason::OutputClosed => "output closed".into(),
            StopReason::Quit => "q pressed".into(),
        }
    }

    /// The word in summary.json's `target.stop`.
    pub fn key(self) -> &'static str {
        match self {
            StopReason::Duration => "duration",
            StopReason::TargetExited => "target-exited",
            StopReason::Interrupted { .. } => "interrupted",
            StopReason::LoadFinished => "load-finished",
            StopReason::OutputClosed => "output-closed",
            StopReason::Quit => "quit",
        }
    }
}

/// What a run sampled, with what each part saw.
#[derive(Default)]
pub struct WatchResult {
    pub recording: Recording,
    pub missed: u64,
    pub stop: StopReason,
    pub dumps: Vec<Dump>,
    pub load: Option<LoadSummary>,
    /// What the runtime probe did (`--runtime`), with the time it was seen.
    pub runtime: Vec<(f64, ProbeEvent)>,
    /// With `--tree`: every process the tree had over the run, the target included, with its
    /// RSS when first and last read; those that grew most first.
    pub tree: Option<Vec<members::ProcessGrowth>>,
}

impl Default for StopReason {
    /// A run that sampled nothing ended because its target had.
    fn default() -> StopReason {
        StopReason::TargetExited
    }
}

/// How long the end of a run waits for a settle sample and unfinished heap dumps.
const END_WAIT_MAX: Duration = Duration::from_secs(120);

/// What the loop is to do, from the validated config.
pub struct Plan<'a> {
    pub sampling: &'a Sampling,
    pub signals: &'a SignalPlan,
    pub load: Option<&'a LoadPlan>,
    /// The metrics kept in memory for the analysis, the chart and the end summary.
    pub keep: Kept,
}

/// The run's end once it is reached: why, and when to stop waiting for the parts that
/// hold it (a settle sample, a heap dump being written).
type Finishing = Option<(StopReason, Instant)>;

/// This tick's samples (the target's first), their total and events: reused, no
/// allocation once the tree has been seen at its largest.
#[derive(Default)]
struct TickBuffers {
    samples: Vec<Sample>,
    total: Option<Sample>,
    events: Vec<Event>,
}

pub fn watch(
    target: &Target,
    reader: &mut ProcReader,
    first: MemStatus,
    run: &Plan<'_>,
    probe: Option<&mut Probe>,
    interrupts: &Interrupts,
    sinks: &mut Sinks<'_>,
) -> Result<WatchResult> {
    let t0 = Instant::now();
    let sampling = run.sampling;
    let capacity = sampling.duration.map_or(4096, |d| {
        (d.as_secs_f64() / sampling.interval.as_secs_f64()).min(1e7) as usize + 2
    });
    let mut rec = Recording::keeping(capacity, run.keep);
    let mut schedule = Schedule::new(t0, sampling.interval);
    let end = sampling.duration.map(|d| t0 + d);
    let mut shared = Shared::default();
    let mut parts = part::parts(run, target, probe, t0, &mut shared, sinks);
    let mut buf = TickBuffers::default();
    let mut taken: u64 = 0;
    let mut finishing: Finishing = None;
    // The first reading was taken to check the target, a while ago: take the first sample
    // now, at t0.
    let mut mem = reader.read_status().unwrap_or(first);
    let mut now = t0;
    let mut regular = true;
    let stop = loop {
        let elapsed = now.duration_since(t0);
        let mut t = TickIn::new(now, elapsed, target, reader, &mut buf, &mut shared, sinks);
        t.samples.push(first_sample(target.pid, elapsed, mem));
        let over = match ask_parts(&mut parts, &mut t)? {
            Ok(over) => over,
            Err(stop) => break stop,
        };
        rec.push(buf.total.as_ref().unwrap_or(&buf.samples[0]));
        rec.events.extend(buf.events.iter().cloned());
        taken += 1;
        let tick = Tick {
            samples: &buf.samples,
            total: buf.total.as_ref(),
            events: &buf.events,
            recording: &rec,
            taken,
            missed: schedule.missed(),
            now,
        };
        if let Some(reason) = hand_to_sinks(&tick, sinks)? {
            break reason;
        }
        if regular {
            schedule.advance(now);
        }
        let over = over.or_else(|| {
            end.filter(|&e| now + Duration::from_micros(500) >= e)
                .map(|_| StopReason::Duration)
        });
        if let Some(reason) = over
            && finishing.is_none()
        {
            if !end_begins(&mut parts, now, &shared) {
                break reason;
            }
            finishing = Some((reason, now + END_WAIT_MAX));
        }
        if let Some(reason) = still_finishing(finishing, &parts, now, &shared, sinks) {
            break reason;
        }
        let wake_at;
        (wake_at, regular) = next_wake(&schedule, &parts, end.filter(|_| finishing.is_none()));
        let wake = wait_until(wake_at, interrupts, target.pidfd()).map_err(|e| Error::Io {
            context: "waiting for the next sample".into(),
            source: e,
        })?;
        now = Instant::now();
        match wake {
            Wake::TargetExited => break StopReason::TargetExited,
            Wake::Interrupt => {
                let signal = interrupts.take().unwrap_or(libc::SIGINT);
                if let Some((reason, _)) = finishing {
                    break reason; // a second stop request: stop now
                }
                if !end_begins(&mut parts, now, &shared) {
                    break StopReason::Interrupted { signal };
                }
                finishing = Some((StopReason::Interrupted { signal }, now + END_WAIT_MAX));
                regular = false;
            }
            Wake::Deadline => {}
        }
        mem = match read_status(reader, target.pid)? {
            Some(m) => m,
            None => break StopReason::TargetExited,
        };
    };
    rec.finish();
    let mut result = WatchResult {
        recording: rec,
        missed: schedule.missed(),
        stop,
        ..WatchResult::default()
    };
    for p in parts {
        p.finish(&mut result);
    }
    Ok(result)
}

/// The target's sample of this tick, from its status; the parts fill in the rest.
fn first_sample(pid: i32, elapsed: Duration, mem: MemStatus) -> Sample {
    Sample {
        elapsed_s: elapsed.as_secs_f64(),
        unix_ms: unix_ms(),
        pid,
        mem,
        pss: None,
        uss: None,
        heap: ManagedHeap::default(),
    }
}

/// Every part's tick, in order: `Ok(over)` with why the run is over after this tick, if
/// a part says so; `Err(stop)` when a part stops the run now (nothing of the tick kept).
fn ask_parts(
    parts: &mut [Box<dyn TickPart + '_>],
    t: &mut TickIn<'_, '_>,
) -> Result<std::result::Result<Option<StopReason>, StopReason>> {
    let mut over = None;
    for p in parts.iter_mut() {
        match p.tick(t)? {
            Flow::Go => {}
            Flow::Over(reason) => over = over.or(Some(reason)),
            Flow::Stop(reason) => return Ok(Err(reason)),
        }
    }
    Ok(Ok(over))
}

/// While the end waits: why to stop now, once no part holds it or the wait is too long.
fn still_finishing(
    finishing: Finishing,
    parts: &[Box<dyn TickPart + '_>],
    now: Instant,
    shared: &Shared,
    sinks: &mut Sinks<'_>,
) -> Option<StopReason> {
    let (reason, give_up) = finishing?;
    if !parts.iter().any(|p| p.holds_end(now, shared)) {
        return Some(reason);
    }
    if now >= give_up {
        note(
            sinks,
            "stopped waiting for the settle sample or heap dumps: gave up after 2 minutes",
        );
        return Some(reason);
    }
    None
}

/// The next tick: the sampling deadline, or a part's own tick, or the end, if sooner;
/// with whether it is a regular (scheduled) tick.
fn next_wake(
    schedule: &Schedule,
    parts: &[Box<dyn TickPart + '_>],
    end: Option<Instant>,
) -> (Instant, bool) {
    let deadline = schedule.next_deadline();
    let sooner = parts
        .iter()
        .filter_map(|p| p.next_due())
        .chain(end)
        .filter(|&t| t < deadline)
        .min();
    match sooner {
        Some(t) => (t, false),
        None => (deadline, true),
    }
}

/// The run's end is reached: every part is told (each may hold it); true when one does.
fn end_begins(parts: &mut [Box<dyn TickPart + '_>], now: Instant, shared: &Shared) -> bool {
    let mut held = false;
    for p in parts.iter_mut() {
        held |= p.end_begins(now, shared); // every part is told, even after one holds
    }
    held
}

/// Hands the tick to every sink; a reader that went away ends the run quietly.
fn hand_to_sinks(tick: &Tick<'_>, sinks: &mut Sinks<'_>) -> Result<Option<StopReason>> {
    let mut closed = false;
    for sink in sinks.iter_mut() {
        match sink.tick(tick) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => closed = true,
            Err(e) => {
                return Err(Error::Io {
                    context: "cannot write the samples CSV".into(),
                    source: e,
                });
            }
        }
    }
    Ok(closed.then_some(StopReason::OutputClosed))
}

/// The target's status now; `None` once it has exited.
fn read_status(reader: &mut ProcReader, pid: i32) -> Result<Option<MemStatus>> {
    match reader.read_status() {
        Ok(m) => Ok(Some(m)),
        Err(ReadError::Exited | ReadError::NoMemoryMap) => Ok(None),
        Err(ReadError::Malformed { file, line }) => Err(Error::Parse {
            path: format!("/proc/{pid}/{file}").into(),
            message: format!("line {line} is malformed"),
        }),
        Err(ReadError::Io(e)) => Err(Error::Io {
            context: format!("cannot read /proc/{pid}/status"),
            source: e,
        }),
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
