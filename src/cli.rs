//! The command line, as clap sees it. Every value has its type from `options.rs` (parsed
//! and range-checked by that type), and its default here, once; `config/` turns these
//! values into a validated configuration per command.

use crate::exit;
use crate::options::{
    ByteRate, CgroupSpec, Dur, DurList, FaultPeriod, MetricChoice, PValue, Pct, Pid, PngSize,
    RuntimeChoice, Signal, Size, SizeOrPct, Slope, TreeTotalChoice,
};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "memwatch",
    version,
    about = "Find memory growth in a running Linux process.",
    long_about = "Find memory growth in a running Linux process.\n\n\
        Samples RSS, VSZ and their breakdown from /proc, streams every sample to CSV, \
        and at the end decides whether memory grows.\n\n\
        Examples:\n  memwatch --pid 4242\n  memwatch run --duration 2m -- node server.js\n  \
        memwatch report memwatch-4242-20261124-101500/samples.csv\n  \
        memwatch heap diff Heap.1.heapsnapshot Heap.2.heapsnapshot",
    after_help = exit::TABLE,
    override_usage = "memwatch [OPTIONS] --pid <PID>\n       memwatch run [OPTIONS] -- <CMD>...\n       \
        memwatch <report|heap|completions|man> ...",
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
    pub pid: Option<Pid>,

    #[command(flatten)]
    pub find: FindArgs,

    #[command(flatten)]
    pub watch: WatchArgs,
}

/// Attach mode without a PID: the target found by name or command line, and followed.
#[derive(Debug, Args)]
#[command(next_help_heading = "Target")]
pub struct FindArgs {
    /// Watch the process whose name (/proc/PID/comm, 15 characters at most) matches REGEX,
    /// anywhere in it as pgrep does (`^node$` for exactly node); several matches are an error
    /// that lists them
    #[arg(long, value_name = "REGEX", conflicts_with_all = ["pid", "cmdline"])]
    pub name: Option<String>,

    /// Watch the process whose command line (its arguments joined by spaces) matches REGEX
    #[arg(long, value_name = "REGEX", conflicts_with = "pid")]
    pub cmdline: Option<String>,

    /// With --name or --cmdline: watch every process that matches (and those that start
    /// later), judged on their sum as --tree judges a tree
    #[arg(long)]
    pub all_matches: bool,

    /// With --name or --cmdline: when the target exits, wait for a new process that matches
    /// and watch it (a restart, left absent in between); with no match at the start, wait for
    /// one. Each life is judged, and the whole with the lives joined
    #[arg(long)]
    pub follow: bool,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per run
pub enum Command {
    /// Spawn a command (no shell) and watch it from its first moments.
    #[command(after_help = exit::TABLE)]
    Run(RunArgs),
    /// Re-analyse and re-plot a recorded run (memwatch CSV, psrecord log, mprof .dat).
    #[command(after_help = exit::REPORT_TABLE)]
    Report(ReportArgs),
    /// Read V8 heap snapshots: what grew between them and what holds it.
    #[command(subcommand_required = true, arg_required_else_help = false)]
    Heap(HeapArgs),
    /// Print a shell completion script: `memwatch completions bash > /etc/bash_completion.d/memwatch`.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print a man page (roff): `memwatch man > memwatch.1`, `memwatch man run` for
    /// memwatch-run(1); `--dir DIR` writes every page into DIR.
    Man(ManArgs),
}

/// `memwatch man`: which page, or every page into a folder.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print: nothing for memwatch(1), `run`, `report`, `heap`,
    /// `heap diff`, ...
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,

    /// Write every page (memwatch.1, memwatch-run.1, ...) into this folder instead
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub dir: Option<PathBuf>,
}

/// The shells `memwatch completions` writes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Everything a live watch takes, whether attached or spawned.
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
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
    #[command(flatten)]
    pub services: ServiceArgs,
}

