//! The processes a process started: its descendants, found by their parent PIDs in /proc, each
//! held by a pidfd once its identity (PID and start time) is confirmed, so a PID recycled
//! meanwhile is never signalled. `memwatch run` stops what its command started with it: a
//! wrapper such as `npm start` does not always pass SIGTERM on, and a server left running
//! holds a CI job's output open.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

/// One process as /proc/PID/stat tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcEntry {
    pub pid: i32,
    /// `R`, `S`, ... `Z` for a zombie (exited, not yet reaped).
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    /// Clock ticks since boot: with the PID, the process's identity.
    pub start_time: u64,
    pub name: String,
}

/// A process found, held by a pidfd.
#[derive(Debug)]
pub struct Held {
    pub pid: i32,
    pub name: String,
    /// It had exited already (a zombie) when found: nothing to stop, only to reap.
    pub exited: bool,
    pub pidfd: OwnedFd,
}

/// Parses the text of /proc/PID/stat: the name in parentheses (which may hold spaces and
/// parentheses), then the state, parent PID, process group, ... and the start time (field 22).
pub fn parse_stat(pid: i32, text: &str) -> Option<ProcEntry> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = text.get(close + 1..)?.split_ascii_whitespace().collect();
    // fields[0] is field 3 (state): field N is fields[N - 3].
    Some(ProcEntry {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
        name,
    })
}

/// Every process now, from /proc (a process that ends while being read is left out).
pub fn processes() -> Vec<ProcEntry> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(pid, &text)
    })
    .collect()
}

/// The descendants of `roots` among `procs`, parents before children; the roots left out.
pub fn descendants_of(procs: &[ProcEntry], roots: &[i32]) -> Vec<i32> {
    let mut found: Vec<i32> = Vec::new();
    let mut frontier: Vec<i32> = roots.to_vec();
    while !frontier.is_empty() {
        let next: Vec<i32> = procs
            .iter()
            .filter(|p| frontier.contains(&p.ppid) && p.pid > 0)
            .map(|p| p.pid)
            .filter(|pid| !roots.contains(pid) && !found.contains(pid))
            .collect();
        found.extend(&next);
        frontier = next;
    }
    found
}

/// What the command with PID `pid` started and is still running: its descendants, and the
/// orphans of its tree that came to memwatch as their subreaper (memwatch's children other
/// than the command that are in its process group `pgrp`; the load runs in a group of its
/// own), with theirs. Each is held by a pidfd; `pid` itself is not included.
pub fn started_by(pid: i32, pgrp: i32) -> Vec<Held> {
    let procs = processes();
    let me = std::process::id() as i32;
    let mut roots = vec![pid];
    let orphans: Vec<i32> = procs
        .iter()
        .filter(|p| p.ppid == me && p.pid != pid && p.pgrp == pgrp)
        .map(|p| p.pid)
        .collect();
    roots.extend(&orphans);
    let mut pids = orphans;
    pids.extend(descendants_of(&procs, &roots));
    pids.into_iter()
        .filter_map(|pid| {
            let seen = procs.iter().find(|p| p.pid == pid)?;
            hold(seen)
        })
        .collect()
}

/// RSS in bytes, from /proc/PID/statm.
pub fn rss_of(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page.max(4096) as u64)
}

/// The process `pid` started (directly or not) that holds the most memory, if that is a
/// good part of what `pid` holds (a quarter, and 4 MiB): (it, its RSS, `pid`'s RSS). A
/// helper such as `sleep` is not; the server `npm start` runs is.
pub fn notable_descendant(pid: i32) -> Option<(ProcEntry, u64, u64)> {
    let own = rss_of(pid)?;
    let procs = processes();
    descendants_of(&procs, &[pid])
        .into_iter()
        .filter_map(|d| Some((procs.iter().find(|p| p.pid == d)?.clone(), rss_of(d)?)))
        .max_by_key(|(_, rss)| *rss)
        .filter(|(_, rss)| *rss >= (own / 4).max(4 << 20))
        .map(|(p, rss)| (p, rss, own))
}

