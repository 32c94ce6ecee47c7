//! The bytes of the head snapshot (docs/format/head_snapshot.md).
//!
//! [`Writer`] streams a header, the series entries, the metadata and the
//! exemplars into
//! any `Write`, computing the checksum as it goes. [`check`] verifies the
//! checksum of the file's bytes (mapped or read); [`Reader`] then reads the
//! header and hands out the series entries one at a time, borrowing label
//! strings from those bytes, so loading ten million series never holds
//! them all and copies nothing it does not keep. Contracts: entries come
//! back in file order, refs strictly increasing; whatever [`Writer`]
//! writes, [`Reader`] reads back equal; every length and count is checked
//! against the bytes left before anything is allocated for it, so damaged
//! input fails with a [`FormatError`], never a panic or a huge
//! allocation. [`Reader::next_raw`] leaves checking a label set (sorted,
//! unique names, no empty value) to whoever builds it ([`build_labels`]);
//! [`Reader::next_series`] does it.

use std::collections::HashMap;
use std::io::{self, Write};

use cairn_model::Labels;

/// The first eight bytes; the last one is the format version. Version 4
/// added, per series, histogram chunks and an out-of-order flag; version
/// 3 the exemplars after the metadata.
pub const MAGIC: [u8; 8] = *b"CAIRNHS\x04";

/// Version 3's magic: read (no histogram chunks, no out-of-order flags),
/// no longer written.
pub const MAGIC_V3: [u8; 8] = *b"CAIRNHS\x03";

/// Version 2's magic: read (no exemplars either), no longer written.
pub const MAGIC_V2: [u8; 8] = *b"CAIRNHS\x02";

/// Entry flag (version 4): the series holds out-of-order data, whose
/// samples are in `wbl/`; it is kept even without a chunk.
pub const FLAG_OOO: u64 = 1;

/// What the snapshot was written against.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// The WAL directory's entries, sorted by name: (name, size in bytes;
    /// 0 for a directory).
    pub wal_files: Vec<(String, u64)>,
    /// Every file of `chunks_head/`: (number, length in bytes, newest chunk
    /// maxt in it, `i64::MIN` when unknown), numbers increasing.
    pub chunk_files: Vec<(u32, u64, i64)>,
    /// The chunks the entries list, all together (float and histogram).
    pub chunks: u64,
    /// The head's lower bound when written: samples before it were
    /// truncated away.
    pub min_valid: i64,
    /// The ref the head hands out next.
    pub next_ref: u64,
    /// How many series entries follow.
    pub series: u64,
}

/// One chunk of a series in `chunks_head/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapChunk {
    /// `(file number << 32) | offset` of its record.
    pub chunk_ref: u64,
    /// First and last sample's timestamps (inclusive).
    pub mint: i64,
    pub maxt: i64,
}

/// One series.
#[derive(Debug, Clone)]
pub struct Entry {
    pub r: u64,
    pub labels: Labels,
    /// Its chunks in `chunks_head/`, oldest first.
    pub chunks: Vec<SnapChunk>,
    /// The newest sample's value.
    pub last_v: f64,
    /// Its native-histogram chunks in `chunks_head/` with their encoding
    /// (2 or 3), oldest first (version 4).
    pub hist: Vec<(u8, SnapChunk)>,
    /// It holds out-of-order data (version 4; see [`FLAG_OOO`]).
    pub ooo: bool,
}

impl PartialEq for Entry {
    /// Values compare by bits (a stale marker is a NaN).
    fn eq(&self, o: &Self) -> bool {
        self.r == o.r
            && self.labels == o.labels
            && self.chunks == o.chunks
            && self.last_v.to_bits() == o.last_v.to_bits()
            && self.hist == o.hist
            && self.ooo == o.ooo
    }
}

/// One metric's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaEntry {
    pub name: String,
    /// Prometheus's remote-write metric type code.
    pub kind: u8,
    pub unit: String,
    pub help: String,
}

