//! A memory cgroup read on every tick (`--cgroup`, or the cgroup memwatch makes for `run
//! --tree`): the memory the OOM killer counts, its breakdown, and the limit that applies.
//! The files are opened once and re-read from offset 0 into one buffer, as the /proc
//! readers are; the parsers are pure and take the files' text.
//!
//! v2: `memory.current`, `memory.stat` (`anon`, `file`, `kernel`, `sock`, `shmem`,
//! `inactive_file`), `memory.swap.current`, `memory.peak`, and `memory.max` of the cgroup and
//! each cgroup above it (the tightest applies). v1: `memory.usage_in_bytes`, `memory.stat`
//! (its `total_*` lines, which count the cgroups below too: `total_rss`, `total_cache`,
//! `total_shmem`, `total_swap`, `total_inactive_file`, and `hierarchical_memory_limit`, the
//! tightest limit above), `memory.max_usage_in_bytes`.

use super::{Version, cgroup_dir, memory_cgroup, mount_of, parse_limit};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where a memory cgroup is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub version: Version,
    /// As `/proc/PID/cgroup` names it: `/system.slice/app.service`.
    pub path: String,
    /// Its folder: `/sys/fs/cgroup/memory/system.slice/app.service`.
    pub dir: PathBuf,
    /// Where the hierarchy is mounted: the cgroups above `dir` up to here are its ancestors.
    pub mount_point: PathBuf,
}

impl Location {
    /// The memory cgroup of process `pid`, from `/proc/PID/cgroup` and this process's
    /// mountinfo (never assumed to be /sys/fs/cgroup/memory).
    pub fn of_process(pid: i32) -> Result<Location, String> {
        let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .map_err(|e| format!("cannot read /proc/{pid}/cgroup ({e})"))?;
        let (version, path) = memory_cgroup(&own)
            .ok_or_else(|| format!("PID {pid} is in no memory cgroup (/proc/{pid}/cgroup)"))?;
        let mounts = mountinfo()?;
        let (root, mount_point) = mount_of(&mounts, version).ok_or_else(|| {
            format!("the memory cgroup hierarchy ({version:?}) is not mounted here")
        })?;
        let dir = cgroup_dir(&mount_point, &root, &path).ok_or_else(|| {
            format!("PID {pid}'s memory cgroup '{path}' is outside this namespace's mount")
        })?;
        Ok(Location {
            version,
            path,
            dir,
            mount_point,
        })
    }

    /// `--cgroup PATH`: a memory cgroup's folder (`/sys/fs/cgroup/memory/app`), or its path in
    /// the hierarchy as `/proc/PID/cgroup` names it (`/app`): the v1 memory hierarchy when
    /// there is one, else v2.
    pub fn at(spec: &Path) -> Result<Location, String> {
        let mounts = mountinfo()?;
        let shown = spec.display();
        let mut candidates = Vec::new();
        for version in [Version::V1, Version::V2] {
            let Some((root, mount_point)) = mount_of(&mounts, version) else {
                continue;
            };
            if let Ok(relative) = spec.strip_prefix(&mount_point) {
                candidates.push((version, mount_point.join(relative), root, mount_point));
                break;
            }
            let text = spec.to_string_lossy();
            let dir = cgroup_dir(&mount_point, &root, &text)
                .unwrap_or_else(|| mount_point.join(text.trim_start_matches('/')));
            candidates.push((version, dir, root, mount_point));
        }
        let Some((version, dir, root, mount_point)) = candidates
            .into_iter()
            .find(|(_, dir, _, _)| dir.join("memory.stat").is_file())
        else {
            return Err(format!(
                "--cgroup '{shown}' is not a memory cgroup: give its folder under the memory \
                 controller's mount (see /proc/self/mountinfo) or its path as /proc/PID/cgroup \
                 shows it"
            ));
        };
        // The folder must be the cgroup it names, not a link out of the hierarchy.
        let real = dir
            .canonicalize()
            .map_err(|e| format!("--cgroup '{shown}': {e}"))?;
        if !real.starts_with(&mount_point) {
            return Err(format!(
                "--cgroup '{shown}' leads outside the cgroup mount {}",
                mount_point.display()
            ));
        }
        let relative = real.strip_prefix(&mount_point).unwrap_or(&real);
        let path = Path::new(if root.is_empty() { "/" } else { &root })
            .join(relative)
            .display()
            .to_string();
        Ok(Location {
            version,
            path,
            dir: real,
            mount_point,
        })
    }

