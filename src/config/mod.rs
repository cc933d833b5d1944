//! Two stages, as ripgrep does: the raw values clap parsed (`cli.rs`, with the config file's
//! options turned into arguments for the same parser) are checked into one validated
//! configuration per command, before any work starts: ranges checked, options that go
//! together checked together. Every message names the bad value and what to do.

pub mod file;

use crate::analyze::{Thresholds, Warmup};
use crate::cli::{
    AnalysisArgs, Cli, Command as CliCommand, GateArgs, HeapArgs, LoadArgs, OutputArgs, ReportArgs,
    RuntimeArgs, SamplingArgs, Shell, SignalArgs, WatchArgs,
};
use crate::error::{Error, Result};
use crate::gate::{Baseline, Limits};
use crate::judge::{AnalysisConfig, SettledUse};
use crate::load::LoadPlan;
use crate::options::{MetricChoice, RuntimeChoice, Slope};
use crate::report::output::OutputPlan;
use crate::runtime::{GcSchedule, Settings as RuntimeSettings};
use crate::sample::{Metric, Sampling};
use crate::signal::SignalPlan;
use clap::{CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// What memwatch was asked to do, checked.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per run
pub enum Command {
    /// Watch a process, attached (`--pid`) or spawned (`run`).
    Watch(WatchConfig),
    /// Re-analyse a recording (`report`).
    Report(ReportConfig),
    /// `memwatch heap`: reads files only; its options need no checks beyond clap's.
    Heap(HeapArgs),
    Completions(Shell),
    Man,
}

/// The process to watch.
#[derive(Debug)]
pub enum TargetSpec {
    Attach {
        pid: i32,
    },
    Spawn {
        command: Vec<OsString>,
        grace: Duration,
    },
}

#[derive(Debug)]
pub struct WatchConfig {
    pub target: TargetSpec,
    /// `run --load`: only with a spawned target.
    pub load: Option<LoadPlan>,
    pub sampling: Sampling,
    pub runtime: RuntimeSettings,
    pub signals: SignalPlan,
    pub analysis: AnalysisConfig,
    pub limits: Limits,
    pub outputs: OutputPlan,
    pub quiet: bool,
}

#[derive(Debug)]
pub struct ReportConfig {
    pub file: PathBuf,
    pub analysis: AnalysisConfig,
    pub limits: Limits,
    /// `None`: beside FILE (see `report::output::report_dests`).
    pub json: Option<PathBuf>,
    pub png: Option<PathBuf>,
    pub png_size: (u32, u32),
    pub junit: Option<PathBuf>,
    /// `--force`: an explicit --json may replace a live run's summary.json.
    pub force: bool,
    pub quiet: bool,
}

fn usage(message: String) -> Error {
    Error::Usage(message)
}

/// Parses `argv` (the program name first) and the config file, and checks the result.
pub fn parse(argv: Vec<OsString>) -> Result<Command> {
    let cwd = std::env::current_dir().map_err(|e| Error::Io {
        context: "cannot read the working directory".into(),
        source: e,
    })?;
    let root = Cli::command();
    let matches = root
        .clone()
        .try_get_matches_from(&argv)
        .map_err(Error::Cli)?;
    let (command, sub_matches, at) = match matches.subcommand() {
        Some((name, sub)) => {
            let command = root
                .find_subcommand(name)
                .cloned()
                .unwrap_or_else(|| root.clone());
            // The subcommand is the first argument: clap takes no options before it here.
            (command, sub, 2)
        }
        None => (root.clone(), &matches, 1),
    };
    let explicit = sub_matches
        .try_get_one::<PathBuf>("config")
        .ok()
        .flatten()
        .cloned();
    let takes_config = command.get_arguments().any(|a| a.get_id() == "config");
    let file = if takes_config {
        file::discover(explicit.as_deref(), &cwd, &root).map_err(usage)?
    } else {
        None
    };
    let matches = match file {
        Some(file) => {
            let extra = file.args_for(&command, sub_matches);
            let mut merged = argv;
            let at = at.min(merged.len());
            merged.splice(at..at, extra);
            root.try_get_matches_from(merged).map_err(Error::Cli)?
        }
        None => matches,
    };
    let cli = Cli::from_arg_matches(&matches).map_err(Error::Cli)?;
    from_cli(cli)
}

fn from_cli(cli: Cli) -> Result<Command> {
    match cli.command {
        Some(CliCommand::Run(run)) => {
            if run.command.is_empty() {
                return Err(usage(
                    "'run' needs a command after '--', e.g. 'memwatch run -- node app.js'".into(),
                ));
            }
            let target = TargetSpec::Spawn {
                command: run.command,
                grace: run.grace.0,
            };
            watch(target, load_plan(&run.load)?, &run.watch).map(Command::Watch)
        }
        Some(CliCommand::Report(report)) => report_config(report).map(Command::Report),
        Some(CliCommand::Heap(args)) => Ok(Command::Heap(args)),
        Some(CliCommand::Completions { shell }) => Ok(Command::Completions(shell)),
        Some(CliCommand::Man) => Ok(Command::Man),
        None => {
            let pid = cli.pid.ok_or_else(|| {
                usage(
                    "nothing to watch: give '--pid PID' or 'run -- CMD' (see 'memwatch --help')"
                        .into(),
                )
            })?;
            watch(TargetSpec::Attach { pid: pid.0 }, None, &cli.watch).map(Command::Watch)
        }
    }
}

fn watch(target: TargetSpec, load: Option<LoadPlan>, args: &WatchArgs) -> Result<WatchConfig> {
    let sampling = sampling(&args.sampling)?;
    let analysis = analysis(&args.analysis);
    let spawned = matches!(target, TargetSpec::Spawn { .. });
    let config = WatchConfig {
        runtime: runtime(
            &args.runtime,
            spawned && !sampling.tree,
            sampling.tree,
            sampling.duration,
            &analysis,
        )?,
        target,
        load,
        signals: signals(&args.signals, sampling.duration)?,
        analysis,
        limits: limits(&args.gate)?,
        outputs: outputs(&args.output, &args.gate),
        sampling,
        quiet: args.display.quiet,
    };
    let needs_pss = matches!(config.analysis.metric, Metric::Pss | Metric::Uss);
    if needs_pss && config.sampling.pss_interval.is_none() {
        return Err(usage(format!(
            "--metric {} needs --pss, which records it",
            config.analysis.metric
        )));
    }
    check_baseline_metric(&config.limits, &config.analysis)?;
    config.outputs.check()?;
    Ok(config)
}

fn report_config(args: ReportArgs) -> Result<ReportConfig> {
    let analysis = analysis(&args.analysis);
    let limits = limits(&args.gate)?;
    check_baseline_metric(&limits, &analysis)?;
    Ok(ReportConfig {
        file: args.file,
        analysis,
        limits,
        json: args.json,
        png: args.png,
        png_size: (args.png_size.0, args.png_size.1),
        junit: args.gate.junit,
        force: args.force,
        quiet: args.display.quiet,
    })
}

fn load_plan(args: &LoadArgs) -> Result<Option<LoadPlan>> {
    let Some(command) = &args.load else {
        return Ok(None); // clap refuses --ready-port & co. without --load
    };
    if command.trim().is_empty() {
        return Err(usage(
            "--load needs a command, e.g. --load 'node load.js --port 8080'".into(),
        ));
    }
    Ok(Some(LoadPlan {
        command: command.clone(),
        ready_port: args.ready_port,
        ready_delay: args.ready_delay.0,
        cooldown: args.cooldown.0,
    }))
}

fn limits(args: &GateArgs) -> Result<Limits> {
    let baseline = args
        .baseline
        .as_deref()
        .map(Baseline::load)
        .transpose()
        .map_err(usage)?;
    Ok(Limits {
        max_rss: args.max_rss.map(|s| s.0),
        max_growth: args.max_growth,
        max_slope: args.max_slope.map(|r| r.0),
        fail_on_inconclusive: args.fail_on_inconclusive,
        baseline,
        baseline_tolerance_pct: args.baseline_tolerance.0,
    })
}

/// A baseline is only comparable when it judged the same series. With the default
/// `--metric`, the settled series may be judged instead (when there are enough settled
/// samples), so a settled baseline is accepted too.
fn check_baseline_metric(limits: &Limits, a: &AnalysisConfig) -> Result<()> {
    if let Some(baseline) = &limits.baseline {
        let name = if a.settled == SettledUse::Always {
            "settled"
        } else {
            a.metric.name()
        };
        let settled_ok =
            a.settled == SettledUse::Auto && baseline.metric.as_deref() == Some("settled");
        if !settled_ok {
            baseline.check_metric(name).map_err(usage)?;
        }
    }
    Ok(())
}

/// `--runtime`: on by default for a spawned command (memwatch started it, and its
/// inspector gets a free port); opt-in when attaching to someone's live process.
fn runtime(
    args: &RuntimeArgs,
    spawned: bool,
    tree: bool,
    duration: Option<Duration>,
    analysis: &AnalysisConfig,
) -> Result<RuntimeSettings> {
    if tree && args.runtime.is_some_and(|r| r != RuntimeChoice::None) {
        return Err(usage(
            "--runtime asks one process's runtime, and --tree judges the sum over processes: \
             leave one of them out"
                .into(),
        ));
    }
    let choice = args.runtime.unwrap_or(if spawned {
        RuntimeChoice::Auto
    } else {
        RuntimeChoice::None
    });
    let given = |flag: &str| -> Result<()> {
        if choice == RuntimeChoice::None {
            Err(usage(format!(
                "{flag} asks the runtime for its heap: add --runtime node, jvm or auto"
            )))
        } else {
            Ok(())
        }
    };
    let gc = match args.gc_every {
        Some(every) => {
            given("--gc-every")?;
            if every.0 < Duration::from_millis(100) {
                return Err(usage(format!(
                    "--gc-every '{every}' is too often: every GC pauses the program; the least is 100ms"
                )));
            }
            GcSchedule::Every(every.0)
        }
        None => GcSchedule::Adaptive,
    };
    let mut snapshots_at = Vec::new();
    if let Some(n) = args.heap_snapshots {
        given("--heap-snapshots")?;
        let Some(total) = duration else {
            return Err(usage(
                "--heap-snapshots spreads snapshots over the run: give --duration too".into(),
            ));
        };
        let total_s = total.as_secs_f64();
        // The warm-up the analysis leaves out of a run of this length (one function for both).
        let start = analysis.thresholds.warmup.seconds(total_s).min(total_s);
        // The last one early enough to be written before the run ends.
        let end = (total_s - (0.05 * total_s).max(2.0)).max(start);
        for k in 0..n {
            let share = if n == 1 {
                1.0
            } else {
                k as f64 / (n - 1) as f64
            };
            snapshots_at.push(Duration::from_secs_f64(start + share * (end - start)));
        }
    }
    Ok(RuntimeSettings {
        choice,
        gc,
        pause_budget: args.gc_pause_budget.0,
        snapshots_at,
        hint: args.runtime.is_none() && !tree,
    })
}

fn sampling(args: &SamplingArgs) -> Result<Sampling> {
    let interval = args.interval.0;
    if interval < Duration::from_millis(1) {
        return Err(usage(format!(
            "--interval '{}' is too short: the least is 1ms",
            args.interval
        )));
    }
    let duration = args.duration.map(|d| d.0);
    if duration.is_some_and(|d| d.is_zero()) {
        return Err(usage(
            "--duration '0' would take no samples: give e.g. '30s' or leave it out".into(),
        ));
    }
    Ok(Sampling {
        interval,
        duration,
        pss_interval: args.pss.then(|| args.pss_interval.0.max(interval)),
        tree: args.tree,
    })
}

fn signals(args: &SignalArgs, duration: Option<Duration>) -> Result<SignalPlan> {
    let signal = args.signal.0;
    if signal == libc::SIGKILL || signal == libc::SIGSTOP {
        return Err(usage(format!(
            "--signal '{}' cannot be caught: memwatch sends only signals a process can handle",
            args.signal
        )));
    }
    let every = args.signal_every.map(|d| d.0);
    if every.is_some_and(|d| d.is_zero()) {
        return Err(usage("--signal-every must be longer than 0".into()));
    }
    let mut at = args.signal_at.clone().map(|l| l.0).unwrap_or_default();
    at.sort();
    if let (Some(last), Some(d)) = (at.last(), duration)
        && *last > d
    {
        return Err(usage(format!(
            "--signal-at {}: that is after --duration {}",
            humantime::format_duration(*last),
            humantime::format_duration(d)
        )));
    }
    let settle = args.settle.map(|d| d.0);
    let plan = SignalPlan {
        signal,
        every,
        at,
        at_end: args.signal_at_end,
        settle,
        force: args.force_signal,
        dump_dir: args.dump_dir.clone(),
        dump_globs: args.dump_glob.clone(),
        max_dumps: args.max_dumps,
        min_free: args.min_free.0,
    };
    if settle.is_some() && !plan.sends() {
        return Err(usage("--settle needs a signal to settle after: add --signal-every, --signal-at or --signal-at-end".into()));
    }
    if let (Some(s), Some(e)) = (settle, every)
        && s >= e
    {
        return Err(usage(format!(
            "--settle {} must be shorter than --signal-every {}",
            humantime::format_duration(s),
            humantime::format_duration(e)
        )));
    }
    if let Some(dir) = &plan.dump_dir
        && !dir.is_dir()
    {
        return Err(usage(format!(
            "--dump-dir '{}' is not a folder",
            dir.display()
        )));
    }
    Ok(plan)
}

fn analysis(args: &AnalysisArgs) -> AnalysisConfig {
    let (metric, settled) = match args.metric {
        MetricChoice::Settled => (Metric::Rss, SettledUse::Always),
        MetricChoice::Metric(m) => (m, SettledUse::Auto),
    };
    let mut t = Thresholds::default();
    if let Some(w) = args.warmup {
        t.warmup = Warmup::Fixed(w.0.as_secs_f64());
    }
    for slope in &args.min_slope {
        match *slope {
            Slope::BytesPerSecond(b) => t.min_slope_bytes_per_s = b,
            Slope::PercentPerHour(p) => t.min_slope_pct_per_hour = p,
        }
    }
    if let Some(g) = args.min_growth {
        t.min_growth = g;
    }
    if let Some(p) = args.p_value {
        t.p_value = p.0;
    }
    AnalysisConfig {
        metric,
        settled,
        thresholds: t,
    }
}

fn outputs(args: &OutputArgs, gate: &GateArgs) -> OutputPlan {
    OutputPlan {
        dir: args.out.clone(),
        csv: args.csv.clone(),
        json: args.json.clone(),
        png: args.png.clone(),
        junit: gate.junit.clone(),
        png_size: (args.png_size.0, args.png_size.1),
    }
}
