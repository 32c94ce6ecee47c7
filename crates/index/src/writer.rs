//! Writes an index file in format version 2.
//!
//! Call order: [`IndexWriter::add_symbol`] for every string used by any label
//! (strictly ascending, all before the first series), then
//! [`IndexWriter::add_series`] for each series in strictly ascending label
//! order, then [`IndexWriter::finish`]. Series references are assigned in
//! that order (byte offset / 16), so sorted postings yield label-sorted
//! series. Postings are gathered in memory while series are added and written
//! by `finish`, which also fsyncs the file and its directory. A writer that is
//! dropped without `finish` leaves an incomplete file without a TOC, which
//! every reader rejects.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::hash::BuildHasher;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use cairn_model::Labels;

use crate::format::{Toc, ALL_POSTINGS_KEY, FORMAT_V2, MAGIC_INDEX, SERIES_ALIGN};
use crate::{ChunkMeta, IndexError, Result};
use cairn_codec::crc32c;
use cairn_codec::cursor::{put_be32, put_uvarint_str};
use cairn_codec::varint::{put_uvarint, put_varint};

/// Largest series reference a 4-byte postings entry can hold.
const MAX_SERIES_REF: u64 = u32::MAX as u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Symbols,
    Series,
}

/// Streams an index file to disk. See the module docs for the call order.
pub struct IndexWriter {
    path: PathBuf,
    out: BufWriter<File>,
    pos: u64,
    stage: Stage,
    toc: Toc,
    /// Every symbol, in table order (ascending).
    symbols: Vec<String>,
    /// A symbol's hash to its table index, for the first symbol of each
    /// hash (a lookup that misses here, or finds another string, falls back
    /// to a binary search): ten million series of a dozen labels each would
    /// otherwise make hundreds of millions of binary searches over millions
    /// of strings.
    symbol_index: HashMap<u64, u32, foldhash::fast::RandomState>,
    hasher: foldhash::fast::RandomState,
    /// Encoded symbol entries, written out when the first series arrives.
    symbol_buf: Vec<u8>,
    last_series: Option<Labels>,
    /// Label name symbol -> value symbol -> series references, all ascending.
    postings: BTreeMap<u32, BTreeMap<u32, Vec<u32>>>,
    all_series: Vec<u32>,
    buf: Vec<u8>,
}

