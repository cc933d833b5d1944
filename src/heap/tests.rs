//! Unit tests on small hand-made snapshot texts with known answers.

use super::diff::{DiffOptions, diff_snapshots};
use super::error::HeapError;
use super::graph::{Dominators, Reach};
use super::snapshot::{Need, Snapshot};
use super::summary::{SummaryOptions, summarize};
use std::io::Write;

pub const NODE_TYPES: &str = r#"["hidden","array","string","object","code","closure","regexp","number","native","synthetic","concatenated string","sliced string","symbol","bigint","object shape"]"#;
pub const EDGE_TYPES: &str =
    r#"["context","element","property","internal","hidden","shortcut","weak"]"#;

/// An edge: type, name (a string, or an index for element/hidden), target node position.
pub struct E(pub &'static str, pub &'static str, pub usize);

/// A node: type, name, id, self size, edges.
pub struct N(
    pub &'static str,
    pub &'static str,
    pub u32,
    pub u32,
    pub Vec<E>,
);

fn type_index(list: &str, t: &str) -> usize {
    let names: Vec<String> = serde_json::from_str(list).unwrap();
    names.iter().position(|n| n == t).unwrap()
}

/// The snapshot text Node 20 would write for these nodes (7 node fields).
pub fn text(nodes: &[N]) -> String {
    let mut strings: Vec<String> = Vec::new();
    let mut string = |s: &str| {
        if let Some(i) = strings.iter().position(|x| x == s) {
            i
        } else {
            strings.push(s.to_string());
            strings.len() - 1
        }
    };
    let mut ns = Vec::new();
    let mut es = Vec::new();
    let edge_count: usize = nodes.iter().map(|n| n.4.len()).sum();
    for n in nodes {
        let t = type_index(NODE_TYPES, n.0);
        let name = string(n.1);
        ns.push(format!("{t},{name},{},{},{},0,0", n.2, n.3, n.4.len()));
        for e in &n.4 {
            let et = type_index(EDGE_TYPES, e.0);
            let name = if e.0 == "element" || e.0 == "hidden" {
                e.1.parse::<usize>().unwrap()
            } else {
                string(e.1)
            };
            es.push(format!("{et},{name},{}", e.2 * 7));
        }
    }
    format!(
        r#"{{"snapshot":{{"meta":{{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"node_types":[{NODE_TYPES},"string","number","number","number","number","number"],"edge_fields":["type","name_or_index","to_node"],"edge_types":[{EDGE_TYPES},"string_or_number","node"],"trace_function_info_fields":[],"trace_node_fields":[],"sample_fields":[],"location_fields":[]}},"node_count":{},"edge_count":{edge_count},"trace_function_count":0}},
"nodes":[{}],
"edges":[{}],
"trace_function_infos":[],"trace_tree":[],"samples":[],"locations":[],
"strings":[{}]}}"#,
        nodes.len(),
        ns.join("\n,"),
        es.join("\n,"),
        strings
            .iter()
            .map(|s| serde_json::to_string(s).unwrap())
            .collect::<Vec<_>>()
            .join(",\n")
    )
}

pub fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.flush().unwrap();
    f
}

fn open(text: &str, need: Need) -> (tempfile::NamedTempFile, Result<Snapshot, HeapError>) {
    let f = file(text);
    let s = Snapshot::open(f.path(), need);
    (f, s)
}

/// root -shortcut-> global -list-> Array -elements-> (object elements) -[i]-> Foo...
fn leak(ids_of_foo: &[u32], bar_id: u32) -> Vec<N> {
    let mut nodes = vec![
        N(
            "synthetic",
            "",
            1,
            0,
            vec![E("shortcut", "1", 1), E("element", "1", 2)],
        ),
        N(
            "object",
            "global",
            3,
            40,
            vec![E("property", "list", 3), E("property", "bar", 5)],
        ),
        N("synthetic", "(GC roots)", 5, 0, vec![E("element", "1", 1)]),
        N("object", "Array", 7, 32, vec![E("internal", "elements", 4)]),
    ];
    let foo_edges: Vec<E> = (0..ids_of_foo.len())
        .map(|i| E("element", Box::leak(i.to_string().into_boxed_str()), 6 + i))
        .collect();
    nodes.push(N("array", "(object elements)", 9, 16, foo_edges));
    nodes.push(N("object", "Bar", bar_id, 24, vec![]));
    for &id in ids_of_foo {
        nodes.push(N("object", "Foo", id, 100, vec![E("weak", "w", 5)]));
    }
    nodes
}

