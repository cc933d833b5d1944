//! The streamed samples CSV: one header row, then one row per sample, flushed per row so a
//! killed run keeps every finished row. Formatting allocates nothing.

use crate::recording::Event;
use crate::sample::Sample;
use crate::sampler::{SampleSink, Tick};
use crate::series::SeriesKey;
use std::io::{self, Write};

pub const HEADER: [&str; 14] = [
    "elapsed_s",
    "unix_ms",
    "pid",
    "rss_bytes",
    "vsz_bytes",
    "anon_bytes",
    "file_bytes",
    "shmem_bytes",
    "swap_bytes",
    "hwm_bytes",
    "pss_bytes",
    "uss_bytes",
    "threads",
    "event",
];

/// With `--runtime`: the managed-heap columns, before `event`.
pub const HEAP_COLUMNS: [&str; 3] = ["heap_after_gc_bytes", "heap_used_bytes", "external_bytes"];

/// Where rows go: anything written to, which a file can also cut back to a length.
pub trait RowOut: Write {
    /// Cuts the output back to its first `len` bytes (the whole rows), where it can be.
    fn cut_to(&mut self, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// How the output is named in messages.
    fn label(&self) -> String {
        "the samples CSV".into()
    }
}

impl RowOut for Vec<u8> {
    fn cut_to(&mut self, len: u64) -> io::Result<()> {
        self.truncate(len as usize);
        Ok(())
    }
}

impl RowOut for io::Sink {}

impl RowOut for std::fs::File {
    /// A regular file is cut back; a device or FIFO cannot be.
    fn cut_to(&mut self, len: u64) -> io::Result<()> {
        if self.metadata()?.is_file() {
            self.set_len(len)?;
        }
        Ok(())
    }
}

impl<T: RowOut + ?Sized> RowOut for &mut T {
    fn cut_to(&mut self, len: u64) -> io::Result<()> {
        (**self).cut_to(len)
    }
    fn label(&self) -> String {
        (**self).label()
    }
}

/// With a memory cgroup read (`--cgroup`, or memwatch's own for `run --tree`): the limit on
/// the `cgroup` rows, before `event`.
pub const LIMIT_COLUMN: &str = "limit_bytes";

pub struct CsvWriter<W: RowOut> {
    out: W,
    /// The row being formatted, reused: one `write` per row, no allocation.
    row: Vec<u8>,
    /// The managed-heap columns are written (a runtime is asked): without one, the CSV is
    /// the same as a single process's always was.
    heap: bool,
    /// Bytes of whole rows written so far (the header included).
    written: u64,
    rows: u64,
    /// Why writing stopped (a full disk): the run goes on without the CSV.
    stopped: Option<String>,
    /// The `limit_bytes` column is written (a cgroup is read).
    limit: bool,
}

impl<W: RowOut> CsvWriter<W> {
    /// Writes and flushes the header at once, so an unwritable output fails before sampling.
    pub fn new(out: W, heap: bool) -> io::Result<Self> {
        Self::with_columns(out, heap, false)
    }

    /// `new`, with the `limit_bytes` column when `limit` (a cgroup is read).
    pub fn with_columns(mut out: W, heap: bool, limit: bool) -> io::Result<Self> {
        let mut row = Vec::with_capacity(256);
        let (common, event) = HEADER.split_at(HEADER.len() - 1);
        for name in common {
            row.extend_from_slice(name.as_bytes());
            row.push(b',');
        }
        if heap {
            for name in HEAP_COLUMNS {
                row.extend_from_slice(name.as_bytes());
                row.push(b',');
            }
        }
        if limit {
            row.extend_from_slice(LIMIT_COLUMN.as_bytes());
            row.push(b',');
        }
        row.extend_from_slice(event[0].as_bytes());
        row.push(b'\n');
        out.write_all(&row)?;
        out.flush()?;
        Ok(CsvWriter {
            out,
            written: row.len() as u64,
            row,
            heap,
            rows: 0,
            stopped: None,
            limit,
        })
    }

