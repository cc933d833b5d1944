//! Parser of `/proc/PID/status`, the memory lines only. Works on a byte slice so tests feed
//! recorded text; allocates nothing.

/// Memory figures from /proc/PID/status, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemStatus {
    /// VmRSS.
    pub rss: u64,
    /// VmSize.
    pub vsz: u64,
    /// RssAnon, RssFile, RssShmem (Linux >= 4.5).
    pub anon: Option<u64>,
    pub file: Option<u64>,
    pub shmem: Option<u64>,
    /// VmSwap.
    pub swap: Option<u64>,
    /// VmHWM, the peak RSS.
    pub hwm: Option<u64>,
    pub threads: Option<u32>,
}

/// Why a status text gave no memory figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusError {
    /// State Z: the process has exited and is waiting to be reaped.
    Zombie,
    /// No Vm lines and not a zombie: a kernel thread.
    NoMemoryMap,
    /// A line that should hold a number does not.
    Malformed { line: usize },
}

/// Parses the memory lines of a status text. Lines it does not need are skipped unread, and
/// it stops once it has every line it looks for (in the kernel's order, `Threads` is the last,
/// about two thirds down).
pub fn parse(text: &[u8]) -> Result<MemStatus, StatusError> {
    /// One bit per line looked for.
    const ALL: u16 = (1 << 9) - 1;
    let mut out = MemStatus::default();
    let (mut rss, mut vsz) = (None, None);
    let mut zombie = false;
    let mut seen = 0u16;
    for (i, line) in Lines::new(text).enumerate() {
        // Every line looked for starts with one of these: most lines end here.
        if !matches!(line.first(), Some(b'V' | b'R' | b'T' | b'S')) {
            continue;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (key, rest) = (&line[..colon], &line[colon + 1..]);
        let (bit, slot) = match key {
            b"VmRSS" => (0, &mut rss),
            b"VmSize" => (1, &mut vsz),
            b"RssAnon" => (2, &mut out.anon),
            b"RssFile" => (3, &mut out.file),
            b"RssShmem" => (4, &mut out.shmem),
            b"VmSwap" => (5, &mut out.swap),
            b"VmHWM" => (6, &mut out.hwm),
            b"Threads" => {
                let n = parse_number(rest).ok_or(StatusError::Malformed { line: i + 1 })?;
                out.threads = u32::try_from(n).ok();
                seen |= 1 << 7;
                if seen == ALL {
                    break;
                }
                continue;
            }
            b"State" => {
                zombie = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'Z');
                seen |= 1 << 8;
                continue;
            }
            _ => continue,
        };
        let kib = parse_number(rest).ok_or(StatusError::Malformed { line: i + 1 })?;
        *slot = Some(kib.saturating_mul(1024));
        seen |= 1 << bit;
        if seen == ALL {
            break;
        }
    }
    match (rss, vsz) {
        (Some(rss), Some(vsz)) => {
            out.rss = rss;
            out.vsz = vsz;
            Ok(out)
        }
        _ if zombie => Err(StatusError::Zombie),
        _ => Err(StatusError::NoMemoryMap),
    }
}

/// The lines of a text. One memchr search runs over the whole text (a status text is ~55
/// short lines, ~1.5 KiB): cheaper than a search started afresh on each line.
struct Lines<'a> {
    text: &'a [u8],
    at: usize,
    newlines: memchr::Memchr<'a>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a [u8]) -> Lines<'a> {
        Lines {
            text,
            at: 0,
            newlines: memchr::memchr_iter(b'\n', text),
        }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.at >= self.text.len() {
            return None;
        }
        let end = self.newlines.next().unwrap_or(self.text.len());
        let line = &self.text[self.at..end];
        self.at = end + 1;
        Some(line)
    }
}

/// The `SigCgt` mask: bit n-1 set when signal n has a handler. `None` if absent or malformed.
pub fn parse_sig_caught(text: &[u8]) -> Option<u64> {
    let line = text
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"SigCgt:"))?;
    let hex = std::str::from_utf8(&line[7..]).ok()?.trim();
    u64::from_str_radix(hex, 16).ok()
}

