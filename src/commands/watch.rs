//! `memwatch --pid N` and `memwatch run -- CMD`: attach or spawn, check everything that can
//! be checked, sample until the end, then judge and report.

use crate::analyze::Verdict;
use crate::commands::{Finished, conclude, print_figures};
use crate::config::{TargetSpec, WatchConfig};
use crate::dump::free_bytes;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::gate::verdict_exit;
use crate::interrupt::Interrupts;
use crate::judge::MANAGED;
use crate::judge::judge;
use crate::options::RuntimeChoice;
use crate::recording::{Kept, Recording};
use crate::report::csv::CsvWriter;
use crate::report::live::{LiveMode, LiveSink};
use crate::report::output::{Dest, local_stamp};
use crate::report::summary::RuntimeSummary;
use crate::report::summary::{Files, Summary, TargetSummary};
use crate::runtime::{DumpGuard, Plan, Probe, ProbeEvent, RuntimeKind, node};
use crate::sample::{Metric, ProcReader};
use crate::sampler::{self, SampleSink, StopReason, WatchResult};
use crate::signal::{SignalPlan, signal_name};
use crate::target::{Ending, Target, TargetEnd};
use crate::units::{Bytes, Count, Delta, Elapsed};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn watch(config: &WatchConfig) -> Result<Exit> {
    let proc_root = Path::new("/proc");
    let with_pss = config.sampling.pss_interval.is_some();
    // Before any thread or child exists: SIGINT, SIGTERM and SIGHUP end the run cleanly.
    let interrupts = Interrupts::install().map_err(|e| Error::Io {
        context: "cannot set up signal handling".into(),
        source: e,
    })?;
    // Outputs were checked with the configuration, before anything is spawned.
    let mut inspector_ours = false;
    let (mut target, mut reader) = match &config.target {
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
    let runtime_kind = runtime_of(&target, config)?;

    let outputs = config.outputs.resolve(target.pid, &local_stamp());
    let csv = outputs.create_csv().and_then(|out| {
        CsvWriter::new(out, runtime_kind.is_some()).map_err(|source| Error::Output {
            path: outputs.csv.display().into(),
            source,
        })
    })?;
    let mut probe = match runtime_kind {
        Some(kind) => {
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
            Some(
                Probe::start(kind, target.pid, target.pidfd(), plan).map_err(|e| {
                    Error::Usage(format!(
                        "cannot ask the {kind} runtime of PID {}: {e}",
                        target.pid
                    ))
                })?,
            )
        }
        None => None,
    };
    // --native: a problem (no perf events, not allowed) is one line, and the run goes on.
    let mut native_problem = None;
    let native = config.native.as_ref().and_then(|options| {
        crate::native::NativeWatch::start(target.pid, options)
            .map_err(|e| {
                eprintln!("memwatch: {e}");
                native_problem = Some(e.to_string());
            })
            .ok()
    });
    let native_origin = std::time::Instant::now();
    let live_mode = LiveMode::detect(config.quiet);
    let mut csv = csv;
    let mut live = LiveSink::new(live_mode, config.analysis.clone());
    let result = {
        let mut sinks: [&mut dyn SampleSink; 2] = [&mut csv, &mut live];
        let result = match first {
            Ok(first) => {
                // Exactly what may be judged (RSS for the live line); to draw, the rest.
                let mut exact = vec![Metric::Rss, config.analysis.metric];
                if runtime_kind.is_some() {
                    exact.extend([Metric::HeapAfterGc, Metric::External]);
                }
                let drawn = if with_pss {
                    &[Metric::Anon, Metric::Pss, Metric::Uss][..]
                } else {
                    &[Metric::Anon][..]
                };
                let keep = Kept::new(&exact, drawn);
                // Start-up is over: its code need not stay resident while sampling.
                crate::footprint::release_startup_pages();
                let plan = sampler::Plan {
                    sampling: &config.sampling,
                    signals: &config.signals,
                    load: config.load.as_ref(),
                    keep,
                };
                sampler::watch(
                    &target,
                    &mut reader,
                    first,
                    &plan,
                    probe.as_mut(),
                    &interrupts,
                    &mut sinks,
                )
            }
            // A spawned command that is already gone: nothing to sample.
            Err(_) => Ok(WatchResult {
                recording: Recording::default(),
                missed: 0,
                stop: StopReason::TargetExited,
                dumps: Vec::new(),
                load: None,
                runtime: Vec::new(),
                tree: None,
            }),
        };
        for sink in sinks.iter_mut() {
            sink.finish();
        }
        result
    };
    // While the target still runs: which sampled pages it still holds.
    let native = native.map(crate::native::NativeWatch::stop);
    // memwatch watches one process. A wrapper (`npm start`, a shell script) is seldom what
    // leaks, nor is a master the workers it forks: say so while both still run.
    if !config.quiet
        && !config.sampling.tree
        && !target.has_exited()
        && let Some((child, rss, own)) = crate::tree::notable_descendant(target.pid)
    {
        eprintln!(
            "memwatch: note: PID {} ({}, {}) started PID {} ({}, {}); memwatch watched {} only: \
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
        );
    }
    // The runtime first, while the target still runs: the inspector is closed (if memwatch
    // opened it) before the target is stopped or left to run on.
    let mut runtime_events: Vec<ProbeEvent> = Vec::new();
    let mut runtime_problem = None;
    if let Some(p) = probe.take() {
        runtime_problem = p.failure();
        for r in p.stop() {
            runtime_events.extend(r.events);
        }
    }
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
    // A command that exited on its own is only reaped (a process dumping core is still
    // exiting when its /proc files say it has gone: it must not be counted as stopped).
    // What the command started goes with it (a wrapper such as `npm start` may not pass
    // SIGTERM on, or may have exited and left its server running).
    let mut also_stopped = Vec::new();
    if let Some(grace) = spawned_grace {
        if result.stop == StopReason::TargetExited {
            also_stopped = target.stop_leftovers(grace);
        } else {
            if matches!(
                result.stop,
                StopReason::Interrupted { .. } | StopReason::LoadFinished
            ) {
                target.mark_stopped_by_memwatch();
            }
            also_stopped = target.stop(grace);
        }
    }
    if !also_stopped.is_empty() && !config.quiet {
        eprintln!(
            "memwatch: also stopped what the command started: {}",
            also_stopped.join(", ")
        );
    }
    let end = target.end();
    let rec = &result.recording;
    runtime_events.splice(0..0, result.runtime.iter().map(|(_, e)| e.clone()));

    let judged = judge(rec, &config.analysis)?;
    let analysis = &judged.analysis;
    let series_note = match (&judged.note, runtime_kind, judged.series.as_str()) {
        (Some(note), _, _) => Some(note.clone()),
        // A runtime was asked and gave no series to judge: say why, in words (the probe's
        // own reason already starts "no managed-heap series: ..." or "the managed-heap
        // series ended ...").
        (None, Some(kind), series) if series != MANAGED => Some(match &runtime_problem {
            Some(problem) => format!("judged on {series}: {problem}"),
            None => {
                format!("judged on {series}: the {kind} runtime gave no reading after a forced GC")
            }
        }),
        _ => None,
    };
    let command_failed = spawned_grace.is_some() && end.command_failed();
    let load_failed = result.load.as_ref().is_some_and(|l| l.failed);
    let base_exit = if command_failed || load_failed {
        Exit::CommandFailed
    } else {
        verdict_exit(analysis.verdict)
    };

    let mut summary = Summary::of_judged(&judged, config.analysis.metric, base_exit);
    summary.missed_samples = Some(result.missed);
    summary.target = Some(target_summary(&target, &end, &result));
    summary.events = rec.events.iter().map(Into::into).collect();
    summary.dumps = result.dumps.iter().map(Into::into).collect();
    summary.load = result.load.clone();
    summary.series_note = series_note.clone();
    let snapshots = complete_snapshots(&result, &runtime_events[result.runtime.len()..]);
    if snapshots.len() >= 2 {
        let pair = [snapshots[0].clone(), snapshots[snapshots.len() - 1].clone()];
        match crate::heap::diff_files(&pair, &crate::heap::DiffOptions::default()) {
            Ok(diff) => summary.heap_diff = Some(diff),
            Err(e) => summary.heap_diff_error = Some(e.to_string()),
        }
    }
    summary.histogram_diff = histogram_diff(&runtime_events);
    summary.runtime = runtime_kind.map(|kind| {
        let mut s = RuntimeSummary::new(kind, &runtime_events);
        if s.problem.is_none() {
            s.problem = runtime_problem.clone();
        }
        s
    });
    summary.native = config.native.map(|_| {
        crate::report::native::conclude(
            native.as_ref(),
            native_problem,
            native_origin,
            rec,
            analysis,
            judged.series == MANAGED,
            crate::report::native::folder(&outputs).as_deref(),
            &format!("New resident pages of PID {} ({})", target.pid, target.name),
        )
    });
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
        if let Some(tree) = &result.tree {
            // Which process of the tree the growth came from.
            let most: Vec<String> = tree
                .iter()
                .take(3)
                .map(|p| format!("{} ({}) {}", p.pid, p.name, Delta(p.growth_bytes() as f64)))
                .collect();
            eprintln!(
                "memwatch: the tree had {}; RSS grew most in {}",
                Count(tree.len() as u64, "process"),
                most.join(", ")
            );
        }
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
        for e in &runtime_events {
            if let ProbeEvent::Closed { message } = e {
                eprintln!("memwatch: runtime: {message}");
            }
        }
        if let Some(diff) = &summary.heap_diff {
            let names: Vec<String> = diff.snapshots.iter().map(|s| s.file.clone()).collect();
            eprintln!("memwatch: what grew on the heap ({}):", names.join(" -> "));
            for line in diff.brief(5).lines() {
                eprintln!("memwatch:   {line}");
            }
        }
        if let Some(rows) = &summary.histogram_diff {
            eprintln!("memwatch: what grew on the JVM heap (first and last class histogram):");
            eprintln!(
                "memwatch:   {:<40} {:>12} {:>12}",
                "Class", "# Delta", "Size Delta"
            );
            for r in rows.iter().take(5) {
                eprintln!(
                    "memwatch:   {:<40} {:>+12} {:>12}",
                    r.class,
                    r.instances_delta,
                    crate::units::Delta(r.bytes_delta as f64).to_string()
                );
            }
        }
        if let Some(e) = &summary.heap_diff_error {
            eprintln!("memwatch: the heap snapshots could not be compared: {e}");
        }
        if let Some(note) = &series_note {
            eprintln!("memwatch: {note}");
        }
        if let (MANAGED, Some(kind)) = (judged.series.as_str(), runtime_kind) {
            eprintln!("memwatch: {}", managed_words(kind, analysis.samples));
        }
        if let Some(beside) = &judged.beside {
            eprintln!(
                "memwatch: {} beside it: {} ({}): {}{}",
                config.analysis.metric.name(),
                beside.verdict.as_str(),
                beside.pattern,
                beside.reason,
                finding(
                    analysis.verdict,
                    beside.verdict,
                    config.analysis.metric.name()
                )
            );
        }
        if let Some(report) = &summary.native {
            for line in crate::report::native::lines(report, runtime_kind.map(|k| k.name())) {
                eprintln!("memwatch: {line}");
            }
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
                eprintln!(
                    "memwatch: hint: PID {} is a {kind} process: add '--runtime {}' to judge its \
                     managed heap after forced GCs (memwatch then opens a debugging port on \
                     127.0.0.1 or the JVM's attach listener while it runs, see docs/runtime.md)",
                    target.pid,
                    kind.name()
                );
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

/// Which series was judged and why, in words, when it is the managed heap.
fn managed_words(kind: RuntimeKind, readings: usize) -> String {
    let what = match kind {
        RuntimeKind::Node => "the used JS heap plus external (Buffers)",
        RuntimeKind::Jvm => "the used Java heap",
    };
    format!(
        "judged on the managed heap: {readings} readings of {what} right after a forced full \
         GC, asked of the {kind} runtime; only a leak makes it rise, a lazy GC does not"
    )
}

/// What two verdicts on two series say together.
fn finding(judged: Verdict, beside: Verdict, metric: &str) -> &'static str {
    match (judged, beside, metric) {
        (Verdict::Stable, Verdict::Growing, _) => {
            ". The managed heap after GC is flat while this grows: the runtime grows its heap \
             lazily, or memory outside the managed heap grows (a native leak)"
        }
        (Verdict::Growing, Verdict::Stable, _) => {
            ". The managed heap grows while this does not yet: the leak is real, RSS lags behind"
        }
        _ => "",
    }
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
