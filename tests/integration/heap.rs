//! `memwatch heap` against snapshots Node writes during the test, from
//! fixtures/node/heap-leak.js: `Client` objects leak into an array that a SIGINT listener's
//! closure holds; `Session` objects churn (same count, new members each step).
//! They need `node` and fail without it (`.ci/run` installs Node.js).

use crate::util::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs the fixture: `snapshots` snapshots, `leak` new clients per step, `churn` sessions.
fn snapshots(dir: &Path, snapshots: u32, leak: u32, churn: u32) -> Vec<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/node/heap-leak.js");
    let out = Command::new("node")
        .arg(script)
        .args(["--dir", dir.to_str().unwrap()])
        .args(["--snapshots", &snapshots.to_string()])
        .args(["--leak", &leak.to_string()])
        .args(["--churn", &churn.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "heap-leak.js failed: {}",
        stderr(&out)
    );
    let files: Vec<PathBuf> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(PathBuf::from)
        .collect();
    assert_eq!(files.len(), snapshots as usize);
    files
}

fn heap(dir: &Path, args: &[&str]) -> Output {
    let child = memwatch(dir)
        .arg("heap")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, std::time::Duration::from_secs(60))
}

fn json(out: &Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn row<'a>(rows: &'a Value, class: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r["class"] == class)
        .unwrap_or_else(|| panic!("no row for {class} in {rows:#}"))
}

fn paths(files: &[PathBuf]) -> Vec<&str> {
    files.iter().map(|p| p.to_str().unwrap()).collect()
}

#[test]
fn diff_names_the_leak_its_exact_count_the_churn_and_the_retaining_path() {
    require_node();
    let dir = tempfile::tempdir().unwrap();
    let files = snapshots(dir.path(), 2, 2000, 500);
    let mut args = vec!["diff"];
    args.extend(paths(&files));
    args.extend(["--top", "0", "--json", "-"]);
    let d = json(&heap(dir.path(), &args));

    let top = &d["rows"][0];
    assert_eq!(
        top["class"], "Client",
        "the leak tops the diff: {:#}",
        d["rows"]
    );
    assert_eq!(top["new_count"], 2000);
    assert_eq!(top["deleted_count"], 0);
    assert_eq!(top["delta_count"], 2000);
    assert_eq!(top["size_delta"], top["alloc_size"]);

    let session = row(&d["rows"], "Session");
    assert_eq!(session["new_count"], 500, "churn shows as new: {session}");
    assert_eq!(session["deleted_count"], 500, "and as deleted: {session}");
    assert_eq!(session["delta_count"], 0);

    let client_paths = d["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["class"] == "Client")
        .expect("paths for Client");
    assert_eq!(client_paths["new_objects"], 2000);
    let group = &client_paths["groups"][0];
    assert_eq!(group["count"], 2000, "all share one path: {client_paths:#}");
    let text = group["text"].as_str().unwrap();
    assert!(
        text.contains("SIGINT (cleanup())") && text.contains("-> clients ->"),
        "the path names the listener and the array: {text}"
    );
    assert!(text.ends_with("(Client)"), "{text}");

    // The leak roots: the clients, each retaining its name and number, held by the array in
    // the listener's closure; the churned sessions come after (replaced, not grown).
    let root = &d["leak_roots"][0];
    assert_eq!(root["class"], "Client", "{:#}", d["leak_roots"]);
    assert_eq!(root["count"], 2000);
    assert!(
        root["retained_size"].as_u64().unwrap() > top["alloc_size"].as_u64().unwrap(),
        "{root}"
    );
    assert_eq!(root["held_by"], "clients via cleanup() (SIGINT listener)");
    let headline = d["headline"].as_str().unwrap();
    assert!(
        headline.starts_with("+2,000 Client retaining ")
            && headline.ends_with(", held by clients via cleanup() (SIGINT listener)"),
        "{headline}"
    );
    let sessions = d["leak_roots"]
        .as_array()
        .unwrap()
        .iter()
        .position(|g| g["class"] == "Session")
        .expect("the new sessions are leak roots too");
    assert!(sessions > 0);
    assert_eq!(d["leak_roots"][sessions]["deleted_count"], 500);

    // The same as text: the headline first, then aligned tables and the path.
    let out = heap(dir.path(), &args[..args.len() - 2]);
    assert_eq!(out.status.code(), Some(0));
    let text_out = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text_out.lines().next(), Some(headline), "{text_out}");
    let header = text_out
        .lines()
        .skip_while(|l| !l.starts_with("By class"))
        .find(|l| l.starts_with("Class"))
        .expect("a table header");
    for col in [
        "# New",
        "# Deleted",
        "# Delta",
        "Alloc. Size",
        "Freed Size",
        "Size Delta",
    ] {
        assert!(header.contains(col), "{header}");
    }
    let client_line = text_out
        .lines()
        .skip_while(|l| !l.starts_with("By class"))
        .find(|l| l.starts_with("Client "))
        .unwrap();
    assert_eq!(
        client_line.len(),
        header.len(),
        "columns align:\n{header}\n{client_line}"
    );
    assert!(client_line.contains("2,000"), "{client_line}");
    assert!(text_out.contains(&format!("2,000  {text}")), "{text_out}");
}

