//! The sampler: what one sample is, how it is read from /proc, and when.

pub mod members;
pub mod reader;
pub mod schedule;
pub mod status;

pub use reader::ProcReader;
pub use schedule::Schedule;
pub use status::MemStatus;

use std::time::Duration;

/// When to sample.
#[derive(Clone, Debug)]
pub struct Sampling {
    pub interval: Duration,
    pub duration: Option<Duration>,
    /// Some when PSS/USS are asked for.
    pub pss_interval: Option<Duration>,
    /// `--tree`: the target's descendants too, judged as their sum.
    pub tree: bool,
    /// `--pss-interval` whether or not `--pss` is given: how often each process of a tree
    /// judged on its PSS is read.
    pub tree_pss_interval: Duration,
}

/// One reading of a process's memory. `Copy` and heap-free, so the hot path allocates nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// Seconds since the first sample (monotonic clock).
    pub elapsed_s: f64,
    /// Wall-clock time of the sample, milliseconds since the Unix epoch.
    pub unix_ms: u64,
    pub pid: i32,
    pub mem: MemStatus,
    /// From smaps_rollup, only when asked for (it costs a page-table walk).
    pub pss: Option<u64>,
    pub uss: Option<u64>,
    /// What the runtime (Node.js, JVM) said at this tick, when it is asked (`--runtime`).
    pub heap: ManagedHeap,
}

/// The managed heap as the runtime reports it. A reading arrives at the tick after it was
/// taken; most ticks have none.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ManagedHeap {
    /// Used heap right after a forced full GC: what the program keeps alive.
    pub after_gc: Option<u64>,
    /// Used heap without forcing a GC (garbage included).
    pub used: Option<u64>,
    /// Node: memory held outside the JS heap for JS objects (Buffers, ArrayBuffers), read
    /// right after the forced GC.
    pub external: Option<u64>,
}

/// A memory column memwatch records and can analyse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Rss,
    Vsz,
    Anon,
    File,
    Shmem,
    Swap,
    Hwm,
    Pss,
    Uss,
    HeapAfterGc,
    HeapUsed,
    External,
}

impl Metric {
    pub const ALL: [Metric; 12] = [
        Metric::Rss,
        Metric::Vsz,
        Metric::Anon,
        Metric::File,
        Metric::Shmem,
        Metric::Swap,
        Metric::Hwm,
        Metric::Pss,
        Metric::Uss,
        Metric::HeapAfterGc,
        Metric::HeapUsed,
        Metric::External,
    ];
    pub const COUNT: usize = Self::ALL.len();

    /// The short name used on the command line and in summary.json (`rss`, `anon`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Rss => "rss",
            Metric::Vsz => "vsz",
            Metric::Anon => "anon",
            Metric::File => "file",
            Metric::Shmem => "shmem",
            Metric::Swap => "swap",
            Metric::Hwm => "hwm",
            Metric::Pss => "pss",
            Metric::Uss => "uss",
            Metric::HeapAfterGc => "heap-after-gc",
            Metric::HeapUsed => "heap-used",
            Metric::External => "external",
        }
    }

    /// The CSV header of this metric's column (`rss_bytes`, ...).
    pub fn column(self) -> &'static str {
        match self {
            Metric::Rss => "rss_bytes",
            Metric::Vsz => "vsz_bytes",
            Metric::Anon => "anon_bytes",
            Metric::File => "file_bytes",
            Metric::Shmem => "shmem_bytes",
            Metric::Swap => "swap_bytes",
            Metric::Hwm => "hwm_bytes",
            Metric::Pss => "pss_bytes",
            Metric::Uss => "uss_bytes",
            Metric::HeapAfterGc => "heap_after_gc_bytes",
            Metric::HeapUsed => "heap_used_bytes",
            Metric::External => "external_bytes",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// Read from the program's runtime (`--runtime`), not from /proc.
    pub fn is_managed_heap(self) -> bool {
        matches!(
            self,
            Metric::HeapAfterGc | Metric::HeapUsed | Metric::External
        )
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// This metric's value in a sample, `None` when unknown.
    pub fn of(self, s: &Sample) -> Option<u64> {
        match self {
            Metric::Rss => Some(s.mem.rss),
            Metric::Vsz => Some(s.mem.vsz),
            Metric::Anon => s.mem.anon,
            Metric::File => s.mem.file,
            Metric::Shmem => s.mem.shmem,
            Metric::Swap => s.mem.swap,
            Metric::Hwm => s.mem.hwm,
            Metric::Pss => s.pss,
            Metric::Uss => s.uss,
            Metric::HeapAfterGc => s.heap.after_gc,
            Metric::HeapUsed => s.heap.used,
            Metric::External => s.heap.external,
        }
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
