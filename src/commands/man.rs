//! `memwatch man` and `memwatch completions`: the man pages (one per command, as the
//! SUBCOMMANDS sections name them) and shell completions, from the same clap definition as
//! `--help`. The exit codes are a section of their own (EXIT STATUS), one entry per code.

use crate::cli::{Cli, ManArgs, Shell};
use crate::error::{Error, Result};
use crate::exit::{self, Exit};
use crate::report::output::{Dest, write_atomic};
use clap::CommandFactory;
use std::io::Write;

pub fn completions(shell: Shell) -> Result<Exit> {
    let mut cmd = Cli::command();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "memwatch", &mut std::io::stdout());
    Ok(Exit::Passed)
}

pub fn man(args: &ManArgs) -> Result<Exit> {
    let root = built();
    if let Some(dir) = &args.dir {
        for (name, cmd) in pages(&root) {
            let path = dir.join(format!("{name}.1"));
            write_atomic(&Dest::File(path), &page(cmd)?)?;
        }
        return Ok(Exit::Passed);
    }
    let mut cmd = &root;
    for word in &args.command {
        cmd = cmd.find_subcommand(word).ok_or_else(|| {
            let names: Vec<String> = pages(&root).into_iter().map(|(n, _)| n).collect();
            Error::Usage(format!(
                "no man page for '{}': the pages are {}",
                args.command.join(" "),
                names.join(", ")
            ))
        })?;
    }
    let text = page(cmd)?;
    let mut out = std::io::stdout().lock();
    match out.write_all(&text).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Io {
            context: "cannot write the man page".into(),
            source: e,
        }),
        _ => Ok(Exit::Passed),
    }
}

/// The command line as the pages show it: built, so that subcommands have their display
/// names (`memwatch-run`), without the `help` subcommand.
fn built() -> clap::Command {
    let mut root = Cli::command().disable_help_subcommand(true);
    root.build();
    root
}

/// Every page: the command and each subcommand, depth first, with its file name.
fn pages(root: &clap::Command) -> Vec<(String, &clap::Command)> {
    fn walk<'c>(cmd: &'c clap::Command, out: &mut Vec<(String, &'c clap::Command)>) {
        let name = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
        out.push((name, cmd));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out
}

/// One page in roff: clap_mangen's sections, then EXIT STATUS in place of the raw
/// after-help text.
fn page(cmd: &clap::Command) -> Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut text = Vec::new();
    let rendered = (|| -> std::io::Result<()> {
        man.render_title(&mut text)?;
        man.render_name_section(&mut text)?;
        man.render_synopsis_section(&mut text)?;
        man.render_description_section(&mut text)?;
        if cmd.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(&mut text)?;
        }
        if cmd.has_subcommands() {
            man.render_subcommands_section(&mut text)?;
        }
        if let Some(table) = exit_table(cmd) {
            text.extend_from_slice(exit_status(table).as_bytes());
        }
        if cmd.get_version().is_some() {
            man.render_version_section(&mut text)?;
        }
        Ok(())
    })();
    rendered.map_err(|source| Error::Io {
        context: "cannot render the man page".into(),
        source,
    })?;
    Ok(text)
}

/// The exit-code table a command's `--help` shows.
fn exit_table(cmd: &clap::Command) -> Option<&'static str> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    Some(match name {
        "memwatch" | "memwatch-run" => exit::TABLE,
        "memwatch-report" => exit::REPORT_TABLE,
        n if n.starts_with("memwatch-heap") => exit::HEAP_TABLE,
        _ => return None,
    })
}

/// An exit-code table ("Exit codes:", then "  N  words" with indented continuation lines)
/// as a roff EXIT STATUS section: one tagged paragraph per code, its words joined.
fn exit_status(table: &str) -> String {
    let mut entries: Vec<(&str, String)> = Vec::new();
    for line in table.lines().skip(1).map(str::trim_start) {
        match line.split_once("  ") {
            Some((code, words)) if !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()) => {
                entries.push((code, words.trim().to_string()));
            }
            _ => {
                if let Some((_, words)) = entries.last_mut() {
                    words.push(' ');
                    words.push_str(line.trim());
                }
            }
        }
    }
    let mut roff = String::from(".SH \"EXIT STATUS\"\n");
    for (code, words) in entries {
        roff.push_str(&format!(".TP\n\\fB{code}\\fR\n{}\n", roff_text(&words)));
    }
    roff
}

/// Words as roff text: backslashes and leading dots escaped.
fn roff_text(words: &str) -> String {
    let text = words.replace('\\', "\\\\").replace('-', "\\-");
    match text.strip_prefix('.') {
        Some(rest) => format!("\\&.{rest}"),
        None => text,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_page_a_subcommands_section_names_exists() {
        let root = built();
        let names: Vec<String> = pages(&root).into_iter().map(|(n, _)| n).collect();
        for want in [
            "memwatch",
            "memwatch-run",
            "memwatch-report",
            "memwatch-heap",
        ] {
            assert!(names.contains(&want.to_string()), "{names:?}");
        }
        for (_, cmd) in pages(&root) {
            let text = String::from_utf8(page(cmd).unwrap())
                .unwrap()
                .replace("\\-", "-");
            for named in text
                .split(|c: char| c.is_whitespace() || c == '\\' || c == '"')
                .filter_map(|w| w.strip_suffix("(1)"))
            {
                let named = named.trim_start_matches("fB").trim_end_matches("fR");
                assert!(
                    names.iter().any(|n| n == named),
                    "'{named}(1)' is named but has no page"
                );
            }
        }
    }

    #[test]
    fn exit_codes_are_a_section_of_their_own() {
        let root = built();
        let run = root.find_subcommand("run").unwrap();
        let text = String::from_utf8(page(run).unwrap()).unwrap();
        assert!(!text.contains("EXTRA"), "{text}");
        let status = &text[text.find(".SH \"EXIT STATUS\"").expect("EXIT STATUS")..];
        for code in 0..=4 {
            assert!(
                status.contains(&format!(".TP\n\\fB{code}\\fR\n")),
                "{status}"
            );
        }
        // A code's words are one paragraph, its continuation lines joined.
        assert!(status.contains("(\\-\\-max\\-rss"), "{status}");
        assert!(!status.contains("\n     "), "{status}");
    }
}
