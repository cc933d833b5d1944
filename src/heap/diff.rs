//! `memwatch heap diff`: objects matched by node id across snapshots of one process, as
//! DevTools' Comparison view does; the leak roots of what grew (new objects that no other
//! new object dominates), grouped by class and ranked by what they retain; and the
//! retaining paths that hold them.

use super::classes::{ClassSlots, FxMap, IdSet, split_names};
use super::error::{HeapError, Result};
use super::graph::{LeakRoots, NONE, Reach};
use super::snapshot::{ClassKey, Location, Need, Snapshot};
use crate::units::Bytes;
use serde::Serialize;
use std::collections::HashMap;
use std::path::PathBuf;

/// What `diff_files` computes and how much of it it keeps.
#[derive(Debug, Clone)]
pub struct DiffOptions {
    /// Rows printed (classes with the largest size delta); 0 prints all. The JSON keeps all.
    pub top: usize,
    /// How many leak-root groups get retaining paths; 0 for none (and then no edges are read,
    /// so there are no leak roots either).
    pub path_classes: usize,
    /// Distinct paths shown per group (the rest are counted).
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
    /// The constructor's name; `Name (file.js:12)` when constructors of one name are defined
    /// in several places.
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
    /// Where the constructor is defined (`file:line:column`, 1-based), for classes split by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl ClassDiff {
    /// How much a class changed, for the order of the rows: its size delta, or, when its
    /// objects were replaced, the size replaced (a class that swapped 8,000 objects for 8,000
    /// new ones changed as much as one that grew by their size).
    pub fn change(&self) -> i64 {
        self.size_delta
            .max(self.alloc_size.min(self.freed_size) as i64)
    }
}

/// A class of the objects an embedder adds (Node's `Node / ...` natives): V8 gives them a new
/// id in every snapshot, so they are compared by count and size, not by id.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EmbedderClass {
    pub class: String,
    pub first_count: u64,
    pub last_count: u64,
    pub first_size: u64,
    pub last_size: u64,
    pub count_delta: i64,
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
    /// elements, `{n}` for hidden links, `[…]` when the index or key differs within the
    /// group, `(Map entries)` for a Map's or Set's table entries.
    pub edge: Option<String>,
    pub edge_type: Option<String>,
    pub node: String,
    pub node_type: String,
    /// Node id in the last snapshot (of the first object of the group).
    pub id: u32,
    /// Whether the objects of the group sit at different indexes or keys here.
    pub index_varies: bool,
}

/// New objects that share a retaining path.
#[derive(Debug, Clone, Serialize)]
pub struct PathGroup {
    pub count: u64,
    pub text: String,
    pub steps: Vec<PathStep>,
}

/// Retaining paths of one group of leak roots, in the last snapshot (the shape of earlier
/// versions, where they were traced per growing class).
#[derive(Debug, Clone, Serialize)]
pub struct ClassPaths {
    pub class: String,
    /// Objects traced (the group's roots).
    pub new_objects: u64,
    pub groups: Vec<PathGroup>,
    /// Objects on paths not listed in `groups`.
    pub other_paths: u64,
    /// Objects with no path from the roots without weak edges (garbage not yet collected).
    pub unreachable: u64,
}

/// New objects of one class that no other new object dominates: what would go if they went.
#[derive(Debug, Clone, Serialize)]
pub struct LeakRootGroup {
    /// The class; a plain object is named by its properties, as DevTools does
    /// (`{socket, started, log}`).
    pub class: String,
    /// Leak roots in the group.
    pub count: u64,
    /// The sum of their retained sizes (no root holds another, so nothing counts twice).
    pub retained_size: u64,
    pub self_size: u64,
    /// Objects of the class deleted since the first snapshot (from the comparison): as many
    /// as `count` means replaced, not grown.
    pub deleted_count: u64,
    /// Where the main path holds them: `clients via cleanup() (SIGINT listener)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    /// The main retaining paths (for the first `--paths` groups).
    pub paths: Vec<PathGroup>,
    /// Roots on paths not listed.
    pub other_paths: u64,
}

/// The result of `diff_files`: serialisable (`--json`, summary.json) and printable.
#[derive(Debug, Clone, Serialize)]
pub struct HeapDiff {
    /// The first line: the largest group of leak roots and what holds it,
    /// `+897 WebSocket retaining 393 MiB, held by clients via cleanup() (SIGINT listener)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    /// What looks wrong with the input: the same file twice, snapshots in reverse order,
    /// snapshots of two processes.
    pub warnings: Vec<String>,
    pub snapshots: Vec<SnapshotInfo>,
    /// Classes with at least one new or deleted object (first against last).
    pub classes_changed: u64,
    /// Objects (counted as in the rows) whose id is in both the first and the last snapshot.
    pub common_count: u64,
    pub new_count: u64,
    pub deleted_count: u64,
    pub size_delta: i64,
    /// First against last, every class that changed, the largest change first: the size
    /// delta, or for a class whose objects were replaced, the size replaced (`ClassDiff::change`).
    pub rows: Vec<ClassDiff>,
    /// Leak roots by class, the groups whose class grew first, then by retained size.
    pub leak_roots: Vec<LeakRootGroup>,
    /// All leak roots, and what they retain together.
    pub leak_root_count: u64,
    pub leak_roots_retained: u64,
    /// New objects that no strong path reaches (garbage not yet collected).
    pub unreachable_new: u64,
    /// Embedder objects (ids made per snapshot), compared by count: the classes that changed.
    pub embedder: Vec<EmbedderClass>,
    /// 3+ snapshots: classes whose count rose in every step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grew_every_step: Option<Vec<GrowingClass>>,
    /// 3+ snapshots: objects new in a middle snapshot and still alive in the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub still_alive: Option<Vec<Survivors>>,
    /// The retaining paths of the first leak-root groups.
    pub paths: Vec<ClassPaths>,
    /// Rows the text shows (`--top`; 0: all).
    #[serde(skip)]
    pub top: usize,
}

