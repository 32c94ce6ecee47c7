//! Span arithmetic of the appenders (the second half of Prometheus's
//! `tsdb/chunkenc/histogram_meta.go`): walking the bucket indexes that spans
//! describe, working out which buckets one layout lacks against another
//! ([`Insert`]s), merging layouts, and inserting empty buckets into bucket
//! lists.
//!
//! Every function mirrors its Prometheus counterpart step for step,
//! including how it treats unusual spans (zero lengths, negative offsets
//! after the first span, Go's `int32` wrap of `offset + 1`), because their
//! results decide which samples share a chunk and so show in chunk bytes.
//! Where Prometheus would panic on inconsistent input (more inserts than
//! room), these return [`CodecError::InvalidHistogram`].

use crate::CodecError;
use cairn_model::Span;

/// Walks the bucket indexes of a span list (Prometheus's `bucketIterator`).
#[derive(Debug, Clone)]
pub struct BucketIndexes<'a> {
    spans: &'a [Span],
    /// Span of the last yielded bucket.
    span: usize,
    /// Position of the last yielded bucket within its span.
    bucket: i64,
    /// Index of the last yielded bucket.
    idx: i64,
}

impl<'a> BucketIndexes<'a> {
    /// Starts before the first bucket of `spans`.
    pub fn new(spans: &'a [Span]) -> Self {
        let idx = -1 + spans.first().map_or(0, |s| i64::from(s.offset));
        Self {
            spans,
            span: 0,
            bucket: -1,
            idx,
        }
    }
}

impl Iterator for BucketIndexes<'_> {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        let cur = self.spans.get(self.span)?;
        if self.bucket < i64::from(cur.length) - 1 {
            self.bucket += 1;
            self.idx += 1;
            return Some(self.idx);
        }
        while self.span + 1 < self.spans.len() {
            self.span += 1;
            let s = self.spans.get(self.span)?;
            // Go adds `Offset + 1` in int32 arithmetic.
            self.idx += i64::from(s.offset.wrapping_add(1));
            self.bucket = 0;
            if s.length == 0 {
                self.idx -= 1;
                continue;
            }
            return Some(self.idx);
        }
        None
    }
}

/// `num` new buckets to insert before the `pos`th bucket of the original
/// list (Prometheus's `Insert`); `bucket_idx` is the index of the first
/// inserted bucket (used to adjust spans).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Insert {
    pub pos: usize,
    pub num: usize,
    pub bucket_idx: i64,
}

/// Running totals of delta-encoded counts (wrapping like Go's `int64`).
pub fn running_sums(deltas: &[i64]) -> Vec<i64> {
    let mut cur: i64 = 0;
    deltas
        .iter()
        .map(|&d| {
            cur = cur.wrapping_add(d);
            cur
        })
        .collect()
}

/// Prometheus's `expandIntSpansAndBuckets` / `expandFloatSpansAndBuckets`,
/// over absolute bucket counts: the forward inserts that make `a` cover
/// every bucket of `b`, and the backward inserts that make `b` cover the
/// empty buckets of `a` that `b` lacks. `None` when a bucket's count went
/// down or a populated bucket of `a` is missing from `b` (a counter reset).
pub fn expand_spans_and_buckets<T: Copy + PartialOrd + Default>(
    a: &[Span],
    b: &[Span],
    a_counts: &[T],
    b_counts: &[T],
) -> Option<(Vec<Insert>, Vec<Insert>)> {
    let mut ai = BucketIndexes::new(a);
    let mut bi = BucketIndexes::new(b);
    let mut a_inserts = Vec::new();
    let mut b_inserts = Vec::new();
    let mut a_inter = Insert::default();
    let mut b_inter = Insert::default();
    let mut a_next = ai.next();
    let mut b_next = bi.next();
    let (mut a_k, mut b_k) = (0usize, 0usize);
    let count = |c: &[T], k: usize| c.get(k).copied().unwrap_or_default();
    let zero = T::default();

    fn add_insert(inserts: &mut Vec<Insert>, ins: &mut Insert, other_idx: i64) {
        if ins.num == 0 {
            ins.bucket_idx = other_idx;
        } else if ins.bucket_idx + ins.num as i64 != other_idx {
            inserts.push(*ins);
            ins.num = 0;
            ins.bucket_idx = other_idx;
        }
        ins.num += 1;
    }

    loop {
        match (a_next, b_next) {
            (Some(a_idx), Some(b_idx)) if a_idx == b_idx => {
                if count(a_counts, a_k) > count(b_counts, b_k) {
                    return None;
                }
                advance(&mut a_inserts, &mut a_inter, &mut ai, &mut a_next, &mut a_k);
                advance(&mut b_inserts, &mut b_inter, &mut bi, &mut b_next, &mut b_k);
            }
            (Some(a_idx), Some(b_idx)) if a_idx > b_idx => {
                // a lacks a bucket of b.
                add_insert(&mut a_inserts, &mut a_inter, b_idx);
                advance(&mut b_inserts, &mut b_inter, &mut bi, &mut b_next, &mut b_k);
            }
            (None, Some(b_idx)) => {
                add_insert(&mut a_inserts, &mut a_inter, b_idx);
                advance(&mut b_inserts, &mut b_inter, &mut bi, &mut b_next, &mut b_k);
            }
            (Some(a_idx), _) => {
                // b lacks a bucket of a: fine only if it is empty in a.
                if count(a_counts, a_k) != zero {
                    return None;
                }
                add_insert(&mut b_inserts, &mut b_inter, a_idx);
                advance(&mut a_inserts, &mut a_inter, &mut ai, &mut a_next, &mut a_k);
            }
            (None, None) => {
                if a_inter.num > 0 {
                    a_inserts.push(a_inter);
                }
                if b_inter.num > 0 {
                    b_inserts.push(b_inter);
                }
                return Some((a_inserts, b_inserts));
            }
        }
    }
}

