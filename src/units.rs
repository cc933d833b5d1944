//! Sizes, durations and rates, in (parsing user input) and out (human-readable text).

use std::fmt::{self, Write as _};

/// Bytes for people: `48.3 MiB`, `-512 KiB`, `0 B`; unknown (NaN, e.g. no samples, where
/// summary.json says null) is `n/a`. Writes without allocating.
#[derive(Clone, Copy, Debug)]
pub struct Bytes(pub f64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_nan() {
            return f.write_str("n/a");
        }
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
        if self.0.is_nan() {
            return f.write_str("n/a");
        }
        if self.0 >= 0.0 {
            f.write_str("+")?;
        }
        Bytes(self.0).fmt(f)
    }
}

/// A rate in bytes per second, the one way memwatch writes a slope (reasons, live line,
/// chart title, job summary, gate messages), per the most readable time unit: per second
/// from 1 MiB/s, per minute from 1 KiB/min, per hour below: `+2.03 MiB/s`,
/// `+1.20 MiB/min`, `+560 KiB/h`. Unknown (NaN) is `n/a`.
#[derive(Clone, Copy, Debug)]
pub struct Rate(pub f64);

impl Rate {
    /// The time unit this rate is written in: seconds in one, and its name.
    fn time_unit(self) -> (f64, &'static str) {
        let per_s = self.0.abs();
        if per_s >= 1024.0 * 1024.0 {
            (1.0, "s")
        } else if per_s * 60.0 >= 1024.0 {
            (60.0, "min")
        } else {
            (3600.0, "h")
        }
    }

    /// This rate per the time unit `like` is written in, so that a comparison reads in one
    /// unit (the limit's): `+1.00 MiB/s` beside a `+1.00 MiB/min` limit is `+60.0 MiB/min`.
    pub fn per_unit_of(self, like: Rate) -> RateIn {
        RateIn(self.0, like.time_unit())
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        RateIn(self.0, self.time_unit()).fmt(f)
    }
}

/// A rate written per a given time unit (see [`Rate::per_unit_of`]).
#[derive(Clone, Copy, Debug)]
pub struct RateIn(f64, (f64, &'static str));

impl fmt::Display for RateIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let RateIn(per_s, (seconds, unit)) = *self;
        if per_s.is_nan() {
            return f.write_str("n/a");
        }
        let v = per_s * seconds;
        if v != 0.0 && v.abs() < 10.0 {
            // a slow rate in a fast unit keeps its figures: +2.98 B/s, not +3 B/s
            return write!(f, "{v:+.2} B/{unit}");
        }
        write!(f, "{}/{unit}", Delta(v))
    }
}

/// A duration for people, the one way memwatch writes them (reasons, live line, chart,
/// job summary): `0.2 s`, `2.5 s`, `24 s`, `3 min 5 s`, `10 min`, `2 h 1 min`, `28 d 6 h`.
/// A tenth of a second under a minute, whole seconds under an hour, whole minutes under a
/// day, whole hours beyond. Unknown (NaN) is `n/a`; negative counts as 0.
#[derive(Clone, Copy, Debug)]
pub struct Elapsed(pub f64);

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_nan() {
            return f.write_str("n/a");
        }
        let s = self.0.max(0.0);
        let tenths = (s * 10.0).round();
        if tenths < 600.0 {
            return if tenths % 10.0 == 0.0 {
                write!(f, "{:.0} s", tenths / 10.0)
            } else {
                write!(f, "{:.1} s", tenths / 10.0)
            };
        }
        let pair =
            |f: &mut fmt::Formatter<'_>, big: u64, big_unit: &str, small: u64, unit: &str| {
                if small == 0 {
                    write!(f, "{big} {big_unit}")
                } else {
                    write!(f, "{big} {big_unit} {small} {unit}")
                }
            };
        let secs = s.round();
        if secs < 3600.0 {
            let secs = secs as u64;
            return pair(f, secs / 60, "min", secs % 60, "s");
        }
        let mins = (s / 60.0).round();
        if mins < 1440.0 {
            let mins = mins as u64;
            return pair(f, mins / 60, "h", mins % 60, "min");
        }
        let hours = (s / 3600.0).round().min(u64::MAX as f64) as u64;
        pair(f, hours / 24, "d", hours % 24, "h")
    }
}

