//! summary.json: the verdict and the figures behind it, for people and CI tools.
//! Every field is documented in the README ("summary.json").

use crate::analyze::{Analysis, Headline, MinGrowth, Pattern, TrendLine, Verdict, Warmup};
use crate::exit::Exit;
use crate::gate::GateResult;
use crate::recording::{Event, EventType};
use crate::sample::Metric;
use crate::units::{whole_bytes, whole_delta};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Summary {
    pub memwatch_version: &'static str,
    pub verdict: Verdict,
    pub pattern: Pattern,
    pub reason: String,
    /// The series judged: a column (`rss`, ...), `settled` or `heap-after-gc`.
    pub metric: String,
    /// Why a preferred series (the managed heap, the settled samples) was not judged, in
    /// words; `null` when it was, or when there was none.
    pub series_note: Option<String>,
    /// The configured metric judged too, when another series was judged (RSS beside the
    /// managed heap): a native leak shows in RSS with a flat heap.
    pub beside: Option<BesideSummary>,
    /// `--runtime`: what memwatch asked the runtime and what it did to the process.
    pub runtime: Option<RuntimeSummary>,
    /// Two or more complete heap snapshots were collected: the first against the last, as
    /// `memwatch heap diff` prints it (which class grew, and what holds it).
    pub heap_diff: Option<crate::heap::HeapDiff>,
    /// Why the snapshots collected could not be compared, in words.
    pub heap_diff_error: Option<String>,
    /// A JVM with two or more class histograms (`--heap-snapshots`): the first against the
    /// last, per class, the biggest growth in bytes first (at most 20 rows).
    pub histogram_diff: Option<Vec<crate::runtime::jvm::HistogramDelta>>,
    pub samples: usize,
    pub samples_analysed: usize,
    /// Deadlines that passed unsampled (live runs only).
    pub missed_samples: Option<u64>,
    /// The run's length: from its first sample to its last.
    pub duration_s: f64,
    /// Left out at the start of the run.
    pub warmup_s: f64,
    /// The analysed window, on the run's clock.
    pub window: Window,
    /// The analysed window's length: what the slope and growth are measured over.
    pub window_s: f64,
    /// `null` when the series could not be judged (inconclusive): unknown, never 0.
    pub slope_bytes_per_s: Option<f64>,
    pub slope_pct_per_hour: Option<f64>,
    /// Whole bytes; `null` when not judged.
    pub growth_bytes: Option<i64>,
    pub p_value: Option<f64>,
    /// Whole bytes; `null` without a sample.
    pub start_bytes: Option<u64>,
    pub end_bytes: Option<u64>,
    pub peak_bytes: Option<u64>,
    pub trend: Option<TrendSummary>,
    /// The process watched (live runs), or the file re-analysed (`memwatch report`).
    pub target: Option<TargetSummary>,
    pub source: Option<SourceSummary>,
    pub events: Vec<EventSummary>,
    pub dumps: Vec<DumpSummary>,
    /// `--load`: the load generator's command and how it ended; `null` without it.
    pub load: Option<crate::load::LoadSummary>,
    pub excluded: Vec<Window>,
    /// Steps the analyser took out at the end of excluded periods: `[{at_s, bytes}]`.
    pub steps: Vec<Step>,
    pub thresholds: ThresholdSummary,
    pub exit_code: u8,
    pub files: Files,
    /// The CI gate's limits and baseline, when any was configured (see docs/ci.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateResult>,
    /// `--tree`: which total was judged, and why; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree_total: Option<crate::report::services::TreeTotalSummary>,
    /// `--follow`: the target's lives, each judged; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow: Option<crate::report::services::FollowSummary>,
    /// `--cgroup`: the memory cgroup against its limit; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<crate::report::services::CgroupSummary>,
    /// `--native`: the stacks that faulted in the pages held at the end (docs/native.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub native: Option<crate::native::NativeReport>,
    /// `--all`: the whole machine, every judged process (or group) with its verdict; the
    /// fields above are then the top-ranked one's. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineSummary>,
    /// What only the end-of-run text says (report/text.rs).
    #[serde(skip)]
    pub story: Story,
}