impl IndexWriter {
    /// Creates (or truncates) the index file at `path` and writes the header.
    pub fn create(path: &Path) -> Result<Self> {
        let io = |op| {
            let path = path.to_path_buf();
            move |source| IndexError::Io { path, op, source }
        };
        let f = File::create(path).map_err(io("create"))?;
        let mut out = BufWriter::with_capacity(1 << 20, f);
        let mut head = MAGIC_INDEX.to_be_bytes().to_vec();
        head.push(FORMAT_V2);
        out.write_all(&head).map_err(io("write header"))?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            pos: head.len() as u64,
            stage: Stage::Symbols,
            toc: Toc::default(),
            symbols: Vec::new(),
            symbol_index: HashMap::default(),
            hasher: foldhash::fast::RandomState::default(),
            symbol_buf: Vec::new(),
            last_series: None,
            postings: BTreeMap::new(),
            all_series: Vec::new(),
            buf: Vec::with_capacity(1 << 12),
        })
    }

    fn io_err(&self, op: &'static str) -> impl FnOnce(std::io::Error) -> IndexError {
        let path = self.path.clone();
        move |source| IndexError::Io { path, op, source }
    }

    fn invalid(&self, what: &'static str, reason: String) -> IndexError {
        IndexError::InvalidInput {
            path: self.path.clone(),
            what,
            reason,
        }
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        let err = self.io_err("write");
        self.out.write_all(b).map_err(err)?;
        self.pos += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self, align: u64) -> Result<()> {
        let rem = self.pos % align;
        if rem != 0 {
            let zeros = vec![0u8; (align - rem) as usize];
            self.write(&zeros)?;
        }
        Ok(())
    }

    /// Writes `body` preceded by its 4-byte big-endian length and followed
    /// by its CRC32-Castagnoli.
    fn write_section(&mut self, body: &[u8], what: &'static str) -> Result<()> {
        let len = u32::try_from(body.len()).map_err(|_| {
            self.invalid(
                what,
                format!("{} bytes exceed the 4-byte length field", body.len()),
            )
        })?;
        self.write(&len.to_be_bytes())?;
        self.write(body)?;
        self.write(&crc32c(body).to_be_bytes())
    }

    /// Adds the next symbol. Symbols must be strictly ascending (byte order)
    /// and must all come before the first series.
    pub fn add_symbol(&mut self, s: &str) -> Result<()> {
        if self.stage != Stage::Symbols {
            return Err(self.invalid(
                "call order",
                format!("symbol {s:?} added after the first series"),
            ));
        }
        if let Some(last) = self.symbols.last() {
            if last.as_str() >= s {
                return Err(IndexError::OutOfOrder {
                    path: self.path.clone(),
                    what: "symbol",
                    prev: format!("{last:?}"),
                    next: format!("{s:?}"),
                });
            }
        }
        if self.symbols.len() >= u32::MAX as usize {
            return Err(self.invalid("symbol", "more than 2^32-1 symbols".to_owned()));
        }
        put_uvarint_str(&mut self.symbol_buf, s);
        let i = self.symbols.len() as u32;
        self.symbol_index
            .entry(self.hasher.hash_one(s))
            .or_insert(i);
        self.symbols.push(s.to_owned());
        Ok(())
    }

    fn finish_symbols(&mut self) -> Result<()> {
        if self.stage != Stage::Symbols {
            return Ok(());
        }
        self.toc.symbols = self.pos;
        let mut body = Vec::with_capacity(4 + self.symbol_buf.len());
        put_be32(&mut body, self.symbols.len() as u32);
        body.append(&mut self.symbol_buf);
        self.write_section(&body, "symbol table")?;
        self.stage = Stage::Series;
        self.toc.series = self.pos;
        Ok(())
    }

    fn symbol_ref(&self, s: &str, series: &Labels) -> Result<u32> {
        if let Some(&i) = self.symbol_index.get(&self.hasher.hash_one(s)) {
            if self.symbols.get(i as usize).is_some_and(|x| x == s) {
                return Ok(i);
            }
        }
        self.symbols
            .binary_search_by(|x| x.as_str().cmp(s))
            .map(|i| i as u32)
            .map_err(|_| {
                self.invalid(
                    "series",
                    format!("symbol {s:?} of series {series} was not added"),
                )
            })
    }

    /// Adds a series and its chunk metadata and returns its reference.
    ///
    /// Label sets must be non-empty and strictly ascending in Prometheus's
    /// label order; every name and value must have been added as a symbol.
    /// Chunks must be in time order: `min_time <= max_time` and each chunk's
    /// `min_time` above the previous chunk's `max_time`.
    pub fn add_series(&mut self, labels: &Labels, chunks: &[ChunkMeta]) -> Result<u64> {
        self.finish_symbols()?;
        if labels.is_empty() {
            return Err(self.invalid("series", "empty label set".to_owned()));
        }
        if let Some(last) = &self.last_series {
            if last >= labels {
                return Err(IndexError::OutOfOrder {
                    path: self.path.clone(),
                    what: "series",
                    prev: last.to_string(),
                    next: labels.to_string(),
                });
            }
        }
        for (i, c) in chunks.iter().enumerate() {
            if c.max_time < c.min_time {
                return Err(self.invalid(
                    "chunk",
                    format!(
                        "series {labels}: chunk {i} max_time {} < min_time {}",
                        c.max_time, c.min_time
                    ),
                ));
            }
            if let Some(p) = i.checked_sub(1).and_then(|j| chunks.get(j)) {
                if c.min_time <= p.max_time {
                    return Err(self.invalid(
                        "chunk",
                        format!(
                            "series {labels}: chunk {i} min_time {} not above previous max_time {}",
                            c.min_time, p.max_time
                        ),
                    ));
                }
            }
        }

        // Resolve every symbol before touching the file or the postings, so
        // a rejected series leaves the writer usable.
        let mut refs = Vec::with_capacity(labels.len());
        for l in labels.iter() {
            refs.push((
                self.symbol_ref(l.name, labels)?,
                self.symbol_ref(l.value, labels)?,
            ));
        }

        self.pad(SERIES_ALIGN)?;
        let series_ref = self.pos / SERIES_ALIGN;
        if series_ref > MAX_SERIES_REF {
            return Err(self.invalid(
                "series",
                format!("series reference {series_ref} exceeds 4 bytes (index over 64 GiB)"),
            ));
        }
        let r32 = series_ref as u32;

        let mut body = std::mem::take(&mut self.buf);
        body.clear();
        put_uvarint(&mut body, refs.len() as u64);
        for &(n, v) in &refs {
            put_uvarint(&mut body, u64::from(n));
            put_uvarint(&mut body, u64::from(v));
        }
        put_uvarint(&mut body, chunks.len() as u64);
        if let Some((first, rest)) = chunks.split_first() {
            put_varint(&mut body, first.min_time);
            put_uvarint(
                &mut body,
                first.max_time.wrapping_sub(first.min_time) as u64,
            );
            put_uvarint(&mut body, first.chunk_ref);
            let mut prev_maxt = first.max_time;
            let mut prev_ref = first.chunk_ref;
            for c in rest {
                put_uvarint(&mut body, c.min_time.wrapping_sub(prev_maxt) as u64);
                put_uvarint(&mut body, c.max_time.wrapping_sub(c.min_time) as u64);
                put_varint(&mut body, c.chunk_ref.wrapping_sub(prev_ref) as i64);
                prev_maxt = c.max_time;
                prev_ref = c.chunk_ref;
            }
        }
        let mut head = Vec::with_capacity(10);
        put_uvarint(&mut head, body.len() as u64);
        let sum = crc32c(&body);
        let written = self
            .write(&head)
            .and_then(|()| self.write(&body))
            .and_then(|()| self.write(&sum.to_be_bytes()));
        self.buf = body;
        written?;
        for (n, v) in refs {
            self.postings
                .entry(n)
                .or_default()
                .entry(v)
                .or_default()
                .push(r32);
        }

        self.all_series.push(r32);
        self.last_series = Some(labels.clone());
        Ok(series_ref)
    }

    fn symbol(&self, r: u32) -> &str {
        self.symbols.get(r as usize).map_or("", String::as_str)
    }

    /// Writes label indices, postings, the offset tables and the TOC, then
    /// fsyncs the file and its directory.
    pub fn finish(mut self) -> Result<()> {
        self.finish_symbols()?;
        let postings = std::mem::take(&mut self.postings);

        // Label indices: one per label name, listing its values' symbols.
        self.pad(4)?;
        self.toc.label_indices = self.pos;
        let mut label_offsets: Vec<(u32, u64)> = Vec::with_capacity(postings.len());
        for (&name, values) in &postings {
            self.pad(4)?;
            label_offsets.push((name, self.pos));
            let mut body = Vec::with_capacity(8 + 4 * values.len());
            put_be32(&mut body, 1);
            put_be32(&mut body, values.len() as u32);
            for &v in values.keys() {
                put_be32(&mut body, v);
            }
            self.write_section(&body, "label index")?;
        }

        // Label offset table.
        self.toc.label_indices_table = self.pos;
        let mut body = Vec::new();
        put_be32(&mut body, label_offsets.len() as u32);
        for &(name, off) in &label_offsets {
            put_uvarint(&mut body, 1);
            put_uvarint_str(&mut body, self.symbol(name));
            put_uvarint(&mut body, off);
        }
        self.write_section(&body, "label offset table")?;

        // Postings lists, the all-series list first, each 4-byte aligned.
        self.pad(4)?;
        self.toc.postings = self.pos;
        let mut table = Vec::new();
        let mut entries: u32 = 0;
        let all = std::mem::take(&mut self.all_series);
        self.write_postings(ALL_POSTINGS_KEY.0, ALL_POSTINGS_KEY.1, &all, &mut table)?;
        entries += 1;
        for (&name, values) in &postings {
            for (&value, refs) in values {
                let (n, v) = (self.symbol(name).to_owned(), self.symbol(value).to_owned());
                self.write_postings(&n, &v, refs, &mut table)?;
                entries = entries.checked_add(1).ok_or_else(|| {
                    self.invalid("postings", "more than 2^32-1 postings lists".to_owned())
                })?;
            }
        }

        // Postings offset table.
        self.toc.postings_table = self.pos;
        let mut body = Vec::with_capacity(4 + table.len());
        put_be32(&mut body, entries);
        body.extend_from_slice(&table);
        self.write_section(&body, "postings offset table")?;

        let mut toc = Vec::new();
        self.toc.encode(&mut toc);
        self.write(&toc)?;

        let err = self.io_err("flush");
        let f = self.out.into_inner().map_err(|e| err(e.into_error()))?;
        f.sync_all().map_err(|source| IndexError::Io {
            path: self.path.clone(),
            op: "fsync",
            source,
        })?;
        drop(f);
        sync_dir(&self.path)?;
        tracing::debug!(path = %self.path.display(), series = all.len(), "index written");
        Ok(())
    }

    fn write_postings(
        &mut self,
        name: &str,
        value: &str,
        refs: &[u32],
        table: &mut Vec<u8>,
    ) -> Result<()> {
        self.pad(4)?;
        put_uvarint(table, 2);
        put_uvarint_str(table, name);
        put_uvarint_str(table, value);
        put_uvarint(table, self.pos);
        let mut body = Vec::with_capacity(4 + 4 * refs.len());
        put_be32(&mut body, refs.len() as u32);
        for &r in refs {
            put_be32(&mut body, r);
        }
        self.write_section(&body, "postings list")
    }
}

fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let d = File::open(dir).map_err(|source| IndexError::Io {
        path: dir.to_path_buf(),
        op: "open directory",
        source,
    })?;
    d.sync_all().map_err(|source| IndexError::Io {
        path: dir.to_path_buf(),
        op: "fsync directory",
        source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)] // test code

    use super::*;
    use cairn_model::Labels;

    /// A symbol whose hash entry names another symbol (as when two
    /// symbols share a hash) is still found, by the binary search.
    #[test]
    fn symbols_sharing_a_hash_entry_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = IndexWriter::create(&dir.path().join("index")).unwrap();
        for s in ["a", "b", "job", "x"] {
            w.add_symbol(s).unwrap();
        }
        let l = Labels::from_pairs([("a", "x"), ("job", "b")]);
        let want: Vec<u32> = ["a", "x", "job", "b"]
            .iter()
            .map(|s| w.symbol_ref(s, &l).unwrap())
            .collect();
        assert_eq!(want, [0, 3, 2, 1]);
        // Every entry now points at symbol 0.
        for v in w.symbol_index.values_mut() {
            *v = 0;
        }
        for (s, i) in ["a", "x", "job", "b"].iter().zip(&want) {
            assert_eq!(w.symbol_ref(s, &l).unwrap(), *i);
        }
        w.symbol_index.clear();
        assert_eq!(w.symbol_ref("job", &l).unwrap(), 2);
        assert!(w.symbol_ref("missing", &l).is_err());
    }
}