/// One exemplar of the head's ring: its series' labels (the series may
/// have left the head), timestamp, value and own labels.
#[derive(Debug, Clone)]
pub struct ExemplarEntry {
    pub series: Labels,
    pub ts: i64,
    pub value: f64,
    pub labels: Labels,
}

impl PartialEq for ExemplarEntry {
    /// Values compare by bits.
    fn eq(&self, o: &Self) -> bool {
        self.series == o.series
            && self.ts == o.ts
            && self.value.to_bits() == o.value.to_bits()
            && self.labels == o.labels
    }
}

/// Damaged or truncated snapshot bytes: where, and what was expected
/// there and found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at byte {offset}: expected {expected}, found {found}")]
pub struct FormatError {
    pub offset: u64,
    pub expected: String,
    pub found: String,
}

/// Why writing or reading failed.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotIoError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Format(#[from] FormatError),
}

fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// A `Write` that counts and checksums what passes through.
struct CrcWrite<W> {
    inner: W,
    crc: u32,
}

impl<W: Write> CrcWrite<W> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.crc = cairn_codec::crc32c_append(self.crc, b);
        self.inner.write_all(b)
    }

    fn uvarint(&mut self, mut x: u64) -> io::Result<()> {
        let mut buf = [0u8; 10];
        let mut n = 0;
        while let Some(b) = buf.get_mut(n) {
            n += 1;
            if x < 0x80 {
                *b = x as u8;
                break;
            }
            *b = (x as u8 & 0x7f) | 0x80;
            x >>= 7;
        }
        self.put(buf.get(..n).unwrap_or_default())
    }

    fn varint(&mut self, x: i64) -> io::Result<()> {
        self.uvarint(zigzag(x))
    }

    fn string(&mut self, s: &str) -> io::Result<()> {
        self.uvarint(s.len() as u64)?;
        self.put(s.as_bytes())
    }
}

/// Streams a snapshot out: [`Writer::new`] with the header, then exactly
/// `header.series` calls of [`Writer::series`] in increasing ref order,
/// listing `header.chunks` chunks in all, then [`Writer::finish`] with the
/// metadata and the exemplars.
pub struct Writer<'a, W: Write> {
    w: CrcWrite<W>,
    strings: HashMap<&'a str, u64>,
    prev: u64,
    left: u64,
    chunks_left: u64,
    /// The previous entry's first chunk mint (the base of the next one's).
    base_mint: i64,
}

impl<'a, W: Write> Writer<'a, W> {
    pub fn new(inner: W, h: &Header) -> Result<Self, SnapshotIoError> {
        let mut w = CrcWrite { inner, crc: 0 };
        w.put(&MAGIC)?;
        w.uvarint(h.wal_files.len() as u64)?;
        for (name, size) in &h.wal_files {
            w.string(name)?;
            w.uvarint(*size)?;
        }
        w.uvarint(h.chunk_files.len() as u64)?;
        for &(seq, size, maxt) in &h.chunk_files {
            w.uvarint(u64::from(seq))?;
            w.uvarint(size)?;
            w.put(&maxt.to_le_bytes())?;
        }
        w.uvarint(h.chunks)?;
        w.put(&h.min_valid.to_le_bytes())?;
        w.uvarint(h.next_ref)?;
        w.uvarint(h.series)?;
        Ok(Self {
            w,
            strings: HashMap::new(),
            prev: 0,
            left: h.series,
            chunks_left: h.chunks,
            base_mint: 0,
        })
    }

    fn string_ref(&mut self, s: &'a str) -> io::Result<()> {
        match self.strings.get(s) {
            Some(&k) => self.w.uvarint(k),
            None => {
                let k = self.strings.len() as u64 + 1;
                self.strings.insert(s, k);
                self.w.uvarint(0)?;
                self.w.string(s)
            }
        }
    }

