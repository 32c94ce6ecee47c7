//! The remote write 1.0 path: a request is decoded whole into a [`Plan`]
//! (labels through the connection's and the server's series caches,
//! samples, refusals in request order) and then appended in one
//! [`Appender::append_batch`] call, which lets the storage overlap its work
//! across series.
//!
//! Native histograms are rare and take the slow road: a series that has
//! any is decoded a second time for them, and the plan is appended right
//! after it, the series' histograms after its samples. Each series' floats
//! and histograms thus reach the appender in the order Prometheus's handler
//! appends them (earlier series, the series' samples, its histograms), even
//! when a series comes several times in one request.

use cairn_model::{Exemplar, Labels};
use cairn_proto::histogram::Histogram as WireHistogram;
use cairn_proto::write::{self, ExemplarView, Item, MetadataView, WriteRequestView};
use cairn_storage::{Appender, Metadata, MetricType, SeriesRef};

use super::outcome::{count_samples, SeriesRefusals, WriteOutcome};
use super::series_cache::{self, SeriesCache, SharedSeriesCache};
use super::{exemplars, histograms, labels};
use crate::metrics::RejectReason;
use crate::{ServerConfig, ServerError};

/// Where a planned series' labels are kept until its samples are appended.
#[derive(Debug, Clone, Copy)]
enum LabelsAt {
    /// Entry `i` of the connection's series cache.
    Cache(u32),
    /// Entry `i` of [`Plan::owned`] (requests decoded without a cache).
    Owned(u32),
}

/// One step of a 1.0 request, kept in request order so that what is refused
/// is reported in the order the series came.
#[derive(Debug)]
enum Step {
    Series {
        at: LabelsAt,
        /// Reference hint (0 for none).
        hint: SeriesRef,
        /// The series' samples are `Plan::samples[start..end]`.
        start: usize,
        end: usize,
        /// Raw-label hash to enter the series' reference under in the
        /// shared cache (a series new to both caches).
        share: Option<u64>,
    },
    Refuse {
        reason: RejectReason,
        n: u64,
        msg: String,
    },
}

/// A decoded part of a 1.0 request, appended in one
/// [`Appender::append_batch`] call so the storage can overlap its work
/// across series.
#[derive(Debug, Default)]
pub(super) struct Plan {
    steps: Vec<Step>,
    samples: Vec<(i64, f64)>,
    owned: Vec<Labels>,
    results: Vec<cairn_storage::Result<SeriesRef>>,
    /// Exemplars with the index in `steps` of their series; `None` for
    /// one that did not decode to valid labels.
    exemplars: Vec<(usize, Option<Exemplar>)>,
    /// Histograms with the index in `steps` of their series (in step
    /// order), or the error that kept one from decoding.
    histograms: Vec<(usize, cairn_proto::Result<WireHistogram>)>,
    /// Scratch for decoding one series' histograms.
    hist_scratch: Vec<cairn_proto::Result<WireHistogram>>,
}

impl Plan {
    fn push_series(
        &mut self,
        at: LabelsAt,
        hint: SeriesRef,
        samples: &[(i64, f64)],
        share: Option<u64>,
    ) {
        let start = self.samples.len();
        self.samples.extend_from_slice(samples);
        self.steps.push(Step::Series {
            at,
            hint,
            start,
            end: self.samples.len(),
            share,
        });
    }

    fn labels<'a>(&'a self, cache: Option<&'a SeriesCache>, at: LabelsAt) -> Option<&'a Labels> {
        match at {
            LabelsAt::Cache(i) => cache?.entry(i).map(|e| &e.labels),
            LabelsAt::Owned(i) => self.owned.get(i as usize),
        }
    }

