//! Node.js over its inspector: the Chrome DevTools Protocol on a WebSocket, blocking, one
//! call at a time, a timeout on every read.
//!
//! Attaching finds an inspector that is already open (the process's own listening sockets on
//! 127.0.0.1, each asked for `/json/list`); otherwise it sends SIGUSR1 through the pidfd, which
//! makes Node open one on 127.0.0.1:9229 (or its `--inspect-port`), and closes it again at the
//! end with `process._debugEnd()`. A command memwatch starts itself can get the inspector on a
//! free port from the start instead: see [`spawn_env`].

use super::net::{self, Listener};
use super::{Result, RuntimeError};
use serde_json::{Value, json};
use std::ffi::OsString;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// The flag that opens the inspector of a spawned Node on a free loopback port, so parallel
/// jobs never collide on 9229. The port is then found like any other (its socket inode).
pub const SPAWN_INSPECT_FLAG: &str = "--inspect=127.0.0.1:0";

/// The inspector's default port (Node's `--inspect-port` default).
pub const DEFAULT_PORT: u16 = 9229;

/// The environment variable and value to give a command memwatch spawns, so that Node opens
/// its inspector on a free loopback port at start: `NODE_OPTIONS` with
/// [`SPAWN_INSPECT_FLAG`] before whatever memwatch's own `NODE_OPTIONS` held. Every Node
/// process started under it (npm, workers it forks) opens its own inspector on a free port.
pub fn spawn_env() -> (OsString, OsString) {
    let mut value = OsString::from(SPAWN_INSPECT_FLAG);
    if let Some(old) = std::env::var_os("NODE_OPTIONS").filter(|v| !v.is_empty()) {
        value.push(" ");
        value.push(old);
    }
    (OsString::from("NODE_OPTIONS"), value)
}

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

/// `Runtime.getHeapUsage`: the JS heap without forcing a GC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapUsage {
    pub used_bytes: u64,
    pub total_bytes: u64,
}

/// `process.memoryUsage()` inside the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryUsage {
    pub rss: u64,
    pub heap_total: u64,
    pub heap_used: u64,
    pub external: u64,
    #[serde(default)]
    pub array_buffers: u64,
}

/// A CDP session with one Node process.
pub struct Inspector {
    pid: i32,
    port: u16,
    ws: Option<WebSocket<TcpStream>>,
    next_id: u64,
    opened_by_memwatch: bool,
    attach_time: Duration,
    /// Reads longer than this are a stuck target.
    pub timeout: Duration,
}

