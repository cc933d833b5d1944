//! Whole services (issue 18): a process tree's memory counted once, targets found by name
//! and followed across restarts, and the memory cgroup they run in. Real process trees, a
//! real supervisor restarting a real leaker, a real v1 memory cgroup with a limit.

use crate::util::*;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A Python parent that touches 100 MiB and forks three children that only sleep: ~100 MiB
/// really used, four times that in RSS (copy-on-write).
const COW_TREE: &str = "import os, time\n\
b = bytearray(100 * 1024 * 1024)\n\
for i in range(0, len(b), 4096):\n    b[i] = 1\n\
for k in range(3):\n    if os.fork() == 0:\n        time.sleep(600)\n        os._exit(0)\n\
time.sleep(600)\n";

fn summary(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The processes of the tree rooted at `root` (itself included).
fn tree_of(root: i32) -> Vec<i32> {
    let mut parents: HashMap<i32, i32> = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        parents.insert(pid, rest.split(' ').nth(1).unwrap().parse().unwrap());
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parents.iter().filter(|(_, pp)| **pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

/// What a tree really uses: the distinct physical pages its processes map, from
/// /proc/PID/pagemap (root sees the page frame numbers).
fn distinct_pages_bytes(root: i32) -> f64 {
    use std::io::{Read, Seek, SeekFrom};
    let mut frames: BTreeSet<u64> = BTreeSet::new();
    for pid in tree_of(root) {
        let (Ok(maps), Ok(mut pagemap)) = (
            std::fs::read_to_string(format!("/proc/{pid}/maps")),
            std::fs::File::open(format!("/proc/{pid}/pagemap")),
        ) else {
            continue;
        };
        for line in maps.lines() {
            let range = line.split(' ').next().unwrap();
            let (lo, hi) = range.split_once('-').unwrap();
            let (lo, hi) = (
                u64::from_str_radix(lo, 16).unwrap(),
                u64::from_str_radix(hi, 16).unwrap(),
            );
            if lo >= 0xffff_ffff_ff60_0000 {
                continue; // vsyscall
            }
            let mut buf = vec![0u8; ((hi - lo) / 4096 * 8) as usize];
            if pagemap.seek(SeekFrom::Start(lo / 4096 * 8)).is_err()
                || pagemap.read_exact(&mut buf).is_err()
            {
                continue;
            }
            for e in buf.chunks_exact(8) {
                let e = u64::from_le_bytes(e.try_into().unwrap());
                if e >> 63 & 1 == 1 {
                    frames.insert(e & ((1 << 55) - 1));
                }
            }
        }
    }
    frames.len() as f64 * 4096.0
}

/// Waits until `f` holds (checked every 100 ms), at most `limit`.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let give_up = std::time::Instant::now() + limit;
    while std::time::Instant::now() < give_up {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn child_of(parent: i32) -> Option<i32> {
    tree_of(parent).into_iter().find(|&p| p != parent)
}

fn as_root() {
    // SAFETY: getuid has no preconditions.
    assert_eq!(
        unsafe { libc::getuid() },
        0,
        "these tests make memory cgroups: they need root (CI runs as root)"
    );
}

/// Issue 18, "Done means": the copy-on-write tree is judged on a total within 10% of what it
/// really uses (distinct pages mapped, from pagemap), not 4×, and stable. `run --tree` as
/// root makes a cgroup for the command and judges it; the RSS sum is kept beside it.
#[test]
fn a_copy_on_write_tree_is_judged_on_what_it_really_uses() {
    as_root();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cow.py"), COW_TREE).unwrap();
    let child = memwatch(dir.path())
        .args(["run", "--tree", "--interval", "250ms", "--duration", "14s"])
        .args(["--out", "o", "--", "python3", "cow.py"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let memwatch_pid = child.id() as i32;
    // The truth, while it runs: the tree is the child of memwatch.
    let mut truth = 0.0;
    assert!(wait_for(Duration::from_secs(10), || {
        let Some(root) = child_of(memwatch_pid) else {
            return false;
        };
        tree_of(root).len() >= 4 && {
            std::thread::sleep(Duration::from_millis(1500));
            truth = distinct_pages_bytes(root);
            true
        }
    }));
    let out = wait_output(child, Duration::from_secs(60));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "stable: {err}");
    let s = summary(&dir.path().join("o/summary.json"));
    assert_eq!(s["metric"], "cgroup", "{err}");
    assert_eq!(s["tree_total"]["judged"], "cgroup", "{err}");
    let total = s["end_bytes"].as_f64().unwrap();
    assert!(
        (total - truth).abs() <= 0.10 * truth,
        "judged total {:.1} MiB, really used {:.1} MiB",
        total / MIB,
        truth / MIB
    );
    assert!(truth > 95.0 * MIB && truth < 140.0 * MIB, "{}", truth / MIB);
    let rss_sum = s["tree_total"]["rss_sum_end_bytes"].as_f64().unwrap();
    assert!(
        rss_sum > 3.5 * total,
        "the RSS sum counts it four times: {rss_sum} vs {total}"
    );
    assert_eq!(s["verdict"], "stable");
    // The cgroup was removed at the end.
    let made = s["tree_total"]["cgroup"].as_str().unwrap();
    assert!(made.contains("/memwatch-"), "{made}");
    assert!(
        err.contains("memwatch: the tree's total judged is the memory of a cgroup memwatch made"),
        "{err}"
    );
    let mount = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let at = mount
        .lines()
        .find(|l| l.contains(" - cgroup ") && l.ends_with("memory"))
        .and_then(|l| l.split(' ').nth(4))
        .unwrap_or("/sys/fs/cgroup/memory");
    assert!(
        !Path::new(&format!("{at}{made}")).exists(),
        "{at}{made} left behind"
    );
    // The CSV: a process row per process, the RSS sum in the total rows, the cgroup rows
    // judged; report judges the same series to the same verdict.
    let rows = read_csv(&dir.path().join("o/samples.csv"));
    assert!(rows[0]["event"].contains("judged:cgroup"), "{:?}", rows[0]);
    let cgroup_rows: Vec<_> = rows.iter().filter(|r| r["pid"] == "cgroup").collect();
    assert!(cgroup_rows.len() > 30);
    assert!(cgroup_rows.iter().all(|r| r["vsz_bytes"].is_empty()));
    let again = memwatch(dir.path())
        .args(["report", "o/samples.csv", "--json", "-"])
        .output()
        .unwrap();
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["metric"], "cgroup");
    assert_eq!(again["verdict"], s["verdict"]);
    assert_eq!(again["p_value"], s["p_value"]);
    assert_eq!(again["end_bytes"], s["end_bytes"]);
}

/// The same tree attached by PID: memwatch does not move running processes into a cgroup,
/// so it sums their PSS, read in turn; the total's PSS is there on every row once each
/// process has been read, within 10% of the truth, and stable.
#[test]
fn an_attached_copy_on_write_tree_is_judged_on_its_pss() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cow.py"), COW_TREE).unwrap();
    let tree = ChildGuard(
        Command::new("python3")
            .arg(dir.path().join("cow.py"))
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // The real python (a pyenv shim execs it) and its three children.
    assert!(wait_for(Duration::from_secs(10), || tree_of(tree.pid())
        .len()
        >= 4));
    std::thread::sleep(Duration::from_millis(1500));
    let root = tree.pid();
    let truth = distinct_pages_bytes(root);
    let out = memwatch(dir.path())
        .args(["--pid", &root.to_string(), "--tree", "--interval", "200ms"])
        .args(["--pss-interval", "1s", "--duration", "10s", "--out", "o"])
        .output()
        .unwrap();
    let err = stderr(&out);
    let children: Vec<i32> = tree_of(root);
    for pid in children.iter().rev() {
        // SAFETY: processes this test started (the tree of its own child).
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    assert_eq!(out.status.code(), Some(0), "stable: {err}");
    let s = summary(&dir.path().join("o/summary.json"));
    assert_eq!(s["metric"], "pss");
    assert_eq!(s["tree_total"]["judged"], "pss-sum");
    assert!(
        s["tree_total"]["why"]
            .as_str()
            .unwrap()
            .contains("attached"),
        "{}",
        s["tree_total"]
    );
    let total = s["end_bytes"].as_f64().unwrap();
    assert!(
        (total - truth).abs() <= 0.10 * truth,
        "judged total {:.1} MiB, really used {:.1} MiB",
        total / MIB,
        truth / MIB
    );
    let rows = read_csv(&dir.path().join("o/samples.csv"));
    let totals: Vec<_> = rows.iter().filter(|r| r["pid"] == "total").collect();
    let known = totals.iter().filter(|r| !r["pss_bytes"].is_empty()).count();
    assert!(
        known + 3 >= totals.len(),
        "{known} of {} totals have PSS",
        totals.len()
    );
    assert!(num(totals[totals.len() - 1], "rss_bytes") > 3.5 * total);
    let again = memwatch(dir.path())
        .args(["report", "o/samples.csv", "--json", "-"])
        .output()
        .unwrap();
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["metric"], "pss");
    assert_eq!(again["verdict"], s["verdict"]);
    assert_eq!(again["p_value"], s["p_value"]);
}

/// A parent whose second child leaks: the total grows, and the end names that child by its
/// own growth (its own verdict in summary.json), not the sum's.
#[test]
fn a_leaking_second_child_is_named() {
    as_root();
    let dir = tempfile::tempdir().unwrap();
    // Each under a name of its own, to tell them apart.
    let (steady, steady_name) = named_fixture(dir.path(), "s");
    let (leaky, leaky_name) = named_fixture(dir.path(), "l");
    let script = format!(
        "{} steady & sleep 0.3; {} leak 3MiB/s & wait",
        steady.display(),
        leaky.display()
    );
    let out = memwatch(dir.path())
        .args(["run", "--tree", "--interval", "200ms", "--duration", "10s"])
        .args(["--out", "o", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "growing: {err}");
    let s = summary(&dir.path().join("o/summary.json"));
    let tree = s["target"]["tree"].as_array().unwrap();
    let named = |name: &str| {
        tree.iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {tree:?}"))
    };
    let (leaker, steady) = (named(&leaky_name), named(&steady_name));
    assert_eq!(leaker["verdict"]["verdict"], "growing", "{tree:?}");
    assert_eq!(steady["verdict"]["verdict"], "stable", "{tree:?}");
    assert!(
        err.contains(&format!(
            "memwatch: grows on its own: {} ({leaky_name}), growing (linear)",
            leaker["pid"]
        )),
        "{err}"
    );
    assert_eq!(s["verdict"], "growing");
}

/// A command started through a wrapper that exec's its program is named for the program.
#[test]
fn the_name_follows_an_exec() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixture_bin();
    let out = memwatch(dir.path())
        .args([
            "run",
            "--interval",
            "100ms",
            "--duration",
            "2s",
            "--out",
            "o",
        ])
        .args(["--", "sh", "-c", &format!("exec {} steady", f.display())])
        .output()
        .unwrap();
    let err = stderr(&out);
    let s = summary(&dir.path().join("o/summary.json"));
    assert_eq!(s["target"]["name"], "fixture", "{err}");
    assert!(
        s["target"]["command"]
            .as_str()
            .unwrap()
            .ends_with("fixture steady")
    );
    assert!(err.contains("(fixture): duration reached"), "{err}");
}

/// The fixture under a name of its own (comm is the file's name, 15 characters at most), so
/// `--name` finds this test's processes and no other test's.
fn named_fixture(dir: &Path, tag: &str) -> (PathBuf, String) {
    let name = format!("mw{tag}{}", std::process::id() % 100_000);
    let bin = dir.join(&name);
    std::fs::copy(fixture_bin(), &bin).unwrap();
    (bin, name)
}

/// Issue 18, "Done means": a target restarted twice by a small supervisor script, followed
/// by name: three lives, two restart events, the gaps empty in the CSV (never 0), growing over
/// the whole when each life leaks; `report` gives the same verdicts.
#[test]
fn a_service_restarted_twice_is_followed_across_its_lives() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, name) = named_fixture(dir.path(), "f");
    let supervisor = format!(
        "for i in 1 2 3; do {} leak 2MiB/s --exit-after 7s; sleep 1; done; sleep 30",
        bin.display()
    );
    let _sup = ChildGuard(
        Command::new("sh")
            .args(["-c", &supervisor])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let out = memwatch(dir.path())
        .args(["--name", &format!("^{name}$"), "--follow"])
        .args(["--interval", "200ms", "--duration", "25s", "--out", "o"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "growing: {err}");
    let s = summary(&dir.path().join("o/summary.json"));
    let f = &s["follow"];
    assert_eq!(f["restarts"], 2, "{err}");
    let lives = f["lives"].as_array().unwrap();
    assert_eq!(lives.len(), 3, "{f}");
    for l in lives {
        assert_eq!(l["name"], name.as_str());
        assert_eq!(l["verdict"], "growing", "{l}");
    }
    assert_eq!(s["verdict"], "growing");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .starts_with("3 lives joined end to end"),
        "{}",
        s["reason"]
    );
    let slope = s["slope_bytes_per_s"].as_f64().unwrap();
    assert!(
        (1.6 * MIB..2.4 * MIB).contains(&slope),
        "the leak's rate: {slope}"
    );
    // The CSV: two restart events, and between the lives the total is absent (empty), not 0.
    let rows = read_csv(&dir.path().join("o/samples.csv"));
    let restarts = rows
        .iter()
        .filter(|r| r["event"].contains("restart:"))
        .count();
    assert_eq!(restarts, 2);
    let gone = rows.iter().filter(|r| r["event"].contains("gone:")).count();
    assert!(gone >= 2, "{gone}");
    let totals: Vec<_> = rows.iter().filter(|r| r["pid"] == "total").collect();
    let absent = totals.iter().filter(|r| r["rss_bytes"].is_empty()).count();
    assert!(
        absent >= 4,
        "about a second between lives at 200 ms: {absent} empty rows"
    );
    assert!(totals.iter().all(|r| r["rss_bytes"] != "0"));
    for r in totals.iter().filter(|r| r["rss_bytes"].is_empty()) {
        for col in ["vsz_bytes", "anon_bytes", "hwm_bytes", "threads"] {
            assert_eq!(r[col], "", "{col} of an absent row");
        }
    }
    let pids: BTreeSet<&str> = rows
        .iter()
        .map(|r| r["pid"].as_str())
        .filter(|p| *p != "total")
        .collect();
    assert_eq!(pids.len(), 3, "one process per life: {pids:?}");
    // report reads the lives back and gives the same verdicts.
    let again = memwatch(dir.path())
        .args(["report", "o/samples.csv", "--json", "-"])
        .output()
        .unwrap();
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["verdict"], s["verdict"], "{}", stderr(&out));
    assert_eq!(again["p_value"], s["p_value"]);
    assert_eq!(again["slope_bytes_per_s"], s["slope_bytes_per_s"]);
    let back = again["follow"]["lives"].as_array().unwrap();
    assert_eq!(back.len(), 3);
    for (a, b) in back.iter().zip(lives) {
        assert_eq!(a["verdict"], b["verdict"]);
        assert_eq!(a["slope_bytes_per_s"], b["slope_bytes_per_s"]);
        assert_eq!(a["pid"], b["pid"]);
    }
}

/// A name that matches nothing is an error that says how to look; several matches are an
/// error that lists them (PID, name, RSS, command) unless `--all-matches` sums them.
#[test]
fn names_that_match_nothing_or_several() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, name) = named_fixture(dir.path(), "n");
    let none = memwatch(dir.path())
        .args([
            "--name",
            &format!("^{name}$"),
            "--duration",
            "2s",
            "--interval",
            "100ms",
        ])
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2));
    let err = stderr(&none);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("no process matches --name '^{name}$'")) && err.contains("--follow"),
        "{err}"
    );
    assert!(!dir.path().join("o").exists());
    let start = |rate: &str| {
        ChildGuard(
            Command::new(&bin)
                .args(["leak", rate])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    };
    let (a, b) = (start("1MiB/s"), start("2MiB/s"));
    std::thread::sleep(Duration::from_millis(300));
    let several = memwatch(dir.path())
        .args([
            "--cmdline",
            &format!("{name} leak"),
            "--duration",
            "2s",
            "--interval",
            "100ms",
        ])
        .output()
        .unwrap();
    assert_eq!(several.status.code(), Some(2));
    let err = stderr(&several);
    assert_eq!(err.lines().count(), 1, "{err}");
    for c in [&a, &b] {
        assert!(err.contains(&format!("{} ({name}, ", c.pid())), "{err}");
    }
    assert!(
        err.contains("2 processes match --cmdline") && err.contains("--all-matches"),
        "{err}"
    );
    // Summed: both are rows of their own and their sum is judged.
    let out = memwatch(dir.path())
        .args([
            "--name",
            &format!("^{name}$"),
            "--all-matches",
            "--tree-total",
            "rss",
        ])
        .args(["--interval", "200ms", "--duration", "6s", "--out", "o"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "two leakers: growing: {err}");
    let rows = read_csv(&dir.path().join("o/samples.csv"));
    let pids: BTreeSet<&str> = rows.iter().map(|r| r["pid"].as_str()).collect();
    let want: BTreeSet<String> = [a.pid().to_string(), b.pid().to_string(), "total".into()].into();
    assert_eq!(
        pids,
        want.iter().map(String::as_str).collect::<BTreeSet<&str>>()
    );
    let s = summary(&dir.path().join("o/summary.json"));
    let slope = s["slope_bytes_per_s"].as_f64().unwrap();
    assert!(
        (2.4 * MIB..3.6 * MIB).contains(&slope),
        "both leaks: {slope}"
    );
}

/// A v1 memory cgroup this test makes (under its own), with a limit.
struct TestCgroup {
    dir: PathBuf,
    path: String,
}

impl TestCgroup {
    fn new(limit: u64) -> TestCgroup {
        as_root();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        let path = own
            .lines()
            .find_map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
                controllers
                    .split(',')
                    .any(|c| c == "memory")
                    .then(|| path.to_string())
            })
            .expect("a v1 memory controller (this kind of machine has one)");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let mount = mounts
            .lines()
            .find(|l| l.contains(" - cgroup ") && l.split(',').any(|o| o == "memory"))
            .and_then(|l| l.split(' ').nth(4))
            .unwrap()
            .to_string();
        let name = format!("mwtest-{}-{}", std::process::id(), limit);
        let path = format!("{}/{name}", path.trim_end_matches('/'));
        let dir = PathBuf::from(format!("{mount}{path}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("memory.limit_in_bytes"), limit.to_string()).unwrap();
        TestCgroup { dir, path }
    }

    /// Starts the fixture inside the cgroup (the shell moves itself in, then execs it).
    fn start(&self, args: &str) -> ChildGuard {
        let script = format!(
            "echo $$ > {}/cgroup.procs && exec {} {args}",
            self.dir.display(),
            fixture_bin().display()
        );
        ChildGuard(
            Command::new("sh")
                .args(["-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Issue 18, "Done means": the live cgroup v1 test. A leaker in a cgroup with a 256 MiB limit:
/// `--cgroup` reads the target's cgroup every tick, `--metric cgroup` judges it; the summary
/// gives the limit, the headroom and the time to reach it; `--min-time-to-limit` fails the
/// gate when that is too soon; the chart draws the limit; `report` reads it all back.
#[test]
fn a_v1_cgroup_with_a_limit_is_judged_with_its_headroom_and_time_to_limit() {
    let cgroup = TestCgroup::new(256 << 20);
    let target = cgroup.start("leak 4MiB/s");
    std::thread::sleep(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let out = memwatch(dir.path())
        .args([
            "--pid",
            &target.pid().to_string(),
            "--cgroup",
            "--metric",
            "cgroup",
        ])
        .args([
            "--min-time-to-limit",
            "1h",
            "--interval",
            "200ms",
            "--duration",
            "10s",
        ])
        .args(["--out", "o"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let s = summary(&dir.path().join("o/summary.json"));
    assert_eq!(s["metric"], "cgroup");
    assert_eq!(s["verdict"], "growing");
    let c = &s["cgroup"];
    assert_eq!(c["path"], cgroup.path.as_str());
    assert_eq!(c["version"], "v1");
    assert_eq!(c["limit_bytes"].as_f64(), Some(256.0 * MIB));
    assert_eq!(c["limit_set_by"], cgroup.path.as_str());
    let ws = c["working_set_bytes"].as_f64().unwrap();
    let headroom = c["headroom_bytes"].as_f64().unwrap();
    assert!((headroom - (256.0 * MIB - ws)).abs() < 1.0, "{c}");
    let slope = c["slope_bytes_per_s"].as_f64().unwrap();
    assert!((3.0 * MIB..5.0 * MIB).contains(&slope), "{slope}");
    let t = c["time_to_limit_s"].as_f64().unwrap();
    assert!(
        (t - headroom / slope).abs() < 1e-6 && t > 20.0 && t < 80.0,
        "{t}"
    );
    let gate = &s["gate"];
    assert_eq!(gate["breaches"][0]["rule"], "min-time-to-limit", "{gate}");
    assert!(
        err.contains("memwatch: gate failed: at +")
            && err.contains("the 256 MiB limit of ")
            && err.contains("sooner than --min-time-to-limit 1 h"),
        "{err}"
    );
    assert!(
        err.contains(&format!("memwatch: cgroup {}: ", cgroup.path)),
        "{err}"
    );
    // The CSV: cgroup rows with the limit; report judges them back to the same verdict.
    let rows = read_csv(&dir.path().join("o/samples.csv"));
    let cg: Vec<_> = rows.iter().filter(|r| r["pid"] == "cgroup").collect();
    assert!(cg.len() > 40);
    assert!(cg.iter().all(|r| num(r, "limit_bytes") == 256.0 * MIB));
    let again = memwatch(dir.path())
        .args([
            "report",
            "o/samples.csv",
            "--json",
            "-",
            "--min-time-to-limit",
            "1h",
        ])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["metric"], "cgroup");
    assert_eq!(again["verdict"], s["verdict"]);
    assert_eq!(again["p_value"], s["p_value"]);
    assert_eq!(again["cgroup"]["limit_bytes"], c["limit_bytes"]);
    assert_eq!(again["cgroup"]["time_to_limit_s"], c["time_to_limit_s"]);
    assert_eq!(again["gate"]["breaches"][0]["rule"], "min-time-to-limit");
    let png = std::fs::read(dir.path().join("o/memory.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"));

    // The same cgroup by its folder, the process judged and the cgroup beside it: a time to
    // the limit that is long enough passes that check.
    let out = memwatch(dir.path())
        .args(["--pid", &target.pid().to_string()])
        .args([
            "--cgroup",
            cgroup.dir.to_str().unwrap(),
            "--min-time-to-limit",
            "1s",
        ])
        .args(["--interval", "200ms", "--duration", "6s", "--out", "p"])
        .output()
        .unwrap();
    let err = stderr(&out);
    let s = summary(&dir.path().join("p/summary.json"));
    assert_eq!(s["metric"], "rss", "{err}");
    assert_eq!(s["cgroup"]["path"], cgroup.path.as_str());
    assert_eq!(s["gate"]["checks"][0]["rule"], "min-time-to-limit");
    assert_eq!(s["gate"]["checks"][0]["passed"], true, "{}", s["gate"]);
}

/// Bad cgroup options fail at once with one line and exit 2, before anything is written.
#[test]
fn bad_cgroup_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = start_fixture(&["steady"]);
    let pid = target.pid().to_string();
    for (args, says) in [
        (
            vec!["--pid", &pid, "--cgroup", "/no/such/cgroup"],
            "--cgroup '/no/such/cgroup' is not a memory cgroup",
        ),
        (
            vec!["--pid", &pid, "--cgroup", "relative"],
            "'relative' is not a cgroup",
        ),
        (
            vec!["--pid", &pid, "--metric", "cgroup"],
            "--metric cgroup judges the memory cgroup memwatch reads",
        ),
        (
            vec!["--pid", &pid, "--min-time-to-limit", "1h"],
            "--min-time-to-limit is about a cgroup's limit",
        ),
        (
            vec!["--pid", &pid, "--tree", "--tree-total", "cgroup"],
            "--tree-total cgroup: memwatch can only put a command it starts",
        ),
        (
            vec!["--pid", &pid, "--follow"],
            "--follow finds processes by a pattern",
        ),
    ] {
        let out = memwatch(dir.path())
            .args(&args)
            .args(["--duration", "1s", "--interval", "50ms", "--out", "o"])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(!dir.path().join("o").exists());
    }
}

/// A tree run by a user who may not make cgroups (here `nobody`) is judged on the sum of its
/// processes' PSS instead, and says why; nothing is made in the cgroup hierarchy.
#[test]
fn a_tree_run_without_the_right_to_make_a_cgroup_is_judged_on_its_pss() {
    as_root();
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let f = fixture_bin();
    let script = format!("{f} steady & {f} steady & wait", f = f.display());
    let out = memwatch(dir.path())
        .args(["run", "--tree", "--interval", "200ms", "--duration", "4s"])
        .args([
            "--pss-interval",
            "1s",
            "--out",
            "o",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(matches!(out.status.code(), Some(0 | 3)), "{err}");
    let s = summary(&dir.path().join("o/summary.json"));
    assert_eq!(s["tree_total"]["judged"], "pss-sum", "{err}");
    let why = s["tree_total"]["why"].as_str().unwrap();
    assert!(
        why.starts_with(
            "memwatch could make no cgroup for the command (cannot make a memory cgroup in"
        ),
        "{why}"
    );
    assert_eq!(s["metric"], "pss");
    assert!(s.get("cgroup").is_none());
    let rows = read_csv(&dir.path().join("o/samples.csv"));
    assert!(rows.iter().all(|r| r["pid"] != "cgroup"));
    assert!(rows[0]["event"].contains("judged:pss-sum"), "{:?}", rows[0]);
}
