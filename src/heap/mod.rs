//! `memwatch heap`: V8 heap snapshots (`.heapsnapshot`) read without a JSON tree: which
//! class grew between snapshots (objects matched by id, as DevTools' Comparison view), what
//! holds it (shortest retaining paths), and per-class retained sizes (dominator tree).
//!
//! Code map: `scan` (bytes -> numbers, string offsets), `snapshot` (meta, columns),
//! `graph` (distances, dominators), `classes` (class slots, id sets), `diff`, `summary`,
//! `render` (terminal text). Nothing here knows about sampling or the live run.
//!
//! After a live run that collected two or more complete snapshots:
//!
//! ```no_run
//! use memwatch::heap::{DiffOptions, diff_files};
//! # fn main() -> Result<(), memwatch::heap::HeapError> {
//! let files = vec!["Heap.1.heapsnapshot".into(), "Heap.4.heapsnapshot".into()];
//! let diff = diff_files(&files, &DiffOptions { top: 10, ..DiffOptions::default() })?;
//! let json = serde_json::to_value(&diff); // for summary.json
//! eprint!("{}", diff.brief(5)); // top rows and the main retaining paths
//! let step_summary = diff.markdown(5); // for $GITHUB_STEP_SUMMARY
//! print!("{diff}"); // everything, as `memwatch heap diff` prints it
//! # let _ = (json, step_summary);
//! # Ok(())
//! # }
//! ```

mod classes;
pub mod diff;
pub mod error;
pub mod graph;
mod render;
mod scan;
pub mod snapshot;
pub mod summary;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

pub use diff::{DiffOptions, HeapDiff, diff_files};
pub use error::HeapError;
pub use summary::{HeapSummary, SummaryOptions, summarize_file};

/// Pretty JSON with a final newline, for `--json` output.
pub fn to_json<T: serde::Serialize>(v: &T) -> String {
    let mut s =
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}
