//! Every synthetic case, over several seeds, run lengths, sampling rates and
//! noise levels, must get its expected verdict with the default thresholds.

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
/// White-noise standard deviation, fraction of the level.
/// Long runs (issue 9 item 12): a day at 1 Hz, two days every 10 s, a week and four weeks
/// (678 h) once a minute.
const LONG_RUNS: [(f64, f64); 4] = [
    (86_400.0, 1.0),
    (2.0 * 86_400.0, 0.1),
    (7.0 * 86_400.0, 1.0 / 60.0),
    (678.0 * 3600.0, 1.0 / 60.0),
];
const NOISE: [f64; 3] = [0.001, 0.005, 0.015];
const SEEDS: u64 = 6;

struct Outcome {
    case: Case,
    run: (f64, f64),
    noise: f64,
    seed: u64,
    analysis: Analysis,
}

fn run_all(cases: &[Case], runs: &[(f64, f64)]) -> Vec<Outcome> {
    let thresholds = Thresholds::default();
    let mut out = Vec::new();
    for &case in cases {
        for &run in runs {
            for noise in NOISE {
                for seed in 0..SEEDS {
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
fn every_case_gets_its_expected_verdict() {
    check_budget(&run_all(&Case::ALL, &RUNS));
}

/// Days and weeks, at 1 Hz and coarser: slow steady leaks (hundredths of a %/h) are
/// growing; flat, wandering and daily-cycling series stay stable.
#[test]
fn long_runs_get_their_expected_verdict() {
    let cases: Vec<Case> = Case::ALL.into_iter().chain(Case::LONG_RUNS_ONLY).collect();
    check_budget(&run_all(&cases, &LONG_RUNS));
}

fn check_budget(outcomes: &[Outcome]) {
    let mut failures = Vec::new();
    let (mut stable, mut false_alarms, mut leaks, mut detected) = (0, 0, 0, 0);
    for o in outcomes {
        let expected = o.case.expected();
        let got = o.analysis.verdict;
        match expected {
            Verdict::Stable => {
                stable += 1;
                false_alarms += usize::from(got == Verdict::Growing);
            }
            Verdict::Growing => {
                leaks += 1;
                detected += usize::from(got == Verdict::Growing);
            }
            Verdict::Inconclusive => {}
        }
        if got != expected {
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
    let passed = outcomes.len() - failures.len();
    println!("cases passed: {passed}/{}", outcomes.len());
    println!(
        "false alarms on stable cases: {false_alarms}/{stable} ({:.2}%)",
        100.0 * false_alarms as f64 / stable as f64
    );
    println!(
        "detection on growing cases: {detected}/{leaks} ({:.2}%)",
        100.0 * detected as f64 / leaks as f64
    );
    for f in &failures {
        println!("FAIL {f}");
    }
    // Budget, stated explicitly: the only misses allowed are the statistically
    // hardest corners, AR(1) wander (a slow random walk can look like a trend)
    // and a slow leak squeezed into a short, noisy run; the rates stay small.
    let hard = |f: &String| f.starts_with("Ar1Wander ") || f.starts_with("SlowLeak 120s");
    let unexpected: Vec<&String> = failures.iter().filter(|f| !hard(f)).collect();
    assert!(
        unexpected.is_empty(),
        "unexpected failures: {unexpected:#?}"
    );
    assert!(
        false_alarms as f64 <= 0.01 * stable as f64,
        "false-alarm rate above 1%: {false_alarms}/{stable}"
    );
    assert!(
        detected as f64 >= 0.995 * leaks as f64,
        "detection below 99.5%: {detected}/{leaks}"
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
                    // A recording's PID is positive (the CSV reader refuses 0).
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
