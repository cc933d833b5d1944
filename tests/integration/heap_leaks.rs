//! `memwatch heap diff` names the leak (issue 16), on snapshots Node writes during the test
//! from fixtures/node/heap-cases.js: a Map cache, a WeakMap, connections holding a native
//! buffer in a listener's array, churn, two classes of one name. Checked against Chrome
//! DevTools' own code (scripts/heap-devtools-reference.mjs; `.ci/run` installs it with
//! scripts/devtools-bundle.sh). They need `node` and fail without it.

use crate::util::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs heap-cases.js with `args` (two snapshots unless `--snapshots` says otherwise).
fn cases(dir: &Path, args: &[&str]) -> Vec<PathBuf> {
    require_node();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/node/heap-cases.js");
    let out = Command::new("node")
        .arg(script)
        .args(["--dir", dir.to_str().unwrap()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "heap-cases.js: {}", stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect()
}

fn heap(dir: &Path, args: &[&str]) -> Output {
    let child = memwatch(dir)
        .arg("heap")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, Duration::from_secs(120))
}

fn diff(dir: &Path, files: &[PathBuf], extra: &[&str]) -> Value {
    let mut args = vec!["diff"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.extend(extra);
    args.extend(["--json", "-"]);
    let out = heap(dir, &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn group<'a>(d: &'a Value, class: &str) -> &'a Value {
    d["leak_roots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["class"] == class)
        .unwrap_or_else(|| panic!("no leak-root group {class}: {:#}", d["leak_roots"]))
}

fn row<'a>(rows: &'a Value, class: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["class"] == class)
        .unwrap_or_else(|| panic!("no row for {class} in {rows:#}"))
}

#[test]
fn a_map_cache_leak_is_one_group_with_its_full_count() {
    let dir = tempfile::tempdir().unwrap();
    let files = cases(dir.path(), &["--map", "3000"]);
    let d = diff(dir.path(), &files, &[]);
    let entries = group(&d, "CacheEntry");
    assert_eq!(entries["count"], 3000);
    assert_eq!(entries["held_by"], "cache", "{entries:#}");
    let paths = entries["paths"].as_array().unwrap();
    assert_eq!(paths[0]["count"], 3000, "one group, not 3000: {paths:#?}");
    assert_eq!(entries["other_paths"], 0);
    let text = paths[0]["text"].as_str().unwrap();
    assert!(
        text.ends_with("-> heapCases -> cache -> (Map entries) (CacheEntry)"),
        "{text}"
    );
    // Each entry retains its value string; the keys are roots of their own (the table
    // holds them), under the same path.
    assert!(entries["retained_size"].as_u64() > entries["self_size"].as_u64());
    let keys = group(&d, "(string)");
    assert!(keys["count"].as_u64().unwrap() >= 3000, "{keys:#}");
}

#[test]
fn a_weakmap_value_is_kept_by_its_key_as_in_devtools() {
    let dir = tempfile::tempdir().unwrap();
    let files = cases(dir.path(), &["--weakmap", "400", "--map", "200"]);
    let last = files[1].to_str().unwrap();
    let out = heap(dir.path(), &["summary", last, "--top", "0", "--json", "-"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = row(&s["rows"], "Key");
    let meta = row(&s["rows"], "Meta");
    assert_eq!(
        (key["count"].as_u64(), meta["count"].as_u64()),
        (Some(400), Some(400))
    );
    // DevTools leaves out the table's edge to a value: each key dominates its value.
    assert_eq!(
        key["retained_size"].as_u64().unwrap(),
        key["self_size"].as_u64().unwrap() + meta["retained_size"].as_u64().unwrap(),
        "Key {key} Meta {meta}"
    );
    // And every class, DevTools' own code against memwatch, summary and diff.
    devtools_agrees(dir.path(), &files);
}

/// Runs scripts/heap-devtools-reference.mjs: DevTools' loader and HeapSnapshot worker on the
/// same files, compared class by class with this build of memwatch.
fn devtools_agrees(dir: &Path, files: &[PathBuf]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bundle = Command::new(root.join("scripts/devtools-bundle.sh"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        bundle.status.success(),
        "DevTools could not be installed (.ci/run installs it): {}",
        stderr(&bundle)
    );
    let bundle = String::from_utf8(bundle.stdout).unwrap();
    let child = Command::new("node")
        .arg(root.join("scripts/heap-devtools-reference.mjs"))
        .arg(bundle.trim())
        .arg(memwatch_bin())
        .args(files)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(180));
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}{}", stderr(&out));
    assert!(report.contains("no differences"), "{report}");
}

#[test]
fn the_connection_that_holds_a_native_buffer_is_the_leak_not_its_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let files = cases(
        dir.path(),
        &[
            "--conns", "30", "--buffer", "262144", "--map", "500", "--churn", "300",
        ],
    );
    let d = diff(dir.path(), &files, &[]);
    // By self size the buffers' backing stores come first: the biggest leaf.
    assert_eq!(d["rows"][0]["class"], "system / JSArrayBufferData");
    // The leak roots name what holds them, and what holds that.
    let first = &d["leak_roots"][0];
    assert_eq!(first["class"], "Connection", "{:#}", d["leak_roots"]);
    assert_eq!(first["count"], 30);
    assert!(
        first["retained_size"].as_u64().unwrap() >= 30 * 262_144,
        "{first}"
    );
    assert_eq!(first["held_by"], "clients via cleanup() (SIGINT listener)");
    let headline = d["headline"].as_str().unwrap();
    assert!(
        headline.starts_with("+30 Connection retaining "),
        "{headline}"
    );
    assert!(
        headline.ends_with(", held by clients via cleanup() (SIGINT listener)"),
        "{headline}"
    );
    // Node's own native objects get new ids in every snapshot: compared by count, not
    // shown as new and deleted.
    for r in d["rows"].as_array().unwrap() {
        let class = r["class"].as_str().unwrap();
        assert!(!class.contains("Node / "), "embedder row {r}");
    }
    let zlib = d["embedder"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["class"] == "Node / ZlibContext")
        .unwrap_or_else(|| panic!("{:#}", d["embedder"]));
    assert_eq!(zlib["count_delta"], 30);
    // The text: the headline first.
    let mut args = vec!["diff"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = heap(dir.path(), &args);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().next(), Some(headline));
}

#[test]
fn a_churned_class_is_in_the_default_top() {
    let dir = tempfile::tempdir().unwrap();
    let files = cases(
        dir.path(),
        &[
            "--churn",
            "8000",
            "--map",
            "1000",
            "--conns",
            "5",
            "--twins",
            "100",
            "--weakmap",
            "100",
        ],
    );
    let mut args = vec!["diff"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let out = heap(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("By class"))
        .skip(2)
        .take_while(|l| !l.is_empty() && !l.starts_with('…'))
        .collect();
    assert_eq!(table.len(), 20, "{text}");
    let session = table
        .iter()
        .find(|l| l.starts_with("Session "))
        .unwrap_or_else(|| panic!("Session in the top 20:\n{text}"));
    assert!(session.contains("8,000      8,000"), "{session}");
}

#[test]
fn two_classes_of_one_name_are_two_rows_named_by_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let files = cases(dir.path(), &["--twins", "150"]);
    let d = diff(dir.path(), &files, &["--top", "0"]);
    let twins: Vec<&Value> = d["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["class"].as_str().unwrap().starts_with("Client ("))
        .collect();
    assert_eq!(twins.len(), 2, "{:#}", d["rows"]);
    let mut files_named: Vec<&str> = twins
        .iter()
        .map(|r| {
            assert_eq!(r["new_count"], 150, "{r}");
            r["location"].as_str().unwrap()
        })
        .collect();
    files_named.sort();
    assert!(
        files_named[0].contains("heap-cases-twin.js:") && files_named[1].contains("heap-cases.js:"),
        "{files_named:?}"
    );
    let names: Vec<&str> = twins.iter().map(|r| r["class"].as_str().unwrap()).collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("Client (heap-cases-twin.js:")),
        "{names:?}"
    );
}

#[test]
fn json_goes_to_a_file_or_stdout_and_holds_every_class() {
    let dir = tempfile::tempdir().unwrap();
    let files = cases(
        dir.path(),
        &["--map", "300", "--twins", "50", "--churn", "100"],
    );
    let (a, b) = (files[0].to_str().unwrap(), files[1].to_str().unwrap());
    let out_json = dir.path().join("diff.json");
    let out = heap(
        dir.path(),
        &[
            "diff",
            a,
            b,
            "--top",
            "3",
            "--json",
            out_json.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("By class"),
        "the text still goes to stdout: {text}"
    );
    let d: Value = serde_json::from_slice(&std::fs::read(&out_json).unwrap()).unwrap();
    let rows = d["rows"].as_array().unwrap().len() as u64;
    assert!(rows > 3, "every class, not --top 3");
    assert_eq!(Some(rows), d["classes_changed"].as_u64());
    // `-`: stdout, and only the JSON there.
    let out = heap(dir.path(), &["diff", a, b, "--json", "-"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rows"], d["rows"]);
    // Never over a snapshot; a missing folder is said before anything is read.
    let before = std::fs::read(&files[1]).unwrap();
    let out = heap(dir.path(), &["diff", a, b, "--json", b]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("is one of the snapshots"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&files[1]).unwrap(), before);
    let out = heap(dir.path(), &["diff", a, b, "--json", "no/such/diff.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
    // the summary too
    let out = heap(dir.path(), &["summary", b, "--json", "-"]);
    assert_eq!(out.status.code(), Some(0));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(s["rows"].as_array().unwrap().len() > 20);
}

#[test]
fn the_same_file_twice_reversed_order_and_two_programs_each_get_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let files = cases(dir.path(), &["--map", "500"]);
    // another program: heap-leak.js
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/node/heap-leak.js");
    let out = Command::new("node")
        .arg(script)
        .args(["--dir", other_dir.to_str().unwrap(), "--leak", "2000"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let other = [
        other_dir.join("heap-0.heapsnapshot"),
        other_dir.join("heap-1.heapsnapshot"),
    ];
    let (a, b) = (files[0].to_str().unwrap(), files[1].to_str().unwrap());
    let o = other[1].to_str().unwrap();
    let warning = |args: &[&str]| {
        let out = heap(dir.path(), args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let err = stderr(&out);
        let lines: Vec<&str> = err.lines().filter(|l| l.contains("warning")).collect();
        assert_eq!(lines.len(), 1, "one warning line: {err}");
        lines[0].to_string()
    };
    assert!(warning(&["diff", a, a]).contains("are the same file"));
    assert!(warning(&["diff", b, a]).contains("look reversed"));
    assert!(warning(&["diff", a, o]).contains("two processes"));
    // in order, of one process: no warning
    let out = heap(dir.path(), &["diff", a, b]);
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    // and in the JSON
    let d = diff(dir.path(), &[files[1].clone(), files[0].clone()], &[]);
    assert!(d["warnings"][0].as_str().unwrap().contains("reversed"));
}

#[test]
fn a_byte_order_mark_is_read_a_folder_is_named_and_a_bad_digit_is_pointed_at() {
    let dir = tempfile::tempdir().unwrap();
    let files = cases(dir.path(), &["--map", "100"]);
    let good = std::fs::read(&files[1]).unwrap();
    let (a, b) = (files[0].to_str().unwrap(), files[1].to_str().unwrap());
    // A UTF-8 byte-order mark first: read as DevTools reads it.
    let bom = dir.path().join("bom.heapsnapshot");
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice(&good);
    std::fs::write(&bom, with_bom).unwrap();
    let plain = diff(dir.path(), &files, &[]);
    let read = diff(dir.path(), &[files[0].clone(), bom.clone()], &[]);
    assert_eq!(plain["rows"], read["rows"]);
    // A folder.
    let out = heap(dir.path(), &["diff", a, dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is a folder"), "{}", stderr(&out));
    // One digit of an edge's to_node changed: the message names the byte.
    let text = String::from_utf8(good.clone()).unwrap();
    let edges = text.find("\"edges\":[").unwrap() + 9;
    let first = &text[edges..edges + text[edges..].find('\n').unwrap()];
    let to_start = edges + first.rfind(',').unwrap() + 1;
    let mut bad = good.clone();
    bad[to_start] = if bad[to_start] == b'9' { b'8' } else { b'9' };
    bad.insert(to_start, b'9'); // far beyond the last node now
    let bad_path = dir.path().join("bad.heapsnapshot");
    std::fs::write(&bad_path, &bad).unwrap();
    let out = heap(dir.path(), &["diff", a, bad_path.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("at byte {to_start}:")) && err.contains("to_node"),
        "{err}"
    );
    let _ = b;
}

/// `memwatch run` of the leaky session service under load with `--heap-snapshots N`.
fn run_service(dir: &Path, duration: &str, snapshots: &str, load_s: &str) -> (String, Value) {
    require_node();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/node");
    let load = format!(
        "node {} --port {port} --rate 20 --duration {load_s}",
        fixtures.join("load.js").display()
    );
    let child = memwatch(dir)
        .args(["run", "--interval", "200ms", "--duration", duration])
        .args(["--heap-snapshots", snapshots, "--ready-port", &port])
        .args(["--load", &load, "--out", "o", "--"])
        .arg("node")
        .arg(fixtures.join("session-service.js"))
        .args(["--port", &port])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(150));
    let err = stderr(&out);
    let summary = std::fs::read(dir.join("o/summary.json"))
        .unwrap_or_else(|e| panic!("no summary.json ({e}): {err}"));
    (err, serde_json::from_slice(&summary).unwrap())
}

#[test]
fn the_end_of_a_leaky_service_run_names_the_leak_and_its_holder_first() {
    let dir = tempfile::tempdir().unwrap();
    // The second snapshot is due at 22 s; the load keeps the run going until about 23.5 s.
    let (err, summary) = run_service(dir.path(), "24s", "2", "23");
    let diff = &summary["heap_diff"];
    let headline = diff["headline"]
        .as_str()
        .unwrap_or_else(|| panic!("a heap diff with a headline: {summary:#}\n{err}"));
    // Each connection's session, a plain object, is the leak root; the sessions array in the
    // scope of the service's signal listeners holds it.
    assert!(
        headline.contains(" {socket, started, log} retaining ")
            && headline.contains(", held by sessions via "),
        "{headline}"
    );
    assert!(headline.ends_with(" listener"), "{headline}");
    // The end-of-run text starts with it: only warnings come between it and how the run
    // ended, and every live line is before it.
    let lines: Vec<&str> = err.lines().collect();
    let how = lines
        .iter()
        .position(|l| l.starts_with("memwatch: pid ") && l.contains("(node): "))
        .unwrap_or_else(|| panic!("{err}"));
    let first = lines
        .iter()
        .position(|l| *l == format!("memwatch: {headline}"))
        .unwrap_or_else(|| panic!("the headline is printed: {err}"));
    assert!(first < how, "{err}");
    assert!(
        lines[first + 1..how]
            .iter()
            .all(|l| l.starts_with("memwatch: warning: ") || l.starts_with("memwatch: note")),
        "{err}"
    );
    assert!(
        lines[first..].iter().all(|l| !l.contains(" since start")),
        "no live line after it: {err}"
    );
    // The snapshots, their sizes, times and cost are in summary.json.
    let dumps = summary["dumps"].as_array().unwrap();
    assert_eq!(dumps.len(), 2, "{dumps:#?}");
    for d in dumps {
        assert_eq!(d["via"], "inspector");
        assert!(d["bytes"].as_u64().unwrap() > 100_000, "{d}");
        assert!(d["completed_s"].as_f64().unwrap() >= d["started_s"].as_f64().unwrap());
        let (before, peak) = (d["rss_before_bytes"].as_u64(), d["rss_peak_bytes"].as_u64());
        assert!(before.is_some() && peak >= before, "{d}");
    }
}

#[test]
fn heap_snapshots_the_run_ended_before_are_said_in_words_events_and_the_diff_error() {
    let dir = tempfile::tempdir().unwrap();
    // The load ends at 12 s, long before the 40 s the snapshots are spread over.
    let (err, summary) = run_service(dir.path(), "40s", "3", "12");
    let warning = err
        .lines()
        .find(|l| l.contains("heap snapshots asked for (--heap-snapshots)"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        warning.contains("of the 3 heap snapshots")
            && warning.contains("not taken: the run ended at"),
        "{warning}"
    );
    let events: Vec<&str> = summary["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"heap-snapshots-not-taken"), "{events:?}");
    let taken = summary["dumps"].as_array().unwrap().len();
    assert!(taken < 3, "{:#}", summary["dumps"]);
    if taken < 2 {
        let e = summary["heap_diff_error"].as_str().unwrap();
        assert!(e.contains(&format!("only {taken} of the 3")), "{e}");
    }
}
