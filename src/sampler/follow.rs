//! The process the loop watches: the target, or with `--follow` the process that took its
//! place after a restart; absent between two lives. Its lives, and the news a tick carries
//! (`judged:` on the first, `gone:PID`, `restart:PID`).

use super::{FIND_EVERY, LifeInfo, Plan, Sinks, StopReason, note, read_status};
use crate::error::Result;
use crate::find::Pattern;
use crate::interrupt::Interrupts;
use crate::recording::EventKind;
use crate::sample::{MemStatus, ProcReader};
use crate::target::Target;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::Instant;

pub(super) struct Watched<'a> {
    first: &'a Target,
    reader: &'a mut ProcReader,
    /// `--follow`: the process watched now when it is not the first.
    later: Option<(Target, ProcReader)>,
    /// Its status at this tick; `None` while a followed target is absent.
    pub here: Option<MemStatus>,
    pub lives: Vec<LifeInfo>,
    /// An event for the next tick.
    pub news: Option<EventKind>,
    next_find: Instant,
    follow: Option<&'a Pattern>,
    with_smaps: bool,
}

/// What the loop does after its wait, as far as the watched process is concerned.
pub(super) enum After {
    /// Tick; `irregular`: its exit was seen between deadlines, a row of its own.
    Tick {
        irregular: bool,
    },
    Stop(StopReason),
}

impl<'a> Watched<'a> {
    /// The target as `run` plans it, `mem` its status at t0 (the first news: the judged
    /// series' mark).
    pub fn new(
        first: &'a Target,
        reader: &'a mut ProcReader,
        mem: MemStatus,
        run: &Plan<'a>,
        t0: Instant,
    ) -> Watched<'a> {
        Watched {
            first,
            reader,
            later: None,
            here: Some(mem),
            lives: vec![LifeInfo::of(first, 0.0)],
            news: run.mark.clone(),
            next_find: t0,
            follow: run.follow,
            with_smaps: run.with_smaps,
        }
    }

    /// `--follow`: the process watched may change.
    pub fn follows(&self) -> bool {
        self.follow.is_some()
    }

    /// The process watched now, with its open /proc files.
    pub fn current(&mut self) -> (&Target, &mut ProcReader) {
        match &mut self.later {
            Some((t, r)) => (t, r),
            None => (self.first, &mut *self.reader),
        }
    }

    /// What the wait watches for the process's exit; while it is absent, only a stop request
    /// ends the wait early.
    pub fn exit_fd<'i>(&'i self, interrupts: &'i Interrupts) -> BorrowedFd<'i> {
        match (&self.here, &self.later) {
            (None, _) => interrupts.as_fd(),
            (Some(_), Some((t, _))) => t.pidfd(),
            (Some(_), None) => self.first.pidfd(),
        }
    }

    /// After the wait: the process's status read, its exit noticed (`exited`: the wait saw
    /// it), and with `--follow` the next process looked for. `now` moves past a scan of
    /// /proc, so the tick is after it.
    pub fn after_wait(
        &mut self,
        exited: bool,
        now: &mut Instant,
        t0: Instant,
        sinks: &mut Sinks<'_>,
    ) -> Result<After> {
        let mut gone = exited;
        if self.here.is_some() && !gone {
            let (pid, reader) = match &mut self.later {
                Some((t, r)) => (t.pid, r),
                None => (self.first.pid, &mut *self.reader),
            };
            match read_status(reader, pid)? {
                Some(m) => self.here = Some(m),
                None if self.follow.is_none() => return Ok(After::Stop(StopReason::TargetExited)),
                None => gone = true,
            }
        }
        if gone {
            // This tick is the first without it; its successor is looked for from now.
            let current = self.later.as_ref().map_or(self.first, |(t, _)| t);
            self.here = None;
            self.news = Some(EventKind::gone(current.pid));
            self.next_find = *now;
            if let Some(pattern) = self.follow {
                note(
                    sinks,
                    &format!(
                        "PID {} ({}) has exited: waiting for a new process matching {}",
                        current.pid,
                        current.name,
                        pattern.option()
                    ),
                );
            }
            return Ok(After::Tick { irregular: exited });
        }
        if self.here.is_none()
            && *now >= self.next_find
            && let Some(pattern) = self.follow
        {
            self.next_find = *now + FIND_EVERY;
            let found = find_again(pattern, self.with_smaps);
            *now = Instant::now();
            if let Some((found, reader, mem)) = found {
                note(
                    sinks,
                    &format!(
                        "PID {} ({}) matches {}: watching it (restart {})",
                        found.pid,
                        found.name,
                        pattern.option(),
                        self.lives.len()
                    ),
                );
                let at = now.duration_since(t0).as_secs_f64();
                self.lives.push(LifeInfo::of(&found, at));
                self.news = Some(EventKind::restart(found.pid));
                self.here = Some(mem);
                self.later = Some((found, reader));
            }
        }
        Ok(After::Tick { irregular: false })
    }

    /// The lives, the process watched last when it is not the first, and its name and
    /// command line as they are now (a wrapper that exec'd is named for its program).
    pub fn finish(self) -> Finished {
        let last = self.later.as_ref().map_or(self.first, |(t, _)| t);
        Finished {
            name_now: last.current_name(),
            command_now: last.current_command_line(),
            lives: self.lives,
            last_target: self.later.map(|(t, _)| t),
        }
    }
}

pub(super) struct Finished {
    pub lives: Vec<LifeInfo>,
    pub last_target: Option<Target>,
    pub name_now: Option<String>,
    pub command_now: Option<String>,
}

/// The first process that matches `pattern` and can be read, held by its start time.
fn find_again(pattern: &Pattern, with_smaps: bool) -> Option<(Target, ProcReader, MemStatus)> {
    for c in crate::find::find(pattern) {
        let Ok((target, mut reader)) = Target::attach(Path::new("/proc"), c.pid, with_smaps) else {
            continue;
        };
        if target.start_time != c.start_time {
            continue; // a recycled PID since the scan
        }
        if let Ok(mem) = reader.read_status() {
            return Some((target, reader, mem));
        }
    }
    None
}
