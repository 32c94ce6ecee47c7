//! The head's appender: stages samples, then on commit logs them to the WAL
//! and applies them to the series.
//!
//! Staging checks each sample against the series as committed plus what
//! this appender staged before, and reports Prometheus's errors at once.
//! Commit logs, in one WAL write, a Series record for every series whose
//! record is not in the WAL yet, then the Samples and Metadata records; only
//! after that write returns are samples applied and made visible (all of a
//! commit becomes visible at once, see [`crate::isolation`]). A sample that
//! a concurrent commit made invalid in between is dropped at apply time, as
//! Prometheus does (replay may keep it when the two commits reached the WAL
//! in the other order).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use cairn_model::Labels;
use cairn_storage::{Appendable, Appender, Metadata, MetricType, Result, SeriesRef, StorageError};

use crate::error::HeadError;
use crate::head::Head;
use crate::series::{MemSeries, Placement, Tx};
use crate::stripes::MixMap;
use crate::wal_log::{Record, RefMetadata, RefSample, RefSeries};

struct Staged {
    series: Arc<MemSeries>,
    /// Newest staged sample of the series, if any.
    last: Option<(i64, f64)>,
}

/// Series and samples an appender has room for before growing.
const STAGED_CAPACITY: usize = 2048;

/// A batch of appends to the head.
pub(crate) struct HeadAppender<'a> {
    head: &'a Head,
    /// Pinned series this appender touched, by ref.
    staged: MixMap<u64, Staged>,
    samples: Vec<RefSample>,
    meta: Vec<(u64, Metadata)>,
    min_valid: i64,
}

impl Appendable for Head {
    fn appender(&self) -> Box<dyn Appender + '_> {
        // Sized for a remote-write request (2000 samples by default), so
        // the maps do not rehash while it is appended.
        Box::new(HeadAppender {
            head: self,
            staged: MixMap::with_capacity_and_hasher(STAGED_CAPACITY, Default::default()),
            samples: Vec::with_capacity(STAGED_CAPACITY),
            meta: Vec::new(),
            min_valid: self.appendable_min_valid_time(),
        })
    }
}

/// Prometheus's WAL encoding of metric types.
pub(crate) fn metric_type_to_wal(t: MetricType) -> u8 {
    match t {
        MetricType::Unknown => 0,
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Histogram => 3,
        MetricType::GaugeHistogram => 4,
        MetricType::Summary => 5,
        MetricType::Info => 6,
        MetricType::StateSet => 7,
    }
}

/// Inverse of [`metric_type_to_wal`]; unknown codes read as `Unknown`.
pub(crate) fn metric_type_from_wal(b: u8) -> MetricType {
    match b {
        1 => MetricType::Counter,
        2 => MetricType::Gauge,
        3 => MetricType::Histogram,
        4 => MetricType::GaugeHistogram,
        5 => MetricType::Summary,
        6 => MetricType::Info,
        7 => MetricType::StateSet,
        _ => MetricType::Unknown,
    }
}

