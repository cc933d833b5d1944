//! End to end with a real runtime: a Node.js service with the classic leak (every
//! connection kept in a list), under load from a small load script, watched by memwatch.
//! They need `node`: without it they fail and say so (`.ci/run` installs Node.js), never pass
//! silently.

use crate::util::*;
use serde_json::Value;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/node")
        .join(name)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, timeout: Duration) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < timeout,
            "the service did not listen on {port} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs the load script against `port`; returns its exit status.
fn load(port: u16, rate: u32, seconds: u32) -> std::process::ExitStatus {
    Command::new("node")
        .arg(fixture("load.js"))
        .args([
            "--port",
            &port.to_string(),
            "--rate",
            &rate.to_string(),
            "--duration",
            &seconds.to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap()
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("o/summary.json")).unwrap()).unwrap()
}

/// Case 1: the leaky service under load, started with --heapsnapshot-signal and signalled
/// periodically: complete heap snapshots are collected, and the verdict is "growing".
#[test]
fn leaky_node_service_grows_and_yields_heap_snapshots() {
    require_node();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Snapshots 15 s apart: each leaves its memory behind, and the analysis needs
    // undisturbed stretches between them to see the leak itself.
    let watcher = memwatch(dir.path())
        .args([
            "run",
            "--interval",
            "200ms",
            "--duration",
            "40s",
            "--signal",
            "SIGUSR2",
            "--signal-every",
            "15s",
            // A GC forced every second: the managed heap is judged, which the leak raises
            // whatever RSS does (once, RSS stayed flat after a snapshot while the heap
            // refilled the space it had freed, and too few heap readings were left).
            "--gc-every",
            "1s",
            "--out",
            "o",
            "--",
        ])
        .args(["node", "--heapsnapshot-signal=SIGUSR2"])
        .arg(fixture("service.js"))
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_port(port, Duration::from_secs(10));
    assert!(load(port, 100, 36).success());
    let out = wait_output(watcher, Duration::from_secs(120));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let s = summary(dir.path());
    assert_eq!(s["verdict"], "growing", "{err}");
    assert_eq!(s["metric"], "heap-after-gc", "{err}");
    let dumps = s["dumps"].as_array().unwrap();
    let complete: Vec<&Value> = dumps
        .iter()
        .filter(|d| d["completed_s"].is_number())
        .collect();
    assert!(
        complete.len() >= 2,
        "{} complete snapshots: {dumps:?}",
        complete.len()
    );
    for d in &complete {
        let path = Path::new(d["path"].as_str().unwrap());
        assert!(
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with(".heapsnapshot")
        );
        let text = std::fs::read(path).unwrap();
        assert_eq!(text.len() as u64, d["bytes"].as_u64().unwrap());
        assert!(
            text.trim_ascii_end().ends_with(b"]}"),
            "{} is not a complete snapshot",
            path.display()
        );
    }
    let events: Vec<&str> = s["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events.iter().filter(|e| **e == "signal:SIGUSR2").count(),
        2,
        "{events:?}"
    );
    assert!(events.iter().any(|e| e.starts_with("dump:")));
    assert!(
        !s["excluded"].as_array().unwrap().is_empty(),
        "dump periods are left out of the analysis"
    );
    assert!(
        err.contains("heap dump"),
        "the dumps are listed at the end: {err}"
    );
}

/// Case 2: the fixed service under the same load, with a forced GC on SIGUSR2 and settled
/// samples after each: stable.
#[test]
fn fixed_node_service_with_forced_gc_is_stable() {
    require_node();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let watcher = memwatch(dir.path())
        // The fixed service still settles in for ~20 s under this load (V8 grows its heap
        // before the first full GCs): an explicit warm-up, as a user would give it.
        .args([
            "run",
            "--interval",
            "200ms",
            "--duration",
            "45s",
            "--warmup",
            "20s",
        ])
        // The settled series itself: without the inspector (README, step 2).
        .args(["--runtime", "none"])
        .args(["--signal-every", "2s", "--settle", "1s", "--out", "o", "--"])
        .args(["node", "--expose-gc"])
        .arg(fixture("service.js"))
        .args(["--port", &port.to_string(), "--fixed", "--gc-on-signal"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_port(port, Duration::from_secs(10));
    assert!(load(port, 100, 41).success());
    let out = wait_output(watcher, Duration::from_secs(120));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let s = summary(dir.path());
    assert_eq!(s["verdict"], "stable", "{err}");
    assert_eq!(
        s["metric"], "settled",
        "judged on the post-GC samples: {err}"
    );
    let events: Vec<&str> = s["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        events.iter().filter(|e| **e == "settled").count() >= 8,
        "{events:?}"
    );
    assert!(s["dumps"].as_array().unwrap().is_empty());
}

/// Case 3: a target with no SIGUSR2 handler: memwatch refuses before sampling, the target lives.
#[test]
fn node_without_a_handler_is_never_signalled() {
    require_node();
    let port = free_port();
    let service = ChildGuard(
        Command::new("node")
            .arg(fixture("service.js"))
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, Duration::from_secs(10));
    let dir = tempfile::tempdir().unwrap();
    let out = memwatch(dir.path())
        .args([
            "--pid",
            &service.pid().to_string(),
            "--signal-every",
            "1s",
            "--duration",
            "3s",
            "--interval",
            "100ms",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("does not catch SIGUSR2") && err.contains("would terminate it"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    assert!(
        entries(dir.path()).is_empty(),
        "refused before any output: {:?}",
        entries(dir.path())
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(is_alive(service.pid()), "the target must still be alive");
    TcpStream::connect(("127.0.0.1", port)).expect("and still serving");
}
