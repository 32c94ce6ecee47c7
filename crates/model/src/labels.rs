//! Label sets.
//!
//! A [`Labels`] value is an immutable, sorted set of name/value pairs with
//! unique names, stored in one shared allocation: each string is written as
//! a uvarint byte length followed by its UTF-8 bytes, names and values
//! alternating. Cloning is a reference-count increment, which matters with
//! millions of series held by the head and shared with queries.
//!
//! Contracts: names are strictly ascending (byte order) and unique; empty
//! values are dropped by the builders, as Prometheus treats an empty value as
//! an absent label.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use crate::ModelError;

/// The label name that holds a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// One borrowed label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

/// An immutable sorted label set. See the module docs for the layout.
#[derive(Clone, Eq)]
pub struct Labels {
    data: Arc<[u8]>,
}

impl PartialEq for Labels {
    /// Byte equality of the encoded sets, answered without reading them when
    /// both share one allocation (the standard library only takes that
    /// shortcut for sized types, not for `Arc<[u8]>`).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.data, &other.data) || self.data == other.data
    }
}

impl std::hash::Hash for Labels {
    /// The encoded bytes, as the derived implementation hashed them.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.data.hash(state);
    }
}

impl Default for Labels {
    fn default() -> Self {
        Self::empty()
    }
}

fn put_uvarint(buf: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

impl Labels {
    /// The empty label set.
    pub fn empty() -> Self {
        Self {
            data: Arc::from(&[][..]),
        }
    }

    /// Builds a label set from pairs in any order. Later duplicates win and
    /// empty values are dropped.
    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut b = LabelsBuilder::new();
        for (n, v) in pairs {
            b.set(n.as_ref(), v.as_ref());
        }
        b.build()
    }

    /// Builds a label set from pairs that must already be strictly sorted by
    /// name, with no empty names. Empty values are dropped. This is the
    /// validating constructor for untrusted input such as remote write.
    pub fn try_from_sorted<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ModelError> {
        let mut buf = Vec::new();
        let mut prev: Option<&str> = None;
        for (n, v) in pairs {
            if n.is_empty() {
                return Err(ModelError::EmptyLabelName);
            }
            if let Some(p) = prev {
                match p.cmp(n) {
                    Ordering::Less => {}
                    Ordering::Equal => {
                        return Err(ModelError::DuplicateLabel { name: n.to_owned() })
                    }
                    Ordering::Greater => {
                        return Err(ModelError::UnsortedLabels {
                            prev: p.to_owned(),
                            next: n.to_owned(),
                        })
                    }
                }
            }
            prev = Some(n);
            if v.is_empty() {
                continue;
            }
            put_uvarint(&mut buf, n.len());
            buf.extend_from_slice(n.as_bytes());
            put_uvarint(&mut buf, v.len());
            buf.extend_from_slice(v.as_bytes());
        }
        Ok(Self {
            data: Arc::from(buf),
        })
    }

    /// Iterates the labels in ascending name order.
    pub fn iter(&self) -> LabelsIter<'_> {
        LabelsIter { rest: &self.data }
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|l| l.name == name).map(|l| l.value)
    }

    /// True when the set has a label called `name`.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The metric name (`__name__`), if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True for the empty set.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The encoded bytes; order them with [`cmp_encoded`].
    pub fn encoded(&self) -> &[u8] {
        &self.data
    }

    /// Bytes of the encoded form; a proxy for the set's heap footprint.
    pub fn encoded_len(&self) -> usize {
        self.data.len()
    }

    /// A builder starting from this set.
    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder::from(self)
    }

    /// A fast, stable 64-bit hash of the set (not cryptographic).
    pub fn hash64(&self) -> u64 {
        hash_bytes(&self.data)
    }

    /// The set without the labels named in `names`.
    pub fn without(&self, names: &[&str]) -> Labels {
        self.filtered(|n| !names.contains(&n))
    }

    /// The set restricted to the labels named in `names`.
    pub fn keep(&self, names: &[&str]) -> Labels {
        self.filtered(|n| names.contains(&n))
    }

    /// [`Labels::without`] for callers that do it many times: `scratch`
    /// is reused for the result's bytes (one allocation, the result's
    /// own), and the encoded labels left out are written to `removed`
    /// (cleared first), for comparing without decoding.
    pub fn without_into(
        &self,
        names: &[&str],
        scratch: &mut Vec<u8>,
        removed: &mut Vec<u8>,
    ) -> Labels {
        scratch.clear();
        removed.clear();
        let mut it = self.iter();
        loop {
            let before = it.rest;
            let Some(l) = it.next() else {
                break;
            };
            let used = before.len() - it.rest.len();
            let entry = before.get(..used).unwrap_or(&[]);
            if names.contains(&l.name) {
                removed.extend_from_slice(entry);
            } else {
                scratch.extend_from_slice(entry);
            }
        }
        if removed.is_empty() {
            return self.clone();
        }
        Labels::from_encoded(scratch)
    }

    /// A set from bytes this module encoded (a copy of them).
    fn from_encoded(bytes: &[u8]) -> Labels {
        if bytes.is_empty() {
            return Labels::empty();
        }
        Self {
            data: Arc::from(bytes),
        }
    }

    /// The labels whose name passes `keep`, copied as encoded (one
    /// allocation; none when every label passes).
    fn filtered(&self, keep: impl Fn(&str) -> bool) -> Labels {
        let mut buf = Vec::with_capacity(self.data.len());
        let mut it = self.iter();
        loop {
            let before = it.rest;
            let Some(l) = it.next() else {
                break;
            };
            if keep(l.name) {
                let used = before.len() - it.rest.len();
                buf.extend_from_slice(before.get(..used).unwrap_or(&[]));
            }
        }
        if buf.len() == self.data.len() {
            return self.clone();
        }
        Self {
            data: Arc::from(buf),
        }
    }

    /// Owned pairs, mostly for tests and serialisation.
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|l| (l.name.to_owned(), l.value.to_owned()))
            .collect()
    }
}

