//! The probe the sampler runs: a background thread that owns the runtime connection, forces
//! GCs on a schedule within a pause budget, reads the heap cheaply in between, takes
//! snapshots or class histograms at given times, and queues [`Reading`]s. The sampler takes
//! them with the non-blocking [`Probe::drain`]: a forced GC (tens of ms) never delays a tick.
//!
//! Nothing here waits without a deadline: every call into the runtime ends by its own timeout
//! or the run's end, whichever is first; a stop request ends any wait on the Node agent at
//! once; and [`Probe::stop`] waits at most [`STOP_WAIT`] for the thread (a JVM call under
//! way), then leaves it behind rather than hold the run.

use super::agent::{Channel, Spawned};
use super::jvm::Jvm;
use super::net;
use super::node::{self, Inspector};
use super::{Result, RuntimeError, RuntimeKind};
use std::collections::VecDeque;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long [`Probe::stop`] waits for the probe's thread to end.
pub const STOP_WAIT: Duration = Duration::from_secs(2);
/// How long a cheap heap reading may take before it is given up (the program is busy).
const USAGE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a forced GC and the reading after it may take (a GC of a 150 MB heap took
/// 0.5-0.9 s here).
const GC_TIMEOUT: Duration = Duration::from_secs(5);
/// Calls may run this long past the run's end (the last reading of the run).
const END_SLACK: Duration = Duration::from_secs(1);

/// When to force a GC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GcSchedule {
    /// Often at first, so that a short CI run has enough points, then less:
    /// every 5 s in the first minute, every 10 s up to 5 minutes, every 20 s after.
    Adaptive,
    Every(Duration),
    Never,
}

impl GcSchedule {
    /// The interval in force `elapsed` after the probe started; `None` for never.
    pub fn interval_at(self, elapsed: Duration) -> Option<Duration> {
        match self {
            GcSchedule::Adaptive => Some(Duration::from_secs(match elapsed.as_secs() {
                0..60 => 5,
                60..300 => 10,
                _ => 20,
            })),
            GcSchedule::Every(d) => Some(d.max(Duration::from_millis(100))),
            GcSchedule::Never => None,
        }
    }
}

/// Asked before each snapshot or histogram; `Err(reason)` skips it (e.g. too little memory
/// headroom for a snapshot that can double the target's memory, or --max-dumps reached).
pub type DumpGuard = Box<dyn FnMut() -> std::result::Result<(), String> + Send>;

/// What the probe does.
pub struct Plan {
    pub gc: GcSchedule,
    /// Forced GCs stop while their pauses in the last minute, plus the next one (estimated by
    /// the last), would exceed this.
    pub pause_budget_per_min: Duration,
    /// The used heap without a GC (Node: `Runtime.getHeapUsage`; JVM: `GC.heap_info`).
    pub usage_interval: Option<Duration>,
    /// Heap snapshots (Node) or class histograms (JVM) at these times after the start.
    pub dumps_at: Vec<Duration>,
    /// Where they go (must exist).
    pub dump_dir: PathBuf,
    pub dump_guard: Option<DumpGuard>,
    /// A Node command memwatch started with its agent (`agent::Preload`): the channel to
    /// wait on for the agent's hello, or why there is none. `None`: attach through the
    /// inspector (`--pid`).
    pub node_preload: Option<std::result::Result<Spawned, RuntimeError>>,
    pub attach_timeout: Duration,
    /// The run's end (`--duration`): no call lasts past it (plus a second for the last
    /// reading).
    pub end: Option<Instant>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            gc: GcSchedule::Adaptive,
            pause_budget_per_min: Duration::from_secs(1),
            usage_interval: Some(Duration::from_secs(1)),
            dumps_at: Vec::new(),
            dump_dir: PathBuf::from("."),
            dump_guard: None,
            node_preload: None,
            attach_timeout: Duration::from_secs(10),
            end: None,
        }
    }
}

