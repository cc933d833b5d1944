//! Node.js's inspector, used only to install memwatch's agent into a running process
//! (`--pid`): the Chrome DevTools Protocol on a WebSocket, blocking, one call at a time, a
//! timeout on every read. [`attach_agent`] opens the inspector (SIGUSR1 through the pidfd,
//! when it is not open yet), evaluates the agent in the program, closes the inspector at once
//! (`process._debugEnd()`) and then talks to the agent over a Unix socket that accepts only
//! the target (`agent.rs`). A command memwatch starts itself gets the agent with `--require`
//! and no inspector at all (`agent::Preload`).

use super::agent::{AgentListener, Channel, install_expression};
use super::net::{self, Listener};
use super::{Result, RuntimeError};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// The inspector's default port (Node's `--inspect-port` default).
pub const DEFAULT_PORT: u16 = 9229;

/// Where a Node process opens (or has opened) its inspector, from its command line and
/// `NODE_OPTIONS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InspectEndpoint {
    pub host: String,
    /// 0: a free port picked at start.
    pub port: u16,
    /// Opened at start (`--inspect`, `--inspect-brk`, `--inspect-wait`).
    pub at_start: bool,
}

impl Default for InspectEndpoint {
    fn default() -> Self {
        InspectEndpoint {
            host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            at_start: false,
        }
    }
}

impl InspectEndpoint {
    /// Only 127.0.0.1: `localhost` may resolve to ::1 as well, and Node then listens on both.
    fn is_loopback(&self) -> bool {
        self.host == "127.0.0.1"
    }
}

/// Node's options that take the next argument as their value (so it is not the script).
const VALUE_OPTIONS: [&str; 12] = [
    "-r",
    "--require",
    "-e",
    "--eval",
    "-p",
    "--print",
    "--import",
    "--loader",
    "--experimental-loader",
    "-C",
    "--conditions",
    "--title",
];

/// The inspector endpoint from `NODE_OPTIONS` words and argv (pure). Node applies
/// `NODE_OPTIONS` first, then the command line; options end at the script name or `--`.
pub fn inspect_endpoint(node_options: &str, argv: &[String]) -> InspectEndpoint {
    let mut ep = InspectEndpoint::default();
    let mut apply = |arg: &str| {
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg, None),
        };
        match name {
            "--inspect" | "--inspect-brk" | "--inspect-wait" => {
                ep.at_start = true;
                if let Some(v) = value {
                    set_host_port(&mut ep, v);
                }
            }
            "--inspect-port" | "--debug-port" => {
                if let Some(v) = value {
                    set_host_port(&mut ep, v);
                }
            }
            _ => {}
        }
    };
    for word in node_options.split_whitespace() {
        apply(word);
    }
    let mut args = argv.iter().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--" || !arg.starts_with('-') || arg == "-" {
            break;
        }
        if VALUE_OPTIONS.contains(&arg.as_str()) {
            args.next();
            continue;
        }
        if arg == "--inspect-port" || arg == "--debug-port" {
            if let Some(v) = args.next() {
                apply(&format!("{arg}={v}"));
            }
            continue;
        }
        apply(arg);
    }
    ep
}

/// `9230`, `0.0.0.0:9230`, `[::1]:9230` or `localhost`.
fn set_host_port(ep: &mut InspectEndpoint, value: &str) {
    if let Ok(port) = value.parse::<u16>() {
        ep.port = port;
        return;
    }
    let (host, port) = match value.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse::<u16>().ok()),
        _ => (value, None),
    };
    ep.host = host.trim_start_matches('[').trim_end_matches(']').into();
    if let Some(port) = port {
        ep.port = port;
    }
}

