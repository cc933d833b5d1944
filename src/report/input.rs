//! Reads a recorded run back into a [`Recording`] for `memwatch report`.
//!
//! Three formats are accepted, told apart by their content (never by the file name):
//! - memwatch's own `samples.csv`: a header row, then one row per sample. Columns are found by
//!   header name, in any order; unknown columns are ignored; only `elapsed_s` and `rss_bytes`
//!   are required. An empty cell is an unknown value.
//! - psrecord `--log` files: a `# Elapsed time  CPU (%)  Real (MB)  Virtual (MB)` header, then
//!   whitespace-separated rows. "MB" there is MiB. Real -> rss, Virtual -> vsz, USS -> uss.
//! - mprof `.dat` files (memory_profiler): `MEM <MiB> <unix seconds>` lines. `CMDLINE` and
//!   `FUNC` lines are skipped. `CHLD` lines (per-child memory written by `mprof run
//!   --multiprocess`) are skipped with a warning: memwatch reads the MEM lines only, which are the
//!   main process, or the main process plus its children under `mprof run --include-children`.
//!
//! A UTF-8 BOM and CRLF line ends are accepted. A last line that was cut short (no line end and
//! not parseable, as when the recorder was killed mid-write) is skipped with a warning; any other
//! bad line is an error that names the file, the line and the bad value.

use crate::recording::{Event, EventKind, Recording};
use crate::sample::Metric;
use std::path::Path;

/// Bytes in the "MB" of psrecord and mprof (both divide by 1024²).
const MIB: f64 = 1_048_576.0;
/// Longest bad value quoted in full in a message; longer ones are shortened.
const SHOWN_VALUE_MAX_CHARS: usize = 40;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

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

/// A file read back: the samples, which format they came from, and warnings for the caller to
/// print (such as a skipped, cut-short last line).
#[derive(Debug)]
pub struct Loaded {
    pub recording: Recording,
    pub format: Format,
    pub warnings: Vec<String>,
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
        "time goes backwards: {column} '{value}' is earlier than '{previous}' on line \
         {previous_line}; rows must be in time order (were two runs joined into one file?)"
    )]
    TimeBackwards {
        column: String,
        value: String,
        previous: String,
        previous_line: u64,
    },
    #[error("{0}; the file is not valid CSV here")]
    Csv(String),
}

/// Reads a recorded run from a file, telling its format from the content.
pub fn read_recording(path: &Path) -> Result<Loaded, InputError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| InputError {
        file: file.clone(),
        line: None,
        problem: Problem::Read(e),
    })?;
    parse_recording(&bytes, &file)
}

