//! `memwatch report FILE`: re-analyse and re-plot a recording, with the same judge as a
//! live run: what the live run judged (a tree's PSS total, a cgroup: its `judged:` mark), a
//! followed target's lives, the cgroup against its limit.

use crate::commands::{Finished, conclude};
use crate::config::ReportConfig;
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::gate::verdict_exit;
use crate::judge::{AnalysisConfig, Judged, judge};
use crate::recording::{Kept, Recording};
use crate::report::chart::{ChartContext, LimitLine};
use crate::report::input::{Loaded, ReadOptions, read_recording_with};
use crate::report::live::LiveMode;
use crate::report::output::{Dest, report_dests};
use crate::report::services::{CgroupSummary, FollowSummary, TotalKind};
use crate::report::summary::{Files, SourceSummary, Summary};
use crate::sample::Metric;
use crate::segments;

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
    let mut keep = ReadOptions::to_judge(metric);
    if metric == Metric::Rss {
        // A tree judged on its PSS total says so in the file: PSS is then judged.
        keep.keep = Some(Kept::new(
            &[
                Metric::Rss,
                Metric::Pss,
                Metric::HeapAfterGc,
                Metric::External,
            ],
            &[Metric::Anon],
        ));
    }
    let loaded = read_recording_with(file, &keep).map_err(|e| Error::Usage(e.to_string()))?;
    let mark = loaded
        .recording
        .events
        .iter()
        .find_map(|e| e.kind.judged_series().map(str::to_string));
    let asked_default = metric == Metric::Rss && !config.judge_cgroup;
    let judge_cgroup = config.judge_cgroup || (asked_default && mark.as_deref() == Some("cgroup"));
    let pss_total = asked_default && mark.as_deref() == Some(TotalKind::PssSum.key());
    let mut analysis = config.analysis.clone();
    if pss_total {
        analysis.metric = Metric::Pss;
    }
    let cgroup_rec = loaded.cgroup();
    let rec: &Recording = if judge_cgroup {
        cgroup_rec.ok_or_else(|| {
            Error::Usage(
                "--metric cgroup: the recording has no cgroup rows: record with --cgroup".into(),
            )
        })?
    } else {
        &loaded.recording
    };
    if !judge_cgroup && let Some(problem) = loaded.metric_problem(analysis.metric) {
        return Err(Error::Usage(format!("--metric {metric}: {problem}")));
    }
    let (mut judged, followed) = judge_recording(&loaded, rec, &analysis, judge_cgroup)?;
    if judge_cgroup {
        judged.series = "cgroup".into();
    }
    let base_exit = verdict_exit(judged.analysis.verdict);
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
    let mut chart = ChartContext::default();
    if let Some(c) = cgroup_rec {
        cgroup_beside(
            c,
            &loaded,
            &judged,
            &analysis,
            judge_cgroup,
            &mut summary,
            &mut chart,
        )?;
    }
    if judge_cgroup {
        chart.label = "cgroup".into();
    } else if pss_total {
        chart.label = "total pss".into();
    }
    if let Some(f) = &followed {
        chart.lives = crate::report::services::life_marks(f);
        summary.follow = Some(FollowSummary::new(f, None, &[]));
    }
    // A run with --native: its stacks again, from native.folded beside the recording.
    summary.native = crate::report::native::from_recording(file, rec, &judged.analysis);
    Ok(conclude(Finished {
        recording: rec,
        analysis: &judged.analysis,
        metric: analysis.metric,
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
        chart,
    }))
}

/// Judges the recording as the live run did: a followed target's lives (its `restart`
/// events) one by one and joined, else the judged series as it is.
fn judge_recording(
    loaded: &Loaded,
    rec: &Recording,
    analysis: &AnalysisConfig,
    judge_cgroup: bool,
) -> Result<(Judged, Option<segments::Followed>)> {
    let restarted = rec.events.iter().any(|e| e.kind.restarted().is_some());
    if restarted
        && !judge_cgroup
        && let Some(values) = rec.metric(analysis.metric)
    {
        // The first life's process: the first process series to appear.
        let first_pid = loaded
            .segments()
            .into_iter()
            .min_by(|a, b| a.start_s.total_cmp(&b.start_s))
            .map(|s| s.pid);
        let lives = segments::lives(rec, values, first_pid);
        if lives.len() >= 2 {
            let f = segments::judge(
                &rec.time_s,
                values,
                &rec.dump_periods(),
                &lives,
                &analysis.thresholds,
            );
            let judged = Judged {
                analysis: f.whole.clone(),
                series: analysis.metric.name().into(),
                note: None,
                beside: None,
            };
            return Ok((judged, Some(f)));
        }
    }
    Ok((judge(rec, analysis)?, None))
}

/// The recording's memory cgroup against its limit, in the summary and on the chart: its own
/// verdict (the judged one when it is judged).
fn cgroup_beside(
    c: &Recording,
    loaded: &crate::report::input::Loaded,
    judged: &crate::judge::Judged,
    analysis: &AnalysisConfig,
    judge_cgroup: bool,
    summary: &mut Summary,
    chart: &mut ChartContext,
) -> Result<()> {
    let own = if judge_cgroup {
        judged.analysis.clone()
    } else {
        let cfg = AnalysisConfig {
            metric: Metric::Rss,
            ..analysis.clone()
        };
        judge(c, &cfg)?.analysis
    };
    let last = c
        .line(Metric::Rss)
        .and_then(|l| l.iter().rev().find(|v| v.is_finite()));
    let limit = loaded.limit_bytes.map(|l| (l, None));
    let cgroup = CgroupSummary::new("", &own, last, None, limit);
    chart.notes.push(format!("{}.", cgroup.words));
    chart.limit = cgroup.limit_bytes.map(|bytes| LimitLine {
        bytes,
        in_range: judge_cgroup,
    });
    summary.cgroup = Some(cgroup);
    Ok(())
}
