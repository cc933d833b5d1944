//! Text output for the terminal: aligned tables, sizes for people.

use super::diff::{HeapDiff, LeakRootGroup};
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
    table_left(out, header, rows, &[]);
}

/// Rows of cells; the first column and those in `left` left-aligned, the others right-aligned.
fn table_left(out: &mut String, header: &[&str], rows: &[Vec<String>], left: &[usize]) {
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
            } else if left.contains(&i) {
                text.push_str("  ");
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
        self.overview_section(&mut out);
        self.leak_root_section(&mut out);
        out.push('\n');
        self.comparison_section(&mut out);
        self.embedder_section(&mut out);
        self.grew_every_step_section(&mut out);
        self.still_alive_section(&mut out);
        f.write_str(&out)
    }
}

impl HeapDiff {
    /// The headline, the snapshots compared, and the first-to-last totals.
    fn overview_section(&self, out: &mut String) {
        if let Some(h) = &self.headline {
            let _ = writeln!(out, "{h}");
            out.push('\n');
        }
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
    }

    /// DevTools' Comparison view: the `--top` classes that changed most.
    fn comparison_section(&self, out: &mut String) {
        if self.rows.is_empty() {
            let _ = writeln!(out, "No object was added or freed between them.");
            return;
        }
        let _ = writeln!(out, "By class (DevTools' Comparison view):");
        let shown = if self.top == 0 {
            self.rows.len()
        } else {
            self.top.min(self.rows.len())
        };
        table(out, &COMPARISON, &comparison_rows(&self.rows[..shown]));
        let more = self.rows.len() - shown;
        if more > 0 {
            let _ = writeln!(
                out,
                "… {} more classes changed (--top 0 lists all)",
                grouped(more as u64)
            );
        }
    }

    /// Embedder objects, compared by count (their ids are new in every snapshot).
    fn embedder_section(&self, out: &mut String) {
        if self.embedder.is_empty() {
            return;
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "Embedder objects (V8 gives them new ids in every snapshot: compared by count):"
        );
        let rows: Vec<Vec<String>> = self
            .embedder
            .iter()
            .take(10)
            .map(|e| {
                vec![
                    clip(&e.class, CLASS_WIDTH),
                    grouped(e.first_count),
                    grouped(e.last_count),
                    signed(e.count_delta),
                    Delta(e.size_delta as f64).to_string(),
                ]
            })
            .collect();
        table(
            out,
            &["Class", "First", "Last", "# Delta", "Size Delta"],
            &rows,
        );
        if self.embedder.len() > 10 {
            let _ = writeln!(out, "… {} more", grouped(self.embedder.len() as u64 - 10));
        }
    }

    /// With 3+ snapshots: the classes that grew in every step, one column per step.
    fn grew_every_step_section(&self, out: &mut String) {
        let Some(grew) = &self.grew_every_step else {
            return;
        };
        out.push('\n');
        if grew.is_empty() {
            let _ = writeln!(out, "No class grew in every step.");
            return;
        }
        let steps = self.snapshots.len() - 1;
        let _ = writeln!(
            out,
            "Grew in every step ({steps} steps), # Delta and Size Delta per step:"
        );
        let mut header: Vec<String> = vec!["Class".into()];
        header.extend((1..=steps).map(|k| format!("# Delta {k}")));
        header.extend((1..=steps).map(|k| format!("Size Delta {k}")));
        let rows: Vec<Vec<String>> = grew
            .iter()
            .take(10)
            .map(|g| {
                let mut row = vec![clip(&g.class, CLASS_WIDTH)];
                row.extend(g.delta_counts.iter().map(|&d| signed(d)));
                row.extend(g.size_deltas.iter().map(|&d| Delta(d as f64).to_string()));
                row
            })
            .collect();
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        table(out, &header, &rows);
        if grew.len() > 10 {
            let _ = writeln!(out, "… {} more", grouped(grew.len() as u64 - 10));
        }
    }

    /// With 3+ snapshots: objects new in a middle snapshot and still alive in the last.
    fn still_alive_section(&self, out: &mut String) {
        let Some(alive) = &self.still_alive else {
            return;
        };
        out.push('\n');
        if alive.is_empty() {
            let _ = writeln!(
                out,
                "No object new in a middle snapshot is still alive in the last."
            );
            return;
        }
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
        table(out, &["Class", "Objects", "Self Size"], &rows);
        if alive.len() > 10 {
            let _ = writeln!(out, "… {} more classes", grouped(alive.len() as u64 - 10));
        }
    }
}

const COMPARISON: [&str; 7] = [
    "Class",
    "# New",
    "# Deleted",
    "# Delta",
    "Alloc. Size",
    "Freed Size",
    "Size Delta",
];

