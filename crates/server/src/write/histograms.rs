//! Native histograms of both protocols: the wire message (identical in 1.0
//! and 2.0) turned into Cairn's [`Histogram`] or [`FloatHistogram`],
//! validated, and appended after their series' float samples, in the same
//! appender, in the order they came (Prometheus's handler appends a
//! series' samples, then its histograms).
//!
//! The `count` oneof decides the kind, as Prometheus's `IsFloatHistogram`
//! does: `count_float` makes a float histogram (absolute `*_counts`),
//! anything else an integer one (delta-encoded `*_deltas`). Prometheus
//! reads a field of the other kind as 0; here a non-zero one (a
//! `zero_count` or buckets of the other kind) refuses the histogram rather
//! than losing those observations silently.
//!
//! Refusals follow Prometheus v3.8's receiver: past the future limit first,
//! then `Validate` ([`Histogram::validate`]; reason `invalid_histogram`),
//! schemas 9 to 52 lowered to 8 before storing. Storage errors count as for
//! floats (out of order, out of bounds, duplicate: refused, not retried);
//! storage without histograms refuses them with reason `native_histogram`.

use cairn_model::{CounterResetHint, FloatHistogram, Histogram, Labels, Span};
use cairn_proto::histogram::{self as wire, Count, ResetHint, ZeroCount};
use cairn_proto::ProtoError;
use cairn_storage::{Appender, SeriesRef};

use super::outcome::{SeriesRefusals, WriteOutcome};
use crate::metrics::RejectReason;
use crate::{ServerConfig, ServerError};

/// A decoded histogram sample of either kind.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Decoded {
    Int(Histogram),
    Float(FloatHistogram),
}

