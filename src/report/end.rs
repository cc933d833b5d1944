//! What is written once, when a run is over: summary.json, the chart, JUnit XML, the GitHub
//! step summary and annotations. One trait; each format lives in its own file and is called
//! from here. The destinations were checked before the run started; each report is written
//! on its own, so one failure (a full disk) does not take the others with it.

use crate::analyze::Analysis;
use crate::error::{Error, Result};
use crate::gate::GateResult;
use crate::recording::Recording;
use crate::report::output::{Dest, write_atomic};
use crate::report::summary::Summary;
use crate::report::{chart, ci};
use crate::sample::Metric;
use std::path::PathBuf;

/// Everything an end report may draw on.
pub struct RunEnd<'a> {
    pub recording: &'a Recording,
    pub analysis: &'a Analysis,
    /// The metric drawn (the judged series is `summary.metric`).
    pub metric: Metric,
    pub summary: &'a Summary,
    pub gate: &'a GateResult,
    /// What the chart says about the target and the run.
    pub chart: &'a chart::ChartContext,
}

/// What became of one end report.
#[derive(Debug)]
pub enum Written {
    File(PathBuf),
    /// Written somewhere that is not a file (stdout, an append, annotations).
    Elsewhere,
    /// Nothing to write, and why (e.g. no samples to draw).
    Skipped(String),
}

/// A report written once at the end of a run.
pub trait EndReport {
    /// How the report is named in messages.
    fn name(&self) -> String;
    /// Writes it.
    fn write(&self, end: &RunEnd<'_>) -> Result<Written>;
}

fn written(dest: &Dest) -> Written {
    dest.file()
        .map_or(Written::Elsewhere, |p| Written::File(p.to_path_buf()))
}

/// summary.json (or stdout).
pub struct SummaryJson(pub Dest);

impl EndReport for SummaryJson {
    fn name(&self) -> String {
        format!("the summary '{}'", self.0.display())
    }
    fn write(&self, end: &RunEnd<'_>) -> Result<Written> {
        write_atomic(&self.0, end.summary.to_json().as_bytes())?;
        Ok(written(&self.0))
    }
}

/// memory.png.
pub struct Chart {
    pub dest: Dest,
    pub size: (u32, u32),
}

impl EndReport for Chart {
    fn name(&self) -> String {
        format!("the chart '{}'", self.dest.display())
    }
    fn write(&self, end: &RunEnd<'_>) -> Result<Written> {
        match chart::render_png(
            end.recording,
            end.metric,
            end.analysis,
            self.size,
            end.chart,
        ) {
            Ok(bytes) => {
                write_atomic(&self.dest, &bytes)?;
                Ok(written(&self.dest))
            }
            Err(e) => Ok(Written::Skipped(format!("no chart: {e}"))),
        }
    }
}

/// `--junit FILE`.
pub struct Junit(pub PathBuf);

impl EndReport for Junit {
    fn name(&self) -> String {
        format!("the JUnit report '{}'", self.0.display())
    }
    fn write(&self, end: &RunEnd<'_>) -> Result<Written> {
        let xml = ci::junit_xml(end.summary, end.gate).map_err(Error::Usage)?;
        write_atomic(&Dest::File(self.0.clone()), xml.as_bytes())?;
        Ok(Written::File(self.0.clone()))
    }
}

/// The GitHub Actions job summary (`GITHUB_STEP_SUMMARY`), appended to.
pub struct StepSummary(pub PathBuf);

impl EndReport for StepSummary {
    fn name(&self) -> String {
        format!("GITHUB_STEP_SUMMARY '{}'", self.0.display())
    }
    fn write(&self, end: &RunEnd<'_>) -> Result<Written> {
        // The job summary is a courtesy of the CI system: failing to append is a warning.
        if let Err(e) = ci::append_step_summary(&self.0, &ci::markdown(end.summary, end.gate)) {
            return Ok(Written::Skipped(format!(
                "warning: cannot append to GITHUB_STEP_SUMMARY '{}': {e}",
                self.0.display()
            )));
        }
        Ok(Written::Elsewhere)
    }
}

/// GitHub Actions annotations (`::error`), read from stdout; on stderr when stdout carries
/// data (`--csv -`, `--json -`).
pub struct Annotations {
    pub to_stderr: bool,
}

impl EndReport for Annotations {
    fn name(&self) -> String {
        "the GitHub annotations".into()
    }
    fn write(&self, end: &RunEnd<'_>) -> Result<Written> {
        for line in ci::github_annotations(end.summary, end.gate) {
            if self.to_stderr {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
        }
        Ok(Written::Elsewhere)
    }
}

/// The end reports of a run, in the order they are written (the chart first: the summary
/// is the one CI tools read, so it comes last among the files).
pub fn plan(
    json: &Dest,
    png: Option<&Dest>,
    png_size: (u32, u32),
    junit: Option<&std::path::Path>,
    stdout_busy: bool,
) -> Vec<Box<dyn EndReport>> {
    let mut reports: Vec<Box<dyn EndReport>> = Vec::new();
    if let Some(png) = png {
        reports.push(Box::new(Chart {
            dest: png.clone(),
            size: png_size,
        }));
    }
    reports.push(Box::new(SummaryJson(json.clone())));
    if let Some(path) = junit {
        reports.push(Box::new(Junit(path.to_path_buf())));
    }
    if let Some(path) = ci::step_summary_path() {
        reports.push(Box::new(StepSummary(path)));
    }
    if ci::in_github_actions() {
        reports.push(Box::new(Annotations {
            to_stderr: stdout_busy,
        }));
    }
    reports
}
