//! `memwatch heap summary`: per class, count, self size and retained size, as DevTools'
//! Summary view.

use super::classes::{ClassSlots, split_names};
use super::error::Result;
use super::graph::Dominators;
use super::snapshot::{Location, Need, Snapshot};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct SummaryOptions {
    /// Rows the text shows (largest retained size first); 0 shows all. The JSON has all.
    pub top: usize,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        SummaryOptions { top: 20 }
    }
}

/// One class of the Summary view.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClassSummary {
    pub class: String,
    /// Objects of the class (DevTools leaves out zero-size nodes).
    pub count: u64,
    /// Sum of their self sizes.
    pub self_size: u64,
    /// Memory freed if all of them went: the sum of the retained sizes of the objects of the
    /// class that no other object of the class dominates.
    pub retained_size: u64,
    /// Where the constructor is defined (`file:line:column`, 1-based), for classes split by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeapSummary {
    pub file: String,
    pub file_bytes: u64,
    pub nodes: u64,
    pub edges: u64,
    /// Retained size of the root: everything reachable.
    pub total_size: u64,
    pub classes: u64,
    /// Every class, the largest retained size first.
    pub rows: Vec<ClassSummary>,
    /// Rows the text shows (`--top`; 0: all).
    #[serde(skip)]
    pub top: usize,
}

pub fn summarize_file(path: &Path, opts: &SummaryOptions) -> Result<HeapSummary> {
    let mut s = Snapshot::open(path, Need::NodesAndEdges)?;
    s.propagate_dom_state();
    Ok(summarize(&s, opts))
}

pub fn summarize(s: &Snapshot, opts: &SummaryOptions) -> HeapSummary {
    let n = s.node_count();
    let dom = Dominators::compute(s);
    let mut slots = ClassSlots::new(s);
    let class: Vec<u32> = s.class_keys().map(|k| slots.slot(k) as u32).collect();
    let k = slots.len();
    let mut count = vec![0u64; k];
    let mut self_size = vec![0u64; k];
    for v in 0..n {
        if s.counted(v) {
            count[class[v] as usize] += 1;
            self_size[class[v] as usize] += s.node_self[v] as u64;
        }
    }
    let retained = class_retained(s, &dom, &class, k);
    let keys: Vec<(String, Option<Location>)> = slots
        .keys
        .iter()
        .map(|&key| (s.class_name(key), s.class_location(key)))
        .collect();
    let (names, locations) = split_names(&keys, Some(s));
    let mut rows: Vec<ClassSummary> = (0..k)
        .filter(|&c| count[c] > 0)
        .map(|c| ClassSummary {
            class: names[c].clone(),
            count: count[c],
            self_size: self_size[c],
            retained_size: retained[c],
            location: locations[c].clone(),
        })
        .collect();
    rows.sort_by(|a, b| {
        b.retained_size
            .cmp(&a.retained_size)
            .then(b.self_size.cmp(&a.self_size))
            .then(a.class.cmp(&b.class))
    });
    let classes = rows.len() as u64;
    HeapSummary {
        top: opts.top,
        file: s.path.display().to_string(),
        file_bytes: s.file_bytes,
        nodes: n as u64,
        edges: s.edge_count() as u64,
        total_size: dom.retained.get(s.root as usize).copied().unwrap_or(0),
        classes,
        rows,
    }
}

/// DevTools' class retained size: walk the dominator tree from the root; an object counts
/// with its retained size unless an object of the same class dominates it (that one's
/// retained size already holds it).
fn class_retained(s: &Snapshot, dom: &Dominators, class: &[u32], k: usize) -> Vec<u64> {
    let n = s.node_count();
    let mut out = vec![0u64; k];
    if n == 0 {
        return out;
    }
    let root = s.root as usize;
    // children of each node in the dominator tree
    let mut first = vec![0u32; n + 2];
    for v in 0..n {
        if v != root {
            first[dom.idom[v] as usize + 2] += 1;
        }
    }
    for i in 2..n + 2 {
        first[i] += first[i - 1];
    }
    let mut children = vec![0u32; n.saturating_sub(1)];
    for v in 0..n {
        if v != root {
            let slot = &mut first[dom.idom[v] as usize + 1];
            children[*slot as usize] = v as u32;
            *slot += 1;
        }
    }
    let mut active = vec![0u32; k];
    const EXIT: u32 = 1 << 31;
    let mut stack: Vec<u32> = vec![root as u32];
    while let Some(top) = stack.pop() {
        if top & EXIT != 0 {
            let v = (top & !EXIT) as usize;
            active[class[v] as usize] -= 1;
            continue;
        }
        let v = top as usize;
        let counted = s.counted(v);
        if counted {
            let c = class[v] as usize;
            if active[c] == 0 {
                out[c] += dom.retained[v];
            }
            active[c] += 1;
            stack.push(top | EXIT);
        }
        stack.extend_from_slice(&children[first[v] as usize..first[v + 1] as usize]);
    }
    out
}
