//! Raw command-line values checked into a `Config` before any work starts: durations parsed,
//! ranges checked, PIDs positive. Every message names the bad value and what to do.

use crate::analyze::{MinGrowth, Thresholds, Warmup};
use crate::cli::{AnalysisArgs, Cli, Command, OutputArgs, SamplingArgs, SignalArgs};
use crate::error::{Error, Result};
use crate::sample::Metric;
use crate::units::{parse_duration, parse_pct_rate, parse_rate, parse_size};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug)]
pub enum Mode {
    Attach {
        pid: i32,
    },
    Run {
        command: Vec<OsString>,
        grace: Duration,
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
    pub output: OutputPlan,
    pub quiet: bool,
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
    pub png_size: (u32, u32),
}

fn usage(message: String) -> Error {
    Error::Usage(message)
}

impl Config {
    pub fn from_cli(cli: Cli) -> Result<Config> {
        Self::from_cli_unchecked(cli).and_then(check_metric_recorded)
    }

    fn from_cli_unchecked(cli: Cli) -> Result<Config> {
        match cli.command {
            Some(Command::Run(run)) => {
                let grace =
                    parse_duration(&run.grace).map_err(|e| usage(format!("--grace: {e}")))?;
                if run.command.is_empty() {
                    return Err(usage(
                        "'run' needs a command after '--', e.g. 'memwatch run -- node app.js'"
                            .into(),
                    ));
                }
                Ok(Config {
                    mode: Mode::Run {
                        command: run.command,
                        grace,
                    },
                    sampling: sampling(&run.watch.sampling)?,
                    signals: signals(&run.watch.signals, &run.watch.sampling)?,
                    analysis: analysis(&run.watch.analysis)?,
                    output: output(&run.watch.output)?,
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
                output: OutputPlan {
                    dir: None,
                    csv: None,
                    json: report.json,
                    png: report.png,
                    png_size: png_size(&report.png_size)?,
                },
                quiet: report.display.quiet,
            }),
            None => {
                let pid_text = cli.pid.ok_or_else(|| {
                    usage("nothing to watch: give '--pid PID' or 'run -- CMD' (see 'memwatch --help')".into())
                })?;
                Ok(Config {
                    mode: Mode::Attach {
                        pid: parse_pid(&pid_text)?,
                    },
                    sampling: sampling(&cli.watch.sampling)?,
                    signals: signals(&cli.watch.signals, &cli.watch.sampling)?,
                    analysis: analysis(&cli.watch.analysis)?,
                    output: output(&cli.watch.output)?,
                    quiet: cli.watch.display.quiet,
                })
            }
        }
    }
}

/// PSS and USS exist only when --pss asks for them.
fn check_metric_recorded(config: Config) -> Result<Config> {
    let needs_pss = matches!(config.analysis.metric, Metric::Pss | Metric::Uss);
    if needs_pss && config.sampling.pss_interval.is_none() && !matches!(config.mode, Mode::Report { .. }) {
        return Err(usage(format!("--metric {} needs --pss, which records it", config.analysis.metric)));
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
    let interval = parse_duration(&args.interval).map_err(|e| usage(format!("--interval: {e}")))?;
    if interval < Duration::from_millis(1) {
        return Err(usage(format!(
            "--interval '{}' is too short: the least is 1ms",
            args.interval
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
        let d = parse_duration(&args.pss_interval)
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

fn signals(args: &SignalArgs, sampling_args: &SamplingArgs) -> Result<SignalPlan> {
    let dur = |flag: &str, text: &str| parse_duration(text).map_err(|e| usage(format!("{flag}: {e}")));
    let signal = crate::signal::parse_signal(&args.signal).map_err(|e| usage(format!("--signal: {e}")))?;
    if signal == libc::SIGKILL || signal == libc::SIGSTOP {
        return Err(usage(format!("--signal '{}' cannot be caught: memwatch sends only signals a process can handle", args.signal)));
    }
    let every = args.signal_every.as_deref().map(|t| dur("--signal-every", t)).transpose()?;
    if every.is_some_and(|d| d.is_zero()) {
        return Err(usage("--signal-every must be longer than 0".into()));
    }
    let mut at = match &args.signal_at {
        Some(list) => list.split(',').map(|t| dur("--signal-at", t)).collect::<Result<Vec<_>>>()?,
        None => Vec::new(),
    };
    at.sort();
    if let (Some(last), Some(d)) = (at.last(), sampling_args.duration.as_deref()) {
        let d = dur("--duration", d)?;
        if *last > d {
            return Err(usage(format!("--signal-at {}: that is after --duration {}", humantime::format_duration(*last), humantime::format_duration(d))));
        }
    }
    let settle = args.settle.as_deref().map(|t| dur("--settle", t)).transpose()?;
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
        min_free: parse_size(&args.min_free).map_err(|e| usage(format!("--min-free: {e}")))?,
    };
    if settle.is_some() && !plan.sends() {
        return Err(usage("--settle needs a signal to settle after: add --signal-every, --signal-at or --signal-at-end".into()));
    }
    if let (Some(s), Some(e)) = (settle, every)
        && s >= e
    {
        return Err(usage(format!("--settle {} must be shorter than --signal-every {}", humantime::format_duration(s), humantime::format_duration(e))));
    }
    if let Some(dir) = &plan.dump_dir
        && !dir.is_dir()
    {
        return Err(usage(format!("--dump-dir '{}' is not a folder", dir.display())));
    }
    Ok(plan)
}

fn analysis(args: &AnalysisArgs) -> Result<AnalysisConfig> {
    let (metric, settled) = if args.metric == "settled" {
        (Metric::Rss, SettledUse::Always)
    } else {
        let metric = Metric::from_name(&args.metric).ok_or_else(|| {
            let names: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
            usage(format!("--metric '{}' is not a metric: use one of {}, settled", args.metric, names.join(", ")))
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

fn output(args: &OutputArgs) -> Result<OutputPlan> {
    Ok(OutputPlan {
        dir: args.out.clone(),
        csv: args.csv.clone(),
        json: args.json.clone(),
        png: args.png.clone(),
        png_size: png_size(&args.png_size)?,
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
