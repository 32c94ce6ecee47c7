//! A direct protobuf encoder for `prometheus.WriteRequest` (remote write
//! 1.0): one `TimeSeries` per sample, as Prometheus's sender does.
//!
//! Field numbers: WriteRequest.timeseries = 1; TimeSeries.labels = 1,
//! samples = 2; Label.name = 1, value = 2; Sample.value = 1 (double),
//! timestamp = 2 (int64).

use cairn_model::Labels;

/// Appends `v` as a protobuf varint.
pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn uvarint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn label_len(name: &str, value: &str) -> usize {
    1 + uvarint_len(name.len() as u64)
        + name.len()
        + 1
        + uvarint_len(value.len() as u64)
        + value.len()
}

fn sample_len(t: i64) -> usize {
    1 + 8 + 1 + uvarint_len(t as u64)
}

/// Encodes a WriteRequest holding one TimeSeries per `(labels, t, v)`.
pub fn encode_write_request(series: &[(Labels, i64, f64)], buf: &mut Vec<u8>) {
    for (labels, t, v) in series {
        let mut ts_len = 0;
        for l in labels.iter() {
            let n = label_len(l.name, l.value);
            ts_len += 1 + uvarint_len(n as u64) + n;
        }
        let sl = sample_len(*t);
        ts_len += 1 + uvarint_len(sl as u64) + sl;
        buf.push(0x0a);
        put_uvarint(buf, ts_len as u64);
        for l in labels.iter() {
            buf.push(0x0a);
            put_uvarint(buf, label_len(l.name, l.value) as u64);
            buf.push(0x0a);
            put_uvarint(buf, l.name.len() as u64);
            buf.extend_from_slice(l.name.as_bytes());
            buf.push(0x12);
            put_uvarint(buf, l.value.len() as u64);
            buf.extend_from_slice(l.value.as_bytes());
        }
        buf.push(0x12);
        put_uvarint(buf, sl as u64);
        buf.push(0x09);
        buf.extend_from_slice(&v.to_le_bytes());
        buf.push(0x10);
        put_uvarint(buf, *t as u64);
    }
}
