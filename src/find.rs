//! Targets found without a PID: `--name REGEX` (the process name, `/proc/PID/comm`) or
//! `--cmdline REGEX` (the whole command line, arguments joined by spaces), matched anywhere as
//! `pgrep` does (`^node$` for exactly `node`). memwatch itself and the processes that run it
//! (a shell whose command line holds the same pattern) never match, nor do kernel threads and
//! zombies. Matching is pure (`Candidate`s in); `candidates` reads /proc.

use crate::tree::{ProcEntry, processes, rss_of};
use crate::units::Bytes;

/// What a pattern is matched against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `/proc/PID/comm`, at most 15 characters.
    Name,
    /// `/proc/PID/cmdline`, the arguments joined by spaces.
    Cmdline,
}

/// `--name REGEX` or `--cmdline REGEX`, compiled.
#[derive(Clone, Debug)]
pub struct Pattern {
    pub field: Field,
    pub text: String,
    regex: regex_lite::Regex,
}

impl Pattern {
    pub fn new(field: Field, text: &str) -> Result<Pattern, String> {
        let option = match field {
            Field::Name => "--name",
            Field::Cmdline => "--cmdline",
        };
        if text.is_empty() {
            return Err(format!("{option} needs a pattern, e.g. {option} 'node'"));
        }
        let regex = regex_lite::Regex::new(text).map_err(|e| {
            let first = e.to_string();
            let first = first.lines().last().unwrap_or_default().trim().to_string();
            format!("{option} '{text}' is not a regular expression: {first}")
        })?;
        Ok(Pattern {
            field,
            text: text.to_string(),
            regex,
        })
    }

    /// `--name 'node'`, as the user gave it.
    pub fn option(&self) -> String {
        match self.field {
            Field::Name => format!("--name '{}'", self.text),
            Field::Cmdline => format!("--cmdline '{}'", self.text),
        }
    }

    pub fn matches(&self, c: &Candidate) -> bool {
        match self.field {
            Field::Name => self.regex.is_match(&c.name),
            Field::Cmdline => self.regex.is_match(&c.command),
        }
    }
}

/// A process that could be a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub pid: i32,
    /// With the PID, its identity.
    pub start_time: u64,
    pub name: String,
    pub command: String,
    pub rss: Option<u64>,
}

impl Candidate {
    /// The process `p` as a candidate; `None` for a zombie, a kernel thread or one that has
    /// gone (no command line).
    pub fn of(p: &ProcEntry) -> Option<Candidate> {
        if p.state == 'Z' {
            return None;
        }
        Some(Candidate {
            pid: p.pid,
            start_time: p.start_time,
            name: p.name.clone(),
            command: command_line(p.pid)?,
            rss: None,
        })
    }
}

/// The processes `pattern` matches now, oldest first, memwatch and its ancestors left out.
pub fn find(pattern: &Pattern) -> Vec<Candidate> {
    let procs = processes();
    let skip = own_line(&procs);
    let mut found: Vec<Candidate> = procs
        .iter()
        .filter(|p| !skip.contains(&p.pid))
        .filter_map(Candidate::of)
        .filter(|c| pattern.matches(c))
        .collect();
    found.sort_by_key(|c| (c.start_time, c.pid));
    for c in &mut found {
        c.rss = rss_of(c.pid);
    }
    found
}

/// memwatch and the processes above it: a shell running `memwatch --cmdline node` has `node`
/// in its own command line.
fn own_line(procs: &[ProcEntry]) -> Vec<i32> {
    let mut line = vec![std::process::id() as i32];
    while let Some(parent) = line
        .last()
        .and_then(|pid| procs.iter().find(|p| p.pid == *pid))
        .map(|p| p.ppid)
        .filter(|&ppid| ppid > 0 && !line.contains(&ppid))
    {
        line.push(parent);
    }
    line
}

