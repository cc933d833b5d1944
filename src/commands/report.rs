//! `memwatch report FILE`: re-analyse and re-plot a recording, with the same judge as a
//! live run.

use crate::commands::{Finished, conclude};
use crate::config::ReportConfig;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::gate::verdict_exit;
use crate::judge::judge;
use crate::report::input::{ReadOptions, read_recording_with};
use crate::report::live::LiveMode;
use crate::report::output::{Dest, report_dests};
use crate::report::summary::{Files, SourceSummary, Summary};

pub fn report(config: &ReportConfig) -> Result<Exit> {
    let file = &config.file;
    // Every output is checked before the recording is even read.
    let dests = report_dests(
        file,
        config.json.as_deref(),
        config.png.as_deref(),
        !config.no_png,
        config.junit.as_deref(),
        config.force,
    )?;
    let (json, png) = (&dests.json, dests.png.as_ref());
    // Only the columns the analysis and the chart use: a big recording stays small in memory.
    let metric = config.analysis.metric;
    let keep = ReadOptions::to_judge(metric);
    let loaded = read_recording_with(file, &keep).map_err(|e| Error::Usage(e.to_string()))?;
    if let Some(problem) = loaded.metric_problem(metric) {
        return Err(Error::Usage(format!("--metric {metric}: {problem}")));
    }
    let rec = &loaded.recording;
    let judged = judge(rec, &config.analysis)?;
    let analysis = &judged.analysis;
    let base_exit = verdict_exit(analysis.verdict);
    let mut summary = Summary::of_judged(&judged, metric, base_exit);
    summary.source = Some(SourceSummary {
        file: file.display().to_string(),
        format: loaded.format.to_string(),
    });
    summary.events = rec.events.iter().map(Into::into).collect();
    summary.files = Files {
        csv: None,
        json: json.file().map(|p| p.display().to_string()),
        png: png.and_then(Dest::file).map(|p| p.display().to_string()),
    };
    summary.story.warnings = loaded.warnings.clone();
    summary.story.warnings.extend(dests.warning.clone());
    Ok(conclude(Finished {
        recording: rec,
        analysis,
        metric: config.analysis.metric,
        summary,
        base_exit,
        written: Vec::new(),
        json,
        png,
        png_size: config.png_size,
        junit: config.junit.as_deref(),
        limits: &config.limits,
        stdout_busy: matches!(json, Dest::Stdout),
        quiet: config.quiet,
        color: LiveMode::detect(false).color(),
    }))
}