/// Diffs snapshots of one process, oldest first: the first against the last, each step
/// for 3+, and the leak roots and retaining paths (in the last).
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
    let mut warnings = same_files(paths);
    let mut diff = diff_snapshots(snaps, opts);
    warnings.append(&mut diff.warnings);
    diff.warnings = warnings;
    Ok(diff)
}

/// A warning for each file given twice (the same file under two names too).
fn same_files(paths: &[PathBuf]) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let ids: Vec<Option<(u64, u64)>> = paths
        .iter()
        .map(|p| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino())))
        .collect();
    let mut out = Vec::new();
    for (j, id) in ids.iter().enumerate() {
        if let Some(i) = ids[..j].iter().position(|x| x.is_some() && x == id) {
            out.push(format!(
                "'{}' and '{}' are the same file: every object is in both, so nothing is new",
                paths[i].display(),
                paths[j].display()
            ));
        }
    }
    out
}

/// A class across snapshots: the name DevTools shows and, for objects, the location of
/// their constructor.
type GlobalKey = (String, Option<Location>);

/// Global class indexes for the classes of several snapshots (merged by name and location).
struct Classes {
    keys: Vec<GlobalKey>,
    /// What the text shows: the name, with the file where constructors share a name.
    names: Vec<String>,
    locations: Vec<Option<String>>,
    by_key: HashMap<GlobalKey, usize>,
    /// Per snapshot: its class slots and slot -> global class.
    per: Vec<(ClassSlots, Vec<usize>)>,
}

impl Classes {
    /// No class yet: they are met as the snapshots are gone through (`of`).
    fn new(snaps: &[Snapshot]) -> Classes {
        Classes {
            keys: Vec::new(),
            names: Vec::new(),
            locations: Vec::new(),
            by_key: HashMap::new(),
            per: snaps
                .iter()
                .map(|s| (ClassSlots::new(s), Vec::new()))
                .collect(),
        }
    }

    /// Names every class met (after all were met).
    fn name_split_classes(&mut self, last: Option<&Snapshot>) {
        let (names, locations) = split_names(&self.keys, last);
        self.names = names;
        self.locations = locations;
    }

    /// What the text calls global class `c`.
    fn name(&self, c: usize) -> String {
        match (self.names.get(c), self.keys.get(c)) {
            (Some(name), _) => name.clone(),
            // met after the naming (not in the comparison): its plain name
            (None, Some((name, _))) => name.clone(),
            (None, None) => String::new(),
        }
    }

    /// The global class of key `key` of snapshot `snap` (`s`).
    #[inline]
    fn of(&mut self, s: &Snapshot, snap: usize, key: ClassKey) -> usize {
        let (slots, global) = &mut self.per[snap];
        let slot = slots.slot(key);
        if let Some(&g) = global.get(slot) {
            return g;
        }
        let name = (s.class_name(key), s.class_location(key));
        let keys = &mut self.keys;
        let g = *self.by_key.entry(name).or_insert_with_key(|name| {
            keys.push(name.clone());
            keys.len() - 1
        });
        global.push(g);
        g
    }
}

/// The tally of class `c`, the vector grown as classes are met.
#[inline]
fn tally(t: &mut Vec<Tally>, c: usize) -> &mut Tally {
    if c >= t.len() {
        t.resize(c + 1, Tally::default());
    }
    &mut t[c]
}

#[derive(Clone, Copy, Default)]
struct Tally {
    new: u64,
    deleted: u64,
    alloc: u64,
    freed: u64,
}

/// New and deleted by global class between snapshots `a` and `b`. Nodes with per-snapshot
/// ids are left out: they cannot be matched by id.
fn compare(
    snaps: &[Snapshot],
    ids: &[IdSet],
    classes: &mut Classes,
    a: usize,
    b: usize,
) -> Vec<Tally> {
    let mut t = Vec::new();
    let (sa, sb) = (&snaps[a], &snaps[b]);
    for (n, key) in sb.class_keys().enumerate() {
        if sb.counted(n) && !sb.id_is_per_snapshot(n) && !ids[a].contains(sb.node_id[n]) {
            let c = tally(&mut t, classes.of(sb, b, key));
            c.new += 1;
            c.alloc += sb.node_self[n] as u64;
        }
    }
    for (n, key) in sa.class_keys().enumerate() {
        if sa.counted(n) && !sa.id_is_per_snapshot(n) && !ids[b].contains(sa.node_id[n]) {
            let c = tally(&mut t, classes.of(sa, a, key));
            c.deleted += 1;
            c.freed += sa.node_self[n] as u64;
        }
    }
    t
}

