//! The bytes of the head snapshot (docs/format/head_snapshot.md).
//!
//! [`Writer`] streams a header, the series entries and the metadata into
//! any `Write`, computing the checksum as it goes. [`check`] verifies a
//! source's checksum; [`Reader`] then reads the header and hands out the
//! series entries one at a time, so loading ten million series never
//! holds them all. Contracts: entries come back in file order, refs
//! strictly increasing, label sets valid (sorted, unique names, no empty
//! value); whatever [`Writer`] writes, [`Reader`] reads back equal; every
//! length and count is checked against the bytes left before anything is
//! allocated for it, so damaged input fails with a [`FormatError`], never
//! a panic or a huge allocation.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use cairn_model::Labels;

/// The first eight bytes; the last one is the format version.
pub const MAGIC: [u8; 8] = *b"CAIRNHS\x01";

/// What the snapshot was written against.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// The WAL directory's entries, sorted by name: (name, size in bytes;
    /// 0 for a directory).
    pub wal_files: Vec<(String, u64)>,
    /// Full chunks in `chunks_head/` that the entries own: those ending at
    /// or after `min_valid` (older ones may still sit in the files).
    pub chunks: u64,
    /// The head's lower bound when written: samples before it were
    /// truncated away.
    pub min_valid: i64,
    /// The ref the head hands out next.
    pub next_ref: u64,
    /// How many series entries follow.
    pub series: u64,
}

/// One series.
#[derive(Debug, Clone)]
pub struct Entry {
    pub r: u64,
    pub labels: Labels,
    /// Its chunks in `chunks_head/`.
    pub chunks: u64,
    /// The newest sample's value.
    pub last_v: f64,
}

impl PartialEq for Entry {
    /// Values compare by bits (a stale marker is a NaN).
    fn eq(&self, o: &Self) -> bool {
        self.r == o.r
            && self.labels == o.labels
            && self.chunks == o.chunks
            && self.last_v.to_bits() == o.last_v.to_bits()
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

    fn string(&mut self, s: &str) -> io::Result<()> {
        self.uvarint(s.len() as u64)?;
        self.put(s.as_bytes())
    }
}

/// Streams a snapshot out: [`Writer::new`] with the header, then exactly
/// `header.series` calls of [`Writer::series`] in increasing ref order,
/// then [`Writer::finish`] with the metadata.
pub struct Writer<'a, W: Write> {
    w: CrcWrite<W>,
    strings: HashMap<&'a str, u64>,
    prev: u64,
    left: u64,
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
        w.uvarint(h.chunks)?;
        w.put(&h.min_valid.to_le_bytes())?;
        w.uvarint(h.next_ref)?;
        w.uvarint(h.series)?;
        Ok(Self {
            w,
            strings: HashMap::new(),
            prev: 0,
            left: h.series,
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

    /// Writes one series; refs must increase and the label set must not
    /// be empty.
    pub fn series(
        &mut self,
        r: u64,
        labels: &'a Labels,
        chunks: u64,
        last_v: f64,
    ) -> Result<(), SnapshotIoError> {
        if r <= self.prev || self.left == 0 || labels.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "series {r}: refs must increase (previous {}), {} entries left, labels {}",
                    self.prev,
                    self.left,
                    labels.len()
                ),
            )
            .into());
        }
        self.w.uvarint(r - self.prev)?;
        self.prev = r;
        self.left -= 1;
        self.w.uvarint(labels.len() as u64)?;
        for l in labels.iter() {
            self.string_ref(l.name)?;
            self.string_ref(l.value)?;
        }
        self.w.uvarint(chunks)?;
        self.w.put(&last_v.to_bits().to_le_bytes())?;
        Ok(())
    }

    /// Writes the metadata and the checksum; returns the sink.
    pub fn finish(mut self, meta: &[MetaEntry]) -> Result<W, SnapshotIoError> {
        if self.left != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} series entries promised but not written", self.left),
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

/// Checks the checksum of a source of `len` bytes (the whole file).
pub fn check(mut src: impl Read, len: u64) -> Result<(), SnapshotIoError> {
    let Some(body) = len.checked_sub(4).filter(|&b| b >= MAGIC.len() as u64) else {
        return Err(corrupt(0, "at least 12 bytes", format!("{len} bytes")).into());
    };
    let mut crc = 0u32;
    let mut left = body;
    let mut buf = vec![0u8; 1 << 16];
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
        let chunk = buf.get_mut(..n).unwrap_or_default();
        src.read_exact(chunk)?;
        crc = cairn_codec::crc32c_append(crc, chunk);
        left -= n as u64;
    }
    let mut stored = [0u8; 4];
    src.read_exact(&mut stored)?;
    let stored = u32::from_le_bytes(stored);
    if stored != crc {
        return Err(corrupt(
            body,
            format!("checksum {crc:#010x}"),
            format!("{stored:#010x}"),
        )
        .into());
    }
    Ok(())
}

