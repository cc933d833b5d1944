//! The end-of-run text on stderr, written from the `Summary` (as summary.json is) and the
//! recording it summarises, so the terminal and summary.json cannot say different things.
//! Two moments: `story` (what happened, before the files are written) and `outcome` (the
//! verdict, the gate, the files). `memwatch report` gets the same text where it applies.
//! A new end-of-run line goes here, from a field of the Summary.

use crate::analyze::Verdict;
use crate::judge::MANAGED;
use crate::recording::Recording;
use crate::report::end::RunEnd;
use crate::report::summary::Summary;
use crate::runtime::RuntimeKind;
use crate::sample::Metric;
use crate::units::{Bytes, Count, Delta, Elapsed, Printable};
use std::path::PathBuf;

/// A line for people before the run starts (a hint).
pub fn notice(message: &str) {
    eprintln!("memwatch: {message}");
}

/// What happened in the run: how it ended, its figures, what it collected and what that
/// says, up to the verdict.
pub fn story(end: &RunEnd<'_>) {
    let s = end.summary;
    // What leaks and what holds it, when heap snapshots say it: the first line.
    if let Some(headline) = s.heap_diff.as_ref().and_then(|d| d.headline.as_ref()) {
        eprintln!("memwatch: {}", Printable(headline));
    }
    for note in &s.story.notes {
        eprintln!("memwatch: {}", Printable(note));
    }
    for warning in &s.story.warnings {
        eprintln!("memwatch: warning: {}", Printable(warning));
    }
    if let (Some(t), Some(how)) = (&s.target, &s.story.how) {
        eprintln!("memwatch: pid {} ({}): {how}", t.pid, t.name);
    }
    if let Some(src) = &s.source {
        eprintln!(
            "memwatch: {} ({}): {} over {}",
            src.file,
            src.format,
            Count(end.recording.len() as u64, "sample"),
            Elapsed(end.recording.duration_s())
        );
    }
    figures(
        end.recording,
        end.metric,
        &figures_label(s),
        s.missed_samples,
    );
    collected(s);
    judged_series(end);
    if let Some(native) = &s.native {
        let runtime = s.runtime.as_ref().map(|r| r.kind.as_str());
        for line in crate::report::native::lines(native, runtime) {
            eprintln!("memwatch: {line}");
        }
    }
    if s.story.command_failed
        && let Some(t) = &s.target
    {
        eprintln!("memwatch: the command failed ({}): exit code 4", t.ended);
    }
    if s.load.as_ref().is_some_and(|l| l.failed) {
        eprintln!("memwatch: the load failed: exit code 4");
    }
}

/// What the figures line is about: RSS, or the series judged when it is another (a tree's
/// total, a cgroup).
fn figures_label(s: &Summary) -> String {
    match (&s.tree_total, s.metric.as_str()) {
        (Some(t), _) => format!("total ({})", t.judged.key()),
        (None, "cgroup") => "cgroup".to_string(),
        (None, _) => "RSS".to_string(),
    }
}

/// The run's figures on RSS (or the judged total), one line; says so plainly when there is
/// nothing to show.
fn figures(rec: &Recording, metric: Metric, label: &str, missed: Option<u64>) {
    let shown = if label == "RSS" { Metric::Rss } else { metric };
    let rss = rec.line(shown).or_else(|| rec.line(Metric::Rss));
    let known = || rss.iter().flat_map(|l| l.iter()).filter(|v| v.is_finite());
    let missed_words = missed.map(|m| format!(", {m} missed")).unwrap_or_default();
    let (Some(start), Some(last)) = (known().next(), known().next_back()) else {
        eprintln!(
            "memwatch: no samples ({} missed): nothing to judge",
            missed.unwrap_or(0)
        );
        return;
    };
    let peak = known().fold(0.0, f64::max);
    eprintln!(
        "memwatch: {label} first {}  last {} ({}, start-up and peaks included)  peak {}  |  {} \
         over {}{missed_words}",
        Bytes(start),
        Bytes(last),
        Delta(last - start),
        Bytes(peak),
        Count(rec.len() as u64, "sample"),
        Elapsed(rec.duration_s()),
    );
}

/// What the run collected: the tree's growth by process, heap dumps, the load, the
/// runtime, and what grew between heap snapshots or class histograms.
fn collected(s: &Summary) {
    if let Some(total) = &s.tree_total {
        eprintln!(
            "memwatch: the tree's total judged is {}: {}",
            total.judged.words(),
            total.why
        );
    }
    if let Some(tree) = s.target.as_ref().and_then(|t| t.tree.as_ref()) {
        tree_members(tree);
    }
    if let Some(f) = &s.follow {
        followed_lives(f);
    }
    if let Some(c) = &s.cgroup {
        eprintln!("memwatch: {}", c.words);
        if let Some(lost) = &c.lost {
            eprintln!("memwatch: {lost}");
        }
    }
    for d in &s.dumps {
        let state = d.completed_s.map_or_else(
            || "INCOMPLETE".to_string(),
            |t| format!("complete at {}", Elapsed(t)),
        );
        eprintln!(
            "memwatch: heap dump {} ({}, {state})",
            d.path,
            Bytes(d.bytes as f64)
        );
    }
    if let Some(l) = &s.load {
        eprintln!("memwatch: load '{}': {}", l.command, l.outcome);
    }
    if let Some(closed) = s.runtime.as_ref().and_then(|r| r.closed.as_ref()) {
        eprintln!("memwatch: runtime: {closed}");
    }
    what_grew_on_the_heap(s);
}

