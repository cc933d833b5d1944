//! Where output goes. Paths are checked before any sampling; files are made new under a
//! random name beside a handle on their folder and renamed into place, so nothing is ever
//! half-written and no name another user planted is written through (DESIGN.md §12). An
//! existing device or FIFO (`/dev/null`, `>(gzip > x)`) is written where it is.

use crate::error::{Error, Result};
use crate::report::csv::RowOut;
use crate::safe_fs::{self, Dir, Kind, Stat};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Clone, Debug)]
pub enum Dest {
    Stdout,
    File(PathBuf),
    /// A file in the output folder, written beside memwatch's handle on that folder (so a
    /// folder renamed or replaced by a link meanwhile does not move it).
    InFolder {
        folder: Arc<Dir>,
        name: OsString,
        path: PathBuf,
    },
}

impl PartialEq for Dest {
    fn eq(&self, other: &Dest) -> bool {
        match (self, other) {
            (Dest::Stdout, Dest::Stdout) => true,
            (Dest::Stdout, _) | (_, Dest::Stdout) => false,
            _ => self.file() == other.file(),
        }
    }
}

impl Eq for Dest {}

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
            _ => self
                .file()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        }
    }

    pub fn file(&self) -> Option<&Path> {
        match self {
            Dest::File(p) => Some(p),
            Dest::InFolder { path, .. } => Some(path),
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
    /// Whether the `--out` folder existed when checked: one that was missing is made by the
    /// run, and one that appeared meanwhile is refused.
    pub dir_existed: bool,
}

/// The resolved outputs of one run.
#[derive(Clone, Debug)]
pub struct Outputs {
    /// The folder to create, when any output lives in the default or `--out` folder (once
    /// made: the name it got).
    pub dir: Option<PathBuf>,
    pub csv: Dest,
    pub json: Dest,
    pub png: Dest,
    pub junit: Option<PathBuf>,
    /// `dir` is the default folder: always a new one, never one that exists.
    default_dir: bool,
    /// `--out` existed when checked.
    dir_existed: bool,
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
            default_dir: self.dir.is_none(),
            dir_existed: self.dir_existed,
        }
    }

    /// Checks, before the target is touched and before anything is created, that every
    /// output can be written: no two outputs on one path (or both on stdout), no output
    /// that is an existing folder, a link another user could have planted, or an earlier
    /// recording; an existing `--out` folder is memwatch's user's or root's; every folder
    /// written is writable (or its parent, for the output folder that the run creates).
    /// The working directory is looked at only when the default folder goes there.
    pub fn check(&mut self) -> Result<()> {
        // The PID is not known yet; the default folder's name cannot collide with an
        // explicit path anyway.
        let outputs = self.resolve(0, "check");
        match &self.dir {
            Some(dir) => self.dir_existed = check_out_dir(dir)?,
            None if outputs.dir.is_some() => probe_writable(Path::new("."))?,
            None => {}
        }
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
        let explicit = [
            ("--csv", &self.csv),
            ("--json", &self.json),
            ("--png", &self.png),
            ("--junit", &self.junit),
        ];
        for (flag, path) in explicit {
            let Some(path) = path.as_deref().filter(|p| p.as_os_str() != "-") else {
                continue;
            };
            if let Target::File = check_dest(flag, path)? {
                refuse_recording(flag, path)?;
                let dir = parent_of(path);
                // a file inside the output folder: that folder is created with the run
                if self.dir.as_ref() != Some(&dir) {
                    probe_writable(&dir)?;
                }
            }
        }
        Ok(())
    }
}

fn usage(message: String) -> Error {
    Error::Usage(message)
}

/// What an existing destination is, as far as writing it goes.
enum Target {
    /// Missing, or a file: a new file is renamed into its place.
    File,
    /// A device, a FIFO, or what a trusted link leads to: written where it is.
    InPlace,
}

