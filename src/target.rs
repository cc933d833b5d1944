//! The process being watched: attached by PID or spawned, held by a pidfd, and how it ended.

use crate::error::{Error, Result};
use crate::sample::ProcReader;
use crate::sample::reader::ReadError;
use crate::signal::{send_via_pidfd, signal_name};
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How the target's run ended, as far as memwatch can know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Still alive when memwatch stopped watching (attach mode).
    Running,
    Exited {
        code: i32,
    },
    Killed {
        signal: i32,
    },
    /// Gone, but not memwatch's child and reaped before memwatch could read its status.
    Unknown,
}

/// The ending and whether memwatch itself stopped the target (end of --duration, Ctrl-C).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetEnd {
    pub ending: Ending,
    pub stopped_by_memwatch: bool,
}

impl TargetEnd {
    /// A spawned command "failed" if it exited non-zero or died of a signal on its own.
    pub fn command_failed(&self) -> bool {
        !self.stopped_by_memwatch
            && match self.ending {
                Ending::Exited { code } => code != 0,
                Ending::Killed { .. } => true,
                Ending::Running | Ending::Unknown => false,
            }
    }

    pub fn describe(&self) -> String {
        let how = match &self.ending {
            Ending::Running => return "still running (memwatch stopped watching)".into(),
            Ending::Exited { code } => format!("exited with code {code}"),
            Ending::Killed { signal } => format!("killed by {}", signal_name(*signal)),
            Ending::Unknown => "exited (status unknown: not memwatch's child)".into(),
        };
        if self.stopped_by_memwatch {
            format!("{how} after memwatch stopped it")
        } else {
            how
        }
    }
}

const ZOMBIE: &str = "a zombie (it has exited and waits for its parent)";

pub struct Target {
    pub pid: i32,
    /// Process start time in clock ticks since boot (/proc/PID/stat field 22): with the PID,
    /// the process's identity.
    pub start_time: u64,
    /// `comm`, the short name.
    pub name: String,
    pub command_line: String,
    pidfd: OwnedFd,
    /// /proc/PID as a directory handle: bound to this process like the pidfd.
    proc_dir: procfs::process::Process,
    child: Option<Child>,
    /// The process group a spawned command runs in (memwatch's own).
    group: i32,
    stopped_by_memwatch: bool,
    /// `end` has read how it ended (and reaped a child).
    reaped: bool,
}

impl Target {
    /// Attaches to a running process. `pid` must already be checked positive.
    pub fn attach(proc_root: &Path, pid: i32, with_pss: bool) -> Result<(Target, ProcReader)> {
        debug_assert!(pid > 0);
        let pidfd = pidfd_open(pid).map_err(|e| match e.raw_os_error() {
            Some(libc::ESRCH) => Error::NoSuchProcess { pid },
            _ => Error::Io {
                context: format!("cannot open a pidfd for PID {pid}"),
                source: e,
            },
        })?;
        Self::finish_open(proc_root, pid, pidfd, None, with_pss)
    }

