//! Reads one process's memory from /proc with the files kept open and re-read from offset 0.
//!
//! An open /proc/PID file is bound to the process it was opened for: once that process is
//! gone, reads fail with ESRCH even if the PID number is reused. So a reader can never
//! report another process.

use super::status::{self, MemStatus, StatusError};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The first size of the read buffer: a status text is ~1.5 KiB, smaps_rollup ~1 KiB. A
/// longer file grows the buffer once (see `read_whole`), so later reads are single again.
const BUF_START: usize = 4 * 1024;
/// The buffer stops growing here; a longer text is parsed as far as it fits (the memory lines
/// come early).
const BUF_MAX: usize = 1024 * 1024;

/// Why a read gave no sample.
#[derive(Debug)]
pub enum ReadError {
    /// The process is gone (ESRCH) or a zombie.
    Exited,
    /// A kernel thread or otherwise no address space.
    NoMemoryMap,
    Malformed {
        file: &'static str,
        line: usize,
    },
    Io(io::Error),
}

pub struct ProcReader {
    status: File,
    smaps_rollup: Option<File>,
    buf: Vec<u8>,
}

impl ProcReader {
    /// Opens `<proc_root>/<pid>/status` (and `smaps_rollup` when `with_smaps`).
    pub fn open(proc_root: &Path, pid: i32, with_smaps: bool) -> io::Result<ProcReader> {
        let dir = proc_root.join(pid.to_string());
        let status = File::open(dir.join("status"))?;
        let smaps_rollup = if with_smaps {
            Some(File::open(dir.join("smaps_rollup"))?)
        } else {
            None
        };
        Ok(ProcReader {
            status,
            smaps_rollup,
            buf: vec![0; BUF_START],
        })
    }

    /// Reads and parses the status file: one pread, no allocation.
    pub fn read_status(&mut self) -> Result<MemStatus, ReadError> {
        let len = read_whole(&self.status, &mut self.buf)?;
        status::parse(&self.buf[..len]).map_err(|e| match e {
            StatusError::Zombie => ReadError::Exited,
            StatusError::NoMemoryMap => ReadError::NoMemoryMap,
            StatusError::Malformed { line } => ReadError::Malformed {
                file: "status",
                line,
            },
        })
    }

    /// The status text as read now, unparsed: one pread (the benchmark times it apart).
    pub fn read_status_text(&mut self) -> Result<&[u8], ReadError> {
        let len = read_whole(&self.status, &mut self.buf)?;
        Ok(&self.buf[..len])
    }

    /// Which signals the process has handlers for (the `SigCgt` mask of its status).
    pub fn read_caught_signals(&mut self) -> Result<u64, ReadError> {
        let len = read_whole(&self.status, &mut self.buf)?;
        status::parse_sig_caught(&self.buf[..len]).ok_or(ReadError::Malformed {
            file: "status",
            line: 0,
        })
    }

    /// Reads PSS and USS (Private_Clean + Private_Dirty) from smaps_rollup, if opened.
    /// Costs a walk of the target's page tables: call it at its own, slower interval.
    pub fn read_smaps(&mut self) -> Result<Option<(u64, u64)>, ReadError> {
        let Some(file) = &self.smaps_rollup else {
            return Ok(None);
        };
        let len = read_whole(file, &mut self.buf)?;
        parse_smaps_rollup(&self.buf[..len])
            .map(Some)
            .map_err(|line| ReadError::Malformed {
                file: "smaps_rollup",
                line,
            })
    }
}

/// A file read by offset: `File`, or a fake in tests.
trait ReadAt {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
}

