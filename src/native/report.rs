//! The stacks that faulted in the pages still held, summed over the analysed window and
//! named: the top stacks and functions for the end summary and summary.json, and the
//! folded stacks (`native.folded`) for flame graphs. `read_folded` reads that file back
//! for `memwatch report`.

use super::collect::{Collector, ModuleMeta};
use super::modules::{self, Symbols};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;

const PAGE: u64 = 4096;
/// Stacks and functions kept in summary.json and shown at the end.
pub const TOP: usize = 10;

/// What the native stacks explain, for the end summary and summary.json's `native`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NativeReport {
    /// Page faults counted on the target's threads during the run (sampled or not). This and
    /// the other counts are `null` when unknown: nothing was sampled, or the report was read
    /// back from native.folded.
    pub faults_seen: Option<u64>,
    /// Samples read, and the faults they stand for (each sample: `period` faults).
    pub samples: Option<u64>,
    pub faults_sampled: Option<u64>,
    /// One fault in `period` is sampled.
    pub period: Option<u64>,
    /// Samples the kernel dropped (buffer full) and times it throttled the event.
    pub lost: Option<u64>,
    pub throttled: Option<u64>,
    /// Stacks the unwinder could not follow to their root (cut at 128 frames or at the end
    /// of the copied stack, or code without unwind information or frame pointers).
    pub truncated: Option<u64>,
    /// Bytes of pages first touched inside the analysed window and still held at the end.
    pub attributed_bytes: Option<u64>,
    /// RSS growth over the same window, and the share of it the stacks explain.
    #[serde(serialize_with = "crate::units::serde_whole_bytes")]
    pub rss_growth_bytes: Option<f64>,
    pub share_of_rss_growth: Option<f64>,
    /// When the managed heap was judged: its growth (after GC) as a share of the RSS growth.
    pub managed_heap_share_of_rss_growth: Option<f64>,
    pub stacks: Vec<StackRow>,
    pub functions: Vec<FunctionRow>,
    /// Why native stacks are missing or partial, in words.
    pub problem: Option<String>,
    /// Where the folded stacks and the flame graph were written.
    pub folded: Option<String>,
    pub flamegraph: Option<String>,
    /// Every stack in folded form (`root;...;leaf bytes`), written to `native.folded`.
    #[serde(skip)]
    pub folded_text: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StackRow {
    /// Outermost first, the faulting function last.
    pub frames: Vec<String>,
    pub bytes: u64,
    /// Of the attributed bytes.
    pub share: f64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FunctionRow {
    pub name: String,
    /// Bytes of the stacks where it is the faulting frame / anywhere on the stack.
    pub self_bytes: u64,
    pub inclusive_bytes: u64,
    /// Inclusive bytes as a share of the attributed bytes.
    pub inclusive_share: f64,
}

pub struct Totals {
    pub faults_seen: Option<u64>,
    pub period: u64,
    pub rss_growth: Option<f64>,
    pub problem: Option<String>,
}

pub fn build(
    pid: i32,
    c: &Collector,
    inside: impl Fn(u64) -> bool,
    totals: Totals,
) -> NativeReport {
    let mut by_stack: HashMap<u32, u64> = HashMap::new();
    for p in c.pages.iter().filter(|p| inside(p.time_ns)) {
        *by_stack.entry(p.stack).or_default() += u64::from(p.period) * PAGE;
    }
    let mut names = Namer::new(pid, &c.modules);
    let mut folded: HashMap<String, u64> = HashMap::new();
    for (&stack, &bytes) in &by_stack {
        let frames = names.frames(&c.stack_list[stack as usize]);
        *folded.entry(frames.join(";")).or_default() += bytes;
    }
    let mut report = report_from_folded(folded.into_iter().collect(), totals.rss_growth);
    report.faults_seen = totals.faults_seen;
    report.samples = Some(c.counts.samples);
    report.faults_sampled = Some(c.counts.faults_sampled);
    report.period = Some(totals.period);
    report.lost = Some(c.counts.lost);
    report.throttled = Some(c.counts.throttled);
    report.truncated = Some(c.counts.truncated);
    report.problem = totals.problem;
    report
}

/// The report of folded stacks (`frames joined by ';'`, bytes): top stacks, functions,
/// shares. Shared by a live run and `memwatch report` reading `native.folded`.
pub fn report_from_folded(mut stacks: Vec<(String, u64)>, rss_growth: Option<f64>) -> NativeReport {
    stacks.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: u64 = stacks.iter().map(|s| s.1).sum();
    let share = |b: u64| {
        if total == 0 {
            0.0
        } else {
            b as f64 / total as f64
        }
    };
    // name -> (self bytes, inclusive bytes, deepest position from the root)
    let mut functions: HashMap<&str, (u64, u64, usize)> = HashMap::new();
    for (line, bytes) in &stacks {
        let frames: Vec<&str> = line.split(';').collect();
        if let Some(leaf) = frames.last() {
            functions.entry(leaf).or_default().0 += bytes;
        }
        let mut seen: Vec<&str> = Vec::with_capacity(frames.len());
        for (depth, f) in frames.into_iter().enumerate() {
            let e = functions.entry(f).or_default();
            e.2 = e.2.max(depth);
            if !seen.contains(&f) {
                seen.push(f); // recursion counts once
                e.1 += bytes;
            }
        }
    }
    let mut functions: Vec<(FunctionRow, usize)> = functions
        .into_iter()
        .map(|(name, (s, i, depth))| {
            let row = FunctionRow {
                name: name.to_string(),
                self_bytes: s,
                inclusive_bytes: i,
                inclusive_share: share(i),
            };
            (row, depth)
        })
        .collect();
    // The functions that explain most; among equals the innermost first (`main` and
    // `_start` explain everything a function they call explains, and say less).
    functions.sort_by(|(a, da), (b, db)| {
        b.inclusive_bytes
            .cmp(&a.inclusive_bytes)
            .then(db.cmp(da))
            .then(a.name.cmp(&b.name))
    });
    let functions: Vec<FunctionRow> = functions.into_iter().map(|(f, _)| f).collect();
    let mut folded_text = String::new();
    for (line, bytes) in &stacks {
        let _ = writeln!(folded_text, "{line} {bytes}");
    }
    let rss_growth_bytes = rss_growth.filter(|g| g.is_finite());
    NativeReport {
        attributed_bytes: Some(total),
        share_of_rss_growth: rss_growth_bytes
            .filter(|&g| g > 0.0)
            .map(|g| total as f64 / g),
        rss_growth_bytes,
        stacks: stacks
            .iter()
            .take(TOP)
            .map(|(line, bytes)| StackRow {
                frames: line.split(';').map(str::to_string).collect(),
                bytes: *bytes,
                share: share(*bytes),
            })
            .collect(),
        functions,
        folded_text,
        ..NativeReport::default()
    }
}

impl NativeReport {
    /// The inclusive share of the first function whose name contains `needle`.
    pub fn function_share(&self, needle: &str) -> Option<f64> {
        self.functions
            .iter()
            .find(|f| f.name.contains(needle))
            .map(|f| f.inclusive_share)
    }
}

/// Folded stacks as written to `native.folded` (`frame;frame;... bytes` lines), back into
/// (stack, bytes). Lines that do not end in a number are skipped.
pub fn read_folded(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let (stack, n) = line.trim_end().rsplit_once(' ')?;
            Some((stack.to_string(), n.parse().ok()?))
        })
        .collect()
}

