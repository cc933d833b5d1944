//! Sizes, durations and rates, in (parsing user input) and out (human-readable text).

use std::fmt;
use std::time::Duration;

/// Parses a duration: `250ms`, `2s`, `1m`, `1h30m`, or a bare number of seconds (`1.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!(
            "'{text}' is negative: give a duration such as '250ms', '2s' or '1m'"
        ));
    }
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("'{text}' is not a duration: try '250ms', '2s' or '1m'"));
    }
    humantime::parse_duration(t)
        .map_err(|_| format!("'{text}' is not a duration: try '250ms', '2s' or '1m'"))
}

/// Parses a size: `5MiB`, `1GiB`, `512KB`, or a bare number of bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!(
            "'{text}' is negative: give a size such as '512KiB' or '5MiB'"
        ));
    }
    t.parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| format!("'{text}' is not a size: try '512KiB', '5MiB' or '1GiB'"))
}

/// Parses a rate `SIZE/UNIT` (`1MiB/h`, `10KiB/s`, `2MB/min`) into bytes per second.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let bad = || format!("'{text}' is not a rate: try '1MiB/h' or '10KiB/min'");
    let (size, unit) = text.trim().split_once('/').ok_or_else(bad)?;
    let bytes = parse_size(size).map_err(|_| bad())? as f64;
    let per = unit_seconds(unit).ok_or_else(bad)?;
    Ok(bytes / per)
}

/// Parses a relative rate `PCT%/UNIT` (`5%/h`) into percent per hour.
pub fn parse_pct_rate(text: &str) -> Result<f64, String> {
    let bad = || format!("'{text}' is not a relative rate: try '5%/h'");
    let (pct, unit) = text.trim().split_once('/').ok_or_else(bad)?;
    let pct: f64 = pct
        .strip_suffix('%')
        .ok_or_else(bad)?
        .trim()
        .parse()
        .map_err(|_| bad())?;
    if !pct.is_finite() || pct < 0.0 {
        return Err(bad());
    }
    Ok(pct * 3600.0 / unit_seconds(unit).ok_or_else(bad)?)
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

/// Bytes for people: `48.3 MiB`, `-512 KiB`, `0 B`. Writes without allocating.
#[derive(Clone, Copy, Debug)]
pub struct Bytes(pub f64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        let sign = if self.0 < 0.0 { "-" } else { "" };
        let mut v = self.0.abs();
        let mut unit = 0;
        while v >= 1024.0 && unit < UNITS.len() - 1 {
            v /= 1024.0;
            unit += 1;
        }
        match unit {
            0 => write!(f, "{sign}{v:.0} B"),
            _ if v < 10.0 => write!(f, "{sign}{v:.2} {}", UNITS[unit]),
            _ if v < 100.0 => write!(f, "{sign}{v:.1} {}", UNITS[unit]),
            _ => write!(f, "{sign}{v:.0} {}", UNITS[unit]),
        }
    }
}

/// A signed change: `+1.20 MiB`, `-3 KiB`.
#[derive(Clone, Copy, Debug)]
pub struct Delta(pub f64);

impl fmt::Display for Delta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 >= 0.0 {
            f.write_str("+")?;
        }
        Bytes(self.0).fmt(f)
    }
}

/// A rate in bytes per second shown per the most readable unit: `+1.20 MiB/min`.
#[derive(Clone, Copy, Debug)]
pub struct Rate(pub f64);

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per_s = self.0;
        let (v, unit) = if per_s.abs() >= 1024.0 * 1024.0 {
            (per_s, "s")
        } else if per_s.abs() * 60.0 >= 1024.0 {
            (per_s * 60.0, "min")
        } else {
            (per_s * 3600.0, "h")
        };
        write!(f, "{}/{unit}", Delta(v))
    }
}

/// Elapsed time for people: `42.0s`, `3m05s`, `2h01m`.
#[derive(Clone, Copy, Debug)]
pub struct Elapsed(pub f64);

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.max(0.0);
        if s < 60.0 {
            write!(f, "{s:.1}s")
        } else if s < 3600.0 {
            write!(f, "{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
        } else {
            write!(
                f,
                "{}h{:02}m",
                (s / 3600.0) as u64,
                ((s % 3600.0) / 60.0) as u64
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(
            parse_duration("-5s")
                .expect_err("negative")
                .contains("negative")
        );
        assert!(parse_duration("soon").expect_err("bad").contains("'soon'"));
        assert!(parse_duration("nan").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes_and_rates() {
        assert_eq!(parse_size("5MiB"), Ok(5 * 1024 * 1024));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("-1MiB").is_err());
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_rate("1MiB/h"), Ok(1024.0 * 1024.0 / 3600.0));
        assert_eq!(parse_rate("60KiB/min"), Ok(1024.0));
        assert!(parse_rate("1MiB").is_err());
        assert!(parse_rate("1MiB/fortnight").is_err());
        assert_eq!(parse_pct_rate("5%/h"), Ok(5.0));
        assert_eq!(parse_pct_rate("1%/min"), Ok(60.0));
        assert!(parse_pct_rate("5/h").is_err());
    }

    #[test]
    fn human_output() {
        assert_eq!(Bytes(0.0).to_string(), "0 B");
        assert_eq!(Bytes(1536.0).to_string(), "1.50 KiB");
        assert_eq!(Bytes(48.3 * 1048576.0).to_string(), "48.3 MiB");
        assert_eq!(Delta(-2048.0).to_string(), "-2.00 KiB");
        assert_eq!(Delta(0.0).to_string(), "+0 B");
        assert_eq!(Rate(1048576.0 / 60.0 * 1.2).to_string(), "+1.20 MiB/min");
        assert_eq!(Rate(2.0 * 1048576.0).to_string(), "+2.00 MiB/s");
        assert_eq!(Rate(0.0).to_string(), "+0 B/h");
        assert_eq!(Elapsed(42.04).to_string(), "42.0s");
        assert_eq!(Elapsed(185.0).to_string(), "3m05s");
        assert_eq!(Elapsed(7260.0).to_string(), "2h01m");
    }
}
