//! What one write request stored and refused, and the refusal rules both
//! protocols share: one message per series and reason (the first refused
//! sample's error, with the count), samples too far in the future refused
//! before they reach the appender, client errors refused, any other
//! storage failure failing the whole request.

use std::fmt::Write as _;

use cairn_model::Labels;
use cairn_storage::{SeriesRef, StorageError};

use crate::metrics::{Metrics, RejectReason};
use crate::{ServerConfig, ServerError};

/// What one request stored and refused.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    pub samples_written: u64,
    pub histograms_written: u64,
    pub exemplars_written: u64,
    pub exemplars_received: u64,
    /// Exemplars that could not be stored (counted, never refused).
    pub exemplars_failed: u64,
    /// Start timestamps staged as zero samples (not in `samples_written`).
    pub start_zeros_written: u64,
    pub samples_refused: u64,
    pub metadata_stored: u64,
    pub metadata_failed: u64,
    /// Up to `max_error_messages` refusal messages.
    pub messages: Vec<String>,
    /// Refusal messages beyond those kept.
    pub messages_dropped: u64,
    refused_by: Vec<(RejectReason, u64)>,
    refusals: u64,
}

impl WriteOutcome {
    pub(super) fn refuse(
        &mut self,
        cfg: &ServerConfig,
        r: RejectReason,
        n: u64,
        msg: impl FnOnce() -> String,
    ) {
        self.refusals += 1;
        self.samples_refused += n;
        match self.refused_by.iter_mut().find(|(x, _)| *x == r) {
            Some((_, c)) => *c += n,
            None if n > 0 => self.refused_by.push((r, n)),
            None => {}
        }
        if self.messages.len() < cfg.max_error_messages {
            self.messages.push(msg());
        } else {
            self.messages_dropped += 1;
        }
    }

    /// Samples refused for reason `r`.
    pub fn refused(&self, r: RejectReason) -> u64 {
        self.refused_by
            .iter()
            .find(|(x, _)| *x == r)
            .map_or(0, |(_, c)| *c)
    }

    /// The 400 body when something was refused, else `None`.
    pub fn refusal_message(&self) -> Option<String> {
        if self.refusals == 0 {
            return None;
        }
        let mut s = format!(
            "refused {} samples ({} written):",
            self.samples_refused, self.samples_written
        );
        for m in &self.messages {
            s.push_str("\n  ");
            s.push_str(m);
        }
        if self.messages_dropped > 0 {
            let _ = write!(s, "\n  ... and {} more", self.messages_dropped);
        }
        Some(s)
    }

    /// Adds the counts to the server's metrics.
    pub fn record(&self, m: &Metrics) {
        m.add_appended(self.samples_written);
        m.add_histograms_appended(self.histograms_written);
        m.add_start_zeros(self.start_zeros_written);
        for (r, n) in &self.refused_by {
            m.add_rejected(*r, *n);
        }
        m.add_exemplars(
            self.exemplars_received,
            self.exemplars_written,
            self.exemplars_failed,
        );
        m.add_metadata(self.metadata_stored, self.metadata_failed);
    }
}

/// Adds `n` to the request's sample count `total`; past
/// [`ServerConfig::max_samples_per_request`] the whole request is refused
/// (the caller rolls back what was appended).
pub(super) fn count_samples(
    total: &mut usize,
    n: usize,
    cfg: &ServerConfig,
) -> Result<(), ServerError> {
    *total = total.saturating_add(n);
    let limit = cfg.max_samples_per_request;
    if limit > 0 && *total > limit {
        return Err(ServerError::BadRequest(format!(
            "request refused: it holds more than {limit} samples (--web.remote-write-receiver.max-samples-per-request); send smaller batches (queue_config.max_samples_per_send)"
        )));
    }
    Ok(())
}

/// One series' refused samples, one entry per reason: the first refused
/// sample's message and how many were refused.
#[derive(Default)]
pub(super) struct SeriesRefusals(Vec<(RejectReason, u64, String)>);

