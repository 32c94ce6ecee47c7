//! The series a replay shard has seen, by WAL ref: looked up once per
//! replayed sample, so it is a plain array indexed by ref for the dense
//! refs a head hands out (one cache line, often the same as the previous
//! sample's, since a record's samples mostly follow series creation
//! order), with a hash map for refs far beyond the series seen (a WAL
//! written by another tool).
//!
//! Each ref also carries the time up to which its samples are known to be
//! in the chunks attached from `chunks_head/` ([`SeriesByRef::get_covered`]):
//! the shard skips those samples without locking the series, which is
//! what most of a replay after a crash is (every sample but the open
//! chunks' is already in a chunk file).

use std::collections::HashMap;
use std::sync::Arc;

use crate::series::MemSeries;

/// Refs below this may be kept in the array (8 bytes each).
const DENSE_LIMIT: u64 = 1 << 27;
/// The array may be this many slots longer than the series it holds
/// times two: a few sparse refs do not allocate slots for every ref below.
const DENSE_SLACK: usize = 1 << 20;

/// A ref's series and the time up to which its samples are skipped
/// unlocked ([`NOT_COVERED`]: none).
struct Slot {
    s: Arc<MemSeries>,
    covered: i64,
}

/// No sample of the ref is skipped unlocked.
pub(super) const NOT_COVERED: i64 = i64::MIN;

#[derive(Default)]
pub(super) struct SeriesByRef {
    dense: Vec<Option<Slot>>,
    sparse: HashMap<u64, Slot>,
    len: usize,
}

impl SeriesByRef {
    /// Records `s` under ref `r`, replacing what `r` held, with nothing
    /// covered.
    pub(super) fn insert(&mut self, r: u64, s: Arc<MemSeries>) {
        let s = Slot {
            s,
            covered: NOT_COVERED,
        };
        let i = r as usize;
        if r < DENSE_LIMIT && i < self.dense.len().max(2 * self.len + DENSE_SLACK) {
            if self.dense.len() <= i {
                self.dense.resize_with((i + 1).next_power_of_two(), || None);
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
        self.slot(r).map(|x| &x.s)
    }

    fn slot(&self, r: u64) -> Option<&Slot> {
        match self.dense.get(r as usize) {
            Some(Some(s)) if r < DENSE_LIMIT => Some(s),
            _ => self.sparse.get(&r),
        }
    }

    fn slot_mut(&mut self, r: u64) -> Option<&mut Slot> {
        match self.dense.get_mut(r as usize) {
            Some(Some(s)) if r < DENSE_LIMIT => Some(s),
            _ => self.sparse.get_mut(&r),
        }
    }

    /// The series of ref `r` and the time up to which its samples may be
    /// skipped unlocked (the caller sets it to [`NOT_COVERED`] once it
    /// no longer holds).
    pub(super) fn get_covered(&mut self, r: u64) -> Option<(&Arc<MemSeries>, &mut i64)> {
        self.slot_mut(r).map(|x| (&x.s, &mut x.covered))
    }

    /// Sets the time up to which ref `r`'s samples are skipped unlocked.
    pub(super) fn set_covered(&mut self, r: u64, t: i64) {
        if let Some(x) = self.slot_mut(r) {
            x.covered = t;
        }
    }

    /// Prefetches ref `r`'s slot (a hint; nothing is read).
    pub(super) fn prefetch_slot(&self, r: u64) {
        if r < DENSE_LIMIT && (r as usize) < self.dense.len() {
            crate::series::prefetch_line(
                self.dense.as_ptr().wrapping_add(r as usize).cast(),
                false,
            );
        }
    }

    /// Prefetches the series of ref `r` for writing, unless a sample at
    /// `t` is skipped unlocked (a hint; reads the slot).
    pub(super) fn prefetch_series(&self, r: u64, t: i64, w: bool) {
        if let Some(x) = self.slot(r) {
            if t > x.covered {
                x.s.prefetch(w);
            }
        }
    }

    /// Every series held, each once per ref naming it.
    pub(super) fn values(&self) -> impl Iterator<Item = &Arc<MemSeries>> {
        self.dense
            .iter()
            .flatten()
            .chain(self.sparse.values())
            .map(|x| &x.s)
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
        // Coverage is per ref, and replacing a ref clears it.
        m.set_covered(3, 100);
        m.set_covered(1 << 40, 7);
        assert_eq!(m.get_covered(3).map(|(_, c)| *c), Some(100));
        assert_eq!(m.get_covered(1 << 40).map(|(_, c)| *c), Some(7));
        assert_eq!(
            m.get_covered(DENSE_LIMIT + 5).map(|(_, c)| *c),
            Some(NOT_COVERED)
        );
        m.insert(3, a.clone());
        assert_eq!(m.get_covered(3).map(|(_, c)| *c), Some(NOT_COVERED));
        assert!(m.get_covered(4).is_none());
    }
}
