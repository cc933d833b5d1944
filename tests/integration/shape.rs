//! The shape of what a run writes (the CSV's header, which columns are ever filled, the
//! event kinds; summary.json's keys and the type of every value) is held against a golden
//! file, so a change inside memwatch that should not change its outputs is seen not to.
//! The golden files were written by the code before the sampling loop became per-tick parts
//! (issue 21). After a change that means to alter an output, run with `MEMWATCH_BLESS=1` and
//! commit the new golden file beside the change.

use crate::runtime::{need, node_fixture};
use crate::util::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"))
}

/// A JSON value reduced to its shape: objects keep their keys, arrays the shapes of their
/// elements (each distinct shape once), scalars their type. Event lists keep their kinds.
fn skeleton(v: &Value) -> Value {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer".into(),
        Value::Number(_) => "float".into(),
        Value::String(_) => "string".into(),
        Value::Array(items) => {
            let shapes: BTreeSet<String> = items.iter().map(|i| skeleton(i).to_string()).collect();
            Value::Array(
                shapes
                    .iter()
                    .map(|s| serde_json::from_str(s).unwrap())
                    .collect(),
            )
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), skeleton(v))).collect())
        }
    }
}

/// An event's kind: `signal:SIGUSR2` -> `signal`, `dump:/x/y` -> `dump`.
fn kind(event: &str) -> String {
    event.split(':').next().unwrap_or(event).to_string()
}

/// The shape of a run folder: the CSV's header, the columns ever filled per kind of row
/// (target, total, other process), the event kinds, and summary.json's skeleton with the
/// event kinds and the verdict.
fn shape(dir: &Path, target_pid: Option<&str>) -> Value {
    let csv = std::fs::read_to_string(dir.join("samples.csv")).unwrap();
    let header: Vec<String> = csv
        .lines()
        .next()
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    let rows = parse_csv(&csv);
    let target = target_pid
        .map(String::from)
        .unwrap_or_else(|| rows[0]["pid"].clone());
    let mut filled: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut events = BTreeSet::new();
    for row in &rows {
        let who = match row["pid"].as_str() {
            "total" => "total",
            p if p == target => "target",
            _ => "other",
        };
        for (col, cell) in row {
            if !cell.is_empty() && col != "event" {
                filled.entry(who).or_default().insert(col.clone());
            }
        }
        for e in row["event"].split(';').filter(|e| !e.is_empty()) {
            events.insert(kind(e));
        }
    }
    let mut summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let heap_diff = summary["heap_diff"].take();
    let summary_events: BTreeSet<String> = summary["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| kind(e["event"].as_str().unwrap()))
        .collect();
    serde_json::json!({
        "csv_header": header,
        "csv_filled": filled,
        "csv_events": events,
        "summary_events": summary_events,
        "summary": skeleton(&summary),
        // What the heap diff found depends on the heap: only its keys.
        "heap_diff_keys": heap_diff.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()),
    })
}

/// Compares with the golden file, or writes it with `MEMWATCH_BLESS=1`.
fn check(name: &str, got: &Value) {
    let path = golden_path(name);
    let text = serde_json::to_string_pretty(got).unwrap() + "\n";
    if std::env::var_os("MEMWATCH_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (MEMWATCH_BLESS=1 writes it)", path.display()));
    let want: Value = serde_json::from_str(&want).unwrap();
    let mut differences = Vec::new();
    compare(&want, got, "", &mut differences);
    assert!(
        differences.is_empty(),
        "the outputs of '{name}' changed shape (golden file {}): {differences:#?}\n\
         got: {text}\nIf that is meant, run with MEMWATCH_BLESS=1 and commit the new file",
        path.display()
    );
}

