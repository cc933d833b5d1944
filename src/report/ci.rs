//! CI-facing outputs of a finished run: the Markdown job summary (GitHub's
//! `GITHUB_STEP_SUMMARY`), GitHub Actions annotation lines and a JUnit XML report.
//!
//! All take the final `Summary` (its `exit_code` already the gate's, see
//! `GateResult::exit_code`) and the `GateResult`. Pure, except `append_step_summary` and the
//! two environment look-ups.

use crate::analyze::Verdict;
use crate::gate::{BaselineComparison, Check, GateResult};
use crate::report::summary::Summary;
use crate::units::{Bytes, Delta, Elapsed, PValue, PctPerHour, Rate};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file GitHub Actions shows as the job summary, when running there.
pub fn step_summary_path() -> Option<PathBuf> {
    std::env::var_os("GITHUB_STEP_SUMMARY")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// Running in GitHub Actions: annotation lines are understood.
pub fn in_github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// Appends `markdown` to the job summary file (several runs in one job each add theirs).
pub fn append_step_summary(path: &Path, markdown: &str) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(markdown.as_bytes())?;
    if !markdown.ends_with('\n') {
        file.write_all(b"\n")?;
    }
    file.flush()
}

/// How the run ended, for people: an icon and a few words.
fn status(summary: &Summary, gate: &GateResult) -> (&'static str, String) {
    match summary.exit_code {
        0 => ("✅", "passed: memory did not grow".to_string()),
        1 => {
            let mut why = Vec::new();
            if gate.verdict_failed {
                why.push("memory grew".to_string());
            }
            match gate.breaches.len() {
                0 => {}
                1 => why.push(format!("limit '{}' breached", gate.breaches[0].rule)),
                n => why.push(format!("{n} limits breached")),
            }
            if gate.inconclusive_failed {
                why.push("inconclusive, with --fail-on-inconclusive".to_string());
            }
            if why.is_empty() {
                why.push("memory grew".to_string());
            }
            ("❌", format!("failed: {}", why.join("; ")))
        }
        3 => ("⚠️", "inconclusive: too little data to decide".to_string()),
        4 => (
            "❌",
            format!("failed: the command failed{}", ended(summary)),
        ),
        code => ("❌", format!("failed: memwatch error (exit {code})")),
    }
}

/// ` (exited with code 2)`, from the target's ending, or nothing.
fn ended(summary: &Summary) -> String {
    summary
        .target
        .as_ref()
        .map(|t| format!(" ({})", t.ended))
        .unwrap_or_default()
}

/// Text made safe for a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

/// Inline code that survives backticks and pipes in `text`.
fn code(text: &str) -> String {
    let text = cell(text);
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// ✅ passed, ❌ failed, or the words `not judged` (an inconclusive run has no slope or
/// growth to hold against a limit: neither a pass nor a failure).
fn mark(passed: Option<bool>) -> &'static str {
    match passed {
        Some(true) => "✅",
        Some(false) => "❌",
        None => crate::gate::NOT_JUDGED,
    }
}

/// A figure for people, or `not judged` when the run does not have it.
fn or_not_judged<T>(figure: Option<T>, show: impl Fn(T) -> String) -> String {
    figure.map_or_else(|| crate::gate::NOT_JUDGED.to_string(), show)
}

/// Whole bytes for people; `n/a` without a sample.
fn bytes(b: Option<u64>) -> String {
    Bytes(b.map_or(f64::NAN, |b| b as f64)).to_string()
}

/// The Markdown job summary: verdict, figures, limits, baseline, where the chart is.
pub fn markdown(summary: &Summary, gate: &GateResult) -> String {
    let mut md = markdown_verdict(summary, gate);
    if let Some(diff) = &summary.heap_diff {
        md.push_str("\n### What grew on the heap\n\n");
        md.push_str(&diff.markdown(10));
    }
    md
}

