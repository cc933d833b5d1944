//! Where output goes. Paths are checked before any sampling; summary and chart are written
//! to a temporary file and renamed into place, so nothing is ever half-written.

use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    Stdout,
    File(PathBuf),
}

impl Dest {
    pub fn from_arg(path: &Path) -> Dest {
        if path.as_os_str() == "-" {
            Dest::Stdout
        } else {
            Dest::File(path.to_path_buf())
        }
    }

    pub fn display(&self) -> String {
        match self {
            Dest::Stdout => "stdout".into(),
            Dest::File(p) => p.display().to_string(),
        }
    }

    pub fn file(&self) -> Option<&Path> {
        match self {
            Dest::File(p) => Some(p),
            Dest::Stdout => None,
        }
    }
}

/// Where a live run's output goes: `None` = the default place, decided once the PID is known.
#[derive(Clone, Debug, Default)]
pub struct OutputPlan {
    pub dir: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    pub json: Option<PathBuf>,
    pub png: Option<PathBuf>,
    /// `--junit`: written by the gate at the end.
    pub junit: Option<PathBuf>,
    pub png_size: (u32, u32),
}

/// The resolved outputs of one run.
#[derive(Clone, Debug)]
pub struct Outputs {
    /// The folder to create, when any output lives in the default or `--out` folder.
    pub dir: Option<PathBuf>,
    pub csv: Dest,
    pub json: Dest,
    pub png: Dest,
    pub junit: Option<PathBuf>,
}

impl OutputPlan {
    /// Resolves the default folder `memwatch-<pid>-<stamp>` (or `--out`) and file names.
    pub fn resolve(&self, pid: i32, stamp: &str) -> Outputs {
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("memwatch-{pid}-{stamp}")));
        let mut uses_dir = false;
        let mut pick = |explicit: &Option<PathBuf>, name: &str| match explicit {
            Some(p) => Dest::from_arg(p),
            None => {
                uses_dir = true;
                Dest::File(dir.join(name))
            }
        };
        let csv = pick(&self.csv, "samples.csv");
        let json = pick(&self.json, "summary.json");
        let png = pick(&self.png, "memory.png");
        Outputs {
            dir: uses_dir.then_some(dir),
            csv,
            json,
            png,
            junit: self.junit.clone(),
        }
    }

    /// Checks, before the target is touched and before anything is created, that every
    /// output can be written: no two outputs on one path (or both on stdout), no output
    /// that is an existing folder, every folder writable (or its parent, for the output
    /// folder that the run creates).
    pub fn check(&self) -> Result<()> {
        // The PID is not known yet; the default folder's name cannot collide with an
        // explicit path anyway.
        let outputs = self.resolve(0, "check");
        let folder = match &self.dir {
            Some(dir) if dir.is_dir() => Some(dir.clone()),
            Some(dir) if dir.exists() => {
                return Err(usage(format!(
                    "--out '{}' is not a folder: give a folder (it is created if missing)",
                    dir.display()
                )));
            }
            Some(dir) => Some(parent_of(dir)),
            None => Some(PathBuf::from(".")),
        };
        let named = [
            ("--csv", Some(outputs.csv.clone())),
            ("--json", Some(outputs.json.clone())),
            ("--png", Some(outputs.png.clone())),
            ("--junit", outputs.junit.clone().map(Dest::File)),
        ];
        let named: Vec<(&str, Dest)> = named
            .into_iter()
            .filter_map(|(flag, d)| d.map(|d| (flag, d)))
            .collect();
        check_distinct(&named)?;
        let explicit = [&self.csv, &self.json, &self.png, &self.junit];
        let files = explicit
            .iter()
            .filter_map(|p| p.as_ref())
            .filter(|p| p.as_os_str() != "-")
            .map(|p| parent_of(p))
            // a file inside the output folder: that folder is created with the run
            .filter(|dir| self.dir.as_ref() != Some(dir));
        for dir in folder.into_iter().chain(files) {
            probe_writable(&dir)?;
        }
        Ok(())
    }
}

fn usage(message: String) -> Error {
    Error::Usage(message)
}

