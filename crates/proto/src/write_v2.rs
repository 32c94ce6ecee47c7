//! Remote write 2.0: `io.prometheus.write.v2.Request`.
//!
//! Every string of a request is stored once in `symbols`; series, exemplars
//! and metadata refer to strings by index. Index 0 must be the empty string
//! so that an unset reference (0) reads as "no value". Tags 1 to 3 of the
//! request are reserved so that a 1.0 body decoded as 2.0 yields an empty
//! request instead of garbage.

use bytes::Bytes;

use crate::{ProtoError, Result};

pub use crate::histogram::Histogram;

/// One float sample. `start_timestamp` (rc.4 of the 2.0 spec, Prometheus
/// 3.8+) is when the counter started, in ms, 0 when unset; Cairn ignores it.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
    #[prost(int64, tag = "3")]
    pub start_timestamp: i64,
}

/// The body of a remote write 2.0 request (after snappy).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    #[prost(bytes = "bytes", repeated, tag = "4")]
    pub symbols: Vec<Bytes>,
    #[prost(message, repeated, tag = "5")]
    pub timeseries: Vec<TimeSeries>,
}

/// One series: label references into `symbols`, name/value alternating,
/// sorted by name.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub histograms: Vec<Histogram>,
    #[prost(message, repeated, tag = "4")]
    pub exemplars: Vec<Exemplar>,
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<Metadata>,
    /// When the counter started, in ms; 0 means unset. Drafts up to rc.3
    /// of the 2.0 spec put it here; rc.4 moved it to the samples. Ignored.
    #[prost(int64, tag = "6")]
    pub created_timestamp: i64,
}

/// An exemplar; its labels are references like the series'.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// Per-series metadata; help and unit are symbol references.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metadata {
    #[prost(enumeration = "MetricType", tag = "1")]
    pub r#type: i32,
    // Tag 2 is unused.
    #[prost(uint32, tag = "3")]
    pub help_ref: u32,
    #[prost(uint32, tag = "4")]
    pub unit_ref: u32,
}

/// `Metadata.MetricType`: same numbers as 1.0, with 0 meaning unspecified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    Unspecified = 0,
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
    GaugeHistogram = 4,
    Summary = 5,
    Info = 6,
    StateSet = 7,
}

/// A request's symbol table with UTF-8 checked once per symbol.
///
/// A symbol that is not UTF-8 is kept as `None`: only the series that refer
/// to it are refused.
pub struct Symbols<'a> {
    syms: Vec<Option<&'a str>>,
}

impl<'a> Symbols<'a> {
    /// Checks every symbol of `raw`.
    pub fn new(raw: &'a [Bytes]) -> Self {
        Self {
            syms: raw.iter().map(|b| std::str::from_utf8(b).ok()).collect(),
        }
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    /// True when the table is empty.
    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    /// The symbol at `index`.
    pub fn get(&self, index: u32) -> Result<&'a str> {
        match self.syms.get(index as usize) {
            Some(Some(s)) => Ok(s),
            Some(None) => Err(ProtoError::InvalidUtf8 { valid_up_to: 0 }),
            None => Err(ProtoError::SymbolOutOfRange {
                index,
                len: self.syms.len(),
            }),
        }
    }

    /// Resolves name/value reference pairs into `out` (cleared first).
    pub fn resolve_pairs(&self, refs: &[u32], out: &mut Vec<(&'a str, &'a str)>) -> Result<()> {
        out.clear();
        if refs.len() & 1 == 1 {
            return Err(ProtoError::OddLabelRefs { len: refs.len() });
        }
        for pair in refs.chunks_exact(2) {
            if let [n, v] = pair {
                out.push((self.get(*n)?, self.get(*v)?));
            }
        }
        Ok(())
    }
}

/// Builds requests for tests and clients: interns strings as it goes.
#[derive(Default)]
pub struct SymbolsBuilder {
    syms: Vec<Bytes>,
    index: std::collections::HashMap<String, u32>,
}

impl SymbolsBuilder {
    /// A table holding only the mandatory empty string at index 0.
    pub fn new() -> Self {
        let mut b = Self::default();
        b.intern("");
        b
    }

    /// The reference of `s`, adding it when new.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.syms.len() as u32;
        self.syms.push(Bytes::copy_from_slice(s.as_bytes()));
        self.index.insert(s.to_owned(), i);
        i
    }

    /// References for label pairs, in the order given.
    pub fn label_refs<'s>(
        &mut self,
        pairs: impl IntoIterator<Item = (&'s str, &'s str)>,
    ) -> Vec<u32> {
        let mut out = Vec::new();
        for (n, v) in pairs {
            out.push(self.intern(n));
            out.push(self.intern(v));
        }
        out
    }

    /// The finished table.
    pub fn build(self) -> Vec<Bytes> {
        self.syms
    }
}
