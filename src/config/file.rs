//! The config file: `memwatch.toml` in the working directory, or `--config FILE`. Its keys are
//! the long command-line options without the leading `--` (`max-rss = "512MiB"`), its values
//! written as on the command line: strings (or bare numbers) for values, booleans for switches,
//! arrays for options that may be repeated. The file is turned into arguments and parsed by the
//! same parser as the command line, so an option is defined once (in `cli.rs`), and the
//! command line wins over the file, which wins over the defaults (see `docs/ci.md`).
//!
//! Relative paths in the file are taken as on the command line: from the directory memwatch
//! runs in.

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The file looked for in the working directory when `--config` is not given.
pub const DEFAULT_FILE: &str = "memwatch.toml";

/// Options that only make sense on the command line (the target among them).
const COMMAND_LINE_ONLY: [&str; 8] = [
    "pid", "name", "cmdline", "config", "help", "version", "force", "dir",
];

/// One `key = value` of the file, as the arguments it stands for.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub line: usize,
    /// `--key=value` once per value; `--key` for a switch set to true; none for false.
    pub args: Vec<OsString>,
}

/// A parsed config file.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
}

/// The config file to use: `--config FILE` when given (it must exist), else `memwatch.toml`
/// in `dir` when there is one, else none. `root` is memwatch's whole command definition.
pub fn discover(
    explicit: Option<&Path>,
    dir: &Path,
    root: &clap::Command,
) -> Result<Option<ConfigFile>, String> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => {
            let p = dir.join(DEFAULT_FILE);
            if !p.is_file() {
                return Ok(None);
            }
            p
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "config file '{}': cannot read it ({e}): give a readable file to --config",
            path.display()
        )
    })?;
    let entries = parse(&text, &path.display().to_string(), root)?;
    Ok(Some(ConfigFile { path, entries }))
}

/// Parses a config file's text; `name` is the file as shown in messages. Checks every key
/// against the long options of `root` and its subcommands, and every value with that
/// option's own parser.
pub fn parse(text: &str, name: &str, root: &clap::Command) -> Result<Vec<Entry>, String> {
    let at = |line: Option<usize>| match line {
        Some(n) => format!("config file '{name}', line {n}"),
        None => format!("config file '{name}'"),
    };
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map(|s| line_of(text, s.start));
        format!("{}: {}", at(line), e.message().trim())
    })?;
    let mut entries = Vec::new();
    for (key, value) in table {
        let line = line_of_key(text, &key);
        let here = at(line);
        if COMMAND_LINE_ONLY.contains(&key.as_str()) {
            return Err(format!(
                "{here}: '{key}' cannot be set in a config file: give it on the command line"
            ));
        }
        let Some(arg) = find_arg(root, &key) else {
            let hint = closest_key(root, &key)
                .map(|k| format!(" (did you mean '{k}'?)"))
                .unwrap_or_default();
            return Err(format!(
                "{here}: unknown key '{key}'{hint}: keys are the long command-line options \
                 without '--', see docs/ci.md"
            ));
        };
        let args = to_args(&key, arg, &value)
            .map_err(|expected| format!("{here}: '{key}': expected {expected}"))?;
        for a in &args {
            check_value(arg, a).map_err(|why| format!("{here}: {key}: {why}"))?;
        }
        entries.push(Entry {
            key,
            line: line.unwrap_or(0),
            args,
        });
    }
    Ok(entries)
}

impl ConfigFile {
    /// The arguments the file adds for `command` (the root or one of its subcommands): the
    /// keys `command` takes and the command line (`matches`) did not set.
    pub fn args_for(&self, command: &clap::Command, matches: &ArgMatches) -> Vec<OsString> {
        let mut out = Vec::new();
        for entry in &self.entries {
            let Some(arg) = command
                .get_arguments()
                .find(|a| a.get_long() == Some(entry.key.as_str()))
            else {
                continue; // an option of another command (e.g. `load` when attaching)
            };
            let id = arg.get_id().as_str();
            if matches.value_source(id) == Some(ValueSource::CommandLine) {
                continue;
            }
            out.extend(entry.args.iter().cloned());
        }
        out
    }
}

/// The option named `--key` in `root` or any subcommand.
fn find_arg<'a>(root: &'a clap::Command, key: &str) -> Option<&'a clap::Arg> {
    std::iter::once(root)
        .chain(root.get_subcommands())
        .flat_map(|c| c.get_arguments())
        .find(|a| a.get_long() == Some(key))
}

fn is_switch(arg: &clap::Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse)
}