/// An existing destination that is a link another user could have planted (or a socket)
/// is refused; a device, a FIFO or a trusted link is written in place.
fn check_dest(flag: &str, path: &Path) -> Result<Target> {
    let look = |r: io::Result<Option<Stat>>| {
        r.map_err(|source| Error::Output {
            path: path.to_path_buf(),
            source,
        })
    };
    let Some(s) = look(safe_fs::lstat(path))? else {
        return Ok(Target::File);
    };
    match s.kind {
        Kind::Symlink if !safe_fs::trusted_link(path, &s) => Err(usage(format!(
            "{flag} '{}' is a symbolic link of uid {}, another user: memwatch never writes \
             through a link someone else could have planted; remove it or give another path",
            path.display(),
            s.uid
        ))),
        Kind::Symlink => match look(safe_fs::stat(path))? {
            None => Err(usage(format!(
                "{flag} '{}' is a link to nothing: give the file it should name",
                path.display()
            ))),
            Some(t) if t.kind == Kind::Socket => Err(socket(flag, path)),
            Some(_) => Ok(Target::InPlace),
        },
        Kind::Socket => Err(socket(flag, path)),
        Kind::Device | Kind::Fifo => Ok(Target::InPlace),
        Kind::Regular | Kind::Dir => Ok(Target::File),
    }
}

fn socket(flag: &str, path: &Path) -> Error {
    usage(format!(
        "{flag} '{}' is a socket: give a file, a device or a FIFO",
        path.display()
    ))
}

/// An earlier recording is never written over by a live run.
fn refuse_recording(flag: &str, path: &Path) -> Result<()> {
    let what = if is_samples_csv(path) {
        "a recording of samples"
    } else if is_live_summary(path) {
        "the summary of an earlier live run"
    } else {
        return Ok(());
    };
    Err(usage(format!(
        "{flag} '{}' is {what}: memwatch never writes over a recording; give another path \
         (or move the earlier run away)",
        path.display()
    )))
}

/// `--out DIR`: an existing folder must be memwatch's user's or root's (another user could
/// plant links in it) and hold no earlier run; a missing one is created by the run, in a
/// parent that must exist. Returns whether it exists.
fn check_out_dir(dir: &Path) -> Result<bool> {
    let out_err = |source| Error::Output {
        path: dir.to_path_buf(),
        source,
    };
    let s = match safe_fs::lstat(dir).map_err(out_err)? {
        None => return probe_writable(&parent_of(dir)).map(|()| false),
        Some(s) if s.kind == Kind::Symlink && !safe_fs::trusted_link(dir, &s) => {
            return Err(usage(format!(
                "--out '{}' is a symbolic link of uid {}, another user: give a folder of your own",
                dir.display(),
                s.uid
            )));
        }
        Some(s) if s.kind == Kind::Symlink => safe_fs::stat(dir).map_err(out_err)?,
        Some(s) => Some(s),
    };
    match s {
        Some(s) if s.kind == Kind::Dir => check_own_folder(dir, &s)?,
        _ => {
            return Err(usage(format!(
                "--out '{}' is not a folder: give a folder (it is created if missing)",
                dir.display()
            )));
        }
    }
    for (name, flag) in [("samples.csv", "--out"), ("summary.json", "--out")] {
        let file = dir.join(name);
        if is_samples_csv(&file) || is_live_summary(&file) {
            return Err(usage(format!(
                "{flag} '{}' holds an earlier run ('{name}'): memwatch never writes over a \
                 recording; give a new folder",
                dir.display()
            )));
        }
    }
    probe_writable(dir).map(|()| true)
}

/// An existing output folder belongs to memwatch's user or root.
fn check_own_folder(dir: &Path, s: &Stat) -> Result<()> {
    if s.owned_by_us_or_root() {
        return Ok(());
    }
    Err(usage(format!(
        "--out '{}' belongs to uid {}, another user: memwatch writes only into folders of its \
         own user or root (someone else could plant links in it); give another folder",
        dir.display(),
        s.uid
    )))
}

