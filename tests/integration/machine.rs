//! `memwatch --all`: the whole machine, against real processes that start, leak, end, and
//! more of them than the open-file limit; and its live view in a real terminal (tmux).

use crate::util::*;
use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A folder others can read (the tests' processes may run as `nobody`).
fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `bin` under another name: a process started through the link is called `name` (its
/// `comm`), so `--name` picks this test's processes and no one else's.
fn named(dir: &Path, bin: &Path, name: &str) -> PathBuf {
    assert!(name.len() <= 15, "a comm holds 15 characters");
    let link = dir.join(name);
    if !link.exists() {
        std::os::unix::fs::symlink(bin, &link).unwrap();
    }
    link
}

/// A name of this test's own, e.g. `mwse-12345`.
fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", std::process::id() % 100_000)
}

fn start_named(path: &Path, args: &[&str]) -> ChildGuard {
    ChildGuard(
        Command::new(path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as f64
}

/// Rows of samples.csv by PID (the `total` rows apart).
fn rows_by_pid(path: &Path) -> BTreeMap<String, Vec<HashMap<String, String>>> {
    let mut by: BTreeMap<String, Vec<HashMap<String, String>>> = BTreeMap::new();
    for row in read_csv(path) {
        by.entry(row["pid"].clone()).or_default().push(row);
    }
    by
}

#[test]
fn all_ranks_a_leaking_process_first_within_30s() {
    // the whole machine: other engineers' compilers and tests included; the leak is fast
    // enough to outrun any of them
    let dir = open_dir();
    let leak = start_fixture(&["leak", "64MiB/s"]);
    let child = memwatch(dir.path())
        .args(["--all", "--duration", "30s", "--out", "out"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(120));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "a judged process grows: {err}");
    // the live view's plain blocks (stderr is piped): by 30 s the leak is first and growing
    let pid = leak.pid().to_string();
    let blocks: Vec<Vec<&str>> = err
        .split("memwatch: memwatch --all")
        .skip(1)
        .map(|b| b.lines().skip(2).take(3).collect())
        .collect();
    assert!(blocks.len() >= 2, "a block every 10 s: {err}");
    let growing_first = blocks.iter().any(|rows| {
        rows.first().is_some_and(|r| {
            r.trim_start_matches("memwatch:")
                .trim_start()
                .starts_with(&format!("{pid} "))
                && r.contains("growing")
        })
    });
    assert!(
        growing_first,
        "the leak never led the live view as growing: {err}"
    );
    let s = summary(&dir.path().join("out"));
    let m = &s["machine"];
    assert_eq!(
        m["processes"][0]["pid"].as_i64(),
        Some(leak.pid() as i64),
        "{m}"
    );
    assert_eq!(m["processes"][0]["verdict"], "growing");
    assert_eq!(m["processes"][0]["name"], "fixture");
    assert!(
        m["processes_seen"].as_u64().unwrap() > 10,
        "the whole machine: {m}"
    );
    assert!(m["judged"].as_u64().unwrap() >= 1 && m["growing"].as_u64().unwrap() >= 1);
    // the top of summary.json is the top process's verdict, named
    assert_eq!(s["verdict"], "growing");
    assert_eq!(s["target"]["pid"].as_i64(), Some(leak.pid() as i64));
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("pid {pid} (fixture)"))
    );
    assert_eq!(s["exit_code"], 1);
    // the machine's total, judged live, is what `memwatch report` finds in the CSV's total
    // rows
    let report = memwatch(dir.path())
        .args([
            "report",
            "out/samples.csv",
            "--json",
            "-",
            "--png",
            "report.png",
            "--quiet",
        ])
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
    assert_eq!(r["verdict"], m["total"]["verdict"], "{}", stderr(&report));
    assert_eq!(r["slope_bytes_per_s"], m["total"]["slope_bytes_per_s"]);
    // the chart of the top growers
    let png = std::fs::read(dir.path().join("out/memory.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    assert!(err.contains("fastest growing first:"), "{err}");
}

#[test]
fn all_follows_processes_that_start_and_end() {
    let dir = open_dir();
    let name = unique("mwse");
    let bin = named(dir.path(), &fixture_bin(), &name);
    let interval = 0.5;
    let child = memwatch(dir.path())
        .args([
            "--all",
            "--name",
            &format!("^{name}$"),
            "--interval",
            "500ms",
        ])
        .args(["--duration", "10s", "--out", "out", "--quiet"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    // one that lives 3 s, then a burst of short ones, and one that outlives the run
    let mut started: Vec<(i32, f64, ChildGuard)> = Vec::new();
    let t = unix_ms();
    let a = start_named(&bin, &["steady", "--exit-after", "3s"]);
    started.push((a.pid(), t, a));
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..10 {
        let t = unix_ms();
        let c = start_named(&bin, &["steady", "--exit-after", "2s"]);
        started.push((c.pid(), t, c));
    }
    // a tick later, so that three ticks each find new processes (the probes counted below)
    std::thread::sleep(Duration::from_secs(1));
    let t = unix_ms();
    let last = start_named(&bin, &["steady"]);
    started.push((last.pid(), t, last));
    let out = wait_output(child, Duration::from_secs(60));
    assert!(matches!(out.status.code(), Some(0 | 3)), "{}", stderr(&out));
    let by = rows_by_pid(&dir.path().join("out/samples.csv"));
    for (pid, spawned_ms, _) in &started {
        let rows = by
            .get(&pid.to_string())
            .unwrap_or_else(|| panic!("pid {pid} was never read: {:?}", by.keys()));
        let first = num(&rows[0], "unix_ms");
        // found within one tick of its start (room for a loaded machine)
        assert!(
            first - spawned_ms <= interval * 1000.0 + 700.0,
            "pid {pid} first read {} ms after it started",
            first - spawned_ms
        );
        for r in rows {
            assert!(num(r, "rss_bytes") > 0.0 && !r["anon_bytes"].is_empty());
        }
    }
    // those that ended were read until they did, and not after
    let exited: Vec<&(i32, f64, ChildGuard)> = started[..started.len() - 1].iter().collect();
    let end_of_run = num(by["total"].last().unwrap(), "unix_ms");
    for (pid, spawned_ms, _) in exited {
        let rows = &by[&pid.to_string()];
        let last = num(rows.last().unwrap(), "unix_ms");
        assert!(
            last < end_of_run,
            "pid {pid} read to the end though it exited"
        );
        assert!(
            last - spawned_ms < 3_000.0 + 2.0 * interval * 1000.0 + 1_000.0,
            "pid {pid} read {} ms after its start",
            last - spawned_ms
        );
    }
    let survivor = &by[&started.last().unwrap().0.to_string()];
    assert_eq!(num(survivor.last().unwrap(), "unix_ms"), end_of_run);
    // each tick's total is the sum of its rows
    let mut sums: HashMap<String, f64> = HashMap::new();
    for (pid, rows) in &by {
        if pid != "total" {
            for r in rows {
                *sums.entry(r["elapsed_s"].clone()).or_default() += num(r, "rss_bytes");
            }
        }
    }
    for r in &by["total"] {
        let sum = sums.get(&r["elapsed_s"]).copied().unwrap_or(0.0);
        assert_eq!(num(r, "rss_bytes"), sum, "total at {}", r["elapsed_s"]);
    }
    let m = &summary(&dir.path().join("out"))["machine"];
    assert_eq!(
        m["processes_seen"].as_u64(),
        Some(started.len() as u64),
        "{m}"
    );
    assert_eq!(m["watched_at_end"].as_u64(), Some(1), "{m}");
    // new processes were found by their PIDs, not by scanning /proc each tick
    let (ticks, full, probes) = (
        m["ticks"].as_u64().unwrap(),
        m["full_scans"].as_u64().unwrap(),
        m["probes"].as_u64().unwrap(),
    );
    assert!(
        probes >= 3 && full * 2 < ticks,
        "{full} full scans, {probes} probes, {ticks} ticks"
    );
}

/// `memwatch` with the open-file limit set to `soft` and `hard` for it.
fn with_nofile(cmd: &mut Command, soft: u64, hard: u64) {
    // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn all_raises_the_open_file_limit_and_degrades_clearly_past_it() {
    let dir = open_dir();
    let name = unique("mwfd");
    let bin = named(dir.path(), Path::new("/bin/sleep"), &name);
    let sleepers: Vec<ChildGuard> = (0..150).map(|_| start_named(&bin, &["600"])).collect();
    let pids: Vec<String> = sleepers.iter().map(|s| s.pid().to_string()).collect();
    let run = |soft: u64, hard: u64, out: &str| -> Output {
        let mut cmd = memwatch(dir.path());
        cmd.args([
            "--all",
            "--name",
            &format!("^{name}$"),
            "--interval",
            "100ms",
        ])
        .args(["--duration", "3s", "--out", out]);
        with_nofile(&mut cmd, soft, hard);
        cmd.output().unwrap()
    };

    // a soft limit of 64 is raised to the hard one: every process kept open
    let out = run(64, 4096, "raised");
    let err = stderr(&out);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{err}");
    assert!(
        err.contains("raised the open-file limit from 64 to 4096"),
        "{err}"
    );
    let m = &summary(&dir.path().join("raised"))["machine"];
    assert_eq!(m["open_files"]["was"], 64);
    assert_eq!(m["open_files"]["raised_to"], 4096);
    assert_eq!(m["reopened_max"], 0);
    let by = rows_by_pid(&dir.path().join("raised/samples.csv"));
    let ticks = by["total"].len();
    for pid in &pids {
        let rows = &by[pid];
        assert_eq!(rows.len(), ticks, "pid {pid}");
        assert!(
            rows.iter().all(|r| !r["anon_bytes"].is_empty()),
            "read through statm"
        );
    }

    // a hard limit of 100: 52 kept open (48 are memwatch's own), the rest reopened each tick,
    // said once; every process still read every tick, statm and all
    let out = run(100, 100, "degraded");
    let err = stderr(&out);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{err}");
    assert!(
        err.contains("the open-file limit allows 52 processes kept open")
            && err.contains("reopening /proc/PID/statm and stat each tick"),
        "{err}"
    );
    assert_eq!(
        err.matches("the open-file limit allows").count(),
        1,
        "said once: {err}"
    );
    assert!(
        err.contains("read by reopening /proc/PID/statm each tick"),
        "{err}"
    );
    let m = &summary(&dir.path().join("degraded"))["machine"];
    assert!(m["reopened_max"].as_u64().unwrap() >= 98, "{m}");
    assert_eq!(m["open_files"]["raised_to"], 100);
    let by = rows_by_pid(&dir.path().join("degraded/samples.csv"));
    let ticks = by["total"].len();
    for pid in &pids {
        let rows = &by[pid];
        assert_eq!(rows.len(), ticks, "pid {pid} read every tick");
        assert!(
            rows.iter()
                .all(|r| num(r, "rss_bytes") > 0.0 && !r["anon_bytes"].is_empty())
        );
    }
    drop(sleepers);
}

#[test]
fn all_groups_a_service_and_filters_by_user_and_name() {
    let dir = open_dir();
    let name = unique("mwgr");
    let bin = named(dir.path(), &fixture_bin(), &name);
    // three workers of one service as `nobody`, one of them leaking; a root process of the
    // same name is left out by --user
    let as_nobody = |args: &[&str]| {
        ChildGuard(
            Command::new(&bin)
                .args(args)
                .uid(65534)
                .gid(65534)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let workers = [
        as_nobody(&["leak", "4MiB/s"]),
        as_nobody(&["steady"]),
        as_nobody(&["steady"]),
    ];
    let root_one = start_named(&bin, &["steady"]);
    let out = memwatch(dir.path())
        .args(["--all", "--user", "nobody", "--name", &format!("^{name}$")])
        .args([
            "--group-by",
            "name",
            "--interval",
            "500ms",
            "--duration",
            "22s",
        ])
        .args(["--out", "out"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "the service grows: {err}");
    let by = rows_by_pid(&dir.path().join("out/samples.csv"));
    let mut seen: Vec<String> = by.keys().filter(|p| *p != "total").cloned().collect();
    seen.sort();
    let mut want: Vec<String> = workers.iter().map(|w| w.pid().to_string()).collect();
    want.sort();
    assert_eq!(
        seen,
        want,
        "nobody's processes of that name, not root's {}",
        root_one.pid()
    );
    let s = summary(&dir.path().join("out"));
    let m = &s["machine"];
    assert_eq!(m["group_by"], "name");
    assert_eq!(m["user"], "nobody");
    let units = m["processes"].as_array().unwrap();
    assert_eq!(units.len(), 1, "one group: {m}");
    assert_eq!(units[0]["name"], name.as_str());
    assert_eq!(units[0]["pid"], serde_json::Value::Null);
    assert_eq!(units[0]["processes"], 3);
    assert_eq!(units[0]["verdict"], "growing");
    assert!(
        err.contains(&format!("{name} (3 processes): growing")),
        "{err}"
    );
    // the live blocks name the group by its member count
    assert!(err.contains(&format!("x3  {name}")), "{err}");
}

#[test]
fn all_refuses_what_it_cannot_do_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let cases: [(&[&str], &str); 12] = [
        (&["--all", "--pid", "1"], "cannot be used with"),
        (
            &["--all", "--tree"],
            "--tree follows what one process starts",
        ),
        (
            &["--all", "--runtime", "node"],
            "--runtime asks one process's runtime",
        ),
        (&["--all", "--pss"], "--pss reads smaps_rollup"),
        (&["--all", "--signal-every", "5s"], "signals no process"),
        (
            &["--all", "--metric", "pss"],
            "--metric pss: --all reads each process's statm",
        ),
        (&["--all", "--interval", "10ms"], "too short for --all"),
        (
            &["--all", "--user", "no-such-user-mw"],
            "'no-such-user-mw': no such user",
        ),
        (&["--all", "--name", "("], "'(' is not a regular expression"),
        (
            &["--all", "--prometheus-textfile", "x.txt"],
            "reads only files named *.prom",
        ),
        (
            &["--all", "--prometheus-textfile", "/nonexistent-mw/x.prom"],
            "cannot open the folder '/nonexistent-mw'",
        ),
        (
            &["--all", "--prometheus-listen", &busy_addr],
            "cannot listen there",
        ),
    ];
    for (args, says) in cases {
        let out = memwatch(dir.path())
            .args(args)
            .args(["--out", "out", "--duration", "20s"])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            !dir.path().join("out").exists(),
            "{args:?} wrote its folder"
        );
    }
    drop(busy);
}

#[test]
fn a_textfile_name_planted_by_another_user_is_refused_and_left_alone() {
    // SAFETY: getuid has no preconditions.
    assert_eq!(
        unsafe { libc::getuid() },
        0,
        "acts as 'nobody': runs as root (CI does)"
    );
    let dir = open_dir();
    let shared = dir.path().join("textfiles");
    std::fs::create_dir(&shared).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "root's file\n").unwrap();
    let link = shared.join("memwatch.prom");
    let planted = Command::new("su")
        .args(["nobody", "-s", "/bin/sh", "-c"])
        .arg(format!("ln -s '{}' '{}'", victim.display(), link.display()))
        .status()
        .unwrap();
    assert!(planted.success());
    let leak = start_fixture(&["steady"]);
    let out = memwatch(dir.path())
        .args([
            "--pid",
            &leak.pid().to_string(),
            "--duration",
            "2s",
            "--interval",
            "100ms",
            "--out",
            "out",
        ])
        .arg("--prometheus-textfile")
        .arg(&link)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("exists and is not a regular file"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "root's file\n");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        entries(&shared),
        ["memwatch.prom"],
        "no temporary file left"
    );
}

/// A tmux server of this test's own (its own socket), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(socket: String) -> Tmux {
        Tmux { socket }
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("tmux is needed (.ci/run installs it): {e}"))
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "mw"]).stdout).into_owned()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn all_live_view_in_a_real_terminal_quits_on_q() {
    let dir = open_dir();
    let name = unique("mwtty");
    let bin = named(dir.path(), &fixture_bin(), &name);
    let leak = start_named(&bin, &["leak", "2MiB/s"]);
    let tmux = Tmux::new(format!("memwatch-test-{}", std::process::id()));
    let script = format!(
        "cd '{}' && '{}' --all --name '^{name}$' --out out; echo $? > exit-code; sleep 60",
        dir.path().display(),
        memwatch_bin().display()
    );
    let started = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "mw",
        "-x",
        "150",
        "-y",
        "30",
        &script,
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    // the ranked view, redrawn in place, with the leak on it
    let pid = leak.pid().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let screen = loop {
        let screen = tmux.screen();
        if screen.contains("(q quits)") && screen.lines().any(|l| l.trim_start().starts_with(&pid))
        {
            break screen;
        }
        assert!(
            Instant::now() < deadline,
            "the view never showed pid {pid}:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let lines: Vec<&str> = screen.lines().collect();
    assert!(
        lines[0].starts_with("memwatch --all  1 process  "),
        "{screen}"
    );
    assert!(
        lines[1].contains("PID  NAME") && lines[1].contains("VERDICT"),
        "{screen}"
    );
    assert!(
        lines[2].contains(&name) && lines[2].contains("watching"),
        "{screen}"
    );
    // redrawn in place: the header is on the first line only, however many ticks went by
    std::thread::sleep(Duration::from_secs(2));
    let later = tmux.screen();
    assert_eq!(later.matches("memwatch --all").count(), 1, "{later}");
    assert_ne!(later, screen, "the view is redrawn (RSS and time move)");
    tmux.cmd(&["send-keys", "-t", "mw", "q"]);
    let exit_file = dir.path().join("exit-code");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !exit_file.exists() {
        assert!(
            Instant::now() < deadline,
            "q did not end it:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    let code = std::fs::read_to_string(&exit_file).unwrap();
    assert!(matches!(code.trim(), "1" | "3"), "exit {code}");
    // the shell's screen is back, with the end-of-run text under it
    let after = tmux.screen();
    assert!(after.contains("memwatch: --all: q pressed"), "{after}");
    assert!(!after.contains("(q quits)"), "the view is gone: {after}");
    for file in ["samples.csv", "summary.json", "memory.png"] {
        assert!(dir.path().join("out").join(file).exists(), "{file}");
    }
    assert_eq!(summary(&dir.path().join("out"))["machine"]["stop"], "quit");
}