/// First against last in one pass over each: the comparison, the embedder objects (by
/// count), and what the order warnings need.
struct FirstLast {
    overall: Vec<Tally>,
    embedder_first: FxMap<usize, (u64, u64)>,
    embedder_last: FxMap<usize, (u64, u64)>,
    /// Objects in both.
    common: u64,
    /// Objects only in the last, and those of them whose ids are below the first's newest.
    only_last: u64,
    older_new: u64,
    /// Common objects compared by type and size, and those that differ.
    compared: u64,
    differ: u64,
}

fn first_last(snaps: &[Snapshot], ids: &[IdSet], classes: &mut Classes) -> FirstLast {
    let last = snaps.len() - 1;
    let (sa, sb) = (&snaps[0], &snaps[last]);
    let mut f = FirstLast {
        overall: Vec::new(),
        embedder_first: FxMap::default(),
        embedder_last: FxMap::default(),
        common: 0,
        only_last: 0,
        older_new: 0,
        compared: 0,
        differ: 0,
    };
    let mut marks = Marks::new(sa);
    let mut first_max = 0u32;
    for (n, key) in sa.class_keys().enumerate() {
        if !sa.counted(n) {
            continue;
        }
        let id = sa.node_id[n];
        if sa.id_is_per_snapshot(n) {
            let e = f.embedder_first.entry(classes.of(sa, 0, key)).or_default();
            e.0 += 1;
            e.1 += sa.node_self[n] as u64;
            continue;
        }
        first_max = first_max.max(id);
        marks.set(id, Marks::mark(sa, n));
        if !ids[last].contains(id) {
            let t = tally(&mut f.overall, classes.of(sa, 0, key));
            t.deleted += 1;
            t.freed += sa.node_self[n] as u64;
        }
    }
    for (n, key) in sb.class_keys().enumerate() {
        if !sb.counted(n) {
            continue;
        }
        let id = sb.node_id[n];
        if sb.id_is_per_snapshot(n) {
            let e = f
                .embedder_last
                .entry(classes.of(sb, last, key))
                .or_default();
            e.0 += 1;
            e.1 += sb.node_self[n] as u64;
            continue;
        }
        if ids[0].contains(id) {
            f.common += 1;
            if let Some(m) = marks.get(id) {
                f.compared += 1;
                f.differ += (m != Marks::mark(sb, n)) as u64;
            }
        } else {
            let t = tally(&mut f.overall, classes.of(sb, last, key));
            t.new += 1;
            t.alloc += sb.node_self[n] as u64;
            f.only_last += 1;
            f.older_new += (id < first_max) as u64;
        }
    }
    f
}

/// The diff of snapshots already read (oldest first; the last with edges for leak roots and
/// paths). The older snapshots are dropped as soon as they are no longer needed.
pub fn diff_snapshots(mut snaps: Vec<Snapshot>, opts: &DiffOptions) -> HeapDiff {
    let last = snaps.len() - 1;
    let ids: Vec<IdSet> = snaps.iter().map(|s| IdSet::of(&s.node_id)).collect();
    let traced = opts.path_classes > 0 && snaps[last].has_edges();
    // The last snapshot's graph work (leak roots, shortest paths) on a second thread, beside
    // the comparison by class.
    let (mut table, graph) = std::thread::scope(|scope| {
        let graph = traced.then(|| {
            let (s, first) = (&snaps[last], &ids[0]);
            scope.spawn(move || {
                let lr = LeakRoots::compute(s, |n| candidate(s, first, n));
                let reach = Reach::compute(s);
                (lr, reach)
            })
        });
        let table = by_class(&snaps, &ids);
        let graph = graph.map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        (table, graph)
    });

    // Only the last snapshot is needed from here on.
    let s = snaps
        .pop()
        .unwrap_or_else(|| unreachable!("two or more snapshots"));
    drop(snaps);
    drop(ids);
    let found = match &graph {
        Some((lr, reach)) => group_roots(
            &s,
            last,
            lr,
            reach,
            &mut table.classes,
            &table.overall,
            opts,
        ),
        None => Found::default(),
    };
    drop(graph);
    let paths = found
        .groups
        .iter()
        .filter(|g| !g.paths.is_empty() || g.other_paths > 0)
        .map(|g| ClassPaths {
            class: g.class.clone(),
            new_objects: g.count,
            groups: g.paths.clone(),
            other_paths: g.other_paths,
            unreachable: 0,
        })
        .collect();
    let headline = found.groups.first().map(|g| {
        let mut line = format!(
            "+{} {} retaining {}",
            super::render::grouped(g.count),
            g.class,
            Bytes(g.retained_size as f64)
        );
        if let Some(h) = &g.held_by {
            line.push_str(", held by ");
            line.push_str(h);
        }
        line
    });
    HeapDiff {
        headline,
        warnings: table.warnings,
        snapshots: table.snapshots,
        classes_changed: table.rows.len() as u64,
        common_count: table.common,
        new_count: table.rows.iter().map(|r| r.new_count).sum(),
        deleted_count: table.rows.iter().map(|r| r.deleted_count).sum(),
        size_delta: table.rows.iter().map(|r| r.size_delta).sum(),
        rows: table.rows,
        leak_root_count: found.groups.iter().map(|g| g.count).sum(),
        leak_roots_retained: found.groups.iter().map(|g| g.retained_size).sum(),
        leak_roots: found.groups,
        unreachable_new: found.unreachable,
        embedder: table.embedder,
        grew_every_step: table.grew_every_step,
        still_alive: table.still_alive,
        paths,
        top: opts.top,
    }
}

