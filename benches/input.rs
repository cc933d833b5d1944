//! Times reading a 1,000,000-row memwatch CSV, in memory and from a file (streamed, every
//! metric or only those `memwatch report` keeps).
//! Run with `cargo bench --bench input`.

use memwatch::report::input::{ReadOptions, parse_recording, read_recording, read_recording_with};
use memwatch::sample::Metric;
use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, Instant};

const ROWS: usize = 1_000_000;
const RUNS: usize = 7;

/// A realistic run: 10 samples a second, a slow leak with noise, an event every 10,000 rows,
/// PSS/USS empty (not asked for), as memwatch writes it.
fn generate_csv() -> Vec<u8> {
    let mut out = Vec::with_capacity(ROWS * 110);
    out.extend_from_slice(
        b"elapsed_s,unix_ms,pid,rss_bytes,vsz_bytes,anon_bytes,file_bytes,shmem_bytes,\
          swap_bytes,hwm_bytes,pss_bytes,uss_bytes,threads,event\n",
    );
    let mut noise: u64 = 0x2545_f491_4f6c_dd1d;
    let mut hwm = 0u64;
    for i in 0..ROWS as u64 {
        noise ^= noise << 13;
        noise ^= noise >> 7;
        noise ^= noise << 17;
        let rss = 200_000_000 + i * 64 + (noise % 4_000_000);
        hwm = hwm.max(rss);
        let event = if i % 10_000 == 5_000 {
            "signal:SIGUSR2"
        } else {
            ""
        };
        writeln!(
            out,
            "{}.{:03},{},4242,{},{},{},{},{},0,{},,,{},{}",
            i / 10,
            (i % 10) * 100,
            1_700_000_000_000 + i * 100,
            rss,
            rss * 4 + 123_456_789,
            rss - 40_000_000,
            38_000_000,
            2_000_000,
            hwm,
            8 + noise % 4,
            event
        )
        .expect("writing to a Vec cannot fail");
    }
    out
}

/// CPU time of this thread: unlike wall time, not inflated when a busy machine preempts us.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f` RUNS times and prints best and median wall and CPU time.
fn time_runs(label: &str, bytes: usize, mut f: impl FnMut()) {
    let mut wall = Vec::with_capacity(RUNS);
    let mut cpu = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let (wall_start, cpu_start) = (Instant::now(), thread_cpu_time());
        f();
        cpu.push(thread_cpu_time() - cpu_start);
        wall.push(wall_start.elapsed());
    }
    wall.sort();
    cpu.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let best_cpu = cpu[0].as_secs_f64();
    println!(
        "{label}: wall best {:.1} ms, median {:.1} ms; CPU best {:.1} ms, median {:.1} ms \
         ({:.0} MB/s, {:.0} ns/row at best CPU)",
        ms(wall[0]),
        ms(wall[RUNS / 2]),
        ms(cpu[0]),
        ms(cpu[RUNS / 2]),
        bytes as f64 / best_cpu / 1e6,
        best_cpu * 1e9 / ROWS as f64
    );
}

fn main() {
    let csv = generate_csv();
    println!(
        "input: {ROWS} rows, {:.1} MB memwatch CSV, {RUNS} runs each",
        csv.len() as f64 / 1e6
    );

    time_runs("parse_recording (in memory)", csv.len(), || {
        let loaded = parse_recording(black_box(&csv), "bench.csv").expect("bench CSV parses");
        assert_eq!(loaded.recording.len(), ROWS);
        assert_eq!(loaded.recording.events.len(), ROWS / 10_000);
        black_box(loaded);
    });

    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(&csv).expect("write temp file");
    file.flush().expect("flush temp file");
    time_runs(
        "read_recording (file, page cache, streamed)",
        csv.len(),
        || {
            black_box(read_recording(file.path()).expect("bench file reads"));
        },
    );
    // What `memwatch report` keeps: rss and anon (the chart), plus the judged metric.
    let keep = ReadOptions::to_judge(Metric::Rss);
    time_runs("read_recording_with (rss, anon kept)", csv.len(), || {
        black_box(read_recording_with(file.path(), &keep).expect("bench file reads"));
    });
}
