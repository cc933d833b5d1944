//! memwatch's agent inside a Node.js program (`agent.js`, shipped inside the binary) and
//! memwatch's end of its channel. No TCP port is involved:
//!
//! - `memwatch run` makes a socketpair, passes one end to the command (its number in
//!   `MEMWATCH_AGENT_FD`) and loads the agent with `--require` from a folder only memwatch's
//!   user can read ([`Preload`]). The agent takes memwatch's variables and its `--require`
//!   back out of the environment, so the program's own children are not affected.
//! - `memwatch --pid` installs the agent through the inspector, which it closes right after
//!   (`node.rs`); the agent connects to a Unix socket with a random abstract name on which
//!   memwatch accepts only the target, checked with `SO_PEERCRED` ([`AgentListener`]).
//!
//! Both ends speak one JSON object a line ([`Channel`]). Every read has a deadline and a stop
//! descriptor, every line a size limit: the program may be stopped, busy, or not friendly.
//! The agent ends when the channel closes, whoever closes it (memwatch's death included).

use super::{Result, RuntimeError};
use serde_json::{Value, json};
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The agent: one function, `memwatchAgent(require, channel)`.
pub const SOURCE: &str = include_str!("agent.js");

/// The variable that gives the agent its end of the socketpair (a descriptor number).
pub const FD_VAR: &str = "MEMWATCH_AGENT_FD";
/// The `NODE_OPTIONS` the command had before memwatch added its `--require` (absent: none).
pub const OPTIONS_VAR: &str = "MEMWATCH_AGENT_NODE_OPTIONS";

/// What `--require` runs after [`SOURCE`]: in the main thread only, it restores the
/// environment the command was given and starts the agent on the descriptor.
const LOADER: &str = r#"
(function () {
  'use strict';
  const env = process.env;
  const fd = env.MEMWATCH_AGENT_FD;
  if (fd === undefined || !require('worker_threads').isMainThread) return;
  const options = env.MEMWATCH_AGENT_NODE_OPTIONS;
  delete env.MEMWATCH_AGENT_FD;
  delete env.MEMWATCH_AGENT_NODE_OPTIONS;
  if (options === undefined) delete env.NODE_OPTIONS;
  else env.NODE_OPTIONS = options;
  try {
    memwatchAgent(require, { fd: Number(fd) });
  } catch (e) {}
})();
"#;

/// A line longer than this ends the channel: no answer of the agent comes near it (snapshot
/// chunks are a few KiB), so it is not the agent talking.
const MAX_LINE: usize = 16 << 20;

/// The JavaScript that `--pid` evaluates in the target (through the inspector) to start the
/// agent on the abstract Unix socket `name`. Its value says it ran.
pub fn install_expression(name: &str) -> String {
    let path = format!("\0{name}");
    let path = serde_json::to_string(&path).unwrap_or_default();
    format!(
        "(function (require) {{\n{SOURCE}\nmemwatchAgent(require, {{ path: {path} }});\nreturn 'memwatch agent installed';\n}})(require)"
    )
}

/// The agent file and channel for a command memwatch starts.
pub struct Preload {
    dir: PrivateDir,
    ours: UnixStream,
    theirs: UnixStream,
    env: Vec<(OsString, OsString)>,
}

