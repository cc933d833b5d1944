//! With `--tree` (or `--all-matches`): the processes the target started (or that match its
//! pattern), sampled beside it and summed with it into the `total` series. They are looked
//! for again at most once a second (a scan of /proc, the only allocation besides a new
//! member's); each is then read through its own open /proc files, bound to that process as
//! the target's are, so a PID recycled later is never read.
//!
//! PSS, for a total that counts a shared page once (split between the processes that map
//! it): each process's smaps_rollup is read in turn, the oldest reading first, one interval
//! apart, and within a time budget per tick, so a tree of big processes (whose page-table
//! walks cost milliseconds each) never stalls a tick; the total's PSS is the sum of each
//! process's latest reading, known once every process has one.

use crate::find::{Candidate, Pattern};
use crate::sample::reader::ProcReader;
use crate::sample::{MemStatus, Sample};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the tree is looked at for new processes.
const SCAN_EVERY: Duration = Duration::from_secs(1);
/// The most points kept of one process's series for its own verdict: beyond, neighbours are
/// merged by their minimum (the floor the verdict judges is kept).
const SERIES_MAX: usize = 2048;

/// Which processes are summed with the target.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// The processes the target (and every match) started.
    pub descendants: bool,
    /// `--all-matches`: every process this pattern matches.
    pub matches: Option<Pattern>,
}

/// How the members' PSS is read: one process's smaps_rollup after another, each every
/// `every`, within `budget` of reading per tick (at least one read).
#[derive(Clone, Copy, Debug)]
pub struct PssSpread {
    pub every: Duration,
    pub budget: Duration,
}

pub struct Members {
    root: i32,
    scope: Scope,
    proc_root: PathBuf,
    /// The members' smaps_rollup is opened (`--pss`, or a PSS total).
    with_smaps: bool,
    pss: Option<PssSpread>,
    readers: Vec<Member>,
    /// The root's PSS, read through the target's own reader.
    root_smaps: Smaps,
    next_scan: Instant,
    /// Every process seen over the run, the target first, with its RSS when first and last
    /// read and its series.
    seen: Vec<Seen>,
    /// Members due for a PSS reading (reused: no allocation per tick).
    due: Vec<usize>,
}

/// One process of a tree over the run: its RSS when first and last read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessGrowth {
    pub pid: i32,
    /// Its name when last seen: a command started through a wrapper that exec'd (a shell
    /// script, a shim) is named for the program it became.
    pub name: String,
    pub first_s: f64,
    pub last_s: f64,
    pub first_bytes: u64,
    pub last_bytes: u64,
}

impl ProcessGrowth {
    pub fn growth_bytes(&self) -> i64 {
        self.last_bytes as i64 - self.first_bytes as i64
    }
}

/// A process's RSS over the run, for its own verdict: at most `SERIES_MAX` points, each the
/// lowest of the samples it stands for (and their time).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FloorSeries {
    pub time_s: Vec<f64>,
    pub bytes: Vec<f64>,
    /// Samples per point now, and the lowest of the ones not yet a point.
    per_point: usize,
    pending: Option<(f64, f64, usize)>,
}

impl FloorSeries {
    pub fn push(&mut self, t: f64, v: f64) {
        let per_point = self.per_point.max(1);
        let (pt, pv, n) = match self.pending {
            Some((pt, pv, n)) if v >= pv => (pt, pv, n + 1),
            Some((_, _, n)) => (t, v, n + 1),
            None => (t, v, 1),
        };
        if n < per_point {
            self.pending = Some((pt, pv, n));
            return;
        }
        self.pending = None;
        self.time_s.push(pt);
        self.bytes.push(pv);
        if self.time_s.len() >= SERIES_MAX {
            // Halve in place: each pair of points becomes its lower one.
            let half = self.time_s.len() / 2;
            for i in 0..half {
                let j = if self.bytes[2 * i + 1] < self.bytes[2 * i] {
                    2 * i + 1
                } else {
                    2 * i
                };
                self.time_s[i] = self.time_s[j];
                self.bytes[i] = self.bytes[j];
            }
            self.time_s.truncate(half);
            self.bytes.truncate(half);
            self.per_point = per_point * 2;
        }
    }

