//! The command line, as clap sees it: raw values, checked into a `Config` by `config.rs`.

use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

pub const EXIT_CODES: &str = "\
Exit codes:
  0  memory did not grow and every limit held (gate passed)
  1  memory grew, or a limit was breached (--max-rss, --max-growth, --max-slope, --baseline),
     or inconclusive with --fail-on-inconclusive (gate failed)
  2  memwatch could not do its job: bad arguments or config file, target unreadable,
     output unwritable, a signal the target does not catch
  3  inconclusive: too little data after the warm-up to decide
  4  the spawned command or the --load command failed (non-zero exit, or killed by a signal
     memwatch did not send); files are still written";

#[derive(Debug, Parser)]
#[command(
    name = "memwatch",
    version,
    about = "Find memory growth in a running Linux process.",
    long_about = "Find memory growth in a running Linux process.\n\n\
        Samples RSS, VSZ and their breakdown from /proc, streams every sample to CSV, \
        and at the end decides whether memory grows.\n\n\
        Examples:\n  memwatch --pid 4242\n  memwatch run --duration 2m -- node server.js\n  \
        memwatch report memwatch-4242-20261124-101500/samples.csv",
    after_help = EXIT_CODES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Process to watch (attach mode).
    #[arg(
        short,
        long,
        value_name = "PID",
        allow_hyphen_values = true,
        help_heading = "Target"
    )]
    pub pid: Option<String>,

    #[command(flatten)]
    pub watch: WatchArgs,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
pub enum Command {
    /// Spawn a command (no shell) and watch it from its first moments.
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Re-analyse and re-plot a recorded run (memwatch CSV, psrecord log, mprof .dat).
    #[command(after_help = EXIT_CODES)]
    Report(ReportArgs),
    /// Read V8 heap snapshots: what grew between them and what holds it.
    Heap(HeapArgs),
}

/// Everything a live watch takes, whether attached or spawned.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub signals: SignalArgs,
    #[command(flatten)]
    pub analysis: AnalysisArgs,
    #[command(flatten)]
    pub gate: GateArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub display: DisplayArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// After --duration, how long the command has to exit after SIGTERM before SIGKILL [default: 5s]
    #[arg(
        long,
        value_name = "DUR",
        allow_hyphen_values = true,
        help_heading = "Target"
    )]
    pub grace: Option<String>,

    #[command(flatten)]
    pub load: LoadArgs,

    #[command(flatten)]
    pub watch: WatchArgs,

    /// The command and its arguments, after `--`.
    #[arg(
        last = true,
        required = true,
        value_name = "CMD",
        help_heading = "Target"
    )]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The recorded run: memwatch samples.csv, a psrecord --log file or an mprof .dat file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    #[command(flatten)]
    pub analysis: AnalysisArgs,

    #[command(flatten)]
    pub gate: GateArgs,

    #[command(flatten)]
    pub config: ConfigArgs,

    /// Where to write the summary; `-` or no value: stdout [default: summary.json beside FILE]
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "-", help_heading = "Output")]
    pub json: Option<PathBuf>,

    /// Where to draw the chart [default: memory.png beside FILE]
    #[arg(long, value_name = "PATH", help_heading = "Output")]
    pub png: Option<PathBuf>,

    /// Chart size in pixels [default: 1280x720]
    #[arg(long, value_name = "WxH", help_heading = "Output")]
    pub png_size: Option<String>,

    #[command(flatten)]
    pub display: DisplayArgs,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Sampling")]
pub struct SamplingArgs {
    /// Time between samples (`250ms`, `2s`, `1m`; at least 1ms) [default: 1s]
    #[arg(short, long, value_name = "DUR", allow_hyphen_values = true)]
    pub interval: Option<String>,

    /// Stop after this long [default: until the target exits or Ctrl-C]
    #[arg(short, long, value_name = "DUR", allow_hyphen_values = true)]
    pub duration: Option<String>,

    /// Also record PSS and USS from /proc/PID/smaps_rollup (costly on large processes).
    #[arg(long)]
    pub pss: bool,

    /// Time between PSS/USS readings, with --pss [default: 10s]
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub pss_interval: Option<String>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Signals and heap dumps")]
pub struct SignalArgs {
    /// Signal to send: `SIGUSR2`, `USR2` or `12` [default: SIGUSR2]
    #[arg(long, value_name = "SIG")]
    pub signal: Option<String>,

    /// Send the signal every DUR (e.g. to force a GC or take a heap snapshot).
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub signal_every: Option<String>,

    /// Send the signal at these offsets from the start: `30s,1m,90s`.
    #[arg(long, value_name = "DUR,...", allow_hyphen_values = true)]
    pub signal_at: Option<String>,

    /// Send the signal once more when the run ends (and wait for its dump).
    #[arg(long)]
    pub signal_at_end: bool,

    /// After each signal wait DUR, then take a sample marked `settled` (the post-GC floor).
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub settle: Option<String>,

    /// Send the signal even if the target does not catch it (its default action may kill it).
    #[arg(long)]
    pub force_signal: bool,

    /// Folder watched for heap dumps [default: the target's working directory]
    #[arg(long, value_name = "DIR")]
    pub dump_dir: Option<std::path::PathBuf>,

    /// File patterns that are heap dumps, comma-separated
    /// [default: *.heapsnapshot,*.heapprofile,*.hprof,core.*]
    #[arg(long, value_name = "GLOBS")]
    pub dump_glob: Option<String>,

    /// Stop signalling once this many dumps have been written [default: 5]
    #[arg(long, value_name = "N")]
    pub max_dumps: Option<u32>,

