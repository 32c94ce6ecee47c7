//! Deletion marks ("tombstones") of a block, and their file format.
//!
//! A block is immutable except for its `tombstones` file: deleting series
//! data only records, per series reference, closed time intervals whose
//! samples readers must hide; compaction later drops them for real.
//!
//! File layout (all integers big-endian): magic `0x0130BA30` (4 bytes),
//! format version `1` (1 byte), then entries of `uvarint series_ref`,
//! `varint mint`, `varint maxt` until the CRC32-Castagnoli (4 bytes) that
//! covers the entries only (not the magic, not the version byte).
//!
//! Contracts: intervals are closed `[mint, maxt]`; the intervals of a series
//! are kept sorted, disjoint and non-adjacent (adding merges neighbours).
//! A series is present only while it has at least one interval, as on disk,
//! where every entry carries exactly one: an interval with `mint > maxt`
//! deletes nothing, so adding one changes nothing, and neither does reading
//! such an entry (Prometheus writes one for a delete request whose start
//! lies after its end). Hence decode → encode → decode is the identity on
//! everything that decodes.

use std::collections::BTreeMap;
use std::path::Path;

use cairn_codec::varint::{put_uvarint, put_varint};
use cairn_codec::{ByteCursor, CodecError};

use crate::fsutil::write_atomic;
use crate::{Result, TsdbError};

/// The file name inside a block directory.
pub const TOMBSTONES_FILENAME: &str = "tombstones";
/// First four bytes of a tombstones file.
pub const TOMBSTONES_MAGIC: u32 = 0x0130_BA30;
const FORMAT_V1: u8 = 1;

/// A closed time interval `[mint, maxt]` in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Interval {
    pub mint: i64,
    pub maxt: i64,
}

impl Interval {
    /// `[mint, maxt]`.
    pub fn new(mint: i64, maxt: i64) -> Self {
        Self { mint, maxt }
    }

    /// True when `t` lies in the interval.
    pub fn contains(&self, t: i64) -> bool {
        self.mint <= t && t <= self.maxt
    }
}

/// Sorted, disjoint, non-adjacent closed intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(Vec<Interval>);

impl Intervals {
    /// The intervals in increasing order.
    pub fn as_slice(&self) -> &[Interval] {
        &self.0
    }

    /// Adds `n`, merging it with overlapping or adjacent intervals.
    pub fn add(&mut self, n: Interval) {
        if n.maxt < n.mint {
            return;
        }
        let mut merged = n;
        let mut out = Vec::with_capacity(self.0.len() + 1);
        let mut placed = false;
        for &iv in &self.0 {
            if iv.maxt.saturating_add(1) < merged.mint {
                out.push(iv);
            } else if merged.maxt.saturating_add(1) < iv.mint {
                if !placed {
                    out.push(merged);
                    placed = true;
                }
                out.push(iv);
            } else {
                merged = Interval::new(merged.mint.min(iv.mint), merged.maxt.max(iv.maxt));
            }
        }
        if !placed {
            out.push(merged);
        }
        self.0 = out;
    }

    /// True when `t` is inside one of the intervals.
    pub fn contains(&self, t: i64) -> bool {
        let i = self.0.partition_point(|iv| iv.maxt < t);
        self.0.get(i).is_some_and(|iv| iv.contains(t))
    }

    /// True when `[mint, maxt]` lies entirely inside one interval.
    pub fn covers(&self, mint: i64, maxt: i64) -> bool {
        let i = self.0.partition_point(|iv| iv.maxt < mint);
        self.0
            .get(i)
            .is_some_and(|iv| iv.mint <= mint && maxt <= iv.maxt)
    }

    /// True when there are no intervals.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The tombstones of one block: deletion intervals by series reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    by_series: BTreeMap<u64, Intervals>,
}

impl Tombstones {
    /// No tombstones.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks `[iv.mint, iv.maxt]` of series `r` deleted; an empty interval
    /// (`mint > maxt`) marks nothing and leaves `r` absent if it was.
    pub fn add(&mut self, r: u64, iv: Interval) {
        if iv.maxt < iv.mint {
            return;
        }
        self.by_series.entry(r).or_default().add(iv);
    }

    /// The deletion intervals of series `r`, if any.
    pub fn get(&self, r: u64) -> Option<&Intervals> {
        self.by_series.get(&r)
    }

