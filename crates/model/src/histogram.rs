//! Native histograms: [`FloatHistogram`] with float counts, as PromQL
//! computes with them, and [`Histogram`] with integer counts and
//! delta-encoded buckets, as Prometheus ingests and stores them.
//!
//! A histogram has a schema: exponential schemas `-4..=8` put bucket `i`'s
//! upper bound at `2^(i * 2^-schema)` (buckets are left-open, right-closed,
//! mirrored for negative observations, with a symmetric zero bucket
//! `[-zero_threshold, zero_threshold]` between them); schema
//! [`CUSTOM_BUCKETS_SCHEMA`] instead uses explicit upper bounds
//! (`custom_values`, the last bucket reaching `+Inf`) and has no zero or
//! negative buckets. Buckets are stored sparsely as spans (offset from the
//! previous span's end, then a run length) plus absolute float counts.
//!
//! Arithmetic works on `(bucket index, count)` lists, which keeps the span
//! bookkeeping in one place ([`FloatHistogram::from_indexed`]). Results may
//! contain empty buckets; [`FloatHistogram::compact`] drops them.

use crate::gofloat::format_go_g;
use std::fmt::Write as _;

/// The schema number of histograms with custom bucket bounds.
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// What the producer said about counter resets at this sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CounterResetHint {
    /// Nothing known; a reset must be detected by comparing with the previous sample.
    #[default]
    Unknown,
    /// A counter reset happened right before this sample.
    CounterReset,
    /// Definitely no counter reset.
    NotCounterReset,
    /// A gauge histogram: counts may go up and down.
    Gauge,
}

/// One run of consecutive buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Gap (in bucket indexes) since the end of the previous span, or the
    /// index of the first bucket for the first span.
    pub offset: i32,
    pub length: u32,
}

/// A native histogram with float counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FloatHistogram {
    pub counter_reset_hint: CounterResetHint,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    pub positive_spans: Vec<Span>,
    pub positive_buckets: Vec<f64>,
    pub negative_spans: Vec<Span>,
    pub negative_buckets: Vec<f64>,
    /// Upper bounds of the custom buckets (schema -53), without the final +Inf.
    pub custom_values: Vec<f64>,
}

/// A native histogram with integer counts, as Prometheus ingests and stores
/// it (`model/histogram.Histogram`).
///
/// Counts are `u64`; bucket counts are stored **delta-encoded**, as in
/// Prometheus: the first bucket of each side holds its absolute count, every
/// following one the difference to the bucket before it (across span gaps),
/// so `positive_buckets = [6, -3, 0]` means absolute counts `6, 3, 3`. The
/// spans, zero bucket, schema and custom values mean what they mean in
/// [`FloatHistogram`]. A stale marker is a histogram whose `sum` carries the
/// bits of [`crate::STALE_NAN`]; its other fields are meaningless.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    pub counter_reset_hint: CounterResetHint,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: u64,
    pub count: u64,
    pub sum: f64,
    pub positive_spans: Vec<Span>,
    pub negative_spans: Vec<Span>,
    /// Delta-encoded counts of the positive buckets, in span order.
    pub positive_buckets: Vec<i64>,
    /// Delta-encoded counts of the negative buckets, in span order.
    pub negative_buckets: Vec<i64>,
    /// Upper bounds of the custom buckets (schema -53), without the final +Inf.
    pub custom_values: Vec<f64>,
}

impl Histogram {
    /// True for schema -53.
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// The same histogram with float counts, bucket deltas summed up to
    /// absolute counts, exactly as Prometheus's `Histogram.ToFloat`: each
    /// delta is converted to `f64` and the running total kept in `f64`; a
    /// custom-buckets histogram keeps no zero bucket and no negative
    /// buckets, an exponential one no custom values.
    pub fn to_float(&self) -> FloatHistogram {
        let custom = self.uses_custom_buckets();
        FloatHistogram {
            counter_reset_hint: self.counter_reset_hint,
            schema: self.schema,
            zero_threshold: if custom { 0.0 } else { self.zero_threshold },
            zero_count: if custom { 0.0 } else { self.zero_count as f64 },
            count: self.count as f64,
            sum: self.sum,
            positive_spans: self.positive_spans.clone(),
            positive_buckets: absolute_counts(&self.positive_buckets),
            negative_spans: if custom {
                Vec::new()
            } else {
                self.negative_spans.clone()
            },
            negative_buckets: if custom {
                Vec::new()
            } else {
                absolute_counts(&self.negative_buckets)
            },
            custom_values: if custom {
                self.custom_values.clone()
            } else {
                Vec::new()
            },
        }
    }
}

