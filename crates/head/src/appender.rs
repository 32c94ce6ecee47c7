//! The head's appender: stages samples, then on commit logs them to the WAL
//! and applies them to the series.
//!
//! Staging checks each sample against the series as committed plus what
//! this appender staged before, and reports Prometheus's errors at once.
//! Commit logs, in one WAL write, a Series record for every series whose
//! record is not in the WAL yet, then the Samples, Metadata and Exemplars
//! records; only
//! after that write returns are samples applied and made visible (all of a
//! commit becomes visible at once, see [`crate::isolation`]). A sample that
//! a concurrent commit made invalid in between is dropped at apply time, as
//! Prometheus does (replay may keep it when the two commits reached the WAL
//! in the other order). Exemplars are checked when staged (duplicates of a
//! series' newest are skipped, older ones refused) and added to the
//! exemplar store after the samples; one a concurrent commit made out of
//! order in between is dropped there.
//!
//! Speed: the cost per sample is mostly cache misses on series memory (a
//! remote-write request touches about 2000 different series). Staged series
//! sit in a vector, found by ref through one small map, and every staged
//! sample records its series' index, so commit looks nothing up.
//! [`Appender::append_batch`] prefetches, some samples ahead, the lock
//! stripe and then the series each sample will touch, and commit prefetches
//! each series and the tail of its open chunk (noted while staging) before
//! applying to it, so the misses of nearby samples overlap.

use std::collections::hash_map::Entry;
use std::sync::atomic::Ordering;

use std::sync::Arc;

use cairn_model::{Exemplar, FloatHistogram, Histogram, Labels};
use cairn_storage::{Appendable, Appender, Metadata, Result, SeriesRef, StorageError};

use crate::error::HeadError;
use crate::head::Head;
use crate::hist::HistValue;
use crate::series::{prefetch_line, AppendBounds, Placement, Tx};
use crate::stripes::{MixMap, Pinned};
use crate::wal_log::{Record, RefExemplar, RefMetadata, RefSample, RefSeries};

struct Staged<'a> {
    series: Pinned<'a>,
    /// Newest staged sample of the series, if any.
    last: Option<(i64, f64)>,
    /// Timestamp of the newest staged histogram of the series, if any.
    last_hist: Option<i64>,
    /// Where the series' next in-order sample was to be written when last
    /// staged (see `SeriesData::append_hint`), prefetched before applying.
    tail: usize,
}

/// Series and samples an appender has room for before growing.
const STAGED_CAPACITY: usize = 2048;

/// How many samples ahead [`Appender::append_batch`] and commit prefetch
/// the series they will touch.
const AHEAD: usize = 8;

/// A batch of appends to the head.
pub(crate) struct HeadAppender<'a> {
    head: &'a Head,
    /// Pinned series this appender touched, in order of first use.
    staged: Vec<Staged<'a>>,
    /// Ref to index into `staged`.
    index: MixMap<u64, u32>,
    samples: Vec<RefSample>,
    /// Index into `staged` of each sample's series (parallel to `samples`).
    owners: Vec<u32>,
    meta: Vec<(u64, Metadata)>,
    /// Metadata by metric name alone for which the head has no series yet
    /// (kept in memory, not logged: see `update_metadata`).
    name_meta: Vec<(String, Metadata)>,
    /// Staged exemplars with the index into `staged` of their series.
    exemplars: Vec<(u32, Exemplar)>,
    /// Out-of-order samples, late or inside the head's range (see `late`):
    /// logged to `wbl/` only, never to the WAL, and the index into
    /// `staged` of each one's series.
    ooo: Vec<RefSample>,
    ooo_owners: Vec<u32>,
    /// Staged native histograms: the index into `staged` of their series,
    /// and how many float samples were staged before them (a commit
    /// applies both kinds in the order they were staged).
    hists: Vec<StagedHist>,
    /// Out-of-order native histograms (see `hist_ooo`): logged to `wbl/`
    /// only, applied with the out-of-order floats.
    ooo_hists: Vec<StagedHist>,
    min_valid: i64,
}

impl Appendable for Head {
    fn appender(&self) -> Box<dyn Appender + '_> {
        // Sized for a remote-write request (2000 samples by default), so
        // nothing grows while it is appended.
        Box::new(HeadAppender {
            head: self,
            staged: Vec::with_capacity(STAGED_CAPACITY),
            index: MixMap::with_capacity_and_hasher(STAGED_CAPACITY, Default::default()),
            samples: Vec::with_capacity(STAGED_CAPACITY),
            owners: Vec::with_capacity(STAGED_CAPACITY),
            meta: Vec::new(),
            name_meta: Vec::new(),
            exemplars: Vec::new(),
            ooo: Vec::new(),
            ooo_owners: Vec::new(),
            hists: Vec::new(),
            ooo_hists: Vec::new(),
            min_valid: self.appendable_min_valid_time(),
        })
    }
}