#[test]
fn reads_node_20_snapshot() {
    let (_f, s) = open(&text(&leak(&[21, 23], 11)), Need::NodesAndEdges);
    let s = s.unwrap();
    assert_eq!(s.node_count(), 8);
    assert_eq!(s.edge_count(), 10);
    assert_eq!(s.node_id, vec![1, 3, 5, 7, 9, 11, 21, 23]);
    assert_eq!(s.class_name(s.class_key(1)), "global");
    assert_eq!(s.class_name(s.class_key(4)), "(array)");
    assert_eq!(s.class_name(s.class_key(2)), "(synthetic)");
    assert_eq!(s.edge_label(2), "list");
    assert_eq!(s.edges(1), 2..4);
    assert_eq!(s.edge_to[2], 3);
}

#[test]
fn meta_with_extra_and_reordered_fields() {
    // Fields in another order, unknown extra fields (extra_native_bytes, a made-up one), and
    // the type lists at the positions the meta says.
    let text = r#"{"snapshot":{"meta":{"node_fields":["name","id","extra_native_bytes","type","edge_count","self_size","future_field"],
"node_types":["string","number","number",["hidden","object","native","synthetic","string","closure"],"number","number","number"],
"edge_fields":["to_node","name_or_index","type"],"edge_types":["node","string_or_number",["element","property","weak","hidden","internal","shortcut","context"]],
"location_fields":["object_index","script_id","line","column"]},"node_count":3,"edge_count":3,"extra_header":{"a":[1,2]}},
"nodes":[3,1,0,3,2,0,9, 0,5,777,1,1,48,9, 1,7,0,5,0,12,9],
"edges":[14,2,0, 7,2,1, 7,4,2],
"locations":[],"strings":["Leaky","foo","(GC roots)","leak","x"],"something_new":{"k":"v"}}"#;
    let (_f, s) = open(text, Need::NodesAndEdges);
    let s = s.unwrap();
    assert_eq!(s.node_id, vec![1, 5, 7]);
    assert_eq!(s.node_self, vec![0, 48, 12]);
    assert_eq!(s.class_name(s.class_key(1)), "Leaky");
    assert_eq!(
        s.class_name(s.class_key(2)),
        "Function",
        "DevTools' name for closures"
    );
    assert_eq!(s.display_name(2), "foo()");
    assert_eq!(s.edge_to, vec![2, 1, 1]);
    assert_eq!(s.edge_label(0), "[2]");
    assert_eq!(s.edge_label(1), "(GC roots)");
    assert_eq!(s.edge_type[2], s.meta.e_weak);
    assert_eq!(s.edges(0), 0..2);
    assert_eq!(s.edges(1), 2..3);
    assert_eq!(s.edges(2), 3..3);
}

fn err(text: &str) -> String {
    let (f, s) = open(text, Need::NodesAndEdges);
    let e = s.unwrap_err().to_string();
    assert!(
        e.contains(&f.path().display().to_string()),
        "the message names the file: {e}"
    );
    e
}

