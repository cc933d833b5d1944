//! The open-file limit. `--all` keeps one descriptor open per process (its statm), so a
//! machine with more processes than the usual soft limit of 1024 needs more: the soft limit is
//! raised to the hard one at start, and what is left after that is the budget of files kept
//! open. Past it, processes are read by reopening a file each tick (see `reader.rs`).

use std::io;

/// Descriptors kept for everything else memwatch opens: stdio, the outputs, the wake-up pipe,
/// the terminal, the HTTP listener and its connection, /proc/loadavg, /proc scans and the
/// files reopened each tick.
pub const RESERVED: u64 = 48;

/// The open-file limit before and after memwatch raised it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdLimit {
    pub was: u64,
    pub now: u64,
    pub hard: u64,
}

impl FdLimit {
    /// How many files may be kept open for processes.
    pub fn budget(&self) -> u64 {
        self.now.saturating_sub(RESERVED)
    }

    pub fn raised(&self) -> bool {
        self.now > self.was
    }
}

/// Raises the soft open-file limit to the hard one (capped at what the kernel allows a
/// process, `fs.nr_open`).
pub fn raise() -> io::Result<FdLimit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let was = lim.rlim_cur;
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let want = lim.rlim_max.min(nr_open).max(was);
    if want > was {
        let raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: setrlimit reads the struct; raising the soft limit up to the hard one is
        // always allowed.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(FdLimit {
        was,
        now: want,
        hard: lim.rlim_max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let lim = raise().expect("getrlimit");
        assert!(lim.now >= lim.was);
        assert!(lim.now <= lim.hard);
        let again = raise().expect("getrlimit");
        assert_eq!((again.was, again.now), (lim.now, lim.now), "raised once");
        assert!(!again.raised());
        assert_eq!(
            FdLimit {
                was: 10,
                now: 20,
                hard: 20
            }
            .budget(),
            0
        );
    }
}
