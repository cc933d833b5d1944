//! `--all`'s live view on stderr: the machine's processes (or groups) ranked, the ones whose
//! memory grows fastest first, with their RSS now, growth since first read, the floor's
//! slope, the verdict and how long each has been watched. On a terminal it is redrawn in
//! place on the alternate screen (like `top`) and `q` ends the run; piped, a plain block of
//! the top rows every 10 seconds; nothing with --quiet.

use crate::board::{Board, Unit};
use crate::report::live::LiveMode;
use crate::sampler::machine::{MachineSink, MachineTick};
use crate::units::{Bytes, Count, Delta, Elapsed, Rate};
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// Rows of a plain block.
const PLAIN_ROWS: usize = 10;

pub struct TableView {
    mode: LiveMode,
    /// Keys are read (the header says `q` quits).
    keys: bool,
    /// `process` or `group`.
    what: &'static str,
    screen: String,
    cell: String,
    last_draw: Option<Instant>,
    on_screen: bool,
    /// Said while the view was up: printed again once it is gone.
    notes: Vec<String>,
}

impl TableView {
    /// `grouped`: the units are groups (`--group-by`); `keys`: `q` is read.
    pub fn new(mode: LiveMode, grouped: bool, keys: bool) -> TableView {
        TableView {
            mode,
            keys,
            what: if grouped { "group" } else { "process" },
            screen: String::with_capacity(16 * 1024),
            cell: String::with_capacity(64),
            last_draw: None,
            on_screen: false,
            notes: Vec::new(),
        }
    }

    /// The view's text for `tick`: a header, the column titles, then up to `rows` units,
    /// each line at most `width` characters.
    fn compose(&mut self, tick: &MachineTick<'_>, rows: usize, width: usize, eol: &str) {
        let c = tick.counts;
        self.screen.clear();
        let mut header = format!(
            "memwatch --all  {}  {} judged  {} growing  machine RSS {}  {}",
            Count(c.live as u64, self.what),
            c.judged,
            c.growing,
            Bytes(tick.total.mem.rss as f64),
            Elapsed(tick.elapsed_s)
        );
        if tick.degraded > 0 {
            let _ = write!(header, "  {} reopened each tick", tick.degraded);
        }
        if tick.missed > 0 {
            let _ = write!(header, "  {} ticks missed", tick.missed);
        }
        if self.keys {
            header.push_str("  (q quits)");
        }
        self.line(&header, width, eol);
        let id = if self.what == "groups" {
            "PROCS"
        } else {
            "PID"
        };
        let titles = format!(
            "{id:>7}  {:<16} {:>10} {:>11} {:>14}  {:<18} {:>9}",
            "NAME", "RSS", "GROWTH", "SLOPE", "VERDICT", "WATCHED"
        );
        self.line(&titles, width, eol);
        let color = self.mode.color();
        for &unit in tick.board.order().iter().take(rows) {
            if let Some(u) = tick.board.unit(unit) {
                let row = row(u, color);
                self.line(&row, width, eol);
            }
        }
        if let Some(note) = self.notes.last() {
            let note = format!("note: {note}");
            self.line(&note, width, eol);
        }
    }

    /// Appends `text` cut to `width` characters (escape sequences not counted).
    fn line(&mut self, text: &str, width: usize, eol: &str) {
        self.cell.clear();
        let mut shown = 0;
        let mut escape = false;
        for ch in text.chars() {
            if ch == '\x1b' {
                escape = true;
            }
            if !escape {
                if shown >= width {
                    break;
                }
                shown += 1;
            }
            self.cell.push(ch);
            if escape && ch == 'm' {
                escape = false;
            }
        }
        if self.mode.color() && self.cell.contains('\x1b') {
            self.cell.push_str("\x1b[0m");
        }
        self.screen.push_str(&self.cell);
        self.screen.push_str(eol);
    }

    fn draw_terminal(&mut self, tick: &MachineTick<'_>) {
        let (cols, lines) = terminal_size().unwrap_or((120, 30));
        let rows = lines.saturating_sub(3).max(1);
        self.compose(tick, rows, cols.max(20), "\x1b[K\r\n");
        let mut err = io::stderr().lock();
        if !self.on_screen {
            // the alternate screen, cursor hidden: the shell's screen comes back at the end
            let _ = err.write_all(b"\x1b[?1049h\x1b[?25l");
            self.on_screen = true;
        }
        let _ = err.write_all(b"\x1b[H");
        let _ = err.write_all(self.screen.as_bytes());
        let _ = err.write_all(b"\x1b[J");
        let _ = err.flush();
    }

    fn draw_plain(&mut self, tick: &MachineTick<'_>) {
        self.compose(tick, PLAIN_ROWS, 200, "\n");
        let mut err = io::stderr().lock();
        for line in self.screen.lines() {
            let _ = writeln!(err, "memwatch: {line}");
        }
        let _ = err.flush();
    }
}

