//! Two stages, as ripgrep does: the raw values clap parsed (`cli.rs`, with the config file's
//! options turned into arguments for the same parser) are checked into one validated
//! configuration per command, before any work starts: ranges checked, options that go
//! together checked together. Every message names the bad value and what to do.

pub mod file;
pub mod machine;

use crate::analyze::MIN_SAMPLES;
use crate::analyze::{Thresholds, Warmup};
use crate::cli::{
    AnalysisArgs, Cli, Command as CliCommand, FindArgs, GateArgs, HeapArgs, LoadArgs, OutputArgs,
    PrometheusArgs, ReportArgs, RuntimeArgs, SamplingArgs, ServiceArgs, Shell, SignalArgs,
    WatchArgs,
};
use crate::error::{Error, Result};
use crate::find::{Field, Pattern};
use crate::gate::{Baseline, Limits};
use crate::judge::{AnalysisConfig, SettledUse};
use crate::load::LoadPlan;
use crate::options::{CgroupSpec, Dur, MetricChoice, RuntimeChoice, Slope, TreeTotalChoice};
use crate::report::output::OutputPlan;
use crate::report::prometheus::PrometheusPlan;
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
    /// Watch every process of the machine (`--all`).
    Machine(machine::MachineConfig),
    /// Re-analyse a recording (`report`).
    Report(ReportConfig),
    /// `memwatch heap`: reads files only; its options need no checks beyond clap's.
    Heap(HeapArgs),
    Completions(Shell),
    Man(crate::cli::ManArgs),
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
    /// `--name` / `--cmdline`: the process found by a pattern.
    Find(FindSpec),
}

/// A target found by name or command line.
#[derive(Debug)]
pub struct FindSpec {
    pub pattern: Pattern,
    /// `--all-matches`: every match, judged on their sum.
    pub all_matches: bool,
    /// `--follow`: a new match after the target exits is watched on (a restart).
    pub follow: bool,
}

/// Whole services: the tree's total and the memory cgroup watched.
#[derive(Debug)]
pub struct Services {
    pub cgroup: Option<CgroupChoice>,
    pub tree_total: TreeTotalChoice,
    /// `--metric cgroup`: the cgroup's memory is the series judged.
    pub judge_cgroup: bool,
}

/// `--cgroup [PATH]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupChoice {
    /// The target's own memory cgroup.
    Target,
    Path(PathBuf),
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
    /// `--prometheus-textfile`, `--prometheus-listen`.
    pub prometheus: PrometheusPlan,
    pub quiet: bool,
    pub services: Services,
    /// `--native`: how the target's page faults are sampled; `None` without it.
    pub native: Option<crate::native::NativeOptions>,
}

#[derive(Debug)]
pub struct ReportConfig {
    pub file: PathBuf,
    pub analysis: AnalysisConfig,
    /// `--metric cgroup`: judge the recording's cgroup rows.
    pub judge_cgroup: bool,
    pub limits: Limits,
    /// `None`: beside FILE (see `report::output::report_dests`).
    pub json: Option<PathBuf>,
    pub png: Option<PathBuf>,
    /// `--no-png`: no chart at all.
    pub no_png: bool,
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
        Some(CliCommand::Man(args)) => Ok(Command::Man(args)),
        None if cli.all => machine::config(&cli.watch, &cli.machine, cli.find.name.as_deref())
            .map(Command::Machine),
        None => {
            let target = match (find_spec(&cli.find)?, cli.pid) {
                (Some(find), _) => TargetSpec::Find(find),
                (None, Some(pid)) => TargetSpec::Attach { pid: pid.0 },
                (None, None) => {
                    return Err(usage(
                        "nothing to watch: give '--pid PID', '--name REGEX', 'run -- CMD' or \
                         '--all' (see 'memwatch --help')"
                            .into(),
                    ));
                }
            };
            watch(target, None, &cli.watch).map(Command::Watch)
        }
    }
}

