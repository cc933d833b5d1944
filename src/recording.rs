//! A whole run in memory, column by column: what the analyser and the reporters consume.
//! Filled live by the sampler, or read back from a CSV by `memwatch report`.

use crate::sample::{Metric, Sample};
use serde::Serialize;

/// Something that happened during a run, at a time on the run's clock.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    pub elapsed_s: f64,
    pub kind: EventKind,
}

/// What an event is. Its text form (`Display`/`parse`) is what the CSV `event` column holds.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum EventKind {
    /// `signal:SIGUSR2`: memwatch sent this signal.
    Signal(String),
    /// `settled`: a sample taken a settle time after a signal (the post-GC floor).
    Settled,
    /// `dump-start:<file>`: a heap dump file appeared.
    DumpStart(String),
    /// `dump:<file>`: a heap dump file is complete.
    Dump(String),
    /// Any other text found in a recorded CSV.
    Other(String),
}

/// The event text (an `Other` event) that ends a dump period whose dump failed:
/// `dump-failed:<file>`, `<file>` as in its `dump-start:`.
pub const DUMP_FAILED: &str = "dump-failed:";

/// What kind of event it is, from a closed list: summary.json's `events[].kind`, so a reader
/// can match on it (its text form `event` carries a file or a signal name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventType {
    /// memwatch sent a signal (`signal:SIGUSR2`).
    Signal,
    /// A sample taken a settle time after a signal.
    Settled,
    /// A heap dump file appeared, or the runtime started writing a snapshot.
    DumpStart,
    /// A heap dump or snapshot is complete.
    Dump,
    /// A snapshot the runtime was writing failed.
    DumpFailed,
    /// A snapshot was not taken (the memory left could not hold it).
    DumpSkipped,
    /// A JVM class histogram was written.
    Histogram,
    /// The `--load` command started, ended.
    LoadStart,
    LoadEnd,
    /// memwatch reached the runtime (Node inspector, JVM attach listener).
    RuntimeAttached,
    /// The runtime stopped answering, or refused.
    RuntimeFailed,
    /// memwatch closed what it opened in the runtime.
    RuntimeClosed,
    /// `--follow`: the target is gone (`gone:<pid>`), a new process took its place
    /// (`restart:<pid>`).
    Gone,
    Restart,
    /// What a tree's total was judged on (`judged:pss-sum`): a mark, not a moment.
    Judged,
    /// `--heap-snapshots`: the run ended before some of the snapshots asked for were taken.
    HeapSnapshotsNotTaken,
    /// Any other text, in a CSV memwatch did not write.
    Other,
}

impl EventType {
    pub const ALL: [EventType; 17] = [
        EventType::Signal,
        EventType::Settled,
        EventType::DumpStart,
        EventType::Dump,
        EventType::DumpFailed,
        EventType::DumpSkipped,
        EventType::Histogram,
        EventType::LoadStart,
        EventType::LoadEnd,
        EventType::RuntimeAttached,
        EventType::RuntimeFailed,
        EventType::RuntimeClosed,
        EventType::Gone,
        EventType::Restart,
        EventType::Judged,
        EventType::HeapSnapshotsNotTaken,
        EventType::Other,
    ];

    /// The name summary.json gives it: `signal`, `dump-start`, `load-end` ...
    pub fn name(self) -> &'static str {
        match self {
            EventType::Signal => "signal",
            EventType::Settled => "settled",
            EventType::DumpStart => "dump-start",
            EventType::Dump => "dump",
            EventType::DumpFailed => "dump-failed",
            EventType::DumpSkipped => "dump-skipped",
            EventType::Histogram => "histogram",
            EventType::LoadStart => "load-start",
            EventType::LoadEnd => "load-end",
            EventType::RuntimeAttached => "runtime-attached",
            EventType::RuntimeFailed => "runtime-failed",
            EventType::RuntimeClosed => "runtime-closed",
            EventType::Gone => "gone",
            EventType::Restart => "restart",
            EventType::Judged => "judged",
            EventType::HeapSnapshotsNotTaken => "heap-snapshots-not-taken",
            EventType::Other => "other",
        }
    }
}

/// `--follow`: the target has gone (`gone:<pid>`, on the first tick without it) and a new
/// process matching it was found (`restart:<pid>`, on its first tick). `Other` events, so
/// older readers keep them as text.
const GONE: &str = "gone:";
const RESTART: &str = "restart:";
/// What a tree's total was judged on (`judged:pss-sum`, `judged:cgroup`), on the first tick,
/// so that `report` judges what the live run judged. A mark, not something that happened:
/// the chart draws no line for it.
const JUDGED: &str = "judged:";

