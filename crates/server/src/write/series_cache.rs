//! A per-connection cache from a series' raw wire labels to its validated
//! [`Labels`] and storage reference.
//!
//! Why: a remote-write sender sends the same series again every scrape, and
//! validating its label pairs and building a fresh `Labels` value (UTF-8
//! checks, an allocation, a hash) costs more than storing the sample. A hit
//! hands the appender the `Labels` value it was given the first time (the
//! same shared allocation the head keeps, so its comparison is a pointer
//! check) and the reference it returned.
//!
//! Contract: an entry is only returned when the raw pairs are equal, pair by
//! pair and byte for byte, to the cached labels, so a hit never changes
//! which series a sample goes to, and a hit implies the pairs would pass
//! validation again (same bytes, same server limits). A raw pair with an
//! empty value never matches (validation drops those labels), so such
//! series always take the validating path. The reference is only a hint:
//! the appender checks it against the labels and falls back to a lookup.
//! The cache is bounded: when it holds `max_entries` it is cleared.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use cairn_model::Labels;
use cairn_storage::SeriesRef;

/// Passes a precomputed 64-bit hash through.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

/// One cached series.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub labels: Labels,
    pub r: SeriesRef,
}

/// The cache; see the module docs.
#[derive(Debug)]
pub struct SeriesCache {
    map: HashMap<u64, Entry, BuildHasherDefault<IdHasher>>,
    max_entries: usize,
}

impl Default for SeriesCache {
    fn default() -> Self {
        Self::new(1 << 18)
    }
}

impl SeriesCache {
    /// An empty cache holding at most `max_entries` series.
    pub fn new(max_entries: usize) -> Self {
        Self {
            map: HashMap::default(),
            max_entries: max_entries.max(1),
        }
    }

    /// Number of cached series.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The entry for raw pairs with hash `h` (see [`hash_pairs`]), if cached
    /// and equal to `pairs`.
    pub(crate) fn get(&mut self, h: u64, pairs: &[(&[u8], &[u8])]) -> Option<&mut Entry> {
        let e = self.map.get_mut(&h)?;
        same_labels(&e.labels, pairs).then_some(e)
    }

    /// Caches `labels` and `r` under hash `h`, replacing a colliding entry.
    pub(crate) fn insert(&mut self, h: u64, labels: Labels, r: SeriesRef) {
        if self.map.len() >= self.max_entries && !self.map.contains_key(&h) {
            self.map.clear();
        }
        self.map.insert(h, Entry { labels, r });
    }
}

/// True when `pairs` are exactly the labels of `l`, in order.
fn same_labels(l: &Labels, pairs: &[(&[u8], &[u8])]) -> bool {
    let mut it = l.iter();
    for (n, v) in pairs {
        match it.next() {
            Some(x) if x.name.as_bytes() == *n && x.value.as_bytes() == *v => {}
            _ => return false,
        }
    }
    it.next().is_none()
}

const K: u64 = 0x9E37_79B9_7F4A_7C15;

#[inline]
fn mix_bytes(mut h: u64, b: &[u8]) -> u64 {
    h = (h ^ b.len() as u64).wrapping_mul(K);
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(31);
    }
    let rem = chunks.remainder();
    if !rem.is_empty() {
        let mut w = [0u8; 8];
        if let Some(dst) = w.get_mut(..rem.len()) {
            dst.copy_from_slice(rem);
        }
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(29);
    }
    h
}

/// A fast 64-bit hash of raw label pairs (names, values and their lengths).
pub(crate) fn hash_pairs(pairs: &[(&[u8], &[u8])]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (n, v) in pairs {
        h = mix_bytes(h, n);
        h = mix_bytes(h, v);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::labels;

    fn pairs(l: &[(&'static str, &'static str)]) -> Vec<(&'static [u8], &'static [u8])> {
        l.iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect()
    }

    #[test]
    fn hit_only_on_equal_pairs() {
        let mut c = SeriesCache::new(16);
        let l = labels!("__name__" => "up", "job" => "a");
        let p = pairs(&[("__name__", "up"), ("job", "a")]);
        let h = hash_pairs(&p);
        assert!(c.get(h, &p).is_none());
        c.insert(h, l.clone(), 7);
        assert_eq!(c.get(h, &p).map(|e| e.r), Some(7));
        // Same hash slot but other pairs (a forced collision) never match.
        let q = pairs(&[("__name__", "up"), ("job", "b")]);
        assert!(c.get(h, &q).is_none());
        let prefix = pairs(&[("__name__", "up")]);
        assert!(c.get(h, &prefix).is_none());
        let longer = pairs(&[("__name__", "up"), ("job", "a"), ("x", "y")]);
        assert!(c.get(h, &longer).is_none());
        // An empty value is dropped by validation, so it must not match.
        let with_empty = pairs(&[("__name__", "up"), ("empty", ""), ("job", "a")]);
        assert!(c.get(h, &with_empty).is_none());
    }

    #[test]
    fn hash_separates_boundaries() {
        let a = pairs(&[("ab", "c")]);
        let b = pairs(&[("a", "bc")]);
        assert_ne!(hash_pairs(&a), hash_pairs(&b));
    }

    #[test]
    fn bounded() {
        let mut c = SeriesCache::new(2);
        for i in 0..5u64 {
            c.insert(i, labels!("__name__" => "x"), i);
            assert!(c.len() <= 2);
        }
        assert!(!c.is_empty());
    }
}
