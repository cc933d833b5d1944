//! Prometheus: memwatch's figures for a fleet's monitoring. Each tick (at most once a second)
//! the series watched are rendered in the Prometheus text format (0.0.4) and
//!
//! - `--prometheus-textfile PATH`: written whole to PATH for node_exporter's textfile
//!   collector: a temporary file with a random name, created exclusively (never through a
//!   name someone planted) in PATH's folder, then renamed over PATH. No timestamps (the
//!   collector refuses them). The file is removed when the run ends, so a stopped memwatch
//!   leaves no stale series behind.
//! - `--prometheus-listen ADDR`: served over HTTP by `http.rs`, in the text format or in
//!   OpenMetrics when the scraper asks for it.
//!
//! The label set is bounded: a series that ended is no longer written, and with `--all` only
//! the judged-growing units and the top `--prometheus-top` of the ranking are (0: all), with
//! the machine's total and counts beside them.
//!
//! Metrics (labels `pid` and `name` for a process, `group` and `group_by` for a group):
//! `memwatch_rss_bytes`, `memwatch_anon_bytes`, `memwatch_vsz_bytes`,
//! `memwatch_slope_bytes_per_second` (the floor's slope at the last judgement),
//! `memwatch_verdict{verdict="growing|stable|inconclusive"}` (1 for the current one),
//! `memwatch_samples_total`, `memwatch_last_sample_timestamp_seconds`,
//! `memwatch_watched_seconds`; with `--all`: `memwatch_machine_rss_bytes`,
//! `memwatch_machine_anon_bytes`, `memwatch_processes{state}`, `memwatch_exported_series`.

use crate::analyze::Verdict;
use crate::board::Unit;
use crate::judge::{AnalysisConfig, judge};
use crate::sampler::machine::{MachineSink, MachineTick};
use crate::sampler::{SampleSink, Tick};
use std::ffi::CString;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The exposition formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: node_exporter's textfiles, and any Prometheus scrape.
    Text,
    /// `application/openmetrics-text; version=1.0.0`, when a scraper asks for it.
    OpenMetrics,
}

/// Who a series is.
#[derive(Clone, Copy, Debug)]
pub enum Who<'a> {
    Process { pid: i32, name: &'a str },
    Group { by: &'a str, key: &'a str },
}

/// One series' figures at this tick.
#[derive(Clone, Copy, Debug)]
pub struct Row<'a> {
    pub who: Who<'a>,
    pub rss: u64,
    pub anon: Option<u64>,
    pub vsz: u64,
    /// The last judgement's verdict and floor slope (`None` when it had none); `None` until
    /// judged.
    pub judged: Option<(Verdict, Option<f64>)>,
    pub samples: u64,
    pub last_unix_ms: u64,
    pub watched_s: f64,
}

/// The machine's figures, with `--all`.
#[derive(Clone, Copy, Debug, Default)]
pub struct MachineFigures {
    pub rss: u64,
    pub anon: Option<u64>,
    pub watched: usize,
    pub judged: usize,
    pub growing: usize,
    pub reopened: usize,
}

