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

mod cgroup;
mod dumps;
mod follow;
mod load;
mod native;
pub mod part;
mod pss;
mod reaper;
mod runtime;
mod signals;
mod tree;

use crate::cgroup::series::{CgroupReading, Location};
use crate::dump::Dump;
use crate::error::{Error, Result};
use crate::find::Pattern;
use crate::interrupt::{Interrupts, Wake, wait_until};
use crate::load::{LoadPlan, LoadSummary};
use crate::recording::{Event, EventKind, Kept, Recording};
use crate::runtime::{Probe, ProbeEvent};
use crate::sample::members::{self, FloorSeries, PssSpread, Scope};
use crate::sample::reader::ReadError;
use crate::sample::{ManagedHeap, MemStatus, Metric, ProcReader, Sample, Sampling, Schedule};
use crate::signal::{SignalPlan, signal_name};
use crate::target::Target;
use follow::{After, Watched};
use part::{AbsentIn, Flow, Shared, TickIn, TickPart};
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
    /// This tick's time, also when it has no samples: seconds since the first sample, and
    /// the wall clock in ms since the Unix epoch.
    pub elapsed_s: f64,
    pub unix_ms: u64,
    /// The memory cgroup read at this tick (`--cgroup`, or memwatch's own for `run --tree`).
    pub cgroup: Option<&'a CgroupReading>,
    /// `--follow`, between two processes: the target is absent at this tick (no samples; its
    /// `total` row is written empty, never 0).
    pub absent: bool,
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
    /// RSS when first and last read (those that grew most first) and its RSS series.
    pub tree: Option<Vec<(members::ProcessGrowth, FloorSeries)>>,
    /// The series kept beside the judged one (`Plan::keep_other`): the cgroup's when the
    /// target's is judged, the target's (or the tree's total) when the cgroup's is.
    pub other: Option<Recording>,
    /// The cgroup's last reading, and why it could no longer be read.
    pub cgroup_last: Option<CgroupReading>,
    pub cgroup_lost: Option<String>,
    /// Each process watched in turn (more than one with `--follow`), the first first.
    pub lives: Vec<LifeInfo>,
    /// `--follow`: the process watched last, when it is not the first.
    pub last_target: Option<Target>,
    /// The target's name and command line when last seen: a wrapper that exec'd is named
    /// for its program.
    pub name_now: Option<String>,
    pub command_now: Option<String>,
    /// With `--native`: what was sampled (stopped while the target still ran), or why not.
    pub native: Option<crate::native::NativeRun>,
}

/// One process a followed target was, and when it was watched.
#[derive(Clone, Debug, PartialEq)]
pub struct LifeInfo {
    pub pid: i32,
    pub start_time_ticks: u64,
    pub name: String,
    pub command: String,
    pub first_s: f64,
    pub last_s: f64,
}

impl LifeInfo {
    fn of(target: &Target, at: f64) -> LifeInfo {
        LifeInfo {
            pid: target.pid,
            start_time_ticks: target.start_time,
            name: target.name.clone(),
            command: target.command_line.clone(),
            first_s: at,
            last_s: at,
        }
    }
}

/// Which series of a tick the recording holds for the verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JudgedSeries {
    /// The target's sample, or the tree's total.
    Target,
    /// The memory cgroup's reading.
    Cgroup,
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
    /// The processes summed with the target (`--tree`, `--all-matches`).
    pub scope: Scope,
    /// A tree's total judged on its PSS: every process's read in turn.
    pub tree_pss: Option<PssSpread>,
    /// The memory cgroup read on every tick.
    pub cgroup: Option<&'a Location>,
    /// The series the recording holds for the verdict.
    pub judged: JudgedSeries,
    /// The other series (the cgroup's, or the target's when the cgroup's is judged), kept so.
    pub keep_other: Option<Kept>,
    /// `--follow`: the target is found again with this after it exits.
    pub follow: Option<&'a Pattern>,
    /// A process found again is read with smaps_rollup open (PSS).
    pub with_smaps: bool,
    /// Written on the first tick: what the judged series is (`judged:pss-sum`), so that
    /// `report` judges the same.
    pub mark: Option<EventKind>,
    /// `--native`: how the target's page faults are sampled.
    pub native: Option<&'a crate::native::NativeOptions>,
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
    cgroup: Option<CgroupReading>,
    events: Vec<Event>,
}

