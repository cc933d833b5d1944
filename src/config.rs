//! Raw command-line values checked into a `Config` before any work starts: durations parsed,
//! ranges checked, PIDs positive. Every message names the bad value and what to do.

use crate::analyze::{MinGrowth, Thresholds, Warmup};
use crate::cli::{
    AnalysisArgs, Cli, Command, GateArgs, LoadArgs, OutputArgs, SamplingArgs, SignalArgs, WatchArgs,
};
use crate::config_file::FileConfig;
use crate::error::{Error, Result};
use crate::gate::{Baseline, Limits};
use crate::sample::Metric;
use crate::units::{parse_duration, parse_pct_rate, parse_rate, parse_size};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug)]
pub enum Mode {
    Attach {
        pid: i32,
    },
    Run {
        command: Vec<OsString>,
        grace: Duration,
        load: Option<LoadPlan>,
    },
    Report {
        file: PathBuf,
    },
}

#[derive(Debug)]
pub struct Config {
    pub mode: Mode,
    pub sampling: Sampling,
    pub signals: SignalPlan,
    pub analysis: AnalysisConfig,
    pub gate: GateConfig,
    pub output: OutputPlan,
    pub quiet: bool,
}

/// `--load`: a load generator started once the target is ready; the run ends with it.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// Run with `sh -c`.
    pub command: String,
    pub ready_port: Option<u16>,
    pub ready_delay: Duration,
    pub cooldown: Duration,
}

/// The CI gate beside the verdict: hard limits, baseline, JUnit output.
#[derive(Clone, Debug, Default)]
pub struct GateConfig {
    pub limits: Limits,
    pub junit: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct Sampling {
    pub interval: Duration,
    pub duration: Option<Duration>,
    /// Some when PSS/USS are asked for.
    pub pss_interval: Option<Duration>,
}

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

/// Whether the verdict is judged on the settled (post-signal) samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettledUse {
    /// When there are enough settled samples to decide.
    Auto,
    /// `--metric settled`.
    Always,
}

#[derive(Clone, Debug)]
pub struct AnalysisConfig {
    pub metric: Metric,
    pub settled: SettledUse,
    pub thresholds: Thresholds,
}

/// Where output goes: `None` = the default place, decided once the PID is known.
#[derive(Clone, Debug, Default)]
pub struct OutputPlan {
    pub dir: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub png: Option<PathBuf>,
    /// `--junit`: only checked up front here; written by the gate at the end.
    pub junit: Option<PathBuf>,
    pub png_size: (u32, u32),
}

const DEFAULT_PNG_SIZE: &str = "1280x720";

fn usage(message: String) -> Error {
    Error::Usage(message)
}

impl Config {
    pub fn from_cli(cli: Cli) -> Result<Config> {
        Self::from_cli_unchecked(cli)
            .and_then(check_metric_recorded)
            .and_then(check_baseline_metric)
    }