/// How long attaching may take, from the first look to a connected WebSocket.
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(5);
/// The default timeout of one call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A snapshot may take long on a big heap; this bounds the silence between two chunks.
pub const SNAPSHOT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

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
        let deadline = start + timeout;
        // Another user's process: its fd and ns files are closed to memwatch (not "gone").
        let denied = |file| RuntimeError::PermissionDenied { pid, file };
        let gone = |e: RuntimeError| match e {
            RuntimeError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                denied("fd")
            }
            _ => RuntimeError::Gone { pid },
        };
        // Its 127.0.0.1 must be ours: we read its sockets but connect from here.
        let netns = |dir: &Path| std::fs::read_link(dir.join("ns/net"));
        let theirs = netns(&proc_root.join(pid.to_string())).map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                denied("ns/net")
            } else {
                RuntimeError::Gone { pid }
            }
        })?;
        if netns(&proc_root.join("self")).is_ok_and(|ours| ours != theirs) {
            return Err(RuntimeError::OtherNetNamespace { pid });
        }
        let before = net::listeners(proc_root, pid).map_err(gone)?;
        let ep = endpoint_of(proc_root, pid);

        // 1. Already open? The expected port first.
        let loopback = |l: &&Listener| l.addr.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST);
        if ep.port != 0
            && before
                .iter()
                .filter(loopback)
                .any(|l| l.addr.port() == ep.port)
            && let Some(url) = probe(local(ep.port))
        {
            return Self::connect(pid, local(ep.port), &url, false, start, deadline);
        }
        // A free port (--inspect-port=127.0.0.1:0) opened by an earlier SIGUSR1: ask each
        // loopback listener, newest first (an inspector opened late is the newest socket).
        if ep.port == 0 && !ep.at_start {
            for l in before.iter().rev().filter(loopback) {
                if let Some(url) = probe(l.addr) {
                    return Self::connect(pid, l.addr, &url, false, start, deadline);
                }
            }
        }
        // Opened at start (--inspect, e.g. on port 0): never signal (a Node still starting
        // may not catch SIGUSR1 yet); wait for a loopback listener that answers /json/list,
        // oldest first, asking each socket once.
        if ep.at_start {
            if !ep.is_loopback() {
                return Err(RuntimeError::InspectorNotLoopback {
                    pid,
                    addr: format!("{}:{}", ep.host, ep.port),
                });
            }
            let mut asked: Vec<u64> = Vec::new();
            loop {
                for l in net::listeners(proc_root, pid)
                    .map_err(gone)?
                    .iter()
                    .filter(loopback)
                {
                    if asked.contains(&l.inode) {
                        continue;
                    }
                    asked.push(l.inode);
                    if let Some(url) = probe(l.addr) {
                        return Self::connect(pid, l.addr, &url, false, start, deadline);
                    }
                }
                if super::pidfd_exited(pidfd) {
                    return Err(RuntimeError::Gone { pid });
                }
                if Instant::now() >= deadline {
                    return Err(RuntimeError::InspectorNotFound {
                        pid,
                        waited: timeout,
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        // 2. Open it: only on loopback, only if SIGUSR1 is caught, only if the port is free.
        if !ep.is_loopback() {
            return Err(RuntimeError::InspectorNotLoopback {
                pid,
                addr: format!("{}:{}", ep.host, ep.port),
            });
        }
        super::wait_until_caught(proc_root, pid, libc::SIGUSR1, "SIGUSR1", deadline)?;
        if ep.port != 0
            && net::namespace_listeners(proc_root, pid).iter().any(|l| {
                l.addr.port() == ep.port
                    && (l.addr.ip().is_loopback() || l.addr.ip().is_unspecified())
            })
        {
            return Err(RuntimeError::InspectorPortTaken { pid, port: ep.port });
        }
        crate::signal::send_via_pidfd(pidfd, libc::SIGUSR1).map_err(|e| {
            if e.raw_os_error() == Some(libc::ESRCH) {
                RuntimeError::Gone { pid }
            } else {
                RuntimeError::io(format!("cannot send SIGUSR1 to PID {pid}"), e)
            }
        })?;

        // 3. Wait for the new listener: each new socket is asked (up to 3 times) whether it
        // is the inspector; one that is not on 127.0.0.1 is closed at once and refused.
        let old: Vec<u64> = before.iter().map(|l| l.inode).collect();
        let mut tries: Vec<(u64, u32)> = Vec::new();
        // Reading net/tcp costs milliseconds on a busy machine: look often at first (Node
        // opens the inspector within tens of ms), then less and less.
        let mut pause = Duration::from_millis(20);
        loop {
            if super::pidfd_exited(pidfd) {
                return Err(RuntimeError::Gone { pid });
            }
            let now = net::listeners(proc_root, pid).map_err(gone)?;
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
                let inspector = Self::connect(pid, at, &url, true, start, deadline);
                if loopback(&new) {
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
            if Instant::now() >= deadline {
                return Err(RuntimeError::InspectorDidNotOpen {
                    pid,
                    waited: timeout,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(320));
        }
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

    /// Marks the inspector as memwatch's to close: for a command memwatch started with
    /// [`spawn_env`], whose inspector was open before memwatch looked.
    pub fn set_opened_by_memwatch(&mut self, yes: bool) {
        self.opened_by_memwatch = yes;
    }

    /// From the first look at the process to a connected WebSocket.
    pub fn attach_time(&self) -> Duration {
        self.attach_time
    }

    /// `HeapProfiler.collectGarbage`: a full, stop-the-world GC. Returns how long the call
    /// took, which is the pause (plus a loopback round trip).
    pub fn collect_garbage(&mut self) -> Result<Duration> {
        let t = Instant::now();
        self.call("HeapProfiler.collectGarbage", json!({}))?;
        Ok(t.elapsed())
    }

    /// `Runtime.getHeapUsage`: the JS heap's used and total size, no GC.
    pub fn heap_usage(&mut self) -> Result<HeapUsage> {
        let r = self.call("Runtime.getHeapUsage", json!({}))?;
        let num = |k: &str| {
            r.get(k)
                .and_then(Value::as_f64)
                .map(|v| v as u64)
                .ok_or_else(|| RuntimeError::Parse {
                    what: "the answer to Runtime.getHeapUsage".into(),
                    message: format!("no '{k}' in {r}"),
                })
        };
        Ok(HeapUsage {
            used_bytes: num("usedSize")?,
            total_bytes: num("totalSize")?,
        })
    }

    /// `process.memoryUsage()` in the target, through `Runtime.evaluate`: the JS heap plus
    /// what V8 holds outside it (`external`, `arrayBuffers`: Buffers live there).
    pub fn memory_usage(&mut self) -> Result<MemoryUsage> {
        let text = self.evaluate("JSON.stringify(process.memoryUsage())")?;
        let text = text.as_str().ok_or_else(|| RuntimeError::Parse {
            what: "process.memoryUsage()".into(),
            message: format!("not a string: {text}"),
        })?;
        serde_json::from_str(text).map_err(|e| RuntimeError::Parse {
            what: "process.memoryUsage()".into(),
            message: format!("{e} in '{text}'"),
        })
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

    /// `HeapProfiler.takeHeapSnapshot`, each `addHeapSnapshotChunk` written to `path` as it
    /// comes (a new file, mode 0600: a snapshot holds every string in the process). Returns
    /// the bytes written. A failed or incomplete snapshot leaves no file behind.
    pub fn take_heap_snapshot(&mut self, path: &Path) -> Result<u64> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| RuntimeError::io(format!("cannot create '{}'", path.display()), e))?;
        let mut written = 0u64;
        let mut tail = Vec::new();
        let result = self.call_with_events(
            "HeapProfiler.takeHeapSnapshot",
            json!({"reportProgress": false}),
            SNAPSHOT_IDLE_TIMEOUT,
            Duration::from_secs(3600),
            |method, params| {
                if method != "HeapProfiler.addHeapSnapshotChunk" {
                    return Ok(());
                }
                let chunk = params.get("chunk").and_then(Value::as_str).unwrap_or("");
                file.write_all(chunk.as_bytes()).map_err(|e| {
                    RuntimeError::io(format!("cannot write '{}'", path.display()), e)
                })?;
                written += chunk.len() as u64;
                if !chunk.trim_end().is_empty() {
                    tail = chunk.trim_end().as_bytes().to_vec();
                }
                Ok(())
            },
        );
        let result = result.and_then(|_| {
            file.sync_all()
                .map_err(|e| RuntimeError::io(format!("cannot write '{}'", path.display()), e))?;
            if tail.ends_with(b"]}") {
                Ok(written)
            } else {
                Err(RuntimeError::Protocol {
                    what: "HeapProfiler.takeHeapSnapshot".into(),
                    message: format!(
                        "the snapshot ended after {written} bytes without its closing ']}}'"
                    ),
                })
            }
        });
        if result.is_err() {
            let _ = std::fs::remove_file(path);
        }
        result
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
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(RuntimeError::InspectorStillOpen {
            pid: self.pid,
            port: self.port,
        })
    }

    fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let timeout = self.timeout;
        self.call_with_events(method, params, timeout, timeout, |_, _| Ok(()))
    }

    /// Sends one command and reads until its answer, handing events to `on_event`. `idle`
    /// bounds each wait for a message, `total` the whole call.
    fn call_with_events(
        &mut self,
        method: &str,
        params: Value,
        idle: Duration,
        total: Duration,
        mut on_event: impl FnMut(&str, &Value) -> Result<()>,
    ) -> Result<Value> {
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
                timeout_err(idle)
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
                .set_read_timeout(Some(left.min(idle)))
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
            if let Some(m) = v.get("method").and_then(Value::as_str) {
                on_event(m, v.get("params").unwrap_or(&Value::Null))?;
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

    #[test]
    fn memory_usage_json() {
        let m: MemoryUsage = serde_json::from_str(
            r#"{"rss":45191168,"heapTotal":6017024,"heapUsed":4412616,"external":1618452,"arrayBuffers":10515}"#,
        )
        .unwrap();
        assert_eq!(m.external, 1618452);
        assert_eq!(m.array_buffers, 10515);
    }

    #[test]
    fn spawn_env_keeps_existing_options() {
        let (name, value) = spawn_env();
        assert_eq!(name, "NODE_OPTIONS");
        assert!(value.to_string_lossy().starts_with(SPAWN_INSPECT_FLAG));
    }
}