    /// The points, the samples not yet a point included.
    pub fn points(&self) -> (Vec<f64>, Vec<f64>) {
        let (mut t, mut v) = (self.time_s.clone(), self.bytes.clone());
        if let Some((pt, pv, _)) = self.pending {
            t.push(pt);
            v.push(pv);
        }
        (t, v)
    }
}

struct Seen {
    growth: ProcessGrowth,
    series: FloorSeries,
}

struct Member {
    pid: i32,
    reader: ProcReader,
    smaps: Smaps,
}

/// A process's last PSS/USS reading and when the next one is due.
#[derive(Clone, Copy, Debug)]
struct Smaps {
    last: Option<(u64, u64)>,
    due: Instant,
    /// Read at this tick (its row gets the figures).
    fresh: bool,
}

impl Smaps {
    fn new(now: Instant) -> Smaps {
        Smaps {
            last: None,
            due: now,
            fresh: false,
        }
    }
}

impl Members {
    pub fn new(
        root: i32,
        name: &str,
        proc_root: &Path,
        scope: Scope,
        with_smaps: bool,
        pss: Option<PssSpread>,
        now: Instant,
    ) -> Members {
        let mut m = Members {
            root,
            scope,
            proc_root: proc_root.to_path_buf(),
            with_smaps: with_smaps || pss.is_some(),
            pss,
            readers: Vec::new(),
            root_smaps: Smaps::new(now),
            next_scan: now,
            seen: Vec::new(),
            due: Vec::new(),
        };
        m.see(root, name);
        m
    }

    /// A new target (a restart with --follow): its processes are looked for at once; what
    /// was seen before stays in the list.
    pub fn set_root(&mut self, root: i32, name: &str, now: Instant) {
        self.root = root;
        self.readers.clear();
        self.root_smaps = Smaps::new(now);
        self.next_scan = now;
        self.see(root, name);
    }

    pub fn root(&self) -> i32 {
        self.root
    }

    fn see(&mut self, pid: i32, name: &str) {
        if !self.seen.iter().any(|p| p.growth.pid == pid) {
            self.seen.push(Seen {
                growth: ProcessGrowth {
                    pid,
                    name: name.to_string(),
                    first_s: f64::NAN,
                    last_s: f64::NAN,
                    first_bytes: 0,
                    last_bytes: 0,
                },
                series: FloorSeries::default(),
            });
        }
    }

    /// Every process the tree has had, the target included, those whose RSS grew most
    /// first, each with its series.
    pub fn into_growth(self) -> Vec<(ProcessGrowth, FloorSeries)> {
        let mut seen: Vec<(ProcessGrowth, FloorSeries)> = self
            .seen
            .into_iter()
            .filter(|p| !p.growth.first_s.is_nan())
            .map(|p| (p.growth, p.series))
            .collect();
        seen.sort_by_key(|p| std::cmp::Reverse(p.0.growth_bytes()));
        seen
    }

    /// Notes `pid`'s RSS at `at` seconds: the first reading stays, the last is replaced.
    fn note(&mut self, pid: i32, at: f64, rss: u64) {
        let at = (at * 1000.0).round() / 1000.0; // as samples.csv gives it
        if let Some(p) = self.seen.iter_mut().find(|p| p.growth.pid == pid) {
            let g = &mut p.growth;
            if g.first_s.is_nan() {
                (g.first_s, g.first_bytes) = (at, rss);
            }
            (g.last_s, g.last_bytes) = (at, rss);
            p.series.push(at, rss as f64);
        }
    }

