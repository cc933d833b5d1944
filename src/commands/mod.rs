//! The commands, each in its own file, and what every run ends with. `lib::run` dispatches
//! a checked `config::Command` here.

pub mod heap;
pub mod report;
pub mod watch;

use crate::analyze::{Analysis, Verdict};
use crate::exit::Exit;
use crate::gate::{self, Figures, Limits};
use crate::recording::Recording;
use crate::report::chart::ChartContext;
use crate::report::end::{self, RunEnd, Written};
use crate::report::output::Dest;
use crate::report::summary::{BesideSummary, Summary};
use crate::sample::Metric;
use crate::units::{Bytes, Count, Delta, Elapsed};
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
    pub png: &'a Dest,
    pub png_size: (u32, u32),
    pub junit: Option<&'a Path>,
    pub limits: &'a Limits,
    /// stdout carries data (`--csv -`, `--json -`): CI annotations go to stderr.
    pub stdout_busy: bool,
    pub quiet: bool,
    pub color: bool,
}

/// The gate beside the verdict, then every end report, each written on its own. The
/// verdict is printed whatever happens to the files; a file that could not be written
/// is named, and makes the exit code 2 once everything else is written.
pub fn conclude(run: Finished<'_>) -> Exit {
    let Finished {
        mut summary,
        mut written,
        ..
    } = run;
    let gate = gate::evaluate(&Figures::of(run.analysis, &summary.metric), run.limits);
    let exit = gate.exit_code(run.base_exit);
    summary.exit_code = exit.code();
    if run.limits.is_set() {
        summary.gate = Some(gate.clone());
    }
    let chart = ChartContext {
        run: match (&summary.target, &summary.source) {
            (Some(t), _) => {
                let run =
                    ChartContext::describe_run(t.pid, &t.command, summary.duration_s, &t.ended);
                match t.tree_processes {
                    // --tree: say that the figures are the sum over the tree.
                    Some(n) => format!("{run} · the sum over {}", Count(n as u64, "process")),
                    None => run,
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
    };
    let end = RunEnd {
        recording: run.recording,
        analysis: run.analysis,
        metric: run.metric,
        summary: &summary,
        gate: &gate,
        chart: &chart,
    };
    let mut failed = Vec::new();
    let mut skipped = Vec::new();
    for report in end::plan(run.json, run.png, run.png_size, run.junit, run.stdout_busy) {
        match report.write(&end) {
            Ok(Written::File(path)) => written.push(path),
            Ok(Written::Elsewhere) => {}
            Ok(Written::Skipped(why)) => skipped.push(why),
            Err(e) => failed.push(format!("cannot write {}: {e}", report.name())),
        }
    }
    if !run.quiet {
        for why in &skipped {
            eprintln!("memwatch: {why}");
        }
        print_verdict(run.analysis, &summary.metric, run.color);
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
    for failure in &failed {
        eprintln!("memwatch: error: {failure}");
    }
    if failed.is_empty() {
        exit
    } else {
        Exit::Trouble
    }
}

/// The run's figures on RSS, one line; says so plainly when there is nothing to show.
pub fn print_figures(rec: &Recording, missed: u64) {
    let rss = rec.line(Metric::Rss);
    let known = || rss.iter().flat_map(|l| l.iter()).filter(|v| v.is_finite());
    let (Some(start), Some(last)) = (known().next(), known().next_back()) else {
        eprintln!("memwatch: no samples ({} missed): nothing to judge", missed);
        return;
    };
    let peak = known().fold(0.0, f64::max);
    eprintln!(
        "memwatch: RSS start {}  end {}  peak {}  growth {}  |  {} over {}, {missed} missed",
        Bytes(start),
        Bytes(last),
        Bytes(peak),
        Delta(last - start),
        Count(rec.len() as u64, "sample"),
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
        a.pattern,
        a.reason
    );
}