/// 64-bit hash over bytes, processing eight bytes at a time.
fn hash_bytes(b: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ (b.len() as u64);
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(K).rotate_left(31);
    }
    for &x in chunks.remainder() {
        h = (h ^ u64::from(x)).wrapping_mul(K).rotate_left(23);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// Length of the longest common prefix of `a` and `b`, eight bytes at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut i = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let (Ok(x), Ok(y)) = (<[u8; 8]>::try_from(x), <[u8; 8]>::try_from(y)) else {
            break;
        };
        let d = u64::from_le_bytes(x) ^ u64::from_le_bytes(y);
        if d != 0 {
            // Little endian: the lowest set bit is the first differing byte.
            return i + (d.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + a
        .get(i..)
        .unwrap_or(&[])
        .iter()
        .zip(b.get(i..).unwrap_or(&[]))
        .take_while(|(x, y)| x == y)
        .count()
}

/// Iterator over a [`Labels`] value.
#[derive(Clone)]
pub struct LabelsIter<'a> {
    rest: &'a [u8],
}

impl<'a> LabelsIter<'a> {
    fn take_str(&mut self) -> Option<&'a str> {
        let mut len: usize = 0;
        let mut shift = 0;
        let mut i = 0;
        loop {
            let b = *self.rest.get(i)?;
            i += 1;
            len |= ((b & 0x7f) as usize) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        let bytes = self.rest.get(i..i + len)?;
        self.rest = self.rest.get(i + len..)?;
        // SAFETY: the buffer is only ever written by this module, and every
        // string put into it came from a `&str`, so each length-delimited
        // slice is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    }
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = Label<'a>;

    fn next(&mut self) -> Option<Label<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let name = self.take_str()?;
        let value = self.take_str()?;
        Some(Label { name, value })
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = Label<'a>;
    type IntoIter = LabelsIter<'a>;
    fn into_iter(self) -> LabelsIter<'a> {
        self.iter()
    }
}

impl Ord for Labels {
    /// Prometheus's order: label by label, name then value; a prefix sorts first.
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_encoded(&self.data, &other.data)
    }
}

/// The label order ([`Labels`]'s `Ord`) of two encodings taken from
/// [`Labels::encoded`]: for callers that copy many label sets side by side
/// to sort them with fewer cache misses. Strings compare as bytes, which
/// is how `str` orders; bytes that are no valid encoding compare as if
/// they ended where they stop making sense (never a panic).
pub fn cmp_encoded(x: &[u8], y: &[u8]) -> Ordering {
    // Whole labels inside the common byte prefix are equal (the encoding
    // is self-delimiting): skip them without looking at the strings, as
    // sorted series often share most of their labels.
    let common = common_prefix(x, y);
    if common == x.len() && common == y.len() {
        return Ordering::Equal;
    }
    let mut a = RawPairs { rest: x };
    let mut b = RawPairs { rest: y };
    loop {
        let mut probe = RawPairs { rest: a.rest };
        if probe.next().is_none() || x.len() - probe.rest.len() > common {
            break;
        }
        a = probe;
        b.next();
    }
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((an, av)), Some((bn, bv))) => {
                let c = an.cmp(bn).then_with(|| av.cmp(bv));
                if c != Ordering::Equal {
                    return c;
                }
            }
        }
    }
}

