//! `--all`: every process of the machine as a target. Kernel threads and memwatch itself are
//! left out, and `--user`/`--name` narrow the set. Processes are found as they start
//! (`discover.rs`: the last PID handed out first, a full /proc scan only when needed) and
//! each is then read once a tick through its `/proc/PID/statm`, opened through the process's
//! /proc directory and kept open: bound to that process, so a reused PID is never read as
//! the old process. No pidfd is needed: `--all` never signals.
//!
//! One descriptor per process. Past the open-file budget (`fdlimit.rs`), a process is read by
//! opening its statm and then its stat by path each tick, the start time checked (slower),
//! and memwatch says so once.

pub mod discover;
pub mod fdlimit;

use crate::sample::{MemStatus, statm};
use discover::{Fresh, Glimpse, Listing, PidWatch, Seen};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Which processes `--all` watches.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// `--user`: effective user id.
    pub uid: Option<u32>,
    /// `--name`: a regular expression matched against the process name (`comm`, as `ps -o
    /// comm` and `pgrep` show it).
    pub name: Option<regex_lite::Regex>,
}

impl Filter {
    pub fn admits(&self, name: &str, uid: u32) -> bool {
        self.admits_uid(uid) && self.admits_name(name)
    }

    pub fn admits_name(&self, name: &str) -> bool {
        self.name.as_ref().is_none_or(|r| r.is_match(name))
    }

    pub fn admits_uid(&self, uid: u32) -> bool {
        self.uid.is_none_or(|u| u == uid)
    }
}

/// `--group-by`: processes summed into one series per service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// By process name: every `php-fpm` worker in one.
    Name,
    /// By memory cgroup (a systemd service, a container).
    Cgroup,
}

impl GroupBy {
    pub fn word(self) -> &'static str {
        match self {
            GroupBy::Name => "name",
            GroupBy::Cgroup => "cgroup",
        }
    }
}

/// One process watched.
#[derive(Debug)]
pub struct Proc {
    pub pid: i32,
    /// Clock ticks since boot: with the PID, who the process is.
    pub start_time: u64,
    pub name: String,
    /// Effective user id, read when `--user` asks for it.
    pub uid: Option<u32>,
    /// With `--group-by`: the group it is summed into.
    pub group: Option<String>,
    /// The series it feeds, set by whoever keeps the series (`Board::add`).
    pub unit: u32,
    source: Source,
}

impl Proc {
    /// Read by reopening its files each tick (past the open-file budget).
    pub fn degraded(&self) -> bool {
        matches!(self.source, Source::Reopened)
    }
}

#[derive(Debug)]
enum Source {
    /// statm, kept open.
    Kept(File),
    /// statm and stat by path each tick.
    Reopened,
}

/// A process found right after its fork: it may exec (and be renamed) in a moment.
struct Young {
    pid: i32,
    start_time: u64,
    checks_left: u8,
    /// In `procs`; otherwise left out by the filter, for now.
    watched: bool,
}

/// A process younger than this when found has its name read again on the next ticks (start
/// times count in clock ticks of 10 ms: this is within a few of them).
const YOUNG_S: f64 = 0.05;
/// At most this many young processes are followed (a fork storm is not).
const YOUNG_MAX: usize = 64;

/// How processes were looked for, for the summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Scans {
    /// Full scans of /proc (the first one included): every process listed looked at.
    pub full: u64,
    /// Ticks that looked at a few new PIDs one by one.
    pub probes: u64,
    /// PIDs looked at one by one.
    pub probed_pids: u64,
    /// Ticks that read /proc's listing for the processes among many new PIDs.
    pub listings: u64,
}

pub struct Machine {
    procs: Vec<Proc>,
    /// Who `procs` are (PID, start time), sorted.
    pids: Vec<(i32, u64)>,
    young: Vec<Young>,
    watch: PidWatch,
    listing: Listing,
    /// PIDs from the listing, reused.
    listed: Vec<i32>,
    filter: Filter,
    group_by: Option<GroupBy>,
    /// Descriptors that may be kept open for processes, and those that are.
    budget: u64,
    kept: u64,
    me: i32,
    page: u64,
    boot_hz: f64,
    /// `--user`: the status of each process found is read for its user.
    wants_uid: bool,
    buf: [u8; 1024],
    scans: Scans,
    /// Said once, when the first process had to be read by reopening.
    note: Option<String>,
    noted: bool,
}

