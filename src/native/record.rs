//! Records of the perf ring buffer, parsed from their bytes (pure: unit-tested on made-up
//! records).

use super::perf::{REGS_MASK, SAMPLE_TYPE};

/// One sampled page fault: who, when, where, and what the user stack looked like.
#[derive(Debug, PartialEq, Eq)]
pub struct FaultSample<'a> {
    pub pid: u32,
    pub tid: u32,
    /// CLOCK_MONOTONIC, ns.
    pub time_ns: u64,
    /// The faulting data address.
    pub addr: u64,
    /// How many faults this sample stands for.
    pub period: u64,
    /// User registers when the fault happened (or when the thread entered the kernel, for a
    /// fault the kernel took on its behalf); `None` for a kernel thread.
    pub regs: Option<UserRegs>,
    /// The copy of the user stack from `regs.sp` up.
    pub stack: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserRegs {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
}

/// A task that appeared or went away (FORK/EXIT records).
#[derive(Debug, PartialEq, Eq)]
pub struct TaskRecord {
    pub pid: u32,
    pub tid: u32,
}

/// A new executable mapping (MMAP/MMAP2 records): a library loaded later, JIT code in a file.
#[derive(Debug, PartialEq, Eq)]
pub struct MmapRecord<'a> {
    pub pid: u32,
    pub start: u64,
    pub len: u64,
    pub pgoff: u64,
    pub path: &'a [u8],
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn u32(&mut self) -> Option<u32> {
        let b = self.bytes.get(self.at..self.at + 4)?;
        self.at += 4;
        Some(u32::from_ne_bytes(b.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.bytes.get(self.at..self.at + 8)?;
        self.at += 8;
        Some(u64::from_ne_bytes(b.try_into().ok()?))
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let b = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(b)
    }
    fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.at..).unwrap_or_default()
    }
}

/// A PERF_RECORD_SAMPLE body written with `SAMPLE_TYPE` and `REGS_MASK`.
pub fn parse_sample(body: &[u8]) -> Option<FaultSample<'_>> {
    const _: () = assert!(SAMPLE_TYPE == 0b11_0001_0000_1110);
    let mut c = Cursor { bytes: body, at: 0 };
    let pid = c.u32()?;
    let tid = c.u32()?;
    let time_ns = c.u64()?;
    let addr = c.u64()?;
    let period = c.u64()?;
    let abi = c.u64()?;
    let regs = if abi == 0 {
        None
    } else {
        let mut values = [0u64; 4];
        let n = REGS_MASK.count_ones() as usize;
        for v in values.iter_mut().take(n) {
            *v = c.u64()?;
        }
        Some(regs_from(&values))
    };
    let size = c.u64()? as usize;
    let stack = if size == 0 {
        &[][..]
    } else {
        let data = c.take(size)?;
        let dyn_size = c.u64()? as usize;
        &data[..dyn_size.min(size)]
    };
    Some(FaultSample {
        pid,
        tid,
        time_ns,
        addr,
        period,
        regs,
        stack,
    })
}