    /// Reads every member now into `out` (cleared first), looking for new ones first when that
    /// is due; `smaps_due` reads PSS/USS of every member (`--pss` without a spread). A member
    /// that has exited is dropped. With a PSS spread, `root` is the target's own reader, whose
    /// PSS is read in turn with the members'. Returns the sum of every process's latest PSS and
    /// USS when each has one.
    pub fn sample(
        &mut self,
        now: Instant,
        base: &mut Sample,
        root: &mut ProcReader,
        smaps_due: bool,
        out: &mut Vec<Sample>,
    ) -> Option<(u64, u64)> {
        if now >= self.next_scan {
            self.scan(now);
            self.next_scan = now + SCAN_EVERY;
        }
        out.clear();
        self.note(self.root, base.elapsed_s, base.mem.rss);
        self.readers.retain_mut(|m| {
            let Ok(mem) = m.reader.read_status() else {
                return false; // exited (or a zombie): its files no longer read
            };
            if smaps_due && let Ok(Some(pss_uss)) = m.reader.read_smaps() {
                m.smaps.last = Some(pss_uss);
                m.smaps.fresh = true;
            }
            out.push(Sample {
                pid: m.pid,
                mem,
                pss: None,
                uss: None,
                heap: Default::default(),
                ..*base
            });
            true
        });
        let sum = self.pss.map(|spread| self.read_spread(now, spread, root));
        for (s, m) in out.iter_mut().zip(&mut self.readers) {
            if m.smaps.fresh {
                (s.pss, s.uss) = (m.smaps.last.map(|x| x.0), m.smaps.last.map(|x| x.1));
                m.smaps.fresh = false;
            }
        }
        if self.root_smaps.fresh {
            (base.pss, base.uss) = (
                self.root_smaps.last.map(|x| x.0),
                self.root_smaps.last.map(|x| x.1),
            );
            self.root_smaps.fresh = false;
        }
        for s in out.iter() {
            self.note(s.pid, s.elapsed_s, s.mem.rss);
        }
        sum.flatten()
    }

    /// Reads the PSS of the root and the members that are due, those never read first, then
    /// the oldest, until the tick's budget is spent. The sum of the latest readings, when every
    /// process has one.
    fn read_spread(
        &mut self,
        now: Instant,
        spread: PssSpread,
        root: &mut ProcReader,
    ) -> Option<(u64, u64)> {
        // Index 0 is the root, i + 1 the member i.
        self.due.clear();
        if self.root_smaps.due <= now {
            self.due.push(0);
        }
        for (i, m) in self.readers.iter().enumerate() {
            if m.smaps.due <= now {
                self.due.push(i + 1);
            }
        }
        let key = |s: &Smaps| (s.last.is_some(), s.due);
        let (readers, root_smaps) = (&self.readers, &self.root_smaps);
        self.due.sort_unstable_by_key(|&i| {
            if i == 0 {
                key(root_smaps)
            } else {
                key(&readers[i - 1].smaps)
            }
        });
        let started = Instant::now();
        for &i in &self.due {
            if started.elapsed() >= spread.budget && started.elapsed() > Duration::ZERO {
                break;
            }
            let (reader, smaps) = if i == 0 {
                (&mut *root, &mut self.root_smaps)
            } else {
                let m = &mut self.readers[i - 1];
                (&mut m.reader, &mut m.smaps)
            };
            if let Ok(Some(pss_uss)) = reader.read_smaps() {
                smaps.last = Some(pss_uss);
                smaps.fresh = true;
            }
            smaps.due = now + spread.every;
        }
        let mut sum = self.root_smaps.last?;
        for m in &self.readers {
            let (p, u) = m.smaps.last?;
            sum = (sum.0 + p, sum.1 + u);
        }
        Some(sum)
    }

    /// Opens readers for the processes in scope not yet read. A process is opened only if its
    /// start time after the open is the one the scan saw: the open files are then bound to
    /// that process. Names are kept current (a process found between fork and exec had its
    /// parent's; a wrapper that exec'd is now its program).
    fn scan(&mut self, now: Instant) {
        let procs = crate::tree::processes();
        let mut roots = vec![self.root];
        let mut wanted: Vec<i32> = Vec::new();
        if let Some(pattern) = &self.scope.matches {
            let me = std::process::id() as i32;
            for c in procs
                .iter()
                .filter(|p| p.pid != self.root && p.pid != me)
                .filter_map(Candidate::of)
                .filter(|c| pattern.matches(c))
            {
                roots.push(c.pid);
                wanted.push(c.pid);
            }
        }
        if self.scope.descendants {
            wanted.extend(crate::tree::descendants_of(&procs, &roots));
        }
        for now_seen in procs
            .iter()
            .filter(|p| p.pid == self.root || wanted.contains(&p.pid))
        {
            if let Some(p) = self.seen.iter_mut().find(|p| p.growth.pid == now_seen.pid)
                && now_seen.name != p.growth.name
            {
                p.growth.name.clone_from(&now_seen.name);
            }
        }
        for pid in wanted {
            if pid == self.root || self.readers.iter().any(|m| m.pid == pid) {
                continue;
            }
            let Some(seen) = procs.iter().find(|p| p.pid == pid && p.state != 'Z') else {
                continue;
            };
            let Ok(reader) = ProcReader::open(&self.proc_root, pid, self.with_smaps) else {
                continue;
            };
            if crate::tree::is_still(seen, &self.proc_root) {
                self.readers.push(Member {
                    pid,
                    reader,
                    smaps: Smaps::new(now),
                });
                let name = seen.name.clone();
                self.see(pid, &name);
            }
        }
    }
}

