//! The numeric fields of `/proc/PID/stat` that `--all` needs: the state, the kernel-thread
//! flag and the start time (who the process is), and its size and resident pages (what it
//! holds, for processes read by reopening the file each tick). Parsed from bytes after the
//! name's closing parenthesis (the name may hold spaces and parentheses), no allocation;
//! `tree::parse_stat` gives the name.

/// `PF_KTHREAD` in the flags field: a kernel thread.
const PF_KTHREAD: u64 = 0x0020_0000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFields {
    /// `R`, `S`, ... `Z` for a zombie.
    pub state: u8,
    pub ppid: i32,
    pub flags: u64,
    /// Clock ticks since boot: with the PID, the process's identity.
    pub start_time: u64,
    /// VSZ, bytes.
    pub vsize: u64,
    /// Resident pages.
    pub rss_pages: u64,
    /// The signal the parent gets when it exits: -1 for a thread that is not its process's
    /// leader (`/proc/TID` opens, but is no process of its own).
    pub exit_signal: i32,
}

impl StatFields {
    /// Reads fields 3 (state), 4 (ppid), 9 (flags), 22 (start time), 23 (vsize), 24 (rss)
    /// and 38 (exit signal).
    pub fn parse(text: &[u8]) -> Option<StatFields> {
        let close = text.iter().rposition(|&b| b == b')')?;
        let mut fields = text[close + 1..]
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty());
        // field N is the (N - 2)th word after the name
        let state = *fields.next()?.first()?;
        let ppid = number(fields.next()?)?;
        let flags = number(fields.nth(4)?)?;
        let start_time = number(fields.nth(12)?)?;
        let vsize = number(fields.next()?)?;
        let rss_pages = number(fields.next()?)?;
        let exit_signal = match fields.nth(13)? {
            b"-1" => -1,
            word => i32::try_from(number(word)?).ok()?,
        };
        Some(StatFields {
            state,
            ppid: i32::try_from(ppid).ok()?,
            flags,
            start_time,
            vsize,
            rss_pages,
            exit_signal,
        })
    }

    pub fn is_thread(&self) -> bool {
        self.exit_signal == -1
    }

    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// The process name in a stat text: between the first `(` and the last `)`.
pub fn name(text: &[u8]) -> Option<&[u8]> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    text.get(open + 1..close)
}

fn number(word: &[u8]) -> Option<u64> {
    if word.is_empty() || word.len() > 20 {
        return None;
    }
    word.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_lines() {
        // `cat /proc/self/stat`, then kthreadd, then a name with spaces and parentheses
        let cat = b"12716 (cat) R 12709 12709 10418 0 -1 4194304 98 0 0 0 0 0 0 0 20 0 1 0 328277 \
                    3133440 382 18446744073709551615 94392365711360 94392365731241 140735057948864 \
                    0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
        let f = StatFields::parse(cat).expect("parses");
        assert_eq!(f.state, b'R');
        assert_eq!(f.ppid, 12709);
        assert_eq!(f.flags, 4194304);
        assert_eq!(f.start_time, 328277);
        assert_eq!(f.vsize, 3133440);
        assert_eq!(f.rss_pages, 382);
        assert_eq!(f.exit_signal, 17);
        assert!(!f.is_kernel_thread() && !f.is_thread());
        assert_eq!(name(cat), Some(&b"cat"[..]));
        let kthreadd = b"2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 1 0 0 20 0 1 0 7 0 0 \
                         18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 1 0 0";
        let k = StatFields::parse(kthreadd).expect("parses");
        assert!(k.is_kernel_thread());
        assert_eq!((k.start_time, k.vsize, k.rss_pages), (7, 0, 0));
        // a thread (exit signal -1), with spaces and parentheses in its name
        let odd =
            b"7 (a b) c)) Z 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99 5 6 0 0 0 0 0 0 0 0 0 0 \
                    0 0 0 -1 0";
        let o = StatFields::parse(odd).expect("parses");
        assert_eq!(
            (o.state, o.ppid, o.start_time, o.vsize, o.rss_pages),
            (b'Z', 1, 99, 5, 6)
        );
        assert!(o.is_thread());
        assert_eq!(name(odd), Some(&b"a b) c)"[..]));
        assert_eq!(StatFields::parse(b"1 (init) S 0"), None);
        assert_eq!(StatFields::parse(b"no parenthesis"), None);
    }

    #[test]
    fn this_process() {
        let text = std::fs::read("/proc/self/stat").expect("stat");
        let f = StatFields::parse(&text).expect("parses");
        let parsed =
            crate::tree::parse_stat(std::process::id() as i32, &String::from_utf8_lossy(&text))
                .expect("tree parses it too");
        assert_eq!(f.start_time, parsed.start_time);
        assert_eq!(f.ppid, parsed.ppid);
        assert!(f.vsize > 0 && f.rss_pages > 0);
        assert!(!f.is_thread(), "the test process's leader");
        // this test runs on a thread of its own: its stat says so
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        if tid != std::process::id() as i32 {
            let text = std::fs::read(format!("/proc/{tid}/stat")).expect("thread stat");
            assert!(StatFields::parse(&text).expect("parses").is_thread());
        }
    }
}