/// Parses a recorded run held in memory. `file` names it in errors and warnings.
pub fn parse_recording(bytes: &[u8], file: &str) -> Result<Loaded, InputError> {
    // Excel writes a BOM; it is not part of the first header name.
    let text = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
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
        read_psrecord(text, file)
    } else if matches!(first_word, b"CMDLINE" | b"MEM" | b"FUNC" | b"CHLD") {
        read_mprof(text, file)
    } else if first.contains(&b',') {
        read_memwatch_csv(text, file)
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

// ---------------------------------------------------------------------------------------------
// memwatch CSV

/// Where the columns memwatch reads sit in a header row.
struct CsvColumns {
    elapsed: usize,
    metrics: [Option<usize>; Metric::COUNT],
    event: Option<usize>,
    width: usize,
}

impl CsvColumns {
    fn find(header: &csv::ByteRecord) -> Result<CsvColumns, Problem> {
        let mut elapsed = None;
        let mut metrics = [None; Metric::COUNT];
        let mut event = None;
        for (index, raw) in header.iter().enumerate() {
            let name = raw.trim_ascii();
            let slot = if name == b"elapsed_s" {
                &mut elapsed
            } else if name == b"event" {
                &mut event
            } else if let Some(m) = Metric::ALL.iter().find(|m| m.column().as_bytes() == name) {
                &mut metrics[m.index()]
            } else {
                continue; // a column memwatch does not read (unix_ms, pid, threads, or foreign)
            };
            if slot.replace(index).is_some() {
                return Err(Problem::DuplicateColumn {
                    column: shown(name),
                });
            }
        }
        let missing = |column: &str| Problem::MissingColumn {
            column: column.to_string(),
            found: header
                .iter()
                .map(|h| shown(h.trim_ascii()))
                .collect::<Vec<_>>()
                .join(", "),
            needs: "a memwatch CSV needs elapsed_s and rss_bytes",
        };
        let elapsed = elapsed.ok_or_else(|| missing("elapsed_s"))?;
        if metrics[Metric::Rss.index()].is_none() {
            return Err(missing(Metric::Rss.column()));
        }
        Ok(CsvColumns {
            elapsed,
            metrics,
            event,
            width: header.len(),
        })
    }

    /// Fills `values` from one row and returns its time. Allocates only to report a problem.
    fn read_row(
        &self,
        row: &csv::ByteRecord,
        values: &mut [f64; Metric::COUNT],
    ) -> Result<f64, Problem> {
        if row.len() != self.width {
            return Err(Problem::FieldCount {
                found: row.len(),
                expected: self.width,
            });
        }
        let cell = |index: usize| row.get(index).unwrap_or_default();
        let elapsed_cell = cell(self.elapsed);
        let elapsed_s = parse_float(elapsed_cell)
            .map_err(|bad| bad.problem(elapsed_cell, "elapsed_s", "seconds"))?;
        for m in Metric::ALL {
            values[m.index()] = match self.metrics[m.index()] {
                Some(index) => {
                    let c = cell(index);
                    parse_size(c).map_err(|bad| bad.problem(c, m.column(), "bytes"))?
                }
                None => f64::NAN,
            };
        }
        Ok(elapsed_s)
    }
}

fn read_memwatch_csv(text: &[u8], file: &str) -> Result<Loaded, InputError> {
    let fail = |line: u64, problem| InputError {
        file: file.to_string(),
        line: Some(line),
        problem,
    };
    let csv_fail = |e: csv::Error| {
        let line = line_at(text, e.position().map_or(0, |p| p.byte() as usize));
        fail(line, Problem::Csv(e.to_string()))
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false) // read by hand, to know its line and to name its columns in errors
        .flexible(true) // rows of the wrong width get our own error, or the cut-line warning
        .from_reader(text);
    let mut record = csv::ByteRecord::new();
    reader.read_byte_record(&mut record).map_err(csv_fail)?;
    let header_line = line_at(text, start_of(text, &record));
    let columns = CsvColumns::find(&record).map_err(|p| fail(header_line, p))?;

    let cut_from = unterminated_last_line_start(text);
    let mut rec = Recording::with_capacity(estimate_lines(text));
    let mut warnings = Vec::new();
    let mut values = [f64::NAN; Metric::COUNT];
    // The previous row's time and start; its line number is only worked out for a message.
    let mut previous: Option<(f64, usize)> = None;
    while reader.read_byte_record(&mut record).map_err(csv_fail)? {
        let start = start_of(text, &record);
        let row = columns
            .read_row(&record, &mut values)
            .and_then(|t| in_time_order(t, previous, |at| line_at(text, at), "elapsed_s"));
        match row {
            Ok(elapsed_s) => {
                rec.push_row(elapsed_s, &values);
                if let Some(index) = columns.event {
                    push_events(&mut rec, elapsed_s, record.get(index).unwrap_or_default());
                }
                previous = Some((elapsed_s, start));
            }
            Err(_) if cut_from.is_some_and(|cut| start >= cut) => {
                let line = line_at(text, start);
                warnings.push(cut_line_warning(file, line, &text[start..]));
                break;
            }
            Err(problem) => return Err(fail(line_at(text, start), problem)),
        }
    }
    finish(rec, Format::Memwatch, warnings, file, header_line)
}

/// One tick's `event` cell: several events are joined with `;`.
fn push_events(rec: &mut Recording, elapsed_s: f64, cell: &[u8]) {
    if cell.trim_ascii().is_empty() {
        return;
    }
    let text = String::from_utf8_lossy(cell);
    for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        rec.events.push(Event {
            elapsed_s,
            kind: EventKind::parse(part),
        });
    }
}

/// Where a record's first cell starts. The csv crate may report the `\n` of a preceding `\r\n`
/// (or blank lines) as the start, so step over line ends.
fn start_of(text: &[u8], record: &csv::ByteRecord) -> usize {
    let reported = record.position().map_or(0, |p| p.byte() as usize);
    let rest = text.get(reported..).unwrap_or_default();
    reported
        + rest
            .iter()
            .take_while(|&&b| b == b'\r' || b == b'\n')
            .count()
}

/// The 1-based line holding byte `at`. Counted from the bytes because the csv crate's own line
/// count drifts on CRLF files; only called to report something, so it costs nothing per row.
fn line_at(text: &[u8], at: usize) -> u64 {
    let before = &text[..at.min(text.len())];
    before.iter().filter(|&&b| b == b'\n').count() as u64 + 1
}

// ---------------------------------------------------------------------------------------------
// psrecord --log