impl Machine {
    pub fn new(filter: Filter, group_by: Option<GroupBy>, fd_budget: u64) -> io::Result<Machine> {
        Ok(Machine {
            procs: Vec::new(),
            pids: Vec::new(),
            young: Vec::new(),
            watch: PidWatch::open()?,
            listing: Listing::open()?,
            listed: Vec::new(),
            wants_uid: filter.uid.is_some(),
            filter,
            group_by,
            budget: fd_budget,
            kept: 0,
            me: std::process::id() as i32,
            page: statm::page_size(),
            boot_hz: discover::clock_ticks(),
            buf: [0; 1024],
            scans: Scans::default(),
            note: None,
            noted: false,
        })
    }

    pub fn procs(&self) -> &[Proc] {
        &self.procs
    }

    pub fn set_unit(&mut self, index: usize, unit: u32) {
        if let Some(p) = self.procs.get_mut(index) {
            p.unit = unit;
        }
    }

    pub fn scans(&self) -> Scans {
        self.scans
    }

    /// Processes read by reopening their files each tick.
    pub fn degraded(&self) -> usize {
        self.procs.iter().filter(|p| p.degraded()).count()
    }

    /// A message for people, once: the open-file budget ran out.
    pub fn take_note(&mut self) -> Option<String> {
        self.note.take()
    }

    /// Looks for processes started since the last call (all of them, the first time), and
    /// reads again the names of those found in their first second. New processes are
    /// appended to `procs`: returns where they start, and the indices of those renamed.
    pub fn discover(&mut self, renamed: &mut Vec<usize>) -> usize {
        let first_new = self.procs.len();
        renamed.clear();
        self.recheck_young(renamed);
        match self.watch.since_last() {
            Fresh::None => {}
            Fresh::Range(first, last)
                if discover::probe_one_by_one(last - first + 1, self.procs.len()) =>
            {
                self.scans.probes += 1;
                self.scans.probed_pids += (last - first + 1) as u64;
                for pid in first..=last {
                    self.consider(pid);
                }
            }
            Fresh::Range(first, last) => {
                self.scans.listings += 1;
                self.look_at_listed(|pid| (first..=last).contains(&pid));
            }
            Fresh::Scan => {
                self.scans.full += 1;
                self.watch.mark();
                // every process listed, the watched ones too: after a wrap-around a PID on
                // the list may have been handed out again
                self.look_at_listed(|_| true);
            }
        }
        first_new
    }

    /// Looks at the processes listed in /proc that `want` takes.
    fn look_at_listed(&mut self, want: impl Fn(i32) -> bool) {
        let mut listed = std::mem::take(&mut self.listed);
        self.listing.pids(want, &mut listed);
        for &pid in &listed {
            self.consider(pid);
        }
        self.listed = listed;
    }

    /// Looks at PID `pid`: a glance at its stat (threads, kernel threads and names
    /// `--name` leaves out cost no more), then, for a process to watch, its directory held
    /// and its statm opened.
    fn consider(&mut self, pid: i32) {
        if pid == self.me {
            return;
        }
        let Some(g) = discover::glimpse(pid, &mut self.buf) else {
            return;
        };
        if !g.is_process() || self.is_watched(pid, g.fields.start_time) {
            return;
        }
        let young = self.is_young(g.fields.start_time) && self.young.len() < YOUNG_MAX;
        let watched = self.filter.admits_name(&g.name) && self.admit(&g);
        if young {
            self.young.push(Young {
                pid,
                start_time: g.fields.start_time,
                checks_left: 2,
                watched,
            });
        }
    }

    /// Whether that very process is watched. A PID handed out anew while its old process is
    /// still on the list (it ended since the last read) is another process: watched too.
    fn is_watched(&self, pid: i32, start_time: u64) -> bool {
        self.pids.binary_search(&(pid, start_time)).is_ok()
    }

    fn is_young(&self, start_time: u64) -> bool {
        discover::boot_seconds() - start_time as f64 / self.boot_hz < YOUNG_S
    }

    /// Holds the process glimpsed and starts watching it, if it is still there (and its
    /// user is `--user`'s).
    fn admit(&mut self, g: &Glimpse) -> bool {
        let Some(seen) = discover::hold(g) else {
            return false;
        };
        let uid = if self.wants_uid {
            match discover::uid_of(&seen.dir) {
                Some(uid) if self.filter.admits_uid(uid) => Some(uid),
                _ => return false,
            }
        } else {
            None
        };
        self.watch_held(&seen, uid)
    }