impl EventKind {
    pub fn gone(pid: i32) -> EventKind {
        EventKind::Other(format!("{GONE}{pid}"))
    }

    pub fn restart(pid: i32) -> EventKind {
        EventKind::Other(format!("{RESTART}{pid}"))
    }

    /// The PID of a `restart:` event.
    pub fn restarted(&self) -> Option<i32> {
        match self {
            EventKind::Other(text) => text.strip_prefix(RESTART)?.parse().ok(),
            _ => None,
        }
    }

    pub fn judged(series: &str) -> EventKind {
        EventKind::Other(format!("{JUDGED}{series}"))
    }

    /// The series a `judged:` mark names.
    pub fn judged_series(&self) -> Option<&str> {
        match self {
            EventKind::Other(text) => text.strip_prefix(JUDGED),
            _ => None,
        }
    }

    /// A mark about the recording rather than something that happened at a time.
    pub fn is_mark(&self) -> bool {
        self.judged_series().is_some()
    }
}

impl EventKind {
    /// Its kind, from the closed list. The kinds memwatch writes as text (load, runtime,
    /// failed or skipped dumps) are read from that text, as they are from a CSV.
    pub fn event_type(&self) -> EventType {
        match self {
            EventKind::Signal(_) => EventType::Signal,
            EventKind::Settled => EventType::Settled,
            EventKind::DumpStart(_) => EventType::DumpStart,
            EventKind::Dump(_) => EventType::Dump,
            EventKind::Other(text) => {
                let head = text.split_once(':').map_or(text.as_str(), |(head, _)| head);
                EventType::ALL
                    .into_iter()
                    .filter(|t| !matches!(t, EventType::Other))
                    .find(|t| t.name() == head)
                    .unwrap_or(EventType::Other)
            }
        }
    }

    pub fn parse(text: &str) -> EventKind {
        if text == "settled" {
            return EventKind::Settled;
        }
        match text.split_once(':') {
            Some(("signal", sig)) => EventKind::Signal(sig.to_string()),
            Some(("dump-start", file)) => EventKind::DumpStart(file.to_string()),
            Some(("dump", file)) => EventKind::Dump(file.to_string()),
            _ => EventKind::Other(text.to_string()),
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventKind::Signal(sig) => write!(f, "signal:{sig}"),
            EventKind::Settled => f.write_str("settled"),
            EventKind::DumpStart(file) => write!(f, "dump-start:{file}"),
            EventKind::Dump(file) => write!(f, "dump:{file}"),
            EventKind::Other(text) => f.write_str(text),
        }
    }
}

/// How a metric's column is held in memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Keep {
    /// Not at all.
    #[default]
    No,
    /// Every byte (`f64`, exact below 2^53): a series the analyser may judge.
    Exact,
    /// To 7 significant digits (`f32`, half the memory): only drawn on the chart or given in
    /// words, never judged. A month of anon at 10 Hz is 100 MB less.
    Drawn,
}

/// Which metrics a recording keeps, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kept([Keep; Metric::COUNT]);

impl Kept {
    /// Every metric, exactly.
    pub const ALL: Kept = Kept([Keep::Exact; Metric::COUNT]);

    /// `exact` exactly, and the other metrics of `drawn` to draw.
    pub fn new(exact: &[Metric], drawn: &[Metric]) -> Kept {
        let mut kept = [Keep::No; Metric::COUNT];
        for &m in drawn {
            kept[m.index()] = Keep::Drawn;
        }
        for &m in exact {
            kept[m.index()] = Keep::Exact;
        }
        Kept(kept)
    }

    pub fn of(&self, m: Metric) -> Keep {
        self.0[m.index()]
    }

    pub fn keeps(&self, m: Metric) -> bool {
        self.of(m) != Keep::No
    }
}

