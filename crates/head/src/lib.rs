//! The in-memory head of the database: the most recent samples, before they
//! are cut into blocks.
//!
//! - Series are created on first append and identified by a `u64` ref; the
//!   series maps are lock-striped so parallel appenders rarely contend.
//! - Samples go into an open chunk per series, cut where Prometheus cuts
//!   (see [`cut`]: about 120 samples, never across a chunk-range boundary);
//!   full chunks are moved to the head chunk files.
//! - Commits are logged to the WAL before they are applied; on open the head
//!   replays the chunk files and the WAL.
//! - Queriers see a consistent snapshot (see [`isolation`]); out-of-order
//!   samples within [`HeadOptions::ooo_window`] are merged in on read.
//!   Those older than the last truncation (late samples) are logged to
//!   `wbl/` and flushed to blocks of their own (see `late`).
//!
//! All time bounds are inclusive milliseconds. Design notes: `docs/head.md`.

mod appender;
pub mod cut;
mod delete;
mod disk_chunks;
mod error;
mod exemplars;
mod head;
mod hist;
mod hist_ooo;
mod index_adapter;
pub mod isolation;
mod late;
mod memory;
mod options;
mod postings;
mod querier;
mod read;
mod replay;
mod series;
pub mod snapshot;
mod sorted_order;
mod spill;
mod stats;
mod stripes;
mod truncate;
mod wal_log;
mod xor;

pub use error::{HeadError, Result};
pub use exemplars::{ExemplarStats, DEFAULT_MAX_EXEMPLARS};
pub use head::Head;
pub use index_adapter::IndexLike;
pub use late::{LateFlush, LateStats};
pub use memory::HeadMemory;
pub use options::{HeadOptions, DEFAULT_CHUNK_RANGE};
pub use postings::{CardinalityStats, HeadIndex, NameCount};
pub use replay::status::{ReplayProgressNow, ReplayStatus};
pub use snapshot::SnapshotStats;
pub use stats::HeadStats;
pub use wal_log::{FsyncPolicy, WalOptions};