/// Why a histogram was refused before it reached the appender.
#[derive(Debug, thiserror::Error)]
pub(super) enum Refusal {
    #[error("invalid native histogram at {t}: {source}")]
    Invalid {
        t: i64,
        #[source]
        source: cairn_model::HistogramValidationError,
    },
    #[error("invalid native histogram at {t}: {what}")]
    MixedKinds { t: i64, what: &'static str },
    #[error("malformed native histogram message: {0}")]
    Malformed(String),
}

fn hint(code: i32) -> CounterResetHint {
    match ResetHint::try_from(code) {
        Ok(ResetHint::Yes) => CounterResetHint::CounterReset,
        Ok(ResetHint::No) => CounterResetHint::NotCounterReset,
        Ok(ResetHint::Gauge) => CounterResetHint::Gauge,
        Ok(ResetHint::Unknown) | Err(_) => CounterResetHint::Unknown,
    }
}

fn spans(s: &[wire::BucketSpan]) -> Vec<Span> {
    s.iter()
        .map(|s| Span {
            offset: s.offset,
            length: s.length,
        })
        .collect()
}

/// Turns a wire histogram into Cairn's, validated and with a reserved finer
/// schema lowered to 8; `Err` says why it is refused.
pub(super) fn decode(h: &wire::Histogram) -> Result<Decoded, Refusal> {
    let t = h.timestamp;
    let mixed = |what| Err(Refusal::MixedKinds { t, what });
    let d = match h.count {
        Some(Count::CountFloat(count)) => {
            let zero_count = match h.zero_count {
                Some(ZeroCount::ZeroCountFloat(z)) => z,
                Some(ZeroCount::ZeroCountInt(0)) | None => 0.0,
                Some(ZeroCount::ZeroCountInt(_)) => {
                    return mixed("a float histogram (count_float) with an integer zero_count")
                }
            };
            if !h.positive_deltas.is_empty() || !h.negative_deltas.is_empty() {
                return mixed("a float histogram (count_float) with delta-encoded integer buckets");
            }
            let f = FloatHistogram {
                counter_reset_hint: hint(h.reset_hint),
                schema: h.schema,
                zero_threshold: h.zero_threshold,
                zero_count,
                count,
                sum: h.sum,
                positive_spans: spans(&h.positive_spans),
                positive_buckets: h.positive_counts.clone(),
                negative_spans: spans(&h.negative_spans),
                negative_buckets: h.negative_counts.clone(),
                custom_values: h.custom_values.clone(),
            };
            f.validate()
                .map_err(|source| Refusal::Invalid { t, source })?;
            Decoded::Float(f)
        }
        Some(Count::CountInt(_)) | None => {
            let count = match h.count {
                Some(Count::CountInt(c)) => c,
                _ => 0,
            };
            let zero_count = match h.zero_count {
                Some(ZeroCount::ZeroCountInt(z)) => z,
                None => 0,
                Some(ZeroCount::ZeroCountFloat(0.0)) => 0,
                Some(ZeroCount::ZeroCountFloat(_)) => {
                    return mixed("an integer histogram (count_int) with a float zero_count")
                }
            };
            if !h.positive_counts.is_empty() || !h.negative_counts.is_empty() {
                return mixed("an integer histogram (count_int) with float bucket counts");
            }
            let i = Histogram {
                counter_reset_hint: hint(h.reset_hint),
                schema: h.schema,
                zero_threshold: h.zero_threshold,
                zero_count,
                count,
                sum: h.sum,
                positive_spans: spans(&h.positive_spans),
                negative_spans: spans(&h.negative_spans),
                positive_buckets: h.positive_deltas.clone(),
                negative_buckets: h.negative_deltas.clone(),
                custom_values: h.custom_values.clone(),
            };
            i.validate()
                .map_err(|source| Refusal::Invalid { t, source })?;
            Decoded::Int(i)
        }
    };
    Ok(lower_reserved_schema(d))
}

/// Schemas 9..=52 are lowered to 8, as Prometheus's receiver does.
fn lower_reserved_schema(d: Decoded) -> Decoded {
    let max = cairn_model::EXPONENTIAL_SCHEMA_MAX;
    match d {
        Decoded::Int(mut h) if h.schema > max && !h.uses_custom_buckets() => {
            h.reduce_resolution(max);
            Decoded::Int(h)
        }
        Decoded::Float(mut h) if h.schema > max && !h.uses_custom_buckets() => {
            h.reduce_resolution(max);
            Decoded::Float(h)
        }
        d => d,
    }
}

/// With start-timestamp zero ingestion, the empty histogram that start
/// time `st` of the histogram `d` at `t` stands for, as Prometheus's
/// `AppendHistogramCTZeroSample` makes it: a counter reset with `d`'s
/// schema, zero threshold and custom bounds, and nothing counted. Only
/// before `t`; one that does not go in (not newer than the series' newest
/// sample) is skipped, never refused.
fn start_zero(
    labels: &Labels,
    r: &mut SeriesRef,
    st: i64,
    t: i64,
    d: &Decoded,
    app: &mut dyn Appender,
    out: &mut WriteOutcome,
) {
    if st >= t {
        return;
    }
    let res = match d {
        Decoded::Int(h) => app.append_histogram(
            *r,
            labels,
            st,
            &Histogram {
                counter_reset_hint: CounterResetHint::CounterReset,
                schema: h.schema,
                zero_threshold: h.zero_threshold,
                custom_values: h.custom_values.clone(),
                ..Histogram::default()
            },
        ),
        Decoded::Float(h) => app.append_float_histogram(
            *r,
            labels,
            st,
            &FloatHistogram {
                counter_reset_hint: CounterResetHint::CounterReset,
                schema: h.schema,
                zero_threshold: h.zero_threshold,
                custom_values: h.custom_values.clone(),
                ..FloatHistogram::default()
            },
        ),
    };
    match res {
        Ok(x) => {
            *r = x;
            out.start_zeros_written += 1;
        }
        Err(e) => {
            tracing::debug!(series = %labels, error = %e, "start timestamp not ingested as a zero histogram");
        }
    }
}

/// Appends one series' histograms (each decoded, or the error that kept it
/// from decoding) from the reference hint `r`, noting refusals in
/// `refused`; returns the series reference. A storage failure that is not
/// the sender's fault fails the request.
#[allow(clippy::too_many_arguments)]
pub(super) fn append<'h>(
    labels: &Labels,
    mut r: SeriesRef,
    hists: impl Iterator<Item = Result<&'h wire::Histogram, &'h ProtoError>>,
    cfg: &ServerConfig,
    app: &mut dyn Appender,
    max_t: i64,
    refused: &mut SeriesRefusals,
    out: &mut WriteOutcome,
) -> Result<SeriesRef, ServerError> {
    for h in hists {
        let h = match h {
            Ok(h) => h,
            Err(e) => {
                refused.note(RejectReason::InvalidHistogram, || {
                    Refusal::Malformed(e.to_string()).to_string()
                });
                continue;
            }
        };
        let t = h.timestamp;
        if refused.too_far(t, max_t, cfg) {
            continue;
        }
        let d = decode(h);
        if let (true, Ok(d)) = (cfg.ingest_start_zero && h.start_timestamp != 0, &d) {
            start_zero(labels, &mut r, h.start_timestamp, t, d, app, out);
        }
        let res = match d {
            Ok(Decoded::Int(x)) => app.append_histogram(r, labels, t, &x),
            Ok(Decoded::Float(x)) => app.append_float_histogram(r, labels, t, &x),
            Err(e) => {
                tracing::debug!(series = %labels, error = %e, "remote write histogram refused");
                refused.note(RejectReason::InvalidHistogram, || e.to_string());
                continue;
            }
        };
        refused.account_histogram(res, &mut r, out)?;
    }
    Ok(r)
}
