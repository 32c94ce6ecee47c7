//! Reads index files of format versions 1 and 2.
//!
//! Opening maps the file, checks magic, version and TOC checksum, verifies
//! the checksums of the symbol table and the postings offset table, and
//! parses both into small in-memory tables that point back into the mapped
//! bytes. Series entries and postings lists are checksummed each time they
//! are read. No input makes the reader panic: every malformed byte becomes
//! an [`IndexError`].
//!
//! Version differences: in v1, symbol references are file offsets of the
//! symbol's entry and series references are file offsets of the series
//! entry; in v2 symbol references are positions in the symbol table and
//! series references are offsets divided by 16. Version 1 postings offset
//! tables need not be sorted; the reader sorts them.

use std::borrow::Cow;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_model::Labels;
use memmap2::Mmap;
use roaring::{MultiOps, RoaringBitmap, RoaringTreemap};

use crate::format::{Toc, FORMAT_V1, FORMAT_V2, HEADER_LEN, MAGIC_INDEX, SERIES_ALIGN, TOC_LEN};
use crate::{ChunkMeta, IndexError, IndexLike, Result};
use cairn_codec::{crc32c, ByteCursor, CodecError, RangeRead};

enum Backing {
    Mapped(Mmap),
    Owned(Vec<u8>),
    /// An index in object storage: `header` maps the local index header
    /// (docs/format/index-header.md: the file's header, symbol table,
    /// postings offset table and TOC at their offsets, holes elsewhere);
    /// series and postings lists are read from `source` by byte range.
    Sparse {
        header: Mmap,
        source: Arc<dyn RangeRead>,
    },
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            Backing::Mapped(m) => m,
            Backing::Owned(v) => v,
            Backing::Sparse { header, .. } => header,
        }
    }
}

/// A string stored in the file: offset of its bytes and their length.
#[derive(Debug, Clone, Copy)]
struct Span {
    off: usize,
    len: usize,
}

#[derive(Debug)]
struct ValueEntry {
    value: Span,
    postings: u64,
}

#[derive(Debug)]
struct NameEntry {
    name: String,
    /// Ascending by value.
    values: Vec<ValueEntry>,
}

/// A read-only view of one index file. Cheap to share across threads.
pub struct IndexReader {
    path: PathBuf,
    data: Backing,
    version: u8,
    toc: Toc,
    /// Symbol strings in table order.
    symbols: Vec<Span>,
    /// v1 only: file offset of each symbol's entry, ascending.
    symbol_entry_offsets: Vec<u64>,
    /// Ascending by name; excludes the all-postings key.
    names: Vec<NameEntry>,
    /// Offset of the postings list of every series, when present.
    all_postings: Option<u64>,
}

impl std::fmt::Debug for IndexReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexReader")
            .field("path", &self.path)
            .field("version", &self.version)
            .field("toc", &self.toc)
            .field("symbols", &self.symbols.len())
            .field("label_names", &self.names.len())
            .finish()
    }
}