    /// Appends the planned samples (all but those past `max_t`) in one
    /// batch, then accounts for each step in order, updates the caches'
    /// references, and empties the plan.
    fn run(
        &mut self,
        mut cache: Option<&mut SeriesCache>,
        shared: Option<&SharedSeriesCache>,
        cfg: &ServerConfig,
        app: &mut dyn Appender,
        max_t: i64,
        out: &mut WriteOutcome,
    ) -> Result<(), ServerError> {
        let mut results = std::mem::take(&mut self.results);
        {
            let ro = cache.as_deref();
            let mut batch = Vec::with_capacity(self.samples.len());
            for step in &self.steps {
                let Step::Series {
                    at,
                    hint,
                    start,
                    end,
                    ..
                } = step
                else {
                    continue;
                };
                let Some(l) = self.labels(ro, *at) else {
                    continue;
                };
                for &(t, v) in self.samples.get(*start..*end).unwrap_or_default() {
                    if t <= max_t {
                        batch.push((*hint, l, t, v));
                    }
                }
            }
            app.append_batch(&batch, &mut results);
        }
        let mut res = results.drain(..);
        let mut updates: Vec<(LabelsAt, SeriesRef, Option<u64>)> = Vec::new();
        // Each step's series reference (0 for refusals), for its exemplars;
        // kept only when the request has exemplars (most have none).
        let want_refs = !self.exemplars.is_empty();
        let mut refs: Vec<SeriesRef> = Vec::new();
        let mut hists = self.histograms.iter().peekable();
        for (si, step) in self.steps.iter().enumerate() {
            if want_refs {
                refs.push(0);
            }
            match step {
                Step::Refuse { reason, n, msg } => out.refuse(cfg, *reason, *n, || msg.clone()),
                Step::Series {
                    at,
                    hint,
                    start,
                    end,
                    share,
                } => {
                    let Some(labels) = self.labels(cache.as_deref(), *at) else {
                        continue;
                    };
                    let samples = self.samples.get(*start..*end).unwrap_or_default();
                    let mut refused = SeriesRefusals::default();
                    let mut r = account_samples(
                        labels,
                        *hint,
                        samples,
                        &mut res,
                        cfg,
                        max_t,
                        &mut refused,
                        out,
                    )?;
                    if hists.peek().is_some_and(|(i, _)| *i == si) {
                        let mine = std::iter::from_fn(|| hists.next_if(|(i, _)| *i == si))
                            .map(|(_, h)| h.as_ref());
                        r = histograms::append(
                            labels,
                            r,
                            mine,
                            cfg,
                            app,
                            max_t,
                            &mut refused,
                            out,
                        )?;
                    }
                    refused.emit(labels, cfg, out);
                    updates.push((*at, r, *share));
                    if let Some(x) = refs.last_mut() {
                        *x = r;
                    }
                }
            }
        }
        drop(res);
        for (si, e) in std::mem::take(&mut self.exemplars) {
            if let (Some(Step::Series { at, .. }), Some(&r)) = (self.steps.get(si), refs.get(si)) {
                if let Some(labels) = self.labels(cache.as_deref(), *at) {
                    exemplars::append(app, r, labels, e.as_ref(), out);
                }
            }
        }
        for (at, r, share) in updates {
            if r == 0 {
                // Refused (or nothing stored): keep no labels for it.
                if let (Some(c), LabelsAt::Cache(i)) = (cache.as_deref_mut(), at) {
                    c.forget(i);
                }
                continue;
            }
            if let (Some(s), Some(h)) = (shared, share) {
                if let Some(l) = self.labels(cache.as_deref(), at) {
                    s.insert(h, l.clone(), r);
                }
            }
            if let (Some(c), LabelsAt::Cache(i)) = (cache.as_deref_mut(), at) {
                c.set_ref(i, r);
            }
        }
        if let Some(c) = cache {
            c.drop_forgotten_tail();
        }
        self.results = results;
        self.clear();
        Ok(())
    }

    /// Forgets every step, keeping the buffers.
    fn clear(&mut self) {
        self.steps.clear();
        self.samples.clear();
        self.owned.clear();
        self.results.clear();
        self.exemplars.clear();
        self.histograms.clear();
    }

    /// Decodes the histograms of the series just pushed (the last step)
    /// from its encoded `body`.
    fn push_histograms(&mut self, body: &[u8]) {
        let Some(si) = self.steps.len().checked_sub(1) else {
            return;
        };
        write::decode_series_histograms(body, &mut self.hist_scratch);
        self.histograms
            .extend(self.hist_scratch.drain(..).map(|h| (si, h)));
    }

    /// Decodes the exemplars of the series just pushed (the last step)
    /// from its encoded `body`; `n` were counted there.
    fn push_exemplars<'a>(&mut self, body: &'a [u8], n: usize, views: &mut Vec<ExemplarView<'a>>) {
        let Some(si) = self.steps.len().checked_sub(1) else {
            return;
        };
        match write::decode_series_exemplars(body, views) {
            Ok(()) => {
                for v in views.drain(..) {
                    let pairs = v.labels.iter().copied();
                    self.exemplars
                        .push((si, exemplars::from_raw(pairs, v.value, v.timestamp)));
                }
            }
            Err(_) => self.exemplars.extend((0..n).map(|_| (si, None))),
        }
    }
}

/// Accounts for one series' samples given the results of appending those
/// not past `max_t`, in order, noting refusals in `refused`; returns the
/// series reference (the `hint` when no sample was stored).
#[allow(clippy::too_many_arguments)]
fn account_samples(
    labels: &Labels,
    hint: SeriesRef,
    samples: &[(i64, f64)],
    results: &mut impl Iterator<Item = cairn_storage::Result<SeriesRef>>,
    cfg: &ServerConfig,
    max_t: i64,
    refused: &mut SeriesRefusals,
    out: &mut WriteOutcome,
) -> Result<SeriesRef, ServerError> {
    let mut r = hint;
    for &(t, _) in samples {
        if refused.too_far(t, max_t, cfg) {
            continue;
        }
        let Some(res) = results.next() else {
            return Err(ServerError::Internal(format!(
                "the appender returned fewer results than samples for series {labels}"
            )));
        };
        refused.account(res, &mut r, out)?;
    }
    Ok(r)
}

