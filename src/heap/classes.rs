//! Grouping nodes by class, and sets of node ids.

use super::snapshot::{ClassKey, Snapshot, TYPE_CLASS};

/// Dense slots for the class keys met in one snapshot, so counting by class is an array
/// index, not a hash.
pub struct ClassSlots {
    by_name: Vec<u32>,
    by_type: [u32; 256],
    pub keys: Vec<ClassKey>,
}

const FREE: u32 = u32::MAX;

impl ClassSlots {
    pub fn new(s: &Snapshot) -> ClassSlots {
        ClassSlots {
            by_name: vec![FREE; s.string_count()],
            by_type: [FREE; 256],
            keys: Vec::new(),
        }
    }

    #[inline]
    pub fn slot(&mut self, key: ClassKey) -> usize {
        let cell = if key >= TYPE_CLASS {
            &mut self.by_type[(key - TYPE_CLASS) as usize]
        } else {
            &mut self.by_name[key as usize]
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
