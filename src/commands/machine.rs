//! `memwatch --all`, as the phases of a run: `start` (the open-file limit raised, the
//! Prometheus listener bound, the outputs opened; the first scan of /proc is the first
//! tick's), `sample` (`sampler::machine`), `judge` (every unit, and the machine's total),
//! `summarize`, and `conclude` (each unit through the gate, the exit-code rule, the end
//! reports and the end-of-run text). A different shape of run from `watch.rs`: many
//! processes, each its own series and verdict, appearing and ending; no target to spawn,
//! signal or stop.

use crate::analyze::{self, Analysis, Verdict};
use crate::board::{Board, Unit};
use crate::config::machine::MachineConfig;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::gate::{self, Figures, GateResult};
use crate::interrupt::Interrupts;
use crate::judge::judge;
use crate::keys::Keys;
use crate::machine::fdlimit::{self, FdLimit};
use crate::machine::{GroupBy, Machine};
use crate::recording::Recording;
use crate::report::batch_csv::BatchCsv;
use crate::report::chart::ChartContext;
use crate::report::end::{self, EndReport, RunEnd};
use crate::report::growers::{GrowerLine, GrowersChart, MAX_LINES};
use crate::report::live::LiveMode;
use crate::report::output::{Dest, Outputs, local_stamp};
use crate::report::prometheus::Exporter;
use crate::report::summary::{
    BesideSummary, Files, MachineSummary, OpenFiles, Summary, TargetSummary, UnitVerdict,
};
use crate::report::table::TableView;
use crate::report::{ci, text};
use crate::sampler::machine::{MachinePlan, MachineResult, MachineSink, watch_machine};
use crate::units::{Delta, Rate, whole_bytes, whole_delta};
use std::path::Path;
use std::time::Duration;

/// CPU time per live unit and tick that judging may take: at 1 Hz, 1 µs of each process's
/// sample. An analysis of a full series (256 points) takes ~18 µs here, so with every
/// process's memory moving, each is judged again every ~18 s rather than every 10 s (the top
/// of the ranking is judged whatever the budget).
const JUDGE_BUDGET_PER_UNIT: Duration = Duration::from_nanos(1000);

pub fn machine(config: &MachineConfig) -> Result<Exit> {
    let interrupts = Interrupts::install().map_err(|e| Error::Io {
        context: "cannot set up signal handling".into(),
        source: e,
    })?;
    let Started {
        limit,
        outputs,
        mut sinks,
        notes,
    } = start(config)?;
    let mut machine = Machine::new(config.filter.clone(), config.group_by, limit.budget())
        .map_err(|e| Error::Io {
            context: "cannot read /proc/loadavg".into(),
            source: e,
        })?;
    let mut board = Board::new(
        config.analysis.metric,
        config.analysis.thresholds,
        config.group_by.is_some(),
    );
    let result = sample(config, &mut machine, &mut board, &interrupts, &mut sinks);
    drop(sinks); // the terminal is the shell's again
    let result = result?;
    let judged = judge_all(config, &mut board, &result)?;
    let (summary, top, exit) = summarize(config, &board, &result, &judged, limit, &outputs, notes);
    Ok(conclude(
        config, &board, &result, &judged, summary, top, exit, &outputs,
    ))
}

/// What the run writes to while it samples, and the terminal it holds.
struct Sinks {
    /// Declared first: dropped (the terminal given back) after the view has left it.
    table: TableView,
    keys: Option<Keys>,
    csv: BatchCsv,
    exporter: Option<Exporter>,
}

struct Started {
    limit: FdLimit,
    outputs: Outputs,
    sinks: Sinks,
    notes: Vec<String>,
}

