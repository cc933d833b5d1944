//! Regression tests for what a new user hit (issue "Nothing lost, nothing overwritten"),
//! each named after the bug. They run the built binary against real processes.

use crate::util::*;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A recorded run: `rows` samples one second apart, rising.
fn recorded_csv(path: &Path, rows: usize) {
    let mut text = String::from("elapsed_s,rss_bytes\n");
    for i in 0..rows {
        text += &format!("{i}.000,{}\n", 50_000_000 + 40_000 * i);
    }
    std::fs::write(path, text).unwrap();
}

fn refused_with(out: &std::process::Output) -> String {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("memwatch: error: "), "{err}");
    err
}

#[test]
fn report_json_flag_no_longer_swallows_the_file_or_overwrites_a_recording() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv");
    recorded_csv(&a, 60);
    recorded_csv(&b, 60);
    let before = std::fs::read(&a).unwrap();
    // `--json FILE` takes a value: FILE is then missing, said plainly.
    let out = memwatch(dir.path())
        .args(["report", "--json", "a.csv"])
        .output()
        .unwrap();
    let err = refused_with(&out);
    assert!(err.contains("FILE"), "{err}");
    // `--json a.csv b.csv`: a.csv is a recording, never written over.
    let out = memwatch(dir.path())
        .args(["report", "--json", "a.csv", "b.csv"])
        .output()
        .unwrap();
    let err = refused_with(&out);
    assert!(
        err.contains("'a.csv'") && err.contains("recording"),
        "{err}"
    );
    // The file being read is never an output either.
    let out = memwatch(dir.path())
        .args(["report", "b.csv", "--png", "./b.csv"])
        .output()
        .unwrap();
    let err = refused_with(&out);
    assert!(err.contains("being read"), "{err}");
    assert_eq!(std::fs::read(&a).unwrap(), before);
    // stdout is `--json -`.
    let out = memwatch(dir.path())
        .args(["report", "b.csv", "--json", "-", "--png", "b.png"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "growing");
}

#[test]
fn two_outputs_on_one_path_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("spawned");
    std::fs::create_dir(dir.path().join("out")).unwrap();
    for (a, b) in [
        ("same.out", "same.out"),
        ("out/x", "./out/../out/x"),
        ("-", "-"),
    ] {
        let out = memwatch(dir.path())
            .args(["run", "--duration", "1s", "--interval", "50ms"])
            .args(["--csv", a, "--json", b, "--"])
            .args(["touch", marker.to_str().unwrap()])
            .output()
            .unwrap();
        let err = refused_with(&out);
        assert!(
            err.contains("--csv and --json")
                && (err.contains("same file") || err.contains("stdout")),
            "{err}"
        );
        assert!(!marker.exists(), "the command ran");
    }
    // Through a symbolic link too.
    std::os::unix::fs::symlink(dir.path().join("out"), dir.path().join("link")).unwrap();
    let out = memwatch(dir.path())
        .args([
            "run",
            "--csv",
            "out/s.csv",
            "--png",
            "link/s.csv",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert!(refused_with(&out).contains("same file"));
    let mut left = entries(dir.path());
    left.sort();
    assert_eq!(left, ["link", "out"]);
}

#[test]
fn an_output_that_is_a_folder_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("spawned");
    std::fs::create_dir(dir.path().join("d")).unwrap();
    for flag in ["--json", "--png", "--junit", "--csv"] {
        let out = memwatch(dir.path())
            .args([
                "run",
                "--duration",
                "5s",
                "--interval",
                "100ms",
                flag,
                "d",
                "--",
            ])
            .args(["touch", marker.to_str().unwrap()])
            .output()
            .unwrap();
        let err = refused_with(&out);
        assert!(err.contains(&format!("{flag} 'd' is a folder")), "{err}");
        assert!(!marker.exists(), "{flag}: the command ran");
        // --csv DIR used to leave an empty output folder behind.
        assert_eq!(entries(dir.path()), ["d"], "{flag}: something left behind");
    }
}

