//! One `.heapsnapshot` read into flat typed columns, by its `snapshot.meta`.
//!
//! The file is memory-mapped; `nodes` and `edges` are decoded by a plain loop into presized
//! vectors (pages already decoded are handed back to the kernel as the loop goes, so they do
//! not stay in our RSS); `strings` are only located, and a string is unescaped when asked for.

use super::error::{HeapError, Result};
use super::scan::{self, ScanError};
use memmap2::Mmap;
use serde::Deserialize;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// What a command needs from a file. A by-class diff of an older snapshot needs no edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Nodes,
    NodesAndEdges,
}

/// Positions of the fields a command uses, and the type codes it tests, read from
/// `snapshot.meta`. Types absent from the meta get `NONE` (no node or edge has them).
#[derive(Debug, Clone)]
pub struct Meta {
    pub node_fields: usize,
    pub edge_fields: usize,
    pub node_type_names: Vec<String>,
    pub edge_type_names: Vec<String>,
    n_type: usize,
    n_name: usize,
    n_id: usize,
    n_self: usize,
    n_edges: usize,
    e_type: usize,
    e_name: usize,
    e_to: usize,
    pub t_hidden: u8,
    pub t_array: u8,
    pub t_string: u8,
    pub t_object: u8,
    pub t_code: u8,
    pub t_closure: u8,
    pub t_native: u8,
    pub t_synthetic: u8,
    pub t_cons_string: u8,
    pub t_sliced_string: u8,
    pub e_element: u8,
    pub e_hidden: u8,
    pub e_weak: u8,
    pub e_shortcut: u8,
    pub e_internal: u8,
    pub e_context: u8,
    pub e_property: u8,
}

/// A type code that no node or edge carries.
pub const NONE: u8 = u8::MAX;

#[derive(Deserialize)]
struct Header {
    meta: RawMeta,
    node_count: u64,
    edge_count: u64,
    #[serde(default)]
    root_index: Option<u64>,
}

#[derive(Deserialize)]
struct RawMeta {
    node_fields: Vec<String>,
    node_types: Vec<serde_json::Value>,
    edge_fields: Vec<String>,
    edge_types: Vec<serde_json::Value>,
}

impl Meta {
    fn from_raw(raw: &RawMeta) -> std::result::Result<Meta, String> {
        let pos = |fields: &[String], list: &str, name: &str| {
            fields
                .iter()
                .position(|f| f == name)
                .ok_or_else(|| format!("{list} has no '{name}' (it lists {})", fields.join(", ")))
        };
        let n_type = pos(&raw.node_fields, "node_fields", "type")?;
        let n_name = pos(&raw.node_fields, "node_fields", "name")?;
        let n_id = pos(&raw.node_fields, "node_fields", "id")?;
        let n_self = pos(&raw.node_fields, "node_fields", "self_size")?;
        let n_edges = pos(&raw.node_fields, "node_fields", "edge_count")?;
        let e_type = pos(&raw.edge_fields, "edge_fields", "type")?;
        let e_name = pos(&raw.edge_fields, "edge_fields", "name_or_index")?;
        let e_to = pos(&raw.edge_fields, "edge_fields", "to_node")?;
        let names = |types: &[serde_json::Value], at: usize, list: &str| {
            let list_of = types
                .get(at)
                .and_then(|v| v.as_array())
                .ok_or_else(|| format!("{list}[{at}] is not the list of type names"))?;
            let names: Vec<String> = list_of
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("{list}[{at}] holds something other than names"))?;
            if names.is_empty() || names.len() > 250 {
                return Err(format!("{list}[{at}] has {} type names", names.len()));
            }
            Ok(names)
        };
        let node_type_names = names(&raw.node_types, n_type, "node_types")?;
        let edge_type_names = names(&raw.edge_types, e_type, "edge_types")?;
        let code = |names: &[String], name: &str| {
            names
                .iter()
                .position(|n| n == name)
                .map_or(NONE, |p| p as u8)
        };
        let nt = |name| code(&node_type_names, name);
        let et = |name| code(&edge_type_names, name);
        Ok(Meta {
            node_fields: raw.node_fields.len(),
            edge_fields: raw.edge_fields.len(),
            n_type,
            n_name,
            n_id,
            n_self,
            n_edges,
            e_type,
            e_name,
            e_to,
            t_hidden: nt("hidden"),
            t_array: nt("array"),
            t_string: nt("string"),
            t_object: nt("object"),
            t_code: nt("code"),
            t_closure: nt("closure"),
            t_native: nt("native"),
            t_synthetic: nt("synthetic"),
            t_cons_string: nt("concatenated string"),
            t_sliced_string: nt("sliced string"),
            e_element: et("element"),
            e_hidden: et("hidden"),
            e_weak: et("weak"),
            e_shortcut: et("shortcut"),
            e_internal: et("internal"),
            e_context: et("context"),
            e_property: et("property"),
            node_type_names,
            edge_type_names,
        })
    }

    /// An edge whose `name_or_index` is an index, not a string.
    #[inline]
    pub fn edge_has_index(&self, t: u8) -> bool {
        t == self.e_element || t == self.e_hidden
    }
}

