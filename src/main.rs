//! The `memwatch` binary: parse, run, map the outcome to an exit code in one place.

use clap::Parser;
use memwatch::cli::Cli;
use memwatch::config::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(e),
    };
    if let Some(memwatch::cli::Command::Heap(args)) = &cli.command {
        return match memwatch::heap::run(args) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("memwatch: error: {e}");
                ExitCode::from(2)
            }
        };
    }
    match Config::from_cli(cli).and_then(memwatch::run) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("memwatch: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Help and version go to stdout with exit 0; a usage error is one line on stderr, exit 2.
fn clap_exit(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            // clap's first paragraph, on one line (a missing argument is named on the next line)
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let message = first.join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            eprintln!("memwatch: error: {message} (see 'memwatch --help')");
            ExitCode::from(2)
        }
    }
}
