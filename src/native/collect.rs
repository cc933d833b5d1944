//! What the reader thread keeps of each sample: the unwound stack (interned), and the page
//! it faulted in, with when and how many faults the sample stands for.

use super::modules::{LoadedModule, Mapping};
use super::perf;
use super::record::{self, FaultSample};
use framehop::Unwinder;
use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

/// Frames kept per stack (the rest of a deeper stack is cut, counted as truncated).
pub const MAX_FRAMES: usize = 128;
const PAGE_SHIFT: u32 = 12;

/// A module as the symbolizer sees it at the end.
pub struct ModuleMeta {
    pub name: String,
    pub path: PathBuf,
    pub avma: std::ops::Range<u64>,
    pub bias: u64,
    pub loaded: Arc<LoadedModule>,
}

/// The latest sampled fault of one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFault {
    pub page: u64,
    pub time_ns: u64,
    pub stack: u32,
    pub period: u32,
}

#[derive(Default, Clone, Copy, Debug)]
pub struct Counts {
    /// Samples read (each stands for `period` faults).
    pub samples: u64,
    /// Faults the samples stand for (sum of periods).
    pub faults_sampled: u64,
    /// Samples the kernel could not write (buffer full) or throttled.
    pub lost: u64,
    pub throttled: u64,
    /// Samples of other processes (a thread that became a process) or without user state.
    pub ignored: u64,
    /// Stacks cut at `MAX_FRAMES` or at the end of the copied stack.
    pub truncated: u64,
}

pub struct Collector {
    pid: u32,
    unwinder: UnwinderX86_64<super::modules::FileBytes>,
    cache: CacheX86_64,
    pub modules: Vec<ModuleMeta>,
    known_files: HashSet<(u64, u64)>,
    stacks: HashMap<Box<[u64]>, u32>,
    pub stack_list: Vec<Box<[u64]>>,
    pub pages: Vec<PageFault>,
    compacted_len: usize,
    /// Pages kept: those whose hash has its low `thinning` bits clear (see `compact`).
    thinning: u32,
    pub counts: Counts,
    /// Threads seen starting (FORK records): they carry an inherited event already.
    pub forked: HashSet<u32>,
    pub exited: Vec<u32>,
    frames: Vec<u64>,
}

impl Collector {
    pub fn new(pid: i32) -> Collector {
        Collector {
            pid: pid as u32,
            unwinder: UnwinderX86_64::new(),
            cache: CacheX86_64::new(),
            modules: Vec::new(),
            known_files: HashSet::new(),
            stacks: HashMap::new(),
            stack_list: Vec::new(),
            pages: Vec::new(),
            compacted_len: 0,
            thinning: 0,
            counts: Counts::default(),
            forked: HashSet::new(),
            exited: Vec::new(),
            frames: Vec::with_capacity(MAX_FRAMES),
        }
    }

    /// Adds the executable mappings of the target that are not known yet.
    pub fn add_mappings(&mut self, maps: &[Mapping]) {
        for m in maps.iter().filter(|m| m.executable) {
            self.add_mapping(m);
        }
    }

    fn add_mapping(&mut self, m: &Mapping) {
        if !self.known_files.insert((m.start, m.end)) {
            return;
        }
        let Some((loaded, unwind)) = LoadedModule::load(self.pid as i32, m) else {
            return;
        };
        let module = framehop::Module::new(
            loaded.name.clone(),
            loaded.avma.clone(),
            loaded.bias,
            unwind,
        );
        self.unwinder.add_module(module);
        self.modules.push(ModuleMeta {
            name: loaded.name.clone(),
            path: loaded.path.clone(),
            avma: loaded.avma.clone(),
            bias: loaded.bias,
            loaded: Arc::new(loaded),
        });
    }

    /// One record from a ring buffer.
    pub fn record(&mut self, kind: u32, body: &[u8]) {
        match kind {
            perf::RECORD_SAMPLE => {
                if let Some(s) = record::parse_sample(body) {
                    self.sample(&s);
                }
            }
            perf::RECORD_MMAP2 | perf::RECORD_MMAP => {
                if let Some(m) = record::parse_mmap(body, kind == perf::RECORD_MMAP2)
                    && m.pid == self.pid
                    && m.path.starts_with(b"/")
                {
                    let mapping = Mapping {
                        start: m.start,
                        end: m.start + m.len,
                        executable: true,
                        offset: m.pgoff,
                        path: String::from_utf8_lossy(m.path).into_owned(),
                    };
                    self.add_mapping(&mapping);
                }
            }
            perf::RECORD_FORK => {
                if let Some(t) = record::parse_task(body)
                    && t.pid == self.pid
                {
                    self.forked.insert(t.tid);
                }
            }
            perf::RECORD_EXIT => {
                if let Some(t) = record::parse_task(body)
                    && t.pid == self.pid
                {
                    self.exited.push(t.tid);
                }
            }
            perf::RECORD_LOST => self.counts.lost += record::parse_lost(body).unwrap_or(0),
            perf::RECORD_LOST_SAMPLES => {
                self.counts.lost += record::parse_lost_samples(body).unwrap_or(0);
            }
            perf::RECORD_THROTTLE => self.counts.throttled += 1,
            _ => {}
        }
    }

