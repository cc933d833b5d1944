//! SIGINT, SIGTERM and SIGHUP as stop requests, and the wait between samples, which wakes at
//! its deadline, on a stop request, or when the target exits.
//!
//! The signals are caught by a handler that records which one came and writes a byte to a
//! pipe. A short wait (at most `SHORT_WAIT`, which covers every tick at 50 Hz and faster)
//! sleeps with an absolute `clock_nanosleep`, the cheapest wake-up there is: a signal ends it
//! at once (EINTR), and the target's exit is seen by the next read of its status, at most
//! `SHORT_WAIT` later. A longer wait is a `ppoll` on the pipe and the target's pidfd, so a
//! signal that comes just before it, or the target's exit, still wakes it at once.
//! benches/sampler.rs measures both: at 1 kHz the ppoll costs ~1-2 us of CPU more per tick
//! than clock_nanosleep (of ~15-20 us for the wake-up itself, here).
//!
//! Handlers are inherited by no one: exec resets them in a spawned command.
//!
//! A second stop request means "now": the handler wakes a thread that runs the action given
//! to [`Interrupts::on_second_request`] (say so, SIGKILL the command's tree, exit), whatever
//! the main thread is waiting for.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Waits up to this long sleep in `clock_nanosleep`; longer ones `ppoll`.
pub const SHORT_WAIT: Duration = Duration::from_millis(20);

/// The stop request not yet taken: a signal number, or 0.
static CAUGHT: AtomicI32 = AtomicI32::new(0);
/// The write end of the wake-up pipe, for the handler; -1 before `install`.
static WAKE_WRITE: AtomicI32 = AtomicI32::new(-1);
/// The pipe, created once per process and never closed (a handler may write to it any time).
static PIPE: OnceLock<(OwnedFd, OwnedFd)> = OnceLock::new();
/// Stop requests received so far.
static REQUESTS: AtomicU32 = AtomicU32::new(0);
/// The write end of the pipe that wakes the second-request thread; -1 before it runs.
static SECOND_WRITE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signal: libc::c_int) {
    CAUGHT.store(signal, Ordering::SeqCst);
    let second = REQUESTS.fetch_add(1, Ordering::SeqCst) >= 1;
    // SAFETY: write and errno access are async-signal-safe; errno is restored so the
    // interrupted code sees its own.
    unsafe {
        let errno = *libc::__errno_location();
        let byte = 1u8;
        let fd = WAKE_WRITE.load(Ordering::SeqCst);
        if fd >= 0 {
            libc::write(fd, (&raw const byte).cast(), 1);
        }
        let fd = SECOND_WRITE.load(Ordering::SeqCst);
        if second && fd >= 0 {
            libc::write(fd, (&raw const byte).cast(), 1);
        }
        *libc::__errno_location() = errno;
    }
}

/// The handle of the installed stop-request handlers.
pub struct Interrupts {
    wake_read: RawFd,
}

impl Interrupts {
    /// Installs the handlers for SIGINT, SIGTERM and SIGHUP (again, if called twice).
    pub fn install() -> io::Result<Interrupts> {
        let (read, write) = match PIPE.get() {
            Some(pipe) => pipe,
            None => {
                let pipe = new_pipe()?;
                let _ = PIPE.set(pipe);
                PIPE.get()
                    .ok_or_else(|| io::Error::other("wake-up pipe not set"))?
            }
        };
        WAKE_WRITE.store(write.as_raw_fd(), Ordering::SeqCst);
        // SAFETY: sigaction is plain data initialised here; the handler is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::sigaddset(&mut action.sa_mask, sig);
            }
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(Interrupts {
            wake_read: read.as_raw_fd(),
        })
    }

    /// Runs `action` on its own thread as soon as a second stop request comes (at once if
    /// two have come already). Meant for "stop now": `action` should not return.
    pub fn on_second_request(&self, action: Box<dyn FnOnce() + Send>) -> io::Result<()> {
        let (read, write) = new_pipe()?;
        SECOND_WRITE.store(write.as_raw_fd(), Ordering::SeqCst);
        // The write end lives as long as the process (the handler may use it any time).
        std::mem::forget(write);
        std::thread::Builder::new()
            .name("memwatch-second-stop".into())
            .spawn(move || {
                loop {
                    if REQUESTS.load(Ordering::SeqCst) >= 2 {
                        break;
                    }
                    let mut fd = libc::pollfd {
                        fd: read.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd; waits until the handler writes.
                    unsafe { libc::poll(&mut fd, 1, 1000) };
                }
                action();
            })?;
        Ok(())
    }

    /// The stop request that arrived, if any; taking it clears it.
    pub fn take(&self) -> Option<i32> {
        let signal = CAUGHT.swap(0, Ordering::SeqCst);
        (signal != 0).then(|| {
            self.drain();
            signal
        })
    }

    /// Empties the wake-up pipe (non-blocking).
    fn drain(&self) {
        let mut buf = [0u8; 64];
        // SAFETY: reading into a local buffer from our own non-blocking pipe.
        while unsafe { libc::read(self.wake_read, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
    }
}

impl AsFd for Interrupts {
    /// Readable when a stop request has come.
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the pipe lives in a static and is never closed.
        unsafe { BorrowedFd::borrow_raw(self.wake_read) }
    }
}

fn new_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors that we then own.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])))
    }
}