impl<'a> HeadAppender<'a> {
    /// The index in `staged` of the series `r`/`labels`, pinning it on
    /// first use.
    fn series_for(&mut self, r: SeriesRef, labels: &Labels) -> Result<usize> {
        self.find_series(r, labels, true)
    }

    /// [`Self::series_for`]; with `create` false, a series the head does
    /// not hold is [`StorageError::SeriesNotFound`] instead of created.
    fn find_series(&mut self, r: SeriesRef, labels: &Labels, create: bool) -> Result<usize> {
        if r != 0 {
            match self.index.entry(r) {
                Entry::Occupied(e) => {
                    let i = *e.get() as usize;
                    if self
                        .staged
                        .get(i)
                        .is_some_and(|st| labels.is_empty() || st.series.labels == *labels)
                    {
                        return Ok(i);
                    }
                }
                Entry::Vacant(e) => {
                    if let Some(s) = self.head.series.get_pinned(r) {
                        if labels.is_empty() || s.labels == *labels {
                            return Ok(stage(&mut self.staged, e, s));
                        }
                        drop(s);
                    }
                }
            }
        }
        if labels.is_empty() {
            return Err(HeadError::EmptyLabels.into());
        }
        let limited = self.head.opts.max_series > 0 || self.head.opts.max_series_per_metric > 0;
        if !create || limited {
            if let Some(s) = self.head.series.get_pinned_by_labels(labels) {
                return Ok(self.remember(s));
            }
            if !create {
                return Err(StorageError::SeriesNotFound { series: r });
            }
            self.head.check_series_limits(labels)?;
        }
        let (s, _) = self.head.get_or_create_pinned(labels);
        // SAFETY: `get_or_create_pinned` returns a series of the head's
        // maps, pinned for us.
        let s = unsafe { self.head.series.adopt(s) };
        Ok(self.remember(s))
    }

    /// Records a pinned series; unpins it again (drops it) if already recorded.
    fn remember(&mut self, s: Pinned<'a>) -> usize {
        match self.index.entry(s.r) {
            Entry::Occupied(e) => *e.get() as usize,
            Entry::Vacant(e) => stage(&mut self.staged, e, s),
        }
    }

    fn release(&mut self) {
        // Dropping unpins.
        self.staged.clear();
        self.index.clear();
        self.samples.clear();
        self.owners.clear();
        self.meta.clear();
        self.name_meta.clear();
        self.exemplars.clear();
        self.ooo.clear();
        self.ooo_owners.clear();
        self.hists.clear();
        self.ooo_hists.clear();
    }

