//! The value types of memwatch's options, each defined once: parsed from text by `FromStr`
//! (clap's `value_parser`, and the config file, whose values become arguments for the same
//! parser) and shown by `Display` in the same form (help defaults, messages). Every error
//! message quotes the bad value and says what to write instead.

use crate::sample::Metric;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration: `250ms`, `2s`, `1m`, `1h30m`, or a bare number of seconds (`1.5`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }
}

impl FromStr for Dur {
    type Err = String;
    fn from_str(text: &str) -> Result<Dur, String> {
        let t = text.trim();
        if t.starts_with('-') {
            return Err(format!(
                "'{text}' is negative: give a duration such as '250ms', '2s' or '1m'"
            ));
        }
        let bad = || format!("'{text}' is not a duration: try '250ms', '2s' or '1m'");
        if let Ok(secs) = t.parse::<f64>() {
            return Duration::try_from_secs_f64(secs)
                .map(Dur)
                .map_err(|_| bad());
        }
        humantime::parse_duration(t).map(Dur).map_err(|_| bad())
    }
}

impl fmt::Display for Dur {
    /// As people write durations: `0.5ms`, `1.5s`, `2m 30s`; parses back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let decimal = |f: &mut fmt::Formatter<'_>, value: f64, unit: &str| {
            let text = format!("{value:.3}");
            let text = text.trim_end_matches('0').trim_end_matches('.');
            write!(f, "{text}{unit}")
        };
        if d.is_zero() {
            f.write_str("0s")
        } else if d < Duration::from_micros(1) {
            write!(f, "{}ns", d.as_nanos())
        } else if d < Duration::from_micros(100) && d.subsec_nanos() % 1000 == 0 {
            write!(f, "{}us", d.as_micros())
        } else if d < Duration::from_secs(1) && d.subsec_nanos() % 1000 == 0 {
            decimal(f, d.as_secs_f64() * 1e3, "ms")
        } else if d < Duration::from_secs(60) && d.subsec_nanos() % 1_000_000 == 0 {
            decimal(f, d.as_secs_f64(), "s")
        } else {
            write!(f, "{}", humantime::format_duration(d))
        }
    }
}

/// A size in bytes: `5MiB`, `1GiB`, `512KB`, or a bare number of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

impl FromStr for Size {
    type Err = String;
    fn from_str(text: &str) -> Result<Size, String> {
        let t = text.trim();
        if t.starts_with('-') {
            return Err(format!(
                "'{text}' is negative: give a size such as '512KiB' or '5MiB'"
            ));
        }
        t.parse::<bytesize::ByteSize>()
            .map(|b| Size(b.as_u64()))
            .map_err(|_| format!("'{text}' is not a size: try '512KiB', '5MiB' or '1GiB'"))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [
            (1 << 40, "TiB"),
            (1 << 30, "GiB"),
            (1 << 20, "MiB"),
            (1 << 10, "KiB"),
        ];
        for (unit, name) in UNITS {
            if self.0 >= unit && self.0 % unit == 0 {
                return write!(f, "{}{name}", self.0 / unit);
            }
        }
        write!(f, "{}B", self.0)
    }
}

/// An absolute rate `SIZE/UNIT` (`1MiB/h`, `10KiB/s`, `2MB/min`), in bytes per second.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct ByteRate(pub f64);

impl FromStr for ByteRate {
    type Err = String;
    fn from_str(text: &str) -> Result<ByteRate, String> {
        if text.contains('%') {
            return Err(format!(
                "'{text}' is relative: give an absolute rate such as '1MiB/min' (for a relative \
                 limit use a percentage option such as '--max-growth 10%')"
            ));
        }
        let bad = || format!("'{text}' is not a rate: try '1MiB/h' or '10KiB/min'");
        let (size, unit) = text.trim().split_once('/').ok_or_else(bad)?;
        let bytes = size.parse::<Size>().map_err(|_| bad())?.0 as f64;
        let per = unit_seconds(unit).ok_or_else(bad)?;
        Ok(ByteRate(bytes / per))
    }
}

impl fmt::Display for ByteRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_s = self.0;
        if per_s.fract() == 0.0 && per_s >= 0.0 {
            write!(f, "{}/s", Size(per_s as u64))
        } else {
            write!(f, "{per_s}B/s")
        }
    }
}

/// `--min-slope`: an absolute rate (`1MiB/h`) or a relative one (`5%/h`, percent of the
/// floor per unit of time).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Slope {
    BytesPerSecond(f64),
    PercentPerHour(f64),
}