/// Raises the open-file limit, binds the listener, opens the outputs: anything that can fail
/// fails here, before the first tick.
fn start(config: &MachineConfig) -> Result<Started> {
    let limit = fdlimit::raise().map_err(|e| Error::Io {
        context: "cannot read the open-file limit".into(),
        source: e,
    })?;
    let mut notes = Vec::new();
    if limit.raised() {
        notes.push(format!(
            "raised the open-file limit from {} to {} (one file is kept open per process)",
            limit.was, limit.now
        ));
    }
    let listener = config.prometheus.start_listener()?;
    if let Some((_, addr)) = &listener {
        notes.push(format!("serving the metrics at http://{addr}/metrics"));
    }
    let textfile = config.prometheus.open_textfile().map_err(Error::Usage)?;
    let mut outputs = config
        .outputs
        .resolve_named(&format!("memwatch-all-{}", local_stamp()));
    let csv = outputs.create_csv().and_then(|out| {
        BatchCsv::new(out).map_err(|source| Error::Output {
            path: outputs.csv.display().into(),
            source,
        })
    })?;
    let exporter = config.prometheus.is_on().then(|| {
        Exporter::for_machine(
            textfile,
            listener.map(|(shared, _)| shared),
            config.prometheus.top,
            config.group_by.map_or("", GroupBy::word),
        )
    });
    let mode = LiveMode::detect(config.quiet);
    let keys = match mode {
        LiveMode::Terminal { .. } => Keys::take_terminal(),
        _ => None,
    };
    if !config.quiet {
        for note in &notes {
            text::notice(note);
        }
    }
    Ok(Started {
        limit,
        outputs,
        sinks: Sinks {
            table: TableView::new(mode, config.group_by.is_some(), keys.is_some()),
            keys,
            csv,
            exporter,
        },
        notes,
    })
}

/// Samples until --duration, a stop request or `q`.
fn sample(
    config: &MachineConfig,
    machine: &mut Machine,
    board: &mut Board,
    interrupts: &Interrupts,
    sinks: &mut Sinks,
) -> Result<MachineResult> {
    crate::footprint::release_startup_pages();
    let plan = MachinePlan {
        interval: config.sampling.interval,
        duration: config.sampling.duration,
        judge_budget_per_unit: JUDGE_BUDGET_PER_UNIT,
    };
    let Sinks {
        table,
        keys,
        csv,
        exporter,
    } = sinks;
    let mut all: Vec<&mut dyn MachineSink> = vec![table, csv];
    if let Some(e) = exporter.as_mut() {
        all.push(e);
    }
    let result = watch_machine(machine, board, &plan, keys.as_ref(), interrupts, &mut all);
    for sink in all.iter_mut() {
        sink.finish();
    }
    result
}

/// Every unit judged on all it has, fastest growers first, with its gate; and the machine's
/// total judged as `memwatch report` judges the CSV's `total` rows.
struct Judged {
    units: Vec<(u32, Analysis, GateResult)>,
    total: Option<Analysis>,
}

fn judge_all(config: &MachineConfig, board: &mut Board, result: &MachineResult) -> Result<Judged> {
    let metric = config.analysis.metric.name();
    let units = board
        .finish(result.duration_s)
        .into_iter()
        .map(|(id, a)| {
            let g = gate::evaluate(&Figures::of(&a, metric), &config.limits);
            (id, a, g)
        })
        .collect();
    let total = judge(&result.recording, &config.analysis)
        .ok()
        .map(|j| j.analysis);
    Ok(Judged { units, total })
}

/// The exit code of `--all` (README, "Exit codes"): 1 when any judged process (or group)
/// grows or breaches a limit; 3 when none was watched long enough to judge (1 with
/// --fail-on-inconclusive); 0 otherwise.
pub fn machine_exit(units: &[(Verdict, bool)], fail_on_inconclusive: bool) -> Exit {
    if units
        .iter()
        .any(|&(v, breached)| v == Verdict::Growing || breached)
    {
        Exit::Grew
    } else if units.is_empty() {
        if fail_on_inconclusive {
            Exit::Grew
        } else {
            Exit::Inconclusive
        }
    } else {
        Exit::Passed
    }
}

/// How a unit is named in words: `4242 (leaky)`, `php-fpm (12 processes)`.
fn who(u: &Unit) -> String {
    match u.pid() {
        Some(pid) => format!("pid {pid} ({})", u.name),
        None => format!("{} ({} processes)", u.name, u.members_seen),
    }
}

