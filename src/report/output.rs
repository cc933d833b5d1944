//! Where output goes. Paths are checked before any sampling; summary and chart are written
//! to a temporary file and renamed into place, so nothing is ever half-written.

use crate::config::OutputPlan;
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
    fn from_arg(path: &Path) -> Dest {
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
}

/// The resolved outputs of one run.
#[derive(Clone, Debug)]
pub struct Outputs {
    /// The folder to create, when any output lives in the default or `--out` folder.
    pub dir: Option<PathBuf>,
    pub csv: Dest,
    pub json: Dest,
    pub png: Dest,
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
        }
    }

    /// Checks, before the target is touched, that every output can be created: explicit
    /// files' folders must exist and be writable; the output folder's parent likewise.
    pub fn precheck(&self) -> Result<()> {
        let folder = match &self.dir {
            Some(dir) if dir.is_dir() => Some(dir.clone()),
            Some(dir) => Some(parent_of(dir)),
            None => Some(PathBuf::from(".")),
        };
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
    /// Creates the output folder (if any) and opens the CSV, ready for its header.
    pub fn create_csv(&self) -> Result<Box<dyn Write>> {
        if let Some(dir) = &self.dir {
            fs::create_dir_all(dir).map_err(|source| Error::Output {
                path: dir.clone(),
                source,
            })?;
        }
        match &self.csv {
            Dest::Stdout => Ok(Box::new(io::stdout())),
            Dest::File(path) => {
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(path)
                    .map_err(|source| Error::Output {
                        path: path.clone(),
                        source,
                    })?;
                Ok(Box::new(file))
            }
        }
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
    fn precheck_names_a_missing_folder() {
        let plan = OutputPlan {
            csv: Some("/nonexistent-memwatch/x.csv".into()),
            ..OutputPlan::default()
        };
        let err = plan.precheck().expect_err("must fail").to_string();
        assert!(
            err.contains("/nonexistent-memwatch") && err.contains("does not exist"),
            "{err}"
        );
    }
}
