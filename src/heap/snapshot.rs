//! One `.heapsnapshot` read into flat typed columns, by its `snapshot.meta`.
//!
//! The file is memory-mapped; `nodes` and `edges` are decoded by a plain loop into presized
//! vectors (pages already decoded are handed back to the kernel as the loop goes, so they do
//! not stay in our RSS); `strings` are only located, and a string is unescaped when asked for.

use super::classes::FxMap;
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
    /// `detachedness` (Node 18+): 1 attached, 2 detached, 0 unknown; absent in old files.
    n_detached: Option<usize>,
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
    pub t_regexp: u8,
    pub t_object_shape: u8,
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
    #[serde(default)]
    location_fields: Vec<String>,
}

/// Positions of `object_index`, `script_id`, `line`, `column` in a `locations` record.
#[derive(Debug, Clone, Copy)]
struct LocationFields {
    count: usize,
    object: usize,
    script: usize,
    line: usize,
    column: usize,
}

impl LocationFields {
    fn of(fields: &[String]) -> Option<LocationFields> {
        let pos = |name: &str| fields.iter().position(|f| f == name);
        Some(LocationFields {
            count: fields.len(),
            object: pos("object_index")?,
            script: pos("script_id")?,
            line: pos("line")?,
            column: pos("column")?,
        })
    }
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
            n_detached: raw.node_fields.iter().position(|f| f == "detachedness"),
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
            t_regexp: nt("regexp"),
            t_object_shape: nt("object shape"),
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

/// A class, as DevTools keys it. The low half: the name's string index for `object`/`native`
/// nodes (the constructor name), or `TYPE_CLASS + type` for every other node type. The high
/// half splits one name into several classes: `1 + i` for an object whose constructor is at
/// `locations[i]` (two `Client` classes from two files are two classes), `DETACHED` for a
/// native object that says it is detached (`Detached Node / ...`), 0 otherwise.
pub type ClassKey = u64;
pub const TYPE_CLASS: u32 = u32::MAX - 255;
pub const DETACHED: u32 = u32::MAX;

/// The name part of a class key.
#[inline]
pub fn key_base(k: ClassKey) -> u32 {
    k as u32
}

/// The split part of a class key (0: none).
#[inline]
pub fn key_variant(k: ClassKey) -> u32 {
    (k >> 32) as u32
}

/// Where a constructor is defined: V8's script id, line and column (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    pub script: u32,
    pub line: u32,
    pub column: u32,
}

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
    /// What splits each node's class from its name's (see `ClassKey`; 0: nothing). Empty
    /// when no node has a location or a DOM state.
    node_variant: Vec<u32>,
    /// Native nodes with a known DOM state (1 attached, 2 detached), by ordinal.
    dom_state: Vec<(u32, u8)>,
    /// The constructor locations met, interned (variant `1 + i` is `locations[i]`).
    pub locations: Vec<Location>,
    /// For each script id, one function defined in it (to find the script's name).
    script_function: FxMap<u32, u32>,
    /// WeakMap entry edge names, sorted by string index: (string, pair, table node id).
    ephemeron_strings: Vec<(u32, u32, u32)>,
    ephemeron_bits: Vec<u64>,
    /// How many WeakMap key-value pairs the ephemeron names describe.
    pub ephemeron_pairs: u32,
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

/// DevTools' DOM states: attached and detached.
const ATTACHED: u8 = 1;
const DETACHED_STATE: u8 = 2;

/// The walk that carries DOM states through the graph: each node visited once, the state set
/// on native objects only, which are then walked from (one queue per state).
struct DomWalk {
    state: Vec<u8>,
    visited: Vec<bool>,
    queues: [Vec<u32>; 2],
}

