//! Deleting samples from the head: the head side of Prometheus's admin
//! `delete_series`.
//!
//! Why physical deletion: the head rewrites the affected chunks at once
//! instead of keeping read-time tombstones, so queriers, block cutting and
//! snapshots (which all read through the querier) never see deleted samples
//! without knowing about deletion at all.
//!
//! Contracts:
//! - Intervals are inclusive `[mint, maxt]`. Each series' interval is first
//!   clamped to the series' own time span (as Prometheus does); series whose
//!   span does not meet the interval are not affected and not counted.
//! - The clamped intervals are logged as one WAL Tombstones record before
//!   any sample is removed, so a delete that returned survives a crash
//!   (replay applies the record where it stands in the WAL; see
//!   `replay.rs`). Because intervals end at the series' newest sample when
//!   the delete ran, samples appended afterwards are never hit on replay.
//! - A rewritten in-order chunk that came from the head chunk files is kept
//!   in memory: the file still holds the old bytes, which replay attaches
//!   again and the logged tombstone trims again. Chunks left empty are
//!   dropped; chunks untouched by the interval keep their bytes.
//! - The intervals applied to each live series are recorded, merged, and
//!   listed by [`Head::tombstones`]; WAL checkpoints keep the tombstone
//!   records of live series (with `maxt` at or after the checkpoint's
//!   `mint`).
//! - Known difference from Prometheus: when a delete removes a series'
//!   newest samples, later appends may again land in the deleted range
//!   (Prometheus keeps the deleted samples and would reject them as out of
//!   order).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use cairn_model::{Labels, Matcher, Sample};
use parking_lot::Mutex;

use crate::disk_chunks::DiskChunks;
use crate::error::Result;
use crate::head::Head;
use crate::index_adapter::postings_for_matchers;
use crate::series::{FullChunk, SeriesData, Stored};
use crate::wal_log::Record;
use crate::xor;

pub(crate) use cairn_wal::Stone;

/// Deleted intervals per series ref, each list sorted and merged.
#[derive(Debug, Default)]
pub(crate) struct Tombstones(Mutex<HashMap<u64, Vec<(i64, i64)>>>);

impl Tombstones {
    /// Records `[mint, maxt]` for series `r`.
    pub(crate) fn add(&self, r: u64, mint: i64, maxt: i64) {
        let mut g = self.0.lock();
        let iv = g.entry(r).or_default();
        iv.push((mint, maxt));
        *iv = merge(std::mem::take(iv));
    }

    /// Whether no deletion is recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.lock().is_empty()
    }

    /// Forgets series for which `alive` is false and intervals ending
    /// before `min_valid` (that data is gone from the head anyway).
    fn prune(&self, alive: impl Fn(u64) -> bool, min_valid: i64) {
        self.0.lock().retain(|r, iv| {
            iv.retain(|&(_, maxt)| maxt >= min_valid);
            !iv.is_empty() && alive(*r)
        });
    }
}

