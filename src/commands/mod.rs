//! The commands, each in its own file, and what every run ends with. `lib::run` dispatches
//! a checked `config::Command` here. Commands print nothing themselves: what people read
//! at the end is `report::text`, written from the Summary.

pub mod heap;
pub mod man;
pub mod report;
pub mod watch;

use crate::analyze::Analysis;
use crate::exit::Exit;
use crate::gate::{self, Figures, Limits};
use crate::recording::Recording;
use crate::report::chart::ChartContext;
use crate::report::end::{self, RunEnd, Written};
use crate::report::output::Dest;
use crate::report::summary::{BesideSummary, Summary};
use crate::report::text;
use crate::sample::Metric;
use crate::units::{Count, Elapsed};
use std::path::{Path, PathBuf};

/// A finished run (live or re-analysed), ready for the gate and the end reports.
pub struct Finished<'a> {
    pub recording: &'a Recording,
    pub analysis: &'a Analysis,
    /// The metric drawn on the chart.
    pub metric: Metric,
    pub summary: Summary,
    /// The exit code before the gate: the verdict's, or 4 when the command or load failed.
    pub base_exit: Exit,
    /// Files already written (the samples CSV).
    pub written: Vec<PathBuf>,
    pub json: &'a Dest,
    /// `None`: no chart (`report --no-png`).
    pub png: Option<&'a Dest>,
    pub png_size: (u32, u32),
    pub junit: Option<&'a Path>,
    pub limits: &'a Limits,
    /// stdout carries data (`--csv -`, `--json -`): CI annotations go to stderr.
    pub stdout_busy: bool,
    pub quiet: bool,
    pub color: bool,
    /// What the chart draws beside the samples and the analysis (a tree's top processes, a
    /// cgroup's limit, a followed target's lives); its words about the run come from the
    /// summary.
    pub chart: ChartContext,
}

/// The gate beside the verdict, then every end report, each written on its own. The
/// verdict is printed whatever happens to the files; a file that could not be written
/// is named, and makes the exit code 2 once everything else is written.
pub fn conclude(run: Finished<'_>) -> Exit {
    let Finished {
        mut summary,
        written,
        chart,
        ..
    } = run;
    let mut figures = Figures::of(run.analysis, &summary.metric);
    figures.limit = summary
        .cgroup
        .as_ref()
        .map(crate::report::services::CgroupSummary::figures);
    let gate = gate::evaluate(&figures, run.limits);
    let exit = gate.exit_code(run.base_exit);
    summary.exit_code = exit.code();
    if run.limits.is_set() {
        summary.gate = Some(gate.clone());
    }
    let chart = chart_context(&summary, chart);
    let end = RunEnd {
        recording: run.recording,
        analysis: run.analysis,
        metric: run.metric,
        summary: &summary,
        gate: &gate,
        chart: &chart,
    };
    if !run.quiet {
        text::story(&end);
    }
    let mut files = text::Files {
        written,
        ..text::Files::default()
    };
    for report in end::plan(run.json, run.png, run.png_size, run.junit, run.stdout_busy) {
        match report.write(&end) {
            Ok(Written::File(path)) => files.written.push(path),
            Ok(Written::Elsewhere) => {}
            Ok(Written::Skipped(why)) => files.skipped.push(why),
            // The report's name already says which file: the cause alone after it.
            Err(crate::Error::Output { source, .. }) => files
                .failed
                .push(format!("cannot write {}: {source}", report.name())),
            Err(e) => files
                .failed
                .push(format!("cannot write {}: {e}", report.name())),
        }
    }
    text::outcome(&end, &files, run.quiet, run.color);
    if files.failed.is_empty() {
        exit
    } else {
        Exit::Trouble
    }
}

/// What the chart says about the run beside the samples, added to what it draws (`base`).
fn chart_context(summary: &Summary, base: ChartContext) -> ChartContext {
    ChartContext {
        run: match (&summary.target, &summary.source) {
            (Some(t), _) => {
                let run =
                    ChartContext::describe_run(t.pid, &t.command, summary.duration_s, &t.ended);
                let total = summary.tree_total.as_ref().map(|t| t.judged);
                match (t.tree_processes, total) {
                    (Some(n), Some(crate::report::services::TotalKind::Cgroup)) => format!(
                        "{run} · {} in memwatch's cgroup",
                        Count(n as u64, "process")
                    ),
                    (Some(n), Some(crate::report::services::TotalKind::PssSum)) => {
                        format!("{run} · the PSS sum over {}", Count(n as u64, "process"))
                    }
                    // --tree: say that the figures are the sum over the tree.
                    (Some(n), _) => format!("{run} · the sum over {}", Count(n as u64, "process")),
                    (None, _) => run,
                }
            }
            (None, Some(src)) => format!("{} · {}", src.file, Elapsed(summary.duration_s)),
            (None, None) => String::new(),
        },
        judged: summary.metric.clone(),
        beside: summary
            .beside
            .as_ref()
            .map(BesideSummary::words)
            .unwrap_or_default(),
        ..base
    }
}