/// What the end-of-run text tells people beside the fields above.
#[derive(Debug, Default)]
pub struct Story {
    /// Said while the run stopped: a process the target started that holds much of the
    /// memory, what else memwatch stopped.
    pub notes: Vec<String>,
    /// `memwatch report`: what reading the recording warned about.
    pub warnings: Vec<String>,
    /// How sampling stopped and the target ended, in words: "duration reached; target
    /// exited with code 0 after memwatch stopped it".
    pub how: Option<String>,
    /// The spawned command failed on its own (exit code 4).
    pub command_failed: bool,
}

/// The fitted trend: times in seconds, levels in whole bytes.
#[derive(Debug, Serialize)]
pub struct TrendSummary {
    pub t0: f64,
    pub v0: Option<i64>,
    pub t1: f64,
    pub v1: Option<i64>,
}

impl From<TrendLine> for TrendSummary {
    fn from(l: TrendLine) -> Self {
        TrendSummary {
            t0: l.t0,
            v0: whole_delta(l.v0),
            t1: l.t1,
            v1: whole_delta(l.v1),
        }
    }
}

/// Another series' verdict, beside the judged one.
#[derive(Debug, Serialize)]
pub struct BesideSummary {
    pub metric: String,
    pub verdict: Verdict,
    pub pattern: Pattern,
    pub reason: String,
    /// `null` when not judged.
    pub slope_bytes_per_s: Option<f64>,
    pub slope_pct_per_hour: Option<f64>,
    pub p_value: Option<f64>,
}

impl BesideSummary {
    pub fn new(a: &Analysis, metric: &str) -> BesideSummary {
        BesideSummary {
            metric: metric.to_string(),
            verdict: a.verdict,
            pattern: a.pattern,
            reason: a.reason.clone(),
            slope_bytes_per_s: a.slope_bytes_per_s,
            slope_pct_per_hour: a.slope_pct_per_hour,
            p_value: a.p_value,
        }
    }

    /// `rss on its own: growing (linear): floor +1.20 MiB/min, p < 0.001`, worded as every
    /// verdict headline is.
    pub fn words(&self) -> String {
        let headline = Headline {
            verdict: self.verdict,
            pattern: self.pattern,
            slope_bytes_per_s: self.slope_bytes_per_s,
            p_value: self.p_value,
            samples_analysed: 0,
            warmup_s: 0.0,
        };
        let text = if self.verdict == Verdict::Inconclusive {
            "inconclusive".to_string()
        } else {
            headline.to_string()
        };
        format!("{} on its own: {text}", self.metric)
    }
}

/// What the runtime probe did, from its events.
#[derive(Debug, Default, Serialize)]
pub struct RuntimeSummary {
    /// `node` or `jvm`.
    pub kind: String,
    pub attached: bool,
    /// The Node inspector's port on 127.0.0.1 through which memwatch installed its agent
    /// (`--pid`); `null` for a command memwatch started (the agent came with `--require`).
    pub port: Option<u16>,
    /// memwatch opened the inspector (SIGUSR1) or the JVM's attach listener (SIGQUIT).
    pub opened_by_memwatch: bool,
    /// How long the inspector memwatch opened stayed open, SIGUSR1 to closed (ms).
    pub inspector_open_ms: Option<f64>,
    pub forced_gcs: u32,
    pub gcs_skipped: u32,
    /// Why forced GCs were skipped (the pause budget; a program busy or stopped past the
    /// call's deadline): each reason once, the first five, joined by "; ". `null`: none.
    pub gcs_skipped_why: Option<String>,
    pub gc_pause_max_ms: f64,
    pub gc_pause_total_ms: f64,
    pub snapshots: Vec<String>,
    pub histograms: Vec<String>,
    /// How the runtime was left, in words (the Node agent ended with its channel; what
    /// listens where memwatch opened the inspector).
    pub closed: Option<String>,
    /// Why the managed-heap series is missing or ended, in words.
    pub problem: Option<String>,
}

