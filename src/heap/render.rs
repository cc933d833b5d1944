//! Text output for the terminal: aligned tables, sizes for people.

use super::diff::HeapDiff;
use super::summary::HeapSummary;
use crate::units::{Bytes, Delta};
use std::fmt::{self, Write as _};

/// `1234567` -> `1,234,567`.
pub fn grouped(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn signed(v: i64) -> String {
    let sign = if v > 0 {
        "+"
    } else if v < 0 {
        "-"
    } else {
        ""
    };
    format!("{sign}{}", grouped(v.unsigned_abs()))
}

fn clip(name: &str, width: usize) -> String {
    let name = name.replace(['\n', '\r', '\t'], " ");
    if name.chars().count() <= width {
        name
    } else {
        let mut s: String = name.chars().take(width - 1).collect();
        s.push('…');
        s
    }
}

/// Rows of cells; the first column left-aligned, the others right-aligned.
fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |out: &mut String, cells: &[String]| {
        let mut text = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(c.chars().count());
            if i == 0 {
                text.push_str(c);
                text.push_str(&" ".repeat(pad));
            } else {
                text.push_str("  ");
                text.push_str(&" ".repeat(pad));
                text.push_str(c);
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    line(out, &head);
    for r in rows {
        line(out, r);
    }
}

const CLASS_WIDTH: usize = 48;

impl fmt::Display for HeapDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Heap diff of {} snapshots (objects matched by id):",
            self.snapshots.len()
        );
        for (i, s) in self.snapshots.iter().enumerate() {
            let _ = writeln!(
                out,
                "  [{}] {}  ({}, {} nodes, {} edges, self size {})",
                i + 1,
                s.file,
                Bytes(s.file_bytes as f64),
                grouped(s.nodes),
                grouped(s.edges),
                Bytes(s.self_size as f64)
            );
        }
        let _ = writeln!(
            out,
            "First to last: {} new, {} deleted, size delta {}, {} classes changed",
            grouped(self.new_count),
            grouped(self.deleted_count),
            Delta(self.size_delta as f64),
            grouped(self.classes_changed)
        );
        if self.common_count * 10 < self.deleted_count {
            let _ = writeln!(
                out,
                "Note: only {} objects are in both the first and the last snapshot: are they of one \
                 process? Object ids match only within one process.",
                grouped(self.common_count)
            );
        }
        out.push('\n');
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    clip(&r.class, CLASS_WIDTH),
                    grouped(r.new_count),
                    grouped(r.deleted_count),
                    signed(r.delta_count),
                    Bytes(r.alloc_size as f64).to_string(),
                    Bytes(r.freed_size as f64).to_string(),
                    Delta(r.size_delta as f64).to_string(),
                ]
            })
            .collect();
        if rows.is_empty() {
            let _ = writeln!(out, "No object was added or freed between them.");
        } else {
            table(
                &mut out,
                &[
                    "Class",
                    "# New",
                    "# Deleted",
                    "# Delta",
                    "Alloc. Size",
                    "Freed Size",
                    "Size Delta",
                ],
                &rows,
            );
        }
        let more = self.classes_changed.saturating_sub(self.rows.len() as u64);
        if more > 0 {
            let _ = writeln!(
                out,
                "… {} more classes changed (--top 0 lists all)",
                grouped(more)
            );
        }
        if let Some(grew) = &self.grew_every_step {
            out.push('\n');
            if grew.is_empty() {
                let _ = writeln!(out, "No class grew in every step.");
            } else {
                let _ = writeln!(
                    out,
                    "Grew in every step ({} steps), # Delta and Size Delta per step:",
                    self.snapshots.len() - 1
                );
                let rows: Vec<Vec<String>> = grew
                    .iter()
                    .take(10)
                    .map(|g| {
                        vec![
                            clip(&g.class, CLASS_WIDTH),
                            g.delta_counts
                                .iter()
                                .map(|&d| signed(d))
                                .collect::<Vec<_>>()
                                .join(" "),
                            g.size_deltas
                                .iter()
                                .map(|&d| Delta(d as f64).to_string())
                                .collect::<Vec<_>>()
                                .join(" "),
                        ]
                    })
                    .collect();
                table(&mut out, &["Class", "# Delta", "Size Delta"], &rows);
                if grew.len() > 10 {
                    let _ = writeln!(out, "… {} more", grouped(grew.len() as u64 - 10));
                }
            }
        }
        if let Some(alive) = &self.still_alive {
            out.push('\n');
            if alive.is_empty() {
                let _ = writeln!(
                    out,
                    "No object new in a middle snapshot is still alive in the last."
                );
            } else {
                let _ = writeln!(
                    out,
                    "New in a middle snapshot and still alive in the last (the strongest leak signal):"
                );
                let rows: Vec<Vec<String>> = alive
                    .iter()
                    .take(10)
                    .map(|a| {
                        vec![
                            clip(&a.class, CLASS_WIDTH),
                            grouped(a.count),
                            Bytes(a.self_size as f64).to_string(),
                        ]
                    })
                    .collect();
                table(&mut out, &["Class", "Objects", "Self Size"], &rows);
                if alive.len() > 10 {
                    let _ = writeln!(out, "… {} more classes", grouped(alive.len() as u64 - 10));
                }
            }
        }
        if !self.paths.is_empty() {
            out.push('\n');
            let _ = writeln!(
                out,
                "Retaining paths of the new objects (shortest from the roots, weak edges skipped):"
            );
            for c in &self.paths {
                let _ = writeln!(out, "{}: {} new", c.class, grouped(c.new_objects));
                let w = c
                    .groups
                    .iter()
                    .map(|g| grouped(g.count).len())
                    .max()
                    .unwrap_or(1);
                for g in &c.groups {
                    let _ = writeln!(out, "  {:>w$}  {}", grouped(g.count), g.text);
                }
                if c.other_paths > 0 {
                    let _ = writeln!(out, "  {:>w$}  on other paths", grouped(c.other_paths));
                }
                if c.unreachable > 0 {
                    let _ = writeln!(
                        out,
                        "  {:>w$}  unreachable (garbage not yet collected)",
                        grouped(c.unreachable)
                    );
                }
            }
        }
        f.write_str(&out)
    }
}

