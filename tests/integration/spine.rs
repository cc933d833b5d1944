//! Sampling real processes: the CSV, exit codes, stopping, and the target's identity.

use crate::util::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

const HEADER: &str = "elapsed_s,unix_ms,pid,rss_bytes,vsz_bytes,anon_bytes,file_bytes,shmem_bytes,swap_bytes,hwm_bytes,pss_bytes,uss_bytes,threads,event";

#[test]
fn run_samples_a_leaker_into_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_fixture(
        dir.path(),
        &[
            "run",
            "--interval",
            "100ms",
            "--duration",
            "3s",
            "--out",
            "out",
        ],
        &["leak", "4MiB/s"],
    );
    let err = stderr(&out);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{err}");
    let text = std::fs::read_to_string(dir.path().join("out/samples.csv")).unwrap();
    assert_eq!(text.lines().next(), Some(HEADER));
    let rows = parse_csv(&text);
    // 31 on time; a deadline missed under load is skipped, not made up
    assert!(
        (27..=32).contains(&rows.len()),
        "{} rows for 3s at 100ms",
        rows.len()
    );
    let t: Vec<f64> = rows.iter().map(|r| num(r, "elapsed_s")).collect();
    assert!(
        t.windows(2).all(|w| w[1] > w[0]) && t[0] == 0.0 && (t[t.len() - 1] - 3.0).abs() < 0.05,
        "{t:?}"
    );
    for r in &rows {
        assert!(num(r, "vsz_bytes") >= num(r, "rss_bytes"));
        assert!(
            num(r, "anon_bytes") + num(r, "file_bytes") + num(r, "shmem_bytes")
                <= num(r, "rss_bytes") + 1.0
        );
        assert!(num(r, "hwm_bytes") >= num(r, "rss_bytes"));
        assert_eq!(r["pss_bytes"], "");
        assert_eq!(r["event"], "");
    }
    // 4 MiB/s from 0.5 s to 3 s: about 10 MiB
    let at = |secs: f64| {
        num(
            rows.iter().find(|r| num(r, "elapsed_s") >= secs).unwrap(),
            "rss_bytes",
        )
    };
    let growth = (at(3.0) - at(0.5)) / MIB;
    assert!(
        (7.5..=12.5).contains(&growth),
        "grew {growth:.1} MiB, expected ~10"
    );
    assert!(
        err.contains("duration reached")
            && err.contains("killed by SIGTERM after memwatch stopped it"),
        "{err}"
    );
    assert!(err.contains(&format!("{} samples", rows.len())), "{err}");
}

#[test]
fn attach_to_a_steady_process() {
    let target = start_fixture(&["steady"]);
    std::thread::sleep(Duration::from_millis(300)); // past its start-up allocation
    let dir = tempfile::tempdir().unwrap();
    let out = memwatch(dir.path())
        .args([
            "--pid",
            &target.pid().to_string(),
            "--interval",
            "50ms",
            "--duration",
            "2s",
        ])
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", stderr(&out));
    let folders = entries(dir.path());
    assert_eq!(folders.len(), 1);
    let name = &folders[0];
    assert!(
        name.starts_with(&format!("memwatch-{}-", target.pid()))
            && name.len() == "memwatch--YYYYmmdd-HHMMSS".len() + target.pid().to_string().len(),
        "{name}"
    );
    let rows = read_csv(&dir.path().join(name).join("samples.csv"));
    assert!((36..=42).contains(&rows.len()), "{} rows", rows.len());
    let rss: Vec<f64> = rows.iter().map(|r| num(r, "rss_bytes")).collect();
    let spread = (rss.iter().cloned().fold(0.0, f64::max)
        - rss.iter().cloned().fold(f64::MAX, f64::min))
        / MIB;
    assert!(spread < 2.0, "steady RSS moved {spread:.1} MiB");
    assert!(rows.iter().all(|r| r["pid"] == target.pid().to_string()));
    assert!(
        is_alive(target.pid()),
        "memwatch must leave an attached process running"
    );
}

