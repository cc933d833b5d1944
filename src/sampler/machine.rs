//! `--all`'s loop. Each tick: processes started since the last one are looked for
//! (`Machine::discover`), every process is read once, each reading goes into its unit (a
//! process, or its group), the units that are due are judged within a budget of CPU time,
//! the units are ranked, and the tick goes to the consumers (`MachineSink`: the live table,
//! the CSV, the Prometheus exporters). It stops at --duration, on SIGINT/SIGTERM/SIGHUP, or
//! when `q` is pressed in the live view.
//!
//! The loop only keeps time and hands over: the targets (`machine/`) know nothing of series,
//! the series and verdicts (`board.rs`) nothing of /proc, and no consumer is known here.

use super::StopReason;
use crate::board::{Board, Counts};
use crate::error::{Error, Result};
use crate::interrupt::Interrupts;
use crate::keys::Keys;
use crate::machine::{Machine, Proc, Scans};
use crate::recording::{Kept, Recording};
use crate::sample::{MemStatus, Metric, Sample, Schedule};
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One tick of the whole machine, as every consumer sees it.
pub struct MachineTick<'a> {
    /// Seconds since the first tick.
    pub elapsed_s: f64,
    pub unix_ms: u64,
    pub now: Instant,
    /// This tick's readings, one per process (its PID in `pid`).
    pub samples: &'a [Sample],
    /// Their sum: the machine's total (`anon` when every process has it).
    pub total: &'a Sample,
    /// The units (processes or groups), their series, verdicts and rank.
    pub board: &'a Board,
    pub counts: Counts,
    /// Processes read by reopening their stat (past the open-file limit).
    pub degraded: usize,
    /// Ticks taken and deadlines missed so far.
    pub taken: u64,
    pub missed: u64,
}

