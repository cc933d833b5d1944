//! The sampling loop: samples the target on the deadline schedule until --duration, the
//! target's exit, or a stop request, handing each tick to its consumers (`SampleSink`s: the
//! CSV, the live line) as it comes. Signals are sent on sample ticks; a `--settle` sample and
//! the end-of-run wait for heap dumps add ticks of their own.
//!
//! The sampler knows no reporter: consumers implement `SampleSink`.

use crate::dump::{Dump, DumpNews, DumpWatcher, free_bytes};
use crate::error::{Error, Result};
use crate::interrupt::{Interrupts, Wake, wait_until};
use crate::load::{LoadPlan, LoadRunner, LoadSummary};
use crate::recording::{DUMP_FAILED, Event, EventKind, Kept, Recording};
use crate::runtime::{Probe, ProbeEvent, Reading};
use crate::sample::members::{self, Members};
use crate::sample::reader::ReadError;
use crate::sample::{ManagedHeap, MemStatus, ProcReader, Sample, Sampling, Schedule};
use crate::signal::{SignalPlan, SignalSchedule, is_caught, signal_name};
use crate::target::Target;
use std::io;
use std::path::Path;
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
}

impl StopReason {
    pub fn describe(self) -> String {
        match self {
            StopReason::Duration => "duration reached".into(),
            StopReason::TargetExited => "target exited".into(),
            StopReason::Interrupted { signal } => format!("interrupted by {}", signal_name(signal)),
            StopReason::LoadFinished => "load finished".into(),
            StopReason::OutputClosed => "output closed".into(),
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
        }
    }
}

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

/// How long a spawned command may take to install its signal handler.
const HANDLER_GRACE: Duration = Duration::from_secs(5);
/// How long the end of a run waits for a settle sample and unfinished heap dumps.
const END_WAIT_MAX: Duration = Duration::from_secs(120);
/// After the last signal, how long to look for a dump it may start.
const DUMP_APPEAR: Duration = Duration::from_secs(1);
const DUMP_SCAN_EVERY: Duration = Duration::from_millis(250);
/// How often the orphans of a spawned command that have exited are reaped.
const REAP_EVERY: Duration = Duration::from_secs(1);

/// Signalling state across ticks.
struct Signaller<'a> {
    plan: &'a SignalPlan,
    schedule: SignalSchedule,
    /// The target was seen to catch the signal (or --force-signal).
    caught: bool,
    /// When a due signal first waited for the handler (spawned commands start without one).
    waiting_since: Option<Instant>,
    settle_due: Option<Instant>,
    last_sent: Option<Instant>,
    held_note: bool,
}

/// What the loop is to do, from the validated config.
pub struct Plan<'a> {
    pub sampling: &'a Sampling,
    pub signals: &'a SignalPlan,
    pub load: Option<&'a LoadPlan>,
    /// The metrics kept in memory for the analysis, the chart and the end summary.
    pub keep: Kept,
}