/// Appends to `out` a byte string whose plain byte order (`[u8]`'s `Ord`)
/// is the label order of [`cmp_encoded`]: every name and value in turn,
/// each with its 0x00 bytes written as 0x00 0xFF and followed by 0x00 0x00.
/// The strings are prefix-free that way, so comparing two keys compares
/// the strings one by one, a shorter string (or set) first. Sorting many
/// sets by their keys needs no decoding inside the comparisons, and keys
/// that share a long prefix (series of one metric) compare with `memcmp`.
/// Bytes that are no valid encoding end the key where they stop making
/// sense, as [`cmp_encoded`] treats them.
pub fn sort_key(encoded: &[u8], out: &mut Vec<u8>) {
    let mut r = RawPairs { rest: encoded };
    while !r.rest.is_empty() {
        let Some(s) = RawPairs::take(&mut r) else {
            return;
        };
        if s.contains(&0) {
            for (k, part) in s.split(|&b| b == 0).enumerate() {
                if k > 0 {
                    out.extend_from_slice(&[0x00, 0xFF]);
                }
                out.extend_from_slice(part);
            }
        } else {
            out.extend_from_slice(s);
        }
        out.extend_from_slice(&[0x00, 0x00]);
    }
}

/// (name, value) byte pairs of an encoding, without UTF-8 checks.
struct RawPairs<'a> {
    rest: &'a [u8],
}

impl<'a> RawPairs<'a> {
    #[inline]
    fn take(&mut self) -> Option<&'a [u8]> {
        let mut len: usize = 0;
        let mut shift = 0u32;
        let mut i = 0;
        loop {
            let b = *self.rest.get(i)?;
            i += 1;
            len |= usize::from(b & 0x7f).checked_shl(shift)?;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        let bytes = self.rest.get(i..i.checked_add(len)?)?;
        self.rest = self.rest.get(i + len..)?;
        Some(bytes)
    }
}

impl<'a> Iterator for RawPairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let name = self.take()?;
        let value = self.take()?;
        Some((name, value))
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Where the PromQL parser puts a byte of a string literal that is not
/// part of valid UTF-8 (Go strings hold bytes, `"\xc5"` among them; Rust
/// strings cannot): the code point `RAW_BYTE_BASE + byte`, U+10FF80 to
/// U+10FFFF. See `third_party/README.md`.
pub const RAW_BYTE_BASE: u32 = 0x10_FF00;

/// The byte a code point stands for under [`RAW_BYTE_BASE`], if it is one.
pub fn raw_byte(c: char) -> Option<u8> {
    let v = c as u32;
    if (RAW_BYTE_BASE + 0x80..=RAW_BYTE_BASE + 0xff).contains(&v) {
        u8::try_from(v - RAW_BYTE_BASE).ok()
    } else {
        None
    }
}

/// Whether `s` would be valid UTF-8 in Go: it holds no byte that
/// [`RAW_BYTE_BASE`] stands in for.
pub fn is_valid_utf8(s: &str) -> bool {
    !s.chars().any(|c| raw_byte(c).is_some())
}

/// `s` quoted the way Go's `strconv.Quote` does (`%q`).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    // Writing to a String cannot fail.
    let _ = write_go_quoted(&mut out, s);
    out
}

/// Writes `s` quoted the way Go's `strconv.Quote` does, which is how
/// Prometheus prints label values; a byte that is not valid UTF-8 (see
/// [`RAW_BYTE_BASE`]) is written as `\xNN`, as Go does.
pub fn write_go_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        if let Some(b) = raw_byte(c) {
            write!(f, "\\x{b:02x}")?;
            continue;
        }
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            '\u{7}' => f.write_str("\\a")?,
            '\u{8}' => f.write_str("\\b")?,
            '\u{c}' => f.write_str("\\f")?,
            '\u{b}' => f.write_str("\\v")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(f, "\\x{:02x}", c as u32)?,
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    write!(f, "\\u{:04x}", c as u32)?
                } else {
                    write!(f, "\\U{:08x}", c as u32)?
                }
            }
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl fmt::Display for Labels {
    /// `{a="1", b="2"}`, as Prometheus's `Labels.String()` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, l) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(l.name)?;
            f.write_str("=")?;
            write_go_quoted(f, l.value)?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Builds [`Labels`] by setting and deleting names in any order.
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    pairs: Vec<(String, String)>,
    sorted: bool,
}

