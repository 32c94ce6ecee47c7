//! The head's exemplar store: the newest exemplars of all series in one
//! ring of fixed capacity, as Prometheus's `CircularExemplarStorage`.
//!
//! Why a ring: exemplars are a debugging aid (a trace id next to a latency
//! bucket), wanted for recent data only, and a sender may attach one to
//! every sample. A ring bounds their memory by count
//! (`--storage.exemplars.exemplars-limit`) whatever the series count; when
//! it is full, the oldest exemplar of all is overwritten.
//!
//! Contracts:
//! - Capacity 0 disables the store: every add is
//!   [`StorageError::ExemplarStorageDisabled`].
//! - Per series, exemplars are kept in strictly increasing timestamp order:
//!   one equal to the series' newest (labels, timestamp, value) is a
//!   duplicate and skipped; any other not newer than it is
//!   [`StorageError::OutOfOrderExemplar`]. An exemplar's label names and
//!   values hold at most 128 UTF-8 code points together.
//! - Series are keyed by their labels, not their head refs, so exemplars
//!   stay queryable after their series leaves the head (as in Prometheus),
//!   until the ring overwrites them.
//! - [`ExemplarStore::select`] answers series sorted by labels, each
//!   series' exemplars oldest first, timestamps in `[start, end]`
//!   (inclusive).

use std::collections::HashMap;

use cairn_model::{Exemplar, Labels, Matcher, EXEMPLAR_MAX_LABEL_SET_LENGTH};
use cairn_storage::{SeriesExemplars, StorageError};
use parking_lot::Mutex;

/// Prometheus's default capacity (`storage.exemplars.max_exemplars`).
pub const DEFAULT_MAX_EXEMPLARS: usize = 100_000;

/// No slot: the end of a series' chain.
const NONE: usize = usize::MAX;

struct Slot {
    series: Labels,
    e: Exemplar,
    /// The next (newer) slot of the same series, or [`NONE`].
    next: usize,
}

/// The slots of one series' exemplars: oldest and newest.
#[derive(Clone, Copy)]
struct Chain {
    oldest: usize,
    newest: usize,
}

#[derive(Default)]
struct Ring {
    /// Grows to the capacity, then wraps at `next`.
    slots: Vec<Slot>,
    /// The slot written next once `slots` is full.
    next: usize,
    index: HashMap<Labels, Chain, foldhash::fast::RandomState>,
    appended: u64,
    out_of_order: u64,
}

/// Counters of the store, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExemplarStats {
    /// The ring's capacity.
    pub max_exemplars: u64,
    /// Exemplars held now.
    pub exemplars: u64,
    /// Series with at least one exemplar held.
    pub series: u64,
    /// Exemplars added since start (replayed ones included).
    pub appended_total: u64,
    /// Exemplars refused as out of order since start.
    pub out_of_order_total: u64,
}

/// The store; see the module docs.
pub(crate) struct ExemplarStore {
    cap: usize,
    ring: Mutex<Ring>,
}

impl std::fmt::Debug for ExemplarStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExemplarStore")
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

/// Checks what does not depend on the store's contents: the label length.
pub(crate) fn check_labels(e: &Exemplar) -> Result<(), StorageError> {
    let len: usize = e
        .labels
        .iter()
        .map(|l| l.name.chars().count() + l.value.chars().count())
        .sum();
    if len > EXEMPLAR_MAX_LABEL_SET_LENGTH {
        return Err(StorageError::ExemplarLabelsTooLong { len });
    }
    Ok(())
}

