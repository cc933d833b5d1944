//! Signals on the schedule (`--signal-every`, `--signal-at`, `--signal-at-end`), each only
//! when it is safe, and the `settled` sample `--settle` after each.

use super::StopReason;
use super::part::{Flow, Shared, TickIn, TickPart};
use crate::dump::free_bytes;
use crate::error::{Error, Result};
use crate::recording::EventKind;
use crate::sample::reader::ReadError;
use crate::signal::{SignalPlan, SignalSchedule, is_caught, signal_name};
use crate::target::Target;
use crate::units::Bytes;
use std::time::{Duration, Instant};

/// How long a spawned command may take to install its signal handler.
const HANDLER_GRACE: Duration = Duration::from_secs(5);
/// After the last signal, how long to look for a dump it may start.
const DUMP_APPEAR: Duration = Duration::from_secs(1);

pub struct Signals<'a> {
    plan: &'a SignalPlan,
    schedule: SignalSchedule,
    /// The target was seen to catch the signal (or --force-signal).
    caught: bool,
    /// When a due signal first waited for the handler (spawned commands start without one).
    waiting_since: Option<Instant>,
    settle_due: Option<Instant>,
    last_sent: Option<Instant>,
    held_note: bool,
    /// The run's end has begun: only the --signal-at-end signal goes out.
    ending: bool,
    /// The --signal-at-end signal goes out on the next tick.
    send_at_end: bool,
}

enum Sent {
    Yes,
    No,
    TargetGone,
}

impl<'a> Signals<'a> {
    pub fn new(plan: &'a SignalPlan, target: &Target) -> Signals<'a> {
        Signals {
            plan,
            schedule: SignalSchedule::new(plan.every, &plan.at, plan.at_end),
            // Attached targets are checked before sampling.
            caught: plan.force || !target.is_child(),
            waiting_since: None,
            settle_due: None,
            last_sent: None,
            held_note: false,
            ending: false,
            send_at_end: false,
        }
    }

    /// A heap dump is being written, or the last signal may still start one.
    fn dump_pending(&self, now: Instant, shared: &Shared) -> bool {
        shared.dumps.as_ref().is_some_and(|d| {
            d.in_progress > 0
                || self
                    .last_sent
                    .is_some_and(|t| now.duration_since(t) < DUMP_APPEAR)
        })
    }

    /// Sends the signal if it is safe: the target catches it, no dump is being written, and
    /// the dump limits (--max-dumps, --min-free) allow another.
    fn try_send(&mut self, t: &mut TickIn<'_, '_>) -> Result<Sent> {
        if !self.caught {
            let mask = match t.reader.read_caught_signals() {
                Ok(mask) => mask,
                Err(ReadError::Exited | ReadError::NoMemoryMap) => return Ok(Sent::TargetGone),
                Err(_) => 0,
            };
            if is_caught(mask, self.plan.signal) {
                self.caught = true;
                self.waiting_since = None;
            } else {
                let since = *self.waiting_since.get_or_insert(t.now);
                if t.now.duration_since(since) < HANDLER_GRACE {
                    return Ok(Sent::No); // asked again next tick
                }
                return Err(Error::SignalNotCaught {
                    pid: t.target.pid,
                    name: t.target.name.clone(),
                    signal: self.plan.signal,
                });
            }
        }
        if let Some(why) = self.held_back(t) {
            let in_progress = t.shared.dumps.as_ref().map_or(0, |d| d.in_progress);
            if !self.held_note {
                t.note(&why);
                self.held_note = in_progress == 0; // the in-progress case may clear
            }
            return Ok(Sent::No);
        }
        match t.target.signal(self.plan.signal) {
            Ok(()) => {
                self.schedule.sent += 1;
                self.last_sent = Some(t.now);
                t.shared.last_signal = self.last_sent;
                self.settle_due = self.plan.settle.map(|d| t.now + d);
                Ok(Sent::Yes)
            }
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(Sent::TargetGone),
            Err(e) => Err(Error::Io {
                context: format!(
                    "cannot send {} to PID {}",
                    signal_name(self.plan.signal),
                    t.target.pid
                ),
                source: e,
            }),
        }
    }

    /// Why a signal due now must wait, when heap dumps are watched.
    fn held_back(&self, t: &TickIn<'_, '_>) -> Option<String> {
        let d = t.shared.dumps.as_ref()?;
        if d.in_progress > 0 {
            Some("a heap dump is still being written: skipped a signal".to_string())
        } else if d.seen > 0 && d.seen >= self.plan.max_dumps as usize {
            Some(format!(
                "stopped signalling: --max-dumps {} reached",
                self.plan.max_dumps
            ))
        } else if d.seen > 0
            && free_bytes(&d.dir)
                .is_some_and(|free| free < self.plan.min_free.saturating_add(d.largest))
        {
            Some(format!(
                "stopped signalling: another heap dump (~{}) would leave less than --min-free {} on {}",
                Bytes(d.largest as f64),
                Bytes(self.plan.min_free as f64),
                d.dir.display()
            ))
        } else if let Err(why) = crate::headroom::room_for_a_snapshot(t.target.pid) {
            Some(format!("skipped a signal: {why}"))
        } else {
            None
        }
    }
}

impl TickPart for Signals<'_> {
    fn next_due(&self) -> Option<Instant> {
        self.settle_due
    }

    fn tick(&mut self, t: &mut TickIn<'_, '_>) -> Result<Flow> {
        if self.settle_due.is_some_and(|s| t.now >= s) {
            self.settle_due = None;
            t.event(EventKind::Settled);
        }
        let due = if self.send_at_end {
            self.send_at_end = false;
            true
        } else if !self.ending {
            self.schedule.due(t.elapsed) || self.waiting_since.is_some()
        } else {
            false // the run is ending: only the --signal-at-end signal
        };
        if due {
            match self.try_send(t)? {
                Sent::Yes => t.event(EventKind::Signal(signal_name(self.plan.signal))),
                Sent::No => {}
                Sent::TargetGone => return Ok(Flow::Stop(StopReason::TargetExited)),
            }
        }
        Ok(Flow::Go)
    }

    /// `--duration` is a promise to CI: the run ends on time, and only an explicit
    /// `--signal-at-end` waits (at most `END_WAIT_MAX`) for its settle sample and heap dump.
    fn end_begins(&mut self, now: Instant, shared: &Shared) -> bool {
        self.ending = true;
        if !self.plan.at_end {
            return false;
        }
        self.send_at_end = self.last_sent != Some(now);
        self.send_at_end || self.settle_due.is_some() || self.dump_pending(now, shared)
    }

    fn holds_end(&self, now: Instant, shared: &Shared) -> bool {
        self.plan.at_end
            && (self.send_at_end || self.settle_due.is_some() || self.dump_pending(now, shared))
    }
}