impl Preload {
    /// Writes the agent into a new folder only memwatch's user can read and makes the
    /// socketpair. `node_options`: the `NODE_OPTIONS` the command would get without memwatch.
    pub fn new(node_options: Option<&OsStr>) -> Result<Preload> {
        let dir = PrivateDir::new()?;
        let file = dir.path.join("agent.js");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| {
                f.write_all(SOURCE.as_bytes())?;
                f.write_all(LOADER.as_bytes())
            })
            .map_err(|e| {
                RuntimeError::io(format!("cannot write the agent '{}'", file.display()), e)
            })?;
        let (ours, theirs) = UnixStream::pair()
            .map_err(|e| RuntimeError::io("cannot make the agent's socketpair", e))?;
        let mut options = OsString::from("--require ");
        options.push(quote_node_option(file.as_os_str()));
        let mut env = Vec::with_capacity(3);
        if let Some(old) = node_options.filter(|o| !o.is_empty()) {
            options.push(" ");
            options.push(old);
            env.push((OsString::from(OPTIONS_VAR), old.to_os_string()));
        }
        env.push((OsString::from("NODE_OPTIONS"), options));
        env.push((
            OsString::from(FD_VAR),
            OsString::from(theirs.as_raw_fd().to_string()),
        ));
        Ok(Preload {
            dir,
            ours,
            theirs,
            env,
        })
    }

    /// The variables to give the command.
    pub fn env(&self) -> &[(OsString, OsString)] {
        &self.env
    }

    /// The descriptor the command must inherit (its number is in [`FD_VAR`]).
    pub fn child_fd(&self) -> BorrowedFd<'_> {
        self.theirs.as_fd()
    }

    /// After the spawn: memwatch's end alone (the child's end is closed here, so the
    /// channel closes when the child and its children have gone).
    pub fn spawned(self) -> Spawned {
        Spawned {
            stream: self.ours,
            dir: self.dir,
        }
    }
}

/// memwatch's end of a started command's channel, and the agent's folder (removed once the
/// agent has said hello: Node read the file at start).
pub struct Spawned {
    pub(crate) stream: UnixStream,
    pub(crate) dir: PrivateDir,
}

/// Quotes a path for `NODE_OPTIONS`, which splits on spaces and reads `"..."` with
/// backslash escapes.
fn quote_node_option(value: &OsStr) -> OsString {
    let mut out = Vec::with_capacity(value.len() + 2);
    out.push(b'"');
    for &b in value.as_bytes() {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
    OsString::from_vec(out)
}

/// A new folder under the temporary directory, mode 0700, with a random name (never one that
/// exists: `mkdir` fails on any existing name, link or not). Removed with what is in it.
pub(crate) struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    fn new() -> Result<PrivateDir> {
        let base = std::env::temp_dir();
        let mut last = None;
        for _ in 0..8 {
            let path = base.join(format!("memwatch-agent-{}", random_hex(8)?));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(PrivateDir { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
                Err(e) => {
                    return Err(RuntimeError::io(
                        format!("cannot make a folder for the agent in '{}'", base.display()),
                        e,
                    ));
                }
            }
        }
        Err(RuntimeError::io(
            format!("no new folder name in '{}'", base.display()),
            last.unwrap_or_else(|| std::io::Error::other("taken")),
        ))
    }

    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path.join("agent.js"));
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// `n` random bytes from the kernel, in hex.
fn random_hex(n: usize) -> Result<String> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        // SAFETY: writes at most n - got bytes into buf from offset got.
        let rc = unsafe { libc::getrandom(buf[got..].as_mut_ptr().cast(), n - got, 0) };
        if rc < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(RuntimeError::io("cannot read random bytes", e));
        }
        got += rc as usize;
    }
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A Unix socket with a random abstract name (no file: nothing to plant or to reach through
/// the file system) on which memwatch accepts only the target process.
///
/// Node 20 (libuv) connects to an abstract name padded with NULs to the whole `sun_path`;
/// later versions may use the name's own length. Both are listened on.
pub struct AgentListener {
    listeners: [UnixListener; 2],
    name: String,
}

/// The longest abstract name (`sun_path` less its leading NUL).
const ABSTRACT_MAX: usize = 107;

impl AgentListener {
    pub fn new() -> Result<AgentListener> {
        let name = format!("memwatch-agent-{}", random_hex(16)?);
        let mut padded = name.clone().into_bytes();
        padded.resize(ABSTRACT_MAX, 0);
        let listen = |bytes: &[u8]| {
            SocketAddr::from_abstract_name(bytes)
                .and_then(|addr| UnixListener::bind_addr(&addr))
                .and_then(|l| l.set_nonblocking(true).map(|()| l))
                .map_err(|e| RuntimeError::io("cannot listen for the agent", e))
        };
        Ok(AgentListener {
            listeners: [listen(name.as_bytes())?, listen(&padded)?],
            name,
        })
    }

    /// The abstract name (without its leading NUL).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits until PID (alive: its pidfd not readable) connects; any other process that
    /// connects is refused (closed at once) and counted. Gives up at `deadline` or on `stop`.
    pub fn accept_from(
        &self,
        pid: i32,
        pidfd: BorrowedFd<'_>,
        deadline: Instant,
        stop: Option<BorrowedFd<'_>>,
    ) -> Result<(UnixStream, u32)> {
        let mut refused = 0;
        loop {
            for listener in &self.listeners {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if peer_pid(&stream) == Some(pid) && !super::pidfd_exited(pidfd) {
                            stream
                                .set_nonblocking(false)
                                .map_err(|e| RuntimeError::io("the agent's socket", e))?;
                            return Ok((stream, refused));
                        }
                        refused += 1;
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => return Err(RuntimeError::io("cannot accept the agent", e)),
                }
            }
            if super::pidfd_exited(pidfd) {
                return Err(RuntimeError::Gone { pid });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RuntimeError::AgentNotConnected {
                    pid,
                    refused,
                    why: state_words(pid),
                });
            }
            // Short waits on each in turn: connections are rare, and both are looked at.
            let wait = left.min(Duration::from_millis(5));
            match wait_readable(self.listeners[1].as_fd(), stop, wait) {
                Ready::Stop => return Err(RuntimeError::Stopping),
                Ready::Data | Ready::Timeout => {}
            }
        }
    }
}

