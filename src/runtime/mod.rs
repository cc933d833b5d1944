//! Asking a managed runtime about its own heap, without changing its code: Node.js through
//! memwatch's agent inside the program (loaded at start by `run`, installed through the
//! inspector by `--pid`), HotSpot JVMs over the attach socket.
//!
//! - [`detect`] tells which runtime a process runs, from /proc alone (nothing is sent).
//! - [`agent::Channel`] (Node.js) and [`jvm::Jvm`] are the blocking clients: one call, one
//!   answer, a deadline on every read. [`node::Inspector`] is used only to install the agent
//!   into a running process, and is closed right after.
//! - [`Probe`] runs one of them on a background thread on a schedule (forced GCs within a
//!   pause budget, cheap heap readings, snapshots or class histograms at given times) and
//!   hands [`Reading`]s to the sampler without ever blocking it.
//!
//! What this does to the target (ports, signals, pauses) is in docs/runtime.md.

pub mod agent;
pub mod jvm;
pub mod net;
pub mod node;
mod probe;

pub use probe::{DumpGuard, GcSchedule, Plan, Probe, ProbeEvent, Reading};

use crate::options::RuntimeChoice;

/// What `--runtime` and its options ask for, checked.
#[derive(Clone, Debug)]
pub struct Settings {
    pub choice: RuntimeChoice,
    pub gc: GcSchedule,
    pub pause_budget: std::time::Duration,
    /// When to take heap snapshots (Node.js) or class histograms (JVM), from the start.
    pub snapshots_at: Vec<std::time::Duration>,
    /// `--runtime` was left to its default: a runtime recognised but not asked gets a
    /// one-line hint (not when `--runtime none` was given on purpose).
    pub hint: bool,
}

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A runtime memwatch can ask about its managed heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RuntimeKind {
    /// Node.js (V8), asked over its inspector.
    Node,
    /// A HotSpot JVM, asked over its attach socket.
    Jvm,
}