/// No two outputs on one file (after resolving `.`, `..` and symbolic links), nor two on
/// stdout, and no output that is an existing folder.
pub fn check_distinct(outputs: &[(&str, Dest)]) -> Result<()> {
    let mut seen: Vec<(&str, PathBuf)> = Vec::new();
    let mut stdout: Option<&str> = None;
    for (flag, dest) in outputs {
        match dest {
            Dest::Stdout => {
                if let Some(other) = stdout {
                    return Err(usage(format!(
                        "{other} and {flag} both write to stdout ('-'): give one of them a file"
                    )));
                }
                stdout = Some(flag);
            }
            Dest::File(path) => {
                if path.is_dir() {
                    return Err(usage(format!(
                        "{flag} '{}' is a folder: give a file path, e.g. '{}'",
                        path.display(),
                        path.join(default_name(flag)).display()
                    )));
                }
                let key = normalize(path);
                if let Some((other, _)) = seen.iter().find(|(_, p)| *p == key) {
                    return Err(usage(format!(
                        "{other} and {flag} are the same file '{}': give each output its own path",
                        path.display()
                    )));
                }
                seen.push((flag, key));
            }
        }
    }
    Ok(())
}

fn default_name(flag: &str) -> &'static str {
    match flag {
        "--csv" => "samples.csv",
        "--png" => "memory.png",
        "--junit" => "junit.xml",
        _ => "summary.json",
    }
}

/// The path as the file system will resolve it: the deepest existing ancestor with its links
/// resolved, then the rest with `.` and `..` taken lexically.
pub fn normalize(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    let base = loop {
        if let Ok(real) = existing.canonicalize() {
            break real;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => break existing.to_path_buf(),
        }
    };
    let mut out = base;
    for part in rest.iter().rev() {
        match part.to_str() {
            Some(".") => {}
            Some("..") => {
                out.pop();
            }
            _ => out.push(part),
        }
    }
    out
}

/// What `memwatch report FILE` writes, checked before anything is read or written:
/// explicit paths, or beside FILE: `summary.json` and `memory.png`, unless FILE's folder holds
/// a live run's summary.json, whose place is then kept: `report.json` and `report.png`.
/// Never FILE itself, never over a samples CSV, and never over a live run's summary.json
/// unless `force`.
/// Where `report` writes: the summary, the chart (none with --no-png, or when only the
/// summary on stdout was asked and the default chart's folder cannot be written: then a
/// warning says so).
#[derive(Debug)]
pub struct ReportDests {
    pub json: Dest,
    pub png: Option<Dest>,
    pub warning: Option<String>,
}

pub fn report_dests(
    file: &Path,
    json: Option<&Path>,
    png: Option<&Path>,
    draw: bool,
    junit: Option<&Path>,
    force: bool,
) -> Result<ReportDests> {
    let folder = parent_of(file);
    let live_here = is_live_summary(&folder.join("summary.json"));
    let (json_name, png_name) = if live_here {
        ("report.json", "report.png")
    } else {
        ("summary.json", "memory.png")
    };
    let json = json.map_or_else(|| Dest::File(folder.join(json_name)), Dest::from_arg);
    let mut warning = None;
    let png = match png {
        _ if !draw => None,
        Some(p) => Some(Dest::from_arg(p)),
        // Only the summary on stdout was asked: a default chart is a courtesy.
        None if json == Dest::Stdout && probe_writable(&folder).is_err() => {
            warning = Some(format!(
                "no chart: '{}' cannot be written (give --png PATH, or --no-png)",
                folder.display()
            ));
            None
        }
        None => Some(Dest::File(folder.join(png_name))),
    };
    let mut named = vec![("--json", json.clone())];
    named.extend(png.clone().map(|p| ("--png", p)));
    if let Some(j) = junit {
        named.push(("--junit", Dest::File(j.to_path_buf())));
    }
    check_distinct(&named)?;
    let input = normalize(file);
    for (flag, dest) in &named {
        let Some(path) = dest.file() else { continue };
        if normalize(path) == input {
            return Err(usage(format!(
                "{flag} '{}' is the recording being read: give another path",
                path.display()
            )));
        }
        if is_samples_csv(path) {
            return Err(usage(format!(
                "{flag} '{}' is a recording of samples: memwatch never writes over one; give another path",
                path.display()
            )));
        }
        if *flag == "--json" && !force && is_live_summary(path) {
            return Err(usage(format!(
                "--json '{}' is the summary of a live run, which 'report' cannot recreate (target, missed samples, how it ended): give another path, or --force to replace it",
                path.display()
            )));
        }
        probe_writable(&parent_of(path))?;
    }
    Ok(ReportDests { json, png, warning })
}

/// A memwatch summary.json written by a live run (it names its target).
fn is_live_summary(path: &Path) -> bool {
    let Ok(text) = fs::read_to_string(path) else {
        return false;
    };
    serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| {
        v.get("memwatch_version").is_some() && v.get("target").is_some_and(|t| !t.is_null())
    })
}

