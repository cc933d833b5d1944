//! Graph algorithms on one snapshot, as DevTools defines them (devtools-frontend
//! `HeapSnapshot.ts`): distances (breadth-first from the roots, weak edges skipped), the
//! dominator tree and retained sizes (weak edges ignored, shortcut edges only from the root,
//! objects reachable from the user's globals dominated only through them, a WeakMap value
//! kept by its key rather than by the map's table), and the leak roots of a diff. All
//! iterative: real heaps are far deeper than any call stack.

use super::snapshot::Snapshot;

pub const NONE: u32 = u32::MAX;

/// Shortest retaining paths: for each node, the edge it was first reached by, breadth-first
/// from the user roots (the root's non-synthetic children, such as `global`) and then from
/// the root, skipping weak edges, as DevTools computes distances.
pub struct Reach {
    /// Node the path comes from (`NONE` for the root, the starts and unreachable nodes).
    pub parent_node: Vec<u32>,
    /// Edge ordinal of that step.
    pub parent_edge: Vec<u32>,
}

impl Reach {
    pub fn compute(s: &Snapshot) -> Reach {
        let n = s.node_count();
        let mut parent_node = vec![NONE; n];
        let mut parent_edge = vec![NONE; n];
        let mut queue: Vec<u32> = Vec::with_capacity(n);
        let m = &s.meta;
        let sloppy = s.known.sloppy_function_map;
        let native_context = s.known.native_context;
        let map_descriptors = s.known.map_descriptors;
        // A WeakMap value is reached by two edges, the table's and the key's: DevTools skips
        // the first of the pair it meets, so the value's distance is the larger of the two.
        let mut pending = vec![0u64; (s.ephemeron_pairs as usize).div_ceil(64)];
        // Edges DevTools leaves out of distances: a native context's sloppy_function_map,
        // and the descriptor links of `(map descriptors)` arrays (shared between maps).
        let mut skip = |from: usize, e: usize| -> bool {
            let t = s.node_type[from];
            let et = s.edge_type[e];
            if t == m.t_hidden
                && !m.edge_has_index(et)
                && Some(s.edge_name[e]) == sloppy
                && Some(s.node_name[from]) == native_context
            {
                return true;
            }
            if t == m.t_array && Some(s.node_name[from]) == map_descriptors && m.edge_has_index(et)
            {
                let i = s.edge_name[e];
                return !(i < 2 || i % 3 != 1);
            }
            if et == m.e_internal
                && let Some((pair, _)) = s.ephemeron(s.edge_name[e])
            {
                let word = &mut pending[pair as usize / 64];
                let bit = 1u64 << (pair % 64);
                let first = *word & bit == 0;
                *word ^= bit;
                return first;
            }
            false
        };
        let root = s.root as usize;
        for e in s.edges(s.root) {
            let to = s.edge_to[e] as usize;
            if s.node_type[to] != m.t_synthetic && parent_node[to] == NONE && to != root {
                parent_node[to] = s.root;
                parent_edge[to] = e as u32;
                queue.push(to as u32);
            }
        }
        // First from the user roots, then from the root for what they do not reach.
        let mut head = 0usize;
        for phase in 0..2 {
            if phase == 1 {
                queue.push(s.root);
            }
            while head < queue.len() {
                let v = queue[head] as usize;
                head += 1;
                for e in s.edges(v as u32) {
                    if s.edge_type[e] == m.e_weak {
                        continue;
                    }
                    let to = s.edge_to[e] as usize;
                    // the root keeps no parent, so every path ends there
                    if parent_node[to] != NONE || to == root || skip(v, e) {
                        continue;
                    }
                    parent_node[to] = v as u32;
                    parent_edge[to] = e as u32;
                    queue.push(to as u32);
                }
            }
        }
        Reach {
            parent_node,
            parent_edge,
        }
    }

    /// Whether a path without weak edges from the root reaches node `v` (not the root
    /// itself, which has no path).
    #[inline]
    pub fn reached(&self, v: u32) -> bool {
        self.parent_node[v as usize] != NONE
    }

