//! `--load CMD`: a load generator started once the target is ready (`--ready-port`, or
//! `--ready-delay`); when it ends, the run ends after `--cooldown`. Driven from the sampling
//! loop's ticks, so it needs no thread.

use crate::recording::{Event, EventKind};
use crate::signal::signal_name;
use serde::Serialize;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `--load`: a load generator started once the target is ready; the run ends with it.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// Run with `sh -c`.
    pub command: String,
    pub ready_port: Option<u16>,
    /// How long to wait for `ready_port` before giving up.
    pub ready_timeout: Duration,
    pub ready_delay: Duration,
    pub cooldown: Duration,
}

const PROBE_EVERY: Duration = Duration::from_millis(100);
/// While waiting for --ready-port, a line for people this often.
const WAITING_NOTE_EVERY: Duration = Duration::from_secs(10);

/// What a tick of the load did.
#[derive(Debug, Default, PartialEq)]
pub struct LoadTick {
    /// The load has ended and the cooldown has passed: the run is over.
    pub over: bool,
    /// Words for people (still waiting for the port).
    pub note: Option<String>,
}

/// Why the load could not run.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot start the --load command: {0}")]
    Start(#[source] std::io::Error),
    #[error(
        "nothing accepted connections on 127.0.0.1:{port} within --ready-timeout {waited}, so \
         the --load command was not started: is the program listening on that port? (a longer \
         --ready-timeout waits longer)"
    )]
    NotReady {
        port: u16,
        waited: crate::options::Dur,
    },
    #[error("cannot tell whether the --load command has ended: {0}")]
    Wait(#[source] std::io::Error),
}

/// What became of the load, for summary.json and the gate.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadSummary {
    pub command: String,
    pub started_s: Option<f64>,
    pub ended_s: Option<f64>,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    /// Stopped by memwatch because the run ended first (not a failure).
    pub stopped_by_memwatch: bool,
    pub failed: bool,
    /// In words: "exited with code 0", "never started: nothing listened on port 8080".
    pub outcome: String,
}

pub struct LoadRunner {
    plan: LoadPlan,
    started: Instant,
    child: Option<Child>,
    next_probe: Instant,
    /// The next "still waiting for the port" line.
    next_note: Instant,
    /// When the run ends: the load's end plus the cooldown.
    end_at: Option<Instant>,
    summary: LoadSummary,
}

impl LoadRunner {
    pub fn new(plan: &LoadPlan, started: Instant) -> LoadRunner {
        LoadRunner {
            plan: plan.clone(),
            started,
            child: None,
            next_probe: started,
            next_note: started + WAITING_NOTE_EVERY,
            end_at: None,
            summary: LoadSummary {
                command: plan.command.clone(),
                ..LoadSummary::default()
            },
        }
    }

    /// The load command's PID while memwatch has not reaped it.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// Starts the load when the target is ready and notices when it ends; `over` once the
    /// load has ended and the cooldown has passed. Waiting for --ready-port says so every
    /// few seconds, and gives up after --ready-timeout.
    pub fn tick(
        &mut self,
        now: Instant,
        elapsed_s: f64,
        events: &mut Vec<Event>,
    ) -> Result<LoadTick, LoadError> {
        if let Some(end_at) = self.end_at {
            return Ok(LoadTick {
                over: now >= end_at,
                note: None,
            });
        }
        if self.child.is_none() {
            if now >= self.next_probe && self.target_ready(now) {
                let child = Command::new("sh")
                    .arg("-c")
                    .arg(&self.plan.command)
                    .stdin(Stdio::null())
                    .process_group(0) // its own group, so the whole load can be stopped
                    .spawn()
                    .map_err(LoadError::Start)?;
                self.child = Some(child);
                self.summary.started_s = Some(elapsed_s);
                events.push(Event {
                    elapsed_s,
                    kind: EventKind::Other("load-start".into()),
                });
            } else if let Some(port) = self.plan.ready_port {
                return self.still_waiting(now, port);
            }
        } else if let Some(status) = self
            .child
            .as_mut()
            .map(Child::try_wait)
            .transpose()
            .map_err(LoadError::Wait)?
            .flatten()
        {
            self.summary.ended_s = Some(elapsed_s);
            self.summary.exit_code = status.code();
            self.summary.signal = status.signal().map(signal_name);
            self.summary.failed = !status.success();
            self.summary.outcome = match (status.code(), status.signal()) {
                (Some(code), _) => format!("exited with code {code}"),
                (None, Some(sig)) => format!("killed by {}", signal_name(sig)),
                _ => "ended".into(),
            };
            events.push(Event {
                elapsed_s,
                kind: EventKind::Other("load-end".into()),
            });
            self.end_at = Some(now + self.plan.cooldown);
        }
        Ok(LoadTick::default())
    }

    /// Nothing listens on the port yet: a line every so often, and an error at the timeout.
    fn still_waiting(&mut self, now: Instant, port: u16) -> Result<LoadTick, LoadError> {
        let waited = now.duration_since(self.started);
        if waited >= self.plan.ready_timeout {
            self.summary.outcome = format!("never started: nothing listened on port {port}");
            return Err(LoadError::NotReady {
                port,
                waited: crate::options::Dur(self.plan.ready_timeout),
            });
        }
        let mut tick = LoadTick::default();
        if now >= self.next_note {
            self.next_note = now + WAITING_NOTE_EVERY;
            tick.note = Some(format!(
                "waiting for 127.0.0.1:{port} to accept connections before starting --load: {} \
                 so far (--ready-timeout {})",
                crate::units::Elapsed(waited.as_secs_f64()),
                crate::options::Dur(self.plan.ready_timeout)
            ));
        }
        Ok(tick)
    }

    fn target_ready(&mut self, now: Instant) -> bool {
        self.next_probe = now + PROBE_EVERY;
        match self.plan.ready_port {
            Some(port) => {
                let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
                TcpStream::connect_timeout(&addr, Duration::from_millis(50)).is_ok()
            }
            None => now.duration_since(self.started) >= self.plan.ready_delay,
        }
    }

    /// At the end of the run: stops a load still running (SIGTERM to its process group,
    /// SIGKILL after 2 s) and says how it went.
    pub fn finish(mut self) -> LoadSummary {
        if let Some(child) = &mut self.child
            && self.end_at.is_none()
        {
            let pgid = child.id() as i32;
            if pgid > 0 {
                // SAFETY: a positive process-group id of the group memwatch created for the load.
                unsafe { libc::killpg(pgid, libc::SIGTERM) };
                let deadline = Instant::now() + Duration::from_secs(2);
                while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                // SAFETY: as above.
                unsafe { libc::killpg(pgid, libc::SIGKILL) };
            }
            let _ = child.wait();
            self.summary.stopped_by_memwatch = true;
            self.summary.outcome = "stopped by memwatch when the run ended".into();
        }
        if self.child.is_none() {
            self.summary.failed = true;
            self.summary.outcome = match self.plan.ready_port {
                Some(port) => format!("never started: nothing listened on 127.0.0.1:{port}"),
                None => "never started: the run ended before --ready-delay".into(),
            };
        }
        self.summary
    }
}