/// The PID of the process that connected `stream`.
fn peer_pid(stream: &UnixStream) -> Option<i32> {
    super::peer_of(stream)
        .ok()
        .map(|(pid, _)| pid)
        .filter(|&pid| pid > 0)
}

enum Ready {
    Data,
    Stop,
    Timeout,
}

/// Waits until `fd` is readable (or closed), `stop` is readable, or `timeout` passes.
fn wait_readable(fd: BorrowedFd<'_>, stop: Option<BorrowedFd<'_>>, timeout: Duration) -> Ready {
    let mut fds = [
        libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: stop.map_or(-1, |s| s.as_raw_fd()),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: two valid pollfds (a negative fd is ignored by poll).
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
    if rc <= 0 {
        return Ready::Timeout;
    }
    if fds[1].revents != 0 {
        Ready::Stop
    } else {
        Ready::Data
    }
}

/// What the process is doing, in words, for an answer that did not come.
pub(crate) fn state_words(pid: i32) -> String {
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| crate::tree::parse_stat(pid, &s))
        .map(|e| e.state);
    match state {
        Some('T' | 't') => "it is stopped (SIGSTOP, or a debugger holds it)".into(),
        Some('R') => "its main thread is busy running code".into(),
        Some('D') => "it is waiting for the disk".into(),
        Some('Z') | None => "it has exited".into(),
        Some(s) => format!("its event loop is blocked (state {s}: a synchronous call?)"),
    }
}

/// The agent's first line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub node: String,
    /// How it forces a GC: `inspector` (an in-process session's
    /// `HeapProfiler.collectGarbage`), `gc()`, or `none`.
    pub gc: String,
}

/// The heap right after a forced GC, from inside the program.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AfterGc {
    /// The GC's own duration, measured in the program.
    pub pause: Duration,
    pub used_bytes: u64,
    pub total_bytes: u64,
    pub external_bytes: u64,
    pub array_buffers_bytes: u64,
}

