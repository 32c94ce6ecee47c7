//! Aggregation kernels: `sum`, `avg`, ..., `topk`, `count_values`,
//! `limitk`, `limit_ratio`, over already evaluated input.
//!
//! Groups are formed in order of first appearance in the input, as
//! Prometheus does; `without` always drops the metric name. Float sums use
//! Kahan-Neumaier compensation and `avg` switches to an incremental mean
//! when the running sum overflows, which keeps results identical to
//! Prometheus's within the scripts' tolerance.
//!
//! Two kernels: [`columns`] folds whole columns for the operators whose
//! running state is [`FloatAgg`]; [`step`] takes one step's instant
//! vector, for every operator. Both visit a group's members in input order
//! with the same arithmetic, so they agree bit for bit where both apply.

mod fold;
mod step;

use cairn_model::{Labels, METRIC_NAME};

pub(crate) use fold::columns;
pub(crate) use step::step;

/// The labels of the group a series with labels `m` falls in.
fn group_labels(m: &Labels, without: bool, names: &[String]) -> Labels {
    let mut n: Vec<&str> = names.iter().map(String::as_str).collect();
    if without {
        n.push(METRIC_NAME);
        m.without(&n)
    } else if names.is_empty() {
        Labels::empty()
    } else {
        m.keep(&n)
    }
}
