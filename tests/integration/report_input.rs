//! `memwatch report` reading recordings: process-tree CSVs read by series, and the files it
//! must refuse (issues 8 and 9). The recordings are written by hand, with known answers.

use crate::util::*;
use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// `memwatch report FILE` with the summary and chart written to fixed paths in `dir`.
fn report(dir: &Path, file: &str, args: &[&str]) -> Output {
    memwatch(dir)
        .arg("report")
        .arg(file)
        .args(["--json", "out.json", "--png", "out.png"])
        .args(args)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap()
}

/// Checks the refusal contract (exit 2, one line, nothing written) and returns the line.
fn refused(dir: &Path, file: &str, args: &[&str]) -> String {
    let out = report(dir, file, args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{file}: {err}");
    assert_eq!(err.lines().count(), 1, "{file}: {err}");
    assert!(err.starts_with("memwatch: error: "), "{file}: {err}");
    assert!(
        !dir.join("out.json").exists() && !dir.join("out.png").exists(),
        "{file}: nothing may be written"
    );
    err
}

/// A process tree recorded at 1 Hz for 120 s, as memwatch writes it with trees: per tick one
/// row for each process, then the `total` row. Process 100 leaks `leak` bytes/s under a
/// sawtooth; process 101 is flat; process 102 only lives for the first 30 s.
fn tree_csv(leak: f64, with_total: bool) -> String {
    let mut text = String::from("elapsed_s,unix_ms,pid,rss_bytes,anon_bytes,pss_bytes,event\n");
    for i in 0..120u64 {
        let t = i as f64;
        let saw = ((i % 10) * 100 * 4096) as f64;
        let leaking = (40.0 * MIB + leak * t + saw) as u64 / 4096 * 4096;
        let flat = (30.0 * MIB) as u64 + (i * 7919 % 13) * 4096;
        let mut rows = vec![(100, leaking), (101, flat)];
        if i < 30 {
            rows.push((102, 8 << 20));
        }
        let event = if i == 60 { "signal:SIGUSR2" } else { "" };
        for &(pid, rss) in &rows {
            text += &format!(
                "{i}.000,{},{pid},{rss},{},,{event}\n",
                1_700_000_000_000 + i * 1000,
                rss / 2
            );
        }
        if with_total {
            let total: u64 = rows.iter().map(|r| r.1).sum();
            text += &format!(
                "{i}.000,{},total,{total},{},,{event}\n",
                1_700_000_000_000 + i * 1000,
                total / 2
            );
        }
    }
    text
}

/// Issue 8: a CSV with a `pid` column holding several processes was read as one interleaved
/// series "without complaint" (360 samples of three processes at once).
#[test]
fn report_judges_the_total_of_a_process_tree_not_its_rows_interleaved() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("tree.csv"), tree_csv(100.0 * 1024.0, true)).unwrap();
    let out = report(d, "tree.csv", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s: Value = serde_json::from_slice(&std::fs::read(d.join("out.json")).unwrap()).unwrap();
    assert_eq!(s["verdict"], "growing");
    assert_eq!(s["samples"], 120, "one sample per tick: the total's");
    // The total loses process 102 (8 MiB) at 30 s, during the warm-up; after it, the total
    // rises with process 100's leak.
    let slope = s["slope_bytes_per_s"].as_f64().unwrap();
    assert!(
        (slope - 100.0 * 1024.0).abs() < 20.0 * 1024.0,
        "slope {slope}"
    );
    // The signal written on every row of tick 60 is one event.
    assert_eq!(s["events"].as_array().unwrap().len(), 1, "{}", s["events"]);
    assert!(d.join("out.png").exists());

    // The same tree without a leak: stable.
    std::fs::write(d.join("flat.csv"), tree_csv(0.0, true)).unwrap();
    let out = report(d, "flat.csv", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn report_refuses_a_process_tree_without_total_rows_naming_the_processes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tree.csv"), tree_csv(1024.0, false)).unwrap();
    let err = refused(dir.path(), "tree.csv", &[]);
    assert!(err.contains("tree.csv"), "{err}");
    assert!(
        err.contains("several processes (pid 100, pid 101, pid 102) and no 'total' rows"),
        "{err}"
    );
}

#[test]
fn report_refuses_rows_it_cannot_place_in_a_series() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases = [
        (
            "badpid.csv",
            "elapsed_s,pid,rss_bytes\n0,12,100\n1,twelve,100\n",
            "line 3: 'twelve' in column pid is neither a process id",
        ),
        (
            "mixed.csv",
            "elapsed_s,pid,rss_bytes\n0,12,100\n1,12,100\n2,,100\n",
            "line 4: the pid cell is empty here but '12' on line 2",
        ),
        (
            "back.csv",
            "elapsed_s,pid,rss_bytes\n0,7,1\n0,total,1\n5,7,1\n5,total,1\n4,total,1\n",
            "line 6: time goes backwards for total: elapsed_s '4' is earlier than '5' on line 5",
        ),
    ];
    for (name, text, expect) in cases {
        std::fs::write(d.join(name), text).unwrap();
        let err = refused(d, name, &[]);
        assert!(err.contains(&format!("{name} {expect}")), "{err}");
    }
}

