//! What a sample costs, against the physical limit, all in one run on one idle target
//! (`sleep`), so the numbers compare (they go into closing notes):
//!
//!  1. CPU per sample in steady state at 1 kHz: (a) a minimal C loop (benches/minimal_loop.c,
//!     built here with `cc`: per tick one absolute `clock_nanosleep`, one pread of
//!     /proc/PID/status into 16 KiB, one `write` of a CSV row), (b) the memwatch binary at
//!     `--interval 1ms`. CPU from /proc/PID/task/*/schedstat and samples from each one's CSV,
//!     both read 1 s after the start and 1 s before the end, so start-up and the end (chart,
//!     summary) are left out. The C loop and memwatch run at the same time on the same core
//!     (the machine may be shared: both see the same load), in rounds that start both afresh
//!     (each start gives their timers a new phase); the median of the pairs' ratios is the
//!     result. Run with the C loop against itself, this method gives ratios within +-8% per
//!     round and a median within ~3% of 1 here: differences below that are noise.
//!     Target: memwatch at most 1.10x the C loop.
//!  2. Where memwatch's time per sample goes: its own functions timed in this process (thread
//!     CPU time): the read (one pread), the parse, the CSV row (formatting alone, and with its
//!     write), the wait (the wake-up, at 1 kHz: memwatch's `wait_until`, and a bare
//!     `clock_nanosleep` for comparison).
//!  3. memwatch's own RSS while it samples at 100 Hz (VmRSS, VmHWM, RssAnon, RssFile from its
//!     /proc status at several times; it is flat after the first second). Target: at most
//!     4 MiB. Most of it is file-backed code (memwatch's and libc's), counted in 64 KiB
//!     fault-around blocks, so it moves by ~0.1-0.2 MiB with what the page cache holds.
//!
//! Run: `cargo bench --bench sampler` (about 75 s). `MEMWATCH_BENCH_QUICK=1` shortens
//! it; `MEMWATCH_BENCH_BASELINE=/path/to/another/memwatch` measures that binary too, in the
//! same runs (before/after comparisons).
#![allow(clippy::unwrap_used)]

use memwatch::interrupt::{Interrupts, wait_until};
use memwatch::report::csv::CsvWriter;
use memwatch::sample::{ProcReader, Sample, status};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Steady-state window of each end-to-end run: from `SKIP` after the start, for `WINDOW`.
const SKIP: Duration = Duration::from_secs(1);