/// Prometheus's `advanceA`/`advanceB`: finish a pending insert streak, step
/// to the next bucket.
fn advance(
    inserts: &mut Vec<Insert>,
    inter: &mut Insert,
    it: &mut BucketIndexes<'_>,
    next: &mut Option<i64>,
    k: &mut usize,
) {
    if inter.num > 0 {
        inserts.push(*inter);
        inter.num = 0;
    }
    *next = it.next();
    inter.pos += 1;
    *k += 1;
}

/// Appends bucket `b` to `merged` (the `addBucket` closure of Prometheus's
/// `expandSpansBothWays` and `adjustForInserts`).
fn add_bucket(merged: &mut Vec<Span>, last: &mut i64, b: i64) {
    let mut offset = b - *last - 1;
    match merged.last_mut() {
        Some(s) if offset == 0 => s.length += 1,
        _ => {
            if merged.is_empty() {
                offset += 1;
            }
            merged.push(Span {
                offset: offset as i32,
                length: 1,
            });
        }
    }
    *last = b;
}

/// Prometheus's `expandSpansBothWays` for gauge histograms: the forward
/// inserts that make `a` cover every bucket of `b`, the backward inserts
/// that make `b` cover every bucket of `a`, and the spans of the union.
pub fn expand_spans_both_ways(a: &[Span], b: &[Span]) -> (Vec<Insert>, Vec<Insert>, Vec<Span>) {
    let mut ai = BucketIndexes::new(a);
    let mut bi = BucketIndexes::new(b);
    let (mut f_inserts, mut b_inserts, mut merged) = (Vec::new(), Vec::new(), Vec::new());
    let mut last = 0i64;
    let (mut f_inter, mut b_inter) = (Insert::default(), Insert::default());
    let mut av = ai.next();
    let mut bv = bi.next();
    loop {
        match (av, bv) {
            (Some(x), Some(y)) if x == y => {
                if f_inter.num > 0 {
                    f_inserts.push(f_inter);
                    f_inter.num = 0;
                }
                if b_inter.num > 0 {
                    b_inserts.push(b_inter);
                    b_inter.num = 0;
                }
                add_bucket(&mut merged, &mut last, x);
                av = ai.next();
                bv = bi.next();
                f_inter.pos += 1;
                b_inter.pos += 1;
            }
            (Some(x), Some(y)) if x < y => {
                b_inter.num += 1;
                if f_inter.num > 0 {
                    f_inserts.push(f_inter);
                    f_inter.num = 0;
                }
                add_bucket(&mut merged, &mut last, x);
                f_inter.pos += 1;
                av = ai.next();
            }
            (Some(_), Some(y)) => {
                f_inter.num += 1;
                if b_inter.num > 0 {
                    b_inserts.push(b_inter);
                    b_inter.num = 0;
                }
                add_bucket(&mut merged, &mut last, y);
                b_inter.pos += 1;
                bv = bi.next();
            }
            (Some(x), None) => {
                b_inter.num += 1;
                add_bucket(&mut merged, &mut last, x);
                av = ai.next();
            }
            (None, Some(y)) => {
                f_inter.num += 1;
                add_bucket(&mut merged, &mut last, y);
                bv = bi.next();
            }
            (None, None) => {
                if f_inter.num > 0 {
                    f_inserts.push(f_inter);
                }
                if b_inter.num > 0 {
                    b_inserts.push(b_inter);
                }
                return (f_inserts, b_inserts, merged);
            }
        }
    }
}

