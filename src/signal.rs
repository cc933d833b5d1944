//! Signal names and numbers, and sending signals safely through a pidfd.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

const NAMES: [(i32, &str); 22] = [
    (libc::SIGHUP, "SIGHUP"),
    (libc::SIGINT, "SIGINT"),
    (libc::SIGQUIT, "SIGQUIT"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGTRAP, "SIGTRAP"),
    (libc::SIGABRT, "SIGABRT"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGKILL, "SIGKILL"),
    (libc::SIGUSR1, "SIGUSR1"),
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGUSR2, "SIGUSR2"),
    (libc::SIGPIPE, "SIGPIPE"),
    (libc::SIGALRM, "SIGALRM"),
    (libc::SIGTERM, "SIGTERM"),
    (libc::SIGCHLD, "SIGCHLD"),
    (libc::SIGCONT, "SIGCONT"),
    (libc::SIGSTOP, "SIGSTOP"),
    (libc::SIGTSTP, "SIGTSTP"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
];

/// `SIGTERM` for 15; `SIG42` for numbers without a name here.
pub fn signal_name(signal: i32) -> String {
    NAMES
        .iter()
        .find(|(n, _)| *n == signal)
        .map_or_else(|| format!("SIG{signal}"), |(_, name)| (*name).to_string())
}

/// Parses `SIGUSR2`, `USR2`, `usr2` or `12`.
pub fn parse_signal(text: &str) -> Result<i32, String> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        if (1..=libc::SIGRTMAX()).contains(&n) {
            return Ok(n);
        }
        return Err(format!(
            "'{text}' is not a signal number (1-{})",
            libc::SIGRTMAX()
        ));
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    NAMES
        .iter()
        .find(|(_, n)| &n[3..] == name)
        .map(|(num, _)| *num)
        .ok_or_else(|| format!("'{text}' is not a signal name: try 'SIGUSR2', 'USR2' or '12'"))
}

/// Sends `signal` to the process behind `pidfd`. A pidfd names one process for its whole
/// life, so a recycled PID can never receive it (and there is no PID <= 0 to get wrong).
pub fn send_via_pidfd(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: plain syscall with a valid fd, a null siginfo and no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse_signal("SIGUSR2"), Ok(libc::SIGUSR2));
        assert_eq!(parse_signal("usr2"), Ok(libc::SIGUSR2));
        assert_eq!(parse_signal("12"), Ok(12));
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("-9").is_err());
        assert!(parse_signal("SIGFOO").is_err());
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(40), "SIG40");
    }
}

/// True when `signal` is set in a `SigCgt` mask.
pub fn is_caught(mask: u64, signal: i32) -> bool {
    (1..=64).contains(&signal) && mask & (1u64 << (signal - 1)) != 0
}

/// When to send: `--signal-every`, `--signal-at` and `--signal-at-end`, measured from the
/// first sample. Pure bookkeeping; the caller sends.
#[derive(Clone, Debug)]
pub struct SignalSchedule {
    every: Option<std::time::Duration>,
    at: Vec<std::time::Duration>,
    next_every: Option<std::time::Duration>,
    next_at: usize,
    pub at_end: bool,
    pub sent: u32,
}

impl SignalSchedule {
    pub fn new(
        every: Option<std::time::Duration>,
        at: &[std::time::Duration],
        at_end: bool,
    ) -> SignalSchedule {
        SignalSchedule {
            every,
            at: at.to_vec(),
            next_every: every,
            next_at: 0,
            at_end,
            sent: 0,
        }
    }

    /// Whether a signal is due at `elapsed`; consumes every due slot (no bursts after a stall).
    pub fn due(&mut self, elapsed: std::time::Duration) -> bool {
        let mut due = false;
        if let (Some(next), Some(every)) = (self.next_every, self.every)
            && elapsed >= next
        {
            due = true;
            let mut n = next;
            while n <= elapsed {
                n += every;
            }
            self.next_every = Some(n);
        }
        while self.next_at < self.at.len() && elapsed >= self.at[self.next_at] {
            due = true;
            self.next_at += 1;
        }
        due
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn every_and_at_fire_once_per_slot() {
        let s = Duration::from_secs;
        let mut plan = SignalSchedule::new(Some(s(10)), &[s(3), s(25)], false);
        let fired: Vec<u64> = (0..=40).filter(|&t| plan.due(s(t))).collect();
        assert_eq!(fired, vec![3, 10, 20, 25, 30, 40]);
        // a stall past several slots gives one signal, not a burst
        let mut plan = SignalSchedule::new(Some(s(10)), &[], false);
        assert!(plan.due(s(35)));
        assert!(!plan.due(s(36)));
        assert!(plan.due(s(40)));
    }

    #[test]
    fn caught_mask() {
        assert!(is_caught(0x800, libc::SIGUSR2));
        assert!(!is_caught(0x800, libc::SIGUSR1));
        assert!(!is_caught(u64::MAX, 0));
    }
}
