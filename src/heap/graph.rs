//! Graph algorithms on one snapshot, as DevTools defines them (devtools-frontend
//! `HeapSnapshot.ts`): distances (breadth-first from the roots, weak edges skipped), the
//! dominator tree and retained sizes (weak edges ignored, shortcut edges only from the root,
//! objects reachable from the user's globals dominated only through them). All iterative:
//! real heaps are far deeper than any call stack.

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
    pub distance: Vec<u32>,
}

impl Reach {
    pub fn compute(s: &Snapshot) -> Reach {
        let n = s.node_count();
        let mut distance = vec![NONE; n];
        let mut parent_node = vec![NONE; n];
        let mut parent_edge = vec![NONE; n];
        let mut queue: Vec<u32> = Vec::with_capacity(n);
        let m = &s.meta;
        let sloppy = s.known.sloppy_function_map;
        let native_context = s.known.native_context;
        let map_descriptors = s.known.map_descriptors;
        // Edges DevTools leaves out of distances: a native context's sloppy_function_map,
        // and the descriptor links of `(map descriptors)` arrays (shared between maps).
        let skip = |from: usize, e: usize| -> bool {
            let t = s.node_type[from];
            if t == m.t_hidden {
                let by_index = m.edge_has_index(s.edge_type[e]);
                return !by_index
                    && Some(s.edge_name[e]) == sloppy
                    && Some(s.node_name[from]) == native_context;
            }
            if t == m.t_array && Some(s.node_name[from]) == map_descriptors {
                if !m.edge_has_index(s.edge_type[e]) {
                    return false;
                }
                let i = s.edge_name[e];
                return !(i < 2 || i % 3 != 1);
            }
            false
        };
        let root = s.root as usize;
        for e in s.edges(s.root) {
            let to = s.edge_to[e] as usize;
            if s.node_type[to] != m.t_synthetic && distance[to] == NONE && to != root {
                distance[to] = 1;
                parent_node[to] = s.root;
                parent_edge[to] = e as u32;
                queue.push(to as u32);
            }
        }
        // First from the user roots, then from the root for what they do not reach.
        let mut head = 0usize;
        for phase in 0..2 {
            if phase == 1 {
                if distance[root] != NONE {
                    break;
                }
                distance[root] = 0;
                queue.push(s.root);
            }
            while head < queue.len() {
                let v = queue[head] as usize;
                head += 1;
                let d = distance[v] + 1;
                for e in s.edges(v as u32) {
                    if s.edge_type[e] == m.e_weak {
                        continue;
                    }
                    let to = s.edge_to[e] as usize;
                    // the root keeps no parent, so every path ends there
                    if distance[to] != NONE || to == root || skip(v, e) {
                        continue;
                    }
                    distance[to] = d;
                    parent_node[to] = v as u32;
                    parent_edge[to] = e as u32;
                    queue.push(to as u32);
                }
            }
        }
        Reach {
            parent_node,
            parent_edge,
            distance,
        }
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
    /// Lengauer-Tarjan (the simple version with path compression), iterative.
    pub fn compute(s: &Snapshot) -> Dominators {
        let n = s.node_count();
        let m = &s.meta;
        let root = s.root;
        let page = page_objects(s);
        // Whether the edge u -> v counts for dominators (DevTools' essential edges).
        let essential = |u: u32, e: usize, v: u32| -> bool {
            let t = s.edge_type[e];
            if t == m.e_weak || (t == m.e_shortcut && u != root) {
                return false;
            }
            // Skip edges from objects the program does not own into objects it owns.
            !(u != root && page[v as usize] && !page[u as usize])
        };

        // Depth-first numbering from the root; then every node not reached yet starts a
        // search of its own, as a child of the root (DevTools makes such orphans root's).
        let mut dfnum = vec![NONE; n];
        let mut vertex: Vec<u32> = Vec::with_capacity(n);
        let mut parent: Vec<u32> = Vec::with_capacity(n);
        let mut root_child = vec![false; n];
        let mut stack: Vec<(u32, u32)> = Vec::new();
        let mut search = |start: u32,
                          from: u32,
                          dfnum: &mut Vec<u32>,
                          vertex: &mut Vec<u32>,
                          parent: &mut Vec<u32>| {
            dfnum[start as usize] = vertex.len() as u32;
            vertex.push(start);
            parent.push(from);
            stack.push((start, s.first_edge[start as usize]));
            while let Some(top) = stack.last_mut() {
                let (v, e) = *top;
                if e < s.first_edge[v as usize + 1] {
                    top.1 += 1;
                    let to = s.edge_to[e as usize];
                    if dfnum[to as usize] == NONE && essential(v, e as usize, to) {
                        dfnum[to as usize] = vertex.len() as u32;
                        vertex.push(to);
                        parent.push(dfnum[v as usize]);
                        stack.push((to, s.first_edge[to as usize]));
                    }
                } else {
                    stack.pop();
                }
            }
        };
        search(root, NONE, &mut dfnum, &mut vertex, &mut parent);
        for v in 0..n as u32 {
            if dfnum[v as usize] == NONE {
                root_child[v as usize] = true;
                search(v, 0, &mut dfnum, &mut vertex, &mut parent);
            }
        }

        // Predecessors over the same edges, in depth-first-number space.
        let mut first_pred = vec![0u32; n + 2];
        for u in 0..n as u32 {
            for e in s.edges(u) {
                let v = s.edge_to[e];
                if essential(u, e, v) {
                    first_pred[dfnum[v as usize] as usize + 2] += 1;
                }
            }
        }
        for (v, &child) in root_child.iter().enumerate() {
            if child {
                first_pred[dfnum[v] as usize + 2] += 1;
            }
        }
        for i in 2..n + 2 {
            first_pred[i] += first_pred[i - 1];
        }
        let mut preds = vec![0u32; first_pred[n + 1] as usize];
        for u in 0..n as u32 {
            for e in s.edges(u) {
                let v = s.edge_to[e];
                if essential(u, e, v) {
                    let slot = &mut first_pred[dfnum[v as usize] as usize + 1];
                    preds[*slot as usize] = dfnum[u as usize];
                    *slot += 1;
                }
            }
        }
        for (v, &child) in root_child.iter().enumerate() {
            if child {
                let slot = &mut first_pred[dfnum[v] as usize + 1];
                preds[*slot as usize] = 0;
                *slot += 1;
            }
        }
        drop(root_child);
        drop(page);
        // now preds of w are preds[first_pred[w]..first_pred[w + 1]]

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
            for &p in &preds[first_pred[w] as usize..first_pred[w + 1] as usize] {
                let u = eval(p, &mut ancestor, &mut label, &semi);
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

        // Retained sizes: children before their dominators (reverse preorder).
        let mut retained_df: Vec<u64> = vertex
            .iter()
            .map(|&v| s.node_self[v as usize] as u64)
            .collect();
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
        Dominators {
            idom: idom_node,
            retained,
            order: vertex,
        }
    }
}

/// Nodes reachable from the user's globals (the root's shortcut edges) without weak edges:
/// DevTools' "page objects".
fn page_objects(s: &Snapshot) -> Vec<bool> {
    let n = s.node_count();
    let m = &s.meta;
    let mut page = vec![false; n];
    let mut stack: Vec<u32> = Vec::new();
    for e in s.edges(s.root) {
        if s.edge_type[e] == m.e_shortcut {
            let to = s.edge_to[e];
            if !page[to as usize] {
                page[to as usize] = true;
                stack.push(to);
            }
        }
    }
    while let Some(v) = stack.pop() {
        for e in s.edges(v) {
            let to = s.edge_to[e];
            if s.edge_type[e] != m.e_weak && !page[to as usize] {
                page[to as usize] = true;
                stack.push(to);
            }
        }
    }
    page
}