/// Whole services: a process tree's total, and the memory cgroup the service runs in.
#[derive(Debug, Args)]
#[command(next_help_heading = "Services (trees, cgroups)")]
pub struct ServiceArgs {
    /// Also read a memory cgroup on every tick: the target's own (no PATH, or `target`), or
    /// PATH (its folder, or its path as /proc/PID/cgroup shows it). The summary gives the
    /// headroom under its limit and when the limit is reached at the current slope;
    /// `--metric cgroup` judges it
    #[arg(
        long,
        value_name = "PATH",
        num_args = 0..=1,
        default_missing_value = "target"
    )]
    pub cgroup: Option<CgroupSpec>,

    /// With --tree: what the tree's judged total is: `auto` (a cgroup memwatch makes for `run`
    /// as root, else the sum of PSS), `cgroup`, `pss`, or `rss` (the sum of RSS, which counts
    /// a page shared by several processes once for each)
    #[arg(long, value_name = "KIND", default_value = "auto")]
    pub tree_total: TreeTotalChoice,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// After --duration, how long the command (and what it started) has to exit after SIGTERM
    /// before SIGKILL
    #[arg(
        long,
        value_name = "DUR",
        default_value = "5s",
        allow_hyphen_values = true,
        help_heading = "Target"
    )]
    pub grace: Dur,

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

    /// Where to write the summary; `-` for stdout [default: summary.json beside FILE, or
    /// report.json when FILE's folder holds a live run's summary.json]
    #[arg(long, value_name = "PATH", help_heading = "Output")]
    pub json: Option<PathBuf>,

    /// Where to draw the chart [default: memory.png beside FILE, or report.png when FILE's
    /// folder holds a live run's summary.json]
    #[arg(long, value_name = "PATH", help_heading = "Output")]
    pub png: Option<PathBuf>,

    /// Draw no chart
    #[arg(long, conflicts_with = "png", help_heading = "Output")]
    pub no_png: bool,

    /// Chart size in pixels
    #[arg(
        long,
        value_name = "WxH",
        default_value = "1280x720",
        help_heading = "Output"
    )]
    pub png_size: PngSize,

    /// Replace a live run's summary.json named by --json (never FILE itself or a samples CSV)
    #[arg(long, help_heading = "Output")]
    pub force: bool,

    /// No summary on stderr, only errors
    #[arg(short, long, help_heading = "Display")]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Sampling")]
pub struct SamplingArgs {
    /// Time between samples (`250ms`, `2s`, `1m`; at least 1ms)
    #[arg(
        short,
        long,
        value_name = "DUR",
        default_value = "1s",
        allow_hyphen_values = true
    )]
    pub interval: Dur,

    /// Stop after this long [default: until the target exits or Ctrl-C]
    #[arg(short, long, value_name = "DUR", allow_hyphen_values = true)]
    pub duration: Option<Dur>,

    /// Also record PSS and USS from /proc/PID/smaps_rollup (costly on large processes).
    #[arg(long)]
    pub pss: bool,

    /// Watch the target and every process it starts (found again every second), and judge
    /// their sum, the `total` series; samples.csv gets a row per process and a `total` row.
    /// Not with --runtime
    #[arg(long)]
    pub tree: bool,

    /// Time between PSS/USS readings, with --pss
    #[arg(
        long,
        value_name = "DUR",
        default_value = "10s",
        allow_hyphen_values = true
    )]
    pub pss_interval: Dur,

    /// Find where native memory grows from: sample the target's page faults (one in N; `--native`
    /// alone: every fault) with their user stacks, and report the stacks that faulted in the
    /// pages still held, over the analysed window (native.folded, native.svg, summary.json
    /// `native`; docs/native.md). Needs root or CAP_PERFMON
    #[arg(
        long,
        value_name = "N",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "1"
    )]
    pub native: Option<FaultPeriod>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Runtime (managed heap)")]
pub struct RuntimeArgs {
    /// Ask the program's runtime for its managed heap after forced GCs, and judge that:
    /// `auto` (Node.js or a HotSpot JVM when detected), `node`, `jvm` or `none` [default:
    /// auto with `run`; none with --pid, since it opens a debugging port on 127.0.0.1 or the
    /// JVM's attach listener in a live process while memwatch runs]
    #[arg(long, value_name = "KIND", value_parser = crate::options::runtime_parser())]
    pub runtime: Option<RuntimeChoice>,

    /// Force a GC this often [default: every 5s in the first minute, 10s up to 5 minutes,
    /// 20s after]
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub gc_every: Option<Dur>,

    /// Forced GCs pause the program: skip them while their pauses in the last minute would
    /// add up to more than this
    #[arg(
        long,
        value_name = "DUR",
        default_value = "1s",
        allow_hyphen_values = true
    )]
    pub gc_pause_budget: Dur,

    /// Take N heap snapshots (Node.js) or class histograms (JVM) through the runtime, from the
    /// start of the analysed window to its end; needs --duration. Each snapshot can double
    /// the program's memory while it is written (--max-dumps and --min-free apply)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=20))]
    pub heap_snapshots: Option<u32>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Signals and heap dumps")]
pub struct SignalArgs {
    /// Signal to send: `SIGUSR2`, `USR2`, `12` or `SIGRTMIN+2`
    #[arg(long, value_name = "SIG", default_value = "SIGUSR2")]
    pub signal: Signal,

    /// Send the signal every DUR (e.g. to force a GC or take a heap snapshot).
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub signal_every: Option<Dur>,

    /// Send the signal at these offsets from the start: `30s,1m,90s`.
    #[arg(long, value_name = "DUR,...", allow_hyphen_values = true)]
    pub signal_at: Option<DurList>,

