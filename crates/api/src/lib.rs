//! Prometheus's HTTP query API as plain functions: a request (method, path,
//! parameters from the query string and a form body) goes in, a status,
//! content type and body come out. The HTTP server routes to it; the PromQL
//! engine plugs in through [`QueryEngine`].
//!
//! JSON shapes, error types and status codes follow Prometheus's
//! `web/api/v1`: `{"status":"success","data":...}` or
//! `{"status":"error","errorType":"bad_data","error":"..."}` with 400 for
//! `bad_data`, 422 for `execution`, 503 for `timeout`, 499 for `canceled`,
//! 500 for `internal`, 404 for `not_found`.
//!
//! Layout: `routes` (the route table and [`Api`]), `handlers/` (one module
//! per group of endpoints), `reply` (success and failure to status code
//! and envelope), `params` (parameter syntax), `json` (the encoder),
//! `sources` (what the binary plugs in besides storage and the engine),
//! `config`.

mod config;
mod engine;
mod handlers;
mod json;
mod params;
mod reply;
mod routes;
mod selectors;
mod sources;

pub use config::{ApiConfig, BuildInfo};
pub use engine::{
    QueryEngine, QueryError, QueryOptions, QueryOutput, QueryResult, RangeSeries, SampleValue,
};
pub use handlers::RuntimeState;
pub use json::{format_float, format_time};
pub use params::{parse_duration_param, parse_time_param, Params};
pub use routes::{Api, RuntimeSource, WalReplaySource};
pub use selectors::parse_selector;
pub use sources::{
    AdminError, AdminSource, BlockInfo, MetadataSource, RulesSource, TsdbStats, TsdbStatsSource,
};

/// The parts of an HTTP request the API looks at.
#[derive(Debug, Clone, Default)]
pub struct ApiRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, e.g. `/api/v1/query`.
    pub path: String,
    /// Parameters from the query string and, for form posts, the body, in order.
    pub params: Vec<(String, String)>,
    /// The `Accept` header ("" when absent): `/federate` answers in the
    /// protobuf exposition format when it asks for it.
    pub accept: String,
}

/// What the API answers.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

/// Decodes `application/x-www-form-urlencoded` text (query strings and form bodies).
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b.get(i) {
            Some(b'+') => out.push(b' '),
            Some(b'%') => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(x) => {
                        out.push(x);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            Some(&c) => out.push(c),
            None => break,
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(
            parse_form("query=sum%28up%29+by+%28a%29&match[]=x&match%5B%5D=y&e="),
            vec![
                ("query".into(), "sum(up) by (a)".into()),
                ("match[]".into(), "x".into()),
                ("match[]".into(), "y".into()),
                ("e".into(), "".into()),
            ]
        );
        assert_eq!(url_decode("%zz%4"), "%zz%4");
    }
}