/// summary.json and the end-of-run text: the top-ranked unit's verdict at the top (its
/// figures, named in its reason), every judged unit under `machine`. Returns the summary,
/// the analysis shown with the verdict, and the exit code before the files are written.
fn summarize(
    config: &MachineConfig,
    board: &Board,
    result: &MachineResult,
    judged: &Judged,
    limit: FdLimit,
    outputs: &Outputs,
    notes: Vec<String>,
) -> (Summary, Analysis, Exit) {
    let metric = config.analysis.metric.name();
    let verdicts: Vec<(Verdict, bool)> = judged
        .units
        .iter()
        .map(|(_, a, g)| (a.verdict, !g.breaches.is_empty()))
        .collect();
    let exit = machine_exit(&verdicts, config.limits.fail_on_inconclusive);
    let top_unit = judged
        .units
        .first()
        .and_then(|(id, a, g)| Some((board.unit(*id)?, a, g)));
    let (top, gate) = match top_unit {
        Some((u, a, g)) => {
            let mut a = a.clone();
            a.reason = format!("{}: {}", who(u), a.reason);
            (a, Some(g.clone()))
        }
        None => {
            let mut a = analyze::analyze(&[], &[], &[], &config.analysis.thresholds);
            a.duration_s = result.duration_s;
            a.reason = "no process was watched long enough to judge: each needs 10 samples \
                        after its own warm-up (at least 10 s)"
                .into();
            (a, None)
        }
    };
    let mut summary = Summary::new(&top, metric, exit);
    summary.missed_samples = Some(result.missed);
    if config.limits.is_set() {
        summary.gate = gate;
    }
    summary.target = top_unit.and_then(|(u, _, _)| target_summary(u, result));
    summary.files = Files {
        csv: outputs.csv.file().map(|p| p.display().to_string()),
        json: outputs.json.file().map(|p| p.display().to_string()),
        png: outputs.png.file().map(|p| p.display().to_string()),
    };
    let counts = board.counts();
    let scans = result.scans;
    summary.machine = Some(MachineSummary {
        group_by: config.group_by.map(|g| g.word().to_string()),
        user: config.user.clone(),
        name: config.name.clone(),
        processes_seen: counts.processes_seen,
        watched_at_end: counts.live,
        duration_s: result.duration_s,
        stop: result.stop.key().to_string(),
        judged: judged.units.len(),
        growing: verdicts.iter().filter(|v| v.0 == Verdict::Growing).count(),
        ticks: result.taken,
        open_files: OpenFiles {
            was: limit.was,
            raised_to: limit.now,
            hard: limit.hard,
        },
        reopened_max: result.degraded_max,
        full_scans: scans.full,
        probes: scans.probes,
        probed_pids: scans.probed_pids,
        listings: scans.listings,
        total: judged
            .total
            .as_ref()
            .map(|a| BesideSummary::new(a, &format!("total {metric}"))),
        processes: judged
            .units
            .iter()
            .filter_map(|(id, a, g)| Some(unit_verdict(board.unit(*id)?, a, g)))
            .collect(),
    });
    summary.story.notes = notes;
    summary.story.how = Some(result.stop.describe());
    (summary, top, exit)
}

fn unit_verdict(u: &Unit, a: &Analysis, g: &GateResult) -> UnitVerdict {
    UnitVerdict {
        pid: u.pid(),
        start_time_ticks: match u.key {
            crate::board::UnitKey::Process { start_time, .. } => Some(start_time),
            crate::board::UnitKey::Group(_) => None,
        },
        name: u.name.clone(),
        processes: u.members_seen,
        first_s: u.series.first_s(),
        last_s: u.series.last_s(),
        ended: !u.is_live(),
        verdict: a.verdict,
        pattern: a.pattern,
        reason: a.reason.clone(),
        slope_bytes_per_s: a.slope_bytes_per_s,
        slope_pct_per_hour: a.slope_pct_per_hour,
        growth_bytes: a.growth_bytes.and_then(whole_delta),
        p_value: a.p_value,
        start_bytes: whole_bytes(a.start_bytes),
        end_bytes: whole_bytes(a.end_bytes),
        peak_bytes: whole_bytes(a.peak_bytes),
        samples: a.samples,
        samples_analysed: a.samples_analysed,
        warmup_s: a.warmup_s,
        breaches: g.breaches.iter().map(|b| b.message.clone()).collect(),
    }
}

/// The top unit as summary.json's `target`, when it is a process.
fn target_summary(u: &Unit, result: &MachineResult) -> Option<TargetSummary> {
    let crate::board::UnitKey::Process { pid, start_time } = u.key else {
        return None;
    };
    let command = std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .filter(|c| !c.is_empty() && u.is_live())
        .map(|c| {
            String::from_utf8_lossy(&c)
                .trim_end_matches('\0')
                .replace('\0', " ")
        })
        .unwrap_or_else(|| u.name.clone());
    Some(TargetSummary {
        pid,
        name: u.name.clone(),
        command,
        start_time_ticks: start_time,
        ended: if u.is_live() {
            "still running".into()
        } else {
            "exited during the run".into()
        },
        exit_code: None,
        signal: None,
        stopped_by_memwatch: false,
        stop: result.stop.key().to_string(),
        tree_processes: None,
        tree: None,
    })
}

