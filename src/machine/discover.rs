//! Finding the machine's processes without scanning /proc every tick. The kernel hands out
//! PIDs in increasing order, and the last one it handed out is the last field of
//! /proc/loadavg (one pread, kept open). When it has not moved, no process was started; when
//! it moved by a few, only those PIDs are looked at; a full scan of /proc happens at the
//! start, when PIDs wrapped around at `pid_max`, and when too many were handed out in one
//! tick to look at one by one.
//!
//! A process is looked at through a descriptor of its /proc directory, so everything read
//! about it (status, stat, the statm kept open) is about that one process even if its PID is
//! reused meanwhile.

use crate::sample::stat::StatFields;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;

/// At most this many new PIDs are looked at one by one; more, and /proc is scanned.
pub const PROBE_MAX: i32 = 1024;

/// The PIDs handed out since the last look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fresh {
    None,
    /// These PIDs (first..=last), a few.
    Range(i32, i32),
    /// Too many, or PIDs wrapped around: scan /proc.
    Scan,
}

/// /proc/loadavg, kept open: its last field is the last PID handed out.
pub struct PidWatch {
    loadavg: File,
    last: Option<i32>,
}

impl PidWatch {
    pub fn open() -> io::Result<PidWatch> {
        Ok(PidWatch {
            loadavg: File::open("/proc/loadavg")?,
            last: None,
        })
    }

    fn read(&self) -> Option<i32> {
        let mut buf = [0u8; 128];
        let n = self.loadavg.read_at(&mut buf, 0).ok()?;
        parse_last_pid(&buf[..n])
    }

    /// Notes the last PID now, before a full scan (what starts during the scan is probed
    /// next time).
    pub fn mark(&mut self) {
        self.last = self.read();
    }

    /// What was handed out since the last call (or `mark`).
    pub fn since_last(&mut self) -> Fresh {
        let now = self.read();
        let before = std::mem::replace(&mut self.last, now);
        fresh(before, now)
    }
}

/// What moved between two readings of the last PID.
pub fn fresh(before: Option<i32>, now: Option<i32>) -> Fresh {
    match (before, now) {
        (Some(b), Some(n)) if n == b => Fresh::None,
        (Some(b), Some(n)) if n > b && n - b <= PROBE_MAX => Fresh::Range(b + 1, n),
        _ => Fresh::Scan,
    }
}

/// The last field of /proc/loadavg: `0.52 0.58 0.59 2/345 12345`.
pub fn parse_last_pid(text: &[u8]) -> Option<i32> {
    let word = text
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty())
        .nth(4)?;
    std::str::from_utf8(word).ok()?.parse().ok()
}

/// Every PID listed in /proc now (processes, not threads), in order.
pub fn listed() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&pid: &i32| pid > 0)
        .collect();
    pids.sort_unstable();
    pids
}

/// A process as first seen: who it is, read through its /proc directory.
#[derive(Debug)]
pub struct Seen {
    pub pid: i32,
    pub start_time: u64,
    pub name: String,
    /// Effective user id.
    pub uid: u32,
    pub dir: OwnedFd,
}

/// Why a PID is not a process to watch.
#[derive(Debug, PartialEq, Eq)]
pub enum NotOne {
    /// Gone, a thread of another process, a zombie, or not readable.
    Absent,
    KernelThread,
}

/// Looks at PID `pid` through a descriptor of its /proc directory: its status (thread group,
/// user) and stat (name, start time, kernel thread).
pub fn examine(pid: i32) -> Result<Seen, NotOne> {
    let dir = open_dir(pid).ok_or(NotOne::Absent)?;
    let mut buf = [0u8; 4096];
    let status = read_at(&dir, c"status", &mut buf).ok_or(NotOne::Absent)?;
    let (tgid, uid) = status_ids(status).ok_or(NotOne::Absent)?;
    if tgid != pid {
        return Err(NotOne::Absent); // a thread: /proc/TID opens, but is not listed
    }
    let text = read_at(&dir, c"stat", &mut buf).ok_or(NotOne::Absent)?;
    let fields = StatFields::parse(text).ok_or(NotOne::Absent)?;
    if fields.is_kernel_thread() {
        return Err(NotOne::KernelThread);
    }
    if fields.state == b'Z' || fields.state == b'X' {
        return Err(NotOne::Absent);
    }
    let entry =
        crate::tree::parse_stat(pid, &String::from_utf8_lossy(text)).ok_or(NotOne::Absent)?;
    Ok(Seen {
        pid,
        start_time: fields.start_time,
        name: entry.name,
        uid,
        dir,
    })
}

/// The process's name now (`comm`), read through its directory: a process found between
/// fork and exec still had its parent's.
pub fn name_now(dir: &OwnedFd) -> Option<String> {
    let mut buf = [0u8; 64];
    let text = read_at(dir, c"comm", &mut buf)?;
    let name = String::from_utf8_lossy(text)
        .trim_end_matches('\n')
        .to_string();
    (!name.is_empty()).then_some(name)
}

/// The process's memory cgroup path, read through its directory.
pub fn cgroup_of(dir: &OwnedFd) -> Option<String> {
    let mut buf = [0u8; 4096];
    let text = read_at(dir, c"cgroup", &mut buf)?;
    crate::cgroup::memory_cgroup(&String::from_utf8_lossy(text)).map(|(_, path)| path)
}