/// memwatch's end of the channel to one process's agent.
pub struct Channel {
    pid: i32,
    stream: UnixStream,
    buf: Vec<u8>,
    /// Bytes of `buf` known to hold no newline.
    scanned: usize,
    next_id: u64,
    /// A request sent and not answered yet: no other is sent meanwhile, so a busy program
    /// never finds a queue of GCs when it comes back.
    pending: Option<u64>,
    /// When the last request was sent.
    asked_at: Option<Instant>,
    stop: Option<OwnedFd>,
    hello: Option<Hello>,
}

impl Channel {
    /// `stop`: readable when memwatch is stopping; every wait ends at once then.
    pub fn new(pid: i32, stream: UnixStream, stop: Option<OwnedFd>) -> Channel {
        Channel {
            pid,
            stream,
            buf: Vec::new(),
            scanned: 0,
            next_id: 1,
            pending: None,
            asked_at: None,
            stop,
            hello: None,
        }
    }

    pub fn hello(&self) -> Option<&Hello> {
        self.hello.as_ref()
    }

    /// Waits for the agent's first line.
    pub fn wait_hello(&mut self, deadline: Instant) -> Result<&Hello> {
        self.asked_at = Some(Instant::now());
        loop {
            let v = self.read_line(deadline, "the agent's hello")?;
            if v.get("hello").is_some() {
                let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let hello = Hello {
                    node: s("node"),
                    gc: s("gc"),
                };
                return Ok(self.hello.insert(hello));
            }
        }
    }

    /// A forced full GC and the heap right after it.
    pub fn gc(&mut self, deadline: Instant) -> Result<AfterGc> {
        let v = self.call("gc", deadline)?;
        let pause_ms = v.get("pause_ms").and_then(Value::as_f64).unwrap_or(0.0);
        Ok(AfterGc {
            pause: Duration::from_secs_f64(pause_ms.max(0.0) / 1e3),
            used_bytes: num(&v, "used", "gc")?,
            total_bytes: num(&v, "total", "gc")?,
            external_bytes: num(&v, "external", "gc")?,
            array_buffers_bytes: num(&v, "array_buffers", "gc")?,
        })
    }

    /// The used and total JS heap, no GC.
    pub fn usage(&mut self, deadline: Instant) -> Result<(u64, u64)> {
        let v = self.call("usage", deadline)?;
        Ok((num(&v, "used", "usage")?, num(&v, "total", "usage")?))
    }

