//! What summary.json (and the end-of-run text, and the chart) say about whole services: which
//! total a tree was judged on and why, each process's own verdict, a followed target's lives,
//! and the memory cgroup against its limit. Built from analyses and readings, the same for a
//! live run and `report`.

use crate::analyze::{Analysis, Pattern, Verdict};
use crate::cgroup::series::CgroupReading;
use crate::sample::members::ProcessGrowth;
use crate::segments::Followed;
use crate::units::{Bytes, Elapsed, Rate};
use serde::Serialize;

/// What a tree's judged total is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TotalKind {
    /// The memory of a cgroup memwatch made for the command: each page counted once.
    Cgroup,
    /// The sum of PSS: a shared page split between the processes that map it.
    PssSum,
    /// The sum of RSS: a shared page counted once per process that maps it.
    RssSum,
}

impl TotalKind {
    /// The word in summary.json and the `judged:` mark of samples.csv.
    pub fn key(self) -> &'static str {
        match self {
            TotalKind::Cgroup => "cgroup",
            TotalKind::PssSum => "pss-sum",
            TotalKind::RssSum => "rss-sum",
        }
    }

    pub fn from_key(key: &str) -> Option<TotalKind> {
        [TotalKind::Cgroup, TotalKind::PssSum, TotalKind::RssSum]
            .into_iter()
            .find(|k| k.key() == key)
    }

    /// What it is, for people.
    pub fn words(self) -> &'static str {
        match self {
            TotalKind::Cgroup => {
                "the memory of a cgroup memwatch made for the command (each page counted once)"
            }
            TotalKind::PssSum => {
                "the sum of PSS (a page shared by several processes split between them)"
            }
            TotalKind::RssSum => {
                "the sum of RSS (a page shared by several processes counted once for each)"
            }
        }
    }
}

/// `--tree`: which total was judged, and why.
#[derive(Clone, Debug, Serialize)]
pub struct TreeTotalSummary {
    pub judged: TotalKind,
    pub why: String,
    /// The cgroup memwatch made (removed at the end), with `judged: "cgroup"`.
    pub cgroup: Option<String>,
    /// The sum of RSS over the same ticks, for comparison: first, last and highest.
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub rss_sum_start_bytes: Option<f64>,
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub rss_sum_end_bytes: Option<f64>,
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub rss_sum_peak_bytes: Option<f64>,
}

/// One process of a tree, with its own verdict when it had enough samples.
#[derive(Clone, Debug, Serialize)]
pub struct TreeProcess {
    #[serde(flatten)]
    pub growth: ProcessGrowth,
    /// Its own RSS judged: `null` for a process too short-lived to judge (listed, not judged).
    pub verdict: Option<OwnVerdict>,
}

/// A series' verdict in brief.
#[derive(Clone, Debug, Serialize)]
pub struct OwnVerdict {
    pub verdict: Verdict,
    pub pattern: Pattern,
    pub reason: String,
    pub slope_bytes_per_s: f64,
    /// Whole bytes in summary.json.
    #[serde(serialize_with = "whole")]
    pub growth_bytes: f64,
}

/// A size as summary.json writes every size: a whole number of bytes.
fn whole<S: serde::Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    crate::units::serde_whole_bytes(&Some(*x), s)
}

impl OwnVerdict {
    /// `None` when the analysis could not decide (it has no slope or growth then).
    pub fn of(a: &Analysis) -> Option<OwnVerdict> {
        let (Some(slope), Some(growth)) = (a.slope_bytes_per_s, a.growth_bytes) else {
            return None;
        };
        (a.verdict != Verdict::Inconclusive).then(|| OwnVerdict {
            verdict: a.verdict,
            pattern: a.pattern,
            reason: a.reason.clone(),
            slope_bytes_per_s: slope,
            growth_bytes: growth,
        })
    }
}

/// The process of a tree whose own series grew most, among those judged growing on their
/// own: the end summary names it by its own growth, not the sum's.
pub fn grew_most(tree: &[TreeProcess]) -> Option<(&TreeProcess, &OwnVerdict)> {
    tree.iter()
        .filter_map(|p| Some((p, p.verdict.as_ref()?)))
        .filter(|(_, v)| v.verdict == Verdict::Growing)
        .max_by(|a, b| a.1.growth_bytes.total_cmp(&b.1.growth_bytes))
}

/// `--follow`: the lives of the target and how each was judged.
#[derive(Clone, Debug, Serialize)]
pub struct FollowSummary {
    /// `--name 'node'` or `--cmdline '...'`; `null` for `report`.
    pub pattern: Option<String>,
    pub restarts: usize,
    pub lives: Vec<LifeSummary>,
}

