//! The config file: `memwatch.toml` in the working directory, or `--config FILE`. Its keys are
//! the long command-line options without the leading `--` (`max-rss = "512MiB"`), its values
//! written as on the command line: strings for durations, sizes, rates and paths, booleans for
//! switches, integers for counts and ports. Unknown keys are errors. The command line
//! overrides the file; the file overrides the defaults (see `docs/ci.md`).
//!
//! Relative paths in the file are taken as on the command line: from the directory memwatch
//! runs in.

use crate::gate::{parse_growth_limit, parse_max_rss, parse_max_slope, parse_tolerance};
use crate::units::{parse_duration, parse_pct_rate, parse_rate, parse_size};
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use std::fmt;
use std::path::{Path, PathBuf};

/// The file looked for in the working directory when `--config` is not given.
pub const DEFAULT_FILE: &str = "memwatch.toml";

/// Every option a config file may set; `None` (or `false`) = not set in the file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    // Sampling
    pub interval: Option<String>,
    pub duration: Option<String>,
    pub grace: Option<String>,
    pub pss: Option<bool>,
    pub pss_interval: Option<String>,
    // Analysis
    pub metric: Option<String>,
    pub warmup: Option<String>,
    /// One rate or several (`["1MiB/h", "5%/h"]`), like repeating `--min-slope`.
    pub min_slope: Option<OneOrMany>,
    pub min_growth: Option<String>,
    /// `p-value = 0.01` or `p-value = "0.01"`; kept as the command line's text.
    pub p_value: Option<NumberText>,
    // Output
    pub out: Option<String>,
    pub csv: Option<String>,
    pub json: Option<String>,
    pub png: Option<String>,
    pub png_size: Option<String>,
    pub quiet: Option<bool>,
    // Signals and heap dumps
    pub signal: Option<String>,
    pub signal_every: Option<String>,
    pub signal_at: Option<String>,
    pub signal_at_end: Option<bool>,
    pub settle: Option<String>,
    pub force_signal: Option<bool>,
    pub dump_dir: Option<String>,
    pub dump_glob: Option<String>,
    pub max_dumps: Option<u32>,
    pub min_free: Option<String>,
    // Load
    pub load: Option<String>,
    pub ready_port: Option<u16>,
    pub ready_delay: Option<String>,
    pub cooldown: Option<String>,
    // Gate
    pub max_rss: Option<String>,
    pub max_growth: Option<String>,
    pub max_slope: Option<String>,
    pub fail_on_inconclusive: Option<bool>,
    pub baseline: Option<String>,
    pub baseline_tolerance: Option<String>,
    pub junit: Option<String>,
}

/// A string, or an array of strings.
#[derive(Clone, Debug, PartialEq)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a string such as \"1MiB/h\" or an array such as [\"1MiB/h\", \"5%/h\"]",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut all = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    all.push(item);
                }
                Ok(OneOrMany(all))
            }
        }
        d.deserialize_any(V)
    }
}

/// A number written bare or quoted, kept as text for the command-line parser.
#[derive(Clone, Debug, PartialEq)]
pub struct NumberText(pub String);