/// The endpoint of a running process, read from /proc/PID/cmdline and /proc/PID/environ.
fn endpoint_of(proc_root: &Path, pid: i32) -> InspectEndpoint {
    let dir = proc_root.join(pid.to_string());
    let split = |raw: Vec<u8>| -> Vec<String> {
        raw.split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    };
    let argv = split(std::fs::read(dir.join("cmdline")).unwrap_or_default());
    let env = split(std::fs::read(dir.join("environ")).unwrap_or_default());
    let node_options = env
        .iter()
        .find_map(|e| e.strip_prefix("NODE_OPTIONS="))
        .unwrap_or("");
    inspect_endpoint(node_options, &argv)
}

/// The WebSocket URL of the first target in a `/json/list` answer, rebuilt on `addr`, where
/// it was reached (an inspector bound to 0.0.0.0 reports that address) (pure).
pub fn debugger_url(json_list: &str, addr: SocketAddr) -> Option<String> {
    let list: Value = serde_json::from_str(json_list).ok()?;
    let url = list
        .as_array()?
        .iter()
        .find_map(|t| t.get("webSocketDebuggerUrl")?.as_str())?;
    let rest = url.strip_prefix("ws://")?;
    let path = &rest[rest.find('/')?..];
    Some(format!("ws://{addr}{path}"))
}

/// A CDP session with one Node process.
pub struct Inspector {
    pid: i32,
    port: u16,
    ws: Option<WebSocket<TcpStream>>,
    next_id: u64,
    opened_by_memwatch: bool,
    attach_time: Duration,
    /// When memwatch sent SIGUSR1 (it opened the inspector).
    signalled_at: Option<Instant>,
    /// Reads longer than this are a stuck target.
    pub timeout: Duration,
}

/// How long attaching may take, from the first look to a connected WebSocket.
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(5);
/// The default timeout of one call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A snapshot may take long on a big heap; this bounds the silence between two chunks.
pub const SNAPSHOT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// memwatch's agent running in a process it attached to, and what it took to get there.
pub struct AgentAttach {
    pub channel: Channel,
    /// The inspector's port on 127.0.0.1, used for the install.
    pub port: u16,
    /// memwatch opened the inspector (SIGUSR1) and closed it again.
    pub opened_by_memwatch: bool,
    /// From SIGUSR1 until nothing listened on the inspector's port any more: the time another
    /// local user could have reached the inspector. `None`: memwatch did not open it.
    pub open_window: Option<Duration>,
    /// From the first look at the process to the agent's hello.
    pub took: Duration,
    /// Connections to memwatch's socket from other processes, refused.
    pub refused: u32,
}

/// Installs memwatch's agent in PID through its inspector (opened with SIGUSR1 if needed)
/// and closes the inspector right after, before anything else: from then on the agent
/// answers over a Unix socket on which memwatch accepted only PID. An inspector that was
/// already open is left open, as memwatch found it (memwatch's session ends).
pub fn attach_agent(
    pid: i32,
    pidfd: BorrowedFd<'_>,
    timeout: Duration,
    stop: Option<&OwnedFd>,
) -> Result<AgentAttach> {
    let start = Instant::now();
    let deadline = start + timeout;
    let listener = AgentListener::new()?;
    let mut inspector = Inspector::attach(pid, pidfd, timeout)?;
    inspector.timeout = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(500));
    let installed = inspector.install_agent(&install_expression(listener.name()));
    // The door closes first, whatever the install did.
    let (port, opened) = (inspector.port(), inspector.opened_by_memwatch());
    let closed = inspector.close();
    let open_window = inspector.signalled_at.map(|t| t.elapsed());
    closed?;
    installed?;
    let stop_fd = || stop.and_then(|s| s.try_clone().ok());
    let accept_by = deadline.max(Instant::now() + Duration::from_secs(1));
    let (stream, refused) =
        listener.accept_from(pid, pidfd, accept_by, stop.map(std::os::fd::AsFd::as_fd))?;
    let mut channel = Channel::new(pid, stream, stop_fd());
    channel.wait_hello(accept_by)?;
    Ok(AgentAttach {
        channel,
        port,
        opened_by_memwatch: opened,
        open_window,
        took: start.elapsed(),
        refused,
    })
}

