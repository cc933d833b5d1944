//! Issue 20, honest figures: unknown is unknown (item 1), one meaning per word (item 4),
//! every size a whole number (item 17). Real runs of the built binary and the fixture.

use crate::util::*;
use serde_json::Value;
use std::path::Path;

fn summary(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// (test case name, outcome: "" passed, "skipped", or the failure's type) of a JUnit report.
fn junit_cases(path: &Path) -> Vec<(String, String)> {
    let xml = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|case| {
            let name = case.attribute("name").unwrap().to_string();
            let outcome = case
                .children()
                .find_map(|n| {
                    if n.has_tag_name("skipped") {
                        Some("skipped".to_string())
                    } else if n.has_tag_name("failure") || n.has_tag_name("error") {
                        Some(n.attribute("type").unwrap_or("failure").to_string())
                    } else {
                        None
                    }
                })
                .unwrap_or_default();
            (name, outcome)
        })
        .collect()
}

fn outcome<'a>(cases: &'a [(String, String)], name: &str) -> &'a str {
    cases
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, o)| o.as_str())
        .unwrap_or_else(|| panic!("no test case '{name}' in {cases:?}"))
}

/// Regression (issue 20 item 1): a run too short to judge (the leaking fixture exits after
/// 3 s: RSS climbs tens of MiB, exit 3) wrote slope 0, growth 0 and p-value 1 in
/// summary.json, passed --max-growth and --max-slope on "+0 B", passed them in JUnit and
/// showed ✅ in the job summary; its summary.json was accepted as a baseline of slope 0.
/// Unknown is now unknown everywhere, and the peak is still held to --max-rss.
#[test]
fn regression_issue20_item1_an_inconclusive_run_reports_unknown_not_zero() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let step_summary = d.join("step-summary.md");
    let out = memwatch(d)
        .args(["run", "--duration", "30s", "--out", "o"])
        .args(["--max-growth", "1MiB", "--max-slope", "1MiB/min"])
        .args(["--max-rss", "4GiB", "--junit", "j.xml"])
        .env_remove("GITHUB_ACTIONS")
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .arg("--")
        .arg(fixture_bin())
        .args(["leak", "20MiB/s", "--exit-after", "3s"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("memwatch: gate: RSS floor growth is not judged"),
        "said at the end: {err}"
    );

    let s = summary(&d.join("o/summary.json"));
    assert_eq!(s["verdict"], "inconclusive", "{s}");
    for field in [
        "slope_bytes_per_s",
        "slope_pct_per_hour",
        "growth_bytes",
        "p_value",
        "trend",
    ] {
        assert!(s[field].is_null(), "{field} must be null (unknown): {s}");
    }
    assert!(s["peak_bytes"].as_u64().unwrap() > 0, "{s}");
    let checks = s["gate"]["checks"].as_array().unwrap();
    let check = |rule: &str| {
        checks
            .iter()
            .find(|c| c["rule"] == rule)
            .unwrap_or_else(|| panic!("no check '{rule}': {s}"))
    };
    for rule in ["max-growth", "max-slope"] {
        assert!(check(rule)["passed"].is_null(), "{rule}: {}", check(rule));
        assert_eq!(check(rule)["actual"], "not judged", "{}", check(rule));
        assert!(
            check(rule)["message"]
                .as_str()
                .unwrap()
                .contains("not judged"),
            "{}",
            check(rule)
        );
    }
    // A hard limit that needs no trend is still checked.
    assert_eq!(check("max-rss")["passed"], true, "{}", check("max-rss"));
    assert!(s["gate"]["breaches"].as_array().unwrap().is_empty(), "{s}");

    let cases = junit_cases(&d.join("j.xml"));
    assert_eq!(outcome(&cases, "verdict"), "skipped", "{cases:?}");
    assert_eq!(outcome(&cases, "max-growth"), "skipped", "{cases:?}");
    assert_eq!(outcome(&cases, "max-slope"), "skipped", "{cases:?}");
    assert_eq!(outcome(&cases, "max-rss"), "", "{cases:?}");

    let md = std::fs::read_to_string(&step_summary).unwrap();
    for rule in ["`--max-growth`", "`--max-slope`"] {
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| {rule}")))
            .unwrap_or_else(|| panic!("no row {rule}: {md}"));
        assert!(!row.contains('✅') && row.contains("not judged"), "{row}");
    }
    assert!(!md.contains("| floor growth | +0 B |"), "{md}");
    assert!(md.contains("| floor slope | not judged |"), "{md}");

    // The same recording read back: the same nulls.
    let again = memwatch(d)
        .args(["report", "o/samples.csv", "--json", "-", "--png", "r.png"])
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(3), "{}", stderr(&again));
    let r: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(
        r["slope_bytes_per_s"].is_null() && r["growth_bytes"].is_null(),
        "{r}"
    );

    // With --fail-on-inconclusive, the limits not judged fail in JUnit too.
    let strict = memwatch(d)
        .args(["report", "o/samples.csv", "--png", "s.png"])
        .args([
            "--max-growth",
            "1MiB",
            "--fail-on-inconclusive",
            "--junit",
            "s.xml",
        ])
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(strict.status.code(), Some(1), "{}", stderr(&strict));
    let cases = junit_cases(&d.join("s.xml"));
    assert_eq!(outcome(&cases, "max-growth"), "not-judged", "{cases:?}");

    // An inconclusive summary.json is no baseline: one clear line, exit 2, before sampling.
    let baseline = memwatch(d)
        .args(["report", "o/samples.csv", "--png", "b.png"])
        .args(["--baseline", "o/summary.json"])
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let berr = stderr(&baseline);
    assert_eq!(baseline.status.code(), Some(2), "{berr}");
    assert!(
        berr.contains("o/summary.json") && berr.contains("inconclusive"),
        "{berr}"
    );
    assert_eq!(berr.trim_end().lines().count(), 1, "{berr}");
}