impl FromStr for Slope {
    type Err = String;
    fn from_str(text: &str) -> Result<Slope, String> {
        if !text.contains('%') {
            return text.parse::<ByteRate>().map(|r| Slope::BytesPerSecond(r.0));
        }
        let bad = || format!("'{text}' is not a relative rate: try '5%/h'");
        let (pct, unit) = text.trim().split_once('/').ok_or_else(bad)?;
        let pct = pct
            .strip_suffix('%')
            .and_then(parse_non_negative)
            .ok_or_else(bad)?;
        Ok(Slope::PercentPerHour(
            pct * 3600.0 / unit_seconds(unit).ok_or_else(bad)?,
        ))
    }
}

impl fmt::Display for Slope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Slope::BytesPerSecond(b) => ByteRate(*b).fmt(f),
            Slope::PercentPerHour(p) => write!(f, "{p}%/h"),
        }
    }
}

/// A size or a percentage (`64MiB`, `10%`): `--min-growth` and `--max-growth`. A percentage is
/// of the floor at the analysed window's start.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SizeOrPct {
    Bytes(f64),
    Percent(f64),
}

impl FromStr for SizeOrPct {
    type Err = String;
    fn from_str(text: &str) -> Result<SizeOrPct, String> {
        match text.trim().strip_suffix('%') {
            Some(pct) => parse_non_negative(pct)
                .map(SizeOrPct::Percent)
                .ok_or_else(|| {
                    format!("'{text}' is not a percentage: try '10%' or a size like '64MiB'")
                }),
            None => text
                .parse::<Size>()
                .map(|b| SizeOrPct::Bytes(b.0 as f64))
                .map_err(|_| {
                    format!("'{text}' is not a size or a percentage: try '64MiB' or '10%'")
                }),
        }
    }
}

impl fmt::Display for SizeOrPct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeOrPct::Bytes(b) => Size(*b as u64).fmt(f),
            SizeOrPct::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// A percentage (`10%`), in percent.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Pct(pub f64);

impl FromStr for Pct {
    type Err = String;
    fn from_str(text: &str) -> Result<Pct, String> {
        text.trim()
            .strip_suffix('%')
            .and_then(parse_non_negative)
            .map(Pct)
            .ok_or_else(|| format!("'{text}' is not a percentage: try '10%' (or '0%' for none)"))
    }
}

impl fmt::Display for Pct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", self.0)
    }
}

/// `--native[=N]`: sample one page fault in N (1: every fault).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultPeriod(pub u64);

impl FromStr for FaultPeriod {
    type Err = String;
    fn from_str(text: &str) -> Result<FaultPeriod, String> {
        match text.trim().parse::<u64>() {
            Ok(n) if (1..=1_000_000).contains(&n) => Ok(FaultPeriod(n)),
            _ => Err(format!(
                "'{text}' is not a sampling period: give how many page faults per sample, \
                 from 1 (every fault) to 1000000"
            )),
        }
    }
}

impl fmt::Display for FaultPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A significance level, strictly between 0 and 1.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct PValue(pub f64);

impl FromStr for PValue {
    type Err = String;
    fn from_str(text: &str) -> Result<PValue, String> {
        match text.trim().parse::<f64>() {
            Ok(p) if p > 0.0 && p < 1.0 => Ok(PValue(p)),
            _ => Err(format!(
                "'{text}' must be a number between 0 and 1, e.g. 0.01"
            )),
        }
    }
}

impl fmt::Display for PValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A process ID: positive, since 0 and negatives mean process groups or "every process" to
/// kill(2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pid(pub i32);

