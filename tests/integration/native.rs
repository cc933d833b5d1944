//! `--native`: real programs in C, C++, Rust (built here, without frame pointers) and Node.js,
//! watched with their page faults sampled; the function that leaks must carry the growth.

use crate::util::{ChildGuard, is_alive, memwatch, memwatch_bin, require_node, stderr};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/native")
        .join(name)
}

/// Builds a test program into `dir` with `compiler` and its flags.
fn build(dir: &Path, compiler: &str, flags: &[&str], source: &str, out: &str) -> PathBuf {
    let bin = dir.join(out);
    let status = Command::new(compiler)
        .args(flags)
        .arg("-o")
        .arg(&bin)
        .arg(fixture(source))
        .status()
        .unwrap_or_else(|e| panic!("cannot run {compiler} (.ci/run installs it): {e}"));
    assert!(status.success(), "{compiler} failed on {source}");
    bin
}

fn summary(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The inclusive share of the first function whose name contains `needle` (0 when absent).
fn share(native: &Value, needle: &str) -> f64 {
    native["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"].as_str().unwrap().contains(needle))
        .map_or(0.0, |f| f["inclusive_share"].as_f64().unwrap())
}

/// `memwatch run --native` for `secs` on `command`, written to `dir/out`.
fn run_native(
    dir: &Path,
    secs: u32,
    extra: &[&str],
    command: &[&str],
) -> (std::process::Output, Value) {
    let out = memwatch(dir)
        .args(["run", "--native", "--interval", "500ms", "--warmup", "2s"])
        .args(extra)
        .args(["--duration", &format!("{secs}s"), "--out", "out", "--"])
        .args(command)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1 | 3)),
        "{}",
        stderr(&out)
    );
    let s = summary(&dir.join("out"));
    (out, s)
}

fn assert_leak_found(native: &Value, leak: &str, churn: Option<&str>, err: &str) {
    assert!(native["problem"].is_null(), "{native}");
    assert!(native["samples"].as_u64().unwrap() > 100, "{native}");
    let leak_share = share(native, leak);
    assert!(leak_share >= 0.9, "{leak}: {leak_share}\n{err}\n{native:#}");
    if let Some(churn) = churn {
        let churn_share = share(native, churn);
        assert!(churn_share < 0.05, "{churn}: {churn_share}\n{err}");
    }
    // The stacks explain the RSS growth they are set against (the same samples bound both).
    let explained = native["share_of_rss_growth"].as_f64().unwrap();
    assert!((0.6..=1.4).contains(&explained), "{explained}\n{err}");
}

#[test]
fn c_leak_session_carries_the_growth_and_report_shows_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build(
        dir.path(),
        "cc",
        &["-O2", "-fomit-frame-pointer"],
        "leak.c",
        "leak",
    );
    let (out, s) = run_native(dir.path(), 10, &[], &[bin.to_str().unwrap(), "2048"]);
    let err = stderr(&out);
    let native = &s["native"];
    assert_leak_found(native, "leak_session", Some("churn"), &err);
    assert!(
        err.contains("memwatch: native: top functions (inclusive):"),
        "{err}"
    );
    assert!(err.contains("leak_session"), "{err}");
    let folded = std::fs::read_to_string(dir.path().join("out/native.folded")).unwrap();
    assert!(
        folded.lines().next().unwrap().contains(";leak_session;"),
        "{folded}"
    );
    let svg = std::fs::read_to_string(dir.path().join("out/native.svg")).unwrap();
    assert!(svg.starts_with("<?xml") && svg.contains("leak_session"));

    // `memwatch report` reads the folded stacks beside the CSV again.
    let again = memwatch(dir.path())
        .args(["report", "out/samples.csv", "--json", "-", "--png", "r.png"])
        .output()
        .unwrap();
    let err = stderr(&again);
    assert!(err.contains("memwatch: native: top functions"), "{err}");
    let report: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(share(&report["native"], "leak_session") >= 0.9, "{report}");
}

