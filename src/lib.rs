//! memwatch: finds memory growth in running Linux processes.
//!
//! Data flows one way: target -> sampler -> samples (a `Recording`) -> analyser -> reporters.

pub mod analyze;
pub mod cli;
pub mod config;
pub mod config_file;
pub mod dump;
pub mod error;
pub mod gate;
pub mod heap;
pub mod interrupt;
pub mod load;
pub mod recording;
pub mod report;
pub mod sample;
pub mod signal;
pub mod target;
pub mod units;
pub mod watch;

pub use error::{Error, Result};
pub use recording::{Event, EventKind, Recording};

use analyze::{Analysis, Verdict};
use config::{AnalysisConfig, Config, Mode, SettledUse};
use report::csv::CsvWriter;
use report::live::{LiveMode, LiveView};
use report::output::{Dest, Outputs, local_stamp, write_atomic};
use report::summary::{Files, SourceSummary, Summary, TargetSummary};
use std::path::Path;
use target::{Ending, Target, TargetEnd};
use units::{Bytes, Delta, Elapsed};
use watch::{Sinks, StopReason};

/// Runs memwatch as configured and returns the process exit code (see `cli::EXIT_CODES`).
pub fn run(config: Config) -> Result<u8> {
    match &config.mode {
        Mode::Attach { .. } | Mode::Run { .. } => watch_target(&config),
        Mode::Report { file } => report_file(&config, file),
    }
}