impl<'de> Deserialize<'de> for NumberText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = NumberText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number such as 0.01")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NumberText, E> {
                Ok(NumberText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumberText, E> {
                Ok(NumberText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumberText, E> {
                Ok(NumberText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumberText, E> {
                Ok(NumberText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl FileConfig {
    /// `min-slope` as the list repeated `--min-slope` options give (empty when not set).
    pub fn min_slopes(&self) -> Vec<String> {
        self.min_slope.clone().map(|m| m.0).unwrap_or_default()
    }
}

/// Reads and checks a config file. Errors name the file, the line and the key.
pub fn load(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "config file '{}': cannot read it ({e}): give a readable file to --config",
            path.display()
        )
    })?;
    parse(&text, &path.display().to_string())
}

/// The config file to use: `--config FILE` when given (it must exist), else `memwatch.toml`
/// in `dir` when there is one, else none.
pub fn discover(
    explicit: Option<&Path>,
    dir: &Path,
) -> Result<Option<(PathBuf, FileConfig)>, String> {
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
    load(&path).map(|c| Some((path, c)))
}

/// Parses a config file's text; `name` is the file as shown in messages.
pub fn parse(text: &str, name: &str) -> Result<FileConfig, String> {
    let config: FileConfig = toml::from_str(text).map_err(|e| describe(text, name, &e))?;
    check_values(&config, text, name)?;
    Ok(config)
}

/// 1-based line of byte `offset`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(1, |before| before.matches('\n').count() + 1)
}

/// The key set on `line` (1-based), if it reads `key = value`.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let (key, _) = l.split_once('=')?;
    let key = key.trim().trim_matches(|c| c == '"' || c == '\'');
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_string())
}

/// The line setting `key` at the top level, for messages about values.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    (1..=text.lines().count()).find(|&n| key_on_line(text, n).as_deref() == Some(key))
}

fn describe(text: &str, name: &str, e: &toml::de::Error) -> String {
    let line = e.span().map(|s| line_of(text, s.start));
    let at = match line {
        Some(n) => format!("config file '{name}', line {n}"),
        None => format!("config file '{name}'"),
    };
    let message = e.message().trim();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let key = rest.split('`').next().unwrap_or(rest);
        if matches!(key, "pid" | "command" | "config") {
            return format!(
                "{at}: '{key}' cannot be set in a config file: give it on the command line"
            );
        }
        let hint = closest_key(key)
            .map(|k| format!(" (did you mean '{k}'?)"))
            .unwrap_or_default();
        return format!(
            "{at}: unknown key '{key}'{hint}: keys are the long command-line options without \
             '--', see docs/ci.md"
        );
    }
    let key = line.and_then(|n| key_on_line(text, n));
    match key {
        Some(key) => format!(
            "{at}: '{key}': {message}: write the value as on the command line, e.g. \
             interval = \"250ms\", pss = true"
        ),
        None => format!("{at}: {message}"),
    }
}

/// Every key the file accepts.
pub const KEYS: [&str; 37] = [
    "interval",
    "duration",
    "grace",
    "pss",
    "pss-interval",
    "metric",
    "warmup",
    "min-slope",
    "min-growth",
    "p-value",
    "out",
    "csv",
    "json",
    "png",
    "png-size",
    "quiet",
    "signal",
    "signal-every",
    "signal-at",
    "signal-at-end",
    "settle",
    "force-signal",
    "dump-dir",
    "dump-glob",
    "max-dumps",
    "min-free",
    "load",
    "ready-port",
    "ready-delay",
    "cooldown",
    "max-rss",
    "max-growth",
    "max-slope",
    "fail-on-inconclusive",
    "baseline",
    "baseline-tolerance",
    "junit",
];