/// A metric's column, as kept.
#[derive(Clone, Copy, Debug)]
pub enum Line<'a> {
    Exact(&'a [f64]),
    Drawn(&'a [f32]),
}

impl<'a> Line<'a> {
    pub fn len(&self) -> usize {
        match self {
            Line::Exact(v) => v.len(),
            Line::Drawn(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = f64> + 'a {
        let (exact, drawn) = match *self {
            Line::Exact(v) => (Some(v.iter().copied()), None),
            Line::Drawn(v) => (None, Some(v.iter().map(|&x| f64::from(x)))),
        };
        exact
            .into_iter()
            .flatten()
            .chain(drawn.into_iter().flatten())
    }
}

/// Samples stored by column. Sizes are bytes, `f64` (exact below 2^53) for the columns kept
/// exactly, `f32` for those only drawn; an unknown cell is NaN. A metric column that was
/// never recorded is empty.
#[derive(Clone, Debug, Default)]
pub struct Recording {
    pub time_s: Vec<f64>,
    columns: [Vec<f64>; Metric::COUNT],
    drawn: [Vec<f32>; Metric::COUNT],
    pub events: Vec<Event>,
    /// The metrics `push` keeps; `None`: all of them, exactly.
    kept: Option<Kept>,
}

/// Appends `value` to `col` as row `row`, padding the rows it missed with NaN; a column with
/// no value yet stays empty.
fn put<T: Copy>(col: &mut Vec<T>, row: usize, value: Option<T>, nan: T) {
    match value {
        Some(v) => {
            if col.len() < row {
                col.resize(row, nan);
            }
            col.push(v);
        }
        None if !col.is_empty() => col.push(nan),
        None => {}
    }
}

impl Recording {
    /// A recording that keeps only the metrics `kept` names, as it says (a live run keeps what
    /// the analysis and the chart use; the CSV has every column), with room for `samples`
    /// rows of them.
    pub fn keeping(samples: usize, kept: Kept) -> Recording {
        let mut rec = Recording {
            time_s: Vec::with_capacity(samples),
            ..Recording::default()
        };
        for m in Metric::ALL {
            match kept.of(m) {
                Keep::Exact => rec.columns[m.index()].reserve(samples),
                Keep::Drawn => rec.drawn[m.index()].reserve(samples),
                Keep::No => {}
            }
        }
        rec.kept = Some(kept);
        rec
    }

    fn keep(&self, m: Metric) -> Keep {
        self.kept.map_or(Keep::Exact, |k| k.of(m))
    }

    /// Appends a sample. Columns that are still unknown stay empty, so only the metrics
    /// that were ever recorded take memory.
    pub fn push(&mut self, s: &Sample) {
        let row = self.time_s.len();
        self.time_s.push(s.elapsed_s);
        for m in Metric::ALL {
            let i = m.index();
            match self.keep(m) {
                Keep::Exact => put(
                    &mut self.columns[i],
                    row,
                    m.of(s).map(|v| v as f64),
                    f64::NAN,
                ),
                Keep::Drawn => put(&mut self.drawn[i], row, m.of(s).map(|v| v as f32), f32::NAN),
                Keep::No => {}
            }
        }
    }

    /// Appends one row given column by column (used when reading a CSV back).
    /// `values[m.index()]` is NaN when the cell is empty or the column absent.
    pub fn push_row(&mut self, elapsed_s: f64, values: &[f64; Metric::COUNT]) {
        let row = self.time_s.len();
        self.time_s.push(elapsed_s);
        for m in Metric::ALL {
            let i = m.index();
            let v = Some(values[i]).filter(|v| !v.is_nan());
            match self.keep(m) {
                Keep::Exact => put(&mut self.columns[i], row, v, f64::NAN),
                Keep::Drawn => put(&mut self.drawn[i], row, v.map(|v| v as f32), f32::NAN),
                Keep::No => {}
            }
        }
    }

    pub fn len(&self) -> usize {
        self.time_s.len()
    }

    pub fn is_empty(&self) -> bool {
        self.time_s.is_empty()
    }

    /// The metric's exact column, as long as `time_s`, or `None` if it was never recorded
    /// (or kept only to draw).
    pub fn metric(&self, m: Metric) -> Option<&[f64]> {
        let col = &self.columns[m.index()];
        (!col.is_empty() && col.len() == self.time_s.len()).then_some(col.as_slice())
    }

    /// The metric's column as kept, exact or to draw, or `None` if it was never recorded.
    pub fn line(&self, m: Metric) -> Option<Line<'_>> {
        let drawn = &self.drawn[m.index()];
        self.metric(m).map(Line::Exact).or_else(|| {
            (!drawn.is_empty() && drawn.len() == self.time_s.len()).then_some(Line::Drawn(drawn))
        })
    }

    /// Like `metric`, but pads a column that stopped being recorded with NaN first.
    pub fn finish(&mut self) {
        let n = self.time_s.len();
        for col in &mut self.columns {
            if !col.is_empty() && col.len() < n {
                col.resize(n, f64::NAN);
            }
        }
        for col in &mut self.drawn {
            if !col.is_empty() && col.len() < n {
                col.resize(n, f32::NAN);
            }
        }
    }

    /// Periods when a heap dump was being written, which can multiply the target's RSS:
    /// left out of the growth analysis. A period runs from the signal that asked for the
    /// dump (the target starts writing before the file is first seen), or from `dump-start`,
    /// to `dump` (complete), or to the end of the run if it never completed.
    pub fn dump_periods(&self) -> Vec<(f64, f64)> {
        const ASKED_WITHIN_S: f64 = 2.0;
        let end = self.time_s.last().copied().unwrap_or(0.0);
        let mut periods = Vec::new();
        for (i, e) in self.events.iter().enumerate() {
            if let EventKind::DumpStart(file) = &e.kind {
                let done = self.events[i..].iter().find(|d| match &d.kind {
                    EventKind::Dump(f) => f == file,
                    EventKind::Other(t) => t.strip_prefix(DUMP_FAILED) == Some(file.as_str()),
                    _ => false,
                });
                let asked = self.events[..i]
                    .iter()
                    .rev()
                    .find(|s| matches!(s.kind, EventKind::Signal(_)))
                    .map(|s| s.elapsed_s)
                    .filter(|&t| e.elapsed_s - t <= ASKED_WITHIN_S);
                periods.push((
                    asked.unwrap_or(e.elapsed_s),
                    done.map_or(end, |d| d.elapsed_s),
                ));
            }
        }
        periods
    }

    /// The times and `values` of the samples marked `settled` (taken --settle after a
    /// signal): the post-GC series.
    pub fn settled(&self, values: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let mut out = (Vec::new(), Vec::new());
        for e in self.events.iter().filter(|e| e.kind == EventKind::Settled) {
            if let Ok(i) = self.time_s.binary_search_by(|t| t.total_cmp(&e.elapsed_s))
                && let Some(&v) = values.get(i)
            {
                out.0.push(e.elapsed_s);
                out.1.push(v);
            }
        }
        out
    }

    pub fn duration_s(&self) -> f64 {
        match (self.time_s.first(), self.time_s.last()) {
            (Some(first), Some(last)) => last - first,
            _ => 0.0,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sample::MemStatus;

    #[test]
    fn event_text_round_trips() {
        for text in [
            "signal:SIGUSR2",
            "settled",
            "dump:/tmp/a b.heapsnapshot",
            "dump-start:x",
            "load-end",
        ] {
            assert_eq!(EventKind::parse(text).to_string(), text);
        }
        assert_eq!(EventKind::parse("settled"), EventKind::Settled);
    }

    /// Regression (issue 20 item 17): summary.json's events were free text; each now has a
    /// kind from a closed list, the same for the events a run records and for their text
    /// read back from a CSV.
    #[test]
    fn regression_issue20_item17_event_kinds_are_a_closed_list() {
        for (text, kind) in [
            ("signal:SIGUSR2", EventType::Signal),
            ("settled", EventType::Settled),
            ("dump-start:a.heapsnapshot", EventType::DumpStart),
            ("dump:a.heapsnapshot", EventType::Dump),
            ("dump-failed:a.heapsnapshot", EventType::DumpFailed),
            ("dump-skipped", EventType::DumpSkipped),
            ("histogram:h-1.txt", EventType::Histogram),
            ("load-start", EventType::LoadStart),
            ("load-end", EventType::LoadEnd),
            ("runtime-attached", EventType::RuntimeAttached),
            ("runtime-failed", EventType::RuntimeFailed),
            ("runtime-closed", EventType::RuntimeClosed),
            ("gone:4242", EventType::Gone),
            ("restart:4243", EventType::Restart),
            ("judged:pss-sum", EventType::Judged),
            ("heap-snapshots-not-taken", EventType::HeapSnapshotsNotTaken),
            ("something else", EventType::Other),
            ("other", EventType::Other),
        ] {
            assert_eq!(EventKind::parse(text).event_type(), kind, "{text}");
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
        // every kind has a name of its own, and the README's summary.json table lists it
        let mut names: Vec<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
        names.dedup();
        assert_eq!(names.len(), EventType::ALL.len());
        let readme = include_str!("../README.md");
        let row = readme
            .lines()
            .find(|l| l.starts_with("| `events` |"))
            .expect("the README's summary.json table has an `events` row");
        for name in names {
            assert!(row.contains(&format!("`{name}`")), "{name}: {row}");
        }
    }

    #[test]
    fn a_dump_period_starts_at_the_signal_that_asked_for_it() {
        let ev = |t: f64, kind: EventKind| Event { elapsed_s: t, kind };
        let rec = Recording {
            time_s: vec![0.0, 100.0],
            events: vec![
                ev(10.0, EventKind::Signal("SIGUSR2".into())),
                ev(10.25, EventKind::DumpStart("a".into())),
                ev(12.0, EventKind::Dump("a".into())),
                ev(50.0, EventKind::DumpStart("b".into())), // no signal just before
                ev(60.0, EventKind::Signal("SIGUSR2".into())),
                ev(60.5, EventKind::DumpStart("c".into())), // never completed
            ],
            ..Recording::default()
        };
        assert_eq!(
            rec.dump_periods(),
            vec![(10.0, 12.0), (50.0, 100.0), (60.0, 100.0)]
        );
        // A runtime snapshot that failed ends its period where it failed, live and read back
        // from the CSV's event text alike.
        let rec = Recording {
            time_s: vec![0.0, 100.0],
            events: vec![
                ev(10.0, EventKind::DumpStart("o/heap-7-1.heapsnapshot".into())),
                ev(
                    11.0,
                    EventKind::parse("dump-failed:o/heap-7-1.heapsnapshot"),
                ),
                ev(40.0, EventKind::DumpStart("o/heap-7-2.heapsnapshot".into())),
                ev(41.0, EventKind::Other("dump-failed:o/other".into())),
            ],
            ..Recording::default()
        };
        assert_eq!(rec.dump_periods(), vec![(10.0, 11.0), (40.0, 100.0)]);
    }

    #[test]
    fn a_live_recording_keeps_only_what_it_was_asked_to() {
        // Exact wins over drawn; anon only to draw.
        let kept = Kept::new(&[Metric::Rss], &[Metric::Rss, Metric::Anon, Metric::Pss]);
        let mut rec = Recording::keeping(4, kept);
        let mut s = Sample {
            mem: MemStatus {
                rss: 100,
                vsz: 200,
                anon: Some(50),
                swap: Some(0),
                ..MemStatus::default()
            },
            ..Sample::default()
        };
        rec.push(&s);
        s.pss = Some(30);
        rec.push(&s);
        assert_eq!(rec.metric(Metric::Rss), Some(&[100.0, 100.0][..]));
        assert!(matches!(
            rec.line(Metric::Rss),
            Some(Line::Exact(&[100.0, 100.0]))
        ));
        // Drawn: never handed to the analyser, but there to draw, NaN where it was unknown.
        assert_eq!(rec.metric(Metric::Anon), None);
        assert!(matches!(
            rec.line(Metric::Anon),
            Some(Line::Drawn(&[50.0, 50.0]))
        ));
        let pss: Vec<f64> = rec
            .line(Metric::Pss)
            .iter()
            .flat_map(|l| l.iter())
            .collect();
        assert!(pss[0].is_nan() && pss[1] == 30.0, "{pss:?}");
        assert_eq!(rec.metric(Metric::Vsz), None);
        assert!(rec.line(Metric::Swap).is_none());
    }

    #[test]
    fn columns_stay_aligned_when_a_metric_appears_late() {
        let mut rec = Recording::default();
        let mut s = Sample {
            mem: MemStatus {
                rss: 100,
                vsz: 200,
                ..MemStatus::default()
            },
            ..Sample::default()
        };
        rec.push(&s);
        s.elapsed_s = 1.0;
        s.pss = Some(50);
        rec.push(&s);
        s.elapsed_s = 2.0;
        s.pss = None;
        rec.push(&s);
        assert_eq!(rec.metric(Metric::Rss), Some(&[100.0, 100.0, 100.0][..]));
        let pss = rec.metric(Metric::Pss).expect("pss recorded");
        assert!(pss[0].is_nan() && pss[1] == 50.0 && pss[2].is_nan());
        assert_eq!(rec.metric(Metric::Anon), None);
    }
}