    /// Send the signal once more when the run ends, and wait (at most 2 minutes) for its
    /// heap dump and settle sample.
    #[arg(long)]
    pub signal_at_end: bool,

    /// After each signal wait DUR, then take a sample marked `settled` (the post-GC floor).
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub settle: Option<Dur>,

    /// Send the signal even if the target does not catch it (its default action may kill it).
    #[arg(long)]
    pub force_signal: bool,

    /// Folder watched for heap dumps [default: the target's working directory]
    #[arg(long, value_name = "DIR")]
    pub dump_dir: Option<PathBuf>,

    /// File patterns that are heap dumps, comma-separated
    #[arg(long, value_name = "GLOBS", default_value = crate::dump::DEFAULT_GLOBS)]
    pub dump_glob: String,

    /// Stop signalling once this many dumps have been written
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub max_dumps: u32,

    /// Stop signalling when the dump folder's disk would have less than SIZE free after the
    /// next dump (estimated as the largest so far)
    #[arg(
        long,
        value_name = "SIZE",
        default_value = "1GiB",
        allow_hyphen_values = true
    )]
    pub min_free: Size,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Analysis")]
pub struct AnalysisArgs {
    /// The series judged: a column of samples.csv (pss and uss need --pss; heap-after-gc,
    /// heap-used and external need --runtime), `settled` (RSS of the samples taken --settle
    /// after each signal), or `cgroup` (the --cgroup's memory). The managed heap after GC
    /// (with --runtime) and the settled samples are judged instead of the default rss when
    /// there are enough of them
    #[arg(
        long,
        value_name = "NAME",
        default_value = "rss",
        value_parser = crate::options::metric_parser()
    )]
    pub metric: MetricChoice,

    /// Start of the run left out of the verdict [default: auto, see docs/verdict.md]
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub warmup: Option<Dur>,

    /// Least slope called growth: a rate (`1MiB/h`) or a relative rate (`5%/h`); give both to
    /// set both; judged over at most 10 h of the run [default: 16B/s and 1%/h]
    #[arg(long, value_name = "RATE", allow_hyphen_values = true)]
    pub min_slope: Vec<Slope>,

    /// Least total growth over the analysed window called growth: `5MiB` or `2%` [default: 2%]
    #[arg(long, value_name = "SIZE|PCT", allow_hyphen_values = true)]
    pub min_growth: Option<SizeOrPct>,

    /// Significance level of the trend test [default: 0.01]
    #[arg(long, value_name = "P", allow_hyphen_values = true)]
    pub p_value: Option<PValue>,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Folder for samples.csv, summary.json and memory.png: made by the run, or one of your own
    /// holding no earlier run [default: ./memwatch-<pid>-<YYYYmmdd-HHMMSS>, always new: -2, -3...]
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

    /// Chart size in pixels
    #[arg(long, value_name = "WxH", default_value = "1280x720")]
    pub png_size: PngSize,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Load (CI)")]
pub struct LoadArgs {
    /// Load generator to start once the target is ready, run with `sh -c`; the run ends
    /// when it ends (plus --cooldown). A failed load fails the gate (exit 4).
    #[arg(long, value_name = "CMD")]
    pub load: Option<String>,

    /// The target is ready when something listens on 127.0.0.1:PORT.
    #[arg(long, value_name = "PORT", requires = "load", value_parser = clap::value_parser!(u16).range(1..))]
    pub ready_port: Option<u16>,

    /// With --ready-port: give up (exit 2) when nothing listens there after this long
    #[arg(
        long,
        value_name = "DUR",
        requires = "ready_port",
        default_value = "5m",
        allow_hyphen_values = true
    )]
    pub ready_timeout: Dur,

    /// The target is ready this long after the start (without --ready-port)
    #[arg(
        long,
        value_name = "DUR",
        requires = "load",
        default_value = "0s",
        allow_hyphen_values = true
    )]
    pub ready_delay: Dur,

    /// Keep sampling this long after the load ends
    #[arg(
        long,
        value_name = "DUR",
        requires = "load",
        default_value = "0s",
        allow_hyphen_values = true
    )]
    pub cooldown: Dur,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Gate (CI)")]
pub struct GateArgs {
    /// Fail (exit 1) if the peak of the judged metric is above SIZE (`512MiB`).
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub max_rss: Option<Size>,

    /// Fail if the growth over the analysed window is above SIZE or PCT (`64MiB`, `10%`).
    #[arg(long, value_name = "SIZE|PCT", allow_hyphen_values = true)]
    pub max_growth: Option<SizeOrPct>,

    /// Fail if the slope is above RATE (`1MiB/min`).
    #[arg(long, value_name = "RATE", allow_hyphen_values = true)]
    pub max_slope: Option<ByteRate>,