fn main() {
    let quick = std::env::var_os("MEMWATCH_BENCH_QUICK").is_some();
    let baseline = std::env::var_os("MEMWATCH_BENCH_BASELINE").map(PathBuf::from);
    let window = Duration::from_secs(if quick { 3 } else { 4 });
    let rounds = if quick { 2 } else { 10 };
    let c_loop = build_c_loop();
    let mut target = Command::new("sleep").arg("100000").spawn().unwrap();
    let pid = target.id() as i32;
    println!(
        "target: idle `sleep` (PID {pid}); 1 kHz, steady state {} s per run, {rounds} rounds of pairs",
        window.as_secs()
    );

    // 1. End to end.
    let mut contenders: Vec<(String, Contender)> = vec![
        ("C loop".into(), Contender::CLoop(c_loop)),
        (
            "memwatch".into(),
            Contender::Memwatch(PathBuf::from(env!("CARGO_BIN_EXE_memwatch"))),
        ),
    ];
    if let Some(path) = &baseline {
        contenders.push(("baseline".into(), Contender::Memwatch(path.clone())));
    }
    // Pairs: the C loop and one memwatch at the same time on the same core (the other core
    // next round), so both see the same load.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut us: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
    // All rounds pooled: (CPU ns, samples) of the C loop beside contender k, and of k.
    let mut pooled = vec![[(0u64, 0u64); 2]; contenders.len()];
    for round in 0..rounds {
        for k in 1..contenders.len() {
            let core = (cpus >= 2).then_some(round % 2);
            let pair = [(&contenders[0].1, core), (&contenders[k].1, core)];
            let costs = steady_costs(&pair, pid, "1ms", window);
            for (j, &(ns, n)) in costs.iter().enumerate() {
                pooled[k][j].0 += ns;
                pooled[k][j].1 += n;
            }
            let [c, m] = [costs[0], costs[1]].map(|(ns, n)| ns as f64 / 1e3 / n as f64);
            us[0].push(c);
            us[k].push(m);
            ratios[k].push(m / c);
        }
    }
    let list = |v: &[f64], digits: usize| -> String {
        v.iter()
            .map(|x| format!("{x:.digits$}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (i, (name, _)) in contenders.iter().enumerate() {
        println!(
            "1. {name:9} {:6.1} us CPU/sample (median; runs {}){}",
            median(&us[i]),
            list(&us[i], 1),
            if i == 0 {
                String::new()
            } else {
                let per_sample = |(ns, n): (u64, u64)| ns as f64 / n as f64;
                format!(
                    "\n   {:.2}x the C loop (target <= 1.10x): median of the pairs' ratios {}; all rounds pooled {:.2}x",
                    median(&ratios[i]),
                    list(&ratios[i], 2),
                    per_sample(pooled[i][1]) / per_sample(pooled[i][0])
                )
            }
        );
    }

    // 2. Parts.
    let mut reader = ProcReader::open(Path::new("/proc"), pid, false).unwrap();
    let n = if quick { 20_000 } else { 100_000 };
    let read_us = per_call_us(n, || {
        std::hint::black_box(reader.read_status_text().unwrap());
    });
    let text = reader.read_status_text().unwrap().to_vec();
    let parse_us = per_call_us(n * 10, || {
        std::hint::black_box(status::parse(std::hint::black_box(&text)).unwrap());
    });
    let mem = status::parse(&text).unwrap();
    let sample = Sample {
        elapsed_s: 12.345,
        unix_ms: 1_700_000_000_123,
        pid,
        mem,
        pss: None,
        uss: None,
        heap: Default::default(),
    };
    let mut sink = CsvWriter::new(std::io::sink(), false).unwrap();
    let format_us = per_call_us(n * 10, || sink.write(&sample, &[]).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::create(dir.path().join("rows.csv")).unwrap();
    let mut csv = CsvWriter::new(file, false).unwrap();
    let row_us = per_call_us(n, || csv.write(&sample, &[]).unwrap());
    // The three waits in turns of 200 ticks, so a change in the machine's load hits all three.
    let turns = if quick { 4 } else { 10 };
    let [wait_us, sleep_us, ppoll_us] = std::thread::spawn(move || {
        // Interrupts::install catches SIGINT, SIGTERM and SIGHUP for the whole bench until
        // the default actions are restored below.
        let interrupts = Interrupts::install().unwrap();
        let pidfd = target_pidfd(pid);
        let (pipe_read, _pipe_write) = pipe();
        let tick = Duration::from_millis(1);
        let mut sums = [0.0; 3];
        for _ in 0..turns {
            // memwatch's wait
            let mut deadline = Instant::now();
            sums[0] += per_call_us(200, || {
                deadline += tick;
                wait_until(deadline, &interrupts, pidfd.as_fd()).unwrap();
            });
            // a bare absolute clock_nanosleep, as the C loop
            let mut next = now_monotonic();
            sums[1] += per_call_us(200, || {
                next = add_ns(next, 1_000_000);
                // SAFETY: a valid timespec; absolute deadline on the monotonic clock.
                unsafe {
                    libc::clock_nanosleep(
                        libc::CLOCK_MONOTONIC,
                        libc::TIMER_ABSTIME,
                        &next,
                        std::ptr::null_mut(),
                    )
                };
            });
            // memwatch's wait before: a ppoll on two descriptors (a signalfd then; a pipe
            // costs the same) and the pidfd, timeout to the deadline
            let mut deadline = Instant::now();
            sums[2] += per_call_us(200, || {
                deadline += tick;
                let mut fds = [pipe_read, pidfd.as_raw_fd()].map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
                let left = deadline.saturating_duration_since(Instant::now());
                let ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: left.subsec_nanos() as libc::c_long,
                };
                // SAFETY: valid pollfds and timespec.
                unsafe { libc::ppoll(fds.as_mut_ptr(), 2, &ts, std::ptr::null()) };
            });
        }
        sums.map(|s| s / turns as f64)
    })
    .join()
    .unwrap();
    // Ctrl-C ends the bench again.
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: restoring the default action.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    println!(
        "2. parts, us CPU per call: read (pread of status) {read_us:.2} | parse {parse_us:.2} | CSV row {row_us:.2} (formatting alone {format_us:.2}) | wait at 1 kHz {wait_us:.1} (bare clock_nanosleep {sleep_us:.1}, ppoll on 2 fds {ppoll_us:.1})"
    );
    println!(
        "   sum of parts {:.1} us; the rest of memwatch's tick is its loop (clocks, recording, schedule)",
        read_us + parse_us + row_us + wait_us
    );

    // 3. RSS at 100 Hz.
    let secs = if quick { 6 } else { 12 };
    let mut rss_contenders = vec![("memwatch", PathBuf::from(env!("CARGO_BIN_EXE_memwatch")))];
    if let Some(path) = &baseline {
        rss_contenders.push(("baseline", path.clone()));
    }
    for (name, bin) in rss_contenders {
        let readings = rss_while_sampling(&bin, pid, secs);
        println!("3. {name:9} at 100 Hz: {}", readings.join(" | "));
    }

    target.kill().unwrap();
    target.wait().unwrap();
}

enum Contender {
    CLoop(PathBuf),
    Memwatch(PathBuf),
}

/// Runs all contenders at once at `interval` on `pid` for SKIP + window + 1 s, so they share
/// the machine's conditions; returns for each the CPU (ns) it used and the CSV rows it wrote
/// inside the window.
fn steady_costs(
    contenders: &[(&Contender, Option<usize>)],
    pid: i32,
    interval: &str,
    window: Duration,
) -> Vec<(u64, u64)> {
    let dir = tempfile::tempdir().unwrap();
    let total = SKIP + window + Duration::from_secs(1);
    let start = Instant::now();
    let mut runs: Vec<(Child, PathBuf)> = Vec::new();
    for (i, &(who, cpu)) in contenders.iter().enumerate() {
        let out = dir.path().join(i.to_string());
        std::fs::create_dir(&out).unwrap();
        runs.push(match who {
            Contender::CLoop(bin) => {
                let csv = out.join("loop.csv");
                let ns = humantime::parse_duration(interval).unwrap().as_nanos();
                let child = Command::new(bin)
                    .args([pid.to_string(), ns.to_string(), total.as_secs().to_string()])
                    .arg(&csv)
                    .spawn()
                    .unwrap();
                (child, csv)
            }
            Contender::Memwatch(bin) => {
                let child = memwatch(bin, pid, interval, total, &out);
                (child, out.join("samples.csv"))
            }
        });
        if let Some(cpu) = cpu {
            pin(runs[i].0.id(), cpu);
        }
    }
    std::thread::sleep(SKIP);
    let first: Vec<(u64, u64)> = runs
        .iter()
        .map(|(c, csv)| (cpu_ns(c.id()), rows(csv)))
        .collect();
    std::thread::sleep((start + SKIP + window).saturating_duration_since(Instant::now()));
    let last: Vec<(u64, u64)> = runs
        .iter()
        .map(|(c, csv)| (cpu_ns(c.id()), rows(csv)))
        .collect();
    for (child, _) in &mut runs {
        let status = child.wait().unwrap();
        assert!(status.success(), "{status}");
    }
    first
        .iter()
        .zip(&last)
        .map(|(a, b)| (b.0 - a.0, b.1 - a.1))
        .collect()
}

/// Keeps process `pid` (single-threaded) on one CPU.
fn pin(pid: u32, cpu: usize) {
    // SAFETY: cpu_set_t is plain data, set up by CPU_ZERO/CPU_SET.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        let rc = libc::sched_setaffinity(pid as i32, std::mem::size_of_val(&set), &set);
        assert_eq!(rc, 0, "sched_setaffinity");
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn memwatch(bin: &Path, pid: i32, interval: &str, duration: Duration, out: &Path) -> Child {
    Command::new(bin)
        .args(["--pid", &pid.to_string(), "--interval", interval, "--quiet"])
        .args(["--duration", &format!("{}s", duration.as_secs()), "--out"])
        .arg(out)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// memwatch at 100 Hz for `secs`: its memory figures read from its status at a few times.
fn rss_while_sampling(bin: &Path, pid: i32, secs: u64) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut child = memwatch(bin, pid, "10ms", Duration::from_secs(secs), dir.path());
    let start = Instant::now();
    let mut out = Vec::new();
    for at in [2, secs / 2, secs - 1] {
        std::thread::sleep(Duration::from_secs(at).saturating_sub(start.elapsed()));
        let text = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let kib = |key: &str| -> f64 {
            let line = text.lines().find(|l| l.starts_with(key)).unwrap();
            line[key.len()..]
                .trim()
                .trim_end_matches(" kB")
                .parse()
                .unwrap()
        };
        out.push(format!(
            "{at:2}s: VmRSS {:.2} MiB, VmHWM {:.2} MiB (anon {:.2}, file {:.2})",
            kib("VmRSS:") / 1024.0,
            kib("VmHWM:") / 1024.0,
            kib("RssAnon:") / 1024.0,
            kib("RssFile:") / 1024.0
        ));
    }
    assert!(child.wait().unwrap().success());
    out
}

/// CPU time used so far by all threads of `pid`, from /proc/PID/task/*/schedstat.
fn cpu_ns(pid: u32) -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let stat = std::fs::read_to_string(task.unwrap().path().join("schedstat")).unwrap();
        total += stat
            .split_whitespace()
            .next()
            .unwrap()
            .parse::<u64>()
            .unwrap();
    }
    total
}

/// Rows written so far (the header counts, and cancels out in differences).
fn rows(csv: &Path) -> u64 {
    let bytes = std::fs::read(csv).unwrap_or_default();
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// CPU time of this thread per call of `f`, in microseconds.
fn per_call_us(calls: usize, mut f: impl FnMut()) -> f64 {
    let before = thread_cpu_ns();
    for _ in 0..calls {
        f();
    }
    (thread_cpu_ns() - before) as f64 / 1e3 / calls as f64
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn now_monotonic() -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts
}

fn add_ns(mut ts: libc::timespec, ns: i64) -> libc::timespec {
    ts.tv_nsec += ns;
    while ts.tv_nsec >= 1_000_000_000 {
        ts.tv_nsec -= 1_000_000_000;
        ts.tv_sec += 1;
    }
    ts
}

fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors (left open until the bench ends).
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (fds[0], fds[1])
}

/// A pidfd for `pid`, as memwatch holds for its target.
fn target_pidfd(pid: i32) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open returns a new descriptor we own, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    assert!(fd >= 0, "pidfd_open");
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) }
}

/// Builds benches/minimal_loop.c next to this benchmark's executable (in target/).
fn build_c_loop() -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/minimal_loop.c");
    let exe = std::env::current_exe().unwrap();
    let out = exe.parent().unwrap().join("minimal_loop");
    let status = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap();
    assert!(status.success(), "cc failed on {}", src.display());
    out
}