/// Which process of the tree the growth came from (those that grew at all), and which one
/// grows on its own.
fn tree_members(tree: &[crate::report::services::TreeProcess]) {
    let most: Vec<String> = tree
        .iter()
        .filter(|p| p.growth.growth_bytes() > 0)
        .take(3)
        .map(|p| {
            let g = &p.growth;
            format!("{} ({}) {}", g.pid, g.name, Delta(g.growth_bytes() as f64))
        })
        .collect();
    let grew = if most.is_empty() {
        "no process's RSS grew".to_string()
    } else {
        format!("RSS grew most in {}", most.join(", "))
    };
    eprintln!(
        "memwatch: the tree had {}; {grew}",
        Count(tree.len() as u64, "process"),
    );
    let judged = tree.iter().filter(|p| p.verdict.is_some()).count();
    let of = if judged == tree.len() {
        format!("all {judged} judged on their own")
    } else {
        format!(
            "{judged} of {} judged on their own, the others too short-lived",
            tree.len()
        )
    };
    match crate::report::services::grew_most(tree) {
        Some((p, v)) => eprintln!(
            "memwatch: grows on its own: {} ({}), {} ({}): {} ({of})",
            p.growth.pid, p.growth.name, v.verdict, v.pattern, v.reason
        ),
        None if judged > 0 => {
            eprintln!("memwatch: no process of the tree grows on its own ({of})")
        }
        None => {}
    }
}

/// Each life of a followed target, with its own verdict.
fn followed_lives(f: &crate::report::services::FollowSummary) {
    eprintln!(
        "memwatch: followed {} over {} ({}):",
        f.pattern.as_deref().unwrap_or("the target"),
        crate::segments::lives_word(f.lives.len()),
        Count(f.restarts as u64, "restart")
    );
    for (i, l) in f.lives.iter().enumerate() {
        let who = match (l.pid, &l.name) {
            (Some(pid), Some(name)) => format!("pid {pid} ({name})"),
            (Some(pid), None) => format!("pid {pid}"),
            _ => "the target".to_string(),
        };
        eprintln!(
            "memwatch:   life {}: {who}, {} to {}: {} ({}): {}",
            i + 1,
            Elapsed(l.start_s),
            Elapsed(l.end_s),
            l.verdict,
            l.pattern,
            l.reason
        );
    }
}

/// What grew between the heap snapshots or class histograms, or why they could not be
/// compared.
fn what_grew_on_the_heap(s: &Summary) {
    if let Some(diff) = &s.heap_diff {
        let names: Vec<String> = diff.snapshots.iter().map(|s| s.file.clone()).collect();
        eprintln!("memwatch: what grew on the heap ({}):", names.join(" -> "));
        for line in diff.brief(5).lines() {
            eprintln!("memwatch:   {line}");
        }
    }
    if let Some(rows) = &s.histogram_diff {
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
                Delta(r.bytes_delta as f64).to_string()
            );
        }
    }
    if let Some(e) = &s.heap_diff_error {
        eprintln!("memwatch: the heap snapshots could not be compared: {e}");
    }
}