/// Whether node `n` of the last snapshot is a new object that can be a leak root: its id is
/// not in the first snapshot, and it is not one of V8's internal arrays, hidden objects,
/// code or shapes (parts of their owner: the owner stands for them).
fn candidate(s: &Snapshot, first_ids: &IdSet, n: usize) -> bool {
    let m = &s.meta;
    let t = s.node_type[n];
    s.counted(n)
        && !s.id_is_per_snapshot(n)
        && t != m.t_array
        && t != m.t_hidden
        && t != m.t_code
        && t != m.t_object_shape
        && t != m.t_synthetic
        && !first_ids.contains(s.node_id[n])
}

/// Everything of the diff that is by class: the Comparison view and what goes with it.
struct ByClass {
    classes: Classes,
    overall: Vec<Tally>,
    rows: Vec<ClassDiff>,
    common: u64,
    warnings: Vec<String>,
    embedder: Vec<EmbedderClass>,
    grew_every_step: Option<Vec<GrowingClass>>,
    still_alive: Option<Vec<Survivors>>,
    snapshots: Vec<SnapshotInfo>,
}

fn by_class(snaps: &[Snapshot], ids: &[IdSet]) -> ByClass {
    let last = snaps.len() - 1;
    let mut classes = Classes::new(snaps);
    let fl = first_last(snaps, ids, &mut classes);
    // 3+ snapshots: each step, and the objects new in a middle one still in the last
    let (steps, alive) = if snaps.len() >= 3 {
        let steps: Vec<Vec<Tally>> = (0..last)
            .map(|k| compare(snaps, ids, &mut classes, k, k + 1))
            .collect();
        (Some(steps), Some(survivors(snaps, ids, &mut classes)))
    } else {
        (None, None)
    };
    // every class has been met: they can be named
    classes.name_split_classes(snaps.last());
    let rows = changed_classes(&fl.overall, &classes);
    let deleted_count: u64 = rows.iter().map(|r| r.deleted_count).sum();
    let warnings = order_warnings(&snaps[0], &snaps[last], &fl, deleted_count);
    let embedder = embedder_classes(&fl, &classes);
    let grew_every_step = steps.map(|steps| growing_classes(&steps, &classes));
    let still_alive = alive.map(|by_class| surviving_classes(by_class, &classes));
    ByClass {
        overall: fl.overall,
        classes,
        rows,
        common: fl.common,
        warnings,
        embedder,
        grew_every_step,
        still_alive,
        snapshots: snaps.iter().map(SnapshotInfo::of).collect(),
    }
}

/// The rows of the Comparison view: the classes with objects new or deleted, first to
/// last, most changed first.
fn changed_classes(overall: &[Tally], classes: &Classes) -> Vec<ClassDiff> {
    let mut rows: Vec<ClassDiff> = overall
        .iter()
        .enumerate()
        .filter(|(_, t)| t.new > 0 || t.deleted > 0)
        .map(|(c, t)| ClassDiff {
            class: classes.name(c),
            new_count: t.new,
            deleted_count: t.deleted,
            delta_count: t.new as i64 - t.deleted as i64,
            alloc_size: t.alloc,
            freed_size: t.freed,
            size_delta: t.alloc as i64 - t.freed as i64,
            location: classes.locations[c].clone(),
        })
        .collect();
    rows.sort_by(|a, b| {
        a.change()
            .cmp(&b.change())
            .reverse()
            .then(b.size_delta.cmp(&a.size_delta))
            .then(b.alloc_size.cmp(&a.alloc_size))
            .then(b.delta_count.cmp(&a.delta_count))
            .then(a.class.cmp(&b.class))
    });
    rows
}

/// Embedder classes whose count or size changed, first to last, the most grown first.
fn embedder_classes(fl: &FirstLast, classes: &Classes) -> Vec<EmbedderClass> {
    let (first, last) = (&fl.embedder_first, &fl.embedder_last);
    let mut all: Vec<usize> = first.keys().chain(last.keys()).copied().collect();
    all.sort_unstable();
    all.dedup();
    let mut out: Vec<EmbedderClass> = all
        .into_iter()
        .map(|c| {
            let (fc, fs) = first.get(&c).copied().unwrap_or_default();
            let (lc, ls) = last.get(&c).copied().unwrap_or_default();
            EmbedderClass {
                class: classes.name(c),
                first_count: fc,
                last_count: lc,
                first_size: fs,
                last_size: ls,
                count_delta: lc as i64 - fc as i64,
                size_delta: ls as i64 - fs as i64,
            }
        })
        .filter(|e| e.count_delta != 0 || e.size_delta != 0)
        .collect();
    out.sort_by(|a, b| {
        b.size_delta
            .cmp(&a.size_delta)
            .then(b.count_delta.cmp(&a.count_delta))
            .then(a.class.cmp(&b.class))
    });
    out
}

