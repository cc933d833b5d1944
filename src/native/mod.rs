//! Where native memory grows from: the user-space call stacks that fault in the target's
//! new resident pages (`--native`, docs/native.md).
//!
//! A page-fault software event (`perf_event_open`) on every thread of the target, threads
//! started later included, samples faults with the user registers and a copy of the user
//! stack; a reader thread unwinds each stack at once (`.eh_frame` through framehop, frame
//! pointers where there is no unwind information) and keeps the page and the stack. At the
//! end, pages the target no longer holds are dropped (`/proc/PID/pagemap`), the rest is
//! summed per stack inside the analysed window, and the stacks are symbolized (symbol
//! tables, a JIT's `/tmp/perf-PID.map`) and demangled.
//!
//! The API the run drives: [`NativeWatch::start`], [`NativeWatch::poll`] (cheap, each tick),
//! [`NativeWatch::stop`] (while the target still runs), then [`NativeData::report`] once the
//! analysed window is known.

mod collect;
pub mod flame;
mod modules;
mod perf;
mod record;
pub mod report;

pub use report::{NativeReport, read_folded};

use collect::Collector;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How `--native` samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NativeOptions {
    /// One page fault in this many is sampled (1: every fault).
    pub period: u64,
    /// Bytes of user stack copied per sample.
    pub stack_bytes: u32,
}

impl Default for NativeOptions {
    fn default() -> Self {
        NativeOptions {
            period: 1,
            stack_bytes: DEFAULT_STACK_BYTES,
        }
    }
}

/// 16 KiB of stack: deep enough for Node's native frames under a few JS frames; the kernel
/// copies only the part of it in use.
pub const DEFAULT_STACK_BYTES: u32 = 16 * 1024;
/// The buffers of all CPUs together: 16 MiB (each CPU a power of two of pages, 256 KiB to
/// 8 MiB). A sample is the size of the stack copy (16 KiB), so an 8 MiB buffer holds ~500 of
/// them; the reader is woken when half of one is full. A burst of faults faster than that
/// (a large memcpy into new memory) loses samples: they are counted.
const RING_BUDGET_PAGES: usize = 4096;
/// How often the reader looks for threads it has no event on (only threads that started
/// between the listing of threads and the opening of their parent's event can be missing).
const THREAD_SCAN_EVERY: Duration = Duration::from_secs(1);

/// Why `--native` cannot watch: said in one line, and the run goes on without it.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    #[error(
        "--native: perf events are not allowed for this user (kernel.perf_event_paranoid = {paranoid}): \
         run memwatch as root, give it CAP_PERFMON, or lower the sysctl kernel.perf_event_paranoid; \
         the run goes on without native stacks"
    )]
    NotAllowed { paranoid: String },
    #[error(
        "--native: this kernel or container has no perf events ({source}): allow the \
         perf_event_open system call (a container's seccomp profile may block it); the run \
         goes on without native stacks"
    )]
    NoPerfEvents { source: io::Error },
    #[error("--native: PID {pid} exited before its page faults could be watched")]
    Gone { pid: i32 },
    #[error("--native: native stacks are only unwound on x86-64; the run goes on without them")]
    Unsupported,
    #[error("--native: cannot watch PID {pid}: {source}; the run goes on without native stacks")]
    Io { pid: i32, source: io::Error },
}

/// Counters the reader updates as it goes, for the live view.
#[derive(Default)]
struct Progress {
    samples: AtomicU64,
    lost: AtomicU64,
}

/// Page faults of one process being sampled.
pub struct NativeWatch {
    pid: i32,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
    reader: Option<JoinHandle<Reader>>,
    period: u64,
}

