//! Constants of the index file layout and the table of contents.
//!
//! The TOC is the last 52 bytes of the file: six big-endian 64-bit section
//! offsets followed by the CRC32-Castagnoli of those 48 bytes. An offset of
//! zero means the section is absent. See `docs/format/index.md`.

use cairn_codec::cursor::put_be64;
use cairn_codec::{crc32c, ByteCursor};

/// First four bytes of every index file, big-endian.
pub const MAGIC_INDEX: u32 = 0xBAAA_D700;
/// Format version 1: symbol and series references are byte offsets.
pub const FORMAT_V1: u8 = 1;
/// Format version 2: symbol references are table positions, series
/// references are byte offsets divided by 16.
pub const FORMAT_V2: u8 = 2;
/// Bytes before the symbol table: magic plus version.
pub const HEADER_LEN: usize = 5;
/// Series entries start on multiples of this many bytes (v2).
pub const SERIES_ALIGN: u64 = 16;
/// Bytes taken by the table of contents at the end of the file.
pub const TOC_LEN: usize = 6 * 8 + 4;
/// Label name and value of the postings list that holds every series.
pub const ALL_POSTINGS_KEY: (&str, &str) = ("", "");

/// Where each section starts; zero when absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Toc {
    pub symbols: u64,
    pub series: u64,
    pub label_indices: u64,
    pub label_indices_table: u64,
    pub postings: u64,
    pub postings_table: u64,
}

impl Toc {
    pub(crate) fn encode(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        for v in [
            self.symbols,
            self.series,
            self.label_indices,
            self.label_indices_table,
            self.postings,
            self.postings_table,
        ] {
            put_be64(buf, v);
        }
        let sum = crc32c(buf.get(start..).unwrap_or_default());
        buf.extend_from_slice(&sum.to_be_bytes());
    }

    /// Parses the 52 TOC bytes. Returns `Err((expected, found))` on a CRC
    /// mismatch; the slice must be exactly [`TOC_LEN`] long.
    pub(crate) fn decode(b: &[u8]) -> Result<Toc, (u32, u32)> {
        let (body, sum) = b.split_at(b.len().saturating_sub(4).min(TOC_LEN - 4));
        let mut s = ByteCursor::new(sum);
        let expected = s.be32().unwrap_or(0);
        let found = crc32c(body);
        if b.len() != TOC_LEN || expected != found {
            return Err((expected, found));
        }
        let mut d = ByteCursor::new(body);
        let mut next = || d.be64().unwrap_or(0);
        Ok(Toc {
            symbols: next(),
            series: next(),
            label_indices: next(),
            label_indices_table: next(),
            postings: next(),
            postings_table: next(),
        })
    }
}
