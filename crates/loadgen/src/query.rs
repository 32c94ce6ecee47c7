//! Reading samples back through a receiver's Prometheus query API: the
//! metric names it holds, and how many samples of a name it holds in a
//! time window (`sum(count_over_time(...))`).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// What went wrong with a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("bad URL {url}: {source}")]
    Url {
        url: String,
        #[source]
        source: hyper::http::uri::InvalidUri,
    },
    #[error("cannot build the request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    #[error("{url}: reading the answer: {source}")]
    Body {
        url: String,
        #[source]
        source: hyper::Error,
    },
    #[error("{url}: not JSON ({source}): {body}")]
    Json {
        url: String,
        body: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("unexpected answer to {what}: {answer}")]
    Unexpected { what: String, answer: String },
}

/// A client for a receiver's query API at a base URL such as
/// `http://127.0.0.1:9201`.
pub struct QueryClient {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl QueryClient {
    pub fn new(base: &str) -> Self {
        QueryClient {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// GETs `path`, or POSTs `form` to it, and parses the answer.
    async fn json(&self, path: &str, form: Option<String>) -> Result<Value, QueryError> {
        let url = format!("{}{path}", self.base);
        let uri: hyper::Uri = url.parse().map_err(|source| QueryError::Url {
            url: url.clone(),
            source,
        })?;
        let req = match form {
            Some(body) => hyper::Request::post(uri)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from(body))),
            None => hyper::Request::get(uri).body(Full::new(Bytes::new())),
        }?;
        let resp = self
            .client
            .request(req)
            .await
            .map_err(|source| QueryError::Http {
                url: url.clone(),
                source,
            })?;
        let b = resp
            .into_body()
            .collect()
            .await
            .map_err(|source| QueryError::Body {
                url: url.clone(),
                source,
            })?
            .to_bytes();
        serde_json::from_slice(&b).map_err(|source| QueryError::Json {
            url,
            body: String::from_utf8_lossy(&b).into_owned(),
            source,
        })
    }

    /// Every metric name the receiver holds.
    pub async fn metric_names(&self) -> Result<Vec<String>, QueryError> {
        let v = self.json("/api/v1/label/__name__/values", None).await?;
        let names =
            v.get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| QueryError::Unexpected {
                    what: "the label values of __name__".into(),
                    answer: v.to_string(),
                })?;
        Ok(names
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect())
    }

    /// The samples of metric `name` the receiver holds with timestamps
    /// from `from_ms` to `to_ms`, both included.
    pub async fn count(&self, name: &str, from_ms: i64, to_ms: i64) -> Result<u64, QueryError> {
        let range_ms = to_ms - from_ms + 1;
        let q = format!(
            "sum(count_over_time({{__name__=\"{}\"}}[{range_ms}ms]))",
            escape(name)
        );
        let body = format!("query={}&time={}", urlencode(&q), to_ms as f64 / 1000.0);
        let v = self.json("/api/v1/query", Some(body)).await?;
        let unexpected = || QueryError::Unexpected {
            what: q.clone(),
            answer: v.to_string(),
        };
        let result = v
            .get("data")
            .and_then(|d| d.get("result"))
            .and_then(Value::as_array)
            .ok_or_else(unexpected)?;
        let Some(first) = result.first() else {
            return Ok(0);
        };
        let n = first
            .get("value")
            .and_then(|x| x.get(1))
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(unexpected)?;
        Ok(n as u64)
    }

    /// The samples the receiver holds with timestamps from `from_ms` to
    /// `to_ms`, metric by metric (a query over all names at once would
    /// collide once `count_over_time` drops the names).
    pub async fn count_all(&self, from_ms: i64, to_ms: i64) -> Result<u64, QueryError> {
        let mut total = 0;
        for n in self.metric_names().await? {
            total += self.count(&n, from_ms, to_ms).await?;
        }
        Ok(total)
    }
}

/// `s` as the inside of a PromQL double-quoted string.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn urlencode(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}