/// An existing file whose first line is a CSV header with `elapsed_s` (memwatch's samples,
/// or any recording `report` reads).
fn is_samples_csv(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 512];
    let Ok(mut f) = File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    let first = head[..n].split(|&b| b == b'\n').next().unwrap_or_default();
    first.windows(9).any(|w| w == b"elapsed_s")
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates and removes a probe file: the only check that also holds for root, read-only
/// mounts and full quotas.
fn probe_writable(dir: &Path) -> Result<()> {
    let probe = dir.join(format!(".memwatch-probe-{}", std::process::id()));
    let err = |source: io::Error| {
        let why = if !dir.exists() {
            "the folder does not exist".to_string()
        } else if !dir.is_dir() {
            "it is not a folder".to_string()
        } else {
            source.to_string()
        };
        Error::Output {
            path: dir.to_path_buf(),
            source: io::Error::new(source.kind(), why),
        }
    };
    File::create(&probe).map_err(err)?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

impl Outputs {
    /// Creates the output folder (if any) and opens the CSV, ready for its header. On
    /// failure a folder it created is removed again: a refused run leaves nothing behind.
    pub fn create_csv(&self) -> Result<Box<dyn Write>> {
        let created = match &self.dir {
            Some(dir) if !dir.exists() => {
                fs::create_dir_all(dir).map_err(|source| Error::Output {
                    path: dir.clone(),
                    source,
                })?;
                Some(dir)
            }
            _ => None,
        };
        let opened: Result<Box<dyn Write>> = match &self.csv {
            Dest::Stdout => Ok(Box::new(io::stdout())),
            Dest::File(path) => OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
                .map(|f| Box::new(f) as Box<dyn Write>)
                .map_err(|source| Error::Output {
                    path: path.clone(),
                    source,
                }),
        };
        if opened.is_err()
            && let Some(dir) = created
        {
            let _ = fs::remove_dir(dir); // only if still empty
        }
        opened
    }

    /// Every file path written, for the end summary and CI artifacts.
    pub fn files(&self) -> Vec<PathBuf> {
        [&self.csv, &self.json, &self.png]
            .into_iter()
            .filter_map(|d| match d {
                Dest::File(p) => Some(p.clone()),
                Dest::Stdout => None,
            })
            .collect()
    }
}

/// Writes `bytes` to `dest` whole: to a temporary sibling, then renamed into place.
pub fn write_atomic(dest: &Dest, bytes: &[u8]) -> Result<()> {
    match dest {
        Dest::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(bytes)
                .and_then(|()| out.flush())
                .or_else(ignore_broken_pipe)
        }
        Dest::File(path) => {
            let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
            tmp_name.push(format!(".tmp-{}", std::process::id()));
            let tmp = path.with_file_name(tmp_name);
            let result = fs::write(&tmp, bytes).and_then(|()| fs::rename(&tmp, path));
            if result.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            result.map_err(|source| Error::Output {
                path: path.clone(),
                source,
            })
        }
    }
}

fn ignore_broken_pipe(e: io::Error) -> Result<()> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(Error::Output {
            path: PathBuf::from("-"),
            source: e,
        })
    }
}

/// `YYYYmmdd-HHMMSS` in local time, for the default folder name.
pub fn local_stamp() -> String {
    // SAFETY: time and localtime_r write into the provided, zeroed struct.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&now, &mut tm);
        format!(
            "{:04}{:02}{:02}-{:02}{:02}{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_live_in_the_folder_and_dash_is_stdout() {
        let plan = OutputPlan {
            csv: Some(PathBuf::from("-")),
            ..OutputPlan::default()
        };
        let out = plan.resolve(42, "20261124-101500");
        assert_eq!(out.csv, Dest::Stdout);
        assert_eq!(
            out.json,
            Dest::File(PathBuf::from("memwatch-42-20261124-101500/summary.json"))
        );
        assert_eq!(out.dir, Some(PathBuf::from("memwatch-42-20261124-101500")));
        let all = OutputPlan {
            csv: Some("a.csv".into()),
            json: Some("b.json".into()),
            png: Some("c.png".into()),
            ..OutputPlan::default()
        };
        assert_eq!(all.resolve(1, "x").dir, None);
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("s.json");
        write_atomic(&Dest::File(path.clone()), b"one").expect("write");
        write_atomic(&Dest::File(path.clone()), b"two").expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        assert_eq!(fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn check_names_a_missing_folder() {
        let plan = OutputPlan {
            csv: Some("/nonexistent-memwatch/x.csv".into()),
            ..OutputPlan::default()
        };
        let err = plan.check().expect_err("must fail").to_string();
        assert!(
            err.contains("/nonexistent-memwatch") && err.contains("does not exist"),
            "{err}"
        );
    }
}