#[test]
fn cpp_vector_growth_is_named_demangled() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build(
        dir.path(),
        "c++",
        &["-O2", "-fomit-frame-pointer"],
        "leak.cpp",
        "leakpp",
    );
    let (out, s) = run_native(dir.path(), 10, &[], &[bin.to_str().unwrap(), "2048"]);
    assert_leak_found(
        &s["native"],
        "SessionStore::record(long)",
        Some("churn"),
        &stderr(&out),
    );
}

#[test]
fn rust_leak_in_a_thread_started_after_attaching() {
    let dir = tempfile::tempdir().unwrap();
    let bin = build(
        dir.path(),
        "rustc",
        &["-O", "-C", "force-frame-pointers=no", "--edition", "2021"],
        "leak.rs",
        "leakrs",
    );
    // Attached: the leaking thread starts 2 s after the program, once memwatch watches.
    let target = ChildGuard(
        Command::new(&bin)
            .args(["2048", "late-thread"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(300));
    let out = memwatch(dir.path())
        .args(["--pid", &target.pid().to_string(), "--native"])
        .args(["--interval", "500ms", "--warmup", "3s", "--duration", "11s"])
        .args(["--out", "out"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(matches!(out.status.code(), Some(0 | 1 | 3)), "{err}");
    let s = summary(&dir.path().join("out"));
    // Demangled without the hash: `leak::leak_session`, not `_ZN4leak12leak_session17h...E`.
    assert_leak_found(&s["native"], "leak::leak_session", Some("churn"), &err);
    assert!(is_alive(target.pid()), "an attached target is left running");
}

#[test]
fn node_zlib_streams_show_as_native_growth_the_js_heap_does_not_explain() {
    require_node();
    let dir = tempfile::tempdir().unwrap();
    let script = fixture("zlib_service.js");
    // A forced GC every second (none skipped for their pauses on a loaded machine): enough
    // heap readings to judge the managed heap.
    let (out, s) = run_native(
        dir.path(),
        20,
        &["--gc-every", "1s", "--gc-pause-budget", "10s"],
        &["node", script.to_str().unwrap(), "30"],
    );
    let err = stderr(&out);
    let native = &s["native"];
    assert!(native["problem"].is_null(), "{native}");
    let first = native["stacks"][0]["frames"].as_array().unwrap();
    assert!(
        first
            .iter()
            .any(|f| f.as_str().unwrap().contains("deflateInit2_")),
        "the first stack goes through zlib's deflateInit2_: {first:?}\n{err}"
    );
    assert!(share(native, "deflateInit2_") >= 0.5, "{native:#}");
    assert_eq!(s["metric"], "heap-after-gc", "{err}");
    let heap = native["managed_heap_share_of_rss_growth"].as_f64().unwrap();
    assert!(heap < 0.3, "the JS heap explains {heap}\n{err}");
    assert!(
        err.contains("the JavaScript heap explains")
            && err.contains("the native stacks below explain"),
        "{err}"
    );
}

#[test]
fn without_perf_events_one_line_and_the_run_still_judges() {
    // SAFETY: getuid has no preconditions.
    assert_eq!(unsafe { libc::getuid() }, 0, "runs memwatch as 'nobody'");
    let paranoid = std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid").unwrap();
    assert!(
        paranoid.trim().parse::<i32>().unwrap() >= 2,
        "perf_event_paranoid {paranoid}: 'nobody' would be allowed perf events here"
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    // As the CI brief says: through su, as another user would run it.
    let line = format!(
        "cd {} && {} run --native --interval 200ms --warmup 0s --duration 3s --out out -- sleep 30",
        dir.path().display(),
        memwatch_bin().display()
    );
    let out = Command::new("su")
        .args(["nobody", "-s", "/bin/sh", "-c", &line])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(matches!(out.status.code(), Some(0 | 1 | 3)), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("--native")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].contains("kernel.perf_event_paranoid") && lines[0].contains("CAP_PERFMON"),
        "{err}"
    );
    let s = summary(&dir.path().join("out"));
    assert!(s["verdict"].is_string(), "judged: {s}");
    assert!(
        s["native"]["problem"]
            .as_str()
            .unwrap()
            .contains("CAP_PERFMON"),
        "{s}"
    );
    assert!(!dir.path().join("out/native.folded").exists());
}
