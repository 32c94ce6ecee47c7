//! The time-series database: blocks (meta.json, index, chunks, tombstones),
//! compaction, retention and the [`Db`] handle that joins them with the head.
//!
//! Time bounds: block ranges are half-open `[min_time, max_time)` as in
//! meta.json; querier ranges, chunk bounds and tombstone intervals are
//! closed, as everywhere else in Cairn.

pub mod block;
pub mod cli;
mod db;
pub mod downsample;
pub mod encode;
mod error;
mod fsutil;
pub mod meta;
pub mod plan;
pub mod retention;
pub mod tombstones;

pub use block::{write_block, Block, BlockQuerier, BlockWriteOptions};
pub use cairn_codec::FloatEncoding;
pub use db::{BlockSource, Db, DbEvent, DbOptions, RemoteBlocks, RetentionHold};
pub use error::{BoxError, Result, TsdbError};
pub use meta::{BlockCompaction, BlockDesc, BlockMeta, BlockStats};
pub use retention::RetentionReason;
pub use tombstones::{Interval, Intervals, Tombstones};
pub use ulid::Ulid;
