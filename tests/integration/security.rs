//! Issue 15, "Safe to run as root": each test runs the attack for real, as `nobody` against
//! a root memwatch (planted links, a fake attach listener, a full tmpfs, SIGKILL), and is
//! named after its item. `fs.protected_symlinks` is 0 on this kind of machine; no test relies
//! on it either way: the links are planted in folders that are not sticky, where the kernel
//! never protects them.

use crate::runtime::need;
use crate::util::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A root-only file (mode 0600) in a root-only folder: what a planted link points at.
struct Secret {
    _dir: tempfile::TempDir,
    path: PathBuf,
    state: (u32, u32, Vec<u8>),
}

impl Secret {
    fn new(name: &str) -> Secret {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{name}: root's only\n")).unwrap();
        set_mode(&path, 0o600);
        let state = file_state(&path);
        Secret {
            _dir: dir,
            path,
            state,
        }
    }

    /// Still root's, mode 0600, same bytes.
    fn untouched(&self, what: &str) {
        assert_eq!(
            file_state(&self.path),
            self.state,
            "{what}: {} was changed through a planted link",
            self.path.display()
        );
    }
}

/// A running process of root's, for memwatch to watch.
fn root_target() -> ChildGuard {
    start_fixture(&["steady"])
}

/// Runs memwatch (as root) to completion, at most `limit`.
fn run(cwd: &Path, args: &[&str], limit: Duration) -> Output {
    let child = memwatch(cwd)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, limit)
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// A verdict's exit code (0 stable, 1 growing, 3 inconclusive): memwatch did its job.
fn judged(out: &Output) {
    assert!(
        matches!(code(out), 0 | 1 | 3),
        "exit {}: {}",
        code(out),
        stderr(out)
    );
}

/// `date +%Y%m%d-%H%M%S` of a unix time, as memwatch names its default folder.
fn stamp(unix: u64) -> String {
    let out = Command::new("date")
        .args(["+%Y%m%d-%H%M%S", "-d", &format!("@{unix}")])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------------------------------
// The JVM attach mechanism

/// Compiles fixtures/java/LeakFixture.java into `dir` (readable by everyone).
fn compile_java(dir: &Path) {
    need("javac");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/java/LeakFixture.java");
    let ok = Command::new("javac")
        .arg("-d")
        .arg(dir)
        .arg(src)
        .status()
        .unwrap()
        .success();
    assert!(ok, "javac failed");
}

fn wait_for_line(path: &Path, line: &str) {
    wait_for(
        Duration::from_secs(30),
        &format!("'{line}' in {}", path.display()),
        || std::fs::read_to_string(path).is_ok_and(|t| t.contains(line)),
    );
}

/// `java LeakFixture bounded` as nobody, working in `home` (nobody's), output in home/NAME.out.
fn nobody_jvm(home: &Path, name: &str) -> (NobodyProc, PathBuf) {
    need("java");
    let out = home.join(format!("{name}.out"));
    let h = home.display();
    let jvm = NobodyProc::start(
        &format!(
            "cd '{h}' && exec java -Xmx64m -XX:TieredStopAtLevel=1 -cp '{h}' LeakFixture bounded 500 > '{}' 2>&1",
            out.display()
        ),
        &["java"],
    );
    wait_for_line(&out, "ready");
    (jvm, out)
}

/// `memwatch --pid PID --runtime jvm` for 3 s into `cwd/folder`: whether it attached, or
/// what it said.
fn jvm_run_attached(cwd: &Path, pid: i32, folder: &str) -> Result<(), String> {
    let pid = pid.to_string();
    let args = [
        "--pid",
        &pid,
        "--runtime",
        "jvm",
        "--duration",
        "3s",
        "--interval",
        "150ms",
    ];
    let out = run(
        cwd,
        &[&args[..], &["-o", folder]].concat(),
        Duration::from_secs(60),
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cwd.join(folder).join("summary.json")).unwrap())
            .unwrap();
    match summary["runtime"]["attached"] == true {
        true => Ok(()),
        false => Err(stderr(&out)),
    }
}

