//! `--native` at the end of a run: the stacks over the analysed window beside the RSS growth
//! (and the managed heap's, when it was judged), written to `native.folded` and `native.svg`
//! next to the other outputs, and a few lines for people. `memwatch report` shows them again
//! from `native.folded`.

use crate::analyze::Analysis;
use crate::native::{NativeData, NativeReport, NativeRun, Window};
use crate::recording::Recording;
use crate::report::output::{Dest, Outputs, write_atomic};
use crate::sample::Metric;
use crate::units::Bytes;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub const FOLDED: &str = "native.folded";
pub const SVG: &str = "native.svg";

/// Where the native files go: the output folder, or beside the CSV; none when the CSV goes
/// to stdout and there is no folder.
pub fn folder(outputs: &Outputs) -> Option<PathBuf> {
    outputs.dir.clone().or_else(|| {
        outputs
            .csv
            .file()
            .map(|p| p.parent().unwrap_or(Path::new("")).to_path_buf())
    })
}

/// The end of a `--native` run: the report over the analysed window (or why there is
/// none), its files written into `folder`.
pub fn conclude(
    run: &NativeRun,
    rec: &Recording,
    analysis: &Analysis,
    managed_judged: bool,
    folder: Option<&Path>,
    title: &str,
) -> NativeReport {
    let mut report = match &run.data {
        Some(d) => live_report(d, run.origin, rec, analysis, managed_judged),
        None => NativeReport::default(),
    };
    if run.problem.is_some() {
        report.problem = run.problem.clone();
    }
    if run.data.is_some() {
        match folder {
            Some(dir) => {
                if let Err(e) = write_files(&mut report, dir, title) {
                    report.problem = Some(format!("cannot write the native stacks: {e}"));
                }
            }
            None => {
                report.problem = Some(
                    "the native stacks are only in summary.json: the CSV went to stdout and no \
                     --out folder was given"
                        .into(),
                );
            }
        }
    }
    report
}

/// The report of a live run: the window and the RSS growth from the analysis.
pub fn live_report(
    data: &NativeData,
    origin: Instant,
    rec: &Recording,
    analysis: &Analysis,
    managed_judged: bool,
) -> NativeReport {
    // Pages are counted between the same two samples as the RSS growth they are set against.
    let (start_s, end_s, growth) = match rss_span(rec, analysis) {
        Some((a, b, g)) => (a, b, Some(g)),
        None => (analysis.window_start_s, analysis.window_end_s, None),
    };
    let window = Window {
        origin,
        start_s,
        end_s,
        excluded: analysis.excluded.clone(),
    };
    let mut report = data.report(&window, growth);
    if managed_judged {
        report.managed_heap_share_of_rss_growth = managed_share(rec, analysis, &report);
    }
    report
}

/// Writes native.folded and native.svg into `dir`, and says where in the report.
pub fn write_files(report: &mut NativeReport, dir: &Path, title: &str) -> Result<(), String> {
    let folded = dir.join(FOLDED);
    write_atomic(&Dest::File(folded.clone()), report.folded_text.as_bytes())
        .map_err(|e| e.to_string())?;
    report.folded = Some(folded.display().to_string());
    if report.folded_text.is_empty() {
        return Ok(()); // no stack: no flame graph to draw
    }
    let svg = crate::native::flame::svg(&report.folded_text, title)?;
    let path = dir.join(SVG);
    write_atomic(&Dest::File(path.clone()), &svg).map_err(|e| e.to_string())?;
    report.flamegraph = Some(path.display().to_string());
    Ok(())
}

/// `memwatch report FILE`: the native stacks of the run, from `native.folded` beside FILE.
pub fn from_recording(file: &Path, rec: &Recording, analysis: &Analysis) -> Option<NativeReport> {
    let path = file.parent().unwrap_or(Path::new("")).join(FOLDED);
    let text = std::fs::read_to_string(&path).ok()?;
    let stacks = crate::native::read_folded(&text);
    let mut report = crate::native::report::report_from_folded(stacks, rss_growth(rec, analysis));
    report.folded = Some(path.display().to_string());
    Some(report)
}

/// RSS growth over the analysed window: the last RSS inside it minus the first.
fn rss_growth(rec: &Recording, analysis: &Analysis) -> Option<f64> {
    rss_span(rec, analysis).map(|(_, _, g)| g)
}

/// The first and last sample inside the analysed window (seconds) and the RSS growth between.
fn rss_span(rec: &Recording, analysis: &Analysis) -> Option<(f64, f64, f64)> {
    let rss = rec.metric(Metric::Rss)?;
    growth_in(&rec.time_s, rss, analysis)
}

