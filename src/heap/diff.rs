//! `memwatch heap diff`: objects matched by node id across snapshots of one process, as
//! DevTools' Comparison view does, plus the retaining paths of what grew.

use super::classes::{ClassSlots, IdSet};
use super::error::{HeapError, Result};
use super::graph::{NONE, Reach};
use super::snapshot::{Need, Snapshot};
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;

/// What `diff_files` computes and how much of it it keeps.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// Rows kept (classes with the largest size delta); 0 keeps all.
    pub top: usize,
    /// How many of the top growing classes get retaining paths; 0 for none.
    pub path_classes: usize,
    /// Distinct paths shown per class (the rest are counted).
    pub paths_per_class: usize,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            top: 20,
            path_classes: 3,
            paths_per_class: 3,
        }
    }
}

/// One file of the diff.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotInfo {
    pub file: String,
    pub file_bytes: u64,
    pub nodes: u64,
    pub edges: u64,
    /// Sum of all nodes' self sizes.
    pub self_size: u64,
}

/// One row of the Comparison view: a class, first snapshot against last.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ClassDiff {
    pub class: String,
    /// `# New`: objects whose id is only in the newer snapshot.
    pub new_count: u64,
    /// `# Deleted`: objects whose id is only in the older snapshot.
    pub deleted_count: u64,
    /// `# Delta`: new minus deleted.
    pub delta_count: i64,
    /// `Alloc. Size`: self size of the new objects.
    pub alloc_size: u64,
    /// `Freed Size`: self size of the deleted objects.
    pub freed_size: u64,
    /// `Size Delta`: alloc minus freed.
    pub size_delta: i64,
}

/// A class whose object count rose in every step (3+ snapshots).
#[derive(Debug, Clone, Serialize)]
pub struct GrowingClass {
    pub class: String,
    /// `# Delta` of each step (snapshot k to k+1).
    pub delta_counts: Vec<i64>,
    /// `Size Delta` of each step.
    pub size_deltas: Vec<i64>,
}

/// Objects new after the first snapshot (in a middle one) and still alive in the last
/// (memlab's leak definition), by class.
#[derive(Debug, Clone, Serialize)]
pub struct Survivors {
    pub class: String,
    pub count: u64,
    pub self_size: u64,
}

/// One step of a retaining path: the edge taken and the node reached.
#[derive(Debug, Clone, Serialize)]
pub struct PathStep {
    /// Name of the edge from the node before (for the first step, from the root): `[n]` for
    /// elements, `{n}` for hidden links, `[…]` when the index differs within the group.
    pub edge: Option<String>,
    pub edge_type: Option<String>,
    pub node: String,
    pub node_type: String,
    /// Node id in the last snapshot (of the first object of the group).
    pub id: u32,
    /// For element edges: whether the objects of the group sit at different indexes.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub index_varies: bool,
}

/// New objects of one class that share a retaining path.
#[derive(Debug, Clone, Serialize)]
pub struct PathGroup {
    pub count: u64,
    pub text: String,
    pub steps: Vec<PathStep>,
}

/// Retaining paths of the new objects of one growing class, in the last snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct ClassPaths {
    pub class: String,
    /// New objects of the class traced (all of them).
    pub new_objects: u64,
    pub groups: Vec<PathGroup>,
    /// New objects on paths not listed in `groups`.
    pub other_paths: u64,
    /// New objects with no path from the roots without weak edges (garbage not yet collected).
    pub unreachable: u64,
}

/// The result of `diff_files`: serialisable (`--json`, summary.json) and printable.
#[derive(Debug, Clone, Serialize)]
pub struct HeapDiff {
    pub snapshots: Vec<SnapshotInfo>,
    /// Classes with at least one new or deleted object (first against last).
    pub classes_changed: u64,
    /// Objects (counted as in the rows) whose id is in both the first and the last snapshot.
    /// Near 0 means the snapshots are not of one process: ids match only within one.
    pub common_count: u64,
    pub new_count: u64,
    pub deleted_count: u64,
    pub size_delta: i64,
    /// First against last, sorted by size delta, the top rows.
    pub rows: Vec<ClassDiff>,
    /// 3+ snapshots: classes whose count rose in every step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grew_every_step: Option<Vec<GrowingClass>>,
    /// 3+ snapshots: objects new in a middle snapshot and still alive in the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub still_alive: Option<Vec<Survivors>>,
    pub paths: Vec<ClassPaths>,
}

