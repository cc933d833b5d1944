//! SIGINT, SIGTERM and SIGHUP delivered through a signalfd, so the sampling wait can sleep on
//! "next deadline, a stop request, or the target exiting" in one `ppoll`.
//!
//! The signals are blocked in the calling thread (call this before starting any thread).
//! Children inherit a signal mask, so `Target::spawn` unblocks them again before exec.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

pub struct Interrupts {
    fd: OwnedFd,
}

impl Interrupts {
    pub fn install() -> io::Result<Interrupts> {
        // SAFETY: sigset_t is plain data initialised by sigemptyset before use.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
                libc::sigaddset(&mut set, sig);
            }
            if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Interrupts {
                fd: OwnedFd::from_raw_fd(fd),
            })
        }
    }

    /// The signal that arrived, if any (non-blocking).
    pub fn take(&self) -> Option<i32> {
        // SAFETY: reading one signalfd_siginfo into a properly sized buffer.
        unsafe {
            let mut info: libc::signalfd_siginfo = std::mem::zeroed();
            let size = std::mem::size_of::<libc::signalfd_siginfo>();
            let n = libc::read(self.fd.as_raw_fd(), (&raw mut info).cast(), size);
            (n == size as isize).then_some(info.ssi_signo as i32)
        }
    }
}

impl AsFd for Interrupts {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// What woke a wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    Deadline,
    Interrupt,
    TargetExited,
}

/// Sleeps until `deadline`, a signal on `interrupts`, or `pidfd` becoming readable (the
/// process exited), whichever comes first. Nanosecond timeout; no allocation.
pub fn wait_until(
    deadline: std::time::Instant,
    interrupts: &Interrupts,
    pidfd: BorrowedFd<'_>,
) -> io::Result<Wake> {
    loop {
        let now = std::time::Instant::now();
        let left = deadline.saturating_duration_since(now);
        let mut fds = [
            libc::pollfd {
                fd: interrupts.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: pidfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ts = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        };
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
            return Ok(Wake::Interrupt);
        }
        if fds[1].revents != 0 {
            return Ok(Wake::TargetExited);
        }
        if rc == 0 && std::time::Instant::now() >= deadline {
            return Ok(Wake::Deadline);
        }
    }
}