impl ExemplarStore {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            cap,
            ring: Mutex::new(Ring::default()),
        }
    }

    /// Whether `e` would be added for `series` now: `Ok(true)` if so,
    /// `Ok(false)` for a duplicate of the series' newest, or the error an
    /// add would give.
    pub(crate) fn validate(&self, series: &Labels, e: &Exemplar) -> Result<bool, StorageError> {
        if self.cap == 0 {
            return Err(StorageError::ExemplarStorageDisabled);
        }
        check_labels(e)?;
        let mut ring = self.ring.lock();
        let res = ring.check_order(series, e);
        if matches!(res, Err(StorageError::OutOfOrderExemplar { .. })) {
            ring.out_of_order += 1;
        }
        res
    }

    /// Adds `e` for `series` (see the module contracts); `Ok(false)` when it
    /// was a duplicate and nothing changed.
    pub(crate) fn add(&self, series: &Labels, e: Exemplar) -> Result<bool, StorageError> {
        if self.cap == 0 {
            return Err(StorageError::ExemplarStorageDisabled);
        }
        check_labels(&e)?;
        let mut ring = self.ring.lock();
        match ring.check_order(series, &e) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(err) => {
                if matches!(err, StorageError::OutOfOrderExemplar { .. }) {
                    ring.out_of_order += 1;
                }
                return Err(err);
            }
        }
        ring.insert(self.cap, series, e);
        ring.appended += 1;
        Ok(true)
    }

    /// Counts an exemplar refused as out of order before it reached the
    /// store (against one an appender staged).
    pub(crate) fn count_out_of_order(&self) {
        self.ring.lock().out_of_order += 1;
    }

    /// Every exemplar held, oldest first, with its series.
    pub(crate) fn all(&self) -> Vec<(Labels, Exemplar)> {
        let ring = self.ring.lock();
        let n = ring.slots.len();
        // Once full, the oldest is at `next`; before, at 0.
        let start = if n == self.cap { ring.next } else { 0 };
        (0..n)
            .filter_map(|i| ring.slots.get((start + i) % n.max(1)))
            .map(|s| (s.series.clone(), s.e.clone()))
            .collect()
    }

    /// See the module contracts.
    pub(crate) fn select(
        &self,
        start: i64,
        end: i64,
        selectors: &[Vec<Matcher>],
    ) -> Vec<SeriesExemplars> {
        let ring = self.ring.lock();
        let mut out: Vec<SeriesExemplars> = Vec::new();
        for (series, chain) in &ring.index {
            let hit = selectors.iter().any(|ms| {
                ms.iter()
                    .all(|m| m.matches(series.get(&m.name).unwrap_or("")))
            });
            if !hit {
                continue;
            }
            let mut exemplars = Vec::new();
            let mut at = chain.oldest;
            while let Some(s) = ring.slots.get(at) {
                if s.e.ts > end {
                    break;
                }
                if s.e.ts >= start {
                    exemplars.push(s.e.clone());
                }
                at = s.next;
            }
            if !exemplars.is_empty() {
                out.push(SeriesExemplars {
                    labels: series.clone(),
                    exemplars,
                });
            }
        }
        drop(ring);
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    pub(crate) fn stats(&self) -> ExemplarStats {
        let ring = self.ring.lock();
        ExemplarStats {
            max_exemplars: self.cap as u64,
            exemplars: ring.slots.len() as u64,
            series: ring.index.len() as u64,
            appended_total: ring.appended,
            out_of_order_total: ring.out_of_order,
        }
    }

    /// Bytes the store asked the allocator for (slots, index, label sets
    /// of exemplars; series label sets are shared with the head).
    pub(crate) fn heap_bytes(&self) -> u64 {
        let ring = self.ring.lock();
        let labels: usize = ring.slots.iter().map(|s| s.e.labels.encoded_len()).sum();
        (ring.slots.capacity() * std::mem::size_of::<Slot>() + labels) as u64
            + cairn_storage::hash_table_bytes(
                ring.index.capacity(),
                std::mem::size_of::<(Labels, Chain)>(),
            )
    }
}

impl Ring {
    fn check_order(&self, series: &Labels, e: &Exemplar) -> Result<bool, StorageError> {
        let Some(newest) = self
            .index
            .get(series)
            .and_then(|c| self.slots.get(c.newest))
        else {
            return Ok(true);
        };
        if newest.e.same_as(e) {
            return Ok(false);
        }
        if e.ts <= newest.e.ts {
            return Err(StorageError::OutOfOrderExemplar { ts: e.ts });
        }
        Ok(true)
    }