    /// Stop signalling when the dump folder's disk would have less than SIZE free after the
    /// next dump (estimated as the largest so far) [default: 1GiB]
    #[arg(long, value_name = "SIZE")]
    pub min_free: Option<String>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Analysis")]
pub struct AnalysisArgs {
    /// Memory column to judge: rss, anon, vsz, file, shmem, swap, hwm, pss, uss, or `settled`
    /// (RSS of the samples taken --settle after each signal; chosen automatically when
    /// there are enough of them) [default: rss]
    #[arg(long, value_name = "NAME")]
    pub metric: Option<String>,

    /// Start of the run left out of the verdict [default: auto, see docs/verdict.md]
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub warmup: Option<String>,

    /// Least slope called growth: a rate (`1MiB/h`) or a relative rate (`5%/h`); give both to
    /// set both [default: 16B/s and 1%/h]
    #[arg(long, value_name = "RATE", allow_hyphen_values = true)]
    pub min_slope: Vec<String>,

    /// Least total growth over the analysed window called growth: `5MiB` or `2%` [default: 2%]
    #[arg(long, value_name = "SIZE|PCT", allow_hyphen_values = true)]
    pub min_growth: Option<String>,

    /// Significance level of the trend test [default: 0.01]
    #[arg(long, value_name = "P", allow_hyphen_values = true)]
    pub p_value: Option<String>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Folder for samples.csv, summary.json and memory.png [default: ./memwatch-<pid>-<YYYYmmdd-HHMMSS>]
    #[arg(short, long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Path of the samples CSV; `-` for stdout.
    #[arg(long, value_name = "PATH")]
    pub csv: Option<PathBuf>,

    /// Path of the JSON summary; `-` for stdout.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Path of the chart.
    #[arg(long, value_name = "PATH")]
    pub png: Option<PathBuf>,

    /// Chart size in pixels [default: 1280x720]
    #[arg(long, value_name = "WxH")]
    pub png_size: Option<String>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Load (CI)")]
pub struct LoadArgs {
    /// Load generator to start once the target is ready, run with `sh -c`; the run ends
    /// when it ends (plus --cooldown). A failed load fails the gate (exit 4).
    #[arg(long, value_name = "CMD")]
    pub load: Option<String>,

    /// The target is ready when something listens on 127.0.0.1:PORT.
    #[arg(long, value_name = "PORT")]
    pub ready_port: Option<u16>,

    /// The target is ready this long after the start (without --ready-port) [default: 0s]
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub ready_delay: Option<String>,

    /// Keep sampling this long after the load ends [default: 0s]
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub cooldown: Option<String>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Gate (CI)")]
pub struct GateArgs {
    /// Fail (exit 1) if the peak of the judged metric is above SIZE (`512MiB`).
    #[arg(long, value_name = "SIZE")]
    pub max_rss: Option<String>,

    /// Fail if the growth over the analysed window is above SIZE or PCT (`64MiB`, `10%`).
    #[arg(long, value_name = "SIZE|PCT", allow_hyphen_values = true)]
    pub max_growth: Option<String>,

    /// Fail if the slope is above RATE (`1MiB/min`).
    #[arg(long, value_name = "RATE", allow_hyphen_values = true)]
    pub max_slope: Option<String>,

    /// Fail (exit 1) rather than exit 3 when the verdict is inconclusive.
    #[arg(long)]
    pub fail_on_inconclusive: bool,

    /// A summary.json from an earlier run: fail if slope or peak is worse by more than the tolerance.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// How much worse than the baseline is allowed [default: 10%]
    #[arg(long, value_name = "PCT")]
    pub baseline_tolerance: Option<String>,

    /// Also write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Options from this TOML file [default: ./memwatch.toml if present]; the command line
    /// wins over the file.
    #[arg(long, value_name = "FILE", help_heading = "Config")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Display")]
pub struct DisplayArgs {
    /// No live line and no end summary on stderr (errors are still printed).
    #[arg(short, long)]
    pub quiet: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}

pub const HEAP_EXIT_CODES: &str = "\
Exit codes:
  0  done
  2  a file is missing, empty, truncated, not a heap snapshot, or its meta is unusable";

/// `memwatch heap ...`: read V8 heap snapshots (`.heapsnapshot`).
#[derive(Debug, Args)]
pub struct HeapArgs {
    #[command(subcommand)]
    pub command: HeapCommand,
}

#[derive(Debug, Subcommand)]
pub enum HeapCommand {
    /// Per class: count, self size and retained size (DevTools' Summary view).
    #[command(after_help = HEAP_EXIT_CODES)]
    Summary {
        /// A .heapsnapshot file.
        file: PathBuf,
        /// Rows to print, largest retained size first (0: all).
        #[arg(long, default_value_t = 20, value_name = "N")]
        top: usize,
        /// JSON on stdout instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// What grew between snapshots of one process (objects matched by id, as DevTools'
    /// Comparison view) and the retaining paths that hold the new objects.
    #[command(after_help = HEAP_EXIT_CODES)]
    Diff {
        /// Two or more .heapsnapshot files of one process, oldest first.
        #[arg(required = true, num_args = 2.., value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Rows to print, largest size delta first (0: all).
        #[arg(long, default_value_t = 20, value_name = "N")]
        top: usize,
        /// Retaining paths for this many of the top growing classes (0: none, no edges read).
        #[arg(long, default_value_t = 3, value_name = "N")]
        paths: usize,
        /// JSON on stdout instead of the tables.
        #[arg(long)]
        json: bool,
    },
}
