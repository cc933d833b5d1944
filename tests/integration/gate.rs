//! The CI gate: hard limits beside the verdict, baseline, config file, CI outputs, --load.

use crate::util::*;
use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// 120 s at 1 Hz: 50 MiB plus `slope` bytes/s, with a little deterministic noise.
fn recorded(dir: &Path, name: &str, slope: f64, rows: usize) {
    let mut text = String::from("elapsed_s,rss_bytes\n");
    for i in 0..rows {
        let noise = ((i * 7919) % 13) as f64 * 4096.0;
        text += &format!("{i}.000,{:.0}\n", 50.0 * MIB + slope * i as f64 + noise);
    }
    std::fs::write(dir.join(name), text).unwrap();
}

fn report(dir: &Path, args: &[&str]) -> Output {
    memwatch(dir)
        .arg("report")
        .args(args)
        .args(["--png", "m.png"])
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap()
}

#[test]
fn each_limit_fails_the_gate_and_says_by_how_much() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    recorded(d, "flat.csv", 0.0, 120);
    // 1% over the analysed window: below the verdict's 2% --min-growth, so "stable"
    recorded(d, "slow.csv", 0.01 * 50.0 * MIB / 96.0, 120);

    let ok = report(
        d,
        &[
            "flat.csv",
            "--max-rss",
            "64MiB",
            "--max-growth",
            "5%",
            "--max-slope",
            "1MiB/min",
        ],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));

    let rss = report(d, &["flat.csv", "--max-rss", "40MiB"]);
    assert_eq!(rss.status.code(), Some(1), "{}", stderr(&rss));
    assert!(
        stderr(&rss).contains("gate failed")
            && stderr(&rss).contains("max-rss")
            && stderr(&rss).contains("40"),
        "{}",
        stderr(&rss)
    );

    let slow = report(d, &["slow.csv", "--json", "-"]);
    assert_eq!(
        slow.status.code(),
        Some(0),
        "stable without limits: {}",
        stderr(&slow)
    );

    let growth = report(d, &["slow.csv", "--max-growth", "0.5%"]);
    assert_eq!(growth.status.code(), Some(1), "{}", stderr(&growth));
    assert!(
        stderr(&growth).contains("max-growth"),
        "{}",
        stderr(&growth)
    );
    let growth_bytes = report(d, &["slow.csv", "--max-growth", "100KiB"]);
    assert_eq!(
        growth_bytes.status.code(),
        Some(1),
        "{}",
        stderr(&growth_bytes)
    );

    let slope = report(d, &["slow.csv", "--max-slope", "1KiB/s"]);
    assert_eq!(slope.status.code(), Some(1), "{}", stderr(&slope));
    assert!(stderr(&slope).contains("max-slope"), "{}", stderr(&slope));

    let s: Value = serde_json::from_slice(
        &report(d, &["slow.csv", "--max-slope", "1KiB/s", "--json", "-"]).stdout,
    )
    .unwrap();
    assert_eq!(s["exit_code"], 1);
    assert_eq!(s["verdict"], "stable");
    assert!(!s["gate"]["breaches"].as_array().unwrap().is_empty());
}

#[test]
fn inconclusive_fails_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    recorded(dir.path(), "short.csv", 0.0, 6);
    assert_eq!(report(dir.path(), &["short.csv"]).status.code(), Some(3));
    let strict = report(dir.path(), &["short.csv", "--fail-on-inconclusive"]);
    assert_eq!(strict.status.code(), Some(1), "{}", stderr(&strict));
    assert!(stderr(&strict).contains("inconclusive"));
}

#[test]
fn baseline_catches_a_regression_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    recorded(d, "before.csv", 0.0, 120);
    recorded(d, "after.csv", 200_000.0, 120);
    assert_eq!(
        report(d, &["before.csv", "--json", "base.json"])
            .status
            .code(),
        Some(0)
    );
    let same = report(d, &["before.csv", "--baseline", "base.json", "--json", "-"]);
    assert_eq!(same.status.code(), Some(0), "{}", stderr(&same));
    let s: Value = serde_json::from_slice(&same.stdout).unwrap();
    assert!(
        s["gate"]["baseline"].is_object(),
        "the summary shows both: {s}"
    );
    // --min-growth 100%: the verdict alone says "stable", so the failure is the baseline's
    let worse = report(
        d,
        &[
            "after.csv",
            "--baseline",
            "base.json",
            "--min-growth",
            "100%",
        ],
    );
    assert_eq!(
        worse.status.code(),
        Some(1),
        "slope and peak worse than the baseline: {}",
        stderr(&worse)
    );
    assert!(stderr(&worse).contains("baseline"), "{}", stderr(&worse));
    let bad = report(d, &["after.csv", "--baseline", "after.csv"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("--baseline"));
}

