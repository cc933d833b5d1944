//! Reads a recorded run back for `memwatch report`: one [`Recording`] per series.
//!
//! Three formats are accepted, told apart by their content (never by the file name):
//! - memwatch's own `samples.csv`: a header row, then one row per sample. Columns are found by
//!   header name, in any order; unknown columns are ignored; only `elapsed_s` and `rss_bytes`
//!   are required. An empty cell is an unknown value. Sizes are integer bytes, at most 2^53
//!   (what an `f64` holds exactly). The `pid` cell says which series a row belongs to
//!   (see [`crate::series`]): with process trees, one row per process per tick plus a `total`
//!   row; rows are grouped by it, and each series must be in time order on its own.
//!   The file is streamed: only the columns asked for are kept, never the file's text.
//! - psrecord `--log` files: a `# Elapsed time  CPU (%)  Real (MB)  Virtual (MB)` header, then
//!   whitespace-separated rows. "MB" there is MiB. Real -> rss, Virtual -> vsz, USS -> uss.
//! - mprof `.dat` files (memory_profiler): `MEM <MiB> <unix seconds>` lines. `CMDLINE` and
//!   `FUNC` lines are skipped. `CHLD` lines (per-child memory written by `mprof run
//!   --multiprocess`) are skipped with a warning: memwatch reads the MEM lines only, which are the
//!   main process, or the main process plus its children under `mprof run --include-children`.
//!
//! A UTF-8 BOM and CRLF line ends are accepted. A last line that was cut short (no line end and
//! not parseable, as when the recorder was killed mid-write) is skipped with a warning; any other
//! bad line is an error that names the file, the line and the bad value. A recording whose
//! samples all share one time has no time span and cannot be judged: that is an error too.

use crate::recording::{Event, EventKind, Kept, Recording};
use crate::sample::Metric;
use crate::series::{Segment, SeriesKey};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

mod memwatch_csv;
mod tools;

use memwatch_csv::{Source, read_memwatch_csv};
use tools::{read_mprof, read_psrecord};

/// Bytes in the "MB" of psrecord and mprof (both divide by 1024²).
const MIB: f64 = 1_048_576.0;
/// The largest size accepted, in bytes: 2^53, the largest integer below which an `f64` (the
/// analyser's number type) holds every integer exactly. 8 PiB: no process comes near it.
pub const MAX_SIZE_BYTES: f64 = MAX_SIZE_INT as f64;
const MAX_SIZE_INT: u64 = 1 << 53;
/// Longest bad value quoted in full in a message; longer ones are shortened.
const SHOWN_VALUE_MAX_CHARS: usize = 40;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// How much of a file is read to tell its format and the length of its lines.
const HEAD_BYTES: u64 = 64 * 1024;
/// The CSV reader's buffer: large reads, a fixed cost in memory.
const CSV_BUFFER_BYTES: usize = 1 << 20;
/// Series listed by name in a message before "and N more".
const SERIES_NAMED_MAX: usize = 8;

/// Which tool wrote a recorded file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Memwatch,
    Psrecord,
    Mprof,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::Memwatch => "memwatch CSV",
            Format::Psrecord => "psrecord log",
            Format::Mprof => "mprof data",
        })
    }
}

/// What to read from a file.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// The metrics to keep in memory, and how; `None` keeps every metric the file has,
    /// exactly. Every size cell is checked whichever are kept, so whether a file is accepted
    /// never depends on this.
    pub keep: Option<Kept>,
    /// The series to judge; `None`: the `total` series if the file has one, else its only
    /// series (several processes and no total is an error that names them).
    pub judge: Option<SeriesKey>,
}

impl ReadOptions {
    /// Keep only what `kept` names (`report` keeps the judged metric exactly, rss and anon
    /// to draw).
    pub fn keeping(kept: Kept) -> ReadOptions {
        ReadOptions {
            keep: Some(kept),
            judge: None,
        }
    }

    /// What `memwatch report` keeps to judge `metric` and draw the chart: the metric and the
    /// managed heap exactly; to draw (4 bytes a row, not 8), RSS for the figures in words and
    /// anon, which the chart draws beside RSS only.
    pub fn to_judge(metric: Metric) -> ReadOptions {
        let drawn = if metric == Metric::Rss {
            &[Metric::Anon][..]
        } else {
            &[Metric::Rss][..]
        };
        Self::keeping(Kept::new(
            &[metric, Metric::HeapAfterGc, Metric::External],
            drawn,
        ))
    }
}

/// Whether a metric can be analysed from a file, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnState {
    /// The file has no such column.
    Missing,
    /// The column is there, but the judged series has no value in it (PSS without --pss).
    Empty,
    /// The judged series has values in it.
    Present,
}

/// A file read back: the judged series, the others, which format they came from, and warnings
/// for the caller to print (such as a skipped, cut-short last line).
#[derive(Debug)]
pub struct Loaded {
    /// The series to judge (see [`ReadOptions::judge`]). Its `events` are the whole run's:
    /// the events of every row of the file, each (time, event) once.
    pub recording: Recording,
    /// Which series `recording` is; `None` when the file does not say (no `pid` column, every
    /// `pid` cell empty, psrecord, mprof).
    pub key: Option<SeriesKey>,
    /// The file's other series in order of first appearance (a process tree's processes when
    /// `recording` is the total), with their own rows' events. Empty for a one-series file.
    pub others: Vec<(SeriesKey, Recording)>,
    pub format: Format,
    pub warnings: Vec<String>,
    /// The memory limit on the `cgroup` rows (`limit_bytes`), as last recorded.
    pub limit_bytes: Option<f64>,
    /// Per metric: the header has the column / it was kept / some row has a value in it.
    in_header: [bool; Metric::COUNT],
    kept: [bool; Metric::COUNT],
    has_values: [bool; Metric::COUNT],
}

impl Loaded {
    /// Whether `metric` can be analysed: missing from the file, present but empty for the
    /// judged series, or present. For a metric that was not kept, `Present` means some row of
    /// the file has a value in it (read the file again keeping it).
    pub fn column_state(&self, metric: Metric) -> ColumnState {
        let m = metric.index();
        if !self.in_header[m] {
            ColumnState::Missing
        } else if self.recording.line(metric).is_some() || (!self.kept[m] && self.has_values[m]) {
            ColumnState::Present
        } else {
            ColumnState::Empty
        }
    }

    /// Why `metric` cannot be analysed, in words for a message after `--metric pss: `;
    /// `None` when it can.
    pub fn metric_problem(&self, metric: Metric) -> Option<String> {
        let column = metric.column();
        match self.column_state(metric) {
            ColumnState::Present => None,
            ColumnState::Missing => Some(format!("the recording has no '{column}' column")),
            ColumnState::Empty => Some(match (metric, &self.key) {
                // Values on other rows (a tree's processes) but none on the judged series'.
                (_, Some(key)) if self.has_values[metric.index()] => format!(
                    "the '{column}' column has values for other series but none for {key}, \
                     the series judged"
                ),
                (Metric::Pss | Metric::Uss, _) => {
                    format!("the '{column}' column is empty: record with --pss")
                }
                (_, _) => format!(
                    "the '{column}' column is empty{}: the recorder could not read it; \
                     choose another --metric",
                    self.key
                        .as_ref()
                        .map(|k| format!(" for {k}"))
                        .unwrap_or_default()
                ),
            }),
        }
    }

    /// The `cgroup` series, when the file has one.
    pub fn cgroup(&self) -> Option<&Recording> {
        self.series()
            .find(|(key, _)| matches!(key, Some(SeriesKey::Cgroup(_))))
            .map(|(_, rec)| rec)
    }

    /// Every series, the judged one first.
    pub fn series(&self) -> impl Iterator<Item = (Option<&SeriesKey>, &Recording)> {
        std::iter::once((self.key.as_ref(), &self.recording))
            .chain(self.others.iter().map(|(k, r)| (Some(k), r)))
    }