/// One attach to PID's inspector: where to look, and until when.
struct Attempt<'a> {
    proc_root: &'a Path,
    pid: i32,
    pidfd: BorrowedFd<'a>,
    timeout: Duration,
    start: Instant,
    deadline: Instant,
}

/// A listener on 127.0.0.1 (the only address memwatch connects to).
fn on_loopback(l: &Listener) -> bool {
    l.addr.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST)
}

impl Attempt<'_> {
    fn connect(&self, at: SocketAddr, url: &str, opened_by_memwatch: bool) -> Result<Inspector> {
        Inspector::connect(
            self.pid,
            at,
            url,
            opened_by_memwatch,
            self.start,
            self.deadline,
        )
    }

    /// Reading PID's sockets failed: another user's process closes its fd files to
    /// memwatch (not "gone").
    fn gone(&self, e: RuntimeError) -> RuntimeError {
        match e {
            RuntimeError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                RuntimeError::PermissionDenied {
                    pid: self.pid,
                    file: "fd",
                }
            }
            _ => RuntimeError::Gone { pid: self.pid },
        }
    }

    /// Its 127.0.0.1 must be ours: we read its sockets but connect from here.
    fn same_network_namespace(&self) -> Result<()> {
        let pid = self.pid;
        let netns = |dir: &Path| std::fs::read_link(dir.join("ns/net"));
        let theirs = netns(&self.proc_root.join(pid.to_string())).map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                RuntimeError::PermissionDenied {
                    pid,
                    file: "ns/net",
                }
            } else {
                RuntimeError::Gone { pid }
            }
        })?;
        if netns(&self.proc_root.join("self")).is_ok_and(|ours| ours != theirs) {
            return Err(RuntimeError::OtherNetNamespace { pid });
        }
        Ok(())
    }

    /// The expected port when it listens; or a free port (--inspect-port=127.0.0.1:0)
    /// opened by an earlier SIGUSR1: each loopback listener, newest first (an inspector
    /// opened late is the newest socket).
    fn already_open(&self, ep: &InspectEndpoint, before: &[Listener]) -> Option<Result<Inspector>> {
        if ep.port != 0
            && before
                .iter()
                .any(|l| on_loopback(l) && l.addr.port() == ep.port)
            && let Some(url) = probe(local(ep.port))
        {
            return Some(self.connect(local(ep.port), &url, false));
        }
        if ep.port == 0 && !ep.at_start {
            for l in before.iter().rev().filter(|l| on_loopback(l)) {
                if let Some(url) = probe(l.addr) {
                    return Some(self.connect(l.addr, &url, false));
                }
            }
        }
        None
    }

    /// Opened at start (--inspect, e.g. on port 0): never signal (a Node still starting may
    /// not catch SIGUSR1 yet); wait for a loopback listener that answers /json/list, oldest
    /// first, asking each socket once.
    fn opened_at_start(&self, ep: &InspectEndpoint) -> Result<Inspector> {
        let pid = self.pid;
        if !ep.is_loopback() {
            return Err(RuntimeError::InspectorNotLoopback {
                pid,
                addr: format!("{}:{}", ep.host, ep.port),
            });
        }
        let mut asked: Vec<u64> = Vec::new();
        loop {
            let listeners = net::listeners(self.proc_root, pid).map_err(|e| self.gone(e))?;
            for l in listeners.iter().filter(|l| on_loopback(l)) {
                if asked.contains(&l.inode) {
                    continue;
                }
                asked.push(l.inode);
                if let Some(url) = probe(l.addr) {
                    return self.connect(l.addr, &url, false);
                }
            }
            if super::pidfd_exited(self.pidfd) {
                return Err(RuntimeError::Gone { pid });
            }
            if Instant::now() >= self.deadline {
                return Err(RuntimeError::InspectorNotFound {
                    pid,
                    waited: self.timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Only on loopback, only if SIGUSR1 is caught, only if the port is free: sends it, and
    /// says when.
    fn open_with_sigusr1(&self, ep: &InspectEndpoint) -> Result<Instant> {
        let (proc_root, pid) = (self.proc_root, self.pid);
        if !ep.is_loopback() {
            return Err(RuntimeError::InspectorNotLoopback {
                pid,
                addr: format!("{}:{}", ep.host, ep.port),
            });
        }
        super::wait_until_caught(proc_root, pid, libc::SIGUSR1, "SIGUSR1", self.deadline)?;
        // A stopped process would open its inspector only when it runs again, perhaps after
        // memwatch has gone and can no longer close it.
        if super::is_stopped(proc_root, pid) {
            return Err(RuntimeError::TargetStopped { pid });
        }
        if ep.port != 0
            && net::namespace_listeners(proc_root, pid).iter().any(|l| {
                l.addr.port() == ep.port
                    && (l.addr.ip().is_loopback() || l.addr.ip().is_unspecified())
            })
        {
            return Err(RuntimeError::InspectorPortTaken { pid, port: ep.port });
        }
        let signalled_at = Instant::now();
        crate::signal::send_via_pidfd(self.pidfd, libc::SIGUSR1).map_err(|e| {
            if e.raw_os_error() == Some(libc::ESRCH) {
                RuntimeError::Gone { pid }
            } else {
                RuntimeError::io(format!("cannot send SIGUSR1 to PID {pid}"), e)
            }
        })?;
        Ok(signalled_at)
    }

    /// Waits for the listener SIGUSR1 opened. The expected port is tried every 2 ms (a
    /// refused connection costs microseconds; the window another user has is as long as
    /// this wait), and must then be a new listener of PID's. Every other new socket is asked
    /// (up to 3 times) whether it is the inspector; one that is not on 127.0.0.1 is closed
    /// and refused.
    fn new_listener(&self, ep: &InspectEndpoint, before: &[Listener]) -> Result<Inspector> {
        let (proc_root, pid) = (self.proc_root, self.pid);
        let old: Vec<u64> = before.iter().map(|l| l.inode).collect();
        let mut tries: Vec<(u64, u32)> = Vec::new();
        // Reading net/tcp costs milliseconds on a busy machine: look often at first (Node
        // opens the inspector within tens of ms), then less and less.
        let mut next_scan = Instant::now();
        let mut scan_pause = Duration::from_millis(20);
        loop {
            if super::pidfd_exited(self.pidfd) {
                return Err(RuntimeError::Gone { pid });
            }
            if ep.port != 0
                && let Some(url) = probe(local(ep.port))
            {
                let now = net::listeners(proc_root, pid).map_err(|e| self.gone(e))?;
                if now
                    .iter()
                    .any(|l| !old.contains(&l.inode) && on_loopback(l) && l.addr.port() == ep.port)
                {
                    return self.connect(local(ep.port), &url, true);
                }
            }
            if Instant::now() >= next_scan {
                next_scan = Instant::now() + scan_pause;
                scan_pause = (scan_pause * 2).min(Duration::from_millis(320));
                let now = net::listeners(proc_root, pid).map_err(|e| self.gone(e))?;
                for new in now.iter().filter(|l| !old.contains(&l.inode)) {
                    let n = match tries.iter_mut().find(|(i, _)| *i == new.inode) {
                        Some((_, n)) => n,
                        None => {
                            tries.push((new.inode, 0));
                            &mut tries.last_mut().expect("just pushed").1
                        }
                    };
                    if *n >= 3 {
                        continue;
                    }
                    *n += 1;
                    let at = reach(new.addr);
                    let Some(url) = probe(at) else { continue };
                    let inspector = self.connect(at, &url, true);
                    if on_loopback(new) {
                        return inspector;
                    }
                    // Opened where others may reach it: close it now, then refuse.
                    if let Ok(mut i) = inspector {
                        let _ = i.close();
                    }
                    return Err(RuntimeError::InspectorNotLoopback {
                        pid,
                        addr: new.addr.to_string(),
                    });
                }
            }
            if Instant::now() >= self.deadline {
                return Err(RuntimeError::InspectorDidNotOpen {
                    pid,
                    waited: self.timeout,
                });
            }
            std::thread::sleep(if ep.port != 0 {
                Duration::from_millis(2)
            } else {
                next_scan.saturating_duration_since(Instant::now())
            });
        }
    }
}

impl Inspector {
    /// Connects to PID's inspector, opening it with SIGUSR1 (through `pidfd`) when it is not
    /// open yet. Refuses an inspector that is, or would be, on anything but 127.0.0.1.
    pub fn attach(pid: i32, pidfd: BorrowedFd<'_>, timeout: Duration) -> Result<Inspector> {
        Self::attach_in(Path::new("/proc"), pid, pidfd, timeout)
    }

    fn attach_in(
        proc_root: &Path,
        pid: i32,
        pidfd: BorrowedFd<'_>,
        timeout: Duration,
    ) -> Result<Inspector> {
        if pid <= 0 {
            return Err(RuntimeError::BadPid { pid });
        }
        let start = Instant::now();
        let a = Attempt {
            proc_root,
            pid,
            pidfd,
            timeout,
            start,
            deadline: start + timeout,
        };
        a.same_network_namespace()?;
        let before = net::listeners(proc_root, pid).map_err(|e| a.gone(e))?;
        let ep = endpoint_of(proc_root, pid);
        // 1. Already open?
        if let Some(found) = a.already_open(&ep, &before) {
            return found;
        }
        if ep.at_start {
            return a.opened_at_start(&ep);
        }
        // 2. Open it, 3. wait for the new listener.
        let signalled_at = a.open_with_sigusr1(&ep)?;
        a.new_listener(&ep, &before).map(|mut i| {
            i.signalled_at = Some(signalled_at);
            i
        })
    }

    fn connect(
        pid: i32,
        addr: SocketAddr,
        url: &str,
        opened_by_memwatch: bool,
        start: Instant,
        deadline: Instant,
    ) -> Result<Inspector> {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(500));
        let port = addr.port();
        let what = format!("the inspector WebSocket {url}");
        let stream = TcpStream::connect_timeout(&addr, left)
            .map_err(|e| RuntimeError::io(format!("cannot connect to {what}"), e))?;
        stream
            .set_read_timeout(Some(left))
            .and_then(|_| stream.set_write_timeout(Some(left)))
            .and_then(|_| stream.set_nodelay(true))
            .map_err(|e| RuntimeError::io(what.clone(), e))?;
        let (ws, _) =
            tungstenite::client::client(url, stream).map_err(|e| RuntimeError::Protocol {
                what: format!("the WebSocket handshake with {what}"),
                message: e.to_string(),
            })?;
        Ok(Inspector {
            pid,
            port,
            ws: Some(ws),
            next_id: 1,
            opened_by_memwatch,
            attach_time: start.elapsed(),
            signalled_at: None,
            timeout: CALL_TIMEOUT,
        })
    }

    /// Connects to an inspector listening on `addr` (a wildcard address is reached on
    /// loopback) of PID, if it answers as one: `None` when it is not an inspector. `ours`:
    /// memwatch caused it to open, so [`Inspector::close`] closes it.
    pub fn connect_at(
        pid: i32,
        addr: SocketAddr,
        ours: bool,
        timeout: Duration,
    ) -> Result<Option<Inspector>> {
        let start = Instant::now();
        let at = reach(addr);
        match probe(at) {
            Some(url) => Self::connect(pid, at, &url, ours, start, start + timeout).map(Some),
            None => Ok(None),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The inspector's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether memwatch opened the inspector (and so closes it in [`Inspector::close`]).
    pub fn opened_by_memwatch(&self) -> bool {
        self.opened_by_memwatch
    }

    /// From the first look at the process to a connected WebSocket.
    pub fn attach_time(&self) -> Duration {
        self.attach_time
    }

    /// Evaluates memwatch's agent in the program (`require` given by the inspector's command
    /// line API, as in the DevTools console). Its value says it ran.
    pub fn install_agent(&mut self, expression: &str) -> Result<()> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "includeCommandLineAPI": true,
                   "returnByValue": true, "silent": true}),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            let text = e
                .pointer("/exception/description")
                .and_then(Value::as_str)
                .map_or_else(|| e.to_string(), str::to_string);
            return Err(RuntimeError::Protocol {
                what: "installing memwatch's agent".into(),
                message: text,
            });
        }
        Ok(())
    }

    /// `Runtime.evaluate` of `expression`; its value (returned by value).
    pub fn evaluate(&mut self, expression: &str) -> Result<Value> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "silent": true}),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            return Err(RuntimeError::Protocol {
                what: format!("Runtime.evaluate '{expression}'"),
                message: e.to_string(),
            });
        }
        Ok(r.pointer("/result/value").cloned().unwrap_or(Value::Null))
    }

    /// Leaves the process as memwatch found it: if memwatch opened the inspector,
    /// `process._debugEnd()` closes it (no answer comes: the socket closes) and this checks
    /// that nothing listens on its port any more. Otherwise only the session ends.
    /// Idempotent; also run on drop.
    pub fn close(&mut self) -> Result<()> {
        let Some(mut ws) = self.ws.take() else {
            return Ok(());
        };
        if !self.opened_by_memwatch {
            let _ = ws.close(None);
            let _ = ws.flush();
            return Ok(());
        }
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "method": "Runtime.evaluate",
                         "params": {"expression": "process._debugEnd()"}});
        let _ = ws.send(Message::text(msg.to_string()));
        // Wait (bounded) for the socket to close; a reply would mean it did not work.
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if ws
                .get_ref()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .is_err()
            {
                break;
            }
            match ws.read() {
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        drop(ws);
        while Instant::now() < deadline + Duration::from_secs(2) {
            match net::listeners(Path::new("/proc"), self.pid) {
                Ok(ls) if ls.iter().any(|l| l.addr.port() == self.port) => {}
                // Gone or not listening: either way nothing is left open.
                _ => return Ok(()),
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(RuntimeError::InspectorStillOpen {
            pid: self.pid,
            port: self.port,
        })
    }

    /// Sends one command and reads until its answer (events are skipped), at most
    /// `self.timeout`.
    fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let total = self.timeout;
        let pid = self.pid;
        let Some(ws) = self.ws.as_mut() else {
            return Err(RuntimeError::Protocol {
                what: method.into(),
                message: format!("the inspector session with PID {pid} is closed"),
            });
        };
        let id = self.next_id;
        self.next_id += 1;
        let timeout_err = |after| RuntimeError::Timeout {
            what: format!("{method} on PID {pid}"),
            after,
        };
        let ws_err = |e: tungstenite::Error| match e {
            tungstenite::Error::Io(io)
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                timeout_err(total)
            }
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
                RuntimeError::Protocol {
                    what: method.into(),
                    message: format!("PID {pid} closed the inspector session"),
                }
            }
            other => RuntimeError::Protocol {
                what: method.into(),
                message: other.to_string(),
            },
        };
        let msg = json!({"id": id, "method": method, "params": params});
        ws.send(Message::text(msg.to_string())).map_err(ws_err)?;
        let deadline = Instant::now() + total;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timeout_err(total));
            }
            ws.get_ref()
                .set_read_timeout(Some(left))
                .map_err(|e| RuntimeError::io(method, e))?;
            let text = match ws.read().map_err(ws_err)? {
                Message::Text(t) => t,
                Message::Close(_) => {
                    return Err(ws_err(tungstenite::Error::ConnectionClosed));
                }
                _ => continue,
            };
            let v: Value =
                serde_json::from_str(text.as_str()).map_err(|e| RuntimeError::Parse {
                    what: format!("a message from PID {pid}'s inspector"),
                    message: e.to_string(),
                })?;
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(err) = v.get("error") {
                    return Err(RuntimeError::Protocol {
                        what: method.into(),
                        message: err.to_string(),
                    });
                }
                return Ok(v.get("result").cloned().unwrap_or(Value::Null));
            }
        }
    }
}

