//! Every bad input: one clear line on stderr, exit 2, no output left behind, nothing signalled.

use crate::util::*;
use std::process::Command;
use std::time::Duration;

/// Runs memwatch with `args` in a fresh folder and checks the bad-input contract; returns
/// the error line.
fn refused(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    refused_in(memwatch(dir.path()).args(args), dir.path())
}

fn refused_in(cmd: &mut Command, cwd: &std::path::Path) -> String {
    let out = cmd.output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "args {cmd:?}: stderr {err}");
    assert_eq!(err.lines().count(), 1, "one line expected, got: {err}");
    assert!(err.starts_with("memwatch: error: "), "{err}");
    // Issue 20 item 11: plain words, and nothing from the input that moves the terminal.
    assert!(!err.contains("   "), "a run of spaces: {err}");
    assert!(
        !err.trim_end().chars().any(char::is_control),
        "a control character: {err:?}"
    );
    assert!(
        out.stdout.is_empty(),
        "nothing on stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        entries(cwd).iter().all(|e| !e.starts_with("memwatch-")),
        "output left behind: {:?}",
        entries(cwd)
    );
    err
}

#[test]
fn pid_zero_negative_and_not_a_number() {
    assert!(refused(&["--pid", "0"]).contains("'0'"));
    assert!(refused(&["--pid", "-1"]).contains("must be positive"));
    assert!(refused(&["--pid", "abc"]).contains("'abc' is not a PID"));
    assert!(refused(&["--pid", ""]).contains("is not a PID"));
}

#[test]
fn pid_that_does_not_exist() {
    // Above any pid_max Linux allows (2^22), so never a live process.
    assert!(refused(&["--pid", "2147483647"]).contains("no process with PID 2147483647"));
}

#[test]
fn kernel_thread_has_no_memory() {
    let kthread = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                s.contains("Kthread:\t1") || (!s.contains("VmRSS") && !s.contains("State:\tZ"))
            })
        })
        .expect("a kernel thread is visible in /proc");
    let err = refused(&[
        "--pid",
        &kthread.to_string(),
        "--duration",
        "1s",
        "--interval",
        "50ms",
    ]);
    assert!(err.contains("kernel thread"), "{err}");
}

#[test]
fn zombie_is_refused() {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    // not reaped yet: a zombie until wait()
    std::thread::sleep(Duration::from_millis(200));
    let err = refused(&["--pid", &pid.to_string()]);
    child.wait().unwrap();
    assert!(err.contains("zombie"), "{err}");
}

#[test]
fn unreadable_proc_files() {
    // SAFETY: getuid has no preconditions.
    assert_eq!(
        unsafe { libc::getuid() },
        0,
        "this test drops to 'nobody' and so must run as root (CI does)"
    );
    let target = start_fixture(&["steady"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let mut cmd = memwatch(dir.path());
    std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
    std::os::unix::process::CommandExt::gid(&mut cmd, 65534);
    cmd.args([
        "--pid",
        &target.pid().to_string(),
        "--pss",
        "--duration",
        "1s",
        "--interval",
        "50ms",
    ]);
    let err = refused_in(&mut cmd, dir.path());
    assert!(
        err.contains("may not read") && err.contains("smaps_rollup"),
        "{err}"
    );
    assert!(is_alive(target.pid()));
}

#[test]
fn bad_intervals_and_durations() {
    assert!(refused(&["--pid", "1", "--interval", "0"]).contains("too short"));
    assert!(refused(&["--pid", "1", "--interval", "500us"]).contains("too short"));
    assert!(refused(&["--pid", "1", "--interval", "-5s"]).contains("negative"));
    assert!(refused(&["--pid", "1", "--interval", "fast"]).contains("'fast' is not a duration"));
    assert!(refused(&["--pid", "1", "--duration", "-1m"]).contains("negative"));
    assert!(refused(&["--pid", "1", "--duration", "0s"]).contains("no samples"));
    assert!(refused(&["run", "--grace", "soon", "--", "true"]).contains("--grace"));
}

#[test]
fn bad_analysis_and_chart_options() {
    assert!(refused(&["--pid", "1", "--metric", "heap"]).contains("'heap' is not a metric"));
    assert!(refused(&["--pid", "1", "--min-growth", "lots"]).contains("--min-growth"));
    assert!(refused(&["--pid", "1", "--p-value", "2"]).contains("between 0 and 1"));
    assert!(refused(&["--pid", "1", "--min-slope", "fast"]).contains("--min-slope"));
    assert!(refused(&["--pid", "1", "--png-size", "huge"]).contains("--png-size"));
}

#[test]
fn output_folder_that_cannot_be_created() {
    let target = start_fixture(&["steady"]);
    let pid = target.pid().to_string();
    let err = refused(&[
        "--pid",
        &pid,
        "--out",
        "/proc/memwatch-cannot-be-here",
        "--duration",
        "1s",
        "--interval",
        "50ms",
    ]);
    assert!(err.contains("/proc"), "{err}");
    let err = refused(&["--pid", &pid, "--csv", "/nonexistent-memwatch/samples.csv"]);
    assert!(err.contains("does not exist"), "{err}");
    // run: the folder is checked before anything is spawned
    let marker = tempfile::tempdir().unwrap();
    let touched = marker.path().join("spawned");
    let err = refused(&[
        "run",
        "--out",
        "/proc/x/y",
        "--",
        "touch",
        touched.to_str().unwrap(),
    ]);
    assert!(err.contains("/proc"), "{err}");
    assert!(
        !touched.exists(),
        "the command was run although the output was unwritable"
    );
    assert!(is_alive(target.pid()));
}

#[test]
fn run_without_a_command_or_with_one_that_cannot_run() {
    assert!(refused(&["run"]).contains("CMD"));
    assert!(refused(&["run", "--duration", "1s", "--"]).contains("CMD"));
    let err = refused(&["run", "--", "/nonexistent/memwatch-cmd"]);
    assert!(
        err.contains("cannot run '/nonexistent/memwatch-cmd'") && err.contains("No such file"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    let err = refused(&["run", "--", script.to_str().unwrap()]);
    assert!(err.contains("Permission denied"), "{err}");
}

#[test]
fn nothing_to_watch_and_unknown_flags() {
    assert!(refused(&[]).contains("nothing to watch"));
    assert!(refused(&["--bogus"]).contains("--bogus"));
    assert!(refused(&["--pid", "1", "--interval"]).contains("--interval"));
}

/// `--tree` judges the sum over processes, `--runtime` one process's heap: not together.
#[test]
fn tree_with_a_runtime_is_refused() {
    for runtime in ["node", "jvm", "auto"] {
        let err = refused(&["run", "--tree", "--runtime", runtime, "--", "true"]);
        assert!(
            err.contains("--runtime asks one process's runtime, and --tree judges the sum"),
            "{err}"
        );
    }
}
