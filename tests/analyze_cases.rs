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
const NOISE: [f64; 3] = [0.001, 0.005, 0.015];
const SEEDS: u64 = 6;

struct Outcome {
    case: Case,
    run: (f64, f64),
    noise: f64,
    seed: u64,
    analysis: Analysis,
}

fn run_all() -> Vec<Outcome> {
    let thresholds = Thresholds::default();
    let mut out = Vec::new();
    for case in Case::ALL {
        for run in RUNS {
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
    let outcomes = run_all();
    let mut failures = Vec::new();
    let (mut stable, mut false_alarms, mut leaks, mut detected) = (0, 0, 0, 0);
    for o in &outcomes {
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
