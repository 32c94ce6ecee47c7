//! Shared by the histogram-chunk tests: the JSON form of histograms that
//! the Prometheus oracle (tests/fixtures/histogram-chunk/oracle) reads and
//! writes, the head-like append loop both sides run, and a deterministic
//! generator of histogram sequences that exercise every appender branch.
#![allow(dead_code)]

use cairn_codec::{AppendOutcome, CodecError, FloatHistogramChunk, HistogramChunk};
use cairn_model::{CounterResetHint, FloatHistogram, Histogram, Span, CUSTOM_BUCKETS_SCHEMA};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const STALE: u64 = 0x7ff0_0000_0000_0002;

pub fn fhex(f: f64) -> String {
    format!("{:016x}", f.to_bits())
}

pub fn fbits(v: &Value) -> f64 {
    f64::from_bits(u64::from_str_radix(v.as_str().unwrap(), 16).unwrap())
}

fn hint_num(h: CounterResetHint) -> u64 {
    match h {
        CounterResetHint::Unknown => 0,
        CounterResetHint::CounterReset => 1,
        CounterResetHint::NotCounterReset => 2,
        CounterResetHint::Gauge => 3,
    }
}

fn hint_of(v: &Value) -> CounterResetHint {
    match v.as_u64().unwrap() {
        1 => CounterResetHint::CounterReset,
        2 => CounterResetHint::NotCounterReset,
        3 => CounterResetHint::Gauge,
        _ => CounterResetHint::Unknown,
    }
}

fn spans_json(s: &[Span]) -> Value {
    Value::Array(s.iter().map(|s| json!([s.offset, s.length])).collect())
}

fn spans_of(v: &Value) -> Vec<Span> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| Span {
            offset: p[0].as_i64().unwrap() as i32,
            length: p[1].as_u64().unwrap() as u32,
        })
        .collect()
}

fn floats_json(v: &[f64]) -> Value {
    Value::Array(v.iter().map(|&f| Value::String(fhex(f))).collect())
}

fn floats_of(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(fbits).collect()
}

pub fn int_json(h: &Histogram) -> Value {
    json!({
        "hint": hint_num(h.counter_reset_hint), "schema": h.schema, "zt": fhex(h.zero_threshold),
        "zc": h.zero_count, "c": h.count, "sum": fhex(h.sum),
        "ps": spans_json(&h.positive_spans), "ns": spans_json(&h.negative_spans),
        "pb": h.positive_buckets, "nb": h.negative_buckets, "cv": floats_json(&h.custom_values),
    })
}