/// Prometheus's `adjustForInserts`: `spans` widened by the buckets that
/// `inserts` add (their `bucket_idx`), as a fresh span list.
pub fn adjust_for_inserts(spans: &[Span], inserts: &[Insert]) -> Vec<Span> {
    let Some(first) = inserts.first() else {
        return spans.to_vec();
    };
    let mut merged = Vec::new();
    let mut last = 0i64;
    let mut i = 0usize;
    let mut insert_idx = first.bucket_idx;
    let mut insert_num = first.num;
    // (An insert of zero buckets, which no appender produces, counts as one
    // instead of making Go's loop run away.)
    let consume = |i: &mut usize, insert_idx: &mut i64, insert_num: &mut usize| {
        *insert_num = insert_num.saturating_sub(1);
        if *insert_num == 0 {
            *i += 1;
            if let Some(next) = inserts.get(*i) {
                *insert_idx = next.bucket_idx;
                *insert_num = next.num;
            }
        } else {
            *insert_idx += 1;
        }
    };
    let mut it = BucketIndexes::new(spans);
    let mut bucket = it.next();
    while let Some(b) = bucket {
        if i < inserts.len() && insert_idx < b {
            add_bucket(&mut merged, &mut last, insert_idx);
            consume(&mut i, &mut insert_idx, &mut insert_num);
        } else {
            add_bucket(&mut merged, &mut last, b);
            bucket = it.next();
        }
    }
    while i < inserts.len() {
        add_bucket(&mut merged, &mut last, insert_idx);
        consume(&mut i, &mut insert_idx, &mut insert_num);
    }
    merged
}

/// Prometheus's `insert` with `deltas = true`: delta-encoded `input` with
/// zero-count buckets inserted, `n` long (zeros after the last input and
/// insert). Each inserted run starts with the delta back to zero and the
/// next original bucket's delta is rebased from zero.
pub fn insert_deltas(input: &[i64], n: usize, inserts: &[Insert]) -> Result<Vec<i64>, CodecError> {
    insert_with(input, n, inserts, true)
}

/// Prometheus's `insert` with `deltas = false`: absolute `input` with zero
/// buckets inserted, `n` long.
pub fn insert_absolute(
    input: &[f64],
    n: usize,
    inserts: &[Insert],
) -> Result<Vec<f64>, CodecError> {
    insert_with(input, n, inserts, false)
}

/// A bucket value of either kind, for [`insert_with`].
trait BucketValue: Copy + Default {
    fn add(self, o: Self) -> Self;
    fn neg(self) -> Self;
}

impl BucketValue for i64 {
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    fn neg(self) -> Self {
        self.wrapping_neg()
    }
}

impl BucketValue for f64 {
    fn add(self, o: Self) -> Self {
        self + o
    }
    fn neg(self) -> Self {
        -self
    }
}

