//! Histogram "stats" decoding, as Prometheus does for selectors whose
//! histograms only feed `histogram_count`/`histogram_sum`/`histogram_avg`.
//!
//! Such selectors deliver histograms without buckets (count, sum and the
//! counter reset hint only) and turn an unknown counter reset hint into
//! "reset" or "not reset" by comparing each histogram with the previous
//! one of the series. A subquery, `histogram_quantile` or
//! `histogram_fraction` between the selector and the accessor switches
//! this off, since those need the buckets.

use std::collections::HashSet;
use std::sync::Arc;

use cairn_model::{CounterResetHint, FloatHistogram};
use promql_parser::parser::{Expr, VectorSelector};

use super::node_id;

/// The node ids of the vector selectors that use stats decoding.
pub(crate) fn stats_selectors(e: &Expr) -> HashSet<usize> {
    let mut out = HashSet::new();
    walk(e, false, &mut out);
    out
}

fn walk(e: &Expr, stats: bool, out: &mut HashSet<usize>) {
    let mut sel = |vs: &VectorSelector| {
        if stats {
            out.insert(node_id(vs));
        }
    };
    match e {
        Expr::VectorSelector(vs) => sel(vs),
        Expr::MatrixSelector(ms) => sel(&ms.vs),
        Expr::Subquery(sq) => walk(&sq.expr, false, out),
        Expr::Paren(p) => walk(&p.expr, stats, out),
        Expr::Unary(u) => walk(&u.expr, stats, out),
        Expr::Binary(b) => {
            walk(&b.lhs, stats, out);
            walk(&b.rhs, stats, out);
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, stats, out);
            }
            walk(&a.expr, stats, out);
        }
        Expr::Call(c) => {
            let s = match c.func.name {
                "histogram_count" | "histogram_sum" | "histogram_avg" => true,
                "histogram_quantile" | "histogram_fraction" => false,
                _ => stats,
            };
            for a in &c.args.args {
                walk(a, s, out);
            }
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

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
