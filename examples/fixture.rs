//! A small program with a known memory behaviour, for memwatch's tests, benchmarks and the
//! README's quick start.
//!
//!   fixture leak RATE      keeps RATE (e.g. 2MiB/s) of touched memory, forever
//!   fixture steady         holds 8 MiB and churns 1 MiB per tick, freeing it: flat RSS
//!   fixture sawtooth RATE  grows at RATE, drops back to the base every 2 s: flat floor
//! Options: --exit-after DUR, --exit-code N, --abort-after DUR (dies of SIGABRT),
//!          --catch-usr2 (installs a SIGUSR2 handler that frees garbage, like a GC),
//!          --dump-on-usr2 DIR (with --catch-usr2: each SIGUSR2 also writes a 2 MiB
//!          `fixture.<pid>.<n>.heapsnapshot` into DIR over ~0.3 s, closed with `]}`, and keeps
//!          16 MiB for good, as V8 does after a heap snapshot),
//!          --tick DUR (default 100ms).

use memwatch::options::{ByteRate, Dur, Size};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static USR2_SEEN: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_usr2(_: libc::c_int) {
    USR2_SEEN.fetch_add(1, Ordering::Relaxed);
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("fixture: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<u8, String> {
    let mode = args
        .first()
        .ok_or("usage: fixture leak RATE | steady | sawtooth RATE [options]")?;
    let mut rate = 0.0;
    let mut rest = &args[1..];
    if mode == "leak" || mode == "sawtooth" {
        rate = rest
            .first()
            .ok_or("leak needs a RATE, e.g. 2MiB/s")?
            .parse::<ByteRate>()?
            .0;
        rest = &rest[1..];
    } else if mode != "steady" {
        return Err(format!("unknown mode '{mode}'"));
    }
    let (mut exit_after, mut abort_after, mut exit_code, mut tick) =
        (None, None, 0u8, Duration::from_millis(100));
    let mut dump_dir: Option<std::path::PathBuf> = None;
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--exit-after" => exit_after = Some(value()?.parse::<Dur>()?.0),
            "--abort-after" => abort_after = Some(value()?.parse::<Dur>()?.0),
            "--exit-code" => exit_code = value()?.parse().map_err(|_| "bad --exit-code")?,
            "--tick" => tick = value()?.parse::<Dur>()?.0,
            "--dump-on-usr2" => dump_dir = Some(value()?.into()),
            "--catch-usr2" => {
                // SAFETY: the handler only touches an atomic.
                unsafe { libc::signal(libc::SIGUSR2, on_usr2 as *const () as libc::sighandler_t) };
            }
            other => return Err(format!("unknown option '{other}'")),
        }
    }

    let start = Instant::now();
    let base = touched("8MiB".parse::<Size>()?.0 as usize);
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let mut garbage: Vec<Vec<u8>> = Vec::new();
    let mut allocated = 0.0;
    let mut seen_usr2 = 0;
    loop {
        let t = start.elapsed();
        if exit_after.is_some_and(|d| t >= d) {
            drop(base);
            return Ok(exit_code);
        }
        if abort_after.is_some_and(|d| t >= d) {
            std::process::abort();
        }
        let due = rate * t.as_secs_f64() - allocated;
        match mode.as_str() {
            "leak" if due >= 4096.0 => {
                kept.push(touched(due as usize));
                allocated += due;
            }
            "sawtooth" if due >= 4096.0 => {
                garbage.push(touched(due as usize));
                allocated += due;
                if t.as_millis() % 2000 < tick.as_millis() {
                    garbage.clear();
                }
            }
            "steady" => drop(touched(1 << 20)),
            _ => {}
        }
        let usr2 = USR2_SEEN.load(Ordering::Relaxed);
        if usr2 != seen_usr2 {
            seen_usr2 = usr2;
            garbage.clear();
            println!("fixture: SIGUSR2 #{usr2}");
            if let Some(dir) = &dump_dir {
                write_dump(dir, usr2)
                    .map_err(|e| format!("cannot write a dump in {}: {e}", dir.display()))?;
                kept.push(touched(16 << 20));
            }
        }
        std::thread::sleep(tick);
    }
}

/// A stand-in heap snapshot: written in pieces like V8 does, complete once it ends in `]}`.
fn write_dump(dir: &std::path::Path, n: u64) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join(format!("fixture.{}.{n}.heapsnapshot", std::process::id()));
    let mut file = std::fs::File::create(path)?;
    file.write_all(b"{\"snapshot\":{},\"nodes\":[")?;
    for _ in 0..2 {
        file.write_all(&[b'0'; 1 << 20])?;
        file.flush()?;
        std::thread::sleep(Duration::from_millis(150));
    }
    file.write_all(b"]}")
}

/// Allocates `len` bytes and writes every page, so they count in RSS.
fn touched(len: usize) -> Vec<u8> {
    vec![1u8; len]
}