fn watch_target(config: &Config) -> Result<u8> {
    let proc_root = Path::new("/proc");
    let with_pss = config.sampling.pss_interval.is_some();
    // Before any thread or child exists (children get their mask back in Target::spawn).
    let interrupts = interrupt::Interrupts::install().map_err(|e| Error::Io {
        context: "cannot set up signal handling".into(),
        source: e,
    })?;
    config.output.precheck()?;

    let (mut target, mut reader) = match &config.mode {
        Mode::Attach { pid } => Target::attach(proc_root, *pid, with_pss)?,
        Mode::Run { command, .. } => Target::spawn(proc_root, command, with_pss)?,
        Mode::Report { .. } => unreachable!("handled by run"),
    };
    let first = reader.read_status();
    target.check_first_read(&first)?;
    let plan = &config.signals;
    // An attached process must already catch the signal: refuse before anything is written.
    // (A spawned command gets a few seconds to install its handler; see watch.rs.)
    if plan.sends()
        && !plan.force
        && !target.is_child()
        && !target.catches(&mut reader, plan.signal)?
    {
        return Err(Error::SignalNotCaught {
            pid: target.pid,
            name: target.name.clone(),
            signal: signal::signal_name(plan.signal),
        });
    }
    let outputs = config.output.resolve(target.pid, &local_stamp());
    let csv = outputs.create_csv().and_then(|out| {
        CsvWriter::new(out).map_err(|source| Error::Output {
            path: outputs.csv.display().into(),
            source,
        })
    });
    let csv = match csv {
        Ok(csv) => csv,
        Err(e) => {
            // Our own child must not outlive a failed start.
            if target.is_child() {
                let _ = target.signal(libc::SIGKILL);
                target.end();
            }
            return Err(e);
        }
    };
    let live_mode = LiveMode::detect(config.quiet);
    let mut sinks = Sinks {
        csv,
        live: LiveView::new(live_mode),
    };

    let result = match first {
        Ok(first) => {
            let load = match &config.mode {
                Mode::Run { load, .. } => load.as_ref(),
                _ => None,
            };
            let mut keep = vec![
                sample::Metric::Rss,
                sample::Metric::Anon,
                config.analysis.metric,
            ];
            if with_pss {
                keep.extend([sample::Metric::Pss, sample::Metric::Uss]);
            }
            let run = watch::Plan {
                sampling: &config.sampling,
                signals: plan,
                load,
                keep: &keep,
            };
            watch::watch(&target, &mut reader, first, &run, &interrupts, &mut sinks)
        }
        // A spawned command that is already gone: nothing to sample.
        Err(_) => Ok(watch::WatchResult {
            recording: Recording::default(),
            missed: 0,
            stop: StopReason::TargetExited,
            dumps: Vec::new(),
            load: None,
        }),
    };
    sinks.live.finish();
    let result = match result {
        Ok(result) => result,
        Err(e) => {
            // The samples so far are in the CSV; a spawned command is not left running.
            if let Mode::Run { grace, .. } = &config.mode {
                target.mark_stopped_by_memwatch();
                target.stop(*grace);
                target.end();
            }
            return Err(e);
        }
    };

    if let Mode::Run { grace, .. } = &config.mode {
        if matches!(
            result.stop,
            StopReason::Interrupted { .. } | StopReason::LoadFinished
        ) {
            target.mark_stopped_by_memwatch();
        }
        target.stop(*grace);
    }
    let end = target.end();
    let rec = &result.recording;

    let (analysis, judged) = analyse(rec, &config.analysis)?;
    let command_failed = matches!(config.mode, Mode::Run { .. }) && end.command_failed();
    let load_failed = result.load.as_ref().is_some_and(|l| l.failed);
    let base_code = if command_failed || load_failed {
        4
    } else {
        analysis.verdict.exit_code()
    };

    let mut summary = Summary::new(&analysis, &judged, base_code);
    summary.missed_samples = Some(result.missed);
    summary.target = Some(target_summary(&target, &end, result.stop));
    summary.events = rec.events.iter().map(Into::into).collect();
    summary.dumps = result.dumps.iter().map(Into::into).collect();
    summary.load = result.load.clone();
    summary.files = files_of(&outputs);

    if !config.quiet {
        eprintln!(
            "memwatch: pid {} ({}): {}; target {}",
            target.pid,
            target.name,
            result.stop.describe(),
            end.describe()
        );
        print_figures(rec, result.missed);
        for d in &result.dumps {
            let state = d.completed_s.map_or_else(
                || "INCOMPLETE".to_string(),
                |t| format!("complete at {}", Elapsed(t)),
            );
            eprintln!(
                "memwatch: heap dump {} ({}, {state})",
                d.path.display(),
                Bytes(d.bytes as f64)
            );
        }
        if let Some(l) = &result.load {
            eprintln!("memwatch: load '{}': {}", l.command, l.outcome);
        }
        if command_failed {
            eprintln!(
                "memwatch: the command failed ({}): exit code 4",
                end.describe()
            );
        }
        if load_failed {
            eprintln!("memwatch: the load failed: exit code 4");
        }
    }
    let csv_file = match &outputs.csv {
        Dest::File(p) => vec![p.clone()],
        Dest::Stdout => Vec::new(),
    };
    conclude(
        config,
        rec,
        &analysis,
        summary,
        csv_file,
        &outputs.json,
        &outputs.png,
        live_mode.color(),
    )
}

