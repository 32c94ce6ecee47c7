//! Turning a sender's label pairs into a validated [`Labels`] value.
//!
//! Refused: too many labels, over-long names or values, names or values
//! that are not UTF-8, empty names, names out of order or repeated, and
//! series without a metric name (`__name__`). Empty values are dropped, as
//! everywhere in Prometheus. Names are checked as UTF-8 only (Prometheus 3's
//! rule), not against the legacy `[a-zA-Z_][a-zA-Z0-9_]*` pattern.

use std::fmt::Write as _;

use cairn_model::{Labels, METRIC_NAME};

use crate::metrics::RejectReason;
use crate::ServerConfig;

/// Why a label set was refused: the metric reason and a message.
pub(crate) type LabelError = (RejectReason, String);

/// Validates raw pairs, reusing `scratch` for the borrowed strings.
pub(crate) fn validate<'a>(
    pairs: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])> + Clone,
    cfg: &ServerConfig,
    scratch: &mut Vec<(&'a str, &'a str)>,
) -> Result<Labels, LabelError> {
    scratch.clear();
    check_limits(pairs.len(), pairs.clone(), cfg)?;
    for (name, value) in pairs.clone() {
        let (Ok(n), Ok(v)) = (std::str::from_utf8(name), std::str::from_utf8(value)) else {
            return Err((
                RejectReason::InvalidLabels,
                format!(
                    "series {}: label name or value is not valid UTF-8",
                    preview(pairs)
                ),
            ));
        };
        scratch.push((n, v));
    }
    let labels = Labels::try_from_sorted(scratch.iter().copied()).map_err(|e| {
        (
            RejectReason::InvalidLabels,
            format!("invalid labels for series {}: {e}", preview(pairs.clone())),
        )
    })?;
    if labels.metric_name().is_none() {
        return Err((
            RejectReason::InvalidLabels,
            format!("series {} has no metric name ({METRIC_NAME})", labels),
        ));
    }
    Ok(labels)
}

/// The receiver's label limits (count, name and value lengths) on the `n`
/// pairs of `pairs`; shared by remote write and OTLP.
pub(crate) fn check_limits<'a>(
    n: usize,
    pairs: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
    cfg: &ServerConfig,
) -> Result<(), LabelError> {
    if n > cfg.max_labels_per_series {
        return Err((
            RejectReason::LabelLimits,
            format!(
                "series {} has {n} labels, more than the limit of {}",
                preview(pairs),
                cfg.max_labels_per_series
            ),
        ));
    }
    for (name, value) in pairs.clone() {
        if name.len() > cfg.max_label_name_bytes {
            return Err((
                RejectReason::LabelLimits,
                format!(
                    "series {}: label name of {} bytes is longer than the limit of {}",
                    preview(pairs),
                    name.len(),
                    cfg.max_label_name_bytes
                ),
            ));
        }
        if value.len() > cfg.max_label_value_bytes {
            return Err((
                RejectReason::LabelLimits,
                format!(
                    "series {}: value of label {:?} is {} bytes, longer than the limit of {}",
                    preview(pairs),
                    String::from_utf8_lossy(name),
                    value.len(),
                    cfg.max_label_value_bytes
                ),
            ));
        }
    }
    Ok(())
}

/// A short rendering of a label set for messages: at most 8 labels and
/// 200 bytes, lossy for invalid UTF-8.
pub(crate) fn preview<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> String {
    let mut s = String::from("{");
    let mut total = 0usize;
    for (i, (n, v)) in pairs.enumerate() {
        if i >= 8 || s.len() > 200 {
            total += 1;
            continue;
        }
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{}={:?}", short(n), short(v));
    }
    if total > 0 {
        let _ = write!(s, ", ... {total} more");
    }
    s.push('}');
    s
}

fn short(b: &[u8]) -> String {
    let cut = b.get(..64).unwrap_or(b);
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < b.len() {
        s.push_str("...");
    }
    s
}
