//! Byte-level reading of the snapshot's JSON: no tree, only what each section needs.
//!
//! The file is one JSON object whose big members are flat arrays of unsigned integers
//! (`nodes`, `edges`) and an array of strings (`strings`). These functions walk the bytes:
//! integers are decoded by a plain loop, strings are only located (offsets) and unescaped on
//! demand, anything else is skipped by bracket counting.

/// Where and why the bytes are not what the format needs; the caller adds file and section.
#[derive(Debug, PartialEq, Eq)]
pub enum ScanError {
    /// The input ended before the value did.
    Eof,
    /// A byte that cannot be there.
    Bad { offset: usize, detail: String },
    /// A record's value `field` (0-based) is wrong: `number_records` turns it into `Bad`
    /// at the first byte of that value.
    BadField { field: usize, detail: String },
}

pub type Scan<T> = Result<T, ScanError>;

fn bad<T>(offset: usize, detail: impl Into<String>) -> Scan<T> {
    Err(ScanError::Bad {
        offset,
        detail: detail.into(),
    })
}

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// The position of the first non-whitespace byte at or after `pos`.
pub fn skip_ws(buf: &[u8], mut pos: usize) -> Scan<usize> {
    while let Some(&b) = buf.get(pos) {
        if !is_ws(b) {
            return Ok(pos);
        }
        pos += 1;
    }
    Err(ScanError::Eof)
}

/// Skips whitespace, then requires `byte`; returns the position after it.
pub fn expect(buf: &[u8], pos: usize, byte: u8) -> Scan<usize> {
    let pos = skip_ws(buf, pos)?;
    if buf[pos] == byte {
        Ok(pos + 1)
    } else {
        bad(
            pos,
            format!(
                "expected '{}', found '{}'",
                byte as char,
                printable(buf[pos])
            ),
        )
    }
}

fn printable(b: u8) -> String {
    if b.is_ascii_graphic() {
        (b as char).to_string()
    } else {
        format!("\\x{b:02x}")
    }
}

/// The end (one past the closing quote) of the JSON string whose opening quote is at `pos`.
pub fn string_end(buf: &[u8], pos: usize) -> Scan<usize> {
    let mut i = pos + 1;
    loop {
        match memchr::memchr2(b'"', b'\\', &buf[i.min(buf.len())..]) {
            None => return Err(ScanError::Eof),
            Some(k) => {
                let at = i + k;
                if buf[at] == b'"' {
                    return Ok(at + 1);
                }
                i = at + 2; // an escape: skip the escaped byte
            }
        }
    }
}

/// Reads a JSON string key at `pos` (after whitespace) and the ':' after it; returns the raw
/// key bytes and the position of the value.
pub fn key(buf: &[u8], pos: usize) -> Scan<(&[u8], usize)> {
    let start = skip_ws(buf, pos)?;
    if buf[start] != b'"' {
        return bad(
            start,
            format!("expected a key, found '{}'", printable(buf[start])),
        );
    }
    let end = string_end(buf, start)?;
    let after = expect(buf, end, b':')?;
    Ok((&buf[start + 1..end - 1], after))
}

/// Skips one JSON value of any kind starting at `pos` (after whitespace); returns the
/// position after it.
pub fn skip_value(buf: &[u8], pos: usize) -> Scan<usize> {
    let pos = skip_ws(buf, pos)?;
    match buf[pos] {
        b'"' => string_end(buf, pos),
        b'[' | b'{' => {
            let mut depth = 0usize;
            let mut i = pos;
            while let Some(&b) = buf.get(i) {
                match b {
                    b'[' | b'{' => depth += 1,
                    b']' | b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    b'"' => {
                        i = string_end(buf, i)?;
                        continue;
                    }
                    _ => {}
                }
                i += 1;
            }
            Err(ScanError::Eof)
        }
        _ => {
            let mut i = pos;
            while let Some(&b) = buf.get(i) {
                if matches!(b, b',' | b']' | b'}') || is_ws(b) {
                    return Ok(i);
                }
                i += 1;
            }
            Err(ScanError::Eof)
        }
    }
}

/// Skips an array known to hold only numbers (no strings, no nesting) at `pos`: memchr for
/// the `]`, chunk by chunk, calling `progress` as `number_records` does.
pub fn skip_number_array<P: FnMut(usize)>(buf: &[u8], pos: usize, mut progress: P) -> Scan<usize> {
    let mut at = expect(buf, pos, b'[')?;
    loop {
        let end = (at + CHUNK).min(buf.len());
        if let Some(k) = memchr::memchr(b']', &buf[at..end]) {
            return Ok(at + k + 1);
        }
        if end == buf.len() {
            return Err(ScanError::Eof);
        }
        progress(end);
        at = end;
    }
}

/// Bytes decoded between two `progress` calls (and pages released by the caller).
const CHUNK: usize = 8 << 20;