    /// The tightest limit on this cgroup and the cgroups above it, and which one sets it.
    pub fn tightest_limit(&self) -> Option<(String, u64)> {
        let file = match self.version {
            Version::V1 => "memory.limit_in_bytes",
            Version::V2 => "memory.max",
        };
        let mut tightest: Option<(String, u64)> = None;
        for level in self
            .dir
            .ancestors()
            .take_while(|d| d.starts_with(&self.mount_point))
        {
            let Some(limit) = std::fs::read_to_string(level.join(file))
                .ok()
                .and_then(|t| parse_limit(&t))
            else {
                continue;
            };
            if tightest.as_ref().is_none_or(|(_, l)| limit < *l) {
                let up = self.dir.strip_prefix(level).map_or(0, |r| r.iter().count());
                let path = Path::new(&self.path)
                    .ancestors()
                    .nth(up)
                    .map_or_else(|| "/".to_string(), |p| p.display().to_string());
                tightest = Some((path, limit));
            }
        }
        tightest
    }
}

fn mountinfo() -> Result<String, String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo ({e})"))
}

/// One reading of a memory cgroup, in bytes. `None`: the kernel does not say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupReading {
    /// What the cgroup is charged: `memory.current` (v1 `memory.usage_in_bytes`).
    pub usage: u64,
    /// The usage less the inactive file cache (which the kernel reclaims before it kills):
    /// the memory the limit is really up against, as the kubelet counts it.
    pub working_set: u64,
    pub anon: Option<u64>,
    /// The page cache charged to it (v1 `cache`).
    pub file: Option<u64>,
    pub shmem: Option<u64>,
    pub swap: Option<u64>,
    /// v2 only: kernel memory (slabs, stacks, page tables) and socket buffers.
    pub kernel: Option<u64>,
    pub sock: Option<u64>,
    /// The highest usage so far (`memory.peak`, v1 `memory.max_usage_in_bytes`).
    pub peak: Option<u64>,
    /// The tightest limit on it and the cgroups above it.
    pub limit: Option<u64>,
}

impl CgroupReading {
    /// The reading as a row of samples.csv (`pid` cell `cgroup`): `rss_bytes` is the working
    /// set, `hwm_bytes` the peak usage; a process's other columns (VSZ, threads) stay empty.
    pub fn as_sample(&self, elapsed_s: f64, unix_ms: u64) -> crate::sample::Sample {
        crate::sample::Sample {
            elapsed_s,
            unix_ms,
            pid: 0,
            mem: crate::sample::MemStatus {
                rss: self.working_set,
                vsz: 0,
                anon: self.anon,
                file: self.file,
                shmem: self.shmem,
                swap: self.swap,
                hwm: self.peak,
                threads: None,
            },
            ..crate::sample::Sample::default()
        }
    }
}

/// The figures of a `memory.stat` text memwatch uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatFigures {
    pub anon: Option<u64>,
    pub file: Option<u64>,
    pub shmem: Option<u64>,
    pub swap: Option<u64>,
    pub kernel: Option<u64>,
    pub sock: Option<u64>,
    pub inactive_file: Option<u64>,
    /// v1: `hierarchical_memory_limit`, the tightest limit of it and the cgroups above.
    pub limit: Option<u64>,
}

/// Parses a `memory.stat` text (one `key value` per line). v1's `total_*` lines are read,
/// which count the cgroups below as v2's lines do. No allocation.
pub fn parse_stat(version: Version, text: &[u8]) -> StatFigures {
    let mut out = StatFigures::default();
    for line in text.split(|&b| b == b'\n') {
        let Some(space) = line.iter().position(|&b| b == b' ') else {
            continue;
        };
        let (key, value) = (&line[..space], number(&line[space + 1..]));
        let slot = match (version, key) {
            (Version::V1, b"total_rss") | (Version::V2, b"anon") => &mut out.anon,
            (Version::V1, b"total_cache") | (Version::V2, b"file") => &mut out.file,
            (Version::V1, b"total_shmem") | (Version::V2, b"shmem") => &mut out.shmem,
            (Version::V1, b"total_swap") => &mut out.swap,
            (Version::V1, b"total_inactive_file") | (Version::V2, b"inactive_file") => {
                &mut out.inactive_file
            }
            (Version::V2, b"kernel") => &mut out.kernel,
            (Version::V2, b"sock") => &mut out.sock,
            (Version::V1, b"hierarchical_memory_limit") => {
                out.limit = value.filter(|&l| l < 1 << 62);
                continue;
            }
            _ => continue,
        };
        *slot = value;
    }
    out
}

