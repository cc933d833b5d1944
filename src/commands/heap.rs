//! `memwatch heap summary|diff`: read V8 heap snapshots; the work is in `heap/`.

use crate::cli::{HeapArgs, HeapCommand};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::heap::{DiffOptions, SummaryOptions, diff_files, summarize_file, to_json};
use crate::report::output::{Dest, check_distinct, normalize, write_atomic};
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn heap(args: &HeapArgs) -> Result<Exit> {
    match &args.command {
        HeapCommand::Summary { file, top, json } => {
            let json = json_dest(json.as_deref(), std::slice::from_ref(file))?;
            let s = summarize_file(file, &SummaryOptions { top: *top })?;
            emit(&json, to_json(&s), || s.to_string())?;
        }
        HeapCommand::Diff {
            files,
            top,
            paths,
            json,
        } => {
            let json = json_dest(json.as_deref(), files)?;
            let opts = DiffOptions {
                top: *top,
                path_classes: *paths,
                ..DiffOptions::default()
            };
            let d = diff_files(files, &opts)?;
            for w in &d.warnings {
                eprintln!("memwatch: warning: {w}");
            }
            emit(&json, to_json(&d), || d.to_string())?;
        }
    }
    Ok(Exit::Passed)
}

/// Where `--json` goes, checked before any snapshot is read: not a folder, not one of the
/// snapshots, in a folder that exists.
fn json_dest(json: Option<&Path>, inputs: &[PathBuf]) -> Result<Option<Dest>> {
    let Some(path) = json else { return Ok(None) };
    let dest = Dest::from_arg(path);
    check_distinct(&[("--json", dest.clone())])?;
    if let Some(file) = dest.file() {
        if inputs.iter().any(|i| normalize(i) == normalize(file)) {
            return Err(Error::Usage(format!(
                "--json '{}' is one of the snapshots being read: give another path",
                file.display()
            )));
        }
        let folder = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(Error::Usage(format!(
                "--json '{}': the folder '{}' does not exist",
                file.display(),
                folder.display()
            )));
        }
    }
    Ok(Some(dest))
}

/// The JSON to its destination (a device or a FIFO such as `/dev/stdout` is written where it
/// is, see `write_atomic`); the text on stdout unless the JSON went there.
fn emit(json: &Option<Dest>, body: String, text: impl FnOnce() -> String) -> Result<()> {
    if let Some(dest) = json {
        write_atomic(dest, body.as_bytes())?;
        if matches!(dest, Dest::Stdout) {
            return Ok(());
        }
    }
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error.
    let _ = out.write_all(text().as_bytes()).and_then(|_| out.flush());
    Ok(())
}
