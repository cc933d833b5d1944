//! The streamed samples CSV: one header row, then one row per sample, flushed per row so a
//! killed run keeps every finished row. Formatting allocates nothing.

use crate::recording::Event;
use crate::sample::Sample;
use crate::sampler::{SampleSink, Tick};
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

pub struct CsvWriter<W: Write> {
    out: csv::Writer<W>,
    /// The managed-heap columns are written (a runtime is asked): without one, the CSV is
    /// the same as a single process's always was.
    heap: bool,
}

impl<W: Write> CsvWriter<W> {
    /// Writes and flushes the header at once, so an unwritable output fails before sampling.
    pub fn new(out: W, heap: bool) -> io::Result<Self> {
        let mut out = csv::WriterBuilder::new()
            .buffer_capacity(4096)
            .from_writer(out);
        let (common, event) = HEADER.split_at(HEADER.len() - 1);
        for name in common {
            out.write_field(name)?;
        }
        if heap {
            for name in HEAP_COLUMNS {
                out.write_field(name)?;
            }
        }
        out.write_field(event[0])?;
        out.write_record(None::<&[u8]>)?;
        out.flush()?;
        Ok(CsvWriter { out, heap })
    }

    /// Writes one row and flushes it. `events` are the events of this tick, joined by `;`.
    pub fn write(&mut self, s: &Sample, events: &[Event]) -> io::Result<()> {
        let mut num = itoa::Buffer::new();
        let out = &mut self.out;
        out.write_field(millis_as_seconds(s.elapsed_s).as_bytes())?;
        out.write_field(num.format(s.unix_ms))?;
        out.write_field(num.format(s.pid))?;
        out.write_field(num.format(s.mem.rss))?;
        out.write_field(num.format(s.mem.vsz))?;
        for v in [
            s.mem.anon,
            s.mem.file,
            s.mem.shmem,
            s.mem.swap,
            s.mem.hwm,
            s.pss,
            s.uss,
        ] {
            out.write_field(v.map_or("", |v| num.format(v)))?;
        }
        out.write_field(s.mem.threads.map_or("", |v| num.format(v)))?;
        if self.heap {
            for v in [s.heap.after_gc, s.heap.used, s.heap.external] {
                out.write_field(v.map_or("", |v| num.format(v)))?;
            }
        }
        match events {
            [] => out.write_field("")?,
            [one] => out.write_field(one.kind.to_string())?,
            many => {
                let joined: Vec<String> = many.iter().map(|e| e.kind.to_string()).collect();
                out.write_field(joined.join(";"))?;
            }
        }
        out.write_record(None::<&[u8]>)?;
        out.flush()
    }
}

impl<W: Write> SampleSink for CsvWriter<W> {
    /// One row per sample of the tick; the tick's events go on its first row.
    fn tick(&mut self, tick: &Tick<'_>) -> io::Result<()> {
        let mut events = tick.events;
        for s in tick.samples {
            self.write(s, events)?;
            events = &[];
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
    fn seconds_text() {
        assert_eq!(millis_as_seconds(0.0).as_bytes(), b"0.000");
        assert_eq!(millis_as_seconds(0.0005).as_bytes(), b"0.001");
        assert_eq!(millis_as_seconds(3599.9996).as_bytes(), b"3600.000");
    }
}