impl HeapDiff {
    /// A few lines for the end of a live run: the top `rows` classes (first to last) and the
    /// main retaining path of each class that has one.
    pub fn brief(&self, rows: usize) -> String {
        let mut out = String::new();
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .take(rows)
            .map(|r| {
                vec![
                    clip(&r.class, CLASS_WIDTH),
                    grouped(r.new_count),
                    grouped(r.deleted_count),
                    signed(r.delta_count),
                    Delta(r.size_delta as f64).to_string(),
                ]
            })
            .collect();
        table(
            &mut out,
            &["Class", "# New", "# Deleted", "# Delta", "Size Delta"],
            &cells,
        );
        for c in &self.paths {
            if let Some(g) = c.groups.first() {
                let _ = writeln!(
                    out,
                    "{} of {} new {}: {}",
                    grouped(g.count),
                    grouped(c.new_objects),
                    c.class,
                    g.text
                );
            }
        }
        out
    }

    /// The same as a Markdown table and list, for a CI step summary.
    pub fn markdown(&self, rows: usize) -> String {
        let esc = |s: &str| s.replace('|', "\\|").replace('`', "'");
        let mut out = String::from(
            "| Class | # New | # Deleted | # Delta | Alloc. Size | Freed Size | Size Delta |\n|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in self.rows.iter().take(rows) {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} | {} |",
                esc(&r.class),
                grouped(r.new_count),
                grouped(r.deleted_count),
                signed(r.delta_count),
                Bytes(r.alloc_size as f64),
                Bytes(r.freed_size as f64),
                Delta(r.size_delta as f64)
            );
        }
        for c in &self.paths {
            if let Some(g) = c.groups.first() {
                let _ = writeln!(
                    out,
                    "\n{} of {} new `{}` held by: `{}`",
                    grouped(g.count),
                    grouped(c.new_objects),
                    esc(&c.class),
                    esc(&g.text)
                );
            }
        }
        out
    }
}

impl fmt::Display for HeapSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}  ({}, {} nodes, {} edges): {} reachable, {} classes",
            self.file,
            Bytes(self.file_bytes as f64),
            grouped(self.nodes),
            grouped(self.edges),
            Bytes(self.total_size as f64),
            grouped(self.classes)
        );
        out.push('\n');
        let rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    clip(&r.class, CLASS_WIDTH),
                    grouped(r.count),
                    Bytes(r.self_size as f64).to_string(),
                    Bytes(r.retained_size as f64).to_string(),
                ]
            })
            .collect();
        table(
            &mut out,
            &["Class", "Count", "Self Size", "Retained Size"],
            &rows,
        );
        let more = self.classes.saturating_sub(self.rows.len() as u64);
        if more > 0 {
            let _ = writeln!(out, "… {} more classes (--top 0 lists all)", grouped(more));
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn numbers_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(signed(-1500), "-1,500");
        assert_eq!(signed(7), "+7");
    }
}