/// A class: the name's string index for `object`/`native` nodes (the constructor name, as
/// DevTools shows it), or `TYPE_CLASS + type` for every other node type.
pub type ClassKey = u32;
pub const TYPE_CLASS: u32 = u32::MAX - 255;

/// One snapshot, as columns indexed by node ordinal (position in `nodes`) and edge ordinal.
pub struct Snapshot {
    pub path: PathBuf,
    pub meta: Meta,
    /// Ordinal of the root node (`snapshot.root_index`, 0 unless said).
    pub root: u32,
    pub node_type: Vec<u8>,
    pub node_name: Vec<u32>,
    pub node_id: Vec<u32>,
    pub node_self: Vec<u32>,
    /// Edges of node `n` are `first_edge[n]..first_edge[n + 1]` (empty without edges).
    pub first_edge: Vec<u32>,
    pub edge_type: Vec<u8>,
    pub edge_name: Vec<u32>,
    /// Target node ordinal (`to_node` divided by the node field count).
    pub edge_to: Vec<u32>,
    pub file_bytes: u64,
    /// Edges the file holds (read or not).
    pub edges_in_file: u64,
    /// Names the distance rules test, found while the strings were scanned.
    pub known: KnownStrings,
    map: Option<Mmap>,
    strings_base: usize,
    string_offsets: Vec<u32>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("path", &self.path)
            .field("nodes", &self.node_count())
            .field("edges", &self.edge_type.len())
            .finish()
    }
}

impl Snapshot {
    /// Reads `path` as far as `need` asks.
    pub fn open(path: &Path, need: Need) -> Result<Snapshot> {
        let io = |source| HeapError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        if len == 0 {
            return Err(HeapError::Empty {
                path: path.to_path_buf(),
            });
        }
        // SAFETY: the map is read-only and private; a snapshot file is not changed while we
        // read it (memwatch reads only complete ones: size stable and ending in `]}`).
        let map = unsafe { Mmap::map(&file) }.map_err(io)?;
        let _ = map.advise(memmap2::Advice::Sequential);
        Self::from_map(path, map, need)
    }