pub fn int_of(v: &Value) -> Histogram {
    Histogram {
        counter_reset_hint: hint_of(&v["hint"]),
        schema: v["schema"].as_i64().unwrap() as i32,
        zero_threshold: fbits(&v["zt"]),
        zero_count: v["zc"].as_u64().unwrap(),
        count: v["c"].as_u64().unwrap(),
        sum: fbits(&v["sum"]),
        positive_spans: spans_of(&v["ps"]),
        negative_spans: spans_of(&v["ns"]),
        positive_buckets: v["pb"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect(),
        negative_buckets: v["nb"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect(),
        custom_values: floats_of(&v["cv"]),
    }
}

pub fn float_json(h: &FloatHistogram) -> Value {
    json!({
        "hint": hint_num(h.counter_reset_hint), "schema": h.schema, "zt": fhex(h.zero_threshold),
        "zc": fhex(h.zero_count), "c": fhex(h.count), "sum": fhex(h.sum),
        "ps": spans_json(&h.positive_spans), "ns": spans_json(&h.negative_spans),
        "pb": floats_json(&h.positive_buckets), "nb": floats_json(&h.negative_buckets),
        "cv": floats_json(&h.custom_values),
    })
}

pub fn float_of(v: &Value) -> FloatHistogram {
    FloatHistogram {
        counter_reset_hint: hint_of(&v["hint"]),
        schema: v["schema"].as_i64().unwrap() as i32,
        zero_threshold: fbits(&v["zt"]),
        zero_count: fbits(&v["zc"]),
        count: fbits(&v["c"]),
        sum: fbits(&v["sum"]),
        positive_spans: spans_of(&v["ps"]),
        positive_buckets: floats_of(&v["pb"]),
        negative_spans: spans_of(&v["ns"]),
        negative_buckets: floats_of(&v["nb"]),
        custom_values: floats_of(&v["cv"]),
    }
}

/// One append of a sequence: the head cuts a new chunk first (`cut`), or
/// asks for an append-only append.
#[derive(Debug, Clone)]
pub struct Op<H> {
    pub t: i64,
    pub cut: bool,
    pub append_only: bool,
    pub h: H,
}

pub fn ops_json<H>(ops: &[Op<H>], to: impl Fn(&H) -> Value) -> Value {
    json!({"ops": ops.iter().map(|o| json!({"t": o.t, "cut": o.cut, "append_only": o.append_only, "h": to(&o.h)})).collect::<Vec<_>>()})
}

pub fn ops_of<H>(v: &Value, of: impl Fn(&Value) -> H) -> Vec<Op<H>> {
    v["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| Op {
            t: o["t"].as_i64().unwrap(),
            cut: o["cut"].as_bool().unwrap_or(false),
            append_only: o["append_only"].as_bool().unwrap_or(false),
            h: of(&o["h"]),
        })
        .collect()
}

/// What one append did, in the oracle's words.
fn outcome<C>(r: Result<AppendOutcome<C>, CodecError>, chunks: &mut Vec<C>, cur: &mut C) -> String {
    match r {
        Ok(AppendOutcome::Appended) => "appended".into(),
        Ok(AppendOutcome::Recoded) => "recoded".into(),
        Ok(AppendOutcome::NewChunk(c)) => {
            chunks.push(std::mem::replace(cur, c));
            "new".into()
        }
        Err(CodecError::NotAppendable { reason }) => format!("error: {reason}"),
        Err(e) => format!("cairn error: {e}"),
    }
}

/// Runs the ops as Prometheus's head would (see the oracle's `encode`):
/// the chunks in order (the last one possibly empty) and each outcome.
pub fn run_int(ops: &[Op<Histogram>]) -> (Vec<HistogramChunk>, Vec<String>) {
    let (mut chunks, mut outcomes) = (Vec::new(), Vec::new());
    let mut cur = HistogramChunk::new();
    let mut prev: Option<HistogramChunk> = None;
    for o in ops {
        if o.cut && cur.num_samples() > 0 {
            let old = std::mem::take(&mut cur);
            prev = Some(old.clone());
            chunks.push(old);
        }
        let p = if cur.num_samples() == 0 {
            prev.as_ref()
        } else {
            None
        };
        let r = cur.append(p, o.t, &o.h, o.append_only);
        outcomes.push(outcome(r, &mut chunks, &mut cur));
    }
    chunks.push(cur);
    (chunks, outcomes)
}

/// [`run_int`] for float histograms.
pub fn run_float(ops: &[Op<FloatHistogram>]) -> (Vec<FloatHistogramChunk>, Vec<String>) {
    let (mut chunks, mut outcomes) = (Vec::new(), Vec::new());
    let mut cur = FloatHistogramChunk::new();
    let mut prev: Option<FloatHistogramChunk> = None;
    for o in ops {
        if o.cut && cur.num_samples() > 0 {
            let old = std::mem::take(&mut cur);
            prev = Some(old.clone());
            chunks.push(old);
        }
        let p = if cur.num_samples() == 0 {
            prev.as_ref()
        } else {
            None
        };
        let r = cur.append(p, o.t, &o.h, o.append_only);
        outcomes.push(outcome(r, &mut chunks, &mut cur));
    }
    chunks.push(cur);
    (chunks, outcomes)
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// splitmix64: a small deterministic generator.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
}

/// Spans for sorted bucket indexes; `split` sometimes cuts a run into two
/// spans with offset 0 and adds empty spans, as Prometheus accepts.
fn spans_for(idx: &[i32], rng: &mut Rng, odd: bool) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    let mut next: Option<i32> = None;
    for &i in idx {
        match (next, spans.last_mut()) {
            (Some(n), Some(s)) if n == i && !(odd && rng.chance(15)) => s.length += 1,
            (Some(n), _) => {
                if odd && rng.chance(10) {
                    spans.push(Span {
                        offset: 0,
                        length: 0,
                    });
                }
                spans.push(Span {
                    offset: i - n,
                    length: 1,
                })
            }
            (None, _) => spans.push(Span {
                offset: i,
                length: 1,
            }),
        }
        next = Some(i + 1);
    }
    spans
}

/// The evolving "true" state behind a generated sequence: absolute counts.
struct Truth {
    schema: i32,
    zt: f64,
    cv: Vec<f64>,
    pos: BTreeMap<i32, u64>,
    neg: BTreeMap<i32, u64>,
    zc: u64,
    extra: u64,
    sum: f64,
}

const SCHEMAS: &[i32] = &[0, 3, -4, 8, -9, 1, CUSTOM_BUCKETS_SCHEMA];
const ZTS: &[f64] = &[0.0, 2.938_735_877_055_719e-39, 0.001, 1.0, 0.5, 1e-300];