    /// One segment per process series: its PID and its first and last sample's time.
    pub fn segments(&self) -> Vec<Segment> {
        self.series()
            .filter_map(|(key, rec)| match key {
                Some(SeriesKey::Process {
                    pid,
                    start_time_ticks,
                }) => Some(Segment {
                    pid: *pid,
                    start_time_ticks: *start_time_ticks,
                    start_s: rec.time_s.first().copied().unwrap_or(0.0),
                    end_s: rec.time_s.last().copied().unwrap_or(0.0),
                }),
                _ => None,
            })
            .collect()
    }
}

/// Why a recorded file cannot be read: the file, the line (1-based) when there is one, and the
/// problem. Displays as `samples.csv line 7: 'abc' in column rss_bytes is not a number of bytes; ...`.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {problem}", at_line(*.line))]
pub struct InputError {
    pub file: String,
    pub line: Option<u64>,
    pub problem: Problem,
}

fn at_line(line: Option<u64>) -> String {
    line.map(|n| format!(" line {n}")).unwrap_or_default()
}

/// What is wrong with a recorded file. Values are quoted as found (shortened when long).
#[derive(Debug, thiserror::Error)]
pub enum Problem {
    #[error("cannot read the file: {0}; check the path and its permissions")]
    Read(#[source] std::io::Error),
    #[error("the file is empty, so there is nothing to report; check that the run wrote to it")]
    Empty,
    #[error(
        "'{found}' does not start a memwatch CSV (a header naming elapsed_s and rss_bytes), \
         a psrecord --log file or an mprof .dat file; pass a file in one of those formats"
    )]
    UnknownFormat { found: String },
    #[error(
        "no complete sample follows; the run recorded nothing, so record for longer or pass \
         another file"
    )]
    NoSamples,
    #[error("required column '{column}' is missing (found: {found}); {needs}")]
    MissingColumn {
        column: String,
        found: String,
        needs: &'static str,
    },
    #[error("column '{column}' appears twice; delete one of them")]
    DuplicateColumn { column: String },
    #[error("the row has {found} fields but the header has {expected}; fix or delete this row")]
    FieldCount { found: usize, expected: usize },
    #[error("'{value}' in column {column} is not a number of {unit}; fix or delete this row")]
    NotANumber {
        value: String,
        column: String,
        unit: &'static str,
    },
    #[error("'{value}' in column {column} is not a finite number; fix or delete this row")]
    NotFinite { value: String, column: String },
    #[error(
        "'{value}' in column {column} is negative, but a size cannot be below zero; \
         fix or delete this row"
    )]
    Negative { value: String, column: String },
    #[error(
        "'{value}' in column {column} is not a whole number of bytes, but memwatch records \
         sizes in integer bytes; fix or delete this row"
    )]
    NotInteger { value: String, column: String },
    #[error(
        "'{value}' in column {column} is more than 2^53 bytes (8 PiB): no process holds that \
         much, and memwatch cannot count it exactly; fix or delete this row"
    )]
    TooLarge { value: String, column: String },
    #[error(
        "time goes backwards{}: {column} '{value}' is earlier than '{previous}' on line \
         {previous_line}; rows must be in time order (were two runs joined into one file?)",
        series.as_ref().map(|s| format!(" for {s}")).unwrap_or_default()
    )]
    TimeBackwards {
        column: String,
        value: f64,
        previous: f64,
        previous_line: u64,
        /// Named when the file holds several series (each must be in time order).
        series: Option<String>,
    },
    #[error(
        "'{value}' in column pid is neither a process id (a positive integer) nor 'total', so \
         the row belongs to no series; fix or delete this row"
    )]
    BadPid { value: String },
    #[error(
        "the pid cell is {here} here but {there} on line {there_line}; either every row names \
         its series (a process id or 'total') or none does: fix or delete this row"
    )]
    MixedPid {
        here: String,
        there: String,
        there_line: u64,
    },
    #[error(
        "the file holds several processes ({found}) and no 'total' rows, so there is no one \
         series to judge; keep the rows of one process (or add its 'total' rows) and report again"
    )]
    NoSeriesToJudge { found: String },
    #[error("the file has no rows for {wanted} (found: {found}); choose one of those")]
    SeriesNotFound { wanted: String, found: String },
    #[error(
        "all {samples} samples{} share one time ({column} {time}), so the recording has no \
         time span and cannot be judged; check that the recorder wrote its clock column",
        series.as_ref().map(|s| format!(" of {s}")).unwrap_or_default()
    )]
    NoTimeSpan {
        samples: usize,
        column: &'static str,
        time: f64,
        series: Option<String>,
    },
    #[error("{0}; the file is not valid CSV here")]
    Csv(String),
}

/// Reads a recorded run from a file, telling its format from the content; keeps every metric.
pub fn read_recording(path: &Path) -> Result<Loaded, InputError> {
    read_recording_with(path, &ReadOptions::default())
}

/// Reads a recorded run from a file as `options` say. A memwatch CSV is streamed (memory in
/// proportion to the rows times the metrics kept, not to the file); psrecord and mprof files
/// are read whole.
pub fn read_recording_with(path: &Path, options: &ReadOptions) -> Result<Loaded, InputError> {
    let file = path.display().to_string();
    let read_error = |e| InputError {
        file: file.clone(),
        line: None,
        problem: Problem::Read(e),
    };
    let mut f = File::open(path).map_err(read_error)?;
    let meta = f.metadata().map_err(read_error)?;
    if !meta.is_file() {
        // A pipe (`report <(zcat run.csv.gz)`) or a device: it cannot be read twice.
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(read_error)?;
        return parse_recording_with(&bytes, &file, options);
    }
    let size = meta.len();
    let mut head = Vec::new();
    (&mut f)
        .take(HEAD_BYTES)
        .read_to_end(&mut head)
        .map_err(read_error)?;
    let skip = if head.starts_with(UTF8_BOM) {
        UTF8_BOM.len()
    } else {
        0
    };
    let whole_file = |f: &mut File| -> Result<Loaded, InputError> {
        let mut bytes = Vec::new();
        f.seek(SeekFrom::Start(0)).map_err(read_error)?;
        f.read_to_end(&mut bytes).map_err(read_error)?;
        parse_recording_with(&bytes, &file, options)
    };
    match detect(&head[skip..], &file) {
        Ok(Format::Memwatch) => {
            let unterminated = match size.checked_sub(1) {
                Some(last) => {
                    let mut byte = [0u8];
                    f.seek(SeekFrom::Start(last)).map_err(read_error)?;
                    f.read_exact(&mut byte).map_err(read_error)?;
                    !matches!(byte[0], b'\n' | b'\r')
                }
                None => false,
            };
            f.seek(SeekFrom::Start(skip as u64)).map_err(read_error)?;
            let source = Source::File {
                path,
                skip: skip as u64,
            };
            let body = size.saturating_sub(skip as u64);
            let lines = estimate_lines(&head[skip..], body);
            // The file as it was when opened: rows a live run appends meanwhile are left out
            // (as when the file was read whole), so a row cut short at the end is seen as such.
            read_memwatch_csv(f.take(body), &source, unterminated, lines, &file, options)
        }
        // Blank lines beyond the head, or another format: read it all.
        Err(InputError {
            problem: Problem::Empty,
            ..
        }) if size > head.len() as u64 => whole_file(&mut f),
        Err(e) => Err(e),
        Ok(_) => whole_file(&mut f),
    }
}

/// Parses a recorded run held in memory, keeping every metric. `file` names it in errors and
/// warnings.
pub fn parse_recording(bytes: &[u8], file: &str) -> Result<Loaded, InputError> {
    parse_recording_with(bytes, file, &ReadOptions::default())
}