/// Renders `rows` (and the machine's figures) into `out` (cleared first). No timestamps.
pub fn render(
    rows: &[Row<'_>],
    machine: Option<&MachineFigures>,
    format: Format,
    out: &mut Vec<u8>,
) {
    out.clear();
    let gauge = |out: &mut Vec<u8>, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
    };
    let each = |out: &mut Vec<u8>, name: &str, value: &dyn Fn(&Row<'_>) -> Option<f64>| {
        for r in rows {
            if let Some(v) = value(r) {
                out.extend_from_slice(name.as_bytes());
                labels(out, &r.who, None);
                out.push(b' ');
                number(out, v);
                out.push(b'\n');
            }
        }
    };
    gauge(
        out,
        "memwatch_rss_bytes",
        "Resident memory (RSS) of a process, or the sum over a group.",
    );
    each(out, "memwatch_rss_bytes", &|r| Some(r.rss as f64));
    gauge(
        out,
        "memwatch_anon_bytes",
        "Anonymous resident memory (RSS less file-backed and shared).",
    );
    each(out, "memwatch_anon_bytes", &|r| r.anon.map(|a| a as f64));
    gauge(out, "memwatch_vsz_bytes", "Virtual memory size (VSZ).");
    each(out, "memwatch_vsz_bytes", &|r| Some(r.vsz as f64));
    gauge(
        out,
        "memwatch_slope_bytes_per_second",
        "Slope of the memory floor (Theil-Sen over window minima) at the last judgement.",
    );
    each(out, "memwatch_slope_bytes_per_second", &|r| {
        r.judged.and_then(|j| j.1)
    });
    gauge(
        out,
        "memwatch_verdict",
        "memwatch's verdict on the series: 1 for the current one (inconclusive until judged).",
    );
    for r in rows {
        let now = r.judged.map_or(Verdict::Inconclusive, |j| j.0);
        for v in [Verdict::Growing, Verdict::Stable, Verdict::Inconclusive] {
            out.extend_from_slice(b"memwatch_verdict");
            labels(out, &r.who, Some(("verdict", v.as_str())));
            out.extend_from_slice(if v == now { b" 1\n" } else { b" 0\n" });
        }
    }
    let samples = match format {
        Format::Text => "memwatch_samples_total",
        Format::OpenMetrics => "memwatch_samples",
    };
    let _ = writeln!(out, "# HELP {samples} Samples taken of the series.");
    let _ = writeln!(out, "# TYPE {samples} counter");
    each(out, "memwatch_samples_total", &|r| Some(r.samples as f64));
    gauge(
        out,
        "memwatch_last_sample_timestamp_seconds",
        "Unix time of the series' last sample.",
    );
    each(out, "memwatch_last_sample_timestamp_seconds", &|r| {
        Some(r.last_unix_ms as f64 / 1000.0)
    });
    gauge(
        out,
        "memwatch_watched_seconds",
        "How long the series has been watched.",
    );
    each(out, "memwatch_watched_seconds", &|r| Some(r.watched_s));
    if let Some(m) = machine {
        gauge(
            out,
            "memwatch_machine_rss_bytes",
            "Sum of the RSS of every process watched.",
        );
        let _ = writeln!(out, "memwatch_machine_rss_bytes {}", m.rss);
        if let Some(anon) = m.anon {
            gauge(
                out,
                "memwatch_machine_anon_bytes",
                "Sum of the anonymous RSS of every process watched.",
            );
            let _ = writeln!(out, "memwatch_machine_anon_bytes {anon}");
        }
        gauge(
            out,
            "memwatch_processes",
            "Series watched now, judged, judged growing, and processes read by reopening /proc each tick.",
        );
        for (state, n) in [
            ("watched", m.watched),
            ("judged", m.judged),
            ("growing", m.growing),
            ("reopened", m.reopened),
        ] {
            let _ = writeln!(out, "memwatch_processes{{state=\"{state}\"}} {n}");
        }
        gauge(
            out,
            "memwatch_exported_series",
            "Series written here (see --prometheus-top).",
        );
        let _ = writeln!(out, "memwatch_exported_series {}", rows.len());
    }
    if format == Format::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
}

/// `{pid="1",name="x"}` or `{group="php-fpm",group_by="name"}`, with one more label.
fn labels(out: &mut Vec<u8>, who: &Who<'_>, extra: Option<(&str, &str)>) {
    out.push(b'{');
    match who {
        Who::Process { pid, name } => {
            let mut num = itoa::Buffer::new();
            out.extend_from_slice(b"pid=\"");
            out.extend_from_slice(num.format(*pid).as_bytes());
            out.extend_from_slice(b"\",name=\"");
            escape(out, name);
            out.push(b'"');
        }
        Who::Group { by, key } => {
            out.extend_from_slice(b"group=\"");
            escape(out, key);
            out.extend_from_slice(b"\",group_by=\"");
            escape(out, by);
            out.push(b'"');
        }
    }
    if let Some((k, v)) = extra {
        out.push(b',');
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"=\"");
        escape(out, v);
        out.push(b'"');
    }
    out.push(b'}');
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(out: &mut Vec<u8>, value: &str) {
    for &b in value.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

fn number(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let mut num = itoa::Buffer::new();
        out.extend_from_slice(num.format(v as i64).as_bytes());
    } else {
        let _ = write!(out, "{v}");
    }
}

