//! memwatch's own CSV, streamed and read back by series.

use super::*;
use std::collections::HashMap;

/// Where the columns memwatch reads sit in a header row.
struct CsvColumns {
    elapsed: usize,
    metrics: [Option<usize>; Metric::COUNT],
    event: Option<usize>,
    pid: Option<usize>,
    /// `limit_bytes`, on `cgroup` rows.
    limit: Option<usize>,
    width: usize,
}

impl CsvColumns {
    fn find(header: &csv::ByteRecord) -> Result<CsvColumns, Problem> {
        let mut elapsed = None;
        let mut metrics = [None; Metric::COUNT];
        let mut event = None;
        let mut pid = None;
        let mut limit = None;
        for (index, raw) in header.iter().enumerate() {
            let name = raw.trim_ascii();
            let slot = if name == b"elapsed_s" {
                &mut elapsed
            } else if name == b"event" {
                &mut event
            } else if name == b"pid" {
                &mut pid
            } else if name == crate::report::csv::LIMIT_COLUMN.as_bytes() {
                &mut limit
            } else if let Some(m) = Metric::ALL.iter().find(|m| m.column().as_bytes() == name) {
                &mut metrics[m.index()]
            } else {
                continue; // a column memwatch does not read (unix_ms, threads, or foreign)
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
            pid,
            limit,
            width: header.len(),
        })
    }

    /// Fills `values` from one row (NaN for an empty cell or an absent column) and returns
    /// its time. Every size cell is checked. Allocates only to report a problem.
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

/// One series while the file is read.
struct SeriesBuild {
    key: Option<SeriesKey>,
    rec: Recording,
    /// The previous row's time and where it starts (its line is only worked out for a message).
    previous: Option<(f64, u64)>,
    /// Where its first row starts, and that row's pid cell as written.
    first_at: u64,
    first_cell: String,
}

/// The series rows belong to, found by their `pid` cell.
struct SeriesIndex {
    built: Vec<SeriesBuild>,
    by_key: HashMap<Option<SeriesKey>, usize>,
    /// The previous row's pid cell and series: consecutive rows of one series (the common
    /// case) cost a comparison, not a parse and a lookup.
    last_cell: Vec<u8>,
    last: Option<usize>,
    /// Rows expected, for the first series' columns.
    lines: usize,
    kept: Kept,
}

impl SeriesIndex {
    /// Reads a row's values into `values`, and places it in its series (by its pid cell),
    /// after its series' previous row in time.
    fn read_row(
        &mut self,
        columns: &CsvColumns,
        record: &csv::ByteRecord,
        values: &mut [f64; Metric::COUNT],
        at: u64,
        source: &Source,
    ) -> Result<(f64, usize), Problem> {
        let t = columns.read_row(record, values)?;
        let pid_cell = columns
            .pid
            .map_or(&b""[..], |i| record.get(i).unwrap_or_default());
        let index = self.place(pid_cell, at, source)?;
        let several = self.built.len() > 1;
        let s = &mut self.built[index];
        in_time_order(t, s.previous, |at| source.line_at(at), "elapsed_s").map_err(
            |mut problem| {
                if let (Problem::TimeBackwards { series, .. }, true, Some(key)) =
                    (&mut problem, several, &s.key)
                {
                    *series = Some(key.to_string());
                }
                problem
            },
        )?;
        Ok((t, index))
    }

    fn new(lines: usize, kept: Kept) -> SeriesIndex {
        SeriesIndex {
            built: Vec::new(),
            by_key: HashMap::new(),
            last_cell: Vec::new(),
            last: None,
            lines,
            kept,
        }
    }

