//! A followed target's lives (`--follow`): a service that exits and is started again is one
//! life per process, with an absent gap between them. Each life is judged on its own; the
//! verdict over the whole joins the lives end to end, each one's warm-up left out and its
//! floor continuing where the previous one's ended (the restart's drop and the gap taken out),
//! and judges that. A service that leaks and is restarted every hour is still leaking: its
//! floor rises within every life, and joined, the lives rise without end; a restart's drop
//! back to the start is not "shrinking" and a run of short lives is not "sawtooth".
//!
//! Pure, on the judged series and its restart events: the same for a live run and `report`.

use crate::analyze::{self, Analysis, Thresholds, TrendLine, Verdict, Warmup};
use crate::recording::Recording;
use crate::units::Count;

/// One life: a stretch of known values between restarts, seconds on the run's clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Life {
    pub start_s: f64,
    pub end_s: f64,
    /// The process, when known (the `restart:<pid>` events name the later ones).
    pub pid: Option<i32>,
}

/// The lives of a recording: the runs of known `values`, cut at every `restart` event.
/// `first_pid` is the first life's process, when the caller knows it.
pub fn lives(rec: &Recording, values: &[f64], first_pid: Option<i32>) -> Vec<Life> {
    let mut restarts: Vec<(f64, i32)> = rec
        .events
        .iter()
        .filter_map(|e| Some((e.elapsed_s, e.kind.restarted()?)))
        .collect();
    restarts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<Life> = Vec::new();
    let (mut open, mut pid, mut next) = (false, first_pid, 0);
    for (&t, &v) in rec.time_s.iter().zip(values) {
        // A restart at or before this row (and after the previous one) starts a new life.
        while let Some(&(_, new)) = restarts.get(next).filter(|r| r.0 <= t) {
            pid = Some(new);
            open = false;
            next += 1;
        }
        if !v.is_finite() {
            open = false;
            continue;
        }
        match out.last_mut() {
            Some(life) if open => life.end_s = t,
            _ => {
                out.push(Life {
                    start_s: t,
                    end_s: t,
                    pid,
                });
                open = true;
            }
        }
    }
    out
}

/// A life and its own analysis, with where it sits in the lives joined end to end.
#[derive(Clone, Debug)]
pub struct LifeJudged {
    pub life: Life,
    pub analysis: Analysis,
    /// Added to its values and times in the joined series; `None`: too short to join.
    pub joined: Option<(f64, f64)>,
}

/// The lives judged one by one and joined.
#[derive(Clone, Debug)]
pub struct Followed {
    /// The verdict over the whole: the joined lives' analysis, its judged points moved back
    /// onto the run's clock and values. Its `trend` is the fitted floor of the joined lives
    /// (starting at the first life's window), `reason` says how many lives it joined.
    pub whole: Analysis,
    pub lives: Vec<LifeJudged>,
    /// The whole's trend drawn over each joined life, on the run's clock and values.
    pub pieces: Vec<TrendLine>,
}

/// Judges the lives of `values` (at `time`) one by one and joined.
pub fn judge(
    time: &[f64],
    values: &[f64],
    excluded: &[(f64, f64)],
    found: &[Life],
    thresholds: &Thresholds,
) -> Followed {
    let mut judged: Vec<LifeJudged> = found
        .iter()
        .map(|life| {
            let (t, v) = slice(time, values, life.start_s, life.end_s);
            LifeJudged {
                life: life.clone(),
                analysis: analyze::analyze(&t, &v, excluded, thresholds),
                joined: None,
            }
        })
        .collect();
    // Join the analysed part of each life that has a fitted floor.
    let (mut jt, mut jv): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    let mut previous: Option<(f64, f64, f64)> = None; // (joined end time, joined floor at it, step)
    for lj in &mut judged {
        let Some(line) = lj.analysis.trend else {
            continue;
        };
        let (t, v) = slice(time, values, lj.analysis.window_start_s, lj.life.end_s);
        let (Some(&first), Some(&last)) = (t.first(), t.last()) else {
            continue;
        };
        let step = typical_step(&t);
        let (shift, offset) = match previous {
            None => (0.0, 0.0),
            Some((end_t, end_v, prev_step)) => {
                (end_t + prev_step.max(step) - first, end_v - line.v0)
            }
        };
        jt.extend(t.iter().map(|x| x + shift));
        jv.extend(v.iter().map(|x| x + offset));
        previous = Some((last + shift, line.v1 + offset, step));
        lj.joined = Some((shift, offset));
    }
    let joined_thresholds = Thresholds {
        warmup: Warmup::Fixed(0.0),
        ..*thresholds
    };
    let joined = analyze::analyze(&jt, &jv, &[], &joined_thresholds);
    let whole = on_the_run_clock(joined, &judged, time, values);
    let pieces = pieces(&whole, &judged);
    Followed {
        whole,
        lives: judged,
        pieces,
    }
}

