//! The request handlers, one module per concern. Each is a method of
//! [`crate::Api`] that the route table (`routes`) calls; they read
//! parameters through `params`, answer through `reply`, and encode JSON
//! through `json`.

mod admin;
mod federate;
mod parse_query;
mod query;
mod series;
mod status;

use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) use parse_query::parse_query;
pub(crate) use query::format_query;
pub use status::RuntimeState;
pub(crate) use status::{empty_listing, target_metadata, targets};

/// The wall clock in ms: the default evaluation time and federation's "now".
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