/// Diffs snapshots of one process, oldest first: the first against the last, each step
/// for 3+, and the retaining paths (in the last) of the top growing classes.
pub fn diff_files(paths: &[PathBuf], opts: &DiffOptions) -> Result<HeapDiff> {
    if paths.len() < 2 {
        return Err(HeapError::TooFewSnapshots(paths.len()));
    }
    let (last_path, older) = paths.split_last().ok_or(HeapError::TooFewSnapshots(0))?;
    let need_last = if opts.path_classes > 0 {
        Need::NodesAndEdges
    } else {
        Need::Nodes
    };
    // Two threads: the last file (with edges, the slowest) beside all the others.
    let (last, older) = std::thread::scope(|scope| {
        let last = scope.spawn(|| Snapshot::open(last_path, need_last));
        let older: Result<Vec<Snapshot>> = older
            .iter()
            .map(|p| Snapshot::open(p, Need::Nodes))
            .collect();
        let last = last.join().unwrap_or_else(|_| {
            Err(HeapError::Io {
                path: last_path.clone(),
                source: std::io::Error::other("the reading thread panicked"),
            })
        });
        (last, older)
    });
    let mut snaps = older?;
    snaps.push(last?);
    Ok(diff_snapshots(&snaps, opts))
}

/// Global class indexes for the classes of several snapshots (merged by name).
struct Classes {
    names: Vec<String>,
    by_name: HashMap<String, usize>,
    /// Per snapshot: its class slots and slot -> global class.
    per: Vec<(ClassSlots, Vec<usize>)>,
}

impl Classes {
    fn new(snaps: &[Snapshot]) -> Classes {
        let mut c = Classes {
            names: Vec::new(),
            by_name: HashMap::new(),
            per: Vec::new(),
        };
        for s in snaps {
            let mut slots = ClassSlots::new(s);
            for n in 0..s.node_count() {
                slots.slot(s.class_key(n));
            }
            let global = slots
                .keys
                .iter()
                .map(|&k| {
                    let name = s.class_name(k);
                    let next = c.names.len();
                    *c.by_name.entry(name.clone()).or_insert_with(|| {
                        c.names.push(name);
                        next
                    })
                })
                .collect();
            c.per.push((slots, global));
        }
        c
    }

    #[inline]
    fn of(&mut self, snap: usize, s: &Snapshot, n: usize) -> usize {
        let (slots, global) = &mut self.per[snap];
        global[slots.slot(s.class_key(n))]
    }
}

#[derive(Clone, Copy, Default)]
struct Tally {
    new: u64,
    deleted: u64,
    alloc: u64,
    freed: u64,
}

/// New and deleted by global class between snapshots `a` and `b`.
fn compare(
    snaps: &[Snapshot],
    ids: &[IdSet],
    classes: &mut Classes,
    a: usize,
    b: usize,
) -> Vec<Tally> {
    let mut t = vec![Tally::default(); classes.names.len()];
    let (sa, sb) = (&snaps[a], &snaps[b]);
    for n in 0..sb.node_count() {
        if sb.counted(n) && !ids[a].contains(sb.node_id[n]) {
            let c = classes.of(b, sb, n);
            t[c].new += 1;
            t[c].alloc += sb.node_self[n] as u64;
        }
    }
    for n in 0..sa.node_count() {
        if sa.counted(n) && !ids[b].contains(sa.node_id[n]) {
            let c = classes.of(a, sa, n);
            t[c].deleted += 1;
            t[c].freed += sa.node_self[n] as u64;
        }
    }
    t
}

