//! Fuzzes the OTLP receiver: header checks, gzip, the protobuf decoder and
//! the translation to Prometheus series, with storage replaced by a
//! discarding appender. The first input byte picks gzip (bit 0) and
//! OTLP/JSON (bit 1) or protobuf; the rest is the body. Any input must produce `Ok` or `Err`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let cfg = cairn_server::ServerConfig {
        max_body_bytes: 1 << 20,
        ..cairn_server::ServerConfig::default()
    };
    let enc = (sel & 1 == 1).then_some("gzip");
    let ct = if sel & 2 == 2 {
        "application/json"
    } else {
        "application/x-protobuf"
    };
    if let Ok(req) = cairn_server::otlp::decode_request(Some(ct), enc, body, &cfg) {
        let mut app = cairn_server::write::DiscardAppender;
        let _ = cairn_server::otlp::ingest(&req, &cfg, &mut app, 1_700_000_000_000);
    }
});