/// A recording where the judged series (the managed heap after GC, read from 4 s on) is
/// shorter than the run (64 s of RSS).
fn heap_recording(dir: &Path) {
    let mut text = String::from("elapsed_s,rss_bytes,heap_after_gc_bytes\n");
    for i in 0..=64u32 {
        let heap = if (4..=60).contains(&i) {
            format!("{}", 8 * 1024 * 1024 + (i * 7919 % 13) * 4096)
        } else {
            String::new()
        };
        text += &format!(
            "{i}.000,{},{heap}\n",
            60 * 1024 * 1024 + (i * 31 % 7) * 4096
        );
    }
    std::fs::write(dir.join("heap.csv"), text).unwrap();
}

/// Regression (issue 20 item 4): `duration_s` was the judged series' span (a 64 s run said
/// 60, JUnit's time 60, the chart's run line too), and a sparse series had a warm-up of its
/// own. `duration_s` is the run's length, its warm-up is counted from the run's start for
/// every series, and the analysed window has its own name (`window_s`).
#[test]
fn regression_issue20_item4_duration_is_the_runs_length() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    heap_recording(d);
    let out = memwatch(d)
        .args(["report", "heap.csv", "--json", "s.json", "--png", "m.png"])
        .args(["--junit", "j.xml"])
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = summary(&d.join("s.json"));
    assert_eq!(s["metric"], "heap-after-gc", "{s}");
    assert_eq!(s["duration_s"], 64.0, "the run's length: {s}");
    // auto warm-up: 20% of the 64 s run, at least 10 s, from the run's start
    assert_eq!(s["warmup_s"], 12.8, "{s}");
    assert_eq!(s["window"]["start_s"], 12.8, "{s}");
    let window_s = s["window_s"].as_f64().unwrap();
    let span = s["window"]["end_s"].as_f64().unwrap() - s["window"]["start_s"].as_f64().unwrap();
    assert!((window_s - span).abs() < 1e-9, "{s}");
    let xml = std::fs::read_to_string(d.join("j.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(
        suite.attribute("time").map(|t| t.parse::<f64>().unwrap()),
        Some(64.0),
        "{xml}"
    );
}

/// Every key that holds bytes, anywhere in `v`: (path, value).
fn byte_fields(v: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let p = format!("{path}.{k}");
                let is_bytes = k.ends_with("_bytes") || k == "bytes" || k == "v0" || k == "v1";
                if is_bytes && !x.is_object() && !x.is_array() {
                    out.push((p.clone(), x.clone()));
                }
                byte_fields(x, &p, out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                byte_fields(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Regression (issue 20 item 17): sizes in summary.json were sometimes floats
/// (`10649600.00000001`), which a reader into int64 rejects; events had no kind to match on.
#[test]
fn regression_issue20_item17_sizes_are_whole_bytes_and_events_have_a_kind() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = run_fixture(
        d,
        &[
            "run",
            "--interval",
            "100ms",
            "--duration",
            "12s",
            "--out",
            "o",
            "--signal",
            "SIGUSR2",
            "--signal-every",
            "2s",
            "--settle",
            "500ms",
            "--max-rss",
            "4GiB",
            "--min-growth",
            "1MiB",
        ],
        &["leak", "3MiB/s", "--catch-usr2"],
    );
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    let s = summary(&d.join("o/summary.json"));
    let mut fields = Vec::new();
    byte_fields(&s, "", &mut fields);
    assert!(fields.len() >= 6, "{fields:?}");
    for (path, value) in &fields {
        assert!(
            value.is_null() || value.is_u64() || value.is_i64(),
            "{path} = {value}: sizes are whole bytes"
        );
    }
    let kinds: Vec<&str> = s["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or("(none)"))
        .collect();
    assert!(
        kinds.contains(&"signal") && kinds.contains(&"settled"),
        "{kinds:?}"
    );
}