// ---------------------------------------------------------------------------------------
// The plan
// ---------------------------------------------------------------------------------------

/// `--prometheus-textfile`, `--prometheus-listen` and `--prometheus-top`, as configured.
#[derive(Clone, Debug, Default)]
pub struct PrometheusPlan {
    pub textfile: Option<PathBuf>,
    pub listen: Option<std::net::SocketAddr>,
    /// With `--all`: the top N of the ranking exported (0: all).
    pub top: usize,
}

impl PrometheusPlan {
    pub fn is_on(&self) -> bool {
        self.textfile.is_some() || self.listen.is_some()
    }

    /// Checks the textfile before the run (see `check_textfile`), and that it is none of
    /// the run's other output files (`others`: flag and path).
    pub fn check(&self, others: &[(&str, &Path)]) -> Result<(), String> {
        let Some(path) = &self.textfile else {
            return Ok(());
        };
        let mine = crate::report::output::normalize(path);
        for (flag, other) in others {
            if crate::report::output::normalize(other) == mine {
                return Err(format!(
                    "{flag} and --prometheus-textfile are the same file '{}': give each output \
                     its own path",
                    path.display()
                ));
            }
        }
        check_textfile(path)
    }

    /// Binds the listener, if asked (a port in use fails here, before the run starts): the
    /// text it serves, and the address it listens on.
    pub fn start_listener(&self) -> crate::Result<Option<(Shared, std::net::SocketAddr)>> {
        let Some(addr) = self.listen else {
            return Ok(None);
        };
        let shared: Shared = Arc::new(Mutex::new(Snapshot::default()));
        let bound = crate::report::http::start(addr, shared.clone()).map_err(|e| {
            crate::Error::Usage(format!(
                "--prometheus-listen '{addr}': cannot listen there: {e}"
            ))
        })?;
        Ok(Some((shared, bound)))
    }

    /// Opens the textfile, if asked.
    pub fn open_textfile(&self) -> Result<Option<TextFile>, String> {
        self.textfile.as_deref().map(TextFile::open).transpose()
    }
}

// ---------------------------------------------------------------------------------------
// The textfile
// ---------------------------------------------------------------------------------------

/// A textfile for node_exporter, replaced whole each time it is written.
pub struct TextFile {
    path: PathBuf,
    dir: OwnedFd,
    name: CString,
}

/// Checks `--prometheus-textfile PATH` before the run: a `.prom` name (the collector reads
/// nothing else), in an existing folder memwatch can create files in, and nothing there yet
/// but a regular file (memwatch renames over it: never over a folder, a device, a FIFO or a
/// link someone put there).
pub fn check_textfile(path: &Path) -> Result<(), String> {
    TextFile::open(path).map(|_| ())
}