/// Which series was judged and why, and the configured metric's own verdict beside it.
fn judged_series(end: &RunEnd<'_>) {
    let s = end.summary;
    if let Some(note) = &s.series_note {
        eprintln!("memwatch: {note}");
    }
    let kind = s
        .runtime
        .as_ref()
        .and_then(|r| RuntimeKind::from_name(&r.kind));
    if let (MANAGED, Some(kind)) = (s.metric.as_str(), kind) {
        eprintln!("memwatch: {}", managed_words(kind, end.analysis.samples));
    }
    if let Some(beside) = &s.beside {
        eprintln!(
            "memwatch: {} beside it: {} ({}): {}{}",
            beside.metric,
            beside.verdict.as_str(),
            beside.pattern,
            beside.reason,
            finding(end.analysis.verdict, beside.verdict)
        );
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
fn finding(judged: Verdict, beside: Verdict) -> &'static str {
    match (judged, beside) {
        (Verdict::Stable, Verdict::Growing) => {
            ". The managed heap after GC is flat while this grows: the runtime grows its heap \
             lazily, or memory outside the managed heap grows (a native leak)"
        }
        (Verdict::Growing, Verdict::Stable) => {
            ". The managed heap grows while this does not yet: the leak is real, RSS lags behind"
        }
        _ => "",
    }
}

/// What became of the end reports, for `outcome`.
#[derive(Debug, Default)]
pub struct Files {
    pub written: Vec<PathBuf>,
    /// Reports not written, and why (no samples to draw): said, not errors.
    pub skipped: Vec<String>,
    /// Reports that could not be written: errors, said even with --quiet.
    pub failed: Vec<String>,
}

/// The verdict, the gate's breaches and the files: the last lines of a run.
pub fn outcome(end: &RunEnd<'_>, files: &Files, quiet: bool, color: bool) {
    if !quiet {
        for why in &files.skipped {
            eprintln!("memwatch: {why}");
        }
        verdict(end, color);
        for breach in &end.gate.breaches {
            eprintln!("memwatch: gate failed: {}", breach.message);
        }
        // A limit on a figure the run does not have (issue 20 item 1): said, never passed.
        for check in end.gate.checks.iter().filter(|c| c.passed.is_none()) {
            eprintln!("memwatch: gate: {}", check.message);
        }
        if end.gate.inconclusive_failed {
            eprintln!(
                "memwatch: gate failed: the verdict is inconclusive and --fail-on-inconclusive is set"
            );
        }
        for file in &files.written {
            eprintln!("memwatch: wrote {}", file.display());
        }
    }
    for failure in &files.failed {
        eprintln!("memwatch: error: {}", Printable(failure));
    }
}

fn verdict(end: &RunEnd<'_>, color: bool) {
    let a = end.analysis;
    let (paint, reset) = match (color, a.verdict) {
        (false, _) => ("", ""),
        (true, Verdict::Growing) => ("\x1b[1;31m", "\x1b[0m"),
        (true, Verdict::Stable) => ("\x1b[1;32m", "\x1b[0m"),
        (true, Verdict::Inconclusive) => ("\x1b[1;33m", "\x1b[0m"),
    };
    eprintln!(
        "memwatch: {paint}{}{reset} ({}, {}): {}",
        a.verdict.as_str(),
        end.summary.metric,
        a.pattern,
        a.reason
    );
}

/// `--all`: what the whole machine's run watched, how, and the fastest growers, with the
/// limits each process beyond the first breached (the first one's are said with the
/// verdict, by `outcome`).
pub fn machine_story(s: &Summary) {
    let Some(m) = &s.machine else { return };
    for note in &s.story.notes {
        eprintln!("memwatch: {note}");
    }
    if let Some(how) = &s.story.how {
        eprintln!("memwatch: --all: {how}");
    }
    let units = if m.group_by.is_some() {
        "groups"
    } else {
        "processes"
    };
    eprintln!(
        "memwatch: watched {} over {} ({} {units} judged, {} growing); new processes found \
         by their PIDs on {}, by /proc's listing on {}, {} of /proc",
        Count(m.processes_seen, "process"),
        Elapsed(m.duration_s),
        m.judged,
        m.growing,
        Count(m.probes, "tick"),
        Count(m.listings, "tick"),
        Count(m.full_scans, "full scan"),
    );
    if m.reopened_max > 0 {
        eprintln!(
            "memwatch: up to {} read by reopening /proc/PID/statm each tick: the open-file \
             limit ({}) could not keep them all open",
            Count(m.reopened_max as u64, "process"),
            m.open_files.raised_to
        );
    }
    let who = |u: &crate::report::summary::UnitVerdict| match u.pid {
        Some(pid) => format!("{pid} ({})", u.name),
        None => format!("{} ({})", u.name, Count(u64::from(u.processes), "process")),
    };
    if !m.processes.is_empty() {
        eprintln!("memwatch: fastest growing first:");
    }
    // unknown stays unknown: NaN prints n/a
    let size = |b: Option<u64>| b.map_or(f64::NAN, |b| b as f64);
    for u in m.processes.iter().take(5) {
        let headline = crate::analyze::Headline {
            verdict: u.verdict,
            pattern: u.pattern,
            slope_bytes_per_s: u.slope_bytes_per_s,
            p_value: u.p_value,
            samples_analysed: u.samples_analysed,
            warmup_s: u.warmup_s,
        };
        let ended = if u.ended { ", ended" } else { "" };
        eprintln!(
            "memwatch:   {}: {headline}  (RSS {}, {} since first read{ended})",
            who(u),
            Bytes(size(u.end_bytes)),
            Delta(size(u.end_bytes) - size(u.start_bytes))
        );
    }
    for u in m.processes.iter().skip(1) {
        for breach in &u.breaches {
            eprintln!("memwatch: gate failed: {}: {breach}", who(u));
        }
    }
    if let Some(t) = &m.total {
        let text = if t.verdict == Verdict::Inconclusive {
            "inconclusive".to_string()
        } else {
            crate::analyze::Headline {
                verdict: t.verdict,
                pattern: t.pattern,
                slope_bytes_per_s: t.slope_bytes_per_s,
                p_value: t.p_value,
                samples_analysed: 0,
                warmup_s: 0.0,
            }
            .to_string()
        };
        eprintln!("memwatch: the sum over every process watched: {text}");
    }
}