fn insert_with<T: BucketValue>(
    input: &[T],
    n: usize,
    inserts: &[Insert],
    deltas: bool,
) -> Result<Vec<T>, CodecError> {
    let zero = T::default();
    let total = inserts
        .iter()
        .fold(input.len(), |acc, ins| acc.saturating_add(ins.num));
    if total > n {
        return Err(CodecError::InvalidHistogram {
            what: "bucket inserts",
            expected: format!("at most {n} buckets after inserting"),
            found: format!("{total} buckets"),
        });
    }
    let mut out: Vec<T> = Vec::with_capacity(n);
    let mut v = zero; // The last value seen.
    let mut ii = 0usize;
    for (i, &d) in input.iter().enumerate() {
        if inserts.get(ii).is_none_or(|ins| ins.pos != i) {
            out.push(d);
            v = v.add(d);
            continue;
        }
        let mut first = true;
        while let Some(ins) = inserts.get(ii).filter(|ins| ins.pos == i) {
            if deltas && first {
                out.push(v.neg());
                first = false;
            } else {
                out.push(zero);
            }
            for _ in 1..ins.num {
                out.push(zero);
            }
            ii += 1;
        }
        out.push(if deltas { d.add(v) } else { d });
        v = v.add(d);
    }
    while let Some(ins) = inserts.get(ii) {
        if ins.pos < input.len() {
            return Err(CodecError::InvalidHistogram {
                what: "bucket inserts",
                expected: format!("leftover inserts after the {} buckets", input.len()),
                found: format!("an insert at position {}", ins.pos),
            });
        }
        out.push(if deltas { v.neg() } else { zero });
        for _ in 1..ins.num {
            out.push(zero);
        }
        ii += 1;
        v = zero;
    }
    out.resize(n, zero);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(v: &[(i32, u32)]) -> Vec<Span> {
        v.iter()
            .map(|&(offset, length)| Span { offset, length })
            .collect()
    }

    #[test]
    fn bucket_indexes_follow_prometheus() {
        let idx: Vec<i64> =
            BucketIndexes::new(&sp(&[(0, 2), (2, 1), (3, 2), (3, 1), (1, 1)])).collect();
        assert_eq!(idx, [0, 1, 4, 8, 9, 13, 15]);
        // Zero-length spans only move the index by their offset.
        let idx: Vec<i64> = BucketIndexes::new(&sp(&[(-2, 0), (1, 1), (0, 0), (2, 2)])).collect();
        assert_eq!(idx, [-1, 2, 3]);
        assert_eq!(BucketIndexes::new(&[]).next(), None);
        assert_eq!(BucketIndexes::new(&sp(&[(5, 0)])).next(), None);
    }

    /// The example in the comment of Prometheus's `expandIntSpansAndBuckets`.
    #[test]
    fn prometheus_expand_example() {
        let a = sp(&[(0, 2), (2, 1), (3, 2), (3, 1), (1, 1)]);
        let a_deltas = [6, -3, 0, -1, 2, 1, -4];
        let b = sp(&[(0, 3), (1, 1), (1, 4), (3, 3)]);
        let b_abs = [6, 3, 0, 3, 0, 0, 2, 4, 5, 0, 1];
        let (fwd, bwd) =
            expand_spans_and_buckets(&a, &b, &running_sums(&a_deltas), &b_abs).unwrap();
        let ins = |pos, num, bucket_idx| Insert {
            pos,
            num,
            bucket_idx,
        };
        assert_eq!(fwd, [ins(2, 1, 2), ins(3, 2, 6), ins(6, 1, 14)]);
        assert!(bwd.is_empty());
        let got = insert_deltas(&a_deltas, 11, &fwd).unwrap();
        assert_eq!(got, [6, -3, -3, 3, -3, 0, 2, 2, 1, -5, 1]);
        // The other way round only empty buckets go missing: fine.
        let (fwd, bwd) =
            expand_spans_and_buckets(&b, &a, &b_abs, &running_sums(&a_deltas)).unwrap();
        assert!(fwd.is_empty());
        assert_eq!(bwd.len(), 3);
        // A populated bucket (index 4) going missing is a reset.
        assert!(expand_spans_and_buckets(&b, &sp(&[(0, 2)]), &b_abs, &[6, 3]).is_none());
        // A decrease is a reset.
        let mut lower = b_abs;
        lower[7] = 3;
        assert!(expand_spans_and_buckets(&a, &b, &running_sums(&a_deltas), &lower).is_none());
    }

    #[test]
    fn empty_buckets_may_disappear_with_backward_inserts() {
        let a = sp(&[(0, 3)]);
        let a_abs = [1.0, 0.0, 2.0];
        let b = sp(&[(0, 1), (1, 1)]);
        let (fwd, bwd) = expand_spans_and_buckets(&a, &b, &a_abs, &[1.0, 2.0]).unwrap();
        assert!(fwd.is_empty());
        assert_eq!(
            bwd,
            [Insert {
                pos: 1,
                num: 1,
                bucket_idx: 1
            }]
        );
        assert_eq!(
            insert_absolute(&[1.0, 2.0], 3, &bwd).unwrap(),
            [1.0, 0.0, 2.0]
        );
        assert_eq!(adjust_for_inserts(&b, &bwd), sp(&[(0, 3)]));
    }

    #[test]
    fn both_ways_merges() {
        let a = sp(&[(0, 2), (3, 1)]); // 0 1 5
        let b = sp(&[(1, 2), (5, 1)]); // 1 2 8
        let (f, bw, merged) = expand_spans_both_ways(&a, &b);
        assert_eq!(merged, sp(&[(0, 3), (2, 1), (2, 1)])); // 0 1 2 5 8
        let ins = |pos, num| Insert {
            pos,
            num,
            bucket_idx: 0,
        };
        assert_eq!(f, [ins(2, 1), ins(3, 1)]);
        assert_eq!(bw, [ins(0, 1), ins(2, 1)]);
        assert_eq!(
            insert_absolute(&[1.0, 2.0, 3.0], 5, &f).unwrap(),
            [1.0, 2.0, 0.0, 3.0, 0.0]
        );
        assert_eq!(
            insert_deltas(&[4, 1, -2], 5, &bw).unwrap(),
            [0, 4, 1, -5, 3]
        );
    }

    #[test]
    fn inconsistent_inserts_are_errors_not_panics() {
        let ins = [Insert {
            pos: 0,
            num: 5,
            bucket_idx: 0,
        }];
        assert!(insert_deltas(&[1, 2], 3, &ins).is_err());
        let late = [
            Insert {
                pos: 3,
                num: 1,
                bucket_idx: 0,
            },
            Insert {
                pos: 1,
                num: 1,
                bucket_idx: 0,
            },
        ];
        assert!(insert_deltas(&[1, 2], 10, &late).is_err());
    }
}