/// Parses a recorded run held in memory as `options` say.
pub fn parse_recording_with(
    bytes: &[u8],
    file: &str,
    options: &ReadOptions,
) -> Result<Loaded, InputError> {
    // Excel writes a BOM; it is not part of the first header name.
    let text = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    match detect(text, file)? {
        Format::Psrecord => read_psrecord(text, file, options),
        Format::Mprof => read_mprof(text, file, options),
        Format::Memwatch => {
            let unterminated = unterminated_last_line_start(text).is_some();
            let lines = estimate_lines(text, text.len() as u64);
            read_memwatch_csv(
                text,
                &Source::Memory(text),
                unterminated,
                lines,
                file,
                options,
            )
        }
    }
}

/// Tells the format from the first non-empty line of `text` (the file, or its head).
fn detect(text: &[u8], file: &str) -> Result<Format, InputError> {
    let Some((line, first)) = numbered_lines(text)
        .map(|l| (l.number, l.text.trim_ascii()))
        .find(|(_, t)| !t.is_empty())
    else {
        return Err(InputError {
            file: file.to_string(),
            line: None,
            problem: Problem::Empty,
        });
    };
    let first_word = first.split(u8::is_ascii_whitespace).next().unwrap_or(first);
    if first.starts_with(b"#")
        && first
            .to_ascii_lowercase()
            .windows(7)
            .any(|w| w == b"elapsed")
    {
        Ok(Format::Psrecord)
    } else if matches!(first_word, b"CMDLINE" | b"MEM" | b"FUNC" | b"CHLD") {
        Ok(Format::Mprof)
    } else if first.contains(&b',') {
        Ok(Format::Memwatch)
    } else {
        Err(InputError {
            file: file.to_string(),
            line: Some(line),
            problem: Problem::UnknownFormat {
                found: shown(first),
            },
        })
    }
}

/// The metrics `options` keep, as a mask.
fn kept_mask(options: &ReadOptions) -> [bool; Metric::COUNT] {
    let keep = options.keep.unwrap_or(Kept::ALL);
    Metric::ALL.map(|m| keep.keeps(m))
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/// What is known of each metric's column once a file is read.
struct ColumnFacts {
    in_header: [bool; Metric::COUNT],
    kept: [bool; Metric::COUNT],
    keep: Kept,
    has_values: [bool; Metric::COUNT],
    /// The last `limit_bytes` of a `cgroup` row.
    limit_bytes: Option<f64>,
}

impl ColumnFacts {
    fn new(options: &ReadOptions) -> ColumnFacts {
        ColumnFacts {
            in_header: [false; Metric::COUNT],
            kept: kept_mask(options),
            keep: options.keep.unwrap_or(Kept::ALL),
            limit_bytes: None,
            has_values: [false; Metric::COUNT],
        }
    }

    /// Notes which metrics `rec` has values for and drops those not kept (psrecord and mprof
    /// files are small: they are read whole, then trimmed).
    fn keep_only(&mut self, rec: Recording) -> Recording {
        for m in Metric::ALL {
            self.has_values[m.index()] = rec
                .metric(m)
                .is_some_and(|col| col.iter().any(|v| !v.is_nan()));
        }
        if self.kept.iter().all(|&k| k) {
            return rec;
        }
        let mut out = Recording::keeping(rec.len(), self.keep);
        let mut values = [f64::NAN; Metric::COUNT];
        for (row, &t) in rec.time_s.iter().enumerate() {
            for m in Metric::ALL {
                values[m.index()] = rec.metric(m).map_or(f64::NAN, |col| col[row]);
            }
            out.push_row(t, &values);
        }
        out.events = rec.events;
        out
    }
}

fn no_samples_after(rec: &Recording, file: &str, header_line: u64) -> Result<(), InputError> {
    if rec.is_empty() {
        return Err(InputError {
            file: file.to_string(),
            line: Some(header_line),
            problem: Problem::NoSamples,
        });
    }
    Ok(())
}

/// The last checks on the judged series, and the result.
fn finish(
    mut recording: Recording,
    key: Option<SeriesKey>,
    others: Vec<(SeriesKey, Recording)>,
    format: Format,
    warnings: Vec<String>,
    file: &str,
    columns: ColumnFacts,
) -> Result<Loaded, InputError> {
    // Rows that all share one time have no span to measure a trend over (issue 9, item 9).
    if let (Some(&first), Some(&last), true) = (
        recording.time_s.first(),
        recording.time_s.last(),
        recording.len() >= 2,
    ) && first == last
    {
        return Err(InputError {
            file: file.to_string(),
            line: None,
            problem: Problem::NoTimeSpan {
                samples: recording.len(),
                column: match format {
                    Format::Memwatch => "elapsed_s",
                    Format::Psrecord => "Elapsed time",
                    Format::Mprof => "MEM timestamp",
                },
                time: first,
                series: (!others.is_empty())
                    .then(|| key.as_ref().map(ToString::to_string))
                    .flatten(),
            },
        });
    }
    recording.finish();
    Ok(Loaded {
        recording,
        key,
        others,
        format,
        warnings,
        in_header: columns.in_header,
        kept: columns.kept,
        has_values: columns.has_values,
        limit_bytes: columns.limit_bytes,
    })
}

/// Why a cell is not a usable number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BadNumber {
    NotANumber,
    NotFinite,
    Negative,
    NotInteger,
    TooLarge,
}

impl BadNumber {
    fn problem(self, cell: &[u8], column: &str, unit: &'static str) -> Problem {
        let (value, column) = (shown(cell), column.to_string());
        match self {
            BadNumber::NotANumber => Problem::NotANumber {
                value,
                column,
                unit,
            },
            BadNumber::NotFinite => Problem::NotFinite { value, column },
            BadNumber::Negative => Problem::Negative { value, column },
            BadNumber::NotInteger => Problem::NotInteger { value, column },
            BadNumber::TooLarge => Problem::TooLarge { value, column },
        }
    }
}

/// A finite number of any sign. Surrounding spaces are allowed; an empty cell is not.
fn parse_float(cell: &[u8]) -> Result<f64, BadNumber> {
    let value: f64 = std::str::from_utf8(cell.trim_ascii())
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(BadNumber::NotANumber)?;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(BadNumber::NotFinite)
    }
}

/// A size in integer bytes, at most [`MAX_SIZE_BYTES`]; NaN for an empty (unknown) cell.
/// Plain digits take a fast path, the common case by far; other spellings of an integer
/// (`1e6`, `-0`, `4096.0`) are accepted through the float parser.
fn parse_size(cell: &[u8]) -> Result<f64, BadNumber> {
    let cell = cell.trim_ascii();
    if cell.is_empty() {
        return Ok(f64::NAN);
    }
    // 18 digits always fit in an i64, whose conversion to f64 is one instruction (u64's is
    // several). One pass: check and accumulate together.
    if cell.len() <= 18 {
        let mut n = 0i64;
        let mut all_digits = true;
        for &b in cell {
            let digit = b.wrapping_sub(b'0');
            all_digits &= digit <= 9;
            n = n.wrapping_mul(10).wrapping_add(i64::from(digit));
        }
        if all_digits {
            return if n > MAX_SIZE_INT as i64 {
                Err(BadNumber::TooLarge)
            } else {
                Ok(n as f64)
            };
        }
    }
    if cell.iter().all(u8::is_ascii_digit) {
        // Longer digit strings: compared as integers, as a float would round 2^53 + 1 down.
        return match std::str::from_utf8(cell).map(str::parse::<u64>) {
            Ok(Ok(n)) if n <= MAX_SIZE_INT => Ok(n as f64),
            _ => Err(BadNumber::TooLarge),
        };
    }
    let value = parse_float(cell)?;
    if value < 0.0 {
        Err(BadNumber::Negative)
    } else if value > MAX_SIZE_BYTES {
        Err(BadNumber::TooLarge)
    } else if value.fract() != 0.0 {
        Err(BadNumber::NotInteger)
    } else {
        Ok(value + 0.0) // turns -0 into 0
    }
}