    /// A label set as a count and string references.
    fn labels(&mut self, l: &'a Labels) -> io::Result<()> {
        self.w.uvarint(l.len() as u64)?;
        for p in l.iter() {
            self.string_ref(p.name)?;
            self.string_ref(p.value)?;
        }
        Ok(())
    }

    /// Writes one series; refs must increase, the label set must not be
    /// empty, the chunks (float and histogram) must fit in what the
    /// header promised, and histogram encodings be 2 or 3.
    pub fn series(
        &mut self,
        r: u64,
        labels: &'a Labels,
        chunks: &[SnapChunk],
        last_v: f64,
        hist: &[(u8, SnapChunk)],
        ooo: bool,
    ) -> Result<(), SnapshotIoError> {
        if let Some(&(enc, _)) = hist.iter().find(|(e, _)| !matches!(e, 2 | 3)) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("series {r}: histogram chunk encoding {enc}"),
            )
            .into());
        }
        let n = chunks.len() as u64 + hist.len() as u64;
        if r <= self.prev || self.left == 0 || labels.is_empty() || n > self.chunks_left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "series {r}: refs must increase (previous {}), {} entries left, labels {}, {n} chunks of {} left",
                    self.prev,
                    self.left,
                    labels.len(),
                    self.chunks_left
                ),
            )
            .into());
        }
        self.w.uvarint(r - self.prev)?;
        self.prev = r;
        self.left -= 1;
        self.chunks_left -= n;
        self.labels(labels)?;
        self.w.uvarint(chunks.len() as u64)?;
        let (mut prev_ref, mut prev_t) = (0u64, self.base_mint);
        if let Some(c) = chunks.first() {
            self.base_mint = c.mint;
        }
        for c in chunks {
            self.w.varint(c.chunk_ref.wrapping_sub(prev_ref) as i64)?;
            self.w.varint(c.mint.wrapping_sub(prev_t))?;
            self.w.varint(c.maxt.wrapping_sub(c.mint))?;
            prev_ref = c.chunk_ref;
            prev_t = c.maxt;
        }
        self.w.put(&last_v.to_bits().to_le_bytes())?;
        self.w.uvarint(if ooo { FLAG_OOO } else { 0 })?;
        self.w.uvarint(hist.len() as u64)?;
        let (mut prev_ref, mut prev_t) = (0u64, 0i64);
        for (enc, c) in hist {
            self.w.put(&[*enc])?;
            self.w.varint(c.chunk_ref.wrapping_sub(prev_ref) as i64)?;
            self.w.varint(c.mint.wrapping_sub(prev_t))?;
            self.w.varint(c.maxt.wrapping_sub(c.mint))?;
            prev_ref = c.chunk_ref;
            prev_t = c.maxt;
        }
        Ok(())
    }

    /// Writes the metadata, the exemplars (oldest first) and the checksum;
    /// returns the sink.
    pub fn finish(
        mut self,
        meta: &[MetaEntry],
        exemplars: &'a [ExemplarEntry],
    ) -> Result<W, SnapshotIoError> {
        if self.left != 0 || self.chunks_left != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} series entries and {} chunks promised but not written",
                    self.left, self.chunks_left
                ),
            )
            .into());
        }
        self.w.uvarint(meta.len() as u64)?;
        for m in meta {
            self.w.string(&m.name)?;
            self.w.put(&[m.kind])?;
            self.w.string(&m.unit)?;
            self.w.string(&m.help)?;
        }
        self.w.uvarint(exemplars.len() as u64)?;
        for e in exemplars {
            self.labels(&e.series)?;
            self.w.put(&e.ts.to_le_bytes())?;
            self.w.put(&e.value.to_bits().to_le_bytes())?;
            self.labels(&e.labels)?;
        }
        let crc = self.w.crc;
        self.w.inner.write_all(&crc.to_le_bytes())?;
        Ok(self.w.inner)
    }
}