/// A p-value, the one way memwatch writes them: `p < 0.001`, `p = 0.027`, `p = 1.000`;
/// unknown (NaN) is `p n/a`. The alternate form (`{:#}`) leaves out the `p`, for a
/// table whose column already says it: `< 0.001`, `0.027`, `n/a`.
#[derive(Clone, Copy, Debug)]
pub struct PValue(pub f64);

impl fmt::Display for PValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        let bare = f.alternate();
        match (bare, p.is_nan(), p < 0.001) {
            (false, true, _) => f.write_str("p n/a"),
            (true, true, _) => f.write_str("n/a"),
            (false, _, true) => f.write_str("p < 0.001"),
            (true, _, true) => f.write_str("< 0.001"),
            (false, _, false) => write!(f, "p = {p:.3}"),
            (true, _, false) => write!(f, "{p:.3}"),
        }
    }
}

/// A relative rate, percent of the floor per hour: `+0.07%/h`, `-1.25%/h`.
#[derive(Clone, Copy, Debug)]
pub struct PctPerHour(pub f64);

impl fmt::Display for PctPerHour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_nan() {
            return f.write_str("n/a");
        }
        write!(f, "{:+.2}%/h", self.0)
    }
}

/// A count and its noun, singular for one: `1 sample`, `51 samples`, `0 samples`.
#[derive(Clone, Copy, Debug)]
pub struct Count(pub u64, pub &'static str);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = match (self.0, self.1.ends_with('s')) {
            (1, _) => "",
            (_, true) => "es", // processes
            (_, false) => "s",
        };
        write!(f, "{} {}{plural}", self.0, self.1)
    }
}

/// Text from outside (a file name, a CSV cell, a command line) as it may be shown on a
/// terminal: control characters are written as escapes (`\u{1b}`, `\n`, `\u{0}`), so a
/// quoted value can neither change the terminal nor break a message's one line.
pub struct Printable<'a>(pub &'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                f.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// A size in bytes as a whole number, as summary.json writes every size (a reader into an
/// int64 rejects `10649600.00000001`); `None` for an unknown (NaN) or impossible size.
pub fn whole_bytes(x: f64) -> Option<u64> {
    (x.is_finite() && x >= 0.0 && x < u64::MAX as f64).then(|| x.round() as u64)
}

/// For `#[serde(serialize_with)]` on a size kept as `Option<f64>`: written as a whole number
/// of bytes (or `null`), as every size in summary.json.
pub fn serde_whole_bytes<S: serde::Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match x.and_then(whole_delta) {
        Some(b) => s.serialize_i64(b),
        None => s.serialize_none(),
    }
}

