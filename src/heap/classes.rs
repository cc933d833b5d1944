//! Grouping nodes by class, and sets of node ids.

use super::snapshot::{ClassKey, DETACHED, Location, Snapshot, TYPE_CLASS, key_base, key_variant};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A fast hash for integer keys (the multiply-rotate of rustc's FxHasher): the maps here are
/// hit once per node or edge, where SipHash costs more than the work around it. No input
/// here comes from a peer that could choose colliding keys on purpose to slow us down more
/// than a big file does anyway.
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);

impl Hasher for Fx {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }
    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.write_u64(v as u64);
    }
    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64);
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with the fast hash.
pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;

/// Dense slots for the class keys met in one snapshot, so counting by class is an array
/// index, not a hash (a hash only for the names split by location or state).
pub struct ClassSlots {
    by_name: Vec<u32>,
    by_type: [u32; 256],
    /// By location index: the name seen with it and its slot (a location is one
    /// constructor, so one name; another name falls back to `split`).
    by_location: Vec<(u32, u32)>,
    split: FxMap<ClassKey, u32>,
    pub keys: Vec<ClassKey>,
}

const FREE: u32 = u32::MAX;

impl ClassSlots {
    pub fn new(s: &Snapshot) -> ClassSlots {
        ClassSlots {
            by_name: vec![FREE; s.string_count()],
            by_type: [FREE; 256],
            by_location: vec![(FREE, FREE); s.locations.len()],
            split: FxMap::default(),
            keys: Vec::new(),
        }
    }

    #[inline]
    pub fn slot(&mut self, key: ClassKey) -> usize {
        let base = key_base(key);
        let variant = key_variant(key);
        let cell = if variant == 0 {
            if base >= TYPE_CLASS {
                &mut self.by_type[(base - TYPE_CLASS) as usize]
            } else {
                &mut self.by_name[base as usize]
            }
        } else if variant != DETACHED
            && let Some(cell) = self.by_location.get_mut(variant as usize - 1)
            && (cell.0 == FREE || cell.0 == base)
        {
            cell.0 = base;
            &mut cell.1
        } else {
            self.split.entry(key).or_insert(FREE)
        };
        if *cell == FREE {
            *cell = self.keys.len() as u32;
            self.keys.push(key);
        }
        *cell as usize
    }

    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.keys.len()
    }
}

/// The names the text shows for classes given as (name, constructor location): `Client`
/// stays `Client` unless another class has that name; then each is named with its
/// constructor's file and line, `Client (server.js:12)` (the whole path when the file names
/// are the same too). Also each split class's location, `path:line:column` (1-based).
/// Script names come from `s` (they need its edges), else `script <id>`.
pub fn split_names(
    keys: &[(String, Option<Location>)],
    s: Option<&Snapshot>,
) -> (Vec<String>, Vec<Option<String>>) {
    let mut per_name: HashMap<&str, u32> = HashMap::new();
    for (name, _) in keys {
        *per_name.entry(name.as_str()).or_default() += 1;
    }
    let mut scripts: HashMap<u32, String> = HashMap::new();
    let mut names = Vec::with_capacity(keys.len());
    let mut locations = Vec::with_capacity(keys.len());
    for (name, loc) in keys {
        match loc {
            Some(l) if per_name.get(name.as_str()).is_some_and(|&k| k > 1) => {
                let file = scripts
                    .entry(l.script)
                    .or_insert_with(|| {
                        s.and_then(|s| s.script_name(l.script))
                            .unwrap_or_else(|| format!("script {}", l.script))
                    })
                    .clone();
                let short = file.rsplit('/').next().unwrap_or(&file);
                names.push(format!("{name} ({short}:{})", l.line + 1));
                locations.push(Some(format!("{file}:{}:{}", l.line + 1, l.column + 1)));
            }
            _ => {
                names.push(name.clone());
                locations.push(None);
            }
        }
    }
    // two files of one name: the whole path
    let mut seen: HashMap<String, u32> = HashMap::new();
    for n in &names {
        *seen.entry(n.clone()).or_default() += 1;
    }
    for (i, (name, loc)) in keys.iter().enumerate() {
        if let (Some(l), Some(full)) = (loc, &locations[i])
            && seen.get(&names[i]).is_some_and(|&k| k > 1)
        {
            let file = full.rsplitn(3, ':').nth(2).unwrap_or(full);
            names[i] = format!("{name} ({file}:{})", l.line + 1);
        }
    }
    (names, locations)
}

/// A set of node ids: a bitmap for the dense low ids V8 gives heap objects, a sorted list
/// for the few large ones (native and synthetic nodes).
pub struct IdSet {
    bits: Vec<u64>,
    limit: u32,
    big: Vec<u32>,
}

impl IdSet {
    pub fn of(ids: &[u32]) -> IdSet {
        let limit = ids
            .len()
            .saturating_mul(64)
            .saturating_add(4096)
            .min(u32::MAX as usize) as u32;
        let top = ids
            .iter()
            .copied()
            .filter(|&i| i < limit)
            .max()
            .unwrap_or(0);
        let mut bits = vec![0u64; top as usize / 64 + 1];
        let mut big = Vec::new();
        for &id in ids {
            if id < limit {
                bits[id as usize / 64] |= 1 << (id % 64);
            } else {
                big.push(id);
            }
        }
        big.sort_unstable();
        IdSet { bits, limit, big }
    }

    #[inline]
    pub fn contains(&self, id: u32) -> bool {
        if id < self.limit {
            self.bits
                .get(id as usize / 64)
                .is_some_and(|w| w & (1 << (id % 64)) != 0)
        } else {
            self.big.binary_search(&id).is_ok()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn id_sets() {
        let set = IdSet::of(&[1, 3, 5, 129, 1_813_000_640, 7]);
        for id in [1, 3, 5, 7, 129, 1_813_000_640] {
            assert!(set.contains(id), "{id}");
        }
        for id in [0, 2, 9, 128, 130, 1_813_000_641, u32::MAX] {
            assert!(!set.contains(id), "{id}");
        }
        assert!(!IdSet::of(&[]).contains(0));
    }
}