    fn insert(&mut self, cap: usize, series: &Labels, e: Exemplar) {
        let slot = Slot {
            series: series.clone(),
            e,
            next: NONE,
        };
        let at = if self.slots.len() < cap {
            self.slots.push(slot);
            self.slots.len() - 1
        } else {
            let at = self.next;
            let Some(old) = self.slots.get_mut(at) else {
                return;
            };
            let old = std::mem::replace(old, slot);
            // The overwritten slot is the oldest of all, so the oldest of
            // its series: that series' chain now starts at its next.
            if old.next == NONE {
                self.index.remove(&old.series);
            } else if let Some(c) = self.index.get_mut(&old.series) {
                c.oldest = old.next;
            }
            at
        };
        self.next = (at + 1) % cap.max(1);
        match self.index.get_mut(series) {
            Some(c) => {
                let prev = c.newest;
                c.newest = at;
                if let Some(p) = self.slots.get_mut(prev) {
                    p.next = at;
                }
            }
            None => {
                self.index.insert(
                    series.clone(),
                    Chain {
                        oldest: at,
                        newest: at,
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::{labels, MatchType};

    fn ex(ts: i64, v: f64, trace: &str) -> Exemplar {
        Exemplar {
            labels: labels!("trace_id" => trace),
            value: v,
            ts,
        }
    }

    fn name_is(v: &str) -> Vec<Vec<Matcher>> {
        vec![vec![Matcher::new(MatchType::Equal, "__name__", v).unwrap()]]
    }

    #[test]
    fn keeps_order_skips_duplicates_refuses_older() {
        let s = ExemplarStore::new(10);
        let a = labels!("__name__" => "a");
        assert!(matches!(s.add(&a, ex(10, 1.0, "x")), Ok(true)));
        assert!(matches!(s.add(&a, ex(10, 1.0, "x")), Ok(false)));
        assert!(matches!(
            s.add(&a, ex(10, 2.0, "x")),
            Err(StorageError::OutOfOrderExemplar { ts: 10 })
        ));
        assert!(matches!(
            s.add(&a, ex(9, 2.0, "y")),
            Err(StorageError::OutOfOrderExemplar { ts: 9 })
        ));
        assert!(matches!(s.add(&a, ex(11, 2.0, "y")), Ok(true)));
        let got = s.select(i64::MIN, i64::MAX, &name_is("a"));
        assert_eq!(got.len(), 1);
        let ts: Vec<i64> = got[0].exemplars.iter().map(|e| e.ts).collect();
        assert_eq!(ts, vec![10, 11]);
        assert_eq!(s.stats().out_of_order_total, 2);
        assert_eq!(s.stats().appended_total, 2);
    }

    #[test]
    fn a_full_ring_overwrites_the_oldest_of_all() {
        let s = ExemplarStore::new(3);
        let a = labels!("__name__" => "a");
        let b = labels!("__name__" => "b");
        s.add(&a, ex(1, 1.0, "1")).unwrap();
        s.add(&b, ex(2, 2.0, "2")).unwrap();
        s.add(&a, ex(3, 3.0, "3")).unwrap();
        // Overwrites a@1.
        s.add(&b, ex(4, 4.0, "4")).unwrap();
        // Overwrites b@2.
        s.add(&b, ex(5, 5.0, "5")).unwrap();
        // Overwrites a@3: a has none left.
        s.add(&b, ex(6, 6.0, "6")).unwrap();
        let st = s.stats();
        assert_eq!((st.exemplars, st.series), (3, 1));
        assert!(s.select(i64::MIN, i64::MAX, &name_is("a")).is_empty());
        let got = s.select(i64::MIN, i64::MAX, &name_is("b"));
        let ts: Vec<i64> = got[0].exemplars.iter().map(|e| e.ts).collect();
        assert_eq!(ts, vec![4, 5, 6]);
        let all: Vec<i64> = s.all().iter().map(|(_, e)| e.ts).collect();
        assert_eq!(all, vec![4, 5, 6]);
        // And a comes back.
        s.add(&a, ex(7, 7.0, "7")).unwrap();
        let all: Vec<i64> = s.all().iter().map(|(_, e)| e.ts).collect();
        assert_eq!(all, vec![5, 6, 7]);
        assert_eq!(s.stats().series, 2);
    }

    #[test]
    fn select_bounds_are_inclusive_and_series_sorted() {
        let s = ExemplarStore::new(100);
        let b = labels!("__name__" => "m", "job" => "b");
        let a = labels!("__name__" => "m", "job" => "a");
        for t in 1..=5 {
            s.add(&b, ex(t, t as f64, "t")).unwrap();
            s.add(&a, ex(t, t as f64, "t")).unwrap();
        }
        let got = s.select(2, 4, &name_is("m"));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].labels, a);
        assert_eq!(got[1].labels, b);
        let ts: Vec<i64> = got[1].exemplars.iter().map(|e| e.ts).collect();
        assert_eq!(ts, vec![2, 3, 4]);
        // Either selector may match.
        let mut sel = name_is("nope");
        sel.push(vec![Matcher::new(MatchType::Equal, "job", "b").unwrap()]);
        assert_eq!(s.select(0, 10, &sel).len(), 1);
        assert!(s.select(6, 10, &name_is("m")).is_empty());
    }

    #[test]
    fn disabled_and_long_labels_are_refused() {
        let a = labels!("__name__" => "a");
        assert!(matches!(
            ExemplarStore::new(0).add(&a, ex(1, 1.0, "x")),
            Err(StorageError::ExemplarStorageDisabled)
        ));
        let s = ExemplarStore::new(10);
        let long = "x".repeat(120);
        // 8 + 120 = 128 code points: allowed; one more is not.
        assert!(matches!(s.add(&a, ex(1, 1.0, &long)), Ok(true)));
        let longer = "é".repeat(121);
        assert!(matches!(
            s.add(&a, ex(2, 1.0, &longer)),
            Err(StorageError::ExemplarLabelsTooLong { len: 129 })
        ));
    }
}
