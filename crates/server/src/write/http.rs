//! The HTTP side of remote write: which protocol a request speaks
//! (`Content-Type`, 415 when unknown) and which encodings are accepted
//! (`Content-Encoding`: snappy or none).

use crate::ServerError;

/// Which remote write message a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireVersion {
    /// `prometheus.WriteRequest`.
    V1,
    /// `io.prometheus.write.v2.Request`.
    V2,
}

/// Picks the message type from a `Content-Type` header. A missing header
/// means 1.0, as Prometheus assumes for old senders.
pub fn parse_content_type(ct: Option<&str>) -> Result<WireVersion, ServerError> {
    let ct = ct.map(str::trim).unwrap_or("");
    if ct.is_empty() {
        return Ok(WireVersion::V1);
    }
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(ServerError::UnsupportedMediaType(format!(
            "unsupported content type {ct:?}: expected application/x-protobuf"
        )));
    }
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            return Err(ServerError::UnsupportedMediaType(format!(
                "malformed content type parameter {p:?} in {ct:?}"
            )));
        };
        if k.trim().eq_ignore_ascii_case("proto") {
            return match v.trim().trim_matches('"') {
                "prometheus.WriteRequest" => Ok(WireVersion::V1),
                "io.prometheus.write.v2.Request" => Ok(WireVersion::V2),
                other => Err(ServerError::UnsupportedMediaType(format!(
                    "unsupported protobuf message {other:?}: accepted are prometheus.WriteRequest and io.prometheus.write.v2.Request"
                ))),
            };
        }
    }
    Ok(WireVersion::V1)
}

/// Accepts `snappy` or no `Content-Encoding`.
pub fn check_content_encoding(enc: Option<&str>) -> Result<(), ServerError> {
    match enc.map(str::trim) {
        None | Some("") => Ok(()),
        Some(e) if e.eq_ignore_ascii_case("snappy") => Ok(()),
        Some(e) => Err(ServerError::UnsupportedMediaType(format!(
            "unsupported content encoding {e:?}: only snappy is accepted"
        ))),
    }
}
