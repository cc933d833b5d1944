//! The kernel side: a `perf_event_open` software event for page faults on every thread of the
//! target, one ring buffer per CPU, and the records read from it.
//!
//! Each thread gets one event per CPU with `inherit` + `inherit_thread`: threads it starts later
//! carry the event on (and write into the same per-CPU buffer), processes it forks do not.
//! A per-task event with `inherit` cannot be mapped on its own (the kernel refuses, all children
//! would write into one buffer from every CPU), so the events of a CPU share that CPU's buffer
//! through `PERF_EVENT_IOC_SET_OUTPUT`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering, fence};

const PERF_TYPE_SOFTWARE: u32 = 1;
const PERF_COUNT_SW_PAGE_FAULTS: u64 = 2;

pub const SAMPLE_TID: u64 = 1 << 1;
pub const SAMPLE_TIME: u64 = 1 << 2;
pub const SAMPLE_ADDR: u64 = 1 << 3;
pub const SAMPLE_PERIOD: u64 = 1 << 8;
pub const SAMPLE_REGS_USER: u64 = 1 << 12;
pub const SAMPLE_STACK_USER: u64 = 1 << 13;
/// What every sample carries, in the kernel's order: pid/tid, time, the faulting address,
/// the period, the user registers, a copy of the user stack.
pub const SAMPLE_TYPE: u64 =
    SAMPLE_TID | SAMPLE_TIME | SAMPLE_ADDR | SAMPLE_PERIOD | SAMPLE_REGS_USER | SAMPLE_STACK_USER;

/// x86-64 `perf_regs`: BP, SP, IP (in this order in a sample).
#[cfg(target_arch = "x86_64")]
pub const REGS_MASK: u64 = (1 << 6) | (1 << 7) | (1 << 8);
#[cfg(target_arch = "aarch64")]
pub const REGS_MASK: u64 = (1 << 29) | (1 << 30) | (1 << 31) | (1 << 32); // x29 (fp), lr, sp, pc

const FLAG_INHERIT: u64 = 1 << 1;
const FLAG_MMAP: u64 = 1 << 8;
const FLAG_TASK: u64 = 1 << 13;
const FLAG_WATERMARK: u64 = 1 << 14;
const FLAG_EXCLUDE_CALLCHAIN_KERNEL: u64 = 1 << 21;
const FLAG_MMAP2: u64 = 1 << 23;
const FLAG_USE_CLOCKID: u64 = 1 << 25;
const FLAG_INHERIT_THREAD: u64 = 1 << 35;

/// `struct perf_event_attr`, as of PERF_ATTR_SIZE_VER8 (136 bytes).
#[repr(C)]
#[derive(Default)]
struct Attr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_watermark: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved_2: u16,
    aux_sample_size: u32,
    aux_action: u32,
    sig_data: u64,
    config3: u64,
}

const _: () = assert!(std::mem::size_of::<Attr>() == 136);

const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
const IOC_DISABLE: libc::c_ulong = 0x2401;
const IOC_SET_OUTPUT: libc::c_ulong = 0x2405;

/// How the events sample.
#[derive(Clone, Copy, Debug)]
pub struct EventSpec {
    /// One fault in this many is sampled.
    pub period: u64,
    /// Bytes of user stack copied per sample (a multiple of 8).
    pub stack_bytes: u32,
}

/// Opens the page-fault event of thread `tid` on `cpu`.
pub fn open_event(
    tid: i32,
    cpu: i32,
    spec: EventSpec,
    with_side_records: bool,
) -> io::Result<OwnedFd> {
    // Enabled from the start: the buffer of its CPU is mapped right after.
    let mut flags = FLAG_INHERIT
        | FLAG_INHERIT_THREAD
        | FLAG_EXCLUDE_CALLCHAIN_KERNEL
        | FLAG_USE_CLOCKID
        | FLAG_WATERMARK;
    if with_side_records {
        // New threads (FORK/EXIT) and new executable mappings (dlopen, JIT code files).
        flags |= FLAG_TASK | FLAG_MMAP | FLAG_MMAP2;
    }
    let attr = Attr {
        kind: PERF_TYPE_SOFTWARE,
        size: std::mem::size_of::<Attr>() as u32,
        config: PERF_COUNT_SW_PAGE_FAULTS,
        sample_period: spec.period.max(1),
        sample_type: SAMPLE_TYPE,
        flags,
        // 0 with the watermark flag: the reader is woken when half the buffer is full.
        wakeup_watermark: 0,
        sample_regs_user: REGS_MASK,
        sample_stack_user: spec.stack_bytes & !7,
        clockid: libc::CLOCK_MONOTONIC,
        ..Attr::default()
    };
    open_attr(&attr, tid, cpu)
}

