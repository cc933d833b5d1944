//! Finding the machine's processes without scanning /proc every tick. The kernel hands out
//! PIDs in increasing order, and the last one it handed out is the last field of
//! /proc/loadavg (one pread, kept open). When it has not moved, no process was started. When
//! it moved by a few, only those PIDs are looked at (a glance at each one's stat: ~4 µs for
//! a PID already gone, ~10 µs for one that is there, on this machine's loaded kernel). When
//! it moved by more (threads take PIDs too: a busy build hands out dozens a second), /proc's
//! listing is read instead (its names only, one `getdents64` pass, ~0.8 µs a process) and
//! only the processes listed in that range are looked at: threads are not listed. A full scan
//! (every process listed looked at) happens at the start and when PIDs wrapped around at
//! `pid_max`.
//!
//! A process to watch is then held through a descriptor of its /proc directory, checked to
//! be the process glanced at (its start time), so everything read about it (status, the statm
//! kept open) is about that one process even if its PID is reused meanwhile.

use crate::sample::stat::StatFields;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;

/// The PIDs handed out since the last look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fresh {
    None,
    /// These PIDs (first..=last).
    Range(i32, i32),
    /// The first look, or PIDs wrapped around: scan /proc.
    Scan,
}

/// Whether looking at the `new` PIDs handed out one by one costs less than reading /proc's
/// listing when `listed` processes are there (the costs measured above).
pub fn probe_one_by_one(new: i32, listed: usize) -> bool {
    new <= 8 || (new as usize) * 10 <= listed
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
        (Some(b), Some(n)) if n > b => Fresh::Range(b + 1, n),
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

/// /proc's listing, kept open: the PIDs of the processes (threads are not listed).
pub struct Listing {
    dir: OwnedFd,
    buf: Vec<u8>,
}

impl Listing {
    pub fn open() -> io::Result<Listing> {
        let dir = open_dir_path(c"/proc").ok_or_else(io::Error::last_os_error)?;
        Ok(Listing {
            dir,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Every PID listed now that `want` takes, into `out` (cleared first), in order. Reads
    /// the names only; no allocation once `out` has room.
    pub fn pids(&mut self, want: impl Fn(i32) -> bool, out: &mut Vec<i32>) {
        out.clear();
        let fd = self.dir.as_raw_fd();
        // SAFETY: rewinds our own directory descriptor.
        unsafe { libc::lseek(fd, 0, libc::SEEK_SET) };
        loop {
            // SAFETY: getdents64 fills our buffer with records of the directory.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    fd,
                    self.buf.as_mut_ptr(),
                    self.buf.len(),
                )
            };
            if n <= 0 {
                break;
            }
            let mut at = 0usize;
            while at + 19 < n as usize {
                // struct linux_dirent64: u64 ino, i64 off, u16 reclen, u8 type, name
                let reclen = u16::from_ne_bytes([self.buf[at + 16], self.buf[at + 17]]) as usize;
                if reclen == 0 {
                    break;
                }
                let name = &self.buf[at + 19..(at + reclen).min(n as usize)];
                let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
                if let Some(pid) = pid_name(name)
                    && want(pid)
                {
                    out.push(pid);
                }
                at += reclen;
            }
        }
        out.sort_unstable();
    }
}

/// A /proc entry's name as a PID: digits only.
fn pid_name(name: &[u8]) -> Option<i32> {
    if name.is_empty() || name.len() > 10 || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(name)
        .ok()?
        .parse()
        .ok()
        .filter(|&p| p > 0)
}

/// A process as first seen: its stat read by path, whatever it turns out to be.
#[derive(Debug)]
pub struct Glimpse {
    pub pid: i32,
    pub fields: StatFields,
    pub name: String,
}

impl Glimpse {
    /// A process of its own with an address space: not a thread of another process, a
    /// kernel thread or a zombie.
    pub fn is_process(&self) -> bool {
        !self.fields.is_thread()
            && !self.fields.is_kernel_thread()
            && !matches!(self.fields.state, b'Z' | b'X')
    }
}

/// Glances at PID `pid`: its stat, by path (one open and read; what most new PIDs, threads
/// and filtered-out processes, cost).
pub fn glimpse(pid: i32, buf: &mut [u8]) -> Option<Glimpse> {
    let text = read_by_path(pid, b"stat", buf)?;
    Some(Glimpse {
        pid,
        fields: StatFields::parse(text)?,
        name: String::from_utf8_lossy(crate::sample::stat::name(text)?).into_owned(),
    })
}

/// A process held: a descriptor of its /proc directory, checked to be the process glimpsed
/// (the same start time), through which its files are opened.
#[derive(Debug)]
pub struct Seen {
    pub pid: i32,
    pub start_time: u64,
    pub name: String,
    pub dir: OwnedFd,
}

/// Opens the /proc directory of the process `g` glimpsed, if it is still that process.
pub fn hold(g: &Glimpse) -> Option<Seen> {
    let dir = open_dir(g.pid)?;
    let mut buf = [0u8; 1024];
    let now = StatFields::parse(read_at(&dir, c"stat", &mut buf)?)?;
    (now.start_time == g.fields.start_time).then(|| Seen {
        pid: g.pid,
        start_time: g.fields.start_time,
        name: g.name.clone(),
        dir,
    })
}

/// The effective user id of the process held, from its status.
pub fn uid_of(dir: &OwnedFd) -> Option<u32> {
    let mut buf = [0u8; 4096];
    status_ids(read_at(dir, c"status", &mut buf)?).map(|(_, uid)| uid)
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
    open_dir_path(&path)
}

fn open_dir_path(path: &std::ffi::CStr) -> Option<OwnedFd> {
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
    StatFields::parse(read_by_path(pid, b"stat", buf)?)
}

/// The memory of the process `pid` that started at `start_time`, for a process whose files
/// are not kept open: its statm read by path (stat's resident count is only approximate: a
/// new process can read 0), then its stat, whose start time says the statm was that
/// process's (it lived before and after the read, so its PID was not reused in between).
pub fn read_memory_by_path(
    pid: i32,
    start_time: u64,
    page: u64,
    buf: &mut [u8],
) -> Option<crate::sample::MemStatus> {
    let mem = crate::sample::statm::parse(read_by_path(pid, b"statm", buf)?, page).ok()?;
    read_stat_by_path(pid, buf)
        .filter(|f| f.start_time == start_time && f.state != b'Z')
        .map(|_| mem)
}

/// Reads `/proc/<pid>/<file>` by its path into `buf`: one open, one read, one close, no
/// allocation.
fn read_by_path<'b>(pid: i32, file: &[u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut path = [0u8; 48];
    let mut num = itoa::Buffer::new();
    let digits = num.format(pid).as_bytes();
    let parts: [&[u8]; 5] = [b"/proc/", digits, b"/", file, b"\0"];
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
    buf.get(..n as usize)
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
        assert_eq!(fresh(Some(100), Some(5000)), Fresh::Range(101, 5000));
        // wrapped around pid_max
        assert_eq!(fresh(Some(32000), Some(400)), Fresh::Scan);
        assert_eq!(fresh(None, Some(400)), Fresh::Scan);
        // a few one by one; more, the listing, unless the machine has many processes
        assert!(probe_one_by_one(8, 0));
        assert!(!probe_one_by_one(9, 50));
        assert!(probe_one_by_one(100, 1000));
        assert!(!probe_one_by_one(101, 1000));
    }

    #[test]
    fn ids_from_a_recorded_status() {
        let text = b"Name:\tnode\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t21568\nNgid:\t0\n\
                     Pid:\t21570\nPPid:\t21554\nTracerPid:\t0\nUid:\t1000\t33\t1000\t1000\n";
        assert_eq!(status_ids(text), Some((21568, 33)));
        assert_eq!(status_ids(b"Tgid:\t1\n"), None);
    }

    #[test]
    fn a_child_is_held_and_a_thread_is_not_a_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let pid = child.id() as i32;
        let mut buf = [0u8; 1024];
        let g = glimpse(pid, &mut buf).expect("a process");
        assert!(g.is_process());
        assert_eq!(g.name, "sleep", "spawn returns once the child has exec'd");
        let seen = hold(&g).expect("held");
        assert_eq!((seen.pid, seen.start_time), (pid, g.fields.start_time));
        // SAFETY: geteuid has no preconditions.
        assert_eq!(uid_of(&seen.dir), Some(unsafe { libc::geteuid() }));
        assert_eq!(name_now(&seen.dir).as_deref(), Some("sleep"));
        let by_path = read_stat_by_path(pid, &mut buf).expect("stat");
        assert_eq!(by_path.start_time, seen.start_time);
        let mem = read_memory_by_path(pid, seen.start_time, 4096, &mut buf).expect("memory");
        assert!(mem.rss > 0 && mem.anon.is_some());
        assert!(
            read_memory_by_path(pid, seen.start_time + 1, 4096, &mut buf).is_none(),
            "another process"
        );
        // a thread of this test process opens under /proc but is no process of its own
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        if tid != std::process::id() as i32 {
            assert!(!glimpse(tid, &mut buf).expect("a thread").is_process());
        }
        // a kernel thread, where this PID namespace shows any (kthreadd is PID 2 outside
        // containers)
        let mut listing = Listing::open().expect("/proc");
        let mut all = Vec::new();
        listing.pids(|_| true, &mut all);
        let kernel = all.iter().copied().find(|&p| {
            read_stat_by_path(p, &mut [0u8; 1024]).is_some_and(|f| f.is_kernel_thread())
        });
        if let Some(k) = kernel {
            assert!(!glimpse(k, &mut buf).expect("kernel thread").is_process());
        }
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(glimpse(pid, &mut buf).is_none());
        assert!(hold(&g).is_none(), "gone: not held");
        assert!(read_stat_by_path(pid, &mut buf).is_none());
        assert!(all.contains(&(std::process::id() as i32)));
        assert!(
            !all.contains(&tid) || tid == std::process::id() as i32,
            "threads unlisted"
        );
        assert!(all.windows(2).all(|w| w[0] < w[1]));
        let mut mine = Vec::new();
        listing.pids(|p| p == std::process::id() as i32, &mut mine);
        assert_eq!(mine, [std::process::id() as i32]);
        assert_eq!(
            (pid_name(b"123"), pid_name(b"self"), pid_name(b"0")),
            (Some(123), None, None)
        );
    }
}
