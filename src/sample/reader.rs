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

/// Enough for any status text seen in practice (~1.5 KiB); a longer one is parsed as far as
/// it fits, and the memory lines come early.
const BUF_LEN: usize = 16 * 1024;

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
    buf: Box<[u8]>,
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
            buf: vec![0; BUF_LEN].into_boxed_slice(),
        })
    }

    /// Reads and parses the status file. No allocation.
    pub fn read_status(&mut self) -> Result<MemStatus, ReadError> {
        let len = pread_all(&self.status, &mut self.buf)?;
        status::parse(&self.buf[..len]).map_err(|e| match e {
            StatusError::Zombie => ReadError::Exited,
            StatusError::NoMemoryMap => ReadError::NoMemoryMap,
            StatusError::Malformed { line } => ReadError::Malformed {
                file: "status",
                line,
            },
        })
    }

    /// Which signals the process has handlers for (the `SigCgt` mask of its status).
    pub fn read_caught_signals(&mut self) -> Result<u64, ReadError> {
        let len = pread_all(&self.status, &mut self.buf)?;
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
        let len = pread_all(file, &mut self.buf)?;
        parse_smaps_rollup(&self.buf[..len])
            .map(Some)
            .map_err(|line| ReadError::Malformed {
                file: "smaps_rollup",
                line,
            })
    }
}

fn pread_all(file: &File, buf: &mut [u8]) -> Result<usize, ReadError> {
    let mut len = 0;
    while len < buf.len() {
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Err(ReadError::Exited),
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    Ok(len)
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