    /// The series of a row whose pid cell is `cell` (empty when there is no pid column) and
    /// which starts at `at`.
    fn place(&mut self, cell: &[u8], at: u64, source: &Source) -> Result<usize, Problem> {
        if let Some(last) = self.last
            && cell == self.last_cell.as_slice()
        {
            return Ok(last);
        }
        let key = SeriesKey::from_pid_cell(cell).map_err(|_| Problem::BadPid {
            value: shown(cell.trim_ascii()),
        })?;
        let index = match self.by_key.get(&key) {
            Some(&index) => index,
            None => {
                // Rows that name their series and rows that do not cannot be told apart.
                if let Some(other) = self.built.iter().find(|s| s.key.is_none() != key.is_none()) {
                    let quoted = |c: &str| {
                        if c.is_empty() {
                            "empty".to_string()
                        } else {
                            format!("'{c}'")
                        }
                    };
                    return Err(Problem::MixedPid {
                        here: quoted(&shown(cell.trim_ascii())),
                        there: quoted(&other.first_cell),
                        there_line: source.line_at(other.first_at),
                    });
                }
                // The first series gets room for every row; a tree's others grow as they go.
                let rows = if self.built.is_empty() { self.lines } else { 0 };
                self.built.push(SeriesBuild {
                    key: key.clone(),
                    rec: Recording::keeping(rows, self.kept),
                    previous: None,
                    first_at: at,
                    first_cell: shown(cell.trim_ascii()),
                });
                self.by_key.insert(key, self.built.len() - 1);
                self.built.len() - 1
            }
        };
        self.last_cell.clear();
        self.last_cell.extend_from_slice(cell);
        self.last = Some(index);
        Ok(index)
    }
}

pub(super) fn read_memwatch_csv<R: Read>(
    input: R,
    source: &Source,
    unterminated: bool,
    lines: usize,
    file: &str,
    options: &ReadOptions,
) -> Result<Loaded, InputError> {
    let fail = |line: u64, problem| InputError {
        file: file.to_string(),
        line: Some(line),
        problem,
    };
    let csv_fail = |e: csv::Error| {
        let line = source.line_at(e.position().map_or(0, |p| p.byte()));
        fail(line, Problem::Csv(e.to_string()))
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false) // read by hand, to know its line and to name its columns in errors
        .flexible(true) // rows of the wrong width get our own error, or the cut-line warning
        .buffer_capacity(CSV_BUFFER_BYTES)
        .from_reader(input);
    let mut record = csv::ByteRecord::new();
    reader.read_byte_record(&mut record).map_err(csv_fail)?;
    let header_line = source.line_at(start_of(&record));
    let columns = CsvColumns::find(&record).map_err(|p| fail(header_line, p))?;

    let kept = kept_mask(options);
    let keep = options.keep.unwrap_or(Kept::ALL);
    let mut in_header = [false; Metric::COUNT];
    for m in Metric::ALL {
        in_header[m.index()] = columns.metrics[m.index()].is_some();
    }
    let mut has_values = [false; Metric::COUNT];
    let mut series = SeriesIndex::new(lines, keep);
    let mut warnings = Vec::new();
    let mut values = [f64::NAN; Metric::COUNT];
    let mut last_limit = None;
    while reader.read_byte_record(&mut record).map_err(csv_fail)? {
        let at = start_of(&record);
        match series.read_row(&columns, &record, &mut values, at, source) {
            Ok((elapsed_s, index)) => {
                for m in Metric::ALL {
                    let v = &mut values[m.index()];
                    has_values[m.index()] |= !v.is_nan();
                    if !kept[m.index()] {
                        *v = f64::NAN;
                    }
                }
                if let Some(limit) = columns
                    .limit
                    .and_then(|i| parse_size(record.get(i).unwrap_or_default()).ok())
                    .filter(|l| l.is_finite())
                {
                    last_limit = Some(limit);
                }
                let s = &mut series.built[index];
                s.rec.push_row(elapsed_s, &values);
                if let Some(i) = columns.event {
                    push_events(&mut s.rec, elapsed_s, record.get(i).unwrap_or_default());
                }
                s.previous = Some((elapsed_s, at));
            }
            // A bad last line without a line end: the recorder was stopped while writing it.
            Err(_)
                if unterminated && !reader.read_byte_record(&mut record).map_err(csv_fail)? =>
            {
                let line = source.line_at(at);
                warnings.push(cut_line_warning(file, line, &source.text_from(at)));
                break;
            }
            Err(problem) => return Err(fail(source.line_at(at), problem)),
        }
    }

    let columns = ColumnFacts {
        in_header,
        kept,
        keep,
        has_values,
        limit_bytes: last_limit,
    };
    match judged_series(&series.built, options) {
        Ok(Some(judged)) => finish_series(series.built, judged, warnings, file, columns),
        Ok(None) => Err(fail(header_line, Problem::NoSamples)),
        Err(problem) => Err(InputError {
            file: file.to_string(),
            line: None,
            problem,
        }),
    }
}

/// The judged series and the others (a `--tree` run's members) as one recording.
fn finish_series(
    mut built: Vec<SeriesBuild>,
    judged: usize,
    warnings: Vec<String>,
    file: &str,
    columns: ColumnFacts,
) -> Result<Loaded, InputError> {
    let mut main = built.remove(judged);
    if !built.is_empty() {
        main.rec.events = run_events(&main.rec, built.iter().map(|s| &s.rec));
    }
    let others = built
        .into_iter()
        .filter_map(|mut s| {
            s.rec.finish();
            Some((s.key?, s.rec))
        })
        .collect();
    finish(
        main.rec,
        main.key,
        others,
        Format::Memwatch,
        warnings,
        file,
        columns,
    )
}

/// Which of the series read is judged: `None` when there are none.
fn judged_series(built: &[SeriesBuild], options: &ReadOptions) -> Result<Option<usize>, Problem> {
    let names = || {
        let mut names: Vec<String> = built
            .iter()
            .take(SERIES_NAMED_MAX)
            .map(|s| s.key.as_ref().map_or("unnamed".into(), |k| k.to_string()))
            .collect();
        if built.len() > SERIES_NAMED_MAX {
            names.push(format!("and {} more", built.len() - SERIES_NAMED_MAX));
        }
        names.join(", ")
    };
    if let Some(wanted) = &options.judge {
        return match built.iter().position(|s| s.key.as_ref() == Some(wanted)) {
            Some(index) => Ok(Some(index)),
            None if built.is_empty() => Ok(None),
            None => Err(Problem::SeriesNotFound {
                wanted: wanted.to_string(),
                found: names(),
            }),
        };
    }
    // A cgroup's rows are beside the processes': judged only when asked, or when alone.
    let processes: Vec<usize> = (0..built.len())
        .filter(|&i| !matches!(built[i].key, Some(SeriesKey::Cgroup(_))))
        .collect();
    match (built, processes.as_slice()) {
        ([], _) => Ok(None),
        ([_], _) => Ok(Some(0)),
        (_, []) => Ok(Some(0)),
        (_, [only]) => Ok(Some(*only)),
        _ => match built.iter().position(|s| s.key == Some(SeriesKey::Total)) {
            Some(index) => Ok(Some(index)),
            None => Err(Problem::NoSeriesToJudge { found: names() }),
        },
    }
}

/// The events of every series, in time order, each (time, event) once: a tick's event may be
/// written on its total row and on its process rows.
fn run_events<'a>(main: &Recording, others: impl Iterator<Item = &'a Recording>) -> Vec<Event> {
    let mut all: Vec<Event> = main.events.clone();
    for rec in others {
        all.extend(rec.events.iter().cloned());
    }
    all.sort_by(|a, b| a.elapsed_s.total_cmp(&b.elapsed_s)); // stable: a tick keeps its order
    let mut out: Vec<Event> = Vec::with_capacity(all.len());
    let mut tick_start = 0;
    for e in all {
        if out
            .last()
            .is_none_or(|last| last.elapsed_s.total_cmp(&e.elapsed_s).is_ne())
        {
            tick_start = out.len();
        }
        if !out[tick_start..].contains(&e) {
            out.push(e);
        }
    }
    out
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

/// Where a record starts as the csv crate reports it. That may be the `\n` of a preceding
/// `\r\n` (or blank lines): [`Source::line_at`] steps over line ends.
fn start_of(record: &csv::ByteRecord) -> u64 {
    record.position().map_or(0, |p| p.byte())
}

/// A file's bytes, read again only to report something: to turn a byte offset into a line
/// number, or to quote a cut line. Offsets count from after a BOM.
pub(super) enum Source<'a> {
    Memory(&'a [u8]),
    File { path: &'a Path, skip: u64 },
}

impl Source<'_> {
    /// The bytes from offset `at` on.
    fn reader_at(&self, at: u64) -> Option<Box<dyn Read + '_>> {
        match self {
            Source::Memory(text) => Some(Box::new(text.get(usize::try_from(at).ok()?..)?)),
            Source::File { path, skip } => {
                let mut f = File::open(path).ok()?;
                f.seek(SeekFrom::Start(skip + at)).ok()?;
                Some(Box::new(std::io::BufReader::new(f)))
            }
        }
    }

    /// The 1-based line of the record reported at byte `at`: the line ends before it, plus
    /// those it starts with. Counted from the bytes because the csv crate's own line count
    /// drifts on CRLF files; only called to report something, so it costs nothing per row.
    pub(super) fn line_at(&self, at: u64) -> u64 {
        let Some(mut reader) = self.reader_at(0) else {
            return 0;
        };
        let mut buf = vec![0u8; 64 * 1024];
        let (mut line, mut offset) = (1u64, 0u64);
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) | Err(_) => return line,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            let before = usize::try_from(at.saturating_sub(offset)).map_or(n, |b| b.min(n));
            line += chunk[..before].iter().filter(|&&b| b == b'\n').count() as u64;
            for &b in &chunk[before..] {
                if b != b'\r' && b != b'\n' {
                    return line;
                }
                line += u64::from(b == b'\n');
            }
            offset += n as u64;
        }
    }

    /// The text of the line reported at `at` (line ends before it skipped), its first
    /// few hundred bytes (enough to quote it shortened).
    fn text_from(&self, at: u64) -> Vec<u8> {
        let mut text = Vec::new();
        if let Some(reader) = self.reader_at(at) {
            let _ = reader.take(1024).read_to_end(&mut text);
        }
        let start = text
            .iter()
            .take_while(|&&b| matches!(b, b'\r' | b'\n'))
            .count();
        let line = text[start..]
            .split(|&b| b == b'\n')
            .next()
            .unwrap_or_default();
        line.strip_suffix(b"\r").unwrap_or(line).to_vec()
    }
}