/// The chart's lines: the top judged units that still have their series, then, while there
/// is room, the top of the live ranking not judged yet (a short run still shows what grew).
fn grower_lines(board: &Board, judged: &Judged) -> Vec<GrowerLine> {
    let (mut t, mut v) = (Vec::new(), Vec::new());
    let mut line = |u: &Unit, words: String, growing: bool| {
        u.series.fill(&mut t, &mut v);
        GrowerLine {
            label: format!("{}: {words}", who(u)),
            t: t.clone(),
            v: v.clone(),
            growing,
        }
    };
    let mut lines: Vec<GrowerLine> = Vec::new();
    let mut drawn: Vec<u32> = Vec::new();
    for (id, a, _) in &judged.units {
        let Some(u) = board.unit(*id).filter(|u| !u.series.is_empty()) else {
            continue;
        };
        if lines.len() == MAX_LINES {
            break;
        }
        let growing = a.verdict == Verdict::Growing;
        let slope = match a.slope_bytes_per_s {
            Some(slope) if growing => format!(", {}", Rate(slope)),
            _ => String::new(),
        };
        lines.push(line(
            u,
            format!("{} ({}){slope}", a.verdict, a.pattern),
            growing,
        ));
        drawn.push(*id);
    }
    for &id in board.order() {
        if lines.len() == MAX_LINES {
            break;
        }
        if drawn.contains(&id) {
            continue;
        }
        if let Some(u) = board.unit(id).filter(|u| !u.series.is_empty()) {
            let words = format!(
                "not judged yet, {} since first read",
                Delta(u.growth_bytes() as f64)
            );
            lines.push(line(u, words, false));
        }
    }
    lines
}

/// The end-of-run text and the end reports, each written on its own; a file that could not
/// be written makes the exit code 2.
#[allow(clippy::too_many_arguments)]
fn conclude(
    config: &MachineConfig,
    board: &Board,
    result: &MachineResult,
    judged: &Judged,
    summary: Summary,
    top: Analysis,
    exit: Exit,
    outputs: &Outputs,
) -> Exit {
    let gate = summary
        .gate
        .clone()
        .unwrap_or_else(|| gate::evaluate(&Figures::of(&top, &summary.metric), &config.limits));
    let empty = Recording::default();
    let chart = ChartContext::default();
    let end = RunEnd {
        recording: &empty,
        analysis: &top,
        metric: config.analysis.metric,
        summary: &summary,
        gate: &gate,
        chart: &chart,
    };
    if !config.quiet {
        text::machine_story(&summary);
    }
    let stdout_busy = matches!(outputs.json, Dest::Stdout) || matches!(outputs.csv, Dest::Stdout);
    let mut reports: Vec<Box<dyn EndReport>> = vec![
        Box::new(GrowersChart {
            dest: outputs.png.clone(),
            size: config.outputs.png_size,
            lines: grower_lines(board, judged),
            duration_s: result.duration_s,
        }),
        Box::new(end::SummaryJson(outputs.json.clone())),
    ];
    if let Some(path) = ci::step_summary_path() {
        reports.push(Box::new(end::StepSummary(path)));
    }
    if ci::in_github_actions() {
        reports.push(Box::new(end::Annotations {
            to_stderr: stdout_busy,
        }));
    }
    let mut files = text::Files {
        written: outputs
            .csv
            .file()
            .map(Path::to_path_buf)
            .into_iter()
            .collect(),
        ..text::Files::default()
    };
    super::write_reports(reports, &end, &mut files);
    let color = LiveMode::detect(config.quiet).color();
    text::outcome(&end, &files, config.quiet, color);
    if files.failed.is_empty() {
        exit
    } else {
        Exit::Trouble
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_rule() {
        use Verdict::*;
        assert_eq!(
            machine_exit(&[(Stable, false), (Growing, false)], false),
            Exit::Grew
        );
        assert_eq!(
            machine_exit(&[(Stable, false), (Stable, true)], false),
            Exit::Grew
        );
        assert_eq!(machine_exit(&[(Stable, false)], false), Exit::Passed);
        assert_eq!(machine_exit(&[], false), Exit::Inconclusive);
        assert_eq!(machine_exit(&[], true), Exit::Grew);
    }
}
