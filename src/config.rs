//! Raw command-line values checked into a `Config` before any work starts: durations parsed,
//! ranges checked, PIDs positive. Every message names the bad value and what to do.

use crate::analyze::{MinGrowth, Thresholds, Warmup};
use crate::cli::{AnalysisArgs, Cli, Command, OutputArgs, SamplingArgs};
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

#[derive(Clone, Debug)]
pub struct AnalysisConfig {
    pub metric: Metric,
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
                    analysis: analysis(&cli.watch.analysis)?,
                    output: output(&cli.watch.output)?,
                    quiet: cli.watch.display.quiet,
                })
            }
        }
    }
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

fn analysis(args: &AnalysisArgs) -> Result<AnalysisConfig> {
    let metric = Metric::from_name(&args.metric).ok_or_else(|| {
        let names: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
        usage(format!(
            "--metric '{}' is not a metric: use one of {}",
            args.metric,
            names.join(", ")
        ))
    })?;
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