/// A psrecord/mprof size in MiB (a float, as those tools write it), as whole bytes.
fn parse_mib(cell: &[u8], column: &str) -> Result<f64, Problem> {
    let bytes = parse_float(cell)
        .and_then(|mib| {
            let bytes = (mib * MIB).round();
            if mib < 0.0 {
                Err(BadNumber::Negative)
            } else if bytes > MAX_SIZE_BYTES {
                Err(BadNumber::TooLarge)
            } else {
                Ok(bytes)
            }
        })
        .map_err(|bad| bad.problem(cell, column, "MiB"))?;
    Ok(bytes)
}

/// Rejects a time earlier than the previous row's; equal times are allowed. `previous` holds
/// that row's time and where it is; `line_of` turns where into a line number, only on error.
fn in_time_order<At>(
    t: f64,
    previous: Option<(f64, At)>,
    line_of: impl FnOnce(At) -> u64,
    column: &str,
) -> Result<f64, Problem> {
    match previous {
        Some((before, at)) if t < before => Err(Problem::TimeBackwards {
            column: column.to_string(),
            value: t,
            previous: before,
            previous_line: line_of(at),
            series: None,
        }),
        _ => Ok(t),
    }
}

fn cut_line_warning(file: &str, line: u64, text: &[u8]) -> String {
    format!(
        "{file} line {line}: skipped the last line '{}': it is cut short (the recorder was \
         probably stopped while writing it)",
        shown(text.trim_ascii())
    )
}

/// A value for a message: lossy UTF-8, shortened when long.
fn shown(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    if text.chars().count() <= SHOWN_VALUE_MAX_CHARS {
        return text.into_owned();
    }
    let mut short: String = text.chars().take(SHOWN_VALUE_MAX_CHARS).collect();
    short.push('…');
    short
}

/// About how many lines a file of `size` bytes holds, from the line length in `head`, its
/// first bytes (at most 64 KiB are looked at): enough to size the columns once, without a pass
/// over a large file. Room reserved and never filled costs address space, not memory.
fn estimate_lines(head: &[u8], size: u64) -> usize {
    let sample = &head[..head.len().min(HEAD_BYTES as usize)];
    let lines_in_sample = sample.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    // A little headroom, as later rows tend to be longer (bigger numbers, larger times).
    let lines = size / (sample.len() as u64).max(1) * lines_in_sample * 11 / 10 + 1;
    usize::try_from(lines).unwrap_or(usize::MAX)
}

/// Where the last line starts, if the file does not end with a line end: that line may have been
/// cut short by a killed recorder.
fn unterminated_last_line_start(text: &[u8]) -> Option<usize> {
    if text.is_empty() || text.ends_with(b"\n") || text.ends_with(b"\r") {
        return None;
    }
    Some(text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1))
}

struct Line<'a> {
    /// 1-based.
    number: u64,
    /// Without its line end (`\n` or `\r\n`).
    text: &'a [u8],
    /// The last line, with no line end: it may have been cut short.
    cut: bool,
}