impl RuntimeSummary {
    pub fn new(kind: crate::runtime::RuntimeKind, events: &[crate::runtime::ProbeEvent]) -> Self {
        use crate::runtime::ProbeEvent as E;
        let mut s = RuntimeSummary {
            kind: kind.name().to_string(),
            ..RuntimeSummary::default()
        };
        for e in events {
            match e {
                E::Attached {
                    port,
                    opened_by_memwatch,
                    inspector_open,
                    ..
                } => {
                    s.attached = true;
                    s.port = *port;
                    s.opened_by_memwatch = *opened_by_memwatch;
                    s.inspector_open_ms = inspector_open.map(|d| d.as_secs_f64() * 1e3);
                }
                E::Gc { pause } => {
                    let ms = pause.as_secs_f64() * 1e3;
                    s.forced_gcs += 1;
                    s.gc_pause_total_ms += ms;
                    s.gc_pause_max_ms = s.gc_pause_max_ms.max(ms);
                }
                E::GcSkipped { reason } => {
                    s.gcs_skipped += 1;
                    let why = s.gcs_skipped_why.get_or_insert_with(String::new);
                    if why.matches("; ").count() < 4 && !why.contains(reason.as_str()) {
                        if !why.is_empty() {
                            why.push_str("; ");
                        }
                        why.push_str(reason);
                    }
                }
                E::Snapshot { path, .. } => s.snapshots.push(path.display().to_string()),
                E::Histogram { path, .. } => s.histograms.push(path.display().to_string()),
                E::Closed { message } => s.closed = Some(message.clone()),
                E::Failed { message } => s.problem = Some(message.clone()),
                E::Error { message } if s.problem.is_none() => {
                    s.problem = Some(message.clone());
                }
                _ => {}
            }
        }
        s
    }
}

#[derive(Debug, Serialize)]
pub struct Window {
    pub start_s: f64,
    pub end_s: f64,
}

#[derive(Debug, Serialize)]
pub struct TargetSummary {
    pub pid: i32,
    pub name: String,
    pub command: String,
    /// Start time in clock ticks since boot: with the PID, the process's identity.
    pub start_time_ticks: u64,
    /// How it ended, in words: "exited with code 0", "killed by SIGTERM after memwatch stopped it".
    pub ended: String,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub stopped_by_memwatch: bool,
    /// Why sampling stopped: "duration", "target-exited", "interrupted", "output-closed".
    pub stop: String,
    /// With `--tree`: how many processes the tree had over the run, the target included; the
    /// series judged is their sum (`total` in samples.csv). `null` without `--tree`.
    pub tree_processes: Option<usize>,
    /// With `--tree`: each process of the tree (`pid`, `name`, `first_s`, `last_s`,
    /// `first_bytes`, `last_bytes`: its RSS when first and last read, start-up included; and
    /// `verdict`, its own RSS judged when it had enough samples), those whose RSS grew most
    /// first. `null` without `--tree`.
    pub tree: Option<Vec<crate::report::services::TreeProcess>>,
}

/// `--all`: what the whole machine's run watched and found.
#[derive(Debug, Default, Serialize)]
pub struct MachineSummary {
    /// `--group-by`: `name` or `cgroup`; `null`: one series per process.
    pub group_by: Option<String>,
    /// `--user` and `--name` as given; `null` when not.
    pub user: Option<String>,
    pub name: Option<String>,
    /// Processes seen over the run (kernel threads and memwatch itself left out).
    pub processes_seen: u64,
    /// Units (processes, or groups) watched when the run ended.
    pub watched_at_end: usize,
    /// How long the run sampled, seconds (the fields at the top are the top unit's).
    pub duration_s: f64,
    /// Why sampling stopped: `duration`, `interrupted` (Ctrl-C, SIGTERM), `quit` (`q` in the
    /// live view), `output-closed`.
    pub stop: String,
    /// Units with a verdict (in `processes`), and those growing.
    pub judged: usize,
    pub growing: usize,
    pub ticks: u64,
    /// The open-file limit when memwatch started, after it raised it, and the hard limit.
    pub open_files: OpenFiles,
    /// The most processes read at one tick by reopening /proc/PID/statm (past the open-file
    /// limit): 0 when every process was read through a file kept open.
    pub reopened_max: usize,
    /// How new processes were looked for: full scans of /proc (the first one, and after
    /// PIDs wrapped around), ticks that looked at a few new PIDs one by one (and how many PIDs
    /// those were), ticks that read /proc's listing for the processes among many new PIDs.
    pub full_scans: u64,
    pub probes: u64,
    pub probed_pids: u64,
    pub listings: u64,
    /// The sum over every process watched (the CSV's `total` rows), judged: `memwatch
    /// report samples.csv` judges the same.
    pub total: Option<BesideSummary>,
    /// Every unit the analyser could decide on (live at the end, or ended), growing first,
    /// fastest first.
    pub processes: Vec<UnitVerdict>,
}

