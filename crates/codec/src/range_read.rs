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

    /// A hint: the ranges `(offset, length)` (ascending) will be read
    /// soon. An implementation may fetch them now, in fewer and
    /// concurrent requests; failures are left for the reads to report.
    /// The default does nothing.
    fn prefetch(&self, ranges: &[(u64, u64)]) {
        let _ = ranges;
    }
}

/// Groups ascending `offsets` into ranges `(offset, length)`: offsets less
/// than `max_gap` apart share a range, and each range reaches `tail`
/// bytes past its last offset (the record there is at most about that
/// long; a longer one is read on demand).
pub fn group_ranges(offsets: &[u64], max_gap: u64, tail: u64) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &o in offsets {
        match out.last_mut() {
            Some((start, len)) if o <= *start + *len + max_gap && o >= *start => {
                *len = (*len).max(o - *start + tail);
            }
            _ => out.push((o, tail)),
        }
    }
    out
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

#[cfg(test)]
mod tests {
    #[test]
    fn ranges_group_by_gap() {
        assert_eq!(super::group_ranges(&[], 10, 4), vec![]);
        assert_eq!(
            super::group_ranges(&[0, 5, 30, 31, 100], 10, 4),
            vec![(0, 9), (30, 5), (100, 4)]
        );
    }
}