impl NativeWatch {
    /// Opens the events on every thread of `pid` and starts the reader thread.
    pub fn start(pid: i32, options: &NativeOptions) -> Result<NativeWatch, NativeError> {
        if !cfg!(target_arch = "x86_64") {
            return Err(NativeError::Unsupported);
        }
        raise_fd_limit();
        let spec = perf::EventSpec {
            period: options.period.max(1),
            stack_bytes: options.stack_bytes.clamp(512, 65_528),
        };
        let mut reader = Reader {
            pid,
            spec,
            rings: Vec::new(),
            events: HashMap::new(),
            collector: Collector::new(pid),
            pagemap: File::open(format!("/proc/{pid}/pagemap")).ok(),
        };
        // One buffer per online CPU, owned by an event on the target's main thread.
        let cpus = perf::online_cpus();
        let pages = (RING_BUDGET_PAGES / cpus.len().max(1)).clamp(64, 2048);
        let pages = 1usize << (usize::BITS - 1 - pages.leading_zeros());
        for cpu in cpus {
            let fd = perf::open_event(pid, cpu, spec, true).map_err(|e| open_error(pid, e))?;
            reader.rings.push((cpu, map_ring(fd, pages, pid)?));
        }
        // The modules before the threads' events: a sample may name any of them.
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .map_err(|source| NativeError::Io { pid, source })?;
        reader.collector.add_mappings(&modules::parse_maps(&maps));
        reader.scan_threads();
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress::default());
        let thread = {
            let (stop, progress) = (stop.clone(), progress.clone());
            std::thread::Builder::new()
                .name("memwatch-native".into())
                .spawn(move || reader.run(&stop, &progress))
                .map_err(|source| NativeError::Io { pid, source })?
        };
        Ok(NativeWatch {
            pid,
            stop,
            progress,
            reader: Some(thread),
            period: spec.period,
        })
    }

    /// Samples read so far and samples the kernel dropped; never blocks.
    pub fn poll(&self) -> (u64, u64) {
        (
            self.progress.samples.load(Ordering::Relaxed),
            self.progress.lost.load(Ordering::Relaxed),
        )
    }

    /// Stops sampling, reads what is left in the buffers and keeps only the pages the target
    /// still holds: call it while the target still runs.
    pub fn stop(mut self) -> NativeData {
        self.stop.store(true, Ordering::Relaxed);
        let reader = self.reader.take().map(JoinHandle::join);
        match reader {
            Some(Ok(r)) => r.finish(self.period),
            _ => NativeData {
                pid: self.pid,
                collector: Collector::new(self.pid),
                faults_seen: None,
                period: self.period,
                problem: Some("the native reader thread failed".into()),
            },
        }
    }
}

impl Drop for NativeWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.reader.take() {
            let _ = t.join();
        }
    }
}

/// Maps a buffer of `pages`, or smaller ones down to 16 pages when locked memory is short
/// (a user with CAP_PERFMON is held to kernel.perf_event_mlock_kb).
fn map_ring(fd: OwnedFd, pages: usize, pid: i32) -> Result<perf::RingBuffer, NativeError> {
    let mut pages = pages;
    loop {
        match perf::RingBuffer::map(&fd, pages) {
            Ok(ring) => return Ok(ring.owning(fd)),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) && pages > 16 => pages /= 2,
            Err(source) => return Err(NativeError::Io { pid, source }),
        }
    }
}

fn open_error(pid: i32, e: io::Error) -> NativeError {
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => NativeError::NotAllowed {
            paranoid: std::fs::read_to_string("/proc/sys/kernel/perf_event_paranoid")
                .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
        },
        Some(libc::ESRCH) => NativeError::Gone { pid },
        Some(libc::ENOSYS | libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV) => {
            NativeError::NoPerfEvents { source: e }
        }
        _ => NativeError::Io { pid, source: e },
    }
}

/// Each thread has one event per CPU: with hundreds of threads and CPUs, more descriptors
/// than the usual soft limit of 1024.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: get and set the calling process's own limit with a valid struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// The reader thread's state.
struct Reader {
    pid: i32,
    spec: perf::EventSpec,
    rings: Vec<(i32, perf::RingBuffer)>,
    /// The events opened directly on a thread (one per CPU), by thread id.
    events: HashMap<u32, Vec<OwnedFd>>,
    collector: Collector,
    pagemap: Option<File>,
}

impl Reader {
    fn run(mut self, stop: &AtomicBool, progress: &Progress) -> Reader {
        let mut next_scan = Instant::now() + THREAD_SCAN_EVERY;
        let mut pollfds: Vec<libc::pollfd> = self
            .rings
            .iter()
            .map(|(_, r)| libc::pollfd {
                fd: r.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        loop {
            // SAFETY: a valid array of pollfd of the length given.
            unsafe {
                libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, 100);
            }
            // A buffer whose thread has exited says so (POLLHUP) at every poll from then on:
            // it is left to the timer, or the loop would spin.
            for p in &mut pollfds {
                if p.revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                    p.fd = -1;
                }
            }
            self.drain();
            progress
                .samples
                .store(self.collector.counts.samples, Ordering::Relaxed);
            progress
                .lost
                .store(self.collector.counts.lost, Ordering::Relaxed);
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if Instant::now() >= next_scan {
                self.scan_threads();
                next_scan = Instant::now() + THREAD_SCAN_EVERY;
            }
            self.collector.compact(self.pagemap.as_ref(), false);
        }
        self
    }