#[test]
fn junit_and_github_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    recorded(d, "grow.csv", 200_000.0, 120);
    let step_summary = d.join("step-summary.md");
    std::fs::write(&step_summary, "# earlier step\n").unwrap();
    let out = memwatch(d)
        .args([
            "report",
            "grow.csv",
            "--png",
            "m.png",
            "--max-rss",
            "40MiB",
            "--junit",
            "junit.xml",
        ])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with("::error")),
        "annotations: {stdout}"
    );
    let md = std::fs::read_to_string(&step_summary).unwrap();
    assert!(md.starts_with("# earlier step\n"), "appended, not replaced");
    assert!(
        md.contains("growing") && md.contains("| figure | value |"),
        "{md}"
    );
    let xml = std::fs::read_to_string(d.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("JUnit XML parses");
    let failures = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .count();
    assert!(failures >= 2, "the verdict and --max-rss fail: {xml}");
    assert!(stderr(&out).contains("wrote junit.xml"), "{}", stderr(&out));
}

#[test]
fn config_file_gate_with_command_line_override() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    recorded(d, "flat.csv", 0.0, 120);
    std::fs::write(
        d.join("memwatch.toml"),
        "# the gate of this repo\nmax-rss = \"40MiB\"\n",
    )
    .unwrap();
    let from_file = report(d, &["flat.csv"]);
    assert_eq!(
        from_file.status.code(),
        Some(1),
        "memwatch.toml is read: {}",
        stderr(&from_file)
    );
    let overridden = report(d, &["flat.csv", "--max-rss", "1GiB"]);
    assert_eq!(
        overridden.status.code(),
        Some(0),
        "the command line wins: {}",
        stderr(&overridden)
    );

    std::fs::write(
        d.join("other.toml"),
        "max-rss = \"1GiB\"\nmax-rs = \"2GiB\"\n",
    )
    .unwrap();
    let unknown = report(d, &["flat.csv", "--config", "other.toml"]);
    assert_eq!(unknown.status.code(), Some(2));
    let err = stderr(&unknown);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("'max-rs'") && err.contains("line 2"), "{err}");
    let missing = report(d, &["flat.csv", "--config", "nope.toml"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn config_file_drives_a_live_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("memwatch.toml"),
        "interval = \"100ms\"\nduration = \"2s\"\nout = \"from-file\"\n",
    )
    .unwrap();
    let out = run_fixture(dir.path(), &["run"], &["steady"]);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", stderr(&out));
    let rows = read_csv(&dir.path().join("from-file/samples.csv"));
    assert!(
        (17..=22).contains(&rows.len()),
        "{} rows: interval and duration come from the file",
        rows.len()
    );
}

#[test]
fn load_step_ends_the_run_leaky_and_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |mode: &[&str], load: &str| {
        // A live run never writes over an earlier one: each run gets the folder afresh.
        let _ = std::fs::remove_dir_all(dir.path().join("o"));
        run_fixture(
            dir.path(),
            &[
                "run",
                "--interval",
                "100ms",
                "--duration",
                "60s",
                "--ready-delay",
                "500ms",
                "--cooldown",
                "500ms",
                "--load",
                load,
                "--out",
                "o",
            ],
            mode,
        )
    };
    let summary = || -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("o/summary.json")).unwrap())
            .unwrap()
    };

    let leaky = run(&["leak", "2MiB/s"], "sleep 6");
    assert_eq!(leaky.status.code(), Some(1), "{}", stderr(&leaky));
    let s = summary();
    assert_eq!(s["target"]["stop"], "load-finished");
    assert_eq!(s["load"]["exit_code"], 0);
    let started = s["load"]["started_s"].as_f64().unwrap();
    assert!(
        (0.45..1.0).contains(&started),
        "load started after --ready-delay: {started}"
    );
    assert!(
        s["duration_s"].as_f64().unwrap() < 9.0,
        "the run ends with the load plus cooldown"
    );

    let fixed = run(&["steady"], "sleep 6");
    assert_eq!(fixed.status.code(), Some(0), "{}", stderr(&fixed));

    let failed = run(&["steady"], "sleep 1; exit 3");
    assert_eq!(failed.status.code(), Some(4), "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains("load failed"),
        "{}",
        stderr(&failed)
    );
    assert_eq!(summary()["load"]["exit_code"], 3);
}

#[test]
fn load_waits_for_the_ready_port() {
    require_node();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let node = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/node");
    let load = format!(
        "node {} --port {port} --rate 100 --duration 15",
        node.join("load.js").display()
    );
    let out = memwatch(dir.path())
        .args([
            "run",
            "--interval",
            "200ms",
            "--ready-port",
            &port,
            "--cooldown",
            "1s",
            "--load",
            &load,
            "--out",
            "o",
            "--",
        ])
        .arg("node")
        .arg(node.join("service.js"))
        .args(["--port", &port, "--listen-after", "1000"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the leaky service grows under load: {err}"
    );
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("o/summary.json")).unwrap())
            .unwrap();
    assert_eq!(s["verdict"], "growing");
    assert_eq!(s["load"]["exit_code"], 0, "{err}");
    // The service listens 1 s after it starts: the load waited for it.
    assert!(
        s["load"]["started_s"].as_f64().unwrap() >= 0.8,
        "{}",
        s["load"]
    );
    assert_eq!(s["target"]["stop"], "load-finished");
}
