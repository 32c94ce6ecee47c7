//! Library side of the `cairn tsdb ...` commands: backfilling blocks from
//! OpenMetrics text, dumping samples and analysing blocks, with output
//! formats that match `promtool tsdb`.

pub mod gofloat;
pub mod openmetrics;

pub use gofloat::format_go_g;
pub use openmetrics::{OmEntry, OmParser, OmSample};