    /// Iterates `(series_ref, intervals)` in increasing reference order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Intervals)> {
        self.by_series.iter().map(|(r, iv)| (*r, iv))
    }

    /// Total number of intervals (meta.json's `numTombstones`).
    pub fn total(&self) -> u64 {
        self.by_series.values().map(|iv| iv.0.len() as u64).sum()
    }

    /// True when nothing is deleted.
    pub fn is_empty(&self) -> bool {
        self.by_series.is_empty()
    }

    /// The whole file: magic, version, entries, CRC.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.by_series.len() * 12);
        out.extend_from_slice(&TOMBSTONES_MAGIC.to_be_bytes());
        out.push(FORMAT_V1);
        let start = out.len();
        for (r, ivs) in &self.by_series {
            for iv in &ivs.0 {
                put_uvarint(&mut out, *r);
                put_varint(&mut out, iv.mint);
                put_varint(&mut out, iv.maxt);
            }
        }
        let crc = crc32c::crc32c(out.get(start..).unwrap_or(&[]));
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses a whole file; `path` only names it in errors.
    pub fn decode(b: &[u8], path: &Path) -> Result<Self> {
        let corrupt = |what, expected: String, found: String| TsdbError::Corrupt {
            path: path.to_owned(),
            what,
            expected,
            found,
        };
        // Magic (4 bytes), version (1), entries, CRC32C (4).
        let too_short = || {
            corrupt(
                "tombstones size",
                ">= 9 bytes".into(),
                format!("{} bytes", b.len()),
            )
        };
        if b.len() < 9 {
            return Err(too_short());
        }
        let (head, rest) = b.split_first_chunk::<4>().ok_or_else(too_short)?;
        let magic = u32::from_be_bytes(*head);
        if magic != TOMBSTONES_MAGIC {
            return Err(corrupt(
                "tombstones magic",
                format!("{TOMBSTONES_MAGIC:#010x}"),
                format!("{magic:#010x}"),
            ));
        }
        let (body, crc_bytes) = rest.split_last_chunk::<4>().ok_or_else(too_short)?;
        let (&version, entries) = body.split_first().ok_or_else(too_short)?;
        if version != FORMAT_V1 {
            return Err(corrupt(
                "tombstones version",
                FORMAT_V1.to_string(),
                format!("{version}"),
            ));
        }
        let want = u32::from_be_bytes(*crc_bytes);
        let got = crc32c::crc32c(entries);
        if want != got {
            return Err(corrupt(
                "tombstones checksum",
                format!("{want:#010x}"),
                format!("{got:#010x}"),
            ));
        }
        // Offsets in errors count from the start of the file.
        let bad_entry = |e: CodecError| {
            let (expected, found) = e.expected_found();
            let off = 5 + e.byte_offset().unwrap_or(0);
            corrupt(
                "tombstones entry",
                format!("uvarint ref, varint mint, varint maxt ({expected})"),
                format!("{found} at offset {off}"),
            )
        };
        let mut t = Tombstones::new();
        let mut d = ByteCursor::new(entries);
        while !d.is_empty() {
            let r = d.uvarint().map_err(bad_entry)?;
            let mint = d.varint().map_err(bad_entry)?;
            let maxt = d.varint().map_err(bad_entry)?;
            t.add(r, Interval::new(mint, maxt));
        }
        Ok(t)
    }

    /// Reads `<dir>/tombstones`; a missing file means no tombstones.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(TOMBSTONES_FILENAME);
        match std::fs::read(&path) {
            Ok(b) => Self::decode(&b, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::new()),
            Err(e) => Err(TsdbError::io("read", &path)(e)),
        }
    }

    /// Writes `<dir>/tombstones` atomically and durably.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(TOMBSTONES_FILENAME), &self.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_file_matches_promtool() {
        // What `promtool tsdb create-blocks-from` writes for a block without deletions.
        assert_eq!(
            Tombstones::new().encode(),
            vec![0x01, 0x30, 0xba, 0x30, 0x01, 0, 0, 0, 0]
        );
    }

    #[test]
    fn intervals_merge_overlapping_and_adjacent() {
        let mut iv = Intervals::default();
        iv.add(Interval::new(10, 20));
        iv.add(Interval::new(30, 40));
        iv.add(Interval::new(21, 22));
        assert_eq!(
            iv.as_slice(),
            &[Interval::new(10, 22), Interval::new(30, 40)]
        );
        iv.add(Interval::new(i64::MIN, 12));
        iv.add(Interval::new(35, i64::MAX));
        assert_eq!(
            iv.as_slice(),
            &[Interval::new(i64::MIN, 22), Interval::new(30, i64::MAX)]
        );
        assert!(iv.contains(-5) && !iv.contains(25) && iv.contains(i64::MAX));
        assert!(iv.covers(31, 100) && !iv.covers(20, 31));
    }

    /// Magic, version, `entries`, CRC: a well-framed file.
    fn framed(entries: &[u8]) -> Vec<u8> {
        let mut b = TOMBSTONES_MAGIC.to_be_bytes().to_vec();
        b.push(FORMAT_V1);
        b.extend_from_slice(entries);
        b.extend_from_slice(&crc32c::crc32c(entries).to_be_bytes());
        b
    }

    #[test]
    fn inverted_interval_deletes_nothing() {
        // Found by the `tombstones` fuzz target: an entry with mint > maxt
        // used to leave its series present with no intervals, which
        // re-encoded to nothing, so decode -> encode -> decode differed.
        // Entry: ref 3, mint 10 (zig-zag 20), maxt 5 (zig-zag 10).
        let t = Tombstones::decode(&framed(&[3, 20, 10]), Path::new("x")).unwrap();
        assert_eq!(t, Tombstones::new());
        assert!(t.is_empty() && t.total() == 0 && t.get(3).is_none());
        assert_eq!(t.encode(), Tombstones::new().encode());

        // Beside a real interval of the same series: only that one counts.
        let t = Tombstones::decode(&framed(&[3, 20, 10, 3, 2, 4]), Path::new("x")).unwrap();
        assert_eq!(
            t.get(3).map(Intervals::as_slice),
            Some(&[Interval::new(1, 2)][..])
        );
        assert_eq!(t.total(), 1);
        assert_eq!(Tombstones::decode(&t.encode(), Path::new("x")).unwrap(), t);

        let mut t = Tombstones::new();
        t.add(9, Interval::new(1, 0));
        assert!(t.is_empty() && t.iter().next().is_none());
    }

    #[test]
    fn detects_corruption() {
        let mut t = Tombstones::new();
        t.add(7, Interval::new(-3, 99));
        let mut b = t.encode();
        let n = b.len();
        b[n - 6] ^= 0x40;
        assert!(matches!(
            Tombstones::decode(&b, Path::new("x")),
            Err(TsdbError::Corrupt {
                what: "tombstones checksum",
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn round_trips(entries in proptest::collection::vec((0..8u64, any::<i64>(), any::<i64>()), 0..30)) {
            // Intervals come in either order: `mint > maxt` ones are empty.
            let mut t = Tombstones::new();
            let mut model: BTreeMap<u64, Vec<(i64, i64)>> = BTreeMap::new();
            for (r, mint, maxt) in entries {
                t.add(r, Interval::new(mint, maxt));
                if mint <= maxt {
                    model.entry(r).or_default().push((mint, maxt));
                }
            }
            let back = Tombstones::decode(&t.encode(), Path::new("x")).unwrap();
            prop_assert_eq!(&back, &t);
            // Exactly the series with a non-empty interval are present...
            prop_assert_eq!(back.iter().map(|(r, _)| r).collect::<Vec<_>>(), model.keys().copied().collect::<Vec<_>>());
            prop_assert_eq!(back.is_empty(), model.is_empty());
            // ...and every added interval's ends are still covered.
            for (r, ivs) in model {
                for (lo, hi) in ivs {
                    let got = back.get(r).unwrap();
                    prop_assert!(!got.is_empty());
                    prop_assert!(got.contains(lo) && got.contains(hi) && got.covers(lo, hi));
                }
            }
        }

        #[test]
        fn decoded_files_round_trip(entries in proptest::collection::vec((0..8u64, any::<i64>(), any::<i64>()), 0..30)) {
            // Files as another writer may lay them out: unsorted, overlapping,
            // repeated and inverted entries. What decodes re-encodes to a
            // file that decodes the same.
            let mut body = Vec::new();
            for (r, mint, maxt) in &entries {
                put_uvarint(&mut body, *r);
                put_varint(&mut body, *mint);
                put_varint(&mut body, *maxt);
            }
            let t = Tombstones::decode(&framed(&body), Path::new("x")).unwrap();
            let again = Tombstones::decode(&t.encode(), Path::new("x")).unwrap();
            prop_assert_eq!(&again, &t);
            prop_assert_eq!(again.encode(), t.encode());
            let nonempty = entries.iter().filter(|(_, a, b)| a <= b).count() as u64;
            prop_assert!(t.total() <= nonempty);
            prop_assert_eq!(t.is_empty(), nonempty == 0);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = Tombstones::decode(&b, Path::new("x"));
        }

        #[test]
        fn arbitrary_entries_with_valid_frame_never_panic(entries in proptest::collection::vec(any::<u8>(), 0..100)) {
            if let Ok(t) = Tombstones::decode(&framed(&entries), Path::new("x")) {
                let again = Tombstones::decode(&t.encode(), Path::new("x")).unwrap();
                prop_assert_eq!(again, t);
            }
        }
    }
}