/// Running totals of delta-encoded bucket counts, summed as floats.
fn absolute_counts(deltas: &[i64]) -> Vec<f64> {
    let mut current = 0.0;
    deltas
        .iter()
        .map(|&d| {
            current += d as f64;
            current
        })
        .collect()
}

/// One bucket with its bounds, as iteration yields it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
    pub count: f64,
    /// Bucket index in the histogram's schema (0 for the zero bucket).
    pub index: i32,
}

/// Side facts of an addition or subtraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CombineInfo {
    /// One operand said "counter reset", the other "no counter reset".
    pub counter_reset_collision: bool,
    /// Custom bucket bounds differed and were reduced to their intersection.
    pub nhcb_bounds_reconciled: bool,
}

/// Two histograms that cannot be combined: one uses custom buckets, the other not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncompatibleSchemas;

/// The upper bound of bucket `idx` in `schema`.
pub fn bucket_bound(idx: i32, schema: i32, custom: &[f64]) -> f64 {
    if schema == CUSTOM_BUCKETS_SCHEMA {
        if idx < 0 {
            return f64::NEG_INFINITY;
        }
        return custom.get(idx as usize).copied().unwrap_or(f64::INFINITY);
    }
    exponential_bound(idx, schema)
}

fn exponential_bound(idx: i32, schema: i32) -> f64 {
    // The last bucket of regular numbers ends at f64::MAX, not +Inf.
    if schema < 0 {
        let exp = i64::from(idx) << (-schema);
        if exp == 1024 {
            return f64::MAX;
        }
        return ldexp(1.0, exp);
    }
    let per = 1i64 << schema;
    let i = i64::from(idx);
    let frac_idx = i.rem_euclid(per);
    let exp = i.div_euclid(per);
    let frac = (frac_idx as f64 / per as f64).exp2();
    if exp >= 1024 {
        return if exp == 1024 && frac_idx == 0 {
            f64::MAX
        } else {
            f64::INFINITY
        };
    }
    ldexp(frac, exp)
}

fn ldexp(x: f64, exp: i64) -> f64 {
    let e = exp.clamp(-2000, 2000) as i32;
    // Split to avoid intermediate overflow/underflow of 2^e.
    let half = e / 2;
    x * 2f64.powi(half) * 2f64.powi(e - half)
}

/// Expands spans and counts into `(index, count)` pairs in index order.
fn indexed(spans: &[Span], buckets: &[f64]) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(buckets.len());
    let mut idx: i32 = 0;
    let mut it = buckets.iter();
    for (k, s) in spans.iter().enumerate() {
        idx = if k == 0 {
            s.offset
        } else {
            idx.saturating_add(s.offset)
        };
        for _ in 0..s.length {
            match it.next() {
                Some(&c) => out.push((idx, c)),
                None => return out,
            }
            idx = idx.saturating_add(1);
        }
    }
    out
}

/// Builds spans and counts from `(index, count)` pairs sorted by index;
/// with `drop_empty` zero counts are left out.
fn spans_from(pairs: &[(i32, f64)], drop_empty: bool) -> (Vec<Span>, Vec<f64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut buckets = Vec::with_capacity(pairs.len());
    let mut next: Option<i32> = None;
    for &(i, c) in pairs {
        if drop_empty && c == 0.0 {
            continue;
        }
        match (next, spans.last_mut()) {
            (Some(n), Some(s)) if n == i => s.length += 1,
            (Some(n), _) => spans.push(Span {
                offset: i - n,
                length: 1,
            }),
            (None, _) => spans.push(Span {
                offset: i,
                length: 1,
            }),
        }
        buckets.push(c);
        next = Some(i + 1);
    }
    (spans, buckets)
}