impl IndexReader {
    /// Maps and validates the index file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let io = |op| {
            let path = path.to_path_buf();
            move |source| IndexError::Io { path, op, source }
        };
        let f = File::open(path).map_err(io("open"))?;
        let len = f.metadata().map_err(io("stat"))?.len();
        if len < (HEADER_LEN + TOC_LEN) as u64 {
            return Err(IndexError::Corrupt {
                path: path.to_path_buf(),
                section: "file",
                offset: 0,
                expected: format!("at least {} bytes", HEADER_LEN + TOC_LEN),
                found: format!("{len} bytes"),
            });
        }
        // SAFETY: the file is opened read-only and index files are immutable
        // once written (blocks are built in a temporary directory and renamed
        // into place; they are deleted, never rewritten). The mapping is owned
        // by the reader, so no slice handed out outlives it. Truncation by an
        // outside process could still raise SIGBUS, as with any mmap reader.
        let map = unsafe { Mmap::map(&f) }.map_err(io("mmap"))?;
        Self::parse(path.to_path_buf(), Backing::Mapped(map))
    }

    /// Opens an index held in object storage: `header` is its local index
    /// header (written by [`crate::write_index_header`]), `source` the
    /// index object. Symbols and label values are read from the header;
    /// series entries and postings lists are fetched from `source` by byte
    /// range when a query needs them. The header must be as long as the
    /// object.
    pub fn open_sparse(header: &Path, source: Arc<dyn RangeRead>) -> Result<Self> {
        let io = |op| {
            let path = header.to_path_buf();
            move |source| IndexError::Io { path, op, source }
        };
        let f = File::open(header).map_err(io("open"))?;
        let len = f.metadata().map_err(io("stat"))?.len();
        if len != source.size() {
            return Err(IndexError::Corrupt {
                path: header.to_path_buf(),
                section: "index header",
                offset: 0,
                expected: format!("{} bytes, the length of {}", source.size(), source.name()),
                found: format!("{len} bytes"),
            });
        }
        // SAFETY: as in `open`: a read-only mapping of a file that is
        // written once (in a temporary file renamed into place) and only
        // ever deleted afterwards; the mapping is owned by the reader.
        let header_map = unsafe { Mmap::map(&f) }.map_err(io("mmap"))?;
        let path = PathBuf::from(source.name());
        Self::parse(
            path,
            Backing::Sparse {
                header: header_map,
                source,
            },
        )
    }

    /// Parses an index held in memory (tests, fuzzing, embedded fixtures).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Self::parse(PathBuf::from("<memory>"), Backing::Owned(bytes))
    }

    /// Lets go of the pages of the mapped file that this process has read
    /// (they stay in the page cache and fault back in on the next read), so
    /// that a long sequential pass (downsampling) does not hold a whole
    /// block in its resident set. Does nothing for an in-memory index.
    pub fn release_pages(&self) {
        if let Backing::Mapped(m) | Backing::Sparse { header: m, .. } = &self.data {
            // SAFETY: a read-only shared mapping of an immutable file:
            // MADV_DONTNEED only drops this process's page-table entries,
            // and every later access faults in the same bytes from the file
            // (unlike a private writable mapping, nothing is discarded), so
            // slices borrowed from the map stay valid and unchanged.
            let _ = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }

    /// Whether series and postings are read by range from object storage
    /// ([`IndexReader::open_sparse`]).
    pub fn is_remote(&self) -> bool {
        matches!(self.data, Backing::Sparse { .. })
    }

    /// A hint for an index in object storage: series `refs` (ascending)
    /// will be read soon, so their entries are fetched now in few
    /// requests (entries less than 16 KiB apart share one). Does nothing
    /// for a local index.
    pub fn prefetch_series(&self, refs: &[u64]) {
        let Backing::Sparse { source, .. } = &self.data else {
            return;
        };
        let offs: Vec<u64> = refs.iter().filter_map(|&r| self.series_offset(r)).collect();
        source.prefetch(&cairn_codec::group_ranges(&offs, 16 << 10, 4 << 10));
    }

    /// The file's format version (1 or 2).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The parsed table of contents.
    pub fn toc(&self) -> Toc {
        self.toc
    }

    /// The path the index was opened from (`<memory>` for [`Self::from_bytes`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn corrupt(
        &self,
        section: &'static str,
        offset: u64,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> IndexError {
        corrupt(&self.path, section, offset, expected, found)
    }

    fn parse(path: PathBuf, data: Backing) -> Result<Self> {
        let b = data.bytes();
        if b.len() < HEADER_LEN + TOC_LEN {
            return Err(corrupt(
                &path,
                "file",
                0,
                format!("at least {} bytes", HEADER_LEN + TOC_LEN),
                format!("{} bytes", b.len()),
            ));
        }
        let mut d = ByteCursor::new(b);
        let magic = d.be32().map_err(|e| dec_err(&path, "header", 0, e))?;
        if magic != MAGIC_INDEX {
            return Err(IndexError::BadMagic {
                path,
                expected: MAGIC_INDEX,
                found: magic,
            });
        }
        let version = d.byte().map_err(|e| dec_err(&path, "header", 0, e))?;
        if version != FORMAT_V1 && version != FORMAT_V2 {
            return Err(IndexError::UnsupportedVersion {
                path,
                found: version,
            });
        }
        let toc_off = b.len() - TOC_LEN;
        let toc =
            Toc::decode(b.get(toc_off..).unwrap_or_default()).map_err(|(expected, found)| {
                IndexError::Checksum {
                    path: path.clone(),
                    section: "table of contents",
                    offset: toc_off as u64,
                    expected,
                    found,
                }
            })?;
        for (name, off) in [
            ("symbol table", toc.symbols),
            ("series", toc.series),
            ("label indices", toc.label_indices),
            ("label offset table", toc.label_indices_table),
            ("postings", toc.postings),
            ("postings offset table", toc.postings_table),
        ] {
            if off > toc_off as u64 {
                return Err(corrupt(
                    &path,
                    "table of contents",
                    toc_off as u64,
                    format!("{name} offset below {toc_off}"),
                    off.to_string(),
                ));
            }
        }

        let mut r = IndexReader {
            path,
            data,
            version,
            toc,
            symbols: Vec::new(),
            symbol_entry_offsets: Vec::new(),
            names: Vec::new(),
            all_postings: None,
        };
        r.read_symbols()?;
        r.read_postings_table()?;
        Ok(r)
    }

    /// Returns the body of the `len <4b> | body | crc <4b>` section at `off`
    /// after checking its checksum.
    fn section(&self, off: u64, what: &'static str) -> Result<&[u8]> {
        let b = self.data.bytes();
        let start = usize::try_from(off).unwrap_or(usize::MAX);
        let tail = b.get(start..).ok_or_else(|| {
            self.corrupt(
                what,
                off,
                format!("an offset within the {} byte file", b.len()),
                off.to_string(),
            )
        })?;
        let mut d = ByteCursor::new(tail);
        let len = d.be32().map_err(|e| self.dec(what, off, e))?;
        let body = d
            .bytes(u64::from(len))
            .map_err(|e| self.dec(what, off, e))?;
        self.check_crc(what, off, &mut d, body)?;
        Ok(body)
    }

    /// Reads the CRC32-Castagnoli that follows `body` in `d` (of the
    /// structure `what` at `off`) and checks it.
    fn check_crc(
        &self,
        what: &'static str,
        off: u64,
        d: &mut ByteCursor<'_>,
        body: &[u8],
    ) -> Result<()> {
        let expected = d.be32().map_err(|e| self.dec(what, off, e))?;
        let found = crc32c(body);
        if expected != found {
            return Err(IndexError::Checksum {
                path: self.path.clone(),
                section: what,
                offset: off,
                expected,
                found,
            });
        }
        Ok(())
    }

    /// The bytes `[off, off + len)`, clipped to the file's end: borrowed
    /// from a mapped or owned index, fetched for one in object storage.
    fn read_range(&self, off: u64, len: u64) -> Result<Cow<'_, [u8]>> {
        match &self.data {
            Backing::Sparse { source, .. } => {
                source
                    .read_at(off, len)
                    .map(Cow::Owned)
                    .map_err(|source| IndexError::Io {
                        path: self.path.clone(),
                        op: "range read",
                        source,
                    })
            }
            _ => {
                let b = self.data.bytes();
                let start = usize::try_from(off).unwrap_or(usize::MAX).min(b.len());
                let end = usize::try_from(off.saturating_add(len))
                    .unwrap_or(usize::MAX)
                    .min(b.len());
                Ok(Cow::Borrowed(b.get(start..end).unwrap_or_default()))
            }
        }
    }

    /// The `len <4b> | body | crc <4b>` section at `off`, read by range
    /// (postings lists, which a sparse index does not hold locally),
    /// checksum checked. Returns the whole record; the body is `[4..len-4]`.
    fn section_range(&self, off: u64, what: &'static str) -> Result<Cow<'_, [u8]>> {
        let file_len = self.data.bytes().len() as u64;
        if off >= file_len {
            return Err(self.corrupt(
                what,
                off,
                format!("an offset within the {file_len} byte file"),
                off.to_string(),
            ));
        }
        let head = self.read_range(off, 4)?;
        let len = ByteCursor::new(&head)
            .be32()
            .map_err(|e| self.dec(what, off, e))?;
        let total = 8 + u64::from(len);
        if off + total > file_len {
            return Err(self.corrupt(
                what,
                off,
                format!("{len} bytes and a checksum within the file"),
                format!("{} bytes left", file_len - off),
            ));
        }
        let rec = self.read_range(off, total)?;
        let mut d = ByteCursor::new(&rec);
        d.be32().map_err(|e| self.dec(what, off, e))?;
        let body = d
            .bytes(u64::from(len))
            .map_err(|e| self.dec(what, off, e))?;
        self.check_crc(what, off, &mut d, body)?;
        Ok(rec)
    }

    fn dec(&self, section: &'static str, base: u64, e: CodecError) -> IndexError {
        dec_err(&self.path, section, base, e)
    }

    fn read_symbols(&mut self) -> Result<()> {
        const WHAT: &str = "symbol table";
        if self.toc.symbols == 0 {
            return Ok(());
        }
        let base = self.toc.symbols + 4;
        let body = self.section(self.toc.symbols, WHAT)?;
        let mut d = ByteCursor::new(body);
        let count = d.be32().map_err(|e| self.dec(WHAT, base, e))?;
        // Each entry takes at least one byte, which bounds the allocation.
        let mut syms = Vec::with_capacity((count as usize).min(d.remaining()));
        let mut entry_offs = Vec::new();
        let mut prev: Option<&str> = None;
        for _ in 0..count {
            let entry = base + d.pos() as u64;
            let s = d.uvarint_str().map_err(|e| self.dec(WHAT, base, e))?;
            if let Some(p) = prev {
                if p >= s {
                    return Err(self.corrupt(
                        WHAT,
                        entry,
                        format!("symbols in ascending order after {p:?}"),
                        format!("{s:?}"),
                    ));
                }
            }
            prev = Some(s);
            let off = base as usize + d.pos() - s.len();
            syms.push(Span { off, len: s.len() });
            if self.version == FORMAT_V1 {
                entry_offs.push(entry);
            }
        }
        self.symbols = syms;
        self.symbol_entry_offsets = entry_offs;
        Ok(())
    }

    fn read_postings_table(&mut self) -> Result<()> {
        const WHAT: &str = "postings offset table";
        if self.toc.postings_table == 0 {
            return Ok(());
        }
        let base = self.toc.postings_table + 4;
        let body = self.section(self.toc.postings_table, WHAT)?;
        let b = self.data.bytes();
        let mut d = ByteCursor::new(body);
        let count = d.be32().map_err(|e| self.dec(WHAT, base, e))?;
        let mut entries: Vec<(&str, Span, u64)> =
            Vec::with_capacity((count as usize).min(body.len()));
        for _ in 0..count {
            let at = base + d.pos() as u64;
            let keys = d.uvarint().map_err(|e| self.dec(WHAT, base, e))?;
            if keys != 2 {
                return Err(self.corrupt(WHAT, at, "2 keys per entry", keys.to_string()));
            }
            let name = d.uvarint_str().map_err(|e| self.dec(WHAT, base, e))?;
            let value = d.uvarint_str().map_err(|e| self.dec(WHAT, base, e))?;
            let value_span = Span {
                off: base as usize + d.pos() - value.len(),
                len: value.len(),
            };
            let off = d.uvarint().map_err(|e| self.dec(WHAT, base, e))?;
            if let Some(&(pn, pv, _)) = entries.last() {
                let pv = span_str(b, pv);
                if self.version != FORMAT_V1 && (pn, pv) >= (name, value) {
                    return Err(self.corrupt(
                        WHAT,
                        at,
                        format!("entries in ascending order after {pn:?}={pv:?}"),
                        format!("{name:?}={value:?}"),
                    ));
                }
            }
            entries.push((name, value_span, off));
        }
        if self.version == FORMAT_V1 {
            entries.sort_by(|x, y| (x.0, span_str(b, x.1)).cmp(&(y.0, span_str(b, y.1))));
            let dup = entries.windows(2).find_map(|w| match w {
                [x, y] if (x.0, span_str(b, x.1)) == (y.0, span_str(b, y.1)) => Some(x.0),
                _ => None,
            });
            if let Some(name) = dup {
                return Err(self.corrupt(
                    WHAT,
                    base,
                    "unique label pairs",
                    format!("a duplicate entry for {name:?}"),
                ));
            }
        }
        let mut names: Vec<NameEntry> = Vec::new();
        let mut all = None;
        for (name, value, off) in entries {
            if name.is_empty() {
                if value.len == 0 {
                    all = Some(off);
                }
                continue;
            }
            match names.last_mut() {
                Some(n) if n.name == name => n.values.push(ValueEntry {
                    value,
                    postings: off,
                }),
                _ => names.push(NameEntry {
                    name: name.to_owned(),
                    values: vec![ValueEntry {
                        value,
                        postings: off,
                    }],
                }),
            }
        }
        self.names = names;
        self.all_postings = all;
        Ok(())
    }

    fn value_str(&self, s: Span) -> &str {
        span_str(self.data.bytes(), s)
    }

    /// Every symbol, in table order.
    pub fn symbols(&self) -> Result<Vec<String>> {
        Ok(self
            .symbols
            .iter()
            .map(|&s| self.value_str(s).to_owned())
            .collect())
    }

    fn symbol(&self, r: u32, series: u64) -> Result<&str> {
        let idx = if self.version == FORMAT_V1 {
            self.symbol_entry_offsets.binary_search(&u64::from(r)).ok()
        } else {
            Some(r as usize)
        };
        idx.and_then(|i| self.symbols.get(i))
            .map(|&s| self.value_str(s))
            .ok_or_else(|| {
                self.corrupt(
                    "series",
                    series,
                    format!("a symbol reference below {}", self.symbols.len()),
                    r.to_string(),
                )
            })
    }

    /// Byte offset of series `r`.
    fn series_offset(&self, r: u64) -> Option<u64> {
        if self.version == FORMAT_V1 {
            Some(r)
        } else {
            r.checked_mul(SERIES_ALIGN)
        }
    }

    /// Reads series `r`: returns its labels and replaces the contents of
    /// `chunks` with its chunk metadata (in time order).
    pub fn series(&self, r: u64, chunks: &mut Vec<ChunkMeta>) -> Result<Labels> {
        const WHAT: &str = "series";
        chunks.clear();
        let file_len = self.data.bytes().len() as u64;
        let not_found = |reason: String| IndexError::SeriesNotFound {
            path: self.path.clone(),
            series: r,
            reason,
        };
        let off = self
            .series_offset(r)
            .filter(|&o| self.toc.series != 0 && o >= self.toc.series)
            .ok_or_else(|| not_found("reference outside the series section".to_owned()))?;
        if off >= file_len {
            return Err(not_found("reference past the end of the file".to_owned()));
        }
        // The entry's length prefix, then the entry: two reads, which for
        // an index in object storage hit the same cached page.
        let head = self.read_range(off, cairn_codec::varint::MAX_VARINT_LEN64 as u64)?;
        let mut d = ByteCursor::new(&head);
        let len = d.uvarint().map_err(|e| self.dec(WHAT, off, e))?;
        let prefix = d.pos() as u64;
        let total = prefix.saturating_add(len).saturating_add(4);
        if off.saturating_add(total) > file_len {
            return Err(self.corrupt(
                WHAT,
                off,
                format!("{len} bytes and a checksum within the file"),
                format!("{} bytes left", file_len - off),
            ));
        }
        let rec = self.read_range(off, total)?;
        let mut d = ByteCursor::new(&rec);
        d.uvarint().map_err(|e| self.dec(WHAT, off, e))?;
        let body_start = off + prefix;
        let body = d.bytes(len).map_err(|e| self.dec(WHAT, off, e))?;
        self.check_crc(WHAT, off, &mut d, body)?;
        let e = |err| self.dec(WHAT, body_start, err);
        let mut d = ByteCursor::new(body);
        let nlabels = d.uvarint().map_err(e)?;
        let mut pairs: Vec<(&str, &str)> =
            Vec::with_capacity((nlabels as usize).min(body.len() / 2));
        for _ in 0..nlabels {
            let n = d.uvarint32().map_err(e)?;
            let v = d.uvarint32().map_err(e)?;
            pairs.push((self.symbol(n, off)?, self.symbol(v, off)?));
        }
        let labels = Labels::try_from_sorted(pairs.iter().copied()).map_err(|err| {
            self.corrupt(WHAT, off, "labels sorted by unique name", err.to_string())
        })?;
        let nchunks = d.uvarint().map_err(e)?;
        chunks.reserve((nchunks as usize).min(body.len() / 3));
        if nchunks > 0 {
            let min_time = d.varint().map_err(e)?;
            let max_time = min_time.wrapping_add(d.uvarint().map_err(e)? as i64);
            let chunk_ref = d.uvarint().map_err(e)?;
            chunks.push(ChunkMeta {
                min_time,
                max_time,
                chunk_ref,
            });
            let (mut t0, mut ref0) = (max_time, chunk_ref);
            for _ in 1..nchunks {
                let min_time = t0.wrapping_add(d.uvarint().map_err(e)? as i64);
                let max_time = min_time.wrapping_add(d.uvarint().map_err(e)? as i64);
                let chunk_ref = ref0.wrapping_add(d.varint().map_err(e)? as u64);
                chunks.push(ChunkMeta {
                    min_time,
                    max_time,
                    chunk_ref,
                });
                (t0, ref0) = (max_time, chunk_ref);
            }
        }
        Ok(labels)
    }

    /// Decodes the postings list at `off` into a bitmap.
    fn read_postings(&self, off: u64) -> Result<RoaringTreemap> {
        const WHAT: &str = "postings list";
        let rec = self.section_range(off, WHAT)?;
        let body = rec.get(4..rec.len() - 4).unwrap_or_default();
        let mut d = ByteCursor::new(body);
        let n = d.be32().map_err(|e| self.dec(WHAT, off, e))?;
        let want = 4 * u64::from(n);
        if want != d.remaining() as u64 {
            return Err(self.corrupt(
                WHAT,
                off,
                format!("{want} bytes for {n} entries"),
                format!("{} bytes", d.remaining()),
            ));
        }
        // References are 32-bit, so they all land in the treemap's first
        // bitmap; building that bitmap directly avoids a map lookup per entry.
        let refs = body
            .get(4..)
            .unwrap_or_default()
            .chunks_exact(4)
            .map(|c| <[u8; 4]>::try_from(c).map_or(0, u32::from_be_bytes));
        let bm = RoaringBitmap::from_sorted_iter(refs).map_err(|e| {
            self.corrupt(
                WHAT,
                off,
                "strictly ascending series references",
                format!("entry {} out of order", e.valid_until()),
            )
        })?;
        if bm.is_empty() {
            // An explicit empty bitmap would make the set compare unequal
            // to an empty treemap.
            return Ok(RoaringTreemap::new());
        }
        Ok(RoaringTreemap::from_bitmaps([(0, bm)]))
    }

    fn name_entry(&self, name: &str) -> Option<&NameEntry> {
        self.names
            .binary_search_by(|n| n.name.as_str().cmp(name))
            .ok()
            .and_then(|i| self.names.get(i))
    }
}