/// What woke a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    Deadline,
    Interrupt,
    TargetExited,
}

/// Sleeps until `deadline`, a stop request, or `pidfd` becoming readable (the process
/// exited), whichever comes first; see the module notes for how. No allocation.
pub fn wait_until(
    deadline: Instant,
    interrupts: &Interrupts,
    pidfd: BorrowedFd<'_>,
) -> io::Result<Wake> {
    loop {
        if CAUGHT.load(Ordering::SeqCst) != 0 {
            return Ok(Wake::Interrupt);
        }
        let now = Instant::now();
        let Some(left) = deadline
            .checked_duration_since(now)
            .filter(|d| !d.is_zero())
        else {
            return Ok(Wake::Deadline);
        };
        if left <= SHORT_WAIT {
            sleep_for(left)?;
            continue; // the loop sees a signal (EINTR) or the deadline
        }
        let mut fds = [
            libc::pollfd {
                fd: interrupts.wake_read,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ts = timespec(left);
        // SAFETY: fds and ts are valid for the call; no signal mask change.
        let rc = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, &ts, std::ptr::null()) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if fds[0].revents != 0 {
            // A byte is left when a request was taken between the handler's two steps.
            interrupts.drain();
            continue;
        }
        if fds[1].revents != 0 {
            return Ok(Wake::TargetExited);
        }
    }
}

/// Sleeps `left` in one `clock_nanosleep` to an absolute deadline (no drift when it is
/// interrupted). Returns early, without error, on a signal.
fn sleep_for(left: Duration) -> io::Result<()> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid timespec pointers; an absolute deadline on the clock Instant uses.
    let rc = unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
        let mut until = now;
        let ns = now.tv_nsec as u64 + u64::from(left.subsec_nanos());
        until.tv_sec += left.as_secs() as libc::time_t + (ns / 1_000_000_000) as libc::time_t;
        until.tv_nsec = (ns % 1_000_000_000) as libc::c_long;
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &until,
            std::ptr::null_mut(),
        )
    };
    match rc {
        0 | libc::EINTR => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pidfd_of(pid: u32) -> OwnedFd {
        // SAFETY: pidfd_open returns a new descriptor we own, or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
        assert!(fd >= 0, "pidfd_open");
        unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
    }

    /// Sends `signal` to this thread after `after`, from another thread.
    fn signal_me_after(signal: i32, after: Duration) -> std::thread::JoinHandle<()> {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        std::thread::spawn(move || {
            std::thread::sleep(after);
            // SAFETY: the waiting thread is alive: it is joined after the wait.
            unsafe { libc::pthread_kill(me, signal) };
        })
    }

    // One test: the handlers and the request are process-wide.
    #[test]
    fn wakes_on_deadline_signal_and_exit_short_and_long() {
        let interrupts = Interrupts::install().expect("install");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let pidfd = pidfd_of(child.id());

        for wait in [Duration::from_millis(5), Duration::from_millis(60)] {
            let deadline = Instant::now() + wait;
            let wake = wait_until(deadline, &interrupts, pidfd.as_fd()).expect("wait");
            assert_eq!(wake, Wake::Deadline);
            assert!(Instant::now() >= deadline, "{wait:?}: woke early");
        }

        // A signal during a short (clock_nanosleep) and a long (ppoll) wait ends it before
        // its deadline. The sender may be late on a busy machine: then the wait ends at the
        // deadline and is tried again.
        for (wait, signal) in [(SHORT_WAIT, libc::SIGTERM), (SHORT_WAIT * 10, libc::SIGHUP)] {
            let mut woke_early = false;
            for _ in 0..50 {
                let deadline = Instant::now() + wait;
                let sender = signal_me_after(signal, wait / 5);
                let wake = wait_until(deadline, &interrupts, pidfd.as_fd()).expect("wait");
                let before_deadline = Instant::now() < deadline;
                sender.join().expect("sender");
                if wake == Wake::Interrupt {
                    assert_eq!(interrupts.take(), Some(signal));
                    assert_eq!(interrupts.take(), None, "taking clears the request");
                    woke_early = before_deadline;
                    if woke_early {
                        break;
                    }
                } else {
                    // the signal came after the deadline: it is pending, seen at once now
                    let wake = wait_until(Instant::now() + wait, &interrupts, pidfd.as_fd());
                    assert_eq!(wake.expect("wait"), Wake::Interrupt);
                    assert_eq!(interrupts.take(), Some(signal));
                }
            }
            assert!(woke_early, "{wait:?}: a signal never ended the wait early");
        }
        // taken: the next wait runs to its deadline
        let wake = wait_until(
            Instant::now() + Duration::from_millis(30),
            &interrupts,
            pidfd.as_fd(),
        );
        assert_eq!(wake.expect("wait"), Wake::Deadline);

        // The target's exit ends a long wait at once.
        child.kill().expect("kill");
        let started = Instant::now();
        let wake = wait_until(
            started + Duration::from_secs(20),
            &interrupts,
            pidfd.as_fd(),
        );
        assert_eq!(wake.expect("wait"), Wake::TargetExited);
        assert!(started.elapsed() < Duration::from_secs(10));
        child.wait().expect("reap");
    }
}