    fn drain(&mut self) {
        let collector = &mut self.collector;
        for (_, ring) in &mut self.rings {
            ring.drain(|kind, _misc, body| collector.record(kind, body));
        }
        // Threads that ended: their own events go (inherited ones go with the thread).
        for tid in std::mem::take(&mut collector.exited) {
            self.events.remove(&tid);
            collector.forked.remove(&tid);
        }
    }

    /// Opens events on the threads of the target that have none: all of them at the start;
    /// later, only a thread that started in the moment between the first listing and the
    /// opening of its parent's events (the others inherited one, and said so with a FORK
    /// record).
    fn scan_threads(&mut self) {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return;
        };
        let tids: Vec<u32> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        self.drain(); // FORK records of threads that started since the last drain
        let mut opened = Vec::new();
        for tid in tids {
            if self.events.contains_key(&tid) || self.collector.forked.contains(&tid) {
                continue;
            }
            let mut fds = Vec::new();
            for (cpu, ring) in &self.rings {
                let fd = if tid == self.pid as u32 {
                    None // the buffers' own events are on the main thread
                } else {
                    perf::open_event(tid as i32, *cpu, self.spec, true).ok()
                };
                if let Some(fd) = fd {
                    if perf::set_output(&fd, &ring.fd).is_ok() {
                        fds.push(fd);
                    }
                }
            }
            self.events.insert(tid, fds);
            opened.push(tid);
        }
        // A thread started while its parent's events were being opened has an inherited
        // event as well: its own goes, or its faults would count twice.
        self.drain();
        for tid in opened {
            if self.collector.forked.contains(&tid) && tid != self.pid as u32 {
                self.events.remove(&tid);
            }
        }
    }

    fn finish(mut self, period: u64) -> NativeData {
        for (_, ring) in &self.rings {
            let _ = perf::disable(&ring.fd);
        }
        for fds in self.events.values() {
            for fd in fds {
                let _ = perf::disable(fd);
            }
        }
        self.drain();
        let mut seen = 0u64;
        let mut counted = false;
        for fd in self
            .rings
            .iter()
            .map(|(_, r)| &r.fd)
            .chain(self.events.values().flatten())
        {
            if let Ok(n) = perf::read_count(fd) {
                seen += n;
                counted = true;
            }
        }
        self.collector.compact(self.pagemap.as_ref(), true);
        NativeData {
            pid: self.pid,
            collector: self.collector,
            faults_seen: counted.then_some(seen),
            period,
            problem: None,
        }
    }
}

/// What a run's `--native` came to: what was sampled, or why nothing was; `origin` is the
/// run's first sample (its clock is the window's).
pub struct NativeRun {
    pub data: Option<NativeData>,
    pub problem: Option<String>,
    pub origin: Instant,
}

/// What was sampled, until the analysed window is known.
pub struct NativeData {
    pid: i32,
    collector: Collector,
    /// Every page fault the events counted (sampled or not).
    faults_seen: Option<u64>,
    period: u64,
    problem: Option<String>,
}

/// The analysed window on the run's clock: seconds since `origin`, with the periods left out
/// (heap dumps being written).
#[derive(Clone, Debug)]
pub struct Window {
    pub origin: Instant,
    pub start_s: f64,
    pub end_s: f64,
    pub excluded: Vec<(f64, f64)>,
}

impl NativeData {
    /// Sums the pages faulted in `window` per stack, symbolized; `rss_growth` is the growth
    /// of RSS over the same window, to say which share of it the stacks explain.
    pub fn report(&self, window: &Window, rss_growth: Option<f64>) -> NativeReport {
        let origin_ns = mono_ns_at(window.origin);
        let to_ns = |s: f64| origin_ns.saturating_add_signed((s * 1e9) as i64);
        let range = (to_ns(window.start_s), to_ns(window.end_s));
        let excluded: Vec<(u64, u64)> = window
            .excluded
            .iter()
            .map(|&(a, b)| (to_ns(a), to_ns(b)))
            .collect();
        let inside = |t: u64| {
            t >= range.0 && t <= range.1 && !excluded.iter().any(|&(a, b)| t >= a && t < b)
        };
        report::build(
            self.pid,
            &self.collector,
            inside,
            report::Totals {
                faults_seen: self.faults_seen,
                period: self.period,
                rss_growth,
                problem: self.problem.clone(),
            },
        )
    }
}

/// CLOCK_MONOTONIC (the clock of the samples) at `at`, ns.
fn mono_ns_at(at: Instant) -> u64 {
    let now = Instant::now();
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: fills a valid timespec.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    let now_ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    match now.checked_duration_since(at) {
        Some(ago) => now_ns.saturating_sub(ago.as_nanos() as u64),
        None => now_ns + at.duration_since(now).as_nanos() as u64,
    }
}