fn span_str(b: &[u8], s: Span) -> &str {
    // Spans are only created from strings already validated as UTF-8.
    b.get(s.off..s.off + s.len)
        .and_then(|x| std::str::from_utf8(x).ok())
        .unwrap_or("")
}

fn corrupt(
    path: &Path,
    section: &'static str,
    offset: u64,
    expected: impl Into<String>,
    found: impl Into<String>,
) -> IndexError {
    IndexError::Corrupt {
        path: path.to_path_buf(),
        section,
        offset,
        expected: expected.into(),
        found: found.into(),
    }
}

fn dec_err(path: &Path, section: &'static str, base: u64, e: CodecError) -> IndexError {
    let (expected, found) = e.expected_found();
    let at = e.byte_offset().unwrap_or(0) as u64;
    corrupt(path, section, base + at, expected, found)
}

impl IndexLike for IndexReader {
    fn label_names(&self) -> Result<Vec<String>> {
        Ok(self.names.iter().map(|n| n.name.clone()).collect())
    }

    fn label_values(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .name_entry(name)
            .map(|n| {
                n.values
                    .iter()
                    .map(|v| self.value_str(v.value).to_owned())
                    .collect()
            })
            .unwrap_or_default())
    }

    fn postings(&self, name: &str, value: &str) -> Result<RoaringTreemap> {
        if name.is_empty() {
            return if value.is_empty() {
                self.all_postings()
            } else {
                Ok(RoaringTreemap::new())
            };
        }
        let Some(n) = self.name_entry(name) else {
            return Ok(RoaringTreemap::new());
        };
        match n
            .values
            .binary_search_by(|v| self.value_str(v.value).cmp(value))
            .ok()
            .and_then(|i| n.values.get(i))
        {
            Some(v) => self.read_postings(v.postings),
            None => Ok(RoaringTreemap::new()),
        }
    }

    fn all_postings(&self) -> Result<RoaringTreemap> {
        match self.all_postings {
            Some(off) => self.read_postings(off),
            None => Ok(RoaringTreemap::new()),
        }
    }

    fn postings_for_label_matching(
        &self,
        name: &str,
        prefix: &str,
        pred: &mut dyn FnMut(&str) -> bool,
    ) -> Result<RoaringTreemap> {
        let Some(n) = self.name_entry(name) else {
            return Ok(RoaringTreemap::new());
        };
        let start = n
            .values
            .partition_point(|v| self.value_str(v.value) < prefix);
        let mut lists = Vec::new();
        for v in n.values.get(start..).unwrap_or_default() {
            let s = self.value_str(v.value);
            if !s.starts_with(prefix) {
                break;
            }
            if pred(s) {
                lists.push(self.read_postings(v.postings)?);
            }
        }
        Ok(lists.into_iter().union())
    }
}
