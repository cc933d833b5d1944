//! HotSpot JVMs over the attach mechanism, with no JDK on the machine: the same UNIX socket
//! `jcmd` uses.
//!
//! Attaching: if the socket `/tmp/.java_pid<PID>` (in the target's mount namespace, reached
//! through /proc/PID/root) is not there yet, create `.attach_pid<PID>` in the target's working
//! directory (or its /tmp), send SIGQUIT through the pidfd, wait for the socket, and remove the
//! file. Each command is one connection: `1\0`, the command, three NUL-terminated arguments;
//! the answer is a status line (0 = done) and the output, then the JVM closes the socket.
//!
//! Those folders belong to the JVM's user (or to everyone: /tmp), and memwatch often runs as
//! root: the trigger is made new beside a folder handle (`O_CREAT|O_EXCL|O_NOFOLLOW`), its
//! owner and mode set on the open file; the socket is trusted only when it is the JVM's user's
//! (or root's), open to nobody else, and the process listening on it is the JVM itself
//! (`SO_PEERCRED`); every answer is bounded in size and time.

use super::{Result, RuntimeError};
use crate::safe_fs::{self, Dir, Kind};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to wait for the attach socket after SIGQUIT (the JDK's own default is 10 s).
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(10);
/// The default timeout of one command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest answer read: a class histogram of 100,000 classes is ~10 MiB.
pub const MAX_ANSWER: usize = 32 << 20;

/// An attached HotSpot JVM.
pub struct Jvm {
    pid: i32,
    socket: PathBuf,
    /// The JVM's effective uid: the socket must be its (or root's).
    uid: Option<u32>,
    attach_time: Duration,
    signalled: bool,
    /// Each command must answer within this.
    pub timeout: Duration,
}

/// The PID a process has in its own namespace (the last `NSpid` field): the JVM names its
/// files after that one.
pub fn ns_pid(status: &str) -> Option<i32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|v| v.split_whitespace().last())
        .and_then(|v| v.parse().ok())
}

/// Effective uid and gid from a /proc/PID/status text.
fn effective_ids(status: &str) -> Option<(u32, u32)> {
    let field = |name: &str| -> Option<u32> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("Uid:")?, field("Gid:")?))
}