impl TextFile {
    pub fn open(path: &Path) -> Result<TextFile, String> {
        let shown = path.display();
        let file_name = path
            .file_name()
            .filter(|n| n.as_bytes().ends_with(b".prom") && n.len() > 5)
            .ok_or_else(|| {
                format!(
                    "--prometheus-textfile '{shown}': node_exporter's textfile collector reads \
                     only files named *.prom: give e.g. '/var/lib/prometheus/node-exporter/memwatch.prom'"
                )
            })?;
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let c_folder = CString::new(folder.as_os_str().as_bytes())
            .map_err(|_| format!("--prometheus-textfile '{shown}': the path holds a NUL byte"))?;
        // SAFETY: a NUL-terminated path; the descriptor is ours.
        let fd = unsafe {
            libc::open(
                c_folder.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(format!(
                "--prometheus-textfile '{shown}': cannot open the folder '{}': {}",
                folder.display(),
                io::Error::last_os_error()
            ));
        }
        // SAFETY: fd is a fresh, valid descriptor.
        let dir = unsafe { OwnedFd::from_raw_fd(fd) };
        let name = CString::new(file_name.as_bytes())
            .map_err(|_| format!("--prometheus-textfile '{shown}': the name holds a NUL byte"))?;
        let file = TextFile {
            path: path.to_path_buf(),
            dir,
            name,
        };
        if let Some(kind) = file.existing_kind()
            && kind != libc::S_IFREG
        {
            return Err(format!(
                "--prometheus-textfile '{shown}' exists and is not a regular file (memwatch \
                 replaces the file by renaming over it): remove it or give another name"
            ));
        }
        // the only check that holds for root, read-only mounts and full disks: a file made
        // and removed
        let probe = file.create_temporary().map_err(|e| {
            format!("--prometheus-textfile '{shown}': cannot write in its folder: {e}")
        })?;
        file.unlink(&probe.1);
        Ok(file)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file type at the path now (`S_IFREG`, ...), not following a link; `None` if
    /// there is nothing.
    fn existing_kind(&self) -> Option<libc::mode_t> {
        // SAFETY: a zeroed stat is a valid out-parameter; dir and name are valid.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::fstatat(
                self.dir.as_raw_fd(),
                self.name.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        (rc == 0).then_some(st.st_mode & libc::S_IFMT)
    }

    /// A new file with a random name in the folder, created exclusively, not through a link,
    /// readable by everyone (node_exporter runs as its own user).
    fn create_temporary(&self) -> io::Result<(std::fs::File, CString)> {
        for _ in 0..8 {
            let mut random = [0u8; 8];
            // SAFETY: getrandom fills our buffer.
            let n = unsafe { libc::getrandom(random.as_mut_ptr().cast(), random.len(), 0) };
            if n != random.len() as isize {
                return Err(io::Error::last_os_error());
            }
            let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
            let tmp = CString::new(format!(".memwatch-{hex}.tmp"))
                .map_err(|_| io::Error::other("temporary name"))?;
            // SAFETY: dir is a directory descriptor, tmp is NUL-terminated; the descriptor is
            // ours.
            let fd = unsafe {
                libc::openat(
                    self.dir.as_raw_fd(),
                    tmp.as_ptr(),
                    libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    0o644 as libc::c_uint,
                )
            };
            if fd < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::AlreadyExists {
                    continue;
                }
                return Err(e);
            }
            // SAFETY: fd is fresh and ours; fchmod on it sets the mode whatever the umask.
            let file = unsafe { std::fs::File::from_raw_fd(fd) };
            // SAFETY: as above.
            unsafe { libc::fchmod(file.as_raw_fd(), 0o644) };
            return Ok((file, tmp));
        }
        Err(io::Error::other("no free temporary name"))
    }

    fn unlink(&self, name: &CString) {
        // SAFETY: dir and name are valid; removes the entry in that folder only.
        unsafe { libc::unlinkat(self.dir.as_raw_fd(), name.as_ptr(), 0) };
    }

    /// Replaces the file with `bytes`, whole: readers see the old text or the new one.
    pub fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let (mut file, tmp) = self.create_temporary()?;
        let written = file.write_all(bytes).and_then(|()| {
            // SAFETY: dir and both names are valid; the rename stays in the folder.
            let rc = unsafe {
                libc::renameat(
                    self.dir.as_raw_fd(),
                    tmp.as_ptr(),
                    self.dir.as_raw_fd(),
                    self.name.as_ptr(),
                )
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        });
        if written.is_err() {
            self.unlink(&tmp);
        }
        written
    }

    /// Removes the file (the series end with the run), if it is still a regular file.
    pub fn remove(&self) {
        if self.existing_kind() == Some(libc::S_IFREG) {
            self.unlink(&self.name);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The exporter: a consumer of ticks
// ---------------------------------------------------------------------------------------

/// The latest rendering, for the HTTP listener.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub text: Vec<u8>,
    pub openmetrics: Vec<u8>,
}

pub type Shared = Arc<Mutex<Snapshot>>;

/// How often at most the textfile and the served text are renewed.
const EVERY: Duration = Duration::from_secs(1);
/// A single target's verdict is judged again this often.
const JUDGE_EVERY: Duration = Duration::from_secs(5);

/// Writes the textfile and renews what the listener serves.
pub struct Exporter {
    textfile: Option<TextFile>,
    shared: Option<Shared>,
    /// With `--all`: how many of the ranking are written (0: every unit).
    top: usize,
    /// With `--group-by`: `name` or `cgroup`, the `group_by` label.
    group_by: &'static str,
    last: Option<Instant>,
    text: Vec<u8>,
    openmetrics: Vec<u8>,
    /// A single target: who it is, how it is judged, and the last judgement.
    target: Option<(i32, String)>,
    analysis: Option<AnalysisConfig>,
    next_judge: Option<Instant>,
    judged: Option<(Verdict, Option<f64>)>,
    /// The textfile could not be written: said once.
    failed: bool,
}

impl Exporter {
    /// For `--all`: the top `top` of the ranking and every judged grower; `group_by` names
    /// what groups are made of (`name`, `cgroup`).
    pub fn for_machine(
        textfile: Option<TextFile>,
        shared: Option<Shared>,
        top: usize,
        group_by: &'static str,
    ) -> Exporter {
        let mut e = Exporter::new(textfile, shared, top, None, None);
        e.group_by = group_by;
        e
    }

    /// For one target (with `--tree`, the figures are its tree's sum).
    pub fn for_target(
        textfile: Option<TextFile>,
        shared: Option<Shared>,
        pid: i32,
        name: &str,
        analysis: AnalysisConfig,
    ) -> Exporter {
        Exporter::new(
            textfile,
            shared,
            0,
            Some((pid, name.to_string())),
            Some(analysis),
        )
    }

    fn new(
        textfile: Option<TextFile>,
        shared: Option<Shared>,
        top: usize,
        target: Option<(i32, String)>,
        analysis: Option<AnalysisConfig>,
    ) -> Exporter {
        Exporter {
            textfile,
            shared,
            top,
            group_by: "",
            last: None,
            text: Vec::with_capacity(8 * 1024),
            openmetrics: Vec::new(),
            target,
            analysis,
            next_judge: None,
            judged: None,
            failed: false,
        }
    }

    fn due(&mut self, now: Instant) -> bool {
        if self.last.is_some_and(|t| now.duration_since(t) < EVERY) {
            return false;
        }
        self.last = Some(now);
        true
    }

    /// Renders `rows` and hands the text to the textfile and the listener.
    fn publish(&mut self, rows: &[Row<'_>], machine: Option<&MachineFigures>) -> io::Result<()> {
        render(rows, machine, Format::Text, &mut self.text);
        if let Some(shared) = &self.shared {
            render(rows, machine, Format::OpenMetrics, &mut self.openmetrics);
            if let Ok(mut s) = shared.lock() {
                s.text.clear();
                s.text.extend_from_slice(&self.text);
                s.openmetrics.clear();
                s.openmetrics.extend_from_slice(&self.openmetrics);
            }
        }
        if let Some(file) = &self.textfile
            && let Err(e) = file.write(&self.text)
            && !self.failed
        {
            // the samples go on; the file is a courtesy to the monitoring
            self.failed = true;
            eprintln!(
                "memwatch: warning: cannot write --prometheus-textfile '{}': {e}",
                file.path().display()
            );
        }
        Ok(())
    }
}

fn unit_row<'a>(u: &'a Unit, by: &'a str, last_unix_ms: u64) -> Row<'a> {
    Row {
        who: match u.pid() {
            Some(pid) => Who::Process { pid, name: &u.name },
            None => Who::Group { by, key: &u.name },
        },
        rss: u.now.rss,
        anon: u.now.anon,
        vsz: u.now.vsz,
        judged: u.judged.map(|j| (j.verdict, j.slope_bytes_per_s)),
        samples: u.series.samples(),
        last_unix_ms,
        watched_s: u.watched_s(),
    }
}

impl MachineSink for Exporter {
    fn tick(&mut self, tick: &MachineTick<'_>) -> io::Result<()> {
        if !self.due(tick.now) {
            return Ok(());
        }
        let board = tick.board;
        let by = self.group_by;
        let top = if self.top == 0 { usize::MAX } else { self.top };
        let rows: Vec<Row<'_>> = board
            .order()
            .iter()
            .enumerate()
            .filter_map(|(rank, &id)| board.unit(id).map(|u| (rank, u)))
            .filter(|(rank, u)| *rank < top || u.is_growing())
            .map(|(_, u)| unit_row(u, by, tick.unix_ms))
            .collect();
        let machine = MachineFigures {
            rss: tick.total.mem.rss,
            anon: tick.total.mem.anon,
            watched: tick.counts.live,
            judged: tick.counts.judged,
            growing: tick.counts.growing,
            reopened: tick.degraded,
        };
        self.publish(&rows, Some(&machine))
    }

    fn finish(&mut self) {
        if let Some(file) = &self.textfile {
            file.remove();
        }
    }
}

impl SampleSink for Exporter {
    fn tick(&mut self, tick: &Tick<'_>) -> io::Result<()> {
        let Some(sample) = tick.total.or(tick.samples.first()) else {
            return Ok(());
        };
        let due = *self.next_judge.get_or_insert(tick.now + JUDGE_EVERY);
        if tick.now >= due
            && let Some(analysis) = &self.analysis
        {
            let started = Instant::now();
            if let Ok(j) = judge(tick.recording, analysis) {
                self.judged = (j.analysis.verdict != Verdict::Inconclusive)
                    .then_some((j.analysis.verdict, j.analysis.slope_bytes_per_s));
            }
            // slower on long runs, so it never costs more than ~1% of the time
            self.next_judge = Some(tick.now + JUDGE_EVERY.max(started.elapsed() * 100));
        }
        if !self.due(tick.now) {
            return Ok(());
        }
        let Some((pid, name)) = self.target.clone() else {
            return Ok(());
        };
        let row = Row {
            who: Who::Process { pid, name: &name },
            rss: sample.mem.rss,
            anon: sample.mem.anon,
            vsz: sample.mem.vsz,
            judged: self.judged,
            samples: tick.taken,
            last_unix_ms: sample.unix_ms,
            watched_s: sample.elapsed_s,
        };
        self.publish(&[row], None)
    }

    fn finish(&mut self) {
        if let Some(file) = &self.textfile {
            file.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row<'static>> {
        vec![
            Row {
                who: Who::Process {
                    pid: 4242,
                    name: "le\"ak\\y\n",
                },
                rss: 104_857_600,
                anon: Some(52_428_800),
                vsz: 1 << 30,
                judged: Some((Verdict::Growing, Some(1048576.5))),
                samples: 30,
                last_unix_ms: 1_700_000_000_123,
                watched_s: 29.5,
            },
            Row {
                who: Who::Group {
                    by: "name",
                    key: "php-fpm",
                },
                rss: 4096,
                anon: None,
                vsz: 8192,
                judged: None,
                samples: 2,
                last_unix_ms: 1_700_000_000_123,
                watched_s: 1.0,
            },
        ]
    }

    #[test]
    fn the_text_format_parses_and_says_the_verdict() {
        let mut out = Vec::new();
        let machine = MachineFigures {
            rss: 1 << 33,
            anon: Some(1 << 32),
            watched: 300,
            judged: 120,
            growing: 1,
            reopened: 0,
        };
        render(&rows(), Some(&machine), Format::Text, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("a valid text format");
        let value = |name: &str, label: (&str, &str), extra: Option<(&str, &str)>| {
            scrape
                .samples
                .iter()
                .find(|s| {
                    s.metric == name
                        && s.labels.get(label.0) == Some(label.1)
                        && extra.is_none_or(|(k, v)| s.labels.get(k) == Some(v))
                })
                .map(|s| match s.value {
                    prometheus_parse::Value::Gauge(v)
                    | prometheus_parse::Value::Counter(v)
                    | prometheus_parse::Value::Untyped(v) => v,
                    _ => f64::NAN,
                })
        };
        let pid = ("pid", "4242");
        assert_eq!(value("memwatch_rss_bytes", pid, None), Some(104_857_600.0));
        assert_eq!(
            value("memwatch_verdict", pid, Some(("verdict", "growing"))),
            Some(1.0)
        );
        assert_eq!(
            value("memwatch_verdict", pid, Some(("verdict", "stable"))),
            Some(0.0)
        );
        assert_eq!(
            value("memwatch_slope_bytes_per_second", pid, None),
            Some(1048576.5)
        );
        assert_eq!(value("memwatch_samples_total", pid, None), Some(30.0));
        assert_eq!(
            value("memwatch_last_sample_timestamp_seconds", pid, None),
            Some(1_700_000_000.123)
        );
        let group = ("group", "php-fpm");
        assert_eq!(
            value("memwatch_verdict", group, Some(("verdict", "inconclusive"))),
            Some(1.0)
        );
        assert_eq!(
            value("memwatch_anon_bytes", group, None),
            None,
            "unknown is left out"
        );
        assert_eq!(value("memwatch_slope_bytes_per_second", group, None), None);
        assert_eq!(
            value("memwatch_processes", ("state", "watched"), None),
            Some(300.0)
        );
        // the awkward name escaped as the format says (the parser hands it back as written)
        let named = scrape
            .samples
            .iter()
            .find(|s| s.metric == "memwatch_rss_bytes" && s.labels.get("pid") == Some("4242"))
            .expect("row");
        assert_eq!(named.labels.get("name"), Some(r#"le\"ak\\y\n"#));
        // no timestamps: every sample line is `name{labels} value`
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let words = match line.rsplit_once('}') {
                Some((_, value)) => value.split_whitespace().count(),
                None => line.split_whitespace().count() - 1,
            };
            assert_eq!(words, 1, "{line}");
        }
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn openmetrics_names_its_counter_family_and_ends() {
        let mut out = Vec::new();
        render(&rows(), None, Format::OpenMetrics, &mut out);
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.contains("# TYPE memwatch_samples counter\n"));
        assert!(text.contains("memwatch_samples_total{pid=\"4242\""));
        assert!(text.ends_with("# EOF\n"));
        assert!(!text.contains("memwatch_machine_rss_bytes"));
    }

    #[test]
    fn the_textfile_is_replaced_whole_and_removed_at_the_end() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("memwatch.prom");
        let f = TextFile::open(&path).expect("open");
        f.write(b"a 1\n").expect("write");
        f.write(b"a 2\n").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"a 2\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        assert_eq!(
            crate_entries(dir.path()),
            ["memwatch.prom"],
            "no temporary left"
        );
        f.remove();
        assert!(crate_entries(dir.path()).is_empty());
    }

    fn crate_entries(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn bad_textfile_paths_are_refused_before_the_run() {
        let dir = tempfile::tempdir().expect("tmp");
        let e = check_textfile(&dir.path().join("memwatch.txt")).expect_err("not .prom");
        assert!(e.contains("*.prom"), "{e}");
        let e = check_textfile(Path::new("/nonexistent-memwatch/m.prom")).expect_err("no folder");
        assert!(
            e.contains("cannot open the folder '/nonexistent-memwatch'"),
            "{e}"
        );
        let fifo = dir.path().join("fifo.prom");
        let c = CString::new(fifo.as_os_str().as_bytes()).expect("c");
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let e = check_textfile(&fifo).expect_err("a fifo");
        assert!(e.contains("is not a regular file"), "{e}");
        let link = dir.path().join("link.prom");
        std::os::unix::fs::symlink("/etc/passwd", &link).expect("symlink");
        let e = check_textfile(&link).expect_err("a link");
        assert!(e.contains("is not a regular file"), "{e}");
        std::fs::create_dir(dir.path().join("d.prom")).expect("mkdir");
        assert!(check_textfile(&dir.path().join("d.prom")).is_err());
    }
}
