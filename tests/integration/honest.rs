//! Issue 20, "Honest figures everywhere": mistakes caught before the run starts, nothing
//! that waits forever in silence, end notes that say only what is true, and messages that
//! quote input safely. Each test is named after the item of the issue it holds.

use crate::util::*;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// memwatch with `args` in `dir`: its output, and the one error line when it refused.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    memwatch(dir).args(args).output().unwrap()
}

/// The run was refused before it started: exit 2, one line, no output folder, quickly.
fn refused_before_the_run(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = run_in(dir.path(), args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused only after {:?}: {err}",
        started.elapsed()
    );
    assert!(
        entries(dir.path()).is_empty(),
        "left behind: {:?}",
        entries(dir.path())
    );
    err
}

fn fixture() -> String {
    fixture_bin().display().to_string()
}

#[test]
fn item2_a_series_the_run_cannot_record_is_refused_before_it_starts() {
    let f = fixture();
    let quick = ["-i", "100ms", "-d", "2s"];
    let err = refused_before_the_run(
        &[
            &["run", "--metric", "settled"],
            &quick[..],
            &["--", &f, "steady"],
        ]
        .concat(),
    );
    assert!(err.contains("--settle"), "{err}");
    let err = refused_before_the_run(
        &[
            &["run", "--tree", "--metric", "hwm"],
            &quick[..],
            &["--", &f, "steady"],
        ]
        .concat(),
    );
    assert!(err.contains("no peak") && !err.contains("column"), "{err}");
    // With --pid and no --runtime: known from the options alone.
    let target = start_fixture(&["steady"]);
    let pid = target.pid().to_string();
    let err = refused_before_the_run(
        &[&["--pid", &pid, "--metric", "heap-after-gc"], &quick[..]].concat(),
    );
    assert!(err.contains("add --runtime"), "{err}");
    // A command that is no runtime: known once it is started, before any sample.
    let err = refused_before_the_run(
        &[
            &["run", "--metric", "heap-after-gc"],
            &quick[..],
            &["--", &f, "steady"],
        ]
        .concat(),
    );
    assert!(err.contains("neither Node.js nor a JVM"), "{err}");
}

#[test]
fn item3_timing_that_can_never_give_a_verdict_is_refused() {
    let f = fixture();
    for (args, says) in [
        (vec!["-i", "1h", "-d", "2s"], "--duration 9h 23m or more"),
        (vec!["-i", "999999999999h"], "the most is 24h"),
        (vec!["-d", "999999999999h"], "the most is 366 days"),
        (vec!["-d", "1ms"], "at least 10"),
        (
            vec!["--warmup", "1h", "-d", "2s"],
            "leaves nothing of --duration 2s",
        ),
    ] {
        let err = refused_before_the_run(&[&["run"], &args[..], &["--", &f, "steady"]].concat());
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // Just enough: 11 samples after the warm-up.
    let dir = tempfile::tempdir().unwrap();
    let out = run_fixture(
        dir.path(),
        &["run", "-i", "50ms", "-d", "1s", "--out", "o"],
        &["steady"],
    );
    assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn item7_a_ready_port_nothing_listens_on_is_said_and_given_up() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let child = memwatch(dir.path())
        .args(["run", "-i", "200ms", "--out", "o", "--load", "true"])
        .args(["--ready-port", &port, "--ready-timeout", "12s", "--"])
        .arg(fixture_bin())
        .arg("steady")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(60));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "waiting for 127.0.0.1:{port} to accept connections"
        )),
        "a line while it waits: {err}"
    );
    assert!(
        err.contains(&format!(
            "nothing accepted connections on 127.0.0.1:{port} within --ready-timeout 12s"
        )),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(40), "{err}");
    // What was sampled is kept; the command is not left running.
    let rows = read_csv(&dir.path().join("o/samples.csv"));
    assert!(rows.len() > 10, "{} rows", rows.len());
    let pid: i32 = rows[0]["pid"].parse().unwrap();
    assert!(!is_alive(pid), "the command was stopped");
}