    /// Why the CSV stopped before the end of the run (`None`: every row is in it).
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// Writes the formatted row whole. When the output fails (a full disk), it is cut back
    /// to its last whole row, one line says so, and nothing more is written: the run goes
    /// on, judged from memory. A closed reader (`BrokenPipe`) is returned: it ends the run.
    fn put_row(&mut self) -> io::Result<()> {
        if self.stopped.is_some() {
            return Ok(());
        }
        match self
            .out
            .write_all(&self.row)
            .and_then(|()| self.out.flush())
        {
            Ok(()) => {
                self.written += self.row.len() as u64;
                self.rows += 1;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(e),
            Err(e) => {
                let cut = match self.out.cut_to(self.written) {
                    Ok(()) => format!("it ends on row {}, the last whole one", self.rows),
                    Err(c) => format!("it could not be cut back to its last whole row: {c}"),
                };
                let why = format!(
                    "cannot write the samples CSV {}: {e}; {cut}",
                    self.out.label()
                );
                eprintln!(
                    "memwatch: error: {why}. Sampling goes on; the verdict and the other outputs come at the end (exit code 2)"
                );
                self.stopped = Some(why);
                Ok(())
            }
        }
    }

    /// Writes one row and flushes it. `events` are the events of this tick, joined by `;`.
    /// Formatted by hand into one buffer (the numbers never need quoting; the event field is
    /// quoted as the csv crate's `QuoteStyle::Necessary` does), then one `write`.
    pub fn write(&mut self, s: &Sample, events: &[Event]) -> io::Result<()> {
        self.write_series(s, &SeriesKey::process(s.pid), events)
    }

    /// Writes one row of series `key` (`total` in the `pid` cell for the sum over a tree).
    pub fn write_series(
        &mut self,
        s: &Sample,
        key: &SeriesKey,
        events: &[Event],
    ) -> io::Result<()> {
        self.write_row(s, key, None, events)
    }

    /// Writes a `cgroup` row: its reading (working set in `rss_bytes`, no VSZ) and its limit.
    pub fn write_cgroup(
        &mut self,
        s: &Sample,
        limit: Option<u64>,
        events: &[Event],
    ) -> io::Result<()> {
        self.write_row(s, &SeriesKey::Cgroup(String::new()), limit, events)
    }

    /// Writes a row of series `key` with every size empty: absent at this time (a followed
    /// target between two processes), not 0.
    pub fn write_absent(
        &mut self,
        elapsed_s: f64,
        unix_ms: u64,
        key: &SeriesKey,
        events: &[Event],
    ) -> io::Result<()> {
        let mut num = itoa::Buffer::new();
        let row = &mut self.row;
        row.clear();
        row.extend_from_slice(millis_as_seconds(elapsed_s).as_bytes());
        row.push(b',');
        row.extend_from_slice(num.format(unix_ms).as_bytes());
        row.push(b',');
        if let Some(cell) = key.pid_cell(&mut num) {
            row.extend_from_slice(cell.as_bytes());
        }
        let empty = HEADER.len() - 4
            + if self.heap { HEAP_COLUMNS.len() } else { 0 }
            + usize::from(self.limit);
        for _ in 0..empty {
            row.push(b',');
        }
        self.finish_row(events)
    }

    fn write_row(
        &mut self,
        s: &Sample,
        key: &SeriesKey,
        limit: Option<u64>,
        events: &[Event],
    ) -> io::Result<()> {
        let mut num = itoa::Buffer::new();
        let row = &mut self.row;
        row.clear();
        row.extend_from_slice(millis_as_seconds(s.elapsed_s).as_bytes());
        row.push(b',');
        row.extend_from_slice(num.format(s.unix_ms).as_bytes());
        row.push(b',');
        if let Some(cell) = key.pid_cell(&mut num) {
            row.extend_from_slice(cell.as_bytes());
        }
        let cgroup = matches!(key, SeriesKey::Cgroup(_));
        row.push(b',');
        row.extend_from_slice(num.format(s.mem.rss).as_bytes());
        row.push(b',');
        if !cgroup {
            row.extend_from_slice(num.format(s.mem.vsz).as_bytes());
        }
        for v in [
            s.mem.anon,
            s.mem.file,
            s.mem.shmem,
            s.mem.swap,
            s.mem.hwm,
            s.pss,
            s.uss,
            s.mem.threads.map(u64::from),
        ] {
            row.push(b',');
            if let Some(v) = v {
                row.extend_from_slice(num.format(v).as_bytes());
            }
        }
        if self.heap {
            for v in [s.heap.after_gc, s.heap.used, s.heap.external] {
                row.push(b',');
                if let Some(v) = v {
                    row.extend_from_slice(num.format(v).as_bytes());
                }
            }
        }
        if self.limit {
            row.push(b',');
            if let Some(v) = limit {
                row.extend_from_slice(num.format(v).as_bytes());
            }
        }
        self.finish_row(events)
    }

    /// The event cell (quoted when it must be), the line end, one write and a flush.
    fn finish_row(&mut self, events: &[Event]) -> io::Result<()> {
        let row = &mut self.row;
        row.push(b',');
        let field = row.len();
        for (i, e) in events.iter().enumerate() {
            if i > 0 {
                row.push(b';');
            }
            write!(row, "{}", e.kind)?;
        }
        if row[field..]
            .iter()
            .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
        {
            let text = row.split_off(field);
            row.push(b'"');
            for &b in &text {
                if b == b'"' {
                    row.push(b'"');
                }
                row.push(b);
            }
            row.push(b'"');
        }
        row.push(b'\n');
        self.put_row()
    }
}

impl<W: RowOut> SampleSink for CsvWriter<W> {
    /// One row per sample of the tick, then the `total` row with `--tree` (or `--follow`;
    /// written empty while the target is absent), then the `cgroup` row; the tick's events go
    /// on its first row.
    fn tick(&mut self, tick: &Tick<'_>) -> io::Result<()> {
        let mut events = tick.events;
        for s in tick.samples {
            self.write(s, events)?;
            events = &[];
        }
        if let Some(total) = tick.total {
            self.write_series(total, &SeriesKey::Total, events)?;
            events = &[];
        } else if tick.absent {
            self.write_absent(tick.elapsed_s, tick.unix_ms, &SeriesKey::Total, events)?;
            events = &[];
        }
        if let Some(c) = tick.cgroup {
            self.write_cgroup(&c.as_sample(tick.elapsed_s, tick.unix_ms), c.limit, events)?;
        }
        Ok(())
    }
}

/// `12.345`: seconds with millisecond precision, formatted without allocating.
fn millis_as_seconds(seconds: f64) -> MillisText {
    let ms = (seconds * 1000.0).round().max(0.0) as u64;
    let mut text = MillisText {
        buf: [0; 24],
        len: 0,
    };
    let mut int = itoa::Buffer::new();
    let whole = int.format(ms / 1000).as_bytes();
    text.buf[..whole.len()].copy_from_slice(whole);
    let frac = ms % 1000;
    let tail = [
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ];
    text.buf[whole.len()..whole.len() + 4].copy_from_slice(&tail);
    text.len = whole.len() + 4;
    text
}

struct MillisText {
    buf: [u8; 24],
    len: usize,
}

impl MillisText {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recording::EventKind;
    use crate::sample::MemStatus;

