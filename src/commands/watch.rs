//! `memwatch --pid N` and `memwatch run -- CMD`, as the phases of a run: start the target
//! (attach or spawn, everything checked that can be), open the outputs and start the
//! runtime probe, sample, stop (the probe, then the target and what it started), judge,
//! summarize, report.

use crate::commands::{Finished, conclude};
use crate::config::{TargetSpec, WatchConfig};
use crate::dump::free_bytes;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::gate::verdict_exit;
use crate::interrupt::Interrupts;
use crate::judge::{Judged, MANAGED, judge};
use crate::options::RuntimeChoice;
use crate::recording::Kept;
use crate::report::csv::CsvWriter;
use crate::report::live::{LiveMode, LiveSink};
use crate::report::output::{Dest, Outputs, local_stamp};
use crate::report::prometheus::Exporter;
use crate::report::summary::{Files, RuntimeSummary, Summary, TargetSummary};
use crate::report::text;
use crate::runtime::{DumpGuard, Plan, Probe, ProbeEvent, RuntimeKind, node};
use crate::sample::{MemStatus, Metric, ProcReader};
use crate::sampler::{self, SampleSink, StopReason, WatchResult};
use crate::signal::{SignalPlan, signal_name};
use crate::target::{Ending, Target, TargetEnd};
use crate::units::Bytes;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn watch(config: &WatchConfig) -> Result<Exit> {
    // Before any thread or child exists: SIGINT, SIGTERM and SIGHUP end the run cleanly.
    let interrupts = Interrupts::install().map_err(|e| Error::Io {
        context: "cannot set up signal handling".into(),
        source: e,
    })?;
    // Bound before the target is touched: a port in use fails the run first.
    let listener = config.prometheus.start_listener()?;
    let Started {
        mut target,
        mut reader,
        first,
        runtime,
        inspector_ours,
    } = start(config)?;
    // Outputs were checked with the configuration, before anything was spawned.
    let outputs = config.outputs.resolve(target.pid, &local_stamp());
    let csv = outputs.create_csv().and_then(|out| {
        CsvWriter::new(out, runtime.is_some()).map_err(|source| Error::Output {
            path: outputs.csv.display().into(),
            source,
        })
    })?;
    let mut probe = start_probe(config, &target, runtime, inspector_ours, &outputs)?;
    let live_mode = LiveMode::detect(config.quiet);
    let exporter = exporter(config, &target, listener)?;
    let sinks = (
        csv,
        LiveSink::new(live_mode, config.analysis.clone()),
        exporter,
    );
    let sampled = match first {
        Ok(first) => sample(
            config,
            &target,
            &mut reader,
            first,
            probe.as_mut(),
            &interrupts,
            sinks,
        ),
        // A spawned command that is already gone: nothing to sample.
        Err(_) => Ok(WatchResult::default()),
    };
    let stopped = stop(config, &mut target, probe, sampled)?;
    let judged = judge(&stopped.result.recording, &config.analysis)?;
    let (summary, base_exit) = summarize(config, &target, runtime, &stopped, &judged, &outputs);
    Ok(conclude(Finished {
        recording: &stopped.result.recording,
        analysis: &judged.analysis,
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

/// The target, held and checked, with its first reading and the runtime to ask.
struct Started {
    target: Target,
    reader: ProcReader,
    first: std::result::Result<MemStatus, crate::sample::reader::ReadError>,
    runtime: Option<RuntimeKind>,
    /// memwatch gave the spawned command its inspector (and closes it at the end).
    inspector_ours: bool,
}

/// Attaches to the process or spawns the command, and checks what can be checked before
/// anything is written: it can be read, signalled if asked, and asked about its runtime.
fn start(config: &WatchConfig) -> Result<Started> {
    let proc_root = Path::new("/proc");
    let with_pss = config.sampling.pss_interval.is_some();
    let mut inspector_ours = false;
    let (target, mut reader) = match &config.target {
        TargetSpec::Attach { pid } => Target::attach(proc_root, *pid, with_pss)?,
        TargetSpec::Spawn { command, .. } => {
            // A Node.js command opens its inspector on a free loopback port from the start,
            // so parallel runs never collide on 9229; memwatch closes it at the end.
            let env = if wants_node_inspector(config.runtime.choice, command) {
                inspector_ours = true;
                vec![node::spawn_env()]
            } else {
                Vec::new()
            };
            Target::spawn(proc_root, command, &env, with_pss)?
        }
    };
    target.wait_until_loaded(&mut reader);
    let first = reader.read_status();
    target.check_first_read(&first)?;
    check_signals(&target, &mut reader, &config.signals)?;
    let runtime = runtime_of(&target, config)?;
    Ok(Started {
        target,
        reader,
        first,
        runtime,
        inspector_ours,
    })
}

/// Starts asking the target's runtime (`--runtime`), its snapshots going to the output
/// folder.
fn start_probe(
    config: &WatchConfig,
    target: &Target,
    runtime: Option<RuntimeKind>,
    inspector_ours: bool,
    outputs: &Outputs,
) -> Result<Option<Probe>> {
    let Some(kind) = runtime else {
        return Ok(None);
    };
    let dump_dir = outputs
        .dir
        .clone()
        .or_else(|| {
            outputs
                .csv
                .file()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
        })
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| ".".into());
    let plan = probe_plan(config, dump_dir, inspector_ours, target.pid);
    Probe::start(kind, target.pid, target.pidfd(), plan)
        .map(Some)
        .map_err(|e| {
            Error::Usage(format!(
                "cannot ask the {kind} runtime of PID {}: {e}",
                target.pid
            ))
        })
}

/// Samples until the end, handing each tick to the CSV and the live line.
fn sample(
    config: &WatchConfig,
    target: &Target,
    reader: &mut ProcReader,
    first: MemStatus,
    probe: Option<&mut Probe>,
    interrupts: &Interrupts,
    (mut csv, mut live, mut exporter): (
        CsvWriter<Box<dyn std::io::Write>>,
        LiveSink,
        Option<Exporter>,
    ),
) -> Result<WatchResult> {
    // Exactly what may be judged (RSS for the live line); to draw, the rest.
    let mut exact = vec![Metric::Rss, config.analysis.metric];
    if probe.is_some() {
        exact.extend([Metric::HeapAfterGc, Metric::External]);
    }
    let drawn = if config.sampling.pss_interval.is_some() {
        &[Metric::Anon, Metric::Pss, Metric::Uss][..]
    } else {
        &[Metric::Anon][..]
    };
    // Start-up is over: its code need not stay resident while sampling.
    crate::footprint::release_startup_pages();
    let plan = sampler::Plan {
        sampling: &config.sampling,
        signals: &config.signals,
        load: config.load.as_ref(),
        keep: Kept::new(&exact, drawn),
    };
    let mut sinks: Vec<&mut dyn SampleSink> = vec![&mut csv, &mut live];
    if let Some(e) = exporter.as_mut() {
        sinks.push(e);
    }
    let result = sampler::watch(target, reader, first, &plan, probe, interrupts, &mut sinks);
    for sink in sinks.iter_mut() {
        sink.finish();
    }
    result
}

/// `--prometheus-textfile` and `--prometheus-listen`: the target's figures and verdict for
/// Prometheus, judged as the end of the run judges.
fn exporter(
    config: &WatchConfig,
    target: &Target,
    listener: Option<(crate::report::prometheus::Shared, std::net::SocketAddr)>,
) -> Result<Option<Exporter>> {
    if !config.prometheus.is_on() {
        return Ok(None);
    }
    let textfile = config.prometheus.open_textfile().map_err(Error::Usage)?;
    if let Some((_, addr)) = &listener
        && !config.quiet
    {
        text::notice(&format!("serving the metrics at http://{addr}/metrics"));
    }
    Ok(Some(Exporter::for_target(
        textfile,
        listener.map(|(shared, _)| shared),
        target.pid,
        &target.name,
        config.analysis.clone(),
    )))
}

/// A run whose sampling is over and whose target is stopped or left to run.
struct Stopped {
    result: WatchResult,
    end: TargetEnd,
    /// Every runtime event: those seen while sampling, then those of the probe's stop.
    runtime_events: Vec<ProbeEvent>,
    runtime_problem: Option<String>,
    /// Said while stopping (report/text.rs prints them first).
    notes: Vec<String>,
}

/// Stops the runtime probe (closing what memwatch opened while the target still runs),
/// then a spawned command and what it started; an attached process is left to run.
fn stop(
    config: &WatchConfig,
    target: &mut Target,
    probe: Option<Probe>,
    sampled: Result<WatchResult>,
) -> Result<Stopped> {
    let mut notes = Vec::new();
    // memwatch watches one process. A wrapper (`npm start`, a shell script) is seldom what
    // leaks, nor is a master the workers it forks: say so while both still run.
    if !config.quiet
        && !config.sampling.tree
        && !target.has_exited()
        && let Some(note) = wrapper_note(target)
    {
        notes.push(note);
    }
    let mut runtime_events: Vec<ProbeEvent> = Vec::new();
    let mut runtime_problem = None;
    if let Some(p) = probe {
        runtime_problem = p.failure();
        for r in p.stop() {
            runtime_events.extend(r.events);
        }
    }
    let grace = match &config.target {
        TargetSpec::Spawn { grace, .. } => Some(*grace),
        TargetSpec::Attach { .. } => None,
    };
    let result = match sampled {
        Ok(result) => result,
        Err(e) => {
            // The samples so far are in the CSV; a spawned command is not left running.
            if let Some(grace) = grace {
                target.mark_stopped_by_memwatch();
                target.stop(grace);
                target.end();
            }
            return Err(e);
        }
    };
    // A command that exited on its own is only reaped (a process dumping core is still
    // exiting when its /proc files say it has gone: it must not be counted as stopped).
    // What the command started goes with it (a wrapper such as `npm start` may not pass
    // SIGTERM on, or may have exited and left its server running).
    if let Some(grace) = grace {
        let also_stopped = if result.stop == StopReason::TargetExited {
            target.stop_leftovers(grace)
        } else {
            if matches!(
                result.stop,
                StopReason::Interrupted { .. } | StopReason::LoadFinished
            ) {
                target.mark_stopped_by_memwatch();
            }
            target.stop(grace)
        };
        if !also_stopped.is_empty() && !config.quiet {
            notes.push(format!(
                "also stopped what the command started: {}",
                also_stopped.join(", ")
            ));
        }
    }
    let end = target.end();
    runtime_events.splice(0..0, result.runtime.iter().map(|(_, e)| e.clone()));
    Ok(Stopped {
        result,
        end,
        runtime_events,
        runtime_problem,
        notes,
    })
}

/// A process the target started that holds a good part of the memory, named with how to
/// watch it instead.
fn wrapper_note(target: &Target) -> Option<String> {
    let (child, rss, own) = crate::tree::notable_descendant(target.pid)?;
    Some(format!(
        "note: PID {} ({}, {}) started PID {} ({}, {}); memwatch watched {} only: \
         to watch {}, run it directly or use --pid {}; --tree judges their sum",
        target.pid,
        target.name,
        Bytes(own as f64),
        child.pid,
        child.name,
        Bytes(rss as f64),
        target.name,
        child.name,
        child.pid
    ))
}

/// Everything the run found, as summary.json and the end-of-run text say it.
fn summarize(
    config: &WatchConfig,
    target: &Target,
    runtime: Option<RuntimeKind>,
    stopped: &Stopped,
    judged: &Judged,
    outputs: &Outputs,
) -> (Summary, Exit) {
    let Stopped {
        result, end, notes, ..
    } = stopped;
    let rec = &result.recording;
    let spawned = matches!(config.target, TargetSpec::Spawn { .. });
    let command_failed = spawned && end.command_failed();
    let load_failed = result.load.as_ref().is_some_and(|l| l.failed);
    let base_exit = if command_failed || load_failed {
        Exit::CommandFailed
    } else {
        verdict_exit(judged.analysis.verdict)
    };
    let mut summary = Summary::of_judged(judged, config.analysis.metric, base_exit);
    summary.missed_samples = Some(result.missed);
    summary.target = Some(target_summary(target, end, result));
    summary.events = rec.events.iter().map(Into::into).collect();
    summary.dumps = result.dumps.iter().map(Into::into).collect();
    summary.load = result.load.clone();
    summary.series_note = series_note(judged, runtime, stopped.runtime_problem.as_deref());
    let late = &stopped.runtime_events[result.runtime.len()..];
    let snapshots = complete_snapshots(result, late);
    if snapshots.len() >= 2 {
        let pair = [snapshots[0].clone(), snapshots[snapshots.len() - 1].clone()];
        match crate::heap::diff_files(&pair, &crate::heap::DiffOptions::default()) {
            Ok(diff) => summary.heap_diff = Some(diff),
            Err(e) => summary.heap_diff_error = Some(e.to_string()),
        }
    }
    summary.histogram_diff = histogram_diff(&stopped.runtime_events);
    summary.runtime = runtime.map(|kind| {
        let mut s = RuntimeSummary::new(kind, &stopped.runtime_events);
        if s.problem.is_none() {
            s.problem = stopped.runtime_problem.clone();
        }
        s
    });
    summary.files = Files {
        csv: outputs.csv.file().map(|p| p.display().to_string()),
        json: outputs.json.file().map(|p| p.display().to_string()),
        png: outputs.png.file().map(|p| p.display().to_string()),
    };
    summary.story.notes = notes.clone();
    summary.story.how = Some(stop_words(result.stop, end));
    summary.story.command_failed = command_failed;
    (summary, base_exit)
}

/// Why a preferred series was not judged, in words.
fn series_note(
    judged: &Judged,
    runtime: Option<RuntimeKind>,
    problem: Option<&str>,
) -> Option<String> {
    match (&judged.note, runtime, judged.series.as_str()) {
        (Some(note), _, _) => Some(note.clone()),
        // A runtime was asked and gave no series to judge: say why, in words (the probe's
        // own reason already starts "no managed-heap series: ..." or "the managed-heap
        // series ended ...").
        (None, Some(kind), series) if series != MANAGED => Some(match problem {
            Some(problem) => format!("judged on {series}: {problem}"),
            None => {
                format!("judged on {series}: the {kind} runtime gave no reading after a forced GC")
            }
        }),
        _ => None,
    }
}

/// "target exited with code 3", "target exited: killed by SIGKILL", "duration reached;
/// target exited with code 0 after memwatch stopped it".
fn stop_words(stop: StopReason, end: &TargetEnd) -> String {
    let ending = end.describe();
    if stop != StopReason::TargetExited {
        format!("{}; target {ending}", stop.describe())
    } else if ending.starts_with("exited") {
        format!("target {ending}")
    } else {
        format!("target exited: {ending}")
    }
}

/// The complete V8 heap snapshots of the run, oldest first: the dumps a signal asked for
/// and the ones taken through the inspector (`late`: the probe's events after the last
/// tick, when it stopped; their snapshots are the newest).
fn complete_snapshots(result: &WatchResult, late: &[ProbeEvent]) -> Vec<PathBuf> {
    let end = result.recording.duration_s() + 1.0;
    let late = late.iter().map(|e| (end, e));
    let mut found: Vec<(f64, PathBuf)> = result
        .dumps
        .iter()
        .filter_map(|d| Some((d.completed_s?, d.path.clone())))
        .filter(|(_, p)| p.extension().is_some_and(|e| e == "heapsnapshot"))
        .collect();
    for (at, e) in result.runtime.iter().map(|(at, e)| (*at, e)).chain(late) {
        if let ProbeEvent::Snapshot { path, .. } = e {
            found.push((at, path.clone()));
        }
    }
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    found.into_iter().map(|(_, p)| p).collect()
}

/// The first and last JVM class histograms taken through the attach listener, compared in
/// the shape of a heap diff (class, instances, bytes, deltas); `None` without two of them.
fn histogram_diff(events: &[ProbeEvent]) -> Option<Vec<crate::runtime::jvm::HistogramDelta>> {
    use crate::runtime::jvm::{diff_histograms, parse_class_histogram};
    let files: Vec<&PathBuf> = events
        .iter()
        .filter_map(|e| match e {
            ProbeEvent::Histogram { path, .. } => Some(path),
            _ => None,
        })
        .collect();
    let (first, last) = (files.first()?, files.last()?);
    if files.len() < 2 {
        return None;
    }
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|t| parse_class_histogram(&t).ok())
    };
    let mut rows = diff_histograms(&read(first)?, &read(last)?);
    rows.truncate(20);
    Some(rows)
}

/// Whether a spawned command gets `--inspect=127.0.0.1:0`: asked for, or a Node.js program
/// run directly (`node app.js`) with `--runtime auto`.
fn wants_node_inspector(choice: RuntimeChoice, command: &[std::ffi::OsString]) -> bool {
    let argv0 = command
        .first()
        .map(|a| a.to_string_lossy())
        .unwrap_or_default();
    match choice {
        RuntimeChoice::Node => true,
        RuntimeChoice::Auto => {
            crate::runtime::kind_from_names(None, &argv0) == Some(RuntimeKind::Node)
        }
        RuntimeChoice::Jvm | RuntimeChoice::None => false,
    }
}

/// The runtime to ask, checked before anything is written: the one asked for (refused if
/// the process is not one), or the one detected with `auto`. Without `--runtime` when
/// attaching, a recognised runtime gets a one-line hint.
fn runtime_of(target: &Target, config: &WatchConfig) -> Result<Option<RuntimeKind>> {
    let detected = crate::runtime::detect(target.pid);
    let wanted = match config.runtime.choice {
        RuntimeChoice::Node => Some(RuntimeKind::Node),
        RuntimeChoice::Jvm => Some(RuntimeKind::Jvm),
        RuntimeChoice::Auto => return Ok(detected),
        RuntimeChoice::None => {
            if let Some(kind) = detected
                && config.runtime.hint
                && !config.quiet
            {
                text::notice(&format!(
                    "hint: PID {} is a {kind} process: add '--runtime {}' to judge its \
                     managed heap after forced GCs (memwatch then opens a debugging port on \
                     127.0.0.1 or the JVM's attach listener while it runs, see docs/runtime.md)",
                    target.pid,
                    kind.name()
                ));
            }
            return Ok(None);
        }
    };
    match (wanted, detected) {
        (Some(w), Some(d)) if w == d => Ok(Some(w)),
        (Some(w), _) => Err(Error::Usage(format!(
            "--runtime {}: PID {} ({}) is not a {w} process: leave --runtime out, or give the \
             PID of the {w} process",
            w.name(),
            target.pid,
            target.name
        ))),
        (None, _) => Ok(None),
    }
}

/// What the probe does: the GC schedule and pause budget, the cheap heap reading at the
/// sampling interval (at most 5 a second), snapshots at their times into the output folder,
/// each one only when --max-dumps, --min-free and the memory headroom allow.
fn probe_plan(config: &WatchConfig, dump_dir: PathBuf, inspector_ours: bool, pid: i32) -> Plan {
    let max_dumps = config.signals.max_dumps;
    let min_free = config.signals.min_free;
    let dir = dump_dir.clone();
    let mut taken = 0u32;
    let guard: DumpGuard = Box::new(move || {
        if taken >= max_dumps {
            return Err(format!("--max-dumps {max_dumps} reached"));
        }
        if let Some(free) = free_bytes(&dir)
            && free < min_free
        {
            return Err(format!(
                "less than --min-free {} free on {}",
                Bytes(min_free as f64),
                dir.display()
            ));
        }
        crate::headroom::room_for_a_snapshot(pid)?;
        taken += 1;
        Ok(())
    });
    Plan {
        gc: config.runtime.gc,
        pause_budget_per_min: config.runtime.pause_budget,
        usage_interval: Some(config.sampling.interval.max(Duration::from_millis(200))),
        dumps_at: config.runtime.snapshots_at.clone(),
        dump_dir,
        dump_guard: Some(guard),
        inspector_ours,
        ..Plan::default()
    }
}

/// Before anything is written: memwatch may signal the target at all, and an attached
/// process already catches the signal (a spawned command gets a few seconds to install its
/// handler; see sampler/signals.rs).
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

fn target_summary(target: &Target, end: &TargetEnd, result: &WatchResult) -> TargetSummary {
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
        stop: result.stop.key().to_string(),
        tree_processes: result.tree.as_ref().map(Vec::len),
        tree: result.tree.clone(),
    }
}