/// Where `-XX:+DisableAttachMechanism` was given, if it is in effect: the JVM then never
/// opens its attach socket, and SIGQUIT only prints a thread dump into its output. Options
/// are applied in the JVM's order (`JAVA_TOOL_OPTIONS`, `JDK_JAVA_OPTIONS`, the command line
/// up to the main class or `-jar`, then `_JAVA_OPTIONS`); the last setting wins (pure).
pub fn attach_disabled_by(argv: &[String], environ: &[(String, String)]) -> Option<String> {
    let env = |name: &str| {
        environ
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    // Launcher options whose value is the next argument (so it is not the main class).
    const WITH_VALUE: [&str; 9] = [
        "-cp",
        "-classpath",
        "--class-path",
        "-p",
        "--module-path",
        "--upgrade-module-path",
        "--add-modules",
        "--limit-modules",
        "--enable-native-access",
    ];
    let mut command_line = Vec::new();
    let mut args = argv.iter().skip(1);
    while let Some(arg) = args.next() {
        if WITH_VALUE.contains(&arg.as_str()) {
            args.next();
            continue;
        }
        if !arg.starts_with('-') || matches!(arg.as_str(), "-jar" | "-m" | "--module") {
            break; // the main class, jar or module: the program's own arguments follow
        }
        command_line.push(arg.clone());
    }
    let mut found = None;
    for (source, words) in [
        ("JAVA_TOOL_OPTIONS", env("JAVA_TOOL_OPTIONS")),
        ("JDK_JAVA_OPTIONS", env("JDK_JAVA_OPTIONS")),
        ("the command line", command_line),
        ("_JAVA_OPTIONS", env("_JAVA_OPTIONS")),
    ] {
        for w in words {
            match w.as_str() {
                "-XX:+DisableAttachMechanism" => found = Some(source.to_string()),
                "-XX:-DisableAttachMechanism" => found = None,
                _ => {}
            }
        }
    }
    found
}

/// The command line and environment of PID, as far as memwatch may read them.
fn launch_of(proc_dir: &Path) -> (Vec<String>, Vec<(String, String)>) {
    let words = |file: &str| -> Vec<String> {
        std::fs::read(proc_dir.join(file))
            .unwrap_or_default()
            .split(|&b| b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect()
    };
    let environ = words("environ")
        .into_iter()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect();
    (words("cmdline"), environ)
}

/// The attach trigger memwatch made: removed when dropped, if it is still that file.
struct TriggerFile {
    dir: Dir,
    name: OsString,
    dev_ino: (u64, u64),
}

impl Drop for TriggerFile {
    fn drop(&mut self) {
        let ours = self
            .dir
            .lstat_at(&self.name)
            .ok()
            .flatten()
            .is_some_and(|s| (s.dev, s.ino) == self.dev_ino);
        if ours {
            let _ = self.dir.remove(&self.name);
        }
    }
}

/// Whether an attach socket file may be used.
enum SocketFile {
    Trusted,
    Missing,
    /// Why not, in words for the error message.
    Untrusted(String),
}

/// The socket file as `jcmd` checks it: a socket of the JVM's user (or root's), open to no
/// one else.
fn socket_file(path: &Path, uid: Option<u32>) -> SocketFile {
    let owner_ok = |u: u32| u == 0 || Some(u) == uid;
    let who = uid.map_or_else(|| "root".to_string(), |u| format!("uid {u} or root"));
    match safe_fs::lstat(path) {
        Ok(None) => SocketFile::Missing,
        Err(e) => SocketFile::Untrusted(format!("cannot look at it: {e}")),
        Ok(Some(s)) if s.kind != Kind::Socket => {
            SocketFile::Untrusted(format!("it is a {}, not a socket", s.kind.describe()))
        }
        Ok(Some(s)) if !owner_ok(s.uid) => SocketFile::Untrusted(format!(
            "it belongs to uid {}, not to the JVM's user ({who})",
            s.uid
        )),
        Ok(Some(s)) if s.mode & 0o066 != 0 => SocketFile::Untrusted(format!(
            "others may use it (mode {:04o}; the JVM makes it 0600)",
            s.mode
        )),
        Ok(Some(_)) => SocketFile::Trusted,
    }
}

/// Connects to a UNIX socket without waiting: a listener whose queue is full (a stuck or
/// hostile one) is "not ready", never a connect that blocks.
fn connect_now(path: &Path) -> std::io::Result<UnixStream> {
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: a zeroed sockaddr_un filled below within its bounds.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "socket path too long",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, &b) in addr.sun_path.iter_mut().zip(bytes) {
        *d = b as libc::c_char;
    }
    // SAFETY: socket/connect with a valid address of the given length; the descriptor is
    // owned from the moment it exists.
    unsafe {
        let fd = libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let owned = OwnedFd::from_raw_fd(fd);
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        if libc::connect(fd, (&raw const addr).cast(), len) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = UnixStream::from(owned);
        stream.set_nonblocking(false)?;
        Ok(stream)
    }
}

impl Jvm {
    /// Attaches to PID, sending SIGQUIT through `pidfd` only if its attach socket does not
    /// exist yet (and only if it catches SIGQUIT: otherwise SIGQUIT would end it).
    pub fn attach(pid: i32, pidfd: BorrowedFd<'_>, timeout: Duration) -> Result<Jvm> {
        Self::attach_in(Path::new("/proc"), pid, pidfd, timeout)
    }

    fn attach_in(
        proc_root: &Path,
        pid: i32,
        pidfd: BorrowedFd<'_>,
        timeout: Duration,
    ) -> Result<Jvm> {
        if pid <= 0 {
            return Err(RuntimeError::BadPid { pid });
        }
        let start = Instant::now();
        let dir = proc_root.join(pid.to_string());
        let status =
            std::fs::read_to_string(dir.join("status")).map_err(|_| RuntimeError::Gone { pid })?;
        let nspid = ns_pid(&status).unwrap_or(pid);
        let ids = effective_ids(&status);
        let socket = dir.join("root/tmp").join(format!(".java_pid{nspid}"));
        let mut jvm = Jvm {
            pid,
            socket,
            uid: ids.map(|(uid, _)| uid),
            attach_time: Duration::ZERO,
            signalled: false,
            timeout: COMMAND_TIMEOUT,
        };
        if jvm.connect().is_ok() {
            jvm.attach_time = start.elapsed();
            return Ok(jvm);
        }
        let (argv, environ) = launch_of(&dir);
        if let Some(given_in) = attach_disabled_by(&argv, &environ) {
            return Err(RuntimeError::AttachDisabled { pid, given_in });
        }
        let deadline = start + timeout;
        super::wait_until_caught(proc_root, pid, libc::SIGQUIT, "SIGQUIT", deadline)?;
        let _trigger = create_trigger(&dir, nspid, ids)?;
        crate::signal::send_via_pidfd(pidfd, libc::SIGQUIT).map_err(|e| {
            if e.raw_os_error() == Some(libc::ESRCH) {
                RuntimeError::Gone { pid }
            } else {
                RuntimeError::io(format!("cannot send SIGQUIT to PID {pid}"), e)
            }
        })?;
        jvm.signalled = true;
        let mut pause = Duration::from_millis(10);
        loop {
            let refused = match jvm.connect() {
                Ok(_) => {
                    jvm.attach_time = start.elapsed();
                    return Ok(jvm);
                }
                Err(e @ RuntimeError::AttachSocketUntrusted { .. }) => Some(e),
                Err(_) => None,
            };
            if super::pidfd_exited(pidfd) {
                return Err(RuntimeError::Gone { pid });
            }
            if Instant::now() >= deadline {
                return Err(
                    refused.unwrap_or_else(|| RuntimeError::AttachSocketMissing {
                        pid,
                        path: jvm.socket.clone(),
                        waited: timeout,
                    }),
                );
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
    }

    /// A connection to the attach socket, if it is the JVM's: the socket file is its
    /// user's (or root's) and open to no one else, as `jcmd` checks; and the process
    /// listening is PID itself (`SO_PEERCRED`), so a socket another user made first in a
    /// shared /tmp is never talked to.
    fn connect(&self) -> Result<UnixStream> {
        let untrusted = |why: String| RuntimeError::AttachSocketUntrusted {
            pid: self.pid,
            path: self.socket.clone(),
            why,
        };
        match socket_file(&self.socket, self.uid) {
            SocketFile::Trusted => {}
            SocketFile::Missing => {
                return Err(RuntimeError::io(
                    format!("no attach socket {}", self.socket.display()),
                    std::io::ErrorKind::NotFound.into(),
                ));
            }
            SocketFile::Untrusted(why) => return Err(untrusted(why)),
        }
        let stream = connect_now(&self.socket).map_err(|e| {
            RuntimeError::io(format!("cannot connect to {}", self.socket.display()), e)
        })?;
        let (peer_pid, peer_uid) = super::peer_of(&stream).map_err(|e| {
            RuntimeError::io(
                format!("cannot ask who listens on {}", self.socket.display()),
                e,
            )
        })?;
        if peer_pid != self.pid {
            return Err(untrusted(format!(
                "PID {peer_pid} listens on it, not the JVM"
            )));
        }
        if peer_uid != 0 && Some(peer_uid) != self.uid {
            return Err(untrusted(format!("uid {peer_uid} listens on it")));
        }
        Ok(stream)
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// From the first look to a socket that accepts.
    pub fn attach_time(&self) -> Duration {
        self.attach_time
    }

    /// Whether attaching needed SIGQUIT (the attach listener was not running yet).
    pub fn signalled(&self) -> bool {
        self.signalled
    }

    /// One attach operation (`jcmd`, `properties`, ...) with up to three arguments; the
    /// output after the status line. A non-zero status is [`RuntimeError::AttachRefused`].
    /// The answer is read within `timeout` and up to [`MAX_ANSWER`] bytes.
    pub fn execute(&self, operation: &str, args: &[&str]) -> Result<String> {
        let what = || {
            format!(
                "'{operation} {}' on the JVM (PID {})",
                args.join(" "),
                self.pid
            )
        };
        let io = |e: std::io::Error| {
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) {
                RuntimeError::Timeout {
                    what: what(),
                    after: self.timeout,
                }
            } else {
                RuntimeError::io(what(), e)
            }
        };
        let mut stream = self.connect()?;
        stream.set_write_timeout(Some(self.timeout)).map_err(io)?;
        let mut request = Vec::new();
        request.extend_from_slice(b"1\0");
        request.extend_from_slice(operation.as_bytes());
        request.push(0);
        for i in 0..3 {
            request.extend_from_slice(args.get(i).unwrap_or(&"").as_bytes());
            request.push(0);
        }
        stream.write_all(&request).map_err(io)?;
        let deadline = Instant::now() + self.timeout;
        let mut raw = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io(std::io::ErrorKind::TimedOut.into()));
            }
            stream.set_read_timeout(Some(left)).map_err(io)?;
            let n = stream.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            if raw.len() + n > MAX_ANSWER {
                return Err(RuntimeError::Parse {
                    what: format!("the answer to {}", what()),
                    message: format!(
                        "longer than {} MiB: memwatch stopped reading it",
                        MAX_ANSWER >> 20
                    ),
                });
            }
            raw.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&raw);
        let (code, rest) = text.split_once('\n').unwrap_or((&text, ""));
        match code.trim().parse::<i32>() {
            Ok(0) => Ok(rest.to_string()),
            Ok(code) => Err(RuntimeError::AttachRefused {
                pid: self.pid,
                command: format!("{operation} {}", args.join(" ")).trim().to_string(),
                code,
                message: rest.trim().to_string(),
            }),
            Err(_) => Err(RuntimeError::Parse {
                what: format!("the answer to {}", what()),
                message: format!(
                    "no status line: '{}'",
                    text.chars().take(80).collect::<String>()
                ),
            }),
        }
    }

    /// A diagnostic command, as `jcmd PID <command>` runs it.
    pub fn jcmd(&self, command: &str) -> Result<String> {
        self.execute("jcmd", &[command])
    }

    /// `GC.run` (System.gc(): a full collection). Returns how long it took: the pause.
    pub fn gc_run(&self) -> Result<Duration> {
        let t = Instant::now();
        self.jcmd("GC.run")?;
        Ok(t.elapsed())
    }

    /// `GC.heap_info`, parsed.
    pub fn heap_info(&self) -> Result<HeapInfo> {
        parse_heap_info(&self.jcmd("GC.heap_info")?)
    }

    /// `GC.class_histogram` as the JVM prints it (it forces a full GC first, counting only
    /// live objects). Parse with [`parse_class_histogram`].
    pub fn class_histogram_text(&self) -> Result<String> {
        self.jcmd("GC.class_histogram")
    }
}