fn open_attr(attr: &Attr, tid: i32, cpu: i32) -> io::Result<OwnedFd> {
    // SAFETY: `attr` is a valid perf_event_attr of the size it states; the call only reads it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr as *const Attr,
            tid,
            cpu,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends the events of `fd` into the buffer mapped for `into` (same CPU).
pub fn set_output(fd: &OwnedFd, into: &OwnedFd) -> io::Result<()> {
    ioctl(fd, IOC_SET_OUTPUT, into.as_raw_fd() as libc::c_ulong)
}

pub fn disable(fd: &OwnedFd) -> io::Result<()> {
    ioctl(fd, IOC_DISABLE, 0)
}

fn ioctl(fd: &OwnedFd, request: libc::c_ulong, arg: libc::c_ulong) -> io::Result<()> {
    // SAFETY: a perf event descriptor and one of its documented requests with an integer arg.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The event's count of faults so far (all of them, sampled or not), summed over the threads
/// that inherited it.
pub fn read_count(fd: &OwnedFd) -> io::Result<u64> {
    let mut v = [0u8; 8];
    // SAFETY: reads 8 bytes into a buffer of 8 bytes.
    let n = unsafe { libc::read(fd.as_raw_fd(), v.as_mut_ptr().cast(), 8) };
    if n != 8 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from_ne_bytes(v))
}

/// The online CPUs, from /sys (a CPU may be offline: opening an event on it fails).
pub fn online_cpus() -> Vec<i32> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpu_list(s.trim()))
        .unwrap_or_else(|| {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n as i32).collect()
        })
}

/// `0-3,5,7-8` -> [0,1,2,3,5,7,8].
pub fn parse_cpu_list(s: &str) -> Option<Vec<i32>> {
    let mut cpus = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (i32, i32) = (a.parse().ok()?, b.parse().ok()?);
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// A mapping made for an event, before it is joined to the event's descriptor.
pub struct MappedRing {
    base: *mut u8,
    len: usize,
    data_size: u64,
}

impl MappedRing {
    pub fn owning(self, fd: OwnedFd) -> RingBuffer {
        let ring = RingBuffer {
            fd,
            base: self.base,
            len: self.len,
            data_size: self.data_size,
            scratch: Vec::new(),
        };
        std::mem::forget(self);
        ring
    }
}

impl Drop for MappedRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `RingBuffer::map`.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

/// One CPU's ring buffer: a metadata page, then `2^n` data pages.
pub struct RingBuffer {
    pub fd: OwnedFd,
    base: *mut u8,
    len: usize,
    data_size: u64,
    /// A record that wraps around the end of the buffer is copied here to be read whole.
    scratch: Vec<u8>,
}

// SAFETY: the mapping is owned by this value and only read through `&mut self`.
unsafe impl Send for RingBuffer {}

const PAGE: usize = 4096;
/// Offsets in `struct perf_event_mmap_page`.
const DATA_HEAD: usize = 1024;
const DATA_TAIL: usize = 1032;

impl RingBuffer {
    /// Maps `data_pages` (a power of two) pages for `fd`; `owning` then hands it the event.
    pub fn map(fd: &OwnedFd, data_pages: usize) -> io::Result<MappedRing> {
        let len = (data_pages + 1) * PAGE;
        // SAFETY: a shared mapping of a perf event descriptor, of the size the ABI asks for.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(MappedRing {
            base: base.cast(),
            len,
            data_size: (data_pages * PAGE) as u64,
        })
    }

    fn head(&self) -> &AtomicU64 {
        // SAFETY: data_head is an aligned u64 in the mapped metadata page, written by the kernel.
        unsafe { &*(self.base.add(DATA_HEAD) as *const AtomicU64) }
    }

    fn tail(&self) -> &AtomicU64 {
        // SAFETY: data_tail is an aligned u64 in the mapped metadata page, written by us.
        unsafe { &*(self.base.add(DATA_TAIL) as *const AtomicU64) }
    }

    /// Hands every record written so far to `each` (its header type, misc and body), then
    /// gives the space back to the kernel.
    pub fn drain(&mut self, mut each: impl FnMut(u32, u16, &[u8])) -> usize {
        let head = self.head().load(Ordering::Acquire);
        let mut tail = self.tail().load(Ordering::Relaxed);
        let mut n = 0;
        // SAFETY: the data pages follow the metadata page inside the mapping.
        let data = unsafe { std::slice::from_raw_parts(self.base.add(PAGE), self.len - PAGE) };
        while tail + 8 <= head {
            let at = (tail % self.data_size) as usize;
            let header = read_wrapped(data, at, 8, &mut self.scratch);
            let kind = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]);
            let misc = u16::from_ne_bytes([header[4], header[5]]);
            let size = u16::from_ne_bytes([header[6], header[7]]) as usize;
            if size < 8 || tail + size as u64 > head {
                break;
            }
            let record = read_wrapped(data, at, size, &mut self.scratch);
            each(kind, misc, &record[8..]);
            tail += size as u64;
            n += 1;
        }
        fence(Ordering::Release);
        self.tail().store(tail, Ordering::Release);
        n
    }
}

/// `len` bytes at `at` of the ring `data`, copied into `scratch` only when they wrap.
fn read_wrapped<'a>(data: &'a [u8], at: usize, len: usize, scratch: &'a mut Vec<u8>) -> &'a [u8] {
    if at + len <= data.len() {
        return &data[at..at + len];
    }
    scratch.clear();
    scratch.extend_from_slice(&data[at..]);
    scratch.extend_from_slice(&data[..len - (data.len() - at)]);
    scratch
}

impl Drop for RingBuffer {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

pub const RECORD_MMAP: u32 = 1;
pub const RECORD_LOST: u32 = 2;
pub const RECORD_EXIT: u32 = 4;
pub const RECORD_THROTTLE: u32 = 5;
pub const RECORD_FORK: u32 = 7;
pub const RECORD_SAMPLE: u32 = 9;
pub const RECORD_MMAP2: u32 = 10;
pub const RECORD_LOST_SAMPLES: u32 = 13;