/// Opens a file of the process's directory to keep (its statm). `Err` with the OS error
/// (EMFILE when the open-file limit is reached).
pub fn open_in(dir: &OwnedFd, name: &std::ffi::CStr) -> io::Result<File> {
    // SAFETY: a valid directory descriptor and a NUL-terminated name; the new descriptor is
    // ours.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor.
    Ok(unsafe { File::from_raw_fd(fd) })
}

fn open_dir(pid: i32) -> Option<OwnedFd> {
    let path = CString::new(format!("/proc/{pid}")).ok()?;
    // SAFETY: a NUL-terminated path; the new descriptor is ours.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    // SAFETY: fd is a fresh, valid descriptor when not negative.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads a whole small file of the directory into `buf`.
fn read_at<'b>(dir: &OwnedFd, name: &std::ffi::CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let file = open_in(dir, name).ok()?;
    let n = file.read_at(buf, 0).ok()?;
    Some(&buf[..n])
}

/// The thread group id and the effective user id in a status text.
pub fn status_ids(text: &[u8]) -> Option<(i32, u32)> {
    let (mut tgid, mut uid) = (None, None);
    for line in text.split(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"Tgid:") {
            tgid = std::str::from_utf8(rest).ok()?.trim().parse().ok();
        } else if let Some(rest) = line.strip_prefix(b"Uid:") {
            // real, effective, saved, filesystem
            uid = std::str::from_utf8(rest)
                .ok()?
                .split_ascii_whitespace()
                .nth(1)?
                .parse()
                .ok();
        }
        if tgid.is_some() && uid.is_some() {
            break;
        }
    }
    Some((tgid?, uid?))
}

/// Seconds since boot, on the clock process start times are counted on.
pub fn boot_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the struct.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Clock ticks per second (`start_time` is in these).
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// Reads `/proc/PID/stat` by its path, for a process whose files are not kept open: one
/// open, one read, one close, no allocation. The caller checks the start time: the PID may
/// have been reused.
pub fn read_stat_by_path(pid: i32, buf: &mut [u8]) -> Option<StatFields> {
    let mut path = [0u8; 32];
    let mut num = itoa::Buffer::new();
    let digits = num.format(pid).as_bytes();
    let parts: [&[u8]; 3] = [b"/proc/", digits, b"/stat\0"];
    let mut at = 0;
    for p in parts {
        path.get_mut(at..at + p.len())?.copy_from_slice(p);
        at += p.len();
    }
    // SAFETY: `path` is NUL-terminated; the descriptor is closed below.
    let fd: RawFd = unsafe {
        libc::open(
            path.as_ptr().cast(),
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: reading into our buffer from the descriptor opened above, then closing it.
    let n = unsafe {
        let n = libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), 0);
        libc::close(fd);
        n
    };
    if n <= 0 {
        return None;
    }
    StatFields::parse(&buf[..n as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_pid_and_what_moved() {
        assert_eq!(parse_last_pid(b"6.04 4.63 4.04 7/181 16959\n"), Some(16959));
        assert_eq!(parse_last_pid(b"6.04 4.63"), None);
        assert_eq!(fresh(Some(100), Some(100)), Fresh::None);
        assert_eq!(fresh(Some(100), Some(103)), Fresh::Range(101, 103));
        assert_eq!(
            fresh(Some(100), Some(100 + PROBE_MAX)),
            Fresh::Range(101, 100 + PROBE_MAX)
        );
        assert_eq!(fresh(Some(100), Some(101 + PROBE_MAX)), Fresh::Scan);
        // wrapped around pid_max
        assert_eq!(fresh(Some(32000), Some(400)), Fresh::Scan);
        assert_eq!(fresh(None, Some(400)), Fresh::Scan);
    }

    #[test]
    fn ids_from_a_recorded_status() {
        let text = b"Name:\tnode\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t21568\nNgid:\t0\n\
                     Pid:\t21570\nPPid:\t21554\nTracerPid:\t0\nUid:\t1000\t33\t1000\t1000\n";
        assert_eq!(status_ids(text), Some((21568, 33)));
        assert_eq!(status_ids(b"Tgid:\t1\n"), None);
    }

    #[test]
    fn a_child_is_examined_and_a_thread_is_not_a_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let pid = child.id() as i32;
        let seen = examine(pid).expect("a process");
        assert_eq!(seen.pid, pid);
        // SAFETY: geteuid has no preconditions.
        assert_eq!(seen.uid, unsafe { libc::geteuid() });
        assert_eq!(
            seen.name, "sleep",
            "spawn returns once the child has exec'd"
        );
        let by_path = read_stat_by_path(pid, &mut [0u8; 1024]).expect("stat");
        assert_eq!(by_path.start_time, seen.start_time);
        // a thread of this test process opens under /proc but is no process of its own
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        if tid != std::process::id() as i32 {
            assert_eq!(examine(tid).map(|s| s.pid), Err(NotOne::Absent));
        }
        // a kernel thread, where this PID namespace shows any (kthreadd is PID 2 outside
        // containers)
        let kernel = listed().into_iter().find(|&p| {
            read_stat_by_path(p, &mut [0u8; 1024]).is_some_and(|f| f.is_kernel_thread())
        });
        if let Some(k) = kernel {
            assert_eq!(examine(k).map(|s| s.pid), Err(NotOne::KernelThread));
        }
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert_eq!(examine(pid).map(|s| s.pid), Err(NotOne::Absent));
        assert!(read_stat_by_path(pid, &mut [0u8; 1024]).is_none());
        assert!(listed().contains(&(std::process::id() as i32)));
    }
}