impl RuntimeKind {
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Node => "node",
            RuntimeKind::Jvm => "jvm",
        }
    }

    /// The kind `name` names (summary.json's `runtime.kind`).
    pub fn from_name(name: &str) -> Option<RuntimeKind> {
        [RuntimeKind::Node, RuntimeKind::Jvm]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

impl fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why asking a runtime failed. Every message names the process or value and says what to do;
/// the verdict line can print it as is.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("PID {pid} must be positive")]
    BadPid { pid: i32 },
    #[error(
        "PID {pid} ('{exe}') is neither Node.js nor a HotSpot JVM: there is no managed heap to ask about (memwatch judges RSS)"
    )]
    NotARuntime { pid: i32, exe: String },
    #[error("PID {pid} has exited")]
    Gone { pid: i32 },
    #[error(
        "PID {pid} does not catch {signal}: sending it would terminate the process, so memwatch did not"
    )]
    SignalNotCaught { pid: i32, signal: &'static str },
    #[error(
        "the inspector port 127.0.0.1:{port} is taken by another process, so PID {pid} cannot open its inspector there: free the port or start the process with --inspect-port=127.0.0.1:0"
    )]
    InspectorPortTaken { pid: i32, port: u16 },
    #[error(
        "PID {pid} would open its inspector on '{addr}', not on 127.0.0.1: anyone who reaches it can run code in the process, so memwatch refuses"
    )]
    InspectorNotLoopback { pid: i32, addr: String },
    #[error(
        "PID {pid} did not open its inspector within {waited:?} of SIGUSR1 (was it started with --disable-sigusr1, or is its event loop blocked?)"
    )]
    InspectorDidNotOpen { pid: i32, waited: Duration },
    #[error(
        "PID {pid} was started with its inspector open (--inspect), but nothing on 127.0.0.1 answered as an inspector within {waited:?}"
    )]
    InspectorNotFound { pid: i32, waited: Duration },
    #[error(
        "PID {pid} runs in another network namespace (a container?): its inspector would not be on memwatch's 127.0.0.1. Run memwatch inside the same namespace (e.g. 'nsenter -t {pid} -n memwatch ...')"
    )]
    OtherNetNamespace { pid: i32 },
    #[error(
        "the inspector of PID {pid} still listens on 127.0.0.1:{port} after memwatch asked it to close: close it with 'kill -TERM {pid}' or by restarting the process"
    )]
    InspectorStillOpen { pid: i32, port: u16 },
    #[error(
        "PID {pid} did not open its attach socket {} within {waited:?} of SIGQUIT (started with -XX:+DisableAttachMechanism, or not a HotSpot JVM?)", path.display()
    )]
    AttachSocketMissing {
        pid: i32,
        path: PathBuf,
        waited: Duration,
    },
    #[error(
        "PID {pid} was started with -XX:+DisableAttachMechanism (in {given_in}): its JVM never opens an attach socket, so memwatch sent no SIGQUIT (it would only print a thread dump); restart it without that flag to judge its heap"
    )]
    AttachDisabled { pid: i32, given_in: String },
    #[error(
        "the attach socket {} of PID {pid} is not the JVM's: {why}. Another user may have made it first in a shared /tmp; memwatch does not talk to it (remove it, then try again)", path.display()
    )]
    AttachSocketUntrusted {
        pid: i32,
        path: PathBuf,
        why: String,
    },
    #[error(
        "may not read /proc/{pid}/{file}: PID {pid} belongs to another user; run memwatch as the process's user or as root"
    )]
    PermissionDenied { pid: i32, file: &'static str },
    #[error("the JVM (PID {pid}) refused '{command}' with code {code}: {message}")]
    AttachRefused {
        pid: i32,
        command: String,
        code: i32,
        message: String,
    },
    #[error("{what} took longer than {after:?}: the target may be stuck or overloaded")]
    Timeout { what: String, after: Duration },
    #[error(
        "PID {pid} did not answer '{what}'{}: {why}",
        after.map(|d| format!(" within {:.1} s", d.as_secs_f64())).unwrap_or_default()
    )]
    NoAnswer {
        pid: i32,
        what: String,
        after: Option<Duration>,
        why: String,
    },
    #[error(
        "PID {pid} did not load memwatch's agent within {waited:?} ({why}; did the command clear NODE_OPTIONS, or is this not Node.js?): memwatch opened no port"
    )]
    AgentNotLoaded {
        pid: i32,
        waited: Duration,
        why: String,
    },
    #[error(
        "the agent installed in PID {pid} did not connect back to memwatch ({why}){}",
        if *refused > 0 { format!("; {refused} connection(s) from other processes were refused") } else { String::new() }
    )]
    AgentNotConnected { pid: i32, refused: u32, why: String },
    #[error("memwatch is stopping")]
    Stopping,
    #[error(
        "PID {pid} is stopped (SIGSTOP, or a debugger holds it): memwatch did not send SIGUSR1, as Node would open its inspector only when it runs again, perhaps after memwatch has gone and can no longer close it"
    )]
    TargetStopped { pid: i32 },
    #[error("the runtime answered '{what}' with an error: {message}")]
    Protocol { what: String, message: String },
    #[error("cannot parse {what}: {message}")]
    Parse { what: String, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl RuntimeError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> RuntimeError {
        RuntimeError::Io {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// Which runtime PID `pid` runs, from its /proc entry alone; `None` when neither (or gone).
pub fn detect(pid: i32) -> Option<RuntimeKind> {
    detect_in(Path::new("/proc"), pid)
}

/// [`detect`], or an error that names the process's executable and says why memwatch judges
/// RSS only: for a verdict line or a `--runtime` the user asked for.
pub fn identify(pid: i32) -> Result<RuntimeKind> {
    if pid <= 0 {
        return Err(RuntimeError::BadPid { pid });
    }
    let proc_root = Path::new("/proc");
    detect_in(proc_root, pid).ok_or_else(|| {
        if proc_root.join(pid.to_string()).exists() {
            RuntimeError::NotARuntime {
                pid,
                exe: exe_name(proc_root, pid),
            }
        } else {
            RuntimeError::Gone { pid }
        }
    })
}

/// [`detect`] with an injectable /proc root (recorded fixtures in tests).
pub fn detect_in(proc_root: &Path, pid: i32) -> Option<RuntimeKind> {
    if pid <= 0 {
        return None;
    }
    let dir = proc_root.join(pid.to_string());
    let exe = std::fs::read_link(dir.join("exe")).ok();
    let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    let argv0 = cmdline.split(|&b| b == 0).next().unwrap_or_default();
    if let Some(kind) = kind_from_names(exe.as_deref(), &String::from_utf8_lossy(argv0)) {
        return Some(kind);
    }
    // A JVM embedded under another name (a launcher, jsvc): libjvm.so is mapped.
    let maps = std::fs::read_to_string(dir.join("maps")).unwrap_or_default();
    maps_have_libjvm(&maps).then_some(RuntimeKind::Jvm)
}

/// The runtime named by the executable's path or by argv\[0\] (pure).
pub fn kind_from_names(exe: Option<&Path>, argv0: &str) -> Option<RuntimeKind> {
    let base = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut names = Vec::new();
    if let Some(exe) = exe {
        // A deleted executable (upgraded under a running process) reads "node (deleted)".
        names.push(base(exe).trim_end_matches(" (deleted)").to_string());
    }
    names.push(base(Path::new(argv0)));
    names.iter().find_map(|n| match n.as_str() {
        "node" | "nodejs" => Some(RuntimeKind::Node),
        "java" | "javaw" => Some(RuntimeKind::Jvm),
        _ => None,
    })
}

/// True when a /proc/PID/maps text maps HotSpot's libjvm.so (pure).
pub fn maps_have_libjvm(maps: &str) -> bool {
    maps.lines().any(|l| {
        l.split_whitespace()
            .nth(5)
            .is_some_and(|p| p.ends_with("/libjvm.so"))
    })
}

/// The name a process is known by in messages: the basename of its executable.
pub(crate) fn exe_name(proc_root: &Path, pid: i32) -> String {
    std::fs::read_link(proc_root.join(pid.to_string()).join("exe"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "?".into())
}

/// Whether the process behind `pidfd` has exited (the pidfd is readable). Does not block.
pub(crate) fn pidfd_exited(pidfd: std::os::fd::BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    let mut fd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    unsafe { libc::poll(&mut fd, 1, 0) > 0 }
}

/// Whether PID is stopped (state `T` or `t` in /proc/PID/stat).
pub(crate) fn is_stopped(proc_root: &Path, pid: i32) -> bool {
    std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat"))
        .ok()
        .and_then(|s| crate::tree::parse_stat(pid, &s))
        .is_some_and(|e| matches!(e.state, 'T' | 't'))
}

/// A process younger than this may still be installing its signal handlers.
const STARTING: Duration = Duration::from_secs(5);

/// Waits until PID catches `signal` (its `SigCgt`), as long as it is young enough to still
/// be starting (a runtime installs its handlers in its first moments) and `deadline` allows.
/// Sending a signal it does not catch would run the default action: usually its end.
pub(crate) fn wait_until_caught(
    proc_root: &Path,
    pid: i32,
    signal: i32,
    name: &'static str,
    deadline: std::time::Instant,
) -> Result<()> {
    let dir = proc_root.join(pid.to_string());
    loop {
        let status =
            std::fs::read_to_string(dir.join("status")).map_err(|_| RuntimeError::Gone { pid })?;
        if caught_signals(&status).is_some_and(|m| crate::signal::is_caught(m, signal)) {
            return Ok(());
        }
        let young = process_age(proc_root, pid).is_some_and(|age| age < STARTING);
        if !young || std::time::Instant::now() >= deadline {
            return Err(RuntimeError::SignalNotCaught { pid, signal: name });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long PID has been running: its start time (/proc/PID/stat field 22, in clock ticks
/// after boot) against /proc/uptime.
fn process_age(proc_root: &Path, pid: i32) -> Option<Duration> {
    let stat = std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let start_ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string(proc_root.join("uptime"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (hz > 0.0).then(|| Duration::from_secs_f64((uptime - start_ticks / hz).max(0.0)))
}

/// The `SigCgt` mask from a /proc/PID/status text.
pub(crate) fn caught_signals(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// The process at the other end of a UNIX socket: (pid, uid), `SO_PEERCRED` (in memwatch's PID
/// namespace).
pub(crate) fn peer_of(stream: &std::os::unix::net::UnixStream) -> std::io::Result<(i32, u32)> {
    // SAFETY: a zeroed ucred buffer of the length given.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    let ret = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(stream),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((cred.pid, cred.uid))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let k = |exe: &str, argv0: &str| kind_from_names(Some(Path::new(exe)), argv0);
        assert_eq!(k("/usr/bin/node", "node"), Some(RuntimeKind::Node));
        assert_eq!(k("/usr/bin/nodejs", "x"), Some(RuntimeKind::Node));
        assert_eq!(k("/opt/n/bin/node (deleted)", ""), Some(RuntimeKind::Node));
        assert_eq!(
            k("/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "java"),
            Some(RuntimeKind::Jvm)
        );
        assert_eq!(k("/usr/bin/python3.11", "python3"), None);
        // exe unreadable (another user's process): argv[0] still tells
        assert_eq!(
            kind_from_names(None, "/usr/local/bin/node"),
            Some(RuntimeKind::Node)
        );
        assert_eq!(k("/usr/bin/nodemon", "nodemon"), None);
    }

    #[test]
    fn libjvm_in_maps() {
        let maps = "\
7f1c2c000000-7f1c2c021000 rw-p 00000000 00:00 0 
7f1c30a00000-7f1c30c5c000 r--p 00000000 08:01 1315842                    /usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so
7f1c30c5c000-7f1c31a3a000 r-xp 0025c000 08:01 1315842                    /usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so
";
        assert!(maps_have_libjvm(maps));
        assert!(!maps_have_libjvm(
            "55d0c8a00000-55d0c8a01000 r--p 00000000 08:01 42 /usr/bin/cat\n"
        ));
        assert!(!maps_have_libjvm(
            "55d0c8a00000-55d0c8a01000 r--p 00000000 08:01 42 /opt/libjvm.so.bak\n"
        ));
    }

    #[test]
    fn age_of_this_process_and_of_init() {
        let proc_root = Path::new("/proc");
        let me = process_age(proc_root, std::process::id() as i32).unwrap();
        let init = process_age(proc_root, 1).unwrap();
        assert!(me <= init, "{me:?} {init:?}");
        assert!(me < Duration::from_secs(3600));
    }

    #[test]
    fn sigcgt() {
        let status = "Name:\tnode\nSigBlk:\t0000000000000000\nSigCgt:\t0000000100004602\n";
        let mask = caught_signals(status).unwrap();
        assert!(crate::signal::is_caught(mask, libc::SIGUSR1));
        assert!(!crate::signal::is_caught(mask, libc::SIGUSR2));
        assert_eq!(caught_signals("Name:\tx\n"), None);
    }

    #[test]
    fn detect_on_a_recorded_proc_tree() {
        let root = tempfile::tempdir().unwrap();
        let mk = |pid: &str, exe: &str, cmdline: &[u8], maps: &str| {
            let d = root.path().join(pid);
            std::fs::create_dir_all(&d).unwrap();
            std::os::unix::fs::symlink(exe, d.join("exe")).unwrap();
            std::fs::write(d.join("cmdline"), cmdline).unwrap();
            std::fs::write(d.join("maps"), maps).unwrap();
        };
        mk("10", "/usr/bin/node", b"node\0app.js\0", "");
        mk(
            "11",
            "/usr/sbin/jsvc",
            b"jsvc\0-cp\0x\0",
            "7f-8f r-xp 0 08:01 1 /usr/lib/jvm/x/lib/server/libjvm.so\n",
        );
        mk("12", "/usr/bin/sleep", b"sleep\x00100\x00", "");
        assert_eq!(detect_in(root.path(), 10), Some(RuntimeKind::Node));
        assert_eq!(detect_in(root.path(), 11), Some(RuntimeKind::Jvm));
        assert_eq!(detect_in(root.path(), 12), None);
        assert_eq!(detect_in(root.path(), 13), None);
        assert_eq!(detect_in(root.path(), 0), None);
    }
}
