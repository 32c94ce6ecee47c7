//! The page/fragment layer shared by the writer and the reader.
//!
//! A segment is a sequence of 32 KiB pages. A record is cut into fragments so
//! that no fragment crosses a page boundary; each fragment is a 7-byte header
//! (`type <1> · length <be16> · crc32c(data) <be32>`) followed by `length`
//! data bytes. A zero type byte means "the rest of this page is zero
//! padding". Bit 3 of the type byte marks a snappy-compressed record (set on
//! every fragment of it), bit 4 a zstd-compressed one (not supported here).

/// Bytes per page.
pub const PAGE_SIZE: usize = 32 * 1024;
/// Bytes in a fragment header.
pub const HEADER_SIZE: usize = 7;
/// The default segment size, 128 MiB.
pub const DEFAULT_SEGMENT_SIZE: usize = 128 * 1024 * 1024;

/// Padding: the rest of the page is zeros.
pub(crate) const PAGE_TERM: u8 = 0;
/// A whole record in one fragment.
pub(crate) const FULL: u8 = 1;
/// The first fragment of a record spanning pages.
pub(crate) const FIRST: u8 = 2;
/// A fragment strictly inside a record.
pub(crate) const MIDDLE: u8 = 3;
/// The final fragment of a record spanning pages.
pub(crate) const LAST: u8 = 4;
/// Low bits holding one of the types above.
pub(crate) const TYPE_MASK: u8 = 0x07;
/// Flag: the reassembled record is snappy-compressed.
pub(crate) const SNAPPY_FLAG: u8 = 0x08;
/// Flag: the reassembled record is zstd-compressed.
pub(crate) const ZSTD_FLAG: u8 = 0x10;

/// A page of zeros, for padding.
pub(crate) static ZEROS: [u8; PAGE_SIZE] = [0u8; PAGE_SIZE];

/// Cuts `rec` into fragments appended to `buf`, where `buf[0]` sits at byte
/// `base` of the segment: fragments never cross a page boundary, and a page
/// with no room for a header plus one data byte is zero-padded first.
/// `flag` ([`SNAPPY_FLAG`] or 0) is set on every fragment's type byte.
pub(crate) fn append_fragments(buf: &mut Vec<u8>, base: u64, rec: &[u8], flag: u8) {
    let mut rest = rec;
    let mut first = true;
    loop {
        let in_page = ((base + buf.len() as u64) % PAGE_SIZE as u64) as usize;
        let left = PAGE_SIZE - in_page;
        if left <= HEADER_SIZE {
            buf.extend_from_slice(ZEROS.get(..left).unwrap_or(&[]));
            continue;
        }
        let n = rest.len().min(left - HEADER_SIZE);
        let (part, tail) = rest.split_at(n);
        let typ = match (first, tail.is_empty()) {
            (true, true) => FULL,
            (true, false) => FIRST,
            (false, false) => MIDDLE,
            (false, true) => LAST,
        };
        put_fragment(buf, typ | flag, part);
        rest = tail;
        first = false;
        if rest.is_empty() {
            return;
        }
    }
}

/// The bytes of a segment holding `recs` and nothing else (no size limit,
/// no compression): what the log writer would produce for them in one
/// segment. Useful for tests and fuzzing.
pub fn frame_segment(recs: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in recs {
        append_fragments(&mut out, 0, r, 0);
    }
    out
}

/// Appends one fragment header and its data to `out`.
pub(crate) fn put_fragment(out: &mut Vec<u8>, typ: u8, data: &[u8]) {
    debug_assert!(data.len() <= PAGE_SIZE - HEADER_SIZE);
    out.push(typ);
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(&cairn_codec::crc32c(data).to_be_bytes());
    out.extend_from_slice(data);
}

/// Human name of a fragment type, for error messages.
pub(crate) fn type_name(t: u8) -> &'static str {
    match t & TYPE_MASK {
        PAGE_TERM => "padding",
        FULL => "full",
        FIRST => "first",
        MIDDLE => "middle",
        LAST => "last",
        _ => "invalid",
    }
}