/// Where `got` differs from `want` in shape: the same keys everywhere, the same types, the
/// same lists of names; a value that is `null` on one side may be anything on the other
/// (a figure unknown in one run, such as a series too short to judge on a loaded machine).
fn compare(want: &Value, got: &Value, at: &str, out: &mut Vec<String>) {
    match (want, got) {
        (Value::String(w), _) | (_, Value::String(w)) if w == "null" => {}
        (Value::Object(w), Value::Object(g)) => {
            for key in w.keys().chain(g.keys()) {
                match (w.get(key), g.get(key)) {
                    (Some(a), Some(b)) => compare(a, b, &format!("{at}.{key}"), out),
                    (None, _) => out.push(format!("{at}.{key}: new")),
                    (_, None) => out.push(format!("{at}.{key}: gone")),
                }
            }
        }
        // (An empty list is no list of names: it matches any, below.)
        (Value::Array(w), Value::Array(g))
            if !w.is_empty() && w.iter().all(Value::is_string) && w != g =>
        {
            out.push(format!("{at}: {want} -> {got}"));
        }
        (Value::Array(w), _) if w.iter().all(Value::is_string) => {}
        (Value::Array(w), Value::Array(g)) => {
            // Each element shape (in the golden file) has a match in the run, and the other
            // way round; an empty list matches any.
            for a in w {
                if !g.is_empty() && !g.iter().any(|b| shape_matches(a, b)) {
                    out.push(format!("{at}[]: {a} is gone"));
                }
            }
            for b in g {
                if !w.is_empty() && !w.iter().any(|a| shape_matches(a, b)) {
                    out.push(format!("{at}[]: {b} is new"));
                }
            }
        }
        _ if want != got => out.push(format!("{at}: {want} -> {got}")),
        _ => {}
    }
}

fn shape_matches(a: &Value, b: &Value) -> bool {
    let mut d = Vec::new();
    compare(a, b, "", &mut d);
    d.is_empty()
}

/// The fixture with signals, dumps, settle samples, PSS and a load command.
#[test]
fn shape_of_a_fixture_run_with_signals_dumps_pss_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let dumps = dir.path().join("dumps");
    std::fs::create_dir(&dumps).unwrap();
    let dumps = dumps.to_str().unwrap();
    let out = memwatch(dir.path())
        .args(["run", "--interval", "100ms", "--duration", "6s"])
        .args([
            "--warmup",
            "1s",
            "--signal-every",
            "2s",
            "--settle",
            "300ms",
        ])
        .args(["--dump-dir", dumps, "--pss", "--pss-interval", "1s"])
        .args([
            "--load",
            "sleep 5",
            "--ready-delay",
            "200ms",
            "--cooldown",
            "0s",
        ])
        .args(["--out", "o", "--"])
        .arg(fixture_bin())
        .args(["leak", "4MiB/s", "--catch-usr2", "--dump-on-usr2", dumps])
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    check("fixture-run", &shape(&dir.path().join("o"), None));
}

/// A process tree: a shell that starts two fixtures, one of them leaking.
#[test]
fn shape_of_a_tree_run() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = fixture_bin();
    let script = format!("{f} leak 4MiB/s & {f} steady & wait", f = fixture.display());
    let out = memwatch(dir.path())
        .args([
            "run",
            "--interval",
            "100ms",
            "--duration",
            "5s",
            "--warmup",
            "1s",
        ])
        .args(["--tree", "--out", "o", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    check("tree-run", &shape(&dir.path().join("o"), None));
}

/// A Node.js service under load with its runtime asked (forced GCs, two heap snapshots).
#[test]
fn shape_of_a_node_run_with_the_runtime() {
    need("node");
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let load = format!(
        "node {} --port {port} --rate 20 --duration 26 --payload 8192",
        node_fixture("load.js").display()
    );
    let child = memwatch(dir.path())
        .args([
            "run",
            "--interval",
            "500ms",
            "--gc-every",
            "1s",
            "--duration",
            "28s",
        ])
        .args([
            "--heap-snapshots",
            "2",
            "--ready-port",
            &port,
            "--load",
            &load,
        ])
        .args(["--out", "o", "--", "node"])
        .arg(node_fixture("session-service.js"))
        .args(["--port", &port])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(120));
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    check("node-run", &shape(&dir.path().join("o"), None));
}

/// Issue 20 item 12: the README's summary.json table names every key a run writes (it lacked
/// `histogram_diff`); the golden shapes are what runs write.
#[test]
fn regression_issue20_item12_the_readme_names_every_summary_key() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("## summary.json")
        .expect("a summary.json section");
    let end = start
        + 3
        + readme[start + 3..]
            .find("\n## ")
            .unwrap_or(readme.len() - start - 3);
    let section = &readme[start..end];
    let mut missing = BTreeSet::new();
    for name in ["fixture-run", "node-run", "tree-run"] {
        let golden: Value =
            serde_json::from_str(&std::fs::read_to_string(golden_path(name)).unwrap()).unwrap();
        let keys = golden["summary"].as_object().expect("summary keys");
        assert!(keys.len() > 20, "{name}: {keys:?}");
        for key in keys.keys() {
            if !section.contains(&format!("`{key}`")) {
                missing.insert(key.clone());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "README's summary.json table does not name {missing:?}"
    );
}
