//! A per-connection cache from a series' raw wire labels (the encoded label
//! fields of its `TimeSeries`, exactly as sent) to its validated [`Labels`]
//! and storage reference.
//!
//! Why: a remote-write sender sends the same series again every scrape, and
//! validating its label pairs and building a fresh `Labels` value (UTF-8
//! checks, an allocation, a hash) costs more than storing the sample. A hit
//! hands the appender the `Labels` value it was given the first time (the
//! same shared allocation the head keeps, so its comparison is a pointer
//! check) and the reference it returned.
//!
//! Contract: an entry is only returned when the raw label bytes are equal,
//! byte for byte, to those it was cached under, so they decode to the same
//! pairs: a hit never changes which series a sample goes to, and implies the
//! pairs would pass decoding and validation again (same bytes, same server
//! limits). Only label sets that passed validation are cached. The raw
//! bytes are kept beside the `Labels` (the price of comparing without
//! decoding: about the encoded label size again per cached series). The
//! reference is only a hint:
//! the appender checks it against the labels and falls back to a lookup.
//! The cache is bounded: when it holds `max_entries` it is cleared (a
//! replaced colliding entry still counts until then).
//!
//! Senders such as Prometheus send a series over whichever pooled
//! connection is free, so each connection's cache learns most series. A
//! series new to a connection is first looked up in [`SharedSeriesCache`]
//! (one per server, lock stripes by hash, no raw bytes kept: its entries are
//! checked by decoding the raw labels and comparing them with the cached
//! `Labels`), which skips validation and the storage's label lookup.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

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

/// One cached series; its raw label bytes are `arena[off..off + len]`.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    h: u64,
    off: usize,
    len: usize,
    pub labels: Labels,
    pub r: SeriesRef,
}

/// The cache; see the module docs.
///
/// Entries and their raw bytes are kept in insertion order, and a lookup
/// first tries the entry after the previous hit: a sender repeats its
/// series in the same order every scrape, so most lookups read memory
/// sequentially instead of probing the hash table.
#[derive(Debug)]
pub struct SeriesCache {
    /// Raw label bytes hash to an index into `entries`.
    map: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    entries: Vec<Entry>,
    arena: Vec<u8>,
    next: usize,
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
            entries: Vec::new(),
            arena: Vec::new(),
            next: 0,
            max_entries: max_entries.clamp(1, u32::MAX as usize),
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

    fn matches(&self, i: usize, h: u64, raw: &[u8]) -> bool {
        self.entries.get(i).is_some_and(|e| {
            e.h == h && e.len == raw.len() && self.arena.get(e.off..e.off + e.len) == Some(raw)
        })
    }

    /// The index of the entry after the previous hit when it was cached
    /// under exactly `raw`. Needs no hash: the common case of a sender
    /// repeating its series in order costs one comparison of the bytes.
    pub(crate) fn find_next(&mut self, raw: &[u8]) -> Option<u32> {
        let i = self.next;
        let e = self.entries.get(i)?;
        if e.len != raw.len() || self.arena.get(e.off..e.off + e.len) != Some(raw) {
            return None;
        }
        self.next = i + 1;
        // Indices are below `max_entries`, at most `u32::MAX`.
        Some(i as u32)
    }

    /// The index of the entry for raw label bytes `raw` with hash `h` (see
    /// [`hash_raw`]). Indices stay valid until an insert into a full cache
    /// (see [`Self::is_full`]) clears it.
    pub(crate) fn find(&mut self, h: u64, raw: &[u8]) -> Option<u32> {
        let i = if self.matches(self.next, h, raw) {
            self.next
        } else {
            let i = *self.map.get(&h)? as usize;
            if !self.matches(i, h, raw) {
                return None;
            }
            i
        };
        self.next = i + 1;
        // Indices are below `max_entries`, at most `u32::MAX`.
        Some(i as u32)
    }

    /// The entry at index `i`.
    pub(crate) fn entry(&self, i: u32) -> Option<&Entry> {
        self.entries.get(i as usize)
    }

    /// Sets the reference hint of the entry at index `i`.
    pub(crate) fn set_ref(&mut self, i: u32, r: SeriesRef) {
        if let Some(e) = self.entries.get_mut(i as usize) {
            e.r = r;
        }
    }

    /// The entry for raw label bytes `raw` with hash `h`.
    #[cfg(test)]
    pub(crate) fn get(&mut self, h: u64, raw: &[u8]) -> Option<&mut Entry> {
        let i = self.find(h, raw)?;
        self.entries.get_mut(i as usize)
    }