#[test]
fn malformed_inputs_each_get_their_error() {
    let good = text(&leak(&[21], 11));
    assert!(err("").contains("is empty"));
    assert!(err(" \n ").contains("is empty"));
    assert!(err("hello").contains("not a V8 heap snapshot"));
    assert!(err(r#"{"foo":1}"#).contains("the first key is 'foo', not 'snapshot'"));
    assert!(err("[1,2,3]").contains("not a V8 heap snapshot"));
    // truncated at several places
    let cut = good.find("\"edges\"").unwrap() - 8;
    assert!(err(&good[..cut]).contains("truncated: it ends inside the nodes array"));
    let cut = good.find("\"strings\"").unwrap() + 14;
    assert!(err(&good[..cut]).contains("truncated: it ends inside the strings array"));
    assert!(err(&good[..good.len() - 1]).contains("truncated"));
    assert!(err(&good[..40]).contains("truncated: it ends inside the 'snapshot' header"));
    // meta
    let no_self = good.replace("\"self_size\",", "\"size\",");
    assert!(err(&no_self).contains("node_fields has no 'self_size'"));
    let no_meta = good.replace("\"meta\"", "\"mota\"");
    assert!(err(&no_meta).contains("unusable snapshot.meta: missing field `meta`"));
    let bad_types = good.replace("\"node_types\":[[", "\"node_types\":[7,[");
    assert!(err(&bad_types).contains("node_types[0] is not the list of type names"));
    // counts
    let more_nodes = good.replace("\"node_count\":7", "\"node_count\":8");
    assert!(err(&more_nodes).contains("node count: the header says 8, the file has 7"));
    let more_edges = good.replace("\"edge_count\":8", "\"edge_count\":9");
    assert!(err(&more_edges).contains("edge count"));
    // values
    let bad_node_type = good.replacen("\"nodes\":[9,", "\"nodes\":[99,", 1);
    assert!(err(&bad_node_type).contains("node 0 has type 99"));
    let at = good.find("\"edges\":[").unwrap() + 9;
    let first_edge_end = at + good[at..].find('\n').unwrap();
    let first_edge = &good[at..first_edge_end];
    let bad_first = format!("{},8", &first_edge[..first_edge.rfind(',').unwrap()]);
    let bad_to = format!("{}{bad_first}{}", &good[..at], &good[first_edge_end..]);
    assert!(err(&bad_to).contains("to_node 8"), "{}", err(&bad_to));
    let negative = good.replacen("\"nodes\":[9,", "\"nodes\":[-9,", 1);
    assert!(err(&negative).contains("expected an unsigned integer, found '-'"));
    assert!(err(&text(&[])).contains("its nodes array is empty"));
    assert!(
        err(&good[..good.len() - 1]).contains("ends inside the top-level object (no closing '}')")
    );
    let no_strings = good.replace("\"strings\"", "\"strongs\"");
    assert!(err(&no_strings).contains("it has no strings array"));
}

#[test]
fn diff_matches_objects_by_id() {
    // Foo 21 stays, 23 goes, 25 and 27 come; Bar 11 is replaced by Bar 13 (churn).
    let a = file(&text(&leak(&[21, 23], 11)));
    let b = file(&text(&leak(&[21, 25, 27], 13)));
    let snaps = vec![
        Snapshot::open(a.path(), Need::Nodes).unwrap(),
        Snapshot::open(b.path(), Need::NodesAndEdges).unwrap(),
    ];
    let d = diff_snapshots(snaps, &DiffOptions::default());
    let foo = d.rows.iter().find(|r| r.class == "Foo").unwrap();
    assert_eq!(
        (foo.new_count, foo.deleted_count, foo.delta_count),
        (2, 1, 1)
    );
    assert_eq!(
        (foo.alloc_size, foo.freed_size, foo.size_delta),
        (200, 100, 100)
    );
    let bar = d.rows.iter().find(|r| r.class == "Bar").unwrap();
    assert_eq!(
        (bar.new_count, bar.deleted_count, bar.delta_count),
        (1, 1, 0)
    );
    assert_eq!(d.rows[0].class, "Foo", "largest size delta first");
    assert_eq!(d.classes_changed, 2);
    assert_eq!(d.common_count, 4, "global, Array, its elements, Foo 21");
    // The leak roots: the two new Foo objects (the array that holds them is old), then the
    // new Bar, whose class was only replaced (churn) and comes after.
    let roots: Vec<(&str, u64, u64)> = d
        .leak_roots
        .iter()
        .map(|g| (g.class.as_str(), g.count, g.retained_size))
        .collect();
    assert_eq!(roots, vec![("Foo", 2, 200), ("Bar", 1, 24)]);
    assert_eq!(d.leak_roots[0].held_by.as_deref(), Some("list"));
    assert_eq!(d.leak_roots[1].deleted_count, 1);
    assert_eq!(
        d.headline.as_deref(),
        Some("+2 Foo retaining 200 B, held by list")
    );
    // the path to the two new Foo objects, indexes differ
    let p = &d.paths[0];
    assert_eq!(
        (p.class.as_str(), p.new_objects, p.unreachable),
        ("Foo", 2, 0)
    );
    assert_eq!(p.groups.len(), 1);
    assert_eq!(p.groups[0].count, 2);
    assert_eq!(p.groups[0].text, "global -> list -> elements -> […] (Foo)");
    assert!(d.grew_every_step.is_none());
    // the text starts with the headline
    let text = d.to_string();
    assert!(
        text.starts_with("+2 Foo retaining 200 B, held by list\n\nHeap diff of 2 snapshots"),
        "{text}"
    );
    // the short forms for a live run's summary and a CI step summary
    let brief = d.brief(5);
    assert!(
        brief.starts_with("2 of 2 Foo roots: global -> list -> elements -> […] (Foo)\n"),
        "{brief}"
    );
    assert!(
        brief.contains("Class  # New  # Deleted  # Delta  Size Delta\nFoo        2          1       +1      +100 B\n"),
        "{brief}"
    );
    let md = d.markdown(5);
    assert!(
        md.starts_with("**+2 Foo retaining 200 B, held by list**"),
        "{md}"
    );
    assert!(
        md.contains("| `Foo` | 2 | 1 | +1 | 200 B | 100 B | +100 B |"),
        "{md}"
    );
    assert!(
        md.contains("2 of 2 `Foo` roots held by: `global -> list -> elements -> […] (Foo)`"),
        "{md}"
    );
}

#[test]
fn a_diff_without_paths_reads_no_edges() {
    let a = file(&text(&leak(&[21], 11)));
    let b = file(&text(&leak(&[21, 23], 11)));
    let opts = DiffOptions {
        path_classes: 0,
        ..DiffOptions::default()
    };
    let d = super::diff_files(&[a.path().into(), b.path().into()], &opts).unwrap();
    assert!(d.paths.is_empty());
    assert_eq!(d.rows.len(), 1);
    assert_eq!((d.rows[0].class.as_str(), d.rows[0].new_count), ("Foo", 1));
    assert_eq!(
        d.snapshots[1].edges, 10,
        "edges counted from the nodes, not read"
    );
    let e = super::diff_files(&[a.path().into()], &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "heap diff needs at least two snapshots, got 1"
    );
}

#[test]
fn three_snapshots_flag_steady_growth_and_survivors() {
    let a = file(&text(&leak(&[21], 11)));
    let b = file(&text(&leak(&[21, 23, 25], 13)));
    let c = file(&text(&leak(&[21, 23, 27, 29], 15)));
    let snaps = vec![
        Snapshot::open(a.path(), Need::Nodes).unwrap(),
        Snapshot::open(b.path(), Need::Nodes).unwrap(),
        Snapshot::open(c.path(), Need::NodesAndEdges).unwrap(),
    ];
    let d = diff_snapshots(snaps, &DiffOptions::default());
    let grew = d.grew_every_step.unwrap();
    assert_eq!(grew.len(), 1);
    assert_eq!(grew[0].class, "Foo");
    assert_eq!(grew[0].delta_counts, vec![2, 1]);
    let alive = d.still_alive.unwrap();
    // 23 is new in the middle and alive at the end; 25 died; Bar 13 died.
    assert_eq!(alive.len(), 1);
    assert_eq!((alive[0].class.as_str(), alive[0].count), ("Foo", 1));
}

#[test]
fn an_edge_back_to_the_root_does_not_loop() {
    let mut nodes = leak(&[21], 11);
    nodes[5].4.push(E("property", "up", 0)); // Bar -> root
    let a = file(&text(&leak(&[], 11)));
    let b = file(&text(&nodes));
    let d =
        super::diff_files(&[a.path().into(), b.path().into()], &DiffOptions::default()).unwrap();
    assert_eq!(
        d.paths[0].groups[0].text,
        "global -> list -> elements -> [0] (Foo)"
    );
}

#[test]
fn weak_edges_do_not_retain() {
    // Foo 31 is held only by a weak edge from global.
    let mut nodes = leak(&[21], 11);
    nodes[1].4.push(E("weak", "cache", 7));
    nodes.push(N("object", "Foo", 31, 100, vec![]));
    let (_f, s) = open(&text(&nodes), Need::NodesAndEdges);
    let s = s.unwrap();
    let reach = Reach::compute(&s);
    assert_eq!(reach.distance(0, 7), None);
    assert_eq!(reach.distance(0, 6), Some(4));
    assert_eq!(reach.distance(0, 1), Some(1));
    let dom = Dominators::compute(&s);
    // the weakly held object is an orphan: the root dominates it
    assert_eq!(dom.idom[7], 0);
    assert_eq!(dom.retained[7], 100);
}

/// The example graph of Lengauer and Tarjan (1979), fig. 1, with its known dominators.
#[test]
fn dominators_of_the_lengauer_tarjan_example() {
    const NAMES: [&str; 13] = [
        "R", "A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L",
    ];
    let succ: [(usize, &[usize]); 13] = [
        (0, &[1, 2, 3]),
        (1, &[4]),
        (2, &[1, 4, 5]),
        (3, &[6, 7]),
        (4, &[12]),
        (5, &[8]),
        (6, &[9]),
        (7, &[9, 10]),
        (8, &[5, 11]),
        (9, &[11]),
        (10, &[9]),
        (11, &[9, 0]),
        (12, &[8]),
    ];
    let nodes: Vec<N> = succ
        .iter()
        .map(|(v, to)| {
            N(
                if *v == 0 { "synthetic" } else { "object" },
                NAMES[*v],
                *v as u32 * 2 + 1,
                10,
                to.iter().map(|&t| E("property", "p", t)).collect(),
            )
        })
        .collect();
    let (_f, s) = open(&text(&nodes), Need::NodesAndEdges);
    let s = s.unwrap();
    let dom = Dominators::compute(&s);
    let idom: Vec<&str> = dom.idom.iter().map(|&d| NAMES[d as usize]).collect();
    assert_eq!(
        idom,
        vec![
            "R", "R", "R", "R", "R", "R", "C", "C", "R", "R", "G", "R", "D"
        ]
    );
    // retained: D holds L; C holds F, G, J; the root all 13
    assert_eq!(dom.retained[4], 20);
    assert_eq!(dom.retained[3], 40);
    assert_eq!(dom.retained[0], 130);
}

#[test]
fn deep_chains_need_no_stack() {
    // 300,000 objects in a line: recursion would overflow.
    let n = 300_000usize;
    let mut body = String::new();
    let mut edges = String::new();
    for i in 0..n {
        let last = i + 1 == n;
        let t = if i == 0 { 9 } else { 3 };
        body.push_str(&format!(
            "{}{t},0,{},8,{},0,0",
            if i > 0 { "," } else { "" },
            i * 2 + 1,
            if last { 0 } else { 1 }
        ));
        if !last {
            edges.push_str(&format!(
                "{}2,1,{}",
                if i > 0 { "," } else { "" },
                (i + 1) * 7
            ));
        }
    }
    let t = format!(
        r#"{{"snapshot":{{"meta":{{"node_fields":["type","name","id","self_size","edge_count","trace_node_id","detachedness"],"node_types":[{NODE_TYPES}],"edge_fields":["type","name_or_index","to_node"],"edge_types":[{EDGE_TYPES}]}},"node_count":{n},"edge_count":{}}},"nodes":[{body}],"edges":[{edges}],"strings":["Link","next"]}}"#,
        n - 1
    );
    let (_f, s) = open(&t, Need::NodesAndEdges);
    let s = s.unwrap();
    let dom = Dominators::compute(&s);
    assert_eq!(dom.retained[0], 8 * n as u64);
    assert_eq!(dom.idom[n - 1], (n - 2) as u32);
    let reach = Reach::compute(&s);
    assert_eq!(reach.distance(0, (n - 1) as u32), Some((n - 1) as u32));
}

#[test]
fn class_retained_size_counts_nested_objects_once() {
    // root -> Foo(10) -> Foo(20) -> Bar(5); root -> Bar(7)
    let nodes = vec![
        N(
            "synthetic",
            "",
            1,
            0,
            vec![E("element", "1", 1), E("element", "2", 4)],
        ),
        N("object", "Foo", 3, 10, vec![E("property", "inner", 2)]),
        N("object", "Foo", 5, 20, vec![E("property", "bar", 3)]),
        N("object", "Bar", 7, 5, vec![]),
        N("object", "Bar", 9, 7, vec![]),
    ];
    let (_f, s) = open(&text(&nodes), Need::NodesAndEdges);
    let sum = summarize(&s.unwrap(), &SummaryOptions { top: 0 });
    assert_eq!(sum.total_size, 42);
    let foo = sum.rows.iter().find(|r| r.class == "Foo").unwrap();
    assert_eq!((foo.count, foo.self_size, foo.retained_size), (2, 30, 35));
    let bar = sum.rows.iter().find(|r| r.class == "Bar").unwrap();
    assert_eq!((bar.count, bar.self_size, bar.retained_size), (2, 12, 12));
    assert_eq!(sum.rows[0].class, "Foo");
    // the zero-size synthetic root is not counted as an object, as in DevTools
    assert!(sum.rows.iter().all(|r| r.class != "(synthetic)"));
}

/// Dominators by the textbook fixpoint (Dom(v) = {v} + the intersection of its
/// predecessors' sets), for checking Lengauer-Tarjan on random graphs.
fn naive_idom(n: usize, edges: &[(usize, usize, bool)]) -> Vec<usize> {
    let mut dom: Vec<Vec<bool>> = vec![vec![true; n]; n];
    dom[0] = vec![false; n];
    dom[0][0] = true;
    let mut changed = true;
    while changed {
        changed = false;
        for v in 1..n {
            let mut new = vec![true; n];
            for &(u, w, weak) in edges {
                if w == v && !weak {
                    for i in 0..n {
                        new[i] &= dom[u][i];
                    }
                }
            }
            new[v] = true;
            if new != dom[v] {
                dom[v] = new;
                changed = true;
            }
        }
    }
    // the immediate dominator: the strict dominator with the most dominators itself
    (0..n)
        .map(|v| {
            if v == 0 {
                return 0;
            }
            (0..n)
                .filter(|&d| d != v && dom[v][d])
                .max_by_key(|&d| dom[d].iter().filter(|&&x| x).count())
                .unwrap()
        })
        .collect()
}

#[test]
fn lengauer_tarjan_agrees_with_the_fixpoint_on_random_graphs() {
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut rand = |k: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % k as u64) as usize
    };
    for round in 0..40 {
        let n = 5 + rand(40);
        let mut edges: Vec<(usize, usize, bool)> = Vec::new();
        // a spanning path of strong edges keeps every node reachable
        for v in 1..n {
            edges.push((rand(v), v, false));
        }
        for _ in 0..rand(3 * n) {
            edges.push((rand(n), 1 + rand(n - 1), rand(4) == 0));
        }
        edges.sort_by_key(|e| e.0);
        let nodes: Vec<N> = (0..n)
            .map(|v| {
                let out: Vec<E> = edges
                    .iter()
                    .filter(|e| e.0 == v)
                    .map(|e| E(if e.2 { "weak" } else { "property" }, "p", e.1))
                    .collect();
                N(
                    if v == 0 { "synthetic" } else { "object" },
                    "X",
                    v as u32 * 2 + 1,
                    1 + v as u32,
                    out,
                )
            })
            .collect();
        let (_f, s) = open(&text(&nodes), Need::NodesAndEdges);
        let dom = Dominators::compute(&s.unwrap());
        let want = naive_idom(n, &edges);
        let got: Vec<usize> = dom.idom.iter().map(|&d| d as usize).collect();
        assert_eq!(got, want, "round {round}, edges {edges:?}");
        // retained = own size + sizes of all nodes it dominates
        for v in 0..n {
            let mut sum = 0u64;
            for w in 0..n {
                let mut x = w;
                loop {
                    if x == v {
                        sum += 1 + w as u64;
                        break;
                    }
                    if x == 0 {
                        break;
                    }
                    x = want[x];
                }
            }
            assert_eq!(dom.retained[v], sum, "round {round}, node {v}");
        }
    }
}