#[test]
fn item8_report_json_to_stdout_needs_no_writable_folder() {
    // SAFETY: getuid has no preconditions.
    assert_eq!(unsafe { libc::getuid() }, 0, "drops to nobody: needs root");
    let dir = tempfile::tempdir().unwrap();
    let out = run_fixture(
        dir.path(),
        &["run", "-i", "50ms", "-d", "1s", "--out", "o"],
        &["steady"],
    );
    assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
    // Readable by nobody, writable by root only.
    for p in [dir.path().to_path_buf(), dir.path().join("o")] {
        Command::new("chmod").arg("755").arg(&p).status().unwrap();
    }
    let csv = dir.path().join("o/samples.csv");
    let as_nobody = |extra: &str| {
        Command::new("su")
            .args(["nobody", "-s", "/bin/sh", "-c"])
            .arg(format!(
                "cd / && {} report {} --json - {extra}",
                memwatch_bin().display(),
                csv.display()
            ))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = as_nobody("");
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(2), "{err}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert!(json["verdict"].is_string());
    assert!(
        err.contains("no chart:") && err.contains("--no-png"),
        "{err}"
    );
    let out = as_nobody("--no-png");
    let err = stderr(&out);
    assert_ne!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("no chart"), "{err}");
}

#[test]
fn item9_end_notes_say_only_what_is_true() {
    let f = fixture();
    // A wrapper's child is stopped with it: no '--pid' to a process about to be gone.
    let dir = tempfile::tempdir().unwrap();
    let script = format!("{f} leak 1MiB/s; true");
    let out = run_in(
        dir.path(),
        &[
            "run", "-i", "100ms", "-d", "2s", "--out", "o", "--", "sh", "-c", &script,
        ],
    );
    let err = stderr(&out);
    let note = err
        .lines()
        .find(|l| l.contains("memwatch watched sh only"))
        .unwrap_or_else(|| panic!("a note on the wrapper: {err}"));
    assert!(
        !note.contains("--pid") && note.contains("run fixture directly"),
        "{note}"
    );
    // The tree's line names only processes that grew.
    let script = format!("{f} steady & {f} leak 2MiB/s & wait");
    let out = run_in(
        dir.path(),
        &[
            "run", "--tree", "-i", "100ms", "-d", "2s", "--out", "t", "--", "sh", "-c", &script,
        ],
    );
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("the tree had"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(!line.contains("+0 B"), "{line}");
    // `report` cannot know how many deadlines were missed.
    let out = run_in(
        dir.path(),
        &[
            "report",
            "t/samples.csv",
            "--json",
            "r.json",
            "--png",
            "r.png",
        ],
    );
    let err = stderr(&out);
    let figures = err
        .lines()
        .find(|l| l.contains(" first ") && l.contains("samples over"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(!figures.contains("missed"), "{figures}");
}

#[test]
fn item10_heap_without_a_subcommand_and_options_before_run_are_errors() {
    let err = refused_before_the_run(&["heap"]);
    assert!(err.contains("subcommand"), "{err}");
    let err = refused_before_the_run(&["--duration", "2s", "run", "--", "true"]);
    assert!(
        err.contains("options go after the subcommand") && err.contains("memwatch run"),
        "{err}"
    );
}

#[test]
fn item11_messages_quote_input_safely_and_plainly() {
    let dir = tempfile::tempdir().unwrap();
    // An escape sequence in a cell, and a binary file: escaped, one line.
    std::fs::write(
        dir.path().join("esc.csv"),
        "elapsed_s,rss_bytes\n0,1\n1\x1b[31m,2\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("bin.csv"), b"\0\0\x01elapsed\0\n\0\xff\xfe").unwrap();
    for file in ["esc.csv", "bin.csv"] {
        let out = run_in(dir.path(), &["report", file, "--json", "-"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            !err.chars().any(|c| c.is_control() && c != '\n'),
            "a control character reached the terminal: {err:?}"
        );
    }
    let f = fixture();
    let quick = ["-i", "100ms", "-d", "2s"];
    for (args, says) in [
        (vec!["run", "-i", "0.5ms", "--", &f, "steady"], "'0.5ms'"),
        (
            vec!["run", "--max-rss", "-1MiB", "--", &f, "steady"],
            "negative",
        ),
        (
            [
                &["run", "--runtime", "node"],
                &quick[..],
                &["--", &f, "steady"],
            ]
            .concat(),
            "is not a node program",
        ),
        (
            [&["run"], &quick[..], &["--", "/etc"]].concat(),
            "is a folder",
        ),
        (
            [&["run", "--png", "-"], &quick[..], &["--", &f, "steady"]].concat(),
            "binary PNG",
        ),
    ] {
        let err = refused_before_the_run(&args);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!err.contains("   "), "a run of spaces: {err}");
    }
}

/// A file that cannot be written at the end is named once, with its cause.
#[test]
fn item11_a_file_that_cannot_be_written_is_said_once() {
    // SAFETY: getuid has no preconditions.
    assert_eq!(unsafe { libc::getuid() }, 0, "mounts a tmpfs: needs root");
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=16k", "tmpfs"])
        .arg(&disk)
        .status()
        .unwrap();
    assert!(mounted.success());
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(&disk);
    // Full, but a new empty file can still be made (the check before the run passes).
    let _ = std::fs::write(disk.join("fill"), vec![0u8; 64 * 1024]);
    let json = disk.join("summary.json");
    let out = run_fixture(
        dir.path(),
        &[
            "run",
            "-i",
            "50ms",
            "-d",
            "1s",
            "--csv",
            "s.csv",
            "--png",
            "m.png",
            "--json",
            json.to_str().unwrap(),
        ],
        &["steady"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("summary.json"))
        .unwrap_or_else(|| panic!("{err}"));
    assert_eq!(line.matches("cannot write").count(), 1, "{line}");
    assert!(line.contains("No space left"), "{line}");
}

/// Item 16: a comparison reads in one unit, the limit's (the slope was `+1.00 MiB/s` beside a
/// `+2.77 KiB/min` limit, and the job summary's row read as equal); the two growth figures
/// say which is which.
#[test]
fn item16_one_unit_per_comparison_and_each_growth_named() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let summary_md = dir.path().join("step.md");
    let out = memwatch(dir.path())
        .args([
            "run",
            "-i",
            "100ms",
            "-d",
            "5s",
            "--max-slope",
            "1MiB/min",
            "--out",
            "o",
            "--",
            &f,
            "leak",
            "4MiB/s",
        ])
        .env("GITHUB_STEP_SUMMARY", &summary_md)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let breach = err
        .lines()
        .find(|l| l.contains("is over --max-slope"))
        .unwrap_or_else(|| panic!("the breach in words: {err}"));
    assert!(
        breach.matches("/min").count() == 3 && !breach.contains("/s "),
        "the slope, the limit and the excess per minute: {breach}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("o/summary.json")).unwrap()).unwrap();
    let check = summary["gate"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rule"] == "max-slope")
        .unwrap_or_else(|| panic!("{summary}"));
    for side in ["limit", "actual"] {
        assert!(
            check[side].as_str().unwrap().ends_with("/min"),
            "{side}: {check}"
        );
    }
    let md = std::fs::read_to_string(&summary_md).unwrap();
    let row = md
        .lines()
        .find(|l| l.contains("--max-slope"))
        .unwrap_or_else(|| panic!("{md}"));
    assert!(!row.contains("/s "), "one unit in the row: {row}");
    // The run's growth (first to last sample) and the floor's are each said what they are.
    let figures = err
        .lines()
        .find(|l| l.contains(" first ") && l.contains(" last "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(figures.contains("start-up and peaks included"), "{figures}");
    assert!(
        err.contains("floor"),
        "the judged growth is the floor's: {err}"
    );
}