/// What every run ends with, live or `report`: the gate beside the verdict, the summary and
/// chart, the CI outputs, and the list of files written.
#[allow(clippy::too_many_arguments)]
fn conclude(
    config: &Config,
    rec: &Recording,
    analysis: &Analysis,
    mut summary: Summary,
    mut written: Vec<std::path::PathBuf>,
    json: &Dest,
    png: &Dest,
    color: bool,
) -> Result<u8> {
    let limits = &config.gate.limits;
    let gate = gate::evaluate(&summary, limits);
    let exit_code = gate.exit_code(summary.exit_code);
    summary.exit_code = exit_code;
    let gated = limits.max_rss.is_some()
        || limits.max_growth.is_some()
        || limits.max_slope.is_some()
        || limits.fail_on_inconclusive
        || limits.baseline.is_some();
    if gated {
        summary.gate = Some(gate.clone());
    }
    written.extend(write_reports(rec, analysis, config, &summary, json, png)?);
    if let Some(path) = &config.gate.junit {
        let xml = report::ci::junit_xml(&summary, &gate).map_err(Error::Usage)?;
        write_atomic(&Dest::File(path.clone()), xml.as_bytes())?;
        written.push(path.clone());
    }
    if let Some(path) = report::ci::step_summary_path()
        && let Err(e) =
            report::ci::append_step_summary(&path, &report::ci::markdown(&summary, &gate))
    {
        eprintln!(
            "memwatch: warning: cannot append to GITHUB_STEP_SUMMARY '{}': {e}",
            path.display()
        );
    }
    if report::ci::in_github_actions() {
        // Workflow commands are read from stdout; use stderr when stdout carries data.
        let stdout_busy = matches!(json, Dest::Stdout)
            || config
                .output
                .csv
                .as_deref()
                .is_some_and(|p| p.as_os_str() == "-");
        for line in report::ci::github_annotations(&summary, &gate) {
            if stdout_busy {
                eprintln!("{line}")
            } else {
                println!("{line}")
            }
        }
    }
    if !config.quiet {
        print_verdict(analysis, &summary.metric, color);
        for breach in &gate.breaches {
            eprintln!("memwatch: gate failed: {}", breach.message);
        }
        if gate.inconclusive_failed {
            eprintln!(
                "memwatch: gate failed: the verdict is inconclusive and --fail-on-inconclusive is set"
            );
        }
        for file in &written {
            eprintln!("memwatch: wrote {}", file.display());
        }
    }
    Ok(exit_code)
}

fn report_file(config: &Config, file: &Path) -> Result<u8> {
    let loaded = report::input::read_recording(file).map_err(|e| Error::Usage(e.to_string()))?;
    if !config.quiet {
        for warning in &loaded.warnings {
            eprintln!("memwatch: warning: {warning}");
        }
    }
    let rec = &loaded.recording;
    let (analysis, judged) = analyse(rec, &config.analysis)?;
    let beside = |name: &str| file.parent().unwrap_or(Path::new("")).join(name);
    let json = config
        .output
        .json
        .as_deref()
        .map_or_else(|| Dest::File(beside("summary.json")), dest_of);
    let png = config
        .output
        .png
        .as_deref()
        .map_or_else(|| Dest::File(beside("memory.png")), dest_of);

    let mut summary = Summary::new(&analysis, &judged, analysis.verdict.exit_code());
    summary.source = Some(SourceSummary {
        file: file.display().to_string(),
        format: loaded.format.to_string(),
    });
    summary.events = rec.events.iter().map(Into::into).collect();
    summary.files = Files {
        csv: None,
        json: file_name(&json),
        png: file_name(&png),
    };
    if !config.quiet {
        eprintln!(
            "memwatch: {} ({}): {} samples over {}",
            file.display(),
            loaded.format,
            rec.len(),
            Elapsed(rec.duration_s())
        );
        print_figures(rec, 0);
    }
    conclude(
        config,
        rec,
        &analysis,
        summary,
        Vec::new(),
        &json,
        &png,
        LiveMode::detect(false).color(),
    )
}

/// The analyser on the configured metric, leaving out heap-dump periods.
/// The analyser on the configured metric, leaving out heap-dump periods. Returns the
/// analysis and the name of the series judged: the metric, or `settled` when the samples
/// taken --settle after each signal (the post-GC floor) are enough to decide.
fn analyse(rec: &Recording, cfg: &AnalysisConfig) -> Result<(Analysis, String)> {
    let values = match rec.metric(cfg.metric) {
        Some(values) => values,
        None if rec.is_empty() => &[],
        None => {
            return Err(Error::Usage(format!(
                "--metric {}: the recording has no '{}' column",
                cfg.metric,
                cfg.metric.column()
            )));
        }
    };
    let excluded = rec.dump_periods();
    let (settled_t, settled_v) = rec.settled(values);
    if !settled_t.is_empty() || cfg.settled == SettledUse::Always {
        if settled_t.is_empty() {
            return Err(Error::Usage(
                "--metric settled: the run has no settled samples (they come from --settle after a signal)".into(),
            ));
        }
        let a = analyze::analyze(&settled_t, &settled_v, &excluded, &cfg.thresholds);
        if cfg.settled == SettledUse::Always || a.verdict != Verdict::Inconclusive {
            return Ok((a, "settled".into()));
        }
    }
    let a = analyze::analyze(&rec.time_s, values, &excluded, &cfg.thresholds);
    Ok((a, cfg.metric.name().into()))
}