#[test]
fn a_full_disk_for_the_chart_still_leaves_the_summary_and_the_verdict() {
    let disk = SmallDisk::new(32);
    let dir = tempfile::tempdir().unwrap();
    let out = run_fixture(
        dir.path(),
        &[
            "run",
            "--interval",
            "100ms",
            "--duration",
            "2s",
            "--out",
            disk.0.path().to_str().unwrap(),
        ],
        &["steady"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot write the chart"), "{err}");
    assert!(
        err.contains("memwatch: stable") || err.contains("memwatch: inconclusive"),
        "the verdict is printed: {err}"
    );
    let summary = disk.0.path().join("summary.json");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).expect("summary.json written")).unwrap();
    assert!(v["verdict"].is_string());
    assert!(read_csv(&disk.0.path().join("samples.csv")).len() >= 15);
    assert!(!disk.0.path().join("memory.png").exists());
}

#[test]
fn report_on_a_run_folder_keeps_the_live_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_fixture(
        dir.path(),
        &[
            "run",
            "--interval",
            "100ms",
            "--duration",
            "2s",
            "--out",
            "r",
        ],
        &["steady"],
    );
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", stderr(&out));
    let live = std::fs::read(dir.path().join("r/summary.json")).unwrap();
    let out = memwatch(dir.path())
        .args(["report", "r/samples.csv"])
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(dir.path().join("r/summary.json")).unwrap(),
        live
    );
    assert!(dir.path().join("r/report.json").exists());
    assert!(dir.path().join("r/report.png").exists());
    // Named explicitly: refused unless --force.
    let out = memwatch(dir.path())
        .args(["report", "r/samples.csv", "--json", "r/summary.json"])
        .output()
        .unwrap();
    assert!(refused_with(&out).contains("--force"));
    assert_eq!(
        std::fs::read(dir.path().join("r/summary.json")).unwrap(),
        live
    );
}

#[test]
fn a_signal_memwatch_may_not_send_is_refused_before_anything_is_written() {
    // SAFETY: getuid has no preconditions.
    assert_eq!(unsafe { libc::getuid() }, 0, "runs memwatch as 'nobody'");
    let target = start_fixture(&["steady", "--catch-usr2"]);
    std::thread::sleep(Duration::from_millis(200)); // handler installed
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let out = memwatch(dir.path())
        .args(["--pid", &target.pid().to_string(), "--signal-every", "1s"])
        .args(["--duration", "3s", "--interval", "100ms"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let err = refused_with(&out);
    assert!(err.contains("may not send SIGUSR2"), "{err}");
    assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    assert!(is_alive(target.pid()));
}

#[test]
fn duration_is_kept_with_signal_every_and_no_signal_at_end() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_fixture(
        dir.path(),
        &[
            "run",
            "--interval",
            "100ms",
            "--duration",
            "2s",
            "--signal-every",
            "400ms",
            "--csv",
            "s.csv",
        ],
        &["steady", "--catch-usr2"],
    );
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", stderr(&out));
    let rows = read_csv(&dir.path().join("s.csv"));
    let last = rows.iter().map(|r| num(r, "elapsed_s")).fold(0.0, f64::max);
    assert!(last <= 2.05, "sampled until {last} s with --duration 2s");
    assert!(rows.iter().any(|r| r["event"] == "signal:SIGUSR2"));
}

#[test]
fn the_first_sample_of_run_is_of_the_command_not_of_its_loader() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let out = run_fixture(
            dir.path(),
            &[
                "run",
                "--interval",
                "20ms",
                "--duration",
                "400ms",
                "--csv",
                "s.csv",
            ],
            &["steady"],
        );
        assert!(out.status.code().is_some(), "{}", stderr(&out));
        let rows = read_csv(&dir.path().join("s.csv"));
        // The fixture holds 8 MiB from its first moments; 16-20 KiB is the loader alone.
        assert!(
            num(&rows[0], "rss_bytes") > 1024.0 * 1024.0,
            "first row {:?}",
            rows[0]
        );
    }
}