    /// The head's bounds for applying: the in-order bound as of the
    /// appender's creation, as in Prometheus.
    fn apply_bounds(&self) -> AppendBounds {
        let mut b = self.head.bounds();
        b.min_valid = self.min_valid.max(b.truncated_before);
        b
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
        let mut b = self.apply_bounds();
        let mut moved: Vec<(u32, RefSample)> = Vec::new();
        let mut moved_hists: Vec<&StagedHist> = Vec::new();
        let mut i = 0;
        // The next staged histogram: applied when the floats staged
        // before it are.
        let mut j = 0;
        // Applies the histograms staged before float sample `$i`.
        macro_rules! hists_before {
            ($i:expr) => {
                while let Some(x) = self.hists.get(j).filter(|x| x.after <= $i) {
                    j += 1;
                    match self.apply_hist(x, tx, &policy, &b) {
                        HistApplied::InOrder(n) => {
                            chunks += n as i64;
                            mint = mint.min(x.t);
                            if x.t > maxt {
                                maxt = x.t;
                                head.widen(x.t, x.t);
                                b = self.apply_bounds();
                            }
                        }
                        HistApplied::Nothing => {}
                        HistApplied::Moved => moved_hists.push(x),
                        HistApplied::Dropped => dropped += 1,
                    }
                }
            };
        }
        while let (Some(first), Some(&owner)) = (self.samples.get(i), self.owners.get(i)) {
            hists_before!(i);
            let r = first.r;
            if let Some(&ahead) = self.owners.get(i + AHEAD) {
                if let Some(st) = self.staged.get(ahead as usize) {
                    let w = head.series.write_prefetch;
                    st.series.prefetch(w);
                    prefetch_line(st.tail as *const u8, w);
                }
            }
            let Some(st) = self.staged.get(owner as usize) else {
                i += 1;
                continue;
            };
            let mut d = st.series.data.lock();
            // Apply this series' consecutive samples under one lock.
            while let Some(s) = self.samples.get(i).filter(|_| {
                self.owners.get(i) == Some(&owner) && self.hists.get(j).is_none_or(|x| x.after > i)
            }) {
                i += 1;
                match d.placement(s.t, s.v, &b, None) {
                    Ok(Placement::InOrder) => {
                        let a = d.append_in_order(r, s.t, s.v, tx, &policy, &head.chunks);
                        chunks += a.chunks_created as i64;
                    }
                    // Staged in order, out of order now (a concurrent
                    // commit went first): inserted below, with the rest.
                    Ok(Placement::Ooo) => {
                        moved.push((owner, *s));
                        continue;
                    }
                    Ok(Placement::Duplicate) => continue,
                    Ok(Placement::Conflict) => {
                        head.note_conflict();
                        continue;
                    }
                    // Staged inside the head's range, which a truncation
                    // cut since: it is in the WAL, not in `wbl/`.
                    Ok(Placement::Late) => {
                        tracing::debug!(
                            series = r,
                            t = s.t,
                            "sample dropped at commit: its range was cut"
                        );
                        dropped += 1;
                        continue;
                    }
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
                    b = self.apply_bounds();
                }
            }
        }
        hists_before!(usize::MAX);
        // Out-of-order samples under the flush lock, so that a flush never
        // drops one it did not write.
        let (mut held, mut late, mut ooo_min) = (0u64, 0u64, i64::MAX);
        if !self.ooo.is_empty()
            || !moved.is_empty()
            || !self.ooo_hists.is_empty()
            || !moved_hists.is_empty()
        {
            // Taken by `do_commit` already when this commit logged
            // out-of-order data.
            let _flush =
                (self.ooo.is_empty() && self.ooo_hists.is_empty()).then(|| head.late.lock.read());
            let below = head.truncated_before();
            // The window as of now: staging judged against the committed
            // head max, which this commit may have moved.
            let oldest = if head.opts.ooo_window > 0 {
                head.max_time().saturating_sub(head.opts.ooo_window)
            } else {
                i64::MIN
            };
            let all = self
                .ooo
                .iter()
                .zip(&self.ooo_owners)
                .map(|(s, o)| (*o, *s))
                .chain(moved);
            for (owner, s) in all {
                let Some(st) = self.staged.get(owner as usize) else {
                    continue;
                };
                if s.t < oldest {
                    tracing::debug!(
                        series = s.r,
                        t = s.t,
                        "out-of-order sample dropped at commit: too old"
                    );
                    dropped += 1;
                    continue;
                }
                let a = st.series.data.lock().insert_ooo(s.t, s.v, tx, &policy);
                chunks += a.chunks_created as i64;
                if a.conflict {
                    head.note_conflict();
                }
                if a.inserted {
                    held += 1;
                    late += u64::from(s.t < below);
                    ooo_min = ooo_min.min(s.t);
                }
            }
            for x in self.ooo_hists.iter().chain(moved_hists) {
                let Some(st) = self.staged.get(x.owner as usize) else {
                    continue;
                };
                if x.t < oldest {
                    tracing::debug!(
                        series = st.series.r,
                        t = x.t,
                        "out-of-order histogram dropped at commit: too old"
                    );
                    dropped += 1;
                    continue;
                }
                let a = st.series.data.lock().insert_ooo_hist(x.t, &x.h, tx);
                if a.conflict {
                    head.note_conflict();
                }
                if a.inserted {
                    held += 1;
                    late += u64::from(x.t < below);
                    ooo_min = ooo_min.min(x.t);
                }
            }
        }
        if held > 0 {
            head.widen(ooo_min, ooo_min);
        }
        head.note_ooo(held, late);
        head.num_chunks.fetch_add(chunks, Ordering::AcqRel);
        head.widen(mint, maxt);
        dropped
    }