/// No two outputs on one file (after resolving `.`, `..` and symbolic links), nor two on
/// stdout, and no output that is an existing folder.
pub fn check_distinct(outputs: &[(&str, Dest)]) -> Result<()> {
    let mut seen: Vec<(&str, PathBuf)> = Vec::new();
    let mut stdout: Option<&str> = None;
    for (flag, dest) in outputs {
        let Some(path) = dest.file() else {
            if let Some(other) = stdout {
                return Err(usage(format!(
                    "{other} and {flag} both write to stdout ('-'): give one of them a file"
                )));
            }
            stdout = Some(flag);
            continue;
        };
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

/// Where `report` writes: the summary, the chart (none with --no-png, or when only the
/// summary on stdout was asked and the default chart's folder cannot be written: then a
/// warning says so).
#[derive(Debug)]
pub struct ReportDests {
    pub json: Dest,
    pub png: Option<Dest>,
    pub warning: Option<String>,
}

/// What `memwatch report FILE` writes, checked before anything is read or written:
/// explicit paths, or beside FILE: `summary.json` and `memory.png`, unless FILE's folder holds
/// a live run's summary.json, whose place is then kept: `report.json` and `report.png`.
/// Never FILE itself, never over a samples CSV, and never over a live run's summary.json
/// unless `force`. A device or FIFO (`>(cmd)`) is written in place, and never read.
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
        if let Target::InPlace = check_dest(flag, path)? {
            continue;
        }
        if normalize(path) == input {
            return Err(usage(format!(
                "{flag} '{}' is the recording being read: give another path",
                path.display()
            )));
        }
        if is_samples_csv(path) {
            return Err(usage(format!(
                "{flag} '{}' is a recording of samples: memwatch never writes over one; give \
                 another path",
                path.display()
            )));
        }
        if *flag == "--json" && !force && is_live_summary(path) {
            return Err(usage(format!(
                "--json '{}' is the summary of a live run, which 'report' cannot recreate \
                 (target, missed samples, how it ended): give another path, or --force to \
                 replace it",
                path.display()
            )));
        }
        probe_writable(&parent_of(path))?;
    }
    Ok(ReportDests { json, png, warning })
}

/// The file at `path` if it is a plain file (never a FIFO or device: reading one could wait
/// forever), opened without following a link in its last component.
fn open_regular(path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    if safe_fs::lstat(path).ok()??.kind != Kind::Regular {
        return None;
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    (safe_fs::fstat(&f).ok()?.kind == Kind::Regular).then_some(f)
}

/// A memwatch summary.json written by a live run (it names its target).
fn is_live_summary(path: &Path) -> bool {
    use std::io::Read;
    let Some(f) = open_regular(path) else {
        return false;
    };
    let mut text = String::new();
    // A summary is small; a huge file is not one.
    if f.take(64 << 20).read_to_string(&mut text).is_err() {
        return false;
    }
    serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| {
        v.get("memwatch_version").is_some() && v.get("target").is_some_and(|t| !t.is_null())
    })
}

/// An existing file whose first line is a CSV header with `elapsed_s` (memwatch's samples,
/// or any recording `report` reads).
fn is_samples_csv(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 512];
    let Some(mut f) = open_regular(path) else {
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

/// Makes and removes a file with a new random name (`O_EXCL`, never through a link): the
/// only check that also holds for root, read-only mounts and full quotas.
fn probe_writable(dir: &Path) -> Result<()> {
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
    let folder = Dir::open(dir).map_err(err)?;
    let (name, _file) = folder
        .create_temp(OsStr::new(".memwatch-probe-"), 0o600)
        .map_err(err)?;
    let _ = folder.remove(&name);
    Ok(())
}

/// Where the samples CSV streams to: stdout, or a file memwatch holds open.
pub enum CsvOut {
    Stdout(io::Stdout),
    File { file: File, path: PathBuf },
}

impl Write for CsvOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            CsvOut::Stdout(s) => s.write(buf),
            CsvOut::File { file, .. } => file.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            CsvOut::Stdout(s) => s.flush(),
            CsvOut::File { file, .. } => file.flush(),
        }
    }
}

