//! `--query.max-samples` counts what Prometheus's engine counts: for each
//! query below, the peak number of samples Prometheus v3.8 holds while
//! evaluating it (the figures its own engine tests assert, for the same
//! data). Cairn must answer with the limit set to that peak and refuse
//! with the limit one below it. (The cases with `@` check that a
//! step-invariant subexpression is counted once and then copied, as
//! Prometheus evaluates it.)

use std::sync::Arc;

use cairn_model::{Labels, Sample};
use cairn_promql::{Engine, EngineOptions, PromqlError};
use cairn_promqltest::series::{parse_series, SeqValue};
use cairn_storage::MemStorage;

/// One query: its text, (start, end, step) in seconds (an instant query
/// when `step` is 0), and Prometheus's peak.
type Case = (&'static str, (i64, i64, i64), usize);

/// The data of Prometheus's query-statistics test (samples every 10 s).
const STATS_DATA: &[&str] = &[
    "metricWith1SampleEvery10Seconds 1+1x100",
    r#"metricWith3SampleEvery10Seconds{a="1",b="1"} 1+1x100"#,
    r#"metricWith3SampleEvery10Seconds{a="2",b="2"} 1+1x100"#,
    r#"metricWith3SampleEvery10Seconds{a="3",b="2"} 1+1x100"#,
    "metricWith1HistogramEvery10Seconds {{schema:1 count:5 sum:20 buckets:[1 2 1 1]}}+{{schema:1 count:10 sum:5 buckets:[1 2 3 4]}}x100",
];

const STATS_CASES: &[Case] = &[
    ("1", (21, 21, 0), 1),
    ("metricWith1SampleEvery10Seconds", (21, 21, 0), 1),
    ("metricWith1HistogramEvery10Seconds", (21, 21, 0), 13),
    ("timestamp(metricWith1SampleEvery10Seconds)", (21, 21, 0), 2),
    ("timestamp(metricWith1HistogramEvery10Seconds)", (21, 21, 0), 2),
    ("metricWith1SampleEvery10Seconds", (22, 22, 0), 1),
    ("metricWith1SampleEvery10Seconds offset 10s", (21, 21, 0), 1),
    ("metricWith1SampleEvery10Seconds @ 15", (21, 21, 0), 1),
    (r#"metricWith3SampleEvery10Seconds{a="1"}"#, (21, 21, 0), 1),
    (r#"metricWith3SampleEvery10Seconds{a="1"} @ 19"#, (21, 21, 0), 1),
    (r#"metricWith3SampleEvery10Seconds{a="1"}[20s] @ 19"#, (21, 21, 0), 2),
    ("metricWith3SampleEvery10Seconds", (21, 21, 0), 3),
    ("metricWith1SampleEvery10Seconds[60s]", (201, 201, 0), 6),
    ("metricWith1HistogramEvery10Seconds[60s]", (201, 201, 0), 78),
    ("max_over_time(metricWith1SampleEvery10Seconds[60s])[20s:5s]", (201, 201, 0), 10),
    ("max_over_time(metricWith1SampleEvery10Seconds[61s])[20s:5s]", (201, 201, 0), 11),
    ("max_over_time(metricWith1HistogramEvery10Seconds[60s])[20s:5s]", (201, 201, 0), 78),
    ("metricWith1SampleEvery10Seconds[60s] @ 30", (201, 201, 0), 4),
    ("metricWith1HistogramEvery10Seconds[60s] @ 30", (201, 201, 0), 52),
    ("sum(max_over_time(metricWith3SampleEvery10Seconds[60s] @ 30))", (201, 201, 0), 7),
    ("sum by (b) (max_over_time(metricWith3SampleEvery10Seconds[60s] @ 30))", (201, 201, 0), 7),
    ("metricWith1SampleEvery10Seconds[60s] offset 10s", (201, 201, 0), 6),
    ("metricWith3SampleEvery10Seconds[60s]", (201, 201, 0), 18),
    ("max_over_time(metricWith1SampleEvery10Seconds[60s])", (201, 201, 0), 7),
    ("absent_over_time(metricWith1SampleEvery10Seconds[60s])", (201, 201, 0), 7),
    ("max_over_time(metricWith3SampleEvery10Seconds[60s])", (201, 201, 0), 9),
    ("metricWith1SampleEvery10Seconds[60s:5s]", (201, 201, 0), 12),
    ("metricWith1SampleEvery10Seconds[60s:5s] offset 10s", (201, 201, 0), 12),
    ("max_over_time(metricWith3SampleEvery10Seconds[60s:5s])", (201, 201, 0), 51),
    ("sum(max_over_time(metricWith3SampleEvery10Seconds[60s:5s])) + sum(max_over_time(metricWith3SampleEvery10Seconds[60s:5s]))", (201, 201, 0), 52),
    (r#"metricWith3SampleEvery10Seconds{a="1"}"#, (201, 220, 5), 4),
    (r#"metricWith3SampleEvery10Seconds{a="1"}"#, (204, 223, 5), 4),
    ("metricWith1HistogramEvery10Seconds", (204, 223, 5), 52),
    ("timestamp(metricWith1SampleEvery10Seconds)", (201, 220, 5), 5),
    ("timestamp(metricWith1HistogramEvery10Seconds)", (201, 220, 5), 5),
    (r#"max_over_time(metricWith3SampleEvery10Seconds{a="1"}[10s])"#, (991, 1021, 10), 2),
    (r#"metricWith3SampleEvery10Seconds{a="1"} offset 10s"#, (201, 220, 5), 4),
    ("max_over_time(metricWith3SampleEvery10Seconds[60s] @ 30)", (201, 220, 5), 12),
    ("metricWith3SampleEvery10Seconds", (201, 220, 5), 12),
    ("max_over_time(metricWith3SampleEvery10Seconds[60s])", (201, 220, 5), 18),
    ("max_over_time(metricWith3SampleEvery10Seconds[60s:5s])", (201, 216, 5), 69),
    ("max_over_time(metricWith3SampleEvery10Seconds[60s:5s])", (201, 220, 5), 69),
    ("max_over_time(metricWith1SampleEvery10Seconds[60s:5s])", (201, 220, 5), 31),
    ("sum by (b) (max_over_time(metricWith1SampleEvery10Seconds[60s:5s]))", (201, 220, 5), 31),
    ("sum(max_over_time(metricWith3SampleEvery10Seconds[60s:5s])) + sum(max_over_time(metricWith3SampleEvery10Seconds[60s:5s]))", (201, 220, 5), 73),
    ("sum(max_over_time(metricWith3SampleEvery10Seconds[60s:5s])) + sum(max_over_time(metricWith1SampleEvery10Seconds[60s:5s]))", (201, 216, 5), 69),
    ("sum(max_over_time(metricWith3SampleEvery10Seconds[60s:5s])) + sum(max_over_time(metricWith1SampleEvery10Seconds[60s:5s]))", (201, 220, 5), 69),
    ("max_over_time(metricWith1SampleEvery10Seconds[20s:10s])", (201, 201, 0), 5),
    ("sum_over_time(metricWith1SampleEvery10Seconds[30s:30s])", (90, 90, 0), 3),
    ("max_over_time(metricWith1SampleEvery10Seconds[30s:2m])", (240, 240, 0), 3),
    ("max_over_time(metricWith1SampleEvery10Seconds[30s:10s])", (201, 231, 30), 11),
    ("max_over_time(metricWith1SampleEvery10Seconds[20s:10s])", (201, 261, 10), 17),
    ("max_over_time(metricWith1SampleEvery10Seconds[30s:10s])", (201, 261, 60), 14),
    ("histogram_count(max_over_time(metricWith1HistogramEvery10Seconds[20s:10s]))", (201, 201, 0), 52),
    ("avg_over_time(metricWith1HistogramEvery10Seconds[2m:1m])", (120, 240, 60), 117),
    ("max_over_time(metricWith3SampleEvery10Seconds[60s:10s])", (200, 400, 30), 99),
    ("predict_linear(metricWith1SampleEvery10Seconds[60s] @ 100, 60)", (100, 300, 100), 12),
    ("sum_over_time(metricWith3SampleEvery10Seconds[20s:10s] @ 200)", (250, 250, 0), 11),
    ("sum_over_time(metricWith1SampleEvery10Seconds[20s:10s] offset 1m)", (240, 240, 0), 5),
    ("sum_over_time(metricWith3SampleEvery10Seconds[1m:10s] @ 200 offset 1m)", (300, 300, 0), 27),
    ("sum_over_time(max_over_time(metricWith3SampleEvery10Seconds[60s] @ 300)[5m:1m] @ 600)[10m:2m]", (800, 800, 0), 23),
    ("rate(sum_over_time(metricWith1SampleEvery10Seconds[30s])[1m:30s])", (240, 240, 0), 5),
];

/// The data of Prometheus's max-samples test.
const LIMIT_DATA: &[&str] = &[
    "metric 1+1x100",
    r#"bigmetric{a="1"} 1+1x100"#,
    r#"bigmetric{a="2"} 1+1x100"#,
    "metricWith1HistogramEvery10Seconds {{schema:1 count:5 sum:20 buckets:[1 2 1 1]}}+{{schema:1 count:10 sum:5 buckets:[1 2 3 4]}}x100",
];

const LIMIT_CASES: &[Case] = &[
    ("1", (1, 1, 0), 1),
    ("metric", (1, 1, 0), 1),
    ("metric[20s]", (10, 10, 0), 2),
    ("rate(metric[20s])", (10, 10, 0), 3),
    ("metric[20s:5s]", (10, 10, 0), 3),
    ("metric[20s] @ 10", (0, 0, 0), 2),
    ("1", (0, 2, 1), 3),
    ("metric", (0, 2, 1), 3),
    ("metric", (0, 10, 5), 3),
    ("rate(bigmetric[1s])", (0, 10, 5), 1),
    ("metric @ 10", (0, 10, 5), 3),
    ("rate(bigmetric[10s:1s] @ 10)", (0, 10, 5), 32),
    (
        "rate(bigmetric[10s:1s] @ 10) + rate(bigmetric[10s:1s] @ 30)",
        (0, 10, 5),
        34,
    ),
    (
        "rate(bigmetric[10s:1s]) + rate(bigmetric[10s:1s] @ 30)",
        (10, 20, 5),
        56,
    ),
    (
        "rate(rate(bigmetric[10:1s] @ 10)[100s:25s] @ 1000)[100s:20s] @ 2000",
        (10, 10, 0),
        32,
    ),
    (
        "rate(rate(bigmetric[10s:1s] @ 10)[100s:25s] @ 1000)[17s:1s] @ 2000",
        (10, 10, 0),
        34,
    ),
    (
        "max_over_time(metricWith1HistogramEvery10Seconds[61s])[20s:5s]",
        (201, 201, 0),
        91,
    ),
];

fn store(lines: &[&str]) -> Result<MemStorage, String> {
    let st = MemStorage::new();
    for l in lines {
        let (labels, vals): (Labels, Vec<SeqValue>) =
            parse_series(l).map_err(|e| format!("{l}: {e:?}"))?;
        let mut floats = Vec::new();
        let mut hists = Vec::new();
        for (i, v) in vals.into_iter().enumerate() {
            let t = i as i64 * 10_000;
            match v {
                SeqValue::Value(f) => floats.push(Sample::new(t, f)),
                SeqValue::Histogram(h) => hists.push((t, Arc::clone(&h))),
                SeqValue::Omitted => {}
            }
        }
        if hists.is_empty() {
            st.add(labels, floats);
        } else {
            st.add_float_histograms(labels, hists);
        }
    }
    Ok(st)
}

/// Whether the query runs under `max`: `Ok(true)` when it answers,
/// `Ok(false)` when it is refused for the sample limit.
fn fits(
    st: &MemStorage,
    q: &str,
    (start, end, step): (i64, i64, i64),
    max: usize,
) -> Result<bool, String> {
    let e = Engine::new(EngineOptions {
        max_samples: max,
        ..cairn_promqltest::test_engine_options()
    });
    let r = if step == 0 {
        e.instant_query(st, q, start * 1000)
    } else {
        e.range_query(st, q, start * 1000, end * 1000, step * 1000)
    };
    match r {
        Ok(_) => Ok(true),
        Err(PromqlError::TooManySamples) => Ok(false),
        Err(other) => Err(format!("{other}")),
    }
}

/// Cairn's peak for a query: the smallest limit it answers under.
fn peak(st: &MemStorage, q: &str, r: (i64, i64, i64)) -> Result<usize, String> {
    let (mut lo, mut hi) = (0usize, 1usize);
    while !fits(st, q, r, hi)? {
        lo = hi;
        hi *= 2;
        if hi > 1 << 20 {
            return Err("no limit fits".into());
        }
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if fits(st, q, r, mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

#[test]
fn sample_limit_peaks_equal_prometheus() -> Result<(), String> {
    let mut wrong = Vec::new();
    for (data, cases) in [(STATS_DATA, STATS_CASES), (LIMIT_DATA, LIMIT_CASES)] {
        let st = store(data)?;
        for &(q, r, want) in cases {
            match peak(&st, q, r) {
                Ok(got) if got == want => {}
                Ok(got) => wrong.push(format!("{q} {r:?}: peak {got}, want {want}")),
                Err(e) => wrong.push(format!("{q} {r:?}: {e}")),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    Ok(())
}
