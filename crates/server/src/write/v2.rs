//! The remote write 2.0 path: series resolved through the request's symbol
//! table and appended one by one (samples, histograms, exemplars, in
//! Prometheus's order), metadata per series.

use cairn_model::Labels;
use cairn_proto::write_v2;
use cairn_storage::{Appender, Metadata, MetricType, SeriesRef};

use super::outcome::{count_samples, SeriesRefusals, WriteOutcome};
use super::{exemplars, histograms, labels};
use crate::metrics::RejectReason;
use crate::{ServerConfig, ServerError};

/// Appends a decoded 2.0 request through `app`; see [`super::ingest`].
pub(super) fn ingest_v2(
    req: &write_v2::Request,
    cfg: &ServerConfig,
    app: &mut dyn Appender,
    max_t: i64,
) -> Result<WriteOutcome, ServerError> {
    let mut out = WriteOutcome::default();
    let syms = write_v2::Symbols::new(&req.symbols);
    let mut resolved = Vec::new();
    let mut scratch = Vec::new();
    let mut total = 0usize;
    for ts in &req.timeseries {
        count_samples(&mut total, ts.samples.len() + ts.histograms.len(), cfg)?;
        let n = (ts.samples.len() + ts.histograms.len()) as u64;
        out.exemplars_received += ts.exemplars.len() as u64;
        if let Err(e) = syms.resolve_pairs(&ts.labels_refs, &mut resolved) {
            out.refuse(cfg, RejectReason::InvalidLabels, n, || {
                format!("series with unresolvable label references: {e}")
            });
            out.exemplars_failed += ts.exemplars.len() as u64;
            continue;
        }
        let pairs = resolved.iter().map(|(a, b)| (a.as_bytes(), b.as_bytes()));
        let labels = match labels::validate(pairs, cfg, &mut scratch) {
            Ok(l) => l,
            Err((reason, msg)) => {
                out.refuse(cfg, reason, n, || msg);
                out.exemplars_failed += ts.exemplars.len() as u64;
                continue;
            }
        };
        let samples = ts
            .samples
            .iter()
            .map(|s| (s.start_timestamp, s.timestamp, s.value));
        let mut refused = SeriesRefusals::default();
        let r = append_samples(&labels, 0, samples, cfg, app, max_t, &mut refused, &mut out)?;
        let hists = ts.histograms.iter().map(Ok);
        let r = histograms::append(&labels, r, hists, cfg, app, max_t, &mut refused, &mut out)?;
        refused.emit(&labels, cfg, &mut out);
        for e in &ts.exemplars {
            let ex = syms
                .resolve_pairs(&e.labels_refs, &mut resolved)
                .ok()
                .and_then(|()| {
                    let pairs = resolved.iter().map(|(a, b)| (a.as_bytes(), b.as_bytes()));
                    exemplars::from_raw(pairs, e.value, e.timestamp)
                });
            exemplars::append(app, r, &labels, ex.as_ref(), &mut out);
        }
        if let Some(md) = &ts.metadata {
            store_v2_metadata(md, &syms, r, &labels, app, &mut out);
        }
    }
    Ok(out)
}

/// Appends one series' samples `(start timestamp, timestamp, value)`
/// starting from the reference hint `r` (0 for none); returns the series
/// reference (0 if none); refusals are noted in `refused`. With [`ServerConfig::ingest_start_zero`], a
/// start timestamp (non-zero) first goes in as a zero sample where it lands
/// in order; as in Prometheus, one that does not is skipped, never refused.
#[allow(clippy::too_many_arguments)]
fn append_samples(
    labels: &Labels,
    mut r: SeriesRef,
    samples: impl Iterator<Item = (i64, i64, f64)>,
    cfg: &ServerConfig,
    app: &mut dyn Appender,
    max_t: i64,
    refused: &mut SeriesRefusals,
    out: &mut WriteOutcome,
) -> Result<SeriesRef, ServerError> {
    for (st, t, v) in samples {
        if refused.too_far(t, max_t, cfg) {
            continue;
        }
        if cfg.ingest_start_zero && st != 0 {
            match app.append_start_zero(r, labels, t, st) {
                Ok(x) => {
                    r = x;
                    out.start_zeros_written += 1;
                }
                Err(e) => {
                    tracing::debug!(series = %labels, error = %e, "start timestamp not ingested as a zero sample");
                }
            }
        }
        refused.account(app.append(r, labels, t, v), &mut r, out)?;
    }
    Ok(r)
}

fn store_v2_metadata(
    md: &write_v2::Metadata,
    syms: &write_v2::Symbols<'_>,
    r: SeriesRef,
    labels: &Labels,
    app: &mut dyn Appender,
    out: &mut WriteOutcome,
) {
    if md.r#type == 0 && md.help_ref == 0 && md.unit_ref == 0 {
        return;
    }
    let (Ok(help), Ok(unit)) = (syms.get(md.help_ref), syms.get(md.unit_ref)) else {
        out.metadata_failed += 1;
        return;
    };
    let meta = Metadata {
        kind: MetricType::from_code(md.r#type),
        unit: unit.to_owned(),
        help: help.to_owned(),
    };
    match app.update_metadata(r, labels, &meta) {
        Ok(_) => out.metadata_stored += 1,
        Err(e) => {
            tracing::debug!(series = %labels, error = %e, "remote write metadata not stored");
            out.metadata_failed += 1;
        }
    }
}