fn watch(target: TargetSpec, load: Option<LoadPlan>, args: &WatchArgs) -> Result<WatchConfig> {
    let sampling = sampling(&args.sampling)?;
    let analysis = analysis(&args.analysis);
    let spawned = matches!(target, TargetSpec::Spawn { .. });
    let (all_matches, follow) = match &target {
        TargetSpec::Find(f) => (f.all_matches, f.follow),
        _ => (false, false),
    };
    let summed = sampling.tree || all_matches;
    let services = services(
        &args.services,
        &args.analysis,
        &sampling,
        spawned,
        all_matches,
    )?;
    let mut config = WatchConfig {
        runtime: runtime(
            &args.runtime,
            spawned && !summed,
            summed,
            sampling.duration,
            &analysis,
        )?,
        target,
        load,
        signals: signals(&args.signals, sampling.duration)?,
        analysis,
        limits: limits(&args.gate)?,
        outputs: outputs(&args.output, &args.gate)?,
        native: native(&args.sampling, summed)?,
        prometheus: PrometheusPlan::default(),
        sampling,
        quiet: args.display.quiet,
        services,
    };
    if follow {
        check_follow(&config)?;
    }
    if config.limits.min_time_to_limit_s.is_some() && config.services.cgroup.is_none() {
        return Err(usage(
            "--min-time-to-limit is about a cgroup's limit: add --cgroup (the target's own) or \
             --cgroup PATH"
                .into(),
        ));
    }
    check_metric(&config, summed)?;
    check_timing(&config.sampling, &config.analysis)?;
    if config.services.judge_cgroup {
        if let Some(baseline) = &config.limits.baseline {
            baseline.check_metric("cgroup").map_err(usage)?;
        }
    } else {
        check_baseline_metric(&config.limits, &config.analysis)?;
    }
    config.outputs.check()?;
    let prometheus = prometheus(&args.prometheus, &config.outputs)?;
    Ok(WatchConfig {
        prometheus,
        ..config
    })
}

/// `--prometheus-*`: the textfile checked (a `.prom` file memwatch may replace, none of the
/// run's other outputs).
fn prometheus(args: &PrometheusArgs, outputs: &OutputPlan) -> Result<PrometheusPlan> {
    let plan = PrometheusPlan {
        textfile: args.prometheus_textfile.clone(),
        listen: args.prometheus_listen.map(|l| l.0),
        top: args.prometheus_top as usize,
    };
    let others: Vec<(&str, &std::path::Path)> = [
        ("--csv", &outputs.csv),
        ("--json", &outputs.json),
        ("--png", &outputs.png),
        ("--junit", &outputs.junit),
    ]
    .into_iter()
    .filter_map(|(flag, p)| p.as_deref().map(|p| (flag, p)))
    .collect();
    plan.check(&others).map_err(usage)?;
    Ok(plan)
}

/// `--name`/`--cmdline` and what goes with them; `None` without a pattern.
fn find_spec(args: &FindArgs) -> Result<Option<FindSpec>> {
    let pattern = match (&args.name, &args.cmdline) {
        (Some(name), _) => Pattern::new(Field::Name, name),
        (None, Some(line)) => Pattern::new(Field::Cmdline, line),
        (None, None) => {
            for (given, flag) in [
                (args.follow, "--follow"),
                (args.all_matches, "--all-matches"),
            ] {
                if given {
                    return Err(usage(format!(
                        "{flag} finds processes by a pattern: give --name REGEX or --cmdline REGEX"
                    )));
                }
            }
            return Ok(None);
        }
    }
    .map_err(usage)?;
    Ok(Some(FindSpec {
        pattern,
        all_matches: args.all_matches,
        follow: args.follow,
    }))
}

/// `--follow` watches one process after another: what is bound to one process is refused.
fn check_follow(config: &WatchConfig) -> Result<()> {
    if config.signals.sends() {
        return Err(usage(
            "--follow watches each new process that matches, and signals go to one process: \
             leave out --signal-every, --signal-at and --signal-at-end"
                .into(),
        ));
    }
    if config.native.is_some() {
        return Err(usage(
            "--follow watches each new process that matches, and --native samples one \
             process's page faults: leave one of them out"
                .into(),
        ));
    }
    if matches!(
        config.runtime.choice,
        RuntimeChoice::Node | RuntimeChoice::Jvm
    ) {
        return Err(usage(
            "--follow watches each new process that matches, and --runtime asks one process's \
             runtime: leave one of them out"
                .into(),
        ));
    }
    Ok(())
}

