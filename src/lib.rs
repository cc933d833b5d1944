//! memwatch: finds memory growth in running Linux processes.
//!
//! Data flows one way: target -> sampler -> samples (a `Recording`) -> analyser -> reporters.

pub mod analyze;
pub mod cli;
pub mod config;
pub mod error;
pub mod interrupt;
pub mod recording;
pub mod report;
pub mod sample;
pub mod signal;
pub mod target;
pub mod units;
pub mod watch;

pub use error::{Error, Result};
pub use recording::{Event, EventKind, Recording};

use config::{Config, Mode};
use report::csv::CsvWriter;
use report::live::{LiveMode, LiveView};
use report::output::local_stamp;
use std::path::Path;
use target::Target;
use units::{Bytes, Delta, Elapsed};
use watch::{Sinks, StopReason};

/// Runs memwatch as configured and returns the process exit code (see `cli::EXIT_CODES`).
pub fn run(config: Config) -> Result<u8> {
    match &config.mode {
        Mode::Attach { .. } | Mode::Run { .. } => watch_target(&config),
        Mode::Report { .. } => Err(Error::Usage("'report' is not available yet".into())),
    }
}

fn watch_target(config: &Config) -> Result<u8> {
    let proc_root = Path::new("/proc");
    let with_pss = config.sampling.pss_interval.is_some();
    // Before any thread or child exists: children get an empty signal mask back from std.
    let interrupts = interrupt::Interrupts::install().map_err(|e| Error::Io {
        context: "cannot set up signal handling".into(),
        source: e,
    })?;
    config.output.precheck()?;

    let (mut target, mut reader) = match &config.mode {
        Mode::Attach { pid } => Target::attach(proc_root, *pid, with_pss)?,
        Mode::Run { command, .. } => Target::spawn(proc_root, command, with_pss)?,
        Mode::Report { .. } => unreachable!("handled by run"),
    };
    let first = reader.read_status();
    target.check_first_read(&first)?;
    let outputs = config.output.resolve(target.pid, &local_stamp());
    let csv = outputs.create_csv().and_then(|out| {
        CsvWriter::new(out).map_err(|source| Error::Output {
            path: outputs.csv.display().into(),
            source,
        })
    });
    let csv = match csv {
        Ok(csv) => csv,
        Err(e) => {
            // Our own child must not outlive a failed start.
            if target.is_child() {
                let _ = target.signal(libc::SIGKILL);
                target.end();
            }
            return Err(e);
        }
    };
    let live_mode = LiveMode::detect(config.quiet);
    let mut sinks = Sinks {
        csv,
        live: LiveView::new(live_mode),
    };

    let result = match first {
        Ok(first) => watch::watch(
            &target,
            &mut reader,
            first,
            &config.sampling,
            &interrupts,
            &mut sinks,
        )?,
        // A spawned command that is already gone: nothing to sample.
        Err(_) => watch::WatchResult {
            recording: Recording::default(),
            missed: 0,
            stop: StopReason::TargetExited,
        },
    };
    sinks.live.finish();

    if let Mode::Run { grace, .. } = &config.mode {
        if matches!(result.stop, StopReason::Interrupted { .. }) {
            target.mark_stopped_by_memwatch();
        }
        target.stop(*grace);
    }
    let end = target.end();

    if !config.quiet {
        let rec = &result.recording;
        let rss = rec.metric(sample::Metric::Rss).unwrap_or(&[]);
        let (start, last) = (
            rss.first().copied().unwrap_or(0.0),
            rss.last().copied().unwrap_or(0.0),
        );
        let peak = rss.iter().copied().fold(0.0, f64::max);
        let stop = match result.stop {
            StopReason::Duration => "duration reached".to_string(),
            StopReason::TargetExited => "target exited".to_string(),
            StopReason::Interrupted { signal } => {
                format!("interrupted by {}", signal::signal_name(signal))
            }
            StopReason::OutputClosed => "output closed".to_string(),
        };
        eprintln!(
            "memwatch: pid {} ({}): {stop}; target {}",
            target.pid,
            target.name,
            end.describe()
        );
        eprintln!(
            "memwatch: RSS start {}  end {}  peak {}  growth {}  |  {} samples over {}, {} missed",
            Bytes(start),
            Bytes(last),
            Bytes(peak),
            Delta(last - start),
            rec.len(),
            Elapsed(rec.duration_s()),
            result.missed
        );
        for file in outputs.files().iter().filter(|f| f.exists()) {
            eprintln!("memwatch: wrote {}", file.display());
        }
    }
    let failed = matches!(config.mode, Mode::Run { .. }) && end.command_failed();
    Ok(if failed { 4 } else { 0 })
}
