//! Deduplication of HA replicas (`--query.replica-label`).
//!
//! Two Prometheus servers scraping the same targets differ only in a
//! replica label (`replica="a"` / `"b"`). A selection's series are
//! grouped by their labels without the replica labels; a group of one is
//! returned with those labels removed, a group of several as one series
//! built by Thanos's penalty algorithm: at each step every replica skips
//! to just after the last sample taken plus its penalty, and the earliest
//! sample wins. The replica that lost gets a penalty of twice the step
//! just taken (5 s before the first step), the winner none. So one
//! replica's samples are used while it has them; a gap longer than
//! about twice its interval is filled from another; samples of two
//! replicas are never interleaved at the full rate of both.
//!
//! Label names and values are answered without the replica labels.

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_model::{Labels, Matcher, Sample};
use cairn_storage::{DecodedHistogram, Querier, Queryable, SelectHints, Series, SeriesSet};

use crate::series::MaterializedSeries;

/// The penalty before a replica's first step (ms), as Thanos uses.
const INITIAL_PENALTY: i64 = 5_000;

/// A queryable whose answers merge replicas (module docs).
pub struct Dedup {
    inner: Arc<dyn Queryable>,
    labels: Vec<String>,
}

impl Dedup {
    /// Deduplicates `inner`'s series over the replica label names `labels`.
    pub fn new(inner: Arc<dyn Queryable>, labels: Vec<String>) -> Self {
        Self { inner, labels }
    }
}

impl Queryable for Dedup {
    fn querier(&self, mint: i64, maxt: i64) -> cairn_storage::Result<Box<dyn Querier + '_>> {
        Ok(Box::new(DedupQuerier {
            inner: self.inner.querier(mint, maxt)?,
            labels: self.labels.iter().map(String::as_str).collect(),
        }))
    }

    fn downsampled(&self) -> bool {
        self.inner.downsampled()
    }

    fn exemplars(
        &self,
        start: i64,
        end: i64,
        selectors: &[Vec<Matcher>],
    ) -> cairn_storage::Result<Vec<cairn_storage::SeriesExemplars>> {
        self.inner.exemplars(start, end, selectors)
    }
}

struct DedupQuerier<'a> {
    inner: Box<dyn Querier + 'a>,
    labels: Vec<&'a str>,
}