/// What consumes `--all`'s ticks.
pub trait MachineSink {
    /// Takes one tick. A `BrokenPipe` error ends the run quietly (the reader went away).
    fn tick(&mut self, tick: &MachineTick<'_>) -> io::Result<()>;
    /// A one-off message for people.
    fn note(&mut self, _message: &str) {}
    /// The run is over: leave the terminal clean.
    fn finish(&mut self) {}
}

/// What the loop is to do.
pub struct MachinePlan {
    pub interval: Duration,
    pub duration: Option<Duration>,
    /// CPU time per live unit and tick that judging may take (spread over ticks beyond it).
    pub judge_budget_per_unit: Duration,
}

/// What a run of `--all` sampled.
pub struct MachineResult {
    /// The machine total, tick by tick.
    pub recording: Recording,
    pub taken: u64,
    pub missed: u64,
    pub stop: StopReason,
    pub scans: Scans,
    /// The most processes read by reopening at one tick.
    pub degraded_max: usize,
    pub duration_s: f64,
}

/// What ended a wait.
enum Woke {
    Deadline,
    Interrupt(i32),
    Quit,
}

/// This tick's buffers, reused.
#[derive(Default)]
struct Buffers {
    samples: Vec<Sample>,
    renamed: Vec<usize>,
    ended: Vec<Proc>,
}

pub fn watch_machine(
    machine: &mut Machine,
    board: &mut Board,
    plan: &MachinePlan,
    keys: Option<&Keys>,
    interrupts: &Interrupts,
    sinks: &mut [&mut dyn MachineSink],
) -> Result<MachineResult> {
    let t0 = Instant::now();
    let mut schedule = Schedule::new(t0, plan.interval);
    let end = plan.duration.map(|d| t0 + d);
    let capacity = plan.duration.map_or(4096, |d| {
        (d.as_secs_f64() / plan.interval.as_secs_f64()).min(1e7) as usize + 2
    });
    let metric = board.metric();
    let mut rec = Recording::keeping(capacity, Kept::new(&[Metric::Rss, metric], &[Metric::Anon]));
    let mut buf = Buffers::default();
    let (mut taken, mut degraded_max) = (0u64, 0usize);
    let mut keys = keys;
    let mut now = t0;
    let stop = loop {
        let elapsed_s = now.duration_since(t0).as_secs_f64();
        let unix_ms = unix_ms();
        find_new(machine, board, &mut buf.renamed);
        if let Some(note) = machine.take_note() {
            for sink in sinks.iter_mut() {
                sink.note(&note);
            }
        }
        buf.samples.clear();
        let samples = &mut buf.samples;
        machine.read(
            |p, mem| {
                board.add_sample(p.unit, &mem);
                samples.push(Sample {
                    elapsed_s,
                    unix_ms,
                    pid: p.pid,
                    mem,
                    ..Sample::default()
                });
            },
            &mut buf.ended,
        );
        for p in buf.ended.drain(..) {
            board.process_ended(p.unit, elapsed_s);
        }
        board.end_tick(elapsed_s);
        let counts = board.counts();
        board.judge_due(
            elapsed_s,
            plan.judge_budget_per_unit
                .saturating_mul(u32::try_from(counts.live).unwrap_or(u32::MAX)),
        );
        board.rank();
        let total = total(&buf.samples, elapsed_s, unix_ms);
        rec.push(&total);
        taken += 1;
        let degraded = machine.degraded();
        degraded_max = degraded_max.max(degraded);
        let tick = MachineTick {
            elapsed_s,
            unix_ms,
            now,
            samples: &buf.samples,
            total: &total,
            board,
            counts: board.counts(),
            degraded,
            taken,
            missed: schedule.missed(),
        };
        if let Some(reason) = hand_over(&tick, sinks)? {
            break reason;
        }
        schedule.advance(now);
        if end.is_some_and(|e| now + Duration::from_micros(500) >= e) {
            break StopReason::Duration;
        }
        let wake_at = match end {
            Some(e) => schedule.next_deadline().min(e),
            None => schedule.next_deadline(),
        };
        let woke = wait(wake_at, interrupts, &mut keys).map_err(|e| Error::Io {
            context: "waiting for the next tick".into(),
            source: e,
        })?;
        now = Instant::now();
        match woke {
            Woke::Deadline => {}
            Woke::Interrupt(signal) => break StopReason::Interrupted { signal },
            Woke::Quit => break StopReason::Quit,
        }
    };
    rec.finish();
    Ok(MachineResult {
        duration_s: rec.duration_s(),
        recording: rec,
        taken,
        missed: schedule.missed(),
        stop,
        scans: machine.scans(),
        degraded_max,
    })
}

/// Processes renamed since they were found, and new ones, into their units.
fn find_new(machine: &mut Machine, board: &mut Board, renamed: &mut Vec<usize>) {
    let first_new = machine.discover(renamed);
    for &i in renamed.iter() {
        let p = &machine.procs()[i];
        let unit = board.rename(p.unit, &p.name, p.group.as_deref());
        machine.set_unit(i, unit);
    }
    for i in first_new..machine.procs().len() {
        let p = &machine.procs()[i];
        let unit = board.add_process(p.pid, p.start_time, &p.name, p.group.as_deref());
        machine.set_unit(i, unit);
    }
}

/// The machine's total: sizes summed; anon only when every process has it (a process read
/// by reopening its stat does not), so an unknown part is never counted as 0.
fn total(samples: &[Sample], elapsed_s: f64, unix_ms: u64) -> Sample {
    let mut mem = MemStatus {
        anon: Some(0),
        ..MemStatus::default()
    };
    for s in samples {
        mem.rss += s.mem.rss;
        mem.vsz += s.mem.vsz;
        mem.anon = mem.anon.zip(s.mem.anon).map(|(a, b)| a + b);
    }
    Sample {
        elapsed_s,
        unix_ms,
        pid: 0,
        mem,
        ..Sample::default()
    }
}

fn hand_over(
    tick: &MachineTick<'_>,
    sinks: &mut [&mut dyn MachineSink],
) -> Result<Option<StopReason>> {
    let mut closed = false;
    for sink in sinks.iter_mut() {
        match sink.tick(tick) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => closed = true,
            Err(e) => {
                return Err(Error::Io {
                    context: "cannot write the samples".into(),
                    source: e,
                });
            }
        }
    }
    Ok(closed.then_some(StopReason::OutputClosed))
}

/// Sleeps until `deadline`, a stop request, or `q` on the terminal. A terminal that hangs
/// up is no longer listened to.
fn wait(deadline: Instant, interrupts: &Interrupts, keys: &mut Option<&Keys>) -> io::Result<Woke> {
    loop {
        if let Some(signal) = interrupts.take() {
            return Ok(Woke::Interrupt(signal));
        }
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return Ok(Woke::Deadline);
        };
        let mut fds = [
            libc::pollfd {
                fd: interrupts.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: keys.map_or(-1, |k| k.fd().as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ts = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        };
        // SAFETY: fds and ts are valid for the call (a negative fd is ignored by ppoll).
        let rc = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, &ts, std::ptr::null()) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if fds[0].revents != 0 && interrupts.take().is_none() {
            // a byte left by a request already taken: empty the pipe
            let mut byte = [0u8; 64];
            // SAFETY: reading into our buffer from the non-blocking wake-up pipe.
            while unsafe { libc::read(fds[0].fd, byte.as_mut_ptr().cast(), byte.len()) } > 0 {}
        }
        let key = fds[1].revents;
        if key & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            *keys = None;
        } else if key & libc::POLLIN != 0
            && let Some(k) = keys
            && k.quit_pressed()
        {
            return Ok(Woke::Quit);
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