/// Writes the chart and then the summary, each whole or not at all; returns the files written.
fn write_reports(
    rec: &Recording,
    analysis: &Analysis,
    config: &Config,
    summary: &Summary,
    json: &Dest,
    png: &Dest,
) -> Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::new();
    match report::chart::render_png(
        rec,
        config.analysis.metric,
        analysis,
        config.output.png_size,
    ) {
        Ok(bytes) => {
            write_atomic(png, &bytes)?;
            if let Dest::File(p) = png {
                written.push(p.clone());
            }
        }
        Err(e) if !config.quiet => eprintln!("memwatch: no chart: {e}"),
        Err(_) => {}
    }
    write_atomic(json, summary.to_json().as_bytes())?;
    if let Dest::File(p) = json {
        written.push(p.clone());
    }
    Ok(written)
}

fn dest_of(path: &Path) -> Dest {
    if path.as_os_str() == "-" {
        Dest::Stdout
    } else {
        Dest::File(path.to_path_buf())
    }
}

fn file_name(dest: &Dest) -> Option<String> {
    match dest {
        Dest::File(p) => Some(p.display().to_string()),
        Dest::Stdout => None,
    }
}

fn files_of(outputs: &Outputs) -> Files {
    Files {
        csv: file_name(&outputs.csv),
        json: file_name(&outputs.json),
        png: file_name(&outputs.png),
    }
}

fn target_summary(target: &Target, end: &TargetEnd, stop: StopReason) -> TargetSummary {
    TargetSummary {
        pid: target.pid,
        name: target.name.clone(),
        command: target.command_line.clone(),
        start_time_ticks: target.start_time,
        ended: end.describe(),
        exit_code: match end.ending {
            Ending::Exited { code } => Some(code),
            _ => None,
        },
        signal: match end.ending {
            Ending::Killed { signal } => Some(signal::signal_name(signal)),
            _ => None,
        },
        stopped_by_memwatch: end.stopped_by_memwatch,
        stop: stop.key().to_string(),
    }
}

fn print_figures(rec: &Recording, missed: u64) {
    let rss = rec.metric(sample::Metric::Rss).unwrap_or(&[]);
    let known = || rss.iter().copied().filter(|v| v.is_finite());
    let start = known().next().unwrap_or(0.0);
    let last = rss
        .iter()
        .rev()
        .copied()
        .find(|v| v.is_finite())
        .unwrap_or(0.0);
    let peak = known().fold(0.0, f64::max);
    eprintln!(
        "memwatch: RSS start {}  end {}  peak {}  growth {}  |  {} samples over {}, {missed} missed",
        Bytes(start),
        Bytes(last),
        Bytes(peak),
        Delta(last - start),
        rec.len(),
        Elapsed(rec.duration_s()),
    );
}

fn print_verdict(a: &Analysis, judged: &str, color: bool) {
    let (paint, reset) = match (color, a.verdict) {
        (false, _) => ("", ""),
        (true, Verdict::Growing) => ("\x1b[1;31m", "\x1b[0m"),
        (true, Verdict::Stable) => ("\x1b[1;32m", "\x1b[0m"),
        (true, Verdict::Inconclusive) => ("\x1b[1;33m", "\x1b[0m"),
    };
    eprintln!(
        "memwatch: {paint}{}{reset} ({}, {}): {}",
        a.verdict.as_str(),
        judged,
        serde_json::to_value(a.pattern)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        a.reason
    );
}
