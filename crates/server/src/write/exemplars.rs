//! Exemplars of both protocols: turned into [`Exemplar`] values and
//! appended after their series' samples, in the same appender (so the
//! commit logs them to the WAL with the samples).
//!
//! As in Prometheus's remote-write handler, an exemplar that cannot be
//! stored (malformed labels, out of order, storage disabled) is counted
//! and logged, never a reason to refuse the request: `Exemplars-Written`
//! and `cairn_remote_write_exemplars_{received,stored,failed}_total` say
//! what happened to them.

use cairn_model::{Exemplar, Labels};
use cairn_storage::{Appender, SeriesRef};

use super::outcome::WriteOutcome;

/// An exemplar from its raw label pairs (any order; names must be UTF-8,
/// non-empty and unique; empty values are dropped), or `None` when they
/// are not valid.
pub(super) fn from_raw<'a>(
    pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    value: f64,
    ts: i64,
) -> Option<Exemplar> {
    let mut v: Vec<(&str, &str)> = Vec::new();
    for (n, val) in pairs {
        v.push((std::str::from_utf8(n).ok()?, std::str::from_utf8(val).ok()?));
    }
    v.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let labels = Labels::try_from_sorted(v).ok()?;
    Some(Exemplar { labels, value, ts })
}

/// Appends `e` (or counts the invalid one) for the series `r`/`labels`
/// (`r` may be 0: Prometheus sends exemplars in series entries of their
/// own, without samples). The series must exist: an exemplar does not
/// create one.
pub(super) fn append(
    app: &mut dyn Appender,
    r: SeriesRef,
    labels: &Labels,
    e: Option<&Exemplar>,
    out: &mut WriteOutcome,
) {
    let Some(e) = e else {
        tracing::debug!(series = %labels, "remote write exemplar with invalid labels dropped");
        out.exemplars_failed += 1;
        return;
    };
    match app.append_exemplar(r, labels, e) {
        Ok(_) => out.exemplars_written += 1,
        Err(err) => {
            tracing::debug!(series = %labels, error = %err, "remote write exemplar not stored");
            out.exemplars_failed += 1;
        }
    }
}