/// Sorts intervals and merges overlapping or adjacent ones (inclusive bounds).
pub(crate) fn merge(mut iv: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    iv.retain(|&(a, b)| a <= b);
    iv.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(iv.len());
    for (a, b) in iv {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Oldest timestamp a series holds, in order or not.
fn series_min_time(d: &SeriesData) -> Option<i64> {
    let a = d
        .full
        .first()
        .map(|c| c.mint)
        .or(d.open.as_ref().map(|o| o.mint));
    let b = d.ooo.as_ref().and_then(|o| {
        let x = o.buf.first().map(|s| s.0);
        let y = o.chunks.iter().map(|c| c.1).min();
        match (x, y) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    });
    let c = d.ooo_hist_bounds().map(|x| x.1);
    let h = d.hist.as_ref().and_then(|h| {
        h.full
            .first()
            .map(|c| c.mint)
            .or(h.open.as_ref().map(|o| o.mint))
    });
    [a, b, c, h].into_iter().flatten().min()
}

/// `[mint, maxt]` clamped to the time span of `d`; `None` when they do not meet.
pub(crate) fn clamp(d: &SeriesData, mint: i64, maxt: i64) -> Option<(i64, i64)> {
    let lo = series_min_time(d)?;
    let hi = d.max_time_all()?;
    let (a, b) = (mint.max(lo), maxt.min(hi));
    (a <= b).then_some((a, b))
}

fn outside(a: i64, b: i64) -> impl Fn(&Sample) -> bool {
    move |s| s.t < a || s.t > b
}

/// Removes the samples in `[a, b]` (inclusive) from `d`, a series `r`.
/// Returns the change in the number of chunks (zero or negative). On error
/// (a chunk could not be read or decoded) `d` is left unchanged.
pub(crate) fn apply(d: &mut SeriesData, r: u64, disk: &DiskChunks, a: i64, b: i64) -> Result<i64> {
    if a > b {
        return Ok(0);
    }
    let mut buf = Vec::new();
    // Decide every in-order rewrite before changing anything.
    let mut full_new: Vec<(usize, Option<FullChunk>)> = Vec::new();
    for (i, c) in d.full.iter().enumerate() {
        if c.maxt < a || c.mint > b {
            continue;
        }
        let bytes = match &c.stored {
            Stored::Disk(cr) => disk.read(r, *cr)?,
            Stored::Mem(m) => m.to_vec(),
        };
        xor::decode_into(&bytes, &mut buf, r)?;
        let n = buf.len();
        buf.retain(outside(a, b));
        if buf.len() == n {
            continue;
        }
        full_new.push((i, rewritten(&buf)));
    }
    let mut open_new = None;
    if let Some(o) = &d.open {
        if o.maxt() >= a && o.mint <= b {
            xor::decode_into(&o.to_bytes(disk)?, &mut buf, r)?;
            let n = buf.len();
            buf.retain(outside(a, b));
            if buf.len() != n {
                open_new = Some(buf.clone());
            }
        }
    }
    let mut ooo_new: Vec<(usize, Vec<Sample>)> = Vec::new();
    if let Some(o) = &d.ooo {
        for (i, (c, cmin, cmax)) in o.chunks.iter().enumerate() {
            if *cmax < a || *cmin > b {
                continue;
            }
            xor::decode_into(c.bytes(), &mut buf, r)?;
            let n = buf.len();
            buf.retain(outside(a, b));
            if buf.len() != n {
                ooo_new.push((i, buf.clone()));
            }
        }
    }
    let hist_new = match &d.hist {
        Some(h) => h.without(a, b, crate::hist::Store { disk, series: r })?,
        None => None,
    };

    // Nothing below fails: refreshing `last_v` only logs a read error.
    let mut delta = 0i64;
    if !full_new.is_empty() {
        let mut repl: HashMap<usize, Option<FullChunk>> = full_new.into_iter().collect();
        let old = std::mem::take(&mut d.full);
        for (i, c) in old.into_iter().enumerate() {
            match repl.remove(&i) {
                None => d.full.push(c),
                Some(Some(n)) => d.full.push(n),
                Some(None) => delta -= 1,
            }
        }
        d.full.shrink_to_fit();
    }
    if let Some((h, n)) = hist_new {
        delta += n;
        d.hist = (!h.is_empty()).then(|| Box::new(h));
    }
    let mut newest_changed = false;
    if let Some(samples) = open_new {
        newest_changed = true;
        match (samples.first(), samples.last()) {
            (Some(f), Some(_)) => {
                let mint = f.t;
                if let Some(o) = d.open.as_mut() {
                    o.release(disk);
                    o.chunk = xor::encode(&samples);
                    o.mint = mint;
                }
            }
            _ => {
                d.drop_open(disk);
                delta -= 1;
            }
        }
    }
    let mut drop_ooo = false;
    if let Some(o) = d.ooo.as_mut() {
        o.buf.retain(|s| s.0 < a || s.0 > b);
        if !ooo_new.is_empty() {
            let repl: HashMap<usize, Vec<Sample>> = ooo_new.into_iter().collect();
            let old = std::mem::take(&mut o.chunks);
            for (i, c) in old.into_iter().enumerate() {
                match repl.get(&i) {
                    None => o.chunks.push(c),
                    Some(s) => match (s.first(), s.last()) {
                        (Some(f), Some(l)) => o.chunks.push((xor::encode(s), f.t, l.t)),
                        _ => delta -= 1,
                    },
                }
            }
        }
        drop_ooo = o.buf.is_empty() && o.chunks.is_empty();
    }
    if drop_ooo {
        d.ooo = None;
    }
    d.drop_ooo_hist(a, b.saturating_add(1));
    // Keep the newest in-order value (used to judge a duplicate timestamp).
    if let Some(o) = &d.open {
        if let Some((_, v)) = o.chunk.last() {
            d.last_v = v;
        }
    } else if newest_changed || d.full.last().is_some_and(|c| c.maxt <= b) {
        if let Some(c) = d.full.last() {
            let got = match &c.stored {
                Stored::Disk(cr) => disk.read(r, *cr),
                Stored::Mem(m) => Ok(m.to_vec()),
            }
            .and_then(|bytes| xor::decode_into(&bytes, &mut buf, r));
            match (got, buf.last()) {
                (Ok(()), Some(s)) => d.last_v = s.v,
                (Ok(()), None) => {}
                (Err(e), _) => {
                    tracing::warn!(series = r, error = %e, "reading the newest chunk after a delete failed");
                }
            }
        }
    }
    Ok(delta)
}

/// The in-memory chunk holding `samples`, or `None` when there are none.
fn rewritten(samples: &[Sample]) -> Option<FullChunk> {
    let (f, l) = (samples.first()?, samples.last()?);
    Some(FullChunk {
        stored: Stored::mem(xor::encode(samples).bytes()),
        mint: f.t,
        maxt: l.t,
    })
}

impl Head {
    /// Deletes the samples in `[mint, maxt]` (inclusive) of every series
    /// matching all of `matchers` (every series when empty). Returns the
    /// number of series whose time span met the interval. The deletion is
    /// in the WAL before this returns; see the module docs.
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<u64> {
        if mint > maxt {
            return Ok(0);
        }
        // No truncation (which drops series and chunk files) meanwhile.
        let _g = self.truncating.lock();
        let refs = postings_for_matchers(&self.index, matchers)?;
        let mut hit = Vec::new();
        for r in refs.iter() {
            let Some(s) = self.series.get(r) else {
                continue;
            };
            let iv = clamp(&s.data.lock(), mint, maxt);
            if let Some((a, b)) = iv {
                hit.push((s, a, b));
            }
        }
        if hit.is_empty() {
            return Ok(0);
        }
        if let Some(wal) = &self.wal {
            let stones: Vec<Stone> = hit
                .iter()
                .map(|(s, a, b)| Stone {
                    r: s.r,
                    intervals: vec![(*a, *b)],
                })
                .collect();
            // Out-of-order samples are replayed from wbl/: the deletion
            // goes there too, in its place among them (see `late`).
            if let Some(wbl) = &self.wbl {
                wbl.log(&[Record::Tombstones(stones.clone())])?;
            }
            wal.log(&[Record::Tombstones(stones)])?;
        }
        let mut delta = 0i64;
        let mut first_err = None;
        for (s, a, b) in &hit {
            let res = apply(&mut s.data.lock(), s.r, &self.chunks, *a, *b);
            match res {
                Ok(d) => delta += d,
                Err(e) => {
                    tracing::error!(series = s.r, error = %e, "deleting head samples failed");
                    first_err.get_or_insert(e);
                    continue;
                }
            }
            self.tombstones.add(s.r, *a, *b);
        }
        self.num_chunks.fetch_add(delta, Ordering::AcqRel);
        self.tombstones.prune(
            |r| self.series.get(r).is_some(),
            self.min_valid.load(Ordering::Acquire),
        );
        match first_err {
            Some(e) => Err(e),
            None => Ok(hit.len() as u64),
        }
    }

    /// The deletions applied to live series since open (replayed ones
    /// included) that may still cover data the head holds: labels with
    /// sorted, merged inclusive intervals, sorted by labels.
    pub fn tombstones(&self) -> Vec<(Labels, Vec<(i64, i64)>)> {
        self.tombstones.prune(
            |r| self.series.get(r).is_some(),
            self.min_valid.load(Ordering::Acquire),
        );
        let g = self.tombstones.0.lock();
        let mut out: Vec<(Labels, Vec<(i64, i64)>)> = g
            .iter()
            .filter_map(|(r, iv)| Some((self.series.get(*r)?.labels.clone(), iv.clone())))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn merge_joins_overlapping_and_adjacent() {
        assert_eq!(
            merge(vec![(10, 20), (1, 3), (4, 5), (19, 30), (40, 39), (50, 50)]),
            vec![(1, 5), (10, 30), (50, 50)]
        );
        assert_eq!(
            merge(vec![(i64::MIN, i64::MAX), (0, 1)]),
            vec![(i64::MIN, i64::MAX)]
        );
    }

    proptest! {
        #[test]
        fn merge_covers_exactly_the_union(iv in proptest::collection::vec((0i64..200, 0i64..40), 0..12)) {
            let iv: Vec<(i64, i64)> = iv.into_iter().map(|(a, w)| (a, a + w)).collect();
            let m = merge(iv.clone());
            for w in m.windows(2) {
                prop_assert!(w[0].1 + 1 < w[1].0, "sorted, disjoint, not adjacent: {:?}", m);
            }
            for t in -1..=241 {
                let want = iv.iter().any(|&(a, b)| a <= t && t <= b);
                let got = m.iter().any(|&(a, b)| a <= t && t <= b);
                prop_assert_eq!(want, got, "t={}", t);
            }
        }
    }
}