/// `--cgroup`, `--tree-total` and `--metric cgroup`, checked together.
fn services(
    args: &ServiceArgs,
    analysis: &AnalysisArgs,
    sampling: &Sampling,
    spawned: bool,
    all_matches: bool,
) -> Result<Services> {
    let cgroup = args.cgroup.as_ref().map(|c| match c {
        CgroupSpec::Target => CgroupChoice::Target,
        CgroupSpec::Path(p) => CgroupChoice::Path(p.clone()),
    });
    let judge_cgroup = analysis.metric == MetricChoice::Cgroup;
    if judge_cgroup && cgroup.is_none() {
        return Err(usage(
            "--metric cgroup judges the memory cgroup memwatch reads: add --cgroup (the \
             target's own) or --cgroup PATH"
                .into(),
        ));
    }
    let summed = sampling.tree || all_matches;
    if args.tree_total != TreeTotalChoice::Auto && !summed {
        return Err(usage(format!(
            "--tree-total {} says what a tree's total is: add --tree",
            args.tree_total
        )));
    }
    if args.tree_total == TreeTotalChoice::Cgroup {
        if !spawned || all_matches {
            return Err(usage(
                "--tree-total cgroup: memwatch can only put a command it starts into a cgroup of \
                 its own: use 'run --tree', or --tree-total pss"
                    .into(),
            ));
        }
        if cgroup.is_some() {
            return Err(usage(
                "--tree-total cgroup and --cgroup: memwatch reads one cgroup; leave out \
                 --cgroup, or use --tree-total pss"
                    .into(),
            ));
        }
    }
    Ok(Services {
        cgroup,
        tree_total: args.tree_total,
        judge_cgroup,
    })
}

/// `--native`; `summed`: a sum over processes is judged (`--tree`, `--all-matches`).
fn native(args: &SamplingArgs, summed: bool) -> Result<Option<crate::native::NativeOptions>> {
    let Some(period) = args.native else {
        return Ok(None);
    };
    if summed {
        return Err(usage(
            "--native samples the page faults of one process, and --tree (or --all-matches) \
             judges a sum over processes: use one or the other"
                .into(),
        ));
    }
    Ok(Some(crate::native::NativeOptions {
        period: period.0,
        ..Default::default()
    }))
}

