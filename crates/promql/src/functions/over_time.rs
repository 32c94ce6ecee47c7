//! `*_over_time` aggregations of each series' window, and
//! `present_over_time`.

use super::RangeCtx;
use crate::numeric::{kahan_inc, quantile as quantile_of};
use crate::value::FPoint;

pub(super) fn avg(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    let first = w.first()?;
    let (mut sum, mut count) = (first.f, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, p) in w.iter().enumerate().skip(1) {
        count = (i + 1) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(p.f, sum, c);
            if !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(p.f / count, q * mean, q * c);
    }
    Some(if incremental {
        mean + c
    } else {
        sum / count + c / count
    })
}

pub(super) fn sum(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    let (mut s, mut c) = (0.0, 0.0);
    for p in w {
        (s, c) = kahan_inc(p.f, s, c);
    }
    Some(if s.is_infinite() { s } else { s + c })
}

pub(super) fn count(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    Some(w.len() as f64)
}

fn compare(w: &[FPoint], better: impl Fn(f64, f64) -> bool, ts: bool) -> Option<f64> {
    let first = w.first()?;
    let (mut best, mut at) = (first.f, first.t);
    for p in w {
        if better(p.f, best) {
            best = p.f;
            at = p.t;
        }
    }
    Some(if ts { at as f64 / 1000.0 } else { best })
}

pub(super) fn min(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    compare(w, |c, m| c < m || m.is_nan(), false)
}

pub(super) fn max(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    compare(w, |c, m| c > m || m.is_nan(), false)
}

pub(super) fn ts_of_min(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    compare(w, |c, m| c <= m || m.is_nan(), true)
}

pub(super) fn ts_of_max(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    compare(w, |c, m| c >= m || m.is_nan(), true)
}

pub(super) fn last(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    w.last().map(|p| p.f)
}

pub(super) fn first(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    w.first().map(|p| p.f)
}

pub(super) fn ts_of_last(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    w.last().map(|p| p.t as f64 / 1000.0)
}

pub(super) fn ts_of_first(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    w.first().map(|p| p.t as f64 / 1000.0)
}

fn variance(w: &[FPoint]) -> Option<f64> {
    if w.is_empty() {
        return None;
    }
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for p in w {
        count += 1.0;
        let delta = p.f - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (p.f - (mean + cmean)), aux, caux);
    }
    Some((aux + caux) / count)
}

pub(super) fn stdvar(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    variance(w)
}

pub(super) fn stddev(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    variance(w).map(f64::sqrt)
}

pub(super) fn quantile(w: &[FPoint], c: &RangeCtx<'_>) -> Option<f64> {
    if w.is_empty() {
        return None;
    }
    let q = c.scalars.first().copied().unwrap_or(f64::NAN);
    let mut vals: Vec<f64> = w.iter().map(|p| p.f).collect();
    Some(quantile_of(q, &mut vals))
}

pub(super) fn mad(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    if w.is_empty() {
        return None;
    }
    let mut vals: Vec<f64> = w.iter().map(|p| p.f).collect();
    let median = quantile_of(0.5, &mut vals);
    let mut dev: Vec<f64> = w.iter().map(|p| (p.f - median).abs()).collect();
    Some(quantile_of(0.5, &mut dev))
}

pub(super) fn present(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    if w.is_empty() {
        None
    } else {
        Some(1.0)
    }
}