/// Something the probe did or met, for the events column and the summary.
#[derive(Clone, Debug, PartialEq)]
pub enum ProbeEvent {
    Attached {
        kind: RuntimeKind,
        /// The inspector's port through which memwatch installed its agent (Node, `--pid`);
        /// `None` for a command memwatch started (the agent came with `--require`).
        port: Option<u16>,
        /// memwatch opened the inspector / attach listener (SIGUSR1 / SIGQUIT).
        opened_by_memwatch: bool,
        took: Duration,
        /// How long the inspector memwatch opened stayed open (SIGUSR1 to closed).
        inspector_open: Option<Duration>,
    },
    Gc {
        pause: Duration,
    },
    GcSkipped {
        reason: String,
    },
    /// A snapshot or histogram is being taken into `path` (a snapshot can double the
    /// target's memory while it is written: the sampler marks the period).
    DumpStarted {
        path: PathBuf,
    },
    Snapshot {
        path: PathBuf,
        bytes: u64,
        took: Duration,
    },
    Histogram {
        path: PathBuf,
        took: Duration,
    },
    DumpSkipped {
        reason: String,
    },
    /// A snapshot that was started failed (its partial file removed): its period ends here.
    DumpFailed {
        path: PathBuf,
        message: String,
    },
    /// A call failed; the probe goes on.
    Error {
        message: String,
    },
    /// The probe stopped: no managed-heap readings from here on. The message says why.
    Failed {
        message: String,
    },
    /// The inspector was closed (or left as it was found) at the end.
    Closed {
        message: String,
    },
}

impl ProbeEvent {
    /// A short key for the events column: `gc`, `snapshot:<file>`, `histogram:<file>`, ...
    pub fn key(&self) -> String {
        let file = |p: &PathBuf| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        match self {
            ProbeEvent::Attached { .. } => "runtime-attached".into(),
            ProbeEvent::Gc { .. } => "gc".into(),
            ProbeEvent::GcSkipped { .. } => "gc-skipped".into(),
            ProbeEvent::DumpStarted { path } => format!("dump-start:{}", file(path)),
            ProbeEvent::Snapshot { path, .. } => format!("snapshot:{}", file(path)),
            ProbeEvent::Histogram { path, .. } => format!("histogram:{}", file(path)),
            ProbeEvent::DumpSkipped { .. } => "dump-skipped".into(),
            ProbeEvent::DumpFailed { path, .. } => format!("dump-failed:{}", file(path)),
            ProbeEvent::Error { .. } => "runtime-error".into(),
            ProbeEvent::Failed { .. } => "runtime-failed".into(),
            ProbeEvent::Closed { .. } => "runtime-closed".into(),
        }
    }

    /// The event in words.
    pub fn describe(&self) -> String {
        let ms = |d: &Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
        match self {
            ProbeEvent::Attached {
                kind: RuntimeKind::Node,
                port,
                opened_by_memwatch,
                took,
                inspector_open,
            } => match (port, inspector_open) {
                (None, _) => format!(
                    "attached to the node runtime: memwatch's agent (loaded with --require) answered in {} over a private channel; no port was opened",
                    ms(took)
                ),
                (Some(p), Some(open)) if *opened_by_memwatch => format!(
                    "attached to the node runtime: opened its inspector on 127.0.0.1:{p} to install memwatch's agent and closed it {} after SIGUSR1; the agent answered in {}",
                    ms(open),
                    ms(took)
                ),
                (Some(p), _) => format!(
                    "attached to the node runtime: installed memwatch's agent through its open inspector on 127.0.0.1:{p} in {}",
                    ms(took)
                ),
            },
            ProbeEvent::Attached {
                kind: RuntimeKind::Jvm,
                opened_by_memwatch,
                took,
                ..
            } => {
                let how = if *opened_by_memwatch {
                    "started its attach listener"
                } else {
                    "used its attach listener"
                };
                format!("attached to the jvm runtime: {how} in {}", ms(took))
            }
            ProbeEvent::Gc { pause } => format!("forced GC, pause {}", ms(pause)),
            ProbeEvent::GcSkipped { reason } => format!("forced GC skipped: {reason}"),
            ProbeEvent::DumpStarted { path } => format!("taking {}", path.display()),
            ProbeEvent::Snapshot { path, bytes, took } => format!(
                "heap snapshot {} ({bytes} bytes) in {}",
                path.display(),
                ms(took)
            ),
            ProbeEvent::Histogram { path, took } => {
                format!("class histogram {} in {}", path.display(), ms(took))
            }
            ProbeEvent::DumpSkipped { reason } => format!("dump skipped: {reason}"),
            ProbeEvent::DumpFailed { path, message } => {
                format!("heap snapshot {} failed: {message}", path.display())
            }
            ProbeEvent::Error { message } => message.clone(),
            ProbeEvent::Failed { message } => message.clone(),
            ProbeEvent::Closed { message } => message.clone(),
        }
    }
}

