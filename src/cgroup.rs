//! The memory cgroup a process is in, and how much more memory it may take before a limit of
//! that cgroup (or of one above it) is reached. In a container the OOM killer goes by that
//! limit, not by the machine's free memory, and a heap snapshot can double a program's memory.
//! cgroup v1 (the `memory` controller's own hierarchy) and v2 (the unified hierarchy) alike.
//! The parsers are pure; `room` reads `/proc` and the cgroup files. `series` reads a cgroup
//! on every tick (`--cgroup`); `own` is the cgroup memwatch makes for `run --tree`.

pub mod own;
pub mod series;

use std::path::{Path, PathBuf};

/// Which hierarchy holds the memory controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The memory room left under the tightest limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    /// Bytes the cgroup may still take: its limit less its working set (usage less the
    /// inactive file cache, which the kernel reclaims before it kills).
    pub bytes: u64,
    pub limit: u64,
    /// The limiting cgroup, as `/proc/PID/cgroup` names it.
    pub cgroup: String,
}

/// The room under the tightest memory limit of `pid`'s cgroup and its ancestors; `None` when
/// no limit applies or the cgroup cannot be read (then the machine's memory is the limit).
pub fn room(pid: i32) -> Option<Room> {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let (version, path) = memory_cgroup(&own)?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (root, mount_point) = mount_of(&mounts, version)?;
    let dir = cgroup_dir(&mount_point, &root, &path)?;
    let mut tightest: Option<Room> = None;
    for level in dir.ancestors().take_while(|d| d.starts_with(&mount_point)) {
        let Some((limit, working_set)) = read_level(level, version) else {
            continue;
        };
        let bytes = limit.saturating_sub(working_set);
        if tightest.as_ref().is_none_or(|t| bytes < t.bytes) {
            let relative = level.strip_prefix(&mount_point).unwrap_or(level);
            tightest = Some(Room {
                bytes,
                limit,
                cgroup: if relative.as_os_str().is_empty() {
                    root.clone()
                } else {
                    Path::new(&root).join(relative).display().to_string()
                },
            });
        }
    }
    tightest
}

/// The limit (if any) and the working set of one cgroup directory.
fn read_level(dir: &Path, version: Version) -> Option<(u64, u64)> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let (limit, usage, inactive_key) = match version {
        Version::V1 => (
            read("memory.limit_in_bytes")?,
            read("memory.usage_in_bytes")?,
            "total_inactive_file",
        ),
        Version::V2 => (
            read("memory.max")?,
            read("memory.current")?,
            "inactive_file",
        ),
    };
    let limit = parse_limit(&limit)?;
    let usage: u64 = usage.trim().parse().ok()?;
    let inactive = read("memory.stat")
        .and_then(|stat| stat_value(&stat, inactive_key))
        .unwrap_or(0);
    Some((limit, usage.saturating_sub(inactive)))
}

/// A limit file's value; `None` for no limit (`max` in v2, a number near 2^63 in v1).
pub fn parse_limit(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return None;
    }
    let limit: u64 = text.parse().ok()?;
    (limit < 1 << 62).then_some(limit)
}

/// The memory cgroup in a `/proc/PID/cgroup` text: the v1 line whose controllers include
/// `memory`, else the v2 line (`0::/path`).
pub fn memory_cgroup(proc_cgroup: &str) -> Option<(Version, String)> {
    let mut unified = None;
    for line in proc_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if controllers.split(',').any(|c| c == "memory") {
            return Some((Version::V1, path.to_string()));
        }
        if id == "0" && controllers.is_empty() {
            unified = Some((Version::V2, path.to_string()));
        }
    }
    unified
}

