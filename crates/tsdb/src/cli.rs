//! Library side of the `cairn tsdb ...` commands: backfilling blocks from
//! OpenMetrics text, dumping samples, analysing, compacting, downsampling
//! and exporting blocks, with output
//! formats that match `promtool tsdb` where promtool's is specified.

pub mod analyze;
pub mod backfill;
pub mod compact;
pub mod downsample;
pub mod dump;
pub mod export;
pub mod openmetrics;

pub use analyze::{
    analyze, analyze_block, encoding_name, encodings_line, resolution_name, BlockAnalysis,
};
pub use backfill::{
    compatible_block_duration, create_blocks_from_openmetrics, create_blocks_from_openmetrics_text,
    DEFAULT_BLOCK_DURATION,
};
pub use cairn_model::format_go_g;
pub use compact::{chunk_encodings, compact, compact_with, CompactOptions, CompactSummary};
pub use downsample::downsample;
pub use dump::dump;
pub use export::{export, ExportOptions, ExportSummary};
pub use openmetrics::{OmEntry, OmParser, OmSample};