#[derive(Clone, Debug, Serialize)]
pub struct LifeSummary {
    pub pid: Option<i32>,
    pub name: Option<String>,
    pub start_s: f64,
    pub end_s: f64,
    pub samples: usize,
    /// Its own verdict (`inconclusive` for a life too short to judge).
    pub verdict: Verdict,
    pub pattern: Pattern,
    pub reason: String,
    /// `null` for a life too short to judge.
    pub slope_bytes_per_s: Option<f64>,
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub growth_bytes: Option<f64>,
    /// Its floor when its warm-up ended (the fitted trend's start): how high each life
    /// starts, restart after restart.
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub start_floor_bytes: Option<f64>,
    /// Whether it is part of the whole's verdict (long enough to fit a floor).
    pub joined: bool,
}

impl FollowSummary {
    pub fn new(followed: &Followed, pattern: Option<String>, names: &[(i32, String)]) -> Self {
        FollowSummary {
            pattern,
            restarts: followed.lives.len().saturating_sub(1),
            lives: followed
                .lives
                .iter()
                .map(|l| {
                    let a = &l.analysis;
                    LifeSummary {
                        pid: l.life.pid,
                        name: l
                            .life
                            .pid
                            .and_then(|pid| names.iter().find(|(p, _)| *p == pid))
                            .map(|(_, n)| n.clone()),
                        start_s: l.life.start_s,
                        end_s: l.life.end_s,
                        samples: a.samples,
                        verdict: a.verdict,
                        pattern: a.pattern,
                        reason: a.reason.clone(),
                        slope_bytes_per_s: a.slope_bytes_per_s,
                        growth_bytes: a.growth_bytes,
                        start_floor_bytes: a.trend.map(|t| t.v0),
                        joined: l.joined.is_some(),
                    }
                })
                .collect(),
        }
    }
}

/// What the chart draws of each joined life: where it starts, its warm-up, the whole's trend
/// over it.
pub fn life_marks(followed: &Followed) -> Vec<crate::report::chart::LifeMarks> {
    followed
        .lives
        .iter()
        .filter(|l| l.joined.is_some())
        .zip(&followed.pieces)
        .map(|(l, piece)| crate::report::chart::LifeMarks {
            start_s: l.life.start_s,
            window_start_s: l.analysis.window_start_s,
            trend: *piece,
        })
        .collect()
}

/// The memory cgroup against its limit.
#[derive(Clone, Debug, Serialize)]
pub struct CgroupSummary {
    /// As /proc/PID/cgroup names it (`/system.slice/app.service`); empty for `report`.
    pub path: String,
    /// `v1` or `v2`; `null` for `report`.
    pub version: Option<&'static str>,
    /// The tightest limit on it or above it, and the cgroup that sets it.
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub limit_bytes: Option<f64>,
    pub limit_set_by: Option<String>,
    /// The last reading: what the cgroup is charged, and that less the inactive file cache
    /// (the working set, its `rss_bytes` in samples.csv).
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub usage_bytes: Option<f64>,
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub working_set_bytes: Option<f64>,
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub anon_bytes: Option<f64>,
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub file_bytes: Option<f64>,
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub kernel_bytes: Option<f64>,
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub sock_bytes: Option<f64>,
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub shmem_bytes: Option<f64>,
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub swap_bytes: Option<f64>,
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub peak_bytes: Option<f64>,
    /// The limit less the last working set.
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub headroom_bytes: Option<f64>,
    /// Its working set judged (as the judged series when `--metric cgroup`).
    pub verdict: Verdict,
    pub pattern: Pattern,
    /// `null` when its series could not be judged.
    pub slope_bytes_per_s: Option<f64>,
    /// At that slope, when it grows and has a limit: seconds until the limit is reached.
    pub time_to_limit_s: Option<f64>,
    /// All of it in one sentence.
    pub words: String,
    /// Why it could no longer be read before the end, if so.
    pub lost: Option<String>,
}