    /// A heap snapshot, streamed into `path` (a new file, mode 0600: a snapshot holds every
    /// string in the process) as it comes. `idle` bounds the silence between two chunks,
    /// `deadline` the whole; it may fill at most half the room its folder had at the start
    /// (the program, perhaps another user's, decides what it sends). Returns the bytes
    /// written; a failed or incomplete snapshot leaves no file behind.
    pub fn snapshot(&mut self, path: &Path, idle: Duration, deadline: Instant) -> Result<u64> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| RuntimeError::io(format!("cannot create '{}'", path.display()), e))?;
        let room = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .and_then(crate::dump::free_bytes)
            .map_or(u64::MAX, |free| free / 2);
        let result = self.stream_snapshot(&mut file, path, idle, deadline, room);
        let result = result.and_then(|written| {
            file.sync_all()
                .map_err(|e| RuntimeError::io(format!("cannot write '{}'", path.display()), e))?;
            Ok(written)
        });
        if result.is_err() {
            let _ = std::fs::remove_file(path);
        }
        result
    }

    fn stream_snapshot(
        &mut self,
        file: &mut std::fs::File,
        path: &Path,
        idle: Duration,
        deadline: Instant,
        room: u64,
    ) -> Result<u64> {
        let id = self.send("snapshot", deadline)?;
        let mut written = 0u64;
        let mut tail: Vec<u8> = Vec::new();
        let what = "HeapProfiler.takeHeapSnapshot";
        loop {
            let until = deadline.min(Instant::now() + idle);
            let v = self.read_line(until, what)?;
            if v.get("id").and_then(Value::as_u64) != Some(id) {
                continue;
            }
            if let Some(chunk) = v.get("chunk").and_then(Value::as_str) {
                file.write_all(chunk.as_bytes()).map_err(|e| {
                    RuntimeError::io(format!("cannot write '{}'", path.display()), e)
                })?;
                written += chunk.len() as u64;
                if written > room {
                    return Err(RuntimeError::Protocol {
                        what: what.into(),
                        message: format!(
                            "the snapshot passed {written} bytes, half the room left in '{}' when it began: stopped",
                            path.parent().unwrap_or(path).display()
                        ),
                    });
                }
                let trimmed = chunk.trim_end();
                if !trimmed.is_empty() {
                    tail = trimmed.as_bytes()[trimmed.len().saturating_sub(8)..].to_vec();
                }
                continue;
            }
            self.pending = None;
            answer_error(&v, what)?;
            if !tail.ends_with(b"]}") {
                return Err(RuntimeError::Protocol {
                    what: what.into(),
                    message: format!(
                        "the snapshot ended after {written} bytes without its closing ']}}'"
                    ),
                });
            }
            return Ok(written);
        }
    }

    /// Sends one request and reads until its answer.
    fn call(&mut self, op: &'static str, deadline: Instant) -> Result<Value> {
        let id = self.send(op, deadline)?;
        loop {
            let v = self.read_line(deadline, op)?;
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                self.pending = None;
                answer_error(&v, op)?;
                return Ok(v);
            }
        }
    }

    /// Sends a request that expires at `deadline` (the agent skips it if it comes later),
    /// unless the last one is still unanswered.
    fn send(&mut self, op: &'static str, deadline: Instant) -> Result<u64> {
        if self.pending.is_some() {
            // Its answer may have come meanwhile.
            while self.pending.is_some() {
                match self.read_line(Instant::now(), op) {
                    Ok(_) => {}
                    Err(RuntimeError::NoAnswer { .. }) => break,
                    Err(e) => return Err(e),
                }
            }
            if self.pending.is_some() {
                return Err(RuntimeError::NoAnswer {
                    pid: self.pid,
                    what: op.into(),
                    after: None,
                    why: format!(
                        "the last request is still unanswered: {}",
                        state_words(self.pid)
                    ),
                });
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let expires = SystemTime::now()
            .checked_add(deadline.saturating_duration_since(Instant::now()))
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as u64);
        let mut line = json!({"id": id, "op": op, "expires": expires}).to_string();
        line.push('\n');
        self.stream
            .set_write_timeout(Some(Duration::from_secs(1)))
            .and_then(|()| self.stream.write_all(line.as_bytes()))
            .map_err(|e| self.closed_or(e, op))?;
        self.pending = Some(id);
        self.asked_at = Some(Instant::now());
        Ok(id)
    }

    fn closed_or(&self, e: std::io::Error, what: &str) -> RuntimeError {
        match e.kind() {
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                self.closed_error(what)
            }
            _ => RuntimeError::io(format!("{what} to the agent of PID {}", self.pid), e),
        }
    }

    fn closed_error(&self, what: &str) -> RuntimeError {
        if std::fs::metadata(format!("/proc/{}", self.pid)).is_err() {
            return RuntimeError::Gone { pid: self.pid };
        }
        RuntimeError::Protocol {
            what: what.into(),
            message: format!("the agent in PID {} closed its channel", self.pid),
        }
    }

    /// The next whole line as JSON, waiting until `deadline`. A line that answers the
    /// pending request clears it.
    fn read_line(&mut self, deadline: Instant, what: &str) -> Result<Value> {
        loop {
            if let Some(nl) = memchr::memchr(b'\n', &self.buf[self.scanned..]) {
                let end = self.scanned + nl;
                let parsed = serde_json::from_slice::<Value>(&self.buf[..end]);
                self.buf.drain(..=end);
                self.scanned = 0;
                let Ok(v) = parsed else {
                    return Err(RuntimeError::Parse {
                        what: format!("a line from the agent in PID {}", self.pid),
                        message: "not JSON".into(),
                    });
                };
                if let (Some(p), Some(id)) = (self.pending, v.get("id").and_then(Value::as_u64))
                    && p == id
                    && v.get("chunk").is_none()
                {
                    self.pending = None;
                }
                return Ok(v);
            }
            self.scanned = self.buf.len();
            if self.buf.len() > MAX_LINE {
                return Err(RuntimeError::Protocol {
                    what: what.into(),
                    message: format!(
                        "the agent in PID {} sent a line longer than {MAX_LINE} bytes",
                        self.pid
                    ),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let stop = self.stop.as_ref().map(AsFd::as_fd);
            match wait_readable(self.stream.as_fd(), stop, left) {
                Ready::Stop => return Err(RuntimeError::Stopping),
                Ready::Timeout => {
                    return Err(RuntimeError::NoAnswer {
                        pid: self.pid,
                        what: what.into(),
                        after: self.asked_at.map(|t| t.elapsed()),
                        why: state_words(self.pid),
                    });
                }
                Ready::Data => {}
            }
            let mut chunk = [0u8; 64 * 1024];
            match (&self.stream).read(&mut chunk) {
                Ok(0) => return Err(self.closed_error(what)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(self.closed_or(e, what)),
            }
        }
    }
}

fn answer_error(v: &Value, what: &str) -> Result<()> {
    if v.get("late").is_some() {
        return Err(RuntimeError::Protocol {
            what: what.into(),
            message: "the request came after its deadline; the agent skipped it".into(),
        });
    }
    if let Some(e) = v.get("error") {
        return Err(RuntimeError::Protocol {
            what: what.into(),
            message: e.as_str().map_or_else(|| e.to_string(), str::to_string),
        });
    }
    Ok(())
}

fn num(v: &Value, key: &str, what: &str) -> Result<u64> {
    v.get(key)
        .and_then(Value::as_f64)
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| n as u64)
        .ok_or_else(|| RuntimeError::Parse {
            what: format!("the agent's answer to '{what}'"),
            message: format!("no '{key}' in {v}"),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn node_options_quoting() {
        assert_eq!(
            quote_node_option(OsStr::new("/tmp/a b/\"x\\y.js")),
            OsString::from("\"/tmp/a b/\\\"x\\\\y.js\"")
        );
    }

    #[test]
    fn preload_env_keeps_the_commands_node_options() {
        let p = Preload::new(Some(OsStr::new("--max-old-space-size=64"))).unwrap();
        let get = |k: &str| {
            p.env()
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        let options = get("NODE_OPTIONS").unwrap();
        assert!(options.starts_with("--require \""), "{options}");
        assert!(options.ends_with("agent.js\" --max-old-space-size=64"));
        assert_eq!(get(OPTIONS_VAR).as_deref(), Some("--max-old-space-size=64"));
        assert_eq!(get(FD_VAR).unwrap(), p.child_fd().as_raw_fd().to_string());
        let dir = p.dir.path().to_path_buf();
        let meta = std::fs::metadata(&dir).unwrap();
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        // SAFETY: geteuid has no preconditions.
        assert_eq!(meta.uid(), unsafe { libc::geteuid() });
        let file = std::fs::metadata(dir.join("agent.js")).unwrap();
        assert_eq!(file.permissions().mode() & 0o777, 0o600);
        let none = Preload::new(None).unwrap();
        assert!(none.env().iter().all(|(n, _)| n != OPTIONS_VAR));
        drop(p);
        assert!(!dir.exists(), "the folder goes with it");
    }

    #[test]
    fn the_install_expression_names_the_abstract_socket() {
        let e = install_expression("memwatch-agent-00ff");
        assert!(e.contains("path: \"\\u0000memwatch-agent-00ff\""), "{e}");
        assert!(e.starts_with("(function (require) {"));
        assert!(e.contains("function memwatchAgent(require, channel)"));
    }

    #[test]
    fn a_busy_peer_is_no_answer_and_a_long_line_ends_the_channel() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let me = std::process::id() as i32;
        let mut ch = Channel::new(me, a, None);
        let t = Instant::now();
        let e = ch.usage(t + Duration::from_millis(100)).unwrap_err();
        assert!(matches!(e, RuntimeError::NoAnswer { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2));
        // While unanswered, nothing more is sent.
        let e = ch
            .gc(Instant::now() + Duration::from_millis(100))
            .unwrap_err();
        assert!(e.to_string().contains("still unanswered"), "{e}");
        let mut req = String::new();
        b.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = b.read(&mut buf).unwrap();
        req.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        assert_eq!(req.lines().count(), 1, "{req}");
        let v: Value = serde_json::from_str(req.trim()).unwrap();
        assert_eq!(v["op"], "usage");
        // The late answer clears it; the next request goes out and is answered.
        b.write_all(b"{\"id\":1,\"used\":1,\"total\":2}\n").unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let n = b.read(&mut buf).unwrap();
            let v: Value = serde_json::from_slice(buf[..n].trim_ascii()).unwrap();
            let id = v["id"].as_u64().unwrap();
            b.write_all(format!("{{\"id\":{id},\"used\":10,\"total\":20}}\n").as_bytes())
                .unwrap();
            b.write_all(&vec![b'x'; MAX_LINE + 2]).unwrap_or(());
            b
        });
        assert_eq!(
            ch.usage(Instant::now() + Duration::from_secs(5)).unwrap(),
            (10, 20)
        );
        let e = ch
            .read_line(Instant::now() + Duration::from_secs(5), "x")
            .unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
        drop(reader.join().unwrap());
    }

    #[test]
    fn stop_ends_a_wait_at_once() {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: fresh descriptors we own.
        let (r, w) = unsafe {
            use std::os::fd::FromRawFd;
            (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
        };
        let mut ch = Channel::new(1, a, Some(r));
        let mut w = std::fs::File::from(w);
        w.write_all(b"x").unwrap();
        let t = Instant::now();
        let e = ch.usage(t + Duration::from_secs(30)).unwrap_err();
        assert!(matches!(e, RuntimeError::Stopping), "{e}");
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn only_the_target_is_accepted() {
        let l = AgentListener::new().unwrap();
        let me = std::process::id() as i32;
        // Another process (a child) connects first: refused; then this process: accepted.
        let name = l.name().to_string();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec sleep 30")
            .spawn()
            .unwrap();
        let child_pid = child.id() as i32;
        // SAFETY: pidfd_open of our own child.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, child_pid, 0) } as i32;
        assert!(fd >= 0);
        // SAFETY: a fresh fd.
        let child_fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let _mine = UnixStream::connect_addr(&addr).unwrap();
        let e = l
            .accept_from(
                child_pid,
                child_fd.as_fd(),
                Instant::now() + Duration::from_millis(200),
                None,
            )
            .unwrap_err();
        match e {
            RuntimeError::AgentNotConnected { refused, .. } => assert_eq!(refused, 1),
            other => panic!("{other}"),
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // SAFETY: pidfd_open of this process.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, me, 0) } as i32;
        // SAFETY: a fresh fd.
        let own = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let _again = UnixStream::connect_addr(&addr).unwrap();
        let (s, refused) = l
            .accept_from(
                me,
                own.as_fd(),
                Instant::now() + Duration::from_secs(2),
                None,
            )
            .unwrap();
        assert_eq!(refused, 0);
        assert!(s.as_raw_fd() > 2);
    }
}