    fn from_cli_unchecked(mut cli: Cli) -> Result<Config> {
        let cwd = std::env::current_dir().map_err(|e| Error::Io {
            context: "cannot read the working directory".into(),
            source: e,
        })?;
        match &mut cli.command {
            Some(Command::Run(run)) => {
                if let Some(file) = config_file(run.watch.config.config.as_deref(), &cwd)? {
                    overlay_watch(&mut run.watch, &file);
                    overlay_load(&mut run.load, &file);
                    fill(&mut run.grace, &file.grace);
                }
            }
            Some(Command::Report(report)) => {
                if let Some(file) = config_file(report.config.config.as_deref(), &cwd)? {
                    overlay_analysis(&mut report.analysis, &file);
                    overlay_gate(&mut report.gate, &file);
                    fill(&mut report.png_size, &file.png_size);
                    report.display.quiet |= file.quiet.unwrap_or(false);
                }
            }
            Some(Command::Heap(_)) => {}
            None => {
                if let Some(file) = config_file(cli.watch.config.config.as_deref(), &cwd)? {
                    overlay_watch(&mut cli.watch, &file);
                }
            }
        }
        match cli.command {
            Some(Command::Run(run)) => {
                let grace = parse_duration(run.grace.as_deref().unwrap_or("5s"))
                    .map_err(|e| usage(format!("--grace: {e}")))?;
                if run.command.is_empty() {
                    return Err(usage(
                        "'run' needs a command after '--', e.g. 'memwatch run -- node app.js'"
                            .into(),
                    ));
                }
                let sampling = sampling(&run.watch.sampling)?;
                let load = load_plan(&run.load)?;
                Ok(Config {
                    mode: Mode::Run {
                        command: run.command,
                        grace,
                        load,
                    },
                    signals: signals(&run.watch.signals, sampling.duration)?,
                    sampling,
                    analysis: analysis(&run.watch.analysis)?,
                    gate: gate(&run.watch.gate)?,
                    output: output(&run.watch.output, &run.watch.gate)?,
                    quiet: run.watch.display.quiet,
                })
            }
            Some(Command::Report(report)) => Ok(Config {
                mode: Mode::Report { file: report.file },
                sampling: Sampling {
                    interval: Duration::from_secs(1),
                    duration: None,
                    pss_interval: None,
                },
                signals: SignalPlan::default(),
                analysis: analysis(&report.analysis)?,
                gate: gate(&report.gate)?,
                output: OutputPlan {
                    dir: None,
                    csv: None,
                    json: report.json,
                    png: report.png,
                    junit: report.gate.junit.clone(),
                    png_size: png_size(report.png_size.as_deref().unwrap_or(DEFAULT_PNG_SIZE))?,
                },
                quiet: report.display.quiet,
            }),
            // main.rs runs `heap` itself, before any Config.
            Some(Command::Heap(_)) => Err(usage("'heap' takes no watch configuration".into())),
            None => {
                let pid_text = cli.pid.ok_or_else(|| {
                    usage("nothing to watch: give '--pid PID' or 'run -- CMD' (see 'memwatch --help')".into())
                })?;
                let sampling = sampling(&cli.watch.sampling)?;
                Ok(Config {
                    mode: Mode::Attach {
                        pid: parse_pid(&pid_text)?,
                    },
                    signals: signals(&cli.watch.signals, sampling.duration)?,
                    sampling,
                    analysis: analysis(&cli.watch.analysis)?,
                    gate: gate(&cli.watch.gate)?,
                    output: output(&cli.watch.output, &cli.watch.gate)?,
                    quiet: cli.watch.display.quiet,
                })
            }
        }
    }
}

/// `--config FILE`, else `./memwatch.toml` when present.
fn config_file(explicit: Option<&Path>, cwd: &Path) -> Result<Option<FileConfig>> {
    crate::config_file::discover(explicit, cwd)
        .map(|found| found.map(|(_, file)| file))
        .map_err(Error::Usage)
}

/// Fills what the command line left unset from the config file: the command line wins.
fn fill<T: Clone>(cli: &mut Option<T>, file: &Option<T>) {
    if cli.is_none() {
        cli.clone_from(file);
    }
}

fn fill_path(cli: &mut Option<PathBuf>, file: &Option<String>) {
    if cli.is_none() {
        *cli = file.as_ref().map(PathBuf::from);
    }
}

fn overlay_watch(w: &mut WatchArgs, f: &FileConfig) {
    let s = &mut w.sampling;
    fill(&mut s.interval, &f.interval);
    fill(&mut s.duration, &f.duration);
    s.pss |= f.pss.unwrap_or(false);
    fill(&mut s.pss_interval, &f.pss_interval);
    let g = &mut w.signals;
    fill(&mut g.signal, &f.signal);
    fill(&mut g.signal_every, &f.signal_every);
    fill(&mut g.signal_at, &f.signal_at);
    g.signal_at_end |= f.signal_at_end.unwrap_or(false);
    fill(&mut g.settle, &f.settle);
    g.force_signal |= f.force_signal.unwrap_or(false);
    fill_path(&mut g.dump_dir, &f.dump_dir);
    fill(&mut g.dump_glob, &f.dump_glob);
    fill(&mut g.max_dumps, &f.max_dumps);
    fill(&mut g.min_free, &f.min_free);
    overlay_analysis(&mut w.analysis, f);
    overlay_gate(&mut w.gate, f);
    let o = &mut w.output;
    fill_path(&mut o.out, &f.out);
    fill_path(&mut o.csv, &f.csv);
    fill_path(&mut o.json, &f.json);
    fill_path(&mut o.png, &f.png);
    fill(&mut o.png_size, &f.png_size);
    w.display.quiet |= f.quiet.unwrap_or(false);
}