    /// DevTools' distance of `v`: the steps of its path, `None` when no path reaches it.
    pub fn distance(&self, root: u32, v: u32) -> Option<u32> {
        if v == root {
            return Some(0);
        }
        let mut d = 0;
        let mut x = v;
        while x != root {
            x = self.parent_node[x as usize];
            if x == NONE {
                return None;
            }
            d += 1;
        }
        Some(d)
    }
}

/// DevTools' "essential" edges, the ones dominators are computed over.
struct Essential<'a> {
    s: &'a Snapshot,
    /// `PAGE` for nodes reachable from the user's globals without weak edges ("page
    /// objects"); the other bits are free for the caller's own marks.
    flags: Vec<u8>,
}

const PAGE: u8 = 1;

impl<'a> Essential<'a> {
    fn new(s: &'a Snapshot) -> Self {
        Essential {
            s,
            flags: page_objects(s),
        }
    }

    /// Whether edge `e` of node `u` (to `v`) can retain `v`.
    #[inline]
    fn test(&self, u: u32, e: usize, v: u32) -> bool {
        let s = self.s;
        let m = &s.meta;
        let t = s.edge_type[e];
        if t == m.e_weak || u == v {
            return false;
        }
        // A WeakMap value is kept by its key: the table's edge is left out.
        if t == m.e_internal && s.is_weakmap_table_edge(u as usize, e) {
            return false;
        }
        if u == s.root {
            return true;
        }
        // Shortcuts mean something only at the root; and an edge from an object the
        // program does not own into one it owns is skipped.
        t != m.e_shortcut && self.flags[v as usize] & !self.flags[u as usize] & PAGE == 0
    }
}

/// A graph to compute dominators on: nodes `0..len`, each with a range of edge slots, some of
/// which are edges that count (`target`).
trait DomGraph {
    fn len(&self) -> usize;
    fn root(&self) -> u32;
    fn slots(&self, v: u32) -> std::ops::Range<usize>;
    fn target(&self, v: u32, slot: usize) -> Option<u32>;
    fn self_size(&self, v: u32) -> u64;
}

/// The whole snapshot over its essential edges.
struct Whole<'a> {
    s: &'a Snapshot,
    essential: Essential<'a>,
}

impl DomGraph for Whole<'_> {
    fn len(&self) -> usize {
        self.s.node_count()
    }
    fn root(&self) -> u32 {
        self.s.root
    }
    #[inline]
    fn slots(&self, v: u32) -> std::ops::Range<usize> {
        self.s.edges(v)
    }
    #[inline]
    fn target(&self, v: u32, e: usize) -> Option<u32> {
        let to = self.s.edge_to[e];
        self.essential.test(v, e, to).then_some(to)
    }
    fn self_size(&self, v: u32) -> u64 {
        self.s.node_self[v as usize] as u64
    }
}

/// The dominator tree and retained sizes of a `DomGraph`.
struct Tree {
    idom: Vec<u32>,
    retained: Vec<u64>,
    /// Depth-first preorder: every node comes after its dominator.
    order: Vec<u32>,
}

