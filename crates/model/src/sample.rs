//! Samples and Prometheus's staleness marker.

/// The bit pattern Prometheus writes for a stale marker: a signalling NaN
/// distinct from the ordinary NaN a computation yields.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The stale marker as a float. Compare with [`is_stale_nan`], never with `==`.
pub const STALE_NAN: f64 = f64::from_bits(STALE_NAN_BITS);

/// True when `v` carries exactly the stale-marker bit pattern.
#[inline]
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// One float sample: a millisecond timestamp and a value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// The value; may be NaN, ±Inf or the stale marker.
    pub v: f64,
}

impl Sample {
    /// A sample at `t` with value `v`.
    pub fn new(t: i64, v: f64) -> Self {
        Self { t, v }
    }
}

/// An exemplar: one observation behind a sample (a trace id, say), as
/// OpenMetrics and remote write carry it next to a series' samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// The exemplar's own labels (not the series'); may be empty.
    pub labels: crate::Labels,
    /// The observed value.
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    pub ts: i64,
}

impl Exemplar {
    /// Prometheus's equality for duplicate detection: same labels, same
    /// timestamp and the same value bits.
    pub fn same_as(&self, other: &Exemplar) -> bool {
        self.ts == other.ts
            && self.value.to_bits() == other.value.to_bits()
            && self.labels == other.labels
    }
}

/// Most UTF-8 code points an exemplar's label names and values may hold
/// together (OpenMetrics; Prometheus's `ExemplarMaxLabelSetLength`).
pub const EXEMPLAR_MAX_LABEL_SET_LENGTH: usize = 128;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_marker_is_a_nan_but_not_every_nan_is_stale() {
        assert!(STALE_NAN.is_nan());
        assert!(is_stale_nan(STALE_NAN));
        assert!(!is_stale_nan(f64::NAN));
        assert!(!is_stale_nan(1.0));
    }
}