#[test]
fn pss_and_uss_when_asked() {
    let target = start_fixture(&["steady"]);
    let dir = tempfile::tempdir().unwrap();
    let out = memwatch(dir.path())
        .args([
            "--pid",
            &target.pid().to_string(),
            "--interval",
            "50ms",
            "--duration",
            "1s",
            "--pss",
            "--pss-interval",
            "500ms",
            "--csv",
            "s.csv",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success() || out.status.code() == Some(3),
        "{}",
        stderr(&out)
    );
    let rows = read_csv(&dir.path().join("s.csv"));
    let with_pss: Vec<_> = rows.iter().filter(|r| !r["pss_bytes"].is_empty()).collect();
    assert!(
        (2..=3).contains(&with_pss.len()),
        "PSS every 500ms over 1s: {} rows have it",
        with_pss.len()
    );
    for r in with_pss {
        assert!(
            num(r, "pss_bytes") > 0.0
                && num(r, "uss_bytes") > 0.0
                && num(r, "uss_bytes") <= num(r, "rss_bytes")
        );
    }
}

#[test]
fn csv_to_stdout_and_command_output_passes_through() {
    let dir = tempfile::tempdir().unwrap();
    let out = memwatch(dir.path())
        .args([
            "run",
            "--quiet",
            "--csv",
            "-",
            "--",
            "sh",
            "-c",
            "echo hello-from-child; sleep 0.3",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("hello-from-child"), "{stdout}");
    assert!(stdout.contains(HEADER), "{stdout}");
    assert!(out.stderr.is_empty(), "--quiet: {}", stderr(&out));
}

#[test]
fn sigint_flushes_and_exits_normally() {
    let target = start_fixture(&["steady"]);
    let dir = tempfile::tempdir().unwrap();
    let child = memwatch(dir.path())
        .args([
            "--pid",
            &target.pid().to_string(),
            "--interval",
            "50ms",
            "--csv",
            "s.csv",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    send_signal(child.id() as i32, libc::SIGINT);
    let stopped = Instant::now();
    let out = wait_output(child, Duration::from_secs(10));
    assert!(
        stopped.elapsed() < Duration::from_secs(2),
        "slow to stop: {:?}",
        stopped.elapsed()
    );
    let err = stderr(&out);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{err}");
    assert!(err.contains("interrupted by SIGINT"), "{err}");
    let text = std::fs::read_to_string(dir.path().join("s.csv")).unwrap();
    assert!(text.ends_with('\n'));
    let rows = parse_csv(&text);
    assert!(rows.len() >= 20, "{} rows", rows.len());
    assert!(is_alive(target.pid()));
}

#[test]
fn sigterm_stops_a_run_without_calling_it_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let child = memwatch(dir.path())
        .args(["run", "--interval", "50ms", "--csv", "s.csv", "--"])
        .arg(fixture_bin())
        .arg("steady")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    send_signal(child.id() as i32, libc::SIGTERM);
    let out = wait_output(child, Duration::from_secs(10));
    let err = stderr(&out);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{err}");
    assert!(
        err.contains("interrupted by SIGTERM") && err.contains("after memwatch stopped it"),
        "{err}"
    );
    assert!(read_csv(&dir.path().join("s.csv")).len() >= 10);
}

#[test]
fn sigkill_keeps_every_finished_row() {
    let target = start_fixture(&["steady"]);
    let dir = tempfile::tempdir().unwrap();
    let child = memwatch(dir.path())
        .args([
            "--pid",
            &target.pid().to_string(),
            "--interval",
            "10ms",
            "--csv",
            "s.csv",
            "--quiet",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    send_signal(child.id() as i32, libc::SIGKILL);
    wait_output(child, Duration::from_secs(5));
    let text = std::fs::read_to_string(dir.path().join("s.csv")).unwrap();
    let complete: Vec<&str> = text
        .split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .collect();
    assert!(
        complete.len() > 60,
        "only {} rows after 1s at 10ms",
        complete.len()
    );
    for line in &complete[1..] {
        assert_eq!(line.split(',').count(), 14, "{line}");
    }
}

#[test]
fn command_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        // A live run never writes over an earlier one: each run gets the folder afresh.
        let _ = std::fs::remove_dir_all(dir.path().join("o"));
        let started = Instant::now();
        let out = run_fixture(
            dir.path(),
            &[
                "run",
                "--interval",
                "100ms",
                "--duration",
                "20s",
                "--out",
                "o",
            ],
            args,
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "did not stop when the command exited"
        );
        out
    };
    let ok = run(&["steady", "--exit-after", "1s"]);
    assert!(matches!(ok.status.code(), Some(0 | 3)), "{}", stderr(&ok));
    assert!(
        stderr(&ok).contains("target exited") && stderr(&ok).contains("exited with code 0"),
        "{}",
        stderr(&ok)
    );
    assert!(read_csv(&dir.path().join("o/samples.csv")).len() >= 8);

    let failed = run(&["steady", "--exit-after", "1s", "--exit-code", "3"]);
    assert_eq!(failed.status.code(), Some(4), "{}", stderr(&failed));
    assert!(stderr(&failed).contains("exited with code 3"));
    assert!(
        read_csv(&dir.path().join("o/samples.csv")).len() >= 8,
        "files are still written"
    );

    let killed = run(&["steady", "--abort-after", "1s"]);
    assert_eq!(killed.status.code(), Some(4), "{}", stderr(&killed));
    assert!(stderr(&killed).contains("killed by SIGABRT"));
}

#[test]
fn attached_target_that_exits_mid_run() {
    let dir = tempfile::tempdir().unwrap();
    let target = start_fixture(&["steady", "--exit-after", "1s", "--exit-code", "7"]);
    let out = memwatch(dir.path())
        .args([
            "--pid",
            &target.pid().to_string(),
            "--interval",
            "100ms",
            "--csv",
            "s.csv",
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "an attached target's own exit is not memwatch's failure: {err}"
    );
    // this test is the target's parent and has not reaped it, so its status is readable
    assert!(
        err.contains("target exited") && err.contains("exited with code 7"),
        "{err}"
    );
    assert!(read_csv(&dir.path().join("s.csv")).len() >= 8);
}

/// PID reuse: after the target dies, a new process is given the same PID (forced through
/// ns_last_pid). memwatch must stop with "target exited" and never sample the newcomer.
#[test]
fn recycled_pid_is_never_sampled() {
    // SAFETY: getuid has no preconditions.
    assert_eq!(
        unsafe { libc::getuid() },
        0,
        "forcing PID reuse needs root (CI runs as root)"
    );
    let mut target = start_fixture(&["steady"]);
    let pid = target.pid();
    let dir = tempfile::tempdir().unwrap();
    let watcher = memwatch(dir.path())
        .args([
            "--pid",
            &pid.to_string(),
            "--interval",
            "200ms",
            "--csv",
            "s.csv",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    target.0.kill().unwrap();
    target.0.wait().unwrap();
    // Give the PID to a large process: 64 MiB held, so any row of it would show.
    let newcomer = start_fixture_with_pid(pid, &["leak", "640MiB/s", "--exit-after", "30s"]);
    std::thread::sleep(Duration::from_millis(600));
    let out = wait_output(watcher, Duration::from_secs(5));
    let err = stderr(&out);
    assert!(err.contains("target exited"), "{err}");
    let rows = read_csv(&dir.path().join("s.csv"));
    let max_rss = rows.iter().map(|r| num(r, "rss_bytes")).fold(0.0, f64::max) / MIB;
    assert!(
        max_rss < 40.0,
        "a row shows {max_rss:.0} MiB: the newcomer was sampled"
    );
    assert!(is_alive(newcomer.pid()), "the newcomer must not be touched");
}

/// A recycled PID never receives a signal: memwatch signals through the pidfd it opened at
/// attach, which names the original process only. The newcomer does not catch SIGUSR2, so
/// one signal would kill it.
#[test]
fn recycled_pid_is_never_signalled() {
    // SAFETY: getuid has no preconditions.
    assert_eq!(
        unsafe { libc::getuid() },
        0,
        "forcing PID reuse needs root (CI runs as root)"
    );
    let mut target = start_fixture(&["steady", "--catch-usr2"]);
    let pid = target.pid();
    std::thread::sleep(Duration::from_millis(200)); // handler installed
    let dir = tempfile::tempdir().unwrap();
    let watcher = memwatch(dir.path())
        .args([
            "--pid",
            &pid.to_string(),
            "--interval",
            "100ms",
            "--signal-every",
            "300ms",
            "--csv",
            "s.csv",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    target.0.kill().unwrap();
    target.0.wait().unwrap();
    let newcomer = start_fixture_with_pid(pid, &["steady"]);
    std::thread::sleep(Duration::from_millis(1500)); // five signal periods
    let out = wait_output(watcher, Duration::from_secs(5));
    assert!(stderr(&out).contains("target exited"), "{}", stderr(&out));
    let rows = read_csv(&dir.path().join("s.csv"));
    assert!(
        rows.iter()
            .filter(|r| r["event"] == "signal:SIGUSR2")
            .count()
            >= 2,
        "the original target was signalled"
    );
    assert!(
        is_alive(newcomer.pid()),
        "the newcomer under the recycled PID received a signal"
    );
}

/// Heap dumps end to end with a deterministic stand-in for V8: each SIGUSR2 writes a
/// snapshot in pieces and keeps 16 MiB for good. They are all found complete, --max-dumps
/// stops the signals, and the steps they leave are not called growth.
#[test]
fn heap_dumps_are_collected_limited_and_not_called_growth() {
    let dir = tempfile::tempdir().unwrap();
    let dumps = tempfile::tempdir().unwrap();
    let d = dumps.path().to_str().unwrap();
    // dumps at 7 s and 11 s, inside the analysed window (after the 5 s warm-up); the third
    // signal is held back by --max-dumps
    let out = run_fixture(
        dir.path(),
        &[
            "run",
            "--interval",
            "100ms",
            "--duration",
            "16s",
            "--warmup",
            "5s",
            "--signal-at",
            "7s,11s,14s",
            "--max-dumps",
            "2",
            "--out",
            "o",
            "--dump-dir",
            d,
        ],
        &["steady", "--catch-usr2", "--dump-on-usr2", d],
    );
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "two 16 MiB steps from dumps are not a leak: {err}"
    );
    assert!(err.contains("--max-dumps 2 reached"), "{err}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("o/summary.json")).unwrap())
            .unwrap();
    let listed = s["dumps"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    for d in listed {
        assert!(d["completed_s"].as_f64().unwrap() > d["started_s"].as_f64().unwrap());
        assert_eq!(
            d["bytes"].as_u64().unwrap(),
            std::fs::metadata(d["path"].as_str().unwrap())
                .unwrap()
                .len()
        );
    }
    let signals = s["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "signal:SIGUSR2")
        .count();
    assert_eq!(signals, 2, "no signal after --max-dumps");
    assert_eq!(s["excluded"].as_array().unwrap().len(), 2);
    let steps: f64 = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["bytes"].as_f64().unwrap())
        .sum();
    assert!(
        steps > 20.0 * MIB,
        "the dumps' 2 x 16 MiB are taken out: {steps}"
    );
}

/// --min-free: once a dump exists, memwatch will not ask for another that would leave less
/// than this free on the dump folder's disk.
#[test]
fn free_disk_guard_stops_asking_for_dumps() {
    let dir = tempfile::tempdir().unwrap();
    let dumps = tempfile::tempdir().unwrap();
    let d = dumps.path().to_str().unwrap();
    let out = run_fixture(
        dir.path(),
        &[
            "run",
            "--interval",
            "100ms",
            "--duration",
            "6s",
            "--signal-every",
            "2s",
            "--min-free",
            "1PiB",
            "--out",
            "o",
            "--dump-dir",
            d,
        ],
        &["steady", "--catch-usr2", "--dump-on-usr2", d],
    );
    let err = stderr(&out);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{err}");
    assert!(err.contains("would leave less than --min-free"), "{err}");
    assert_eq!(
        entries(dumps.path()).len(),
        1,
        "only the first dump: {:?}",
        entries(dumps.path())
    );
}

/// The PID a test's `sh -c` command wrote to `file`, once it is there.
fn pid_in(file: &std::path::Path) -> i32 {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no PID in {}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `memwatch run -- npm start` left the server running: npm does not pass SIGTERM on. What a
/// command started goes with it at the end of the run: SIGTERM to every process of its tree,
/// SIGKILL after --grace to those that ignore it, and the line says which.
#[test]
fn what_the_command_started_is_stopped_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // The wrapper waits on a child that stays, and on one that ignores SIGTERM.
    let script = format!(
        "sleep 600 >/dev/null 2>&1 & echo $! > {p}.1; \
         (trap '' TERM; exec sleep 601) >/dev/null 2>&1 & echo $! > {p}.2; wait",
        p = pids.display()
    );
    let child = memwatch(dir.path())
        .args(["run", "--duration", "2s", "--interval", "100ms"])
        .args(["--grace", "1s", "--out", "o"])
        .args(["--", "sh", "-c", &script])
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(30));
    let err = stderr(&out);
    let (stays, stubborn) = (
        pid_in(&pids.with_extension("1")),
        pid_in(&pids.with_extension("2")),
    );
    assert!(!is_alive(stays), "PID {stays} still runs: {err}");
    assert!(!is_alive(stubborn), "PID {stubborn} still runs: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("memwatch: also stopped what the command started: "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(&format!("{stays} (sleep)")), "{line}");
    assert!(line.contains(&format!("{stubborn} (sleep)")), "{line}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "a shell waiting on sleeps is stable: {err}"
    );
}

/// A command that exits on its own and leaves a process running (a daemon started in the
/// background): the run ends with the command, and what it left is stopped too.
#[test]
fn what_an_exited_command_left_running_is_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let script = format!(
        "sleep 600 >/dev/null 2>&1 & echo $! > {}; sleep 1",
        pid_file.display()
    );
    let child = memwatch(dir.path())
        .args(["run", "--duration", "20s", "--out", "o"])
        .args(["--", "sh", "-c", &script])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(15));
    let err = stderr(&out);
    let left = pid_in(&pid_file);
    assert!(!is_alive(left), "PID {left} still runs: {err}");
    assert!(
        err.contains(&format!(
            "memwatch: also stopped what the command started: {left} (sleep)"
        )),
        "{err}"
    );
    assert!(err.contains("exited with code 0"), "{err}");
}

/// memwatch watches one process: when the command is a wrapper whose child holds a good
/// part of the memory (`npm start`, a shell script), one line says which process was watched
/// and how to watch the other.
#[test]
fn a_wrapper_command_is_named_with_the_process_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!("{} steady; true", fixture_bin().display());
    let out = memwatch(dir.path())
        .args([
            "run",
            "--duration",
            "2s",
            "--interval",
            "100ms",
            "--out",
            "o",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    let note = err
        .lines()
        .find(|l| l.starts_with("memwatch: note: PID "))
        .unwrap_or_else(|| panic!("{err}"));
    let child: i32 = note
        .split("started PID ")
        .nth(1)
        .and_then(|p| p.split(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{note}"));
    // Its processes are stopped with it: run the child directly, not --pid to a gone PID.
    assert!(
        note.contains("run fixture directly") && !note.contains("--pid"),
        "{note}"
    );
    assert!(note.ends_with("; --tree judges their sum"), "{note}");
    assert!(note.contains(" (sh, "), "{note}");
    assert!(
        note.contains(&format!("started PID {child} (fixture, ")),
        "{note}"
    );
    assert!(note.contains("memwatch watched sh only"), "{note}");
    // The command alone: no note.
    let out = run_fixture(
        dir.path(),
        &[
            "run",
            "--duration",
            "1s",
            "--interval",
            "50ms",
            "--out",
            "p",
        ],
        &["steady"],
    );
    assert!(!stderr(&out).contains("note: PID"), "{}", stderr(&out));
}

/// The command's orphans come to memwatch (its subreaper) and are reaped as they exit: a
/// command that keeps starting short-lived background processes leaves no zombies.
#[test]
fn orphans_that_exit_during_the_run_leave_no_zombies() {
    let dir = tempfile::tempdir().unwrap();
    let child = memwatch(dir.path())
        .args([
            "run",
            "--duration",
            "5s",
            "--interval",
            "100ms",
            "--out",
            "o",
        ])
        .args(["--", "sh", "-c"])
        .arg("for i in 1 2 3 4 5 6; do (sleep 0.1 &); sleep 0.2; done; sleep 30")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let me = child.id() as i32;
    std::thread::sleep(Duration::from_millis(3500));
    let zombies: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
                fields[0] == "Z" && fields[1] == me.to_string()
            })
        })
        .collect();
    let out = wait_output(child, Duration::from_secs(20));
    assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        zombies.is_empty(),
        "zombies of memwatch: {zombies:?}; {}",
        stderr(&out)
    );
}

/// `--tree`: the target and every process it starts, judged on their sum. The CSV has a row
/// per process and a `total` row per tick whose sizes are the sum of the tick's rows; a
/// tree whose children leak is growing though its root (a shell) is not; `report` on the CSV
/// judges `total` and gives the very verdict and p-value of the live run.
#[test]
fn a_process_tree_is_judged_on_its_sum() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture_bin();
    let script = format!(
        "{f} leak 2MiB/s & {f} leak 1MiB/s & {f} steady & wait",
        f = f.display()
    );
    let out = memwatch(dir.path())
        .args(["run", "--tree", "--interval", "200ms", "--duration", "8s"])
        // The sum of RSS, as judged before a tree's total counted each page once (issue 18).
        .args([
            "--tree-total",
            "rss",
            "--out",
            "o",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "growing: {err}");
    let rows = read_csv(&dir.path().join("o/samples.csv"));
    let pids: std::collections::BTreeSet<&str> = rows.iter().map(|r| r["pid"].as_str()).collect();
    assert_eq!(pids.len(), 5, "sh, three fixtures and total: {pids:?}");
    // Each tick: the total row follows the tick's process rows and is their sum.
    let mut tick: Vec<&std::collections::HashMap<String, String>> = Vec::new();
    let mut totals = 0;
    for row in &rows {
        if row["pid"] == "total" {
            for col in ["rss_bytes", "vsz_bytes", "anon_bytes"] {
                let sum: f64 = tick.iter().map(|r| num(r, col)).sum();
                assert_eq!(num(row, col), sum, "{col} at {}", row["elapsed_s"]);
            }
            assert!(tick.iter().all(|r| r["elapsed_s"] == row["elapsed_s"]));
            tick.clear();
            totals += 1;
        } else {
            tick.push(row);
        }
    }
    assert!(totals >= 20, "{totals} ticks"); // 41 on time; a missed deadline is skipped
    let live: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("o/summary.json")).unwrap())
            .unwrap();
    assert_eq!(live["target"]["tree_processes"], 4, "{err}");
    // Which process the growth came from: a leaking fixture first (from its first reading,
    // start-up included), the shell, which holds still, last.
    let tree = live["target"]["tree"].as_array().unwrap();
    let grew = |i: usize| {
        tree[i]["last_bytes"].as_f64().unwrap() - tree[i]["first_bytes"].as_f64().unwrap()
    };
    assert_eq!(tree.len(), 4);
    assert_eq!(tree[0]["name"], "fixture", "{tree:?}");
    assert!(grew(0) > 10.0 * 1048576.0, "{tree:?}");
    let sh = tree.iter().position(|p| p["name"] == "sh").unwrap();
    assert!(grew(sh).abs() < 1048576.0, "{tree:?}");
    assert!(
        err.contains(&format!(
            "memwatch: the tree had 4 processes; RSS grew most in {} (fixture) +",
            tree[0]["pid"]
        )),
        "{err}"
    );
    assert_eq!(live["verdict"], "growing");
    let slope = live["slope_bytes_per_s"].as_f64().unwrap();
    assert!((2.5e6..3.8e6).contains(&slope), "about 3 MiB/s: {slope}");
    let again = memwatch(dir.path())
        .args(["report", "o/samples.csv", "--json", "-"])
        .output()
        .unwrap();
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["verdict"], live["verdict"]);
    assert_eq!(again["p_value"], live["p_value"]);
    assert_eq!(again["slope_bytes_per_s"], live["slope_bytes_per_s"]);
}

/// `--pid --tree` finds the processes the target starts while it is watched, and a child
/// that exits leaves the sum.
#[test]
fn an_attached_tree_picks_up_new_children() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture_bin();
    let script = format!(
        "sleep 1.5; {f} leak 4MiB/s & sleep 3; kill $!; sleep 30",
        f = f.display()
    );
    let mut root = std::process::Command::new("sh")
        .args(["-c", &script])
        .spawn()
        .unwrap();
    let out = memwatch(dir.path())
        .args([
            "--pid",
            &root.id().to_string(),
            "--tree",
            "--interval",
            "100ms",
        ])
        .args(["--duration", "6s", "--out", "o"])
        .output()
        .unwrap();
    let _ = root.kill();
    let _ = root.wait();
    let err = stderr(&out);
    let rows = read_csv(&dir.path().join("o/samples.csv"));
    // The leaking fixture: the child with the most memory (the `sleep`s are children too).
    let leaker = rows
        .iter()
        .filter(|r| r["pid"] != "total" && r["pid"] != root.id().to_string())
        .max_by(|a, b| num(a, "rss_bytes").total_cmp(&num(b, "rss_bytes")))
        .map(|r| r["pid"].clone())
        .unwrap_or_else(|| panic!("no child rows: {err}"));
    let child: Vec<&std::collections::HashMap<String, String>> =
        rows.iter().filter(|r| r["pid"] == leaker).collect();
    let first = num(child[0], "elapsed_s");
    let last = num(child[child.len() - 1], "elapsed_s");
    assert!(
        (1.4..3.5).contains(&first),
        "found about a second after its start: {first}"
    );
    assert!(
        last < 5.8,
        "gone from the rows once it exited (at 4.5 s): {last}"
    );
    let peak = rows
        .iter()
        .filter(|r| r["pid"] == "total")
        .map(|r| num(r, "rss_bytes"))
        .fold(0.0, f64::max);
    assert!(
        peak > 8.0 * 1048576.0,
        "the child's memory is in the sum: {peak}"
    );
}