    #[test]
    fn header_and_rows() {
        let mut buf = Vec::new();
        {
            let mut w = CsvWriter::new(&mut buf, true).expect("header");
            let s = Sample {
                elapsed_s: 1.2345,
                unix_ms: 1_700_000_000_123,
                pid: 42,
                mem: MemStatus {
                    rss: 4096,
                    vsz: 8192,
                    anon: Some(1024),
                    threads: Some(3),
                    ..MemStatus::default()
                },
                pss: None,
                uss: None,
                heap: crate::sample::ManagedHeap {
                    after_gc: Some(7),
                    ..Default::default()
                },
            };
            w.write(&s, &[]).expect("row");
            let ev = |k| Event {
                elapsed_s: 0.0,
                kind: k,
            };
            let events = [
                ev(EventKind::Signal("SIGUSR2".into())),
                ev(EventKind::Dump("/tmp/a,b.heapsnapshot".into())),
            ];
            w.write(
                &Sample {
                    elapsed_s: 61.0,
                    ..s
                },
                &events,
            )
            .expect("row");
        }
        let text = String::from_utf8(buf).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        // Without a runtime, the same columns as a single process always had.
        let mut plain = Vec::new();
        CsvWriter::new(&mut plain, false).expect("header");
        assert_eq!(
            String::from_utf8(plain).expect("utf8"),
            HEADER.join(",") + "\n"
        );
        assert_eq!(
            lines[0],
            "elapsed_s,unix_ms,pid,rss_bytes,vsz_bytes,anon_bytes,file_bytes,shmem_bytes,\
             swap_bytes,hwm_bytes,pss_bytes,uss_bytes,threads,heap_after_gc_bytes,\
             heap_used_bytes,external_bytes,event"
        );
        assert_eq!(
            lines[1],
            "1.235,1700000000123,42,4096,8192,1024,,,,,,,3,7,,,"
        );
        assert_eq!(
            lines[2],
            "61.000,1700000000123,42,4096,8192,1024,,,,,,,3,7,,,\"signal:SIGUSR2;dump:/tmp/a,b.heapsnapshot\""
        );
    }

