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
//! Contract: an entry is only returned when the raw label bytes, read as
//! canonical `Label` messages (name then value, nothing else), are exactly
//! the cached label pairs in order (see [`raw_matches`]): a hit never
//! changes which series a sample goes to, and implies the pairs would pass
//! decoding and validation again (the same pairs passed, under the same
//! server limits). Only label sets that passed validation are cached. No
//! copy of the raw bytes is kept: the comparison walks the wire bytes and
//! the `Labels` encoding side by side, so an entry costs its table slot,
//! a hash, a reference and a `Labels` handle (about 60 bytes with the table,
//! against the label bytes again when raw bytes were kept). The
//! reference is only a hint:
//! the appender checks it against the labels and falls back to a lookup.
//! The cache is bounded: when it holds `max_entries` it is cleared (a
//! replaced colliding entry still counts until then). A series the storage
//! refused (a series limit) is forgotten after the request: its labels are
//! not kept, so a sender that creates series without bound past the limit
//! does not fill the caches with label sets nobody stores.
//!
//! Senders such as Prometheus send a series over whichever pooled
//! connection is free, so each connection's cache learns most series. A
//! series new to a connection is first looked up in [`SharedSeriesCache`]
//! (one per server, lock stripes by hash, checked with the same
//! comparison), which skips validation and the storage's label lookup.

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

/// One cached series.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    h: u64,
    pub labels: Labels,
    pub r: SeriesRef,
}

/// The cache; see the module docs.
///
/// Entries are kept in insertion order, and a lookup
/// first tries the entry after the previous hit: a sender repeats its
/// series in the same order every scrape, so most lookups read memory
/// sequentially instead of probing the hash table.
#[derive(Debug)]
pub struct SeriesCache {
    /// Raw label bytes hash to an index into `entries`.
    map: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    entries: Vec<Entry>,
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

    /// Bytes this cache holds of its own: its table and entries (the
    /// `Labels` values are shared with the storage, not counted).
    pub fn heap_bytes(&self) -> u64 {
        cairn_storage::hash_table_bytes(self.map.capacity(), std::mem::size_of::<(u64, u32)>())
            + (self.entries.capacity() * std::mem::size_of::<Entry>()) as u64
    }

    fn matches(&self, i: usize, h: u64, raw: &[u8]) -> bool {
        self.entries
            .get(i)
            .is_some_and(|e| e.h == h && !e.labels.is_empty() && raw_matches(raw, &e.labels))
    }