/// The value as arguments; `Err` says what type was expected.
fn to_args(key: &str, arg: &clap::Arg, value: &toml::Value) -> Result<Vec<OsString>, String> {
    let flag = format!("--{key}");
    let one = |text: String| OsString::from(format!("{flag}={text}"));
    if is_switch(arg) {
        return match value {
            toml::Value::Boolean(true) => Ok(vec![OsString::from(flag)]),
            toml::Value::Boolean(false) => Ok(Vec::new()),
            _ => Err("true or false".into()),
        };
    }
    let scalar = |v: &toml::Value| match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        _ => None,
    };
    let example = format!("a value as on the command line, e.g. {key} = \"...\"");
    match value {
        toml::Value::Array(items) if matches!(arg.get_action(), ArgAction::Append) => items
            .iter()
            .map(|v| scalar(v).map(one))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| "an array of strings such as [\"1MiB/h\", \"5%/h\"]".to_string()),
        toml::Value::Array(_) => Err(example),
        v => scalar(v).map(|s| vec![one(s)]).ok_or(example),
    }
}

/// Runs the option's own value parser on one `--key=value` argument.
fn check_value(arg: &clap::Arg, text: &OsString) -> Result<(), String> {
    let Some((flag, value)) = text.to_str().and_then(|t| t.split_once('=')) else {
        return Ok(()); // a switch
    };
    // The same parser on its own, without the option's ties to others (`requires`).
    let alone = clap::Command::new("memwatch").no_binary_name(true).arg(
        clap::Arg::new("value")
            .long("value")
            .action(ArgAction::Set)
            .allow_hyphen_values(true)
            .value_parser(arg.get_value_parser().clone()),
    );
    alone
        .try_get_matches_from([format!("--value={value}")])
        .map(drop)
        .map_err(|e| {
            // Our parsers' own message when there is one, else clap's first line.
            std::error::Error::source(&e).map_or_else(
                || {
                    let text = e.to_string();
                    let first = text.lines().next().unwrap_or_default();
                    let first = first.strip_prefix("error: ").unwrap_or(first);
                    first.replace("--value", flag)
                },
                |inner| inner.to_string(),
            )
        })
}

/// 1-based line of byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// The line setting `key` at the top level (or opening the table `[key]`).
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim();
            let set = l
                .split_once('=')
                .map(|(k, _)| k.trim().trim_matches(|c| c == '"' || c == '\''));
            set == Some(key) || l.trim_matches(|c| c == '[' || c == ']').trim() == key
        })
        .map(|i| i + 1)
}

