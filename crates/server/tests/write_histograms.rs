//! Native histograms over HTTP: stored histograms counted in
//! `X-Prometheus-Remote-Write-Histograms-Written`, invalid ones refused
//! with a 400 naming the series and the reason and counted under
//! `reason="invalid_histogram"`, and what was stored read back.

#[path = "support/harness.rs"]
mod harness;

use std::sync::Arc;

use cairn_model::{Matcher, Sample};
use cairn_proto::histogram::{BucketSpan, Count, Histogram, ZeroCount};
use cairn_proto::write_v2;
use cairn_proto::Message;
use cairn_server::ServerConfig;
use cairn_storage::{MemStorage, Queryable, SelectHints, ValueType};
use harness::*;

fn int_hist(t: i64, count: u64) -> Histogram {
    Histogram {
        count: Some(Count::CountInt(count)),
        sum: 3.0,
        zero_threshold: 0.001,
        zero_count: Some(ZeroCount::ZeroCountInt(1)),
        positive_spans: vec![BucketSpan {
            offset: 0,
            length: 2,
        }],
        positive_deltas: vec![1, 1],
        timestamp: t,
        ..Default::default()
    }
}

fn float_hist(t: i64) -> Histogram {
    Histogram {
        count: Some(Count::CountFloat(2.5)),
        sum: 1.0,
        schema: -53,
        positive_spans: vec![BucketSpan {
            offset: 0,
            length: 2,
        }],
        positive_counts: vec![0.5, 2.0],
        custom_values: vec![1.0],
        timestamp: t,
        ..Default::default()
    }
}

#[tokio::test]
async fn v2_histograms_are_stored_counted_and_refused_by_name() {
    let st = MemStorage::new();
    let srv = TestServer::start(Arc::new(st.clone()), ServerConfig::default()).await;
    let now = now_ms();
    let mut b = write_v2::SymbolsBuilder::new();
    let good = write_v2::TimeSeries {
        labels_refs: b.label_refs([("__name__", "lat")]),
        samples: vec![write_v2::Sample {
            value: 1.0,
            timestamp: now,
            start_timestamp: 0,
        }],
        // Count 4 = zero 1 + buckets 1 + 2.
        histograms: vec![int_hist(now + 1, 4), float_hist(now + 2)],
        ..Default::default()
    };
    let bad = write_v2::TimeSeries {
        labels_refs: b.label_refs([("__name__", "bad")]),
        histograms: vec![int_hist(now, 5)],
        ..Default::default()
    };
    let body = write_v2::Request {
        symbols: b.build(),
        timeseries: vec![good, bad],
    }
    .encode_to_vec();
    let r = post_write(srv.addr, V2_CT, cairn_proto::snappy::compress(&body)).await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.text());
    assert_eq!(
        r.header("x-prometheus-remote-write-samples-written"),
        Some("1")
    );
    assert_eq!(
        r.header("x-prometheus-remote-write-histograms-written"),
        Some("2")
    );
    assert!(
        r.text().contains(&format!(
            "invalid native histogram at {now}: 4 observations found in buckets, but the Count field is 5"
        )) && r.text().contains("for series {__name__=\"bad\"}"),
        "{}",
        r.text()
    );

    let m = send(srv.addr, "GET", "/metrics", &[], Vec::new()).await;
    let text = m.text();
    assert!(
        text.contains(
            "cairn_remote_write_samples_rejected_total{reason=\"invalid_histogram\"} 1\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("cairn_remote_write_histograms_appended_total 2\n"),
        "{text}"
    );

    // What was stored reads back in order: the float, then both histograms.
    let q = st.querier(now - 1, now + 10).unwrap();
    let s = q
        .select(
            &SelectHints::default(),
            &[Matcher::equal("__name__", "lat")],
        )
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mut it = s.iter();
    assert_eq!(it.next(), ValueType::Float);
    assert_eq!(Sample::new(it.at().0, it.at().1), Sample::new(now, 1.0));
    assert_eq!(it.next(), ValueType::FloatHistogram);
    let (t, h) = it.at_float_histogram().unwrap();
    assert_eq!(
        (t, h.count, h.positive_buckets.clone()),
        (now + 1, 4.0, vec![1.0, 2.0])
    );
    assert_eq!(it.next(), ValueType::FloatHistogram);
    let (t, h) = it.at_float_histogram().unwrap();
    assert_eq!(
        (t, h.schema, h.custom_values.clone()),
        (now + 2, -53, vec![1.0])
    );
    assert_eq!(it.next(), ValueType::None);
    srv.stop().await;
}

#[tokio::test]
async fn v1_histograms_only_request_gets_204() {
    let st = MemStorage::new();
    let srv = TestServer::start(Arc::new(st.clone()), ServerConfig::default()).await;
    let now = now_ms();
    let mut s = series(&[("__name__", "lat")], &[]);
    s.histograms = vec![int_hist(now, 4), float_hist(now + 1)];
    let r = post_write(srv.addr, V1_CT, v1_body(vec![s])).await;
    assert_eq!(r.status.as_u16(), 204, "{}", r.text());
    assert_eq!(st.num_series(), 1);
    srv.stop().await;
}