    /// True when the next insert clears the cache (and so invalidates
    /// every index handed out).
    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// Caches `labels` and `r` under `raw` with hash `h`, replacing a
    /// colliding entry; returns the new entry's index.
    pub(crate) fn insert(&mut self, h: u64, raw: &[u8], labels: Labels, r: SeriesRef) -> u32 {
        if self.is_full() {
            self.map.clear();
            self.entries.clear();
            self.arena.clear();
        }
        let i = self.entries.len();
        self.entries.push(Entry {
            h,
            off: self.arena.len(),
            len: raw.len(),
            labels,
            r,
        });
        self.arena.extend_from_slice(raw);
        // The index fits: `max_entries` is at most `u32::MAX`.
        self.map.insert(h, i as u32);
        self.next = i + 1;
        i as u32
    }
}

/// One series of the shared cache.
#[derive(Debug, Clone)]
struct SharedEntry {
    labels: Labels,
    r: SeriesRef,
}

type SharedStripe = HashMap<u64, SharedEntry, BuildHasherDefault<IdHasher>>;

/// The server-wide second level of the cache; see the module docs.
#[derive(Debug)]
pub struct SharedSeriesCache {
    stripes: Box<[Mutex<SharedStripe>]>,
    max_per_stripe: usize,
}

impl Default for SharedSeriesCache {
    /// 256 stripes, about two million series in all.
    fn default() -> Self {
        Self::new(256, 1 << 21)
    }
}

impl SharedSeriesCache {
    /// `stripes` lock stripes holding at most `max_entries` series in all
    /// (a full stripe is cleared).
    pub fn new(stripes: usize, max_entries: usize) -> Self {
        let n = stripes.max(1);
        Self {
            stripes: (0..n)
                .map(|_| Mutex::new(SharedStripe::default()))
                .collect(),
            max_per_stripe: (max_entries / n).max(1),
        }
    }