impl RowOut for CsvOut {
    /// A file is cut back to its last whole row; stdout, a device or a FIFO cannot be.
    fn cut_to(&mut self, len: u64) -> io::Result<()> {
        match self {
            CsvOut::File { file, .. } => file.cut_to(len),
            CsvOut::Stdout(_) => Ok(()),
        }
    }
    fn label(&self) -> String {
        match self {
            CsvOut::Stdout(_) => "stdout".into(),
            CsvOut::File { path, .. } => format!("'{}'", path.display()),
        }
    }
}

impl Outputs {
    /// Makes the output folder (if any) and opens the CSV, ready for its header. The default
    /// folder is always new (`-2`, `-3`... when the name is taken); a `--out` folder that was
    /// missing is made now, and one that appeared meanwhile is refused. On failure a folder it
    /// made is removed again: a refused run leaves nothing behind.
    pub fn create_csv(&mut self) -> Result<CsvOut> {
        let made = match self.dir.clone() {
            Some(dir) => Some(self.make_folder(&dir)?),
            None => None,
        };
        let opened = open_stream(&self.csv);
        if opened.is_err()
            && let Some((parent, name, true)) = made
        {
            let _ = parent.remove_dir(&name); // only if still empty
        }
        opened
    }

    /// Makes or opens the output folder, and points the outputs inside it at its handle.
    /// Returns the parent, the folder's name, and whether it was made now.
    fn make_folder(&mut self, dir: &Path) -> Result<(Dir, OsString, bool)> {
        let err = |path: &Path, source: io::Error| Error::Output {
            path: path.to_path_buf(),
            source,
        };
        let (parent_path, base) = safe_fs::split(dir).map_err(|e| err(dir, e))?;
        let parent = Dir::open(parent_path).map_err(|e| err(parent_path, e))?;
        let (folder, name, made) = if self.default_dir {
            // Always a new folder: a name someone made first is never used.
            let mut found = None;
            for k in 1..=100 {
                let mut name = base.to_os_string();
                if k > 1 {
                    name.push(format!("-{k}"));
                }
                match parent.mkdir(&name, 0o755) {
                    Ok(()) => {
                        found = Some(name);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(err(dir, e)),
                }
            }
            let name = found.ok_or_else(|| {
                err(
                    dir,
                    io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "100 folders of that name exist already",
                    ),
                )
            })?;
            let folder = parent.open_dir(&name).map_err(|e| err(dir, e))?;
            (folder, name, true)
        } else if !self.dir_existed {
            // --out was missing when checked: made now, and refused if someone made it first.
            match parent.mkdir(base, 0o755) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(usage(format!(
                        "--out '{}' appeared after memwatch checked it (another process made \
                         it): memwatch writes only into a folder it made or one of its own; \
                         run again",
                        dir.display()
                    )));
                }
                Err(e) => return Err(err(dir, e)),
            }
            let folder = parent.open_dir(base).map_err(|e| err(dir, e))?;
            (folder, base.to_os_string(), true)
        } else {
            let folder = Dir::open(dir).map_err(|e| err(dir, e))?;
            let s = folder.stat().map_err(|e| err(dir, e))?;
            check_own_folder(dir, &s)?;
            (folder, base.to_os_string(), false)
        };
        let path = parent_path.join(&name);
        let path = if dir.parent().is_some_and(|p| p.as_os_str().is_empty()) {
            PathBuf::from(&name)
        } else {
            path
        };
        let folder = Arc::new(folder);
        for dest in [&mut self.csv, &mut self.json, &mut self.png] {
            if let Dest::File(p) = dest
                && p.parent() == Some(dir)
                && let Some(file) = p.file_name()
            {
                *dest = Dest::InFolder {
                    folder: Arc::clone(&folder),
                    name: file.to_os_string(),
                    path: path.join(file),
                };
            }
        }
        self.dir = Some(path);
        Ok((parent, name, made))
    }

    /// Every file path written, for the end summary and CI artifacts.
    pub fn files(&self) -> Vec<PathBuf> {
        [&self.csv, &self.json, &self.png]
            .into_iter()
            .filter_map(|d| d.file().map(Path::to_path_buf))
            .collect()
    }
}

