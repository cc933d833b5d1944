//! Files and folders made so that no name another user planted is followed or reused
//! (DESIGN.md §12): everything relative to an open folder, new names with
//! `O_CREAT|O_EXCL|O_NOFOLLOW`, random temporary names, owner and mode set on the open file.
//!
//! A folder is opened by the path the user gave (links in it are followed: the path is their
//! choice); what is then created inside it never goes through a link in the last component.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What `lstat`/`fstat` say about a file, as far as memwatch needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub kind: Kind,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub dev: u64,
    pub ino: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Dir,
    Symlink,
    /// A character or block device, or a FIFO: written where it is, never replaced.
    Device,
    Fifo,
    Socket,
}

impl Kind {
    /// In words, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Regular => "file",
            Kind::Dir => "folder",
            Kind::Symlink => "symbolic link",
            Kind::Device => "device",
            Kind::Fifo => "FIFO",
            Kind::Socket => "socket",
        }
    }
}

impl Stat {
    fn from(st: &libc::stat) -> Stat {
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFREG => Kind::Regular,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFIFO => Kind::Fifo,
            libc::S_IFSOCK => Kind::Socket,
            _ => Kind::Device,
        };
        Stat {
            kind,
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }

    /// Written in place (a device, a FIFO), never replaced by a new file.
    pub fn in_place(&self) -> bool {
        matches!(self.kind, Kind::Device | Kind::Fifo)
    }

    /// Owned by memwatch's own user or by root.
    pub fn owned_by_us_or_root(&self) -> bool {
        self.uid == euid() || self.uid == 0
    }
}