impl HeadAppender<'_> {
    /// The staged entry of the series `r`/`labels`, pinning it on first use.
    fn series_for(&mut self, r: SeriesRef, labels: &Labels) -> Result<u64> {
        if r != 0 {
            if let Some(st) = self.staged.get(&r) {
                if labels.is_empty() || st.series.labels == *labels {
                    return Ok(r);
                }
            }
            if let Some(s) = self.head.series.get_pinned(r) {
                if labels.is_empty() || s.labels == *labels {
                    return Ok(self.remember(s));
                }
                s.unpin();
            }
        }
        if labels.is_empty() {
            return Err(HeadError::EmptyLabels.into());
        }
        let (s, _) = self.head.get_or_create_pinned(labels);
        Ok(self.remember(s))
    }

    /// Records a pinned series; unpins it again if already recorded.
    fn remember(&mut self, s: Arc<MemSeries>) -> u64 {
        let r = s.r;
        match self.staged.entry(r) {
            std::collections::hash_map::Entry::Occupied(_) => s.unpin(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Staged {
                    series: s,
                    last: None,
                });
            }
        }
        r
    }

    fn release(&mut self) {
        for (_, st) in self.staged.drain() {
            st.series.unpin();
        }
        self.samples.clear();
        self.meta.clear();
    }

    /// Applies the staged samples under append id `id`; returns how many
    /// were dropped because a concurrent commit invalidated them.
    fn apply(&self, id: u64) -> usize {
        let head = self.head;
        let policy = head.policy();
        let tx = Tx {
            id,
            low_watermark: head.iso.low_watermark(),
        };
        let mut dropped = 0usize;
        let mut chunks = 0i64;
        let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
        let mut i = 0;
        while let Some(first) = self.samples.get(i) {
            let r = first.r;
            let Some(st) = self.staged.get(&r) else {
                i += 1;
                continue;
            };
            let mut d = st.series.data.lock();
            // Apply this series' consecutive samples under one lock.
            while let Some(s) = self.samples.get(i).filter(|s| s.r == r) {
                i += 1;
                let mut b = head.bounds();
                // In-order bound as of the appender's creation, as in Prometheus.
                b.min_valid = self.min_valid.max(b.truncated_before);
                match d.placement(s.t, s.v, &b, None) {
                    Ok(Placement::InOrder) => {
                        let a = d.append_in_order(r, s.t, s.v, tx, &policy, &head.chunks);
                        chunks += a.chunks_created as i64;
                    }
                    Ok(Placement::Ooo) => {
                        let a = d.insert_ooo(s.t, s.v, tx, &policy);
                        chunks += a.chunks_created as i64;
                    }
                    Ok(Placement::Duplicate) => continue,
                    Err(e) => {
                        tracing::debug!(series = r, error = %e, "sample dropped at commit");
                        dropped += 1;
                        continue;
                    }
                }
                mint = mint.min(s.t);
                if s.t > maxt {
                    maxt = s.t;
                    // Keep the head's max current so later samples of this
                    // commit are judged against it (out-of-order window).
                    // Only when this commit's max grows: a shared atomic
                    // update per sample makes concurrent commits contend.
                    head.widen(s.t, s.t);
                }
            }
        }
        head.num_chunks.fetch_add(chunks, Ordering::AcqRel);
        head.widen(mint, maxt);
        dropped
    }

    fn do_commit(&mut self) -> Result<()> {
        let head = self.head;
        if self.samples.is_empty() && self.meta.is_empty() {
            return Ok(());
        }
        let new_series: Vec<RefSeries> = self
            .staged
            .values()
            .filter(|st| !st.series.logged.load(Ordering::Acquire))
            .map(|st| RefSeries {
                r: st.series.r,
                labels: st.series.labels.clone(),
            })
            .collect();
        if let Some(wal) = &head.wal {
            let mut recs = Vec::with_capacity(3);
            if !new_series.is_empty() {
                let mut v = new_series.clone();
                v.sort_by_key(|s| s.r);
                recs.push(Record::Series(v));
            }
            if !self.samples.is_empty() {
                // Lent to the record and taken back below: no copy.
                recs.push(Record::Samples(std::mem::take(&mut self.samples)));
            }
            if !self.meta.is_empty() {
                recs.push(Record::Metadata(
                    self.meta
                        .iter()
                        .map(|(r, m)| RefMetadata {
                            r: *r,
                            kind: metric_type_to_wal(m.kind),
                            unit: m.unit.clone(),
                            help: m.help.clone(),
                        })
                        .collect(),
                ));
            }
            let logged = wal.log(&recs);
            for r in recs {
                if let Record::Samples(v) = r {
                    self.samples = v;
                }
            }
            logged?;
        }
        for s in &new_series {
            if let Some(st) = self.staged.get(&s.r) {
                st.series.logged.store(true, Ordering::Release);
            }
        }
        let id = head.iso.begin_append();
        let dropped = self.apply(id);
        head.iso.close_append(id);
        if dropped > 0 {
            tracing::debug!(dropped, "samples invalidated by concurrent commits");
        }
        if !self.meta.is_empty() {
            let mut g = head.metadata.write();
            for (r, m) in &self.meta {
                if let Some(name) = self
                    .staged
                    .get(r)
                    .and_then(|st| st.series.labels.metric_name())
                {
                    g.insert(name.to_owned(), m.clone());
                }
            }
        }
        Ok(())
    }
}

impl Appender for HeadAppender<'_> {
    fn append(&mut self, r: SeriesRef, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef> {
        if self.head.opts.ooo_window == 0 && t < self.min_valid {
            return Err(StorageError::OutOfBounds {
                t,
                min_valid: self.min_valid,
            });
        }
        let r = self.series_for(r, labels)?;
        let Some(st) = self.staged.get_mut(&r) else {
            return Err(StorageError::SeriesNotFound { series: r });
        };
        let mut b = self.head.bounds();
        b.min_valid = b.min_valid.max(self.min_valid);
        let p = st.series.data.lock().placement(t, v, &b, st.last)?;
        if p == Placement::Duplicate {
            return Ok(r);
        }
        if p == Placement::InOrder {
            st.last = Some((t, v));
        }
        self.samples.push(RefSample { r, t, v });
        Ok(r)
    }

    fn update_metadata(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        meta: &Metadata,
    ) -> Result<SeriesRef> {
        let r = self.series_for(r, labels)?;
        self.meta.push((r, meta.clone()));
        Ok(r)
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        let res = self.do_commit();
        self.release();
        res
    }

    fn rollback(mut self: Box<Self>) -> Result<()> {
        self.release();
        Ok(())
    }
}

impl Drop for HeadAppender<'_> {
    fn drop(&mut self) {
        self.release();
    }
}