pub fn watch(
    target: &Target,
    reader: &mut ProcReader,
    first: MemStatus,
    run: &Plan<'_>,
    mut probe: Option<&mut Probe>,
    interrupts: &Interrupts,
    sinks: &mut Sinks<'_>,
) -> Result<WatchResult> {
    let mut runtime_events: Vec<(f64, ProbeEvent)> = Vec::new();
    let (sampling, plan) = (run.sampling, run.signals);
    let t0 = Instant::now();
    let capacity = sampling.duration.map_or(4096, |d| {
        (d.as_secs_f64() / sampling.interval.as_secs_f64()).min(1e7) as usize + 2
    });
    let mut rec = Recording::keeping(capacity, run.keep);
    let mut schedule = Schedule::new(t0, sampling.interval);
    let end = sampling.duration.map(|d| t0 + d);
    let mut next_pss = t0;
    let mut next_scan = t0;
    let mut next_reap = t0 + REAP_EVERY;
    let mut tick_events: Vec<Event> = Vec::with_capacity(4);
    // --tree: the target's descendants, and this tick's samples (reused, no allocation once
    // the tree has been seen at its largest).
    let mut tree = sampling.tree.then(|| {
        Members::new(
            target.pid,
            &target.name,
            Path::new("/proc"),
            sampling.pss_interval.is_some(),
            t0,
        )
    });
    let mut member_samples: Vec<Sample> = Vec::new();
    let mut tick_samples: Vec<Sample> = Vec::new();
    let mut taken: u64 = 0;
    let mut dumps = dump_watcher(target, plan, sinks);
    let mut load = run.load.map(|p| LoadRunner::new(p, t0));
    let mut load_done = false;
    let mut sig = Signaller {
        plan,
        schedule: SignalSchedule::new(plan.every, &plan.at, plan.at_end),
        caught: plan.force || !target.is_child(), // attached targets are checked before sampling
        waiting_since: None,
        settle_due: None,
        last_sent: None,
        held_note: false,
    };
    // After the run's end: why it ended, the signal still to send, and how long to wait.
    let mut finishing: Option<(StopReason, Instant)> = None;
    let mut send_end_signal = false;

    // The first reading was taken to check the target, a while ago: take the first sample
    // now, at t0 (and its PSS/USS with it).
    let mut mem = reader.read_status().unwrap_or(first);
    // PSS/USS are read right after the status they go with (a churning process moves
    // between two reads far apart in the tick).
    let mut read_smaps_if_due = |now: Instant, reader: &mut ProcReader| {
        let every = sampling.pss_interval?;
        if now < next_pss {
            return None;
        }
        next_pss = now + every;
        reader.read_smaps().ok().flatten()
    };
    let mut smaps = read_smaps_if_due(t0, reader);
    let mut now = t0;
    let mut regular = true;
    let stop = loop {
        tick_events.clear();
        let elapsed = now.duration_since(t0);
        if sig.settle_due.is_some_and(|t| now >= t) {
            sig.settle_due = None;
            tick_events.push(Event {
                elapsed_s: elapsed.as_secs_f64(),
                kind: EventKind::Settled,
            });
        }
        let due = if send_end_signal {
            send_end_signal = false;
            true
        } else if finishing.is_none() {
            sig.schedule.due(elapsed) || sig.waiting_since.is_some()
        } else {
            false // the run is ending: only the --signal-at-end signal
        };
        if due {
            match sig.try_send(target, reader, dumps.as_ref(), now, sinks)? {
                Sent::Yes => {
                    let name = signal_name(plan.signal);
                    tick_events.push(Event {
                        elapsed_s: elapsed.as_secs_f64(),
                        kind: EventKind::Signal(name),
                    });
                }
                Sent::No => {}
                Sent::TargetGone => break StopReason::TargetExited,
            }
        }
        if let Some(w) = dumps.as_mut()
            && now >= next_scan
        {
            for news in w.scan(elapsed.as_secs_f64(), now) {
                let kind = match news {
                    DumpNews::Started(p) => EventKind::DumpStart(p.display().to_string()),
                    DumpNews::Completed(p) => EventKind::Dump(p.display().to_string()),
                };
                tick_events.push(Event {
                    elapsed_s: elapsed.as_secs_f64(),
                    kind,
                });
            }
            next_scan = now + DUMP_SCAN_EVERY;
        }

        if let Some(l) = load.as_mut()
            && !load_done
        {
            load_done = l
                .tick(now, elapsed.as_secs_f64(), &mut tick_events)
                .map_err(|e| Error::Io {
                    context: "cannot start the --load command".into(),
                    source: e,
                })?;
        }

        if target.is_child() && now >= next_reap {
            let load_pid = load.as_ref().and_then(LoadRunner::pid).unwrap_or(0);
            crate::tree::reap_orphans(&[target.pid, load_pid]);
            next_reap = now + REAP_EVERY;
        }

        let mut sample = Sample {
            elapsed_s: elapsed.as_secs_f64(),
            unix_ms: unix_ms(),
            pid: target.pid,
            mem,
            pss: None,
            uss: None,
            heap: ManagedHeap::default(),
        };
        if let Some(p) = probe.as_deref_mut() {
            let at = elapsed.as_secs_f64();
            let mut notes = Vec::new();
            p.drain(|r| absorb(r, at, &mut sample.heap, &mut tick_events, &mut notes));
            for (text, event) in notes {
                if !text.is_empty() {
                    note(sinks, &text);
                }
                runtime_events.push((at, event));
            }
        }
        if let Some((pss, uss)) = smaps.take() {
            sample.pss = Some(pss);
            sample.uss = Some(uss);
        }
        let total = tree.as_mut().map(|m| {
            m.sample(now, &sample, sample.pss.is_some(), &mut member_samples);
            tick_samples.clear();
            tick_samples.push(sample);
            tick_samples.extend_from_slice(&member_samples);
            members::total(&tick_samples)
        });
        rec.push(total.as_ref().unwrap_or(&sample));
        rec.events.extend(tick_events.iter().cloned());
        taken += 1;
        let tick = Tick {
            samples: if total.is_some() {
                &tick_samples
            } else {
                std::slice::from_ref(&sample)
            },
            total: total.as_ref(),
            events: &tick_events,
            recording: &rec,
            taken,
            missed: schedule.missed(),
            now,
        };
        let mut closed = false;
        for sink in sinks.iter_mut() {
            match sink.tick(&tick) {
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
        if closed {
            break StopReason::OutputClosed;
        }
        if regular {
            schedule.advance(now);
        }

        let signalled_now = sig.last_sent == Some(now);
        let over = if load_done {
            Some(StopReason::LoadFinished)
        } else if end.is_some_and(|e| now + Duration::from_micros(500) >= e) {
            Some(StopReason::Duration)
        } else {
            None
        };
        if let (None, Some(reason)) = (finishing, over) {
            match sig.begin_end(&dumps, signalled_now, now) {
                EndStep::Stop => break reason,
                EndStep::Wait { send } => {
                    finishing = Some((reason, now + END_WAIT_MAX));
                    send_end_signal = send;
                }
            }
        }
        if let Some((reason, give_up)) = finishing
            && !send_end_signal
        {
            let dumps_busy = dumps.as_ref().is_some_and(|w| {
                w.in_progress() > 0
                    || sig
                        .last_sent
                        .is_some_and(|t| now.duration_since(t) < DUMP_APPEAR)
            });
            if sig.settle_due.is_none() && !dumps_busy {
                break reason;
            }
            if now >= give_up {
                note(
                    sinks,
                    "stopped waiting for the settle sample or heap dumps: gave up after 2 minutes",
                );
                break reason;
            }
        }

        // The next tick: the sampling deadline, or the settle sample, or the end, if sooner.
        let deadline = schedule.next_deadline();
        let mut wake_at = deadline;
        regular = true;
        if let Some(s) = sig.settle_due
            && s < wake_at
        {
            wake_at = s;
            regular = false;
        }
        if finishing.is_none()
            && let Some(end) = end
            && end < wake_at
        {
            wake_at = end;
            regular = false;
        }
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
                match sig.begin_end(&dumps, false, now) {
                    EndStep::Stop => break StopReason::Interrupted { signal },
                    EndStep::Wait { send } => {
                        finishing = Some((StopReason::Interrupted { signal }, now + END_WAIT_MAX));
                        send_end_signal = send;
                        regular = false;
                    }
                }
            }
            Wake::Deadline => {}
        }
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
        smaps = read_smaps_if_due(now, reader);
    };
    rec.finish();
    let dumps = dumps.map(|w| w.dumps).unwrap_or_default();
    let load = load.map(LoadRunner::finish);
    Ok(WatchResult {
        recording: rec,
        missed: schedule.missed(),
        stop,
        dumps,
        load,
        runtime: runtime_events,
        tree: tree.map(Members::into_growth),
    })
}