impl LabelsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self {
            pairs: Vec::new(),
            sorted: true,
        }
    }

    /// Sets `name` to `value`; an empty value deletes the label.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        if let Some(p) = self.pairs.iter_mut().find(|p| p.0 == name) {
            p.1.clear();
            p.1.push_str(value);
        } else {
            if let Some(last) = self.pairs.last() {
                if last.0.as_str() >= name {
                    self.sorted = false;
                }
            }
            self.pairs.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Deletes `name`.
    pub fn del(&mut self, name: &str) -> &mut Self {
        self.pairs.retain(|p| p.0 != name);
        self
    }

    /// Keeps only the labels named in `names`.
    pub fn keep(&mut self, names: &[&str]) -> &mut Self {
        self.pairs.retain(|p| names.contains(&p.0.as_str()));
        self
    }

    /// The value currently set for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|p| p.0 == name && !p.1.is_empty())
            .map(|p| p.1.as_str())
    }

    /// Finishes the set.
    pub fn build(&mut self) -> Labels {
        if !self.sorted {
            self.pairs.sort_by(|a, b| a.0.cmp(&b.0));
            self.sorted = true;
        }
        let mut buf = Vec::new();
        for (n, v) in &self.pairs {
            if v.is_empty() || n.is_empty() {
                continue;
            }
            put_uvarint(&mut buf, n.len());
            buf.extend_from_slice(n.as_bytes());
            put_uvarint(&mut buf, v.len());
            buf.extend_from_slice(v.as_bytes());
        }
        Labels {
            data: Arc::from(buf),
        }
    }
}

impl From<&Labels> for LabelsBuilder {
    fn from(l: &Labels) -> Self {
        Self {
            pairs: l.to_pairs(),
            sorted: true,
        }
    }
}

/// `labels!("a" => "1", "b" => "2")` builds a [`Labels`] in tests and examples.
#[macro_export]
macro_rules! labels {
    ($($n:expr => $v:expr),* $(,)?) => {
        $crate::Labels::from_pairs([$(($n, $v)),*])
    };
}

#[cfg(test)]
mod tests {

