//! Sampler cost, all on one target in one run (numbers go into the closing note):
//!  (a) the limit: a raw pread of /proc/PID/status, file kept open
//!  (b) memwatch's reader: read and parse one sample, in a tight loop
//!  (c) the memwatch binary's CPU time per sample at 1 kHz and at 10 Hz, 10 s each
//!  (d) a `ps -o rss=,vsz=` loop
//!  and the binary's own peak RSS (VmHWM) after 60 s at 100 Hz.
//! Run: cargo bench --bench sampler   (MEMWATCH_BENCH_QUICK=1 shortens (c) and the HWM run)
#![allow(clippy::unwrap_used)]

use memwatch::sample::ProcReader;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let quick = std::env::var_os("MEMWATCH_BENCH_QUICK").is_some();
    let mut target = Command::new("sleep").arg("100000").spawn().unwrap();
    let pid = target.id() as i32;

    // (a)
    let file = File::open(format!("/proc/{pid}/status")).unwrap();
    let mut buf = [0u8; 16 * 1024];
    let n = 200_000;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(file.read_at(&mut buf, 0).unwrap());
    }
    let raw_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;

    // (b)
    let mut reader = ProcReader::open(Path::new("/proc"), pid, false).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(reader.read_status().unwrap());
    }
    let reader_us = start.elapsed().as_secs_f64() * 1e6 / n as f64;

    println!(
        "(a) raw pread of status          {raw_us:8.2} us/read   {:>9.0} reads/s",
        1e6 / raw_us
    );
    println!(
        "(b) memwatch read+parse          {reader_us:8.2} us/sample {:>9.0} samples/s  ({:.2}x (a), target <= 1.5x)",
        1e6 / reader_us,
        reader_us / raw_us
    );

    // (c)
    let secs = if quick { 3 } else { 10 };
    for (label, interval) in [("1 kHz", "1ms"), ("10 Hz", "100ms")] {
        let (cpu, samples, _) = run_memwatch(pid, interval, secs);
        println!(
            "(c) memwatch at {label:6} for {secs}s: {samples} samples, CPU {:.3} s total, {:.1} us/sample (startup and end included), {:.2}% of a core",
            cpu,
            cpu * 1e6 / samples as f64,
            cpu * 100.0 / secs as f64
        );
    }

    // (d)
    let calls = 100;
    let before = children_cpu();
    let start = Instant::now();
    for _ in 0..calls {
        let out = Command::new("ps")
            .args(["-o", "rss=,vsz=", "-p", &pid.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let ps_wall = start.elapsed().as_secs_f64() / calls as f64;
    let ps_cpu = (children_cpu() - before) / calls as f64;
    println!(
        "(d) ps -o rss=,vsz= loop          {:8.0} us CPU/sample, {:.0} us wall  ({:.0}x (b) in CPU)",
        ps_cpu * 1e6,
        ps_wall * 1e6,
        ps_cpu * 1e6 / reader_us
    );

    let hwm_secs = if quick { 5 } else { 60 };
    let (_, samples, maxrss_kib, sampling) = run_memwatch_with_status(pid, "10ms", hwm_secs);
    println!(
        "memwatch at 100 Hz for {hwm_secs}s ({samples} samples): VmHWM while sampling {} (own data RssAnon {}, code and shared libraries RssFile {}); peak over the whole run, chart and summary included (ru_maxrss): {:.2} MiB (target <= 4 MiB)",
        sampling.0,
        sampling.1,
        sampling.2,
        maxrss_kib as f64 / 1024.0
    );

    target.kill().unwrap();
    target.wait().unwrap();
}

/// Like `run_memwatch`, and also reads memwatch's VmHWM, RssAnon and RssFile one second
/// before its end, while it is still sampling.
fn run_memwatch_with_status(
    pid: i32,
    interval: &str,
    secs: u64,
) -> (f64, usize, i64, (String, String, String)) {
    let pattern = format!("memwatch --pid {pid} --interval {interval}");
    let reader = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs.saturating_sub(1)));
        let out = Command::new("pgrep")
            .args(["-n", "-f", &pattern])
            .output()
            .unwrap();
        let me = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let status = std::fs::read_to_string(format!("/proc/{me}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .map_or("?".to_string(), |l| l[name.len()..].trim().to_string())
        };
        (field("VmHWM:"), field("RssAnon:"), field("RssFile:"))
    });
    let (cpu, samples, maxrss) = run_memwatch(pid, interval, secs);
    (cpu, samples, maxrss, reader.join().unwrap())
}

/// Runs the memwatch binary on `pid`; returns (CPU seconds, samples, max RSS KiB).
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives its rusage
fn run_memwatch(pid: i32, interval: &str, secs: u64) -> (f64, usize, i64) {
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_memwatch"))
        .args([
            "--pid",
            &pid.to_string(),
            "--interval",
            interval,
            "--duration",
            &format!("{secs}s"),
            "--quiet",
            "--out",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: rusage is plain data filled by wait4 for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(rc, child.id() as i32);
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
    let csv = std::fs::read_to_string(dir.path().join("samples.csv")).unwrap();
    std::thread::sleep(Duration::from_millis(10));
    (cpu, csv.lines().count() - 1, usage.ru_maxrss)
}

fn children_cpu() -> f64 {
    // SAFETY: rusage is plain data filled by getrusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
