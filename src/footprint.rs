//! memwatch's own footprint while it samples. Start-up (argument parsing, clap's command
//! tree, the config file, attaching) runs code that the sampling loop never runs again, and
//! its pages stay resident. Dropping the executable file-backed mappings once, just before
//! the loop, leaves only the code the loop runs: those pages fault back in from the page
//! cache on the first ticks, the rest stays out. Only code: a writable mapping would lose its
//! data, and a read-only one may be relocated data made read-only after start (RELRO), whose
//! pages differ from the file.

/// Drops memwatch's resident code pages (its own and its libraries'); the ones in use come
/// back on their own. Best effort: any failure leaves things as they were.
pub fn release_startup_pages() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for (start, end) in code_mappings(&maps) {
        // SAFETY: the range is a whole mapping of this process, executable, not writable and
        // file-backed (text is never written at run time):
        // MADV_DONTNEED only unmaps its pages from our page tables; the next access reads
        // them again from the page cache. Nothing is lost.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// The `start-end` ranges of mappings that are backed by a file, executable and not
/// writable, from the text of /proc/self/maps.
fn code_mappings(maps: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let _offset = fields.next()?;
            let _dev = fields.next()?;
            let inode = fields.next()?;
            let path = fields.next()?;
            let file_backed = inode != "0" && path.starts_with('/');
            if !file_backed || perms != "r-xp" {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            Some((
                usize::from_str_radix(start, 16).ok()?,
                usize::from_str_radix(end, 16).ok()?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_code_mappings_are_released() {
        let maps = "\
55d0c0a00000-55d0c0a40000 r--p 00000000 fd:01 1234 /usr/bin/memwatch
55d0c0a40000-55d0c0c00000 r-xp 00040000 fd:01 1234 /usr/bin/memwatch
55d0c0c00000-55d0c0c10000 rw-p 00200000 fd:01 1234 /usr/bin/memwatch
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0 [heap]
7f0000000000-7f0000001000 ---p 00000000 fd:01 99 /usr/lib/libc.so.6
7f0000001000-7f0000100000 r-xp 00001000 fd:01 99 /usr/lib/libc.so.6
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
7ffd00100000-7ffd00102000 r-xp 00000000 00:00 0 [vdso]
";
        assert_eq!(
            code_mappings(maps),
            vec![
                (0x55d0c0a40000, 0x55d0c0c00000),
                (0x7f0000001000, 0x7f0000100000),
            ]
        );
    }

    #[test]
    fn releasing_keeps_the_process_running() {
        release_startup_pages();
        // Code and constants come back when used.
        let v: Vec<u64> = (0..1000).collect();
        assert_eq!(v.iter().sum::<u64>(), 499_500);
    }
}