#[cfg(target_arch = "x86_64")]
fn regs_from(v: &[u64; 4]) -> UserRegs {
    // In the order of the mask bits: BP, SP, IP.
    UserRegs {
        bp: v[0],
        sp: v[1],
        ip: v[2],
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn regs_from(v: &[u64; 4]) -> UserRegs {
    // aarch64: x29 (frame pointer), lr, sp, pc.
    UserRegs {
        bp: v[0],
        sp: v[2],
        ip: v[3],
    }
}

/// PERF_RECORD_FORK / PERF_RECORD_EXIT: pid, ppid, tid, ptid, time.
pub fn parse_task(body: &[u8]) -> Option<TaskRecord> {
    let mut c = Cursor { bytes: body, at: 0 };
    let pid = c.u32()?;
    let _ppid = c.u32()?;
    let tid = c.u32()?;
    Some(TaskRecord { pid, tid })
}

/// PERF_RECORD_MMAP2 (`two`) or PERF_RECORD_MMAP.
pub fn parse_mmap(body: &[u8], two: bool) -> Option<MmapRecord<'_>> {
    let mut c = Cursor { bytes: body, at: 0 };
    let pid = c.u32()?;
    let _tid = c.u32()?;
    let start = c.u64()?;
    let len = c.u64()?;
    let pgoff = c.u64()?;
    if two {
        // maj, min, ino, ino_generation (or a build id of the same size), prot, flags.
        c.take(4 + 4 + 8 + 8 + 4 + 4)?;
    }
    let rest = c.rest();
    let end = memchr::memchr(0, rest).unwrap_or(rest.len());
    Some(MmapRecord {
        pid,
        start,
        len,
        pgoff,
        path: &rest[..end],
    })
}

/// PERF_RECORD_LOST: id, lost.
pub fn parse_lost(body: &[u8]) -> Option<u64> {
    let mut c = Cursor { bytes: body, at: 0 };
    let _id = c.u64()?;
    c.u64()
}

/// PERF_RECORD_LOST_SAMPLES: lost.
pub fn parse_lost_samples(body: &[u8]) -> Option<u64> {
    Cursor { bytes: body, at: 0 }.u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push32(v: &mut Vec<u8>, x: u32) {
        v.extend_from_slice(&x.to_ne_bytes());
    }
    fn push64(v: &mut Vec<u8>, x: u64) {
        v.extend_from_slice(&x.to_ne_bytes());
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn a_sample_with_regs_and_a_stack() {
        let mut b = Vec::new();
        push32(&mut b, 42);
        push32(&mut b, 43);
        push64(&mut b, 1_000);
        push64(&mut b, 0x7f00_0000_1000);
        push64(&mut b, 1);
        push64(&mut b, 2); // abi 64
        push64(&mut b, 0x10); // bp
        push64(&mut b, 0x20); // sp
        push64(&mut b, 0x30); // ip
        push64(&mut b, 16); // size
        b.extend_from_slice(&[7u8; 16]);
        push64(&mut b, 8); // dyn_size: only 8 bytes were copied
        let s = parse_sample(&b).expect("parses");
        assert_eq!((s.pid, s.tid, s.time_ns, s.period), (42, 43, 1_000, 1));
        assert_eq!(s.addr, 0x7f00_0000_1000);
        assert_eq!(
            s.regs,
            Some(UserRegs {
                ip: 0x30,
                sp: 0x20,
                bp: 0x10
            })
        );
        assert_eq!(s.stack, &[7u8; 8]);
    }

    #[test]
    fn a_kernel_thread_sample_has_no_regs_and_no_stack() {
        let mut b = Vec::new();
        push32(&mut b, 1);
        push32(&mut b, 1);
        push64(&mut b, 5);
        push64(&mut b, 0);
        push64(&mut b, 3);
        push64(&mut b, 0); // abi none
        push64(&mut b, 0); // size 0: no data, no dyn_size
        let s = parse_sample(&b).expect("parses");
        assert_eq!(s.regs, None);
        assert!(s.stack.is_empty());
        assert_eq!(s.period, 3);
    }

    #[test]
    fn truncated_records_are_refused() {
        assert_eq!(parse_sample(&[0u8; 20]), None);
        assert_eq!(parse_task(&[0u8; 4]), None);
        assert_eq!(parse_lost(&[0u8; 12]), None);
    }

    #[test]
    fn an_mmap2_record_names_its_file() {
        let mut b = Vec::new();
        push32(&mut b, 9);
        push32(&mut b, 9);
        push64(&mut b, 0x1000);
        push64(&mut b, 0x2000);
        push64(&mut b, 0x3000);
        b.extend_from_slice(&[0u8; 32]);
        b.extend_from_slice(b"/usr/lib/libz.so.1\0\0\0\0\0\0");
        let m = parse_mmap(&b, true).expect("parses");
        assert_eq!((m.start, m.len, m.pgoff), (0x1000, 0x2000, 0x3000));
        assert_eq!(m.path, b"/usr/lib/libz.so.1");
    }
}