enum Sent {
    Yes,
    No,
    TargetGone,
}

/// What the end of the run needs before sampling stops.
enum EndStep {
    Stop,
    /// Keep sampling until the settle sample and any heap dump are done; `send`: the
    /// --signal-at-end signal goes out on the next tick.
    Wait {
        send: bool,
    },
}

impl Signaller<'_> {
    /// `--duration` is a promise to CI: the run ends on time, and only an explicit
    /// `--signal-at-end` waits (at most `END_WAIT_MAX`) for its settle sample and heap dump.
    fn begin_end(&self, dumps: &Option<DumpWatcher>, signalled_now: bool, now: Instant) -> EndStep {
        if !self.plan.at_end {
            return EndStep::Stop;
        }
        let send = !signalled_now;
        let dump_pending = dumps.as_ref().is_some_and(|w| {
            w.in_progress() > 0
                || self
                    .last_sent
                    .is_some_and(|t| now.duration_since(t) < DUMP_APPEAR)
        });
        if send || self.settle_due.is_some() || dump_pending {
            EndStep::Wait { send }
        } else {
            EndStep::Stop
        }
    }

    /// Sends the signal if it is safe: the target catches it, no dump is being written, and
    /// the dump limits (--max-dumps, --min-free) allow another.
    fn try_send(
        &mut self,
        target: &Target,
        reader: &mut ProcReader,
        dumps: Option<&DumpWatcher>,
        now: Instant,
        sinks: &mut Sinks<'_>,
    ) -> Result<Sent> {
        let name = signal_name(self.plan.signal);
        if !self.caught {
            let mask = match reader.read_caught_signals() {
                Ok(mask) => mask,
                Err(ReadError::Exited | ReadError::NoMemoryMap) => return Ok(Sent::TargetGone),
                Err(_) => 0,
            };
            if is_caught(mask, self.plan.signal) {
                self.caught = true;
                self.waiting_since = None;
            } else {
                let since = *self.waiting_since.get_or_insert(now);
                if now.duration_since(since) < HANDLER_GRACE {
                    return Ok(Sent::No); // asked again next tick
                }
                return Err(Error::SignalNotCaught {
                    pid: target.pid,
                    name: target.name.clone(),
                    signal: self.plan.signal,
                });
            }
        }
        if let Some(w) = dumps {
            let held = if w.in_progress() > 0 {
                Some("a heap dump is still being written: skipped a signal".to_string())
            } else if !w.dumps.is_empty() && w.dumps.len() >= self.plan.max_dumps as usize {
                Some(format!(
                    "stopped signalling: --max-dumps {} reached",
                    self.plan.max_dumps
                ))
            } else if !w.dumps.is_empty()
                && free_bytes(w.dir())
                    .is_some_and(|free| free < self.plan.min_free.saturating_add(w.largest()))
            {
                Some(format!(
                    "stopped signalling: another heap dump (~{}) would leave less than --min-free {} on {}",
                    crate::units::Bytes(w.largest() as f64),
                    crate::units::Bytes(self.plan.min_free as f64),
                    w.dir().display()
                ))
            } else if let Err(why) = crate::headroom::room_for_a_snapshot(target.pid) {
                Some(format!("skipped a signal: {why}"))
            } else {
                None
            };
            if let Some(why) = held {
                if !self.held_note {
                    note(sinks, &why);
                    self.held_note = w.in_progress() == 0; // the in-progress case may clear
                }
                return Ok(Sent::No);
            }
        }
        match target.signal(self.plan.signal) {
            Ok(()) => {
                self.schedule.sent += 1;
                self.last_sent = Some(now);
                self.settle_due = self.plan.settle.map(|d| now + d);
                Ok(Sent::Yes)
            }
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(Sent::TargetGone),
            Err(e) => Err(Error::Io {
                context: format!("cannot send {name} to PID {}", target.pid),
                source: e,
            }),
        }
    }
}

