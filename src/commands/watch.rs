//! `memwatch --pid N` and `memwatch run -- CMD`, as the phases of a run: start the target
//! (attach or spawn, everything checked that can be), open the outputs and start the
//! runtime probe, sample, stop (the probe, then the target and what it started), judge,
//! summarize, report.

use crate::analyze::{self, MIN_SAMPLES};
use crate::cgroup::own::OwnCgroup;
use crate::cgroup::series::{CgroupReader, Location};
use crate::commands::{Finished, conclude};
use crate::config::{CgroupChoice, FindSpec, TargetSpec, WatchConfig};
use crate::dump::free_bytes;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::gate::verdict_exit;
use crate::interrupt::Interrupts;
use crate::judge::{AnalysisConfig, Judged, MANAGED, judge};
use crate::options::{RuntimeChoice, TreeTotalChoice};
use crate::recording::{EventKind, Kept, Recording};
use crate::report::chart::{ChartContext, LimitLine};
use crate::report::csv::CsvWriter;
use crate::report::live::{LiveMode, LiveSink};
use crate::report::output::{CsvOut, Dest, Outputs, local_stamp};
use crate::report::prometheus::Exporter;
use crate::report::services::{
    CgroupSummary, FollowSummary, OwnVerdict, TotalKind, TreeProcess, TreeTotalSummary,
};
use crate::report::summary::{Files, RuntimeSummary, Summary, TargetSummary};
use crate::report::text;
use crate::runtime::agent::{Preload, Spawned};
use crate::runtime::{DumpGuard, Plan, Probe, ProbeEvent, RuntimeError, RuntimeKind};
use crate::sample::members::{PssSpread, Scope};
use crate::sample::{MemStatus, Metric, ProcReader};
use crate::sampler::{self, JudgedSeries, SampleSink, StopReason, WatchResult};
use crate::segments::{self, Followed};
use crate::signal::{SignalPlan, signal_name};
use crate::target::{Ending, Target, TargetEnd};
use crate::units::Bytes;
use std::os::fd::AsFd;
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
        node_preload,
        mut services,
    } = start(config, &interrupts)?;
    // A second Ctrl-C (or SIGTERM) stops at once.
    interrupts
        .on_second_request(target.emergency_stop())
        .map_err(|e| Error::Io {
            context: "cannot set up signal handling".into(),
            source: e,
        })?;
    // Outputs were checked with the configuration, before anything was spawned.
    let mut outputs = config.outputs.resolve(target.pid, &local_stamp());
    let mut csv = outputs.create_csv().and_then(|out| {
        CsvWriter::with_columns(out, runtime.is_some(), services.cgroup.is_some()).map_err(
            |source| Error::Output {
                path: outputs.csv.display().into(),
                source,
            },
        )
    })?;
    let mut probe = start_probe(config, &target, runtime, node_preload, &outputs)?;
    let live_mode = LiveMode::detect(config.quiet);
    let mut live = LiveSink::new(live_mode, services.analysis.clone());
    if services.total.is_some() {
        live = live.showing("total", services.judged);
    } else if services.judged == JudgedSeries::Cgroup {
        live = live.showing("cgroup", services.judged);
    }
    let exporter = exporter(config, &target, listener)?;
    let sinks = (&mut csv, live, exporter);
    let sampled = match first {
        Ok(first) => sample(
            config,
            &services,
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
    let mut stopped = stop(config, &mut target, probe, sampled)?;
    // The command and what it started are gone: the cgroup memwatch made for them goes too.
    if let Some(own) = services.own.as_mut()
        && let Err(e) = own.remove()
    {
        stopped.notes.push(e);
    }
    let judged = judge_run(config, &services, &stopped.result)?;
    let (mut summary, mut base_exit) =
        summarize(config, &target, runtime, &stopped, &judged, &outputs);
    // A CSV that stopped (a full disk) said so when it did; the run still ends in words.
    if csv.stopped().is_some() {
        base_exit = Exit::Trouble;
        summary.exit_code = base_exit.code();
    }
    Ok(conclude(Finished {
        recording: &stopped.result.recording,
        analysis: &judged.judged.analysis,
        metric: services.analysis.metric,
        summary,
        base_exit,
        written: outputs
            .csv
            .file()
            .map(Path::to_path_buf)
            .into_iter()
            .collect(),
        json: &outputs.json,
        png: Some(&outputs.png),
        png_size: config.outputs.png_size,
        junit: outputs.junit.as_deref(),
        limits: &config.limits,
        stdout_busy: matches!(outputs.json, Dest::Stdout) || matches!(outputs.csv, Dest::Stdout),
        quiet: config.quiet,
        color: live_mode.color(),
        chart: judged.chart,
    }))
}

/// What a whole service is watched as: a tree's total (what, and why), the memory cgroup
/// read on every tick, and what is judged.
struct Services {
    /// `--tree` (or `--all-matches`) with the default metric: what the total is, and why.
    total: Option<(TotalKind, String)>,
    /// The memory cgroup read on every tick (`--cgroup`, or memwatch's own for the tree).
    cgroup: Option<Location>,
    /// The cgroup whose limit is the tightest when the run started.
    limit_set_by: Option<String>,
    /// The cgroup memwatch made for the command (removed at the end).
    own: Option<OwnCgroup>,
    judged: JudgedSeries,
    /// The analysis as run: with a PSS total, `pss` is the metric.
    analysis: AnalysisConfig,
    spread: Option<PssSpread>,
}

/// The target, held and checked, with its first reading and the runtime to ask.
struct Started {
    target: Target,
    reader: ProcReader,
    first: std::result::Result<MemStatus, crate::sample::reader::ReadError>,
    runtime: Option<RuntimeKind>,
    /// The agent's channel of a spawned Node.js command (or why there is none).
    node_preload: Option<std::result::Result<Spawned, RuntimeError>>,
    services: Services,
}

/// Attaches to the process (by PID, or found by name) or spawns the command, and checks what
/// can be checked before anything is written: it can be read, signalled if asked, and asked
/// about its runtime; the cgroup to read and the tree's total are settled.
fn start(config: &WatchConfig, interrupts: &Interrupts) -> Result<Started> {
    let proc_root = Path::new("/proc");
    let summed =
        config.sampling.tree || matches!(&config.target, TargetSpec::Find(f) if f.all_matches);
    let pss_asked = config.sampling.pss_interval.is_some();
    let mut node_preload = None;
    let mut own: Option<std::result::Result<OwnCgroup, String>> = None;
    // A tree's processes are read with smaps_rollup open when it can be (a PSS total).
    let attach = |pid: i32| {
        Target::attach(proc_root, pid, pss_asked || summed).or_else(|e| {
            if summed && !pss_asked {
                Target::attach(proc_root, pid, false)
            } else {
                Err(e)
            }
        })
    };
    let (target, mut reader) = match &config.target {
        TargetSpec::Attach { pid } => attach(*pid)?,
        TargetSpec::Find(spec) => attach(found(spec, config, interrupts)?)?,
        TargetSpec::Spawn { command, .. } => {
            // A Node.js command gets memwatch's agent (--require, a private channel): no port.
            let preload = wants_node_agent(config.runtime.choice, command)
                .then(|| Preload::new(std::env::var_os("NODE_OPTIONS").as_deref()));
            let (env, fd) = match &preload {
                Some(Ok(p)) => (p.env(), Some(p.child_fd())),
                _ => (&[][..], None),
            };
            if summed
                && config.services.cgroup.is_none()
                && matches!(
                    config.services.tree_total,
                    TreeTotalChoice::Auto | TreeTotalChoice::Cgroup
                )
            {
                own = Some(OwnCgroup::create());
            }
            let spawned = Target::spawn(proc_root, command, env, fd, pss_asked || summed)?;
            node_preload = preload.map(|p| p.map(Preload::spawned));
            if let Some(Ok(cgroup)) = &own
                && let Err(e) = cgroup.adopt_tree(spawned.0.pid)
            {
                own = Some(Err(e));
            }
            spawned
        }
    };
    target.wait_until_loaded(&mut reader);
    let first = reader.read_status();
    target.check_first_read(&first)?;
    check_signals(&target, &mut reader, &config.signals)?;
    let runtime = runtime_of(&target, config)?;
    let metric = config.analysis.metric;
    if metric.is_managed_heap() && runtime.is_none() {
        return Err(Error::Usage(format!(
            "--metric {metric} is read from the program's runtime, and PID {} ({}) runs \
             neither Node.js nor a JVM: judge rss, or watch the node or java process",
            target.pid, target.name
        )));
    }
    let smaps_ok = reader.read_smaps().is_ok_and(|r| r.is_some());
    let services = services_of(config, &target, summed, smaps_ok, own)?;
    Ok(Started {
        target,
        reader,
        first,
        runtime,
        node_preload,
        services,
    })
}

/// The process `--name`/`--cmdline` finds: the one match (the oldest with --all-matches).
/// None: an error, or with --follow, waited for (until --duration or a stop request).
fn found(spec: &FindSpec, config: &WatchConfig, interrupts: &Interrupts) -> Result<i32> {
    let what = spec.pattern.option();
    let give_up = config
        .sampling
        .duration
        .map(|d| std::time::Instant::now() + d);
    let mut told = false;
    loop {
        let matches = crate::find::find(&spec.pattern);
        match matches.as_slice() {
            [] if !spec.follow => {
                return Err(Error::Usage(format!(
                    "no process matches {what} (memwatch and what runs it are left out): check \
                     it with 'pgrep -a', or add --follow to wait for one"
                )));
            }
            [] => {}
            [one] => return Ok(one.pid),
            [first, ..] if spec.all_matches => return Ok(first.pid),
            several => {
                return Err(Error::Usage(format!(
                    "{} processes match {what}: {}; give one with --pid, a narrower pattern, or \
                     --all-matches to judge their sum",
                    several.len(),
                    crate::find::list(several)
                )));
            }
        }
        if !told && !config.quiet {
            text::notice(&format!("waiting for a process matching {what}"));
            told = true;
        }
        let now = std::time::Instant::now();
        if give_up.is_some_and(|g| now >= g) {
            return Err(Error::Usage(format!(
                "no process matched {what} within --duration: nothing was watched"
            )));
        }
        let next = now + Duration::from_millis(250);
        let wake_at = give_up.map_or(next, |g| next.min(g));
        let wake =
            crate::interrupt::wait_until(wake_at, interrupts, interrupts.as_fd()).map_err(|e| {
                Error::Io {
                    context: "waiting for a process to match".into(),
                    source: e,
                }
            })?;
        if wake == crate::interrupt::Wake::Interrupt {
            return Err(Error::Usage(format!(
                "stopped while waiting for a process matching {what}: nothing was watched"
            )));
        }
    }
}

/// Settles the services: the cgroup to read (`--cgroup`), the tree's total (`--tree`) and
/// what is judged. `own` is the cgroup made for a spawned tree, or why it could not be.
fn services_of(
    config: &WatchConfig,
    target: &Target,
    summed: bool,
    smaps_ok: bool,
    own: Option<std::result::Result<OwnCgroup, String>>,
) -> Result<Services> {
    let mut analysis = config.analysis.clone();
    let mut judged = if config.services.judge_cgroup {
        JudgedSeries::Cgroup
    } else {
        JudgedSeries::Target
    };
    let mut cgroup = match &config.services.cgroup {
        None => None,
        Some(CgroupChoice::Target) => Some(Location::of_process(target.pid)),
        Some(CgroupChoice::Path(p)) => Some(Location::at(p)),
    }
    .transpose()
    .map_err(|e| Error::Usage(format!("--cgroup: {e}")))?;
    let (own, own_problem) = match own {
        Some(Ok(o)) => (Some(o), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let total = if summed && analysis.metric == Metric::Rss && !config.services.judge_cgroup {
        Some(tree_total(
            config,
            target,
            smaps_ok,
            own.is_some(),
            own_problem,
        )?)
    } else {
        None
    };
    let mut spread = None;
    match total.as_ref().map(|t| t.0) {
        Some(TotalKind::Cgroup) => {
            cgroup = own.as_ref().map(|o| o.location.clone());
            judged = JudgedSeries::Cgroup;
        }
        Some(TotalKind::PssSum) => {
            analysis.metric = Metric::Pss;
            spread = Some(PssSpread {
                every: config.sampling.tree_pss_interval,
                budget: (config.sampling.interval / 20).max(Duration::from_millis(1)),
            });
        }
        _ => {}
    }
    if let Some(location) = &cgroup {
        // Read once now: a cgroup that cannot be read fails before anything is written.
        CgroupReader::open(location.clone())
            .and_then(|mut r| r.read())
            .map_err(|e| {
                Error::Usage(format!(
                    "--cgroup: cannot read the memory cgroup {} in {} ({e})",
                    location.path,
                    location.dir.display()
                ))
            })?;
    }
    let limit_set_by = cgroup
        .as_ref()
        .and_then(Location::tightest_limit)
        .map(|(path, _)| path);
    Ok(Services {
        total,
        cgroup,
        limit_set_by,
        own,
        judged,
        analysis,
        spread,
    })
}

/// What a tree's total is (`--tree-total`), and why, in words.
fn tree_total(
    config: &WatchConfig,
    target: &Target,
    smaps_ok: bool,
    own: bool,
    own_problem: Option<String>,
) -> Result<(TotalKind, String)> {
    let unreadable = || {
        format!(
            "/proc/{}/smaps_rollup cannot be read: run memwatch as root or as the processes' user",
            target.pid
        )
    };
    Ok(match (config.services.tree_total, own) {
        (TreeTotalChoice::Rss, _) => (TotalKind::RssSum, "asked with --tree-total rss".into()),
        (TreeTotalChoice::Cgroup, true) => {
            (TotalKind::Cgroup, "asked with --tree-total cgroup".into())
        }
        (TreeTotalChoice::Cgroup, false) => {
            return Err(Error::Usage(format!(
                "--tree-total cgroup: {}; use --tree-total pss",
                own_problem.unwrap_or_else(|| "no cgroup could be made".into())
            )));
        }
        (TreeTotalChoice::Pss, _) if !smaps_ok => {
            return Err(Error::Usage(format!("--tree-total pss: {}", unreadable())));
        }
        (TreeTotalChoice::Pss, _) => (TotalKind::PssSum, "asked with --tree-total pss".into()),
        (TreeTotalChoice::Auto, true) => (
            TotalKind::Cgroup,
            "memwatch started the command in a cgroup of its own: one file read a tick counts \
             every page once, exactly (measured cheaper and fresher than reading every \
             process's PSS, see README)"
                .into(),
        ),
        (TreeTotalChoice::Auto, false) => {
            let why = match (&config.target, own_problem) {
                (TargetSpec::Spawn { .. }, Some(problem)) => {
                    format!("memwatch could make no cgroup for the command ({problem})")
                }
                (TargetSpec::Spawn { .. }, None) => {
                    "memwatch makes no cgroup of its own when --cgroup names one to read".into()
                }
                _ => "attached to running processes, which memwatch does not move into a \
                      cgroup of its own (their pages would stay charged where they are)"
                    .into(),
            };
            if smaps_ok {
                (
                    TotalKind::PssSum,
                    format!("{why}; each process's PSS is read in turn"),
                )
            } else {
                (
                    TotalKind::RssSum,
                    format!(
                        "{why}; PSS cannot be read ({}), so a shared page counts once per process",
                        unreadable()
                    ),
                )
            }
        }
    })
}

/// Starts asking the target's runtime (`--runtime`), its snapshots going to the output
/// folder.
fn start_probe(
    config: &WatchConfig,
    target: &Target,
    runtime: Option<RuntimeKind>,
    node_preload: Option<std::result::Result<Spawned, RuntimeError>>,
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
    let plan = probe_plan(config, dump_dir, node_preload, target.pid);
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
#[allow(clippy::too_many_arguments)]
fn sample(
    config: &WatchConfig,
    services: &Services,
    target: &Target,
    reader: &mut ProcReader,
    first: MemStatus,
    probe: Option<&mut Probe>,
    interrupts: &Interrupts,
    (csv, mut live, mut exporter): (&mut CsvWriter<CsvOut>, LiveSink, Option<Exporter>),
) -> Result<WatchResult> {
    // Exactly what may be judged (RSS for the live line); to draw, the rest.
    let mut exact = vec![Metric::Rss, services.analysis.metric];
    if probe.is_some() {
        exact.extend([Metric::HeapAfterGc, Metric::External]);
    }
    let drawn = if config.sampling.pss_interval.is_some() || services.spread.is_some() {
        &[Metric::Anon, Metric::Pss, Metric::Uss][..]
    } else {
        &[Metric::Anon][..]
    };
    // Start-up is over: its code need not stay resident while sampling.
    crate::footprint::release_startup_pages();
    let (matches, follow) = match &config.target {
        TargetSpec::Find(f) => (
            f.all_matches.then(|| f.pattern.clone()),
            f.follow.then_some(&f.pattern),
        ),
        _ => (None, None),
    };
    // The series beside the judged one: the cgroup's, or the target's (a tree's total) when
    // the cgroup is judged. RSS exactly (its own verdict, the figures), anon to draw.
    let keep_other = services
        .cgroup
        .is_some()
        .then(|| Kept::new(&[Metric::Rss], &[Metric::Anon]));
    let mark = match (services.total.as_ref().map(|t| t.0), services.judged) {
        (Some(TotalKind::PssSum), _) => Some(EventKind::judged(TotalKind::PssSum.key())),
        (_, JudgedSeries::Cgroup) => Some(EventKind::judged("cgroup")),
        _ => None,
    };
    let plan = sampler::Plan {
        sampling: &config.sampling,
        signals: &config.signals,
        load: config.load.as_ref(),
        keep: Kept::new(&exact, drawn),
        scope: Scope {
            descendants: config.sampling.tree,
            matches,
        },
        tree_pss: services.spread,
        cgroup: services.cgroup.as_ref(),
        judged: services.judged,
        keep_other,
        follow,
        with_smaps: config.sampling.pss_interval.is_some() || services.spread.is_some(),
        mark,
        native: config.native.as_ref(),
    };
    let mut sinks: Vec<&mut dyn SampleSink> = vec![csv, &mut live];
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
        let (rest, problem) = p.finish();
        runtime_problem = problem;
        for r in rest {
            runtime_events.extend(r.events);
        }
    }
    let grace = match &config.target {
        TargetSpec::Spawn { grace, .. } => Some(*grace),
        TargetSpec::Attach { .. } | TargetSpec::Find(_) => None,
    };
    let mut result = match sampled {
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
    // --follow: how the process watched last ended (the first one is long gone).
    let end = match result.last_target.as_mut() {
        Some(last) => last.end(),
        None => target.end(),
    };
    runtime_events.splice(0..0, result.runtime.iter().map(|(_, e)| e.clone()));
    Ok(Stopped {
        result,
        end,
        runtime_events,
        runtime_problem,
        notes,
    })
}

/// The run judged: the judged series (each life on its own and the whole, with --follow),
/// each process of a tree on its own, the cgroup against its limit, and what the chart draws
/// beside them.
struct RunJudged {
    judged: Judged,
    followed: Option<Followed>,
    tree: Option<Vec<TreeProcess>>,
    tree_total: Option<TreeTotalSummary>,
    cgroup: Option<CgroupSummary>,
    chart: ChartContext,
}

fn judge_run(config: &WatchConfig, services: &Services, result: &WatchResult) -> Result<RunJudged> {
    let rec = &result.recording;
    let analysis = &services.analysis;
    let following = matches!(&config.target, TargetSpec::Find(f) if f.follow);
    let mut followed = None;
    let mut judged = if following && services.judged == JudgedSeries::Target {
        let first_pid = result.lives.first().map(|l| l.pid);
        match judge_lives(rec, analysis, first_pid) {
            Some((j, f)) => {
                followed = Some(f);
                j
            }
            None => judge(rec, analysis)?,
        }
    } else {
        judge(rec, analysis)?
    };
    if services.judged == JudgedSeries::Cgroup {
        judged.series = "cgroup".into();
    }
    // The cgroup's own analysis: the judged one, or its series judged beside.
    let cgroup = match (&services.cgroup, services.judged) {
        (None, _) => None,
        (Some(location), judged_series) => {
            let (series, own) = match judged_series {
                JudgedSeries::Cgroup => (rec, judged.analysis.clone()),
                JudgedSeries::Target => {
                    let other = result.other.as_ref();
                    let series = other.unwrap_or(rec);
                    let cfg = AnalysisConfig {
                        metric: Metric::Rss,
                        ..analysis.clone()
                    };
                    (series, judge(series, &cfg)?.analysis)
                }
            };
            let reading = result.cgroup_last.as_ref();
            let limit = reading
                .and_then(|r| r.limit)
                .map(|l| (l as f64, services.limit_set_by.clone()));
            let mut c = CgroupSummary::new(
                &location.path,
                &own,
                last_known(series, Metric::Rss),
                reading,
                limit,
            );
            c.version = Some(match location.version {
                crate::cgroup::Version::V1 => "v1",
                crate::cgroup::Version::V2 => "v2",
            });
            c.lost = result.cgroup_lost.clone();
            Some(c)
        }
    };
    let tree = result.tree.as_ref().map(|processes| {
        processes
            .iter()
            .map(|(growth, series)| {
                let (t, v) = series.points();
                let a = analyze::analyze(&t, &v, &[], &analysis.thresholds);
                TreeProcess {
                    growth: growth.clone(),
                    verdict: (a.samples_analysed >= MIN_SAMPLES)
                        .then(|| OwnVerdict::of(&a))
                        .flatten(),
                }
            })
            .collect::<Vec<_>>()
    });
    let tree_total = services.total.as_ref().map(|(kind, why)| {
        // The sum of RSS over the same ticks: the total series (or, with the cgroup judged,
        // the one kept beside it).
        let sums = match services.judged {
            JudgedSeries::Cgroup => result.other.as_ref(),
            JudgedSeries::Target => Some(rec),
        };
        let rss: Vec<f64> = sums
            .and_then(|r| r.line(Metric::Rss))
            .map(|l| l.iter().filter(|v| v.is_finite()).collect())
            .unwrap_or_default();
        TreeTotalSummary {
            judged: *kind,
            why: why.clone(),
            cgroup: (*kind == TotalKind::Cgroup)
                .then(|| services.cgroup.as_ref().map(|c| c.path.clone()))
                .flatten(),
            rss_sum_start_bytes: rss.first().copied(),
            rss_sum_end_bytes: rss.last().copied(),
            rss_sum_peak_bytes: rss.iter().copied().reduce(f64::max),
        }
    });
    let chart = chart_of(
        services,
        followed.as_ref(),
        tree.as_deref(),
        result,
        &cgroup,
        &tree_total,
    );
    Ok(RunJudged {
        judged,
        followed,
        tree,
        tree_total,
        cgroup,
        chart,
    })
}

/// A followed target's lives judged one by one and joined; `None` when it had one life.
fn judge_lives(
    rec: &Recording,
    analysis: &AnalysisConfig,
    first_pid: Option<i32>,
) -> Option<(Judged, Followed)> {
    let values = rec.metric(analysis.metric)?;
    let lives = segments::lives(rec, values, first_pid);
    if lives.len() < 2 {
        return None;
    }
    let followed = segments::judge(
        &rec.time_s,
        values,
        &rec.dump_periods(),
        &lives,
        &analysis.thresholds,
    );
    let judged = Judged {
        analysis: followed.whole.clone(),
        series: analysis.metric.name().into(),
        note: None,
        beside: None,
    };
    Some((judged, followed))
}

/// The last known value of a metric in a recording.
fn last_known(rec: &Recording, metric: Metric) -> Option<f64> {
    rec.line(metric)?.iter().rev().find(|v| v.is_finite())
}

/// What the chart draws beside the judged series: the tree's top processes, the limit, the
/// lives, and lines of words about the total and the cgroup.
fn chart_of(
    services: &Services,
    followed: Option<&Followed>,
    tree: Option<&[TreeProcess]>,
    result: &WatchResult,
    cgroup: &Option<CgroupSummary>,
    tree_total: &Option<TreeTotalSummary>,
) -> ChartContext {
    let mut chart = ChartContext::default();
    if services.judged == JudgedSeries::Cgroup {
        chart.label = "cgroup".into();
    } else if let Some((kind, _)) = &services.total {
        chart.label = match kind {
            TotalKind::PssSum => "total pss",
            _ => "total rss",
        }
        .into();
    }
    if let Some(total) = tree_total {
        chart.notes.push(format!(
            "Total: {}, because {}.",
            total.judged.words(),
            total.why
        ));
    }
    if let Some(c) = cgroup {
        chart.notes.push(format!("{}.", upper_first(&c.words)));
        chart.limit = c.limit_bytes.map(|bytes| LimitLine {
            bytes,
            in_range: services.judged == JudgedSeries::Cgroup,
        });
    }
    if let Some(f) = followed {
        chart.lives = crate::report::services::life_marks(f);
    }
    // The processes whose RSS grew most, when there are several.
    if let (Some(tree), Some(series)) = (tree, result.tree.as_ref())
        && tree.len() > 1
    {
        chart.members = tree
            .iter()
            .take(3)
            .filter_map(|p| {
                let (_, s) = series.iter().find(|(g, _)| g.pid == p.growth.pid)?;
                let (t, v) = s.points();
                Some((
                    format!("{} ({})", p.growth.pid, p.growth.name),
                    t.into_iter().zip(v).collect(),
                ))
            })
            .collect();
    }
    chart
}

fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| {
        c.to_uppercase().collect::<String>() + chars.as_str()
    })
}

/// A process the target started that holds a good part of the memory, named with how to
/// watch it instead.
fn wrapper_note(target: &Target) -> Option<String> {
    let (child, rss, own) = crate::tree::notable_descendant(target.pid)?;
    // A spawned command's processes are stopped with it: --pid would name a process gone.
    let how = if target.is_child() {
        format!("run {} directly", child.name)
    } else {
        format!("use --pid {}", child.pid)
    };
    Some(format!(
        "note: PID {} ({}, {}) started PID {} ({}, {}); memwatch watched {} only: \
         to watch {}, {how}; --tree judges their sum",
        target.pid,
        target.name,
        Bytes(own as f64),
        child.pid,
        child.name,
        Bytes(rss as f64),
        target.name,
        child.name,
    ))
}

/// Everything the run found, as summary.json and the end-of-run text say it.
fn summarize(
    config: &WatchConfig,
    target: &Target,
    runtime: Option<RuntimeKind>,
    stopped: &Stopped,
    run: &RunJudged,
    outputs: &Outputs,
) -> (Summary, Exit) {
    let judged = &run.judged;
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
    let last = result.last_target.as_ref().unwrap_or(target);
    let mut described = target_summary(last, end, result);
    described.tree = run.tree.clone();
    summary.target = Some(described);
    summary.tree_total = run.tree_total.clone();
    summary.cgroup = run.cgroup.clone();
    summary.follow = run.followed.as_ref().map(|f| {
        let names: Vec<(i32, String)> = result
            .lives
            .iter()
            .map(|l| (l.pid, l.name.clone()))
            .collect();
        let pattern = match &config.target {
            TargetSpec::Find(spec) => Some(spec.pattern.option()),
            _ => None,
        };
        FollowSummary::new(f, pattern, &names)
    });
    summary.events = rec.events.iter().map(Into::into).collect();
    let late = &stopped.runtime_events[result.runtime.len()..];
    summary.dumps = dumps_and_snapshots(result, late);
    summary.load = result.load.clone();
    summary.series_note = series_note(judged, runtime, stopped.runtime_problem.as_deref());
    let asked = config.runtime.snapshots_at.len();
    if let Some(words) = snapshots_not_taken(
        &config.runtime.snapshots_at,
        &stopped.runtime_events,
        rec.duration_s(),
        result.stop,
    ) {
        summary.story.warnings.push(words);
        summary.events.push(crate::report::summary::EventSummary {
            elapsed_s: rec.duration_s(),
            kind: crate::recording::EventType::HeapSnapshotsNotTaken,
            event: "heap-snapshots-not-taken".into(),
        });
    }
    let snapshots = complete_snapshots(result, late);
    if snapshots.len() >= 2 {
        let pair = [snapshots[0].clone(), snapshots[snapshots.len() - 1].clone()];
        match crate::heap::diff_files(&pair, &crate::heap::DiffOptions::default()) {
            Ok(diff) => summary.heap_diff = Some(diff),
            Err(e) => summary.heap_diff_error = Some(e.to_string()),
        }
    } else if asked >= 2 && runtime == Some(RuntimeKind::Node) {
        summary.heap_diff_error = Some(format!(
            "only {} of the {asked} heap snapshots asked for {} complete: nothing to compare",
            snapshots.len(),
            if snapshots.len() == 1 { "was" } else { "were" },
        ));
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
    summary.native = result.native.as_ref().map(|n| {
        crate::report::native::conclude(
            n,
            rec,
            &judged.analysis,
            judged.series == MANAGED,
            crate::report::native::folder(outputs).as_deref(),
            &format!("New resident pages of PID {} ({})", target.pid, target.name),
        )
    });
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

/// The signalled heap dumps and the snapshots taken through the runtime, with what each cost
/// the target (its RSS before, the highest while it was written).
fn dumps_and_snapshots(
    result: &WatchResult,
    late: &[ProbeEvent],
) -> Vec<crate::report::summary::DumpSummary> {
    use crate::report::summary::DumpSummary;
    let rec = &result.recording;
    let end = rec.duration_s();
    let mut out: Vec<DumpSummary> = result.dumps.iter().map(Into::into).collect();
    let mut started: Vec<(PathBuf, f64)> = Vec::new();
    let events = result.runtime.iter().map(|(at, e)| (*at, e));
    for (at, e) in events.chain(late.iter().map(|e| (end, e))) {
        match e {
            ProbeEvent::DumpStarted { path } => started.push((path.clone(), at)),
            ProbeEvent::Snapshot { path, bytes, .. } => {
                let from = started
                    .iter()
                    .rev()
                    .find(|(p, _)| p == path)
                    .map_or(at, |(_, t)| *t);
                out.push(DumpSummary {
                    path: path.display().to_string(),
                    bytes: *bytes,
                    started_s: from,
                    completed_s: Some(at),
                    via: "runtime",
                    rss_before_bytes: None,
                    rss_peak_bytes: None,
                });
            }
            _ => {}
        }
    }
    let rss = rec.line(Metric::Rss);
    for d in &mut out {
        let Some(rss) = &rss else { break };
        let until = d.completed_s.unwrap_or(end);
        let mut before = None;
        let mut peak: Option<f64> = None;
        for (t, v) in rec.time_s.iter().zip(rss.iter()) {
            if !v.is_finite() {
                continue;
            }
            if *t <= d.started_s {
                before = Some(v);
            } else if *t <= until {
                peak = Some(peak.map_or(v, |p| p.max(v)));
            }
        }
        d.rss_before_bytes = before.map(|v| v as u64);
        // The peak of the period, its start included: a snapshot that lets the GC run can
        // leave RSS below where it began.
        d.rss_peak_bytes = match (peak, before) {
            (Some(p), Some(b)) => Some(p.max(b) as u64),
            (p, b) => p.or(b).map(|v| v as u64),
        };
    }
    out.sort_by(|a, b| a.started_s.total_cmp(&b.started_s));
    out
}

/// `--heap-snapshots N`: the snapshots asked for that were neither taken, refused nor failed
/// (those say so themselves), in words: the run ended before they were due.
fn snapshots_not_taken(
    due: &[Duration],
    events: &[ProbeEvent],
    ended_s: f64,
    stop: StopReason,
) -> Option<String> {
    let accounted = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                ProbeEvent::Snapshot { .. }
                    | ProbeEvent::Histogram { .. }
                    | ProbeEvent::DumpSkipped { .. }
                    | ProbeEvent::DumpFailed { .. }
            )
        })
        .count();
    let mut due: Vec<f64> = due.iter().map(Duration::as_secs_f64).collect();
    due.sort_by(f64::total_cmp);
    let missing = due.get(accounted..).filter(|m| !m.is_empty())?;
    let at: Vec<String> = missing.iter().map(|t| format!("{t:.1} s")).collect();
    Some(format!(
        "{} of the {} heap snapshots asked for (--heap-snapshots) {} not taken: the run ended at \
         {ended_s:.1} s ({}), before {} due at {} (they are spread over --duration)",
        missing.len(),
        due.len(),
        if missing.len() == 1 { "was" } else { "were" },
        stop.describe(),
        if missing.len() == 1 {
            "it was"
        } else {
            "they were"
        },
        at.join(", ")
    ))
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

/// Whether a spawned command gets memwatch's agent: asked for, or a Node.js program run
/// directly (`node app.js`) with `--runtime auto`.
fn wants_node_agent(choice: RuntimeChoice, command: &[std::ffi::OsString]) -> bool {
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
                     managed heap after forced GCs (memwatch then opens Node's inspector for the \
                     attach only, or the JVM's attach listener, see docs/runtime.md)",
                    target.pid,
                    kind.name()
                ));
            }
            return Ok(None);
        }
    };
    match (wanted, detected) {
        (Some(w), Some(d)) if w == d => Ok(Some(w)),
        (Some(w), _) if target.is_child() => Err(Error::Usage(format!(
            "--runtime {}: the command ({}, PID {}) is not a {w} program: leave --runtime out, \
             or run the {w} program itself (not a wrapper that starts it)",
            w.name(),
            target.name,
            target.pid
        ))),
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
fn probe_plan(
    config: &WatchConfig,
    dump_dir: PathBuf,
    node_preload: Option<std::result::Result<Spawned, RuntimeError>>,
    pid: i32,
) -> Plan {
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
        node_preload,
        end: config
            .sampling
            .duration
            .map(|d| std::time::Instant::now() + d),
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
        // A wrapper that exec'd its program is named for the program.
        name: result
            .name_now
            .clone()
            .unwrap_or_else(|| target.name.clone()),
        command: result
            .command_now
            .clone()
            .unwrap_or_else(|| target.command_line.clone()),
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
        tree: None,
    }
}
