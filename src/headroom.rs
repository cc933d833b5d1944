//! Whether a target has the memory room a heap snapshot may take. Writing one can double a
//! program's memory, so its RSS must fit both in the machine's available memory and in what
//! the limit of its memory cgroup leaves (in a container, the OOM killer goes by the limit).

use crate::cgroup;
use crate::units::Bytes;

/// `Ok` when `pid`'s RSS fits in the room left; else why not, in words. When a figure cannot
/// be read, that check is not made.
pub fn room_for_a_snapshot(pid: i32) -> Result<(), String> {
    let Some(rss) = crate::tree::rss_of(pid) else {
        return Ok(());
    };
    if let Some(available) = mem_available()
        && available < rss
    {
        return Err(format!(
            "a snapshot can double the program's memory ({} now) and only {} is available",
            Bytes(rss as f64),
            Bytes(available as f64)
        ));
    }
    if let Some(room) = cgroup::room(pid)
        && room.bytes < rss
    {
        return Err(format!(
            "a snapshot can double the program's memory ({} now) and its memory cgroup {} \
             has only {} left under its {} limit",
            Bytes(rss as f64),
            room.cgroup,
            Bytes(room.bytes as f64),
            Bytes(room.limit as f64)
        ));
    }
    Ok(())
}

fn mem_available() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