    fn sample(&mut self, s: &FaultSample<'_>) {
        let Some(regs) = s.regs.filter(|_| s.pid == self.pid) else {
            self.counts.ignored += 1;
            return;
        };
        self.counts.samples += 1;
        self.counts.faults_sampled += s.period;
        self.frames.clear();
        let stack = s.stack;
        let sp = regs.sp;
        let mut read_stack = |addr: u64| -> Result<u64, ()> {
            let off = addr.checked_sub(sp).ok_or(())? as usize;
            let b = stack.get(off..off + 8).ok_or(())?;
            Ok(u64::from_ne_bytes(b.try_into().map_err(|_| ())?))
        };
        let mut it = self.unwinder.iter_frames(
            regs.ip,
            UnwindRegsX86_64::new(regs.ip, regs.sp, regs.bp),
            &mut self.cache,
            &mut read_stack,
        );
        let mut complete = false;
        loop {
            match it.next() {
                Ok(Some(frame)) => {
                    if self.frames.len() == MAX_FRAMES {
                        break;
                    }
                    self.frames.push(frame.address_for_lookup());
                }
                Ok(None) => {
                    complete = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if !complete {
            self.counts.truncated += 1;
        }
        let id = match self.stacks.get(self.frames.as_slice()) {
            Some(&id) => id,
            None => {
                let id = self.stack_list.len() as u32;
                let frames: Box<[u64]> = self.frames.as_slice().into();
                self.stack_list.push(frames.clone());
                self.stacks.insert(frames, id);
                id
            }
        };
        let page = s.addr >> PAGE_SHIFT;
        if !kept_at(page, self.thinning) {
            return;
        }
        self.pages.push(PageFault {
            page,
            time_ns: s.time_ns,
            stack: id,
            period: (s.period << self.thinning).min(u64::from(u32::MAX)) as u32,
        });
    }

    /// Keeps one fault per page (the latest: the one that made the page resident now), and
    /// with `pagemap`, only pages the target still holds (resident or swapped): memory given
    /// back to the system (munmap, madvise, a trimmed heap) no longer counts. Done when the
    /// list has doubled since last time, and at the end.
    pub fn compact(&mut self, pagemap: Option<&std::fs::File>, force: bool) {
        if !force && self.pages.len() < (2 * self.compacted_len).max(1 << 16) {
            return;
        }
        self.pages
            .sort_unstable_by(|a, b| a.page.cmp(&b.page).then(b.time_ns.cmp(&a.time_ns)));
        self.pages.dedup_by_key(|p| p.page);
        if let Some(file) = pagemap {
            let held = held_pages(file, &self.pages);
            let mut i = 0;
            self.pages.retain(|_| {
                i += 1;
                held.get(i - 1).copied().unwrap_or(true)
            });
        }
        // Memory stays bounded on a process that grows for hours: past `MAX_PAGES` pages,
        // keep one page in two (by a hash of its number, the same test for later samples),
        // each kept page weighing twice as much.
        while self.pages.len() > MAX_PAGES && self.thinning < 16 {
            self.thinning += 1;
            let bits = self.thinning;
            self.pages.retain(|p| kept_at(p.page, bits));
            for p in &mut self.pages {
                p.period = p.period.saturating_mul(2);
            }
        }
        self.compacted_len = self.pages.len();
    }
}

/// Pages kept in memory: 1M (24 MiB), 4 GiB of growth when every fault is sampled.
const MAX_PAGES: usize = 1 << 20;

/// Whether page number `page` is kept when one page in `2^bits` is.
fn kept_at(page: u64, bits: u32) -> bool {
    let h = page.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    h & ((1u64 << bits) - 1) == 0
}

/// For each page (sorted), whether `/proc/PID/pagemap` says it is present or swapped. Reads
/// runs of neighbouring pages at once. A page that cannot be read counts as held.
pub fn held_pages(pagemap: &std::fs::File, pages: &[PageFault]) -> Vec<bool> {
    const PRESENT: u64 = 1 << 63;
    const SWAPPED: u64 = 1 << 62;
    const RUN: u64 = 512;
    let mut held = Vec::with_capacity(pages.len());
    let mut buf = vec![0u8; (RUN * 8) as usize];
    let mut i = 0;
    while i < pages.len() {
        let first = pages[i].page;
        let mut j = i + 1;
        while j < pages.len() && pages[j].page >= first && pages[j].page < first + RUN {
            j += 1;
        }
        let span = (pages[j - 1].page - first + 1) as usize;
        let got = pagemap
            .read_at(&mut buf[..span * 8], first * 8)
            .unwrap_or(0);
        for p in &pages[i..j] {
            let at = ((p.page - first) * 8) as usize;
            let entry = buf
                .get(at..at + 8)
                .filter(|_| at + 8 <= got)
                .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or_default()));
            held.push(entry.is_none_or(|e| e & (PRESENT | SWAPPED) != 0));
        }
        i = j;
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_about_half_a_level() {
        let pages = 0..100_000u64;
        let kept = pages.clone().filter(|&p| kept_at(p, 1)).count();
        assert!((45_000..55_000).contains(&kept), "{kept}");
        let kept2 = pages.clone().filter(|&p| kept_at(p, 2)).count();
        assert!((22_000..28_000).contains(&kept2), "{kept2}");
        assert!(pages.filter(|&p| kept_at(p, 2)).all(|p| kept_at(p, 1)));
        assert!((0..10u64).all(|p| kept_at(p, 0)));
    }

    #[test]
    fn pagemap_of_this_process() {
        // This test's own stack page is present; the page at 4 KiB is never mapped.
        let here = 0u64;
        let page = (&here as *const u64 as u64) >> PAGE_SHIFT;
        let file = std::fs::File::open("/proc/self/pagemap").expect("pagemap");
        let faults = [
            PageFault {
                page,
                time_ns: 0,
                stack: 0,
                period: 1,
            },
            PageFault {
                page: (1u64 << 46) >> PAGE_SHIFT,
                time_ns: 0,
                stack: 0,
                period: 1,
            },
        ];
        assert_eq!(held_pages(&file, &faults), [true, false]);
    }
}
