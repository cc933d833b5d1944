//! Time to chart a long recording: `cargo bench --bench chart`.
//! Ten million samples of rss and anon (about 11.5 days at 10 Hz) should draw in under
//! a second in release. Set MEMWATCH_CHART_DIR to keep the chart (`bench-10M.png`).

use std::hint::black_box;
use std::time::{Duration, Instant};

use memwatch::analyze::{Analysis, MinGrowth, Pattern, Thresholds, TrendLine, Verdict, Warmup};
use memwatch::report::chart::{ChartContext, DEFAULT_SIZE, render_png};
use memwatch::sample::Metric;
use memwatch::{Kept, Recording};

const SAMPLES: usize = 10_000_000;
const RUNS: usize = 5;
const MIB: f64 = 1024.0 * 1024.0;

fn recording() -> Recording {
    let mut rec = Recording::keeping(SAMPLES, Kept::new(&[Metric::Rss], &[Metric::Anon]));
    let mut row = [f64::NAN; Metric::COUNT];
    let mut noise: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..SAMPLES {
        noise ^= noise << 13;
        noise ^= noise >> 7;
        noise ^= noise << 17;
        let t = i as f64 * 0.1;
        let jitter = (noise % 1024) as f64 * 1024.0;
        let sawtooth = 20.0 * MIB * ((i % 6000) as f64 / 6000.0);
        let rss = 200.0 * MIB + 50.0 * t + sawtooth + jitter;
        row[Metric::Rss.index()] = rss;
        row[Metric::Anon.index()] = rss - 80.0 * MIB;
        rec.push_row(t, &row);
    }
    rec
}

fn analysis(rec: &Recording) -> Analysis {
    let end = rec.duration_s();
    let warmup_s = end * 0.1;
    Analysis {
        verdict: Verdict::Growing,
        pattern: Pattern::Sawtooth,
        samples: rec.len(),
        samples_analysed: rec.len() * 9 / 10,
        duration_s: end,
        warmup_s,
        window_start_s: warmup_s,
        window_end_s: end,
        slope_bytes_per_s: Some(50.0),
        slope_pct_per_hour: Some(0.8),
        growth_bytes: Some(50.0 * (end - warmup_s)),
        p_value: Some(1e-12),
        start_bytes: 200.0 * MIB,
        end_bytes: 200.0 * MIB + 50.0 * end,
        peak_bytes: 221.0 * MIB + 50.0 * end,
        trend: Some(TrendLine {
            t0: warmup_s,
            v0: 210.0 * MIB + 50.0 * warmup_s,
            t1: end,
            v1: 210.0 * MIB + 50.0 * end,
        }),
        excluded: Vec::new(),
        steps: Vec::new(),
        floor: Vec::new(),
        thresholds: Thresholds {
            warmup: Warmup::Auto,
            min_slope_bytes_per_s: 0.0,
            min_slope_pct_per_hour: 0.0,
            min_growth: MinGrowth::Bytes(0.0),
            p_value: 0.01,
            slope_horizon_s: f64::INFINITY,
        },
        reason: String::new(),
    }
}

fn main() {
    let rec = recording();
    let analysis = analysis(&rec);
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    let mut size = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        let png = render_png(
            black_box(&rec),
            Metric::Rss,
            &analysis,
            DEFAULT_SIZE,
            &ChartContext::default(),
        )
        .expect("the chart renders");
        times.push(start.elapsed());
        size = black_box(png).len();
    }
    if let Some(dir) = std::env::var_os("MEMWATCH_CHART_DIR") {
        let png = render_png(
            &rec,
            Metric::Rss,
            &analysis,
            DEFAULT_SIZE,
            &ChartContext::default(),
        )
        .expect("the chart renders");
        std::fs::write(std::path::Path::new(&dir).join("bench-10M.png"), png)
            .expect("the chart is written");
    }
    times.sort();
    println!(
        "chart: {SAMPLES} samples (rss + anon) at {}x{}: best {:.1} ms, median {:.1} ms over {RUNS} runs, {} KiB PNG",
        DEFAULT_SIZE.0,
        DEFAULT_SIZE.1,
        times[0].as_secs_f64() * 1e3,
        times[RUNS / 2].as_secs_f64() * 1e3,
        size / 1024,
    );
}