impl Querier for DedupQuerier<'_> {
    fn select<'a>(
        &'a self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> cairn_storage::Result<SeriesSet<'a>> {
        let mut groups: BTreeMap<Labels, Vec<MaterializedSeries>> = BTreeMap::new();
        for s in self.inner.select(hints, matchers)? {
            let s = s?;
            let key = s.labels().without(&self.labels);
            groups
                .entry(key)
                .or_default()
                .push(MaterializedSeries::read(&*s)?);
        }
        let out: Vec<MaterializedSeries> = groups
            .into_iter()
            .map(|(labels, reps)| {
                let (floats, hists) = merge_replicas(reps);
                MaterializedSeries {
                    labels,
                    floats,
                    hists,
                }
            })
            .filter(|s| !s.is_empty())
            .collect();
        Ok(Box::new(
            out.into_iter()
                .map(|s| Ok(Box::new(s) as Box<dyn Series + 'a>)),
        ))
    }

    fn label_names(&self, matchers: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        let mut names = self.inner.label_names(matchers)?;
        names.retain(|n| !self.labels.contains(&n.as_str()));
        Ok(names)
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        if self.labels.contains(&name) {
            return Ok(Vec::new());
        }
        self.inner.label_values(name, matchers)
    }
}

/// One point of a replica's time line.
#[derive(Clone)]
enum Point {
    F(f64),
    H(DecodedHistogram),
}

/// Merges replicas by the penalty algorithm (module docs).
pub(crate) fn merge_replicas(
    reps: Vec<MaterializedSeries>,
) -> (Vec<Sample>, Vec<DecodedHistogram>) {
    let lines: Vec<Vec<(i64, Point)>> = reps
        .into_iter()
        .map(|r| {
            let mut v: Vec<(i64, Point)> = r
                .floats
                .into_iter()
                .map(|s| (s.t, Point::F(s.v)))
                .chain(r.hists.into_iter().map(|h| (h.0, Point::H(h))))
                .collect();
            v.sort_by_key(|p| p.0);
            v
        })
        .collect();
    let mut penalty = vec![0i64; lines.len()];
    let mut last: Option<i64> = None;
    let (mut floats, mut hists) = (Vec::new(), Vec::new());
    loop {
        // Each replica's next candidate: its first point after the last
        // point taken plus its penalty.
        let mut best: Option<(i64, usize, usize)> = None;
        for (i, line) in lines.iter().enumerate() {
            let from = last.map_or(i64::MIN, |l| {
                l.saturating_add(1)
                    .saturating_add(penalty.get(i).copied().unwrap_or(0))
            });
            let at = line.partition_point(|p| p.0 < from);
            if let Some((t, _)) = line.get(at) {
                if best.is_none_or(|(bt, _, _)| *t < bt) {
                    best = Some((*t, i, at));
                }
            }
        }
        let Some((t, winner, at)) = best else { break };
        for (i, p) in penalty.iter_mut().enumerate() {
            *p = if i == winner {
                0
            } else {
                last.map_or(INITIAL_PENALTY, |l| 2 * (t - l))
            };
        }
        match lines.get(winner).and_then(|l| l.get(at)) {
            Some((_, Point::F(v))) => floats.push(Sample::new(t, *v)),
            Some((_, Point::H(h))) => hists.push(h.clone()),
            None => {}
        }
        last = Some(t);
    }
    (floats, hists)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::labels;

    fn rep(ts: &[i64], v: f64) -> MaterializedSeries {
        MaterializedSeries {
            labels: labels!("__name__" => "up"),
            floats: ts.iter().map(|&t| Sample::new(t, v)).collect(),
            hists: Vec::new(),
        }
    }

    #[test]
    fn one_replica_is_used_and_its_gap_filled_from_the_other() {
        // a: every 15 s; b: every 15 s, 7 s later, with a gap from 60 s to
        // 150 s. b's first sample is within a's initial penalty, so b is
        // the replica in use after the first step, as in Thanos.
        let a: Vec<i64> = (0..=300_000).step_by(15_000).collect();
        let b: Vec<i64> = (7_000..=300_000)
            .step_by(15_000)
            .filter(|t| !(60_001..150_000).contains(t))
            .collect();
        let (f, _) = merge_replicas(vec![rep(&a, 1.0), rep(&b, 2.0)]);
        let got: Vec<(i64, f64)> = f.iter().map(|s| (s.t, s.v)).collect();
        // Never both at full rate: no two samples less than 7 s apart and
        // about one sample per 15 s. A gap is filled after at most twice
        // the interval (the penalty), as in Thanos: no hole over 45 s.
        assert!(got.windows(2).all(|w| w[1].0 - w[0].0 >= 7_000), "{got:?}");
        assert!(
            (17..=22).contains(&got.len()),
            "{} samples: {got:?}",
            got.len()
        );
        assert!(got.windows(2).all(|w| w[1].0 - w[0].0 <= 45_000), "{got:?}");
        // b until its gap, then a, which stays in use (no flapping back).
        let b_until = got.iter().skip(1).take_while(|p| p.1 == 2.0).count();
        assert!(b_until >= 3, "{got:?}");
        assert!(got.iter().skip(1 + b_until).all(|p| p.1 == 1.0), "{got:?}");
        assert!(got.iter().any(|p| p.0 > 60_000 && p.0 < 150_000), "{got:?}");
    }

    #[test]
    fn identical_replicas_give_one() {
        let ts: Vec<i64> = (0..100_000).step_by(10_000).collect();
        let (f, _) = merge_replicas(vec![rep(&ts, 1.0), rep(&ts, 1.0), rep(&ts, 1.0)]);
        assert_eq!(f.iter().map(|s| s.t).collect::<Vec<_>>(), ts);
        let (f, _) = merge_replicas(vec![rep(&ts, 3.0)]);
        assert_eq!(f.len(), ts.len());
        assert!(merge_replicas(vec![]).0.is_empty());
    }
}