/// Creates `.attach_pid<nspid>` in the target's working directory, or else its /tmp, owned by
/// the target's user (HotSpot ignores a trigger file owned by anyone but itself or root).
/// Both folders may be the JVM's user's or everyone's: the file is made new beside a folder
/// handle, never through a link, and its owner and mode are set on the open file.
fn create_trigger(proc_dir: &Path, nspid: i32, ids: Option<(u32, u32)>) -> Result<TriggerFile> {
    let name = OsString::from(format!(".attach_pid{nspid}"));
    let mut last = None;
    for folder in [proc_dir.join("cwd"), proc_dir.join("root/tmp")] {
        let made = Dir::open(&folder).and_then(|dir| {
            let file = place_trigger(&dir, &name)?;
            file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            if let Some((uid, gid)) = ids {
                // Only root can give the file away; the same user needs no chown.
                let _ = std::os::unix::fs::fchown(&file, Some(uid), Some(gid));
            }
            let s = safe_fs::fstat(&file)?;
            Ok(TriggerFile {
                dir,
                name: name.clone(),
                dev_ino: (s.dev, s.ino),
            })
        });
        match made {
            Ok(t) => return Ok(t),
            Err(e) => last = Some((folder.join(&name), e)),
        }
    }
    let (path, e) = last.unwrap_or_else(|| (proc_dir.into(), std::io::ErrorKind::NotFound.into()));
    Err(RuntimeError::io(
        format!(
            "cannot create the attach trigger '{}' (run memwatch as the JVM's user or as root)",
            path.display()
        ),
        e,
    ))
}