/// How often a followed target is looked for while it is absent.
const FIND_EVERY: Duration = Duration::from_millis(250);

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
    let mut other = run.keep_other.map(|k| Recording::keeping(capacity, k));
    let mut schedule = Schedule::new(t0, sampling.interval);
    let end = sampling.duration.map(|d| t0 + d);
    let mut shared = Shared::default();
    let mut parts = part::parts(run, target, probe, t0, &mut shared, sinks);
    let mut buf = TickBuffers::default();
    let mut taken: u64 = 0;
    let mut finishing: Finishing = None;
    // The first reading was taken to check the target, a while ago: take the first sample
    // now, at t0.
    let mem = reader.read_status().unwrap_or(first);
    let mut watched = Watched::new(target, reader, mem, run, t0);
    let mut now = t0;
    let mut regular = true;
    let stop = loop {
        let elapsed = now.duration_since(t0);
        let unix = unix_ms();
        let at = TickAt { now, elapsed, unix };
        let over = match one_tick(&mut parts, &mut watched, &mut buf, &mut shared, sinks, at)? {
            Ok(over) => over,
            Err(stop) => break stop,
        };
        taken += u64::from(watched.here.is_some());
        record(&mut rec, other.as_mut(), &buf, run.judged, elapsed, unix);
        rec.events.extend(buf.events.iter().cloned());
        let counts = (taken, schedule.missed());
        let absent = watched.here.is_none();
        if let Some(reason) = hand_on(&buf, &rec, at, counts, absent, sinks)? {
            break reason;
        }
        if regular {
            schedule.advance(now);
        }
        let over = over.or_else(|| {
            end.filter(|&e| now + Duration::from_micros(500) >= e)
                .map(|_| StopReason::Duration)
        });
        if let Some(reason) = end_reached(&mut parts, over, &mut finishing, now, &shared, sinks) {
            break reason;
        }
        let wake_at;
        (wake_at, regular) = next_wake(&schedule, &parts, end.filter(|_| finishing.is_none()));
        let wake = wait_until(wake_at, interrupts, watched.exit_fd(interrupts)).map_err(|e| {
            Error::Io {
                context: "waiting for the next sample".into(),
                source: e,
            }
        })?;
        now = Instant::now();
        match wake {
            Wake::TargetExited if run.follow.is_none() => break StopReason::TargetExited,
            Wake::Interrupt => {
                let signal = interrupts.take().unwrap_or(libc::SIGINT);
                let reason = StopReason::Interrupted { signal };
                if let Some((reason, _)) = finishing {
                    break reason; // a second stop request: stop now
                }
                if let Some(reason) = end_reached(
                    &mut parts,
                    Some(reason),
                    &mut finishing,
                    now,
                    &shared,
                    sinks,
                ) {
                    break reason;
                }
                regular = false;
            }
            Wake::TargetExited | Wake::Deadline => {}
        }
        let exited = matches!(wake, Wake::TargetExited);
        match watched.after_wait(exited, &mut now, t0, sinks)? {
            After::Stop(reason) => break reason,
            After::Tick { irregular } => regular &= !irregular,
        }
    };
    rec.finish();
    if let Some(o) = other.as_mut() {
        o.finish();
    }
    let f = watched.finish();
    let mut result = WatchResult {
        recording: rec,
        other,
        missed: schedule.missed(),
        stop,
        lives: f.lives,
        last_target: f.last_target,
        name_now: f.name_now,
        command_now: f.command_now,
        ..WatchResult::default()
    };
    for p in parts {
        p.finish(&mut result);
    }
    Ok(result)
}