fn numbered_lines(text: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let cut_from = unterminated_last_line_start(text);
    let mut offset = 0usize;
    text.split(|&b| b == b'\n')
        .enumerate()
        .map(move |(index, raw)| {
            let start = offset;
            offset += raw.len() + 1;
            Line {
                number: index as u64 + 1,
                text: raw.strip_suffix(b"\r").unwrap_or(raw),
                cut: cut_from == Some(start),
            }
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HEADER: &str = "elapsed_s,unix_ms,pid,rss_bytes,vsz_bytes,anon_bytes,file_bytes,\
                          shmem_bytes,swap_bytes,hwm_bytes,pss_bytes,uss_bytes,threads,event";
    const ROWS: [&str; 3] = [
        "0.000,1700000000000,42,1000,5000,600,300,100,0,1000,,,4,",
        "0.500,1700000000500,42,2000,5000,1600,300,100,0,2000,,,4,signal:SIGUSR2",
        "1.250,1700000001250,42,1500,6000,1100,300,100,0,2000,900,800,5,settled;dump:/tmp/x.heapsnapshot",
    ];

    fn clean_csv() -> String {
        let mut text = format!("{HEADER}\n");
        for row in ROWS {
            text.push_str(row);
            text.push('\n');
        }
        text
    }

    fn parse(text: impl AsRef<[u8]>) -> Loaded {
        parse_recording(text.as_ref(), "samples.csv").unwrap()
    }

    fn parse_err(text: impl AsRef<[u8]>) -> InputError {
        parse_recording(text.as_ref(), "samples.csv").unwrap_err()
    }

    /// Bit patterns, so NaN cells compare equal.
    fn bits(values: &[f64]) -> Vec<u64> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    fn assert_same(a: &Recording, b: &Recording) {
        assert_eq!(bits(&a.time_s), bits(&b.time_s));
        for m in Metric::ALL {
            assert_eq!(a.metric(m).map(bits), b.metric(m).map(bits), "{m}");
        }
        assert_eq!(a.events, b.events);
    }

    fn assert_error(err: &InputError, line: u64, parts: &[&str]) {
        assert_eq!(err.line, Some(line), "{err}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("samples.csv line {line}: ")),
            "{message}"
        );
        for part in parts {
            assert!(message.contains(part), "{message:?} lacks {part:?}");
        }
    }

    #[test]
    fn reads_memwatch_csv() {
        let loaded = parse(clean_csv());
        assert_eq!(loaded.format, Format::Memwatch);
        assert!(loaded.warnings.is_empty());
        let rec = &loaded.recording;
        assert_eq!(rec.time_s, [0.0, 0.5, 1.25]);
        assert_eq!(rec.metric(Metric::Rss), Some(&[1000.0, 2000.0, 1500.0][..]));
        assert_eq!(rec.metric(Metric::Vsz), Some(&[5000.0, 5000.0, 6000.0][..]));
        assert_eq!(rec.metric(Metric::Swap), Some(&[0.0, 0.0, 0.0][..]));
        let pss = rec.metric(Metric::Pss).unwrap();
        assert!(pss[0].is_nan() && pss[1].is_nan() && pss[2] == 900.0);
        assert_eq!(
            rec.events,
            [
                Event {
                    elapsed_s: 0.5,
                    kind: EventKind::Signal("SIGUSR2".into())
                },
                Event {
                    elapsed_s: 1.25,
                    kind: EventKind::Settled
                },
                Event {
                    elapsed_s: 1.25,
                    kind: EventKind::Dump("/tmp/x.heapsnapshot".into())
                },
            ]
        );
    }

    #[test]
    fn columns_are_found_by_name_in_any_order_and_unknown_ones_ignored() {
        // Every row reversed, plus a column memwatch does not know.
        let shuffled = |line: &str, extra: &str| {
            let mut cells: Vec<&str> = line.split(',').rev().collect();
            cells.insert(3, extra);
            cells.join(",") + "\n"
        };
        let mut text = shuffled(HEADER, "gc_count");
        for row in ROWS {
            text.push_str(&shuffled(row, "7"));
        }
        assert_same(&parse(&text).recording, &parse(clean_csv()).recording);
    }

    #[test]
    fn only_elapsed_and_rss_are_needed() {
        let rec = parse("rss_bytes,elapsed_s\n100,0\n200,1\n").recording;
        assert_eq!(rec.time_s, [0.0, 1.0]);
        assert_eq!(rec.metric(Metric::Rss), Some(&[100.0, 200.0][..]));
        assert_eq!(rec.metric(Metric::Vsz), None);
        assert!(rec.events.is_empty());
    }

    #[test]
    fn crlf_and_bom_read_the_same_as_the_clean_file() {
        let clean = parse(clean_csv()).recording;
        let crlf = clean_csv().replace('\n', "\r\n");
        let bom = [UTF8_BOM, clean_csv().as_bytes()].concat();
        let both = [UTF8_BOM, crlf.as_bytes()].concat();
        for text in [crlf.as_bytes(), &bom, &both] {
            assert_same(&parse(text).recording, &clean);
        }
        // Line numbers are unchanged by either.
        let bad = [UTF8_BOM, b"elapsed_s,rss_bytes\r\n0,1\r\n1,x\r\n"].concat();
        assert_error(&parse_err(bad), 3, &["'x'"]);
        let bad = "elapsed_s,rss_bytes\r\n0,1\r\n\r\n2,1\r\n1,1\r\n";
        assert_error(&parse_err(bad), 5, &["'1' is earlier than '2' on line 4"]);
    }

    #[test]
    fn sizes_accept_other_spellings() {
        // Any spelling of an integer; `12.5` was accepted here until issue 9 (item 9): see
        // `non_integer_bytes_are_refused_with_the_line`.
        let rec = parse("elapsed_s,rss_bytes\n0, 1024 \n1,1e3\n2,4096.0\n3,-0\n4,\n").recording;
        let rss = rec.metric(Metric::Rss).unwrap();
        assert_eq!(rss[..4], [1024.0, 1000.0, 4096.0, 0.0]);
        assert!(rss[4].is_nan());
    }

    #[test]
    fn size_fast_path_agrees_with_the_float_parser() {
        // Up to 2^53 (above it, see `sizes_above_2_pow_53_are_refused_with_the_line`).
        for cell in [
            "0",
            "7",
            "9007199254740991",
            "9007199254740992",
            "0009007199254740992",
        ] {
            let expected: f64 = cell.parse().unwrap();
            assert_eq!(parse_size(cell.as_bytes()), Ok(expected), "{cell}");
        }
        for cell in [
            "9007199254740993",
            "123456789012345678",
            "1234567890123456789",
            "18446744073709551615",
        ] {
            assert_eq!(
                parse_size(cell.as_bytes()),
                Err(BadNumber::TooLarge),
                "{cell}"
            );
        }
        assert_eq!(parse_size(b"12a"), Err(BadNumber::NotANumber));
    }

    #[test]
    fn empty_file_is_an_error() {
        for text in ["", "\n\n", "\u{feff}"] {
            let err = parse_err(text);
            assert_eq!(err.line, None);
            assert!(
                err.to_string()
                    .starts_with("samples.csv: the file is empty"),
                "{err}"
            );
        }
    }

    #[test]
    fn header_without_rows_is_an_error() {
        let err = parse_err(format!("{HEADER}\n"));
        assert_error(&err, 1, &["no complete sample", "record for longer"]);
        assert!(matches!(err.problem, Problem::NoSamples));
    }

    #[test]
    fn missing_required_column_is_named_with_what_was_found() {
        let err = parse_err("elapsed_s,vsz_bytes,pid\n0,1,2\n");
        assert_error(
            &err,
            1,
            &["'rss_bytes' is missing", "found: elapsed_s, vsz_bytes, pid"],
        );
        let err = parse_err("time,rss_bytes\n0,1\n");
        assert_error(
            &err,
            1,
            &["'elapsed_s' is missing", "found: time, rss_bytes"],
        );
    }

    #[test]
    fn duplicate_column_is_an_error() {
        let err = parse_err("elapsed_s,rss_bytes,rss_bytes\n0,1,2\n");
        assert_error(&err, 1, &["'rss_bytes' appears twice"]);
    }

    #[test]
    fn non_numeric_cell_is_an_error_naming_line_column_and_value() {
        let err = parse_err("elapsed_s,rss_bytes\n0,1\n1,2\n2,abc\n3,4\n");
        assert_eq!(
            err.to_string(),
            "samples.csv line 4: 'abc' in column rss_bytes is not a number of bytes; \
             fix or delete this row"
        );
        let err = parse_err("elapsed_s,rss_bytes\n0,1\nsoon,2\n");
        assert_error(
            &err,
            3,
            &["'soon' in column elapsed_s is not a number of seconds"],
        );
        let err = parse_err("elapsed_s,rss_bytes\n0,1\n,2\n");
        assert_error(&err, 3, &["'' in column elapsed_s"]);
    }

    #[test]
    fn nan_and_infinity_are_errors() {
        for (text, value, column) in [
            ("elapsed_s,rss_bytes\n0,1\n1,NaN\n", "NaN", "rss_bytes"),
            ("elapsed_s,rss_bytes\n0,1\n1,inf\n", "inf", "rss_bytes"),
            (
                "elapsed_s,rss_bytes\n0,1\ninfinity,1\n",
                "infinity",
                "elapsed_s",
            ),
            ("elapsed_s,rss_bytes\n0,1\nnan,1\n", "nan", "elapsed_s"),
        ] {
            let err = parse_err(text);
            assert_error(
                &err,
                3,
                &[&format!("'{value}' in column {column} is not a finite")],
            );
        }
    }

    #[test]
    fn negative_size_is_an_error() {
        let err = parse_err("elapsed_s,rss_bytes,anon_bytes\n0,1,1\n1,2,-4096\n");
        assert_error(&err, 3, &["'-4096' in column anon_bytes is negative"]);
    }

    #[test]
    fn time_going_backwards_is_an_error() {
        let err = parse_err("elapsed_s,rss_bytes\n0,1\n4.5,1\n3,1\n");
        assert_error(
            &err,
            4,
            &["time goes backwards", "'3' is earlier than '4.5' on line 3"],
        );
        // Equal times are fine (but not all of them equal: see
        // `rows_that_all_share_one_time_are_refused_not_called_stable`).
        assert_eq!(
            parse("elapsed_s,rss_bytes\n0,1\n0,2\n1,2\n")
                .recording
                .len(),
            3
        );
    }

    #[test]
    fn short_row_in_the_middle_is_an_error() {
        let err = parse_err("elapsed_s,rss_bytes,vsz_bytes\n0,1,2\n1,2\n2,3,4\n");
        assert_error(&err, 3, &["2 fields but the header has 3"]);
        // A short last row that ends with a line end was written whole: still an error.
        let err = parse_err("elapsed_s,rss_bytes,vsz_bytes\n0,1,2\n1,2\n");
        assert_error(&err, 3, &["2 fields"]);
    }

    #[test]
    fn cut_last_line_is_skipped_with_a_warning() {
        let mut text = clean_csv();
        text.push_str("1.500,1700000001500,42,15");
        let loaded = parse(&text);
        assert_same(&loaded.recording, &parse(clean_csv()).recording);
        assert_eq!(loaded.warnings.len(), 1);
        let warning = &loaded.warnings[0];
        assert!(
            warning.starts_with("samples.csv line 5: skipped the last line '1.500,"),
            "{warning}"
        );
        assert!(warning.contains("cut short"), "{warning}");

        // A cut number: '1.' of '1.75' puts time backwards; '2e' of '2e3' is no number.
        let loaded = parse("rss_bytes,elapsed_s\n100,0\n100,1.5\n100,1.");
        assert_eq!(loaded.recording.len(), 2);
        assert_eq!(loaded.warnings.len(), 1);
        let loaded = parse("elapsed_s,rss_bytes\r\n0,100\r\n1,2e");
        assert_eq!(loaded.recording.len(), 1);
        assert!(
            loaded.warnings[0].contains("line 3"),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn only_a_cut_row_means_no_samples() {
        let err = parse_err("elapsed_s,rss_bytes,vsz_bytes\n0,1");
        assert!(matches!(err.problem, Problem::NoSamples), "{err}");
    }

    #[test]
    fn unknown_format_is_an_error() {
        let err = parse_err("hello world\n1 2 3\n");
        assert_error(&err, 1, &["'hello world' does not start a memwatch CSV"]);
    }

    #[test]
    fn long_values_are_shortened() {
        let long = "9".repeat(30) + &"x".repeat(30);
        let err = parse_err(format!("elapsed_s,rss_bytes\n0,{long}\n"));
        let message = err.to_string();
        assert!(
            message.contains(&format!("'{}…'", &long[..40])),
            "{message}"
        );
    }

    // psrecord writes `"# {:12s} ..."` with centred labels and `"{:12.3f} ..."` rows.
    const PSRECORD: &str = "# Elapsed time   CPU (%)     Real (MB)   Virtual (MB)\n\
                                  0.000        0.000       12.000      456.500\n\
                                  0.512       98.100       13.250      456.500\n\
                                  1.024      100.000       14.000      460.000\n";

    #[test]
    fn reads_psrecord_log() {
        let loaded = parse(PSRECORD);
        assert_eq!(loaded.format, Format::Psrecord);
        let rec = &loaded.recording;
        assert_eq!(rec.time_s, [0.0, 0.512, 1.024]);
        assert_eq!(
            rec.metric(Metric::Rss),
            Some(&[12.0 * MIB, 13.25 * MIB, 14.0 * MIB][..])
        );
        assert_eq!(rec.metric(Metric::Vsz).unwrap()[2], 460.0 * MIB);
        assert_eq!(rec.metric(Metric::Uss), None);
        assert_same(&parse(PSRECORD.replace('\n', "\r\n")).recording, rec);
    }

    #[test]
    fn reads_psrecord_variants_by_label() {
        let text = "# Elapsed time   CPU (%)     Real (MB)   Virtual (MB)   USS (MB)  \n\
                           0.000        1.000        2.000        3.000        1.000\n\
                           1.000        1.000        2.000        3.000        1.500";
        let rec = parse(text).recording;
        assert_eq!(rec.metric(Metric::Uss), Some(&[MIB, 1.5 * MIB][..]));
        let text = "#  Timestamp   Elapsed time   CPU (%)     Real (MB)   Virtual (MB)\n\
                    1700000000.0 0.000 1.0 2.0 3.0\n";
        assert_eq!(parse(text).recording.time_s, [0.0]);
    }

    #[test]
    fn psrecord_errors_name_the_line() {
        let err = parse_err(PSRECORD.replace("13.250", "13,25"));
        assert_error(
            &err,
            3,
            &["'13,25' in column Real (MB) is not a number of MiB"],
        );
        let err = parse_err(PSRECORD.replace("14.000", "-1.000"));
        assert_error(&err, 4, &["negative"]);
        let err = parse_err("# Elapsed time   CPU (%)\n0 0\n");
        assert_error(
            &err,
            1,
            &["'Real (MB)' is missing", "found: Elapsed time, CPU (%)"],
        );
        let mut cut = PSRECORD.to_string();
        cut.push_str("       1.536      100.000       14");
        let loaded = parse(cut);
        assert_eq!(loaded.recording.len(), 3);
        assert!(
            loaded.warnings[0].contains("line 5"),
            "{:?}",
            loaded.warnings
        );
    }

    const MPROF: &str = "CMDLINE python leak.py --size 10\n\
                         MEM 10.500000 1700000000.0000\n\
                         MEM 11.000000 1700000000.1000\n\
                         CHLD 0 3.000000 1700000000.1000\n\
                         FUNC __main__.grow 10.5000 1700000000.0500 11.0000 1700000000.1500\n\
                         MEM 12.250000 1700000000.2500\n";

    #[test]
    fn reads_mprof_data() {
        let loaded = parse(MPROF);
        assert_eq!(loaded.format, Format::Mprof);
        let rec = &loaded.recording;
        assert_eq!(rec.len(), 3);
        assert!((rec.time_s[1] - 0.1).abs() < 1e-6 && (rec.time_s[2] - 0.25).abs() < 1e-6);
        assert_eq!(rec.time_s[0], 0.0);
        assert_eq!(
            rec.metric(Metric::Rss),
            Some(&[10.5 * MIB, 11.0 * MIB, 12.25 * MIB][..])
        );
        assert_eq!(loaded.warnings.len(), 1);
        assert!(
            loaded.warnings[0].contains("skipped 1 CHLD lines"),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn mprof_errors_name_the_line() {
        let err = parse_err(MPROF.replace("1700000000.2500", "1699999999.0000"));
        assert_error(&err, 6, &["time goes backwards", "on line 3"]);
        let err = parse_err(MPROF.replace("MEM 11.000000", "MEM eleven"));
        assert_error(
            &err,
            3,
            &["'eleven' in column MEM memory (MiB) is not a number of MiB"],
        );
        let err = parse_err("CMDLINE python x.py\n");
        assert_error(&err, 1, &["no complete sample"]);
        // A cut last line: the timestamp lost its end.
        let loaded = parse(format!("{MPROF}MEM 12.500000 17000"));
        assert_eq!(loaded.recording.len(), 3);
        assert!(
            loaded
                .warnings
                .iter()
                .any(|w| w.contains("line 7: skipped the last line"))
        );
    }

    #[test]
    fn read_recording_reads_files_and_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.log"); // the name says nothing of the format
        std::fs::write(&path, clean_csv()).unwrap();
        assert_same(
            &read_recording(&path).unwrap().recording,
            &parse(clean_csv()).recording,
        );

        let missing = dir.path().join("none.csv");
        let err = read_recording(&missing).unwrap_err();
        assert!(matches!(err.problem, Problem::Read(_)));
        assert!(
            err.to_string()
                .starts_with(&format!("{}: cannot read", missing.display()))
        );
    }

    // ---- Reading by series (issue 8) ----------------------------------------------------------

    /// A process tree: ticks at 0, 1, 2 s, each with rows for pid 10, pid 11 and the total.
    const TREE: &str = "elapsed_s,pid,rss_bytes,anon_bytes,event\n\
                        0,10,100,50,\n\
                        0,11,200,150,\n\
                        0,total,300,200,\n\
                        1,10,110,60,signal:SIGUSR2\n\
                        1,11,200,150,signal:SIGUSR2\n\
                        1,total,310,210,signal:SIGUSR2\n\
                        2,10,120,70,\n\
                        2,total,320,220,settled\n";

    #[test]
    fn a_process_tree_is_read_by_series_and_the_total_is_judged() {
        let loaded = parse(TREE);
        assert_eq!(loaded.key, Some(SeriesKey::Total));
        let total = &loaded.recording;
        assert_eq!(total.time_s, [0.0, 1.0, 2.0]);
        assert_eq!(total.metric(Metric::Rss), Some(&[300.0, 310.0, 320.0][..]));
        assert_eq!(total.metric(Metric::Anon), Some(&[200.0, 210.0, 220.0][..]));
        let keys: Vec<String> = loaded.others.iter().map(|(k, _)| k.to_string()).collect();
        assert_eq!(keys, ["pid 10", "pid 11"]);
        let (_, p10) = &loaded.others[0];
        assert_eq!(p10.metric(Metric::Rss), Some(&[100.0, 110.0, 120.0][..]));
        let (_, p11) = &loaded.others[1];
        assert_eq!(p11.time_s, [0.0, 1.0]); // exited after the second tick
        // The run's events: each (time, event) once, though three rows carry the signal.
        let events: Vec<String> = total.events.iter().map(|e| e.kind.to_string()).collect();
        assert_eq!(events, ["signal:SIGUSR2", "settled"]);
        assert_eq!(p11.events.len(), 1);
        assert_eq!(
            loaded.segments(),
            [
                Segment {
                    pid: 10,
                    start_time_ticks: None,
                    start_s: 0.0,
                    end_s: 2.0
                },
                Segment {
                    pid: 11,
                    start_time_ticks: None,
                    start_s: 0.0,
                    end_s: 1.0
                },
            ]
        );
        assert_eq!(loaded.series().count(), 3);
    }

    #[test]
    fn a_single_process_csv_is_one_series_keyed_by_its_pid() {
        let loaded = parse(clean_csv());
        assert_eq!(loaded.key, Some(SeriesKey::process(42)));
        assert!(loaded.others.is_empty());
        assert_eq!(loaded.recording.len(), 3);
        // Without a pid column, or with every pid cell empty: one series that does not say.
        for text in [
            "elapsed_s,rss_bytes\n0,1\n1,2\n",
            "elapsed_s,pid,rss_bytes\n0,,1\n1, ,2\n",
        ] {
            let loaded = parse(text);
            assert_eq!(loaded.key, None, "{text}");
            assert_eq!(loaded.recording.len(), 2, "{text}");
            assert!(loaded.segments().is_empty());
        }
    }

    #[test]
    fn several_processes_and_no_total_is_an_error_naming_them() {
        let err = parse_err("elapsed_s,pid,rss_bytes\n0,7,1\n0,8,1\n1,7,2\n1,8,2\n");
        assert_eq!(err.line, None);
        assert!(matches!(err.problem, Problem::NoSeriesToJudge { .. }));
        let message = err.to_string();
        assert!(
            message.starts_with("samples.csv: the file holds several processes (pid 7, pid 8)"),
            "{message}"
        );
        assert!(
            message.contains("keep the rows of one process"),
            "{message}"
        );

        // Unless the caller chooses one.
        let options = ReadOptions {
            judge: Some(SeriesKey::process(8)),
            ..ReadOptions::default()
        };
        let text = b"elapsed_s,pid,rss_bytes\n0,7,1\n0,8,5\n1,7,2\n1,8,6\n";
        let loaded = parse_recording_with(text, "samples.csv", &options).unwrap();
        assert_eq!(loaded.key, Some(SeriesKey::process(8)));
        assert_eq!(loaded.recording.metric(Metric::Rss), Some(&[5.0, 6.0][..]));
        let options = ReadOptions {
            judge: Some(SeriesKey::process(9)),
            ..ReadOptions::default()
        };
        let err = parse_recording_with(text, "samples.csv", &options).unwrap_err();
        assert!(
            err.to_string()
                .contains("no rows for pid 9 (found: pid 7, pid 8)"),
            "{err}"
        );
    }

    #[test]
    fn many_series_are_listed_shortened() {
        let mut text = String::from("elapsed_s,pid,rss_bytes\n");
        for pid in 1..=20 {
            text += &format!("0,{pid},1\n");
        }
        let message = parse_err(text).to_string();
        assert!(message.contains("pid 8, and 12 more)"), "{message}");
    }

    #[test]
    fn a_pid_cell_that_names_no_series_is_refused_with_the_line() {
        for cell in ["abc", "0", "-3", "4.5", "Total"] {
            let err = parse_err(format!("elapsed_s,pid,rss_bytes\n0,12,1\n1,{cell},2\n"));
            assert_error(
                &err,
                3,
                &[&format!("'{cell}' in column pid is neither a process id")],
            );
        }
    }

    #[test]
    fn rows_that_name_their_series_and_rows_that_do_not_are_refused() {
        let err = parse_err("elapsed_s,pid,rss_bytes\n0,12,1\n1,12,2\n2,,3\n");
        assert_error(
            &err,
            4,
            &[
                "the pid cell is empty here but '12' on line 2",
                "fix or delete",
            ],
        );
        let err = parse_err("elapsed_s,pid,rss_bytes\n0,,1\n\n1,total,2\n");
        assert_error(
            &err,
            4,
            &["the pid cell is 'total' here but empty on line 2"],
        );
    }

    #[test]
    fn each_series_must_be_in_time_order_on_its_own() {
        // Interleaved series, each in order: fine.
        let loaded = parse("elapsed_s,pid,rss_bytes\n0,1,5\n1,total,5\n0.5,2,5\n1,1,5\n");
        assert_eq!(loaded.key, Some(SeriesKey::Total));
        let err = parse_err("elapsed_s,pid,rss_bytes\n0,1,5\n0,total,5\n3,1,5\n3,total,5\n2,1,5\n");
        assert_error(
            &err,
            6,
            &["time goes backwards for pid 1: elapsed_s '2' is earlier than '3' on line 4"],
        );
    }

    #[test]
    fn keep_leaves_other_metrics_out_but_still_checks_their_cells() {
        let options = ReadOptions::keeping(Kept::new(&[Metric::Rss], &[]));
        let loaded = parse_recording_with(clean_csv().as_bytes(), "samples.csv", &options).unwrap();
        let rec = &loaded.recording;
        assert_eq!(rec.metric(Metric::Rss), Some(&[1000.0, 2000.0, 1500.0][..]));
        assert_eq!(rec.metric(Metric::Vsz), None);
        assert_eq!(rec.metric(Metric::Anon), None);
        assert_eq!(rec.events.len(), 3);
        assert_eq!(loaded.column_state(Metric::Vsz), ColumnState::Present);
        let err = parse_recording_with(
            b"elapsed_s,rss_bytes,vsz_bytes\n0,1,1\n1,1,x\n",
            "samples.csv",
            &options,
        )
        .unwrap_err();
        assert_error(&err, 3, &["'x' in column vsz_bytes"]);
        // psrecord and mprof files too.
        let loaded = parse_recording_with(PSRECORD.as_bytes(), "samples.csv", &options).unwrap();
        assert_eq!(loaded.recording.metric(Metric::Vsz), None);
        assert_eq!(loaded.recording.len(), 3);
    }

    // ---- Regressions (issue 9) ----------------------------------------------------------------

    /// Issue 9, item 9: rows that all share one time were called `stable`, exit 0.
    #[test]
    fn rows_that_all_share_one_time_are_refused_not_called_stable() {
        let mut text = String::from("elapsed_s,rss_bytes\n");
        for i in 0..50 {
            text += &format!("5.000,{}\n", 1000 + i);
        }
        let err = parse_err(&text);
        assert!(matches!(
            err.problem,
            Problem::NoTimeSpan { samples: 50, .. }
        ));
        assert_eq!(
            err.to_string(),
            "samples.csv: all 50 samples share one time (elapsed_s 5), so the recording has no \
             time span and cannot be judged; check that the recorder wrote its clock column"
        );
        let psrecord = "# Elapsed time   CPU (%)     Real (MB)   Virtual (MB)\n\
                        0.000 0.0 12.0 456.5\n0.000 0.0 13.0 456.5\n";
        assert!(parse_err(psrecord).to_string().contains("(Elapsed time 0)"));
        // The judged series is what counts: the total here.
        let err = parse_err("elapsed_s,pid,rss_bytes\n0,1,5\n0,total,5\n1,1,5\n0,total,5\n");
        assert!(
            err.to_string()
                .contains("all 2 samples of total share one time"),
            "{err}"
        );
        // One sample is too little data, not a broken clock: the analyser says inconclusive.
        assert_eq!(parse("elapsed_s,rss_bytes\n0,1\n").recording.len(), 1);
    }

    /// Issue 9, item 9: `1e300` bytes was accepted.
    #[test]
    fn sizes_above_2_pow_53_are_refused_with_the_line() {
        for cell in ["1e300", "9007199254740993", "18446744073709551616", "1e16"] {
            let err = parse_err(format!("elapsed_s,rss_bytes\n0,1\n1,{cell}\n"));
            assert_error(
                &err,
                3,
                &[&format!(
                    "'{cell}' in column rss_bytes is more than 2^53 bytes"
                )],
            );
        }
        let rss =
            parse("elapsed_s,rss_bytes\n0,9007199254740992\n1,9.007199254740992e15\n").recording;
        assert_eq!(rss.metric(Metric::Rss), Some(&[MAX_SIZE_BYTES; 2][..]));
        let err = parse_err(PSRECORD.replace("14.000", "1e300"));
        assert_error(
            &err,
            4,
            &["'1e300' in column Real (MB) is more than 2^53 bytes"],
        );
        let err = parse_err(MPROF.replace("MEM 11.000000", "MEM 9e9"));
        assert_error(&err, 3, &["more than 2^53 bytes"]);
    }

    /// Issue 9, item 9: `12.5` bytes was accepted although memwatch writes integer bytes.
    #[test]
    fn non_integer_bytes_are_refused_with_the_line() {
        for cell in ["12.5", "1e-3", "4096.25"] {
            let err = parse_err(format!(
                "elapsed_s,rss_bytes,anon_bytes\n0,1,1\n1,2,{cell}\n"
            ));
            assert_error(
                &err,
                3,
                &[&format!(
                    "'{cell}' in column anon_bytes is not a whole number of bytes"
                )],
            );
        }
        // psrecord and mprof write MiB as floats: still read, rounded to whole bytes.
        assert_eq!(
            parse(PSRECORD).recording.metric(Metric::Rss).unwrap()[1],
            13.25 * MIB
        );
        assert_eq!(parse(MPROF).recording.len(), 3);
    }

    /// Issue 9, item 14: `--metric pss` said the column was missing when it was empty.
    #[test]
    fn an_empty_pss_column_is_told_from_a_missing_one() {
        let empty = parse("elapsed_s,rss_bytes,pss_bytes\n0,1,\n1,2,\n");
        assert_eq!(empty.column_state(Metric::Pss), ColumnState::Empty);
        assert_eq!(
            empty.metric_problem(Metric::Pss).as_deref(),
            Some("the 'pss_bytes' column is empty: record with --pss")
        );
        let missing = parse("elapsed_s,rss_bytes\n0,1\n1,2\n");
        assert_eq!(missing.column_state(Metric::Pss), ColumnState::Missing);
        assert_eq!(
            missing.metric_problem(Metric::Pss).as_deref(),
            Some("the recording has no 'pss_bytes' column")
        );
        assert_eq!(missing.metric_problem(Metric::Rss), None);
        let present = parse(clean_csv()); // PSS on the last row only
        assert_eq!(present.column_state(Metric::Pss), ColumnState::Present);
        assert_eq!(present.metric_problem(Metric::Pss), None);
        // Kept or not, the answer is the same.
        let options = ReadOptions::keeping(Kept::new(&[Metric::Rss], &[]));
        let loaded = parse_recording_with(
            b"elapsed_s,rss_bytes,pss_bytes\n0,1,\n1,2,\n",
            "f",
            &options,
        )
        .unwrap();
        assert_eq!(loaded.column_state(Metric::Pss), ColumnState::Empty);
        let anon = parse("elapsed_s,pid,rss_bytes,anon_bytes\n0,9,1,\n1,9,2,\n");
        assert_eq!(
            anon.metric_problem(Metric::Anon).as_deref(),
            Some(
                "the 'anon_bytes' column is empty for pid 9: the recorder could not read it; \
                 choose another --metric"
            )
        );
        let tree =
            parse("elapsed_s,pid,rss_bytes,pss_bytes\n0,7,1,1\n0,total,1,\n1,7,1,1\n1,total,1,\n");
        assert_eq!(tree.column_state(Metric::Pss), ColumnState::Empty);
        assert_eq!(
            tree.metric_problem(Metric::Pss).as_deref(),
            Some(
                "the 'pss_bytes' column has values for other series but none for total, the series judged"
            )
        );
        assert_eq!(
            parse(PSRECORD).column_state(Metric::Uss),
            ColumnState::Missing
        );
        assert_eq!(parse(MPROF).column_state(Metric::Vsz), ColumnState::Missing);
    }

    // ---- Files are streamed -----------------------------------------------------------------

    #[test]
    fn a_streamed_file_reads_like_the_same_bytes_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("samples.csv");
        let crlf_bom = [UTF8_BOM, TREE.replace('\n', "\r\n").as_bytes()].concat();
        for text in [TREE.as_bytes(), &crlf_bom] {
            std::fs::write(&path, text).unwrap();
            let file = read_recording(&path).unwrap();
            let memory = parse(text);
            assert_same(&file.recording, &memory.recording);
            assert_eq!(file.key, memory.key);
            assert_eq!(file.others.len(), 2);
        }
        // Line numbers and cut lines come from the file itself.
        let name = path.display().to_string();
        let bad = [
            UTF8_BOM,
            b"elapsed_s,rss_bytes\r\n0,1\r\n\r\n2,1\r\n1,1\r\n",
        ]
        .concat();
        std::fs::write(&path, bad).unwrap();
        let err = read_recording(&path).unwrap_err();
        assert_eq!(err.line, Some(5), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("{name} line 5: time goes backwards"))
        );
        assert!(err.to_string().contains("on line 4"), "{err}");
        std::fs::write(&path, "elapsed_s,rss_bytes\r\n0,100\r\n1,100\r\n2,2e").unwrap();
        let loaded = read_recording(&path).unwrap();
        assert_eq!(loaded.recording.len(), 2);
        assert_eq!(
            loaded.warnings,
            [format!(
                "{name} line 4: skipped the last line '2,2e': it is cut short (the recorder was \
                 probably stopped while writing it)"
            )]
        );
        // A bad line that is not the last one is an error even in a file that ends cut short.
        std::fs::write(&path, "elapsed_s,rss_bytes\n0,100\n1,x\n2,2").unwrap();
        assert_eq!(read_recording(&path).unwrap_err().line, Some(3));
        // A head of blank lines longer than the part read to tell the format.
        let mut blank_head = "\n".repeat(70_000);
        blank_head += "elapsed_s,rss_bytes\n0,1\n1,2\n";
        std::fs::write(&path, &blank_head).unwrap();
        let loaded = read_recording(&path).unwrap();
        assert_eq!(loaded.recording.len(), 2);
        std::fs::write(&path, "\n".repeat(70_000)).unwrap();
        assert!(matches!(
            read_recording(&path).unwrap_err().problem,
            Problem::Empty
        ));
    }

    #[test]
    fn a_pipe_is_read_like_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.csv");
        let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path in a fresh temporary folder.
        assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
        let writer = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::write(fifo, TREE).unwrap())
        };
        let loaded = read_recording(&fifo).unwrap();
        writer.join().unwrap();
        assert_same(&loaded.recording, &parse(TREE).recording);
        assert_eq!(loaded.others.len(), 2);
    }

    #[test]
    fn line_numbers_count_line_ends_inside_quoted_cells() {
        let text = "elapsed_s,rss_bytes,event\n0,1,\"dump:/tmp/a\nb\"\n1,x,\n";
        assert_error(&parse_err(text), 4, &["'x'"]);
        let rec = parse("elapsed_s,rss_bytes,event\n0,1,\"dump:/tmp/a,b\"\n1,2,\n").recording;
        assert_eq!(rec.events[0].kind, EventKind::Dump("/tmp/a,b".into()));
    }

    /// A cgroup's rows are a series of their own, beside the process's: the process is
    /// judged unless the cgroup is asked for, and the last limit is kept.
    #[test]
    fn cgroup_rows_are_read_beside_the_process() {
        let text = "elapsed_s,pid,rss_bytes,limit_bytes,event\n\
                    0,42,10,,judged:cgroup\n0,cgroup,100,1000,\n\
                    1,42,11,,\n1,cgroup,110,2000,\n";
        let loaded = parse(text);
        assert_eq!(loaded.key, Some(SeriesKey::process(42)));
        assert_eq!(loaded.limit_bytes, Some(2000.0));
        let cgroup = loaded.cgroup().unwrap();
        assert_eq!(cgroup.metric(Metric::Rss), Some(&[100.0, 110.0][..]));
        assert_eq!(
            loaded.recording.events[0].kind.judged_series(),
            Some("cgroup")
        );
        // Only cgroup rows: they are the series.
        let alone = parse("elapsed_s,pid,rss_bytes\n0,cgroup,5\n1,cgroup,6\n");
        assert_eq!(alone.key, Some(SeriesKey::Cgroup(String::new())));
        // A followed target: its total (empty while absent) is judged, not the processes.
        let followed = parse(
            "elapsed_s,pid,rss_bytes,event\n0,7,5,\n0,total,5,\n1,total,,gone:7\n\
             2,8,6,restart:8\n2,total,6,\n",
        );
        assert_eq!(followed.key, Some(SeriesKey::Total));
        let rss = followed.recording.metric(Metric::Rss).unwrap();
        assert!(rss[0] == 5.0 && rss[1].is_nan() && rss[2] == 6.0, "{rss:?}");
    }
}