fn comparison_rows(rows: &[super::diff::ClassDiff]) -> Vec<Vec<String>> {
    rows.iter()
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
        .collect()
}

/// `replaced` when a group's class lost as many objects as the group has: churn.
fn churn_note(g: &LeakRootGroup) -> String {
    if g.deleted_count == 0 {
        String::new()
    } else if g.deleted_count >= g.count {
        format!("replaced ({} deleted)", grouped(g.deleted_count))
    } else {
        format!("{} deleted", grouped(g.deleted_count))
    }
}

impl HeapDiff {
    /// The leak roots: a table of the groups, then the paths of the first ones.
    fn leak_root_section(&self, out: &mut String) {
        if self.leak_roots.is_empty() {
            return; // none, or `--paths 0`: no edges were read
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "Leak roots: {} new objects that no other new object holds alone, retaining {}{}:",
            grouped(self.leak_root_count),
            Bytes(self.leak_roots_retained as f64),
            if self.unreachable_new > 0 {
                format!(
                    " ({} more new objects are unreachable: garbage not yet collected)",
                    grouped(self.unreachable_new)
                )
            } else {
                String::new()
            }
        );
        let rows: Vec<Vec<String>> = self
            .leak_roots
            .iter()
            .take(10)
            .map(|g| {
                vec![
                    clip(&g.class, CLASS_WIDTH),
                    format!("+{}", grouped(g.count)),
                    Bytes(g.retained_size as f64).to_string(),
                    Bytes(g.self_size as f64).to_string(),
                    g.held_by.clone().unwrap_or_default(),
                    churn_note(g),
                ]
            })
            .collect();
        table_left(
            out,
            &["Class", "Roots", "Retained", "Self Size", "Held by", ""],
            &rows,
            &[4, 5],
        );
        if self.leak_roots.len() > 10 {
            let _ = writeln!(
                out,
                "… {} more groups",
                grouped(self.leak_roots.len() as u64 - 10)
            );
        }
        for g in self.leak_roots.iter().filter(|g| !g.paths.is_empty()) {
            out.push('\n');
            let _ = writeln!(
                out,
                "{}: {} roots, shortest retaining paths (weak edges skipped):",
                g.class,
                grouped(g.count)
            );
            let w = g
                .paths
                .iter()
                .map(|p| grouped(p.count).len())
                .chain(std::iter::once(grouped(g.other_paths).len()))
                .max()
                .unwrap_or(1);
            for p in &g.paths {
                let _ = writeln!(out, "  {:>w$}  {}", grouped(p.count), p.text);
            }
            if g.other_paths > 0 {
                let _ = writeln!(out, "  {:>w$}  on other paths", grouped(g.other_paths));
            }
        }
    }

    /// A few lines for the end of a live run (whose first line is already the headline): the
    /// first leak-root groups with their main path, and the top `rows` classes (first to
    /// last).
    pub fn brief(&self, rows: usize) -> String {
        let mut out = String::new();
        for g in self.leak_roots.iter().take(3) {
            if let Some(p) = g.paths.first() {
                let _ = writeln!(
                    out,
                    "{} of {} {} roots: {}",
                    grouped(p.count),
                    grouped(g.count),
                    g.class,
                    p.text
                );
            }
        }
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
        out
    }

    /// The same as Markdown, for a CI step summary.
    pub fn markdown(&self, rows: usize) -> String {
        let esc = |s: &str| s.replace('|', "\\|").replace('`', "'");
        let mut out = String::new();
        if let Some(h) = &self.headline {
            let _ = writeln!(out, "**{}**\n", esc(h));
        }
        if !self.leak_roots.is_empty() {
            out.push_str("| Leak roots | Roots | Retained | Held by |\n|---|---:|---:|---|\n");
            for g in self.leak_roots.iter().take(rows) {
                let _ = writeln!(
                    out,
                    "| `{}` | +{} | {} | {} |",
                    esc(&g.class),
                    grouped(g.count),
                    Bytes(g.retained_size as f64),
                    esc(g.held_by.as_deref().unwrap_or(""))
                );
            }
            out.push('\n');
        }
        out.push_str(
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
        for g in self.leak_roots.iter().take(3) {
            if let Some(p) = g.paths.first() {
                let _ = writeln!(
                    out,
                    "\n{} of {} `{}` roots held by: `{}`",
                    grouped(p.count),
                    grouped(g.count),
                    esc(&g.class),
                    esc(&p.text)
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
        let shown = if self.top == 0 {
            self.rows.len()
        } else {
            self.top.min(self.rows.len())
        };
        let rows: Vec<Vec<String>> = self.rows[..shown]
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
        let more = self.classes.saturating_sub(shown as u64);
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
