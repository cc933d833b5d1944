//! The memory cgroup memwatch makes for a command it runs with `--tree` (as root, or where its
//! own cgroup is delegated to it): every process the command starts lands in it, and the
//! kernel counts each page of theirs once, however many processes map it. One file read per
//! tick gives the tree's total. It is made under memwatch's own memory cgroup (so a
//! container's limit still applies), named `memwatch-<pid>-<random>`, and removed at the end.
//!
//! cgroupfs has no links and only root (or the delegate) can make folders in it; the name is
//! new (`mkdir` fails on an existing one), so nothing another user made is ever written to.

use super::Version;
use super::series::Location;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct OwnCgroup {
    pub location: Location,
    parent: PathBuf,
    removed: bool,
}

impl OwnCgroup {
    /// Makes the cgroup; `Err` says why it cannot be made, in words.
    pub fn create() -> Result<OwnCgroup, String> {
        let mine = Location::of_process(std::process::id() as i32)?;
        if mine.version == Version::V2 {
            let control = std::fs::read_to_string(mine.dir.join("cgroup.subtree_control"))
                .unwrap_or_default();
            if !control.split_whitespace().any(|c| c == "memory") {
                return Err(format!(
                    "the memory controller is not enabled below memwatch's own cgroup '{}' \
                     (cgroup.subtree_control)",
                    mine.path
                ));
            }
        }
        let name = format!("memwatch-{}-{:08x}", std::process::id(), random_u32());
        let dir = mine.dir.join(&name);
        std::fs::create_dir(&dir).map_err(|e| {
            format!(
                "cannot make a memory cgroup in {} ({e})",
                mine.dir.display()
            )
        })?;
        if mine.version == Version::V1 {
            // Pages a process touched before it moved in go with it (deprecated upstream
            // but honoured by v1; nothing is lost when it is not). Written by path: the
            // folder was made just now (create_dir fails on one that exists), in cgroupfs,
            // where only root makes entries: nothing can be planted in it.
            let _ = std::fs::write(dir.join("memory.move_charge_at_immigrate"), "1");
        }
        let path = Path::new(&mine.path).join(&name).display().to_string();
        Ok(OwnCgroup {
            location: Location {
                version: mine.version,
                path,
                dir,
                mount_point: mine.mount_point,
            },
            parent: mine.dir,
            removed: false,
        })
    }

    /// Moves process `pid` (and the threads it has) into the cgroup; what it starts from now
    /// on is born there.
    pub fn adopt(&self, pid: i32) -> Result<(), String> {
        write_pid(&self.location.dir.join("cgroup.procs"), pid)
            .map_err(|e| format!("cannot move PID {pid} into {} ({e})", self.location.path))?;
        let now = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        match super::memory_cgroup(&now) {
            Some((_, path)) if path == self.location.path => Ok(()),
            _ => Err(format!(
                "PID {pid} is not in {} after the move",
                self.location.path
            )),
        }
    }

    /// Moves `pid` and every process it has started already (each with the processes they
    /// start meanwhile) into the cgroup; what they start from then on is born there.
    pub fn adopt_tree(&self, pid: i32) -> Result<(), String> {
        self.adopt(pid)?;
        for _ in 0..20 {
            let procs = crate::tree::processes();
            let outside: Vec<i32> = crate::tree::descendants_of(&procs, &[pid])
                .into_iter()
                .filter(|&d| !self.holds(d))
                .collect();
            if outside.is_empty() {
                return Ok(());
            }
            for d in outside {
                // One that exits meanwhile is gone by the next look.
                let _ = write_pid(&self.location.dir.join("cgroup.procs"), d);
            }
        }
        Err(format!(
            "the processes PID {pid} started kept escaping the move into {}",
            self.location.path
        ))
    }

    /// Whether process `pid` is in the cgroup (or has gone).
    fn holds(&self, pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
            Ok(text) => super::memory_cgroup(&text).is_some_and(|(_, p)| p == self.location.path),
            Err(_) => true,
        }
    }

    /// Moves whatever is left to the cgroup above, then removes the folder. The command and
    /// what it started have been stopped by now; a process still exiting is waited for, a
    /// little.
    pub fn remove(&mut self) -> Result<(), String> {
        if self.removed {
            return Ok(());
        }
        let give_up = Instant::now() + Duration::from_secs(2);
        loop {
            let procs =
                std::fs::read_to_string(self.location.dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                let _ = write_pid(&self.parent.join("cgroup.procs"), pid);
            }
            match std::fs::remove_dir(&self.location.dir) {
                Ok(()) => {
                    self.removed = true;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.removed = true;
                    return Ok(());
                }
                Err(e) if Instant::now() >= give_up => {
                    return Err(format!(
                        "cannot remove the cgroup {} ({e}): remove it with 'rmdir {}'",
                        self.location.path,
                        self.location.dir.display()
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for OwnCgroup {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// Writes a PID into a `cgroup.procs` file, in one write.
fn write_pid(file: &Path, pid: i32) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(file)?;
    f.write_all(pid.to_string().as_bytes())
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    // SAFETY: a valid 4-byte buffer; getrandom writes at most that.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n == 4 {
        u32::from_ne_bytes(bytes)
    } else {
        // No randomness: the time still makes the name unlikely to be taken.
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    }
}