/// One reading from the runtime. Fields the reading did not measure are `None`.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// When it was taken (after the GC, for a GC reading).
    pub at: Instant,
    /// The used managed heap right after a forced full GC: the leak signal.
    pub heap_after_gc_bytes: Option<u64>,
    /// The used managed heap without a GC (cheap; includes garbage).
    pub heap_used_bytes: Option<u64>,
    /// The managed heap's size (V8 heapTotal / JVM committed).
    pub heap_total_bytes: Option<u64>,
    /// Node: memory of C++ objects bound to JS objects, Buffers included.
    pub external_bytes: Option<u64>,
    /// Node: ArrayBuffers and Buffers (part of external).
    pub array_buffers_bytes: Option<u64>,
    pub gc_pause: Option<Duration>,
    pub events: Vec<ProbeEvent>,
}

impl Reading {
    fn event(event: ProbeEvent) -> Reading {
        Reading {
            events: vec![event],
            ..Reading::empty()
        }
    }

    fn empty() -> Reading {
        Reading {
            at: Instant::now(),
            heap_after_gc_bytes: None,
            heap_used_bytes: None,
            heap_total_bytes: None,
            external_bytes: None,
            array_buffers_bytes: None,
            gc_pause: None,
            events: Vec::new(),
        }
    }
}

/// The forced-GC pauses of the last minute, against a budget (pure bookkeeping).
#[derive(Debug)]
pub(crate) struct PauseBudget {
    per_min: Duration,
    recent: VecDeque<(Instant, Duration)>,
}

impl PauseBudget {
    pub(crate) fn new(per_min: Duration) -> Self {
        PauseBudget {
            per_min,
            recent: VecDeque::new(),
        }
    }

