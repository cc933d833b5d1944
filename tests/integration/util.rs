//! Running the built binary and the fixture program, and reading what they wrote.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test: this build, or `MEMWATCH_BIN` (to show that a regression test
/// fails against an older build).
pub fn memwatch_bin() -> PathBuf {
    std::env::var_os("MEMWATCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_memwatch")))
}

/// `memwatch` with its working directory in `cwd`, stdin closed.
pub fn memwatch(cwd: &Path) -> Command {
    let mut cmd = Command::new(memwatch_bin());
    cmd.current_dir(cwd)
        .stdin(Stdio::null())
        .env_remove("NO_COLOR");
    cmd
}

/// `memwatch --pid PID --runtime node` for `duration` (every `interval`, a GC forced every
/// second), in `cwd`: the attach the Node tests make.
pub fn memwatch_node_pid(cwd: &Path, pid: i32, duration: &str, interval: &str) -> Command {
    let mut cmd = memwatch(cwd);
    cmd.args(["--pid", &pid.to_string(), "--runtime", "node"])
        .args([
            "--duration",
            duration,
            "--interval",
            interval,
            "--gc-every",
            "1s",
        ]);
    cmd
}

/// The fixture program, built by `cargo test` from examples/fixture.rs.
pub fn fixture_bin() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_memwatch"));
    let path = bin.parent().unwrap().join("examples").join("fixture");
    assert!(
        path.exists(),
        "{} is missing: run the tests with 'cargo test', which builds examples",
        path.display()
    );
    path
}

/// A child process killed and reaped on drop, so a failing test leaves nothing behind.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the fixture with these arguments, output discarded.
pub fn start_fixture(args: &[&str]) -> ChildGuard {
    let child = Command::new(fixture_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    ChildGuard(child)
}

pub fn is_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map(|s| {
            !s.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
        .unwrap_or(false)
}

pub fn send_signal(pid: i32, sig: i32) {
    assert!(pid > 0);
    // SAFETY: a positive PID of a process this test started.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

/// Waits for a child with a timeout, so a hung memwatch fails the test instead of CI.
pub fn wait_output(mut child: Child, timeout: Duration) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("memwatch did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Rows of a CSV as header -> cell maps.
pub fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_csv(&text)
}

pub fn parse_csv(text: &str) -> Vec<HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            header
                .iter()
                .cloned()
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect()
}

pub fn num(row: &HashMap<String, String>, col: &str) -> f64 {
    row[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col} = '{}' is not a number", row[col]))
}

pub const MIB: f64 = 1024.0 * 1024.0;

/// The files and folders directly in `dir`.
pub fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Starts the fixture with `args` under exactly `pid`, which must be free again (its old
/// owner reaped): PID reuse, forced through /proc/sys/kernel/ns_last_pid (root only). Other
/// tests start processes too, so it tries until the PID comes round.
pub fn start_fixture_with_pid(pid: i32, args: &[&str]) -> ChildGuard {
    // SAFETY: getuid has no preconditions.
    assert_eq!(
        unsafe { libc::getuid() },
        0,
        "forcing PID reuse needs root (CI runs as root)"
    );
    for _ in 0..200 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).unwrap();
        let child = start_fixture(args);
        if child.pid() == pid {
            return child;
        }
    }
    panic!("could not recycle PID {pid} in 200 tries");
}

/// Runs `memwatch ARGS -- fixture FIXTURE_ARGS` in `cwd` to completion.
pub fn run_fixture(cwd: &Path, args: &[&str], fixture_args: &[&str]) -> Output {
    memwatch(cwd)
        .args(args)
        .arg("--")
        .arg(fixture_bin())
        .args(fixture_args)
        .output()
        .unwrap()
}

/// The end-to-end tests with Node.js fail, and say so, without `node`: never pass silently.
pub fn require_node() {
    let ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`node` is not installed: these tests need Node.js (.ci/run installs it from the OS packages)"
    );
}

/// The uid and gid of `nobody`: the other user of the security tests.
pub const NOBODY: u32 = 65534;

/// A shell command run as `nobody` (`su nobody -s /bin/sh -c SCRIPT`): the tests run as root,
/// and this is the other user on the machine.
pub fn as_nobody(script: &str) -> Command {
    // SAFETY: getuid has no preconditions.
    assert_eq!(
        unsafe { libc::getuid() },
        0,
        "the security tests act as root and as nobody (CI runs as root)"
    );
    let mut cmd = Command::new("su");
    cmd.args(["nobody", "-s", "/bin/sh", "-c", script])
        .stdin(Stdio::null());
    cmd
}

/// Runs SCRIPT as nobody to completion and checks it succeeded.
pub fn nobody_does(script: &str) {
    let out = as_nobody(script).output().unwrap();
    assert!(
        out.status.success(),
        "as nobody: {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A temporary folder owned by nobody (mode 0755): the other user's working directory.
pub fn nobody_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    set_mode(dir.path(), 0o755);
    dir
}

/// A temporary folder of root's that everyone may read and enter (0755), for programs nobody
/// runs.
pub fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    set_mode(dir.path(), 0o755);
    dir
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A copy of the binary under test that nobody may run (the build folder may be root's only).
pub fn memwatch_for_nobody(dir: &Path) -> PathBuf {
    let to = dir.join("memwatch");
    std::fs::copy(memwatch_bin(), &to).unwrap();
    set_mode(&to, 0o755);
    to
}

/// Owner uid, mode bits and contents of a file, to show it was not touched.
pub fn file_state(path: &Path) -> (u32, u32, Vec<u8>) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.uid(), m.mode() & 0o7777, std::fs::read(path).unwrap())
}

/// A process started through `su nobody -c '... exec PROGRAM'`: `pid` is the program itself
/// (su's child, once it runs an executable named one of `names`). Killed, with su, on drop.
pub struct NobodyProc {
    su: Child,
    pub pid: i32,
}

impl NobodyProc {
    pub fn start(script: &str, names: &[&str]) -> NobodyProc {
        // Held from the start, so a failed start still kills and reaps su.
        let mut started = NobodyProc {
            su: as_nobody(script).spawn().unwrap(),
            pid: 0,
        };
        let su_pid = started.su.id();
        let start = Instant::now();
        loop {
            let children =
                std::fs::read_to_string(format!("/proc/{su_pid}/task/{su_pid}/children"))
                    .unwrap_or_default();
            if let Some(pid) = children.split_whitespace().next() {
                let pid: i32 = pid.parse().unwrap();
                let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
                let name = exe.file_name().unwrap_or_default().to_string_lossy();
                if names.iter().any(|n| *n == name) {
                    started.pid = pid;
                    return started;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "'{script}' did not start {names:?} as nobody"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for NobodyProc {
    fn drop(&mut self) {
        if self.pid > 0 {
            // SAFETY: a positive PID of a process this test started.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
        }
        let _ = self.su.kill();
        let _ = self.su.wait();
    }
}

/// Waits until `cond` holds, at most `limit`.
pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tmpfs of `kib` KiB, unmounted on drop.
pub struct SmallDisk(pub tempfile::TempDir);

impl SmallDisk {
    pub fn new(kib: u32) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        SmallDisk(dir)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}