fn growth_in(t: &[f64], v: &[f64], a: &Analysis) -> Option<(f64, f64, f64)> {
    let inside = |i: &usize| {
        let ti = t[*i];
        ti >= a.window_start_s && ti <= a.window_end_s && v[*i].is_finite()
    };
    let first = (0..t.len().min(v.len())).find(inside)?;
    let last = (0..t.len().min(v.len())).rev().find(inside)?;
    (last > first).then(|| (t[first], t[last], v[last] - v[first]))
}

/// The managed heap's growth (after GC, with external memory) as a share of RSS growth.
fn managed_share(rec: &Recording, analysis: &Analysis, report: &NativeReport) -> Option<f64> {
    let (t, v) = crate::judge::managed_series(rec)?;
    let (_, _, heap) = growth_in(&t, &v, analysis)?;
    let rss = report.rss_growth_bytes.filter(|&g| g > 0.0)?;
    Some(heap.max(0.0) / rss)
}

/// The lines at the end of a run (and of `memwatch report`).
pub fn lines(report: &NativeReport, runtime: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(attributed) = report.attributed_bytes else {
        return out; // nothing was sampled: the refusal was said at the start, once
    };
    if let Some(problem) = &report.problem {
        out.push(format!("native: {problem}"));
    }
    let pct = |x: f64| format!("{:.0}%", x * 100.0);
    let growth = report
        .rss_growth_bytes
        .map_or_else(|| "unknown".to_string(), |g| Bytes(g).to_string());
    let explained = report
        .share_of_rss_growth
        .map_or_else(String::new, |s| format!(", {} of it", pct(s)));
    let sampled = match (report.faults_seen, report.samples) {
        (Some(seen), Some(samples)) if samples > 0 => format!(
            "; {seen} page faults seen, {samples} sampled{}",
            match report.lost {
                Some(lost) if lost > 0 => format!(", {lost} lost (shares are approximate)"),
                _ => String::new(),
            }
        ),
        _ => String::new(),
    };
    out.push(format!(
        "native: the stacks below faulted in {} still held over the analysed window (RSS grew {growth}{explained}){sampled}",
        Bytes(attributed as f64),
    ));
    if let (Some(heap), Some(native)) = (
        report.managed_heap_share_of_rss_growth,
        report.share_of_rss_growth,
    ) && heap < 0.5
    {
        let what = match runtime {
            Some("jvm") => "Java heap",
            _ => "JavaScript heap",
        };
        out.push(format!(
            "native: the {what} explains {} of the RSS growth; the native stacks below explain {}",
            pct(heap),
            pct(native)
        ));
    }
    // A function with the bytes of one listed before is on the same path (main above
    // leak_session): the innermost of them says most.
    let mut listed: Vec<u64> = Vec::new();
    let top: Vec<String> = report
        .functions
        .iter()
        .filter(|f| {
            let new = !listed.contains(&f.inclusive_bytes);
            listed.push(f.inclusive_bytes);
            new
        })
        .take(5)
        .map(|f| format!("{} {}", pct(f.inclusive_share), short(&f.name)))
        .collect();
    if !top.is_empty() {
        out.push(format!(
            "native: top functions (inclusive): {}",
            top.join(", ")
        ));
    }
    for s in report.stacks.iter().take(3) {
        let tail: Vec<&str> = s.frames.iter().rev().take(6).map(|f| short(f)).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        out.push(format!(
            "native:   {} {} {}",
            pct(s.share),
            Bytes(s.bytes as f64),
            tail.join(" > ")
        ));
    }
    if let Some(svg) = &report.flamegraph {
        out.push(format!("native: flame graph {svg}"));
    } else if let Some(folded) = &report.folded {
        out.push(format!("native: folded stacks {folded}"));
    }
    out
}

/// A function name cut for one line: a C++ argument list at the end dropped
/// (`Store::add(int)` -> `Store::add`; `(anonymous namespace)` inside the name stays).
fn short(name: &str) -> &str {
    if !name.ends_with(')') {
        return name;
    }
    let mut depth = 0;
    for (i, c) in name.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    return if i == 0 { name } else { &name[..i] };
                }
            }
            _ => {}
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn short_names() {
        assert_eq!(short("SessionStore::record(long)"), "SessionStore::record");
        assert_eq!(
            short("node::(anonymous namespace)::ZlibContext::InitZlib()"),
            "node::(anonymous namespace)::ZlibContext::InitZlib"
        );
        assert_eq!(
            short("node::Work()::{lambda(uv_work_s*)#1}::_FUN(uv_work_s*)"),
            "node::Work()::{lambda(uv_work_s*)#1}::_FUN"
        );
        assert_eq!(short("leak_session"), "leak_session");
        assert_eq!(short("(weird)"), "(weird)");
    }
}