/// The command line, arguments joined by spaces; `None` for kernel threads and processes
/// that have gone (their cmdline is empty).
fn command_line(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text: Vec<&[u8]> = raw.split(|&b| b == 0).filter(|a| !a.is_empty()).collect();
    if text.is_empty() {
        return None;
    }
    Some(
        text.iter()
            .map(|a| String::from_utf8_lossy(a))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Most matches named in a message; the rest are counted.
const LISTED_MAX: usize = 10;

/// The matches for a message: `4127 (node, 61.2 MiB: node server.js), ...`.
pub fn list(found: &[Candidate]) -> String {
    let mut parts: Vec<String> = found
        .iter()
        .take(LISTED_MAX)
        .map(|c| {
            let rss = c.rss.map_or_else(
                || "RSS unknown".to_string(),
                |r| Bytes(r as f64).to_string(),
            );
            format!("{} ({}, {rss}: {})", c.pid, c.name, shorten(&c.command))
        })
        .collect();
    if found.len() > LISTED_MAX {
        parts.push(format!("and {} more", found.len() - LISTED_MAX));
    }
    parts.join(", ")
}

fn shorten(command: &str) -> String {
    const MAX: usize = 60;
    if command.chars().count() <= MAX {
        command.to_string()
    } else {
        let cut: String = command.chars().take(MAX - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn c(pid: i32, name: &str, command: &str) -> Candidate {
        Candidate {
            pid,
            start_time: pid as u64,
            name: name.into(),
            command: command.into(),
            rss: Some(64 << 20),
        }
    }

    #[test]
    fn names_and_command_lines_match_anywhere_unless_anchored() {
        let node = c(10, "node", "node /srv/app/server.js --port 8080");
        let nodejs = c(11, "nodejs", "nodejs worker.js");
        let by_name = Pattern::new(Field::Name, "node").unwrap();
        assert!(by_name.matches(&node) && by_name.matches(&nodejs));
        let exact = Pattern::new(Field::Name, "^node$").unwrap();
        assert!(exact.matches(&node) && !exact.matches(&nodejs));
        let by_line = Pattern::new(Field::Cmdline, r"server\.js").unwrap();
        assert!(by_line.matches(&node) && !by_line.matches(&nodejs));
        // The name is not the command line: a name pattern does not see arguments.
        assert!(!Pattern::new(Field::Name, "server").unwrap().matches(&node));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_option_and_the_text() {
        let e = Pattern::new(Field::Name, "node(").unwrap_err();
        assert!(
            e.starts_with("--name 'node(' is not a regular expression:"),
            "{e}"
        );
        let e = Pattern::new(Field::Cmdline, "").unwrap_err();
        assert_eq!(e, "--cmdline needs a pattern, e.g. --cmdline 'node'");
        assert_eq!(
            Pattern::new(Field::Cmdline, "a b").unwrap().option(),
            "--cmdline 'a b'"
        );
    }

    #[test]
    fn matches_are_listed_for_a_message() {
        let long = format!("python3 {}", "x".repeat(100));
        let found: Vec<Candidate> = (1..=12).map(|i| c(i, "py", &long)).collect();
        let text = list(&found);
        assert!(text.starts_with("1 (py, 64.0 MiB: python3 xxx"), "{text}");
        assert!(text.contains("…), 2 (py"), "{text}");
        assert!(text.ends_with(", and 2 more"), "{text}");
        let unknown = Candidate {
            rss: None,
            ..c(5, "a", "a")
        };
        assert_eq!(list(&[unknown]), "5 (a, RSS unknown: a)");
    }

    /// memwatch's own line: this test process and its parents never match.
    #[test]
    fn memwatch_and_what_runs_it_are_left_out() {
        let me = std::process::id() as i32;
        let own = own_line(&processes());
        assert_eq!(own[0], me);
        assert!(own.len() >= 2, "a test has a parent: {own:?}");
        let anything = Pattern::new(Field::Cmdline, ".").unwrap();
        assert!(find(&anything).iter().all(|c| !own.contains(&c.pid)));
    }
}