#[test]
fn three_snapshots_flag_the_class_that_grew_in_every_step() {
    require_node();
    let dir = tempfile::tempdir().unwrap();
    let files = snapshots(dir.path(), 3, 1000, 300);
    let mut args = vec!["diff"];
    args.extend(paths(&files));
    args.extend(["--json", "-"]);
    let d = json(&heap(dir.path(), &args));
    let grew = d["grew_every_step"].as_array().unwrap();
    let client = grew
        .iter()
        .find(|g| g["class"] == "Client")
        .unwrap_or_else(|| panic!("Client grew in both steps: {grew:#?}"));
    assert_eq!(client["delta_counts"], serde_json::json!([1000, 1000]));
    assert!(
        grew.iter().all(|g| g["class"] != "Session"),
        "churn is not growth: {grew:#?}"
    );
    let alive = row(&d["still_alive"], "Client");
    assert_eq!(
        alive["count"], 1000,
        "the middle snapshot's clients are all still alive"
    );
    assert_eq!(d["rows"][0]["class"], "Client");
    assert_eq!(d["rows"][0]["new_count"], 2000);
    // The text: one column a step, aligned.
    let out = heap(dir.path(), &args[..args.len() - 2]);
    let text = String::from_utf8(out.stdout).unwrap();
    let table: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("Grew in every step"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(
        table[0].starts_with("Class ")
            && table[0].ends_with("# Delta 1  # Delta 2  Size Delta 1  Size Delta 2"),
        "{text}"
    );
    let client = table.iter().find(|l| l.starts_with("Client ")).unwrap();
    assert_eq!(client.len(), table[0].len(), "{text}");
    assert!(client.contains("+1,000     +1,000"), "{client}");
}

#[test]
fn summary_gives_count_self_and_retained_size_per_class() {
    require_node();
    let dir = tempfile::tempdir().unwrap();
    let files = snapshots(dir.path(), 2, 1500, 100);
    let s = json(&heap(
        dir.path(),
        &[
            "summary",
            files[1].to_str().unwrap(),
            "--top",
            "0",
            "--json",
            "-",
        ],
    ));
    let client = row(&s["rows"], "Client");
    assert_eq!(client["count"], 1500);
    let self_size = client["self_size"].as_u64().unwrap();
    let retained = client["retained_size"].as_u64().unwrap();
    // each client alone holds its name string and heap number
    assert!(retained > self_size, "{client}");
    let array = row(&s["rows"], "Array");
    assert!(
        array["retained_size"].as_u64().unwrap() >= retained,
        "{array}"
    );
    assert!(s["total_size"].as_u64().unwrap() > retained);
    for class in [
        "Function",
        "(string)",
        "system / Context",
        "(compiled code)",
    ] {
        row(&s["rows"], class);
    }
    let out = heap(dir.path(), &["summary", files[1].to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Class") && text.contains("Retained Size"),
        "{text}"
    );
}

#[test]
fn bad_snapshots_exit_2_with_one_line_naming_the_file() {
    require_node();
    let dir = tempfile::tempdir().unwrap();
    let files = snapshots(dir.path(), 2, 10, 10);
    let good = std::fs::read(&files[1]).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty.heapsnapshot", Vec::new(), "is empty"),
        (
            "half.heapsnapshot",
            good[..good.len() / 2].to_vec(),
            "is truncated",
        ),
        (
            "end.heapsnapshot",
            good[..good.len() - 2].to_vec(),
            "is truncated",
        ),
        (
            "other.json",
            br#"{"name":"x","version":"1.0.0"}"#.to_vec(),
            "not a V8 heap snapshot",
        ),
        (
            "meta.heapsnapshot",
            String::from_utf8(good.clone())
                .unwrap()
                .replacen("\"edge_fields\"", "\"edge_fieldz\"", 1)
                .into_bytes(),
            "unusable snapshot.meta",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = heap(
            dir.path(),
            &["diff", files[0].to_str().unwrap(), path.to_str().unwrap()],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        assert!(
            err.contains(name) && err.contains(expected),
            "{name}: {err}"
        );
    }
    let out = heap(dir.path(), &["summary", "missing.heapsnapshot"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read 'missing.heapsnapshot'"));
    let out = heap(dir.path(), &["diff", files[0].to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "one file is a usage error");
}

/// After a run that collected two or more complete heap snapshots, memwatch compares the
/// first and the last by itself: the class that grew and the path that holds it are in the
/// printed summary and in summary.json.
#[test]
fn a_run_with_heap_snapshots_ends_with_the_diff_and_the_path() {
    require_node();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/node");
    let load = format!(
        "node {} --port {port} --rate 20 --duration 14",
        fixtures.join("load.js").display()
    );
    let child = memwatch(dir.path())
        .args(["run", "--interval", "200ms", "--duration", "30s"])
        .args(["--signal-at", "5s", "--signal-at-end", "--runtime", "none"])
        .args(["--ready-port", &port, "--load", &load, "--out", "o"])
        .args(["--dump-dir", dir.path().to_str().unwrap(), "--"])
        .args(["node", "--heapsnapshot-signal=SIGUSR2"])
        .arg(fixtures.join("session-service.js"))
        .args(["--port", &port])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, std::time::Duration::from_secs(90));
    let err = stderr(&out);
    assert!(err.contains("what grew on the heap"), "{err}");
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("o/summary.json")).unwrap()).unwrap();
    let diff = &summary["heap_diff"];
    assert_eq!(
        diff["snapshots"].as_array().map(Vec::len),
        Some(2),
        "{summary}"
    );
    // Every connection's Socket is kept: all new, none freed.
    let socket = row(&diff["rows"], "Socket");
    let new = socket["new_count"].as_u64().unwrap();
    assert!(new >= 50, "{socket}");
    assert_eq!(socket["deleted_count"].as_u64(), Some(0), "{socket}");
    // The path from the roots names the array that keeps them.
    let text = diff["paths"].to_string();
    assert!(text.contains("sessions"), "{text}");
    assert!(
        err.contains("sessions"),
        "the printed summary shows the path: {err}"
    );
}