/// Reads `   1234 kB` (or a bare number): leading blanks, digits, anything after.
fn parse_number(field: &[u8]) -> Option<u64> {
    let start = field.iter().position(|b| !b.is_ascii_whitespace())?;
    let digits = &field[start..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 {
        return None;
    }
    digits[..end].iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAT: &[u8] = include_bytes!("../../tests/fixtures/proc/status-cat.txt");
    const KTHREAD: &[u8] = include_bytes!("../../tests/fixtures/proc/status-kthreadd.txt");

    #[test]
    fn parses_a_recorded_user_process() {
        let m = parse(CAT).expect("cat has memory");
        let field = |name: &str| -> u64 {
            let text = std::str::from_utf8(CAT).expect("utf8");
            let line = text
                .lines()
                .find(|l| l.starts_with(name))
                .expect("line present");
            let kib: u64 = line
                .split_whitespace()
                .nth(1)
                .expect("value")
                .parse()
                .expect("number");
            kib * 1024
        };
        assert_eq!(m.rss, field("VmRSS:"));
        assert_eq!(m.vsz, field("VmSize:"));
        assert_eq!(m.anon, Some(field("RssAnon:")));
        assert_eq!(m.file, Some(field("RssFile:")));
        assert_eq!(m.shmem, Some(field("RssShmem:")));
        assert_eq!(m.swap, Some(field("VmSwap:")));
        assert_eq!(m.hwm, Some(field("VmHWM:")));
        assert_eq!(m.threads, Some(1));
        assert!(m.rss > 0 && m.vsz >= m.rss);
    }

    #[test]
    fn caught_signal_mask() {
        assert_eq!(
            parse_sig_caught(b"Name:\tnode\nSigCgt:\t0000000188004a02\n"),
            Some(0x0000_0001_8800_4a02)
        );
        let usr2_bit = 1u64 << (12 - 1);
        assert_ne!(
            parse_sig_caught(b"SigCgt:\t0000000000000800\n").expect("mask") & usr2_bit,
            0
        );
        assert_eq!(parse_sig_caught(b"SigCgt:\tzz\n"), None);
        assert_eq!(parse_sig_caught(b"Name:\tx\n"), None);
        assert!(parse_sig_caught(CAT).is_some());
    }

    #[test]
    fn any_line_order_and_stops_only_when_all_are_found() {
        // reversed line order: nothing depends on the kernel's order
        let text = std::str::from_utf8(CAT).expect("utf8");
        let reversed: Vec<&str> = text.lines().rev().collect();
        assert_eq!(parse(reversed.join("\n").as_bytes()), parse(CAT));
        // after all lines are found, the rest is not read (not even a malformed line)
        let all = b"State:\tS\nVmSize:\t2 kB\nVmHWM:\t1 kB\nVmRSS:\t1 kB\nRssAnon:\t1 kB\n\
RssFile:\t0 kB\nRssShmem:\t0 kB\nVmSwap:\t0 kB\nThreads:\t1\nVmRSS:\tjunk\n";
        assert_eq!(parse(all).expect("parses").rss, 1024);
        // without RssAnon (Linux < 4.5) every line is read
        let old = b"VmSize:\t2 kB\nVmRSS:\t1 kB\nThreads:\t1\nVmSwap:\tjunk\n";
        assert_eq!(parse(old), Err(StatusError::Malformed { line: 4 }));
    }

    #[test]
    fn lines_are_split_like_str_lines() {
        for text in [
            "",
            "a",
            "a\n",
            "a\n\nb",
            "\n",
            "\n\nx\ny\n",
            "no newline at end",
        ] {
            let ours: Vec<&[u8]> = Lines::new(text.as_bytes()).collect();
            let std: Vec<&[u8]> = text.lines().map(str::as_bytes).collect();
            assert_eq!(ours, std, "{text:?}");
        }
    }

    #[test]
    fn kernel_thread_has_no_memory_map() {
        assert_eq!(parse(KTHREAD), Err(StatusError::NoMemoryMap));
    }

    #[test]
    fn zombie_is_told_apart() {
        let text = b"Name:\tdefunct\nState:\tZ (zombie)\nTgid:\t42\nThreads:\t1\n";
        assert_eq!(parse(text), Err(StatusError::Zombie));
    }

    #[test]
    fn minimal_text_and_optional_lines() {
        let m = parse(b"VmSize:\t  2048 kB\nVmRSS:\t 1024 kB\n").expect("parses");
        assert_eq!((m.rss, m.vsz), (1024 * 1024, 2048 * 1024));
        assert_eq!((m.anon, m.swap, m.threads), (None, None, None));
    }

    #[test]
    fn malformed_number_names_the_line() {
        let text = b"Name:\tx\nVmSize:\t 10 kB\nVmRSS:\t lots kB\n";
        assert_eq!(parse(text), Err(StatusError::Malformed { line: 3 }));
        assert_eq!(parse(b"VmRSS:\n"), Err(StatusError::Malformed { line: 1 }));
    }

    #[test]
    fn overflowing_number_is_malformed_not_wrapped() {
        let text = b"VmSize:\t 99999999999999999999999 kB\nVmRSS:\t1 kB\n";
        assert_eq!(parse(text), Err(StatusError::Malformed { line: 1 }));
    }

    #[test]
    fn truncated_text_without_rss_is_no_memory() {
        assert_eq!(
            parse(b"Name:\tx\nVmSize:\t 10 kB\nVmR"),
            Err(StatusError::NoMemoryMap)
        );
        assert_eq!(parse(b""), Err(StatusError::NoMemoryMap));
    }
}