    /// The index of the entry after the previous hit when `raw` holds
    /// exactly its labels. Needs no hash: the common case of a sender
    /// repeating its series in order costs one walk over the bytes.
    pub(crate) fn find_next(&mut self, raw: &[u8]) -> Option<u32> {
        let i = self.next;
        let e = self.entries.get(i)?;
        if e.labels.is_empty() || !raw_matches(raw, &e.labels) {
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

    /// Forgets the entry at index `i` (a series the storage refused): its
    /// labels are dropped and it never matches again. Indices stay valid;
    /// [`Self::drop_forgotten_tail`] returns the slots at the end.
    pub(crate) fn forget(&mut self, i: u32) {
        if let Some(e) = self.entries.get_mut(i as usize) {
            if self.map.get(&e.h) == Some(&i) {
                self.map.remove(&e.h);
            }
            e.labels = Labels::default();
            e.r = 0;
        }
    }

    /// Removes forgotten entries from the end (those of the last request's
    /// refused series), invalidating their indices.
    pub(crate) fn drop_forgotten_tail(&mut self) {
        while self.entries.last().is_some_and(|e| e.labels.is_empty()) {
            self.entries.pop();
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

    /// Caches `labels` and `r` under hash `h` of their raw bytes, replacing
    /// a colliding entry; returns the new entry's index.
    pub(crate) fn insert(&mut self, h: u64, labels: Labels, r: SeriesRef) -> u32 {
        if self.is_full() {
            self.map.clear();
            self.entries.clear();
        }
        let i = self.entries.len();
        self.entries.push(Entry { h, labels, r });
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
    /// 256 stripes, about 16 million series in all. A stripe is cleared when
    /// full, so a bound below the series a server receives makes nearly
    /// every lookup miss (senders cycle through all their series every
    /// scrape); the tables only grow with the series actually seen (about
    /// 40 bytes each), so the bound is set above the ten million series one
    /// Cairn is sized for.
    fn default() -> Self {
        Self::new(256, 1 << 24)
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
        raw_matches(raw, &labels).then_some((labels, r))
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

    /// Bytes of the stripes' tables (the `Labels` values are shared with
    /// the storage, not counted).
    pub fn heap_bytes(&self) -> u64 {
        self.stripes
            .iter()
            .map(|m| {
                let cap = m
                    .lock()
                    .map_or_else(|e| e.into_inner().capacity(), |g| g.capacity());
                cairn_storage::hash_table_bytes(cap, std::mem::size_of::<(u64, SharedEntry)>())
            })
            .sum()
    }
}

/// Takes a length-delimited field with key `key` off the front of `b`:
/// its payload, or `None` when `b` does not start with one.
#[inline]
fn take_field<'a>(b: &mut &'a [u8], key: u8) -> Option<&'a [u8]> {
    let (&k, rest) = b.split_first()?;
    if k != key {
        return None;
    }
    let (n, used) = cairn_codec::varint::uvarint(rest).ok()?;
    let end = used.checked_add(usize::try_from(n).ok()?)?;
    let payload = rest.get(used..end)?;
    *b = rest.get(end..)?;
    Some(payload)
}

/// True when the raw label fields of a `TimeSeries` (field 1, as
/// `decode_series_samples` hands them over) are, read as canonical `Label`
/// messages (a name field, then a value field, nothing else in them),
/// exactly the pairs of `l` in order. Anything else, including encodings
/// that would decode to the same pairs, is `false`: the caller then decodes
/// and validates in full.
pub(crate) fn raw_matches(raw: &[u8], l: &Labels) -> bool {
    let mut raw = raw;
    let mut pairs = l.iter();
    while !raw.is_empty() {
        let Some(mut label) = take_field(&mut raw, 0x0a) else {
            return false;
        };
        let (Some(name), Some(value)) =
            (take_field(&mut label, 0x0a), take_field(&mut label, 0x12))
        else {
            return false;
        };
        match pairs.next() {
            Some(p)
                if label.is_empty() && p.name.as_bytes() == name && p.value.as_bytes() == value => {
            }
            _ => return false,
        }
    }
    pairs.next().is_none()
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

    /// The label fields of a `TimeSeries` holding `pairs`, as prost (like
    /// Prometheus's encoder) writes them: a pair with an empty value has
    /// no value field.
    fn raw_of(pairs: &[(&str, &str)]) -> Vec<u8> {
        use cairn_proto::write::{Label, TimeSeries};
        use cairn_proto::Message;
        TimeSeries {
            labels: pairs.iter().map(|(n, v)| Label::new(n, v)).collect(),
            ..TimeSeries::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn hit_only_when_raw_holds_exactly_the_labels() {
        let mut c = SeriesCache::new(16);
        let l = labels!("__name__" => "up", "job" => "a");
        let raw = raw_of(&[("__name__", "up"), ("job", "a")]);
        let h = hash_raw(&raw);
        assert!(c.get(h, &raw).is_none());
        c.insert(h, l.clone(), 7);
        let e = c.get(h, &raw).map(|e| (e.r, e.labels.clone()));
        assert_eq!(e, Some((7, l)));
        // Same hash slot but other labels (a forced collision) never match,
        // nor does a prefix or an extension.
        assert!(c
            .get(h, &raw_of(&[("__name__", "up"), ("job", "b")]))
            .is_none());
        assert!(c.get(h, &raw_of(&[("__name__", "up")])).is_none());
        assert!(c
            .get(h, &raw_of(&[("__name__", "up"), ("job", "a"), ("x", "y")]))
            .is_none());
    }

    #[test]
    fn raw_matches_only_canonical_label_messages() {
        let l = labels!("__name__" => "up", "job" => "a");
        assert!(raw_matches(
            &raw_of(&[("__name__", "up"), ("job", "a")]),
            &l
        ));
        assert!(raw_matches(&[], &Labels::empty()));
        assert!(!raw_matches(&[], &l));
        // Order, an empty value, a truncated or extended message, another
        // field in a Label, value before name: all fall back to decoding.
        assert!(!raw_matches(
            &raw_of(&[("job", "a"), ("__name__", "up")]),
            &l
        ));
        let empty = raw_of(&[("__name__", "up"), ("e", ""), ("job", "a")]);
        assert!(!raw_matches(&empty, &l));
        let mut explicit_empty = raw_of(&[("__name__", "up")]);
        explicit_empty.extend([0x0a, 5, 0x0a, 1, b'e', 0x12, 0]);
        explicit_empty.extend(raw_of(&[("job", "a")]));
        assert!(!raw_matches(&explicit_empty, &l));
        let full = raw_of(&[("__name__", "up"), ("job", "a")]);
        for cut in 0..full.len() {
            assert!(!raw_matches(&full[..cut], &l), "cut at {cut}");
        }
        let mut extra = raw_of(&[("__name__", "up")]);
        extra.extend([0x0a, 9, 0x0a, 3, b'j', b'o', b'b', 0x12, 1, b'a']);
        assert!(!raw_matches(&extra, &l), "length past the message");
        let mut unknown = raw_of(&[("__name__", "up")]);
        unknown.extend([0x0a, 9, 0x0a, 3, b'j', b'o', b'b', 0x12, 1, b'a', 0x18]);
        assert!(!raw_matches(&unknown, &l), "a third field in the Label");
        let mut swapped = raw_of(&[("__name__", "up")]);
        swapped.extend([0x0a, 8, 0x12, 1, b'a', 0x0a, 3, b'j', b'o', b'b']);
        assert!(!raw_matches(&swapped, &l));
        // A long value: two-byte lengths on both sides.
        let long = "v".repeat(300);
        let ll = labels!("__name__" => "up", "long" => &long);
        let raw = raw_of(&[("__name__", "up"), ("long", &long)]);
        assert_eq!(raw[raw.len() - long.len() - 2..][..2], [0xac, 0x02]);
        assert!(raw_matches(&raw, &ll));
        assert!(!raw_matches(&raw, &l));
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
        let raws: Vec<Vec<u8>> = (0..10)
            .map(|i| raw_of(&[("__name__", "x"), ("i", &i.to_string())]))
            .collect();
        for (i, r) in raws.iter().enumerate() {
            let l = labels!("__name__" => "x", "i" => &i.to_string());
            c.insert(hash_raw(r), l, i as u64 + 1);
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
        // the same labels (a prefix, a longer run or other labels miss,
        // and a miss does not move on).
        assert_eq!(c.find(hash_raw(&raws[3]), &raws[3]), Some(3));
        assert_eq!(c.find_next(&raws[4][..4]), None);
        let mut longer = raws[4].clone();
        longer.extend(raw_of(&[("z", "z")]));
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

    #[test]
    fn shared_hits_only_when_raw_decodes_to_the_labels() {
        let c = SharedSeriesCache::new(4, 100);
        let l = labels!("__name__" => "up", "job" => "a");
        let raw = raw_of(&[("__name__", "up"), ("job", "a")]);
        let h = hash_raw(&raw);
        assert!(c.get(h, &raw).is_none());
        c.insert(h, l.clone(), 9);
        assert_eq!(c.get(h, &raw), Some((l, 9)));
        // Forced collisions: other labels, a prefix, an empty value, junk.
        let other = raw_of(&[("__name__", "up"), ("job", "b")]);
        assert!(c.get(h, &other).is_none());
        assert!(c.get(h, &raw_of(&[("__name__", "up")])).is_none());
        let empty = raw_of(&[("__name__", "up"), ("e", ""), ("job", "a")]);
        assert!(c.get(h, &empty).is_none());
        assert!(c.get(h, &[0xff, 0xff]).is_none());
        assert_eq!(c.len(), 1);
    }

    /// An entry costs its slot, hash, reference and `Labels` handle, not a
    /// copy of the label bytes: 1,000 series with 300-byte label sets take
    /// well under 300 KB.
    #[test]
    fn entries_keep_no_copy_of_the_label_bytes() {
        let mut c = SeriesCache::new(10_000);
        let long = "x".repeat(280);
        for i in 0..1000u64 {
            let raw = raw_of(&[("__name__", "m"), ("i", &i.to_string()), ("long", &long)]);
            let l = labels!("__name__" => "m", "i" => &i.to_string(), "long" => &long);
            c.insert(hash_raw(&raw), l, i);
        }
        assert_eq!(c.len(), 1000);
        assert!(c.heap_bytes() < 1000 * 80, "{} bytes", c.heap_bytes());
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

    /// A forgotten entry (a refused series) never matches again, by hash or
    /// by position, keeps no labels, and the slots at the end are returned.
    #[test]
    fn forgotten_entries_never_match_and_leave_the_tail() {
        let mut c = SeriesCache::new(100);
        let raws: Vec<_> = (0..4)
            .map(|i| raw_of(&[("__name__", "m"), ("i", &i.to_string())]))
            .collect();
        for (i, raw) in raws.iter().enumerate() {
            let l = labels!("__name__" => "m", "i" => &i.to_string());
            c.insert(hash_raw(raw), l, i as u64 + 1);
        }
        c.forget(1);
        c.forget(2);
        c.forget(3);
        assert_eq!(c.find(hash_raw(&raws[1]), &raws[1]), None);
        assert_eq!(c.find(hash_raw(&raws[0]), &raws[0]), Some(0));
        assert_eq!(c.find_next(&raws[1]), None, "not by position either");
        assert!(c.entry(2).is_some_and(|e| e.labels.is_empty() && e.r == 0));
        // An empty label set does not match a forgotten slot.
        c.next = 1;
        assert_eq!(c.find_next(&[]), None);
        c.drop_forgotten_tail();
        assert_eq!(c.entries.len(), 1);
        assert_eq!(c.len(), 1);
        assert_eq!(c.find(hash_raw(&raws[0]), &raws[0]), Some(0));
    }
}