/// One unit's row.
fn row(u: &Unit, color: bool) -> String {
    let id = match u.pid() {
        Some(pid) => pid.to_string(),
        None => format!("x{}", u.members),
    };
    let name: String = u.name.chars().take(16).collect();
    let slope = u
        .judged
        .and_then(|j| j.slope_bytes_per_s)
        .map_or_else(|| "-".to_string(), |s| Rate(s).to_string());
    let verdict = match u.judged {
        Some(j) => format!("{} ({})", j.verdict, j.pattern),
        None => "watching".to_string(),
    };
    let (paint, reset) = if color && u.is_growing() {
        ("\x1b[1;31m", "\x1b[0m")
    } else {
        ("", "")
    };
    format!(
        "{paint}{id:>7}  {name:<16} {:>10} {:>11} {slope:>14}  {verdict:<18} {:>9}{reset}",
        Bytes(u.now.rss as f64).to_string(),
        Delta(u.growth_bytes() as f64).to_string(),
        Elapsed(u.watched_s()).to_string(),
    )
}

/// Columns and lines of the terminal on stderr.
fn terminal_size() -> Option<(usize, usize)> {
    // SAFETY: a zeroed winsize is a valid out-parameter for TIOCGWINSZ.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: ioctl on our own stderr with a pointer to the struct.
    let rc = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col as usize, ws.ws_row as usize))
}

impl MachineSink for TableView {
    fn tick(&mut self, tick: &MachineTick<'_>) -> io::Result<()> {
        let every = match self.mode {
            LiveMode::Off => return Ok(()),
            LiveMode::Terminal { .. } => Duration::from_millis(250),
            LiveMode::Plain { every } => every,
        };
        // the first plain block once the first verdicts can be in
        if let (LiveMode::Plain { .. }, None) = (self.mode, self.last_draw) {
            self.last_draw = Some(tick.now);
            return Ok(());
        }
        if self
            .last_draw
            .is_some_and(|t| tick.now.duration_since(t) < every)
        {
            return Ok(());
        }
        self.last_draw = Some(tick.now);
        match self.mode {
            LiveMode::Terminal { .. } => self.draw_terminal(tick),
            _ => self.draw_plain(tick),
        }
        Ok(())
    }

    fn note(&mut self, message: &str) {
        match self.mode {
            LiveMode::Off => {}
            LiveMode::Terminal { .. } => self.notes.push(message.to_string()),
            LiveMode::Plain { .. } => eprintln!("memwatch: {message}"),
        }
    }

    fn finish(&mut self) {
        if self.on_screen {
            let mut err = io::stderr().lock();
            let _ = err.write_all(b"\x1b[?25h\x1b[?1049l");
            let _ = err.flush();
            self.on_screen = false;
            for note in &self.notes {
                let _ = writeln!(err, "memwatch: {note}");
            }
        }
    }
}

impl Drop for TableView {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The board's top rows as plain text, for tests and the end of a piped run.
pub fn plain_rows(board: &Board, rows: usize) -> Vec<String> {
    board
        .order()
        .iter()
        .take(rows)
        .filter_map(|&id| board.unit(id))
        .map(|u| row(u, false))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::Thresholds;
    use crate::sample::{MemStatus, Metric};

    #[test]
    fn rows_rank_the_leak_first_and_say_what_is_not_judged_yet() {
        let mut b = Board::new(Metric::Rss, Thresholds::default(), false);
        let leak = b.add_process(4242, 1, "leaky", None);
        let flat = b.add_process(7, 1, "a-very-long-process-name", None);
        for s in 0..30u64 {
            let m = |rss| MemStatus {
                rss,
                ..MemStatus::default()
            };
            b.add_sample(leak, &m((10 << 20) + s * (1 << 20)));
            b.add_sample(flat, &m(5 << 20));
            b.end_tick(s as f64);
            b.judge_due(s as f64, Duration::from_secs(1));
        }
        b.rank();
        let rows = plain_rows(&b, 10);
        assert_eq!(rows.len(), 2);
        assert!(
            rows[0].trim_start().starts_with("4242  leaky"),
            "{}",
            rows[0]
        );
        assert!(rows[0].contains("growing (linear)"), "{}", rows[0]);
        assert!(rows[0].contains("+1.00 MiB/s"), "{}", rows[0]);
        assert!(rows[0].contains("+29.0 MiB"), "{}", rows[0]);
        assert!(rows[0].ends_with("29 s"), "{}", rows[0]);
        assert!(
            rows[1].contains("a-very-long-proc "),
            "names cut to 16: {}",
            rows[1]
        );
        assert!(rows[1].contains("stable (flat)"), "{}", rows[1]);
        // a unit not judged yet says so, with no slope
        let mut fresh = Board::new(Metric::Rss, Thresholds::default(), true);
        let g = fresh.add_process(1, 1, "php-fpm", Some("php-fpm"));
        fresh.add_process(2, 1, "php-fpm", Some("php-fpm"));
        fresh.add_sample(
            g,
            &MemStatus {
                rss: 1 << 20,
                ..MemStatus::default()
            },
        );
        fresh.end_tick(0.0);
        fresh.rank();
        let rows = plain_rows(&fresh, 10);
        assert!(
            rows[0].trim_start().starts_with("x2  php-fpm"),
            "{}",
            rows[0]
        );
        assert!(
            rows[0].contains(" - ") && rows[0].contains("watching"),
            "{}",
            rows[0]
        );
    }

    #[test]
    fn lines_are_cut_to_the_width_without_counting_colours() {
        let mut v = TableView::new(LiveMode::Terminal { color: true }, false, true);
        v.line("\x1b[1;31mabcdef\x1b[0m", 3, "|");
        assert_eq!(v.screen, "\x1b[1;31mabc\x1b[0m|");
    }
}
