//! `/proc/PID/statm`, the cheapest memory reading there is (~1 µs a pread, against ~6 µs for
//! status, DESIGN.md §6): what `--all` reads of every process on every tick. It holds sizes in
//! pages: total program size (VSZ), resident (RSS), and resident shared (file-backed and
//! shared memory), so the anonymous part is exact (resident - shared) while the file and
//! shmem parts, swap and the peak stay unknown. Parsed from bytes, no allocation.

use super::status::MemStatus;

/// Why a statm text gave no reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatmError {
    /// Every field 0: a kernel thread or a zombie, with no address space.
    NoMemoryMap,
    /// Fewer than three numbers, or one that is not a number.
    Malformed,
}

/// Parses a statm text (`size resident shared text lib data dt`, in pages of
/// `page_size` bytes).
pub fn parse(text: &[u8], page_size: u64) -> Result<MemStatus, StatmError> {
    let mut fields = text
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let mut next = || -> Result<u64, StatmError> {
        let word = fields.next().ok_or(StatmError::Malformed)?;
        parse_u64(word).ok_or(StatmError::Malformed)
    };
    let (size, resident, shared) = (next()?, next()?, next()?);
    if size == 0 && resident == 0 {
        return Err(StatmError::NoMemoryMap);
    }
    Ok(MemStatus {
        rss: resident.saturating_mul(page_size),
        vsz: size.saturating_mul(page_size),
        anon: Some(resident.saturating_sub(shared).saturating_mul(page_size)),
        ..MemStatus::default()
    })
}

fn parse_u64(word: &[u8]) -> Option<u64> {
    if word.is_empty() || word.len() > 19 {
        return None;
    }
    word.iter().try_fold(0u64, |n, &b| {
        b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0'))
    })
}

/// The size of a memory page, bytes.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 { page as u64 } else { 4096 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_become_bytes_and_anon_is_resident_less_shared() {
        // recorded from `cat /proc/self/statm`
        let m = parse(b"765 439 412 5 0 123 0\n", 4096).expect("parses");
        assert_eq!(m.vsz, 765 * 4096);
        assert_eq!(m.rss, 439 * 4096);
        assert_eq!(m.anon, Some(27 * 4096));
        assert_eq!((m.file, m.shmem, m.swap, m.hwm), (None, None, None, None));
    }

    #[test]
    fn kernel_threads_and_bad_text() {
        assert_eq!(
            parse(b"0 0 0 0 0 0 0\n", 4096),
            Err(StatmError::NoMemoryMap)
        );
        assert_eq!(parse(b"1 2\n", 4096), Err(StatmError::Malformed));
        assert_eq!(parse(b"1 x 3\n", 4096), Err(StatmError::Malformed));
        assert_eq!(parse(b"", 4096), Err(StatmError::Malformed));
        assert_eq!(
            parse(b"99999999999999999999 1 1", 4096),
            Err(StatmError::Malformed)
        );
        // shared above resident (the counters are read one after another): anon 0, not a wrap
        assert_eq!(parse(b"10 5 6 0 0 0 0", 4096).map(|m| m.anon), Ok(Some(0)));
    }

    #[test]
    fn this_process_reads_like_its_status() {
        let text = std::fs::read("/proc/self/statm").expect("statm");
        let m = parse(&text, page_size()).expect("parses");
        let status = std::fs::read("/proc/self/status").expect("status");
        let s = crate::sample::status::parse(&status).expect("status parses");
        // read moments apart: the same order of magnitude, exactly the same VSZ page count
        assert!(m.rss > 0 && s.rss > 0);
        assert!(m.rss.abs_diff(s.rss) < 64 << 20, "{} vs {}", m.rss, s.rss);
    }
}