#[test]
fn no_samples_says_so_instead_of_rss_zero() {
    let dir = tempfile::tempdir().unwrap();
    let out = memwatch(dir.path())
        .args(["run", "--out", "o", "--", "true"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!err.contains("RSS first 0 B"), "{err}");
    assert!(err.contains("no samples"), "{err}");
    assert!(!err.contains("target exited; target exited"), "{err}");
}

#[test]
fn a_subcommands_error_points_to_its_own_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = memwatch(dir.path())
        .args(["run", "--bogus", "--", "true"])
        .output()
        .unwrap();
    assert!(refused_with(&out).contains("(see 'memwatch run --help')"));
    let out = memwatch(dir.path())
        .args(["report", "--bogus", "x.csv"])
        .output()
        .unwrap();
    assert!(refused_with(&out).contains("(see 'memwatch report --help')"));
    // `report` runs nothing, so its help does not list exit code 4.
    let help = memwatch(dir.path())
        .args(["report", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("Exit codes:") && !text.contains("\n  4 "),
        "{text}"
    );
    // A baseline error names the flag once.
    let out = memwatch(dir.path())
        .args(["--pid", "1", "--baseline", "missing.json"])
        .output()
        .unwrap();
    let err = refused_with(&out);
    assert_eq!(err.matches("--baseline").count(), 1, "{err}");
}

/// Issue 20 items 13 and 14: completions offer the values of --metric and --runtime (they
/// offered file names); a man page for every command the SUBCOMMANDS section names, with the
/// exit codes in their own section.
#[test]
fn regression_issue20_items13_14_completions_and_man_pages_come_from_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = memwatch(dir.path())
            .args(["completions", shell])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("memwatch") && text.contains("interval"),
            "{shell}"
        );
        // Issue 20 item 14: the values of --metric and --runtime, not file names.
        assert!(
            text.contains("heap-after-gc") && text.contains("settled") && text.contains("jvm"),
            "{shell} completes the values of --metric and --runtime"
        );
    }
    let out = memwatch(dir.path()).arg("man").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH memwatch"),
        "{page}"
    );
    assert!(
        page.contains(".SH \"EXIT STATUS\"") && !page.contains("EXTRA"),
        "the man page lists the exit codes in their own section"
    );
    // Issue 20 item 13: a page for each command its SUBCOMMANDS section names.
    let out = memwatch(dir.path()).args(["man", "run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let run_page = String::from_utf8_lossy(&out.stdout);
    assert!(run_page.contains("memwatch\\-run") && run_page.contains("\\-\\-grace"));
    let pages = dir.path().join("man1");
    std::fs::create_dir(&pages).unwrap();
    let out = memwatch(dir.path())
        .args(["man", "--dir", "man1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for name in [
        "memwatch",
        "memwatch-run",
        "memwatch-report",
        "memwatch-heap",
        "memwatch-heap-diff",
    ] {
        assert!(pages.join(format!("{name}.1")).is_file(), "{name}.1");
    }
    // The man page is valid roff: man renders it without warnings.
    if Path::new("/usr/bin/man").exists() {
        let file = dir.path().join("memwatch.1");
        std::fs::write(&file, page.as_bytes()).unwrap();
        let out = Command::new("man")
            .arg("-l")
            .arg(&file)
            .env("MANWIDTH", "80")
            .stdout(Stdio::piped())
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("--interval"));
    }
}

/// Issue 20 item 15: the README's test requirements name every program `.ci/run` installs
/// for the tests (they named `node` and `javac`, not `java`, `jcmd` or `mount`).
#[test]
fn regression_issue20_item15_the_readme_names_what_the_tests_need() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find("Run all the tests")
        .expect("the README's test paragraph");
    let paragraph = &readme[start..start + readme[start..].find("```").unwrap()];
    let mut needed: Vec<&str> = ci
        .split("command -v ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    needed.extend(["java", "jcmd", "python3"]);
    assert!(needed.len() > 8, "{needed:?}");
    for program in needed {
        assert!(
            paragraph.contains(&format!("`{program}`")),
            "the README's test requirements do not name `{program}`: {paragraph}"
        );
    }
}
