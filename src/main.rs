//! The `memwatch` binary: parse, run, map the outcome to an exit code in one place.

use memwatch::units::Printable;
use memwatch::{Error, Exit, config};
use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let outcome = config::parse(argv.clone()).and_then(memwatch::run);
    match outcome {
        Ok(exit) => exit.into(),
        Err(Error::Cli(e)) => clap_exit(&e, &argv),
        Err(e) => {
            eprintln!("memwatch: error: {}", Printable(&e.to_string()));
            Exit::Trouble.into()
        }
    }
}

/// Help and version go to stdout with exit 0; a usage error is one line on stderr, exit 2,
/// pointing at the help of the command that was used.
fn clap_exit(e: &clap::Error, argv: &[OsString]) -> ExitCode {
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
            // `memwatch --duration 2s run -- cmd`: clap says the subcommand "cannot be used
            // with" the option; the fix is where the option goes.
            if e.kind() == ErrorKind::ArgumentConflict
                && let Some(sub) = ["run", "report", "heap", "completions", "man"]
                    .into_iter()
                    .find(|s| message.contains(&format!("the subcommand '{s}'")))
            {
                eprintln!(
                    "memwatch: error: options go after the subcommand: 'memwatch {sub} \
                     [OPTIONS] ...', not 'memwatch [OPTIONS] {sub} ...' (see 'memwatch {sub} --help')"
                );
                return Exit::Trouble.into();
            }
            let help = match argv.get(1).and_then(|a| a.to_str()) {
                Some(sub @ ("run" | "report" | "heap" | "completions")) => {
                    format!("memwatch {sub} --help")
                }
                _ => "memwatch --help".to_string(),
            };
            eprintln!("memwatch: error: {} (see '{help}')", Printable(message));
            Exit::Trouble.into()
        }
    }
}