fn overlay_analysis(a: &mut AnalysisArgs, f: &FileConfig) {
    fill(&mut a.metric, &f.metric);
    fill(&mut a.warmup, &f.warmup);
    if a.min_slope.is_empty() {
        a.min_slope = f.min_slopes();
    }
    fill(&mut a.min_growth, &f.min_growth);
    if a.p_value.is_none() {
        a.p_value = f.p_value.as_ref().map(|p| p.0.clone());
    }
}

fn overlay_gate(g: &mut GateArgs, f: &FileConfig) {
    fill(&mut g.max_rss, &f.max_rss);
    fill(&mut g.max_growth, &f.max_growth);
    fill(&mut g.max_slope, &f.max_slope);
    g.fail_on_inconclusive |= f.fail_on_inconclusive.unwrap_or(false);
    fill_path(&mut g.baseline, &f.baseline);
    fill(&mut g.baseline_tolerance, &f.baseline_tolerance);
    fill_path(&mut g.junit, &f.junit);
}

fn overlay_load(l: &mut LoadArgs, f: &FileConfig) {
    fill(&mut l.load, &f.load);
    fill(&mut l.ready_port, &f.ready_port);
    fill(&mut l.ready_delay, &f.ready_delay);
    fill(&mut l.cooldown, &f.cooldown);
}

fn load_plan(args: &LoadArgs) -> Result<Option<LoadPlan>> {
    let dur = |flag: &str, text: &Option<String>| -> Result<Duration> {
        text.as_deref().map_or(Ok(Duration::ZERO), |t| {
            parse_duration(t).map_err(|e| usage(format!("{flag}: {e}")))
        })
    };
    let Some(command) = &args.load else {
        if args.ready_port.is_some() || args.ready_delay.is_some() || args.cooldown.is_some() {
            return Err(usage(
                "--ready-port, --ready-delay and --cooldown go with --load \"CMD\"".into(),
            ));
        }
        return Ok(None);
    };
    if command.trim().is_empty() {
        return Err(usage(
            "--load needs a command, e.g. --load 'node load.js --port 8080'".into(),
        ));
    }
    if args.ready_port == Some(0) {
        return Err(usage(
            "--ready-port '0' is not a port: give the port the target listens on".into(),
        ));
    }
    Ok(Some(LoadPlan {
        command: command.clone(),
        ready_port: args.ready_port,
        ready_delay: dur("--ready-delay", &args.ready_delay)?,
        cooldown: dur("--cooldown", &args.cooldown)?,
    }))
}

fn gate(args: &GateArgs) -> Result<GateConfig> {
    let flag = |name: &'static str| move |e: String| usage(format!("{name}: {e}"));
    let mut limits = Limits {
        max_rss: args
            .max_rss
            .as_deref()
            .map(crate::gate::parse_max_rss)
            .transpose()
            .map_err(flag("--max-rss"))?,
        max_growth: args
            .max_growth
            .as_deref()
            .map(crate::gate::parse_growth_limit)
            .transpose()
            .map_err(flag("--max-growth"))?,
        max_slope: args
            .max_slope
            .as_deref()
            .map(crate::gate::parse_max_slope)
            .transpose()
            .map_err(flag("--max-slope"))?,
        fail_on_inconclusive: args.fail_on_inconclusive,
        ..Limits::default()
    };
    if let Some(t) = &args.baseline_tolerance {
        limits.baseline_tolerance_pct =
            crate::gate::parse_tolerance(t).map_err(flag("--baseline-tolerance"))?;
    }
    if let Some(path) = &args.baseline {
        limits.baseline = Some(Baseline::load(path).map_err(flag("--baseline"))?);
    }
    Ok(GateConfig {
        limits,
        junit: args.junit.clone(),
    })
}

