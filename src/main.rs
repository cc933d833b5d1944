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
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("memwatch: error: {first} (see 'memwatch --help')");
            ExitCode::from(2)
        }
    }
}