    fn do_commit(&mut self) -> Result<()> {
        let head = self.head;
        if !self.name_meta.is_empty() {
            let mut g = head.metadata.write();
            for (name, m) in self.name_meta.drain(..) {
                g.insert(name, m);
            }
        }
        if self.samples.is_empty()
            && self.meta.is_empty()
            && self.exemplars.is_empty()
            && self.ooo.is_empty()
            && self.hists.is_empty()
            && self.ooo_hists.is_empty()
        {
            return Ok(());
        }
        // A flush must not miss out-of-order samples logged before it
        // began: such commits log and apply under this lock, a flush takes
        // it alone.
        let _flush =
            (!self.ooo.is_empty() || !self.ooo_hists.is_empty()).then(|| head.late.lock.read());
        let new_series: Vec<&Staged> = self
            .staged
            .iter()
            .filter(|st| !st.series.logged.load(Ordering::Acquire))
            .collect();
        if let Some(wal) = &head.wal {
            let mut recs = Vec::with_capacity(4);
            if !new_series.is_empty() {
                let mut v: Vec<RefSeries> = new_series
                    .iter()
                    .map(|st| RefSeries {
                        r: st.series.r,
                        labels: st.series.labels.clone(),
                    })
                    .collect();
                v.sort_by_key(|s| s.r);
                recs.push(Record::Series(v));
            }
            if self.hists.is_empty() {
                if !self.samples.is_empty() {
                    // Lent to the record and taken back below: no copy.
                    recs.push(Record::Samples(std::mem::take(&mut self.samples)));
                }
            } else {
                // Floats and histograms in the order they were staged, so
                // that replay applies them as the commit does.
                let mut from = 0;
                let mut k = 0;
                while k < self.hists.len() {
                    let at = self.hists.get(k).map_or(usize::MAX, |x| x.after);
                    let run = self
                        .hists
                        .get(k..)
                        .map_or(0, |rest| rest.iter().take_while(|x| x.after == at).count());
                    if let Some(part) = self.samples.get(from..at.min(self.samples.len())) {
                        if !part.is_empty() {
                            recs.push(Record::Samples(part.to_vec()));
                        }
                    }
                    from = at.min(self.samples.len()).max(from);
                    if let Some(part) = self.hists.get(k..k + run) {
                        recs.extend(hist_records(part, &self.staged));
                    }
                    k += run.max(1);
                }
                if let Some(part) = self.samples.get(from..) {
                    if !part.is_empty() {
                        recs.push(Record::Samples(part.to_vec()));
                    }
                }
            }
            if !self.meta.is_empty() {
                recs.push(Record::Metadata(
                    self.meta
                        .iter()
                        .map(|(r, m)| RefMetadata {
                            r: *r,
                            kind: m.kind.code(),
                            unit: m.unit.clone(),
                            help: m.help.clone(),
                        })
                        .collect(),
                ));
            }
            if !self.exemplars.is_empty() {
                recs.push(Record::Exemplars(
                    self.exemplars
                        .iter()
                        .filter_map(|(i, e)| {
                            let st = self.staged.get(*i as usize)?;
                            Some(RefExemplar {
                                r: st.series.r,
                                t: e.ts,
                                v: e.value,
                                labels: e.labels.clone(),
                            })
                        })
                        .collect(),
                ));
            }
            let logged = wal.log(&recs);
            if self.hists.is_empty() {
                for r in recs {
                    if let Record::Samples(v) = r {
                        self.samples = v;
                    }
                }
            }
            logged?;
            if let Some(wbl) = &head.wbl {
                if !self.ooo.is_empty() {
                    let rec = [Record::Samples(std::mem::take(&mut self.ooo))];
                    let logged = wbl.log(&rec);
                    if let [Record::Samples(v)] = rec {
                        self.ooo = v;
                    }
                    logged?;
                }
                if !self.ooo_hists.is_empty() {
                    wbl.log(&hist_records(&self.ooo_hists, &self.staged))?;
                }
            }
        }
        for st in &new_series {
            st.series.logged.store(true, Ordering::Release);
        }
        let id = head.iso.begin_append();
        let dropped = self.apply(id);
        head.iso.close_append(id);
        if dropped > 0 {
            tracing::debug!(dropped, "samples invalidated by concurrent commits");
        }
        for (i, e) in self.exemplars.drain(..) {
            let Some(st) = self.staged.get(i as usize) else {
                continue;
            };
            if let Err(err) = head.exemplars.add(&st.series.labels, e) {
                tracing::debug!(series = st.series.r, error = %err, "exemplar dropped at commit");
            }
        }
        if !self.meta.is_empty() {
            let mut g = head.metadata.write();
            for (r, m) in &self.meta {
                if let Some(name) = self
                    .index
                    .get(r)
                    .and_then(|&i| self.staged.get(i as usize))
                    .and_then(|st| st.series.labels.metric_name())
                {
                    g.insert(name.to_owned(), m.clone());
                }
            }
        }
        Ok(())
    }
}

/// What applying a staged in-order histogram did.
enum HistApplied {
    /// Appended; the chunks it created.
    InOrder(u64),
    /// A duplicate or a counted conflict: nothing to do.
    Nothing,
    /// Out of order now: goes to the out-of-order data.
    Moved,
    /// Dropped (logged).
    Dropped,
}

/// A staged native histogram (see `HeadAppender::hists`).
struct StagedHist {
    owner: u32,
    t: i64,
    h: HistValue,
    /// Float samples staged before it.
    after: usize,
}