/// PSS and USS exist only when --pss asks for them.
fn check_metric_recorded(config: Config) -> Result<Config> {
    let needs_pss = matches!(config.analysis.metric, Metric::Pss | Metric::Uss);
    if needs_pss
        && config.sampling.pss_interval.is_none()
        && !matches!(config.mode, Mode::Report { .. })
    {
        return Err(usage(format!(
            "--metric {} needs --pss, which records it",
            config.analysis.metric
        )));
    }
    Ok(config)
}

/// A baseline is only comparable when it judged the same series. With the default
/// `--metric`, the settled series may be judged instead (when there are enough settled
/// samples), so a settled baseline is accepted too.
fn check_baseline_metric(config: Config) -> Result<Config> {
    if let Some(baseline) = &config.gate.limits.baseline {
        let a = &config.analysis;
        let name = if a.settled == SettledUse::Always {
            "settled"
        } else {
            a.metric.name()
        };
        let settled_ok =
            a.settled == SettledUse::Auto && baseline.metric.as_deref() == Some("settled");
        if !settled_ok {
            baseline.check_metric(name).map_err(Error::Usage)?;
        }
    }
    Ok(config)
}

/// A PID must be a positive number: 0 and negatives mean process groups or "everything" to
/// kill(2), so they are refused outright.
pub fn parse_pid(text: &str) -> Result<i32> {
    match text.trim().parse::<i64>() {
        Ok(pid) if pid > 0 && pid <= i64::from(i32::MAX) => Ok(pid as i32),
        Ok(pid) if pid <= 0 => Err(usage(format!(
            "--pid '{text}': a PID must be positive ({pid} would mean a process group or every process)"
        ))),
        _ => Err(usage(format!(
            "--pid '{text}' is not a PID: give the number 'ps' shows, e.g. --pid 4242"
        ))),
    }
}

fn sampling(args: &SamplingArgs) -> Result<Sampling> {
    let interval_text = args.interval.as_deref().unwrap_or("1s");
    let interval = parse_duration(interval_text).map_err(|e| usage(format!("--interval: {e}")))?;
    if interval < Duration::from_millis(1) {
        return Err(usage(format!(
            "--interval '{interval_text}' is too short: the least is 1ms"
        )));
    }
    let duration = match &args.duration {
        Some(d) => {
            let d = parse_duration(d).map_err(|e| usage(format!("--duration: {e}")))?;
            if d.is_zero() {
                return Err(usage(
                    "--duration '0' would take no samples: give e.g. '30s' or leave it out".into(),
                ));
            }
            Some(d)
        }
        None => None,
    };
    let pss_interval = if args.pss {
        let d = parse_duration(args.pss_interval.as_deref().unwrap_or("10s"))
            .map_err(|e| usage(format!("--pss-interval: {e}")))?;
        Some(d.max(interval))
    } else {
        None
    };
    Ok(Sampling {
        interval,
        duration,
        pss_interval,
    })
}