/// memwatch's effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `lstat(path)`: the file itself, a link not followed. `None` when nothing is there.
pub fn lstat(path: &Path) -> io::Result<Option<Stat>> {
    let c = cstr(path.as_os_str())?;
    // SAFETY: a valid C string and a zeroed stat buffer the call fills.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    match check(unsafe { libc::lstat(c.as_ptr(), &mut st) }) {
        Ok(_) => Ok(Some(Stat::from(&st))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `stat(path)`: what links lead to. `None` when nothing is there (or a dangling link).
pub fn stat(path: &Path) -> io::Result<Option<Stat>> {
    let c = cstr(path.as_os_str())?;
    // SAFETY: as in `lstat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    match check(unsafe { libc::stat(c.as_ptr(), &mut st) }) {
        Ok(_) => Ok(Some(Stat::from(&st))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `fstat` of an open file.
pub fn fstat(file: &impl AsRawFd) -> io::Result<Stat> {
    // SAFETY: a valid open descriptor and a zeroed stat buffer the call fills.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstat(file.as_raw_fd(), &mut st) })?;
    Ok(Stat::from(&st))
}

/// Whether a symbolic link may be followed: it is memwatch's user's own, or root's in a
/// folder only root can change (`/dev/stdout`, `/dev/fd`). A link another user owns, or
/// could have put there, is a name that user planted.
pub fn trusted_link(path: &Path, link: &Stat) -> bool {
    if link.uid == euid() {
        return true;
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    link.uid == 0
        && stat(parent)
            .ok()
            .flatten()
            .is_some_and(|d| d.kind == Kind::Dir && d.uid == 0 && d.mode & 0o022 == 0)
}

/// Random hex for a temporary name (getrandom; the clock and PID if that fails).
fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    // SAFETY: writes at most 8 bytes into the buffer.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != bytes.len() as isize {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        bytes = (t ^ (u64::from(std::process::id()) << 40)).to_ne_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An open folder: everything is made relative to it.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

impl Dir {
    /// Opens a folder by the path the user gave.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let c = cstr(path.as_os_str())?;
        // SAFETY: a valid C string; the descriptor returned is owned here.
        let fd = check(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: a new descriptor nobody else owns.
        Ok(Dir {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Opens the folder `name` inside this one; a link in its place is refused (ELOOP/ENOTDIR).
    pub fn open_dir(&self, name: &OsStr) -> io::Result<Dir> {
        let c = cstr(name)?;
        // SAFETY: a valid folder descriptor and C string; the result is owned here.
        let fd = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: a new descriptor nobody else owns.
        Ok(Dir {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The folder itself.
    pub fn stat(&self) -> io::Result<Stat> {
        fstat(&self.fd)
    }

    /// `name` in this folder, a link not followed; `None` when nothing is there.
    pub fn lstat_at(&self, name: &OsStr) -> io::Result<Option<Stat>> {
        let c = cstr(name)?;
        // SAFETY: a valid folder descriptor, C string and zeroed buffer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let ret = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        match check(ret) {
            Ok(_) => Ok(Some(Stat::from(&st))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A new file `name` (`O_CREAT|O_EXCL|O_NOFOLLOW`): fails if anything, a link included,
    /// is already there. `mode` is what the umask leaves of it.
    pub fn create_new(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        let c = cstr(name)?;
        // SAFETY: a valid folder descriptor and C string; the result is owned here.
        let fd = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_WRONLY
                    | libc::O_CREAT
                    | libc::O_EXCL
                    | libc::O_NOFOLLOW
                    | libc::O_NOCTTY
                    | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        })?;
        // SAFETY: a new descriptor nobody else owns.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// A new file with a random name beginning with `prefix`; returns its name.
    pub fn create_temp(&self, prefix: &OsStr, mode: u32) -> io::Result<(OsString, File)> {
        let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
        for _ in 0..16 {
            let mut name = prefix.to_os_string();
            name.push(random_hex());
            match self.create_new(&name, mode) {
                Ok(f) => return Ok((name, f)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Renames `from` to `to` in this folder: whatever `to` was (a file, a link) is replaced,
    /// never written through.
    pub fn rename(&self, from: &OsStr, to: &OsStr) -> io::Result<()> {
        let (f, t) = (cstr(from)?, cstr(to)?);
        let fd = self.fd.as_raw_fd();
        // SAFETY: a valid folder descriptor and C strings.
        check(unsafe { libc::renameat(fd, f.as_ptr(), fd, t.as_ptr()) }).map(drop)
    }

    /// Removes the name `name` (a link is removed, not what it points to).
    pub fn remove(&self, name: &OsStr) -> io::Result<()> {
        let c = cstr(name)?;
        // SAFETY: a valid folder descriptor and C string.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) }).map(drop)
    }

    /// Removes the empty folder `name`.
    pub fn remove_dir(&self, name: &OsStr) -> io::Result<()> {
        let c = cstr(name)?;
        // SAFETY: a valid folder descriptor and C string.
        check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) })
            .map(drop)
    }

    /// Makes the new folder `name`; fails if anything is already there.
    pub fn mkdir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        let c = cstr(name)?;
        // SAFETY: a valid folder descriptor and C string.
        check(unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) })
            .map(drop)
    }

    /// Writes `bytes` as the file `name`, whole: into a new file with a random name, then
    /// renamed over `name`. Nothing already at `name` is written through or read.
    pub fn write_new(&self, name: &OsStr, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let (tmp, mut file) = self.create_temp(&temp_prefix(name), 0o666)?;
        let result = file
            .write_all(bytes)
            .and_then(|()| file.flush())
            .and_then(|()| self.rename(&tmp, name));
        if result.is_err() {
            let _ = self.remove(&tmp);
        }
        result
    }

    /// A new, empty file that is already in place as `name` (made under a random name and
    /// renamed over `name`, replacing whatever was there without writing through it).
    pub fn replace_with_new(&self, name: &OsStr) -> io::Result<File> {
        let (tmp, file) = self.create_temp(&temp_prefix(name), 0o666)?;
        if let Err(e) = self.rename(&tmp, name) {
            let _ = self.remove(&tmp);
            return Err(e);
        }
        Ok(file)
    }
}

/// `.NAME.` then random hex: hidden, and named after the file it becomes.
fn temp_prefix(name: &OsStr) -> OsString {
    let mut p = OsString::from(".");
    p.push(name);
    p.push(".tmp-");
    p
}

/// Opens an existing device or FIFO (or what a trusted link leads to) for writing, where it
/// is. A FIFO that nobody reads is refused at once (`ENXIO`) instead of waiting for a
/// reader. `follow`: the path may end in a link (checked by the caller with
/// [`trusted_link`]).
pub fn open_in_place(path: &Path, follow: bool) -> io::Result<File> {
    let c = cstr(path.as_os_str())?;
    let nofollow = if follow { 0 } else { libc::O_NOFOLLOW };
    // SAFETY: a valid C string; the descriptor returned is owned here.
    let fd = check(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_WRONLY | libc::O_NOCTTY | libc::O_NONBLOCK | libc::O_CLOEXEC | nofollow,
        )
    })?;
    // SAFETY: a new descriptor nobody else owns.
    let file = unsafe { File::from_raw_fd(fd) };
    // Blocking writes from here on (a full pipe waits for its reader).
    // SAFETY: F_GETFL/F_SETFL on a valid descriptor.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(file)
}

/// The folder part and the name part of a file path (`.` for a bare name).
pub fn split(path: &Path) -> io::Result<(&Path, &OsStr)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((parent, name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn new_files_never_go_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        symlink(&target, dir.path().join("planted")).unwrap();
        let d = Dir::open(dir.path()).unwrap();
        let e = d.create_new(OsStr::new("planted"), 0o600).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        // Replacing the name replaces the link, not what it points to.
        d.write_new(OsStr::new("planted"), b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        assert_eq!(std::fs::read(dir.path().join("planted")).unwrap(), b"new");
        assert_eq!(
            d.lstat_at(OsStr::new("planted")).unwrap().unwrap().kind,
            Kind::Regular
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2);
    }

    #[test]
    fn temp_names_differ_and_mkdir_refuses_an_existing_name() {
        let dir = tempfile::tempdir().unwrap();
        let d = Dir::open(dir.path()).unwrap();
        let (a, _) = d.create_temp(OsStr::new(".x-"), 0o600).unwrap();
        let (b, _) = d.create_temp(OsStr::new(".x-"), 0o600).unwrap();
        assert_ne!(a, b);
        d.mkdir(OsStr::new("sub"), 0o755).unwrap();
        assert_eq!(
            d.mkdir(OsStr::new("sub"), 0o755).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        symlink(dir.path(), dir.path().join("link")).unwrap();
        assert!(d.open_dir(OsStr::new("link")).is_err());
        assert!(d.open_dir(OsStr::new("sub")).is_ok());
    }

    #[test]
    fn devices_are_in_place_and_links_of_others_untrusted() {
        let null = lstat(Path::new("/dev/null")).unwrap().unwrap();
        assert!(null.in_place());
        let stdout = lstat(Path::new("/dev/stdout")).unwrap().unwrap();
        assert_eq!(stdout.kind, Kind::Symlink);
        assert!(trusted_link(Path::new("/dev/stdout"), &stdout));
        let other = Stat {
            uid: euid().wrapping_add(1).max(1),
            ..stdout
        };
        assert!(!trusted_link(Path::new("/tmp/x"), &other));
        assert_eq!(
            split(Path::new("a.csv")).unwrap(),
            (Path::new("."), OsStr::new("a.csv"))
        );
    }
}
