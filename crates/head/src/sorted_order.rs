//! The label order of recent selections, kept for the next query.
//!
//! A head selection is returned sorted by labels, but head refs follow
//! creation order, so every selection is sorted, and sorting reads every
//! series' labels (mostly not in cache by then). Dashboards ask for the
//! same selections at every refresh. This cache keeps, for a set of refs,
//! their series in label order, so a repeated selection neither sorts nor
//! looks its refs up again (a lookup by ref costs a few cache misses per
//! series; walking a vector of series lets the next ones be prefetched).
//!
//! Contracts: an entry is keyed by the exact set of refs (ascending, as
//! postings give them), checked in full on every hit. Refs are never
//! reused and a series' labels never change, so an order stored for a
//! set is right for that set for ever: a selection that gained or lost a
//! series is another set, sorted afresh. Which series have samples in a
//! query's range is not part of the entry (that is checked per query). An
//! entry may hold a series that truncation has removed since: the head only
//! removes series that are empty and unpinned, under both stripe locks, and
//! nothing can reach such a series to append to it afterwards, so it stays
//! empty and the per-query check drops it. The cache holds at most
//! [`MAX_ENTRIES`] sets and [`MAX_REFS`] refs in all, and drops its oldest
//! entries first.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::series::MemSeries;

/// Sets held at most.
pub(crate) const MAX_ENTRIES: usize = 256;
/// Refs held at most, over all sets (16 bytes each, and the series they
/// keep alive).
pub(crate) const MAX_REFS: usize = 1 << 20;
/// Smallest set worth keeping: smaller ones sort in a few microseconds.
pub(crate) const MIN_REFS: usize = 128;

/// A set of refs and their series in label order.
#[derive(Debug)]
pub(crate) struct Order {
    /// The set, ascending.
    refs: Vec<u64>,
    /// The series of `refs`, in label order.
    series: Vec<Arc<MemSeries>>,
}

impl Order {
    /// The order of `refs` (ascending) given their series in label order,
    /// or `None` when `sorted` is not a permutation of their series.
    pub(crate) fn new(refs: Vec<u64>, sorted: Vec<Arc<MemSeries>>) -> Option<Self> {
        if sorted.len() != refs.len() {
            return None;
        }
        let mut seen = vec![false; refs.len()];
        for s in &sorted {
            let i = refs.binary_search(&s.r).ok()?;
            let first = seen.get_mut(i).map(|x| !std::mem::replace(x, true))?;
            if !first {
                return None;
            }
        }
        Some(Self {
            refs,
            series: sorted,
        })
    }

    /// The series in label order.
    pub(crate) fn series(&self) -> &[Arc<MemSeries>] {
        &self.series
    }

    /// How many refs the set holds.
    pub(crate) fn len(&self) -> usize {
        self.refs.len()
    }
}

/// The cache (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct SortedOrders {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    by_hash: HashMap<u64, Arc<Order>>,
    /// Hashes in insertion order, oldest first.
    age: VecDeque<u64>,
    /// Refs held over all entries.
    held: usize,
}

/// A hash of a set of refs (a multiply-xor mix; collisions are resolved by
/// comparing the sets).
fn hash(refs: &[u64]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ refs.len() as u64;
    for &r in refs {
        h = (h ^ r).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 29;
    }
    h
}

impl SortedOrders {
    /// The order stored for exactly the set `refs`, if any.
    pub(crate) fn get(&self, refs: &[u64]) -> Option<Arc<Order>> {
        let h = hash(refs);
        let g = self.inner.lock();
        g.by_hash
            .get(&h)
            .filter(|o| o.refs.as_slice() == refs)
            .cloned()
    }