/// Opens the CSV's destination for streaming: a new file renamed into place at once (a
/// killed run keeps every finished row), or a device or FIFO where it is.
fn open_stream(dest: &Dest) -> Result<CsvOut> {
    let path = match dest {
        Dest::Stdout => return Ok(CsvOut::Stdout(io::stdout())),
        Dest::InFolder { folder, name, path } => {
            let file = folder
                .replace_with_new(name)
                .map_err(|source| Error::Output {
                    path: path.clone(),
                    source,
                })?;
            return Ok(CsvOut::File {
                file,
                path: path.clone(),
            });
        }
        Dest::File(path) => path,
    };
    let err = |source| Error::Output {
        path: path.clone(),
        source,
    };
    let file = match open_where_it_is(path).map_err(err)? {
        Some(file) => file,
        None => {
            let (parent, name) = safe_fs::split(path).map_err(err)?;
            Dir::open(parent)
                .and_then(|d| d.replace_with_new(name))
                .map_err(err)?
        }
    };
    Ok(CsvOut::File {
        file,
        path: path.clone(),
    })
}

/// A device or FIFO at `path`, or what a trusted link there leads to, opened for writing
/// where it is (a file behind a trusted link is emptied first); `None` when a new file is
/// to be made instead (nothing there, a plain file, a link someone else planted).
fn open_where_it_is(path: &Path) -> io::Result<Option<File>> {
    let Some(s) = safe_fs::lstat(path)? else {
        return Ok(None);
    };
    let follow = match s.kind {
        Kind::Device | Kind::Fifo => false,
        Kind::Symlink if safe_fs::trusted_link(path, &s) => true,
        _ => return Ok(None),
    };
    let file = safe_fs::open_in_place(path, follow).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENXIO) {
            io::Error::new(e.kind(), "no process reads this FIFO")
        } else {
            e
        }
    })?;
    match safe_fs::fstat(&file)?.kind {
        Kind::Regular if follow => file.set_len(0)?,
        Kind::Device | Kind::Fifo | Kind::Socket => {}
        // It changed between the look and the open: not what was checked.
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "it changed while memwatch opened it",
            ));
        }
    }
    Ok(Some(file))
}

/// Writes `bytes` to `dest` whole: to a new file with a random name beside it, then renamed
/// into place; an existing device or FIFO (or what a trusted link leads to) is written where
/// it is, never replaced.
pub fn write_atomic(dest: &Dest, bytes: &[u8]) -> Result<()> {
    let (path, result) = match dest {
        Dest::Stdout => {
            let mut out = io::stdout().lock();
            return out
                .write_all(bytes)
                .and_then(|()| out.flush())
                .or_else(ignore_broken_pipe);
        }
        Dest::InFolder { folder, name, path } => (path, folder.write_new(name, bytes)),
        Dest::File(path) => (
            path,
            open_where_it_is(path).and_then(|found| match found {
                Some(mut file) => file.write_all(bytes).and_then(|()| file.flush()),
                None => {
                    let (parent, name) = safe_fs::split(path)?;
                    Dir::open(parent)?.write_new(name, bytes)
                }
            }),
        ),
    };
    result.map_err(|source| Error::Output {
        path: path.clone(),
        source,
    })
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
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }

    #[test]
    fn check_names_a_missing_folder() {
        let mut plan = OutputPlan {
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