    /// Fail (exit 1) rather than exit 3 when the verdict is inconclusive.
    #[arg(long)]
    pub fail_on_inconclusive: bool,

    /// With --cgroup: fail if, at the cgroup's slope, its memory reaches its limit sooner than
    /// DUR (`6h`)
    #[arg(long, value_name = "DUR", allow_hyphen_values = true)]
    pub min_time_to_limit: Option<Dur>,

    /// A summary.json from an earlier run: fail if slope or peak is worse by more than the tolerance.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,

    /// How much worse than the baseline is allowed
    #[arg(long, value_name = "PCT", default_value = "10%")]
    pub baseline_tolerance: Pct,

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

    /// Every command with its options, depth first.
    fn every_command() -> Vec<clap::Command> {
        fn walk(cmd: &clap::Command, out: &mut Vec<clap::Command>) {
            out.push(cmd.clone());
            for sub in cmd.get_subcommands() {
                walk(sub, out);
            }
        }
        let mut out = Vec::new();
        walk(&Cli::command(), &mut out);
        out
    }

    /// Issue 20 item 12: the README, --help, the man pages and the completions say the same.
    /// The man pages and completions are generated from this definition; the README is held
    /// to it here: every option is in the README, every option a README table names exists,
    /// and a default the table gives as a value is clap's default.
    #[test]
    fn regression_item12_the_readme_names_every_option_with_its_default() {
        #[allow(clippy::unwrap_used)]
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let commands = every_command();
        let args: Vec<&clap::Arg> = commands.iter().flat_map(|c| c.get_arguments()).collect();
        for arg in &args {
            let Some(long) = arg.get_long() else { continue };
            if ["help", "version"].contains(&long) {
                continue;
            }
            assert!(
                readme.contains(&format!("--{long}")),
                "README.md does not mention --{long}"
            );
        }
        let code = |cell: &str| -> Option<String> {
            let cell = cell.trim();
            (cell.len() > 2
                && cell.starts_with('`')
                && cell.ends_with('`')
                && cell.matches('`').count() == 2)
                .then(|| cell.trim_matches('`').to_string())
        };
        for row in readme.lines().filter(|l| l.starts_with("| `-")) {
            let cells: Vec<&str> = row.split(" | ").collect();
            let names: Vec<&str> = cells[0]
                .split(['`', ',', ' '])
                .filter(|w| w.starts_with("--"))
                .collect();
            for name in &names {
                let long = name.trim_start_matches("--");
                let found: Vec<&&clap::Arg> =
                    args.iter().filter(|a| a.get_long() == Some(long)).collect();
                assert!(
                    !found.is_empty(),
                    "README.md's table names {name}, which does not exist"
                );
                if let (Some(default), 1) = (cells.get(1).and_then(|c| code(c)), names.len()) {
                    for arg in found {
                        let clap_default: Vec<String> = arg
                            .get_default_values()
                            .iter()
                            .map(|v| v.to_string_lossy().into_owned())
                            .collect();
                        if !clap_default.is_empty() {
                            assert_eq!(
                                clap_default.join(","),
                                default,
                                "{name}: README.md's default is not --help's"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// `memwatch heap ...`: read V8 heap snapshots (`.heapsnapshot`).
#[derive(Debug, Args)]
pub struct HeapArgs {
    #[command(subcommand)]
    pub command: HeapCommand,
}

#[derive(Debug, Subcommand)]
pub enum HeapCommand {
    /// Per class: count, self size and retained size (DevTools' Summary view).
    #[command(after_help = exit::HEAP_TABLE)]
    Summary {
        /// A .heapsnapshot file.
        file: PathBuf,
        /// Rows to print, largest retained size first (0: all).
        #[arg(long, default_value_t = 20, value_name = "N")]
        top: usize,
        /// Write the summary as JSON to PATH (every class); `-` for stdout instead of the table.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
    },
    /// What grew between snapshots of one process: the leak roots (new objects no other new
    /// object holds alone) by what they retain and what holds them, then DevTools'
    /// Comparison view (objects matched by id).
    #[command(after_help = exit::HEAP_TABLE)]
    Diff {
        /// Two or more .heapsnapshot files of one process, oldest first.
        #[arg(required = true, num_args = 2.., value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Classes to print, largest change first (0: all).
        #[arg(long, default_value_t = 20, value_name = "N")]
        top: usize,
        /// Leak-root groups that get retaining paths (0: none, and no edges are read, so no
        /// leak roots either: only the comparison by class).
        #[arg(long, default_value_t = 3, value_name = "N")]
        paths: usize,
        /// Write the diff as JSON to PATH (every class, not only --top); `-` for stdout
        /// instead of the tables.
        #[arg(long, value_name = "PATH")]
        json: Option<PathBuf>,
    },
}