/// The run is over (`over`: why), or its end is waiting for the parts that hold it: why to
/// stop now, once no part holds it or the wait is too long.
fn end_reached(
    parts: &mut [Box<dyn TickPart + '_>],
    over: Option<StopReason>,
    finishing: &mut Finishing,
    now: Instant,
    shared: &Shared,
    sinks: &mut Sinks<'_>,
) -> Option<StopReason> {
    if let Some(reason) = over
        && finishing.is_none()
    {
        if !end_begins(parts, now, shared) {
            return Some(reason);
        }
        *finishing = Some((reason, now + END_WAIT_MAX));
    }
    still_finishing(*finishing, parts, now, shared, sinks)
}

/// When a tick is: its instant, since the first sample, and the wall clock.
#[derive(Clone, Copy)]
struct TickAt {
    now: Instant,
    elapsed: Duration,
    unix: u64,
}

/// This tick: of the process watched, or without it while a followed target is absent.
/// `Ok(over)`, or `Err(stop)` when a part stops the run now.
fn one_tick(
    parts: &mut [Box<dyn TickPart + '_>],
    watched: &mut Watched<'_>,
    buf: &mut TickBuffers,
    shared: &mut Shared,
    sinks: &mut Sinks<'_>,
    at: TickAt,
) -> Result<std::result::Result<Option<StopReason>, StopReason>> {
    match watched.here {
        Some(mem) => tick(parts, watched, buf, shared, sinks, at, mem),
        None => absent_tick(parts, watched, buf, sinks, at).map(|()| Ok(None)),
    }
}

/// A tick of the process watched: its sample from `mem`, the tick's news, every part asked.
/// `Ok(over)`, or `Err(stop)` when a part stops the run now.
fn tick(
    parts: &mut [Box<dyn TickPart + '_>],
    watched: &mut Watched<'_>,
    buf: &mut TickBuffers,
    shared: &mut Shared,
    sinks: &mut Sinks<'_>,
    at: TickAt,
    mem: MemStatus,
) -> Result<std::result::Result<Option<StopReason>, StopReason>> {
    let news = watched.news.take();
    let (current, reader) = watched.current();
    let mut t = TickIn::new(at.now, at.elapsed, current, reader, buf, shared, sinks);
    t.samples
        .push(first_sample(current.pid, at.elapsed, at.unix, mem));
    t.events.extend(news.map(|kind| Event {
        elapsed_s: at.elapsed.as_secs_f64(),
        kind,
    }));
    let flow = ask_parts(parts, &mut t)?;
    if flow.is_ok() {
        if watched.follows() && buf.total.is_none() {
            // Followed, the `total` series is the target across its lives.
            buf.total = Some(buf.samples[0]);
        }
        if let Some(life) = watched.lives.last_mut() {
            life.last_s = at.elapsed.as_secs_f64();
        }
    }
    Ok(flow)
}

/// A tick while a followed target is absent: its news, and the parts that read something
/// else (the cgroup).
fn absent_tick(
    parts: &mut [Box<dyn TickPart + '_>],
    watched: &mut Watched<'_>,
    buf: &mut TickBuffers,
    sinks: &mut Sinks<'_>,
    at: TickAt,
) -> Result<()> {
    buf.samples.clear();
    buf.total = None;
    buf.cgroup = None;
    buf.events.clear();
    buf.events.extend(watched.news.take().map(|kind| Event {
        elapsed_s: at.elapsed.as_secs_f64(),
        kind,
    }));
    let mut t = AbsentIn {
        now: at.now,
        elapsed: at.elapsed,
        cgroup: &mut buf.cgroup,
        sinks,
    };
    for p in parts.iter_mut() {
        p.absent_tick(&mut t)?;
    }
    Ok(())
}

/// Records a tick: the judged series (the target's sample, the tree's total, or the cgroup's
/// reading) in `rec`, the other one in `other`; an absent value is a NaN row, never 0.
fn record(
    rec: &mut Recording,
    other: Option<&mut Recording>,
    buf: &TickBuffers,
    judged: JudgedSeries,
    elapsed: Duration,
    unix: u64,
) {
    let at = elapsed.as_secs_f64();
    let target = buf.total.as_ref().or(buf.samples.first()).copied();
    let cgroup = buf.cgroup.map(|c| c.as_sample(at, unix));
    let (main, beside) = match judged {
        JudgedSeries::Target => (target, cgroup),
        JudgedSeries::Cgroup => (cgroup, target),
    };
    let push = |r: &mut Recording, s: Option<Sample>| match s {
        Some(s) => r.push(&s),
        None => r.push_row(at, &[f64::NAN; Metric::COUNT]),
    };
    push(rec, main);
    if let Some(o) = other {
        push(o, beside);
    }
}

/// The target's sample of this tick, from its status; the parts fill in the rest.
fn first_sample(pid: i32, elapsed: Duration, unix_ms: u64, mem: MemStatus) -> Sample {
    Sample {
        elapsed_s: elapsed.as_secs_f64(),
        unix_ms,
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

/// The tick, as the sinks see it, to every sink (`counts`: samples taken, deadlines missed).
fn hand_on(
    buf: &TickBuffers,
    rec: &Recording,
    at: TickAt,
    (taken, missed): (u64, u64),
    absent: bool,
    sinks: &mut Sinks<'_>,
) -> Result<Option<StopReason>> {
    let tick = Tick {
        samples: &buf.samples,
        total: buf.total.as_ref(),
        events: &buf.events,
        recording: rec,
        taken,
        missed,
        now: at.now,
        elapsed_s: at.elapsed.as_secs_f64(),
        unix_ms: at.unix,
        cgroup: buf.cgroup.as_ref(),
        absent,
    };
    hand_to_sinks(&tick, sinks)
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
