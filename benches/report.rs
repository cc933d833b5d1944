//! `memwatch report` on a generated 1,000,000-row CSV (a 28-hour run at 10 Hz, a slow leak
//! under a GC sawtooth): total wall time of the binary, and the split into parsing, analysis
//! and drawing done through the library. Target: at most 1 s in all on this 2-core machine.
//! Run: cargo bench --bench report
//!
//! `cargo bench --bench report -- --stages FILE` instead reads FILE as `memwatch report` does
//! (keeping rss and anon), then analyses it and draws the chart, and prints after each stage
//! its time and the process's peak RSS so far: which stage sets the peak on a large file
//! (scripts/bench-report-big.sh makes one).
#![allow(clippy::unwrap_used)]

use memwatch::analyze::{Thresholds, analyze};
use memwatch::report::chart::render_png;
use memwatch::report::input::{ReadOptions, read_recording, read_recording_with};
use memwatch::sample::Metric;
use std::io::Write;
use std::process::Command;
use std::time::Instant;

const ROWS: u64 = 1_000_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--stages") {
        stages(std::path::Path::new(&args[i + 1]));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("samples.csv");
    write_csv(&csv);
    let size_mb = std::fs::metadata(&csv).unwrap().len() as f64 / 1e6;

    let mut best = [f64::MAX; 4];
    for _ in 0..3 {
        let t = Instant::now();
        let loaded = read_recording(&csv).unwrap();
        let parse = t.elapsed().as_secs_f64();
        let rec = loaded.recording;
        let t = Instant::now();
        let analysis = analyze(
            &rec.time_s,
            rec.metric(Metric::Rss).unwrap(),
            &rec.dump_periods(),
            &Thresholds::default(),
        );
        let analyse = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let png = render_png(
            &rec,
            Metric::Rss,
            &analysis,
            (1280, 720),
            &memwatch::report::chart::ChartContext::default(),
        )
        .unwrap();
        let draw = t.elapsed().as_secs_f64();
        assert!(!png.is_empty());

        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_memwatch"))
            .args(["report", "--quiet", "--json"])
            .arg(dir.path().join("s.json"))
            .arg("--png")
            .arg(dir.path().join("m.png"))
            .arg(&csv)
            .output()
            .unwrap();
        let total = t.elapsed().as_secs_f64();
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (b, v) in best.iter_mut().zip([parse, analyse, draw, total]) {
            *b = b.min(v);
        }
        println!("verdict {:?}, {} samples", analysis.verdict, rec.len());
    }
    println!("memwatch report, {ROWS} rows ({size_mb:.0} MB CSV), best of 3:");
    println!("  parse    {:7.1} ms", best[0] * 1e3);
    println!("  analyse  {:7.1} ms", best[1] * 1e3);
    println!("  draw     {:7.1} ms", best[2] * 1e3);
    println!(
        "  binary end to end (parse + analyse + draw + write files): {:7.1} ms (target <= 1000 ms)",
        best[3] * 1e3
    );
}

/// memwatch's own columns; RSS 200 MB with a 64 B/s leak under a 20 s GC sawtooth and noise.
fn write_csv(path: &std::path::Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    writeln!(out, "elapsed_s,unix_ms,pid,rss_bytes,vsz_bytes,anon_bytes,file_bytes,shmem_bytes,swap_bytes,hwm_bytes,pss_bytes,uss_bytes,threads,event").unwrap();
    let mut rng = memwatch::analyze::synth::Rng::new(7);
    let mut hwm = 0u64;
    for i in 0..ROWS {
        let t = i as f64 / 10.0;
        let saw = (t % 20.0) * 300_000.0;
        let rss = (200e6 + 64.0 * t + saw + rng.normal() * 50_000.0) as u64 / 4096 * 4096;
        hwm = hwm.max(rss);
        let event = if i % 600 == 300 { "signal:SIGUSR2" } else { "" };
        writeln!(
            out,
            "{}.{:03},{},4242,{rss},{},{},{},0,0,{hwm},,,8,{event}",
            i / 10,
            (i % 10) * 100,
            1_700_000_000_000 + i * 100,
            rss * 3,
            rss - 20_000_000,
            20_000_000,
        )
        .unwrap();
    }
}

/// Peak RSS of this process so far (VmHWM), MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024.0
}

fn stages(file: &std::path::Path) {
    let size_mib = std::fs::metadata(file).unwrap().len() as f64 / 1_048_576.0;
    println!(
        "{} ({size_mib:.0} MiB), peak RSS after each stage:",
        file.display()
    );
    let line = |stage: &str, t: Instant| {
        let peak = peak_rss_mib();
        println!(
            "  {stage:<8} {:7.2} s   peak RSS {peak:7.0} MiB ({:.1}% of the file)",
            t.elapsed().as_secs_f64(),
            peak / size_mib * 100.0
        );
    };
    let t = Instant::now();
    let keep = ReadOptions::to_judge(Metric::Rss);
    let rec = read_recording_with(file, &keep).unwrap().recording;
    line("read", t);
    let t = Instant::now();
    let analysis = analyze(
        &rec.time_s,
        rec.metric(Metric::Rss).unwrap(),
        &rec.dump_periods(),
        &Thresholds::default(),
    );
    line("analyse", t);
    let t = Instant::now();
    let png = render_png(
        &rec,
        Metric::Rss,
        &analysis,
        (1280, 720),
        &memwatch::report::chart::ChartContext::default(),
    )
    .unwrap();
    line("draw", t);
    println!(
        "  {} samples, verdict {:?}, {} B of PNG",
        rec.len(),
        analysis.verdict,
        png.len()
    );
}