#[test]
fn every_truncation_and_many_corruptions_are_errors_not_panics() {
    let good = text(&leak(&[21, 23], 11));
    let bytes = good.as_bytes();
    for cut in 0..bytes.len() - 1 {
        let (_f, s) = open(&String::from_utf8_lossy(&bytes[..cut]), Need::NodesAndEdges);
        assert!(s.is_err(), "cut at {cut} was accepted");
    }
    // One byte changed at a time, to a digit, a separator or a bracket: whatever still reads
    // must also go through the analyses.
    let mut seed = 0x9E3779B97F4A7C15u64;
    for _ in 0..3000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = (seed % bytes.len() as u64) as usize;
        let with = b"0123456789,[]{}\" 9"[(seed >> 32) as usize % 18];
        let mut bad = bytes.to_vec();
        bad[at] = with;
        let (_f, s) = open(&String::from_utf8_lossy(&bad), Need::NodesAndEdges);
        if let Ok(s) = s {
            let _ = summarize(&s, &SummaryOptions::default());
            let (_g, older) = open(&good, Need::Nodes);
            let _ = diff_snapshots(vec![older.unwrap(), s], &DiffOptions::default());
        }
    }
}

/// `text(nodes)` with constructor locations: `(node position, script, line, column)`.
fn text_with_locations(nodes: &[N], locations: &[(usize, u32, u32, u32)]) -> String {
    let list: Vec<String> = locations
        .iter()
        .map(|(n, script, line, col)| format!("{},{script},{line},{col}", n * 7))
        .collect();
    text(nodes)
        .replace(
            r#""location_fields":[]"#,
            r#""location_fields":["object_index","script_id","line","column"]"#,
        )
        .replace(
            r#""locations":[]"#,
            &format!(r#""locations":[{}]"#, list.join(",")),
        )
}

fn read(text: &str) -> (tempfile::NamedTempFile, Snapshot) {
    let (f, s) = open(text, Need::NodesAndEdges);
    (f, s.unwrap())
}

/// root -> global -> {wm: WeakMap -table-> T, keys: K}; T and K both point to V with the
/// ephemeron names V8 writes.
fn weakmap_graph() -> Vec<N> {
    const FROM_TABLE: &str =
        "1 / part of key (Key @201) -> value (Val @301) pair in WeakMap (table @101)";
    const FROM_KEY: &str =
        "3 / part of key (Key @201) -> value (Val @301) pair in WeakMap (table @101)";
    vec![
        N("synthetic", "", 1, 0, vec![E("shortcut", "1", 1)]),
        N(
            "object",
            "global",
            3,
            40,
            vec![E("property", "wm", 2), E("property", "keys", 4)],
        ),
        N("object", "WeakMap", 5, 32, vec![E("internal", "table", 3)]),
        N("array", "", 101, 64, vec![E("internal", FROM_TABLE, 5)]),
        N("object", "Key", 201, 16, vec![E("internal", FROM_KEY, 5)]),
        N("object", "Val", 301, 100, vec![]),
    ]
}

#[test]
fn a_weakmap_value_is_dominated_by_its_key_not_the_table() {
    let (_f, s) = read(&text(&weakmap_graph()));
    assert_eq!(s.ephemeron_pairs, 1, "both edge names are one pair");
    let dom = Dominators::compute(&s);
    assert_eq!(dom.idom[5], 4, "the key dominates the value");
    assert_eq!(dom.retained[4], 116);
    assert_eq!(dom.retained[3], 64, "the table keeps only itself");
    // distances: the first edge of the pair met is skipped (the key's, at 2), so the value
    // is reached by the second (the table's, at 3): the larger of the two, as DevTools
    let reach = Reach::compute(&s);
    assert_eq!(reach.distance(0, 5), Some(4));
    let sum = summarize(&s, &SummaryOptions { top: 0 });
    let key = sum.rows.iter().find(|r| r.class == "Key").unwrap();
    assert_eq!(key.retained_size, 116);
}

#[test]
fn map_entries_are_one_step_and_one_group() {
    let entry_nodes = |ids: &[u32]| {
        let mut nodes = vec![
            N("synthetic", "", 1, 0, vec![E("shortcut", "1", 1)]),
            N("object", "global", 3, 40, vec![E("property", "cache", 2)]),
            N("object", "Map", 5, 32, vec![E("internal", "table", 3)]),
        ];
        let edges: Vec<E> = ids
            .iter()
            .enumerate()
            .map(|(i, _)| E("internal", ["5", "9", "13"][i], 4 + i))
            .collect();
        nodes.push(N("array", "", 7, 64, edges));
        for &id in ids {
            nodes.push(N("object", "Entry", id, 24, vec![]));
        }
        nodes
    };
    let a = file(&text(&entry_nodes(&[21])));
    let b = file(&text(&entry_nodes(&[21, 23, 25])));
    let d =
        super::diff_files(&[a.path().into(), b.path().into()], &DiffOptions::default()).unwrap();
    let g = &d.leak_roots[0];
    assert_eq!((g.class.as_str(), g.count), ("Entry", 2));
    assert_eq!(g.held_by.as_deref(), Some("cache"));
    assert_eq!(g.paths.len(), 1, "{:?}", g.paths);
    assert_eq!(g.paths[0].count, 2);
    assert_eq!(g.paths[0].text, "global -> cache -> (Map entries) (Entry)");
}

#[test]
fn embedder_objects_are_compared_by_count_not_by_id() {
    // even ids: made for each snapshot
    let nodes = |natives: &[u32]| {
        let mut nodes = vec![N(
            "synthetic",
            "",
            1,
            0,
            (0..natives.len())
                .map(|i| E("element", Box::leak(i.to_string().into_boxed_str()), 1 + i))
                .collect(),
        )];
        for &id in natives {
            nodes.push(N("native", "Node / ZlibContext", id, 200, vec![]));
        }
        nodes
    };
    let a = file(&text(&nodes(&[1000, 1002])));
    let b = file(&text(&nodes(&[2000, 2002, 2004])));
    let d =
        super::diff_files(&[a.path().into(), b.path().into()], &DiffOptions::default()).unwrap();
    assert!(d.rows.is_empty(), "{:?}", d.rows);
    assert_eq!(d.embedder.len(), 1);
    let e = &d.embedder[0];
    assert_eq!(
        (e.first_count, e.last_count, e.count_delta, e.size_delta),
        (2, 3, 1, 200)
    );
}

#[test]
fn constructors_of_one_name_in_two_places_are_two_classes() {
    let nodes = vec![
        N(
            "synthetic",
            "",
            1,
            0,
            vec![
                E("element", "1", 1),
                E("element", "2", 2),
                E("element", "3", 3),
            ],
        ),
        N("object", "Client", 3, 40, vec![]),
        N("object", "Client", 5, 40, vec![]),
        N("object", "Client", 7, 48, vec![]),
    ];
    let t = text_with_locations(&nodes, &[(1, 4, 10, 2), (2, 4, 10, 2), (3, 9, 0, 0)]);
    let (_f, s) = read(&t);
    let sum = summarize(&s, &SummaryOptions { top: 0 });
    let mut clients: Vec<(String, u64, Option<String>)> = sum
        .rows
        .iter()
        .filter(|r| r.class.starts_with("Client"))
        .map(|r| (r.class.clone(), r.count, r.location.clone()))
        .collect();
    clients.sort();
    assert_eq!(
        clients,
        vec![
            (
                "Client (script 4:11)".to_string(),
                2,
                Some("script 4:11:3".to_string())
            ),
            (
                "Client (script 9:1)".to_string(),
                1,
                Some("script 9:1:1".to_string())
            ),
        ]
    );
}

#[test]
fn a_detached_native_is_named_so() {
    // detachedness 2 on the native: DevTools calls it "Detached ..."
    let t = text(&[
        N("synthetic", "", 1, 0, vec![E("element", "1", 1)]),
        N("native", "Node / BindingData", 4, 96, vec![]),
    ]);
    let at = t.find("\"nodes\":[").unwrap();
    let nodes_end = at + t[at..].find(']').unwrap();
    let body = t[at..nodes_end].to_string();
    let detached = body
        .rsplit_once(",0")
        .map(|(a, b)| format!("{a},2{b}"))
        .unwrap();
    let t = t.replace(&body, &detached);
    let (_f, s) = read(&t);
    assert_eq!(s.class_name(s.class_key(1)), "Detached Node / BindingData");
}

#[test]
fn errors_name_the_byte_and_a_byte_order_mark_is_read() {
    let good = text(&leak(&[21], 11));
    let with_bom = format!("\u{feff}{good}");
    let (_f, s) = open(&with_bom, Need::NodesAndEdges);
    assert_eq!(s.unwrap().node_count(), 7);
    // an edge type out of range: the byte of the type, not of the to_node
    let at = good.find("\"edges\":[").unwrap() + 9;
    let bad = format!("{}9{}", &good[..at], &good[at + 1..]);
    let e = err(&bad);
    assert!(
        e.contains(&format!("at byte {at}:")) && e.contains("has type 9"),
        "{e}"
    );
    // a folder
    let dir = tempfile::tempdir().unwrap();
    let e = Snapshot::open(dir.path(), Need::Nodes)
        .unwrap_err()
        .to_string();
    assert!(e.contains("is a folder"), "{e}");
}
