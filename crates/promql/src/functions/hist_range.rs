//! Range functions over windows that hold native histogram points.
//!
//! Called only when a window has at least one histogram. Each function
//! either computes a histogram or float result from the histograms (rates,
//! sums, averages, counts, first/last, resets, changes) or, for the
//! float-only functions, says to fall back to the float points with an
//! info annotation about the ignored histograms.

use std::sync::Arc;

use cairn_model::{CounterResetHint, FloatHistogram, Labels};

use super::RangeCtx;
use crate::plan::RangeFunc;
use crate::value::{Annotations, FPoint, HPoint, SampleValue};

/// What the histogram path decided for one series.
pub(crate) enum HistOut {
    /// No sample for this series.
    Nothing,
    Value(SampleValue),
    /// Run the float function on the float points only.
    Floats,
}

fn name_of(l: &Labels) -> String {
    l.metric_name().unwrap_or("").to_owned()
}

fn mixed_warning(annos: &mut Annotations, l: &Labels) {
    annos.warn(format!(
        "encountered a mix of histograms and floats for metric name {:?}",
        name_of(l)
    ));
}

fn mixed_schema_warning(annos: &mut Annotations, l: &Labels) {
    annos.warn(format!(
        "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {:?}",
        name_of(l)
    ));
}

fn hist(h: FloatHistogram) -> HistOut {
    HistOut::Value(SampleValue::Histogram(Arc::new(h)))
}

fn float(f: f64) -> HistOut {
    HistOut::Value(SampleValue::Float(f))
}

/// Dispatches `f` for a window with histograms (`hw` non-empty).
pub(crate) fn eval(
    f: RangeFunc,
    w: &[FPoint],
    hw: &[HPoint],
    c: &RangeCtx<'_>,
    annos: &mut Annotations,
    l: &Labels,
) -> HistOut {
    match f {
        RangeFunc::Rate | RangeFunc::Increase | RangeFunc::Delta => {
            if !w.is_empty() {
                mixed_warning(annos, l);
                return HistOut::Nothing;
            }
            let counter = f != RangeFunc::Delta;
            match extrapolated(hw, c, counter, f == RangeFunc::Rate, annos, l) {
                Some(h) => hist(h),
                None => HistOut::Nothing,
            }
        }
        RangeFunc::Irate | RangeFunc::Idelta => instant(w, hw, f == RangeFunc::Irate, annos, l),
        RangeFunc::SumOverTime | RangeFunc::AvgOverTime => {
            if !w.is_empty() {
                mixed_warning(annos, l);
                return HistOut::Nothing;
            }
            sum_avg(hw, f == RangeFunc::AvgOverTime, annos, l)
        }
        RangeFunc::CountOverTime => float((w.len() + hw.len()) as f64),
        RangeFunc::PresentOverTime => float(1.0),
        RangeFunc::LastOverTime | RangeFunc::TsOfLastOverTime => {
            let (t, v) = match (w.last(), hw.last()) {
                (Some(f), Some(h)) if f.t > h.t => (f.t, SampleValue::Float(f.f)),
                (_, Some(h)) => (h.t, SampleValue::Histogram(h.h.clone())),
                (Some(f), None) => (f.t, SampleValue::Float(f.f)),
                (None, None) => return HistOut::Nothing,
            };
            if f == RangeFunc::LastOverTime {
                HistOut::Value(v)
            } else {
                float(t as f64 / 1000.0)
            }
        }
        RangeFunc::FirstOverTime | RangeFunc::TsOfFirstOverTime => {
            let (t, v) = match (w.first(), hw.first()) {
                (Some(f), Some(h)) if f.t < h.t => (f.t, SampleValue::Float(f.f)),
                (_, Some(h)) => (h.t, SampleValue::Histogram(h.h.clone())),
                (Some(f), None) => (f.t, SampleValue::Float(f.f)),
                (None, None) => return HistOut::Nothing,
            };
            if f == RangeFunc::FirstOverTime {
                HistOut::Value(v)
            } else {
                float(t as f64 / 1000.0)
            }
        }
        RangeFunc::Resets | RangeFunc::Changes => {
            float(resets_changes(w, hw, f == RangeFunc::Resets) as f64)
        }
        _ => {
            if w.is_empty() {
                return HistOut::Nothing;
            }
            annos.info(format!(
                "ignored histograms in a range containing both floats and histograms for metric name {:?}",
                name_of(l)
            ));
            HistOut::Floats
        }
    }
}

