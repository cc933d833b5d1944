//! The exit-code table, in one place: `main` maps every outcome through `Exit`, and `--help`,
//! the man page and the README show `TABLE`.

use std::process::ExitCode;

/// How a memwatch run ended, as its exit code says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Exit {
    /// Memory did not grow and every limit held (the gate passed).
    Passed = 0,
    /// Memory grew, or a limit was breached (the gate failed).
    Grew = 1,
    /// memwatch could not do its job: bad arguments, target unreadable, output unwritable.
    Trouble = 2,
    /// Too little data after the warm-up to decide.
    Inconclusive = 3,
    /// The spawned command or the --load command failed.
    CommandFailed = 4,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

/// The table shown after `--help` of the watching commands.
pub const TABLE: &str = "\
Exit codes:
  0  memory did not grow and every limit held (gate passed)
  1  memory grew, or a limit was breached (--max-rss, --max-growth, --max-slope, --baseline,
     --min-time-to-limit), or inconclusive with --fail-on-inconclusive (gate failed)
  2  memwatch could not do its job: bad arguments or config file, target unreadable,
     output unwritable, a signal the target does not catch, no process (or several)
     matching --name/--cmdline
  3  inconclusive: too little data after the warm-up to decide
  4  the spawned command or the --load command failed (non-zero exit, or killed by a signal
     memwatch did not send); files are still written";

/// `memwatch report` cannot return 4: it runs nothing.
pub const REPORT_TABLE: &str = "\
Exit codes:
  0  memory did not grow and every limit held (gate passed)
  1  memory grew, or a limit was breached (--max-rss, --max-growth, --max-slope, --baseline,
     --min-time-to-limit), or inconclusive with --fail-on-inconclusive (gate failed)
  2  memwatch could not do its job: bad arguments or config file, unreadable recording,
     output unwritable
  3  inconclusive: too little data after the warm-up to decide";

/// `memwatch heap` reads files and judges nothing.
pub const HEAP_TABLE: &str = "\
Exit codes:
  0  done
  2  a file is missing, a folder, empty, truncated, not a heap snapshot, or its meta or
     values are unusable; or --json cannot be written";
