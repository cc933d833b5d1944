//! Times `analyze` on synthetic series of 100k and 1M samples, and on four weeks at 1 Hz
//! (2.44M samples) (release build: `cargo bench --bench analyze`). Prints the best and
//! median of a few runs.

use std::hint::black_box;
use std::time::{Duration, Instant};

use memwatch::analyze::synth::{Case, generate};
use memwatch::analyze::{Thresholds, analyze};

fn time_case(label: &str, case: Case, samples: usize) {
    // Sampled at 10 Hz: 1M samples is about 28 hours.
    time_at(label, case, samples, 10.0);
}

fn time_at(label: &str, case: Case, samples: usize, hz: f64) {
    let duration = (samples - 1) as f64 / hz;
    let s = generate(&case.spec(duration, hz, 0.005, 42));
    assert_eq!(s.values.len(), samples);
    let thresholds = Thresholds::default();
    let mut runs: Vec<Duration> = Vec::new();
    let mut verdict = "";
    for _ in 0..7 {
        let start = Instant::now();
        let a = analyze(black_box(&s.time_s), black_box(&s.values), &[], &thresholds);
        runs.push(start.elapsed());
        verdict = a.verdict.as_str();
    }
    runs.sort();
    println!(
        "analyze {label:>18} {samples:>9} samples: best {:>8.2} ms, median {:>8.2} ms ({verdict})",
        runs[0].as_secs_f64() * 1e3,
        runs[runs.len() / 2].as_secs_f64() * 1e3,
    );
}

fn main() {
    for samples in [100_000, 1_000_000] {
        time_case("slow leak (2-5%/h)", Case::SlowLeak, samples);
        time_case("sawtooth flat", Case::SawtoothFlat, samples);
    }
    // Four weeks (678 h) at 1 Hz: a slow leak of 15-60% over the run.
    time_at("4 weeks, slow leak", Case::SlowLeak, 678 * 3600 + 1, 1.0);
}