impl Truth {
    fn new(rng: &mut Rng) -> Self {
        let mut t = Truth {
            schema: SCHEMAS[rng.below(SCHEMAS.len() as u64) as usize],
            zt: ZTS[rng.below(ZTS.len() as u64) as usize],
            cv: Vec::new(),
            pos: BTreeMap::new(),
            neg: BTreeMap::new(),
            zc: 0,
            extra: 0,
            sum: 0.0,
        };
        t.fix_custom(rng);
        for _ in 0..rng.below(6) {
            t.add_bucket(rng);
        }
        t
    }

    fn fix_custom(&mut self, rng: &mut Rng) {
        if self.schema == CUSTOM_BUCKETS_SCHEMA {
            self.zt = 0.0;
            self.zc = 0;
            self.neg.clear();
            let n = rng.range(1, 6) as usize;
            let mut b = 0.0;
            self.cv = (0..n)
                .map(|_| {
                    b += match rng.below(4) {
                        0 => 0.001 * rng.range(1, 999) as f64,
                        1 => rng.range(1, 100) as f64,
                        2 => 1.0 / 3.0,
                        _ => 40_000.0,
                    };
                    b
                })
                .collect();
            let max = n as i32;
            self.pos.retain(|&k, _| (0..=max).contains(&k));
        } else {
            self.cv.clear();
        }
    }

    fn add_bucket(&mut self, rng: &mut Rng) {
        let big = rng.chance(5);
        let v = if big {
            rng.below(1 << 40)
        } else {
            rng.below(20)
        };
        if self.schema == CUSTOM_BUCKETS_SCHEMA {
            let k = rng.range(0, self.cv.len() as i64) as i32;
            self.pos.entry(k).or_insert(v);
        } else if rng.chance(60) {
            self.pos.entry(rng.range(-20, 20) as i32).or_insert(v);
        } else {
            self.neg.entry(rng.range(-20, 20) as i32).or_insert(v);
        }
    }

    fn count(&self) -> u64 {
        self.pos
            .values()
            .chain(self.neg.values())
            .fold(self.zc, |a, &b| a.wrapping_add(b))
            .wrapping_add(self.extra)
    }

    /// One step of change; returns whether the hint should say "reset".
    fn evolve(&mut self, rng: &mut Rng, gauge: bool) {
        let grow = |v: &mut u64, rng: &mut Rng| {
            if rng.chance(70) {
                let step = if rng.chance(5) { 1 << 30 } else { 5 };
                *v = v.wrapping_add(rng.below(step));
            }
        };
        for v in self.pos.values_mut().chain(self.neg.values_mut()) {
            grow(v, rng);
        }
        grow(&mut self.zc, rng);
        if self.schema == CUSTOM_BUCKETS_SCHEMA {
            self.zc = 0;
        }
        self.sum += rng.below(100) as f64 * 0.25;
        match rng.below(100) {
            0..=14 => self.add_bucket(rng),
            15..=19 => {
                // A new empty bucket (stays in the layout).
                let k = rng.range(-25, 25) as i32;
                if self.schema != CUSTOM_BUCKETS_SCHEMA || (0..=self.cv.len() as i32).contains(&k) {
                    self.pos.entry(k).or_insert(0);
                }
            }
            20..=24 => {
                // Empty buckets disappear (backward inserts).
                self.pos.retain(|_, v| *v != 0);
                self.neg.retain(|_, v| *v != 0);
            }
            25..=27 => {
                // A populated bucket disappears: a reset (or fine for gauges).
                if let Some(&k) = self.pos.keys().next() {
                    self.pos.remove(&k);
                }
            }
            28..=32 => {
                // Counter reset: everything drops.
                for v in self.pos.values_mut().chain(self.neg.values_mut()) {
                    *v /= 3;
                }
                self.zc /= 2;
            }
            33..=35 => {
                self.schema = SCHEMAS[rng.below(SCHEMAS.len() as u64) as usize];
                self.fix_custom(rng);
            }
            36..=37 => self.zt = ZTS[rng.below(ZTS.len() as u64) as usize],
            38..=39 if self.schema == CUSTOM_BUCKETS_SCHEMA => self.fix_custom(rng),
            40..=41 => {
                // One bucket goes down.
                if let Some(v) = self.pos.values_mut().next() {
                    *v = v.saturating_sub(1);
                }
            }
            42 => self.extra = self.extra.wrapping_add(1),
            43 if gauge => self.zc = self.zc.saturating_sub(3),
            _ => {}
        }
        if self.schema == CUSTOM_BUCKETS_SCHEMA {
            self.zt = 0.0;
        }
    }

    fn sum_value(&self, rng: &mut Rng) -> f64 {
        match rng.below(100) {
            0..=3 => f64::NAN,
            4 => f64::INFINITY,
            5 => f64::NEG_INFINITY,
            6 => f64::from_bits(0x7ff8_0000_dead_beef),
            7..=9 => f64::from_bits(STALE),
            10 => -0.0,
            _ => self.sum,
        }
    }