impl CgroupSummary {
    /// The cgroup's summary from its series' analysis, its last working set (and reading,
    /// live) and its limit.
    pub fn new(
        path: &str,
        analysis: &Analysis,
        last_working_set: Option<f64>,
        reading: Option<&CgroupReading>,
        limit: Option<(f64, Option<String>)>,
    ) -> CgroupSummary {
        let working_set = reading.map(|r| r.working_set as f64).or(last_working_set);
        let limit_bytes = limit.as_ref().map(|l| l.0);
        let headroom = limit_bytes.zip(working_set).map(|(l, w)| (l - w).max(0.0));
        let slope = analysis.slope_bytes_per_s;
        let time_to_limit = headroom
            .zip(slope.filter(|s| *s > 0.0))
            .filter(|_| analysis.verdict == Verdict::Growing)
            .map(|(h, slope)| h / slope);
        let f = |v: Option<u64>| v.map(|b| b as f64);
        let mut summary = CgroupSummary {
            path: path.to_string(),
            version: None,
            limit_bytes,
            limit_set_by: limit.and_then(|l| l.1),
            usage_bytes: reading.map(|r| r.usage as f64),
            working_set_bytes: working_set,
            anon_bytes: f(reading.and_then(|r| r.anon)),
            file_bytes: f(reading.and_then(|r| r.file)),
            kernel_bytes: f(reading.and_then(|r| r.kernel)),
            sock_bytes: f(reading.and_then(|r| r.sock)),
            shmem_bytes: f(reading.and_then(|r| r.shmem)),
            swap_bytes: f(reading.and_then(|r| r.swap)),
            peak_bytes: f(reading.and_then(|r| r.peak)),
            headroom_bytes: headroom,
            verdict: analysis.verdict,
            pattern: analysis.pattern,
            slope_bytes_per_s: slope,
            time_to_limit_s: time_to_limit,
            words: String::new(),
            lost: None,
        };
        summary.words = summary.sentence();
        summary
    }

    /// "cgroup /app: 120 MiB of its 512 MiB limit (392 MiB free); at +12.0 MiB/min the limit is
    /// reached in about 32 min".
    fn sentence(&self) -> String {
        let name = if self.path.is_empty() {
            "the cgroup".to_string()
        } else {
            format!("cgroup {}", self.path)
        };
        let now = self
            .working_set_bytes
            .map_or_else(|| "memory unknown".to_string(), |w| Bytes(w).to_string());
        match (self.limit_bytes, self.headroom_bytes) {
            (Some(limit), Some(headroom)) => {
                let reach = match self.time_to_limit_s.zip(self.slope_bytes_per_s) {
                    Some((t, slope)) => format!(
                        "; at {} the limit is reached in about {}",
                        Rate(slope),
                        Elapsed(t)
                    ),
                    None => format!("; {}: the limit is not in reach", self.verdict),
                };
                format!(
                    "{name}: {now} of its {} limit ({} free){reach}",
                    Bytes(limit),
                    Bytes(headroom)
                )
            }
            _ => format!("{name}: {now}, no memory limit on it or above it"),
        }
    }

    /// For the gate.
    pub fn figures(&self) -> crate::gate::LimitFigures {
        crate::gate::LimitFigures {
            cgroup: if self.path.is_empty() {
                "the cgroup".into()
            } else {
                self.path.clone()
            },
            limit_bytes: self.limit_bytes,
            headroom_bytes: self.headroom_bytes,
            // Read only beside a time to the limit, which a judged slope gave.
            slope_bytes_per_s: self.slope_bytes_per_s.unwrap_or(f64::NAN),
            time_to_limit_s: self.time_to_limit_s,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::analyze::{Thresholds, analyze};

    const MIB: f64 = 1048576.0;

    #[test]
    fn time_to_limit_is_headroom_over_slope_when_growing() {
        let time: Vec<f64> = (0..300).map(f64::from).collect();
        let v: Vec<f64> = time.iter().map(|t| 100.0 * MIB + 0.2 * MIB * t).collect();
        let a = analyze(&time, &v, &[], &Thresholds::default());
        let s = CgroupSummary::new(
            "/app",
            &a,
            Some(160.0 * MIB),
            None,
            Some((512.0 * MIB, Some("/app".into()))),
        );
        assert_eq!(s.headroom_bytes, Some(352.0 * MIB));
        let t = s.time_to_limit_s.unwrap();
        assert!((t - 352.0 / 0.2).abs() < 20.0, "{t}");
        assert!(
            s.words.starts_with("cgroup /app: 160 MiB of its 512 MiB limit (352 MiB free); at +12.0 MiB/min the limit is reached in about 29 min"),
            "{}",
            s.words
        );
        let flat: Vec<f64> = time.iter().map(|_| 100.0 * MIB).collect();
        let a = analyze(&time, &flat, &[], &Thresholds::default());
        let s = CgroupSummary::new(
            "/app",
            &a,
            Some(100.0 * MIB),
            None,
            Some((512.0 * MIB, None)),
        );
        assert_eq!(s.time_to_limit_s, None);
        assert!(
            s.words.ends_with("stable: the limit is not in reach"),
            "{}",
            s.words
        );
        let s = CgroupSummary::new("", &a, Some(100.0 * MIB), None, None);
        assert_eq!(
            s.words,
            "the cgroup: 100 MiB, no memory limit on it or above it"
        );
        assert_eq!(s.figures().cgroup, "the cgroup");
    }

    #[test]
    fn total_kinds_round_trip() {
        for k in [TotalKind::Cgroup, TotalKind::PssSum, TotalKind::RssSum] {
            assert_eq!(TotalKind::from_key(k.key()), Some(k));
        }
        assert_eq!(TotalKind::from_key("uss"), None);
    }
}
