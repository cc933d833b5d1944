//! memwatch: finds memory growth in running Linux processes.
//!
//! Data flows one way: target -> sampler -> samples (a `Recording`) -> judge/analyser ->
//! gate -> reporters. `docs/architecture.md` is the map.

pub mod analyze;
pub mod board;
pub mod cgroup;
pub mod cli;
pub mod commands;
pub mod compact;
pub mod config;
pub mod dump;
pub mod error;
pub mod exit;
pub mod footprint;
pub mod gate;
pub mod headroom;
pub mod heap;
pub mod interrupt;
pub mod judge;
pub mod keys;
pub mod load;
pub mod machine;
pub mod options;
pub mod recording;
pub mod report;
pub mod runtime;
pub mod sample;
pub mod sampler;
pub mod series;
pub mod signal;
pub mod target;
pub mod tree;
pub mod units;

pub use error::{Error, Result};
pub use exit::Exit;
pub use recording::{Event, EventKind, Kept, Recording};

use clap::CommandFactory;
use config::Command;
use std::io::Write;

/// Runs a checked command and returns how it ended.
pub fn run(command: Command) -> Result<Exit> {
    match command {
        Command::Watch(config) => commands::watch::watch(&config),
        Command::Machine(config) => commands::machine::machine(&config),
        Command::Report(config) => commands::report::report(&config),
        Command::Heap(args) => commands::heap::heap(&args),
        Command::Completions(shell) => {
            let mut cmd = cli::Cli::command();
            let shell = match shell {
                cli::Shell::Bash => clap_complete::Shell::Bash,
                cli::Shell::Zsh => clap_complete::Shell::Zsh,
                cli::Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut cmd, "memwatch", &mut std::io::stdout());
            Ok(Exit::Passed)
        }
        Command::Man => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cli::Cli::command())
                .render(&mut page)
                .map_err(|source| Error::Io {
                    context: "cannot render the man page".into(),
                    source,
                })?;
            let mut out = std::io::stdout().lock();
            match out.write_all(&page).and_then(|()| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
                    context: "cannot write the man page".into(),
                    source: e,
                }),
                _ => Ok(Exit::Passed),
            }
        }
    }
}