/// The mount of the hierarchy in a `/proc/self/mountinfo` text: (the cgroup mounted there,
/// the mount point). For v1 the `cgroup` mount whose options include `memory`; for v2 the
/// `cgroup2` mount.
pub fn mount_of(mountinfo: &str, version: Version) -> Option<(String, PathBuf)> {
    for line in mountinfo.lines() {
        // id parent major:minor root mount-point options [optional...] - fstype source super
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = before.split(' ').collect();
        let mut tail = after.split(' ');
        let (Some(fstype), _, Some(super_options)) = (tail.next(), tail.next(), tail.next()) else {
            continue;
        };
        if fields.len() < 5 {
            continue;
        }
        let wanted = match version {
            Version::V1 => fstype == "cgroup" && super_options.split(',').any(|o| o == "memory"),
            Version::V2 => fstype == "cgroup2",
        };
        if wanted {
            return Some((unescape(fields[3]), PathBuf::from(unescape(fields[4]))));
        }
    }
    None
}

/// The directory of cgroup `path` under a mount of `root` at `mount_point`; `None` when the
/// cgroup is not under that mount (another namespace's).
pub fn cgroup_dir(mount_point: &Path, root: &str, path: &str) -> Option<PathBuf> {
    let relative = if root == "/" {
        path
    } else {
        let rest = path.strip_prefix(root)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        rest
    };
    Some(mount_point.join(relative.trim_start_matches('/')))
}

/// The value of `key` in a `memory.stat` text.
pub fn stat_value(stat: &str, key: &str) -> Option<u64> {
    stat.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if bytes[i] == b'\\'
            && let Some(digits) = octal
        {
            let code = digits.iter().fold(0u32, |n, d| n * 8 + u32::from(d - b'0'));
            out.push(code as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Recorded on this kind of machine (hybrid: memory on v1) and on a pure v2 one.
    const HYBRID_CGROUP: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/6646efc6\n\
                                 3:cpuset:/\n1:cpu:/\n0::/\n";
    const V2_CGROUP: &str = "0::/system.slice/app.service\n";
    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const CONTAINER_MOUNTS: &str = "\
612 600 0:30 /docker/abc /sys/fs/cgroup/memory ro,nosuid shared:9 - cgroup cgroup rw,memory
";

    #[test]
    fn finds_the_memory_cgroup_v1_before_v2() {
        assert_eq!(
            memory_cgroup(HYBRID_CGROUP),
            Some((Version::V1, "/process_api/6646efc6".into()))
        );
        assert_eq!(
            memory_cgroup(V2_CGROUP),
            Some((Version::V2, "/system.slice/app.service".into()))
        );
        assert_eq!(memory_cgroup("garbage\n"), None);
    }

    #[test]
    fn finds_the_mount_and_the_directory() {
        let (root, at) = mount_of(HYBRID_MOUNTS, Version::V1).unwrap();
        assert_eq!(
            (root.as_str(), at.as_path()),
            ("/", Path::new("/sys/fs/cgroup/memory"))
        );
        let (root, at) = mount_of(HYBRID_MOUNTS, Version::V2).unwrap();
        assert_eq!(
            (root.as_str(), at.as_path()),
            ("/", Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(
            cgroup_dir(&at, &root, "/a/b"),
            Some(PathBuf::from("/sys/fs/cgroup/unified/a/b"))
        );
        // Inside a container the mount's root is the container's own cgroup.
        let (root, at) = mount_of(CONTAINER_MOUNTS, Version::V1).unwrap();
        assert_eq!(root, "/docker/abc");
        assert_eq!(cgroup_dir(&at, &root, "/docker/abc"), Some(at.clone()));
        assert_eq!(cgroup_dir(&at, &root, "/docker/abc/x"), Some(at.join("x")));
        assert_eq!(cgroup_dir(&at, &root, "/docker/abcd"), None);
        assert_eq!(cgroup_dir(&at, &root, "/other"), None);
        assert_eq!(mount_of(CONTAINER_MOUNTS, Version::V2), None);
    }

    #[test]
    fn reads_limits_and_stat() {
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("33554432\n"), Some(32 << 20));
        assert_eq!(parse_limit("nonsense"), None);
        let stat = "cache 100\ninactive_file 7\ntotal_inactive_file 4096\n";
        assert_eq!(stat_value(stat, "total_inactive_file"), Some(4096));
        assert_eq!(stat_value(stat, "inactive_file"), Some(7));
        assert_eq!(stat_value(stat, "active_file"), None);
    }

    #[test]
    fn unescapes_mount_points() {
        assert_eq!(unescape(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/end\04"), r"/end\04");
    }
}