/// Reads a snapshot whose checksum [`check`] accepted: the header at
/// [`Reader::open`], then the series with [`Reader::next_series`], then
/// [`Reader::metadata`].
pub struct Reader<R: Read> {
    src: R,
    /// Bytes read so far.
    off: u64,
    /// Body bytes left (the checksum excluded).
    left: u64,
    strings: Vec<String>,
    prev: u64,
    series_left: u64,
    /// Label string indexes of the entry being read.
    pairs: Vec<(usize, usize)>,
}

impl<R: Read> Reader<R> {
    /// Reads the magic and the header of a source of `len` bytes.
    pub fn open(src: R, len: u64) -> Result<(Self, Header), SnapshotIoError> {
        let mut r = Self {
            src,
            off: 0,
            left: len.saturating_sub(4),
            strings: Vec::new(),
            prev: 0,
            series_left: 0,
            pairs: Vec::new(),
        };
        let mut magic = [0u8; 8];
        r.bytes(&mut magic)?;
        if magic != MAGIC {
            return Err(corrupt(0, format!("magic {MAGIC:02x?}"), format!("{magic:02x?}")).into());
        }
        let n = r.count("WAL entries", 2)?;
        let mut wal_files = Vec::new();
        for _ in 0..n {
            let name = r.string()?;
            let size = r.uvarint()?;
            wal_files.push((name, size));
        }
        let chunks = r.uvarint()?;
        let mut mv = [0u8; 8];
        r.bytes(&mut mv)?;
        let min_valid = i64::from_le_bytes(mv);
        let next_ref = r.uvarint()?;
        let series = r.count("series entries", 12)?;
        r.series_left = series;
        Ok((
            r,
            Header {
                wal_files,
                chunks,
                min_valid,
                next_ref,
                series,
            },
        ))
    }