fn report_config(args: ReportArgs) -> Result<ReportConfig> {
    let analysis = analysis(&args.analysis);
    let limits = limits(&args.gate)?;
    let judge_cgroup = args.analysis.metric == MetricChoice::Cgroup;
    if judge_cgroup {
        if let Some(baseline) = &limits.baseline {
            baseline.check_metric("cgroup").map_err(usage)?;
        }
    } else {
        check_baseline_metric(&limits, &analysis)?;
    }
    if args.png.as_deref().is_some_and(|p| p.as_os_str() == "-") {
        return Err(png_to_stdout());
    }
    Ok(ReportConfig {
        file: args.file,
        analysis,
        judge_cgroup,
        limits,
        json: args.json,
        png: args.png,
        no_png: args.no_png,
        png_size: (args.png_size.0, args.png_size.1),
        junit: args.gate.junit,
        force: args.force,
        quiet: args.quiet,
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
    if args.ready_timeout.0.is_zero() {
        return Err(usage(
            "--ready-timeout must be longer than 0: it is how long to wait for --ready-port".into(),
        ));
    }
    Ok(Some(LoadPlan {
        command: command.clone(),
        ready_port: args.ready_port,
        ready_timeout: args.ready_timeout.0,
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
        min_time_to_limit_s: args.min_time_to_limit.map(|d| d.0.as_secs_f64()),
    })
}

/// The series to judge is one the run will record: every mistake found before the run
/// starts, not after it.
/// `summed`: a sum over processes is judged (`--tree`, `--all-matches`).
fn check_metric(config: &WatchConfig, summed: bool) -> Result<()> {
    let metric = config.analysis.metric;
    if config.analysis.settled == SettledUse::Always && config.signals.settle.is_none() {
        return Err(usage(
            "--metric settled judges the samples taken --settle after each signal: add --signal-every DUR --settle DUR (e.g. --signal-every 10s --settle 2s)"
                .into(),
        ));
    }
    if matches!(metric, Metric::Pss | Metric::Uss) && config.sampling.pss_interval.is_none() {
        return Err(usage(format!(
            "--metric {metric} needs --pss, which records it"
        )));
    }
    if metric.is_managed_heap() && config.runtime.choice == RuntimeChoice::None {
        return Err(usage(format!(
            "--metric {metric} is read from the program's runtime: add --runtime node, jvm or auto{}",
            if summed {
                " (not with --tree or --all-matches, which judge a sum over processes)"
            } else {
                ""
            }
        )));
    }
    if metric == Metric::Hwm && summed {
        return Err(usage(
            "--metric hwm with --tree or --all-matches: the total of peaks reached at different times is no peak, so the total has none; judge rss (or hwm of one process)"
                .into(),
        ));
    }
    Ok(())
}

/// The most memwatch waits between samples, and the longest run it plans.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// A run planned with --duration takes at least `MIN_SAMPLES` samples after its warm-up,
/// or it could never give a verdict: refused at the start, saying what would.
fn check_timing(sampling: &Sampling, analysis: &AnalysisConfig) -> Result<()> {
    let Some(duration) = sampling.duration else {
        return Ok(());
    };
    let (d, i) = (duration.as_secs_f64(), sampling.interval.as_secs_f64());
    let warmup = |d: f64| match analysis.thresholds.warmup {
        Warmup::Auto => crate::analyze::auto_warmup_s(d),
        Warmup::Fixed(w) => w,
    };
    let w = warmup(d);
    let need = MIN_SAMPLES as f64;
    if let Warmup::Fixed(_) = analysis.thresholds.warmup
        && w >= d
    {
        return Err(usage(format!(
            "--warmup {} leaves nothing of --duration {} to judge: give a --warmup shorter than the run, e.g. '{}', or leave it out (automatic)",
            Dur(Duration::from_secs_f64(w)),
            Dur(duration),
            Dur(Duration::from_secs_f64(d / 5.0)),
        )));
    }
    // The samples after the warm-up: one at its end, then one per interval.
    let after = ((d - w) / i).floor() + 1.0;
    if after >= need {
        return Ok(());
    }
    // The shortest run that would be judged at this interval, to the second.
    let mut enough = d.max(i).ceil();
    while ((enough - warmup(enough)) / i).floor() + 1.0 < need {
        enough += (enough / 8.0).ceil();
    }
    if enough >= 600.0 {
        enough = (enough / 60.0).ceil() * 60.0; // whole minutes read better
    }
    Err(usage(format!(
        "--duration {} at --interval {} gives {} after the {} warm-up, and memwatch needs at least {MIN_SAMPLES} there to judge: give --duration {} or more, or an --interval of at most {}",
        Dur(duration),
        Dur(sampling.interval),
        crate::units::Count(after.max(0.0) as u64, "sample"),
        Dur(Duration::from_secs_f64(w)),
        Dur(Duration::from_secs_f64(enough)),
        // To the millisecond below, so that it is enough.
        Dur(
            Duration::from_millis(((d - w) / (need - 1.0) * 1e3).floor().max(1.0) as u64)
                .min(sampling.interval)
        ),
    )))
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
    if interval > MAX_INTERVAL {
        return Err(usage(format!(
            "--interval '{}' is too long: the most is 24h",
            args.interval
        )));
    }
    let duration = args.duration.map(|d| d.0);
    if duration.is_some_and(|d| d.is_zero()) {
        return Err(usage(
            "--duration '0' would take no samples: give e.g. '30s' or leave it out".into(),
        ));
    }
    if let Some(d) = args.duration.filter(|d| d.0 > MAX_DURATION) {
        return Err(usage(format!(
            "--duration '{d}' is too long: the most is 366 days; leave it out to watch until \
             the target exits or Ctrl-C"
        )));
    }
    Ok(Sampling {
        interval,
        duration,
        pss_interval: args.pss.then(|| args.pss_interval.0.max(interval)),
        tree: args.tree,
        tree_pss_interval: args.pss_interval.0.max(interval),
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
        // The cgroup's rows, their working set in the rss column.
        MetricChoice::Cgroup => (Metric::Rss, SettledUse::Auto),
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

fn png_to_stdout() -> Error {
    usage(
        "--png '-': the chart is a binary PNG and is not written to stdout ('-' is for --csv \
         and --json); give a file name"
            .into(),
    )
}

fn outputs(args: &OutputArgs, gate: &GateArgs) -> Result<OutputPlan> {
    if args.png.as_deref().is_some_and(|p| p.as_os_str() == "-") {
        return Err(png_to_stdout());
    }
    Ok(OutputPlan {
        dir: args.out.clone(),
        csv: args.csv.clone(),
        json: args.json.clone(),
        png: args.png.clone(),
        junit: gate.junit.clone(),
        png_size: (args.png_size.0, args.png_size.1),
        dir_existed: false,
    })
}
