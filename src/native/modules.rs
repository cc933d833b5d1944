//! The target's executable mappings and the files behind them: where each one is loaded
//! (its bias), its unwind tables for the unwinder, and, when asked at the end, its symbols.
//!
//! Files are memory-mapped and only the pages read are resident (`.eh_frame_hdr` lookups,
//! the symbol table once at the end), so a large binary such as Node's costs little.

use memmap2::Mmap;
use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};
use std::fs::File;
use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One line of `/proc/PID/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub executable: bool,
    pub offset: u64,
    pub path: String,
}

/// The lines of `/proc/PID/maps` (pure).
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(parse_maps_line).collect()
}

fn parse_maps_line(line: &str) -> Option<Mapping> {
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let perms = fields.next()?;
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let _dev = fields.next()?;
    let _inode = fields.next()?;
    let path = fields.next().unwrap_or("").trim_start().to_string();
    let (start, end) = range.split_once('-')?;
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        executable: perms.as_bytes().get(2) == Some(&b'x'),
        offset,
        path,
    })
}

/// Bytes of a memory-mapped file, shared by the sections cut from it.
#[derive(Clone)]
pub struct FileBytes {
    map: Arc<Mmap>,
    range: Range<usize>,
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.map[self.range.clone()]
    }
}

/// An ELF file mapped into the target, with what the unwinder needs from it.
pub struct LoadedModule {
    pub name: String,
    pub path: PathBuf,
    /// The executable mapping's address range in the target.
    pub avma: Range<u64>,
    /// Target address minus the file's stated address (the load bias).
    pub bias: u64,
    file: Arc<Mmap>,
}

/// What the unwinder reads of a module.
pub type UnwindSections = framehop::ExplicitModuleSectionInfo<FileBytes>;

impl LoadedModule {
    /// Reads the file of an executable mapping of process `pid` (through
    /// `/proc/PID/map_files`, which works across mount namespaces and for deleted files, or
    /// `/proc/PID/root/PATH`). `None` for anything that is not an ELF file we can read.
    pub fn load(pid: i32, m: &Mapping) -> Option<(LoadedModule, UnwindSections)> {
        if !m.path.starts_with('/') {
            return None;
        }
        let by_map = format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end);
        let file = File::open(&by_map)
            .or_else(|_| File::open(format!("/proc/{pid}/root{}", m.path)))
            .ok()?;
        // SAFETY: a read-only private mapping; a file truncated under us would fault, as it
        // would for any reader of a mapped binary. Binaries in use are not truncated in place.
        let map = Arc::new(unsafe { Mmap::map(&file) }.ok()?);
        let elf = object::File::parse(&**map).ok()?;
        let bias = bias_of(&elf, m)?;
        let section = |name: &str| -> (Option<Range<u64>>, Option<FileBytes>) {
            let Some(s) = elf.section_by_name(name) else {
                return (None, None);
            };
            let svma = s.address()..s.address() + s.size();
            let data = s.file_range().and_then(|(at, len)| {
                let (at, len) = (usize::try_from(at).ok()?, usize::try_from(len).ok()?);
                (at + len <= map.len()).then(|| FileBytes {
                    map: map.clone(),
                    range: at..at + len,
                })
            });
            (Some(svma), data)
        };
        let (text_svma, text) = section(".text");
        let (eh_frame_svma, eh_frame) = section(".eh_frame");
        let (eh_frame_hdr_svma, eh_frame_hdr) = section(".eh_frame_hdr");
        let (got_svma, _) = section(".got");
        let (_, debug_frame) = section(".debug_frame");
        let unwind = framehop::ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma,
            text,
            got_svma,
            eh_frame_svma,
            eh_frame,
            eh_frame_hdr_svma,
            eh_frame_hdr,
            debug_frame,
            stubs_svma: None,
            stub_helper_svma: None,
            unwind_info: None,
            text_segment_svma: None,
            text_segment: None,
        };
        let name = Path::new(&m.path)
            .file_name()
            .map_or_else(|| m.path.clone(), |n| n.to_string_lossy().into_owned());
        let module = LoadedModule {
            name,
            path: PathBuf::from(&m.path),
            avma: m.start..m.end,
            bias,
            file: map,
        };
        Some((module, unwind))
    }

    /// The function symbols of the file (`.symtab` and `.dynsym`), sorted by address. A
    /// stripped library's full table is taken from its detached debug file when one is
    /// installed (`/usr/lib/debug/.build-id/xx/yyyy.debug`: Debian's `libc6-dbg`, `*-dbgsym`).
    pub fn symbols(&self) -> Symbols {
        let Ok(elf) = object::File::parse(&**self.file) else {
            return Symbols::default();
        };
        let mut list = function_symbols(&elf);
        if elf.symbol_table().is_none()
            && let Some(debug) = debug_file(&elf)
            && let Ok(debug_elf) = object::File::parse(&*debug)
        {
            list.extend(function_symbols(&debug_elf));
        }
        list.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        list.dedup_by_key(|s| s.0);
        Symbols { list }
    }
}

fn function_symbols(elf: &object::File<'_>) -> Vec<(u64, u64, String)> {
    elf.symbols()
        .chain(elf.dynamic_symbols())
        .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
        .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
        .collect()
}

/// The detached debug file of `elf`, found by its GNU build id.
fn debug_file(elf: &object::File<'_>) -> Option<Mmap> {
    let id = elf.build_id().ok()??;
    if id.len() < 2 {
        return None;
    }
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let path = format!("/usr/lib/debug/.build-id/{}/{}.debug", &hex[..2], &hex[2..]);
    let file = File::open(path).ok()?;
    // SAFETY: a read-only mapping of an installed debug file, read once and dropped.
    unsafe { Mmap::map(&file) }.ok()
}

/// Where a mapping puts the file: bias = start - offset + (segment offset - segment address),
/// for the loadable segment the mapping starts (its page-aligned offset is the mapping's),
/// else the one that holds the mapped offset (segments can share a page: Rust's executables
/// start their code segment in the last page of the read-only one).
fn bias_of(elf: &object::File<'_>, m: &Mapping) -> Option<u64> {
    const PAGE: u64 = 4096;
    let segments: Vec<(u64, u64, u64)> = elf
        .segments()
        .map(|s| (s.file_range().0, s.file_range().1, s.address()))
        .collect();
    let starts = segments
        .iter()
        .find(|(off, _, _)| off & !(PAGE - 1) == m.offset);
    let holds = || {
        segments
            .iter()
            .find(|(off, size, _)| m.offset >= off & !(PAGE - 1) && m.offset < off + size)
    };
    let &(off, _, vaddr) = starts.or_else(holds)?;
    Some(
        m.start
            .wrapping_sub(m.offset)
            .wrapping_add(off)
            .wrapping_sub(vaddr),
    )
}

/// A module's function symbols by address.
#[derive(Default)]
pub struct Symbols {
    list: Vec<(u64, u64, String)>,
}

impl Symbols {
    /// The function at `svma` (a file address): a symbol that covers it, or the nearest one
    /// below when it has no size. An address past the end of a sized symbol is unknown (a
    /// stripped library's internal function must not be named after its exported neighbour).
    pub fn find(&self, svma: u64) -> Option<&str> {
        let i = self.list.partition_point(|s| s.0 <= svma).checked_sub(1)?;
        let (start, size, name) = &self.list[i];
        (*size == 0 || svma < start + size).then_some(name.as_str())
    }
}

/// A JIT's `/tmp/perf-PID.map`: `START SIZE name` lines, hex addresses.
pub fn parse_perf_map(text: &str) -> Vec<(u64, u64, String)> {
    let mut list: Vec<(u64, u64, String)> = text
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ' ');
            let start = u64::from_str_radix(parts.next()?.trim_start_matches("0x"), 16).ok()?;
            let size = u64::from_str_radix(parts.next()?.trim_start_matches("0x"), 16).ok()?;
            Some((start, size, parts.next()?.trim().to_string()))
        })
        .collect();
    // Later lines win for the same address (code moved or recompiled).
    list.reverse();
    list.sort_by_key(|s| s.0);
    list.dedup_by_key(|s| s.0);
    list
}

/// A function name for people: Rust and C++ demangled (Rust without its hash).
pub fn demangle(name: &str) -> String {
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        return format!("{d:#}");
    }
    if name.starts_with("_Z")
        && let Ok(sym) = cpp_demangle::Symbol::new(name.as_bytes())
        && let Ok(d) = sym.demangle()
    {
        return d;
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let text = "55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234 /usr/bin/cat\n\
                    55d0c0a01000-55d0c0a05000 r-xp 00001000 08:01 1234 /usr/bin/cat\n\
                    7ffc1000-7ffc2000 rw-p 00000000 00:00 0                          [stack]\n\
                    7f00-8f00 rw-p 00000000 00:00 0 \n";
        let m = parse_maps(text);
        assert_eq!(m.len(), 4);
        assert!(m[1].executable && !m[0].executable);
        assert_eq!(m[1].offset, 0x1000);
        assert_eq!(m[1].path, "/usr/bin/cat");
        assert_eq!(m[2].path, "[stack]");
        assert_eq!(m[3].path, "");
    }

    #[test]
    fn sized_symbols_do_not_cover_their_neighbours_gap() {
        let s = Symbols {
            list: vec![
                (0x100, 0x10, "a".into()),
                (0x200, 0, "b".into()),
                (0x300, 0x20, "c".into()),
            ],
        };
        assert_eq!(s.find(0x105), Some("a"));
        assert_eq!(s.find(0x150), None);
        assert_eq!(s.find(0x250), Some("b"));
        assert_eq!(s.find(0x31f), Some("c"));
        assert_eq!(s.find(0x320), None);
        assert_eq!(s.find(0x50), None);
    }

    #[test]
    fn perf_map_lines() {
        let text = "3a4c0040 2c LazyCompile:~handle /srv/app.js:10\n\
                    bad line\n\
                    3a4c0100 10 Builtin:ArrayPush\n\
                    3a4c0040 30 LazyCompile:*handle /srv/app.js:10\n";
        let m = parse_perf_map(text);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0],
            (
                0x3a4c0040,
                0x30,
                "LazyCompile:*handle /srv/app.js:10".into()
            )
        );
    }

    #[test]
    fn demangles_rust_and_cpp() {
        assert_eq!(
            demangle("_ZN5leaky12leak_session17h0123456789abcdefE"),
            "leaky::leak_session"
        );
        assert_eq!(demangle("_ZN5Store3addEi"), "Store::add(int)");
        assert_eq!(demangle("leak_session"), "leak_session");
    }
}