/// Merges floats and histograms by time.
fn merged<'a>(w: &'a [FPoint], hw: &'a [HPoint]) -> Vec<(i64, Result<f64, &'a FloatHistogram>)> {
    let mut out: Vec<(i64, Result<f64, &FloatHistogram>)> = w
        .iter()
        .map(|p| (p.t, Ok(p.f)))
        .chain(hw.iter().map(|p| (p.t, Err(&*p.h))))
        .collect();
    out.sort_by_key(|x| x.0);
    out
}

fn resets_changes(w: &[FPoint], hw: &[HPoint], resets: bool) -> usize {
    let all = merged(w, hw);
    let mut n = 0;
    for pair in all.windows(2) {
        let [(_, a), (_, b)] = pair else { continue };
        let hit = match (a, b) {
            (Ok(x), Ok(y)) => {
                if resets {
                    y < x
                } else {
                    x != y && !(x.is_nan() && y.is_nan())
                }
            }
            (Err(x), Err(y)) => {
                if resets {
                    y.detect_reset(x)
                } else {
                    !hist_equals(x, y)
                }
            }
            _ => true,
        };
        if hit {
            n += 1;
        }
    }
    n
}

/// Exact equality as Prometheus's `FloatHistogram.Equals` (compacted
/// buckets, bit-equal sums so NaN equals NaN).
fn hist_equals(a: &FloatHistogram, b: &FloatHistogram) -> bool {
    a.approx_eq(b, |x, y| x == y || x.to_bits() == y.to_bits())
}

/// The increase (or change, for gauges) between the first and last
/// histogram, adding back the value before each counter reset.
fn histogram_rate(
    hw: &[HPoint],
    counter: bool,
    annos: &mut Annotations,
    l: &Labels,
) -> Option<FloatHistogram> {
    let first = &hw.first()?.h;
    let last = &hw.last()?.h;
    let gauge = CounterResetHint::Gauge;
    if counter && (first.counter_reset_hint == gauge || last.counter_reset_hint == gauge) {
        annos.warn(format!(
            "this native histogram metric is not a counter: {:?}",
            name_of(l)
        ));
    }
    let mut prev: FloatHistogram = (**first).clone();
    if counter {
        if let Some(second) = hw.get(1) {
            if second.h.detect_reset(first) {
                prev = FloatHistogram {
                    schema: second.h.schema,
                    custom_values: second.h.custom_values.clone(),
                    ..Default::default()
                };
            }
        }
    }
    let custom = prev.uses_custom_buckets();
    if last.uses_custom_buckets() != custom {
        mixed_schema_warning(annos, l);
        return None;
    }
    let mut min_schema = last.schema.min(prev.schema);
    for p in hw.iter().skip(1).take(hw.len().saturating_sub(2)) {
        if !counter {
            continue;
        }
        if p.h.counter_reset_hint == gauge {
            annos.warn(format!(
                "this native histogram metric is not a counter: {:?}",
                name_of(l)
            ));
        }
        min_schema = min_schema.min(p.h.schema);
        if p.h.uses_custom_buckets() != custom {
            mixed_schema_warning(annos, l);
            return None;
        }
    }
    let mut h = (**last).clone();
    h.reduce_resolution(min_schema);
    let Ok((mut h, info)) = h.sub(&prev) else {
        mixed_schema_warning(annos, l);
        return None;
    };
    if info.nhcb_bounds_reconciled {
        annos.info("mismatched custom buckets were reconciled during subtraction");
    }
    if counter {
        let mut prev: &FloatHistogram = &prev;
        for p in hw.iter().skip(1) {
            if p.h.detect_reset(prev) {
                match h.add(prev) {
                    Ok((sum, info)) => {
                        h = sum;
                        if info.nhcb_bounds_reconciled {
                            annos.info("mismatched custom buckets were reconciled during addition");
                        }
                    }
                    Err(_) => {
                        mixed_schema_warning(annos, l);
                        return None;
                    }
                }
            }
            prev = &p.h;
        }
    } else if first.counter_reset_hint != gauge || last.counter_reset_hint != gauge {
        annos.warn(format!(
            "this native histogram metric is not a gauge: {:?}",
            name_of(l)
        ));
    }
    h.compact();
    Some(h)
}