impl HeadAppender<'_> {
    /// Applies a staged in-order histogram (see [`HistApplied`]).
    fn apply_hist(
        &self,
        x: &StagedHist,
        tx: Tx,
        policy: &crate::series::ChunkPolicy,
        b: &AppendBounds,
    ) -> HistApplied {
        let Some(st) = self.staged.get(x.owner as usize) else {
            return HistApplied::Dropped;
        };
        let r = st.series.r;
        let mut d = st.series.data.lock();
        let store = crate::hist::Store {
            disk: &self.head.chunks,
            series: r,
        };
        match d.hist_placement(x.t, &x.h, b, None, store) {
            Ok(Placement::InOrder) => {}
            Ok(Placement::Duplicate) => return HistApplied::Nothing,
            // Staged in order, out of order now (a concurrent commit went
            // first): inserted with the out-of-order data.
            Ok(Placement::Ooo) => return HistApplied::Moved,
            Ok(Placement::Conflict) => {
                self.head.note_conflict();
                return HistApplied::Nothing;
            }
            // Its range was cut since it was staged: it is in the WAL, not
            // in `wbl/`.
            Ok(Placement::Late) => {
                tracing::debug!(
                    series = r,
                    t = x.t,
                    "histogram dropped at commit: its range was cut"
                );
                return HistApplied::Dropped;
            }
            Err(e) => {
                tracing::debug!(series = r, error = %e, "histogram dropped at commit");
                return HistApplied::Dropped;
            }
        }
        match d.append_hist(r, x.t, &x.h, tx, policy, &self.head.chunks) {
            Ok(a) => HistApplied::InOrder(a.chunks_created),
            Err(e) => {
                tracing::warn!(series = r, error = %e, "histogram dropped at commit");
                HistApplied::Dropped
            }
        }
    }

    /// Stages a native histogram: checked against the series as committed
    /// and what this appender staged for it, in order only (see `hist`).
    fn stage_hist(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        h: HistValue,
    ) -> Result<SeriesRef> {
        validate(&h)?;
        if self.head.opts.ooo_window == 0 && t < self.min_valid {
            return Err(StorageError::OutOfBounds {
                t,
                min_valid: self.min_valid,
            });
        }
        let i = self.series_for(r, labels)?;
        let Some(st) = self.staged.get_mut(i) else {
            return Err(StorageError::SeriesNotFound { series: r });
        };
        let r = st.series.r;
        let mut b = self.head.bounds();
        b.min_valid = b.min_valid.max(self.min_valid);
        let staged = st.last.map(|l| l.0).max(st.last_hist);
        let store = crate::hist::Store {
            disk: &self.head.chunks,
            series: r,
        };
        let p = st
            .series
            .data
            .lock()
            .hist_placement(t, &h, &b, staged, store)?;
        match p {
            Placement::InOrder => {}
            Placement::Duplicate => return Ok(r),
            Placement::Conflict => {
                self.head.note_conflict();
                return Ok(r);
            }
            Placement::Ooo | Placement::Late => {
                self.ooo_hists.push(StagedHist {
                    owner: staged_index(i),
                    t,
                    h,
                    after: 0,
                });
                return Ok(r);
            }
        }
        st.last_hist = Some(t);
        self.hists.push(StagedHist {
            owner: staged_index(i),
            t,
            h,
            after: self.samples.len(),
        });
        Ok(r)
    }
}

/// Refuses a histogram Prometheus's `Validate` refuses (spans that do not
/// fit the buckets, negative counts, a count below the buckets' sum, bad
/// custom bounds), and schemas the chunk encodings cannot hold (the
/// remote-write receiver lowers 9..=52 to 8 before appending).
fn validate(h: &HistValue) -> Result<()> {
    let (schema, checked) = match h {
        HistValue::Int(h) => (h.schema, h.validate()),
        HistValue::Float(h) => (h.schema, h.validate()),
    };
    checked.map_err(|e| StorageError::InvalidHistogram {
        reason: e.to_string(),
    })?;
    if !(-4..=8).contains(&schema) && schema != cairn_model::CUSTOM_BUCKETS_SCHEMA {
        return Err(StorageError::InvalidHistogram {
            reason: format!("schema {schema} is not between -4 and 8, nor -53"),
        });
    }
    Ok(())
}

/// The WAL records of staged histograms: integer and float, exponential
/// and custom buckets apart (record types 7 to 10), as Prometheus logs them.
fn hist_records(hists: &[StagedHist], staged: &[Staged<'_>]) -> Vec<Record> {
    crate::hist::records(hists.iter().filter_map(|x| {
        let st = staged.get(x.owner as usize)?;
        Some((st.series.r, x.t, &x.h))
    }))
}

/// An index into `staged` as stored in the maps. An appender stages fewer
/// than `u32::MAX` series (each costs far more memory than 4 GiB / 2^32).
/// Stages a series not staged yet: appends it to `staged` and records its
/// position under its reference.
fn stage<'a>(
    staged: &mut Vec<Staged<'a>>,
    e: std::collections::hash_map::VacantEntry<'_, u64, u32>,
    s: Pinned<'a>,
) -> usize {
    let i = staged.len();
    staged.push(Staged {
        series: s,
        last: None,
        last_hist: None,
        tail: 0,
    });
    e.insert(staged_index(i));
    i
}