/// The long option nearest to `key`, for "did you mean".
fn closest_key(root: &clap::Command, key: &str) -> Option<String> {
    let key = key.replace('_', "-");
    std::iter::once(root)
        .chain(root.get_subcommands())
        .flat_map(|c| c.get_arguments())
        .filter_map(|a| a.get_long())
        .filter(|k| !COMMAND_LINE_ONLY.contains(k))
        .map(|k| (strsim::levenshtein(&key, k), k))
        .filter(|(d, _)| *d <= 2 && 3 * *d <= key.len())
        .min()
        .map(|(_, k)| k.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::CommandFactory;

    fn parse(text: &str, name: &str) -> Result<Vec<Entry>, String> {
        super::parse(text, name, &Cli::command())
    }

    fn args(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .flat_map(|e| e.args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect()
    }

    /// Every option a file may set: each long option of every command but the command-line-only ones.
    fn all_keys() -> Vec<String> {
        let root = Cli::command();
        let mut keys: Vec<String> = std::iter::once(&root)
            .chain(root.get_subcommands())
            .flat_map(|c| c.get_arguments())
            .filter_map(|a| a.get_long())
            .filter(|k| !COMMAND_LINE_ONLY.contains(k))
            .map(String::from)
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    #[test]
    fn the_example_in_docs_ci_md_parses_and_shows_every_key() {
        let doc = include_str!("../../docs/ci.md");
        let start = doc.find("```toml\n").unwrap() + "```toml\n".len();
        let len = doc[start..].find("```").unwrap();
        let example = &doc[start..start + len];
        let entries = parse(example, "docs/ci.md").unwrap();
        assert!(args(&entries).contains(&"--max-rss=512MiB".to_string()));
        for key in all_keys() {
            assert!(
                example
                    .lines()
                    .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} ="))),
                "docs/ci.md's example lacks '{key}'"
            );
        }
    }

    #[test]
    fn values_become_arguments() {
        let e = parse(
            "interval = \"250ms\"\npss = true\nquiet = false\nmin-slope = [\"1MiB/h\", \"5%/h\"]\n\
             p-value = 0.01\nmax-dumps = 3\n\"max-rss\" = \"1GiB\"\n",
            "m.toml",
        )
        .unwrap();
        let mut got = args(&e);
        got.sort();
        assert_eq!(
            got,
            [
                "--interval=250ms",
                "--max-dumps=3",
                "--max-rss=1GiB",
                "--min-slope=1MiB/h",
                "--min-slope=5%/h",
                "--p-value=0.01",
                "--pss"
            ]
        );
        assert_eq!(parse("", "m.toml").unwrap(), Vec::new());
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let e = parse("interval = \"1s\"\nmax-rs = \"512MiB\"\n", "memwatch.toml").unwrap_err();
        assert!(
            e.starts_with("config file 'memwatch.toml', line 2: unknown key 'max-rs'"),
            "{e}"
        );
        assert!(e.contains("did you mean 'max-rss'?"), "{e}");
        let e = parse("max_rss = \"512MiB\"\n", "m.toml").unwrap_err();
        assert!(
            e.contains("unknown key 'max_rss' (did you mean 'max-rss'?)"),
            "{e}"
        );
        let e = parse("[gate]\nmax-rss = \"1GiB\"\n", "m.toml").unwrap_err();
        assert!(e.contains("line 1: unknown key 'gate'"), "{e}");
        let e = parse("pid = 4242\n", "m.toml").unwrap_err();
        assert!(
            e.contains("line 1: 'pid' cannot be set in a config file"),
            "{e}"
        );
        let e = parse("colour = true\n", "m.toml").unwrap_err();
        assert!(e.contains("unknown key 'colour':"), "{e}");
    }

    #[test]
    fn wrong_type_is_named_with_its_line() {
        let e = parse("quiet = true\ninterval = true\n", "memwatch.toml").unwrap_err();
        assert!(
            e.starts_with("config file 'memwatch.toml', line 2: 'interval': expected"),
            "{e}"
        );
        let e = parse("pss = \"yes\"\n", "m.toml").unwrap_err();
        assert!(e.contains("line 1: 'pss': expected true or false"), "{e}");
        let e = parse("min-slope = [1, true]\n", "m.toml").unwrap_err();
        assert!(
            e.contains("line 1: 'min-slope': ") && e.contains("\"1MiB/h\""),
            "{e}"
        );
        let e = parse("ready-port = 70000\n", "m.toml").unwrap_err();
        assert!(e.contains("line 1: ready-port: "), "{e}");
    }

    #[test]
    fn bad_values_are_named_with_their_line() {
        let e = parse("quiet = true\n\nduration = \"soon\"\n", "m.toml").unwrap_err();
        assert_eq!(
            e,
            "config file 'm.toml', line 3: duration: 'soon' is not a duration: try '250ms', '2s' or '1m'"
        );
        let e = parse("max-growth = \"lots\"", "m.toml").unwrap_err();
        assert!(e.contains("line 1: max-growth: 'lots'"), "{e}");
        let e = parse("min-slope = [\"1MiB/h\", \"fast\"]", "m.toml").unwrap_err();
        assert!(e.contains("min-slope: 'fast'"), "{e}");
        let e = parse("min-slope = 5", "m.toml").unwrap_err();
        assert!(e.contains("min-slope: '5' is not a rate"), "{e}");
        let e = parse("p-value = 2", "m.toml").unwrap_err();
        assert!(e.contains("p-value: '2' must be"), "{e}");
        let e = parse("baseline-tolerance = \"0.1\"", "m.toml").unwrap_err();
        assert!(e.contains("baseline-tolerance: '0.1'"), "{e}");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let e = parse("interval = \"1s\"\nduration = \n", "m.toml").unwrap_err();
        assert!(e.starts_with("config file 'm.toml', line 2"), "{e}");
    }

    #[test]
    fn discover_finds_the_default_file_or_the_named_one() {
        let root = Cli::command();
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(discover(None, dir.path(), &root).unwrap(), None);
        let file = dir.path().join(DEFAULT_FILE);
        std::fs::write(&file, "max-rss = \"512MiB\"\n").unwrap();
        let found = discover(None, dir.path(), &root).unwrap().unwrap();
        assert_eq!(found.path, file);
        assert_eq!(args(&found.entries), ["--max-rss=512MiB"]);

        let other = dir.path().join("gate.toml");
        std::fs::write(&other, "bogus = 1\n").unwrap();
        let e = discover(Some(&other), dir.path(), &root).unwrap_err();
        assert!(
            e.contains("gate.toml") && e.contains("unknown key 'bogus'"),
            "{e}"
        );
        let e = discover(Some(&dir.path().join("missing.toml")), dir.path(), &root).unwrap_err();
        assert!(
            e.contains("missing.toml") && e.contains("cannot read it"),
            "{e}"
        );
    }
}
