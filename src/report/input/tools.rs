//! The files of other tools: psrecord `--log` and mprof `.dat`. Both give sizes in MiB
//! (floats); both are small enough to be read whole.

use super::*;

// ---------------------------------------------------------------------------------------------
// psrecord --log

pub(super) fn read_psrecord(
    text: &[u8],
    file: &str,
    options: &ReadOptions,
) -> Result<Loaded, InputError> {
    let fail = |line: u64, problem| InputError {
        file: file.to_string(),
        line: Some(line),
        problem,
    };
    let mut lines = numbered_lines(text).filter(|l| !l.text.trim_ascii().is_empty());
    let header = lines.next().ok_or_else(|| InputError {
        file: file.to_string(),
        line: None,
        problem: Problem::Empty,
    })?;
    // Labels are centred in 12-character cells ("  CPU (%)   "), so they hold single spaces and
    // are separated by two or more.
    let header_text = String::from_utf8_lossy(header.text.trim_ascii());
    let header_text = header_text.trim_start_matches('#').replace('\t', "  ");
    let labels: Vec<&str> = header_text
        .split("  ")
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let find = |prefix: &str| {
        labels
            .iter()
            .position(|l| l.to_ascii_lowercase().starts_with(prefix))
    };
    let missing = |column: &str| {
        fail(
            header.number,
            Problem::MissingColumn {
                column: column.to_string(),
                found: labels.join(", "),
                needs: "a psrecord log needs 'Elapsed time' and 'Real (MB)'",
            },
        )
    };
    let elapsed = find("elapsed").ok_or_else(|| missing("Elapsed time"))?;
    let sizes: Vec<(Metric, usize)> = [
        (Metric::Rss, find("real")),
        (Metric::Vsz, find("virtual")),
        (Metric::Uss, find("uss")),
    ]
    .into_iter()
    .filter_map(|(m, index)| Some((m, index?)))
    .collect();
    if !sizes.iter().any(|(m, _)| *m == Metric::Rss) {
        return Err(missing("Real (MB)"));
    }

    let mut rec = Recording::keeping(estimate_lines(text, text.len() as u64), Kept::ALL);
    let mut warnings = Vec::new();
    let mut values = [f64::NAN; Metric::COUNT];
    let mut previous: Option<(f64, u64)> = None;
    let mut fields: Vec<&[u8]> = Vec::with_capacity(labels.len());
    for line in lines {
        if line.text.trim_ascii_start().starts_with(b"#") {
            continue; // a comment
        }
        fields.clear();
        fields.extend(
            line.text
                .split(u8::is_ascii_whitespace)
                .filter(|f| !f.is_empty()),
        );
        let row = (|| {
            // psrecord variants append columns (USS, I/O): extra fields are fine, fewer are not.
            if fields.len() < labels.len() {
                return Err(Problem::FieldCount {
                    found: fields.len(),
                    expected: labels.len(),
                });
            }
            let t = parse_float(fields[elapsed])
                .map_err(|bad| bad.problem(fields[elapsed], labels[elapsed], "seconds"))?;
            for &(m, index) in &sizes {
                values[m.index()] = parse_mib(fields[index], labels[index])?;
            }
            in_time_order(t, previous, |line| line, labels[elapsed])
        })();
        match row {
            Ok(t) => {
                rec.push_row(t, &values);
                previous = Some((t, line.number));
            }
            Err(_) if line.cut => {
                warnings.push(cut_line_warning(file, line.number, line.text));
                break;
            }
            Err(problem) => return Err(fail(line.number, problem)),
        }
    }
    let mut columns = ColumnFacts::new(options);
    for &(m, _) in &sizes {
        columns.in_header[m.index()] = true;
    }
    let rec = columns.keep_only(rec);
    no_samples_after(&rec, file, header.number)?;
    finish(
        rec,
        None,
        Vec::new(),
        Format::Psrecord,
        warnings,
        file,
        columns,
    )
}

// ---------------------------------------------------------------------------------------------
// mprof .dat

pub(super) fn read_mprof(
    text: &[u8],
    file: &str,
    options: &ReadOptions,
) -> Result<Loaded, InputError> {
    const MEM_COLUMN: &str = "MEM memory (MiB)";
    const TIME_COLUMN: &str = "MEM timestamp";
    let fail = |line: u64, problem| InputError {
        file: file.to_string(),
        line: Some(line),
        problem,
    };
    let mut rec = Recording::keeping(estimate_lines(text, text.len() as u64), Kept::ALL);
    let mut warnings = Vec::new();
    let mut values = [f64::NAN; Metric::COUNT];
    // (raw timestamp, line): elapsed time counts from the first MEM line.
    let mut first_time: Option<f64> = None;
    let mut previous: Option<(f64, u64)> = None;
    let mut child_lines = 0usize;
    let mut unknown: Option<(u64, usize)> = None; // first such line, and how many
    let mut first_line = None;
    for line in numbered_lines(text) {
        let mut words = line
            .text
            .split(u8::is_ascii_whitespace)
            .filter(|w| !w.is_empty());
        let Some(keyword) = words.next() else {
            continue;
        };
        first_line.get_or_insert(line.number);
        match keyword {
            b"MEM" => {}
            b"CMDLINE" | b"FUNC" => continue,
            b"CHLD" => {
                child_lines += 1;
                continue;
            }
            _ if line.cut => {
                warnings.push(cut_line_warning(file, line.number, line.text));
                break;
            }
            _ => {
                let seen = unknown.get_or_insert((line.number, 0));
                seen.1 += 1;
                continue;
            }
        }
        let (mem, time) = (words.next(), words.next());
        let row = (|| {
            let (Some(mem), Some(time)) = (mem, time) else {
                return Err(Problem::FieldCount {
                    found: 1 + usize::from(mem.is_some()),
                    expected: 3,
                });
            };
            let timestamp =
                parse_float(time).map_err(|bad| bad.problem(time, TIME_COLUMN, "seconds"))?;
            let ordered = in_time_order(timestamp, previous, |line| line, TIME_COLUMN)?;
            values[Metric::Rss.index()] = parse_mib(mem, MEM_COLUMN)?;
            Ok(ordered)
        })();
        match row {
            Ok(timestamp) => {
                let start = *first_time.get_or_insert(timestamp);
                rec.push_row(timestamp - start, &values);
                previous = Some((timestamp, line.number));
            }
            Err(_) if line.cut => {
                warnings.push(cut_line_warning(file, line.number, line.text));
                break;
            }
            Err(problem) => return Err(fail(line.number, problem)),
        }
    }
    if child_lines > 0 {
        warnings.push(format!(
            "{file}: skipped {child_lines} CHLD lines (per-child memory from mprof \
             --multiprocess); only the main process's MEM lines are analysed"
        ));
    }
    if let Some((line, count)) = unknown {
        warnings.push(format!(
            "{file} line {line}: skipped {count} line(s) that are not MEM, CHLD, FUNC or CMDLINE"
        ));
    }
    let mut columns = ColumnFacts::new(options);
    columns.in_header[Metric::Rss.index()] = true;
    let rec = columns.keep_only(rec);
    no_samples_after(&rec, file, first_line.unwrap_or(1))?;
    finish(
        rec,
        None,
        Vec::new(),
        Format::Mprof,
        warnings,
        file,
        columns,
    )
}