    /// Spawns `command` (no shell), passing stdin/stdout/stderr through.
    pub fn spawn(
        proc_root: &Path,
        command: &[OsString],
        env: &[(OsString, OsString)],
        with_pss: bool,
    ) -> Result<(Target, ProcReader)> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| Error::Usage("no command given after '--'".into()))?;
        let mut cmd = Command::new(program);
        cmd.args(args);
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        // SAFETY: only async-signal-safe calls between fork and exec. Whatever mask the
        // calling thread has (a test harness, a parent that blocked signals), the command
        // starts with every signal unblocked; exec resets memwatch's handlers.
        unsafe {
            cmd.pre_exec(|| {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
                Ok(())
            });
        }
        crate::tree::become_subreaper();
        let child = cmd.spawn().map_err(|source| spawn_error(program, source))?;
        let pid = child.id() as i32;
        // Our unreaped child cannot be recycled, so this pidfd is race-free.
        let pidfd = pidfd_open(pid).map_err(|e| Error::Io {
            context: format!("cannot open a pidfd for PID {pid}"),
            source: e,
        })?;
        Self::finish_open(proc_root, pid, pidfd, Some(child), with_pss)
    }

    fn finish_open(
        proc_root: &Path,
        pid: i32,
        pidfd: OwnedFd,
        child: Option<Child>,
        with_pss: bool,
    ) -> Result<(Target, ProcReader)> {
        let dir = proc_root.join(pid.to_string());
        let open_err = |e: io::Error, file: &'static str| match e.kind() {
            io::ErrorKind::NotFound => Error::NoSuchProcess { pid },
            io::ErrorKind::PermissionDenied => Error::PermissionDenied { pid, file },
            _ => Error::Io {
                context: format!("cannot open {}/{file}", dir.display()),
                source: e,
            },
        };
        let reader = ProcReader::open(proc_root, pid, false).map_err(|e| open_err(e, "status"))?;
        let reader = if with_pss {
            ProcReader::open(proc_root, pid, true).map_err(|e| open_err(e, "smaps_rollup"))?
        } else {
            reader
        };
        let proc_dir = procfs::process::Process::new_with_root(dir.clone())
            .map_err(|e| proc_err(pid, "stat", e))?;
        let stat = proc_dir.stat().map_err(|e| proc_err(pid, "stat", e))?;
        let command_line = proc_dir
            .cmdline()
            .ok()
            .filter(|argv| !argv.is_empty())
            .map_or_else(|| format!("[{}]", stat.comm), |argv| argv.join(" "));
        let target = Target {
            pid,
            start_time: stat.starttime,
            name: stat.comm.clone(),
            command_line,
            pidfd,
            proc_dir,
            // SAFETY: getpgrp cannot fail. A spawned command stays in memwatch's group.
            group: if child.is_some() {
                unsafe { libc::getpgrp() }
            } else {
                0
            },
            child,
            stopped_by_memwatch: false,
            reaped: false,
        };
        // The files were opened after the pidfd: if the process is still alive now, they are
        // this process's and not a successor's under a recycled PID.
        if target.child.is_none() && target.has_exited() {
            let zombie = target.proc_dir.stat().is_ok_and(|s| s.state == 'Z');
            return Err(if zombie {
                Error::NoMemory {
                    pid,
                    name: target.name.clone(),
                    what: ZOMBIE,
                }
            } else {
                Error::NoSuchProcess { pid }
            });
        }
        Ok((target, reader))
    }

    /// For a spawned command: waits until the new program runs on its own, so the first
    /// sample is of the command and not of the moment after exec, when only its loader's
    /// first pages are resident (RSS ~20 KiB). The exec itself is done when `spawn`
    /// returns; then the dynamic loader maps the libraries, which takes a few
    /// milliseconds. Waits until two readings 1 ms apart agree, at most 100 ms.
    pub fn wait_until_loaded(&self, reader: &mut ProcReader) {
        if self.child.is_none() {
            return;
        }
        let give_up = Instant::now() + Duration::from_millis(100);
        let mut last = None;
        while Instant::now() < give_up {
            let Ok(now) = reader.read_status() else {
                return;
            };
            if last == Some(now.rss) {
                return;
            }
            last = Some(now.rss);
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Checks the first reading, so a kernel thread or zombie fails with a clear message.
    pub fn check_first_read(
        &self,
        first: &std::result::Result<crate::sample::MemStatus, ReadError>,
    ) -> Result<()> {
        match first {
            // A process in the middle of exiting has given up its memory map too: our own
            // child is never a kernel thread, and an attached process that has gone is gone.
            Err(ReadError::NoMemoryMap) if self.child.is_some() => Ok(()),
            Err(ReadError::NoMemoryMap) if self.has_exited() => {
                Err(Error::NoSuchProcess { pid: self.pid })
            }
            Err(ReadError::NoMemoryMap) => Err(Error::NoMemory {
                pid: self.pid,
                name: self.name.clone(),
                what: "a kernel thread",
            }),
            Err(ReadError::Exited) if self.child.is_none() => Err(Error::NoMemory {
                pid: self.pid,
                name: self.name.clone(),
                what: "a zombie (exited, waiting for its parent)",
            }),
            Err(ReadError::Malformed { file, line }) => Err(Error::Parse {
                path: PathBuf::from(format!("/proc/{}/{file}", self.pid)),
                message: format!("line {line} is not what memwatch expects"),
            }),
            Err(ReadError::Io(e)) => Err(Error::Io {
                context: format!("cannot read /proc/{}/status", self.pid),
                source: io::Error::new(e.kind(), e.to_string()),
            }),
            _ => Ok(()),
        }
    }

    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    pub fn is_child(&self) -> bool {
        self.child.is_some()
    }

    /// True once the process has exited (its pidfd is readable). Does not block.
    pub fn has_exited(&self) -> bool {
        let mut fd = libc::pollfd {
            fd: self.pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { libc::poll(&mut fd, 1, 0) > 0 }
    }

    /// The process's name now (`comm`), read through its /proc folder: a wrapper that has
    /// exec'd its program (a shell script, `pyenv`'s shim) is named for the program. `None`
    /// once it has been reaped.
    pub fn current_name(&self) -> Option<String> {
        self.proc_dir.stat().ok().map(|s| s.comm)
    }

    /// The process's command line now (as `command_line` was read), after an exec.
    pub fn current_command_line(&self) -> Option<String> {
        self.proc_dir
            .cmdline()
            .ok()
            .filter(|argv| !argv.is_empty())
            .map(|argv| argv.join(" "))
    }

    /// The process's working directory, where runtimes write heap dumps by default.
    pub fn cwd(&self) -> std::result::Result<PathBuf, String> {
        self.proc_dir.cwd().map_err(|e| e.to_string())
    }

    /// Whether the process has a handler for `signal` (read from its kept-open status).
    pub fn catches(&self, reader: &mut ProcReader, signal: i32) -> Result<bool> {
        let mask = reader
            .read_caught_signals()
            .map_err(|_| Error::NoSuchProcess { pid: self.pid })?;
        Ok(crate::signal::is_caught(mask, signal))
    }

    /// Sends a signal through the pidfd.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        send_via_pidfd(self.pidfd.as_fd(), signal)
    }

    /// Whether memwatch may signal the process at all (signal 0 through the pidfd: the
    /// kernel's permission check, nothing delivered).
    pub fn may_signal(&self) -> io::Result<()> {
        send_via_pidfd(self.pidfd.as_fd(), 0)
    }

    /// For a spawned command at the end: SIGTERM to it (if it still runs) and to whatever it
    /// started that still runs, then SIGKILL after `grace` to what is left. Returns the other
    /// processes stopped, as `PID (name)`.
    pub fn stop(&mut self, grace: Duration) -> Vec<String> {
        if self.child.is_none() {
            return Vec::new();
        }
        let with_target = !self.has_exited();
        if with_target {
            self.stopped_by_memwatch = true;
        }
        self.stop_tree(grace, with_target)
    }

    /// For a spawned command that ended on its own: stops what it left running (as `stop`
    /// does, without touching the command).
    pub fn stop_leftovers(&mut self, grace: Duration) -> Vec<String> {
        if self.child.is_none() {
            return Vec::new();
        }
        self.stop_tree(grace, false)
    }

    fn stop_tree(&mut self, grace: Duration, with_target: bool) -> Vec<String> {
        let others = crate::tree::started_by(self.pid, self.group);
        let mut fds: Vec<BorrowedFd<'_>> = others.iter().map(|o| o.pidfd.as_fd()).collect();
        if with_target {
            fds.push(self.pidfd.as_fd());
        }
        signal_all(&fds, libc::SIGTERM);
        if !wait_all_exit(&fds, grace) {
            signal_all(&fds, libc::SIGKILL);
            wait_all_exit(&fds, Duration::from_secs(1));
        }
        reap_all(&others);
        others
            .iter()
            .filter(|o| !o.exited)
            .map(|o| format!("{} ({})", o.pid, o.name))
            .collect()
    }

    /// Marks that the target is being ended by memwatch's own choice (e.g. Ctrl-C).
    pub fn mark_stopped_by_memwatch(&mut self) {
        self.stopped_by_memwatch = true;
    }

    /// How the target ended. For a spawned command this reaps it (waiting if needed); for an
    /// attached process it reads the exit status from the zombie when still possible.
    pub fn end(&mut self) -> TargetEnd {
        let ending = if let Some(child) = &mut self.child {
            match child.wait() {
                Ok(status) => match (status.code(), status.signal()) {
                    (Some(code), _) => Ending::Exited { code },
                    (None, Some(signal)) => Ending::Killed { signal },
                    _ => Ending::Unknown,
                },
                Err(_) => Ending::Unknown,
            }
        } else if !self.has_exited() {
            Ending::Running
        } else {
            // Best effort: the exit status is in /proc/PID/stat while the process is a zombie.
            match self.proc_dir.stat().ok().and_then(|s| s.exit_code) {
                Some(status) if libc::WIFEXITED(status) => Ending::Exited {
                    code: libc::WEXITSTATUS(status),
                },
                Some(status) if libc::WIFSIGNALED(status) => Ending::Killed {
                    signal: libc::WTERMSIG(status),
                },
                _ => Ending::Unknown,
            }
        };
        self.reaped = true;
        TargetEnd {
            ending,
            stopped_by_memwatch: self.stopped_by_memwatch,
        }
    }
}

/// A spawned command never outlives memwatch's decision to stop: whatever path the run
/// takes out (an error included), a child not yet reaped is killed and reaped here.
impl Drop for Target {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        if let Some(child) = &mut self.child {
            let others = crate::tree::started_by(self.pid, self.group);
            let fds: Vec<BorrowedFd<'_>> = others.iter().map(|o| o.pidfd.as_fd()).collect();
            let _ = send_via_pidfd(self.pidfd.as_fd(), libc::SIGKILL);
            signal_all(&fds, libc::SIGKILL);
            let _ = child.wait();
            wait_all_exit(&fds, Duration::from_secs(1));
            reap_all(&others);
        }
    }
}