    fn from_map(path: &Path, map: Mmap, need: Need) -> Result<Snapshot> {
        let p = || path.to_path_buf();
        let buf: &[u8] = &map;
        let file_bytes = buf.len() as u64;
        let at = |section: &str| {
            let section = section.to_string();
            move |e: ScanError| match e {
                ScanError::Eof => HeapError::Truncated {
                    path: path.to_path_buf(),
                    section: section.clone(),
                },
                ScanError::Bad { offset, detail } => HeapError::Malformed {
                    path: path.to_path_buf(),
                    section: section.clone(),
                    offset,
                    detail,
                },
            }
        };
        let not = |detail: &str| HeapError::NotSnapshot {
            path: p(),
            detail: detail.to_string(),
        };

        // `{"snapshot":{...}`: the header, small, read with serde.
        let start = match scan::skip_ws(buf, 0) {
            Ok(s) => s,
            Err(_) => return Err(HeapError::Empty { path: p() }),
        };
        if buf[start] != b'{' {
            return Err(not("it does not start with '{'"));
        }
        let (k, value) = scan::key(buf, start + 1).map_err(|e| match e {
            ScanError::Eof => not("it ends before the 'snapshot' header"),
            ScanError::Bad { .. } => not("it does not start with a 'snapshot' header"),
        })?;
        if k != b"snapshot" {
            return Err(not(&format!(
                "the first key is '{}', not 'snapshot'",
                String::from_utf8_lossy(k)
            )));
        }
        let header_end = scan::skip_value(buf, value).map_err(at("the 'snapshot' header"))?;
        let header: Header =
            serde_json::from_slice(&buf[value..header_end]).map_err(|e| HeapError::BadMeta {
                path: p(),
                detail: e.to_string(),
            })?;
        let meta = Meta::from_raw(&header.meta)
            .map_err(|detail| HeapError::BadMeta { path: p(), detail })?;
        let nf = meta.node_fields;
        let ef = meta.edge_fields;
        // Capacity from the header, but never more than the file could hold (2 bytes a value).
        let node_cap = (header.node_count as usize).min(buf.len() / (2 * nf) + 1);
        let edge_cap = (header.edge_count as usize).min(buf.len() / (2 * ef) + 1);
        let root_index = header.root_index.unwrap_or(0);
        if root_index % nf as u64 != 0 || root_index / nf as u64 >= header.node_count.max(1) {
            return Err(HeapError::BadMeta {
                path: p(),
                detail: format!("root_index {root_index} is not a node"),
            });
        }

        let mut snap = Snapshot {
            path: p(),
            root: (root_index / nf as u64) as u32,
            node_type: Vec::with_capacity(node_cap),
            node_name: Vec::with_capacity(node_cap),
            node_id: Vec::with_capacity(node_cap),
            node_self: Vec::with_capacity(node_cap),
            first_edge: Vec::new(),
            edge_type: Vec::new(),
            edge_name: Vec::new(),
            edge_to: Vec::new(),
            file_bytes,
            edges_in_file: header.edge_count,
            strings_base: 0,
            string_offsets: Vec::new(),
            meta,
            map: None,
            known: KnownStrings::default(),
        };
        let with_edges = need == Need::NodesAndEdges;
        if with_edges {
            snap.first_edge.reserve(node_cap + 1);
            snap.first_edge.push(0);
            snap.edge_type.reserve(edge_cap);
            snap.edge_name.reserve(edge_cap);
            snap.edge_to.reserve(edge_cap);
        }

        let release = Releaser::new(&map);
        let mut seen_nodes = false;
        let mut seen_edges = false;
        let mut seen_strings = false;
        let mut max_node_name = 0u32;
        let mut max_edge_name = 0u32;
        let mut edge_sum = 0u64;
        let mut pos = header_end;
        loop {
            pos = scan::skip_ws(buf, pos).map_err(at("the top-level object (no closing '}')"))?;
            match buf[pos] {
                b'}' => break,
                b',' => pos += 1,
                _ => {
                    return Err(at("the top-level object")(ScanError::Bad {
                        offset: pos,
                        detail: "expected ',' or '}'".into(),
                    }));
                }
            }
            let (k, value) = scan::key(buf, pos).map_err(at("the top-level object"))?;
            match k {
                b"nodes" => {
                    let m = &snap.meta;
                    let (t_off, n_off, i_off, s_off, c_off) =
                        (m.n_type, m.n_name, m.n_id, m.n_self, m.n_edges);
                    let types = m.node_type_names.len() as u32;
                    let mut ordinal = 0usize;
                    let (end, _) = scan::number_records(
                        buf,
                        value,
                        nf,
                        |r| {
                            let t = r[t_off];
                            if t >= types {
                                return Err(ScanError::Bad {
                                    offset: 0,
                                    detail: format!(
                                        "node {ordinal} has type {t}; meta lists {types} node types"
                                    ),
                                });
                            }
                            snap.node_type.push(t as u8);
                            snap.node_name.push(r[n_off]);
                            max_node_name = max_node_name.max(r[n_off]);
                            snap.node_id.push(r[i_off]);
                            snap.node_self.push(r[s_off]);
                            edge_sum += r[c_off] as u64;
                            if with_edges {
                                snap.first_edge.push(edge_sum.min(u32::MAX as u64) as u32);
                            }
                            ordinal += 1;
                            Ok(())
                        },
                        |done| release.upto(done),
                    )
                    .map_err(at("the nodes array"))?;
                    pos = end;
                    seen_nodes = true;
                    let found = snap.node_type.len() as u64;
                    if found != header.node_count {
                        return Err(HeapError::CountMismatch {
                            path: p(),
                            what: "node count".into(),
                            header: header.node_count,
                            found,
                        });
                    }
                    if edge_sum != header.edge_count {
                        return Err(HeapError::CountMismatch {
                            path: p(),
                            what: "edge count (the sum of the nodes' edge_count)".into(),
                            header: header.edge_count,
                            found: edge_sum,
                        });
                    }
                }
                b"edges" if with_edges => {
                    if !seen_nodes {
                        return Err(not("'edges' comes before 'nodes'"));
                    }
                    let m = &snap.meta;
                    let (t_off, n_off, to_off) = (m.e_type, m.e_name, m.e_to);
                    let types = m.edge_type_names.len() as u32;
                    let (el, hid) = (m.e_element as u32, m.e_hidden as u32);
                    let nodes = snap.node_type.len() as u64;
                    let nf64 = nf as u64;
                    let mut ordinal = 0usize;
                    let (end, _) = scan::number_records(
                        buf,
                        value,
                        ef,
                        |r| {
                            let t = r[t_off];
                            let to = r[to_off] as u64;
                            if t >= types || to % nf64 != 0 || to / nf64 >= nodes {
                                return Err(ScanError::Bad {
                                    offset: 0,
                                    detail: format!(
                                        "edge {ordinal} (type {t}, to_node {to}) is not an edge of this snapshot ({types} edge types, {nodes} nodes of {nf} fields)"
                                    ),
                                });
                            }
                            snap.edge_type.push(t as u8);
                            snap.edge_name.push(r[n_off]);
                            if t != el && t != hid {
                                max_edge_name = max_edge_name.max(r[n_off]);
                            }
                            snap.edge_to.push((to / nf64) as u32);
                            ordinal += 1;
                            Ok(())
                        },
                        |done| release.upto(done),
                    )
                    .map_err(at("the edges array"))?;
                    pos = end;
                    seen_edges = true;
                    let found = snap.edge_type.len() as u64;
                    if found != header.edge_count {
                        return Err(HeapError::CountMismatch {
                            path: p(),
                            what: "edge count".into(),
                            header: header.edge_count,
                            found,
                        });
                    }
                }
                b"edges" => {
                    pos = scan::skip_number_array(buf, value, |done| release.upto(done))
                        .map_err(at("the edges array"))?;
                    release.upto(pos);
                    seen_edges = true;
                }
                b"strings" => {
                    let base = scan::skip_ws(buf, value).map_err(at("the strings array"))?;
                    snap.strings_base = base;
                    let mut found = [None; 3];
                    pos = scan::string_offsets(
                        buf,
                        value,
                        &mut snap.string_offsets,
                        &[
                            b"sloppy_function_map",
                            b"system / NativeContext",
                            b"(map descriptors)",
                        ],
                        &mut found,
                        |done| release.upto(done),
                    )
                    .map_err(at("the strings array"))?;
                    snap.known = KnownStrings {
                        sloppy_function_map: found[0],
                        native_context: found[1],
                        map_descriptors: found[2],
                    };
                    seen_strings = true;
                }
                // flat number arrays: one memchr for the ']'
                b"locations" | b"samples" | b"trace_function_infos"
                    if scan::skip_ws(buf, value).is_ok_and(|p| buf[p] == b'[') =>
                {
                    let section = format!("the {} array", String::from_utf8_lossy(k));
                    pos = scan::skip_number_array(buf, value, |done| release.upto(done))
                        .map_err(at(&section))?;
                }
                _ => {
                    let section = format!("'{}'", String::from_utf8_lossy(k));
                    pos = scan::skip_value(buf, value).map_err(at(&section))?;
                }
            }
        }
        if !seen_nodes || !seen_edges || !seen_strings {
            let missing: Vec<&str> = [
                (seen_nodes, "nodes"),
                (seen_edges, "edges"),
                (seen_strings, "strings"),
            ]
            .iter()
            .filter(|(seen, _)| !seen)
            .map(|(_, name)| *name)
            .collect();
            return Err(not(&format!("it has no {} array", missing.join(", no "))));
        }
        if snap.node_count() == 0 {
            return Err(not(
                "its nodes array is empty (a snapshot holds at least the root)",
            ));
        }
        let strings = snap.string_offsets.len() as u64;
        if snap.node_count() > 0 && max_node_name as u64 >= strings {
            return Err(HeapError::Malformed {
                path: p(),
                section: "the nodes array".into(),
                offset: 0,
                detail: format!(
                    "a node name is string {max_node_name}, but there are {strings} strings"
                ),
            });
        }
        if !snap.edge_type.is_empty() && max_edge_name as u64 >= strings {
            return Err(HeapError::Malformed {
                path: p(),
                section: "the edges array".into(),
                offset: 0,
                detail: format!(
                    "an edge name is string {max_edge_name}, but there are {strings} strings"
                ),
            });
        }
        snap.map = Some(map);
        if let Some(map) = &snap.map {
            Releaser::new(map).upto(map.len());
        }
        Ok(snap)
    }

