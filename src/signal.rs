//! Signal names and numbers, and sending signals safely through a pidfd.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::PathBuf;
use std::time::Duration;

/// When and how the target is signalled, and where its heap dumps are looked for.
#[derive(Clone, Debug, Default)]
pub struct SignalPlan {
    pub signal: i32,
    pub every: Option<Duration>,
    /// Offsets from the start, ascending.
    pub at: Vec<Duration>,
    pub at_end: bool,
    pub settle: Option<Duration>,
    pub force: bool,
    pub dump_dir: Option<PathBuf>,
    pub dump_globs: String,
    pub max_dumps: u32,
    pub min_free: u64,
}

impl SignalPlan {
    /// True when any signal is to be sent.
    pub fn sends(&self) -> bool {
        self.every.is_some() || !self.at.is_empty() || self.at_end
    }

    /// Dumps are watched when signals are sent or a dump folder is named.
    pub fn watches_dumps(&self) -> bool {
        self.sends() || self.dump_dir.is_some()
    }
}

const NAMES: [(i32, &str); 31] = [
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
    (libc::SIGSTKFLT, "SIGSTKFLT"),
    (libc::SIGCHLD, "SIGCHLD"),
    (libc::SIGCONT, "SIGCONT"),
    (libc::SIGSTOP, "SIGSTOP"),
    (libc::SIGTSTP, "SIGTSTP"),
    (libc::SIGTTIN, "SIGTTIN"),
    (libc::SIGTTOU, "SIGTTOU"),
    (libc::SIGURG, "SIGURG"),
    (libc::SIGXCPU, "SIGXCPU"),
    (libc::SIGXFSZ, "SIGXFSZ"),
    (libc::SIGVTALRM, "SIGVTALRM"),
    (libc::SIGPROF, "SIGPROF"),
    (libc::SIGWINCH, "SIGWINCH"),
    (libc::SIGIO, "SIGIO"),
    (libc::SIGPWR, "SIGPWR"),
    (libc::SIGSYS, "SIGSYS"),
];

/// What a signal does to a process that has no handler for it (signal(7)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultAction {
    Terminate,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(signal: i32) -> DefaultAction {
    match signal {
        libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH => DefaultAction::Ignore,
        libc::SIGCONT => DefaultAction::Continue,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => DefaultAction::Stop,
        _ => DefaultAction::Terminate,
    }
}

/// `SIGTERM` for 15; `SIGRTMIN+2` for real-time signals; `SIG99` for anything else.
pub fn signal_name(signal: i32) -> String {
    if let Some((_, name)) = NAMES.iter().find(|(n, _)| *n == signal) {
        return (*name).to_string();
    }
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if signal == min {
        "SIGRTMIN".into()
    } else if signal == max {
        "SIGRTMAX".into()
    } else if (min..max).contains(&signal) {
        format!("SIGRTMIN+{}", signal - min)
    } else {
        format!("SIG{signal}")
    }
}