/// The dump folder: --dump-dir, or the target's working directory.
fn dump_watcher(target: &Target, plan: &SignalPlan, sinks: &mut Sinks<'_>) -> Option<DumpWatcher> {
    if !plan.watches_dumps() {
        return None;
    }
    let dir = match &plan.dump_dir {
        Some(dir) => dir.clone(),
        None => match target.cwd() {
            Ok(dir) => dir,
            Err(e) => {
                note(
                    sinks,
                    &format!(
                        "cannot find the target's working directory ({e}): heap dumps are not watched; give --dump-dir"
                    ),
                );
                return None;
            }
        },
    };
    match DumpWatcher::new(dir.clone(), &plan.dump_globs) {
        Ok(w) => Some(w),
        Err(e) => {
            note(
                sinks,
                &format!("cannot watch '{}' for heap dumps: {e}", dir.display()),
            );
            None
        }
    }
}

/// One runtime reading into this tick: its figures into the sample (the latest of each
/// kind wins), a snapshot's start and end as dump events (its writing period is left out
/// of the analysis like a signalled heap dump), and every probe event, with words for the
/// live line, into `notes`. GCs are not events: the heap-after-GC column marks them.
fn absorb(
    r: Reading,
    elapsed_s: f64,
    heap: &mut ManagedHeap,
    events: &mut Vec<Event>,
    notes: &mut Vec<(String, ProbeEvent)>,
) {
    if r.heap_after_gc_bytes.is_some() {
        heap.after_gc = r.heap_after_gc_bytes;
        heap.external = r.external_bytes;
    }
    if r.heap_used_bytes.is_some() {
        heap.used = r.heap_used_bytes;
    }
    for e in r.events {
        let kind = match &e {
            ProbeEvent::DumpStarted { path } => {
                Some(EventKind::DumpStart(path.display().to_string()))
            }
            ProbeEvent::Snapshot { path, .. } => Some(EventKind::Dump(path.display().to_string())),
            // Ends the dump period like a complete one (recording.rs `dump_periods`).
            ProbeEvent::DumpFailed { path, .. } => {
                Some(EventKind::Other(format!("{DUMP_FAILED}{}", path.display())))
            }
            // A snapshot not taken is part of the run's story, in the CSV and summary.json.
            ProbeEvent::Histogram { .. }
            | ProbeEvent::DumpSkipped { .. }
            | ProbeEvent::Attached { .. }
            | ProbeEvent::Failed { .. }
            | ProbeEvent::Closed { .. } => Some(EventKind::Other(e.key())),
            _ => None,
        };
        if let Some(kind) = kind {
            events.push(Event { elapsed_s, kind });
        }
        let quiet = matches!(e, ProbeEvent::Gc { .. } | ProbeEvent::DumpStarted { .. });
        let text = if quiet { String::new() } else { e.describe() };
        notes.push((text, e));
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