impl FromStr for Pid {
    type Err = String;
    fn from_str(text: &str) -> Result<Pid, String> {
        match text.trim().parse::<i64>() {
            Ok(pid) if pid > 0 && pid <= i64::from(i32::MAX) => Ok(Pid(pid as i32)),
            Ok(pid) if pid <= 0 => Err(format!(
                "'{text}': a PID must be positive ({pid} would mean a process group or every process)"
            )),
            _ => Err(format!(
                "'{text}' is not a PID: give the number 'ps' shows, e.g. --pid 4242"
            )),
        }
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A signal: `SIGUSR2`, `USR2`, `usr2`, `12`, `SIGRTMIN+2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signal(pub i32);

impl FromStr for Signal {
    type Err = String;
    fn from_str(text: &str) -> Result<Signal, String> {
        crate::signal::parse_signal(text).map(Signal)
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::signal::signal_name(self.0))
    }
}

/// Chart size `WIDTHxHEIGHT`, between 200x150 and 8000x8000.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PngSize(pub u32, pub u32);

impl FromStr for PngSize {
    type Err = String;
    fn from_str(text: &str) -> Result<PngSize, String> {
        let bad =
            || format!("'{text}' is not WIDTHxHEIGHT between 200x150 and 8000x8000, e.g. 1280x720");
        let (w, h) = text.trim().split_once(['x', 'X']).ok_or_else(bad)?;
        let (w, h): (u32, u32) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
        if !(200..=8000).contains(&w) || !(150..=8000).contains(&h) {
            return Err(bad());
        }
        Ok(PngSize(w, h))
    }
}

impl fmt::Display for PngSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.0, self.1)
    }
}

/// A comma-separated list of durations (`30s,1m,90s`), in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurList(pub Vec<Duration>);

impl FromStr for DurList {
    type Err = String;
    fn from_str(text: &str) -> Result<DurList, String> {
        text.split(',')
            .map(|t| t.parse::<Dur>().map(|d| d.0))
            .collect::<Result<Vec<_>, _>>()
            .map(DurList)
    }
}

impl fmt::Display for DurList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            Dur(*d).fmt(f)?;
        }
        Ok(())
    }
}

/// `--metric`: a recorded column, or `settled` (RSS of the samples taken --settle after each
/// signal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricChoice {
    Metric(Metric),
    Settled,
    /// The watched memory cgroup's memory (`--cgroup`).
    Cgroup,
}

impl FromStr for MetricChoice {
    type Err = String;
    fn from_str(text: &str) -> Result<MetricChoice, String> {
        if text == "settled" {
            return Ok(MetricChoice::Settled);
        }
        if text == "cgroup" {
            return Ok(MetricChoice::Cgroup);
        }
        Metric::from_name(text)
            .map(MetricChoice::Metric)
            .ok_or_else(|| {
                let names: Vec<_> = Metric::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "'{text}' is not a metric: use one of {}, settled, cgroup",
                    names.join(", ")
                )
            })
    }
}

impl fmt::Display for MetricChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricChoice::Metric(m) => m.fmt(f),
            MetricChoice::Settled => f.write_str("settled"),
            MetricChoice::Cgroup => f.write_str("cgroup"),
        }
    }
}

impl MetricChoice {
    /// Every name `--metric` takes, in the order `--help` and completions list them.
    pub fn names() -> Vec<&'static str> {
        Metric::ALL
            .iter()
            .map(|m| m.name())
            .chain(["settled", "cgroup"])
            .collect()
    }
}

/// A value parsed by its type's `FromStr` (its own messages), whose possible values are
/// known: `--help` lists them and the shell completions offer them.
#[derive(Clone)]
pub struct Named<T> {
    names: Vec<&'static str>,
    parse: std::marker::PhantomData<fn() -> T>,
}

impl<T> Named<T> {
    pub fn new(names: Vec<&'static str>) -> Named<T> {
        Named {
            names,
            parse: std::marker::PhantomData,
        }
    }
}
/// `--cgroup [PATH]`: the target's own memory cgroup (`target`, also what `--cgroup` alone
/// means), or one named by its absolute path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupSpec {
    Target,
    Path(std::path::PathBuf),
}

impl FromStr for CgroupSpec {
    type Err = String;
    fn from_str(text: &str) -> Result<CgroupSpec, String> {
        match text.trim() {
            "" | "target" => Ok(CgroupSpec::Target),
            t if t.starts_with('/') => Ok(CgroupSpec::Path(t.into())),
            _ => Err(format!(
                "'{text}' is not a cgroup: give 'target' (the target's own), an absolute folder \
                 such as '/sys/fs/cgroup/memory/app', or a path as /proc/PID/cgroup shows it \
                 ('/app')"
            )),
        }
    }
}

impl<T> clap::builder::TypedValueParser for Named<T>
where
    T: FromStr<Err = String> + Clone + Send + Sync + 'static,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        clap::builder::TypedValueParser::try_map(clap::builder::StringValueParser::new(), |s| {
            s.parse::<T>()
        })
        .parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            self.names
                .iter()
                .map(|n| clap::builder::PossibleValue::new(*n)),
        ))
    }
}

/// `--metric`'s parser.
pub fn metric_parser() -> Named<MetricChoice> {
    Named::new(MetricChoice::names())
}

/// `--runtime`'s parser.
pub fn runtime_parser() -> Named<RuntimeChoice> {
    Named::new(vec!["auto", "node", "jvm", "none"])
}

impl fmt::Display for CgroupSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CgroupSpec::Target => f.write_str("target"),
            CgroupSpec::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// `--tree-total`: what a process tree's total is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeTotalChoice {
    /// The cheapest exact one that can be had (chosen by measurement, see README).
    Auto,
    /// A memory cgroup memwatch makes for the command (`run`, as root).
    Cgroup,
    /// The sum of PSS (smaps_rollup), a shared page split between the processes mapping it.
    Pss,
    /// The sum of RSS, which counts a shared page once per process mapping it.
    Rss,
}

impl FromStr for TreeTotalChoice {
    type Err = String;
    fn from_str(text: &str) -> Result<TreeTotalChoice, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(TreeTotalChoice::Auto),
            "cgroup" => Ok(TreeTotalChoice::Cgroup),
            "pss" => Ok(TreeTotalChoice::Pss),
            "rss" => Ok(TreeTotalChoice::Rss),
            _ => Err(format!(
                "'{text}' is not a tree total: use auto, cgroup, pss or rss"
            )),
        }
    }
}

impl fmt::Display for TreeTotalChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TreeTotalChoice::Auto => "auto",
            TreeTotalChoice::Cgroup => "cgroup",
            TreeTotalChoice::Pss => "pss",
            TreeTotalChoice::Rss => "rss",
        })
    }
}

/// `--runtime`: which managed runtime to ask for its heap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeChoice {
    /// Detect Node.js or a HotSpot JVM; nothing for other programs.
    Auto,
    Node,
    Jvm,
    None,
}

impl FromStr for RuntimeChoice {
    type Err = String;
    fn from_str(text: &str) -> Result<RuntimeChoice, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(RuntimeChoice::Auto),
            "node" | "nodejs" => Ok(RuntimeChoice::Node),
            "jvm" | "java" => Ok(RuntimeChoice::Jvm),
            "none" => Ok(RuntimeChoice::None),
            _ => Err(format!(
                "'{text}' is not a runtime: use auto, node, jvm or none"
            )),
        }
    }
}

impl fmt::Display for RuntimeChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RuntimeChoice::Auto => "auto",
            RuntimeChoice::Node => "node",
            RuntimeChoice::Jvm => "jvm",
            RuntimeChoice::None => "none",
        })
    }
}

fn parse_non_negative(number: &str) -> Option<f64> {
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|p| p.is_finite() && *p >= 0.0)
}

fn unit_seconds(unit: &str) -> Option<f64> {
    match unit.trim() {
        "s" | "sec" => Some(1.0),
        "m" | "min" => Some(60.0),
        "h" | "hour" => Some(3600.0),
        "d" | "day" => Some(86400.0),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// One table of good and bad inputs per type. The command line and the config file both
    /// reach these parsers (the file's values become arguments), so one table covers both.
    fn good<T: FromStr<Err = String> + fmt::Display + PartialEq + fmt::Debug>(text: &str, want: T) {
        let got: T = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(got, want, "{text}");
        // What Display writes parses back to the same value (help defaults, messages).
        let again: T = got
            .to_string()
            .parse()
            .unwrap_or_else(|e| panic!("{got}: {e}"));
        assert_eq!(again, want, "round trip of {text}");
    }

    fn bad<T: FromStr<Err = String> + fmt::Debug>(text: &str, says: &str) {
        let e = text.parse::<T>().expect_err(text);
        assert!(e.contains(&format!("'{text}'")), "names the value: {e}");
        assert!(e.contains(says), "{text}: {e}");
    }

    #[test]
    fn durations() {
        good("250ms", Dur(Duration::from_millis(250)));
        good("2s", Dur::secs(2));
        good("1m", Dur::secs(60));
        good("1h30m", Dur::secs(5400));
        good("1.5", Dur(Duration::from_millis(1500)));
        good("0.5ms", Dur(Duration::from_micros(500)));
        good("111.111ms", Dur(Duration::from_micros(111_111)));
        good("2m30s", Dur::secs(150));
        assert_eq!(Dur(Duration::from_micros(500)).to_string(), "0.5ms");
        assert_eq!(Dur(Duration::from_millis(1500)).to_string(), "1.5s");
        assert_eq!(Dur(Duration::from_millis(250)).to_string(), "250ms");
        good(" 0 ", Dur(Duration::ZERO));
        bad::<Dur>("-5s", "negative");
        bad::<Dur>("fast", "is not a duration");
        bad::<Dur>("", "is not a duration");
        bad::<Dur>("1e400", "is not a duration");
        bad::<Dur>("nan", "is not a duration");
    }

    #[test]
    fn sizes() {
        good("5MiB", Size(5 << 20));
        good("1GiB", Size(1 << 30));
        good("512", Size(512));
        good("1KB", Size(1000));
        bad::<Size>("-1MiB", "negative");
        bad::<Size>("lots", "is not a size");
    }

    #[test]
    fn rates_and_slopes() {
        good("1MiB/s", ByteRate(1048576.0));
        assert_eq!("60KiB/min".parse::<ByteRate>(), Ok(ByteRate(1024.0)));
        bad::<ByteRate>("1MiB", "is not a rate");
        bad::<ByteRate>("1MiB/fortnight", "is not a rate");
        bad::<ByteRate>("5%/h", "is relative");
        good("16B/s", Slope::BytesPerSecond(16.0));
        good("1%/h", Slope::PercentPerHour(1.0));
        assert_eq!("1%/min".parse::<Slope>(), Ok(Slope::PercentPerHour(60.0)));
        bad::<Slope>("x%/h", "is not a relative rate");
        bad::<Slope>("5%", "is not a relative rate");
        bad::<Slope>("-1%/h", "is not a relative rate");
    }

    #[test]
    fn sizes_or_percentages() {
        good("10%", SizeOrPct::Percent(10.0));
        good("64MiB", SizeOrPct::Bytes(67108864.0));
        good("0%", SizeOrPct::Percent(0.0));
        bad::<SizeOrPct>("ten%", "is not a percentage");
        bad::<SizeOrPct>("-3%", "is not a percentage");
        bad::<SizeOrPct>("big", "is not a size or a percentage");
        good("10%", Pct(10.0));
        bad::<Pct>("10", "is not a percentage");
    }

    #[test]
    fn p_values_pids_signals_and_chart_sizes() {
        good("0.01", PValue(0.01));
        bad::<PValue>("1", "between 0 and 1");
        bad::<PValue>("0", "between 0 and 1");
        bad::<PValue>("nan", "between 0 and 1");
        good("4242", Pid(4242));
        bad::<Pid>("0", "must be positive");
        bad::<Pid>("-1", "must be positive");
        bad::<Pid>("abc", "is not a PID");
        bad::<Pid>("99999999999", "is not a PID");
        good("SIGUSR2", Signal(libc::SIGUSR2));
        assert_eq!("usr1".parse::<Signal>(), Ok(Signal(libc::SIGUSR1)));
        assert_eq!("12".parse::<Signal>(), Ok(Signal(12)));
        bad::<Signal>("SIGNOPE", "is not a signal");
        good("1280x720", PngSize(1280, 720));
        bad::<PngSize>("1280", "WIDTHxHEIGHT");
        bad::<PngSize>("100000x10", "WIDTHxHEIGHT");
        good(
            "30s,1m",
            DurList(vec![Duration::from_secs(30), Duration::from_secs(60)]),
        );
        let e = "30s,soon".parse::<DurList>().expect_err("soon");
        assert!(e.contains("'soon' is not a duration"), "{e}");
        good("pss", MetricChoice::Metric(Metric::Pss));
        good("settled", MetricChoice::Settled);
        bad::<MetricChoice>("heap", "is not a metric");
        good("heap-after-gc", MetricChoice::Metric(Metric::HeapAfterGc));
        good("node", RuntimeChoice::Node);
        good("auto", RuntimeChoice::Auto);
        good("none", RuntimeChoice::None);
        good("jvm", RuntimeChoice::Jvm);
        bad::<RuntimeChoice>("python", "is not a runtime");
        good("cgroup", MetricChoice::Cgroup);
        good("auto", TreeTotalChoice::Auto);
        good("cgroup", TreeTotalChoice::Cgroup);
        good("pss", TreeTotalChoice::Pss);
        good("rss", TreeTotalChoice::Rss);
        bad::<TreeTotalChoice>("uss", "is not a tree total");
        good("target", CgroupSpec::Target);
        good("/app.service", CgroupSpec::Path("/app.service".into()));
        bad::<CgroupSpec>("app", "is not a cgroup");
        good("1", FaultPeriod(1));
        good("16", FaultPeriod(16));
        bad::<FaultPeriod>("0", "is not a sampling period");
        bad::<FaultPeriod>("often", "is not a sampling period");
    }
}