/// Issue 9, item 9: 120 rows all at `elapsed_s` 0 were called `stable`, exit 0.
#[test]
fn report_on_rows_that_all_share_one_time_is_not_a_passed_gate() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("elapsed_s,rss_bytes\n");
    for i in 0..120 {
        text += &format!("0.000,{}\n", 50 * 1024 * 1024 + i * 4096);
    }
    std::fs::write(dir.path().join("frozen.csv"), text).unwrap();
    let err = refused(dir.path(), "frozen.csv", &[]);
    assert!(
        err.contains("frozen.csv: all 120 samples share one time (elapsed_s 0)")
            && err.contains("cannot be judged"),
        "{err}"
    );
}

/// Issue 9, item 9: `1e300` bytes, sizes past 2^53 and fractional bytes were accepted.
#[test]
fn report_refuses_absurd_sizes_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (cell, expect) in [
        ("1e300", "more than 2^53 bytes"),
        ("9007199254740993", "more than 2^53 bytes"),
        ("12.5", "not a whole number of bytes"),
    ] {
        let mut text = String::from("elapsed_s,rss_bytes\n");
        for i in 0..30 {
            text += &format!(
                "{i}.000,{}\n",
                if i == 17 {
                    cell.to_string()
                } else {
                    "1048576".into()
                }
            );
        }
        std::fs::write(d.join("absurd.csv"), text).unwrap();
        let err = refused(d, "absurd.csv", &[]);
        assert!(
            err.contains(&format!(
                "absurd.csv line 19: '{cell}' in column rss_bytes is {expect}"
            )),
            "{err}"
        );
    }
    // psrecord writes MiB as floats: still accepted.
    let mut log = String::from("# Elapsed time   CPU (%)     Real (MB)   Virtual (MB)\n");
    for i in 0..30 {
        log += &format!(
            "{:>12.3} {:>9.3} {:>12.3} {:>12.3}\n",
            i as f64, 1.0, 40.125, 300.5
        );
    }
    std::fs::write(d.join("psrecord.log"), log).unwrap();
    let out = report(d, "psrecord.log", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Issue 9, item 14: `--metric pss` on a recording without PSS said the column was missing
/// when it was there but empty (recorded without --pss).
#[test]
fn report_metric_pss_says_an_empty_column_is_empty_not_missing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("tree.csv"), tree_csv(0.0, true)).unwrap();
    let err = refused(d, "tree.csv", &["--metric", "pss"]);
    assert!(
        err.contains("--metric pss: the 'pss_bytes' column is empty: record with --pss"),
        "{err}"
    );
    let mut text = String::from("elapsed_s,rss_bytes\n");
    for i in 0..30 {
        text += &format!("{i},1048576\n");
    }
    std::fs::write(d.join("nopss.csv"), text).unwrap();
    let err = refused(d, "nopss.csv", &["--metric", "pss"]);
    assert!(
        err.contains("--metric pss: the recording has no 'pss_bytes' column"),
        "{err}"
    );
}