fn extrapolated(
    hw: &[HPoint],
    c: &RangeCtx<'_>,
    counter: bool,
    is_rate: bool,
    annos: &mut Annotations,
    l: &Labels,
) -> Option<FloatHistogram> {
    if hw.len() < 2 {
        return None;
    }
    let first = hw.first()?;
    let last = hw.last()?;
    let mut result = histogram_rate(hw, counter, annos, l)?;
    let mut to_start = (first.t - c.lo) as f64 / 1000.0;
    let mut to_end = (c.hi - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg = sampled / (hw.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if counter {
        let mut to_zero = to_start;
        if result.count > 0.0 && first.h.count >= 0.0 {
            to_zero = sampled * (first.h.count / result.count);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= c.range as f64 / 1000.0;
    }
    result.mul(factor);
    Some(result)
}

/// `irate`/`idelta`: the last two samples of the window.
fn instant(
    w: &[FPoint],
    hw: &[HPoint],
    is_rate: bool,
    annos: &mut Annotations,
    l: &Labels,
) -> HistOut {
    let all = merged(w, hw);
    let n = all.len();
    if n < 2 {
        return HistOut::Nothing;
    }
    let (Some((t0, a)), Some((t1, b))) = (all.get(n - 2), all.get(n - 1)) else {
        return HistOut::Nothing;
    };
    let dt = t1 - t0;
    if dt == 0 {
        return HistOut::Nothing;
    }
    let secs = dt as f64 / 1000.0;
    match (a, b) {
        (Ok(x), Ok(y)) => {
            let mut r = if is_rate && y < x { *y } else { y - x };
            if is_rate {
                r /= secs;
            }
            float(r)
        }
        (Err(x), Err(y)) => {
            let gauge = CounterResetHint::Gauge;
            if is_rate && (y.counter_reset_hint == gauge || x.counter_reset_hint == gauge) {
                annos.warn(format!(
                    "this native histogram metric is not a counter: {:?}",
                    name_of(l)
                ));
            }
            if !is_rate && (y.counter_reset_hint != gauge || x.counter_reset_hint != gauge) {
                annos.warn(format!(
                    "this native histogram metric is not a gauge: {:?}",
                    name_of(l)
                ));
            }
            let mut r: FloatHistogram = (*y).clone();
            if !is_rate || !y.detect_reset(x) {
                match r.sub(x) {
                    Ok((d, info)) => {
                        r = d;
                        if info.nhcb_bounds_reconciled {
                            annos.info(
                                "mismatched custom buckets were reconciled during subtraction",
                            );
                        }
                    }
                    Err(_) => {
                        mixed_schema_warning(annos, l);
                        return HistOut::Nothing;
                    }
                }
            }
            r.counter_reset_hint = gauge;
            r.compact();
            if is_rate {
                r.div(secs);
            }
            hist(r)
        }
        _ => {
            mixed_warning(annos, l);
            HistOut::Nothing
        }
    }
}

/// `sum_over_time`/`avg_over_time` of histograms.
fn sum_avg(hw: &[HPoint], avg: bool, annos: &mut Annotations, l: &Labels) -> HistOut {
    let Some(first) = hw.first() else {
        return HistOut::Nothing;
    };
    let (mut reset_seen, mut not_reset_seen, mut reconciled) = (false, false, false);
    let mut track = |h: &FloatHistogram| match h.counter_reset_hint {
        CounterResetHint::CounterReset => reset_seen = true,
        CounterResetHint::NotCounterReset => not_reset_seen = true,
        _ => {}
    };
    let mut acc: FloatHistogram = (*first.h).clone();
    track(&acc);
    let mut failed = false;
    for (i, p) in hw.iter().enumerate().skip(1) {
        track(&p.h);
        let step = if avg {
            let n = (i + 1) as f64;
            let mut left: FloatHistogram = (*p.h).clone();
            left.div(n);
            let mut right = acc.clone();
            right.div(n);
            left.sub(&right).and_then(|(d, i1)| {
                acc.add(&d)
                    .map(|(s, i2)| (s, i1.nhcb_bounds_reconciled || i2.nhcb_bounds_reconciled))
            })
        } else {
            acc.add(&p.h).map(|(s, i)| (s, i.nhcb_bounds_reconciled))
        };
        match step {
            Ok((s, r)) => {
                acc = s;
                reconciled |= r;
            }
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if failed {
        mixed_schema_warning(annos, l);
        return HistOut::Nothing;
    }
    if reset_seen && not_reset_seen {
        annos.warn("conflicting counter resets during histogram aggregation");
    }
    if reconciled {
        annos.info("mismatched custom buckets were reconciled during aggregation");
    }
    hist(acc)
}