/// The samples at `from..=to` with a known value.
fn slice(time: &[f64], values: &[f64], from: f64, to: f64) -> (Vec<f64>, Vec<f64>) {
    time.iter()
        .zip(values)
        .filter(|(t, v)| **t >= from && **t <= to && v.is_finite())
        .map(|(t, v)| (*t, *v))
        .unzip()
}

/// The median time between samples (1 s for fewer than two).
fn typical_step(t: &[f64]) -> f64 {
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.is_empty() {
        1.0
    } else {
        analyze::stats::median(&gaps)
    }
}

/// The joined analysis told on the run's clock: its judged points moved back to the life
/// they came from, the window from the first life's warm-up to the last sample, the figures of
/// the whole series, and a reason that says the lives were joined.
fn on_the_run_clock(
    mut a: Analysis,
    lives: &[LifeJudged],
    time: &[f64],
    values: &[f64],
) -> Analysis {
    let joined: Vec<(&LifeJudged, f64, f64)> = lives
        .iter()
        .filter_map(|l| l.joined.map(|(s, o)| (l, s, o)))
        .collect();
    a.floor = a
        .floor
        .iter()
        .map(|&(t, v)| {
            let (_, shift, offset) = joined
                .iter()
                .rev()
                .find(|(l, s, _)| t >= l.analysis.window_start_s + s)
                .or(joined.first())
                .copied()
                .unwrap_or((&lives[0], 0.0, 0.0));
            (t - shift, v - offset)
        })
        .collect();
    let known: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    a.samples = known.len();
    a.start_bytes = known.first().copied().unwrap_or(f64::NAN);
    a.end_bytes = known.last().copied().unwrap_or(f64::NAN);
    a.peak_bytes = known.iter().copied().fold(f64::NAN, f64::max);
    let first = time.first().copied().unwrap_or(0.0);
    a.duration_s = time.last().copied().unwrap_or(0.0) - first;
    if let Some(l) = lives.first() {
        a.warmup_s = l.analysis.warmup_s;
        a.window_start_s = l.analysis.window_start_s;
    }
    a.window_end_s = lives.last().map_or(a.window_end_s, |l| l.life.end_s);
    let restarts = lives.len().saturating_sub(1);
    let how = format!(
        "{} joined end to end ({} left out: {})",
        lives_word(joined.len()),
        Count(restarts as u64, "restart"),
        if a.verdict == Verdict::Inconclusive && joined.is_empty() {
            "no life was long enough to judge".to_string()
        } else {
            "the drop and the gap at each, and each life's warm-up".to_string()
        }
    );
    a.reason = format!("{how}: {}", a.reason);
    a
}

/// `1 life`, `3 lives`.
pub fn lives_word(n: usize) -> String {
    if n == 1 {
        "1 life".to_string()
    } else {
        format!("{n} lives")
    }
}