/// The diff of snapshots already read (oldest first; the last with edges for paths).
pub fn diff_snapshots(snaps: &[Snapshot], opts: &DiffOptions) -> HeapDiff {
    let last = snaps.len() - 1;
    let mut classes = Classes::new(snaps);
    let ids: Vec<IdSet> = snaps.iter().map(|s| IdSet::of(&s.node_id)).collect();

    let overall = compare(snaps, &ids, &mut classes, 0, last);
    let mut rows: Vec<ClassDiff> = overall
        .iter()
        .enumerate()
        .filter(|(_, t)| t.new > 0 || t.deleted > 0)
        .map(|(c, t)| ClassDiff {
            class: classes.names[c].clone(),
            new_count: t.new,
            deleted_count: t.deleted,
            delta_count: t.new as i64 - t.deleted as i64,
            alloc_size: t.alloc,
            freed_size: t.freed,
            size_delta: t.alloc as i64 - t.freed as i64,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.size_delta
            .cmp(&a.size_delta)
            .then(b.delta_count.cmp(&a.delta_count))
            .then(a.class.cmp(&b.class))
    });
    let classes_changed = rows.len() as u64;
    let common_count = (0..snaps[last].node_count())
        .filter(|&n| snaps[last].counted(n) && ids[0].contains(snaps[last].node_id[n]))
        .count() as u64;
    let new_count = rows.iter().map(|r| r.new_count).sum();
    let deleted_count = rows.iter().map(|r| r.deleted_count).sum();
    let size_delta = rows.iter().map(|r| r.size_delta).sum();

    let (grew_every_step, still_alive) = if snaps.len() >= 3 {
        let steps: Vec<Vec<Tally>> = (0..last)
            .map(|k| compare(snaps, &ids, &mut classes, k, k + 1))
            .collect();
        let mut grew: Vec<GrowingClass> = (0..classes.names.len())
            .filter(|&c| {
                steps
                    .iter()
                    .all(|t| t.get(c).is_some_and(|t| t.new > t.deleted))
            })
            .map(|c| GrowingClass {
                class: classes.names[c].clone(),
                delta_counts: steps
                    .iter()
                    .map(|t| t[c].new as i64 - t[c].deleted as i64)
                    .collect(),
                size_deltas: steps
                    .iter()
                    .map(|t| t[c].alloc as i64 - t[c].freed as i64)
                    .collect(),
            })
            .collect();
        grew.sort_by_key(|g| std::cmp::Reverse(g.size_deltas.iter().sum::<i64>()));
        (Some(grew), Some(survivors(snaps, &ids, &mut classes)))
    } else {
        (None, None)
    };

    let paths = if opts.path_classes > 0 && snaps[last].has_edges() {
        let growing: Vec<&str> = rows
            .iter()
            .filter(|r| r.delta_count > 0 && r.size_delta > 0)
            .take(opts.path_classes)
            .map(|r| r.class.as_str())
            .collect();
        retaining_paths(snaps, &ids[0], &mut classes, &growing, opts.paths_per_class)
    } else {
        Vec::new()
    };

    if opts.top > 0 {
        rows.truncate(opts.top);
    }
    HeapDiff {
        snapshots: snaps
            .iter()
            .map(|s| SnapshotInfo {
                file: s.path.display().to_string(),
                file_bytes: s.file_bytes,
                nodes: s.node_count() as u64,
                edges: s.edges_in_file,
                self_size: s.node_self.iter().map(|&v| v as u64).sum(),
            })
            .collect(),
        classes_changed,
        common_count,
        new_count,
        deleted_count,
        size_delta,
        rows,
        grew_every_step,
        still_alive,
        paths,
    }
}

/// Objects whose id is not in the first snapshot, is in a middle one, and is in the last.
fn survivors(snaps: &[Snapshot], ids: &[IdSet], classes: &mut Classes) -> Vec<Survivors> {
    let last = snaps.len() - 1;
    let mut found: Vec<(u32, usize, u32)> = Vec::new();
    for (k, s) in snaps.iter().enumerate().take(last).skip(1) {
        for n in 0..s.node_count() {
            let id = s.node_id[n];
            if s.counted(n) && !ids[0].contains(id) && ids[last].contains(id) {
                found.push((id, classes.of(k, s, n), s.node_self[n]));
            }
        }
    }
    found.sort_unstable_by_key(|f| f.0);
    found.dedup_by_key(|f| f.0);
    let mut by_class: HashMap<usize, (u64, u64)> = HashMap::new();
    for (_, c, size) in found {
        let e = by_class.entry(c).or_default();
        e.0 += 1;
        e.1 += size as u64;
    }
    let mut out: Vec<Survivors> = by_class
        .into_iter()
        .map(|(c, (count, self_size))| Survivors {
            class: classes.names[c].clone(),
            count,
            self_size,
        })
        .collect();
    out.sort_by(|a, b| b.self_size.cmp(&a.self_size).then(a.class.cmp(&b.class)));
    out
}

/// Retaining paths as a trie: a path is its last step plus the path of the node before it.
/// Steps match on edge type and name (element indexes aside) and on the node reached, so
/// new objects held by one array share one path; each trie node remembers whether the
/// element indexes it stands for differ.
struct Trie {
    parent: Vec<u32>,
    /// Edge and node of the first graph node that took this step.
    edge: Vec<u32>,
    node: Vec<u32>,
    first_index: Vec<u32>,
    varies: Vec<bool>,
    ids: HashMap<(u32, u64, u64), u32>,
}

const EMPTY_PATH: u32 = 0;

impl Trie {
    fn new() -> Trie {
        Trie {
            parent: vec![NONE],
            edge: vec![NONE],
            node: vec![NONE],
            first_index: vec![0],
            varies: vec![false],
            ids: HashMap::new(),
        }
    }

