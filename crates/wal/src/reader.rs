//! Reading records back out of one segment.
//!
//! [`SegmentReader`] streams a segment page by page (32 KiB of memory, not
//! the whole file), checks every fragment's header, CRC and place in the
//! first/middle/last sequence, and hands out whole records. It also tracks
//! [`SegmentReader::valid_prefix`]: the byte offset just past the last
//! complete record, which is where a damaged tail is cut off on repair.
//!
//! Records never span segments, so a segment is readable on its own. A
//! segment may end anywhere (the last page is usually partial); ending in the
//! middle of a record is a torn write and reported as corruption.

use std::io::{ErrorKind, Read};

use crate::fragment::{
    type_name, FIRST, FULL, HEADER_SIZE, LAST, MIDDLE, PAGE_SIZE, PAGE_TERM, SNAPPY_FLAG,
    TYPE_MASK, ZSTD_FLAG,
};

/// Why a segment could not be read further.
#[derive(Debug)]
pub enum ReadError {
    /// The bytes at `offset` do not follow the format.
    Corrupt {
        offset: u64,
        expected: String,
        found: String,
    },
    /// The record at `offset` is well formed but uses a feature this crate
    /// cannot read (zstd compression). Never treated as a damaged tail.
    Unsupported { offset: u64, what: String },
    /// The underlying reader failed.
    Io(std::io::Error),
}

impl ReadError {
    fn corrupt(offset: u64, expected: impl Into<String>, found: impl Into<String>) -> Self {
        ReadError::Corrupt {
            offset,
            expected: expected.into(),
            found: found.into(),
        }
    }
}

/// Streams whole records out of one segment.
pub struct SegmentReader<R> {
    src: R,
    page: Box<[u8]>,
    page_len: usize,
    pos: usize,
    page_start: u64,
    eof: bool,
    rec: Vec<u8>,
    rec_start: Option<u64>,
    rec_flags: u8,
    last_start: u64,
    valid: u64,
}

impl<R: Read> SegmentReader<R> {
    /// A reader over a segment's bytes, starting at offset 0.
    pub fn new(src: R) -> Self {
        Self {
            src,
            page: vec![0u8; PAGE_SIZE].into_boxed_slice(),
            page_len: 0,
            pos: 0,
            page_start: 0,
            eof: false,
            rec: Vec::new(),
            rec_start: None,
            rec_flags: 0,
            last_start: 0,
            valid: 0,
        }
    }

    /// Offset just past the last complete record returned so far (0 before
    /// the first): the length a damaged segment is truncated to.
    pub fn valid_prefix(&self) -> u64 {
        self.valid
    }

    /// Byte offset where the record last returned by [`Self::next_record`]
    /// starts.
    pub fn record_offset(&self) -> u64 {
        self.last_start
    }