/// Parses `SIGUSR2`, `USR2`, `usr2`, `12`, `SIGRTMIN+2` or `RTMAX-1`.
pub fn parse_signal(text: &str) -> Result<i32, String> {
    let t = text.trim();
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if let Ok(n) = t.parse::<i32>() {
        if (1..=max).contains(&n) {
            return Ok(n);
        }
        return Err(format!("'{text}' is not a signal number (1-{max})"));
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let real_time = |base: &str, sign: i32| -> Option<i32> {
        let rest = name.strip_prefix(base)?;
        let offset = match rest {
            "" => 0,
            _ => rest.get(1..)?.parse::<i32>().ok()?,
        };
        let ok_sign = rest.is_empty() || rest.starts_with(if sign > 0 { '+' } else { '-' });
        let n = if sign > 0 { min + offset } else { max - offset };
        (ok_sign && (min..=max).contains(&n)).then_some(n)
    };
    NAMES
        .iter()
        .find(|(_, n)| &n[3..] == name)
        .map(|(num, _)| *num)
        .or_else(|| real_time("RTMIN", 1))
        .or_else(|| real_time("RTMAX", -1))
        .ok_or_else(|| {
            format!("'{text}' is not a signal name: try 'SIGUSR2', 'USR2', '12' or 'SIGRTMIN+2'")
        })
}

/// The refusal when an attached process has no handler for the signal, in words that fit
/// what the signal would do, with a hint Node.js accepts only for signals it knows by name.
pub fn not_caught_message(pid: i32, name: &str, signal: i32) -> String {
    let sig = signal_name(signal);
    let effect = match default_action(signal) {
        DefaultAction::Terminate => "its default action would terminate it".to_string(),
        DefaultAction::Stop => "its default action would stop (freeze) it".to_string(),
        DefaultAction::Ignore => {
            "its default action is to ignore it, so sending it would do nothing".to_string()
        }
        DefaultAction::Continue => {
            "its default action is only to continue a stopped process, so sending it would do nothing"
                .to_string()
        }
    };
    let named = NAMES.iter().any(|(n, _)| *n == signal);
    let hint = if named {
        format!("Node: --heapsnapshot-signal={sig}, or process.on('{sig}', ...)")
    } else {
        "e.g. a signal handler in the program".to_string()
    };
    format!(
        "PID {pid} ({name}) does not catch {sig}: {effect}. Give it a handler ({hint}) or pass \
         --force-signal"
    )
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
        assert_eq!(signal_name(99), "SIG99");
    }

    /// Regression: WINCH, URG, TTIN, TTOU, IO, PWR, SYS and XFSZ were refused by name.
    #[test]
    fn every_standard_signal_has_its_name() {
        for name in [
            "WINCH", "URG", "TTIN", "TTOU", "IO", "PWR", "SYS", "XFSZ", "STKFLT",
        ] {
            let n = parse_signal(name).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(signal_name(n), format!("SIG{name}"));
        }
        for n in 1..=31 {
            if n == libc::SIGKILL || n == libc::SIGSTOP {
                continue;
            }
            let name = signal_name(n);
            assert!(
                !name.starts_with("SIG") || !name[3..].starts_with(char::is_numeric),
                "{n}"
            );
            assert_eq!(parse_signal(&name), Ok(n), "{name}");
        }
    }

    #[test]
    fn real_time_signals_by_offset() {
        let min = libc::SIGRTMIN();
        let max = libc::SIGRTMAX();
        assert_eq!(signal_name(min), "SIGRTMIN");
        assert_eq!(signal_name(min + 2), "SIGRTMIN+2");
        assert_eq!(signal_name(max), "SIGRTMAX");
        assert_eq!(parse_signal("SIGRTMIN+2"), Ok(min + 2));
        assert_eq!(parse_signal("rtmax-1"), Ok(max - 1));
        assert_eq!(parse_signal("RTMIN"), Ok(min));
        assert!(parse_signal("SIGRTMIN+99").is_err());
        assert_eq!(parse_signal(&signal_name(min + 5)), Ok(min + 5));
    }

    /// Regression: SIGCHLD and SIGCONT were refused as "would terminate it", and the Node
    /// hint suggested --heapsnapshot-signal=SIG34, which Node does not accept.
    #[test]
    fn refusals_say_what_the_signal_would_do() {
        let chld = not_caught_message(7, "app", libc::SIGCHLD);
        assert!(
            chld.contains("ignore it") && !chld.contains("terminate"),
            "{chld}"
        );
        let cont = not_caught_message(7, "app", libc::SIGCONT);
        assert!(
            cont.contains("continue") && !cont.contains("terminate"),
            "{cont}"
        );
        let usr2 = not_caught_message(7, "app", libc::SIGUSR2);
        assert!(
            usr2.contains("would terminate it") && usr2.contains("--heapsnapshot-signal=SIGUSR2")
        );
        let rt = not_caught_message(7, "app", libc::SIGRTMIN() + 1);
        assert!(!rt.contains("--heapsnapshot-signal"), "{rt}");
        assert!(rt.contains("SIGRTMIN+1"), "{rt}");
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
