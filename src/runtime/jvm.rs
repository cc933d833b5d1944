//! HotSpot JVMs over the attach mechanism, with no JDK on the machine: the same UNIX socket
//! `jcmd` uses.
//!
//! Attaching: if the socket `/tmp/.java_pid<PID>` (in the target's mount namespace, reached
//! through /proc/PID/root) is not there yet, create `.attach_pid<PID>` in the target's working
//! directory (or its /tmp), send SIGQUIT through the pidfd, wait for the socket, and remove the
//! file. Each command is one connection: `1\0`, the command, three NUL-terminated arguments;
//! the answer is a status line (0 = done) and the output, then the JVM closes the socket.

use super::{Result, RuntimeError};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to wait for the attach socket after SIGQUIT (the JDK's own default is 10 s).
pub const ATTACH_TIMEOUT: Duration = Duration::from_secs(10);
/// The default timeout of one command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// An attached HotSpot JVM.
pub struct Jvm {
    pid: i32,
    socket: PathBuf,
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

/// Removes the attach trigger file when dropped.
struct TriggerFile(Option<PathBuf>);

impl Drop for TriggerFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
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
        let socket = dir.join("root/tmp").join(format!(".java_pid{nspid}"));
        let mut jvm = Jvm {
            pid,
            socket,
            attach_time: Duration::ZERO,
            signalled: false,
            timeout: COMMAND_TIMEOUT,
        };
        if UnixStream::connect(&jvm.socket).is_ok() {
            jvm.attach_time = start.elapsed();
            return Ok(jvm);
        }
        let deadline = start + timeout;
        super::wait_until_caught(proc_root, pid, libc::SIGQUIT, "SIGQUIT", deadline)?;
        let _trigger = create_trigger(&dir, nspid, effective_ids(&status))?;
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
            if UnixStream::connect(&jvm.socket).is_ok() {
                jvm.attach_time = start.elapsed();
                return Ok(jvm);
            }
            if super::pidfd_exited(pidfd) {
                return Err(RuntimeError::Gone { pid });
            }
            if Instant::now() >= deadline {
                return Err(RuntimeError::AttachSocketMissing {
                    pid,
                    path: jvm.socket.clone(),
                    waited: timeout,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(200));
        }
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
        let mut stream = UnixStream::connect(&self.socket).map_err(|e| {
            RuntimeError::io(
                format!("cannot connect to {} for {}", self.socket.display(), what()),
                e,
            )
        })?;
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
fn create_trigger(proc_dir: &Path, nspid: i32, ids: Option<(u32, u32)>) -> Result<TriggerFile> {
    let name = format!(".attach_pid{nspid}");
    let mut last = None;
    for dir in [proc_dir.join("cwd"), proc_dir.join("root/tmp")] {
        let path = dir.join(&name);
        let made = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path);
        match made {
            Ok(_) => {
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
                if let Some((uid, gid)) = ids {
                    // Only root can give the file away; the same user needs no chown.
                    let _ = std::os::unix::fs::chown(&path, Some(uid), Some(gid));
                }
                return Ok(TriggerFile(Some(path)));
            }
            Err(e) => last = Some((path, e)),
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
    fn sizes() {
        assert_eq!(parse_size("12288K"), Some(12288 * 1024));
        assert_eq!(parse_size("378M,"), Some(378 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("x"), None);
    }
}