/// The whole's trend over each joined life, on the run's clock and values.
fn pieces(whole: &Analysis, lives: &[LifeJudged]) -> Vec<TrendLine> {
    let Some(line) = whole.trend else {
        return Vec::new();
    };
    let at = |t: f64| {
        let span = line.t1 - line.t0;
        if span > 0.0 {
            line.v0 + (line.v1 - line.v0) * (t - line.t0) / span
        } else {
            line.v0
        }
    };
    lives
        .iter()
        .filter_map(|l| {
            let (shift, offset) = l.joined?;
            let (a, b) = (l.analysis.window_start_s, l.life.end_s);
            Some(TrendLine {
                t0: a,
                v0: at(a + shift) - offset,
                t1: b,
                v1: at(b + shift) - offset,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::recording::{Event, EventKind};
    use crate::sample::Metric;

    const MIB: f64 = 1048576.0;

    /// A followed run at 1 Hz: lives of `len` s leaking `per_s` from `base`, `gap` s absent
    /// between them (NaN rows), a `restart:` event on each later life's first row.
    fn run(lives: usize, len: usize, gap: usize, base: f64, per_s: f64) -> Recording {
        let mut rec = Recording::default();
        let mut row = [f64::NAN; Metric::COUNT];
        let mut t = 0.0;
        for life in 0..lives {
            if life > 0 {
                for _ in 0..gap {
                    row[Metric::Rss.index()] = f64::NAN;
                    rec.push_row(t, &row);
                    t += 1.0;
                }
                rec.events.push(Event {
                    elapsed_s: t,
                    kind: EventKind::restart(100 + life as i32),
                });
            }
            for i in 0..len {
                // a little noise, the same in every life
                let wiggle = ((i * 7) % 5) as f64 * 0.05 * MIB;
                row[Metric::Rss.index()] = base + per_s * i as f64 + wiggle;
                rec.push_row(t, &row);
                t += 1.0;
            }
        }
        rec
    }

    fn judged(rec: &Recording) -> Followed {
        let values = rec.metric(Metric::Rss).unwrap();
        let found = lives(rec, values, Some(100));
        judge(&rec.time_s, values, &[], &found, &Thresholds::default())
    }

    #[test]
    fn lives_are_cut_at_gaps_and_restarts() {
        let rec = run(3, 20, 2, 50.0 * MIB, 0.0);
        let found = lives(&rec, rec.metric(Metric::Rss).unwrap(), Some(100));
        assert_eq!(
            found,
            [
                Life {
                    start_s: 0.0,
                    end_s: 19.0,
                    pid: Some(100)
                },
                Life {
                    start_s: 22.0,
                    end_s: 41.0,
                    pid: Some(101)
                },
                Life {
                    start_s: 44.0,
                    end_s: 63.0,
                    pid: Some(102)
                },
            ]
        );
        // A restart found on the very tick after the last one (no absent row between them)
        // still starts a new life.
        let mut rec = run(1, 10, 0, 50.0 * MIB, 0.0);
        rec.events.push(Event {
            elapsed_s: 5.0,
            kind: EventKind::restart(7),
        });
        let found = lives(&rec, rec.metric(Metric::Rss).unwrap(), None);
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[1].start_s, found[1].pid), (5.0, Some(7)));
        assert_eq!(found[0].end_s, 4.0);
    }

    /// A service that leaks and is restarted: within each life the floor rises, and the
    /// lives joined keep rising. Judged on the raw series, the drops at each restart hide it.
    #[test]
    fn a_leak_restarted_again_and_again_is_growing_over_the_whole() {
        let rec = run(4, 60, 3, 80.0 * MIB, 0.2 * MIB);
        let f = judged(&rec);
        assert_eq!(f.lives.len(), 4);
        for l in &f.lives {
            assert_eq!(
                l.analysis.verdict,
                Verdict::Growing,
                "{}",
                l.analysis.reason
            );
        }
        assert_eq!(f.whole.verdict, Verdict::Growing, "{}", f.whole.reason);
        // The slope is the leak's, per second of life.
        let slope = f.whole.slope_bytes_per_s.unwrap();
        assert!((0.17 * MIB..0.23 * MIB).contains(&slope), "{slope}");
        assert!(
            f.whole
                .reason
                .starts_with("4 lives joined end to end (3 restarts left out")
        );
        // The judged points sit on the recorded values, each in its own life.
        for &(t, v) in &f.whole.floor {
            let i = rec
                .time_s
                .iter()
                .position(|&x| (x - t).abs() < 0.6)
                .unwrap();
            let near = rec.metric(Metric::Rss).unwrap()
                [i.saturating_sub(3)..(i + 3).min(rec.len())]
                .iter()
                .filter(|x| x.is_finite())
                .any(|x| (x - v).abs() < 2.0 * MIB);
            assert!(near, "({t}, {v})");
        }
        assert_eq!(f.pieces.len(), 4);
        for (p, l) in f.pieces.iter().zip(&f.lives) {
            assert!(p.t0 >= l.life.start_s && p.t1 <= l.life.end_s + 1e-9);
            assert!(p.v1 > p.v0);
        }
        // The same series judged as one ignores the restarts: not growing.
        let raw = analyze::analyze(
            &rec.time_s,
            rec.metric(Metric::Rss).unwrap(),
            &[],
            &Thresholds::default(),
        );
        assert_ne!(raw.verdict, Verdict::Growing, "{}", raw.reason);
    }

    #[test]
    fn a_steady_service_restarted_is_stable() {
        let f = judged(&run(3, 60, 2, 80.0 * MIB, 0.0));
        assert_eq!(f.whole.verdict, Verdict::Stable, "{}", f.whole.reason);
        assert!(
            f.lives
                .iter()
                .all(|l| l.analysis.verdict == Verdict::Stable)
        );
    }

    #[test]
    fn lives_too_short_to_judge_are_listed_and_left_out() {
        let mut rec = run(3, 60, 2, 80.0 * MIB, 0.2 * MIB);
        // a fourth life of 3 samples
        let mut row = [f64::NAN; Metric::COUNT];
        let t0 = rec.time_s.last().unwrap() + 3.0;
        rec.events.push(Event {
            elapsed_s: t0,
            kind: EventKind::restart(200),
        });
        for i in 0..3 {
            row[Metric::Rss.index()] = 80.0 * MIB;
            rec.push_row(t0 + i as f64, &row);
        }
        let f = judged(&rec);
        assert_eq!(f.lives.len(), 4);
        assert_eq!(f.lives[3].analysis.verdict, Verdict::Inconclusive);
        assert!(f.lives[3].joined.is_none());
        assert_eq!(f.whole.verdict, Verdict::Growing);
        assert!(
            f.whole
                .reason
                .starts_with("3 lives joined end to end (3 restarts")
        );
        // Nothing long enough: inconclusive, and it says why.
        let short = judged(&run(3, 4, 1, 80.0 * MIB, 0.2 * MIB));
        assert_eq!(short.whole.verdict, Verdict::Inconclusive);
        assert!(
            short
                .whole
                .reason
                .contains("no life was long enough to judge"),
            "{}",
            short.whole.reason
        );
        assert!(short.pieces.is_empty());
    }
}