/// Lengauer-Tarjan (the simple version with path compression), iterative, with DevTools'
/// rules for what the root does not reach: nodes with no retaining edge at all start a
/// search of their own under the root, and whatever is still left (cycles only garbage
/// holds) is put under the root one by one.
fn dominator_tree<G: DomGraph>(g: &G) -> Tree {
    let n = g.len();
    let root = g.root();
    // Predecessors (node space) over the edges that count.
    let mut first_pred = vec![0u32; n + 2];
    for u in 0..n as u32 {
        for e in g.slots(u) {
            if let Some(v) = g.target(u, e) {
                first_pred[v as usize + 2] += 1;
            }
        }
    }
    for i in 2..n + 2 {
        first_pred[i] += first_pred[i - 1];
    }
    let mut preds = vec![0u32; first_pred[n + 1] as usize];
    for u in 0..n as u32 {
        for e in g.slots(u) {
            if let Some(v) = g.target(u, e) {
                let slot = &mut first_pred[v as usize + 1];
                preds[*slot as usize] = u;
                *slot += 1;
            }
        }
    }
    // now the preds of v are preds[first_pred[v]..first_pred[v + 1]]
    let orphan = |v: usize| first_pred[v] == first_pred[v + 1];

    let mut dfnum = vec![NONE; n];
    let mut vertex: Vec<u32> = Vec::with_capacity(n);
    let mut parent: Vec<u32> = Vec::with_capacity(n);
    let mut stack: Vec<(u32, usize)> = Vec::new();
    let mut search = |start: u32, from: u32, dfnum: &mut Vec<u32>, vertex: &mut Vec<u32>| {
        dfnum[start as usize] = vertex.len() as u32;
        vertex.push(start);
        parent.push(from);
        stack.push((start, g.slots(start).start));
        while let Some(top) = stack.last_mut() {
            let (v, e) = *top;
            if e < g.slots(v).end {
                top.1 += 1;
                if let Some(to) = g.target(v, e)
                    && dfnum[to as usize] == NONE
                {
                    dfnum[to as usize] = vertex.len() as u32;
                    vertex.push(to);
                    parent.push(dfnum[v as usize]);
                    stack.push((to, g.slots(to).start));
                }
            } else {
                stack.pop();
            }
        }
    };
    search(root, NONE, &mut dfnum, &mut vertex);
    if vertex.len() < n {
        for v in 0..n {
            if dfnum[v] == NONE && orphan(v) {
                search(v as u32, 0, &mut dfnum, &mut vertex);
            }
        }
    }
    drop(stack);
    if vertex.len() < n {
        for (v, num) in dfnum.iter_mut().enumerate() {
            if *num == NONE {
                *num = vertex.len() as u32;
                vertex.push(v as u32);
                parent.push(0);
            }
        }
    }

    let mut semi: Vec<u32> = (0..n as u32).collect();
    let mut label: Vec<u32> = (0..n as u32).collect();
    let mut ancestor = vec![NONE; n];
    let mut idom = vec![0u32; n];
    let mut bucket_head = vec![NONE; n];
    let mut bucket_next = vec![NONE; n];
    let mut chain: Vec<u32> = Vec::new();
    let mut eval = |v: u32, ancestor: &mut Vec<u32>, label: &mut Vec<u32>, semi: &Vec<u32>| {
        if ancestor[v as usize] == NONE {
            return v;
        }
        // compress the path from v to its forest root, iteratively
        let mut u = v;
        while ancestor[ancestor[u as usize] as usize] != NONE {
            chain.push(u);
            u = ancestor[u as usize];
        }
        while let Some(u) = chain.pop() {
            let a = ancestor[u as usize] as usize;
            if semi[label[a] as usize] < semi[label[u as usize] as usize] {
                label[u as usize] = label[a];
            }
            ancestor[u as usize] = ancestor[a];
        }
        label[v as usize]
    };
    for w in (1..n).rev() {
        let node = vertex[w] as usize;
        if orphan(node) {
            // no edge retains it: its only predecessor is the root
            semi[w] = 0;
        }
        for &p in &preds[first_pred[node] as usize..first_pred[node + 1] as usize] {
            let u = eval(dfnum[p as usize], &mut ancestor, &mut label, &semi);
            if semi[u as usize] < semi[w] {
                semi[w] = semi[u as usize];
            }
        }
        let sw = semi[w] as usize;
        bucket_next[w] = bucket_head[sw];
        bucket_head[sw] = w as u32;
        let p = parent[w];
        ancestor[w] = p;
        let mut v = bucket_head[p as usize];
        bucket_head[p as usize] = NONE;
        while v != NONE {
            let next = bucket_next[v as usize];
            let u = eval(v, &mut ancestor, &mut label, &semi);
            idom[v as usize] = if semi[u as usize] < semi[v as usize] {
                u
            } else {
                p
            };
            v = next;
        }
    }
    for w in 1..n {
        if idom[w] != semi[w] {
            idom[w] = idom[idom[w] as usize];
        }
    }
    drop(preds);
    drop(first_pred);
    drop((semi, label, ancestor, bucket_head, bucket_next, parent));

    // Retained sizes: children before their dominators (reverse preorder).
    let mut retained_df: Vec<u64> = vertex.iter().map(|&v| g.self_size(v)).collect();
    for w in (1..n).rev() {
        let d = idom[w] as usize;
        retained_df[d] += retained_df[w];
    }
    let mut idom_node = vec![0u32; n];
    let mut retained = vec![0u64; n];
    for w in 0..n {
        let v = vertex[w] as usize;
        idom_node[v] = vertex[idom[w] as usize];
        retained[v] = retained_df[w];
    }
    if n > 0 {
        idom_node[root as usize] = root;
    }
    Tree {
        idom: idom_node,
        retained,
        order: vertex,
    }
}