    #[test]
    fn rows_are_what_the_csv_crate_writes() {
        let ev = |k| Event {
            elapsed_s: 0.0,
            kind: k,
        };
        let cases: Vec<Vec<Event>> = vec![
            vec![],
            vec![ev(EventKind::Settled)],
            vec![ev(EventKind::Dump("/tmp/a\"b.heapsnapshot".into()))],
            vec![ev(EventKind::Other("two\nlines\r".into()))],
            vec![
                ev(EventKind::Signal("SIGUSR2".into())),
                ev(EventKind::DumpStart("/x/y".into())),
            ],
        ];
        let s = Sample {
            elapsed_s: 0.0004,
            unix_ms: 1,
            pid: 7,
            mem: MemStatus {
                rss: u64::MAX,
                vsz: 0,
                swap: Some(5),
                hwm: Some(6),
                threads: Some(u32::MAX),
                ..MemStatus::default()
            },
            pss: Some(8),
            uss: Some(9),
            heap: crate::sample::ManagedHeap::default(),
        };
        let mut ours = Vec::new();
        let mut theirs = csv::Writer::from_writer(Vec::new());
        theirs.write_record(HEADER).expect("header");
        {
            let mut w = CsvWriter::new(&mut ours, false).expect("header");
            for events in &cases {
                w.write(&s, events).expect("row");
                let joined: Vec<String> = events.iter().map(|e| e.kind.to_string()).collect();
                let mut fields: Vec<String> = vec![
                    "0.000".into(),
                    "1".into(),
                    "7".into(),
                    u64::MAX.to_string(),
                    "0".into(),
                ];
                fields.extend(["", "", ""].map(String::from));
                fields.extend(["5", "6", "8", "9"].map(String::from));
                fields.push(u32::MAX.to_string());
                fields.push(joined.join(";"));
                theirs.write_record(&fields).expect("row");
            }
        }
        let theirs = theirs.into_inner().expect("flush");
        assert_eq!(
            String::from_utf8(ours).expect("utf8"),
            String::from_utf8(theirs).expect("utf8")
        );
    }

    /// A file on a disk that fills up after `room` bytes: the last write is cut short, as
    /// the kernel does, then ENOSPC.
    struct FullDisk {
        data: Vec<u8>,
        room: usize,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.room - self.data.len());
            if n == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.data.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl RowOut for FullDisk {
        fn cut_to(&mut self, len: u64) -> io::Result<()> {
            self.data.truncate(len as usize);
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_stops_the_csv_on_a_whole_row() {
        let s = Sample {
            elapsed_s: 1.0,
            unix_ms: 1_700_000_000_000,
            pid: 42,
            mem: MemStatus {
                rss: 4096,
                vsz: 8192,
                ..MemStatus::default()
            },
            pss: None,
            uss: None,
            heap: crate::sample::ManagedHeap::default(),
        };
        let mut w = CsvWriter::new(
            FullDisk {
                data: Vec::new(),
                room: 400,
            },
            false,
        )
        .expect("header");
        for _ in 0..20 {
            w.write(&s, &[])
                .expect("a full disk is not an error of the run");
        }
        let why = w.stopped().expect("stopped").to_string();
        assert!(why.contains("No space left on device"), "{why}");
        let text = String::from_utf8(w.out.data.clone()).expect("utf8");
        assert!(text.ends_with('\n'));
        let rows = text.lines().count() - 1;
        assert!(why.contains(&format!("row {rows},")), "{why}");
        assert!(text.lines().all(|l| l.split(',').count() == HEADER.len()));
    }

    /// A cgroup's row has no VSZ or threads, its limit in `limit_bytes`; an absent row has
    /// every size empty; both have the header's width, as the csv crate reads them.
    #[test]
    fn cgroup_and_absent_rows() {
        let mut buf = Vec::new();
        {
            let mut w = CsvWriter::with_columns(&mut buf, false, true).expect("header");
            let reading = crate::cgroup::series::CgroupReading {
                usage: 300,
                working_set: 200,
                anon: Some(150),
                file: Some(100),
                shmem: Some(0),
                peak: Some(400),
                limit: Some(1000),
                ..Default::default()
            };
            w.write_cgroup(&reading.as_sample(2.0, 9), reading.limit, &[])
                .expect("row");
            let gone = [Event {
                elapsed_s: 3.0,
                kind: EventKind::gone(77),
            }];
            w.write_absent(3.0, 10, &SeriesKey::Total, &gone)
                .expect("row");
        }
        let text = String::from_utf8(buf).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].ends_with(",threads,limit_bytes,event"),
            "{}",
            lines[0]
        );
        assert_eq!(lines[1], "2.000,9,cgroup,200,,150,100,0,,400,,,,1000,");
        assert_eq!(lines[2], "3.000,10,total,,,,,,,,,,,,gone:77");
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let width = reader.headers().expect("header").len();
        for r in reader.records() {
            assert_eq!(r.expect("row").len(), width);
        }
    }

    #[test]
    fn seconds_text() {
        assert_eq!(millis_as_seconds(0.0).as_bytes(), b"0.000");
        assert_eq!(millis_as_seconds(0.0005).as_bytes(), b"0.001");
        assert_eq!(millis_as_seconds(3599.9996).as_bytes(), b"3600.000");
    }
}