    fn bytes(&mut self, out: &mut [u8]) -> Result<(), SnapshotIoError> {
        let n = out.len() as u64;
        if n > self.left {
            return Err(corrupt(
                self.off,
                format!("{n} more bytes"),
                format!("{} left", self.left),
            )
            .into());
        }
        self.src.read_exact(out)?;
        self.off += n;
        self.left -= n;
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, SnapshotIoError> {
        let mut b = [0u8; 1];
        self.bytes(&mut b)?;
        Ok(b[0])
    }

    fn uvarint(&mut self) -> Result<u64, SnapshotIoError> {
        let at = self.off;
        let mut x = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            x |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if shift == 63 && b > 1 {
                    break;
                }
                return Ok(x);
            }
        }
        Err(corrupt(at, "a varint of at most 64 bits", "a longer one").into())
    }

    /// A count of items that take at least `min_bytes` each: more than
    /// the bytes left can hold is damage.
    fn count(&mut self, what: &str, min_bytes: u64) -> Result<u64, SnapshotIoError> {
        let at = self.off;
        let n = self.uvarint()?;
        if n.saturating_mul(min_bytes) > self.left {
            return Err(corrupt(
                at,
                format!("{what} that fit in {} bytes", self.left),
                n.to_string(),
            )
            .into());
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, SnapshotIoError> {
        let at = self.off;
        let n = self.uvarint()?;
        if n > self.left {
            return Err(corrupt(
                at,
                format!("a string of at most {} bytes", self.left),
                format!("length {n}"),
            )
            .into());
        }
        let mut b = vec![0u8; usize::try_from(n).unwrap_or(0)];
        self.bytes(&mut b)?;
        String::from_utf8(b).map_err(|_| corrupt(at, "UTF-8", "other bytes").into())
    }

    fn string_ref(&mut self) -> Result<usize, SnapshotIoError> {
        let at = self.off;
        match self.uvarint()? {
            0 => {
                let s = self.string()?;
                self.strings.push(s);
                Ok(self.strings.len() - 1)
            }
            k => {
                let i = usize::try_from(k - 1).unwrap_or(usize::MAX);
                if i >= self.strings.len() {
                    return Err(corrupt(
                        at,
                        format!("a string reference up to {}", self.strings.len()),
                        k.to_string(),
                    )
                    .into());
                }
                Ok(i)
            }
        }
    }

    /// The next series entry, `None` after the last one.
    pub fn next_series(&mut self) -> Result<Option<Entry>, SnapshotIoError> {
        if self.series_left == 0 {
            return Ok(None);
        }
        let at = self.off;
        let delta = self.uvarint()?;
        let r = self
            .prev
            .checked_add(delta)
            .filter(|_| delta > 0)
            .ok_or_else(|| {
                corrupt(
                    at,
                    format!("a ref above {}", self.prev),
                    format!("delta {delta}"),
                )
            })?;
        self.prev = r;
        self.series_left -= 1;
        let at = self.off;
        let n = self.count("labels", 2)?;
        if n == 0 {
            return Err(corrupt(at, "at least one label", "none").into());
        }
        self.pairs.clear();
        for _ in 0..n {
            let name = self.string_ref()?;
            let value = self.string_ref()?;
            self.pairs.push((name, value));
        }
        let strings = &self.strings;
        let get = |i: usize| strings.get(i).map_or("", String::as_str);
        if self.pairs.iter().any(|&(_, v)| get(v).is_empty()) {
            return Err(corrupt(at, "label values that are not empty", "an empty one").into());
        }
        let labels = Labels::try_from_sorted(self.pairs.iter().map(|&(n, v)| (get(n), get(v))))
            .map_err(|e| corrupt(at, "sorted, unique, non-empty label names", e.to_string()))?;
        let chunks = self.uvarint()?;
        let mut v = [0u8; 8];
        self.bytes(&mut v)?;
        Ok(Some(Entry {
            r,
            labels,
            chunks,
            last_v: f64::from_bits(u64::from_le_bytes(v)),
        }))
    }

    /// The metadata, after the last series; the body must end there.
    pub fn metadata(mut self) -> Result<Vec<MetaEntry>, SnapshotIoError> {
        if self.series_left > 0 {
            return Err(corrupt(
                self.off,
                "the metadata after every series",
                format!("{} series left", self.series_left),
            )
            .into());
        }
        let n = self.count("metadata entries", 4)?;
        let mut out = Vec::new();
        for _ in 0..n {
            let name = self.string()?;
            let kind = self.byte()?;
            let unit = self.string()?;
            let help = self.string()?;
            out.push(MetaEntry {
                name,
                kind,
                unit,
                help,
            });
        }
        if self.left != 0 {
            return Err(corrupt(
                self.off,
                "the checksum",
                format!("{} more bytes", self.left),
            )
            .into());
        }
        Ok(out)
    }
}

/// Decodes a whole snapshot held in memory (the checksum first).
pub fn decode(b: &[u8]) -> Result<(Header, Vec<Entry>, Vec<MetaEntry>), SnapshotIoError> {
    check(b, b.len() as u64)?;
    let (mut r, h) = Reader::open(b, b.len() as u64)?;
    let mut entries = Vec::new();
    while let Some(e) = r.next_series()? {
        entries.push(e);
    }
    Ok((h, entries, r.metadata()?))
}

/// Encodes a whole snapshot in memory.
pub fn encode(
    h: &Header,
    entries: &[Entry],
    meta: &[MetaEntry],
) -> Result<Vec<u8>, SnapshotIoError> {
    let header = Header {
        series: entries.len() as u64,
        ..h.clone()
    };
    let mut w = Writer::new(Vec::new(), &header)?;
    for e in entries {
        w.series(e.r, &e.labels, e.chunks, e.last_v)?;
    }
    w.finish(meta)
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
                0u64..5,
                any::<f64>(),
            ),
            0..20,
        )
        .prop_map(|v| {
            let mut r = 0;
            v.into_iter()
                .map(|(d, labels, chunks, last_v)| {
                    r += d;
                    Entry {
                        r,
                        labels: Labels::from_pairs(labels),
                        chunks,
                        last_v,
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
            chunks: u64, min_valid: i64, next_ref: u64,
            meta in prop::collection::vec(("[a-z_]{1,8}", 0u8..8, "[a-z]{0,3}", "[ -~]{0,10}"), 0..3),
            flip in any::<prop::sample::Index>(),
        ) {
            let h = Header { wal_files: wal, chunks, min_valid, next_ref, series: es.len() as u64 };
            let meta: Vec<MetaEntry> = meta
                .into_iter()
                .map(|(name, kind, unit, help)| MetaEntry { name, kind, unit, help })
                .collect();
            let b = encode(&h, &es, &meta).unwrap();
            let (h2, es2, meta2) = decode(&b).unwrap();
            prop_assert_eq!(h2, h);
            prop_assert_eq!(es2, es);
            prop_assert_eq!(meta2, meta);
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
        w.series(5, &l, 0, 0.0).unwrap();
        assert!(w.series(5, &l, 0, 0.0).is_err());
        assert!(w.finish(&[]).is_err());
    }
}