/// The dominator tree and retained sizes.
pub struct Dominators {
    /// Immediate dominator of each node (the root's is itself).
    pub idom: Vec<u32>,
    pub retained: Vec<u64>,
    /// Node ordinals in a depth-first preorder of the graph from the root: every node comes
    /// after its dominator.
    pub order: Vec<u32>,
}

impl Dominators {
    pub fn compute(s: &Snapshot) -> Dominators {
        let whole = Whole {
            s,
            essential: Essential::new(s),
        };
        let t = dominator_tree(&whole);
        Dominators {
            idom: t.idom,
            retained: t.retained,
            order: t.order,
        }
    }
}

/// `PAGE` for the nodes reachable from the user's globals (the root's shortcut edges)
/// without weak edges: DevTools' "page objects".
fn page_objects(s: &Snapshot) -> Vec<u8> {
    let n = s.node_count();
    let m = &s.meta;
    let mut page = vec![0u8; n];
    let mut stack: Vec<u32> = Vec::new();
    for e in s.edges(s.root) {
        if s.edge_type[e] == m.e_shortcut {
            let to = s.edge_to[e];
            if page[to as usize] == 0 {
                page[to as usize] = PAGE;
                stack.push(to);
            }
        }
    }
    while let Some(v) = stack.pop() {
        for e in s.edges(v) {
            let to = s.edge_to[e];
            if s.edge_type[e] != m.e_weak && page[to as usize] == 0 {
                page[to as usize] = PAGE;
                stack.push(to);
            }
        }
    }
    page
}

/// The leak roots of a diff: new objects that no other new object dominates, with the
/// retained size of each (what would go if it went).
pub struct LeakRoots {
    /// Node ordinal and retained size of each root, in node order.
    pub roots: Vec<(u32, u64)>,
    /// New objects (the candidates) that no path of strong edges reaches.
    pub unreachable: u64,
}

// Where a node stands in the leak-root search (bits beside `PAGE`).
/// Reached from the root without passing through a new object: no new object dominates it.
const OLD_SIDE: u8 = 2;
/// A new object an old-side object holds: a leak root.
const FRONTIER: u8 = 4;
/// Reached only through new objects.
const BEHIND: u8 = 8;
const SEEN: u8 = OLD_SIDE | FRONTIER | BEHIND;

