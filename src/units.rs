//! Sizes, durations and rates, in (parsing user input) and out (human-readable text).

use std::fmt;

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