/// Decodes the array of unsigned integers at `pos` (after whitespace) in records of
/// `fields` values: `record` gets each complete record. Returns the position after the `]`
/// and the number of values. Values above `u32::MAX`, signs, fractions and a count that is
/// not a multiple of `fields` are errors.
///
/// `progress(done_up_to)` is called every few megabytes with the byte position reached, so
/// the caller can release the pages behind it.
pub fn number_records<F, P>(
    buf: &[u8],
    pos: usize,
    fields: usize,
    mut record: F,
    mut progress: P,
) -> Scan<(usize, u64)>
where
    F: FnMut(&[u32]) -> Scan<()>,
    P: FnMut(usize),
{
    let open = expect(buf, pos, b'[')?;
    let mut rec = [0u32; 64];
    let mut at = [0usize; 64];
    if fields == 0 || fields > rec.len() {
        return bad(open, format!("{fields} fields per record is not supported"));
    }
    let mut f = 0usize;
    let mut values = 0u64;
    let mut after_number = false;
    let mut chunk_start = open;
    let close = loop {
        let chunk_end = (chunk_start + CHUNK).min(buf.len());
        // The array ends in this chunk, or the chunk is extended to the end of the number
        // it cuts, so no number spans two chunks.
        let (end, last) = match memchr::memchr(b']', &buf[chunk_start..chunk_end]) {
            Some(k) => (chunk_start + k, true),
            None if chunk_end == buf.len() => return Err(ScanError::Eof),
            None => {
                let mut end = chunk_end;
                while end < buf.len() && buf[end].is_ascii_digit() {
                    end += 1;
                }
                (end, false)
            }
        };
        let slice = &buf[chunk_start..end];
        let mut i = 0usize;
        let n = slice.len();
        while i < n {
            let b = slice[i];
            let d = b.wrapping_sub(b'0');
            if d < 10 {
                if after_number {
                    return bad(chunk_start + i, "expected ',' between numbers");
                }
                let start = i;
                let mut v = d as u64;
                i += 1;
                while i < n {
                    let d = slice[i].wrapping_sub(b'0');
                    if d >= 10 {
                        break;
                    }
                    v = v * 10 + d as u64;
                    i += 1;
                }
                if i - start > 10 || v > u32::MAX as u64 {
                    return bad(
                        chunk_start + start,
                        format!(
                            "the value {} does not fit in 32 bits",
                            String::from_utf8_lossy(&slice[start..i])
                        ),
                    );
                }
                rec[f] = v as u32;
                at[f] = chunk_start + start;
                f += 1;
                values += 1;
                if f == fields {
                    record(&rec[..fields]).map_err(|e| match e {
                        ScanError::BadField { field, detail } => ScanError::Bad {
                            offset: at[field.min(fields - 1)],
                            detail,
                        },
                        e => e,
                    })?;
                    f = 0;
                }
                after_number = true;
            } else if b == b',' && after_number {
                after_number = false;
                i += 1;
            } else if is_ws(b) {
                i += 1;
            } else {
                return bad(
                    chunk_start + i,
                    format!("expected an unsigned integer, found '{}'", printable(b)),
                );
            }
        }
        progress(end);
        chunk_start = end;
        if last {
            break end;
        }
    };
    if values > 0 && !after_number {
        return bad(close, "a ',' before ']'");
    }
    if f != 0 {
        return bad(
            close,
            format!("{values} values is not a whole number of {fields}-field records"),
        );
    }
    Ok((close + 1, values))
}