impl LeakRoots {
    /// `candidate(n)`: whether node `n` is a new object (ids not in the first snapshot,
    /// V8's internal arrays and shapes left out: their owner stands for them).
    ///
    /// No full dominator tree is needed. Every object the root reaches without passing
    /// through a new one is dominated by no new object. The rest (`FRONTIER`: new objects
    /// held from there; `BEHIND`: what only new objects reach) is closed under
    /// predecessors, apart from the frontier's own, so its dominators are those of the
    /// subgraph with a root above the frontier; that subgraph is small when the heap is
    /// mostly old.
    pub fn compute(s: &Snapshot, candidate: impl Fn(usize) -> bool) -> LeakRoots {
        let n = s.node_count();
        let mut essential = Essential::new(s);
        let mut queue: Vec<u32> = Vec::new();
        let mut frontier: Vec<u32> = Vec::new();
        essential.flags[s.root as usize] |= OLD_SIDE;
        queue.push(s.root);
        let mut head = 0;
        while head < queue.len() {
            let u = queue[head];
            head += 1;
            for e in s.edges(u) {
                let v = s.edge_to[e];
                if essential.flags[v as usize] & SEEN != 0 || !essential.test(u, e, v) {
                    continue;
                }
                if candidate(v as usize) {
                    essential.flags[v as usize] |= FRONTIER;
                    frontier.push(v);
                } else {
                    essential.flags[v as usize] |= OLD_SIDE;
                    queue.push(v);
                }
            }
        }
        // What is behind the frontier, numbered locally from 1 (0 is the root above it).
        queue.clear();
        queue.extend_from_slice(&frontier);
        let mut head = 0;
        while head < queue.len() {
            let u = queue[head];
            head += 1;
            for e in s.edges(u) {
                let v = s.edge_to[e];
                if essential.flags[v as usize] & SEEN == 0 && essential.test(u, e, v) {
                    essential.flags[v as usize] |= BEHIND;
                    queue.push(v);
                }
            }
        }
        let nodes = queue; // frontier first, then behind
        let unreachable = (0..n)
            .filter(|&v| essential.flags[v] & SEEN == 0 && candidate(v))
            .count() as u64;
        // The subgraph as successor lists in local numbers, the edges tested once.
        let mut local = vec![NONE; n];
        for (i, &v) in nodes.iter().enumerate() {
            local[v as usize] = i as u32 + 1;
        }
        let mut first = Vec::with_capacity(nodes.len() + 2);
        let mut succ: Vec<u32> = (1..=frontier.len() as u32).collect();
        first.push(0);
        for &u in &nodes {
            first.push(succ.len() as u32);
            for e in s.edges(u) {
                let to = s.edge_to[e];
                let l = local[to as usize];
                if l != NONE && essential.test(u, e, to) {
                    succ.push(l);
                }
            }
        }
        first.push(succ.len() as u32);
        drop(local);
        drop(essential);
        let sub = Behind {
            s,
            nodes: &nodes,
            first,
            succ,
        };
        let t = dominator_tree(&sub);
        drop(sub);
        // A new object is a root when no new object is among its dominators.
        let mut covered = vec![false; nodes.len() + 1];
        let mut roots = Vec::new();
        for &v in t.order.iter().skip(1) {
            let d = t.idom[v as usize] as usize;
            let node = nodes[v as usize - 1];
            let by_new = d != 0 && (covered[d] || candidate(nodes[d - 1] as usize));
            covered[v as usize] = by_new;
            if !by_new && candidate(node as usize) {
                roots.push((node, t.retained[v as usize]));
            }
        }
        roots.sort_unstable_by_key(|r| r.0);
        LeakRoots { roots, unreachable }
    }
}

/// The graph behind the leak frontier, as successor lists: local node 0 is a root with an
/// edge to every frontier node (locals `1..=frontier`), the others are the objects only new
/// ones reach (local `i` is `nodes[i - 1]`).
struct Behind<'a> {
    s: &'a Snapshot,
    nodes: &'a [u32],
    first: Vec<u32>,
    succ: Vec<u32>,
}

impl DomGraph for Behind<'_> {
    fn len(&self) -> usize {
        self.nodes.len() + 1
    }
    fn root(&self) -> u32 {
        0
    }
    #[inline]
    fn slots(&self, v: u32) -> std::ops::Range<usize> {
        self.first[v as usize] as usize..self.first[v as usize + 1] as usize
    }
    #[inline]
    fn target(&self, _v: u32, slot: usize) -> Option<u32> {
        Some(self.succ[slot])
    }
    fn self_size(&self, v: u32) -> u64 {
        if v == 0 {
            0
        } else {
            self.s.node_self[self.nodes[v as usize - 1] as usize] as u64
        }
    }
}
