//! Library side of the `cairn tsdb ...` commands: backfilling blocks from
//! OpenMetrics text, dumping samples and analysing blocks, with output
//! formats that match `promtool tsdb` where promtool's is specified.

pub mod analyze;
pub mod backfill;
pub mod downsample;
pub mod dump;
pub mod openmetrics;

pub use analyze::{analyze, analyze_block, resolution_name, BlockAnalysis};
pub use backfill::{
    compatible_block_duration, create_blocks_from_openmetrics, create_blocks_from_openmetrics_text,
    DEFAULT_BLOCK_DURATION,
};
pub use cairn_model::format_go_g;
pub use downsample::downsample;
pub use dump::dump;
pub use openmetrics::{OmEntry, OmParser, OmSample};
