//! Histogram "stats" decoding, as Prometheus does for selectors whose
//! histograms only feed `histogram_count`/`histogram_sum`/`histogram_avg`
//! (the plan decides which: `Selection::stats`).
//!
//! Such selectors deliver histograms without buckets (count, sum and the
//! counter reset hint only) and turn an unknown counter reset hint into
//! "reset" or "not reset" by comparing each histogram with the previous
//! one of the series.

use std::sync::Arc;

use cairn_model::{CounterResetHint, FloatHistogram};

/// Rewrites one series' histograms, in time order, for stats decoding.
#[derive(Default)]
pub(crate) struct StatsDecoder {
    last: Option<Arc<FloatHistogram>>,
}

impl StatsDecoder {
    /// The stats form of `h`, the next histogram of the series.
    pub(crate) fn apply(&mut self, h: Arc<FloatHistogram>) -> Arc<FloatHistogram> {
        let mut hint = h.counter_reset_hint;
        if hint == CounterResetHint::Unknown {
            if let Some(prev) = &self.last {
                hint = if h.detect_reset(prev) {
                    CounterResetHint::CounterReset
                } else {
                    CounterResetHint::NotCounterReset
                };
            }
        }
        self.last = Some(h.clone());
        Arc::new(FloatHistogram {
            counter_reset_hint: hint,
            count: h.count,
            sum: h.sum,
            ..Default::default()
        })
    }
}
