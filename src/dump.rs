//! Watches a folder for heap dumps that appear during a run (Node's `Heap.*.heapsnapshot`,
//! `*.heapprofile`, Java's `*.hprof`, `core.*`) and tells when each is complete: its size has
//! stopped changing and, for a `.heapsnapshot`, the JSON is closed (`]}` at the end).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const DEFAULT_GLOBS: &str = "*.heapsnapshot,*.heapprofile,*.hprof,core.*";

/// A dump file and what is known of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Dump {
    pub path: PathBuf,
    pub bytes: u64,
    pub started_s: f64,
    pub completed_s: Option<f64>,
    /// When its size last changed, to tell "still being written" from "done".
    last_change: Instant,
}

/// What a scan found.
#[derive(Clone, Debug, PartialEq)]
pub enum DumpNews {
    Started(PathBuf),
    Completed(PathBuf),
}

pub struct DumpWatcher {
    dir: PathBuf,
    globs: Vec<String>,
    /// Files there before the run: not ours.
    existing: HashSet<OsString>,
    pub dumps: Vec<Dump>,
    /// A file is complete once its size has held this long.
    quiet_for: Duration,
}

impl DumpWatcher {
    /// Remembers what is already in `dir`, so only new files count.
    pub fn new(dir: PathBuf, globs: &str) -> std::io::Result<DumpWatcher> {
        let globs = globs
            .split(',')
            .map(|g| g.trim().to_string())
            .filter(|g| !g.is_empty())
            .collect();
        let mut w = DumpWatcher {
            dir,
            globs,
            existing: HashSet::new(),
            dumps: Vec::new(),
            quiet_for: Duration::from_millis(500),
        };
        for entry in fs::read_dir(&w.dir)? {
            let name = entry?.file_name();
            if w.matches(&name) {
                w.existing.insert(name);
            }
        }
        Ok(w)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn matches(&self, name: &std::ffi::OsStr) -> bool {
        let name = name.to_string_lossy();
        self.globs.iter().any(|g| glob_match(g, &name))
    }

    /// Looks for new dumps and for dumps that have become complete.
    pub fn scan(&mut self, elapsed_s: f64, now: Instant) -> Vec<DumpNews> {
        let mut news = Vec::new();
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                if self.existing.contains(&name) || !self.matches(&name) {
                    continue;
                }
                let path = self.dir.join(&name);
                if !self.dumps.iter().any(|d| d.path == path) {
                    let bytes = entry.metadata().map_or(0, |m| m.len());
                    self.dumps.push(Dump {
                        path: path.clone(),
                        bytes,
                        started_s: elapsed_s,
                        completed_s: None,
                        last_change: now,
                    });
                    news.push(DumpNews::Started(path));
                }
            }
        }
        for d in self.dumps.iter_mut().filter(|d| d.completed_s.is_none()) {
            let bytes = fs::metadata(&d.path).map_or(d.bytes, |m| m.len());
            if bytes != d.bytes {
                d.bytes = bytes;
                d.last_change = now;
            } else if bytes > 0
                && now.duration_since(d.last_change) >= self.quiet_for
                && looks_complete(&d.path)
            {
                d.completed_s = Some(elapsed_s);
                news.push(DumpNews::Completed(d.path.clone()));
            }
        }
        news
    }

    pub fn in_progress(&self) -> usize {
        self.dumps
            .iter()
            .filter(|d| d.completed_s.is_none())
            .count()
    }

    /// Size of the largest dump so far: the estimate for the next one.
    pub fn largest(&self) -> u64 {
        self.dumps.iter().map(|d| d.bytes).max().unwrap_or(0)
    }
}

/// A `.heapsnapshot` is JSON that V8 closes with `]}` when done; other kinds have no such
/// mark and count as complete once their size holds.
fn looks_complete(path: &Path) -> bool {
    if path.extension().is_none_or(|e| e != "heapsnapshot") {
        return true;
    }
    let Ok(mut f) = fs::File::open(path) else {
        return false;
    };
    let mut tail = [0u8; 16];
    let Ok(len) = f.seek(SeekFrom::End(0)) else {
        return false;
    };
    let take = len.min(tail.len() as u64);
    if f.seek(SeekFrom::Start(len - take)).is_err()
        || f.read_exact(&mut tail[..take as usize]).is_err()
    {
        return false;
    }
    let text = &tail[..take as usize];
    let trimmed = text
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(&text[..0], |end| &text[..=end]);
    trimmed.ends_with(b"]}")
}

/// Shell-style match with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Free bytes for unprivileged users on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct for a valid C string path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(
            "*.heapsnapshot",
            "Heap.20261124.101500.42.0.001.heapsnapshot"
        ));
        assert!(glob_match("core.*", "core.1234"));
        assert!(!glob_match("core.*", "score.1"));
        assert!(glob_match("a?c", "abc") && !glob_match("a?c", "abbc"));
        assert!(glob_match("*", "") && !glob_match("x", ""));
    }

    #[test]
    fn a_snapshot_is_complete_when_closed_and_quiet() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("old.heapsnapshot"), "{}").expect("write");
        let mut w = DumpWatcher::new(dir.path().to_path_buf(), DEFAULT_GLOBS).expect("watch");
        let t0 = Instant::now();
        assert!(
            w.scan(0.0, t0).is_empty(),
            "files from before the run are not ours"
        );
        let path = dir.path().join("Heap.1.heapsnapshot");
        std::fs::write(&path, "").expect("write");
        assert_eq!(w.scan(1.0, t0), vec![DumpNews::Started(path.clone())]);
        std::fs::write(&path, "{\"snapshot\":{},\"nodes\":[1,2").expect("write");
        assert!(w.scan(1.2, t0 + Duration::from_millis(200)).is_empty());
        // size held but JSON not closed: still being written
        assert!(w.scan(2.0, t0 + Duration::from_secs(2)).is_empty());
        std::fs::write(&path, "{\"snapshot\":{},\"nodes\":[1,2]}\n").expect("write");
        assert!(
            w.scan(2.1, t0 + Duration::from_millis(2100)).is_empty(),
            "size just changed"
        );
        assert_eq!(
            w.scan(3.0, t0 + Duration::from_secs(3)),
            vec![DumpNews::Completed(path.clone())]
        );
        assert_eq!(w.in_progress(), 0);
        assert_eq!(w.dumps[0].completed_s, Some(3.0));
        assert!(w.largest() > 0);
    }

    #[test]
    fn free_space_is_known() {
        assert!(free_bytes(Path::new("/tmp")).is_some_and(|b| b > 0));
    }
}