    /// Whether another GC fits: the last minute's pauses plus the next (estimated as the last
    /// one) within the budget. The first GC always runs (nothing to estimate from yet).
    pub(crate) fn allows(&mut self, now: Instant) -> std::result::Result<(), String> {
        while let Some(&(t, _)) = self.recent.front() {
            if now.duration_since(t) >= Duration::from_secs(60) {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        let Some(&(_, last)) = self.recent.back() else {
            return Ok(());
        };
        let spent: Duration = self.recent.iter().map(|(_, d)| *d).sum();
        if spent + last <= self.per_min {
            Ok(())
        } else {
            Err(format!(
                "forced GCs paused the process {:.0} ms in the last minute and the next would take about {:.0} ms, over the budget of {:.0} ms per minute",
                spent.as_secs_f64() * 1e3,
                last.as_secs_f64() * 1e3,
                self.per_min.as_secs_f64() * 1e3
            ))
        }
    }

    pub(crate) fn record(&mut self, at: Instant, pause: Duration) {
        self.recent.push_back((at, pause));
    }
}

/// The background probe of one process's runtime.
pub struct Probe {
    rx: Receiver<Reading>,
    stop: StopSignal,
    /// Disconnected when the thread has ended (its sender is dropped with it).
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
    failure: Arc<Mutex<Option<String>>>,
}

impl Probe {
    /// Starts the probe thread; attaching happens there (its outcome comes as the first
    /// reading's event), so this returns at once. `pidfd` is duplicated: the thread signals
    /// only through it.
    pub fn start(kind: RuntimeKind, pid: i32, pidfd: BorrowedFd<'_>, plan: Plan) -> Result<Probe> {
        if pid <= 0 {
            return Err(RuntimeError::BadPid { pid });
        }
        let pidfd = pidfd
            .try_clone_to_owned()
            .map_err(|e| RuntimeError::io("cannot duplicate the pidfd", e))?;
        let stop = StopSignal::new()?;
        let (tx, rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let failure = Arc::new(Mutex::new(None));
        let worker = Worker {
            kind,
            pid,
            pidfd,
            plan,
            tx,
            stop: stop.watcher()?,
            failure: Arc::clone(&failure),
            _done: done_tx,
        };
        let thread = std::thread::Builder::new()
            .name(format!("memwatch-{kind}-probe"))
            .spawn(move || worker.run())
            .map_err(|e| RuntimeError::io("cannot start the runtime probe thread", e))?;
        Ok(Probe {
            rx,
            stop,
            done,
            thread: Some(thread),
            failure,
        })
    }

    /// Hands every reading queued so far to `f`; never blocks.
    pub fn drain(&mut self, mut f: impl FnMut(Reading)) {
        while let Ok(r) = self.rx.try_recv() {
            f(r);
        }
    }

    /// Why the managed-heap series stopped or never started, in words; `None` while fine.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok().and_then(|f| f.clone())
    }

    /// Ends the thread: a wait on the Node agent ends at once (its channel closes, and the
    /// agent with it); a JVM call under way is given [`STOP_WAIT`], then left behind. Returns
    /// the readings not drained yet.
    pub fn stop(self) -> Vec<Reading> {
        self.finish().0
    }

    /// [`Probe::stop`], and why the managed-heap series stopped or never started (as
    /// [`Probe::failure`], including what the thread found while stopping).
    pub fn finish(mut self) -> (Vec<Reading>, Option<String>) {
        self.shutdown();
        let mut rest = Vec::new();
        self.drain(|r| rest.push(r));
        (rest, self.failure())
    }

    fn shutdown(&mut self) {
        self.stop.fire();
        let Some(thread) = self.thread.take() else {
            return;
        };
        match self.done.recv_timeout(STOP_WAIT) {
            Err(RecvTimeoutError::Timeout) => {
                let message = format!(
                    "the runtime probe did not stop within {STOP_WAIT:?} (a call to a stopped or busy target): memwatch left it behind"
                );
                if let Ok(mut f) = self.failure.lock()
                    && f.is_none()
                {
                    *f = Some(message.clone());
                }
                // Detached: it ends by its own deadline, or with memwatch.
                drop(thread);
            }
            _ => {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A stop request that every wait of the probe's thread can poll: an eventfd that stays
/// readable once written.
struct StopSignal {
    fd: OwnedFd,
}

impl StopSignal {
    fn new() -> Result<StopSignal> {
        // SAFETY: eventfd returns a new descriptor or -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(RuntimeError::io(
                "cannot make the probe's stop signal",
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: a fresh descriptor we own.
        Ok(StopSignal {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn watcher(&self) -> Result<OwnedFd> {
        self.fd
            .try_clone()
            .map_err(|e| RuntimeError::io("cannot share the probe's stop signal", e))
    }

    fn fire(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local to our eventfd.
        unsafe { libc::write(self.fd.as_raw_fd(), (&raw const one).cast(), 8) };
    }
}

/// Waits until `stop` is readable or `timeout` passes; true when stopped.
fn wait_stop(stop: BorrowedFd<'_>, timeout: Duration) -> bool {
    let mut fd = libc::pollfd {
        fd: stop.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut fd, 1, ms) > 0 }
}

enum Client {
    Node {
        channel: Box<Channel>,
        /// The inspector port used for the install, and whether memwatch opened it.
        inspector: Option<(u16, bool)>,
    },
    Jvm(Jvm),
}

struct Worker {
    kind: RuntimeKind,
    pid: i32,
    pidfd: OwnedFd,
    plan: Plan,
    tx: Sender<Reading>,
    stop: OwnedFd,
    failure: Arc<Mutex<Option<String>>>,
    /// Dropped with the worker: tells [`Probe::stop`] the thread has ended.
    _done: Sender<()>,
}

/// After this many calls in a row fail, the probe gives up.
const MAX_ERRORS_IN_A_ROW: u32 = 3;

impl Worker {
    fn run(mut self) {
        let t0 = Instant::now();
        let proc_root = std::path::Path::new("/proc");
        let listening_before = net::listeners(proc_root, self.pid).unwrap_or_default();
        let mut client = match self.attach() {
            Ok(c) => c,
            Err(RuntimeError::Stopping) => {
                self.fail(format!(
                    "no managed-heap series: the run ended {:.1} s after the start, before memwatch had attached to the {} runtime",
                    t0.elapsed().as_secs_f64(),
                    self.kind
                ));
                return;
            }
            Err(e) => {
                let late = matches!(e, RuntimeError::InspectorDidNotOpen { .. });
                self.fail(format!("no managed-heap series: {e}"));
                if late {
                    self.close_late_inspector(&listening_before);
                }
                return;
            }
        };
        let mut budget = PauseBudget::new(self.plan.pause_budget_per_min);
        let mut next_gc = self.plan.gc.interval_at(Duration::ZERO).map(|_| t0);
        let mut next_usage = self.plan.usage_interval.map(|_| t0);
        let mut dumps: VecDeque<Duration> = {
            let mut d = self.plan.dumps_at.clone();
            d.sort();
            d.into()
        };
        let mut dump_seq = 0u32;
        let mut errors = 0u32;
        loop {
            if crate::runtime::pidfd_exited(self.pidfd.as_fd()) {
                self.fail(format!(
                    "the managed-heap series ended: PID {} exited",
                    self.pid
                ));
                return;
            }
            let now = Instant::now();
            let next_dump = dumps.front().map(|d| t0 + *d);
            let due = [next_gc, next_usage, next_dump].into_iter().flatten().min();
            let wait = match due {
                Some(due) => due.saturating_duration_since(now),
                // Nothing scheduled: wait for stop, looking at the target now and then.
                None => Duration::from_secs(1),
            };
            if wait_stop(self.stop.as_fd(), wait) {
                break;
            }
            let now = Instant::now();
            let result = if next_dump.is_some_and(|t| t <= now) {
                dumps.pop_front();
                dump_seq += 1;
                self.dump(&mut client, dump_seq)
            } else if next_gc.is_some_and(|t| t <= now) {
                let interval = self.plan.gc.interval_at(now - t0).unwrap_or_default();
                next_gc = Some(now + interval);
                match budget.allows(now) {
                    Ok(()) => self.gc(&mut client, &mut budget),
                    Err(reason) => Ok(Reading::event(ProbeEvent::GcSkipped { reason })),
                }
            } else if next_usage.is_some_and(|t| t <= now) {
                next_usage = self.plan.usage_interval.map(|i| now + i);
                match self.usage(&mut client) {
                    // A busy program: the forced GCs say so; cheap readings just wait.
                    Err(RuntimeError::NoAnswer { .. }) => continue,
                    other => other,
                }
            } else {
                continue;
            };
            match result {
                Ok(r) => {
                    errors = 0;
                    let _ = self.tx.send(r);
                }
                Err(RuntimeError::Stopping) => break,
                Err(e) => {
                    if crate::runtime::pidfd_exited(self.pidfd.as_fd()) {
                        continue; // reported at the top of the loop
                    }
                    errors += 1;
                    if errors >= MAX_ERRORS_IN_A_ROW {
                        self.fail(format!(
                            "the managed-heap series ended after {errors} failed calls in a row: {e}"
                        ));
                        self.close(client);
                        return;
                    }
                    let _ = self.tx.send(Reading::event(ProbeEvent::Error {
                        message: e.to_string(),
                    }));
                }
            }
        }
        self.close(client);
    }

    /// `now + timeout`, but never past the run's end (and its last second).
    fn deadline(&self, timeout: Duration) -> Instant {
        let now = Instant::now();
        let by = now + timeout;
        match self.plan.end {
            Some(end) => by.min((end + END_SLACK).max(now + Duration::from_millis(100))),
            None => by,
        }
    }

    fn attach(&mut self) -> Result<Client> {
        let fd = self.pidfd.as_fd();
        let timeout = self.plan.attach_timeout;
        let (client, event) = match self.kind {
            RuntimeKind::Node => match self.plan.node_preload.take() {
                Some(preload) => {
                    let start = Instant::now();
                    let Spawned { stream, dir } = preload?;
                    let stop = self.stop.try_clone().ok();
                    let mut channel = Channel::new(self.pid, stream, stop);
                    let deadline = self.deadline(timeout);
                    let hello = channel.wait_hello(deadline);
                    // Node has read the file (or never will): it goes now.
                    drop(dir);
                    if let Err(e) = hello {
                        return Err(match e {
                            RuntimeError::Stopping => RuntimeError::AgentNotLoaded {
                                pid: self.pid,
                                waited: start.elapsed(),
                                why: "the run ended first".into(),
                            },
                            RuntimeError::NoAnswer { why, .. } => RuntimeError::AgentNotLoaded {
                                pid: self.pid,
                                waited: timeout,
                                why,
                            },
                            RuntimeError::Protocol { .. } => RuntimeError::AgentNotLoaded {
                                pid: self.pid,
                                waited: start.elapsed(),
                                why: "the program closed memwatch's channel".into(),
                            },
                            other => other,
                        });
                    }
                    let ev = ProbeEvent::Attached {
                        kind: self.kind,
                        port: None,
                        opened_by_memwatch: false,
                        took: start.elapsed(),
                        inspector_open: None,
                    };
                    let client = Client::Node {
                        channel: Box::new(channel),
                        inspector: None,
                    };
                    (client, ev)
                }
                None => {
                    let a = node::attach_agent(self.pid, fd, timeout, Some(&self.stop))?;
                    let ev = ProbeEvent::Attached {
                        kind: self.kind,
                        port: Some(a.port),
                        opened_by_memwatch: a.opened_by_memwatch,
                        took: a.took,
                        inspector_open: a.open_window,
                    };
                    let client = Client::Node {
                        channel: Box::new(a.channel),
                        inspector: Some((a.port, a.opened_by_memwatch)),
                    };
                    (client, ev)
                }
            },
            RuntimeKind::Jvm => {
                let j = Jvm::attach(self.pid, fd, timeout)?;
                let ev = ProbeEvent::Attached {
                    kind: self.kind,
                    port: None,
                    opened_by_memwatch: j.signalled(),
                    took: j.attach_time(),
                    inspector_open: None,
                };
                (Client::Jvm(j), ev)
            }
        };
        let _ = self.tx.send(Reading::event(event));
        Ok(client)
    }

    fn gc(&self, client: &mut Client, budget: &mut PauseBudget) -> Result<Reading> {
        let mut r = Reading::empty();
        let pause = match client {
            Client::Node { channel, .. } => match channel.gc(self.deadline(GC_TIMEOUT)) {
                Ok(h) => {
                    r.heap_after_gc_bytes = Some(h.used_bytes);
                    r.heap_total_bytes = Some(h.total_bytes);
                    r.external_bytes = Some(h.external_bytes);
                    r.array_buffers_bytes = Some(h.array_buffers_bytes);
                    h.pause
                }
                // Not had in time because the program is busy or stopped: skipped, said why.
                Err(e @ RuntimeError::NoAnswer { .. }) => {
                    return Ok(Reading::event(ProbeEvent::GcSkipped {
                        reason: e.to_string(),
                    }));
                }
                Err(RuntimeError::Stopping) => {
                    let reason = format!(
                        "PID {} had not answered 'gc' when the run ended: {}",
                        self.pid,
                        super::agent::state_words(self.pid)
                    );
                    let _ = self
                        .tx
                        .send(Reading::event(ProbeEvent::GcSkipped { reason }));
                    return Err(RuntimeError::Stopping);
                }
                Err(e) => return Err(e),
            },
            Client::Jvm(j) => {
                let pause = j.gc_run()?;
                let h = j.heap_info()?;
                r.heap_after_gc_bytes = Some(h.used_bytes);
                r.heap_total_bytes = Some(h.committed_bytes);
                pause
            }
        };
        r.at = Instant::now();
        budget.record(r.at, pause);
        r.gc_pause = Some(pause);
        r.events.push(ProbeEvent::Gc { pause });
        Ok(r)
    }

    fn usage(&self, client: &mut Client) -> Result<Reading> {
        let mut r = Reading::empty();
        match client {
            Client::Node { channel, .. } => {
                let (used, total) = channel.usage(self.deadline(USAGE_TIMEOUT))?;
                r.heap_used_bytes = Some(used);
                r.heap_total_bytes = Some(total);
            }
            Client::Jvm(j) => {
                let h = j.heap_info()?;
                r.heap_used_bytes = Some(h.used_bytes);
                r.heap_total_bytes = Some(h.committed_bytes);
            }
        }
        r.at = Instant::now();
        Ok(r)
    }

    fn dump(&mut self, client: &mut Client, seq: u32) -> Result<Reading> {
        if let Some(guard) = self.plan.dump_guard.as_mut()
            && let Err(reason) = guard()
        {
            return Ok(Reading::event(ProbeEvent::DumpSkipped { reason }));
        }
        let t = Instant::now();
        let event = match client {
            Client::Node { channel, .. } => {
                let path = self
                    .plan
                    .dump_dir
                    .join(format!("heap-{}-{seq}.heapsnapshot", self.pid));
                let _ = self.tx.send(Reading::event(ProbeEvent::DumpStarted {
                    path: path.clone(),
                }));
                let deadline = self.deadline(Duration::from_secs(3600));
                let bytes = match channel.snapshot(&path, node::SNAPSHOT_IDLE_TIMEOUT, deadline) {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        // Close the period the sampler opened at DumpStarted.
                        let _ = self.tx.send(Reading::event(ProbeEvent::DumpFailed {
                            path,
                            message: e.to_string(),
                        }));
                        return Err(e);
                    }
                };
                ProbeEvent::Snapshot {
                    path,
                    bytes,
                    took: t.elapsed(),
                }
            }
            Client::Jvm(j) => {
                let path = self
                    .plan
                    .dump_dir
                    .join(format!("histogram-{}-{seq}.txt", self.pid));
                let text = j.class_histogram_text()?;
                write_private(&path, text.as_bytes())?;
                ProbeEvent::Histogram {
                    path,
                    took: t.elapsed(),
                }
            }
        };
        Ok(Reading::event(event))
    }

    /// Closes the Node agent's channel (the agent ends with it) and says what is open in the
    /// program: nothing memwatch opened.
    fn close(&self, client: Client) {
        let message = match client {
            Client::Node { channel, inspector } => {
                drop(channel);
                match inspector {
                    None => {
                        "the agent ended with its channel; memwatch opened no port in the program"
                            .to_string()
                    }
                    Some((port, true)) => {
                        let listening = net::listeners(std::path::Path::new("/proc"), self.pid)
                            .is_ok_and(|ls| ls.iter().any(|l| l.addr.port() == port));
                        if listening {
                            format!(
                                "the agent ended with its channel; something listens on 127.0.0.1:{port} again, where memwatch opened and closed the inspector at the attach"
                            )
                        } else {
                            format!(
                                "the agent ended with its channel; the inspector memwatch opened on 127.0.0.1:{port} for the attach was closed then: nothing listens there"
                            )
                        }
                    }
                    Some((port, false)) => format!(
                        "the agent ended with its channel; the inspector on 127.0.0.1:{port} was left open, as memwatch found it"
                    ),
                }
            }
            Client::Jvm(_) => return,
        };
        let _ = self.tx.send(Reading::event(ProbeEvent::Closed { message }));
    }

    /// SIGUSR1 was sent but no inspector came in time (a busy process): it may still open
    /// later. Until stop, watch for a new loopback listener (/proc reads only) and close it if
    /// it is the inspector, so that none is left open behind memwatch.
    fn close_late_inspector(&self, before: &[net::Listener]) {
        let mut seen: Vec<u64> = before.iter().map(|l| l.inode).collect();
        loop {
            if wait_stop(self.stop.as_fd(), Duration::from_millis(250)) {
                return;
            }
            if crate::runtime::pidfd_exited(self.pidfd.as_fd()) {
                return;
            }
            let Ok(now) = net::listeners(std::path::Path::new("/proc"), self.pid) else {
                return;
            };
            let fresh: Vec<net::Listener> = now
                .into_iter()
                .filter(|l| !seen.contains(&l.inode))
                .collect();
            for l in fresh {
                seen.push(l.inode);
                let addr = l.addr;
                if let Ok(Some(mut i)) =
                    Inspector::connect_at(self.pid, l.addr, true, Duration::from_secs(2))
                {
                    let message = match i.close() {
                        Ok(()) => format!(
                            "the inspector opened late on {addr}; memwatch closed it: nothing listens there any more"
                        ),
                        Err(e) => e.to_string(),
                    };
                    let _ = self.tx.send(Reading::event(ProbeEvent::Closed { message }));
                    return;
                }
            }
        }
    }

    fn fail(&self, message: String) {
        if let Ok(mut f) = self.failure.lock() {
            *f = Some(message.clone());
        }
        let _ = self.tx.send(Reading::event(ProbeEvent::Failed { message }));
    }
}

/// A new file with mode 0600 (a histogram names every class of the process).
fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| RuntimeError::io(format!("cannot write '{}'", path.display()), e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_schedule() {
        let s = Duration::from_secs;
        let a = GcSchedule::Adaptive;
        assert_eq!(a.interval_at(s(0)), Some(s(5)));
        assert_eq!(a.interval_at(s(59)), Some(s(5)));
        assert_eq!(a.interval_at(s(60)), Some(s(10)));
        assert_eq!(a.interval_at(s(400)), Some(s(20)));
        // a 2-minute run gets 12 + 6 forced GCs (plus the one at the start)
        let mut t = s(0);
        let mut n = 0;
        while t < s(120) {
            n += 1;
            t += a.interval_at(t).unwrap();
        }
        assert_eq!(n, 18);
        assert_eq!(GcSchedule::Never.interval_at(s(1)), None);
        assert_eq!(
            GcSchedule::Every(Duration::ZERO).interval_at(s(1)),
            Some(Duration::from_millis(100))
        );
    }

    /// The default schedule gives a 2-minute CI run enough readings for the analyser after
    /// its automatic warm-up (measured: 19 readings, 14 judged, on the session service).
    #[test]
    fn adaptive_schedule_is_enough_for_a_two_minute_run() {
        use crate::analyze::{MIN_SAMPLES, auto_warmup_s};
        let judged = |run_s: u64| {
            let mut at = Vec::new();
            let mut t = Duration::ZERO;
            while t <= Duration::from_secs(run_s) {
                at.push(t.as_secs_f64());
                t += GcSchedule::Adaptive.interval_at(t).unwrap();
            }
            let span = at.last().unwrap() - at[0];
            let from = at[0] + auto_warmup_s(span);
            at.iter().filter(|&&t| t >= from).count()
        };
        assert_eq!(judged(120), 14);
        assert!(
            judged(120) >= MIN_SAMPLES + 3,
            "a margin for a late first reading"
        );
        assert!(judged(90) >= MIN_SAMPLES);
    }

    #[test]
    fn pause_budget() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut b = PauseBudget::new(ms(200));
        assert!(b.allows(t0).is_ok(), "the first GC always runs");
        b.record(t0, ms(80));
        assert!(b.allows(t0 + ms(10)).is_ok(), "80 + 80 <= 200");
        b.record(t0 + ms(10), ms(80));
        let e = b.allows(t0 + ms(20)).unwrap_err();
        assert!(e.contains("160 ms in the last minute"), "{e}");
        // a minute later the old pauses no longer count
        assert!(b.allows(t0 + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn event_keys() {
        let e = ProbeEvent::Snapshot {
            path: PathBuf::from("/x/heap-1-2.heapsnapshot"),
            bytes: 5,
            took: Duration::ZERO,
        };
        assert_eq!(e.key(), "snapshot:heap-1-2.heapsnapshot");
        assert_eq!(
            ProbeEvent::Gc {
                pause: Duration::from_millis(42)
            }
            .describe(),
            "forced GC, pause 42.0 ms"
        );
    }

    #[test]
    fn a_process_that_is_neither_fails_in_words() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // SAFETY: a plain syscall on our own child's PID.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        assert!(fd >= 0);
        // SAFETY: a fresh fd we own.
        let pidfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let mut probe = Probe::start(
            RuntimeKind::Jvm,
            pid,
            pidfd.as_fd(),
            Plan {
                attach_timeout: Duration::from_secs(1),
                ..Plan::default()
            },
        )
        .unwrap();
        let t = Instant::now();
        while probe.failure().is_none() && t.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let why = probe.failure().unwrap();
        assert!(why.contains("does not catch SIGQUIT"), "{why}");
        let mut events = Vec::new();
        probe.drain(|r| events.extend(r.events));
        assert!(matches!(events[0], ProbeEvent::Failed { .. }));
        probe.stop();
        assert!(child.try_wait().unwrap().is_none(), "sleep is unaffected");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