/// Plans and appends the decompressed 1.0 request `raw` through `app`,
/// looking labels up in `cache` and `shared`; see [`super::ingest`].
pub(super) fn ingest_v1(
    raw: &[u8],
    cfg: &ServerConfig,
    app: &mut dyn Appender,
    max_t: i64,
    mut cache: Option<&mut SeriesCache>,
    shared: Option<&SharedSeriesCache>,
    plan: &mut Plan,
) -> Result<WriteOutcome, ServerError> {
    // A request that failed half way left its steps behind.
    plan.clear();
    let mut out = WriteOutcome::default();
    let mut scratch = Vec::new();
    let mut pairs = Vec::new();
    let mut samples = Vec::new();
    let mut exemplar_views = Vec::new();
    let mut total = 0usize;
    let mut view = WriteRequestView::new(raw);
    while let Some(item) = view.next() {
        let body = match item? {
            Item::Series(b) => b,
            Item::Metadata(md) => {
                store_v1_metadata(&md, app, &mut out);
                continue;
            }
        };
        // With a cache: decode the samples, and the labels only when their
        // raw bytes are not cached.
        let mut key = None;
        if let Some(c) = cache.as_deref_mut() {
            let rs = write::decode_series_samples(body, &mut samples)?;
            if let Some(run) = rs.labels {
                let mut h = 0;
                let mut hit = c
                    .find_next(run)
                    .or_else(|| {
                        h = series_cache::hash_raw(run);
                        c.find(h, run)
                    })
                    .map(|i| (i, c.entry(i).map_or(0, |e| e.r)));
                if hit.is_none() {
                    if let Some((labels, hint)) = shared.and_then(|s| s.get(h, run)) {
                        if c.is_full() {
                            // The insert clears the cache: append what refers to it first.
                            plan.run(Some(&mut *c), shared, cfg, app, max_t, &mut out)?;
                        }
                        hit = Some((c.insert(h, labels, hint), hint));
                    }
                }
                if let Some((i, hint)) = hit {
                    count_samples(&mut total, samples.len() + rs.counts.histograms, cfg)?;
                    out.exemplars_received += rs.counts.exemplars as u64;
                    plan.push_series(LabelsAt::Cache(i), hint, &samples, None);
                    if rs.counts.exemplars > 0 {
                        plan.push_exemplars(body, rs.counts.exemplars, &mut exemplar_views);
                    }
                    if rs.counts.histograms > 0 {
                        plan.push_histograms(body);
                        plan.run(Some(&mut *c), shared, cfg, app, max_t, &mut out)?;
                    }
                    continue;
                }
                key = Some(h);
            }
        }
        let counts = write::decode_series(body, &mut pairs, &mut samples)?;
        count_samples(&mut total, samples.len() + counts.histograms, cfg)?;
        let n = (samples.len() + counts.histograms) as u64;
        out.exemplars_received += counts.exemplars as u64;
        let labels = match labels::validate(pairs.iter().copied(), cfg, &mut scratch) {
            Ok(l) => l,
            Err((reason, msg)) => {
                plan.steps.push(Step::Refuse { reason, n, msg });
                out.exemplars_failed += counts.exemplars as u64;
                continue;
            }
        };
        let (at, share) = match (cache.as_deref_mut(), key) {
            (Some(c), Some(h)) => {
                if c.is_full() {
                    plan.run(Some(&mut *c), shared, cfg, app, max_t, &mut out)?;
                }
                (LabelsAt::Cache(c.insert(h, labels, 0)), shared.map(|_| h))
            }
            _ => {
                let i = u32::try_from(plan.owned.len()).unwrap_or(u32::MAX);
                plan.owned.push(labels);
                (LabelsAt::Owned(i), None)
            }
        };
        plan.push_series(at, 0, &samples, share);
        if counts.exemplars > 0 {
            plan.push_exemplars(body, counts.exemplars, &mut exemplar_views);
        }
        if counts.histograms > 0 {
            plan.push_histograms(body);
            plan.run(cache.as_deref_mut(), shared, cfg, app, max_t, &mut out)?;
        }
    }
    plan.run(cache, shared, cfg, app, max_t, &mut out)?;
    Ok(out)
}

fn store_v1_metadata(md: &MetadataView<'_>, app: &mut dyn Appender, out: &mut WriteOutcome) {
    let (Ok(name), Ok(help), Ok(unit)) = (
        cairn_proto::utf8(md.metric_family_name),
        cairn_proto::utf8(md.help),
        cairn_proto::utf8(md.unit),
    ) else {
        out.metadata_failed += 1;
        return;
    };
    if name.is_empty() {
        out.metadata_failed += 1;
        return;
    }
    let labels = Labels::from_pairs([(cairn_model::METRIC_NAME, name)]);
    let meta = Metadata {
        kind: MetricType::from_code(md.r#type),
        unit: unit.to_owned(),
        help: help.to_owned(),
    };
    match app.update_metadata(0, &labels, &meta) {
        Ok(_) => out.metadata_stored += 1,
        Err(e) => {
            tracing::debug!(metric = name, error = %e, "remote write metadata not stored");
            out.metadata_failed += 1;
        }
    }
}