fn signals(args: &SignalArgs, duration: Option<Duration>) -> Result<SignalPlan> {
    let dur =
        |flag: &str, text: &str| parse_duration(text).map_err(|e| usage(format!("{flag}: {e}")));
    let signal_text = args.signal.as_deref().unwrap_or("SIGUSR2");
    let signal =
        crate::signal::parse_signal(signal_text).map_err(|e| usage(format!("--signal: {e}")))?;
    if signal == libc::SIGKILL || signal == libc::SIGSTOP {
        return Err(usage(format!(
            "--signal '{signal_text}' cannot be caught: memwatch sends only signals a process can handle"
        )));
    }
    let every = args
        .signal_every
        .as_deref()
        .map(|t| dur("--signal-every", t))
        .transpose()?;
    if every.is_some_and(|d| d.is_zero()) {
        return Err(usage("--signal-every must be longer than 0".into()));
    }
    let mut at = match &args.signal_at {
        Some(list) => list
            .split(',')
            .map(|t| dur("--signal-at", t))
            .collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    at.sort();
    if let (Some(last), Some(d)) = (at.last(), duration) {
        if *last > d {
            return Err(usage(format!(
                "--signal-at {}: that is after --duration {}",
                humantime::format_duration(*last),
                humantime::format_duration(d)
            )));
        }
    }
    let settle = args
        .settle
        .as_deref()
        .map(|t| dur("--settle", t))
        .transpose()?;
    let plan = SignalPlan {
        signal,
        every,
        at,
        at_end: args.signal_at_end,
        settle,
        force: args.force_signal,
        dump_dir: args.dump_dir.clone(),
        dump_globs: args
            .dump_glob
            .clone()
            .unwrap_or_else(|| crate::dump::DEFAULT_GLOBS.to_string()),
        max_dumps: args.max_dumps.unwrap_or(5),
        min_free: parse_size(args.min_free.as_deref().unwrap_or("1GiB"))
            .map_err(|e| usage(format!("--min-free: {e}")))?,
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

fn analysis(args: &AnalysisArgs) -> Result<AnalysisConfig> {
    let metric_text = args.metric.as_deref().unwrap_or("rss");
    let (metric, settled) = if metric_text == "settled" {
        (Metric::Rss, SettledUse::Always)
    } else {
        let metric = Metric::from_name(metric_text).ok_or_else(|| {
            let names: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
            usage(format!(
                "--metric '{metric_text}' is not a metric: use one of {}, settled",
                names.join(", ")
            ))
        })?;
        (metric, SettledUse::Auto)
    };
    let mut t = Thresholds::default();
    if let Some(w) = &args.warmup {
        t.warmup = Warmup::Fixed(
            parse_duration(w)
                .map_err(|e| usage(format!("--warmup: {e}")))?
                .as_secs_f64(),
        );
    }
    for slope in &args.min_slope {
        if slope.contains('%') {
            t.min_slope_pct_per_hour =
                parse_pct_rate(slope).map_err(|e| usage(format!("--min-slope: {e}")))?;
        } else {
            t.min_slope_bytes_per_s =
                parse_rate(slope).map_err(|e| usage(format!("--min-slope: {e}")))?;
        }
    }
    if let Some(g) = &args.min_growth {
        t.min_growth = match g.trim().strip_suffix('%') {
            Some(pct) => match pct.trim().parse::<f64>() {
                Ok(p) if p.is_finite() && p >= 0.0 => MinGrowth::Percent(p),
                _ => {
                    return Err(usage(format!(
                        "--min-growth '{g}' is not a percentage: try '2%'"
                    )));
                }
            },
            None => MinGrowth::Bytes(
                parse_size(g).map_err(|e| usage(format!("--min-growth: {e}")))? as f64,
            ),
        };
    }
    if let Some(p) = &args.p_value {
        t.p_value = match p.trim().parse::<f64>() {
            Ok(p) if p > 0.0 && p < 1.0 => p,
            _ => {
                return Err(usage(format!(
                    "--p-value '{p}' must be a number between 0 and 1, e.g. 0.01"
                )));
            }
        };
    }
    Ok(AnalysisConfig {
        metric,
        settled,
        thresholds: t,
    })
}

fn output(args: &OutputArgs, gate: &GateArgs) -> Result<OutputPlan> {
    Ok(OutputPlan {
        dir: args.out.clone(),
        csv: args.csv.clone(),
        json: args.json.clone(),
        png: args.png.clone(),
        junit: gate.junit.clone(),
        png_size: png_size(args.png_size.as_deref().unwrap_or(DEFAULT_PNG_SIZE))?,
    })
}

fn png_size(text: &str) -> Result<(u32, u32)> {
    let bad = || {
        usage(format!(
            "--png-size '{text}' is not WIDTHxHEIGHT between 200x150 and 8000x8000, e.g. 1280x720"
        ))
    };
    let (w, h) = text.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if !(200..=8000).contains(&w) || !(150..=8000).contains(&h) {
        return Err(bad());
    }
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids() {
        assert_eq!(parse_pid("4242").expect("ok"), 4242);
        for bad in ["0", "-1", "abc", "", "99999999999"] {
            assert!(parse_pid(bad).is_err(), "{bad}");
        }
        assert!(
            parse_pid("0")
                .expect_err("0")
                .to_string()
                .contains("positive")
        );
    }

    #[test]
    fn png_sizes() {
        assert_eq!(png_size("1280x720").expect("ok"), (1280, 720));
        for bad in ["1280", "0x0", "axb", "100000x10"] {
            assert!(png_size(bad).is_err(), "{bad}");
        }
    }
}
