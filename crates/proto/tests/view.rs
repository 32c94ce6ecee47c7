//! The zero-copy 1.0 reader agrees with the prost types on every message
//! prost produces, and never panics on arbitrary bytes.

use bytes::Bytes;
use cairn_proto::histogram::Histogram;
use cairn_proto::write::{
    decode_series, decode_series_exemplars, decode_series_samples, Exemplar, Item, Label,
    MetricMetadata, Sample, TimeSeries, WriteRequest, WriteRequestView,
};
use cairn_proto::Message;
use proptest::prelude::*;

fn series_strategy() -> impl Strategy<Value = TimeSeries> {
    (
        proptest::collection::vec(("[a-z_]{0,6}", ".{0,10}"), 0..6),
        proptest::collection::vec((any::<i64>(), any::<u64>()), 0..6),
        proptest::collection::vec(
            (
                proptest::collection::vec(("[a-z_]{0,6}", ".{0,10}"), 0..3),
                any::<u64>(),
                any::<i64>(),
            ),
            0..3,
        ),
        0usize..2,
    )
        .prop_map(|(labels, samples, ex, hist)| TimeSeries {
            labels: labels.iter().map(|(n, v)| Label::new(n, v)).collect(),
            samples: samples
                .into_iter()
                .map(|(timestamp, bits)| Sample {
                    value: f64::from_bits(bits),
                    timestamp,
                })
                .collect(),
            exemplars: ex
                .into_iter()
                .map(|(labels, bits, timestamp)| Exemplar {
                    labels: labels.iter().map(|(n, v)| Label::new(n, v)).collect(),
                    value: f64::from_bits(bits),
                    timestamp,
                })
                .collect(),
            histograms: (0..hist)
                .map(|_| Histogram {
                    timestamp: 5,
                    ..Default::default()
                })
                .collect(),
        })
}

