//! `--all`'s samples CSV: the same columns and rows as any run's (`csv.rs` formats them), a
//! row per process per tick and the machine's `total` row, but written with one `write` per
//! tick instead of one per row: a thousand processes are a thousand rows a tick. A killed
//! run keeps every finished tick.

use crate::report::csv::{CsvWriter, RowOut};
use crate::report::output::CsvOut;
use crate::sampler::machine::{MachineSink, MachineTick};
use crate::sampler::{SampleSink, Tick};
use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;

/// A buffer the row formatter writes into; flushing it is the tick's business.
#[derive(Clone, Default)]
struct TickBuffer(Rc<RefCell<Vec<u8>>>);

/// Rows are whole in the buffer; the tick's single write is checked by `BatchCsv`.
impl RowOut for TickBuffer {}

impl Write for TickBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // rows are flushed a tick at a time
    }
}

pub struct BatchCsv<W: Write = CsvOut> {
    rows: CsvWriter<TickBuffer>,
    buffer: TickBuffer,
    out: W,
}

impl<W: Write> BatchCsv<W> {
    /// Writes and flushes the header at once, so an unwritable output fails before sampling.
    pub fn new(out: W) -> io::Result<BatchCsv<W>> {
        let buffer = TickBuffer::default();
        let rows = CsvWriter::new(buffer.clone(), false)?;
        let mut csv = BatchCsv { rows, buffer, out };
        csv.flush_tick()?;
        Ok(csv)
    }

    fn flush_tick(&mut self) -> io::Result<()> {
        let mut bytes = self.buffer.0.borrow_mut();
        let written = self.out.write_all(&bytes).and_then(|()| self.out.flush());
        bytes.clear();
        written
    }
}

impl<W: Write> MachineSink for BatchCsv<W> {
    fn tick(&mut self, tick: &MachineTick<'_>) -> io::Result<()> {
        let as_tick = Tick {
            samples: tick.samples,
            total: Some(tick.total),
            events: &[],
            recording: &crate::recording::Recording::default(),
            taken: tick.taken,
            missed: tick.missed,
            now: tick.now,
            elapsed_s: tick.total.elapsed_s,
            unix_ms: tick.total.unix_ms,
            cgroup: None,
            absent: false,
        };
        self.rows.tick(&as_tick)?;
        self.flush_tick()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Thresholds;
    use crate::board::Board;
    use crate::sample::{MemStatus, Metric, Sample};
    use std::time::Instant;

    #[derive(Clone, Default)]
    struct Counting(Rc<RefCell<(Vec<u8>, usize)>>);

    impl Write for Counting {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let mut c = self.0.borrow_mut();
            c.0.extend_from_slice(bytes);
            c.1 += 1;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_write_a_tick_with_a_row_per_process_and_the_total() {
        let out = Counting::default();
        let mut csv = BatchCsv::new(Box::new(out.clone())).expect("header");
        let s = |pid, rss| Sample {
            elapsed_s: 1.5,
            unix_ms: 99,
            pid,
            mem: MemStatus {
                rss,
                vsz: 2 * rss,
                anon: Some(rss / 2),
                ..MemStatus::default()
            },
            ..Sample::default()
        };
        let samples = [s(10, 4096), s(11, 8192)];
        let total = s(0, 12288);
        let board = Board::new(Metric::Rss, Thresholds::default(), false);
        let tick = MachineTick {
            elapsed_s: 1.5,
            unix_ms: 99,
            now: Instant::now(),
            samples: &samples,
            total: &total,
            board: &board,
            counts: board.counts(),
            degraded: 0,
            taken: 1,
            missed: 0,
        };
        csv.tick(&tick).expect("tick");
        let (bytes, writes) = out.0.borrow().clone();
        assert_eq!(writes, 2, "the header, then one write for the tick");
        let text = String::from_utf8(bytes).expect("utf8");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("elapsed_s,unix_ms,pid,rss_bytes,vsz_bytes,anon_bytes,"));
        assert!(
            lines[1].starts_with("1.500,99,10,4096,8192,2048,,"),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("1.500,99,11,8192,"), "{}", lines[2]);
        assert!(
            lines[3].starts_with("1.500,99,total,12288,"),
            "{}",
            lines[3]
        );
        assert_eq!(lines.len(), 4);
    }
}