/// The accepted key nearest to a misspelt one (at most 2 edits away, fewer for short keys).
fn closest_key(key: &str) -> Option<&'static str> {
    let key = key.replace('_', "-");
    KEYS.iter()
        .map(|k| (edit_distance(&key, k), *k))
        .filter(|(d, _)| *d <= 2 && 3 * *d <= key.len())
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Checks the values whose syntax memwatch's unit parsers know, so that a bad one is reported
/// with its line; the rest are checked with the command line's (the caller's) rules.
fn check_values(c: &FileConfig, text: &str, name: &str) -> Result<(), String> {
    type Check = fn(&str) -> Result<(), String>;
    let duration: Check = |v| parse_duration(v).map(drop);
    let size: Check = |v| parse_size(v).map(drop);
    let growth: Check = |v| parse_growth_limit(v).map(drop);
    let slope: Check = |v| {
        if v.contains('%') {
            parse_pct_rate(v).map(drop)
        } else {
            parse_rate(v).map(drop)
        }
    };
    let p_value: Check = |v| match v.trim().parse::<f64>() {
        Ok(p) if p > 0.0 && p < 1.0 => Ok(()),
        _ => Err(format!("'{v}' must be a number between 0 and 1, e.g. 0.01")),
    };
    let min_slopes = c.min_slopes();
    let mut checks: Vec<(&str, Option<&str>, Check)> = vec![
        ("interval", c.interval.as_deref(), duration),
        ("duration", c.duration.as_deref(), duration),
        ("grace", c.grace.as_deref(), duration),
        ("pss-interval", c.pss_interval.as_deref(), duration),
        ("warmup", c.warmup.as_deref(), duration),
        ("min-growth", c.min_growth.as_deref(), growth),
        ("p-value", c.p_value.as_ref().map(|p| p.0.as_str()), p_value),
        ("signal-every", c.signal_every.as_deref(), duration),
        ("settle", c.settle.as_deref(), duration),
        ("min-free", c.min_free.as_deref(), size),
        ("ready-delay", c.ready_delay.as_deref(), duration),
        ("cooldown", c.cooldown.as_deref(), duration),
        ("max-rss", c.max_rss.as_deref(), |v| {
            parse_max_rss(v).map(drop)
        }),
        ("max-growth", c.max_growth.as_deref(), growth),
        ("max-slope", c.max_slope.as_deref(), |v| {
            parse_max_slope(v).map(drop)
        }),
        ("baseline-tolerance", c.baseline_tolerance.as_deref(), |v| {
            parse_tolerance(v).map(drop)
        }),
    ];
    checks.extend(
        min_slopes
            .iter()
            .map(|v| ("min-slope", Some(v.as_str()), slope)),
    );
    for (key, value, check) in checks {
        if let Some(value) = value {
            check(value).map_err(|e| {
                let at = match line_of_key(text, key) {
                    Some(n) => format!("config file '{name}', line {n}"),
                    None => format!("config file '{name}'"),
                };
                format!("{at}: {key}: {e}")
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FULL: &str = r#"
# memwatch.toml: every key
interval = "250ms"
duration = "2m"
grace = "5s"
pss = true
pss-interval = "10s"
metric = "rss"
warmup = "20s"
min-slope = ["1MiB/h", "5%/h"]
min-growth = "2%"
p-value = 0.01
out = "memwatch-out"
csv = "out/samples.csv"
json = "out/summary.json"
png = "out/memory.png"
png-size = "1280x720"
quiet = false
signal = "SIGUSR2"
signal-every = "10s"
signal-at = "30s,60s"
signal-at-end = true
settle = "3s"
force-signal = false
dump-dir = "dumps"
dump-glob = "*.heapsnapshot"
max-dumps = 3
min-free = "1GiB"
load = "node fixtures/node/load.js --port 8080 --rate 10 --duration 2m"
ready-port = 8080
ready-delay = "2s"
cooldown = "10s"
max-rss = "512MiB"
max-growth = "10%"
max-slope = "1MiB/min"
fail-on-inconclusive = true
baseline = "ci/memwatch-baseline.json"
baseline-tolerance = "10%"
junit = "memwatch-junit.xml"
"#;

    #[test]
    fn full_file() {
        let c = parse(FULL, "memwatch.toml").unwrap();
        assert_eq!(c.interval.as_deref(), Some("250ms"));
        assert_eq!(c.pss, Some(true));
        assert_eq!(c.min_slopes(), ["1MiB/h", "5%/h"]);
        assert_eq!(c.p_value, Some(NumberText("0.01".into())));
        assert_eq!(c.max_dumps, Some(3));
        assert_eq!(c.ready_port, Some(8080));
        assert_eq!(c.fail_on_inconclusive, Some(true));
        assert_eq!(c.junit.as_deref(), Some("memwatch-junit.xml"));
        assert_eq!(c.max_rss.as_deref(), Some("512MiB"));
        // Every key in KEYS appears in the full example.
        for key in KEYS {
            assert!(
                FULL.lines().any(|l| l.starts_with(&format!("{key} ="))),
                "{key}"
            );
        }
    }

    #[test]
    fn the_example_in_docs_ci_md_parses() {
        let doc = include_str!("../docs/ci.md");
        let start = doc.find("```toml\n").unwrap() + "```toml\n".len();
        let len = doc[start..].find("```").unwrap();
        let c = parse(&doc[start..start + len], "docs/ci.md").unwrap();
        assert_eq!(c.max_rss.as_deref(), Some("512MiB"));
        assert_eq!(c.baseline_tolerance.as_deref(), Some("10%"));
        // Every key is shown in the docs (set or commented out).
        for key in KEYS {
            assert!(
                doc[start..start + len]
                    .lines()
                    .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} ="))),
                "{key}"
            );
        }
    }

    #[test]
    fn empty_file_and_single_values() {
        assert_eq!(parse("", "m.toml").unwrap(), FileConfig::default());
        let c = parse("min-slope = \"2MiB/h\"\np-value = \"0.05\"\n", "m.toml").unwrap();
        assert_eq!(c.min_slopes(), ["2MiB/h"]);
        assert_eq!(c.p_value, Some(NumberText("0.05".into())));
        let c = parse("\"max-rss\" = \"1GiB\"", "m.toml").unwrap();
        assert_eq!(c.max_rss.as_deref(), Some("1GiB"));
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let e = parse("interval = \"1s\"\nmax-rs = \"512MiB\"\n", "memwatch.toml").unwrap_err();
        assert!(
            e.starts_with("config file 'memwatch.toml', line 2: unknown key 'max-rs'"),
            "{e}"
        );
        assert!(e.contains("did you mean 'max-rss'?"), "{e}");
        // Snake case is not accepted either: keys are the options' names.
        let e = parse("max_rss = \"512MiB\"\n", "m.toml").unwrap_err();
        assert!(
            e.contains("unknown key 'max_rss' (did you mean 'max-rss'?)"),
            "{e}"
        );
        // A table is not an option either.
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
        let e = parse("quiet = true\ninterval = 250\n", "memwatch.toml").unwrap_err();
        assert!(
            e.starts_with("config file 'memwatch.toml', line 2: 'interval': "),
            "{e}"
        );
        assert!(e.contains("string"), "{e}");
        let e = parse("pss = \"yes\"\n", "m.toml").unwrap_err();
        assert!(e.contains("line 1: 'pss': "), "{e}");
        let e = parse("min-slope = 5\n", "m.toml").unwrap_err();
        assert!(
            e.contains("line 1: 'min-slope': ") && e.contains("\"1MiB/h\""),
            "{e}"
        );
        let e = parse("ready-port = 70000\n", "m.toml").unwrap_err();
        assert!(e.contains("line 1: 'ready-port'"), "{e}");
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
    fn load_and_discover() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(discover(None, dir.path()).unwrap(), None);
        let file = dir.path().join(DEFAULT_FILE);
        std::fs::write(&file, "max-rss = \"512MiB\"\n").unwrap();
        let (path, c) = discover(None, dir.path()).unwrap().unwrap();
        assert_eq!(path, file);
        assert_eq!(c.max_rss.as_deref(), Some("512MiB"));

        let other = dir.path().join("gate.toml");
        std::fs::write(&other, "bogus = 1\n").unwrap();
        let e = discover(Some(&other), dir.path()).unwrap_err();
        assert!(
            e.contains("gate.toml") && e.contains("unknown key 'bogus'"),
            "{e}"
        );
        let e = discover(Some(&dir.path().join("missing.toml")), dir.path()).unwrap_err();
        assert!(
            e.contains("missing.toml") && e.contains("cannot read it"),
            "{e}"
        );
    }
}