fn read_psrecord(text: &[u8], file: &str) -> Result<Loaded, InputError> {
    let fail = |line: u64, problem| InputError {
        file: file.to_string(),
        line: Some(line),
        problem,
    };
    let mut lines = numbered_lines(text).filter(|l| !l.text.trim_ascii().is_empty());
    let header = lines.next().ok_or_else(|| InputError {
        file: file.to_string(),
        line: None,
        problem: Problem::Empty,
    })?;
    // Labels are centred in 12-character cells ("  CPU (%)   "), so they hold single spaces and
    // are separated by two or more.
    let header_text = String::from_utf8_lossy(header.text.trim_ascii());
    let header_text = header_text.trim_start_matches('#').replace('\t', "  ");
    let labels: Vec<&str> = header_text
        .split("  ")
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let find = |prefix: &str| {
        labels
            .iter()
            .position(|l| l.to_ascii_lowercase().starts_with(prefix))
    };
    let missing = |column: &str| {
        fail(
            header.number,
            Problem::MissingColumn {
                column: column.to_string(),
                found: labels.join(", "),
                needs: "a psrecord log needs 'Elapsed time' and 'Real (MB)'",
            },
        )
    };
    let elapsed = find("elapsed").ok_or_else(|| missing("Elapsed time"))?;
    let sizes: Vec<(Metric, usize)> = [
        (Metric::Rss, find("real")),
        (Metric::Vsz, find("virtual")),
        (Metric::Uss, find("uss")),
    ]
    .into_iter()
    .filter_map(|(m, index)| Some((m, index?)))
    .collect();
    if !sizes.iter().any(|(m, _)| *m == Metric::Rss) {
        return Err(missing("Real (MB)"));
    }

    let mut rec = Recording::with_capacity(estimate_lines(text));
    let mut warnings = Vec::new();
    let mut values = [f64::NAN; Metric::COUNT];
    let mut previous: Option<(f64, u64)> = None;
    let mut fields: Vec<&[u8]> = Vec::with_capacity(labels.len());
    for line in lines {
        if line.text.trim_ascii_start().starts_with(b"#") {
            continue; // a comment
        }
        fields.clear();
        fields.extend(
            line.text
                .split(u8::is_ascii_whitespace)
                .filter(|f| !f.is_empty()),
        );
        let row = (|| {
            // psrecord variants append columns (USS, I/O): extra fields are fine, fewer are not.
            if fields.len() < labels.len() {
                return Err(Problem::FieldCount {
                    found: fields.len(),
                    expected: labels.len(),
                });
            }
            let t = parse_float(fields[elapsed])
                .map_err(|bad| bad.problem(fields[elapsed], labels[elapsed], "seconds"))?;
            for &(m, index) in &sizes {
                values[m.index()] = parse_mib(fields[index], labels[index])?;
            }
            in_time_order(t, previous, |line| line, labels[elapsed])
        })();
        match row {
            Ok(t) => {
                rec.push_row(t, &values);
                previous = Some((t, line.number));
            }
            Err(_) if line.cut => {
                warnings.push(cut_line_warning(file, line.number, line.text));
                break;
            }
            Err(problem) => return Err(fail(line.number, problem)),
        }
    }
    finish(rec, Format::Psrecord, warnings, file, header.number)
}

// ---------------------------------------------------------------------------------------------
// mprof .dat