/// Adds `b` scaled by `sign` into `a` (both sorted by index).
fn merge(a: &[(i32, f64)], b: &[(i32, f64)], sign: f64) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    loop {
        match (a.get(i), b.get(j)) {
            (Some(&(ia, ca)), Some(&(ib, cb))) => {
                if ia == ib {
                    out.push((ia, ca + sign * cb));
                    i += 1;
                    j += 1;
                } else if ia < ib {
                    out.push((ia, ca));
                    i += 1;
                } else {
                    out.push((ib, sign * cb));
                    j += 1;
                }
            }
            (Some(&x), None) => {
                out.push(x);
                i += 1;
            }
            (None, Some(&(ib, cb))) => {
                out.push((ib, sign * cb));
                j += 1;
            }
            (None, None) => return out,
        }
    }
}

/// Merges buckets of schema `from` into the coarser schema `to`.
fn reduce(pairs: &[(i32, f64)], from: i32, to: i32) -> Vec<(i32, f64)> {
    if to >= from {
        return pairs.to_vec();
    }
    let d = (from - to).min(31);
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(pairs.len());
    for &(i, c) in pairs {
        let t = ((i - 1) >> d) + 1;
        match out.last_mut() {
            Some(last) if last.0 == t => last.1 += c,
            _ => out.push((t, c)),
        }
    }
    out
}