    /// The path of node `v` (reachable), memoised in `memo` for the nodes on the way.
    fn path_of(
        &mut self,
        s: &Snapshot,
        reach: &Reach,
        memo: &mut [u32],
        v: u32,
        stack: &mut Vec<u32>,
    ) -> u32 {
        let m = &s.meta;
        let mut x = v;
        while memo[x as usize] == NONE && reach.parent_node[x as usize] != NONE {
            stack.push(x);
            x = reach.parent_node[x as usize];
        }
        let mut id = if memo[x as usize] == NONE {
            EMPTY_PATH // x is the root
        } else {
            memo[x as usize]
        };
        while let Some(x) = stack.pop() {
            let e = reach.parent_edge[x as usize] as usize;
            let t = s.edge_type[e];
            let element = t == m.e_element;
            let name = if element { u32::MAX } else { s.edge_name[e] };
            let key = (
                id,
                ((t as u64) << 32) | name as u64,
                if s.named_on_paths(x as usize) {
                    ((s.node_type[x as usize] as u64) << 32) | s.node_name[x as usize] as u64
                } else {
                    u64::MAX - s.class_key(x as usize) as u64
                },
            );
            let next = self.parent.len() as u32;
            let step = *self.ids.entry(key).or_insert(next);
            if step == next {
                self.parent.push(id);
                self.edge.push(e as u32);
                self.node.push(x);
                self.first_index.push(s.edge_name[e]);
                self.varies.push(false);
            } else if element && self.first_index[step as usize] != s.edge_name[e] {
                self.varies[step as usize] = true;
            }
            memo[x as usize] = step;
            id = step;
        }
        id
    }
}

/// Shortest paths from the roots to every new object (id not in the first snapshot) of the
/// given classes in the last snapshot, grouped by path.
fn retaining_paths(
    snaps: &[Snapshot],
    first_ids: &IdSet,
    classes: &mut Classes,
    wanted: &[&str],
    per_class: usize,
) -> Vec<ClassPaths> {
    let last = snaps.len() - 1;
    let s = &snaps[last];
    if wanted.is_empty() {
        return Vec::new();
    }
    let reach = Reach::compute(s);
    let mut memo = vec![NONE; s.node_count()];
    let mut stack: Vec<u32> = Vec::new();
    let mut out = Vec::new();
    for w in wanted {
        let Some(&g) = classes.by_name.get(*w) else {
            continue;
        };
        let mut trie = Trie::new();
        memo.fill(NONE);
        let mut counts: HashMap<u32, u64> = HashMap::new();
        let mut new_objects = 0u64;
        let mut unreachable = 0u64;
        for n in 0..s.node_count() {
            if !s.counted(n) || first_ids.contains(s.node_id[n]) || classes.of(last, s, n) != g {
                continue;
            }
            new_objects += 1;
            if reach.distance[n] == NONE {
                unreachable += 1;
                continue;
            }
            let id = trie.path_of(s, &reach, &mut memo, n as u32, &mut stack);
            *counts.entry(id).or_default() += 1;
        }
        let mut groups: Vec<(u32, u64)> = counts.into_iter().collect();
        groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let shown: Vec<PathGroup> = groups
            .iter()
            .take(per_class)
            .map(|&(id, count)| path_group(s, &trie, id, count))
            .collect();
        let listed: u64 = shown.iter().map(|g| g.count).sum();
        out.push(ClassPaths {
            class: (*w).to_string(),
            new_objects,
            other_paths: new_objects - unreachable - listed,
            unreachable,
            groups: shown,
        });
    }
    out
}

fn path_group(s: &Snapshot, trie: &Trie, id: u32, count: u64) -> PathGroup {
    let m = &s.meta;
    let mut chain: Vec<u32> = Vec::new();
    let mut x = id;
    while x != EMPTY_PATH {
        chain.push(x);
        x = trie.parent[x as usize];
    }
    chain.reverse();
    let type_name = |names: &[String], t: u8| names.get(t as usize).cloned().unwrap_or_default();
    let steps: Vec<PathStep> = chain
        .iter()
        .map(|&step| {
            let e = trie.edge[step as usize] as usize;
            let node = trie.node[step as usize];
            let index_varies = trie.varies[step as usize];
            PathStep {
                edge: Some(if index_varies {
                    "[…]".to_string()
                } else {
                    s.edge_label(e)
                }),
                edge_type: Some(type_name(&m.edge_type_names, s.edge_type[e])),
                node: s.display_name(node),
                node_type: type_name(&m.node_type_names, s.node_type[node as usize]),
                id: s.node_id[node as usize],
                index_varies,
            }
        })
        .collect();
    let last = steps.len().saturating_sub(1);
    let parts: Vec<String> = steps
        .iter()
        .zip(chain.iter())
        .enumerate()
        .map(|(i, (step, &c))| {
            let t = s.node_type[trie.node[c as usize] as usize];
            if i == 0 || t == m.t_synthetic {
                step.node.clone()
            } else if i == last || t == m.t_closure {
                format!("{} ({})", step.edge.as_deref().unwrap_or(""), step.node)
            } else {
                step.edge.clone().unwrap_or_default()
            }
        })
        .collect();
    PathGroup {
        count,
        text: parts.join(" -> "),
        steps,
    }
}
