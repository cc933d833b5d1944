//! What happens on ticks beside the sample itself: one small trait, one file per part, and
//! the list of a run's parts. A new per-tick source (page faults, a cgroup, every process
//! of the machine) is a new file implementing `TickPart` and one line in `parts`.

use super::{Plan, Sinks, WatchResult};
use crate::cgroup::series::CgroupReading;
use crate::error::Result;
use crate::recording::Event;
use crate::runtime::Probe;
use crate::sample::{ProcReader, Sample};
use crate::target::Target;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One part of what a run does on its ticks.
pub trait TickPart {
    /// When this part wants a tick of its own between sampling deadlines (a settle sample).
    fn next_due(&self) -> Option<Instant> {
        None
    }
    /// One tick: add events, fill in this tick's samples, or end the run.
    fn tick(&mut self, t: &mut TickIn<'_, '_>) -> Result<Flow>;
    /// The run's end has been reached (--duration, the load, Ctrl-C): true when this part
    /// needs more ticks before sampling stops.
    fn end_begins(&mut self, _now: Instant, _shared: &Shared) -> bool {
        false
    }
    /// While the end waits: whether this part still needs ticks.
    fn holds_end(&self, _now: Instant, _shared: &Shared) -> bool {
        false
    }
    /// The run is over: what this part saw, into the result.
    fn finish(self: Box<Self>, _result: &mut WatchResult) {}
    /// A tick without a target (`--follow`, between two processes): only a part that reads
    /// something else (the cgroup) has anything to do.
    fn absent_tick(&mut self, _t: &mut AbsentIn<'_, '_>) -> Result<()> {
        Ok(())
    }
}

/// A tick while a followed target is absent.
pub struct AbsentIn<'t, 's> {
    pub now: Instant,
    pub elapsed: Duration,
    pub cgroup: &'t mut Option<CgroupReading>,
    pub sinks: &'t mut Sinks<'s>,
}

/// What a part's tick says about the run.
pub enum Flow {
    Go,
    /// The run is over after this tick (the load ended): its end begins.
    Over(super::StopReason),
    /// Stop now, without recording this tick (the target has gone).
    Stop(super::StopReason),
}

/// A tick as the parts see it, in the order they are asked (`parts`).
pub struct TickIn<'t, 's> {
    pub now: Instant,
    /// Since the first sample.
    pub elapsed: Duration,
    pub target: &'t Target,
    pub reader: &'t mut ProcReader,
    /// This tick's samples: the target's first (its status read already); parts fill in
    /// their figures and may add the processes they watch (`--tree`).
    pub samples: &'t mut Vec<Sample>,
    /// The sum of `samples`, judged instead of the target's (`--tree`).
    pub total: &'t mut Option<Sample>,
    /// The memory cgroup read at this tick (`--cgroup`, or memwatch's own for `run --tree`).
    pub cgroup: &'t mut Option<CgroupReading>,
    pub events: &'t mut Vec<Event>,
    pub shared: &'t mut Shared,
    pub sinks: &'t mut Sinks<'s>,
}

impl<'t, 's> TickIn<'t, 's> {
    /// A new tick, its buffers emptied.
    pub(super) fn new(
        now: Instant,
        elapsed: Duration,
        target: &'t Target,
        reader: &'t mut ProcReader,
        buf: &'t mut super::TickBuffers,
        shared: &'t mut Shared,
        sinks: &'t mut Sinks<'s>,
    ) -> TickIn<'t, 's> {
        buf.samples.clear();
        buf.total = None;
        buf.cgroup = None;
        buf.events.clear();
        TickIn {
            now,
            elapsed,
            target,
            reader,
            samples: &mut buf.samples,
            total: &mut buf.total,
            cgroup: &mut buf.cgroup,
            events: &mut buf.events,
            shared,
            sinks,
        }
    }

    pub fn elapsed_s(&self) -> f64 {
        self.elapsed.as_secs_f64()
    }

    /// A one-off message for people.
    pub fn note(&mut self, message: &str) {
        super::note(self.sinks, message);
    }

    pub fn event(&mut self, kind: crate::recording::EventKind) {
        let elapsed_s = self.elapsed_s();
        self.events.push(Event { elapsed_s, kind });
    }
}

/// What one part tells the others, each field written by one part only.
#[derive(Debug, Default)]
pub struct Shared {
    /// Heap dumps (dumps.rs): what is being written, for the signals that cause them.
    pub dumps: Option<DumpStatus>,
    /// The last signal sent (signals.rs): a dump it starts may not have appeared yet.
    pub last_signal: Option<Instant>,
    /// The load command's PID while it runs (load.rs): not an orphan to reap.
    pub load_pid: Option<i32>,
}

/// The heap dumps of the run so far.
#[derive(Debug, Default)]
pub struct DumpStatus {
    pub dir: PathBuf,
    pub in_progress: usize,
    pub seen: usize,
    pub largest: u64,
}

/// The parts of a run, in the order they are asked on each tick. Reading the process
/// comes first, right after its status (a churning process moves between reads far apart);
/// then what acts on it, in the order its events are written.
pub fn parts<'a>(
    run: &'a Plan<'_>,
    target: &'a Target,
    probe: Option<&'a mut Probe>,
    t0: Instant,
    shared: &mut Shared,
    sinks: &mut Sinks<'_>,
) -> Vec<Box<dyn TickPart + 'a>> {
    let mut parts: Vec<Box<dyn TickPart + 'a>> = Vec::new();
    if let Some(every) = run.sampling.pss_interval
        && run.tree_pss.is_none()
    {
        parts.push(Box::new(super::pss::Pss::new(every, t0)));
    }
    if run.scope.descendants || run.scope.matches.is_some() {
        parts.push(Box::new(super::tree::Tree::new(
            target,
            run.scope.clone(),
            run.sampling.pss_interval.is_some(),
            run.tree_pss,
            t0,
        )));
    }
    if let Some(location) = run.cgroup {
        parts.push(Box::new(super::cgroup::Cgroup::new(location, sinks)));
    }
    if run.signals.sends() {
        parts.push(Box::new(super::signals::Signals::new(run.signals, target)));
    }
    if let Some(dumps) = super::dumps::Dumps::new(target, run.signals, shared, sinks) {
        parts.push(Box::new(dumps));
    }
    if let Some(plan) = run.load {
        parts.push(Box::new(super::load::Load::new(plan, t0)));
    }
    if target.is_child() {
        parts.push(Box::new(super::reaper::Reaper::new(t0)));
    }
    if let Some(probe) = probe {
        parts.push(Box::new(super::runtime::Readings::new(probe)));
    }
    if let Some(options) = run.native {
        parts.push(Box::new(super::native::Native::start(
            target, options, t0, sinks,
        )));
    }
    parts
}