/// The sum of `samples` (the target's and its members'): the `total` series' sample. A column
/// is summed when some process has it; the peak (`hwm`) is left out, as a sum of peaks taken
/// at different times is no peak.
pub fn total(samples: &[Sample]) -> Sample {
    let Some(first) = samples.first() else {
        return Sample::default();
    };
    let sum = |get: fn(&Sample) -> Option<u64>| {
        samples
            .iter()
            .filter_map(get)
            .fold(None, |acc: Option<u64>, v| Some(acc.unwrap_or(0) + v))
    };
    Sample {
        mem: MemStatus {
            rss: samples.iter().map(|s| s.mem.rss).sum(),
            vsz: samples.iter().map(|s| s.mem.vsz).sum(),
            anon: sum(|s| s.mem.anon),
            file: sum(|s| s.mem.file),
            shmem: sum(|s| s.mem.shmem),
            swap: sum(|s| s.mem.swap),
            hwm: None,
            threads: sum(|s| s.mem.threads.map(u64::from)).map(|t| t.min(u32::MAX as u64) as u32),
        },
        pss: sum(|s| s.pss),
        uss: sum(|s| s.uss),
        heap: Default::default(),
        ..*first
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_total_sums_what_the_processes_have() {
        let s = |pid, rss, anon: Option<u64>, pss: Option<u64>| Sample {
            elapsed_s: 1.5,
            unix_ms: 7,
            pid,
            mem: MemStatus {
                rss,
                vsz: 10 * rss,
                anon,
                hwm: Some(rss),
                threads: Some(2),
                ..MemStatus::default()
            },
            pss,
            ..Sample::default()
        };
        let t = total(&[
            s(10, 100, Some(60), None),
            s(11, 50, None, None),
            s(12, 5, Some(1), Some(4)),
        ]);
        assert_eq!((t.pid, t.elapsed_s, t.unix_ms), (10, 1.5, 7));
        assert_eq!((t.mem.rss, t.mem.vsz), (155, 1550));
        assert_eq!(t.mem.anon, Some(61));
        assert_eq!(t.mem.swap, None);
        assert_eq!(t.mem.hwm, None);
        assert_eq!(t.mem.threads, Some(6));
        assert_eq!(t.pss, Some(4));
        assert_eq!(total(&[]), Sample::default());
    }

    /// A long series is kept to at most SERIES_MAX points, each the lowest of the samples it
    /// stands for: the floor the verdict judges is kept, the peaks between are not.
    #[test]
    fn a_floor_series_keeps_the_minima() {
        let mut f = FloorSeries::default();
        let n = 3 * SERIES_MAX;
        for i in 0..n {
            // a sawtooth on a rising floor: the floor is i, peaks at i + 50
            let v = i as f64 + if i % 4 == 0 { 0.0 } else { 50.0 };
            f.push(i as f64, v);
        }
        let (t, v) = f.points();
        assert!(
            t.len() <= SERIES_MAX && t.len() >= SERIES_MAX / 2,
            "{}",
            t.len()
        );
        assert!(t.windows(2).all(|w| w[1] > w[0]));
        // every point is a floor sample (a multiple of 4), and sits on its own time
        for (t, v) in t.iter().zip(&v) {
            assert_eq!(t, v);
            assert_eq!(*v as usize % 4, 0, "{v}");
        }
        assert_eq!(v[0], 0.0);
        assert!(*v.last().unwrap() >= (n - 8) as f64);
    }
}