    fn int(&self, rng: &mut Rng, hint: CounterResetHint, sum: f64) -> Histogram {
        let odd = rng.chance(20);
        let side = |m: &BTreeMap<i32, u64>, rng: &mut Rng| {
            let idx: Vec<i32> = m.keys().copied().collect();
            let mut prev = 0i64;
            let deltas = m
                .values()
                .map(|&v| {
                    let d = (v as i64).wrapping_sub(prev);
                    prev = v as i64;
                    d
                })
                .collect();
            (spans_for(&idx, rng, odd), deltas)
        };
        let (ps, pb) = side(&self.pos, rng);
        let (ns, nb) = side(&self.neg, rng);
        Histogram {
            counter_reset_hint: hint,
            schema: self.schema,
            zero_threshold: self.zt,
            zero_count: self.zc,
            count: self.count(),
            sum,
            positive_spans: ps,
            negative_spans: ns,
            positive_buckets: pb,
            negative_buckets: nb,
            custom_values: self.cv.clone(),
        }
    }

    fn float(&self, rng: &mut Rng, hint: CounterResetHint, sum: f64) -> FloatHistogram {
        let odd = rng.chance(20);
        let frac = rng.chance(30);
        let f = |v: u64| {
            if frac {
                v as f64 * 0.5 + 0.125
            } else {
                v as f64
            }
        };
        let side = |m: &BTreeMap<i32, u64>, rng: &mut Rng| {
            let idx: Vec<i32> = m.keys().copied().collect();
            (
                spans_for(&idx, rng, odd),
                m.values().map(|&v| f(v)).collect::<Vec<_>>(),
            )
        };
        let (ps, pb) = side(&self.pos, rng);
        let (ns, nb) = side(&self.neg, rng);
        FloatHistogram {
            counter_reset_hint: hint,
            schema: self.schema,
            zero_threshold: self.zt,
            zero_count: f(self.zc),
            count: if rng.chance(3) {
                f64::NAN
            } else {
                f(self.count())
            },
            sum,
            positive_spans: ps,
            positive_buckets: pb,
            negative_spans: ns,
            negative_buckets: nb,
            custom_values: self.cv.clone(),
        }
    }
}

/// Parameters of one generated sequence.
fn seq_params(rng: &mut Rng) -> (usize, bool, bool) {
    let len = rng.range(1, 40) as usize;
    let gauge = rng.chance(20);
    let mixed = rng.chance(10);
    (len, gauge, mixed)
}

fn hint_for(rng: &mut Rng, gauge: bool, mixed: bool) -> CounterResetHint {
    if mixed && rng.chance(20) {
        return if gauge {
            CounterResetHint::Unknown
        } else {
            CounterResetHint::Gauge
        };
    }
    if gauge {
        return CounterResetHint::Gauge;
    }
    match rng.below(100) {
        0..=4 => CounterResetHint::CounterReset,
        5..=9 => CounterResetHint::NotCounterReset,
        _ => CounterResetHint::Unknown,
    }
}

fn timestamps(rng: &mut Rng) -> impl FnMut(&mut Rng) -> i64 {
    let mut t = match rng.below(10) {
        0 => i64::MIN + 1000,
        1 => -5_000_000,
        _ => 1_700_000_000_000,
    };
    move |rng: &mut Rng| {
        t = t.wrapping_add(match rng.below(20) {
            0 => rng.range(1, 1 << 40),
            1 => rng.range(1, 100),
            2..=4 => 15_000 + rng.range(-500, 500),
            _ => 15_000,
        });
        t
    }
}

/// A generated integer-histogram sequence.
pub fn gen_int(rng: &mut Rng) -> Vec<Op<Histogram>> {
    let (len, gauge, mixed) = seq_params(rng);
    let mut truth = Truth::new(rng);
    let mut ts = timestamps(rng);
    (0..len)
        .map(|_| {
            truth.evolve(rng, gauge);
            let hint = hint_for(rng, gauge, mixed);
            let sum = truth.sum_value(rng);
            Op {
                t: ts(rng),
                cut: rng.chance(8),
                append_only: rng.chance(4),
                h: truth.int(rng, hint, sum),
            }
        })
        .collect()
}

/// A generated float-histogram sequence.
pub fn gen_float(rng: &mut Rng) -> Vec<Op<FloatHistogram>> {
    let (len, gauge, mixed) = seq_params(rng);
    let mut truth = Truth::new(rng);
    let mut ts = timestamps(rng);
    (0..len)
        .map(|_| {
            truth.evolve(rng, gauge);
            let hint = hint_for(rng, gauge, mixed);
            let sum = truth.sum_value(rng);
            Op {
                t: ts(rng),
                cut: rng.chance(8),
                append_only: rng.chance(4),
                h: truth.float(rng, hint, sum),
            }
        })
        .collect()
}
