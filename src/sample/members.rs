//! With `--tree`: the processes the target started, sampled beside it and summed with it into
//! the `total` series. They are looked for again at most once a second (a scan of /proc, the
//! only allocation); each is then read through its own open /proc files, bound to that process
//! as the target's are, so a PID recycled later is never read.

use crate::sample::reader::ProcReader;
use crate::sample::{MemStatus, Sample};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often the tree is looked at for new processes.
const SCAN_EVERY: Duration = Duration::from_secs(1);

pub struct Members {
    root: i32,
    proc_root: PathBuf,
    with_smaps: bool,
    readers: Vec<Member>,
    next_scan: Instant,
    /// Every process of the tree seen over the run, the target first, with its RSS when
    /// first and last read.
    seen: Vec<ProcessGrowth>,
}

/// One process of a tree over the run: its RSS when first and last read.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessGrowth {
    pub pid: i32,
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

struct Member {
    pid: i32,
    reader: ProcReader,
    /// The last PSS/USS read, carried until the next reading is due.
    smaps: Option<(u64, u64)>,
}

impl Members {
    pub fn new(root: i32, name: &str, proc_root: &Path, with_smaps: bool, now: Instant) -> Members {
        Members {
            root,
            proc_root: proc_root.to_path_buf(),
            with_smaps,
            readers: Vec::new(),
            next_scan: now,
            seen: vec![ProcessGrowth {
                pid: root,
                name: name.to_string(),
                first_s: f64::NAN,
                last_s: f64::NAN,
                first_bytes: 0,
                last_bytes: 0,
            }],
        }
    }

    /// Every process the tree has had, the target included, those whose RSS grew most
    /// first.
    pub fn into_growth(self) -> Vec<ProcessGrowth> {
        let mut seen: Vec<ProcessGrowth> = self
            .seen
            .into_iter()
            .filter(|p| !p.first_s.is_nan())
            .collect();
        seen.sort_by_key(|p| std::cmp::Reverse(p.growth_bytes()));
        seen
    }

    /// Notes `pid`'s RSS at `at` seconds: the first reading stays, the last is replaced.
    fn note(&mut self, pid: i32, at: f64, rss: u64) {
        let at = (at * 1000.0).round() / 1000.0; // as samples.csv gives it
        if let Some(p) = self.seen.iter_mut().find(|p| p.pid == pid) {
            if p.first_s.is_nan() {
                (p.first_s, p.first_bytes) = (at, rss);
            }
            (p.last_s, p.last_bytes) = (at, rss);
        }
    }

    /// Reads every member now into `out` (cleared first), looking for new ones first when that
    /// is due; `smaps_due` reads PSS/USS too. A member that has exited is dropped.
    pub fn sample(&mut self, now: Instant, base: &Sample, smaps_due: bool, out: &mut Vec<Sample>) {
        if now >= self.next_scan {
            self.scan();
            self.next_scan = now + SCAN_EVERY;
        }
        out.clear();
        self.note(self.root, base.elapsed_s, base.mem.rss);
        self.readers.retain_mut(|m| {
            let Ok(mem) = m.reader.read_status() else {
                return false; // exited (or a zombie): its files no longer read
            };
            if smaps_due && let Ok(Some(pss_uss)) = m.reader.read_smaps() {
                m.smaps = Some(pss_uss);
            }
            out.push(Sample {
                pid: m.pid,
                mem,
                pss: m.smaps.map(|s| s.0),
                uss: m.smaps.map(|s| s.1),
                heap: Default::default(),
                ..*base
            });
            true
        });
        for s in out.iter() {
            self.note(s.pid, s.elapsed_s, s.mem.rss);
        }
    }

    /// Opens readers for the descendants of the root not yet read. A process is opened only
    /// if its start time after the open is the one the scan saw: the open files are then
    /// bound to that process.
    fn scan(&mut self) {
        let procs = crate::tree::processes();
        for pid in crate::tree::descendants_of(&procs, &[self.root]) {
            if self.readers.iter().any(|m| m.pid == pid) {
                // A child found between fork and exec had its parent's name: keep it current.
                if let (Some(now), Some(p)) = (
                    procs.iter().find(|p| p.pid == pid),
                    self.seen.iter_mut().find(|p| p.pid == pid),
                ) && now.name != p.name
                {
                    p.name.clone_from(&now.name);
                }
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
                    smaps: None,
                });
                if !self.seen.iter().any(|p| p.pid == pid) {
                    self.seen.push(ProcessGrowth {
                        pid,
                        name: seen.name.clone(),
                        first_s: f64::NAN,
                        last_s: f64::NAN,
                        first_bytes: 0,
                        last_bytes: 0,
                    });
                }
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
}