/// A change of size in bytes (may be negative) as a whole number; `None` when unknown.
pub fn whole_delta(x: f64) -> Option<i64> {
    (x.is_finite() && x.abs() < i64::MAX as f64).then(|| x.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_output() {
        assert_eq!(Count(3, "process").to_string(), "3 processes");
        assert_eq!(Count(1, "process").to_string(), "1 process");
        assert_eq!(Count(2, "sample").to_string(), "2 samples");
        assert_eq!(Bytes(0.0).to_string(), "0 B");
        assert_eq!(Bytes(1536.0).to_string(), "1.50 KiB");
        assert_eq!(Bytes(48.3 * 1048576.0).to_string(), "48.3 MiB");
        assert_eq!(Delta(-2048.0).to_string(), "-2.00 KiB");
        assert_eq!(Delta(0.0).to_string(), "+0 B");
        assert_eq!(Rate(1048576.0 / 60.0 * 1.2).to_string(), "+1.20 MiB/min");
        assert_eq!(Rate(2.0 * 1048576.0).to_string(), "+2.00 MiB/s");
        assert_eq!(Rate(0.0).to_string(), "+0 B/h");
        assert_eq!(Bytes(f64::NAN).to_string(), "n/a");
        assert_eq!(Delta(f64::NAN).to_string(), "n/a");
        assert_eq!(Rate(f64::NAN).to_string(), "n/a");
        // issue 20 item 16: one unit per comparison, the limit's
        let per_min = Rate(1048576.0 / 60.0);
        assert_eq!(
            Rate(1048576.0).per_unit_of(per_min).to_string(),
            "+60.0 MiB/min"
        );
        assert_eq!(
            Rate(2.0).per_unit_of(Rate(1048576.0)).to_string(),
            "+2.00 B/s"
        );
        assert_eq!(Rate(f64::NAN).per_unit_of(per_min).to_string(), "n/a");
    }

    #[test]
    fn durations_for_people() {
        let cases = [
            (0.0, "0 s"),
            (0.2, "0.2 s"),
            (2.5, "2.5 s"),
            (5.0001293485, "5 s"),
            (24.0, "24 s"),
            (42.04, "42 s"),
            (42.36, "42.4 s"),
            (59.96, "1 min"),
            (185.0, "3 min 5 s"),
            (600.0, "10 min"),
            (3599.6, "1 h"),
            (7260.0, "2 h 1 min"),
            (7200.0, "2 h"),
            (86_399.0, "1 d"),
            (678.0 * 3600.0, "28 d 6 h"),
            (7.0 * 86_400.0, "7 d"),
            (-3.0, "0 s"),
            (f64::NAN, "n/a"),
        ];
        for (s, text) in cases {
            assert_eq!(Elapsed(s).to_string(), text, "{s}");
        }
    }

    /// Regression (issue 9 item 14): with 0 samples stderr said "RSS start 0 B" where
    /// summary.json says null: an unknown size is written `n/a`.
    #[test]
    fn regression_unknown_size_is_n_a_not_0_b() {
        assert_eq!(Bytes(f64::NAN).to_string(), "n/a");
        assert_eq!(Bytes(0.0).to_string(), "0 B");
    }

    /// Regression (issue 9 item 14): a 2.5 s warm-up was shown as "3 s".
    #[test]
    fn regression_warmup_of_2_5_s_is_not_shown_as_3_s() {
        assert_eq!(Elapsed(2.5).to_string(), "2.5 s");
    }

    /// Regression (issue 9 item 14): the live line said "1 samples".
    #[test]
    fn regression_one_sample_is_singular() {
        assert_eq!(Count(1, "sample").to_string(), "1 sample");
        assert_eq!(Count(0, "sample").to_string(), "0 samples");
        assert_eq!(Count(51, "sample").to_string(), "51 samples");
    }

    #[test]
    fn p_values_and_relative_rates() {
        assert_eq!(PValue(8.3e-5).to_string(), "p < 0.001");
        assert_eq!(PValue(0.0021).to_string(), "p = 0.002");
        assert_eq!(PValue(0.027).to_string(), "p = 0.027");
        assert_eq!(PValue(1.0).to_string(), "p = 1.000");
        assert_eq!(PValue(f64::NAN).to_string(), "p n/a");
        assert_eq!(format!("{:#}", PValue(8.3e-5)), "< 0.001");
        assert_eq!(format!("{:#}", PValue(0.5)), "0.500");
        assert_eq!(format!("{:#}", PValue(f64::NAN)), "n/a");
        assert_eq!(PctPerHour(0.074).to_string(), "+0.07%/h");
        assert_eq!(PctPerHour(-1.25).to_string(), "-1.25%/h");
    }
}