    fn watch_held(&mut self, seen: &Seen, uid: Option<u32>) -> bool {
        let source = if self.kept < self.budget {
            match discover::open_in(&seen.dir, c"statm") {
                Ok(file) => {
                    self.kept += 1;
                    Source::Kept(file)
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    self.budget = self.kept; // the limit is lower than it said
                    Source::Reopened
                }
                Err(_) => return false, // gone, or not ours to read
            }
        } else {
            Source::Reopened
        };
        if matches!(source, Source::Reopened) && !self.noted {
            self.noted = true;
            self.note = Some(format!(
                "the open-file limit allows {} processes kept open: the rest are read by \
                 reopening /proc/PID/statm and stat each tick (slower); raise the hard limit \
                 (ulimit -Hn, LimitNOFILE=) to keep them all open",
                self.kept
            ));
        }
        let group = match self.group_by {
            None => None,
            Some(GroupBy::Name) => Some(seen.name.clone()),
            Some(GroupBy::Cgroup) => {
                Some(discover::cgroup_of(&seen.dir).unwrap_or_else(|| "/".to_string()))
            }
        };
        let who = (seen.pid, seen.start_time);
        let at = self.pids.partition_point(|&p| p < who);
        self.pids.insert(at, who);
        self.procs.push(Proc {
            pid: seen.pid,
            start_time: seen.start_time,
            name: seen.name.clone(),
            uid,
            group,
            unit: u32::MAX,
            source,
        });
        true
    }

    /// The names of processes found right after their fork, read again: one that exec'd is
    /// renamed (and regrouped by name), or watched now that its new name matches `--name`.
    fn recheck_young(&mut self, renamed: &mut Vec<usize>) {
        let mut young = std::mem::take(&mut self.young);
        young.retain_mut(|y| {
            y.checks_left = y.checks_left.saturating_sub(1);
            let Some(g) = discover::glimpse(y.pid, &mut self.buf)
                .filter(|g| g.fields.start_time == y.start_time && g.is_process())
            else {
                return false; // gone
            };
            if y.watched {
                if let Some(i) = self
                    .procs
                    .iter()
                    .position(|p| p.pid == y.pid && p.start_time == y.start_time)
                    && self.procs[i].name != g.name
                {
                    if self.group_by == Some(GroupBy::Name) {
                        self.procs[i].group = Some(g.name.clone());
                    }
                    self.procs[i].name = g.name;
                    renamed.push(i);
                }
            } else if self.filter.admits_name(&g.name) {
                y.watched = self.admit(&g);
            }
            y.checks_left > 0
        });
        self.young = young;
    }