/// Names addresses: a module's symbol (demangled), a JIT's perf map, or `module+0xoffset`.
struct Namer<'a> {
    pid: i32,
    modules: &'a [ModuleMeta],
    symbols: HashMap<usize, Symbols>,
    perf_map: Option<Vec<(u64, u64, String)>>,
    cache: HashMap<u64, String>,
}

impl<'a> Namer<'a> {
    fn new(pid: i32, modules: &'a [ModuleMeta]) -> Namer<'a> {
        Namer {
            pid,
            modules,
            symbols: HashMap::new(),
            perf_map: None,
            cache: HashMap::new(),
        }
    }

    /// The frames of a stack (innermost first, as unwound), outermost first.
    fn frames(&mut self, stack: &[u64]) -> Vec<String> {
        let mut out: Vec<String> = stack.iter().rev().map(|&a| self.name(a)).collect();
        if out.is_empty() {
            out.push("[no user stack]".into());
        }
        out
    }

    fn name(&mut self, addr: u64) -> String {
        if let Some(n) = self.cache.get(&addr) {
            return n.clone();
        }
        let n = self.lookup(addr).replace(';', ":");
        self.cache.insert(addr, n.clone());
        n
    }

    fn lookup(&mut self, addr: u64) -> String {
        let found = self
            .modules
            .iter()
            .enumerate()
            .rev()
            .find(|(_, m)| m.avma.contains(&addr));
        if let Some((i, m)) = found {
            let svma = addr.wrapping_sub(m.bias);
            let symbols = self.symbols.entry(i).or_insert_with(|| m.loaded.symbols());
            return match symbols.find(svma) {
                Some(name) => modules::demangle(name),
                None => format!("{}+{:#x}", m.name, svma),
            };
        }
        let pid = self.pid;
        let map = self.perf_map.get_or_insert_with(|| read_perf_map(pid));
        let i = map.partition_point(|e| e.0 <= addr);
        if let Some((start, size, name)) = i.checked_sub(1).map(|i| &map[i])
            && addr < start + size
        {
            return name.clone();
        }
        format!("[unknown {addr:#x}]")
    }
}

/// A JIT's perf map, when the runtime writes one (Node: `--perf-basic-prof`), read only if it
/// is a regular file of the target's own user, not through a link (anyone can create files
/// in /tmp, DESIGN.md §12), and at most 64 MiB.
fn read_perf_map(pid: i32) -> Vec<(u64, u64, String)> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    const MAX: u64 = 64 << 20;
    let Ok(owner) = std::fs::metadata(format!("/proc/{pid}")).map(|m| m.uid()) else {
        return Vec::new();
    };
    let path = format!("/proc/{pid}/root/tmp/perf-{pid}.map");
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    else {
        return Vec::new();
    };
    let Ok(meta) = file.metadata() else {
        return Vec::new();
    };
    if !meta.is_file() || meta.uid() != owner || meta.len() > MAX {
        return Vec::new();
    }
    let mut text = String::new();
    if file.take(MAX).read_to_string(&mut text).is_err() {
        return Vec::new();
    }
    modules::parse_perf_map(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_self_and_inclusive() {
        let stacks = vec![
            ("main;leak_session;malloc".to_string(), 900),
            ("main;churn;malloc".to_string(), 50),
            ("main;rec;rec;malloc".to_string(), 50),
        ];
        let r = report_from_folded(stacks, Some(2000.0));
        assert_eq!(r.attributed_bytes, Some(1000));
        assert_eq!(r.share_of_rss_growth, Some(0.5));
        assert_eq!(
            r.functions[0].name, "malloc",
            "innermost first among equals"
        );
        assert_eq!(r.functions[1].name, "main");
        assert_eq!(r.function_share("leak_session"), Some(0.9));
        let malloc = r
            .functions
            .iter()
            .find(|f| f.name == "malloc")
            .expect("malloc");
        assert_eq!((malloc.self_bytes, malloc.inclusive_bytes), (1000, 1000));
        let rec = r.functions.iter().find(|f| f.name == "rec").expect("rec");
        assert_eq!(
            rec.inclusive_bytes, 50,
            "a recursive function counts once a stack"
        );
        assert_eq!(r.stacks[0].frames, ["main", "leak_session", "malloc"]);
        assert_eq!(r.stacks[0].share, 0.9);
    }

    #[test]
    fn folded_text_reads_back() {
        let r = report_from_folded(vec![("a;b c".into(), 10), ("a;d".into(), 30)], None);
        assert_eq!(r.folded_text, "a;d 30\na;b c 10\n");
        let back = read_folded(&r.folded_text);
        assert_eq!(
            back,
            vec![("a;d".to_string(), 30), ("a;b c".to_string(), 10)]
        );
        assert_eq!(read_folded("garbage\n\na;b x\n"), vec![]);
    }

    #[test]
    fn no_growth_means_no_share() {
        let r = report_from_folded(vec![("a".into(), 10)], Some(-5.0));
        assert_eq!(r.share_of_rss_growth, None);
        let r = report_from_folded(vec![("a".into(), 10)], Some(f64::NAN));
        assert_eq!(r.rss_growth_bytes, None);
    }
}