/// The classes with more objects new than deleted in every step, the most grown first.
fn growing_classes(steps: &[Vec<Tally>], classes: &Classes) -> Vec<GrowingClass> {
    let mut grew: Vec<GrowingClass> = (0..classes.keys.len())
        .filter(|&c| {
            steps
                .iter()
                .all(|t| t.get(c).is_some_and(|t| t.new > t.deleted))
        })
        .map(|c| GrowingClass {
            class: classes.name(c),
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
    grew
}

/// The survivors of the middle snapshots by class, the largest first.
fn surviving_classes(by_class: HashMap<usize, (u64, u64)>, classes: &Classes) -> Vec<Survivors> {
    let mut out: Vec<Survivors> = by_class
        .into_iter()
        .map(|(c, (count, self_size))| Survivors {
            class: classes.name(c),
            count,
            self_size,
        })
        .collect();
    out.sort_by(|a, b| b.self_size.cmp(&a.self_size).then(a.class.cmp(&b.class)));
    out
}

impl SnapshotInfo {
    fn of(s: &Snapshot) -> SnapshotInfo {
        SnapshotInfo {
            file: s.path.display().to_string(),
            file_bytes: s.file_bytes,
            nodes: s.node_count() as u64,
            edges: s.edges_in_file,
            self_size: s.node_self.iter().map(|&v| v as u64).sum(),
        }
    }
}

/// Warnings about the order and origin of the first and the last snapshot.
///
/// In one process V8 gives a new object an id above every id it gave before, and an object
/// keeps its id and its type for its lifetime. So: objects only in the last snapshot with ids
/// below the first's newest mean the order is reversed (or two processes); common ids whose
/// node changed type or size mean two processes.
fn order_warnings(first: &Snapshot, last: &Snapshot, fl: &FirstLast, deleted: u64) -> Vec<String> {
    let mut out = Vec::new();
    let (a, b) = (first.path.display(), last.path.display());
    if fl.compared >= 100 && fl.differ * 5 > fl.compared {
        out.push(format!(
            "'{a}' and '{b}' look like snapshots of two processes: {} of the {} objects with \
             the same id differ in type or size (ids match objects only within one process)",
            fl.differ, fl.compared
        ));
    } else if fl.older_new >= 10 && fl.older_new * 2 > fl.only_last {
        out.push(format!(
            "the snapshots look reversed: {} objects only in '{b}' have ids older than the \
             newest in '{a}'; give them oldest first",
            fl.older_new
        ));
    } else if fl.common * 10 < deleted {
        out.push(format!(
            "only {} objects are in both '{a}' and '{b}': are they of one process? Object ids \
             match only within one process",
            fl.common
        ));
    }
    out
}

/// Two bits of an object's type and size, by id, for the ids of one snapshot.
struct Marks {
    bits: Vec<u64>,
}

/// Ids above this are not marked (V8's heap ids stay far below it).
const MARKED_IDS: u32 = 1 << 28;

impl Marks {
    fn mark(s: &Snapshot, n: usize) -> u8 {
        let h = (s.node_type[n] as u32)
            .wrapping_mul(0x9E37_79B9)
            .wrapping_add(s.node_self[n].wrapping_mul(0x85EB_CA6B));
        (h >> 30) as u8 | 4
    }

    fn new(s: &Snapshot) -> Marks {
        let top = s
            .node_id
            .iter()
            .copied()
            .filter(|&id| id < MARKED_IDS)
            .max()
            .unwrap_or(0);
        // three bits an id: present, and two bits of the mark; 21 ids a word
        Marks {
            bits: vec![0u64; top as usize / 21 + 1],
        }
    }

    #[inline]
    fn set(&mut self, id: u32, mark: u8) {
        let (w, shift) = (id as usize / 21, (id as usize % 21) * 3);
        if let Some(word) = self.bits.get_mut(w) {
            *word |= (mark as u64) << shift;
        }
    }

    #[inline]
    fn get(&self, id: u32) -> Option<u8> {
        let (w, shift) = (id as usize / 21, (id as usize % 21) * 3);
        let m = (self.bits.get(w)? >> shift) as u8 & 7;
        (m != 0).then_some(m)
    }
}

/// Objects whose id is not in the first snapshot, is in a middle one, and is in the last:
/// count and self size by class.
fn survivors(
    snaps: &[Snapshot],
    ids: &[IdSet],
    classes: &mut Classes,
) -> HashMap<usize, (u64, u64)> {
    let last = snaps.len() - 1;
    let mut found: Vec<(u32, usize, u32)> = Vec::new();
    for (k, s) in snaps.iter().enumerate().take(last).skip(1) {
        for (n, key) in s.class_keys().enumerate() {
            let id = s.node_id[n];
            if s.counted(n)
                && !s.id_is_per_snapshot(n)
                && !ids[0].contains(id)
                && ids[last].contains(id)
            {
                found.push((id, classes.of(s, k, key), s.node_self[n]));
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
    by_class
}

#[derive(Default)]
struct Found {
    groups: Vec<LeakRootGroup>,
    unreachable: u64,
}

/// The leak roots of the last snapshot, grouped by class (plain objects by their
/// properties), with the retaining paths of the first `path_classes` groups.
fn group_roots(
    s: &Snapshot,
    last: usize,
    lr: &LeakRoots,
    reach: &Reach,
    classes: &mut Classes,
    overall: &[Tally],
    opts: &DiffOptions,
) -> Found {
    let m = &s.meta;
    // Group by class; plain objects by the hash of their property names, named by
    // DevTools' rule when two or more share them.
    let object_name = s.known.object;
    let mut by_group: FxMap<(usize, u64), (Vec<u32>, u64, u64)> = FxMap::default();
    for &(n, retained) in &lr.roots {
        let key = s.class_key(n as usize);
        let c = classes.of(s, last, key);
        let shape = if Some(s.node_name[n as usize]) == object_name
            && s.node_type[n as usize] == m.t_object
        {
            property_hash(s, n)
        } else {
            0
        };
        let e = by_group.entry((c, shape)).or_default();
        e.0.push(n);
        e.1 += retained;
        e.2 += s.node_self[n as usize] as u64;
    }
    // single objects of a shape go back to their class
    let mut merged: FxMap<(usize, u64), (Vec<u32>, u64, u64)> = FxMap::default();
    for ((c, shape), v) in by_group {
        let key = if shape != 0 && v.0.len() < 2 {
            (c, 0)
        } else {
            (c, shape)
        };
        let e = merged.entry(key).or_default();
        e.0.extend(v.0);
        e.1 += v.1;
        e.2 += v.2;
    }
    let mut groups: Vec<(usize, u64, Vec<u32>, u64, u64)> = merged
        .into_iter()
        .map(|((c, shape), (nodes, retained, self_size))| (c, shape, nodes, retained, self_size))
        .collect();
    // Groups that grew first (a group whose class lost as many objects as it has roots was
    // replaced: churn), then by what they retain.
    let grew = |c: usize, roots: usize| overall.get(c).is_none_or(|t| t.deleted < roots as u64);
    groups.sort_by(|a, b| {
        grew(b.0, b.2.len())
            .cmp(&grew(a.0, a.2.len()))
            .then(b.3.cmp(&a.3))
            .then(b.2.len().cmp(&a.2.len()))
            .then(a.0.cmp(&b.0))
            .then(a.1.cmp(&b.1))
    });

    let mut tracer = (opts.path_classes > 0 && !groups.is_empty()).then(|| Tracer::new(s, reach));
    let mut out = Vec::with_capacity(groups.len());
    for (i, (c, shape, nodes, retained, self_size)) in groups.into_iter().enumerate() {
        let class = if shape != 0 {
            nodes
                .first()
                .and_then(|&n| s.plain_object_name(n))
                .unwrap_or_else(|| classes.name(c))
        } else {
            classes.name(c)
        };
        let mut group = LeakRootGroup {
            class,
            count: nodes.len() as u64,
            retained_size: retained,
            self_size,
            deleted_count: overall.get(c).map_or(0, |t| t.deleted),
            held_by: None,
            paths: Vec::new(),
            other_paths: 0,
        };
        if let Some(t) = tracer.as_mut()
            && i < opts.path_classes
        {
            let (paths, other, held) = t.trace(&nodes, opts.paths_per_class);
            group.held_by = held;
            group.paths = paths;
            group.other_paths = other;
        }
        out.push(group);
    }
    Found {
        groups: out,
        unreachable: lr.unreachable,
    }
}

/// A hash of a plain object's property names (0 is kept for "not a plain object").
fn property_hash(s: &Snapshot, n: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for e in s.edges(n) {
        if s.edge_type[e] == s.meta.e_property {
            h = (h ^ s.edge_name[e] as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h.max(1)
}

/// What a step of a path stands for, beyond its edge.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Plain,
    /// A Map's, Set's or WeakMap's `table`: shown with the next step, its entries.
    Table,
    /// An entry of a collection's table (index or key differs from entry to entry).
    Entries,
    /// A WeakMap value reached from its key.
    WeakValue,
}

/// Retaining paths as a trie: a path is its last step plus the path of the node before it.
/// Steps match on edge type and name (element indexes, table entries and the keys of
/// dictionary-like objects aside) and on the node reached, so new objects held by one array,
/// Map or cache share one path; each trie node remembers whether the indexes or keys it
/// stands for differ.
struct Trie {
    parent: Vec<u32>,
    /// Edge and node of the first graph node that took this step.
    edge: Vec<u32>,
    node: Vec<u32>,
    first_name: Vec<u32>,
    varies: Vec<bool>,
    kind: Vec<Step>,
    ids: FxMap<(u32, u64, u64), u32>,
}

const EMPTY_PATH: u32 = 0;
/// An edge name that stands for any index or key.
const ANY: u32 = u32::MAX;
/// Objects with more named properties than this are dictionaries: their keys vary.
const DICTIONARY: usize = 16;

impl Trie {
    fn new() -> Trie {
        Trie {
            parent: vec![NONE],
            edge: vec![NONE],
            node: vec![NONE],
            first_name: vec![0],
            varies: vec![false],
            kind: vec![Step::Plain],
            ids: FxMap::default(),
        }
    }
}

/// Traces the retaining paths of groups of objects in one snapshot.
struct Tracer<'a> {
    s: &'a Snapshot,
    reach: &'a Reach,
    memo: Vec<u32>,
    stack: Vec<u32>,
    dictionary: FxMap<u32, bool>,
}

impl<'a> Tracer<'a> {
    fn new(s: &'a Snapshot, reach: &'a Reach) -> Self {
        Tracer {
            s,
            reach,
            memo: vec![NONE; s.node_count()],
            stack: Vec::new(),
            dictionary: FxMap::default(),
        }
    }

    /// The main paths of `nodes` (at most `per_group`) and how many are on other paths.
    /// The main paths of `nodes` (at most `per_group`), how many are on other paths, and
    /// where the main path holds them (`held_by`).
    fn trace(&mut self, nodes: &[u32], per_group: usize) -> (Vec<PathGroup>, u64, Option<String>) {
        let mut trie = Trie::new();
        self.memo.fill(NONE);
        let mut counts: FxMap<u32, u64> = FxMap::default();
        let mut traced = 0u64;
        for &n in nodes {
            if !self.reach.reached(n) {
                continue;
            }
            traced += 1;
            let id = self.path_of(&mut trie, n);
            *counts.entry(id).or_default() += 1;
        }
        let mut groups: Vec<(u32, u64)> = counts.into_iter().collect();
        groups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let shown: Vec<PathGroup> = groups
            .iter()
            .take(per_group)
            .map(|&(id, count)| path_group(self.s, &trie, id, count))
            .collect();
        let listed: u64 = shown.iter().map(|g| g.count).sum();
        let held = match (groups.first(), shown.first()) {
            (Some(&(id, _)), Some(g)) => self.held_by(&trie, id, &g.steps),
            _ => None,
        };
        (shown, traced - listed, held)
    }

    /// Where a path holds its objects, in words: the last named property or variable before
    /// them (`clients`), the function whose scope holds that variable, or else the nearest
    /// function above it (`via cleanup()`), and when that function is an event listener, its
    /// event (`(SIGINT listener)`; `via a SIGTERM listener` when it has no name). A listener
    /// is named first (the one on the path, else one of the functions that share the
    /// variable's scope): it is what keeps the scope alive for good.
    fn held_by(&self, trie: &Trie, id: u32, steps: &[PathStep]) -> Option<String> {
        let s = self.s;
        let mut chain: Vec<u32> = Vec::new();
        let mut x = id;
        while x != EMPTY_PATH {
            chain.push(trie.node[x as usize]);
            x = trie.parent[x as usize];
        }
        chain.reverse(); // node ordinals, as `steps`
        let named = |st: &PathStep| {
            matches!(st.edge_type.as_deref(), Some("property" | "context"))
                && !st.index_varies
                && st.edge.as_deref().is_some_and(|e| !e.is_empty())
        };
        let h = (1..steps.len()).rev().find(|&i| named(&steps[i]))?;
        let mut text = steps[h].edge.clone()?;
        let on_path = (1..h)
            .rev()
            .find(|&i| steps[i].node_type == "closure")
            .map(|i| chain[i]);
        let scope_functions: Vec<u32> = if steps[h].edge_type.as_deref() == Some("context") {
            self.functions_of_scope(chain[h - 1])
        } else {
            Vec::new()
        };
        let listener = on_path
            .iter()
            .chain(scope_functions.iter())
            .find_map(|&f| self.listener_event(f).map(|ev| (f, ev)));
        let via = listener.as_ref().map(|(f, _)| *f).or(on_path);
        let anonymous = |f: u32| s.string(s.node_name[f as usize]).is_empty();
        match (via, &listener) {
            (Some(f), Some((_, event))) if anonymous(f) => {
                text.push_str(&format!(" via a {event} listener"));
            }
            (Some(f), Some((_, event))) => {
                text.push_str(&format!(" via {} ({event} listener)", s.display_name(f)));
            }
            (Some(f), None) if anonymous(f) => text.push_str(" via an anonymous function"),
            (Some(f), None) => text.push_str(&format!(" via {}", s.display_name(f))),
            (None, _) => {}
        }
        Some(text)
    }

    /// The functions whose scope is the context node `context` (their `context` edge).
    fn functions_of_scope(&self, context: u32) -> Vec<u32> {
        let s = self.s;
        let closure = s.meta.t_closure;
        (0..s.node_count() as u32)
            .filter(|&f| s.node_type[f as usize] == closure)
            .filter(|&f| s.edges(f).any(|e| s.edge_to[e] == context))
            .take(256)
            .collect()
    }

    /// The event a function listens to, when the shortest path reaches it through an
    /// emitter's `_events` (`_events -> SIGINT`, or `_events -> SIGINT -> [1]`).
    fn listener_event(&self, f: u32) -> Option<String> {
        let s = self.s;
        let r = self.reach;
        let m = &s.meta;
        let mut x = f;
        let mut e = r.parent_edge[x as usize];
        while e != NONE && s.edge_type[e as usize] == m.e_element {
            x = r.parent_node[x as usize];
            e = r.parent_edge[x as usize];
        }
        if e == NONE || s.edge_type[e as usize] != m.e_property {
            return None;
        }
        let events = r.parent_node[x as usize];
        let into = r.parent_edge[events as usize];
        (into != NONE
            && s.edge_type[into as usize] == m.e_property
            && s.string_is(s.edge_name[into as usize], b"_events"))
        .then(|| s.string(s.edge_name[e as usize]))
    }

    fn is_dictionary(&mut self, u: u32) -> bool {
        let s = self.s;
        *self.dictionary.entry(u).or_insert_with(|| {
            s.node_type[u as usize] == s.meta.t_object
                && s.edges(u)
                    .filter(|&e| s.edge_type[e] == s.meta.e_property)
                    .take(DICTIONARY + 1)
                    .count()
                    > DICTIONARY
        })
    }

    /// The path of node `v` (reachable), memoised for the nodes on the way.
    fn path_of(&mut self, trie: &mut Trie, v: u32) -> u32 {
        let s = self.s;
        let m = &s.meta;
        let mut x = v;
        while self.memo[x as usize] == NONE && self.reach.parent_edge[x as usize] != NONE {
            self.stack.push(x);
            x = self.reach.parent_node[x as usize];
        }
        let mut id = if self.memo[x as usize] == NONE {
            EMPTY_PATH // x is the root or a start
        } else {
            self.memo[x as usize]
        };
        while let Some(x) = self.stack.pop() {
            let e = self.reach.parent_edge[x as usize] as usize;
            let u = self.reach.parent_node[x as usize];
            let t = s.edge_type[e];
            let raw = s.edge_name[e];
            let (kind, name) = if t == m.e_element {
                (Step::Plain, ANY)
            } else if t == m.e_internal && s.ephemeron(raw).is_some() {
                let from_table = s.is_weakmap_table_edge(u as usize, e);
                (
                    if from_table {
                        Step::Entries
                    } else {
                        Step::WeakValue
                    },
                    ANY,
                )
            } else if t == m.e_internal && Some(raw) == s.known.table {
                (Step::Table, raw)
            } else if t == m.e_internal
                && trie.kind[id as usize] == Step::Table
                && s.string_is_digits(raw)
            {
                (Step::Entries, ANY)
            } else if t == m.e_property && self.is_dictionary(u) {
                (Step::Plain, ANY)
            } else {
                (Step::Plain, raw)
            };
            let key = (
                id,
                ((t as u64) << 32) | name as u64,
                if s.named_on_paths(x as usize) {
                    ((s.node_type[x as usize] as u64) << 32) | s.node_name[x as usize] as u64
                } else {
                    u64::MAX - s.class_key(x as usize)
                },
            );
            let next = trie.parent.len() as u32;
            let step = *trie.ids.entry(key).or_insert(next);
            if step == next {
                trie.parent.push(id);
                trie.edge.push(e as u32);
                trie.node.push(x);
                trie.first_name.push(raw);
                trie.varies.push(false);
                trie.kind.push(kind);
            } else if name == ANY && trie.first_name[step as usize] != raw {
                trie.varies[step as usize] = true;
            }
            self.memo[x as usize] = step;
            id = step;
        }
        id
    }
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
    let last = chain.len().saturating_sub(1);
    let steps: Vec<PathStep> = chain
        .iter()
        .enumerate()
        .map(|(i, &step)| {
            let e = trie.edge[step as usize] as usize;
            let node = trie.node[step as usize];
            let kind = trie.kind[step as usize];
            let varies = trie.varies[step as usize];
            let edge = match kind {
                Step::Entries => {
                    // named after the collection that holds the table (two steps back)
                    let owner = (i >= 2 && trie.kind[chain[i - 1] as usize] == Step::Table)
                        .then(|| s.display_name(trie.node[chain[i - 2] as usize]));
                    format!("({} entries)", owner.as_deref().unwrap_or("WeakMap"))
                }
                Step::WeakValue => "(WeakMap value)".to_string(),
                _ if varies => "[…]".to_string(),
                _ => s.edge_label(e),
            };
            let node_name = if i == last {
                s.plain_object_name(node)
                    .unwrap_or_else(|| s.display_name(node))
            } else {
                s.display_name(node)
            };
            PathStep {
                edge: Some(edge),
                edge_type: Some(type_name(&m.edge_type_names, s.edge_type[e])),
                node: node_name,
                node_type: type_name(&m.node_type_names, s.node_type[node as usize]),
                id: s.node_id[node as usize],
                index_varies: varies || kind == Step::Entries,
            }
        })
        .collect();
    let mut parts: Vec<String> = Vec::new();
    for (i, (step, &c)) in steps.iter().zip(chain.iter()).enumerate() {
        let t = s.node_type[trie.node[c as usize] as usize];
        let edge = step.edge.as_deref().unwrap_or("");
        if trie.kind[c as usize] == Step::Table && i != last {
            continue; // shown by the entries step after it
        }
        parts.push(if i == 0 || t == m.t_synthetic {
            step.node.clone()
        } else if i == last || t == m.t_closure {
            format!("{edge} ({})", step.node)
        } else {
            edge.to_string()
        });
    }
    PathGroup {
        count,
        text: parts.join(" -> "),
        steps,
    }
}