fn markdown_verdict(summary: &Summary, gate: &GateResult) -> String {
    let mut md = String::new();
    markdown_heading(&mut md, summary, gate);
    markdown_figures(&mut md, summary);
    markdown_limits(&mut md, summary, gate);
    if let Some(b) = &gate.baseline {
        markdown_baseline(&mut md, b);
    }
    if !gate.breaches.is_empty() {
        md.push_str("\n**Breaches**\n\n");
        for b in &gate.breaches {
            let _ = writeln!(md, "- `{}`: {}", b.rule, b.message);
        }
    }
    markdown_files(&mut md, summary);
    md
}

/// The outcome, the verdict in words, and what was watched (or read).
fn markdown_heading(md: &mut String, s: &Summary, gate: &GateResult) {
    let (icon, words) = status(s, gate);
    // Writing into a String cannot fail.
    let _ = writeln!(md, "### {icon} memwatch {words} (exit {})\n", s.exit_code);
    let _ = writeln!(
        md,
        "**{}** ({}): {}\n",
        s.verdict.as_str(),
        s.pattern.as_str(),
        cell(&s.reason)
    );
    if let Some(t) = &s.target {
        let _ = writeln!(
            md,
            "Target: {} (pid {}), {}.\n",
            code(&t.command),
            t.pid,
            t.ended
        );
    }
    if let Some(src) = &s.source {
        let _ = writeln!(md, "Source: {} ({}).\n", code(&src.file), src.format);
    }
}

/// The run's figures, a table; unknown ones say "not judged".
fn markdown_figures(md: &mut String, s: &Summary) {
    md.push_str("| figure | value |\n|---|---|\n");
    let missed = s
        .missed_samples
        .filter(|m| *m > 0)
        .map(|m| format!(", {m} missed"))
        .unwrap_or_default();
    let rows = [
        ("metric", code(&s.metric)),
        (
            "samples",
            format!("{} ({} analysed{missed})", s.samples, s.samples_analysed),
        ),
        (
            "duration",
            format!(
                "{} (warm-up {} left out, {} analysed)",
                Elapsed(s.duration_s),
                Elapsed(s.warmup_s),
                Elapsed(s.window_s)
            ),
        ),
        (
            "start / end / peak",
            format!(
                "{} / {} / {}",
                bytes(s.start_bytes),
                bytes(s.end_bytes),
                bytes(s.peak_bytes)
            ),
        ),
        (
            "floor growth",
            or_not_judged(s.growth_bytes, |g| Delta(g as f64).to_string()),
        ),
        (
            "floor slope",
            or_not_judged(s.slope_bytes_per_s.zip(s.slope_pct_per_hour), |(b, pct)| {
                format!("{} ({}; {b:.1} B/s)", Rate(b), PctPerHour(pct))
            }),
        ),
        (
            "p-value",
            or_not_judged(s.p_value, |p| format!("{:#}", PValue(p))),
        ),
    ];
    for (name, value) in rows {
        let _ = writeln!(md, "| {name} | {value} |");
    }
}

/// Each limit set (not the baseline's) against this run, and `--fail-on-inconclusive`.
fn markdown_limits(md: &mut String, s: &Summary, gate: &GateResult) {
    let limits: Vec<&Check> = gate
        .checks
        .iter()
        .filter(|c| !c.rule.starts_with("baseline"))
        .collect();
    if !limits.is_empty() || gate.fail_on_inconclusive {
        md.push_str("\n#### Limits\n\n| limit | allowed | this run | |\n|---|---|---|---|\n");
        for c in limits {
            let _ = writeln!(
                md,
                "| `--{}` | {} | {} | {} |",
                c.rule,
                cell(&c.limit),
                cell(&c.actual),
                mark(c.passed)
            );
        }
        if gate.fail_on_inconclusive {
            let inconclusive = s.verdict == Verdict::Inconclusive;
            let _ = writeln!(
                md,
                "| `--fail-on-inconclusive` | a verdict | {} | {} |",
                s.verdict.as_str(),
                mark(Some(!inconclusive))
            );
        }
    }
}

