//! The verdict on real processes, summary.json, memory.png, and `memwatch report`.

use crate::util::*;
use serde_json::Value;
use std::path::Path;

fn summary(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Decodes a PNG and returns (width, height, RGB rows).
pub fn decode_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

fn red_pixels(rgb: &[u8]) -> usize {
    rgb.chunks(3)
        .filter(|p| p[0] > 200 && p[1] < 40 && p[2] < 40)
        .count()
}

#[test]
fn a_leaking_command_fails_the_gate_with_files_to_show() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_fixture(
        dir.path(),
        &[
            "run",
            "--interval",
            "100ms",
            "--duration",
            "6s",
            "--out",
            "o",
        ],
        &["leak", "2MiB/s"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("growing"), "{err}");
    let s = summary(&dir.path().join("o/summary.json"));
    assert_eq!(s["verdict"], "growing");
    assert_eq!(s["exit_code"], 1);
    assert_eq!(s["metric"], "rss");
    let slope = s["slope_bytes_per_s"].as_f64().unwrap() / MIB;
    assert!(
        (1.5..=2.5).contains(&slope),
        "slope {slope:.2} MiB/s, leak is 2 MiB/s"
    );
    assert_eq!(s["target"]["stop"], "duration");
    assert_eq!(s["target"]["stopped_by_memwatch"], true);
    assert!(
        s["target"]["command"]
            .as_str()
            .unwrap()
            .contains("fixture leak 2MiB/s")
    );
    for key in [
        "pattern",
        "samples",
        "duration_s",
        "warmup_s",
        "slope_pct_per_hour",
        "growth_bytes",
        "p_value",
        "start_bytes",
        "end_bytes",
        "peak_bytes",
        "events",
        "dumps",
        "thresholds",
    ] {
        assert!(s.get(key).is_some(), "summary.json lacks {key}");
    }
    let (w, h, rgb) = decode_png(&dir.path().join("o/memory.png"));
    assert_eq!((w, h), (1280, 720));
    assert!(red_pixels(&rgb) > 300, "the trend line is red when growing");
}

#[test]
fn a_steady_command_passes_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_fixture(
        dir.path(),
        &[
            "run",
            "--interval",
            "100ms",
            "--duration",
            "6s",
            "--out",
            "o",
            "--png-size",
            "800x600",
        ],
        &["steady"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let s = summary(&dir.path().join("o/summary.json"));
    assert_eq!(s["verdict"], "stable");
    let (w, h, rgb) = decode_png(&dir.path().join("o/memory.png"));
    assert_eq!((w, h), (800, 600));
    assert_eq!(red_pixels(&rgb), 0, "no red trend line when stable");
}

#[test]
fn a_sawtooth_with_a_flat_floor_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_fixture(
        dir.path(),
        &[
            "run",
            "--interval",
            "100ms",
            "--duration",
            "8s",
            "--out",
            "o",
        ],
        &["sawtooth", "8MiB/s"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        summary(&dir.path().join("o/summary.json"))["verdict"],
        "stable"
    );
}

/// A recorded run, written as a CSV: 120 s at 1 Hz, 50 MiB + slope, with a little noise.
fn write_csv(path: &Path, slope_per_s: f64) {
    let mut text = String::from("elapsed_s,rss_bytes\n");
    for i in 0..120 {
        let noise = ((i * 7919) % 13) as f64 * 20_000.0;
        text += &format!(
            "{i}.000,{:.0}\n",
            50.0 * MIB + slope_per_s * i as f64 + noise
        );
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn report_reanalyses_a_recorded_run() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("run.csv");
    write_csv(&csv, 50_000.0);
    let out = memwatch(dir.path())
        .args(["report", "run.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = summary(&dir.path().join("summary.json"));
    assert_eq!(s["verdict"], "growing");
    assert_eq!(s["source"]["format"], "memwatch CSV");
    assert!(dir.path().join("memory.png").exists());

    write_csv(&csv, 0.0);
    let out = memwatch(dir.path())
        .args(["report", "run.csv", "--json", "-", "--png", "flat.png"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s: Value =
        serde_json::from_slice(&out.stdout).expect("stdout is the JSON summary and nothing else");
    assert_eq!(s["verdict"], "stable");
    assert_eq!(s["exit_code"], 0);
    assert!(dir.path().join("flat.png").exists());
}

#[test]
fn report_reads_psrecord_and_mprof_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = String::from("# Elapsed time   CPU (%)     Real (MB)   Virtual (MB)\n");
    let mut dat = String::from("CMDLINE python leak.py\n");
    for i in 0..100 {
        log += &format!(
            "{:>12.3} {:>9.3} {:>12.3} {:>12.3}\n",
            i as f64,
            1.0,
            40.0 + 0.1 * i as f64,
            300.0
        );
        dat += &format!(
            "MEM {:.6} {:.4}\n",
            40.0 + 0.1 * i as f64,
            1_700_000_000.0 + i as f64
        );
    }
    std::fs::write(dir.path().join("psrecord.log"), log).unwrap();
    std::fs::write(dir.path().join("mprofile.dat"), dat).unwrap();
    for (file, format) in [("psrecord.log", "psrecord"), ("mprofile.dat", "mprof")] {
        let out = memwatch(dir.path())
            .args(["report", file, "--json", "-", "--png", "x.png"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{file}: {}", stderr(&out));
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(s["verdict"], "growing", "{file}");
        assert!(s["source"]["format"].as_str().unwrap().contains(format));
        let slope = s["slope_bytes_per_s"].as_f64().unwrap();
        assert!(
            (slope - 0.1 * MIB).abs() < 0.01 * MIB,
            "{file}: slope {slope}"
        );
    }
}

#[test]
fn report_refuses_bad_files_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, &str); 5] = [
        ("empty.csv", "", "empty"),
        ("header.csv", "elapsed_s,rss_bytes\n", "no complete sample"),
        ("nocol.csv", "elapsed_s,vsz_bytes\n0,1\n", "rss_bytes"),
        ("text.csv", "elapsed_s,rss_bytes\n0,100\n1,abc\n", "line 3"),
        (
            "back.csv",
            "elapsed_s,rss_bytes\n0,100\n2,100\n1,100\n",
            "line 4",
        ),
    ];
    for (name, text, expect) in cases {
        std::fs::write(dir.path().join(name), text).unwrap();
        let out = memwatch(dir.path())
            .args(["report", name])
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.contains(expect), "{name}: {err}");
    }
    assert!(!dir.path().join("summary.json").exists() && !dir.path().join("memory.png").exists());
    let out = memwatch(dir.path())
        .args(["report", "missing.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("missing.csv"));
}

#[test]
fn report_skips_a_truncated_last_line_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("killed.csv");
    write_csv(&csv, 0.0);
    let mut text = std::fs::read_to_string(&csv).unwrap();
    text += "120.000,524";
    std::fs::write(&csv, text.replace("120.000,524", "120.0")).unwrap();
    let out = memwatch(dir.path())
        .args(["report", "killed.csv", "--json", "-"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("warning") && stderr(&out).contains("line 122"),
        "{}",
        stderr(&out)
    );
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["samples"], 120);
}

#[test]
fn too_short_a_run_is_inconclusive() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_fixture(
        dir.path(),
        &["run", "--interval", "500ms", "--out", "o"],
        // A run planned too short is refused at the start; one whose target exits early
        // is inconclusive.
        &["steady", "--exit-after", "2s"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(
        summary(&dir.path().join("o/summary.json"))["verdict"],
        "inconclusive"
    );
}