/// `java LeakFixture bounded` of root's (a service), compiled into and working in `dir`.
fn root_jvm(dir: &Path, flags: &[&str]) -> (ChildGuard, PathBuf) {
    need("java");
    compile_java(dir);
    let out = dir.join("java.out");
    let java = ChildGuard(
        Command::new("java")
            .args(["-Xmx64m", "-XX:TieredStopAtLevel=1"])
            .args(flags)
            .arg("-cp")
            .arg(dir)
            .args(["LeakFixture", "bounded", "500"])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for_line(&out, "ready");
    (java, out)
}

/// Item 1: the JVM's user links `.attach_pid<PID>` in its working directory to a root-only
/// file; a root memwatch must not hand that file over (main chmod'ed and chown'ed it to
/// nobody). A trigger left behind by a memwatch killed during the attach wait does not stop
/// the next run.
#[test]
fn item1_jvm_attach_trigger_never_goes_through_a_planted_link() {
    let home = nobody_dir();
    compile_java(home.path());
    let secret = Secret::new("shadow");
    let (jvm, _) = nobody_jvm(home.path(), "one");
    let _socket = RemovedAfter(format!("/tmp/.java_pid{}", jvm.pid).into());
    let trigger = home.path().join(format!(".attach_pid{}", jvm.pid));
    nobody_does(&format!(
        "ln -s '{}' '{}'",
        secret.path.display(),
        trigger.display()
    ));
    let out_dir = tempfile::tempdir().unwrap();
    let attached = jvm_run_attached(out_dir.path(), jvm.pid, "run");
    secret.untouched("the attach trigger");
    assert!(
        std::fs::symlink_metadata(&trigger)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the planted link is left alone"
    );
    // The trigger went to the JVM's /tmp instead, and the attach worked.
    attached.unwrap();
    assert!(!Path::new(&format!("/tmp/.attach_pid{}", jvm.pid)).exists());
    drop(jvm);

    // A memwatch killed (SIGKILL) while it waits for the attach socket leaves its trigger:
    // a plain empty file of the JVM's user, mode 0600, nothing else.
    let (jvm, jvm_out) = nobody_jvm(home.path(), "two");
    let _socket = RemovedAfter(format!("/tmp/.java_pid{}", jvm.pid).into());
    let pid = jvm.pid.to_string();
    let trigger = home.path().join(format!(".attach_pid{}", jvm.pid));
    send_signal(jvm.pid, libc::SIGSTOP);
    let mut killed = memwatch(out_dir.path())
        .args(["--pid", &pid, "--runtime", "jvm", "--duration", "60s"])
        .args(["-o", "killed"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(10), "the attach trigger", || {
        trigger.exists()
    });
    std::thread::sleep(Duration::from_millis(200));
    killed.kill().unwrap();
    killed.wait().unwrap();
    let left = std::fs::symlink_metadata(&trigger).unwrap();
    assert!(left.file_type().is_file());
    assert_eq!(
        (left.uid(), left.mode() & 0o7777, left.len()),
        (NOBODY, 0o600, 0)
    );
    // The JVM handles the pending SIGQUIT without it (a thread dump); the trigger is then
    // put back, as a killed run leaves it, for the next run to meet.
    let aside = home.path().join("aside");
    std::fs::rename(&trigger, &aside).unwrap();
    send_signal(jvm.pid, libc::SIGCONT);
    wait_for_line(&jvm_out, "Full thread dump");
    std::fs::rename(&aside, &trigger).unwrap();
    jvm_run_attached(out_dir.path(), jvm.pid, "next").unwrap();
    assert!(!trigger.exists(), "the next run removed its trigger");
}

/// An attach socket, removed at the end (a JVM killed with SIGKILL leaves its own behind).
struct RemovedAfter(PathBuf);

impl Drop for RemovedAfter {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A fake attach listener of nobody's: answers GC.heap_info with a huge growing heap and the
/// histogram with a class of its own, and logs every connection.
const FAKE_LISTENER: &str = r#"
const net = require('net'), fs = require('fs');
const [path, log] = process.argv.slice(2);
let n = 0;
net.createServer(c => {
  n++;
  fs.appendFileSync(log, 'connection\n');
  let req = '';
  c.on('error', () => {});
  c.on('data', d => {
    req += d;
    if (req.split('\0').length < 6) return;
    if (req.includes('GC.heap_info'))
      c.end('0\n garbage-first heap   total 6000000K, used ' + (5800000 + n * 1000) + 'K [0x0, 0x0)\n');
    else if (req.includes('GC.class_histogram'))
      c.end('0\n   1:   ' + 1000 * n + '   ' + 64000 * n + '  Fake$Planted\nTotal 1 1\n');
    else c.end('0\n');
  });
}).listen(path, () => { fs.chmodSync(path, 0o600); fs.appendFileSync(log, 'listening\n'); });
"#;

/// A "JVM" (Node under the name `java`) that opens its own attach socket on SIGQUIT and
/// answers every command with an endless stream.
const ENDLESS_JVM: &str = r#"
const net = require('net'), fs = require('fs');
const path = '/tmp/.java_pid' + process.pid;
let started = false;
process.on('SIGQUIT', () => {
  if (started) return;
  started = true;
  net.createServer(c => {
    c.on('error', () => {});
    const chunk = Buffer.alloc(1 << 20, 120);
    c.write('0\n');
    const pump = () => { while (c.write(chunk)) {} c.once('drain', pump); };
    pump();
  }).listen(path, () => fs.chmodSync(path, 0o600));
});
console.log('ready');
setInterval(() => {}, 1000);
"#;

/// Item 2: `/tmp/.java_pid<PID>` made first by another user is not talked to (main reported
/// its 5.6 GiB heap and its class); an endless answer from the JVM's own socket is cut off
/// (main grew to GBs).
#[test]
fn item2_jvm_attach_socket_of_another_user_is_not_trusted_and_answers_are_bounded() {
    need("node");
    need("java");
    let shared = shared_dir();
    let (java, _) = root_jvm(shared.path(), &[]);
    let home = nobody_dir();
    let script = home.path().join("fake.js");
    std::fs::write(&script, FAKE_LISTENER).unwrap();
    let log = home.path().join("fake.log");
    let socket = PathBuf::from(format!("/tmp/.java_pid{}", java.pid()));
    let _planted = RemovedAfter(socket.clone());
    let _fake = NobodyProc::start(
        &format!(
            "exec node '{}' '{}' '{}'",
            script.display(),
            socket.display(),
            log.display()
        ),
        &["node"],
    );
    wait_for_line(&log, "listening");
    let out_dir = tempfile::tempdir().unwrap();
    let pid = java.pid().to_string();
    let out = run(
        out_dir.path(),
        &[
            "--pid",
            &pid,
            "--runtime",
            "jvm",
            "--duration",
            "6s",
            "--interval",
            "300ms",
            "--heap-snapshots",
            "2",
            "-o",
            "run",
        ],
        Duration::from_secs(90),
    );
    let err = stderr(&out);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !log_text.contains("connection"),
        "memwatch talked to nobody's socket: {err}"
    );
    assert!(!err.contains("Fake$Planted"), "{err}");
    // The JVM's own socket replaced the planted one: the readings are the real heap.
    let rows = read_csv(&out_dir.path().join("run/samples.csv"));
    let heap: Vec<f64> = rows
        .iter()
        .filter(|r| !r["heap_after_gc_bytes"].is_empty())
        .map(|r| num(r, "heap_after_gc_bytes"))
        .collect();
    assert!(!heap.is_empty(), "no managed-heap reading: {err}");
    assert!(
        heap.iter().all(|&h| h < 256.0 * MIB),
        "the -Xmx64m JVM's heap, not the fake's: {heap:?}"
    );
    drop(java);

    // The JVM's own socket (the process itself listens): an endless answer is cut off.
    let fake_home = nobody_dir();
    let fake_java = fake_home.path().join("java");
    std::fs::copy("/usr/bin/node", &fake_java).unwrap();
    set_mode(&fake_java, 0o755);
    let script = fake_home.path().join("endless.js");
    std::fs::write(&script, ENDLESS_JVM).unwrap();
    let fake_out = fake_home.path().join("endless.out");
    let fake = NobodyProc::start(
        &format!(
            "cd '{}' && exec '{}' '{}' > '{}' 2>&1",
            fake_home.path().display(),
            fake_java.display(),
            script.display(),
            fake_out.display()
        ),
        &["java"],
    );
    wait_for_line(&fake_out, "ready");
    let _planted = RemovedAfter(PathBuf::from(format!("/tmp/.java_pid{}", fake.pid)));
    let pid = fake.pid.to_string();
    let mut child = memwatch(out_dir.path())
        .args([
            "--pid",
            &pid,
            "--runtime",
            "jvm",
            "--duration",
            "6s",
            "--interval",
            "300ms",
        ])
        .args(["-o", "endless"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mw = child.id();
    let mut peak_kib = 0u64;
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        let status = std::fs::read_to_string(format!("/proc/{mw}/status")).unwrap_or_default();
        if let Some(kib) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
        {
            peak_kib = peak_kib.max(kib);
        }
        if peak_kib > 1 << 20 || start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "memwatch reached {} MiB reading an endless answer",
                peak_kib >> 10
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    eprintln!(
        "memwatch's peak RSS reading an endless answer: {} MiB",
        peak_kib >> 10
    );
    assert!(peak_kib < 256 << 10, "{} MiB: {err}", peak_kib >> 10);
    assert!(err.contains("longer than 32 MiB"), "{err}");
    judged(&out);
}

/// Item 13: `-XX:+DisableAttachMechanism` is read from the command line before any SIGQUIT
/// (main sent one: the JVM printed a full thread dump into its own output, and memwatch
/// waited 10 s for a socket that never comes).
#[test]
fn item13_disable_attach_mechanism_is_recognised_before_any_sigquit() {
    need("java");
    let shared = shared_dir();
    let (java, java_out) = root_jvm(shared.path(), &["-XX:+DisableAttachMechanism"]);
    let out_dir = tempfile::tempdir().unwrap();
    let pid = java.pid().to_string();
    let t = Instant::now();
    let out = run(
        out_dir.path(),
        &[
            "--pid",
            &pid,
            "--runtime",
            "jvm",
            "--duration",
            "2s",
            "--interval",
            "100ms",
        ],
        Duration::from_secs(60),
    );
    let took = t.elapsed();
    let err = stderr(&out);
    judged(&out);
    assert!(
        err.contains("-XX:+DisableAttachMechanism (in the command line)"),
        "{err}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let jvm_said = std::fs::read_to_string(&java_out).unwrap();
    assert!(
        !jvm_said.contains("Full thread dump"),
        "SIGQUIT was sent: {jvm_said}"
    );
    assert!(took < Duration::from_secs(8), "{took:?}: {err}");
}

// ---------------------------------------------------------------------------------------
// Output files

/// Item 3: the default folder `memwatch-<pid>-<time>` is predictable. Another user makes it
/// first (for every second of the run) with links to root's files inside; a root memwatch
/// working in that user's folder must make a new folder, not write through the links (main
/// truncated the file behind samples.csv). Two runs on one PID in the same second get a
/// folder each (main shared one: the second overwrote the first's CSV).
#[test]
fn item3_default_output_folder_is_always_new() {
    let target = root_target();
    let pid = target.pid();
    let work = nobody_dir();
    let secrets = [
        Secret::new("samples"),
        Secret::new("summary"),
        Secret::new("chart"),
    ];
    let now = now_unix();
    let mut script = String::new();
    for t in now - 2..now + 30 {
        let d = work.path().join(format!("memwatch-{pid}-{}", stamp(t)));
        script += &format!("mkdir '{}'", d.display());
        for (name, secret) in ["samples.csv", "summary.json", "memory.png"]
            .iter()
            .zip(&secrets)
        {
            script += &format!(
                " && ln -s '{}' '{}'",
                secret.path.display(),
                d.join(name).display()
            );
        }
        script += "\n";
    }
    nobody_does(&script);
    let planted = entries(work.path()).len();
    let pid_s = pid.to_string();
    let out = run(
        work.path(),
        &["--pid", &pid_s, "--duration", "1s", "--interval", "50ms"],
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    judged(&out);
    for s in &secrets {
        s.untouched("the default output folder");
    }
    let mut ours: Vec<String> = entries(work.path())
        .into_iter()
        .filter(|n| n.ends_with("-2"))
        .collect();
    assert_eq!(ours.len(), 1, "{err}");
    assert_eq!(entries(work.path()).len(), planted + 1);
    let folder = work.path().join(ours.remove(0));
    assert_eq!(std::fs::metadata(&folder).unwrap().uid(), 0);
    assert!(read_csv(&folder.join("samples.csv")).len() >= 2);
    assert!(err.contains(&format!(
        "wrote {}",
        folder.file_name().unwrap().to_string_lossy()
    )));

    // Two runs at once, in the same second.
    let work = tempfile::tempdir().unwrap();
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    std::thread::sleep(Duration::from_millis(u64::from(1050 - ms)));
    let both: Vec<_> = (0..2)
        .map(|_| {
            memwatch(work.path())
                .args(["--pid", &pid_s, "--duration", "1s", "--interval", "50ms"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in both {
        judged(&wait_output(child, Duration::from_secs(60)));
    }
    let mut folders = entries(work.path());
    folders.sort();
    assert_eq!(folders.len(), 2, "{folders:?}");
    assert_eq!(folders[1], format!("{}-2", folders[0]));
    for f in &folders {
        let rows = read_csv(&work.path().join(f).join("samples.csv"));
        assert!((16..=24).contains(&rows.len()), "{f}: {} rows", rows.len());
    }
}

/// Item 4: `summary.json.tmp-<pid>` and `.memwatch-probe-<pid>` were named after memwatch's
/// PID and followed links: another user who plants them for the PIDs to come overwrote or
/// truncated root's files (the probe even in the working directory, when every output is
/// explicit). Temporary names are random and made with O_EXCL; only folders written are
/// probed.
#[test]
fn item4_temp_and_probe_names_are_random_and_only_written_folders_are_probed() {
    let target = root_target();
    let pid = target.pid().to_string();
    let work = nobody_dir(); // memwatch's working directory: nothing is written here
    let out = nobody_dir(); // where the explicit outputs go
    let csv_dir = tempfile::tempdir().unwrap();
    let secrets = [
        Secret::new("probe-cwd"),
        Secret::new("probe-out"),
        Secret::new("json"),
        Secret::new("png"),
    ];
    for _attempt in 0..3 {
        let last: i32 = std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let (from, to) = (last + 50, last + 400);
        let w = work.path().display();
        let o = out.path().display();
        let [s_cwd, s_out, s_json, s_png] = &secrets;
        nobody_does(&format!(
            "p={from}; while [ $p -le {to} ]; do \
               ln -s '{}' '{w}/.memwatch-probe-'$p; \
               ln -s '{}' '{o}/.memwatch-probe-'$p; \
               ln -s '{}' '{o}/s.json.tmp-'$p; \
               ln -s '{}' '{o}/m.png.tmp-'$p; \
               p=$((p+1)); done",
            s_cwd.path.display(),
            s_out.path.display(),
            s_json.path.display(),
            s_png.path.display(),
        ));
        // memwatch's PID comes next (other processes on the machine may take a few first).
        std::fs::write("/proc/sys/kernel/ns_last_pid", (from - 1).to_string()).unwrap();
        let child = memwatch(work.path())
            .args(["--pid", &pid, "--duration", "1s", "--interval", "50ms"])
            .arg("--csv")
            .arg(csv_dir.path().join("a.csv"))
            .arg("--json")
            .arg(out.path().join("s.json"))
            .arg("--png")
            .arg(out.path().join("m.png"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mw = child.id() as i32;
        let result = wait_output(child, Duration::from_secs(60));
        if !(from..=to).contains(&mw) {
            continue; // the PIDs went elsewhere: plant again
        }
        judged(&result);
        for s in &secrets {
            s.untouched("a temporary or probe file");
        }
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.path().join("s.json")).unwrap()).unwrap();
        assert!(json["verdict"].is_string());
        assert!(
            std::fs::symlink_metadata(out.path().join("m.png"))
                .unwrap()
                .is_file()
        );
        // Nothing made or left in the working directory, nor beside the outputs.
        assert_eq!(entries(work.path()).len(), (to - from + 1) as usize);
        assert_eq!(entries(out.path()).len(), 3 * (to - from + 1) as usize + 2);
        return;
    }
    panic!("memwatch never got one of the PIDs planted for");
}

/// Item 5: an `--out` folder another user made, before the run or between the check and the
/// first write, with links inside: refused (main wrote through the links).
#[test]
fn item5_out_folder_made_by_another_user_is_refused() {
    let target = root_target();
    let pid = target.pid().to_string();
    let shared = nobody_dir();
    let secrets = [
        Secret::new("samples"),
        Secret::new("summary"),
        Secret::new("chart"),
    ];
    // The folder, with links to root's files where memwatch writes.
    let plant = |dir: &Path| {
        let mut script = format!("mkdir '{}'", dir.display());
        for (name, secret) in ["samples.csv", "summary.json", "memory.png"]
            .iter()
            .zip(&secrets)
        {
            script += &format!(
                " && ln -s '{}' '{}'",
                secret.path.display(),
                dir.join(name).display()
            );
        }
        nobody_does(&script);
    };
    plant(&shared.path().join("out"));
    let out = run(
        shared.path(),
        &[
            "--pid",
            &pid,
            "--duration",
            "1s",
            "--interval",
            "50ms",
            "-o",
            "out",
        ],
        Duration::from_secs(60),
    );
    let err = stderr(&out);
    for s in &secrets {
        s.untouched("an --out folder made before the run");
    }
    assert_eq!(code(&out), 2, "{err}");
    assert!(err.contains("belongs to uid 65534, another user"), "{err}");

    // Made while memwatch runs: the command memwatch starts stops memwatch at once (as a
    // loaded machine might), the other user makes the folder, then memwatch goes on.
    let work = tempfile::tempdir().unwrap();
    for attempt in 0.. {
        assert!(
            attempt < 5,
            "memwatch made the folder before it could be stopped"
        );
        let race = shared.path().join(format!("race{attempt}"));
        let race_s = race.to_str().unwrap();
        let child = memwatch(work.path())
            .args([
                "run",
                "--duration",
                "2s",
                "--interval",
                "100ms",
                "-o",
                race_s,
                "--",
            ])
            .args(["sh", "-c", "kill -STOP $PPID; exec sleep 30"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mw = child.id();
        wait_for(Duration::from_secs(10), "memwatch stopped", || {
            std::fs::read_to_string(format!("/proc/{mw}/stat"))
                .is_ok_and(|s| s.split_whitespace().nth(2) == Some("T"))
        });
        if race.exists() {
            send_signal(mw as i32, libc::SIGCONT);
            wait_output(child, Duration::from_secs(60));
            continue;
        }
        plant(&race);
        send_signal(mw as i32, libc::SIGCONT);
        let out = wait_output(child, Duration::from_secs(60));
        let err = stderr(&out);
        for s in &secrets {
            s.untouched("an --out folder made during the run");
        }
        assert_eq!(code(&out), 2, "{err}");
        assert!(err.contains("appeared after memwatch checked it"), "{err}");
        break;
    }
}

/// Item 6: a live run never writes over an earlier recording (main did, silently, for `-o`
/// an earlier run and `--json run/samples.csv`); `report` already refused.
#[test]
fn item6_a_live_run_never_overwrites_an_earlier_recording() {
    let target = root_target();
    let pid = target.pid().to_string();
    let work = tempfile::tempdir().unwrap();
    let first = run(
        work.path(),
        &[
            "--pid",
            &pid,
            "--duration",
            "1s",
            "--interval",
            "50ms",
            "-o",
            "run1",
        ],
        Duration::from_secs(60),
    );
    judged(&first);
    let run1 = work.path().join("run1");
    let kept = |name: &str| std::fs::read(run1.join(name)).unwrap();
    let (csv, json, png) = (
        kept("samples.csv"),
        kept("summary.json"),
        kept("memory.png"),
    );
    let again: [&[&str]; 5] = [
        &["-o", "run1"],
        &["--json", "run1/samples.csv"],
        &["--csv", "run1/samples.csv"],
        &["--json", "run1/summary.json"],
        &["--png", "run1/samples.csv"],
    ];
    for extra in again {
        let mut args = vec!["--pid", &pid, "--duration", "1s", "--interval", "50ms"];
        args.extend_from_slice(extra);
        if extra[0] != "-o" {
            args.extend_from_slice(&["-o", "other"]);
        }
        let out = run(work.path(), &args, Duration::from_secs(60));
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{extra:?}: {err}");
        assert!(
            err.contains("never writes over a recording"),
            "{extra:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(kept("samples.csv"), csv, "{extra:?}");
        assert_eq!(kept("summary.json"), json, "{extra:?}");
        assert_eq!(kept("memory.png"), png, "{extra:?}");
        assert!(!work.path().join("other").exists(), "nothing made");
    }
}

/// Item 7: a device or FIFO given as an output stays what it is (main renamed a regular file
/// over `--png /dev/null`); a `>(cmd)` process substitution works (main's `report --json
/// >(wc -c)` hung forever); a FIFO nobody reads is refused at once.
#[test]
fn item7_devices_and_fifos_are_written_in_place() {
    let target = root_target();
    let pid = target.pid().to_string();
    let work = tempfile::tempdir().unwrap();
    // Null devices of our own (the machine's /dev/null is not put at risk by the test).
    let make = |name: &str, how: &[&str]| {
        let path = work.path().join(name);
        let ok = Command::new(how[0]).arg(&path).args(&how[1..]).status();
        assert!(ok.unwrap().success(), "{how:?}");
        path
    };
    let null = make("null", &["mknod", "c", "1", "3"]);
    let null2 = make("null2", &["mknod", "c", "1", "3"]);
    let fifo = make("fifo", &["mkfifo"]);
    let got = work.path().join("got.json");
    let reader = ChildGuard(
        Command::new("cat")
            .arg(&fifo)
            .stdout(std::fs::File::create(&got).unwrap())
            .spawn()
            .unwrap(),
    );
    let out = run(
        work.path(),
        &[
            "--pid",
            &pid,
            "--duration",
            "1s",
            "--interval",
            "50ms",
            "--png",
            "null",
            "--json",
            "fifo",
            "--csv",
            "null2",
        ],
        Duration::from_secs(60),
    );
    judged(&out);
    for dev in [&null, &null2] {
        assert!(
            std::fs::symlink_metadata(dev)
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let mut reader = reader;
    wait_for(Duration::from_secs(10), "the FIFO's reader", || {
        reader.0.try_wait().unwrap().is_some()
    });
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&got).unwrap()).unwrap();
    assert!(v["verdict"].is_string());

    // A FIFO nobody reads: refused at once, not waited on (the other outputs are written).
    let lonely = make("lonely", &["mkfifo"]);
    let out = run(
        work.path(),
        &[
            "--pid",
            &pid,
            "--duration",
            "1s",
            "--interval",
            "50ms",
            "--json",
            "lonely",
            "-o",
            "r",
        ],
        Duration::from_secs(30),
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(err.contains("no process reads this FIFO"), "{err}");
    assert!(
        std::fs::symlink_metadata(&lonely)
            .unwrap()
            .file_type()
            .is_fifo()
    );

    // `report --json >(wc -c)`.
    let rec = work.path().join("rec.csv");
    let mut text = String::from("elapsed_s,rss_bytes\n");
    for i in 0..60 {
        text += &format!("{i}.000,{}\n", 50_000_000 + 40_000 * i);
    }
    std::fs::write(&rec, text).unwrap();
    let bin = memwatch_bin();
    let child = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{}' report rec.csv --png rec.png --json >(wc -c > count); rc=$?; sleep 0.5; exit $rc",
            bin.display()
        ))
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(30));
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "growing: {err}");
    let count: usize = std::fs::read_to_string(work.path().join("count"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(count > 100, "{count} bytes of summary");
}

/// Item 12: a full disk under the CSV. The CSV stops with one line that says so and ends on
/// a whole row; sampling and judging go on from memory; the summary and chart (on another
/// disk) are written and the verdict printed; the exit code is 2. (Main stopped the run with
/// exit 2 after 0.2 s: no verdict, no summary, no chart, and half a row at the end.)
#[test]
fn item12_a_full_disk_under_the_csv_keeps_the_run() {
    let disk = SmallDisk::new(16);
    std::fs::write(disk.0.path().join("filler"), vec![b'x'; 8 << 10]).unwrap();
    let work = tempfile::tempdir().unwrap();
    let csv = disk.0.path().join("samples.csv");
    let out = run_fixture(
        work.path(),
        &[
            "run",
            "--interval",
            "10ms",
            "--duration",
            "4s",
            "--csv",
            csv.to_str().unwrap(),
            "--json",
            "summary.json",
            "--png",
            "memory.png",
        ],
        &["steady"],
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert_eq!(
        err.matches("cannot write the samples CSV").count(),
        1,
        "one line: {err}"
    );
    assert!(err.contains("No space left on device"), "{err}");
    assert!(
        err.contains("memwatch: stable") || err.contains("memwatch: inconclusive"),
        "the verdict: {err}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["exit_code"], 2);
    assert!(work.path().join("memory.png").metadata().unwrap().len() > 1000);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(text.ends_with('\n'), "a whole row at the end");
    let width = text.lines().next().unwrap().split(',').count();
    assert!(text.lines().all(|l| l.split(',').count() == width));
    let rows = text.lines().count() - 1;
    let samples = summary["samples"].as_u64().unwrap() as usize;
    assert!(rows >= 20, "{rows}");
    assert!(
        samples > rows * 3 / 2,
        "judged from memory: {samples} samples, {rows} rows in the CSV"
    );
}

// ---------------------------------------------------------------------------------------
// Clear causes (item 13)

/// A nobody memwatch asking a root Node process's runtime: its ns/net is closed to nobody,
/// which is not "PID N has exited" (what main said).
#[test]
fn item13_permission_denied_on_ns_net_is_not_exited() {
    need("node");
    let node = ChildGuard(
        Command::new("node")
            .args(["-e", "setInterval(() => {}, 1000)"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let home = nobody_dir();
    let bin = memwatch_for_nobody(home.path());
    let out = as_nobody(&format!(
        "cd '{}' && '{}' --pid {} --runtime node --duration 2s --interval 100ms -o out",
        home.path().display(),
        bin.display(),
        node.pid()
    ))
    .output()
    .unwrap();
    let err = stderr(&out);
    judged(&out);
    assert!(!err.contains("has exited"), "{err}");
    assert!(
        err.contains(&format!("may not read /proc/{}/ns/net", node.pid())),
        "{err}"
    );
}

/// Every output explicit: the working directory (root's, not writable by nobody) is not
/// used, so it does not matter (main refused: "cannot write '.'").
#[test]
fn item13_an_unwritable_working_directory_does_not_matter_when_every_output_is_explicit() {
    let target = root_target();
    let home = nobody_dir();
    let bin = memwatch_for_nobody(home.path());
    let cwd = shared_dir(); // root's, 0755
    let h = home.path().display();
    let out = as_nobody(&format!(
        "cd '{}' && '{}' --pid {} --duration 1s --interval 50ms --csv '{h}/a.csv' --json '{h}/s.json' --png '{h}/m.png'",
        cwd.path().display(),
        bin.display(),
        target.pid()
    ))
    .output()
    .unwrap();
    judged(&out);
    for f in ["a.csv", "s.json", "m.png"] {
        assert!(home.path().join(f).exists(), "{f}");
    }
    assert!(entries(cwd.path()).is_empty());
}

/// A "Node" that catches SIGUSR1 and never opens its inspector: while memwatch waits for
/// it (10 s), it reads /proc/PID/net/tcp less and less often (main read it every 20 ms,
/// 2.4 ms of CPU a read on a busy machine).
#[test]
fn item13_a_failed_sigusr1_attach_does_not_poll_every_20ms() {
    let dir = shared_dir();
    let fake = dir.path().join("node");
    std::fs::copy("/usr/bin/python3", &fake).unwrap();
    set_mode(&fake, 0o755);
    let script = "import signal, sys, time\n\
                  signal.signal(signal.SIGUSR1, lambda *a: None)\n\
                  print('ready', flush=True)\n\
                  time.sleep(120)\n";
    let mut child = Command::new(&fake)
        .args(["-c", script])
        .env("PYTHONHOME", "/usr")
        // A free port when it opens (9229 may be another test's): memwatch signals anyway.
        .env("NODE_OPTIONS", "--inspect-port=127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    let fake_node = ChildGuard(child);
    let pid = fake_node.pid().to_string();
    let work = tempfile::tempdir().unwrap();
    let child = memwatch(work.path())
        .args([
            "--pid",
            &pid,
            "--runtime",
            "node",
            "--duration",
            "12s",
            "--interval",
            "500ms",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mw = child.id();
    // Bytes memwatch read (rchar), and what one look at the listeners reads: net/tcp and
    // tcp6 (their size changes with the machine's sockets: measured as it goes).
    let read_bytes = || -> f64 {
        std::fs::read_to_string(format!("/proc/{mw}/io"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("rchar:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let look = || -> f64 {
        ["tcp", "tcp6"]
            .iter()
            .map(|f| std::fs::read(format!("/proc/{pid}/net/{f}")).map_or(0, |b| b.len()) as f64)
            .sum()
    };
    std::thread::sleep(Duration::from_secs(2));
    let (r0, t0) = (read_bytes(), Instant::now());
    let mut sizes = vec![look()];
    for _ in 0..6 {
        std::thread::sleep(Duration::from_secs(1));
        sizes.push(look());
    }
    let bytes_per_s = (read_bytes() - r0) / t0.elapsed().as_secs_f64();
    let looks_per_s = bytes_per_s / (sizes.iter().sum::<f64>() / sizes.len() as f64);
    let out = wait_output(child, Duration::from_secs(60));
    let err = stderr(&out);
    judged(&out);
    assert!(err.contains("did not open its inspector"), "{err}");
    eprintln!("net/tcp read {looks_per_s:.1} times a second while waiting for SIGUSR1");
    // Every 20 ms is up to 50 a second (8-18 measured on main's debug build: each look
    // takes 30-100 ms on a loaded machine); backing off to 320 ms is at most ~3 a second,
    // plus the sampler's own reads. Less than one look per 200 ms passes.
    assert!(
        looks_per_s < 5.0,
        "net/tcp read {looks_per_s:.1} times a second while waiting: {err}"
    );
}
