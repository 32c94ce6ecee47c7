//! Out-of-order native histograms of a head series.
//!
//! Why: Prometheus v3 takes histograms within the out-of-order window as it
//! takes floats, and a remote-write shard that lags behind its siblings, or
//! one catching up after an outage, sends histograms too. Refusing them
//! would lose them for good.
//!
//! Contracts:
//! - `HistData::ooo` is sorted by time, one histogram per timestamp; the
//!   first one at a timestamp stays: another value there is a conflict,
//!   dropped and counted as Prometheus drops it at commit.
//! - They are kept decoded (a series' out-of-order histograms are few and
//!   leave at the next head cut or late flush, see `late`), each with the
//!   append id of its commit; readers see those visible under isolation.
//! - They are logged to `wbl/` (Histograms and FloatHistograms records),
//!   never to the WAL, and follow the float out-of-order samples through
//!   truncation, deletion, late flushes and replay.
//! - An out-of-order histogram may share a timestamp with an in-order
//!   sample of the series: reads keep the in-order one.
//! - All time bounds are inclusive unless a function says otherwise.

use std::mem::size_of;
use std::sync::Arc;

use cairn_model::{FloatHistogram, Histogram};
use cairn_storage::{DecodedHistogram, StorageError};

use crate::hist::{same_value, HistValue};
use crate::isolation::IsoState;
use crate::series::{AppendBounds, Applied, Placement, SeriesData, Tx};

/// Heap bytes of a list of out-of-order histograms.
pub(crate) fn heap_bytes(v: &Vec<(i64, HistValue, u64)>) -> usize {
    let values: usize = v
        .iter()
        .map(|(_, h, _)| match h {
            HistValue::Int(h) => {
                size_of::<Histogram>()
                    + 8 * (h.positive_spans.len()
                        + h.negative_spans.len()
                        + h.positive_buckets.len()
                        + h.negative_buckets.len()
                        + h.custom_values.len())
            }
            HistValue::Float(h) => {
                size_of::<FloatHistogram>()
                    + 8 * (h.positive_spans.len()
                        + h.negative_spans.len()
                        + h.positive_buckets.len()
                        + h.negative_buckets.len()
                        + h.custom_values.len())
            }
        })
        .sum();
    v.capacity() * size_of::<(i64, HistValue, u64)>() + values
}

/// A histogram as queries read it: float form, and integer form if any.
fn decoded(t: i64, h: &HistValue) -> DecodedHistogram {
    match h {
        HistValue::Int(h) => (t, Arc::new(h.to_float()), Some(Arc::clone(h))),
        HistValue::Float(h) => (t, Arc::clone(h), None),
    }
}

impl SeriesData {
    /// Where a histogram that is not in order goes, the out-of-order window
    /// being on: too old for the window is refused; the timestamp of a
    /// held out-of-order histogram is a duplicate (same value) or a
    /// conflict; else out of order, or late when older than the last
    /// truncation (see `late`).
    pub(crate) fn hist_ooo_placement(
        &self,
        t: i64,
        h: &HistValue,
        b: &AppendBounds,
    ) -> Result<Placement, StorageError> {
        if t < b.head_max.saturating_sub(b.ooo_window) {
            return Err(StorageError::TooOldSample { t });
        }
        if let Some(d) = &self.hist {
            if let Ok(i) = d.ooo.binary_search_by_key(&t, |x| x.0) {
                let same = d.ooo.get(i).is_some_and(|x| same_value(&x.1, h));
                return Ok(if same {
                    Placement::Duplicate
                } else {
                    Placement::Conflict
                });
            }
        }
        Ok(if t < b.truncated_before {
            Placement::Late
        } else {
            Placement::Ooo
        })
    }

    /// Inserts an out-of-order histogram (the caller checked the window).
    pub(crate) fn insert_ooo_hist(&mut self, t: i64, h: &HistValue, tx: Tx) -> Applied {
        let mut applied = Applied::default();
        let d = self.hist.get_or_insert_with(Default::default);
        match d.ooo.binary_search_by_key(&t, |x| x.0) {
            Ok(i) => applied.conflict = d.ooo.get(i).is_some_and(|x| !same_value(&x.1, h)),
            Err(i) => {
                d.ooo.insert(i, (t, h.clone(), tx.id));
                applied.inserted = true;
            }
        }
        applied
    }

    /// Drops the out-of-order histograms in `[lo, hi)`; returns how many.
    pub(crate) fn drop_ooo_hist(&mut self, lo: i64, hi: i64) -> u64 {
        let Some(d) = self.hist.as_mut() else {
            return 0;
        };
        if lo >= hi {
            return 0;
        }
        let n = d.ooo.len();
        d.ooo.retain(|x| x.0 < lo || x.0 >= hi);
        let dropped = (n - d.ooo.len()) as u64;
        if d.ooo.is_empty() {
            d.ooo = Vec::new();
        }
        if d.is_empty() {
            self.hist = None;
        }
        dropped
    }