impl Drop for Inspector {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// Whether `addr` answers `/json/list` like an inspector; its debugger URL if so.
fn probe(addr: SocketAddr) -> Option<String> {
    let body = net::http_get(addr, "/json/list", Duration::from_millis(700)).ok()?;
    debugger_url(&body, addr)
}

/// 127.0.0.1:port.
fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Where memwatch reaches a listener: itself, or for a wildcard (0.0.0.0, ::) the loopback
/// address of its family.
pub fn reach(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => local(addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn endpoints() {
        let d = InspectEndpoint::default();
        assert_eq!(inspect_endpoint("", &argv("node app.js")), d);
        let e = inspect_endpoint("", &argv("node --inspect=127.0.0.1:0 app.js"));
        assert_eq!(
            (e.host.as_str(), e.port, e.at_start),
            ("127.0.0.1", 0, true)
        );
        let e = inspect_endpoint("--inspect=127.0.0.1:0", &argv("node app.js --inspect=9"));
        assert_eq!(
            (e.port, e.at_start),
            (0, true),
            "after the script: the script's"
        );
        let e = inspect_endpoint("", &argv("node --inspect-port=0.0.0.0:9333 app.js"));
        assert_eq!(
            (e.host.as_str(), e.port, e.at_start),
            ("0.0.0.0", 9333, false)
        );
        assert!(!e.is_loopback());
        let e = inspect_endpoint("", &argv("node --inspect-port 9333 app.js"));
        assert_eq!(e.port, 9333);
        let e = inspect_endpoint("", &argv("node -r --inspect=1 app.js"));
        assert_eq!(e, d, "a -r value is not an option");
        let e = inspect_endpoint("", &argv("node --inspect-brk=localhost app.js"));
        assert_eq!((e.host.as_str(), e.port), ("localhost", DEFAULT_PORT));
        assert!(!e.is_loopback(), "only 127.0.0.1 is accepted");
        let e = inspect_endpoint("", &argv("node --inspect=[::1]:9000 x.js"));
        assert_eq!((e.host.as_str(), e.port), ("::1", 9000));
        let e = inspect_endpoint(
            "--inspect-port=9444",
            &argv("node --inspect-port=9555 x.js"),
        );
        assert_eq!(e.port, 9555, "the command line wins over NODE_OPTIONS");
    }

    #[test]
    fn json_list() {
        // Recorded from Node 20.20.2 (`--inspect=0.0.0.0:9229` shows the bound address).
        let body = r#"[ {
  "description": "node.js instance",
  "devtoolsFrontendUrl": "devtools://devtools/bundled/js_app.html?experiments=true&v8only=true&ws=0.0.0.0:9229/3835c724-bbfe-41e2-84af-4a1eae71fa21",
  "faviconUrl": "https://nodejs.org/static/images/favicons/favicon.ico",
  "id": "3835c724-bbfe-41e2-84af-4a1eae71fa21",
  "title": "app.js",
  "type": "node",
  "url": "file:///tmp/app.js",
  "webSocketDebuggerUrl": "ws://0.0.0.0:9229/3835c724-bbfe-41e2-84af-4a1eae71fa21"
} ]"#;
        let at = |a: &str| a.parse::<SocketAddr>().unwrap();
        assert_eq!(
            debugger_url(body, at("127.0.0.1:9229")).as_deref(),
            Some("ws://127.0.0.1:9229/3835c724-bbfe-41e2-84af-4a1eae71fa21")
        );
        assert_eq!(
            debugger_url(body, at("[::1]:9229")).as_deref(),
            Some("ws://[::1]:9229/3835c724-bbfe-41e2-84af-4a1eae71fa21")
        );
        let a = at("127.0.0.1:1");
        assert_eq!(debugger_url("[]", a), None);
        assert_eq!(debugger_url("<html>", a), None);
        assert_eq!(debugger_url(r#"[{"id":"x"}]"#, a), None);
    }
}