fn proc_err(pid: i32, file: &'static str, e: procfs::ProcError) -> Error {
    match e {
        procfs::ProcError::NotFound(_) => Error::NoSuchProcess { pid },
        procfs::ProcError::PermissionDenied(_) => Error::PermissionDenied { pid, file },
        other => Error::Io {
            context: format!("cannot read /proc/{pid}/{file}"),
            source: io::Error::other(other.to_string()),
        },
    }
}

/// Waits until every process of `pidfds` has exited, at most `limit`; true if they all have.
fn wait_all_exit(pidfds: &[BorrowedFd<'_>], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut polls: Vec<libc::pollfd> = pidfds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: valid pollfds, zero timeout: which have exited now.
        unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, 0) };
        polls.retain(|p| p.revents == 0);
        if polls.is_empty() {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let ms = left.as_millis().clamp(1, 100) as i32;
        // SAFETY: as above; blocks until one exits or `ms` pass.
        unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, ms) };
        polls.iter_mut().for_each(|p| p.revents = 0);
    }
}

fn signal_all(pidfds: &[BorrowedFd<'_>], signal: i32) {
    for fd in pidfds {
        let _ = send_via_pidfd(*fd, signal);
    }
}

/// Reaps each of `held` that is memwatch's child (an orphan that came to memwatch as
/// subreaper) and has exited; anything else is left alone.
fn reap_all(held: &[crate::tree::Held]) {
    for h in held {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter; the pidfd is valid.
        unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PIDFD,
                h.pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOHANG,
            );
        }
    }
}

fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; on success it returns a new fd that we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh, valid descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Why a command could not be started, in words: the OS says only "Permission denied"
/// for a folder.
fn spawn_error(program: &std::ffi::OsStr, source: io::Error) -> Error {
    let path = Path::new(program);
    if path.components().count() > 1 && path.is_dir() {
        return Error::Usage(format!(
            "cannot run '{}': it is a folder, not a program",
            path.display()
        ));
    }
    Error::Spawn {
        program: program.to_string_lossy().into_owned(),
        source,
    }
}
