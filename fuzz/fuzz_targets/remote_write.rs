//! Fuzzes the remote write request path: content-type selection, snappy,
//! protobuf decoding (1.0 and 2.0) and label validation, with storage
//! replaced by a discarding appender. The first input byte picks the
//! protocol (and whether the body is snappy-compressed by the harness, so
//! the fuzzer also reaches the protobuf decoder); the rest is the body.
//! Any input must produce `Ok` or `Err`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let ct = match sel & 3 {
        0 => "application/x-protobuf",
        1 => "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        2 => "application/x-protobuf;proto=prometheus.WriteRequest",
        _ => "text/plain",
    };
    let cfg = cairn_server::ServerConfig {
        max_body_bytes: 1 << 20,
        ..cairn_server::ServerConfig::default()
    };
    let compressed;
    let body = if sel & 4 != 0 {
        compressed = cairn_proto::snappy::compress(rest);
        &compressed[..]
    } else {
        rest
    };
    let _ = cairn_server::write::check_write_body(Some(ct), Some("snappy"), body, &cfg);
    // The 1.0 reader's exemplar decoder on every series of the body.
    let mut view = cairn_proto::write::WriteRequestView::new(rest);
    let mut exs = Vec::new();
    while let Some(Ok(cairn_proto::write::Item::Series(b))) = view.next() {
        let _ = cairn_proto::write::decode_series_exemplars(b, &mut exs);
    }
    // Streamed read frames share the decoder crate.
    let mut r = cairn_proto::frame::FrameReader::new(rest, 1 << 20);
    while let Some(Ok(_)) = r.next() {}
});
