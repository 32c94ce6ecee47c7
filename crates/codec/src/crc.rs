//! CRC32 with the Castagnoli polynomial, as used by every Prometheus checksum
//! (chunk segments, head chunks, index TOC/series/postings, WAL records).

/// CRC32-Castagnoli of `data` (Go's `crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))`).
pub fn crc32c(data: &[u8]) -> u32 {
    ::crc32c::crc32c(data)
}

/// Extends a running CRC32-Castagnoli `crc` with `data`, so checksums over
/// non-contiguous pieces (e.g. an encoding byte followed by chunk data) can be
/// computed without copying: `crc32c_append(crc32c(a), b) == crc32c(a ++ b)`.
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    ::crc32c::crc32c_append(crc, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // The standard check value for CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn append_equals_concat() {
        let a = b"hello ";
        let b = b"world";
        assert_eq!(crc32c_append(crc32c(a), b), crc32c(b"hello world"));
    }
}