    #[test]
    fn raw_bytes_quote_as_go_does() {
        let s: String = ['a', char::from_u32(RAW_BYTE_BASE + 0xc5).unwrap(), 'z']
            .iter()
            .collect();
        assert!(!is_valid_utf8(&s));
        assert_eq!(go_quote(&s), r#""a\xc5z""#);
        assert_eq!(raw_byte('a'), None);
        assert_eq!(
            raw_byte(char::from_u32(RAW_BYTE_BASE + 0x7f).unwrap()),
            None
        );
        assert!(is_valid_utf8("caf\u{e9} \u{fffd}"));
        assert_eq!(go_quote("a\"b\\\n"), r#""a\"b\\\n""#);
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn builds_sorted_and_prints_like_prometheus() {
        let l = Labels::from_pairs([("job", "a\"b"), ("__name__", "up"), ("empty", "")]);
        assert_eq!(l.to_string(), r#"{__name__="up", job="a\"b"}"#);
        assert_eq!(l.metric_name(), Some("up"));
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn validating_constructor_rejects_bad_input() {
        assert!(matches!(
            Labels::try_from_sorted([("b", "1"), ("a", "2")]),
            Err(ModelError::UnsortedLabels { .. })
        ));
        assert!(matches!(
            Labels::try_from_sorted([("a", "1"), ("a", "2")]),
            Err(ModelError::DuplicateLabel { .. })
        ));
        assert!(matches!(
            Labels::try_from_sorted([("", "1")]),
            Err(ModelError::EmptyLabelName)
        ));
    }

    #[test]
    fn ordering_matches_prometheus() {
        let a = Labels::from_pairs([("a", "1")]);
        let ab = Labels::from_pairs([("a", "1"), ("b", "1")]);
        let a2 = Labels::from_pairs([("a", "2")]);
        assert!(a < ab);
        assert!(ab < a2);
    }

    proptest! {
        /// `without` and `keep` copy encoded entries: the same sets as
        /// rebuilding from the filtered pairs.
        #[test]
        fn without_and_keep_equal_filtered_pairs(
            pairs in prop::collection::btree_map("[a-e_]{1,3}", "[a-z0-9]{0,3}", 0..8),
            names in prop::collection::vec("[a-e_]{1,3}", 0..4),
        ) {
            let l = Labels::from_pairs(pairs.iter());
            let n: Vec<&str> = names.iter().map(String::as_str).collect();
            let want_without = Labels::from_pairs(pairs.iter().filter(|(k, _)| !n.contains(&k.as_str())));
            let want_keep = Labels::from_pairs(pairs.iter().filter(|(k, _)| n.contains(&k.as_str())));
            prop_assert_eq!(l.without(&n), want_without.clone());
            prop_assert_eq!(l.keep(&n), want_keep.clone());
            let (mut scratch, mut removed) = (Vec::new(), Vec::new());
            prop_assert_eq!(l.without_into(&n, &mut scratch, &mut removed), want_without);
            prop_assert_eq!(removed.as_slice(), want_keep.encoded());
        }

        #[test]
        fn round_trips_any_pairs(pairs in proptest::collection::btree_map("[a-z_]{1,8}", ".{0,300}", 0..20)) {
            let l = Labels::from_pairs(pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())));
            let back: Vec<(String, String)> = l.to_pairs();
            let want: Vec<(String, String)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
            prop_assert_eq!(back, want);
        }

        #[test]
        fn common_prefix_is_the_naive_one(p in proptest::collection::vec(0u8..3, 0..40), a in proptest::collection::vec(0u8..3, 0..20), b in proptest::collection::vec(0u8..3, 0..20)) {
            let x: Vec<u8> = p.iter().chain(&a).copied().collect();
            let y: Vec<u8> = p.iter().chain(&b).copied().collect();
            let naive = x.iter().zip(&y).take_while(|(u, v)| u == v).count();
            prop_assert_eq!(common_prefix(&x, &y), naive);
        }

        #[test]
        fn comparing_arbitrary_bytes_never_panics(a in proptest::collection::vec(any::<u8>(), 0..64), b in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(cmp_encoded(&a, &b), cmp_encoded(&b, &a).reverse());
        }

        #[test]
        fn sort_keys_order_like_labels(
            shared in proptest::collection::btree_map("[a-d]{1,3}", "[xy\\x00]{1,3}", 0..5),
            ta in proptest::collection::btree_map("[a-e\\x00]{1,3}", "[xy\\x00]{1,40}", 0..4),
            tb in proptest::collection::btree_map("[a-e\\x00]{1,3}", "[xy\\x00]{1,40}", 0..4),
        ) {
            let mk = |t: &std::collections::BTreeMap<String, String>| {
                let mut m = shared.clone();
                m.extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
                Labels::from_pairs(m.iter().map(|(a, b)| (a.as_str(), b.as_str())))
            };
            let (la, lb) = (mk(&ta), mk(&tb));
            let (mut ka, mut kb) = (Vec::new(), Vec::new());
            sort_key(la.encoded(), &mut ka);
            sort_key(lb.encoded(), &mut kb);
            prop_assert_eq!(ka.cmp(&kb), la.cmp(&lb));
        }

        #[test]
        fn sort_keys_of_arbitrary_bytes_never_panic(a in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut k = Vec::new();
            sort_key(&a, &mut k);
        }

        #[test]
        fn order_is_pairwise_name_then_value(
            shared in proptest::collection::btree_map("[a-d]{1,3}", "[xy]{1,3}", 0..5),
            ta in proptest::collection::btree_map("[a-e]{1,3}", "[xy]{1,140}", 0..4),
            tb in proptest::collection::btree_map("[a-e]{1,3}", "[xy]{1,140}", 0..4),
        ) {
            // Mostly equal sets, as sorted series are, with differing tails.
            let mk = |t: &std::collections::BTreeMap<String, String>| {
                let mut m = shared.clone();
                m.extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
                m
            };
            let (ma, mb) = (mk(&ta), mk(&tb));
            let la = Labels::from_pairs(ma.iter().map(|(a, b)| (a.as_str(), b.as_str())));
            let lb = Labels::from_pairs(mb.iter().map(|(a, b)| (a.as_str(), b.as_str())));
            let want = ma.iter().cmp(mb.iter());
            prop_assert_eq!(la.cmp(&lb), want);
            prop_assert_eq!(lb.cmp(&la), want.reverse());
            prop_assert_eq!(la.cmp(&la.clone()), std::cmp::Ordering::Equal);
        }
    }
}