    pub fn node_count(&self) -> usize {
        self.node_type.len()
    }

    pub fn edge_count(&self) -> usize {
        self.edge_type.len()
    }

    pub fn has_edges(&self) -> bool {
        !self.first_edge.is_empty()
    }

    pub fn string_count(&self) -> usize {
        self.string_offsets.len()
    }

    /// String `i` of the `strings` array, unescaped (`<string N?>` if there is none).
    pub fn string(&self, i: u32) -> String {
        match self.string_offsets.get(i as usize) {
            Some(&off) => match &self.map {
                Some(map) => scan::unescape(map, self.strings_base + off as usize),
                None => format!("<string {i}?>"),
            },
            None => format!("<string {i}?>"),
        }
    }

    #[inline]
    pub fn edges(&self, n: u32) -> Range<usize> {
        self.first_edge[n as usize] as usize..self.first_edge[n as usize + 1] as usize
    }

    #[inline]
    pub fn class_key(&self, n: usize) -> ClassKey {
        let t = self.node_type[n];
        let m = &self.meta;
        if t == m.t_object || t == m.t_native {
            self.node_name[n]
        } else if t == m.t_cons_string || t == m.t_sliced_string {
            // one class for all string kinds, as DevTools shows them: (string)
            TYPE_CLASS + m.t_string as u32
        } else {
            TYPE_CLASS + t as u32
        }
    }