/// A pidfd for the process `seen` describes, if it is still that process.
fn hold(seen: &ProcEntry) -> Option<Held> {
    if seen.pid <= 0 {
        return None;
    }
    // SAFETY: plain syscall; on success it returns a new fd that we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, seen.pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd is a fresh, valid descriptor.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // The pidfd names whatever process has the PID now: it must be the one seen.
    is_still(seen, Path::new("/proc")).then(|| Held {
        pid: seen.pid,
        name: seen.name.clone(),
        exited: seen.state == 'Z',
        pidfd,
    })
}

/// Reaps the orphans that came to memwatch as subreaper and have exited since, so a command
/// that keeps starting short-lived background processes leaves no zombies behind; memwatch's
/// own children (`keep`: the command, the load) are left to whoever waits for them. One
/// `waitid` when none has exited.
pub fn reap_orphans(keep: &[i32]) {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter; WNOWAIT only looks.
        let pid = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            if libc::waitid(
                libc::P_ALL,
                0,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            ) != 0
            {
                return;
            }
            info.si_pid()
        };
        if pid <= 0 || keep.contains(&pid) {
            return; // none has exited, or the first that has is not an orphan's
        }
        // SAFETY: reaps that one exited child, which is an orphan of the command's.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
    }
}

/// Whether PID `seen.pid` is still the process `seen` describes (the same start time), in
/// the /proc at `proc_root`: checked after a handle on the PID was taken, it says the handle
/// is bound to that process.
pub fn is_still(seen: &ProcEntry, proc_root: &Path) -> bool {
    std::fs::read_to_string(proc_root.join(format!("{}/stat", seen.pid)))
        .ok()
        .and_then(|text| parse_stat(seen.pid, &text))
        .is_some_and(|now| now.start_time == seen.start_time)
}

/// Makes memwatch the subreaper of what it spawns: a process whose parent exits comes to
/// memwatch rather than to init, so what a command started is still found when the command
/// itself is gone.
pub fn become_subreaper() {
    // SAFETY: plain prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_names() {
        // Recorded /proc/PID/stat lines; the second's name holds a space and a parenthesis.
        let plain = "21568 (node) S 21554 21540 21540 0 -1 4194560 3512 0 0 0 21 4 0 0 20 0 11 0 \
                     1234567 1024880640 14545 18446744073709551615";
        let e = parse_stat(21568, plain).unwrap_or_else(|| panic!("parsed"));
        assert_eq!((e.ppid, e.pgrp, e.start_time), (21554, 21540, 1234567));
        assert_eq!((e.name.as_str(), e.state), ("node", 'S'));
        let odd = "7 (a b) c)) R 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 0 0";
        let e = parse_stat(7, odd).unwrap_or_else(|| panic!("parsed"));
        assert_eq!((e.name.as_str(), e.ppid, e.start_time), ("a b) c)", 1, 99));
        assert_eq!(parse_stat(1, "1 (init) S 0"), None);
    }

    #[test]
    fn finds_descendants_parents_first() {
        let p = |pid, ppid| ProcEntry {
            pid,
            state: 'S',
            ppid,
            pgrp: 1,
            start_time: 0,
            name: String::new(),
        };
        // 10 -> 11 -> 13, 10 -> 12; 20 -> 21 (another tree); 30 an orphan root.
        let procs = [
            p(10, 1),
            p(11, 10),
            p(12, 10),
            p(13, 11),
            p(20, 1),
            p(21, 20),
            p(31, 30),
        ];
        assert_eq!(descendants_of(&procs, &[10]), vec![11, 12, 13]);
        assert_eq!(descendants_of(&procs, &[10, 30]), vec![11, 12, 31, 13]);
        assert!(descendants_of(&procs, &[13]).is_empty());
    }
}