/// Reads a whole /proc file from offset 0 into `buf`, returning its length.
///
/// Each pread of a /proc seq_file regenerates the whole text, so reading until a read returns
/// 0 would pay twice. The files read here (status, smaps_rollup) are single-record seq_files:
/// one read hands back the whole text, or as much as fits. So a read that returns less than
/// the buffer is the whole file; one that fills it may be cut short, and then the buffer grows
/// (kept for later reads, so this happens once) and the file is read again, up to `BUF_MAX`.
fn read_whole(file: &impl ReadAt, buf: &mut Vec<u8>) -> Result<usize, ReadError> {
    loop {
        let n = match file.read_at(buf, 0) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Err(ReadError::Exited),
            Err(e) => return Err(ReadError::Io(e)),
        };
        if n < buf.len() || buf.len() >= BUF_MAX {
            return Ok(n);
        }
        let longer = (buf.len() * 2).min(BUF_MAX);
        buf.resize(longer, 0);
    }
}

/// Returns (PSS, USS) in bytes, or the 1-based number of a malformed line.
pub fn parse_smaps_rollup(text: &[u8]) -> Result<(u64, u64), usize> {
    let (mut pss, mut private) = (None, 0u64);
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let key_end = line.iter().position(|&b| b == b':');
        let Some(colon) = key_end else { continue };
        let (key, rest) = (&line[..colon], &line[colon + 1..]);
        let want = matches!(key, b"Pss" | b"Private_Clean" | b"Private_Dirty");
        if !want {
            continue;
        }
        let kib = rest
            .split(|b| b.is_ascii_whitespace())
            .find(|w| !w.is_empty())
            .and_then(|w| std::str::from_utf8(w).ok()?.parse::<u64>().ok())
            .ok_or(i + 1)?;
        match key {
            b"Pss" => pss = Some(kib * 1024),
            _ => private += kib * 1024,
        }
    }
    pss.map(|p| (p, private)).ok_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    /// A file whose text is `text`, counting reads; `errors` are returned first, in order.
    struct Fake {
        text: Vec<u8>,
        reads: Cell<usize>,
        errors: RefCell<Vec<io::Error>>,
    }

    impl Fake {
        fn new(len: usize) -> Fake {
            Fake {
                text: (0..len).map(|i| b'a' + (i % 26) as u8).collect(),
                reads: Cell::new(0),
                errors: RefCell::new(Vec::new()),
            }
        }
    }

    impl ReadAt for Fake {
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
            self.reads.set(self.reads.get() + 1);
            if let Some(e) = self.errors.borrow_mut().pop() {
                return Err(e);
            }
            let start = (offset as usize).min(self.text.len());
            let n = buf.len().min(self.text.len() - start);
            buf[..n].copy_from_slice(&self.text[start..start + n]);
            Ok(n)
        }
    }

    #[test]
    fn a_short_read_is_the_whole_file_and_costs_one_read() {
        let file = Fake::new(1500);
        let mut buf = vec![0; 4096];
        for round in 1..=3 {
            assert_eq!(read_whole(&file, &mut buf).expect("reads"), 1500);
            assert_eq!(
                file.reads.get(),
                round,
                "one pread per call, no read to see EOF"
            );
        }
        assert_eq!(&buf[..1500], &file.text[..]);
        assert_eq!(buf.len(), 4096);
    }

    #[test]
    fn a_full_buffer_grows_once_and_rereads() {
        // exactly the buffer's length: cannot know it is complete, so it is read again
        let file = Fake::new(4096);
        let mut buf = vec![0; 4096];
        assert_eq!(read_whole(&file, &mut buf).expect("reads"), 4096);
        assert_eq!((file.reads.get(), buf.len()), (2, 8192));
        // longer than twice the buffer: doubled until it fits, the text complete
        let file = Fake::new(10_000);
        let mut buf = vec![0; 4096];
        assert_eq!(read_whole(&file, &mut buf).expect("reads"), 10_000);
        assert_eq!((file.reads.get(), buf.len()), (3, 16384));
        assert_eq!(&buf[..10_000], &file.text[..]);
        // the grown buffer stays: the next read is single again
        assert_eq!(read_whole(&file, &mut buf).expect("reads"), 10_000);
        assert_eq!(file.reads.get(), 4);
    }

    #[test]
    fn growth_stops_at_the_cap_and_keeps_what_fits() {
        let file = Fake::new(BUF_MAX + 100);
        let mut buf = vec![0; BUF_MAX / 2];
        assert_eq!(read_whole(&file, &mut buf).expect("reads"), BUF_MAX);
        assert_eq!((file.reads.get(), buf.len()), (2, BUF_MAX));
    }

    #[test]
    fn one_read_of_real_status_and_smaps_rollup_is_the_whole_text() {
        // the assumption behind read_whole, checked on this kernel: a buffer too small grows,
        // and the text read equals a read to EOF (values may change; lines do not)
        for name in ["status", "smaps_rollup"] {
            let path = format!("/proc/self/{name}");
            let file = File::open(&path).expect("open");
            let mut buf = vec![0; 64];
            let n = read_whole(&file, &mut buf).expect("reads");
            let full = std::fs::read(&path).expect("read to EOF");
            let lines = |t: &[u8]| t.iter().filter(|&&b| b == b'\n').count();
            assert!(n < buf.len() && buf[..n].ends_with(b"\n"), "{name}");
            assert_eq!(lines(&buf[..n]), lines(&full), "{name}");
            let keys = |t: &[u8]| -> Vec<Vec<u8>> {
                t.split(|&b| b == b'\n')
                    .map(|l| l.split(|&b| b == b':').next().unwrap_or(l).to_vec())
                    .collect()
            };
            assert_eq!(keys(&buf[..n]), keys(&full), "{name}");
        }
    }

    #[test]
    fn interrupted_reads_are_retried_and_esrch_means_exited() {
        let file = Fake::new(100);
        file.errors
            .borrow_mut()
            .push(io::Error::from(io::ErrorKind::Interrupted));
        let mut buf = vec![0; 4096];
        assert_eq!(read_whole(&file, &mut buf).expect("reads"), 100);
        assert_eq!(file.reads.get(), 2);
        file.errors
            .borrow_mut()
            .push(io::Error::from_raw_os_error(libc::ESRCH));
        assert!(matches!(
            read_whole(&file, &mut buf),
            Err(ReadError::Exited)
        ));
        file.errors
            .borrow_mut()
            .push(io::Error::from_raw_os_error(libc::EACCES));
        assert!(matches!(read_whole(&file, &mut buf), Err(ReadError::Io(_))));
    }

    const ROLLUP: &[u8] = include_bytes!("../../tests/fixtures/proc/smaps_rollup-cat.txt");

    #[test]
    fn smaps_rollup_gives_pss_and_uss() {
        let (pss, uss) = parse_smaps_rollup(ROLLUP).expect("parses");
        assert!(pss > 0 && uss > 0 && uss <= pss + 4096 * 1024);
        let text = b"Rss: 10 kB\nPss:  7 kB\nPrivate_Clean: 1 kB\nPrivate_Dirty: 2 kB\n";
        assert_eq!(parse_smaps_rollup(text), Ok((7 * 1024, 3 * 1024)));
        assert_eq!(parse_smaps_rollup(b"Pss: x kB\n"), Err(1));
        assert_eq!(parse_smaps_rollup(b"Rss: 1 kB\n"), Err(0));
    }

    #[test]
    fn reads_this_process_and_rereads_from_zero() {
        let root = Path::new("/proc");
        let mut r = ProcReader::open(root, std::process::id() as i32, true).expect("open self");
        let a = r.read_status().expect("first read");
        let b = r.read_status().expect("second read");
        assert!(a.rss > 0 && b.rss > 0 && a.vsz > 0);
        assert!(r.read_smaps().expect("smaps").is_some());
    }

    #[test]
    fn read_after_exit_is_exited_even_if_the_pid_is_reused() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep");
        let mut r = ProcReader::open(Path::new("/proc"), child.id() as i32, false).expect("open");
        assert!(r.read_status().is_ok());
        child.kill().expect("kill");
        child.wait().expect("reap");
        assert!(matches!(r.read_status(), Err(ReadError::Exited)));
    }
}