/// True when two custom bound lists are identical (NaN-free by construction).
pub fn custom_bounds_match(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

fn intersect_bounds(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        if x == y {
            out.push(x);
            i += 1;
            j += 1;
        } else if x < y {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Maps custom buckets onto a coarser set of bounds: each bucket goes to the
/// first target bucket whose upper bound is at or above its own.
fn remap_custom(pairs: &[(i32, f64)], bounds: &[f64], target: &[f64]) -> Vec<(i32, f64)> {
    let mut out: Vec<(i32, f64)> = Vec::new();
    for &(i, c) in pairs {
        let ub = bucket_bound(i, CUSTOM_BUCKETS_SCHEMA, bounds);
        let t = target.partition_point(|&x| x < ub) as i32;
        match out.iter_mut().find(|p| p.0 == t) {
            Some(p) => p.1 += c,
            None => out.push((t, c)),
        }
    }
    out.sort_by_key(|p| p.0);
    out
}

impl FloatHistogram {
    /// True for schema -53.
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// Positive buckets as `(index, count)` in index order.
    pub fn positive_indexed(&self) -> Vec<(i32, f64)> {
        indexed(&self.positive_spans, &self.positive_buckets)
    }

    /// Negative buckets as `(index, count)` in index order (index grows
    /// with the absolute value).
    pub fn negative_indexed(&self) -> Vec<(i32, f64)> {
        indexed(&self.negative_spans, &self.negative_buckets)
    }

    /// Replaces the buckets with the given `(index, count)` lists (sorted by index).
    pub fn from_indexed(&mut self, pos: &[(i32, f64)], neg: &[(i32, f64)]) {
        let (ps, pb) = spans_from(pos, false);
        let (ns, nb) = spans_from(neg, false);
        self.positive_spans = ps;
        self.positive_buckets = pb;
        self.negative_spans = ns;
        self.negative_buckets = nb;
    }

    /// Drops empty buckets and merges adjacent spans.
    pub fn compact(&mut self) {
        let (ps, pb) = spans_from(&self.positive_indexed(), true);
        let (ns, nb) = spans_from(&self.negative_indexed(), true);
        self.positive_spans = ps;
        self.positive_buckets = pb;
        self.negative_spans = ns;
        self.negative_buckets = nb;
    }

    /// A compacted copy.
    pub fn compacted(&self) -> Self {
        let mut h = self.clone();
        h.compact();
        h
    }

    /// The positive buckets with bounds, lowest first.
    pub fn positive_bucket_list(&self) -> Vec<Bucket> {
        self.positive_indexed()
            .into_iter()
            .map(|(i, c)| {
                let custom = self.uses_custom_buckets();
                Bucket {
                    lower: bucket_bound(i - 1, self.schema, &self.custom_values),
                    upper: bucket_bound(i, self.schema, &self.custom_values),
                    lower_inclusive: custom && i == 0,
                    upper_inclusive: true,
                    count: c,
                    index: i,
                }
            })
            .collect()
    }

    /// The negative buckets with bounds, closest to zero first.
    pub fn negative_bucket_list(&self) -> Vec<Bucket> {
        self.negative_indexed()
            .into_iter()
            .map(|(i, c)| Bucket {
                lower: -bucket_bound(i, self.schema, &self.custom_values),
                upper: -bucket_bound(i - 1, self.schema, &self.custom_values),
                lower_inclusive: true,
                upper_inclusive: false,
                count: c,
                index: i,
            })
            .collect()
    }

    /// Every bucket from the lowest to the highest: negative buckets, the
    /// zero bucket (only when populated), positive buckets. Bounds of
    /// buckets reaching into the zero bucket are clipped to its threshold.
    pub fn all_buckets(&self) -> Vec<Bucket> {
        let z = self.zero_threshold;
        let clip = |mut b: Bucket| {
            if b.upper < 0.0 && b.upper > -z {
                b.upper = -z;
            }
            if b.lower > 0.0 && b.lower < z {
                b.lower = z;
            }
            b
        };
        let mut out: Vec<Bucket> = self
            .negative_bucket_list()
            .into_iter()
            .rev()
            .map(clip)
            .collect();
        if !self.uses_custom_buckets() && self.zero_count > 0.0 {
            out.push(Bucket {
                lower: -z,
                upper: z,
                lower_inclusive: true,
                upper_inclusive: true,
                count: self.zero_count,
                index: 0,
            });
        }
        out.extend(self.positive_bucket_list().into_iter().map(clip));
        out
    }

    /// Scales every count and the sum by `f`; a negative factor makes it a gauge.
    pub fn mul(&mut self, f: f64) {
        self.zero_count *= f;
        self.count *= f;
        self.sum *= f;
        self.positive_buckets.iter_mut().for_each(|b| *b *= f);
        self.negative_buckets.iter_mut().for_each(|b| *b *= f);
        if f < 0.0 {
            self.counter_reset_hint = CounterResetHint::Gauge;
        }
    }

    /// Divides every count and the sum by `d`; dividing by zero drops all buckets.
    pub fn div(&mut self, d: f64) {
        self.zero_count /= d;
        self.count /= d;
        self.sum /= d;
        if d == 0.0 {
            self.positive_spans.clear();
            self.positive_buckets.clear();
            self.negative_spans.clear();
            self.negative_buckets.clear();
            return;
        }
        self.positive_buckets.iter_mut().for_each(|b| *b /= d);
        self.negative_buckets.iter_mut().for_each(|b| *b /= d);
        if d < 0.0 {
            self.counter_reset_hint = CounterResetHint::Gauge;
        }
    }

    /// Lowers the resolution to `schema` (exponential schemas only).
    pub fn reduce_resolution(&mut self, schema: i32) {
        if self.uses_custom_buckets() || schema >= self.schema {
            return;
        }
        let pos = reduce(&self.positive_indexed(), self.schema, schema);
        let neg = reduce(&self.negative_indexed(), self.schema, schema);
        self.schema = schema;
        self.from_indexed(&pos, &neg);
    }

    /// The zero count this histogram would have with a zero threshold of at
    /// least `t`, and the threshold actually needed (raised to a bucket's
    /// upper bound when `t` falls inside a populated bucket).
    fn zero_count_for_threshold(&self, mut t: f64) -> (f64, f64) {
        if t <= self.zero_threshold {
            return (self.zero_count, self.zero_threshold.max(t));
        }
        'outer: loop {
            let mut count = self.zero_count;
            for b in self.positive_bucket_list() {
                if b.lower >= t {
                    break;
                }
                count += b.count;
                if b.upper > t {
                    if b.count != 0.0 {
                        t = b.upper;
                    }
                    break;
                }
            }
            for b in self.negative_bucket_list() {
                if b.upper <= -t {
                    break;
                }
                count += b.count;
                if b.lower < -t {
                    if b.count != 0.0 {
                        t = -b.lower;
                        continue 'outer;
                    }
                    break;
                }
            }
            return (count, t);
        }
    }

    /// Widens the zero bucket to `t` (which must not cut a populated
    /// bucket), folding the buckets inside it into the zero count.
    fn widen_zero_bucket(&mut self, t: f64) {
        if t <= self.zero_threshold {
            return;
        }
        let (count, t) = self.zero_count_for_threshold(t);
        let s = self.schema;
        let cv = self.custom_values.clone();
        let pos: Vec<(i32, f64)> = self
            .positive_indexed()
            .into_iter()
            .filter(|&(i, _)| bucket_bound(i - 1, s, &cv) >= t)
            .collect();
        let neg: Vec<(i32, f64)> = self
            .negative_indexed()
            .into_iter()
            .filter(|&(i, _)| bucket_bound(i - 1, s, &cv) >= t)
            .collect();
        self.zero_count = count;
        self.zero_threshold = t;
        self.from_indexed(&pos, &neg);
    }

    fn adjust_counter_reset(&mut self, other: &FloatHistogram) -> bool {
        use CounterResetHint::*;
        let (a, b) = (self.counter_reset_hint, other.counter_reset_hint);
        if a == b || a == Gauge {
            return false;
        }
        if b == Gauge {
            self.counter_reset_hint = Gauge;
            return false;
        }
        if a == Unknown {
            return false;
        }
        self.counter_reset_hint = Unknown;
        b != Unknown
    }

    fn combine(
        &self,
        other: &FloatHistogram,
        sign: f64,
    ) -> Result<(FloatHistogram, CombineInfo), IncompatibleSchemas> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(IncompatibleSchemas);
        }
        let mut h = self.clone();
        let mut info = CombineInfo {
            counter_reset_collision: h.adjust_counter_reset(other),
            nhcb_bounds_reconciled: false,
        };
        h.count += sign * other.count;
        h.sum += sign * other.sum;
        if h.uses_custom_buckets() {
            if custom_bounds_match(&h.custom_values, &other.custom_values) {
                let pos = merge(&h.positive_indexed(), &other.positive_indexed(), sign);
                h.from_indexed(&pos, &[]);
            } else {
                info.nhcb_bounds_reconciled = true;
                let target = intersect_bounds(&h.custom_values, &other.custom_values);
                let a = remap_custom(&h.positive_indexed(), &h.custom_values, &target);
                let b = remap_custom(&other.positive_indexed(), &other.custom_values, &target);
                let pos: Vec<(i32, f64)> = merge(&a, &b, sign)
                    .into_iter()
                    .filter(|p| p.1 != 0.0)
                    .collect();
                h.custom_values = target;
                h.from_indexed(&pos, &[]);
            }
            return Ok((h, info));
        }
        // Zero buckets: both end up with the larger threshold.
        let mut o = other.clone();
        loop {
            if h.zero_threshold > o.zero_threshold {
                o.widen_zero_bucket(h.zero_threshold);
            }
            if o.zero_threshold > h.zero_threshold {
                h.widen_zero_bucket(o.zero_threshold);
            }
            if h.zero_threshold == o.zero_threshold
                || h.zero_threshold.is_nan()
                || o.zero_threshold.is_nan()
            {
                break;
            }
        }
        h.zero_count += sign * o.zero_count;
        let schema = h.schema.min(o.schema);
        let hp = reduce(&h.positive_indexed(), h.schema, schema);
        let hn = reduce(&h.negative_indexed(), h.schema, schema);
        let op = reduce(&o.positive_indexed(), o.schema, schema);
        let on = reduce(&o.negative_indexed(), o.schema, schema);
        h.schema = schema;
        h.from_indexed(&merge(&hp, &op, sign), &merge(&hn, &on, sign));
        Ok((h, info))
    }

    /// `self + other`, reconciling schemas, zero buckets and custom bounds.
    pub fn add(
        &self,
        other: &FloatHistogram,
    ) -> Result<(FloatHistogram, CombineInfo), IncompatibleSchemas> {
        self.combine(other, 1.0)
    }

    /// `self - other`; the counter reset hint is combined as for `add`.
    pub fn sub(
        &self,
        other: &FloatHistogram,
    ) -> Result<(FloatHistogram, CombineInfo), IncompatibleSchemas> {
        self.combine(other, -1.0)
    }

    /// True when this histogram cannot follow `prev` without a counter
    /// reset: a count or bucket went down, the resolution went up, the zero
    /// bucket shrank, or a populated bucket disappeared. The hints
    /// `CounterReset`/`NotCounterReset` decide without looking.
    pub fn detect_reset(&self, prev: &FloatHistogram) -> bool {
        match self.counter_reset_hint {
            CounterResetHint::CounterReset => return true,
            CounterResetHint::NotCounterReset => return false,
            _ => {}
        }
        if self.count < prev.count {
            return true;
        }
        if self.uses_custom_buckets() != prev.uses_custom_buckets() {
            return true;
        }
        if self.uses_custom_buckets() {
            if !custom_bounds_match(&self.custom_values, &prev.custom_values) {
                let target = intersect_bounds(&self.custom_values, &prev.custom_values);
                let a = remap_custom(&self.positive_indexed(), &self.custom_values, &target);
                let b = remap_custom(&prev.positive_indexed(), &prev.custom_values, &target);
                return buckets_decreased(&a, &b);
            }
            return buckets_decreased(&self.positive_indexed(), &prev.positive_indexed());
        }
        if self.schema > prev.schema || self.zero_threshold < prev.zero_threshold {
            return true;
        }
        let (pz, t) = prev.zero_count_for_threshold(self.zero_threshold);
        if t != self.zero_threshold || self.zero_count < pz {
            return true;
        }
        let mut p = prev.clone();
        p.widen_zero_bucket(self.zero_threshold);
        let pp = reduce(&p.positive_indexed(), p.schema, self.schema);
        let pn = reduce(&p.negative_indexed(), p.schema, self.schema);
        buckets_decreased(&self.positive_indexed(), &pp)
            || buckets_decreased(&self.negative_indexed(), &pn)
    }

    /// Equality as the test scripts judge it: both compacted, floats
    /// compared with `eq`, the counter reset hint ignored.
    pub fn approx_eq(&self, other: &FloatHistogram, eq: impl Fn(f64, f64) -> bool) -> bool {
        let (a, b) = (self.compacted(), other.compacted());
        if a.schema != b.schema
            || !eq(a.count, b.count)
            || !eq(a.sum, b.sum)
            || a.zero_threshold != b.zero_threshold
            || !eq(a.zero_count, b.zero_count)
        {
            return false;
        }
        if a.uses_custom_buckets() && !custom_bounds_match(&a.custom_values, &b.custom_values) {
            return false;
        }
        let same = |x: Vec<(i32, f64)>, y: Vec<(i32, f64)>| {
            x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| p.0 == q.0 && eq(p.1, q.1))
        };
        same(a.positive_indexed(), b.positive_indexed())
            && same(a.negative_indexed(), b.negative_indexed())
    }

    /// Prometheus's display form, `{count:N, sum:S, (lo,hi]:c, ...}` with
    /// populated buckets only (what `count_values` uses as a label value).
    pub fn display_string(&self) -> String {
        let mut s = format!(
            "{{count:{}, sum:{}",
            format_go_g(self.count),
            format_go_g(self.sum)
        );
        let fmt_b = |b: &Bucket| {
            format!(
                "{}{},{}{}:{}",
                if b.lower_inclusive { '[' } else { '(' },
                format_go_g(b.lower),
                format_go_g(b.upper),
                if b.upper_inclusive { ']' } else { ')' },
                format_go_g(b.count)
            )
        };
        for b in self.negative_bucket_list().iter().rev() {
            if b.count != 0.0 {
                let _ = write!(s, ", {}", fmt_b(b));
            }
        }
        if self.zero_count != 0.0 {
            let z = Bucket {
                lower: -self.zero_threshold,
                upper: self.zero_threshold,
                lower_inclusive: true,
                upper_inclusive: true,
                count: self.zero_count,
                index: 0,
            };
            let _ = write!(s, ", {}", fmt_b(&z));
        }
        for b in self.positive_bucket_list() {
            if b.count != 0.0 {
                let _ = write!(s, ", {}", fmt_b(&b));
            }
        }
        s.push('}');
        s
    }

    /// The `{{...}}` notation of the test scripts.
    pub fn test_expression(&self) -> String {
        let m = self.compacted();
        let mut parts: Vec<String> = Vec::new();
        if m.schema != 0 {
            parts.push(format!("schema:{}", m.schema));
        }
        if m.count != 0.0 {
            parts.push(format!("count:{}", m.count));
        }
        if m.sum != 0.0 {
            parts.push(format!("sum:{}", m.sum));
        }
        if m.zero_count != 0.0 {
            parts.push(format!("z_bucket:{}", m.zero_count));
        }
        if m.zero_threshold != 0.0 {
            parts.push(format!("z_bucket_w:{}", m.zero_threshold));
        }
        if m.uses_custom_buckets() {
            parts.push(format!("custom_values:{:?}", m.custom_values));
        }
        match m.counter_reset_hint {
            CounterResetHint::Unknown => {}
            CounterResetHint::CounterReset => parts.push("counter_reset_hint:reset".into()),
            CounterResetHint::NotCounterReset => parts.push("counter_reset_hint:not_reset".into()),
            CounterResetHint::Gauge => parts.push("counter_reset_hint:gauge".into()),
        }
        let mut list = |key: &str, off: &str, pairs: Vec<(i32, f64)>| {
            let Some(&(first, _)) = pairs.first() else {
                return;
            };
            if first != 0 {
                parts.push(format!("{off}:{first}"));
            }
            let mut s = String::new();
            let mut next = first;
            for (i, c) in pairs {
                while next < i {
                    s.push_str("0 ");
                    next += 1;
                }
                let _ = write!(s, "{c} ");
                next = i + 1;
            }
            parts.push(format!("{key}:[{}]", s.trim_end()));
        };
        list("buckets", "offset", m.positive_indexed());
        list("n_buckets", "n_offset", m.negative_indexed());
        format!("{{{{{}}}}}", parts.join(" "))
    }
}