fn corrupt(offset: u64, expected: impl Into<String>, found: impl Into<String>) -> FormatError {
    FormatError {
        offset,
        expected: expected.into(),
        found: found.into(),
    }
}

/// Checks the checksum of a whole file's bytes.
pub fn check(b: &[u8]) -> Result<(), FormatError> {
    let len = b.len();
    let Some(body) = len.checked_sub(4).filter(|&n| n >= MAGIC.len()) else {
        return Err(corrupt(0, "at least 12 bytes", format!("{len} bytes")));
    };
    let (data, tail) = b.split_at(body);
    let crc = cairn_codec::crc32c(data);
    let mut stored = [0u8; 4];
    stored.copy_from_slice(tail);
    let stored = u32::from_le_bytes(stored);
    if stored != crc {
        return Err(corrupt(
            body as u64,
            format!("checksum {crc:#010x}"),
            format!("{stored:#010x}"),
        ));
    }
    Ok(())
}

/// Builds a label set from an entry's pairs, checking it (sorted, unique
/// names, no empty value); `at` is the entry's offset for the error.
pub fn build_labels<'s>(at: u64, pairs: &[(&'s str, &'s str)]) -> Result<Labels, FormatError> {
    if pairs.is_empty() {
        return Err(corrupt(at, "at least one label", "none"));
    }
    if pairs.iter().any(|&(_, v)| v.is_empty()) {
        return Err(corrupt(
            at,
            "label values that are not empty",
            "an empty one",
        ));
    }
    Labels::try_from_sorted(pairs.iter().copied())
        .map_err(|e| corrupt(at, "sorted, unique, non-empty label names", e.to_string()))
}

/// One entry as [`Reader::next_raw`] returns it: its labels and chunks
/// went to the caller's buffers.
#[derive(Debug, Clone, Copy)]
pub struct RawEntry {
    pub r: u64,
    pub last_v: f64,
    /// It holds out-of-order data (version 4; see [`FLAG_OOO`]).
    pub ooo: bool,
    /// Where the entry starts in the file (for errors).
    pub offset: u64,
}

/// Reads a snapshot's bytes whose checksum [`check`] accepted: the header
/// at [`Reader::open`], then the series with [`Reader::next_raw`] or
/// [`Reader::next_series`], then [`Reader::finish`] (metadata and
/// exemplars).
pub struct Reader<'a> {
    b: &'a [u8],
    /// Bytes read so far.
    off: usize,
    /// End of the body (the checksum excluded).
    end: usize,
    strings: Vec<&'a str>,
    prev: u64,
    series_left: u64,
    chunks_left: u64,
    base_mint: i64,
    /// The format version (2, 3 or 4).
    version: u8,
}

impl<'a> Reader<'a> {
    /// Reads the magic and the header of a whole file's bytes.
    pub fn open(b: &'a [u8]) -> Result<(Self, Header), FormatError> {
        let mut r = Self {
            b,
            off: 0,
            end: b.len().saturating_sub(4),
            strings: Vec::new(),
            prev: 0,
            series_left: 0,
            chunks_left: 0,
            base_mint: 0,
            version: 4,
        };
        let magic = r.bytes(MAGIC.len())?;
        if magic == MAGIC_V3 {
            r.version = 3;
        } else if magic == MAGIC_V2 {
            r.version = 2;
        } else if magic != MAGIC {
            return Err(corrupt(
                0,
                format!("magic {MAGIC:02x?}, {MAGIC_V3:02x?} or {MAGIC_V2:02x?}"),
                format!("{magic:02x?}"),
            ));
        }
        let n = r.count("WAL entries", 2)?;
        let mut wal_files = Vec::new();
        for _ in 0..n {
            let name = r.string()?.to_owned();
            let size = r.uvarint()?;
            wal_files.push((name, size));
        }
        let n = r.count("chunk files", 10)?;
        let mut chunk_files = Vec::new();
        for _ in 0..n {
            let at = r.off;
            let seq = u32::try_from(r.uvarint()?)
                .map_err(|_| corrupt(at as u64, "a 32-bit file number", "a larger one"))?;
            let size = r.uvarint()?;
            let maxt = r.i64()?;
            chunk_files.push((seq, size, maxt));
        }
        let chunks = r.count("chunks", 4)?;
        let min_valid = r.i64()?;
        let next_ref = r.uvarint()?;
        let series = r.count("series entries", 12)?;
        r.series_left = series;
        r.chunks_left = chunks;
        Ok((
            r,
            Header {
                wal_files,
                chunk_files,
                chunks,
                min_valid,
                next_ref,
                series,
            },
        ))
    }

