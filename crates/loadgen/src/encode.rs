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
/// The straightforward form of what the load generator sends: it encodes
/// with [`encode_series`], which gives the same bytes.
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

/// Splits a string off the front of a [`Labels`] encoding: its uvarint
/// length and bytes, together, and the rest.
fn split_string(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut len = 0u64;
    let mut shift = 0;
    for (i, &x) in b.iter().enumerate().take(10) {
        len |= u64::from(x & 0x7f) << shift;
        shift += 7;
        if x < 0x80 {
            let end = (i + 1).checked_add(usize::try_from(len).ok()?)?;
            return Some((b.get(..end)?, b.get(end..)?));
        }
    }
    None
}

/// Appends one WriteRequest.timeseries field, the series with labels
/// `labels` (a [`Labels::encoded`]) and one sample: a request is such
/// fields back to back. The same bytes as [`encode_write_request`] in one
/// pass: a protobuf `Label` is `0x0a`, the name as [`Labels`] encodes it
/// (uvarint length, bytes), `0x12` and the value likewise, so the labels
/// are copied without being decoded.
pub fn encode_series(labels: &[u8], t: i64, v: f64, buf: &mut Vec<u8>) {
    buf.push(0x0a);
    // Room for the series' length, which is 128 to 16383 bytes for most
    // series; moved below when it is not.
    let at = buf.len();
    buf.extend_from_slice(&[0, 0]);
    let mut rest = labels;
    while let Some((name, r)) = split_string(rest) {
        let Some((value, r)) = split_string(r) else {
            break;
        };
        rest = r;
        buf.push(0x0a);
        put_uvarint(buf, (2 + name.len() + value.len()) as u64);
        buf.push(0x0a);
        buf.extend_from_slice(name);
        buf.push(0x12);
        buf.extend_from_slice(value);
    }
    let sl = sample_len(t);
    buf.push(0x12);
    put_uvarint(buf, sl as u64);
    buf.push(0x09);
    buf.extend_from_slice(&v.to_le_bytes());
    buf.push(0x10);
    put_uvarint(buf, t as u64);
    let len = buf.len() - at - 2;
    if (0x80..0x4000).contains(&len) {
        if let Some(dst) = buf.get_mut(at..at + 2) {
            dst.copy_from_slice(&[(len as u8) | 0x80, (len >> 7) as u8]);
        }
    } else {
        let mut prefix = [0u8; 10];
        let (mut n, mut x) = (0, len);
        for b in prefix.iter_mut() {
            n += 1;
            if x < 0x80 {
                *b = x as u8;
                break;
            }
            *b = (x as u8) | 0x80;
            x >>= 7;
        }
        buf.splice(at..at + 2, prefix.into_iter().take(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_gpusim::ClusterSpec;

    #[test]
    fn encode_series_matches_encode_write_request() {
        let spec = ClusterSpec::default();
        let mut all = Vec::new();
        spec.node_series(3, 7, &mut all);
        let mut series: Vec<(Labels, i64, f64)> = all
            .iter()
            .enumerate()
            .map(|(i, s)| {
                (
                    s.labels.clone(),
                    1_700_000_000_000 + i as i64,
                    i as f64 * 0.5,
                )
            })
            .collect();
        // Short, empty and long label sets: one-, two- and three-byte lengths.
        let long = "x".repeat(20_000);
        series.push((Labels::empty(), -1, 0.0));
        series.push((Labels::from_pairs([("a", "b")]), 0, f64::NAN));
        series.push((Labels::from_pairs([("a", long.as_str())]), i64::MAX, 1.0));
        let mut want = Vec::new();
        encode_write_request(&series, &mut want);
        let mut got = Vec::new();
        for (l, t, v) in &series {
            encode_series(l.encoded(), *t, *v, &mut got);
        }
        assert_eq!(got, want);
    }
}