impl DomWalk {
    fn visit(&mut self, v: u32, st: u8, native: bool) {
        let i = v as usize;
        if self.visited[i] {
            return;
        }
        self.visited[i] = true;
        if !native {
            return; // the state is not carried through JavaScript objects
        }
        self.state[i] = st;
        if st == ATTACHED || st == DETACHED_STATE {
            self.queues[usize::from(st - 1)].push(v);
        }
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
        let meta = file.metadata().map_err(io)?;
        if meta.is_dir() {
            return Err(HeapError::Folder {
                path: path.to_path_buf(),
            });
        }
        let len = meta.len();
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

    /// Reads the file in the order it is written: the header, then each section, then the
    /// checks that need them all.
    fn from_map(path: &Path, map: Mmap, need: Need) -> Result<Snapshot> {
        let mut reader = Reader::new(path, &map, need);
        let (header, header_end) = reader.header()?;
        let mut snap = reader.presized_snapshot(&header)?;
        reader.sections(&mut snap, header_end)?;
        reader.check_complete(&snap)?;
        snap.mark_detached();
        snap.map = Some(map);
        if let Some(map) = &snap.map {
            Releaser::new(map).upto(map.len());
        }
        Ok(snap)
    }

    /// Natives whose DOM state says detached get the `DETACHED` variant (and no other).
    fn mark_detached(&mut self) {
        if self.dom_state.is_empty() {
            return;
        }
        let n = self.node_count();
        self.node_variant.resize(n, 0);
        for v in self.node_variant.iter_mut() {
            if *v == DETACHED {
                *v = 0;
            }
        }
        for &(v, st) in &self.dom_state {
            if st == 2 {
                self.node_variant[v as usize] = DETACHED;
            }
        }
    }

    /// DevTools' DOM state, carried through the graph (needs edges): a native object reached
    /// from an attached one is attached; one reached only from detached ones is detached and
    /// named `Detached ...`. Without this call only the nodes' own states count.
    pub fn propagate_dom_state(&mut self) {
        if self.dom_state.is_empty() || !self.has_edges() {
            return;
        }
        let native = self.meta.t_native;
        let is_native = |v: u32| self.node_type[v as usize] == native;
        let n = self.node_count();
        let mut walk = DomWalk {
            state: vec![0u8; n],
            visited: vec![false; n],
            queues: [Vec::new(), Vec::new()],
        };
        for &(v, st) in &self.dom_state {
            walk.visit(v, st, is_native(v));
        }
        let (hidden, weak) = (self.meta.e_hidden, self.meta.e_weak);
        // the attached first, whole; then the detached not reached from them
        for st in [ATTACHED, DETACHED_STATE] {
            while let Some(v) = walk.queues[usize::from(st - 1)].pop() {
                if st == DETACHED_STATE && walk.state[v as usize] == ATTACHED {
                    continue;
                }
                for e in self.edges(v) {
                    let t = self.edge_type[e];
                    if t != hidden && t != weak {
                        let to = self.edge_to[e];
                        walk.visit(to, st, is_native(to));
                    }
                }
            }
        }
        let state = walk.state;
        self.dom_state = state
            .iter()
            .enumerate()
            .filter(|&(_, &st)| st != 0)
            .map(|(v, &st)| (v as u32, st))
            .collect();
        self.mark_detached();
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

    /// The node edge `e` comes from.
    pub fn edge_source(&self, e: usize) -> u32 {
        (self.first_edge.partition_point(|&f| f as usize <= e) - 1) as u32
    }

    #[inline]
    pub fn edges(&self, n: u32) -> Range<usize> {
        self.first_edge[n as usize] as usize..self.first_edge[n as usize + 1] as usize
    }

    /// The class key without its split: the name or the type.
    #[inline]
    fn base_class(&self, n: usize) -> u32 {
        let t = self.node_type[n];
        let m = &self.meta;
        if t == m.t_object || t == m.t_native {
            self.node_name[n]
        } else {
            TYPE_CLASS + t as u32
        }
    }

    /// The class of node `n`.
    #[inline]
    pub fn class_key(&self, n: usize) -> ClassKey {
        let base = self.base_class(n) as u64;
        match self.node_variant.get(n) {
            Some(&v) => ((v as u64) << 32) | base,
            None => base,
        }
    }

    /// The class of every node, in node order.
    pub fn class_keys(&self) -> impl Iterator<Item = ClassKey> + '_ {
        (0..self.node_count()).map(move |n| self.class_key(n))
    }

    /// Whether DevTools counts the node in its class aggregates: it skips zero-size nodes
    /// (the synthetic roots, for example).
    #[inline]
    pub fn counted(&self, n: usize) -> bool {
        self.node_self[n] != 0
    }

    /// Whether the node's id was made for this one snapshot: V8 numbers heap objects with odd
    /// ids kept for their lifetime, and gives the nodes an embedder adds (Node's
    /// `Node / ...` objects) an even id of the moment, different in every snapshot.
    #[inline]
    pub fn id_is_per_snapshot(&self, n: usize) -> bool {
        self.node_id[n] % 2 == 0
    }

    /// The class name DevTools shows for a class key (without the constructor's file:
    /// the diff adds it where two classes share a name).
    pub fn class_name(&self, key: ClassKey) -> String {
        let base = key_base(key);
        if base < TYPE_CLASS {
            let name = self.string(base);
            return if key_variant(key) == DETACHED {
                format!("Detached {name}")
            } else {
                name
            };
        }
        let t = (base - TYPE_CLASS) as u8;
        let m = &self.meta;
        if t == m.t_hidden {
            "(system)".into()
        } else if t == m.t_code {
            "(compiled code)".into()
        } else if t == m.t_closure {
            "Function".into()
        } else if t == m.t_regexp {
            "RegExp".into()
        } else {
            let name = m
                .node_type_names
                .get(t as usize)
                .map_or("unknown", String::as_str);
            format!("({name})")
        }
    }

    /// The constructor location that splits a class, if any.
    pub fn class_location(&self, key: ClassKey) -> Option<Location> {
        match key_variant(key) {
            0 | DETACHED => None,
            v => self.locations.get(v as usize - 1).copied(),
        }
    }

    /// The name of the script with V8 id `script` (a file path or URL), found through a
    /// function defined in it (`shared` -> `script_or_debug_info`); needs edges.
    pub fn script_name(&self, script: u32) -> Option<String> {
        let &f = self.script_function.get(&script)?;
        if !self.has_edges() {
            return None;
        }
        let shared = self.edge_target_named(f, b"shared")?;
        let target = self
            .edge_target_named(shared, b"script_or_debug_info")
            .or_else(|| self.edge_target_named(shared, b"script"))?;
        let name = self.string(self.node_name[target as usize]);
        let name = name.strip_prefix("system / Script / ").unwrap_or(&name);
        (!name.is_empty() && !name.starts_with("system / ")).then(|| name.to_string())
    }

    /// The node a non-index edge named `name` of `n` leads to.
    pub fn edge_target_named(&self, n: u32, name: &[u8]) -> Option<u32> {
        self.edges(n)
            .find(|&e| {
                !self.meta.edge_has_index(self.edge_type[e])
                    && self.string_is(self.edge_name[e], name)
            })
            .map(|e| self.edge_to[e])
    }

    /// Whether string `i` is `text` (compared raw, as stored).
    pub fn string_is(&self, i: u32, text: &[u8]) -> bool {
        let (Some(&off), Some(map)) = (self.string_offsets.get(i as usize), &self.map) else {
            return false;
        };
        let start = self.strings_base + off as usize;
        map.get(start..start + text.len()) == Some(text)
            && map.get(start + text.len()) == Some(&b'"')
    }

    /// Whether string `i` is a whole number (a Map or Set table's entry edge).
    pub fn string_is_digits(&self, i: u32) -> bool {
        let (Some(&off), Some(map)) = (self.string_offsets.get(i as usize), &self.map) else {
            return false;
        };
        let rest = &map[self.strings_base + off as usize..];
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        digits > 0 && rest.get(digits) == Some(&b'"')
    }

    /// For an edge named like a WeakMap entry (`<n> / part of key (...) -> value (...) pair
    /// in WeakMap (table @<id>)`): the pair it belongs to and the table's node id.
    #[inline]
    pub fn ephemeron(&self, name: u32) -> Option<(u32, u32)> {
        let bit = self
            .ephemeron_bits
            .get(name as usize / 64)
            .is_some_and(|w| w & (1 << (name % 64)) != 0);
        if !bit {
            return None;
        }
        let i = self
            .ephemeron_strings
            .binary_search_by_key(&name, |e| e.0)
            .ok()?;
        let (_, pair, table) = self.ephemeron_strings[i];
        Some((pair, table))
    }

    /// Whether edge `e` from node `from` is the one DevTools leaves out of dominators
    /// for a WeakMap value: the table's edge (the key's edge keeps the value).
    #[inline]
    pub fn is_weakmap_table_edge(&self, from: usize, e: usize) -> bool {
        self.edge_type[e] == self.meta.e_internal
            && self
                .ephemeron(self.edge_name[e])
                .is_some_and(|(_, table)| table == self.node_id[from])
    }

    /// DevTools' name for a plain `Object` (`{socket, started, log}`): its first and last
    /// property names, as many as fit in about 100 characters. Other nodes: their class.
    pub fn plain_object_name(&self, n: u32) -> Option<String> {
        let m = &self.meta;
        if self.node_type[n as usize] != m.t_object
            || !self.string_is(self.node_name[n as usize], b"Object")
            || !self.has_edges()
        {
            return None;
        }
        let props: Vec<String> = self
            .edges(n)
            .filter(|&e| self.edge_type[e] == m.e_property)
            .map(|e| self.string(self.edge_name[e]))
            .filter(|name| name != "__proto__")
            .map(|name| format_property_name(&name))
            .collect();
        let (mut start, mut end) = (String::from("{"), String::from("}"));
        let (mut lo, mut hi) = (0usize, props.len());
        let mut from_end = false;
        while lo < hi {
            let name = if from_end { &props[hi - 1] } else { &props[lo] };
            if start.len() > 1 && start.len() + end.len() + name.len() > 100 {
                break;
            }
            if from_end {
                hi -= 1;
                if end.len() > 1 {
                    end.insert_str(0, ", ");
                }
                end.insert_str(0, name);
            } else {
                lo += 1;
                if start.len() > 1 {
                    start.push_str(", ");
                }
                start.push_str(name);
            }
            from_end = !from_end;
        }
        if lo < hi {
            start.push_str(", …");
        }
        if end.len() > 1 {
            start.push_str(", ");
        }
        Some(start + &end)
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
            // V8 names a global object `global / <url>`: without a URL, just `global`
            let name = self.string(self.node_name[n]);
            match name.trim_end().strip_suffix(" /") {
                Some(bare) if !bare.is_empty() => bare.to_string(),
                _ => name,
            }
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

/// String indexes of names that DevTools' rules test, noted while the strings are scanned.
#[derive(Debug, Clone, Copy, Default)]
pub struct KnownStrings {
    pub sloppy_function_map: Option<u32>,
    pub native_context: Option<u32>,
    pub map_descriptors: Option<u32>,
    pub table: Option<u32>,
    pub object: Option<u32>,
}

impl KnownStrings {
    fn note(&mut self, i: u32, raw: &[u8]) {
        let slot = match raw {
            b"sloppy_function_map" => &mut self.sloppy_function_map,
            b"system / NativeContext" => &mut self.native_context,
            b"(map descriptors)" => &mut self.map_descriptors,
            b"table" => &mut self.table,
            b"Object" => &mut self.object,
            _ => return,
        };
        slot.get_or_insert(i);
    }
}

/// `"3 / part of key (Key @7) -> value (Val @9) pair in WeakMap (table @11)"`: the part
/// after the number (the same in the table's and the key's edge of one pair) and the
/// table's id. DevTools' pattern, read from the end.
fn ephemeron_name(raw: &[u8]) -> Option<(&[u8], u32)> {
    let digits = raw.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || raw.len() < 60 || raw.last() != Some(&b')') {
        return None;
    }
    let rest = &raw[digits..];
    if !rest.starts_with(b" / part of key (") {
        return None;
    }
    const TABLE: &[u8] = b") pair in WeakMap (table @";
    let at = memchr::memmem::rfind(rest, TABLE)?;
    let id = &rest[at + TABLE.len()..rest.len() - 1];
    if id.is_empty() || !id.iter().all(u8::is_ascii_digit) || id.len() > 10 {
        return None;
    }
    memchr::memmem::find(&rest[..at], b") -> value (")?;
    let table = std::str::from_utf8(id).ok()?.parse::<u32>().ok()?;
    Some((rest, table))
}

/// A property name as DevTools writes it in a plain object's name: quoted when it holds a
/// comma, a quote or a brace.
fn format_property_name(name: &str) -> String {
    if name.contains([',', '\'', '"', '{', '}']) {
        serde_json::to_string(name).unwrap_or_else(|_| name.to_string())
    } else {
        name.to_string()
    }
}

/// One read of a snapshot file (`Snapshot::from_map`): the file, what its header promised,
/// and what the sections read so far have shown.
struct Reader<'m> {
    path: &'m Path,
    buf: &'m [u8],
    release: Releaser<'m>,
    with_edges: bool,
    /// The header's counts, which the arrays must match.
    header_nodes: u64,
    header_edges: u64,
    location_fields: Option<LocationFields>,
    seen_nodes: bool,
    seen_edges: bool,
    seen_strings: bool,
    /// The sum of the nodes' `edge_count`.
    edge_sum: u64,
    /// The largest string index used by a node name, and by an edge name that is not an
    /// index: checked once the strings are known (they come after the arrays).
    max_node_name: u32,
    max_edge_name: u32,
}

impl<'m> Reader<'m> {
    fn new(path: &'m Path, map: &'m Mmap, need: Need) -> Self {
        Reader {
            path,
            buf: map,
            release: Releaser::new(map),
            with_edges: need == Need::NodesAndEdges,
            header_nodes: 0,
            header_edges: 0,
            location_fields: None,
            seen_nodes: false,
            seen_edges: false,
            seen_strings: false,
            edge_sum: 0,
            max_node_name: 0,
            max_edge_name: 0,
        }
    }

    /// Maps a scan error to the file's error, naming the section it is in.
    fn at<'s>(&'s self, section: &'s str) -> impl FnOnce(ScanError) -> HeapError + 's {
        move |e| match e {
            ScanError::Eof => HeapError::Truncated {
                path: self.path.to_path_buf(),
                section: section.to_string(),
            },
            ScanError::Bad { offset, detail } => HeapError::Malformed {
                path: self.path.to_path_buf(),
                section: section.to_string(),
                offset,
                detail,
            },
            // number_records gives it a position; nothing else makes one
            ScanError::BadField { detail, .. } => HeapError::Malformed {
                path: self.path.to_path_buf(),
                section: section.to_string(),
                offset: 0,
                detail,
            },
        }
    }

    fn not(&self, detail: &str) -> HeapError {
        HeapError::NotSnapshot {
            path: self.path.to_path_buf(),
            detail: detail.to_string(),
        }
    }

    fn bad_meta(&self, detail: String) -> HeapError {
        HeapError::BadMeta {
            path: self.path.to_path_buf(),
            detail,
        }
    }

    /// `{"snapshot":{...}`: the header, small, read with serde, and the position after it.
    /// A UTF-8 byte-order mark before it is allowed, as DevTools allows it.
    fn header(&self) -> Result<(Header, usize)> {
        let buf = self.buf;
        let bom = if buf.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        let Ok(start) = scan::skip_ws(buf, bom) else {
            return Err(HeapError::Empty {
                path: self.path.to_path_buf(),
            });
        };
        if buf[start] != b'{' {
            return Err(self.not("it does not start with '{'"));
        }
        let (k, value) = scan::key(buf, start + 1).map_err(|e| match e {
            ScanError::Eof => self.not("it ends before the 'snapshot' header"),
            _ => self.not("it does not start with a 'snapshot' header"),
        })?;
        if k != b"snapshot" {
            return Err(self.not(&format!(
                "the first key is '{}', not 'snapshot'",
                String::from_utf8_lossy(k)
            )));
        }
        let header_end = scan::skip_value(buf, value).map_err(self.at("the 'snapshot' header"))?;
        let header: Header = serde_json::from_slice(&buf[value..header_end])
            .map_err(|e| self.bad_meta(e.to_string()))?;
        Ok((header, header_end))
    }

    /// The snapshot the header describes, with no nodes yet and its columns presized.
    fn presized_snapshot(&mut self, header: &Header) -> Result<Snapshot> {
        let meta = Meta::from_raw(&header.meta).map_err(|detail| self.bad_meta(detail))?;
        self.location_fields = LocationFields::of(&header.meta.location_fields);
        self.header_nodes = header.node_count;
        self.header_edges = header.edge_count;
        let (nf, ef) = (meta.node_fields, meta.edge_fields);
        // Capacity from the header, but never more than the file could hold (2 bytes a value).
        let node_cap = (header.node_count as usize).min(self.buf.len() / (2 * nf) + 1);
        let edge_cap = (header.edge_count as usize).min(self.buf.len() / (2 * ef) + 1);
        let root_index = header.root_index.unwrap_or(0);
        if root_index % nf as u64 != 0 || root_index / nf as u64 >= header.node_count.max(1) {
            return Err(self.bad_meta(format!("root_index {root_index} is not a node")));
        }
        let mut snap = Snapshot {
            path: self.path.to_path_buf(),
            root: (root_index / nf as u64) as u32,
            node_type: Vec::with_capacity(node_cap),
            node_name: Vec::with_capacity(node_cap),
            node_id: Vec::with_capacity(node_cap),
            node_self: Vec::with_capacity(node_cap),
            first_edge: Vec::new(),
            edge_type: Vec::new(),
            edge_name: Vec::new(),
            edge_to: Vec::new(),
            file_bytes: self.buf.len() as u64,
            edges_in_file: header.edge_count,
            strings_base: 0,
            string_offsets: Vec::new(),
            meta,
            map: None,
            known: KnownStrings::default(),
            node_variant: Vec::new(),
            dom_state: Vec::new(),
            locations: Vec::new(),
            script_function: FxMap::default(),
            ephemeron_strings: Vec::new(),
            ephemeron_bits: Vec::new(),
            ephemeron_pairs: 0,
        };
        if self.with_edges {
            snap.first_edge.reserve(node_cap + 1);
            snap.first_edge.push(0);
            snap.edge_type.reserve(edge_cap);
            snap.edge_name.reserve(edge_cap);
            snap.edge_to.reserve(edge_cap);
        }
        Ok(snap)
    }

    /// The sections after the header up to the closing `}`, each read or skipped by its key.
    fn sections(&mut self, snap: &mut Snapshot, mut pos: usize) -> Result<()> {
        let buf = self.buf;
        loop {
            pos = scan::skip_ws(buf, pos)
                .map_err(self.at("the top-level object (no closing '}')"))?;
            match buf[pos] {
                b'}' => return Ok(()),
                b',' => pos += 1,
                _ => {
                    return Err(self.at("the top-level object")(ScanError::Bad {
                        offset: pos,
                        detail: "expected ',' or '}'".into(),
                    }));
                }
            }
            let (k, value) = scan::key(buf, pos).map_err(self.at("the top-level object"))?;
            pos = match k {
                b"nodes" => self.read_nodes(snap, value)?,
                b"edges" if self.with_edges => self.read_edges(snap, value)?,
                b"edges" => self.skip_edges(value)?,
                b"strings" => self.read_strings(snap, value)?,
                b"locations" | b"samples" | b"trace_function_infos" if self.is_array(value) => {
                    match self.location_fields {
                        // constructor locations are read by node, so after the nodes
                        Some(fields) if k == b"locations" && self.seen_nodes => {
                            self.read_locations(snap, value, fields)?
                        }
                        _ => self.skip_number_array(k, value)?,
                    }
                }
                _ => self.skip_value(k, value)?,
            };
        }
    }

    /// `nodes`: decoded into the node columns (and `first_edge` when edges are read).
    fn read_nodes(&mut self, snap: &mut Snapshot, value: usize) -> Result<usize> {
        let m = &snap.meta;
        let nf = m.node_fields;
        let (t_off, n_off, i_off, s_off, c_off) = (m.n_type, m.n_name, m.n_id, m.n_self, m.n_edges);
        let types = m.node_type_names.len() as u32;
        let (d_off, native) = (m.n_detached, m.t_native as u32);
        let with_edges = self.with_edges;
        let release = &self.release;
        // the per-record closure updates locals, not fields of self
        let mut max_node_name = self.max_node_name;
        let mut edge_sum = self.edge_sum;
        let dom_state = &mut snap.dom_state;
        let mut ordinal = 0usize;
        let (end, _) = scan::number_records(
            self.buf,
            value,
            nf,
            |r| {
                let t = r[t_off];
                if t >= types {
                    return Err(ScanError::BadField {
                        field: t_off,
                        detail: format!(
                            "node {ordinal} has type {t}; meta lists {types} node types"
                        ),
                    });
                }
                if let Some(d) = d_off
                    && t == native
                    && r[d] & 3 != 0
                {
                    dom_state.push((ordinal as u32, (r[d] & 3) as u8));
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
        .map_err(self.at("the nodes array"))?;
        self.seen_nodes = true;
        self.max_node_name = max_node_name;
        self.edge_sum = edge_sum;
        self.check_node_counts(snap)?;
        Ok(end)
    }

    /// The nodes read, and the edges they say they have, against the header's counts.
    fn check_node_counts(&self, snap: &Snapshot) -> Result<()> {
        let found = snap.node_type.len() as u64;
        if found != self.header_nodes {
            return Err(HeapError::CountMismatch {
                path: self.path.to_path_buf(),
                what: "node count".into(),
                header: self.header_nodes,
                found,
            });
        }
        if self.edge_sum != self.header_edges {
            return Err(HeapError::CountMismatch {
                path: self.path.to_path_buf(),
                what: "edge count (the sum of the nodes' edge_count)".into(),
                header: self.header_edges,
                found: self.edge_sum,
            });
        }
        Ok(())
    }

    /// `edges`: decoded into the edge columns, each target checked to be a node.
    fn read_edges(&mut self, snap: &mut Snapshot, value: usize) -> Result<usize> {
        if !self.seen_nodes {
            return Err(self.not("'edges' comes before 'nodes'"));
        }
        let m = &snap.meta;
        let (nf, ef) = (m.node_fields, m.edge_fields);
        let (t_off, n_off, to_off) = (m.e_type, m.e_name, m.e_to);
        let types = m.edge_type_names.len() as u32;
        let (el, hid) = (m.e_element as u32, m.e_hidden as u32);
        let nodes = snap.node_type.len() as u64;
        let nf64 = nf as u64;
        let release = &self.release;
        let mut max_edge_name = self.max_edge_name;
        let mut ordinal = 0usize;
        let (end, _) = scan::number_records(
            self.buf,
            value,
            ef,
            |r| {
                let t = r[t_off];
                let to = r[to_off] as u64;
                if t >= types {
                    return Err(ScanError::BadField {
                        field: t_off,
                        detail: format!(
                            "edge {ordinal} has type {t}; meta lists {types} edge types"
                        ),
                    });
                }
                if to % nf64 != 0 || to / nf64 >= nodes {
                    return Err(ScanError::BadField {
                        field: to_off,
                        detail: format!(
                            "edge {ordinal} points to to_node {to}, which is not a node: a node starts at a multiple of {nf} below {} ({nodes} nodes)",
                            nodes * nf64
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
        .map_err(self.at("the edges array"))?;
        self.seen_edges = true;
        self.max_edge_name = max_edge_name;
        let found = snap.edge_type.len() as u64;
        if found != self.header_edges {
            return Err(HeapError::CountMismatch {
                path: self.path.to_path_buf(),
                what: "edge count".into(),
                header: self.header_edges,
                found,
            });
        }
        Ok(end)
    }

    /// `edges` when the command needs none: passed over, its pages given back.
    fn skip_edges(&mut self, value: usize) -> Result<usize> {
        let release = &self.release;
        let end = scan::skip_number_array(self.buf, value, |done| release.upto(done))
            .map_err(self.at("the edges array"))?;
        self.release.upto(end);
        self.seen_edges = true;
        Ok(end)
    }

    /// `strings`: only located (a string is unescaped when asked for); the names the rules
    /// test and the WeakMap entry names are noted on the way.
    fn read_strings(&mut self, snap: &mut Snapshot, value: usize) -> Result<usize> {
        let base = scan::skip_ws(self.buf, value).map_err(self.at("the strings array"))?;
        snap.strings_base = base;
        let mut known = KnownStrings::default();
        let mut pairs: FxMap<&[u8], u32> = FxMap::default();
        let mut ephemerons: Vec<(u32, u32, u32)> = Vec::new();
        let release = &self.release;
        let end = scan::string_offsets(
            self.buf,
            value,
            &mut snap.string_offsets,
            |i, raw| {
                known.note(i, raw);
                if let Some((dup, table)) = ephemeron_name(raw) {
                    let next = pairs.len() as u32;
                    let pair = *pairs.entry(dup).or_insert(next);
                    ephemerons.push((i, pair, table));
                }
            },
            |done| release.upto(done),
        )
        .map_err(self.at("the strings array"))?;
        snap.known = known;
        snap.ephemeron_pairs = pairs.len() as u32;
        let mut bits = vec![0u64; snap.string_offsets.len().div_ceil(64)];
        for &(i, _, _) in &ephemerons {
            bits[i as usize / 64] |= 1 << (i % 64);
        }
        snap.ephemeron_bits = bits;
        snap.ephemeron_strings = ephemerons;
        self.seen_strings = true;
        Ok(end)
    }

    /// `locations`: the constructor location of each object, interned, splits its class;
    /// one closure per script is kept to find the script's name.
    fn read_locations(
        &self,
        snap: &mut Snapshot,
        value: usize,
        lf: LocationFields,
    ) -> Result<usize> {
        let (object, closure) = (snap.meta.t_object, snap.meta.t_closure);
        let nf = snap.meta.node_fields;
        let types = &snap.node_type;
        let nodes = types.len() as u64;
        let nf64 = nf as u64;
        let mut interned: FxMap<Location, u32> = FxMap::default();
        let locations = &mut snap.locations;
        let script_function = &mut snap.script_function;
        let variant = &mut snap.node_variant;
        variant.resize(types.len(), 0);
        // objects of one class come in runs: the last location found saves a hash
        let mut previous = (
            Location {
                script: u32::MAX,
                line: 0,
                column: 0,
            },
            0u32,
        );
        let mut last_script = u32::MAX;
        let (end, _) = scan::number_records(
            self.buf,
            value,
            lf.count,
            |r| {
                let index = r[lf.object] as u64;
                if index % nf64 != 0 || index / nf64 >= nodes {
                    return Err(ScanError::BadField {
                        field: lf.object,
                        detail: format!(
                            "object_index {index} is not a node: a node starts at a multiple of {nf} below {}",
                            nodes * nf64
                        ),
                    });
                }
                let n = (index / nf64) as u32;
                let t = types[n as usize];
                if t == object {
                    let loc = Location {
                        script: r[lf.script],
                        line: r[lf.line],
                        column: r[lf.column],
                    };
                    let i = if previous.0 == loc {
                        previous.1
                    } else {
                        let next = locations.len() as u32;
                        let i = *interned.entry(loc).or_insert(next);
                        if i == next {
                            locations.push(loc);
                        }
                        previous = (loc, i);
                        i
                    };
                    variant[n as usize] = i + 1;
                } else if t == closure && r[lf.script] != last_script {
                    last_script = r[lf.script];
                    script_function.entry(last_script).or_insert(n);
                }
                Ok(())
            },
            |done| self.release.upto(done),
        )
        .map_err(self.at("the locations array"))?;
        Ok(end)
    }

    /// Whether the value at `value` is an array.
    fn is_array(&self, value: usize) -> bool {
        scan::skip_ws(self.buf, value).is_ok_and(|p| self.buf[p] == b'[')
    }

    /// A flat number array not needed (`samples`, say): one memchr for the ']'.
    fn skip_number_array(&self, key: &[u8], value: usize) -> Result<usize> {
        let section = format!("the {} array", String::from_utf8_lossy(key));
        scan::skip_number_array(self.buf, value, |done| self.release.upto(done))
            .map_err(self.at(&section))
    }

    /// Any other value, passed over.
    fn skip_value(&self, key: &[u8], value: usize) -> Result<usize> {
        let section = format!("'{}'", String::from_utf8_lossy(key));
        scan::skip_value(self.buf, value).map_err(self.at(&section))
    }

    /// What needs every section: all three arrays there, at least the root node, and every
    /// name a string that exists.
    fn check_complete(&self, snap: &Snapshot) -> Result<()> {
        if !self.seen_nodes || !self.seen_edges || !self.seen_strings {
            let missing: Vec<&str> = [
                (self.seen_nodes, "nodes"),
                (self.seen_edges, "edges"),
                (self.seen_strings, "strings"),
            ]
            .iter()
            .filter(|(seen, _)| !seen)
            .map(|(_, name)| *name)
            .collect();
            return Err(self.not(&format!("it has no {} array", missing.join(", no "))));
        }
        if snap.node_count() == 0 {
            return Err(self.not("its nodes array is empty (a snapshot holds at least the root)"));
        }
        let strings = snap.string_offsets.len() as u64;
        if self.max_node_name as u64 >= strings {
            return Err(HeapError::Malformed {
                path: self.path.to_path_buf(),
                section: "the nodes array".into(),
                offset: 0,
                detail: format!(
                    "a node name is string {}, but there are {strings} strings",
                    self.max_node_name
                ),
            });
        }
        if !snap.edge_type.is_empty() && self.max_edge_name as u64 >= strings {
            return Err(HeapError::Malformed {
                path: self.path.to_path_buf(),
                section: "the edges array".into(),
                offset: 0,
                detail: format!(
                    "an edge name is string {}, but there are {strings} strings",
                    self.max_edge_name
                ),
            });
        }
        Ok(())
    }
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