    fn left(&self) -> usize {
        self.end.saturating_sub(self.off)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let b = self.b;
        match b.get(self.off..self.end).and_then(|r| r.get(..n)) {
            Some(s) => {
                self.off += n;
                Ok(s)
            }
            None => Err(corrupt(
                self.off as u64,
                format!("{n} more bytes"),
                format!("{} left", self.left()),
            )),
        }
    }

    fn i64(&mut self) -> Result<i64, FormatError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.bytes(8)?);
        Ok(i64::from_le_bytes(a))
    }

    fn uvarint(&mut self) -> Result<u64, FormatError> {
        let at = self.off;
        let mut x = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.b.get(self.off).filter(|_| self.off < self.end) else {
                return Err(corrupt(self.off as u64, "a varint byte", "the end"));
            };
            self.off += 1;
            x |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    break;
                }
                return Ok(x);
            }
        }
        Err(corrupt(
            at as u64,
            "a varint of at most 64 bits",
            "a longer one",
        ))
    }

    fn varint(&mut self) -> Result<i64, FormatError> {
        self.uvarint().map(unzigzag)
    }

    /// A count of items that take at least `min_bytes` each: more than
    /// the bytes left can hold is damage.
    fn count(&mut self, what: &str, min_bytes: u64) -> Result<u64, FormatError> {
        let at = self.off;
        let n = self.uvarint()?;
        if n.saturating_mul(min_bytes) > self.left() as u64 {
            return Err(corrupt(
                at as u64,
                format!("{what} that fit in {} bytes", self.left()),
                n.to_string(),
            ));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<&'a str, FormatError> {
        let at = self.off;
        let n = self.uvarint()?;
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.left())
            .ok_or_else(|| {
                corrupt(
                    at as u64,
                    format!("a string of at most {} bytes", self.left()),
                    format!("length {n}"),
                )
            })?;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| corrupt(at as u64, "UTF-8", "other bytes"))
    }

    fn string_ref(&mut self) -> Result<&'a str, FormatError> {
        let at = self.off;
        match self.uvarint()? {
            0 => {
                let s = self.string()?;
                self.strings.push(s);
                Ok(s)
            }
            k => usize::try_from(k - 1)
                .ok()
                .and_then(|i| self.strings.get(i))
                .copied()
                .ok_or_else(|| {
                    corrupt(
                        at as u64,
                        format!("a string reference up to {}", self.strings.len()),
                        k.to_string(),
                    )
                }),
        }
    }

    /// The next series entry, `None` after the last one: its label pairs
    /// are appended to `pairs` (not yet checked: see [`build_labels`]),
    /// its chunks to `chunks` and its histogram chunks to `hist`.
    pub fn next_raw(
        &mut self,
        pairs: &mut Vec<(&'a str, &'a str)>,
        chunks: &mut Vec<SnapChunk>,
        hist: &mut Vec<(u8, SnapChunk)>,
    ) -> Result<Option<RawEntry>, FormatError> {
        if self.series_left == 0 {
            return Ok(None);
        }
        let offset = self.off as u64;
        let delta = self.uvarint()?;
        let r = self
            .prev
            .checked_add(delta)
            .filter(|_| delta > 0)
            .ok_or_else(|| {
                corrupt(
                    offset,
                    format!("a ref above {}", self.prev),
                    format!("delta {delta}"),
                )
            })?;
        self.prev = r;
        self.series_left -= 1;
        let n = self.count("labels", 2)?;
        for _ in 0..n {
            let name = self.string_ref()?;
            let value = self.string_ref()?;
            pairs.push((name, value));
        }
        let at = self.off as u64;
        let n = self.count("chunks", 3)?;
        if n > self.chunks_left {
            return Err(corrupt(
                at,
                format!(
                    "at most the {} chunks the header has left",
                    self.chunks_left
                ),
                n.to_string(),
            ));
        }
        self.chunks_left -= n;
        let (mut prev_ref, mut prev_t) = (0u64, self.base_mint);
        for k in 0..n {
            let chunk_ref = prev_ref.wrapping_add(self.varint()? as u64);
            let mint = prev_t.wrapping_add(self.varint()?);
            let maxt = mint.wrapping_add(self.varint()?);
            if k == 0 {
                self.base_mint = mint;
            }
            chunks.push(SnapChunk {
                chunk_ref,
                mint,
                maxt,
            });
            prev_ref = chunk_ref;
            prev_t = maxt;
        }
        let last_v = f64::from_bits(self.i64()? as u64);
        let mut ooo = false;
        if self.version >= 4 {
            let at = self.off as u64;
            let flags = self.uvarint()?;
            if flags & !FLAG_OOO != 0 {
                return Err(corrupt(at, "entry flags 0 or 1", flags.to_string()));
            }
            ooo = flags & FLAG_OOO != 0;
            let at = self.off as u64;
            let n = self.count("histogram chunks", 4)?;
            if n > self.chunks_left {
                return Err(corrupt(
                    at,
                    format!(
                        "at most the {} chunks the header has left",
                        self.chunks_left
                    ),
                    n.to_string(),
                ));
            }
            self.chunks_left -= n;
            let (mut prev_ref, mut prev_t) = (0u64, 0i64);
            for _ in 0..n {
                let at = self.off as u64;
                let enc = self.bytes(1)?.first().copied().unwrap_or(0);
                if !matches!(enc, 2 | 3) {
                    return Err(corrupt(at, "histogram encoding 2 or 3", enc.to_string()));
                }
                let chunk_ref = prev_ref.wrapping_add(self.varint()? as u64);
                let mint = prev_t.wrapping_add(self.varint()?);
                let maxt = mint.wrapping_add(self.varint()?);
                hist.push((
                    enc,
                    SnapChunk {
                        chunk_ref,
                        mint,
                        maxt,
                    },
                ));
                prev_ref = chunk_ref;
                prev_t = maxt;
            }
        }
        Ok(Some(RawEntry {
            r,
            last_v,
            ooo,
            offset,
        }))
    }

    /// The next series entry with its label set built and checked, `None`
    /// after the last one.
    pub fn next_series(&mut self) -> Result<Option<Entry>, FormatError> {
        let mut pairs = Vec::new();
        let mut chunks = Vec::new();
        let mut hist = Vec::new();
        let Some(e) = self.next_raw(&mut pairs, &mut chunks, &mut hist)? else {
            return Ok(None);
        };
        Ok(Some(Entry {
            r: e.r,
            labels: build_labels(e.offset, &pairs)?,
            chunks,
            last_v: e.last_v,
            hist,
            ooo: e.ooo,
        }))
    }

    /// A label set written by `Writer::labels`, checked.
    fn label_set(&mut self, what: &str) -> Result<Labels, FormatError> {
        let at = self.off as u64;
        let n = self.count("labels", 2)?;
        let mut pairs = Vec::new();
        for _ in 0..n {
            let name = self.string_ref()?;
            let value = self.string_ref()?;
            pairs.push((name, value));
        }
        Labels::try_from_sorted(pairs.iter().copied()).map_err(|e| {
            corrupt(
                at,
                format!("{what}: sorted, unique label names"),
                e.to_string(),
            )
        })
    }

    /// The metadata and (version 3) the exemplars, after the last series;
    /// the body must end there.
    pub fn finish(mut self) -> Result<(Vec<MetaEntry>, Vec<ExemplarEntry>), FormatError> {
        if self.series_left > 0 {
            return Err(corrupt(
                self.off as u64,
                "the metadata after every series",
                format!("{} series left", self.series_left),
            ));
        }
        if self.chunks_left > 0 {
            return Err(corrupt(
                self.off as u64,
                "as many chunks in the entries as the header says",
                format!("{} fewer", self.chunks_left),
            ));
        }
        let n = self.count("metadata entries", 4)?;
        let mut out = Vec::new();
        for _ in 0..n {
            let name = self.string()?.to_owned();
            let kind = self.bytes(1)?.first().copied().unwrap_or(0);
            let unit = self.string()?.to_owned();
            let help = self.string()?.to_owned();
            out.push(MetaEntry {
                name,
                kind,
                unit,
                help,
            });
        }
        let mut exemplars = Vec::new();
        if self.version >= 3 {
            let n = self.count("exemplars", 18)?;
            for _ in 0..n {
                let series = self.label_set("an exemplar's series")?;
                let ts = self.i64()?;
                let value = f64::from_bits(self.i64()? as u64);
                let labels = self.label_set("an exemplar's labels")?;
                exemplars.push(ExemplarEntry {
                    series,
                    ts,
                    value,
                    labels,
                });
            }
        }
        if self.left() != 0 {
            return Err(corrupt(
                self.off as u64,
                "the checksum",
                format!("{} more bytes", self.left()),
            ));
        }
        Ok((out, exemplars))
    }
}