/// Locates every string of the array at `pos`: the offsets (from `pos`) of their first byte
/// after the opening quote. `inspect(index, raw)` sees each string's raw (still escaped)
/// bytes. `progress(done_up_to)` is called every few megabytes, as in `number_records`.
/// Returns the position after the `]`.
pub fn string_offsets<'b, I, P>(
    buf: &'b [u8],
    pos: usize,
    out: &mut Vec<u32>,
    mut inspect: I,
    mut progress: P,
) -> Scan<usize>
where
    I: FnMut(u32, &'b [u8]),
    P: FnMut(usize),
{
    let base = skip_ws(buf, pos)?;
    let mut i = expect(buf, base, b'[')?;
    i = skip_ws(buf, i)?;
    if buf[i] == b']' {
        return Ok(i + 1);
    }
    let mut reported = i;
    loop {
        i = skip_ws(buf, i)?;
        if buf[i] != b'"' {
            return bad(
                i,
                format!("expected a string, found '{}'", printable(buf[i])),
            );
        }
        let rel = i + 1 - base;
        let Ok(rel) = u32::try_from(rel) else {
            return bad(i, "the strings section is larger than 4 GiB");
        };
        let end = string_end(buf, i)?;
        inspect(out.len() as u32, &buf[i + 1..end - 1]);
        out.push(rel);
        i = skip_ws(buf, end)?;
        if i - reported >= CHUNK {
            progress(i);
            reported = i;
        }
        match buf[i] {
            b',' => i += 1,
            b']' => return Ok(i + 1),
            b => {
                return bad(
                    i,
                    format!(
                        "expected ',' or ']' after a string, found '{}'",
                        printable(b)
                    ),
                );
            }
        }
    }
}

/// Unescapes the JSON string whose content starts at `start` (just after the opening quote).
/// Bad escapes and lone surrogates become U+FFFD: names are for display.
pub fn unescape(buf: &[u8], start: usize) -> String {
    let mut out: Vec<u8> = Vec::new();
    let mut i = start;
    loop {
        let Some(k) = memchr::memchr2(b'"', b'\\', buf.get(i..).unwrap_or(&[])) else {
            out.extend_from_slice(buf.get(i..).unwrap_or(&[]));
            break;
        };
        out.extend_from_slice(&buf[i..i + k]);
        i += k;
        if buf[i] == b'"' {
            break;
        }
        // an escape
        let Some(&e) = buf.get(i + 1) else { break };
        i += 2;
        let simple = match e {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'/' => Some(b'/'),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            continue;
        }
        if e != b'u' {
            out.extend_from_slice("\u{FFFD}".as_bytes());
            continue;
        }
        let Some(hi) = hex4(buf, i) else {
            out.extend_from_slice("\u{FFFD}".as_bytes());
            continue;
        };
        i += 4;
        let c = if (0xD800..0xDC00).contains(&hi) {
            // a high surrogate: a low one must follow as \uXXXX
            match (buf.get(i..i + 2), hex4(buf, i + 2)) {
                (Some(b"\\u"), Some(lo)) if (0xDC00..0xE000).contains(&lo) => {
                    i += 6;
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                }
                _ => None,
            }
        } else {
            char::from_u32(hi)
        };
        let mut tmp = [0u8; 4];
        out.extend_from_slice(c.unwrap_or('\u{FFFD}').encode_utf8(&mut tmp).as_bytes());
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex4(buf: &[u8], at: usize) -> Option<u32> {
    let s = buf.get(at..at + 4)?;
    let s = std::str::from_utf8(s).ok()?;
    u32::from_str_radix(s, 16).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn records(text: &str, fields: usize) -> Scan<Vec<Vec<u32>>> {
        let mut out = Vec::new();
        number_records(
            text.as_bytes(),
            0,
            fields,
            |r| {
                out.push(r.to_vec());
                Ok(())
            },
            |_| {},
        )?;
        Ok(out)
    }

    #[test]
    fn numbers_in_records() {
        assert_eq!(
            records("[1,2,3\n,40,5 , 6]", 3).unwrap(),
            vec![vec![1, 2, 3], vec![40, 5, 6]]
        );
        assert_eq!(records("[ ]", 2).unwrap(), Vec::<Vec<u32>>::new());
        assert_eq!(records("[4294967295]", 1).unwrap(), vec![vec![u32::MAX]]);
    }

    #[test]
    fn bad_numbers() {
        assert!(matches!(records("[1,2", 1), Err(ScanError::Eof)));
        assert!(matches!(
            records("[1,-2]", 1),
            Err(ScanError::Bad { offset: 3, .. })
        ));
        assert!(matches!(records("[1.5]", 1), Err(ScanError::Bad { .. })));
        assert!(matches!(records("[1 2]", 1), Err(ScanError::Bad { .. })));
        assert!(matches!(
            records("[4294967296]", 1),
            Err(ScanError::Bad { .. })
        ));
        assert!(matches!(records("[1,2,3]", 2), Err(ScanError::Bad { .. })));
        assert!(matches!(records("[1,]", 1), Err(ScanError::Bad { .. })));
        assert!(matches!(records("[,1]", 1), Err(ScanError::Bad { .. })));
    }

    #[test]
    fn strings_located_and_unescaped() {
        let text = r#" ["a", "b\"c" ,"\u00e9\n\\", "\ud83d\ude00", "x\ud800y"]"#;
        let mut offs = Vec::new();
        let mut seen = Vec::new();
        let end = string_offsets(
            text.as_bytes(),
            0,
            &mut offs,
            |i, raw| seen.push((i, raw.to_vec())),
            |_| {},
        )
        .unwrap();
        assert_eq!(seen[1], (1, b"b\\\"c".to_vec()), "raw, still escaped");
        assert_eq!(seen.len(), 5);
        assert_eq!(end, text.len());
        let base = 1; // the '[' after one space
        let got: Vec<String> = offs
            .iter()
            .map(|&o| unescape(text.as_bytes(), base + o as usize))
            .collect();
        assert_eq!(got, vec!["a", "b\"c", "é\n\\", "😀", "x\u{FFFD}y"]);
    }

    #[test]
    fn values_skipped() {
        let text = br#"{"a":[[1,"]"],{"b":2}], "c":3}"#;
        assert_eq!(skip_value(text, 0).unwrap(), text.len());
        let (k, at) = key(text, 1).unwrap();
        assert_eq!(k, b"a");
        assert_eq!(skip_value(text, at).unwrap(), 22);
        assert!(matches!(skip_value(b"[1,[2]", 0), Err(ScanError::Eof)));
    }
}