    /// Stores `order`, dropping the oldest entries to stay in bounds; an
    /// order larger than the whole budget is not stored.
    pub(crate) fn insert(&self, order: Arc<Order>) {
        let n = order.len();
        if n > MAX_REFS {
            return;
        }
        let h = hash(&order.refs);
        let mut g = self.inner.lock();
        if let Some(old) = g.by_hash.remove(&h) {
            g.held = g.held.saturating_sub(old.len());
            g.age.retain(|&x| x != h);
        }
        while g.held + n > MAX_REFS || g.by_hash.len() >= MAX_ENTRIES {
            let Some(oldest) = g.age.pop_front() else {
                break;
            };
            if let Some(o) = g.by_hash.remove(&oldest) {
                g.held = g.held.saturating_sub(o.len());
            }
        }
        g.held += n;
        g.age.push_back(h);
        g.by_hash.insert(h, order);
    }

    /// Drops every cached order.
    pub(crate) fn clear(&self) {
        let mut g = self.inner.lock();
        g.by_hash.clear();
        g.age.clear();
        g.held = 0;
    }

    /// Bytes held by the cached orders (their ref and series lists).
    pub(crate) fn heap_bytes(&self) -> u64 {
        let g = self.inner.lock();
        g.by_hash
            .values()
            .map(|o| {
                (o.refs.capacity() * std::mem::size_of::<u64>()
                    + o.series.capacity() * std::mem::size_of::<Arc<MemSeries>>())
                    as u64
            })
            .sum()
    }

    /// Entries and refs held (for tests).
    #[cfg(test)]
    pub(crate) fn size(&self) -> (usize, usize) {
        let g = self.inner.lock();
        (g.by_hash.len(), g.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::Labels;

    fn series(refs: &[u64]) -> Vec<Arc<MemSeries>> {
        refs.iter()
            .map(|&r| {
                Arc::new(MemSeries::new(
                    r,
                    Labels::from_pairs([("r", r.to_string())]),
                ))
            })
            .collect()
    }

    fn refs_of(o: &Order) -> Vec<u64> {
        o.series().iter().map(|s| s.r).collect()
    }

    #[test]
    fn an_order_is_found_only_for_the_same_set() {
        let c = SortedOrders::default();
        let refs: Vec<u64> = (1..=300).collect();
        let sorted: Vec<u64> = refs.iter().rev().copied().collect();
        c.insert(Arc::new(Order::new(refs.clone(), series(&sorted)).unwrap()));
        let got = c.get(&refs).expect("stored");
        assert_eq!(refs_of(&got), sorted);
        // One more, one fewer, or one other ref: not the same set.
        let mut more = refs.clone();
        more.push(301);
        assert!(c.get(&more).is_none());
        assert!(c.get(&refs[1..]).is_none());
        let mut other = refs.clone();
        other[5] = 1000;
        assert!(c.get(&other).is_none());
    }

    #[test]
    fn only_permutations_make_an_order() {
        let refs = vec![3, 5, 9];
        assert!(Order::new(refs.clone(), series(&[9, 3, 5])).is_some());
        assert!(Order::new(refs.clone(), series(&[9, 3])).is_none());
        assert!(Order::new(refs.clone(), series(&[9, 3, 3])).is_none());
        assert!(Order::new(refs, series(&[9, 3, 4])).is_none());
    }

    #[test]
    fn stays_in_bounds_dropping_the_oldest() {
        let c = SortedOrders::default();
        let per = MAX_REFS / 4 + 1;
        let sets: Vec<Vec<u64>> = (0..6u64)
            .map(|k| (0..per as u64).map(|i| k * 10_000_000 + i).collect())
            .collect();
        // One series object stands for every ref of a big set (the cache
        // only compares refs); `Order::new` is checked above.
        let one = series(&[0]).pop().unwrap();
        for s in &sets {
            let order = Order {
                refs: s.clone(),
                series: vec![one.clone(); s.len()],
            };
            c.insert(Arc::new(order));
            let (_, held) = c.size();
            assert!(held <= MAX_REFS);
        }
        // Only the newest three fit.
        assert!(c.get(&sets[2]).is_none());
        for s in &sets[3..] {
            assert!(c.get(s).is_some());
        }
        for k in 0..(MAX_ENTRIES as u64 + 10) {
            let s: Vec<u64> = vec![k * 7 + 1_000_000_000];
            c.insert(Arc::new(Order::new(s.clone(), series(&s)).unwrap()));
        }
        assert!(c.size().0 <= MAX_ENTRIES);
    }
}