#[derive(Debug, Default, Serialize)]
pub struct OpenFiles {
    pub was: u64,
    pub raised_to: u64,
    pub hard: u64,
}

/// One process's (or group's) verdict in a `--all` run.
#[derive(Debug, Serialize)]
pub struct UnitVerdict {
    /// The process; `null` for a group.
    pub pid: Option<i32>,
    pub start_time_ticks: Option<u64>,
    /// The process name, or the group's name or cgroup path.
    pub name: String,
    /// Processes it had over the run (1 for a process).
    pub processes: u32,
    /// When it was first and last read, seconds on the run's clock.
    pub first_s: f64,
    pub last_s: f64,
    /// It ended (exited; a group: its last process did) before the run did.
    pub ended: bool,
    pub verdict: Verdict,
    pub pattern: Pattern,
    pub reason: String,
    /// `null` when not judged (as for a single target).
    pub slope_bytes_per_s: Option<f64>,
    pub slope_pct_per_hour: Option<f64>,
    /// Whole bytes; `null` when not judged.
    pub growth_bytes: Option<i64>,
    pub p_value: Option<f64>,
    /// Whole bytes; `null` without a sample.
    pub start_bytes: Option<u64>,
    pub end_bytes: Option<u64>,
    pub peak_bytes: Option<u64>,
    pub samples: usize,
    /// Points the verdict judged (after the warm-up; see docs/machine.md for how a long
    /// series is kept in bounded memory).
    pub samples_analysed: usize,
    pub warmup_s: f64,
    /// The limits (`--max-rss`, `--max-growth`, `--max-slope`) it breached, in words.
    pub breaches: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Step {
    pub at_s: f64,
    /// Whole bytes.
    pub bytes: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct SourceSummary {
    pub file: String,
    pub format: String,
}

#[derive(Debug, Serialize)]
pub struct EventSummary {
    pub elapsed_s: f64,
    /// What happened, one of a closed list (`EventType::ALL`, in the README).
    pub kind: EventType,
    /// The event as samples.csv writes it (`signal:SIGUSR2`, `dump:<file>`).
    pub event: String,
}

impl From<&Event> for EventSummary {
    fn from(e: &Event) -> Self {
        EventSummary {
            elapsed_s: e.elapsed_s,
            kind: e.kind.event_type(),
            event: e.kind.to_string(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DumpSummary {
    pub path: String,
    pub bytes: u64,
    pub started_s: f64,
    pub completed_s: Option<f64>,
    /// How it was taken: `signal` (a file the target wrote on a signal) or `runtime`
    /// (`--heap-snapshots`: memwatch's Node agent, or a JVM class histogram).
    pub via: &'static str,
    /// What it cost the target: its RSS in the last sample before the dump started, and the
    /// highest RSS while it was written (`null` without samples there).
    pub rss_before_bytes: Option<u64>,
    pub rss_peak_bytes: Option<u64>,
}

impl From<&crate::dump::Dump> for DumpSummary {
    fn from(d: &crate::dump::Dump) -> Self {
        DumpSummary {
            path: d.path.display().to_string(),
            bytes: d.bytes,
            started_s: d.started_s,
            completed_s: d.completed_s,
            via: "signal",
            rss_before_bytes: None,
            rss_peak_bytes: None,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ThresholdSummary {
    /// "auto" or the seconds given with --warmup.
    pub warmup: serde_json::Value,
    pub min_slope_bytes_per_s: f64,
    pub min_slope_pct_per_hour: f64,
    /// Whole bytes, when `--min-growth` was given in bytes.
    pub min_growth_bytes: Option<u64>,
    pub min_growth_pct: Option<f64>,
    pub p_value: f64,
    /// The slope gates look at no more than this much of the analysed window (a slow rise
    /// over weeks is growth).
    pub slope_horizon_s: f64,
}

#[derive(Debug, Default, Serialize)]
pub struct Files {
    pub csv: Option<String>,
    pub json: Option<String>,
    pub png: Option<String>,
}

impl Summary {
    /// The summary of an analysis; the caller fills `target`/`source`, events and files.
    pub fn new(analysis: &Analysis, metric: &str, exit: Exit) -> Summary {
        let a = analysis;
        let t = &a.thresholds;
        Summary {
            memwatch_version: env!("CARGO_PKG_VERSION"),
            verdict: a.verdict,
            pattern: a.pattern,
            reason: a.reason.clone(),
            metric: metric.to_string(),
            series_note: None,
            beside: None,
            runtime: None,
            heap_diff: None,
            heap_diff_error: None,
            histogram_diff: None,
            samples: a.samples,
            samples_analysed: a.samples_analysed,
            missed_samples: None,
            duration_s: a.duration_s,
            warmup_s: a.warmup_s,
            window: Window {
                start_s: a.window_start_s,
                end_s: a.window_end_s,
            },
            window_s: a.window_s(),
            slope_bytes_per_s: a.slope_bytes_per_s,
            slope_pct_per_hour: a.slope_pct_per_hour,
            growth_bytes: a.growth_bytes.and_then(whole_delta),
            p_value: a.p_value,
            start_bytes: whole_bytes(a.start_bytes),
            end_bytes: whole_bytes(a.end_bytes),
            peak_bytes: whole_bytes(a.peak_bytes),
            trend: a.trend.map(TrendSummary::from),
            target: None,
            source: None,
            events: Vec::new(),
            dumps: Vec::new(),
            load: None,
            excluded: a
                .excluded
                .iter()
                .map(|&(start_s, end_s)| Window { start_s, end_s })
                .collect(),
            steps: a
                .steps
                .iter()
                .map(|&(at_s, bytes)| Step {
                    at_s,
                    bytes: whole_delta(bytes),
                })
                .collect(),
            thresholds: ThresholdSummary {
                warmup: match t.warmup {
                    Warmup::Auto => serde_json::Value::from("auto"),
                    Warmup::Fixed(s) => serde_json::Value::from(s),
                },
                min_slope_bytes_per_s: t.min_slope_bytes_per_s,
                min_slope_pct_per_hour: t.min_slope_pct_per_hour,
                min_growth_bytes: match t.min_growth {
                    MinGrowth::Bytes(b) => whole_bytes(b),
                    MinGrowth::Percent(_) => None,
                },
                min_growth_pct: match t.min_growth {
                    MinGrowth::Percent(p) => Some(p),
                    MinGrowth::Bytes(_) => None,
                },
                p_value: t.p_value,
                slope_horizon_s: t.slope_horizon_s,
            },
            exit_code: exit.code(),
            files: Files::default(),
            gate: None,
            tree_total: None,
            follow: None,
            cgroup: None,
            native: None,
            machine: None,
            story: Story::default(),
        }
    }

    /// The summary of what the judge decided: the judged series' analysis, why a preferred
    /// series was not judged, and the configured `metric` judged beside it.
    pub fn of_judged(judged: &crate::judge::Judged, metric: Metric, exit: Exit) -> Summary {
        let mut s = Summary::new(&judged.analysis, &judged.series, exit);
        s.series_note = judged.note.clone();
        s.beside = judged
            .beside
            .as_ref()
            .map(|a| BesideSummary::new(a, metric.name()));
        s
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        text.push('\n');
        text
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::gate::Baseline;

    const MIB: f64 = 1024.0 * 1024.0;

    #[test]
    fn a_summary_reads_back_as_a_baseline() {
        let a = crate::gate::tests::analysis(Verdict::Stable, 12.5, 99.0 * MIB);
        let s = Summary::new(&a, "rss", Exit::Passed);
        let b = Baseline::from_json(&s.to_json(), "x.json").unwrap();
        assert_eq!(b.slope_bytes_per_s, 12.5);
        assert_eq!(b.peak_bytes, 99.0 * MIB);
        assert_eq!(b.metric.as_deref(), Some("rss"));
        assert!(b.check_metric("rss").is_ok());
        let e = b.check_metric("pss").unwrap_err();
        assert!(e.contains("'rss'") && e.contains("'pss'"), "{e}");

        for (text, why) in [
            ("not json", "not JSON"),
            ("[1, 2]", "not a JSON object"),
            ("{\"slope_bytes_per_s\": 1}", "'memwatch_version'"),
            (
                "{\"memwatch_version\": \"0.1.0\", \"verdict\": \"stable\", \"peak_bytes\": 1}",
                "no number in 'slope_bytes_per_s'",
            ),
        ] {
            let e = Baseline::from_json(text, "x.json").unwrap_err();
            assert!(e.contains("--baseline 'x.json' is not a memwatch summary.json"));
            assert!(e.contains(why), "{e}");
        }
        let e = Baseline::load(std::path::Path::new("/nonexistent/summary.json")).unwrap_err();
        assert!(e.contains("cannot read it"), "{e}");
    }

    /// Regression (issue 20 item 1): an inconclusive run wrote slope 0, growth 0 and p-value
    /// 1, and its summary.json was taken as a baseline of slope 0. The figures are null, and
    /// the baseline is refused in one line.
    #[test]
    fn regression_issue20_item1_an_inconclusive_summary_says_null_and_is_no_baseline() {
        let a = crate::gate::tests::analysis(Verdict::Inconclusive, 12.5, 99.0 * MIB);
        let s = Summary::new(&a, "rss", Exit::Inconclusive);
        let json: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        for field in [
            "slope_bytes_per_s",
            "slope_pct_per_hour",
            "growth_bytes",
            "p_value",
            "trend",
        ] {
            assert!(json[field].is_null(), "{field}: {json}");
        }
        assert_eq!(json["peak_bytes"], 103_809_024);
        let e = Baseline::from_json(&s.to_json(), "old/summary.json").unwrap_err();
        assert!(
            e.starts_with("--baseline 'old/summary.json' is the summary of an inconclusive run")
                && !e.contains('\n'),
            "{e}"
        );
        // also a summary whose slope is null, whatever its verdict says
        let e = Baseline::from_json(
            r#"{"memwatch_version": "0.1.0", "verdict": "stable", "slope_bytes_per_s": null, "peak_bytes": 1}"#,
            "x.json",
        )
        .unwrap_err();
        assert!(e.contains("inconclusive"), "{e}");
    }

    /// Regression (issue 20 item 17): sizes came out as floats (`10649600.00000001`), which
    /// a reader into int64 rejects. Every size is a whole number of bytes.
    #[test]
    fn regression_issue20_item17_sizes_are_whole_bytes() {
        let mut a =
            crate::gate::tests::analysis(Verdict::Growing, 110_933.333_333_333_34, 99.5 * MIB);
        a.growth_bytes = Some(10_649_600.000_000_01);
        a.steps = vec![(40.0, 31_457_280.4)];
        a.thresholds.min_growth = MinGrowth::Bytes(1_048_576.0);
        let mut s = Summary::new(&a, "rss", Exit::Grew);
        s.beside = Some(BesideSummary::new(&a, "rss"));
        let json: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(json["growth_bytes"], 10_649_600);
        assert_eq!(json["peak_bytes"], 104_333_312);
        for path in [
            "/start_bytes",
            "/end_bytes",
            "/trend/v0",
            "/trend/v1",
            "/steps/0/bytes",
            "/thresholds/min_growth_bytes",
        ] {
            let v = json.pointer(path).unwrap();
            assert!(v.is_u64() || v.is_i64(), "{path} = {v}");
        }
        // a rate and a share stay fractional
        assert!(json["slope_bytes_per_s"].is_f64());
    }
}
