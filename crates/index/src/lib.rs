//! Prometheus index format v2: symbols, series, postings and table of contents.
//!
//! A block's `index` file maps label sets to series and series to the chunks
//! that hold their samples. [`IndexWriter`] writes it byte-compatibly with
//! Prometheus (so `promtool` reads Cairn's blocks), [`IndexReader`] reads
//! files written by either (versions 1 and 2). The layout is specified in
//! `docs/format/index.md`.
//!
//! Contracts:
//! - Chunk time bounds in [`ChunkMeta`] are inclusive on both ends.
//! - Series references in a block index grow with the label sets: iterating
//!   a postings bitmap yields series in label order.
//! - Label names and values are returned sorted (byte order).
//! - [`postings_for_matchers`] works on anything implementing [`IndexLike`],
//!   so the head's in-memory index shares its matcher semantics.

mod error;
mod format;
mod header;
mod postings;
mod reader;
mod writer;

use roaring::MultiOps;
/// The postings set type, re-exported so users need no direct `roaring` dependency.
pub use roaring::RoaringTreemap;

pub use error::{IndexError, Result};
pub use format::{Toc, ALL_POSTINGS_KEY, FORMAT_V1, FORMAT_V2, MAGIC_INDEX, SERIES_ALIGN, TOC_LEN};
pub use header::write_index_header;
pub use postings::postings_for_matchers;
pub use reader::IndexReader;
pub use writer::IndexWriter;

/// Where one chunk of a series lives and which samples it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkMeta {
    /// Timestamp of the chunk's first sample (inclusive).
    pub min_time: i64,
    /// Timestamp of the chunk's last sample (inclusive).
    pub max_time: i64,
    /// Block chunk reference: `(segment_index << 32) | byte_offset`.
    pub chunk_ref: u64,
}

/// Label lookups shared by block indexes and the head's in-memory index.
///
/// Postings are sets of series references. The all-postings key
/// ([`ALL_POSTINGS_KEY`], the empty name and value) is never listed as a label
/// name.
pub trait IndexLike {
    /// Every label name, sorted.
    fn label_names(&self) -> Result<Vec<String>>;

    /// Every value of label `name`, sorted; empty when the name is unknown.
    fn label_values(&self, name: &str) -> Result<Vec<String>>;

    /// Series that have label `name` set to `value`.
    fn postings(&self, name: &str, value: &str) -> Result<RoaringTreemap>;

    /// Every series.
    fn all_postings(&self) -> Result<RoaringTreemap>;

    /// Union of the postings of the values of `name` that start with `prefix`
    /// and satisfy `pred`. Implementations may skip values without the prefix
    /// unseen; the default scans [`IndexLike::label_values`].
    fn postings_for_label_matching(
        &self,
        name: &str,
        prefix: &str,
        pred: &mut dyn FnMut(&str) -> bool,
    ) -> Result<RoaringTreemap> {
        let values = self.label_values(name)?;
        let start = values.partition_point(|v| v.as_str() < prefix);
        let mut lists = Vec::new();
        for v in values.get(start..).unwrap_or_default() {
            if !v.starts_with(prefix) {
                break;
            }
            if pred(v) {
                lists.push(self.postings(name, v)?);
            }
        }
        Ok(lists.into_iter().union())
    }
}