/// True when some bucket of `prev` is populated and `cur` has less in it.
fn buckets_decreased(cur: &[(i32, f64)], prev: &[(i32, f64)]) -> bool {
    let mut j = 0;
    for &(i, c) in prev {
        while cur.get(j).is_some_and(|x| x.0 < i) {
            j += 1;
        }
        let now = match cur.get(j) {
            Some(&(ci, cc)) if ci == i => cc,
            _ => 0.0,
        };
        if c != 0.0 && now < c {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_hist() -> impl Strategy<Value = FloatHistogram> {
        (
            -2i32..=3,
            proptest::collection::vec((-8i32..8, 0u32..50), 0..8),
            proptest::collection::vec((-8i32..8, 0u32..50), 0..8),
        )
            .prop_map(|(schema, mut p, mut n)| {
                p.sort_by_key(|x| x.0);
                p.dedup_by_key(|x| x.0);
                n.sort_by_key(|x| x.0);
                n.dedup_by_key(|x| x.0);
                let pf: Vec<(i32, f64)> = p.iter().map(|x| (x.0, f64::from(x.1))).collect();
                let nf: Vec<(i32, f64)> = n.iter().map(|x| (x.0, f64::from(x.1))).collect();
                let mut h = FloatHistogram {
                    schema,
                    count: pf.iter().chain(nf.iter()).map(|x| x.1).sum(),
                    sum: 1.5,
                    ..Default::default()
                };
                h.from_indexed(&pf, &nf);
                h
            })
    }

    proptest! {
        #[test]
        fn add_then_sub_gives_back_the_coarser_histogram(a in arb_hist(), b in arb_hist()) {
            let (s, _) = a.add(&b).unwrap();
            let (d, _) = s.sub(&b).unwrap();
            let mut want = a.clone();
            want.reduce_resolution(b.schema);
            prop_assert!(d.approx_eq(&want, |x, y| (x - y).abs() < 1e-9));
            // Reducing resolution keeps the total.
            let total: f64 = want.positive_buckets.iter().chain(want.negative_buckets.iter()).sum();
            prop_assert!((total - a.count).abs() < 1e-9);
        }

        #[test]
        fn no_reset_against_itself(a in arb_hist()) {
            prop_assert!(!a.detect_reset(&a));
        }
    }

    fn h(schema: i32, pos: &[(i32, f64)]) -> FloatHistogram {
        let mut x = FloatHistogram {
            schema,
            count: pos.iter().map(|p| p.1).sum(),
            ..Default::default()
        };
        x.from_indexed(pos, &[]);
        x
    }

    #[test]
    fn integer_histogram_to_float_sums_the_deltas() {
        let h = Histogram {
            counter_reset_hint: CounterResetHint::NotCounterReset,
            schema: 1,
            zero_threshold: 0.001,
            zero_count: 2,
            count: 17,
            sum: 42.5,
            positive_spans: vec![
                Span {
                    offset: 0,
                    length: 2,
                },
                Span {
                    offset: 1,
                    length: 1,
                },
            ],
            positive_buckets: vec![6, -3, 0],
            negative_spans: vec![Span {
                offset: -1,
                length: 2,
            }],
            negative_buckets: vec![1, 2],
            custom_values: vec![],
        };
        let f = h.to_float();
        assert_eq!(f.positive_buckets, vec![6.0, 3.0, 3.0]);
        assert_eq!(f.negative_buckets, vec![1.0, 3.0]);
        assert_eq!((f.count, f.zero_count, f.sum), (17.0, 2.0, 42.5));
        assert_eq!(f.positive_spans, h.positive_spans);
        assert_eq!(f.negative_spans, h.negative_spans);
        assert_eq!(f.counter_reset_hint, CounterResetHint::NotCounterReset);
        assert_eq!((f.schema, f.zero_threshold), (1, 0.001));
        assert_eq!(f.positive_indexed(), vec![(0, 6.0), (1, 3.0), (3, 3.0)]);

        let nhcb = Histogram {
            schema: CUSTOM_BUCKETS_SCHEMA,
            count: 3,
            positive_spans: vec![Span {
                offset: 0,
                length: 3,
            }],
            positive_buckets: vec![1, 0, -1],
            custom_values: vec![0.5, 1.0],
            ..Default::default()
        };
        assert!(nhcb.uses_custom_buckets());
        let f = nhcb.to_float();
        assert_eq!(f.positive_buckets, vec![1.0, 1.0, 0.0]);
        assert_eq!(f.custom_values, vec![0.5, 1.0]);
        assert!(f.uses_custom_buckets());
    }

    #[test]
    fn bounds() {
        assert_eq!(bucket_bound(0, 0, &[]), 1.0);
        assert_eq!(bucket_bound(1, 0, &[]), 2.0);
        assert_eq!(bucket_bound(-1, 0, &[]), 0.5);
        assert_eq!(bucket_bound(1, -1, &[]), 4.0);
        assert!((bucket_bound(1, 1, &[]) - 2f64.sqrt()).abs() < 1e-15);
        assert_eq!(bucket_bound(2, 1, &[]), 2.0);
        assert_eq!(bucket_bound(1, CUSTOM_BUCKETS_SCHEMA, &[1.0, 5.0]), 5.0);
        assert_eq!(
            bucket_bound(2, CUSTOM_BUCKETS_SCHEMA, &[1.0, 5.0]),
            f64::INFINITY
        );
    }

    #[test]
    fn add_reduces_schema_and_merges() {
        let a = h(1, &[(1, 1.0), (2, 2.0)]);
        let b = h(0, &[(1, 4.0)]);
        let (s, _) = a.add(&b).unwrap();
        assert_eq!(s.schema, 0);
        assert_eq!(s.positive_indexed(), vec![(1, 7.0)]);
        assert_eq!(s.count, 7.0);
        let (d, _) = s.sub(&b).unwrap();
        assert_eq!(d.compacted().positive_indexed(), vec![(1, 3.0)]);
    }

    #[test]
    fn zero_bucket_widens() {
        let mut a = h(0, &[(-1, 1.0), (1, 2.0)]);
        a.zero_threshold = 0.0;
        let mut b = h(0, &[(2, 1.0)]);
        b.zero_threshold = 0.6;
        b.zero_count = 3.0;
        let (s, _) = a.add(&b).unwrap();
        assert_eq!(s.zero_threshold, 0.6);
        assert_eq!(s.zero_count, 4.0);
        assert_eq!(s.positive_indexed(), vec![(1, 2.0), (2, 1.0)]);
    }

    #[test]
    fn custom_mismatch_intersects() {
        let mut a = h(CUSTOM_BUCKETS_SCHEMA, &[(0, 1.0), (1, 1.0), (2, 1.0)]);
        a.custom_values = vec![1.0, 2.0];
        let mut b = h(CUSTOM_BUCKETS_SCHEMA, &[(0, 1.0), (1, 1.0)]);
        b.custom_values = vec![2.0];
        let (s, info) = a.add(&b).unwrap();
        assert!(info.nhcb_bounds_reconciled);
        assert_eq!(s.custom_values, vec![2.0]);
        assert_eq!(s.positive_indexed(), vec![(0, 3.0), (1, 2.0)]);
        assert!(a.add(&h(0, &[])).is_err());
    }

    #[test]
    fn resets_and_expression() {
        let a = h(0, &[(0, 2.0), (1, 1.0)]);
        let b = h(0, &[(0, 1.0), (1, 3.0)]);
        assert!(b.detect_reset(&a));
        assert!(!a.detect_reset(&h(0, &[(0, 1.0)])));
        assert_eq!(a.test_expression(), "{{count:3 buckets:[2 1]}}");
        assert!(a.approx_eq(&a.clone(), |x, y| x == y));
    }
}
