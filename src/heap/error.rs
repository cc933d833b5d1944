//! What can be wrong with a `.heapsnapshot` file: one line that names the file and the fault.

use std::path::PathBuf;

/// Everything `memwatch heap` can fail on. Each message names the file and says what is wrong;
/// the command exits 2.
#[derive(Debug, thiserror::Error)]
pub enum HeapError {
    #[error("cannot read '{path}': {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("'{path}' is a folder, not a heap snapshot file (give the .heapsnapshot files in it)")]
    Folder { path: PathBuf },
    #[error("'{path}' is empty: not a heap snapshot (was it still being written?)")]
    Empty { path: PathBuf },
    #[error(
        "'{path}' is not a V8 heap snapshot: {detail} (expected a .heapsnapshot file written by Node/Chrome)"
    )]
    NotSnapshot { path: PathBuf, detail: String },
    #[error(
        "'{path}' is truncated: it ends inside {section} (was it still being written? a complete snapshot ends with ']}}')"
    )]
    Truncated { path: PathBuf, section: String },
    #[error("'{path}': unusable snapshot.meta: {detail}")]
    BadMeta { path: PathBuf, detail: String },
    #[error("'{path}': {what}: the header says {header}, the file has {found}")]
    CountMismatch {
        path: PathBuf,
        what: String,
        header: u64,
        found: u64,
    },
    #[error("'{path}': malformed {section} at byte {offset}: {detail}")]
    Malformed {
        path: PathBuf,
        section: String,
        offset: usize,
        detail: String,
    },
    #[error("heap diff needs at least two snapshots, got {0}")]
    TooFewSnapshots(usize),
}

pub type Result<T> = std::result::Result<T, HeapError>;