/// A new trigger file in `dir`. One left behind (by a memwatch killed while it waited, or
/// by jcmd) is removed first if it is a plain file; anything else in its place (a link,
/// which another user may have planted) is left alone, and this folder is not used.
fn place_trigger(dir: &Dir, name: &OsStr) -> std::io::Result<std::fs::File> {
    match dir.create_new(name, 0o600) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            match dir.lstat_at(name)? {
                Some(s) if s.kind == Kind::Regular => {
                    dir.remove(name)?;
                }
                Some(s) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        format!(
                            "a {} owned by uid {} is in its place: memwatch does not write through it",
                            s.kind.describe(),
                            s.uid
                        ),
                    ));
                }
                None => {}
            }
            dir.create_new(name, 0o600)
        }
        made => made,
    }
}

/// The Java heap from `GC.heap_info`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapInfo {
    pub used_bytes: u64,
    /// What the heap has reserved from the OS now (`total`, `committed` or `capacity`).
    pub committed_bytes: u64,
}

/// `12288K`, `378M`, `1G`, `512` (bytes).
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim().trim_end_matches(',');
    let (num, mult) = match t.as_bytes().last()? {
        b'K' => (&t[..t.len() - 1], 1u64 << 10),
        b'M' => (&t[..t.len() - 1], 1 << 20),
        b'G' => (&t[..t.len() - 1], 1 << 30),
        b'B' => (&t[..t.len() - 1], 1),
        _ => (t, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

/// Parses `GC.heap_info` of G1, Serial, Parallel (`total N, used M` per generation, summed),
/// Shenandoah (`N committed, M used`) and ZGC (`used N, capacity M`). Metaspace, which is
/// outside the Java heap, is left out. A leading `PID:` line (from the `jcmd` tool) is fine.
pub fn parse_heap_info(text: &str) -> Result<HeapInfo> {
    let mut used = 0u64;
    let mut committed = 0u64;
    let mut found = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("Metaspace") || t.starts_with("class space") {
            continue;
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        let after = |key: &str| {
            words
                .windows(2)
                .find(|w| w[0] == key)
                .and_then(|w| parse_size(w[1]))
        };
        let before = |key: &str| {
            words
                .windows(2)
                .find(|w| w[1].trim_end_matches(',') == key)
                .and_then(|w| parse_size(w[0]))
        };
        // G1, Serial, Parallel: "<name> total 397312K, used 9100K [...)"
        if let (Some(total), Some(u)) = (after("total"), after("used")) {
            committed += total;
            used += u;
            found = true;
        // ZGC: "ZHeap used 8M, capacity 378M, max capacity 6028M"
        } else if t.starts_with("ZHeap")
            && let (Some(u), Some(cap)) = (after("used"), after("capacity"))
        {
            used += u;
            committed += cap;
            found = true;
        // Shenandoah: "6028M max, 6028M soft max, 378M committed, 12288K used"
        } else if let (Some(c), Some(u)) = (before("committed"), before("used")) {
            used += u;
            committed += c;
            found = true;
        }
    }
    if found {
        Ok(HeapInfo {
            used_bytes: used,
            committed_bytes: committed,
        })
    } else {
        Err(RuntimeError::Parse {
            what: "GC.heap_info".into(),
            message: format!(
                "no heap size line in '{}'",
                text.chars().take(120).collect::<String>()
            ),
        })
    }
}

/// One class of a `GC.class_histogram`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistogramRow {
    /// As the JVM names it: `java.lang.String`, `[B`, `LeakFixture$Session`.
    pub class: String,
    pub instances: u64,
    pub bytes: u64,
}

/// The rows of a `GC.class_histogram` text (the module after the class name is dropped; the
/// `Total` line is not a row). Lines that are not rows are skipped; no row at all is an error.
pub fn parse_class_histogram(text: &str) -> Result<Vec<HistogramRow>> {
    let rows: Vec<HistogramRow> = text
        .lines()
        .filter_map(|line| {
            let mut w = line.split_whitespace();
            let num = w.next()?;
            num.strip_suffix(':')?.parse::<u64>().ok()?;
            let instances = w.next()?.parse().ok()?;
            let bytes = w.next()?.parse().ok()?;
            let class = w.next()?.to_string();
            Some(HistogramRow {
                class,
                instances,
                bytes,
            })
        })
        .collect();
    if rows.is_empty() {
        return Err(RuntimeError::Parse {
            what: "GC.class_histogram".into(),
            message: format!(
                "no '<n>: <instances> <bytes> <class>' row in '{}'",
                text.chars().take(120).collect::<String>()
            ),
        });
    }
    Ok(rows)
}

/// One class across two histograms, in the shape of a heap-snapshot diff row.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HistogramDelta {
    pub class: String,
    pub instances_before: u64,
    pub instances_after: u64,
    pub instances_delta: i64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub bytes_delta: i64,
}