proptest! {
    #[test]
    fn agrees_with_prost(
        series in proptest::collection::vec(series_strategy(), 0..5),
        meta in proptest::collection::vec((0i32..8, "[a-z]{0,5}", ".{0,8}", "[a-z]{0,3}"), 0..3),
    ) {
        let req = WriteRequest {
            timeseries: series,
            metadata: meta.iter().map(|(t, n, h, u)| MetricMetadata {
                r#type: *t,
                metric_family_name: Bytes::copy_from_slice(n.as_bytes()),
                help: Bytes::copy_from_slice(h.as_bytes()),
                unit: Bytes::copy_from_slice(u.as_bytes()),
            }).collect(),
        };
        let buf = req.encode_to_vec();
        let mut view = WriteRequestView::new(&buf);
        let (mut labels, mut samples) = (Vec::new(), Vec::new());
        let (mut si, mut mi) = (0, 0);
        while let Some(item) = view.next() {
            match item.unwrap() {
                Item::Series(b) => {
                    // The label-less decoder agrees on samples and counts, and
                    // its label run holds exactly the labels.
                    let mut s2 = Vec::new();
                    let raw = decode_series_samples(b, &mut s2).unwrap();
                    let c = decode_series(b, &mut labels, &mut samples).unwrap();
                    let g2: Vec<(i64, u64)> = s2.iter().map(|&(t, v)| (t, v.to_bits())).collect();
                    let g1: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
                    prop_assert_eq!(g2, g1);
                    prop_assert_eq!(raw.counts, c);
                    let run = raw.labels.expect("prost writes label fields together");
                    let mut run_labels = Vec::new();
                    let mut none = Vec::new();
                    decode_series(run, &mut run_labels, &mut none).unwrap();
                    prop_assert_eq!(&run_labels, &labels);
                    prop_assert!(none.is_empty());
                    let want = &req.timeseries[si];
                    let wl: Vec<(&[u8], &[u8])> = want.labels.iter().map(|l| (&l.name[..], &l.value[..])).collect();
                    prop_assert_eq!(&labels, &wl);
                    let ws: Vec<(i64, u64)> = want.samples.iter().map(|s| (s.timestamp, s.value.to_bits())).collect();
                    let gs: Vec<(i64, u64)> = samples.iter().map(|&(t, v)| (t, v.to_bits())).collect();
                    prop_assert_eq!(gs, ws);
                    prop_assert_eq!(c.exemplars, want.exemplars.len());
                    let mut exs = Vec::new();
                    decode_series_exemplars(b, &mut exs).unwrap();
                    prop_assert_eq!(exs.len(), want.exemplars.len());
                    for (g, w) in exs.iter().zip(&want.exemplars) {
                        let wl: Vec<(&[u8], &[u8])> = w.labels.iter().map(|l| (&l.name[..], &l.value[..])).collect();
                        prop_assert_eq!(&g.labels, &wl);
                        prop_assert_eq!(g.value.to_bits(), w.value.to_bits());
                        prop_assert_eq!(g.timestamp, w.timestamp);
                    }
                    prop_assert_eq!(c.histograms, want.histograms.len());
                    si += 1;
                }
                Item::Metadata(m) => {
                    let want = &req.metadata[mi];
                    prop_assert_eq!(m.r#type, want.r#type);
                    prop_assert_eq!(m.metric_family_name, &want.metric_family_name[..]);
                    prop_assert_eq!(m.help, &want.help[..]);
                    prop_assert_eq!(m.unit, &want.unit[..]);
                    mi += 1;
                }
            }
        }
        prop_assert_eq!(si, req.timeseries.len());
        prop_assert_eq!(mi, req.metadata.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_prost_valid_implies_view_valid(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let prost_ok = WriteRequest::decode(&data[..]).is_ok();
        let mut view = WriteRequestView::new(&data);
        let (mut labels, mut samples) = (Vec::new(), Vec::new());
        let mut ok = true;
        while let Some(item) = view.next() {
            match item {
                Ok(Item::Series(b)) => {
                    let full = decode_series(b, &mut labels, &mut samples);
                    let lazy = decode_series_samples(b, &mut samples);
                    // Whatever the full decoder accepts, the lazy one does.
                    prop_assert!(full.is_err() || lazy.is_ok());
                    // The exemplar decoder answers, and accepts what prost does.
                    let mut exs = Vec::new();
                    let ex = decode_series_exemplars(b, &mut exs);
                    if prost_ok {
                        prop_assert!(ex.is_ok(), "prost accepted exemplars the view refused");
                    }
                    if full.is_err() {
                        ok = false;
                    }
                }
                Ok(Item::Metadata(_)) => {}
                Err(_) => ok = false,
            }
        }
        if prost_ok {
            prop_assert!(ok, "prost accepted what the view refused");
        }
    }
}

#[test]
fn skips_unknown_fields_and_groups_like_prost() {
    // field 9 as a group holding a varint, field 7 as fixed32, then a
    // series {labels [{a,b}]}.
    let series = [0x0a, 6, 0x0a, 1, b'a', 0x12, 1, b'b'];
    let mut buf = vec![
        (9 << 3) | 3,
        1 << 3,
        5,
        (9 << 3) | 4,
        (7 << 3) | 5,
        1,
        2,
        3,
        4,
        0x0a,
        8,
    ];
    buf.extend_from_slice(&series);
    let prost = WriteRequest::decode(&buf[..]).unwrap();
    assert_eq!(prost.timeseries[0].labels, vec![Label::new("a", "b")]);
    let mut view = WriteRequestView::new(&buf);
    let Some(Ok(Item::Series(b))) = view.next() else {
        panic!("no series")
    };
    let (mut l, mut s) = (Vec::new(), Vec::new());
    decode_series(b, &mut l, &mut s).unwrap();
    assert_eq!(l, vec![(&b"a"[..], &b"b"[..])]);
    assert!(view.next().is_none());
    // A stray end-group is an error for both.
    let bad = [(9 << 3) | 4];
    assert!(WriteRequest::decode(&bad[..]).is_err());
    assert!(matches!(WriteRequestView::new(&bad).next(), Some(Err(_))));
}

#[test]
fn label_run_is_none_when_other_fields_interleave() {
    // TimeSeries{ label a=b, sample, label c=d }: a valid message whose label
    // fields are not one run.
    let label = |n: &[u8], v: &[u8]| {
        let mut m = vec![0x0a, n.len() as u8];
        m.extend_from_slice(n);
        m.push(0x12);
        m.push(v.len() as u8);
        m.extend_from_slice(v);
        let mut f = vec![0x0a, m.len() as u8];
        f.extend(m);
        f
    };
    let mut b = label(b"a", b"b");
    b.extend([0x12, 11, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 5]);
    b.extend(label(b"c", b"d"));
    let mut samples = Vec::new();
    let raw = decode_series_samples(&b, &mut samples).unwrap();
    assert_eq!(raw.labels, None);
    assert_eq!(samples, vec![(5, 1.0)]);
    // Without the interleaved sample the run is the label bytes themselves.
    let mut c = label(b"a", b"b");
    c.extend(label(b"c", b"d"));
    let mut d = c.clone();
    d.extend([0x12, 11, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 5]);
    let raw = decode_series_samples(&d, &mut samples).unwrap();
    assert_eq!(raw.labels, Some(&c[..]));
}
