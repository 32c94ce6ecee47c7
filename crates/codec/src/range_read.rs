//! Byte ranges of a file that is not on local disk.
//!
//! Readers of the on-disk formats (index, chunk segments) normally map
//! their files. A block served from object storage has no local file: its
//! index and segments are read by byte range through a [`RangeRead`]
//! (implemented by the object-storage crate over a bounded page cache).
//! This crate only names the interface; it does no I/O itself.

/// A read-only object read by byte range.
///
/// Contract: the object is immutable; `read_at(off, len)` returns exactly
/// the bytes `[off, off + len)` clipped to [`RangeRead::size`] (fewer, or
/// none, where the object ends), or an I/O error. Implementations are
/// shared across query threads.
pub trait RangeRead: Send + Sync {
    /// The object's length in bytes.
    fn size(&self) -> u64;

    /// The bytes `[off, off + len)`, clipped to the object's end.
    fn read_at(&self, off: u64, len: u64) -> std::io::Result<Vec<u8>>;

    /// Where the object lives, for error messages (a bucket key).
    fn name(&self) -> String;
}

/// An object held in memory (tests, fuzzing).
impl RangeRead for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, off: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let start = usize::try_from(off).unwrap_or(usize::MAX).min(self.len());
        let end = usize::try_from(off.saturating_add(len))
            .unwrap_or(usize::MAX)
            .min(self.len());
        Ok(self.get(start..end).unwrap_or_default().to_vec())
    }

    fn name(&self) -> String {
        "<memory>".to_owned()
    }
}