    /// Whether DevTools counts the node in its class aggregates: it skips zero-size nodes
    /// other than native ones (synthetic roots, for example).
    #[inline]
    pub fn counted(&self, n: usize) -> bool {
        self.node_self[n] != 0 || self.node_type[n] == self.meta.t_native
    }

    /// The class name DevTools shows for a class key.
    pub fn class_name(&self, key: ClassKey) -> String {
        if key < TYPE_CLASS {
            return self.string(key);
        }
        let t = (key - TYPE_CLASS) as u8;
        let m = &self.meta;
        if t == m.t_hidden {
            "(system)".into()
        } else if t == m.t_code {
            "(compiled code)".into()
        } else if t == m.t_string || t == m.t_cons_string || t == m.t_sliced_string {
            "(string)".into()
        } else {
            let name = m
                .node_type_names
                .get(t as usize)
                .map_or("unknown", String::as_str);
            format!("({name})")
        }
    }

    /// Whether a node reads by its own name on a path (objects, closures, arrays, roots),
    /// rather than by its class (strings, numbers, code: their names are their contents).
    #[inline]
    pub fn named_on_paths(&self, n: usize) -> bool {
        let t = self.node_type[n];
        let m = &self.meta;
        t == m.t_object
            || t == m.t_native
            || t == m.t_closure
            || t == m.t_synthetic
            || t == m.t_array
            || t == m.t_hidden
    }

    /// How a node reads on a retaining path: its name for objects, closures (`name()`),
    /// arrays and roots; its class otherwise.
    pub fn display_name(&self, n: u32) -> String {
        let n = n as usize;
        let t = self.node_type[n];
        let m = &self.meta;
        if !self.named_on_paths(n) {
            self.class_name(self.class_key(n))
        } else if t == m.t_closure {
            let name = self.string(self.node_name[n]);
            if name.is_empty() {
                "(anonymous)()".into()
            } else {
                format!("{name}()")
            }
        } else {
            self.string(self.node_name[n])
        }
    }

    /// How an edge reads on a retaining path: `[3]` for elements, `{3}` for hidden links,
    /// the property or variable name otherwise.
    pub fn edge_label(&self, e: usize) -> String {
        let t = self.edge_type[e];
        let name = self.edge_name[e];
        if t == self.meta.e_element {
            format!("[{name}]")
        } else if t == self.meta.e_hidden {
            format!("{{{name}}}")
        } else {
            self.string(name)
        }
    }
}

/// String indexes of names that DevTools' distance rules test.
#[derive(Debug, Clone, Copy, Default)]
pub struct KnownStrings {
    pub sloppy_function_map: Option<u32>,
    pub native_context: Option<u32>,
    pub map_descriptors: Option<u32>,
}

/// Gives decoded pages of the map back to the kernel, so a big file does not stay in RSS.
struct Releaser<'a> {
    map: &'a Mmap,
    done: std::cell::Cell<usize>,
}

impl<'a> Releaser<'a> {
    fn new(map: &'a Mmap) -> Self {
        Releaser {
            map,
            done: std::cell::Cell::new(0),
        }
    }

    fn upto(&self, pos: usize) {
        const PAGE: usize = 4096;
        let end = pos / PAGE * PAGE;
        let start = self.done.get();
        if end > start {
            // SAFETY: a read-only private file map: dropped pages are read again from the
            // file if touched later, so no data is lost.
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    start,
                    end - start,
                )
            };
            self.done.set(end);
        }
    }
}
