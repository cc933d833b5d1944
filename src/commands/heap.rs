//! `memwatch heap summary|diff`: read V8 heap snapshots; the work is in `heap/`.

use crate::cli::{HeapArgs, HeapCommand};
use crate::error::Result;
use crate::exit::Exit;
use crate::heap::{DiffOptions, SummaryOptions, diff_files, summarize_file, to_json};
use std::io::Write;

pub fn heap(args: &HeapArgs) -> Result<Exit> {
    let text = match &args.command {
        HeapCommand::Summary { file, top, json } => {
            let s = summarize_file(file, &SummaryOptions { top: *top })?;
            if *json { to_json(&s) } else { s.to_string() }
        }
        HeapCommand::Diff {
            files,
            top,
            paths,
            json,
        } => {
            let opts = DiffOptions {
                top: *top,
                path_classes: *paths,
                ..DiffOptions::default()
            };
            let d = diff_files(files, &opts)?;
            if *json { to_json(&d) } else { d.to_string() }
        }
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error.
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
    Ok(Exit::Passed)
}