/// A whole snapshot, as [`decode`] returns it and [`encode`] takes it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    pub header: Header,
    pub entries: Vec<Entry>,
    pub meta: Vec<MetaEntry>,
    pub exemplars: Vec<ExemplarEntry>,
}

/// Decodes a whole snapshot held in memory (the checksum first).
pub fn decode(b: &[u8]) -> Result<Snapshot, FormatError> {
    check(b)?;
    let (mut r, header) = Reader::open(b)?;
    let mut entries = Vec::new();
    while let Some(e) = r.next_series()? {
        entries.push(e);
    }
    let (meta, exemplars) = r.finish()?;
    Ok(Snapshot {
        header,
        entries,
        meta,
        exemplars,
    })
}

/// Encodes a whole snapshot in memory (the header's counts are taken
/// from the entries).
pub fn encode(s: &Snapshot) -> Result<Vec<u8>, SnapshotIoError> {
    let header = Header {
        series: s.entries.len() as u64,
        chunks: s
            .entries
            .iter()
            .map(|e| (e.chunks.len() + e.hist.len()) as u64)
            .sum(),
        ..s.header.clone()
    };
    let mut w = Writer::new(Vec::new(), &header)?;
    for e in &s.entries {
        w.series(e.r, &e.labels, &e.chunks, e.last_v, &e.hist, e.ooo)?;
    }
    w.finish(&s.meta, &s.exemplars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entries() -> impl Strategy<Value = Vec<Entry>> {
        prop::collection::vec(
            (
                1u64..1000,
                prop::collection::btree_map("[a-c_]{1,3}", "[x-z0-9]{1,3}", 1..4),
                prop::collection::vec((any::<u64>(), any::<i64>(), any::<i64>()), 0..5),
                any::<f64>(),
                prop::collection::vec((2u8..4, any::<u64>(), any::<i64>(), any::<i64>()), 0..3),
                any::<bool>(),
            ),
            0..20,
        )
        .prop_map(|v| {
            let mut r = 0;
            v.into_iter()
                .map(|(d, labels, chunks, last_v, hist, ooo)| {
                    r += d;
                    Entry {
                        r,
                        labels: Labels::from_pairs(labels),
                        chunks: chunks
                            .into_iter()
                            .map(|(chunk_ref, mint, maxt)| SnapChunk {
                                chunk_ref,
                                mint,
                                maxt,
                            })
                            .collect(),
                        last_v,
                        hist: hist
                            .into_iter()
                            .map(|(enc, chunk_ref, mint, maxt)| {
                                (
                                    enc,
                                    SnapChunk {
                                        chunk_ref,
                                        mint,
                                        maxt,
                                    },
                                )
                            })
                            .collect(),
                        ooo,
                    }
                })
                .collect()
        })
    }

    proptest! {
        /// What is written reads back equal, and every single-byte change
        /// is caught (by the checksum, or the structure before it).
        #[test]
        fn round_trips_and_damage_is_found(
            es in entries(),
            wal in prop::collection::vec(("[0-9]{8}", 0u64..1 << 40), 0..4),
            chunk_files in prop::collection::vec((any::<u32>(), any::<u64>(), any::<i64>()), 0..4),
            min_valid: i64, next_ref: u64,
            meta in prop::collection::vec(("[a-z_]{1,8}", 0u8..8, "[a-z]{0,3}", "[ -~]{0,10}"), 0..3),
            exemplars in prop::collection::vec(
                (
                    prop::collection::btree_map("[a-c_]{1,3}", "[x-z0-9]{1,3}", 1..3),
                    any::<i64>(),
                    any::<u64>(),
                    prop::collection::btree_map("[a-z_]{1,8}", "[ -~]{1,10}", 0..3),
                ),
                0..4,
            ),
            flip in any::<prop::sample::Index>(),
        ) {
            let chunks = es.iter().map(|e| (e.chunks.len() + e.hist.len()) as u64).sum();
            let h = Header { wal_files: wal, chunk_files, chunks, min_valid, next_ref, series: es.len() as u64 };
            let meta: Vec<MetaEntry> = meta
                .into_iter()
                .map(|(name, kind, unit, help)| MetaEntry { name, kind, unit, help })
                .collect();
            let exemplars: Vec<ExemplarEntry> = exemplars
                .into_iter()
                .map(|(s, ts, bits, l)| ExemplarEntry {
                    series: Labels::from_pairs(s),
                    ts,
                    value: f64::from_bits(bits),
                    labels: Labels::from_pairs(l),
                })
                .collect();
            let snap = Snapshot { header: h, entries: es, meta, exemplars };
            let b = encode(&snap).unwrap();
            prop_assert_eq!(decode(&b).unwrap(), snap);
            let mut bad = b.clone();
            let i = flip.index(bad.len());
            bad[i] ^= 0x01;
            prop_assert!(decode(&bad).is_err());
            prop_assert!(decode(&b[..b.len() - 1]).is_err());
        }
    }

    #[test]
    fn refs_must_increase_and_counts_match() {
        let l = Labels::from_pairs([("a", "1")]);
        let h = Header {
            series: 2,
            ..Header::default()
        };
        let mut w = Writer::new(Vec::new(), &h).unwrap();
        w.series(5, &l, &[], 0.0, &[], false).unwrap();
        assert!(w.series(5, &l, &[], 0.0, &[], false).is_err());
        // More chunks than the header promised.
        let c = SnapChunk {
            chunk_ref: 1,
            mint: 0,
            maxt: 1,
        };
        assert!(w.series(6, &l, &[c], 0.0, &[], false).is_err());
        assert!(w.series(6, &l, &[], 0.0, &[(2, c)], false).is_err());
        // Not a histogram encoding.
        assert!(w.series(6, &l, &[], 0.0, &[(1, c)], false).is_err());
        assert!(w.finish(&[], &[]).is_err());
    }
}