    /// Fills the page buffer with the next page; false at end of input.
    fn load_page(&mut self) -> Result<bool, ReadError> {
        self.page_start += self.page_len as u64;
        self.page_len = 0;
        self.pos = 0;
        if self.eof {
            return Ok(false);
        }
        while self.page_len < PAGE_SIZE {
            let Some(dst) = self.page.get_mut(self.page_len..) else {
                break;
            };
            match self.src.read(dst) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.page_len += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
        Ok(self.page_len > 0)
    }

    /// The next whole record, or `None` at the clean end of the segment.
    /// After an error the reader must not be used again.
    pub fn next_record(&mut self) -> Result<Option<Vec<u8>>, ReadError> {
        self.rec.clear();
        self.rec_start = None;
        self.rec_flags = 0;
        loop {
            if self.pos >= self.page_len && !self.load_page()? {
                return match self.rec_start {
                    None => Ok(None),
                    Some(at) => Err(ReadError::corrupt(
                        at,
                        "the rest of a record spanning pages",
                        "end of segment (torn write)",
                    )),
                };
            }
            let here = self.page_start + self.pos as u64;
            let rest = self.page.get(self.pos..self.page_len).unwrap_or(&[]);
            let typ = rest.first().copied().unwrap_or(PAGE_TERM);
            if typ == PAGE_TERM {
                if let Some(i) = rest.iter().position(|&b| b != 0) {
                    return Err(ReadError::corrupt(
                        here + i as u64,
                        "zero padding to the end of the page",
                        format!("byte {:#04x}", rest.get(i).copied().unwrap_or(0)),
                    ));
                }
                self.pos = self.page_len;
                continue;
            }
            let Some(hdr) = rest.get(..HEADER_SIZE) else {
                return Err(ReadError::corrupt(
                    here,
                    "a 7-byte fragment header",
                    format!("{} bytes before the end of the page", rest.len()),
                ));
            };
            let base = typ & TYPE_MASK;
            if typ & !(TYPE_MASK | SNAPPY_FLAG | ZSTD_FLAG) != 0 || !(FULL..=LAST).contains(&base) {
                return Err(ReadError::corrupt(
                    here,
                    "fragment type 1-4 with optional compression flag",
                    format!("type byte {typ:#04x}"),
                ));
            }
            let len = usize::from(u16::from_be_bytes([
                hdr.get(1).copied().unwrap_or(0),
                hdr.get(2).copied().unwrap_or(0),
            ]));
            let want_crc = u32::from_be_bytes([
                hdr.get(3).copied().unwrap_or(0),
                hdr.get(4).copied().unwrap_or(0),
                hdr.get(5).copied().unwrap_or(0),
                hdr.get(6).copied().unwrap_or(0),
            ]);
            let Some(data) = rest.get(HEADER_SIZE..HEADER_SIZE + len) else {
                return Err(ReadError::corrupt(
                    here,
                    format!("{len} fragment data bytes within the page"),
                    format!("{} bytes left", rest.len().saturating_sub(HEADER_SIZE)),
                ));
            };
            let got_crc = cairn_codec::crc32c(data);
            if got_crc != want_crc {
                return Err(ReadError::corrupt(
                    here,
                    format!("crc32c {want_crc:#010x}"),
                    format!("crc32c {got_crc:#010x}"),
                ));
            }
            let in_record = self.rec_start.is_some();
            match (base, in_record) {
                (FULL | FIRST, false) => {
                    self.rec_start = Some(here);
                    self.rec_flags = typ & !TYPE_MASK;
                }
                (MIDDLE | LAST, true) => {}
                _ => {
                    return Err(ReadError::corrupt(
                        here,
                        if in_record {
                            "a middle or last fragment"
                        } else {
                            "a full or first fragment"
                        },
                        format!("a {} fragment", type_name(base)),
                    ))
                }
            }
            self.rec.extend_from_slice(data);
            self.pos += HEADER_SIZE + len;
            if base == FULL || base == LAST {
                let start = self.rec_start.unwrap_or(here);
                let rec = self.finish_record(start)?;
                self.last_start = start;
                self.valid = self.page_start + self.pos as u64;
                return Ok(Some(rec));
            }
        }
    }

    fn finish_record(&mut self, start: u64) -> Result<Vec<u8>, ReadError> {
        if self.rec_flags & ZSTD_FLAG != 0 {
            return Err(ReadError::Unsupported {
                offset: start,
                what: "zstd-compressed record".into(),
            });
        }
        if self.rec_flags & SNAPPY_FLAG == 0 {
            return Ok(std::mem::take(&mut self.rec));
        }
        let n = snap::raw::decompress_len(&self.rec)
            .map_err(|e| ReadError::corrupt(start, "a snappy length header", e.to_string()))?;
        // Snappy cannot expand data by more than a small factor; refuse
        // absurd claimed lengths rather than allocating them.
        if n > self.rec.len().saturating_mul(64).saturating_add(64) {
            return Err(ReadError::corrupt(
                start,
                "a plausible snappy decompressed length",
                format!("{n} bytes from {} compressed", self.rec.len()),
            ));
        }
        snap::raw::Decoder::new()
            .decompress_vec(&self.rec)
            .map_err(|e| ReadError::corrupt(start, "valid snappy data", e.to_string()))
    }
}