/// Classes of both histograms with their deltas, the biggest growth in bytes first (then by
/// instance growth, then by name, so the order is stable). Classes in only one side count
/// zero on the other.
pub fn diff_histograms(before: &[HistogramRow], after: &[HistogramRow]) -> Vec<HistogramDelta> {
    let mut by_class: HashMap<&str, (u64, u64, u64, u64)> = HashMap::new();
    for r in before {
        let e = by_class.entry(&r.class).or_default();
        e.0 += r.instances;
        e.2 += r.bytes;
    }
    for r in after {
        let e = by_class.entry(&r.class).or_default();
        e.1 += r.instances;
        e.3 += r.bytes;
    }
    let mut rows: Vec<HistogramDelta> = by_class
        .into_iter()
        .map(|(class, (ib, ia, bb, ba))| HistogramDelta {
            class: class.to_string(),
            instances_before: ib,
            instances_after: ia,
            instances_delta: ia as i64 - ib as i64,
            bytes_before: bb,
            bytes_after: ba,
            bytes_delta: ba as i64 - bb as i64,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.bytes_delta
            .cmp(&a.bytes_delta)
            .then(b.instances_delta.cmp(&a.instances_delta))
            .then(a.class.cmp(&b.class))
    });
    rows
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Recorded from OpenJDK 17.0.15 on this machine (`jcmd PID GC.heap_info`), one per collector.
    const G1: &str = "17423:
 garbage-first heap   total 397312K, used 9100K [0x0000000687400000, 0x0000000800000000)
  region size 4096K, 2 young (8192K), 0 survivors (0K)
 Metaspace       used 96K, committed 320K, reserved 1114112K
  class space    used 5K, committed 128K, reserved 1048576K
";
    const SERIAL: &str = " def new generation   total 116160K, used 12397K [0x0000000687400000, 0x000000068f200000, 0x0000000704d50000)
  eden space 103296K,  12% used [0x0000000687400000, 0x000000068801b728, 0x000000068d8e0000)
  from space 12864K,   0% used [0x000000068d8e0000, 0x000000068d8e0000, 0x000000068e570000)
  to   space 12864K,   0% used [0x000000068e570000, 0x000000068e570000, 0x000000068f200000)
 tenured generation   total 258048K, used 100K [0x0000000704d50000, 0x0000000714950000, 0x0000000800000000)
   the space 258048K,   0% used [0x0000000704d50000, 0x0000000704d50000, 0x0000000704d50200, 0x0000000714950000)
 Metaspace       used 151K, committed 384K, reserved 1114112K
  class space    used 6K, committed 128K, reserved 1048576K
";
    const PARALLEL: &str = " PSYoungGen      total 113152K, used 11675K [0x0000000782700000, 0x000000078a500000, 0x0000000800000000)
  eden space 97280K, 12% used [0x0000000782700000,0x0000000783266f78,0x0000000788600000)
  from space 15872K, 0% used [0x0000000789580000,0x0000000789580000,0x000000078a500000)
  to   space 15872K, 0% used [0x0000000788600000,0x0000000788600000,0x0000000789580000)
 ParOldGen       total 258048K, used 0K [0x0000000687400000, 0x0000000697000000, 0x0000000782700000)
  object space 258048K, 0% used [0x0000000687400000,0x0000000687400000,0x0000000697000000)
 Metaspace       used 153K, committed 384K, reserved 1114112K
  class space    used 6K, committed 128K, reserved 1048576K
";
    const SHENANDOAH: &str = "Shenandoah Heap
 6028M max, 6028M soft max, 378M committed, 12288K used
 3014 x 2048K regions
Status: not cancelled
Reserved region:
 - [0x0000000687400000, 0x0000000800000000) 
Collection set:
 - map (vanilla): 0x000000000001343a
 - map (biased):  0x0000000000010000

 Metaspace       used 149K, committed 384K, reserved 1114112K
  class space    used 6K, committed 128K, reserved 1048576K
";
    const ZGC: &str = " ZHeap           used 8M, capacity 378M, max capacity 6028M
 Metaspace       used 150K, committed 384K, reserved 1114112K
  class space    used 6K, committed 128K, reserved 1048576K
";
    const K: u64 = 1024;

    #[test]
    fn heap_info_of_each_collector() {
        let h = |t| parse_heap_info(t).unwrap();
        assert_eq!(
            h(G1),
            HeapInfo {
                used_bytes: 9100 * K,
                committed_bytes: 397312 * K
            }
        );
        assert_eq!(
            h(SERIAL),
            HeapInfo {
                used_bytes: (12397 + 100) * K,
                committed_bytes: (116160 + 258048) * K
            }
        );
        assert_eq!(
            h(PARALLEL),
            HeapInfo {
                used_bytes: 11675 * K,
                committed_bytes: (113152 + 258048) * K
            }
        );
        assert_eq!(
            h(SHENANDOAH),
            HeapInfo {
                used_bytes: 12288 * K,
                committed_bytes: 378 * K * K
            }
        );
        assert_eq!(
            h(ZGC),
            HeapInfo {
                used_bytes: 8 * K * K,
                committed_bytes: 378 * K * K
            }
        );
        let e = parse_heap_info(" Metaspace       used 150K, committed 384K\n").unwrap_err();
        assert!(e.to_string().contains("no heap size line"), "{e}");
        assert!(parse_heap_info("").is_err());
    }

    const HISTO: &str = "18609:
 num     #instances         #bytes  class name (module)
-------------------------------------------------------
   1:         10609        3868832  [B (java.base@17.0.15)
   2:          1428         176008  java.lang.Class (java.base@17.0.15)
   3:          7127         171048  java.lang.String (java.base@17.0.15)
   5:          3400          81600  LeakFixture$Session
 193:             1             16  sun.net.www.protocol.jar.Handler (java.base@17.0.15)
Total         30543        4909696
";

    #[test]
    fn class_histogram_rows() {
        let rows = parse_class_histogram(HISTO).unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[0],
            HistogramRow {
                class: "[B".into(),
                instances: 10609,
                bytes: 3868832
            }
        );
        assert_eq!(rows[3].class, "LeakFixture$Session");
        assert_eq!(rows[3].instances, 3400);
        assert_eq!(rows[4].class, "sun.net.www.protocol.jar.Handler");
        assert!(parse_class_histogram("Total 1 2\n").is_err());
        assert!(parse_class_histogram("   x:  1  2  y\n").is_err());
    }

    #[test]
    fn histogram_diff() {
        let row = |c: &str, i, b| HistogramRow {
            class: c.into(),
            instances: i,
            bytes: b,
        };
        let before = vec![row("A", 10, 100), row("B", 5, 500), row("Gone", 1, 8)];
        let after = vec![row("A", 30, 300), row("B", 5, 500), row("New", 2, 1000)];
        let d = diff_histograms(&before, &after);
        let order: Vec<&str> = d.iter().map(|r| r.class.as_str()).collect();
        assert_eq!(order, ["New", "A", "B", "Gone"]);
        assert_eq!(d[1].instances_delta, 20);
        assert_eq!(d[1].bytes_delta, 200);
        assert_eq!(d[0].instances_before, 0);
        assert_eq!(d[3].bytes_delta, -8);
        assert_eq!(d[3].instances_after, 0);
        assert!(diff_histograms(&[], &[]).is_empty());
    }

    #[test]
    fn status_fields() {
        let s =
            "Name:\tjava\nUid:\t1000\t1001\t1000\t1000\nGid:\t50\t51\t50\t50\nNSpid:\t4242\t7\n";
        assert_eq!(ns_pid(s), Some(7));
        assert_eq!(effective_ids(s), Some((1001, 51)));
        assert_eq!(ns_pid("NSpid:\t12\n"), Some(12));
        assert_eq!(ns_pid("Name:\tx\n"), None);
    }

    #[test]
    fn attach_disabled_where_the_jvm_reads_its_options() {
        let argv = |a: &str| -> Vec<String> { a.split(' ').map(String::from).collect() };
        let env = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let off = "-XX:+DisableAttachMechanism";
        assert_eq!(
            attach_disabled_by(&argv(&format!("java -Xmx1g {off} -cp x Main")), &[]),
            Some("the command line".into())
        );
        // After the main class (or -jar FILE) it is the program's own argument.
        assert_eq!(
            attach_disabled_by(&argv(&format!("java Main {off}")), &[]),
            None
        );
        assert_eq!(
            attach_disabled_by(&argv(&format!("java -jar app.jar {off}")), &[]),
            None
        );
        // -cp's value is not the main class.
        assert_eq!(
            attach_disabled_by(&argv(&format!("java -cp {off} Main")), &[]),
            None
        );
        assert_eq!(
            attach_disabled_by(&argv("java Main"), &env("JAVA_TOOL_OPTIONS", off)),
            Some("JAVA_TOOL_OPTIONS".into())
        );
        // The command line comes after JAVA_TOOL_OPTIONS, _JAVA_OPTIONS after both.
        assert_eq!(
            attach_disabled_by(
                &argv("java -XX:-DisableAttachMechanism Main"),
                &env("JAVA_TOOL_OPTIONS", off)
            ),
            None
        );
        assert_eq!(
            attach_disabled_by(
                &argv("java -XX:-DisableAttachMechanism Main"),
                &env("_JAVA_OPTIONS", &format!("-Xss1m {off}"))
            ),
            Some("_JAVA_OPTIONS".into())
        );
        assert_eq!(attach_disabled_by(&[], &[]), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("12288K"), Some(12288 * 1024));
        assert_eq!(parse_size("378M,"), Some(378 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("x"), None);
    }
}