fn read_mprof(text: &[u8], file: &str) -> Result<Loaded, InputError> {
    const MEM_COLUMN: &str = "MEM memory (MiB)";
    const TIME_COLUMN: &str = "MEM timestamp";
    let fail = |line: u64, problem| InputError {
        file: file.to_string(),
        line: Some(line),
        problem,
    };
    let mut rec = Recording::with_capacity(estimate_lines(text));
    let mut warnings = Vec::new();
    let mut values = [f64::NAN; Metric::COUNT];
    // (raw timestamp, line): elapsed time counts from the first MEM line.
    let mut first_time: Option<f64> = None;
    let mut previous: Option<(f64, u64)> = None;
    let mut child_lines = 0usize;
    let mut unknown: Option<(u64, usize)> = None; // first such line, and how many
    let mut first_line = None;
    for line in numbered_lines(text) {
        let mut words = line
            .text
            .split(u8::is_ascii_whitespace)
            .filter(|w| !w.is_empty());
        let Some(keyword) = words.next() else {
            continue;
        };
        first_line.get_or_insert(line.number);
        match keyword {
            b"MEM" => {}
            b"CMDLINE" | b"FUNC" => continue,
            b"CHLD" => {
                child_lines += 1;
                continue;
            }
            _ if line.cut => {
                warnings.push(cut_line_warning(file, line.number, line.text));
                break;
            }
            _ => {
                let seen = unknown.get_or_insert((line.number, 0));
                seen.1 += 1;
                continue;
            }
        }
        let (mem, time) = (words.next(), words.next());
        let row = (|| {
            let (Some(mem), Some(time)) = (mem, time) else {
                return Err(Problem::FieldCount {
                    found: 1 + usize::from(mem.is_some()),
                    expected: 3,
                });
            };
            let timestamp =
                parse_float(time).map_err(|bad| bad.problem(time, TIME_COLUMN, "seconds"))?;
            let ordered = in_time_order(timestamp, previous, |line| line, TIME_COLUMN)?;
            values[Metric::Rss.index()] = parse_mib(mem, MEM_COLUMN)?;
            Ok(ordered)
        })();
        match row {
            Ok(timestamp) => {
                let start = *first_time.get_or_insert(timestamp);
                rec.push_row(timestamp - start, &values);
                previous = Some((timestamp, line.number));
            }
            Err(_) if line.cut => {
                warnings.push(cut_line_warning(file, line.number, line.text));
                break;
            }
            Err(problem) => return Err(fail(line.number, problem)),
        }
    }
    if child_lines > 0 {
        warnings.push(format!(
            "{file}: skipped {child_lines} CHLD lines (per-child memory from mprof \
             --multiprocess); only the main process's MEM lines are analysed"
        ));
    }
    if let Some((line, count)) = unknown {
        warnings.push(format!(
            "{file} line {line}: skipped {count} line(s) that are not MEM, CHLD, FUNC or CMDLINE"
        ));
    }
    finish(rec, Format::Mprof, warnings, file, first_line.unwrap_or(1))
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

fn finish(
    mut recording: Recording,
    format: Format,
    warnings: Vec<String>,
    file: &str,
    header_line: u64,
) -> Result<Loaded, InputError> {
    if recording.is_empty() {
        return Err(InputError {
            file: file.to_string(),
            line: Some(header_line),
            problem: Problem::NoSamples,
        });
    }
    recording.finish();
    Ok(Loaded {
        recording,
        format,
        warnings,
    })
}

/// Why a cell is not a usable number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BadNumber {
    NotANumber,
    NotFinite,
    Negative,
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

/// A size in bytes, NaN for an empty (unknown) cell. Plain digits take a fast path, the common
/// case by far; other spellings (`1e6`, `12.5`) are accepted through the float parser.
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
            return Ok(n as f64);
        }
    }
    let value = parse_float(cell)?;
    if value < 0.0 {
        return Err(BadNumber::Negative);
    }
    Ok(value + 0.0) // turns -0 into 0
}

/// A psrecord/mprof size in MiB, as whole bytes.
fn parse_mib(cell: &[u8], column: &str) -> Result<f64, Problem> {
    let mib = parse_float(cell)
        .and_then(|v| {
            if v < 0.0 {
                Err(BadNumber::Negative)
            } else {
                Ok(v)
            }
        })
        .map_err(|bad| bad.problem(cell, column, "MiB"))?;
    Ok((mib * MIB).round())
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
            value: t.to_string(),
            previous: before.to_string(),
            previous_line: line_of(at),
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

/// About how many lines `text` holds, from the line length in its first 64 KiB: enough to size
/// the columns once, without a pass over a large file.
fn estimate_lines(text: &[u8]) -> usize {
    let sample = &text[..text.len().min(64 * 1024)];
    let lines_in_sample = sample.iter().filter(|&&b| b == b'\n').count() + 1;
    // A little headroom, as later rows tend to be longer (bigger numbers, larger times).
    (text.len() / sample.len().max(1)) * lines_in_sample * 11 / 10 + 1
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
        let rec = parse("elapsed_s,rss_bytes\n0, 1024 \n1,1e3\n2,12.5\n3,-0\n4,\n").recording;
        let rss = rec.metric(Metric::Rss).unwrap();
        assert_eq!(rss[..4], [1024.0, 1000.0, 12.5, 0.0]);
        assert!(rss[4].is_nan());
    }

    #[test]
    fn size_fast_path_agrees_with_the_float_parser() {
        for cell in [
            "0",
            "7",
            "123456789012345678",
            "1234567890123456789",
            "18446744073709551615",
        ] {
            let expected: f64 = cell.parse().unwrap();
            assert_eq!(parse_size(cell.as_bytes()), Ok(expected), "{cell}");
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
        // Equal times are fine.
        assert_eq!(parse("elapsed_s,rss_bytes\n0,1\n0,2\n").recording.len(), 2);
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
}