    /// Reads every process once: `each` gets the live ones with their memory; those that
    /// have ended are taken out into `ended` (not cleared). No allocation once `ended` has
    /// room.
    pub fn read(&mut self, mut each: impl FnMut(&Proc, MemStatus), ended: &mut Vec<Proc>) {
        let mut i = 0;
        while i < self.procs.len() {
            let p = &self.procs[i];
            let reading = match &p.source {
                Source::Kept(file) => match file.read_at(&mut self.buf, 0) {
                    Ok(n) => statm::parse(&self.buf[..n], self.page).ok(),
                    Err(_) => None, // ESRCH: it has exited
                },
                Source::Reopened => {
                    discover::read_memory_by_path(p.pid, p.start_time, self.page, &mut self.buf)
                }
            };
            match reading {
                Some(mem) => {
                    each(p, mem);
                    i += 1;
                }
                None => {
                    let gone = self.procs.swap_remove(i);
                    if let Ok(at) = self.pids.binary_search(&(gone.pid, gone.start_time)) {
                        self.pids.remove(at);
                    }
                    if matches!(gone.source, Source::Kept(_)) {
                        self.kept -= 1;
                    }
                    ended.push(gone);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sleep` under a name of its own (its `comm`), so the machine's other sleepers stay out.
    fn sleeper(dir: &std::path::Path, name: &str) -> std::process::Child {
        let bin = dir.join(name);
        if !bin.exists() {
            std::fs::copy("/bin/sleep", &bin).expect("copy sleep");
        }
        std::process::Command::new(bin)
            .arg("30")
            .spawn()
            .expect("sleep")
    }

    /// Every process of this test's tree named `sleep` that `m` watches.
    fn watched(m: &Machine, pids: &[i32]) -> Vec<i32> {
        let mut w: Vec<i32> = m
            .procs()
            .iter()
            .map(|p| p.pid)
            .filter(|p| pids.contains(p))
            .collect();
        w.sort_unstable();
        w
    }

    #[test]
    fn finds_reads_and_ends_processes_with_and_without_open_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let name = format!("mwt-{}", std::process::id() % 100_000);
        let filter = Filter {
            uid: None,
            name: Some(regex_lite::Regex::new(&format!("^{name}$")).expect("regex")),
        };
        // room for one file kept open: the second sleeper is read by reopening
        let mut m = Machine::new(filter, None, 1).expect("machine");
        let mut a = sleeper(dir.path(), &name);
        let mut renamed = Vec::new();
        m.discover(&mut renamed);
        let mut b = sleeper(dir.path(), &name);
        let first_new = m.discover(&mut renamed);
        let (pa, pb) = (a.id() as i32, b.id() as i32);
        assert_eq!(watched(&m, &[pa, pb]), {
            let mut v = vec![pa, pb];
            v.sort_unstable();
            v
        });
        assert!(
            m.procs()[first_new..].iter().any(|p| p.pid == pb),
            "b is new"
        );
        assert_eq!(m.procs().len(), 2);
        assert!(m.procs().iter().all(|p| p.name == name));
        assert_eq!(m.degraded(), 1);
        assert!(m.take_note().is_some_and(|n| n.contains("open-file limit")));
        let mut read = Vec::new();
        let mut ended = Vec::new();
        m.read(|p, mem| read.push((p.pid, mem)), &mut ended);
        assert!(ended.is_empty());
        for pid in [pa, pb] {
            let (_, mem) = read.iter().find(|(p, _)| *p == pid).expect("read");
            assert!(mem.rss > 0 && mem.vsz > 0);
        }
        assert!(
            read.iter().all(|(_, m)| m.anon.is_some()),
            "statm read either way"
        );
        a.kill().expect("kill");
        a.wait().expect("reap");
        b.kill().expect("kill");
        m.read(|_, _| {}, &mut ended);
        b.wait().expect("reap");
        let pids = |e: &[Proc]| e.iter().map(|p| p.pid).collect::<Vec<i32>>();
        assert!(pids(&ended).contains(&pa), "{:?}", pids(&ended));
        // a zombie or a reaped process both end
        m.read(|_, _| {}, &mut ended);
        assert!(pids(&ended).contains(&pb), "{:?}", pids(&ended));
        assert!(watched(&m, &[pa, pb]).is_empty());
        assert!(m.scans().full >= 1);
    }

    /// Regression: a PID handed out again while its old process was still on the list (it
    /// ended after the last read) was skipped as watched, and the new process never read.
    #[test]
    fn a_reused_pid_is_a_new_process() {
        // SAFETY: getuid has no preconditions.
        assert_eq!(
            unsafe { libc::getuid() },
            0,
            "forcing PID reuse needs root (CI has it)"
        );
        let dir = tempfile::tempdir().expect("tmp");
        let name = format!("mwr-{}", std::process::id() % 100_000);
        let filter = Filter {
            uid: None,
            name: Some(regex_lite::Regex::new(&format!("^{name}$")).expect("regex")),
        };
        let mut m = Machine::new(filter, None, 100).expect("machine");
        let mut old = sleeper(dir.path(), &name);
        let pid = old.id() as i32;
        let mut renamed = Vec::new();
        m.discover(&mut renamed);
        assert_eq!(m.procs().len(), 1);
        // a process is known by PID and start time, in clock ticks (10 ms): the new one must
        // start in a later tick than the old one, as it always does when PIDs wrap around
        std::thread::sleep(std::time::Duration::from_millis(30));
        old.kill().expect("kill");
        old.wait().expect("reap");
        // the same PID for a new process (other processes may take it first: try again)
        let mut new = None;
        for _ in 0..200 {
            std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string())
                .expect("ns_last_pid");
            let c = sleeper(dir.path(), &name);
            if c.id() as i32 == pid {
                new = Some(c);
                break;
            }
            let mut c = c;
            c.kill().expect("kill");
            c.wait().expect("reap");
        }
        let mut new = new.expect("PID reused");
        // what a wrap-around of PIDs triggers: a full scan (discover() would see the last
        // PID go back only if nothing else started meanwhile)
        m.look_at_listed(|_| true);
        let mut ended = Vec::new();
        let mut read = Vec::new();
        m.read(|p, _| read.push((p.pid, p.start_time)), &mut ended);
        assert_eq!(ended.len(), 1, "the old process ended");
        assert_eq!(read.len(), 1, "the new one is read");
        assert_eq!(read[0].0, pid);
        assert_ne!(read[0].1, ended[0].start_time);
        new.kill().expect("kill");
        new.wait().expect("reap");
    }

    #[test]
    fn the_filter() {
        let f = Filter {
            uid: Some(33),
            name: Some(regex_lite::Regex::new("^php-fpm").expect("regex")),
        };
        assert!(f.admits("php-fpm8.2", 33));
        assert!(!f.admits("php-fpm8.2", 0));
        assert!(!f.admits("nginx", 33));
        assert!(Filter::default().admits("anything", 0));
    }
}
