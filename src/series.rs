//! What a run is made of when it watches more than one thing: each series of samples has a
//! key (the total, one process, later a cgroup), and a followed target that restarts is a
//! sequence of segments.
//!
//! In samples.csv the key is the `pid` cell: `total` for the sum over a process tree (or a
//! followed target across its restarts), the process id for one process, `cgroup` for the
//! memory cgroup read beside them (one per run; its path is in summary.json). A single-process run writes its PID on every row, as it always
//! has; a file without a `pid` column (or with every `pid` cell empty) holds one series that
//! does not say what it is.

/// Which series a sample belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SeriesKey {
    /// The sum over every process watched at that tick.
    Total,
    /// One process. A PID alone can be reused; with the start time (clock ticks since boot,
    /// field 22 of /proc/PID/stat) it names one process for good. A CSV holds the PID only.
    Process {
        pid: i32,
        start_time_ticks: Option<u64>,
    },
    /// A cgroup, by its path in the hierarchy (`/system.slice/app.service`).
    Cgroup(String),
}

impl SeriesKey {
    /// The series of process `pid`, start time unknown (as read from a CSV).
    pub fn process(pid: i32) -> SeriesKey {
        SeriesKey::Process {
            pid,
            start_time_ticks: None,
        }
    }

    /// The text of this series' CSV `pid` cell: `total`, `cgroup`, or the PID formatted into
    /// `num` (no allocation, for the per-row hot path).
    pub fn pid_cell<'a>(&self, num: &'a mut itoa::Buffer) -> Option<&'a str> {
        match self {
            SeriesKey::Total => Some(TOTAL_CELL),
            SeriesKey::Process { pid, .. } => Some(num.format(*pid)),
            SeriesKey::Cgroup(_) => Some(CGROUP_CELL),
        }
    }

    /// Reads a CSV `pid` cell (surrounding spaces allowed): `total`, or a PID (a positive
    /// integer that fits an `i32`). `Ok(None)` for an empty cell: the row does not say.
    pub fn from_pid_cell(cell: &[u8]) -> Result<Option<SeriesKey>, BadPidCell> {
        let cell = cell.trim_ascii();
        if cell.is_empty() {
            return Ok(None);
        }
        if cell == TOTAL_CELL.as_bytes() {
            return Ok(Some(SeriesKey::Total));
        }
        if cell == CGROUP_CELL.as_bytes() {
            return Ok(Some(SeriesKey::Cgroup(String::new())));
        }
        let pid = std::str::from_utf8(cell)
            .ok()
            .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<i32>().ok())
            .filter(|&pid| pid > 0)
            .ok_or(BadPidCell)?;
        Ok(Some(SeriesKey::process(pid)))
    }

    /// The PID, for a process.
    pub fn pid(&self) -> Option<i32> {
        match self {
            SeriesKey::Process { pid, .. } => Some(*pid),
            _ => None,
        }
    }
}

/// The `pid` cell of a total row.
pub const TOTAL_CELL: &str = "total";
/// The `pid` cell of a cgroup row.
pub const CGROUP_CELL: &str = "cgroup";

/// A `pid` cell that is neither empty, `total`, nor a positive integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadPidCell;

impl std::fmt::Display for SeriesKey {
    /// `total`, `pid 1234`, `cgroup /system.slice/app.service`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeriesKey::Total => f.write_str(TOTAL_CELL),
            SeriesKey::Process { pid, .. } => write!(f, "pid {pid}"),
            SeriesKey::Cgroup(path) if path.is_empty() => f.write_str(CGROUP_CELL),
            SeriesKey::Cgroup(path) => write!(f, "cgroup {path}"),
        }
    }
}

/// One process's stretch of a followed target's life: a target found by name that exits and
/// is started again is one segment per process. Times are on the run's clock, first and last
/// sample of the process.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub pid: i32,
    pub start_time_ticks: Option<u64>,
    pub start_s: f64,
    pub end_s: f64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_display_as_people_read_them() {
        assert_eq!(SeriesKey::Total.to_string(), "total");
        assert_eq!(SeriesKey::process(1234).to_string(), "pid 1234");
        let started = SeriesKey::Process {
            pid: 7,
            start_time_ticks: Some(99),
        };
        assert_eq!(started.to_string(), "pid 7");
        assert_eq!(
            SeriesKey::Cgroup("/system.slice/app.service".into()).to_string(),
            "cgroup /system.slice/app.service"
        );
    }

    #[test]
    fn pid_cells_round_trip() {
        let mut num = itoa::Buffer::new();
        for key in [
            SeriesKey::Total,
            SeriesKey::process(1),
            SeriesKey::process(4_194_304),
        ] {
            let cell = key.pid_cell(&mut num).unwrap().to_string();
            assert_eq!(SeriesKey::from_pid_cell(cell.as_bytes()), Ok(Some(key)));
        }
        assert_eq!(
            SeriesKey::Cgroup("/a".into()).pid_cell(&mut num),
            Some("cgroup")
        );
        assert_eq!(
            SeriesKey::from_pid_cell(b"cgroup"),
            Ok(Some(SeriesKey::Cgroup(String::new())))
        );
        assert_eq!(SeriesKey::Cgroup(String::new()).to_string(), "cgroup");
    }

    #[test]
    fn pid_cells_read_from_a_csv() {
        let good: [(&str, Option<SeriesKey>); 6] = [
            ("", None),
            ("   ", None),
            ("total", Some(SeriesKey::Total)),
            (" 42 ", Some(SeriesKey::process(42))),
            ("0042", Some(SeriesKey::process(42))),
            ("2147483647", Some(SeriesKey::process(i32::MAX))),
        ];
        for (cell, key) in good {
            assert_eq!(
                SeriesKey::from_pid_cell(cell.as_bytes()),
                Ok(key),
                "{cell:?}"
            );
        }
        for cell in [
            "0",
            "-1",
            "+5",
            "1.0",
            "1e3",
            "2147483648",
            "Total",
            "tot",
            "12 13",
            "pid 12",
        ] {
            assert_eq!(
                SeriesKey::from_pid_cell(cell.as_bytes()),
                Err(BadPidCell),
                "{cell:?}"
            );
        }
    }
}