    /// Every out-of-order histogram at or after `from`, sorted.
    pub(crate) fn ooo_hists_from(&self, from: i64) -> Vec<(i64, HistValue)> {
        self.hist.as_ref().map_or_else(Vec::new, |d| {
            d.ooo
                .iter()
                .filter(|x| x.0 >= from)
                .map(|x| (x.0, x.1.clone()))
                .collect()
        })
    }

    /// The out-of-order histograms in `[mint, maxt]` visible under `iso`,
    /// sorted, as queries read them.
    pub(crate) fn ooo_hists_visible(
        &self,
        iso: &IsoState,
        mint: i64,
        maxt: i64,
    ) -> Vec<DecodedHistogram> {
        self.hist.as_ref().map_or_else(Vec::new, |d| {
            d.ooo
                .iter()
                .filter(|x| x.0 >= mint && x.0 <= maxt && iso.visible(x.2))
                .map(|x| decoded(x.0, &x.1))
                .collect()
        })
    }

    /// Out-of-order histograms held: how many, and the oldest and newest
    /// timestamps.
    pub(crate) fn ooo_hist_bounds(&self) -> Option<(usize, i64, i64)> {
        let d = self.hist.as_ref()?;
        let (first, last) = (d.ooo.first()?, d.ooo.last()?);
        Some((d.ooo.len(), first.0, last.0))
    }

    /// Appends `(t, t)` for each out-of-order histogram older than `below`
    /// (see `SeriesData::late_spans`).
    pub(crate) fn late_hist_spans(&self, below: i64, out: &mut Vec<(i64, i64)>) {
        if let Some(d) = &self.hist {
            for x in d.ooo.iter().take_while(|x| x.0 < below) {
                out.push((x.0, x.0));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn h(count: u64) -> HistValue {
        HistValue::Int(Arc::new(Histogram {
            count,
            zero_count: count,
            ..Default::default()
        }))
    }

    fn bounds() -> AppendBounds {
        AppendBounds {
            min_valid: 1000,
            truncated_before: 500,
            head_max: 2000,
            ooo_window: 1800,
        }
    }

    const TX: Tx = Tx {
        id: 1,
        low_watermark: 1,
    };

    #[test]
    fn placement_follows_the_window_and_held_histograms() {
        let mut d = SeriesData::default();
        let b = bounds();
        assert!(matches!(
            d.hist_ooo_placement(100, &h(1), &b),
            Err(StorageError::TooOldSample { t: 100 })
        ));
        assert_eq!(
            d.hist_ooo_placement(300, &h(1), &b).unwrap(),
            Placement::Late
        );
        assert_eq!(
            d.hist_ooo_placement(700, &h(1), &b).unwrap(),
            Placement::Ooo
        );
        assert!(d.insert_ooo_hist(700, &h(1), TX).inserted);
        assert_eq!(
            d.hist_ooo_placement(700, &h(1), &b).unwrap(),
            Placement::Duplicate
        );
        assert_eq!(
            d.hist_ooo_placement(700, &h(2), &b).unwrap(),
            Placement::Conflict
        );
        let a = d.insert_ooo_hist(700, &h(2), TX);
        assert!(!a.inserted && a.conflict);
    }

    #[test]
    fn inserts_stay_sorted_and_drops_take_a_half_open_range() {
        let mut d = SeriesData::default();
        for t in [50, 10, 30, 20, 40] {
            assert!(d.insert_ooo_hist(t, &h(t as u64), TX).inserted);
        }
        let ts: Vec<i64> = d.ooo_hists_from(i64::MIN).iter().map(|x| x.0).collect();
        assert_eq!(ts, vec![10, 20, 30, 40, 50]);
        assert_eq!(d.ooo_hist_bounds(), Some((5, 10, 50)));
        let mut spans = Vec::new();
        d.late_hist_spans(30, &mut spans);
        assert_eq!(spans, vec![(10, 10), (20, 20)]);
        assert_eq!(d.drop_ooo_hist(20, 40), 2);
        let ts: Vec<i64> = d.ooo_hists_from(15).iter().map(|x| x.0).collect();
        assert_eq!(ts, vec![40, 50]);
        assert_eq!(d.drop_ooo_hist(i64::MIN, i64::MAX), 3);
        assert!(d.hist.is_none(), "an emptied side store goes");
    }

    #[test]
    fn readers_see_committed_histograms_with_their_integer_form() {
        let iso = crate::isolation::Isolation::default();
        let id = iso.begin_append();
        let mut d = SeriesData::default();
        d.insert_ooo_hist(
            10,
            &h(3),
            Tx {
                id,
                low_watermark: iso.low_watermark(),
            },
        );
        let before = iso.reader();
        assert!(d.ooo_hists_visible(&before, 0, 100).is_empty());
        iso.release(&before);
        iso.close_append(id);
        let after = iso.reader();
        let v = d.ooo_hists_visible(&after, 0, 100);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0, 10);
        assert_eq!(v[0].1.count, 3.0);
        assert_eq!(v[0].2.as_ref().map(|i| i.count), Some(3));
        assert!(d.ooo_hists_visible(&after, 11, 100).is_empty());
        iso.release(&after);
    }
}
