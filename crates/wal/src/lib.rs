//! Cairn's segmented write-ahead log: pages, records, checkpoints and replay.
//!
//! The head logs every new series and every batch of samples here before it
//! acknowledges an append, so a restart can rebuild the in-memory head. The
//! on-disk layout is Prometheus's (see `docs/format/wal.md`): numbered
//! segment files of 32 KiB pages holding CRC-checked record fragments, and
//! `checkpoint.NNNNNNNN` directories. Prometheus's record encodings are used
//! for series, samples, tombstones and metadata, so Cairn can replay a WAL
//! written by Prometheus (including snappy-compressed records) and the other
//! way round.
//!
//! Layers, bottom up: [`fragment`] (page/fragment framing), [`SegmentReader`]
//! (reading one segment), the writer behind [`Wal`], [`record`] (record
//! encodings), [`replay()`] and [`checkpoint()`].

mod checkpoint;
mod error;
pub mod fragment;
mod reader;
pub mod record;
mod replay;
mod segments;
mod wal;
mod writer;

pub use checkpoint::checkpoint;
pub use error::{Result, WalError};
pub use reader::{ReadError, SegmentReader};
pub use record::{
    Record, RefExemplar, RefFloatHistogramSample, RefHistogramSample, RefMetadata, RefSample,
    RefSeries, Stone,
};
pub use replay::{replay, replay_raw, replay_with_progress, Progress, ReplayStats};
pub use segments::{checkpoint_name, segment_name, segment_path};
pub use wal::{FsyncPolicy, Wal, WalOptions};
