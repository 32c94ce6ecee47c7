//! The series a replay shard has seen, by WAL ref: looked up once per
//! replayed sample, so it is a plain array indexed by ref for the dense
//! refs a head hands out (one cache line, often the same as the previous
//! sample's, since a record's samples mostly follow series creation
//! order), with a hash map for refs far beyond the series seen (a WAL
//! written by another tool).

use std::collections::HashMap;
use std::sync::Arc;

use crate::series::MemSeries;

/// Refs below this may be kept in the array (8 bytes each).
const DENSE_LIMIT: u64 = 1 << 27;
/// The array may be this many slots longer than the series it holds
/// times two: a few sparse refs do not allocate slots for every ref below.
const DENSE_SLACK: usize = 1 << 20;

#[derive(Default)]
pub(super) struct SeriesByRef {
    dense: Vec<Option<Arc<MemSeries>>>,
    sparse: HashMap<u64, Arc<MemSeries>>,
    len: usize,
}

impl SeriesByRef {
    /// Records `s` under ref `r`, replacing what `r` held.
    pub(super) fn insert(&mut self, r: u64, s: Arc<MemSeries>) {
        let i = r as usize;
        if r < DENSE_LIMIT && i < self.dense.len().max(2 * self.len + DENSE_SLACK) {
            if self.dense.len() <= i {
                self.dense.resize((i + 1).next_power_of_two(), None);
            }
            if let Some(slot) = self.dense.get_mut(i) {
                // Held in the map when the array was shorter.
                let moved = !self.sparse.is_empty() && self.sparse.remove(&r).is_some();
                if slot.replace(s).is_none() && !moved {
                    self.len += 1;
                }
                return;
            }
        }
        if self.sparse.insert(r, s).is_none() {
            self.len += 1;
        }
    }

    pub(super) fn get(&self, r: u64) -> Option<&Arc<MemSeries>> {
        match self.dense.get(r as usize) {
            Some(Some(s)) if r < DENSE_LIMIT => Some(s),
            _ => self.sparse.get(&r),
        }
    }

    /// Every series held, each once per ref naming it.
    pub(super) fn values(&self) -> impl Iterator<Item = &Arc<MemSeries>> {
        self.dense.iter().flatten().chain(self.sparse.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::Labels;

    #[test]
    fn dense_and_sparse_refs_are_found() {
        let mut m = SeriesByRef::default();
        let a = Arc::new(MemSeries::new(1, Labels::empty()));
        let b = Arc::new(MemSeries::new(2, Labels::empty()));
        m.insert(3, a.clone());
        // Far beyond the series seen: kept in the map, no huge array.
        m.insert(1 << 40, b.clone());
        m.insert(DENSE_LIMIT + 5, a.clone());
        assert!(m.dense.len() < DENSE_SLACK * 2);
        assert!(m.get(3).is_some_and(|s| Arc::ptr_eq(s, &a)));
        assert!(m.get(1 << 40).is_some_and(|s| Arc::ptr_eq(s, &b)));
        assert!(m.get(DENSE_LIMIT + 5).is_some());
        assert!(m.get(4).is_none());
        assert!(m.get(7 << 40).is_none());
        assert_eq!(m.values().count(), 3);
        // Replacing a ref does not count it twice.
        m.insert(3, b.clone());
        assert!(m.get(3).is_some_and(|s| Arc::ptr_eq(s, &b)));
        assert_eq!(m.len, 3);
    }
}