    fn stripe(&self, h: u64) -> std::sync::MutexGuard<'_, SharedStripe> {
        // Middle bits pick the stripe (the map uses the low bits for buckets
        // and the top seven for tags); `new` makes at least one stripe. A
        // poisoned stripe is used as is: entries are inserted whole.
        let i = (h >> 40) as usize % self.stripes.len();
        #[allow(clippy::indexing_slicing)] // in bounds: `% len`, and `new` makes len >= 1
        self.stripes[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The labels and reference hint cached for `raw` (hash `h`), when
    /// `raw` decodes to exactly those labels.
    pub(crate) fn get(&self, h: u64, raw: &[u8]) -> Option<(Labels, SeriesRef)> {
        let (labels, r) = {
            let g = self.stripe(h);
            let e = g.get(&h)?;
            (e.labels.clone(), e.r)
        };
        let mut pairs = Vec::with_capacity(16);
        let mut none = Vec::new();
        cairn_proto::write::decode_series(raw, &mut pairs, &mut none).ok()?;
        (none.is_empty() && same_labels(&labels, &pairs)).then_some((labels, r))
    }

    /// Caches `labels` and `r` under hash `h`.
    pub(crate) fn insert(&self, h: u64, labels: Labels, r: SeriesRef) {
        let mut g = self.stripe(h);
        if g.len() >= self.max_per_stripe && !g.contains_key(&h) {
            g.clear();
        }
        g.insert(h, SharedEntry { labels, r });
    }

    /// Number of cached series.
    pub fn len(&self) -> usize {
        self.stripes
            .iter()
            .map(|m| m.lock().map_or_else(|e| e.into_inner().len(), |g| g.len()))
            .sum()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// True when `pairs` are exactly the labels of `l`, in order (a pair with an
/// empty value never matches: validation drops those labels).
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

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

#[inline]
fn word(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(s) = b.get(i..i + 8) {
        w.copy_from_slice(s);
    }
    u64::from_le_bytes(w)
}

#[inline]
fn lane(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(K1).rotate_left(31)
}

/// A fast 64-bit hash of raw bytes (not cryptographic; collisions only cost
/// a cache miss). Four independent lanes over 32-byte blocks.
pub(crate) fn hash_raw(b: &[u8]) -> u64 {
    let n = b.len();
    let mut h = [
        0xcbf2_9ce4_8422_2325 ^ n as u64,
        K2,
        K1 ^ (n as u64).rotate_left(17),
        0x1656_67B1_9E37_79F9,
    ];
    let mut i = 0;
    while i + 32 <= n {
        h[0] = lane(h[0], word(b, i));
        h[1] = lane(h[1], word(b, i + 8));
        h[2] = lane(h[2], word(b, i + 16));
        h[3] = lane(h[3], word(b, i + 24));
        i += 32;
    }
    while i + 8 <= n {
        h[0] = lane(h[0], word(b, i));
        h.rotate_left(1);
        i += 8;
    }
    if i < n {
        let mut w = [0u8; 8];
        if let (Some(dst), Some(src)) = (w.get_mut(..n - i), b.get(i..)) {
            dst.copy_from_slice(src);
        }
        h[0] = lane(h[0], u64::from_le_bytes(w));
    }
    let mut x = h[0] ^ h[1].rotate_left(13) ^ h[2].rotate_left(29) ^ h[3].rotate_left(43);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(K2);
    x ^ (x >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::labels;
    use std::collections::HashSet;

    #[test]
    fn hit_only_on_equal_bytes() {
        let mut c = SeriesCache::new(16);
        let l = labels!("__name__" => "up", "job" => "a");
        let raw = b"raw label bytes of up{job=a}";
        let h = hash_raw(raw);
        assert!(c.get(h, raw).is_none());
        c.insert(h, raw, l.clone(), 7);
        let e = c.get(h, raw).map(|e| (e.r, e.labels.clone()));
        assert_eq!(e, Some((7, l)));
        // Same hash slot but other bytes (a forced collision) never match,
        // nor does a prefix or an extension.
        assert!(c.get(h, b"raw label bytes of up{job=b}").is_none());
        assert!(c.get(h, b"raw label bytes").is_none());
        assert!(c.get(h, b"raw label bytes of up{job=a}x").is_none());
    }

    #[test]
    fn hash_spreads_small_changes() {
        let mut seen = HashSet::new();
        let base = vec![0u8; 100];
        for len in 0..100 {
            assert!(seen.insert(hash_raw(base.get(..len).unwrap())));
        }
        for i in 0..100 {
            let mut b = base.clone();
            b[i] = 1;
            assert!(seen.insert(hash_raw(&b)), "flip at {i}");
        }
    }

    #[test]
    fn sequential_and_random_order_hit_the_same_entries() {
        let mut c = SeriesCache::new(100);
        let raws: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 5 + i as usize]).collect();
        for (i, r) in raws.iter().enumerate() {
            c.insert(hash_raw(r), r, labels!("__name__" => "x"), i as u64 + 1);
        }
        for order in [
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
            [9, 3, 4, 0, 8, 1, 2, 7, 5, 6],
        ] {
            for i in order {
                let r = &raws[i];
                assert_eq!(c.get(hash_raw(r), r).map(|e| e.r), Some(i as u64 + 1));
            }
        }
        // The entry after a hit is tried first, but must still match.
        let _ = c.get(hash_raw(&raws[0]), &raws[0]);
        assert!(c.get(hash_raw(&raws[1]), &raws[2]).is_none());

        // Without a hash: only the entry after the previous hit, only on
        // equal bytes (a prefix, a longer run or other bytes miss, and a
        // miss does not move on).
        assert_eq!(c.find(hash_raw(&raws[3]), &raws[3]), Some(3));
        assert_eq!(c.find_next(&raws[4][..4]), None);
        let mut longer = raws[4].clone();
        longer.push(4);
        assert_eq!(c.find_next(&longer), None);
        assert_eq!(c.find_next(&raws[5]), None);
        assert_eq!(c.find_next(&raws[4]), Some(4));
        assert_eq!(c.find_next(&raws[5]), Some(5));
        for (i, r) in raws.iter().enumerate().skip(6) {
            assert_eq!(c.find_next(r), Some(i as u32));
            assert_eq!(c.entry(i as u32).map(|e| e.r), Some(i as u64 + 1));
        }
        assert_eq!(c.find_next(&raws[0]), None, "past the last entry");
    }

    fn label_field(n: &[u8], v: &[u8]) -> Vec<u8> {
        let mut m = vec![0x0a, n.len() as u8];
        m.extend_from_slice(n);
        m.push(0x12);
        m.push(v.len() as u8);
        m.extend_from_slice(v);
        let mut f = vec![0x0a, m.len() as u8];
        f.extend(m);
        f
    }

    #[test]
    fn shared_hits_only_when_raw_decodes_to_the_labels() {
        let c = SharedSeriesCache::new(4, 100);
        let l = labels!("__name__" => "up", "job" => "a");
        let mut raw = label_field(b"__name__", b"up");
        raw.extend(label_field(b"job", b"a"));
        let h = hash_raw(&raw);
        assert!(c.get(h, &raw).is_none());
        c.insert(h, l.clone(), 9);
        assert_eq!(c.get(h, &raw), Some((l, 9)));
        // Forced collisions: other labels, a prefix, an empty value, junk.
        let mut other = label_field(b"__name__", b"up");
        other.extend(label_field(b"job", b"b"));
        assert!(c.get(h, &other).is_none());
        assert!(c.get(h, &label_field(b"__name__", b"up")).is_none());
        let mut empty = label_field(b"__name__", b"up");
        empty.extend(label_field(b"e", b""));
        empty.extend(label_field(b"job", b"a"));
        assert!(c.get(h, &empty).is_none());
        assert!(c.get(h, &[0xff, 0xff]).is_none());
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn bounded() {
        let mut c = SeriesCache::new(2);
        for i in 0..5u64 {
            c.insert(i, &i.to_le_bytes(), labels!("__name__" => "x"), i);
            assert!(c.len() <= 2);
        }
        assert!(!c.is_empty());
    }
}
