//! `memwatch --pid N` and `memwatch run -- CMD`: attach or spawn, check everything that can
//! be checked, sample until the end, then judge and report.

use crate::commands::{Finished, conclude, print_figures};
use crate::config::{TargetSpec, WatchConfig};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::gate::verdict_exit;
use crate::interrupt::Interrupts;
use crate::judge::judge;
use crate::recording::Recording;
use crate::report::csv::CsvWriter;
use crate::report::live::{LiveMode, LiveSink};
use crate::report::output::{Dest, local_stamp};
use crate::report::summary::{Files, Summary, TargetSummary};
use crate::sample::{Metric, ProcReader};
use crate::sampler::{self, SampleSink, StopReason, WatchResult};
use crate::signal::{SignalPlan, signal_name};
use crate::target::{Ending, Target, TargetEnd};
use crate::units::{Bytes, Elapsed};
use std::path::Path;

pub fn watch(config: &WatchConfig) -> Result<Exit> {
    let proc_root = Path::new("/proc");
    let with_pss = config.sampling.pss_interval.is_some();
    // Before any thread or child exists (children get their mask back in Target::spawn).
    let interrupts = Interrupts::install().map_err(|e| Error::Io {
        context: "cannot set up signal handling".into(),
        source: e,
    })?;
    // Outputs were checked with the configuration, before anything is spawned.
    let (mut target, mut reader) = match &config.target {
        TargetSpec::Attach { pid } => Target::attach(proc_root, *pid, with_pss)?,
        TargetSpec::Spawn { command, .. } => Target::spawn(proc_root, command, with_pss)?,
    };
    target.wait_until_loaded(&mut reader);
    let first = reader.read_status();
    target.check_first_read(&first)?;
    check_signals(&target, &mut reader, &config.signals)?;

    let outputs = config.outputs.resolve(target.pid, &local_stamp());
    let csv = outputs.create_csv().and_then(|out| {
        CsvWriter::new(out).map_err(|source| Error::Output {
            path: outputs.csv.display().into(),
            source,
        })
    })?;
    let live_mode = LiveMode::detect(config.quiet);
    let mut csv = csv;
    let mut live = LiveSink::new(live_mode);
    let result = {
        let mut sinks: [&mut dyn SampleSink; 2] = [&mut csv, &mut live];
        let result = match first {
            Ok(first) => {
                let mut keep = vec![Metric::Rss, Metric::Anon, config.analysis.metric];
                if with_pss {
                    keep.extend([Metric::Pss, Metric::Uss]);
                }
                let plan = sampler::Plan {
                    sampling: &config.sampling,
                    signals: &config.signals,
                    load: config.load.as_ref(),
                    keep: &keep,
                };
                sampler::watch(&target, &mut reader, first, &plan, &interrupts, &mut sinks)
            }
            // A spawned command that is already gone: nothing to sample.
            Err(_) => Ok(WatchResult {
                recording: Recording::default(),
                missed: 0,
                stop: StopReason::TargetExited,
                dumps: Vec::new(),
                load: None,
            }),
        };
        for sink in sinks.iter_mut() {
            sink.finish();
        }
        result
    };
    let spawned_grace = match &config.target {
        TargetSpec::Spawn { grace, .. } => Some(*grace),
        TargetSpec::Attach { .. } => None,
    };
    let result = match result {
        Ok(result) => result,
        Err(e) => {
            // The samples so far are in the CSV; a spawned command is not left running.
            if let Some(grace) = spawned_grace {
                target.mark_stopped_by_memwatch();
                target.stop(grace);
                target.end();
            }
            return Err(e);
        }
    };
    if let Some(grace) = spawned_grace {
        if matches!(
            result.stop,
            StopReason::Interrupted { .. } | StopReason::LoadFinished
        ) {
            target.mark_stopped_by_memwatch();
        }
        target.stop(grace);
    }
    let end = target.end();
    let rec = &result.recording;

    let judged = judge(rec, &config.analysis)?;
    let analysis = &judged.analysis;
    let command_failed = spawned_grace.is_some() && end.command_failed();
    let load_failed = result.load.as_ref().is_some_and(|l| l.failed);
    let base_exit = if command_failed || load_failed {
        Exit::CommandFailed
    } else {
        verdict_exit(analysis.verdict)
    };

    let mut summary = Summary::new(analysis, &judged.series, base_exit);
    summary.missed_samples = Some(result.missed);
    summary.target = Some(target_summary(&target, &end, result.stop));
    summary.events = rec.events.iter().map(Into::into).collect();
    summary.dumps = result.dumps.iter().map(Into::into).collect();
    summary.load = result.load.clone();
    summary.files = Files {
        csv: outputs.csv.file().map(|p| p.display().to_string()),
        json: outputs.json.file().map(|p| p.display().to_string()),
        png: outputs.png.file().map(|p| p.display().to_string()),
    };

    if !config.quiet {
        let how = if result.stop == StopReason::TargetExited {
            // "target exited with code 3", "target exited: killed by SIGKILL"
            let ending = end.describe();
            if ending.starts_with("exited") {
                format!("target {ending}")
            } else {
                format!("target exited: {ending}")
            }
        } else {
            format!("{}; target {}", result.stop.describe(), end.describe())
        };
        eprintln!("memwatch: pid {} ({}): {how}", target.pid, target.name);
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
    Ok(conclude(Finished {
        recording: rec,
        analysis,
        metric: config.analysis.metric,
        summary,
        base_exit,
        written: outputs
            .csv
            .file()
            .map(Path::to_path_buf)
            .into_iter()
            .collect(),
        json: &outputs.json,
        png: &outputs.png,
        png_size: config.outputs.png_size,
        junit: outputs.junit.as_deref(),
        limits: &config.limits,
        stdout_busy: matches!(outputs.json, Dest::Stdout) || matches!(outputs.csv, Dest::Stdout),
        quiet: config.quiet,
        color: live_mode.color(),
    }))
}

/// Before anything is written: memwatch may signal the target at all, and an attached
/// process already catches the signal (a spawned command gets a few seconds to install its
/// handler; see sampler.rs).
fn check_signals(target: &Target, reader: &mut ProcReader, plan: &SignalPlan) -> Result<()> {
    if !plan.sends() {
        return Ok(());
    }
    if let Err(e) = target.may_signal() {
        return Err(Error::Io {
            context: format!(
                "may not send {} to PID {} ({}): run memwatch as the process's user or as root",
                signal_name(plan.signal),
                target.pid,
                target.name
            ),
            source: e,
        });
    }
    if !plan.force && !target.is_child() && !target.catches(reader, plan.signal)? {
        return Err(Error::SignalNotCaught {
            pid: target.pid,
            name: target.name.clone(),
            signal: plan.signal,
        });
    }
    Ok(())
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
            Ending::Killed { signal } => Some(signal_name(signal)),
            _ => None,
        },
        stopped_by_memwatch: end.stopped_by_memwatch,
        stop: stop.key().to_string(),
    }
}