/// A decimal number, surrounding whitespace allowed.
fn number(text: &[u8]) -> Option<u64> {
    let text = text.trim_ascii();
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.iter().try_fold(0u64, |n, d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// A limit file's text (`max` or a number) without allocating.
fn limit_of(text: &[u8]) -> Option<u64> {
    number(text).filter(|&l| l < 1 << 62)
}

/// A memory cgroup's files, kept open.
pub struct CgroupReader {
    pub location: Location,
    usage: File,
    stat: File,
    peak: Option<File>,
    swap: Option<File>,
    /// v2: `memory.max` of the cgroup and of each cgroup above it.
    limits: Vec<File>,
    buf: Vec<u8>,
}

impl CgroupReader {
    pub fn open(location: Location) -> io::Result<CgroupReader> {
        let dir = &location.dir;
        let open = |name: &str| File::open(dir.join(name));
        let (usage, peak, swap) = match location.version {
            Version::V1 => (
                open("memory.usage_in_bytes")?,
                open("memory.max_usage_in_bytes").ok(),
                None,
            ),
            Version::V2 => (
                open("memory.current")?,
                open("memory.peak").ok(),
                open("memory.swap.current").ok(),
            ),
        };
        let limits = match location.version {
            Version::V1 => Vec::new(),
            Version::V2 => dir
                .ancestors()
                .take_while(|d| d.starts_with(&location.mount_point))
                .filter_map(|d| File::open(d.join("memory.max")).ok())
                .collect(),
        };
        Ok(CgroupReader {
            stat: open("memory.stat")?,
            location,
            usage,
            peak,
            swap,
            limits,
            buf: vec![0; 8192],
        })
    }

    /// Reads the cgroup now. Fails once the cgroup has been removed.
    pub fn read(&mut self) -> io::Result<CgroupReading> {
        let usage = read_number(&self.usage, &mut self.buf)?
            .ok_or_else(|| io::Error::other("memory usage is not a number"))?;
        let len = read_text(&self.stat, &mut self.buf)?;
        let stat = parse_stat(self.location.version, &self.buf[..len]);
        let peak = match &self.peak {
            Some(f) => read_number(f, &mut self.buf)?,
            None => None,
        };
        let swap = match &self.swap {
            Some(f) => read_number(f, &mut self.buf)?,
            None => stat.swap,
        };
        let limit = match self.location.version {
            Version::V1 => stat.limit,
            Version::V2 => {
                let mut tightest: Option<u64> = None;
                for f in &self.limits {
                    let len = read_text(f, &mut self.buf)?;
                    if let Some(l) = limit_of(&self.buf[..len]) {
                        tightest = Some(tightest.map_or(l, |t| t.min(l)));
                    }
                }
                tightest
            }
        };
        Ok(CgroupReading {
            usage,
            working_set: usage.saturating_sub(stat.inactive_file.unwrap_or(0)),
            anon: stat.anon,
            file: stat.file,
            shmem: stat.shmem,
            swap,
            kernel: stat.kernel,
            sock: stat.sock,
            peak,
            limit,
        })
    }
}

/// Reads a whole small file from offset 0 into `buf` (grown when it was too small).
fn read_text(file: &File, buf: &mut Vec<u8>) -> io::Result<usize> {
    loop {
        let n = match file.read_at(buf, 0) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n < buf.len() || buf.len() >= 1 << 20 {
            return Ok(n);
        }
        let longer = buf.len() * 2;
        buf.resize(longer, 0);
    }
}

fn read_number(file: &File, buf: &mut Vec<u8>) -> io::Result<Option<u64>> {
    let len = read_text(file, buf)?;
    Ok(number(&buf[..len]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup")
    }

    /// Recorded on this machine (kernel 6.18, hybrid layout, memory on v1): a child cgroup with
    /// a 256 MiB limit holding a process that touched 100 MiB and forked three children.
    const V1_STAT: &str = include_str!("../../tests/fixtures/cgroup/v1/memory.stat");
    /// A v2 service's memory.stat, in the kernel's format and key order.
    const V2_STAT: &str =
        include_str!("../../tests/fixtures/cgroup/v2/system.slice/app.service/memory.stat");

    #[test]
    fn reads_v1_totals_and_the_hierarchical_limit() {
        let s = parse_stat(Version::V1, V1_STAT.as_bytes());
        assert_eq!(s.anon, Some(107_298_816));
        assert_eq!((s.file, s.shmem, s.swap), (Some(0), Some(0), Some(0)));
        assert_eq!(s.inactive_file, Some(0));
        assert_eq!(s.limit, Some(256 << 20));
        assert_eq!((s.kernel, s.sock), (None, None));
        // No limit anywhere above: the near-2^63 number is no limit.
        let unlimited = V1_STAT.replace(
            "hierarchical_memory_limit 268435456",
            "hierarchical_memory_limit 9223372036854771712",
        );
        assert_eq!(parse_stat(Version::V1, unlimited.as_bytes()).limit, None);
    }

    #[test]
    fn reads_v2_stat() {
        let s = parse_stat(Version::V2, V2_STAT.as_bytes());
        assert_eq!(s.anon, Some(287_543_296));
        assert_eq!(s.file, Some(96_575_488));
        assert_eq!(s.kernel, Some(9_375_744));
        assert_eq!(s.sock, Some(12_288));
        assert_eq!(s.shmem, Some(135_168));
        assert_eq!(s.inactive_file, Some(61_440_000));
        // v2 has no limit in memory.stat (memory.max), nor swap (memory.swap.current).
        assert_eq!((s.limit, s.swap), (None, None));
        // v1 keys in a v2 text, and the other way round, are not read.
        assert_eq!(parse_stat(Version::V1, V2_STAT.as_bytes()).anon, None);
        assert_eq!(parse_stat(Version::V2, V1_STAT.as_bytes()).anon, None);
    }

    #[test]
    fn malformed_lines_are_unknown_not_zero() {
        let s = parse_stat(Version::V2, b"anon 12x\nfile\nshmem -1\nsock 7\n");
        assert_eq!(
            (s.anon, s.file, s.shmem, s.sock),
            (None, None, None, Some(7))
        );
        assert_eq!(number(b" 42\n"), Some(42));
        assert_eq!(number(b"99999999999999999999999"), None);
        assert_eq!(limit_of(b"max\n"), None);
        assert_eq!(limit_of(b"536870912\n"), Some(512 << 20));
    }

    /// The recorded v2 folders read as a live cgroup is: the working set is memory.current
    /// less the inactive file cache, the limit the tightest memory.max on the way up (the
    /// slice above has none).
    #[test]
    fn reads_a_recorded_v2_cgroup() {
        let root = fixtures().join("v2");
        let location = Location {
            version: Version::V2,
            path: "/system.slice/app.service".into(),
            dir: root.join("system.slice/app.service"),
            mount_point: root.clone(),
        };
        assert_eq!(
            location.tightest_limit(),
            Some(("/system.slice/app.service".into(), 512 << 20))
        );
        let mut reader = CgroupReader::open(location).unwrap();
        let r = reader.read().unwrap();
        assert_eq!(r.usage, 393_506_816);
        assert_eq!(r.working_set, 393_506_816 - 61_440_000);
        assert_eq!(
            (r.anon, r.kernel, r.sock),
            (Some(287_543_296), Some(9_375_744), Some(12_288))
        );
        assert_eq!((r.swap, r.peak), (Some(0), Some(412_090_368)));
        assert_eq!(r.limit, Some(512 << 20));
        let slice = Location {
            version: Version::V2,
            path: "/system.slice".into(),
            dir: root.join("system.slice"),
            mount_point: root,
        };
        assert_eq!(slice.tightest_limit(), None);
    }

    /// The recorded v1 folder: the limit comes from memory.stat's hierarchical limit.
    #[test]
    fn reads_a_recorded_v1_cgroup() {
        let root = fixtures();
        let location = Location {
            version: Version::V1,
            path: "/v1".into(),
            dir: root.join("v1"),
            mount_point: root,
        };
        assert_eq!(location.tightest_limit(), Some(("/v1".into(), 256 << 20)));
        let r = CgroupReader::open(location).unwrap().read().unwrap();
        assert_eq!(r.usage, 108_982_272);
        assert_eq!(r.working_set, 108_982_272);
        assert_eq!(r.anon, Some(107_298_816));
        assert_eq!((r.peak, r.limit), (Some(108_998_656), Some(256 << 20)));
        assert_eq!((r.kernel, r.sock), (None, None));
    }
}
