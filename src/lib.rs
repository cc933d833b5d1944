//! memwatch: finds memory growth in running Linux processes.
//!
//! Data flows one way: target -> sampler -> samples (a `Recording`) -> judge/analyser ->
//! gate -> reporters. `docs/architecture.md` is the map.

pub mod analyze;
pub mod cgroup;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dump;
pub mod error;
pub mod exit;
pub mod find;
pub mod footprint;
pub mod gate;
pub mod headroom;
pub mod heap;
pub mod interrupt;
pub mod judge;
pub mod load;
pub mod native;
pub mod options;
pub mod recording;
pub mod report;
pub mod runtime;
pub mod safe_fs;
pub mod sample;
pub mod sampler;
pub mod segments;
pub mod series;
pub mod signal;
pub mod target;
pub mod tree;
pub mod units;

pub use error::{Error, Result};
pub use exit::Exit;
pub use recording::{Event, EventKind, Kept, Recording};

use config::Command;

/// Runs a checked command and returns how it ended.
pub fn run(command: Command) -> Result<Exit> {
    match command {
        Command::Watch(config) => commands::watch::watch(&config),
        Command::Report(config) => commands::report::report(&config),
        Command::Heap(args) => commands::heap::heap(&args),
        Command::Completions(shell) => commands::man::completions(shell),
        Command::Man(args) => commands::man::man(&args),
    }
}
