//! Helpers shared by the load generator's integration tests: decoding the
//! requests it sends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: failing means panicking
#![allow(dead_code)]

use cairn_proto::write::{TimeSeries, WriteRequest};

/// One snappy-compressed remote-write 1.0 request body, decoded.
pub fn decode_request(body: &[u8]) -> WriteRequest {
    let raw = snap::raw::Decoder::new().decompress_vec(body).unwrap();
    <WriteRequest as cairn_proto::Message>::decode(&raw[..]).unwrap()
}

/// A series' identity: its labels as `name=value,` pairs in wire order.
pub fn series_key(ts: &TimeSeries) -> String {
    ts.labels
        .iter()
        .map(|l| {
            format!(
                "{}={},",
                String::from_utf8_lossy(&l.name),
                String::from_utf8_lossy(&l.value)
            )
        })
        .collect()
}