fn staged_index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl Appender for HeadAppender<'_> {
    fn append(&mut self, r: SeriesRef, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef> {
        if self.head.opts.ooo_window == 0 && t < self.min_valid {
            return Err(StorageError::OutOfBounds {
                t,
                min_valid: self.min_valid,
            });
        }
        let i = self.series_for(r, labels)?;
        let Some(st) = self.staged.get_mut(i) else {
            return Err(StorageError::SeriesNotFound { series: r });
        };
        let r = st.series.r;
        if let Some(h) = st.last_hist.filter(|&h| t <= h) {
            if h == t {
                return Err(StorageError::DuplicateSampleForTimestamp { t });
            }
            if self.head.opts.ooo_window == 0 {
                return Err(StorageError::OutOfOrderSample { t });
            }
        }
        // The newest staged sample of either kind (a histogram's value
        // never equals a float's).
        let staged = match (st.last, st.last_hist) {
            (Some(l), Some(h)) if h > l.0 => Some((h, f64::NAN)),
            (None, Some(h)) => Some((h, f64::NAN)),
            (l, _) => l,
        };
        let mut b = self.head.bounds();
        b.min_valid = b.min_valid.max(self.min_valid);
        let (p, tail) = {
            let d = st.series.data.lock();
            (d.placement(t, v, &b, staged), d.append_hint())
        };
        st.tail = tail;
        match p? {
            Placement::Duplicate => return Ok(r),
            Placement::Conflict => {
                self.head.note_conflict();
                return Ok(r);
            }
            Placement::Late | Placement::Ooo => {
                self.ooo.push(RefSample { r, t, v });
                self.ooo_owners.push(staged_index(i));
                return Ok(r);
            }
            Placement::InOrder => st.last = Some((t, v)),
        }
        self.samples.push(RefSample { r, t, v });
        self.owners.push(staged_index(i));
        Ok(r)
    }

    fn append_histogram(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        h: &Histogram,
    ) -> Result<SeriesRef> {
        self.stage_hist(r, labels, t, HistValue::Int(Arc::new(h.clone())))
    }

    fn append_float_histogram(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        h: &FloatHistogram,
    ) -> Result<SeriesRef> {
        self.stage_hist(r, labels, t, HistValue::Float(Arc::new(h.clone())))
    }

    /// See [`Appender::append_start_zero`]: the zero is staged only where
    /// it lands in order (a commit applies it like any sample, as
    /// Prometheus's `AppendCTZeroSample` does).
    fn append_start_zero(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        t: i64,
        st: i64,
    ) -> Result<SeriesRef> {
        if st >= t {
            return Err(StorageError::StartTimestampNotBefore { st, t });
        }
        if st < self.min_valid {
            return Err(StorageError::OutOfBounds {
                t: st,
                min_valid: self.min_valid,
            });
        }
        let i = self.series_for(r, labels)?;
        let Some(s) = self.staged.get_mut(i) else {
            return Err(StorageError::SeriesNotFound { series: r });
        };
        let r = s.series.r;
        let mut b = self.head.bounds();
        b.min_valid = b.min_valid.max(self.min_valid);
        let p = s.series.data.lock().placement(st, 0.0, &b, s.last);
        match p {
            Ok(Placement::InOrder) => {
                s.last = Some((st, 0.0));
                self.samples.push(RefSample { r, t: st, v: 0.0 });
                self.owners.push(staged_index(i));
                Ok(r)
            }
            Ok(Placement::Duplicate) => Ok(r),
            Ok(Placement::Ooo | Placement::Late | Placement::Conflict)
            | Err(StorageError::OutOfOrderSample { .. } | StorageError::TooOldSample { .. }) => {
                Err(StorageError::OutOfOrderStart { st })
            }
            Err(e) => Err(e),
        }
    }

    /// Appends sample by sample, prefetching the series of the sample
    /// [`AHEAD`] positions on (by its reference hint), so that the cache
    /// misses on series memory overlap instead of coming one at a time.
    /// A sample whose labels are the same value as the previous sample's
    /// (and whose hint is 0) reuses the previous sample's series.
    fn append_batch(
        &mut self,
        batch: &[(SeriesRef, &Labels, i64, f64)],
        out: &mut Vec<Result<SeriesRef>>,
    ) {
        out.clear();
        out.reserve(batch.len());
        let mut prev: Option<(&Labels, SeriesRef)> = None;
        for (i, &(r, labels, t, v)) in batch.iter().enumerate() {
            if let Some(&(ahead, ..)) = batch.get(i + 2 * AHEAD) {
                if ahead != 0 {
                    self.head.series.prefetch_stripe(ahead);
                }
            }
            if let Some(&(ahead, ..)) = batch.get(i + AHEAD) {
                if ahead != 0 {
                    self.head.series.prefetch(ahead);
                }
            }
            let hint = match prev {
                Some((pl, pr)) if r == 0 && std::ptr::eq(pl, labels) => pr,
                _ => r,
            };
            let res = self.append(hint, labels, t, v);
            prev = res.as_ref().ok().map(|&x| (labels, x));
            out.push(res);
        }
    }

    fn update_metadata(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        meta: &Metadata,
    ) -> Result<SeriesRef> {
        // A metric family's metadata (remote write 1.0 sends it apart from
        // the series, under `__name__` alone): logged under one of the
        // family's series, never creating a series of its own; kept in
        // memory only while the family has none (the sender resends it).
        let by_name = if r == 0 && labels.len() == 1 {
            labels.metric_name()
        } else {
            None
        };
        let i = match by_name {
            Some(name) => {
                let found = self
                    .head
                    .index
                    .first_with(cairn_model::METRIC_NAME, name)
                    .and_then(|x| self.find_series(x, &Labels::empty(), false).ok());
                match found {
                    Some(i) => i,
                    None => {
                        self.name_meta.push((name.to_owned(), meta.clone()));
                        return Ok(0);
                    }
                }
            }
            None => self.series_for(r, labels)?,
        };
        let r = self
            .staged
            .get(i)
            .map(|st| st.series.r)
            .ok_or(StorageError::SeriesNotFound { series: r })?;
        self.meta.push((r, meta.clone()));
        Ok(r)
    }

    /// Stages an exemplar; see [`Appender::append_exemplar`] and the module
    /// docs. With the store disabled, this is
    /// [`StorageError::ExemplarStorageDisabled`]. The series must exist (in
    /// the head, or staged by this appender): an exemplar does not create
    /// one, as in Prometheus.
    fn append_exemplar(
        &mut self,
        r: SeriesRef,
        labels: &Labels,
        e: &Exemplar,
    ) -> Result<SeriesRef> {
        let i = self.find_series(r, labels, false)?;
        let Some(st) = self.staged.get(i) else {
            return Err(StorageError::SeriesNotFound { series: r });
        };
        let r = st.series.r;
        if !self.head.exemplars.validate(&st.series.labels, e)? {
            return Ok(r);
        }
        // Staged in this appender already: the same rules against it.
        if let Some((_, last)) = self.exemplars.iter().rev().find(|(j, _)| *j as usize == i) {
            if last.same_as(e) {
                return Ok(r);
            }
            if e.ts <= last.ts {
                self.head.exemplars.count_out_of_order();
                return Err(StorageError::OutOfOrderExemplar { ts: e.ts });
            }
        }
        self.exemplars.push((staged_index(i), e.clone()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::HeadOptions;
    use cairn_model::{labels, MatchType, Matcher};
    use cairn_storage::{Queryable, SelectHints, ValueType};

    fn head(dir: &std::path::Path, ooo_window: i64) -> Head {
        Head::open(
            dir,
            HeadOptions {
                stripes: 4,
                ooo_window,
                ..HeadOptions::default()
            },
        )
        .unwrap()
    }

    fn dump(h: &Head) -> Vec<(Labels, Vec<(i64, f64)>)> {
        let q = h.querier(i64::MIN, i64::MAX).unwrap();
        let ms = [Matcher::new(MatchType::Regex, "__name__", ".+").unwrap()];
        let mut out = Vec::new();
        for s in q.select(&SelectHints::default(), &ms).unwrap() {
            let s = s.unwrap();
            let mut it = s.iter();
            let mut v = Vec::new();
            while it.next() == ValueType::Float {
                v.push(it.at());
            }
            out.push((s.labels().clone(), v));
        }
        out
    }

    /// Results as comparable text (errors by message).
    fn text(rs: &[Result<SeriesRef>]) -> Vec<String> {
        rs.iter()
            .map(|r| match r {
                Ok(x) => format!("ok {x}"),
                Err(e) => format!("err {e}"),
            })
            .collect()
    }

    /// A batch with every kind of sample: new series with and without
    /// hints, repeats within the batch, out of order, duplicates (same and
    /// different value), a wrong hint, empty labels, out of bounds.
    fn batch_cases(a: &Labels, b: &Labels, empty: &Labels) -> Vec<(u64, Labels, i64, f64)> {
        vec![
            (0, a.clone(), 1000, 1.0),
            (0, a.clone(), 2000, 2.0),
            (0, b.clone(), 1000, 5.0),
            (0, a.clone(), 1500, 9.0),   // out of order within the batch
            (0, a.clone(), 2000, 2.0),   // duplicate, same value: accepted
            (0, a.clone(), 2000, 3.0),   // duplicate, other value
            (1, b.clone(), 3000, 6.0),   // hint of a, labels of b
            (999, a.clone(), 4000, 4.0), // unknown hint
            (0, empty.clone(), 5000, 1.0),
            (0, b.clone(), 4000, 7.0),
        ]
    }

    #[test]
    fn append_batch_matches_append_one_by_one() {
        let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (h1, h2) = (head(d1.path(), 0), head(d2.path(), 0));
        let a = labels!("__name__" => "a", "job" => "x");
        let b = labels!("__name__" => "b");
        let empty = Labels::default();
        let cases = batch_cases(&a, &b, &empty);

        let mut one = h1.appender();
        let singles: Vec<Result<SeriesRef>> = cases
            .iter()
            .map(|(r, l, t, v)| one.append(*r, l, *t, *v))
            .collect();
        one.commit().unwrap();

        let mut many = h2.appender();
        let batch: Vec<(u64, &Labels, i64, f64)> =
            cases.iter().map(|(r, l, t, v)| (*r, l, *t, *v)).collect();
        let mut out = vec![Ok(77)]; // cleared first
        many.append_batch(&batch, &mut out);
        many.commit().unwrap();

        assert_eq!(text(&out), text(&singles));
        assert_eq!(out.len(), cases.len());
        assert!(matches!(
            out[3],
            Err(StorageError::OutOfOrderSample { t: 1500 })
        ));
        assert!(out[4].is_ok());
        assert!(matches!(
            out[5],
            Err(StorageError::DuplicateSampleForTimestamp { t: 2000 })
        ));
        assert!(out[8].is_err(), "empty labels with no hint");
        let got = dump(&h2);
        assert_eq!(got, dump(&h1));
        assert_eq!(
            got,
            vec![
                (a.clone(), vec![(1000, 1.0), (2000, 2.0), (4000, 4.0)]),
                (b.clone(), vec![(1000, 5.0), (3000, 6.0), (4000, 7.0)]),
            ]
        );

        // A second batch against committed data: refs as hints, out of
        // bounds (more than half a chunk range behind the head's max),
        // and a stale sample, mixed with good ones.
        let ra = match &out[0] {
            Ok(r) => *r,
            Err(e) => panic!("{e}"),
        };
        let far = 4000 + DEFAULT_RANGE;
        let mut app = h2.appender();
        app.append_batch(&[(ra, &a, far, 1.0)], &mut out);
        app.commit().unwrap();
        let mut app = h2.appender();
        app.append_batch(
            &[
                (ra, &a, far - 1, 1.0), // out of order against committed data
                (ra, &a, 100, 1.0),     // out of bounds
                (0, &b, far + 1, 2.0),
                (ra, &a, far + 10, 3.0),
            ],
            &mut out,
        );
        app.commit().unwrap();
        assert!(matches!(out[0], Err(StorageError::OutOfOrderSample { .. })));
        assert!(matches!(
            out[1],
            Err(StorageError::OutOfBounds { t: 100, .. })
        ));
        assert!(out[2].is_ok() && out[3].as_ref().ok() == Some(&ra));
        let got = dump(&h2);
        assert_eq!(got[0].1.last(), Some(&(far + 10, 3.0)));
        assert_eq!(got[1].1.last(), Some(&(far + 1, 2.0)));
    }

    const DEFAULT_RANGE: i64 = crate::options::DEFAULT_CHUNK_RANGE;

    #[test]
    fn prefetch_hints_never_fault() {
        let d = tempfile::tempdir().unwrap();
        let h = head(d.path(), 0);
        let a = labels!("__name__" => "a");
        let mut app = h.appender();
        let r = app.append(0, &a, 1, 1.0).unwrap();
        app.commit().unwrap();
        for w in [false, crate::series::has_prefetchw()] {
            // Null, unmapped and stale addresses are fine to prefetch.
            for p in [0usize, 8, usize::MAX - 64, 0x7fff_ffff_0000] {
                prefetch_line(p as *const u8, w);
            }
        }
        // Refs with no series, and refs in blocks and stripes never used.
        for x in [0, r + 1, u64::MAX, 1 << 40] {
            h.series.prefetch(x);
            h.series.prefetch_stripe(x);
        }
        h.series.prefetch(r);
        assert_eq!(dump(&h), vec![(a, vec![(1, 1.0)])]);
    }

    #[test]
    fn append_batch_rollback_and_ooo_window() {
        let d = tempfile::tempdir().unwrap();
        let h = head(d.path(), 10_000);
        let a = labels!("__name__" => "a");
        let mut app = h.appender();
        let mut out = Vec::new();
        app.append_batch(&[(0, &a, 50_000, 1.0), (0, &a, 45_000, 2.0)], &mut out);
        assert!(out.iter().all(Result::is_ok), "{:?}", text(&out));
        app.rollback().unwrap();
        assert!(dump(&h).is_empty(), "a rolled back batch leaves nothing");

        let mut app = h.appender();
        app.append_batch(
            &[
                (0, &a, 50_000, 1.0),
                (0, &a, 45_000, 2.0), // within the window: out of order
                (0, &a, 45_000, 2.5), // same time, other value
                (0, &a, 30_000, 3.0), // too old
            ],
            &mut out,
        );
        app.commit().unwrap();
        // Staging judges against the committed head max (none yet), so the
        // window check of the last sample happens at commit, where it is dropped.
        assert_eq!(out.len(), 4);
        assert!(out[0].is_ok() && out[1].is_ok() && out[3].is_ok());
        let got = dump(&h);
        assert_eq!(got.len(), 1);
        assert!(got[0].1.contains(&(50_000, 1.0)) && got[0].1.contains(&(45_000, 2.0)));
        assert!(!got[0].1.contains(&(30_000, 3.0)));
    }
}