/// The baseline's slope and peak, what they allow, and this run's.
fn markdown_baseline(md: &mut String, b: &BaselineComparison) {
    let _ = writeln!(
        md,
        "\n#### Baseline {} (tolerance {}%)\n\n| | baseline | allowed | this run | |\n|---|---|---|---|---|",
        code(&b.path),
        b.tolerance_pct
    );
    // one unit per row: the allowed slope's
    let allowed = Rate(b.allowed_slope_bytes_per_s);
    let floor = if b.baseline_slope_bytes_per_s < b.slope_floor_bytes_per_s {
        format!(
            " (raised to the --min-slope floor {})",
            Rate(b.slope_floor_bytes_per_s).per_unit_of(allowed)
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        md,
        "| floor slope | {}{floor} | {} | {} | {} |",
        Rate(b.baseline_slope_bytes_per_s).per_unit_of(allowed),
        allowed,
        or_not_judged(b.current_slope_bytes_per_s, |r| Rate(r)
            .per_unit_of(allowed)
            .to_string()),
        mark(b.slope_regressed.map(|r| !r))
    );
    let _ = writeln!(
        md,
        "| peak | {} | {} | {} | {} |",
        bytes(b.baseline_peak_bytes),
        bytes(b.allowed_peak_bytes),
        bytes(b.current_peak_bytes),
        mark(b.peak_regressed.map(|r| !r))
    );
}

/// Where the chart and the data are.
fn markdown_files(md: &mut String, s: &Summary) {
    md.push('\n');
    match &s.files.png {
        Some(png) => {
            let _ = writeln!(md, "Chart: {} (in the job's artifacts).", code(png));
        }
        None => md.push_str("No chart was written.\n"),
    }
    let others: Vec<String> = [&s.files.csv, &s.files.json]
        .into_iter()
        .flatten()
        .map(|p| code(p))
        .collect();
    if !others.is_empty() {
        let _ = writeln!(md, "Data: {}.", others.join(", "));
    }
    md.push('\n');
}

/// Escapes a workflow command's message (GitHub: `%`, `\r`, `\n`).
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value (`title=`): as data, plus `:` and `,`.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

fn annotation(level: &str, title: &str, message: &str) -> String {
    format!(
        "::{level} title={}::{}",
        escape_property(title),
        escape_data(message)
    )
}

/// GitHub Actions annotation lines (`::error`, `::warning`, `::notice`), one per failure, or
/// one notice when the gate passed. Print each on its own line.
pub fn github_annotations(summary: &Summary, gate: &GateResult) -> Vec<String> {
    let s = summary;
    let mut lines = Vec::new();
    if s.exit_code == 4 {
        lines.push(annotation(
            "error",
            "memwatch: command failed",
            &format!(
                "the command failed{}: the memory verdict is not evidence either way",
                ended(s)
            ),
        ));
    }
    let figures = format!(
        "{} peak {}, floor slope {}, growth {}",
        s.metric,
        bytes(s.peak_bytes),
        or_not_judged(s.slope_bytes_per_s.zip(s.slope_pct_per_hour), |(b, pct)| {
            format!("{} ({})", Rate(b), PctPerHour(pct))
        }),
        or_not_judged(s.growth_bytes, |g| Delta(g as f64).to_string())
    );
    if gate.verdict_failed {
        lines.push(annotation(
            "error",
            "memwatch: memory grew",
            &format!("{} ({figures})", s.reason),
        ));
    }
    for b in &gate.breaches {
        lines.push(annotation(
            "error",
            &format!("memwatch: {}", b.rule),
            &b.message,
        ));
    }
    for c in gate.checks.iter().filter(|c| c.passed.is_none()) {
        lines.push(annotation(
            "warning",
            &format!("memwatch: {} not judged", c.rule),
            &c.message,
        ));
    }
    if s.verdict == Verdict::Inconclusive {
        let message = format!(
            "{}: run longer (--duration) or sample more often (--interval)",
            s.reason
        );
        if gate.inconclusive_failed {
            lines.push(annotation(
                "error",
                "memwatch: inconclusive (--fail-on-inconclusive)",
                &message,
            ));
        } else {
            lines.push(annotation("warning", "memwatch: inconclusive", &message));
        }
    }
    if lines.is_empty() {
        let passed = match gate
            .checks
            .iter()
            .filter(|c| c.passed == Some(true))
            .count()
        {
            0 => String::new(),
            1 => "; 1 limit passed".to_string(),
            n => format!("; {n} limits passed"),
        };
        lines.push(annotation(
            "notice",
            "memwatch: memory did not grow",
            &format!("{} ({figures}){passed}", s.reason),
        ));
    }
    lines
}

/// A JUnit XML report: one suite "memwatch" with the test cases "verdict", "command" (only
/// when the command failed), and one per limit configured (`max-rss`, `max-growth`,
/// `max-slope`, `baseline-slope`, `baseline-peak`).
pub fn junit_xml(summary: &Summary, gate: &GateResult) -> Result<String, String> {
    let s = summary;
    let mut suite = TestSuite::new("memwatch");
    if s.duration_s.is_finite() && s.duration_s >= 0.0 {
        suite.set_time(Duration::from_secs_f64(s.duration_s));
    }
    suite.add_properties(junit_properties(s));
    suite.add_test_case(junit_verdict(s, gate));
    if s.exit_code == 4 {
        let mut command = TestCase::new(
            "command",
            failure(
                NonSuccessKind::Error,
                "command-failed",
                &format!("the command failed{}", ended(s)),
            ),
        );
        command.set_classname("memwatch");
        suite.add_test_case(command);
    }
    for c in &gate.checks {
        suite.add_test_case(junit_check(c, gate.inconclusive_failed));
    }
    let mut report = Report::new("memwatch");
    report.add_test_suite(suite);
    report
        .to_string()
        .map_err(|e| format!("cannot write the JUnit report: {e}"))
}

fn failure(kind: NonSuccessKind, ty: &str, message: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(kind);
    status.set_type(ty).set_message(message);
    status
}

fn skipped(ty: &str, message: String) -> TestCaseStatus {
    let mut status = TestCaseStatus::skipped();
    status.set_type(ty).set_message(message);
    status
}

/// The suite's properties: the run's figures, the known ones only.
fn junit_properties(s: &Summary) -> Vec<Property> {
    let fmt = |v: f64| format!("{v}");
    let mut properties = vec![
        Property::new("memwatch_version", s.memwatch_version),
        Property::new("verdict", s.verdict.as_str()),
        Property::new("pattern", s.pattern.as_str()),
        Property::new("metric", s.metric.as_str()),
        Property::new("exit_code", s.exit_code.to_string()),
        Property::new("samples", s.samples.to_string()),
        Property::new("samples_analysed", s.samples_analysed.to_string()),
        Property::new("duration_s", fmt(s.duration_s)),
        Property::new("warmup_s", fmt(s.warmup_s)),
        Property::new("window_s", fmt(s.window_s)),
    ];
    // Unknown figures (an inconclusive run's slope, growth and p-value) are left out,
    // never written as 0.
    let known = [
        ("slope_bytes_per_s", s.slope_bytes_per_s.map(fmt)),
        ("slope_pct_per_hour", s.slope_pct_per_hour.map(fmt)),
        ("growth_bytes", s.growth_bytes.map(|g| g.to_string())),
        ("p_value", s.p_value.map(fmt)),
        ("start_bytes", s.start_bytes.map(|b| b.to_string())),
        ("end_bytes", s.end_bytes.map(|b| b.to_string())),
        ("peak_bytes", s.peak_bytes.map(|b| b.to_string())),
    ];
    for (name, value) in known {
        if let Some(value) = value {
            properties.push(Property::new(name, value));
        }
    }
    if let Some(t) = &s.target {
        properties.push(Property::new("pid", t.pid.to_string()));
        properties.push(Property::new("command", t.command.as_str()));
        properties.push(Property::new("ended", t.ended.as_str()));
    }
    if let Some(src) = &s.source {
        properties.push(Property::new("source", src.file.as_str()));
    }
    if let Some(png) = &s.files.png {
        properties.push(Property::new("chart", png.as_str()));
    }
    properties
}

/// The verdict as a test case: growing fails, inconclusive is skipped (or fails with
/// `--fail-on-inconclusive`).
fn junit_verdict(s: &Summary, gate: &GateResult) -> TestCase {
    let status = match s.verdict {
        Verdict::Growing => failure(
            NonSuccessKind::Failure,
            "growing",
            &format!("memory grew: {}", s.reason),
        ),
        Verdict::Inconclusive if gate.inconclusive_failed => failure(
            NonSuccessKind::Failure,
            "inconclusive",
            &format!("inconclusive, with --fail-on-inconclusive: {}", s.reason),
        ),
        Verdict::Inconclusive => skipped("inconclusive", format!("inconclusive: {}", s.reason)),
        Verdict::Stable => TestCaseStatus::success(),
    };
    let mut verdict = TestCase::new("verdict", status);
    verdict.set_classname("memwatch");
    verdict.set_system_out(format!(
        "{} ({}): {}",
        s.verdict.as_str(),
        s.pattern.as_str(),
        s.reason
    ));
    verdict
}

/// A limit as a test case. Not judged: skipped, or failed with --fail-on-inconclusive;
/// never passed.
fn junit_check(c: &Check, inconclusive_failed: bool) -> TestCase {
    let status = match c.passed {
        Some(true) => TestCaseStatus::success(),
        Some(false) => failure(NonSuccessKind::Failure, c.rule, &c.message),
        None if inconclusive_failed => failure(
            NonSuccessKind::Failure,
            "not-judged",
            &format!("{}, with --fail-on-inconclusive", c.message),
        ),
        None => skipped("not-judged", c.message.clone()),
    };
    let mut case = TestCase::new(c.rule, status);
    case.set_classname("memwatch");
    if c.passed == Some(true) {
        case.set_system_out(c.message.as_str());
    }
    case
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::gate::tests::analysis;
    use crate::gate::{Baseline, GrowthLimit, Limits, evaluate};
    use crate::gate::{Figures, verdict_exit};
    use crate::report::summary::{Files, TargetSummary};

    const MIB: f64 = 1024.0 * 1024.0;

    /// A finished run as the caller would have it: target, files, gate exit code.
    fn finished(verdict: Verdict, slope: f64, peak: f64, limits: &Limits) -> (Summary, GateResult) {
        let a = analysis(verdict, slope, peak);
        let mut s = Summary::new(&a, "rss", verdict_exit(verdict));
        s.memwatch_version = "0.0.0-test";
        s.missed_samples = Some(0);
        s.target = Some(TargetSummary {
            pid: 4242,
            name: "fixture".into(),
            command: "target/release/examples/fixture leak 2MiB/s".into(),
            start_time_ticks: 123,
            ended: "killed by SIGTERM after memwatch stopped it".into(),
            exit_code: None,
            signal: Some("SIGTERM".into()),
            stopped_by_memwatch: true,
            stop: "duration".into(),
            tree_processes: None,
            tree: None,
        });
        s.files = Files {
            csv: Some("memwatch-4242-20260101-120000/samples.csv".into()),
            json: Some("memwatch-4242-20260101-120000/summary.json".into()),
            png: Some("memwatch-4242-20260101-120000/memory.png".into()),
        };
        let gate = evaluate(&Figures::of(&a, "rss"), limits);
        s.exit_code = gate.exit_code(verdict_exit(verdict)).code();
        (s, gate)
    }

    fn all_limits() -> Limits {
        Limits {
            max_rss: Some(512 * 1024 * 1024),
            max_growth: Some(GrowthLimit::Percent(10.0)),
            max_slope: Some(MIB),
            fail_on_inconclusive: true,
            baseline: Some(Baseline {
                slope_bytes_per_s: 0.0,
                peak_bytes: 100.0 * MIB,
                metric: Some("rss".into()),
                path: "ci/baseline.json".into(),
            }),
            ..Limits::default()
        }
    }

    #[test]
    fn markdown_failed_gate() {
        let (s, gate) = finished(Verdict::Growing, 2.0 * MIB, 612.0 * MIB, &all_limits());
        assert_eq!(s.exit_code, 1);
        insta::assert_snapshot!(markdown(&s, &gate));
    }

    #[test]
    fn markdown_passed_gate() {
        let (s, gate) = finished(Verdict::Stable, 3.0, 104.0 * MIB, &all_limits());
        assert_eq!(s.exit_code, 0, "{:?}", gate.breaches);
        insta::assert_snapshot!(markdown(&s, &gate));
    }

    #[test]
    fn markdown_inconclusive_and_command_failed() {
        let (s, gate) = finished(Verdict::Inconclusive, 0.0, 95.0 * MIB, &Limits::default());
        assert_eq!(s.exit_code, 3);
        let md = markdown(&s, &gate);
        assert!(md.starts_with("### ⚠️ memwatch inconclusive"), "{md}");
        assert!(!md.contains("#### Limits"));

        let (mut s, gate) = finished(Verdict::Stable, 0.0, 95.0 * MIB, &Limits::default());
        s.exit_code = 4;
        s.target.as_mut().unwrap().ended = "exited with code 2".into();
        let md = markdown(&s, &gate);
        assert!(
            md.starts_with(
                "### ❌ memwatch failed: the command failed (exited with code 2) (exit 4)"
            ),
            "{md}"
        );
    }

    #[test]
    fn markdown_escapes_table_cells() {
        let (mut s, gate) = finished(Verdict::Stable, 0.0, 95.0 * MIB, &Limits::default());
        s.metric = "a|b".into();
        s.files.png = Some("dir/with`tick.png".into());
        let md = markdown(&s, &gate);
        assert!(md.contains("| metric | `a\\|b` |"), "{md}");
        assert!(md.contains("Chart: `` dir/with`tick.png ``"), "{md}");
    }

    #[test]
    fn append_step_summary_appends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("step_summary.md");
        append_step_summary(&path, "# one").unwrap();
        append_step_summary(&path, "# two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "# one\n# two\n");
    }

    #[test]
    fn annotations_for_a_failed_gate() {
        let (s, gate) = finished(Verdict::Growing, 2.0 * MIB, 612.0 * MIB, &all_limits());
        insta::assert_snapshot!(github_annotations(&s, &gate).join("\n"));
    }

    #[test]
    fn annotations_for_a_passed_gate_and_inconclusive() {
        let (s, gate) = finished(Verdict::Stable, 3.0, 104.0 * MIB, &all_limits());
        let lines = github_annotations(&s, &gate);
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("::notice title=memwatch%3A memory did not grow::a test run"),
            "{}",
            lines[0]
        );
        assert!(lines[0].ends_with("; 5 limits passed"), "{}", lines[0]);

        let (s, gate) = finished(Verdict::Inconclusive, 0.0, 95.0 * MIB, &Limits::default());
        let lines = github_annotations(&s, &gate);
        assert_eq!(lines.len(), 1);
        assert!(lines[0].starts_with("::warning title=memwatch%3A inconclusive::"));
        let strict = Limits {
            fail_on_inconclusive: true,
            ..Limits::default()
        };
        let (s, gate) = finished(Verdict::Inconclusive, 0.0, 95.0 * MIB, &strict);
        let lines = github_annotations(&s, &gate);
        assert!(
            lines[0]
                .starts_with("::error title=memwatch%3A inconclusive (--fail-on-inconclusive)::")
        );
    }

    #[test]
    fn annotation_escaping() {
        assert_eq!(escape_data("50% a\r\nb"), "50%25 a%0D%0Ab");
        assert_eq!(escape_property("a: b, c%"), "a%3A b%2C c%25");
        let (mut s, gate) = finished(Verdict::Growing, 2.0 * MIB, 100.0 * MIB, &Limits::default());
        s.reason = "line one\nline two: 100%".into();
        let lines = github_annotations(&s, &gate);
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with(
                "::error title=memwatch%3A memory grew::line one%0Aline two: 100%25 ("
            ),
            "{}",
            lines[0]
        );
        assert!(lines.iter().all(|l| !l.contains('\n') && !l.contains('\r')));
    }

    /// (name, failure type or "" for a pass / "skipped") for each test case; checks counts.
    fn cases(xml: &str) -> Vec<(String, String)> {
        let doc = roxmltree::Document::parse(xml).unwrap();
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        let suites: Vec<_> = root
            .children()
            .filter(|n| n.has_tag_name("testsuite"))
            .collect();
        assert_eq!(suites.len(), 1);
        assert_eq!(suites[0].attribute("name"), Some("memwatch"));
        let out: Vec<(String, String)> = suites[0]
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .map(|case| {
                let name = case.attribute("name").unwrap().to_string();
                let outcome = case
                    .children()
                    .find(|n| n.has_tag_name("failure") || n.has_tag_name("error"))
                    .map(|n| {
                        assert!(n.attribute("message").is_some_and(|m| !m.is_empty()));
                        n.attribute("type").unwrap().to_string()
                    })
                    .or_else(|| {
                        case.children()
                            .any(|n| n.has_tag_name("skipped"))
                            .then(|| "skipped".to_string())
                    })
                    .unwrap_or_default();
                (name, outcome)
            })
            .collect();
        let failures = out
            .iter()
            .filter(|(_, o)| !o.is_empty() && o != "skipped" && o != "command-failed")
            .count();
        assert_eq!(
            suites[0].attribute("failures"),
            Some(failures.to_string().as_str())
        );
        assert_eq!(
            suites[0].attribute("tests"),
            Some(out.len().to_string().as_str())
        );
        out
    }

    #[test]
    fn junit_failed_gate() {
        let (s, gate) = finished(Verdict::Growing, 2.0 * MIB, 612.0 * MIB, &all_limits());
        let xml = junit_xml(&s, &gate).unwrap();
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            cases(&xml),
            pairs(&[
                ("verdict", "growing"),
                ("max-rss", "max-rss"),
                ("max-growth", "max-growth"),
                ("max-slope", "max-slope"),
                ("baseline-slope", "baseline-slope"),
                ("baseline-peak", "baseline-peak"),
            ])
        );
        insta::assert_snapshot!(xml);
    }

    #[test]
    fn junit_passed_inconclusive_and_command_failed() {
        let (s, gate) = finished(Verdict::Stable, 3.0, 104.0 * MIB, &all_limits());
        let xml = junit_xml(&s, &gate).unwrap();
        let got = cases(&xml);
        assert_eq!(got.len(), 6);
        assert!(got.iter().all(|(_, outcome)| outcome.is_empty()), "{got:?}");

        let (s, gate) = finished(Verdict::Inconclusive, 0.0, 95.0 * MIB, &Limits::default());
        let got = cases(&junit_xml(&s, &gate).unwrap());
        assert_eq!(got, [("verdict".to_string(), "skipped".to_string())]);

        let (mut s, gate) = finished(Verdict::Stable, 0.0, 95.0 * MIB, &Limits::default());
        s.exit_code = 4;
        let got = cases(&junit_xml(&s, &gate).unwrap());
        assert_eq!(
            got[1],
            ("command".to_string(), "command-failed".to_string())
        );
    }

    /// Regression (issue 20 item 1): an inconclusive run passed --max-growth and
    /// --max-slope in JUnit and showed ✅ for them in the job summary, on a made-up 0. They
    /// are skipped (failed with --fail-on-inconclusive) and say "not judged".
    #[test]
    fn regression_issue20_item1_limits_not_judged_are_not_passed() {
        let limits = Limits {
            max_rss: Some(512 * 1024 * 1024),
            max_growth: Some(GrowthLimit::Bytes(MIB)),
            max_slope: Some(MIB / 60.0),
            ..Limits::default()
        };
        let (s, gate) = finished(Verdict::Inconclusive, 0.0, 95.0 * MIB, &limits);
        assert_eq!(s.exit_code, 3);
        let got = cases(&junit_xml(&s, &gate).unwrap());
        let outcome = |name: &str| {
            got.iter()
                .find(|(n, _)| n == name)
                .map(|(_, o)| o.as_str())
                .unwrap()
        };
        assert_eq!(outcome("max-rss"), "");
        assert_eq!(outcome("max-growth"), "skipped");
        assert_eq!(outcome("max-slope"), "skipped");
        let xml = junit_xml(&s, &gate).unwrap();
        assert!(
            !xml.contains("\"slope_bytes_per_s\""),
            "unknown is left out: {xml}"
        );

        let md = markdown(&s, &gate);
        for rule in ["`--max-growth`", "`--max-slope`"] {
            let row = md
                .lines()
                .find(|l| l.starts_with(&format!("| {rule}")))
                .unwrap();
            assert!(row.contains("not judged") && !row.contains('✅'), "{row}");
        }
        assert!(md.contains("| floor growth | not judged |"), "{md}");
        assert!(md.contains("| p-value | not judged |"), "{md}");
        let lines = github_annotations(&s, &gate);
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("::warning title=memwatch%3A max-growth not judged::")),
            "{lines:?}"
        );
        assert!(lines.iter().all(|l| !l.contains("+0 B")), "{lines:?}");

        let strict = Limits {
            fail_on_inconclusive: true,
            ..limits
        };
        let (s, gate) = finished(Verdict::Inconclusive, 0.0, 95.0 * MIB, &strict);
        let got = cases(&junit_xml(&s, &gate).unwrap());
        assert!(
            got.contains(&("max-growth".to_string(), "not-judged".to_string())),
            "{got:?}"
        );
    }

    #[test]
    fn junit_escapes_xml() {
        let (mut s, gate) = finished(Verdict::Growing, 2.0 * MIB, 95.0 * MIB, &Limits::default());
        s.reason = "<floor> & \"quotes\" 'rose'".into();
        s.target.as_mut().unwrap().command = "sh -c 'a < b && c > d'".into();
        let xml = junit_xml(&s, &gate).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let failure = doc
            .descendants()
            .find(|n| n.has_tag_name("failure"))
            .unwrap();
        assert_eq!(
            failure.attribute("message"),
            Some("memory grew: <floor> & \"quotes\" 'rose'")
        );
        let command = doc
            .descendants()
            .find(|n| n.has_tag_name("property") && n.attribute("name") == Some("command"))
            .unwrap();
        assert_eq!(command.attribute("value"), Some("sh -c 'a < b && c > d'"));
    }

    #[test]
    fn summary_json_carries_the_gate() {
        let (mut s, gate) = finished(Verdict::Growing, 2.0 * MIB, 612.0 * MIB, &all_limits());
        let without: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert!(without.get("gate").is_none());
        s.gate = Some(gate);
        let with: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(with["gate"]["breaches"].as_array().unwrap().len(), 5);
        assert_eq!(with["gate"]["verdict_failed"], true);
        // A summary with a gate is still a baseline for the next run.
        let b = Baseline::from_json(&s.to_json(), "s.json").unwrap();
        assert_eq!(b.peak_bytes, 612.0 * MIB);
    }
}