impl SeriesRefusals {
    /// Whether `t` is past `max_t`: such a sample is noted and must not be
    /// appended.
    pub(super) fn too_far(&mut self, t: i64, max_t: i64, cfg: &ServerConfig) -> bool {
        if t <= max_t {
            return false;
        }
        self.note(RejectReason::TooFarInFuture, || {
            format!(
                "out of bounds: sample at {t} is too far in the future (server time + {} ms)",
                cfg.max_future_ms
            )
        });
        true
    }

    /// Accounts for one append's result: a stored sample moves `r` to its
    /// series reference, a client error is noted, any other failure fails
    /// the request.
    pub(super) fn account(
        &mut self,
        res: cairn_storage::Result<SeriesRef>,
        r: &mut SeriesRef,
        out: &mut WriteOutcome,
    ) -> Result<(), ServerError> {
        match res {
            Ok(x) => {
                *r = x;
                out.samples_written += 1;
            }
            Err(e) if e.is_client_error() => {
                self.note(reject_reason(&e), || e.to_string());
            }
            Err(e) => return Err(ServerError::Storage(e)),
        }
        Ok(())
    }

    /// [`Self::account`] for a histogram sample: a stored one counts in
    /// `histograms_written`; storage that keeps no native histograms
    /// refuses them (reason `native_histogram`) instead of failing the
    /// request, since retrying cannot help.
    pub(super) fn account_histogram(
        &mut self,
        res: cairn_storage::Result<SeriesRef>,
        r: &mut SeriesRef,
        out: &mut WriteOutcome,
    ) -> Result<(), ServerError> {
        match res {
            Ok(x) => {
                *r = x;
                out.histograms_written += 1;
            }
            Err(StorageError::HistogramsUnsupported) => {
                self.note(RejectReason::NativeHistogram, || {
                    "native histograms are not supported by this storage".to_owned()
                });
            }
            Err(e) if e.is_client_error() => {
                self.note(reject_reason(&e), || e.to_string());
            }
            Err(e) => return Err(ServerError::Storage(e)),
        }
        Ok(())
    }

    /// Notes one refused sample for reason `r`; `msg` makes the message
    /// when it is the first for that reason.
    pub(super) fn note(&mut self, r: RejectReason, msg: impl FnOnce() -> String) {
        match self.0.iter_mut().find(|(x, _, _)| *x == r) {
            Some((_, n, _)) => *n += 1,
            None => self.0.push((r, 1, msg())),
        }
    }

    /// Reports the noted refusals of the series `labels`.
    pub(super) fn emit(self, labels: &Labels, cfg: &ServerConfig, out: &mut WriteOutcome) {
        for (reason, n, msg) in self.0 {
            out.refuse(cfg, reason, n, || {
                if n > 1 {
                    format!("{msg} for series {labels} ({n} samples refused)")
                } else {
                    format!("{msg} for series {labels}")
                }
            });
        }
    }
}

fn reject_reason(e: &StorageError) -> RejectReason {
    match e {
        StorageError::OutOfOrderSample { .. } => RejectReason::OutOfOrder,
        StorageError::OutOfBounds { .. } => RejectReason::OutOfBounds,
        StorageError::TooOldSample { .. } => RejectReason::TooOld,
        StorageError::DuplicateSampleForTimestamp { .. }
        | StorageError::DuplicateHistogramForTimestamp { .. } => RejectReason::Duplicate,
        StorageError::InvalidHistogram { .. } => RejectReason::InvalidHistogram,
        StorageError::HistogramsUnsupported => RejectReason::NativeHistogram,
        StorageError::SeriesLimit { .. } => RejectReason::SeriesLimit,
        StorageError::MetricSeriesLimit { .. } => RejectReason::MetricSeriesLimit,
        _ => RejectReason::InvalidLabels,
    }
}
