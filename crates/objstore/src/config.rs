//! The bucket configuration: Thanos's object-store file
//! (`--objstore.config-file`), so that a Thanos or Mimir configuration
//! carries over.
//!
//! ```yaml
//! type: S3            # or FILESYSTEM
//! config:
//!   bucket: cairn
//!   endpoint: 127.0.0.1:3900   # host:port, no scheme (as Thanos)
//!   region: garage
//!   access_key: ...
//!   secret_key: ...
//!   insecure: true             # http instead of https
//! prefix: ""                   # optional: every key under it
//! ```
//!
//! `FILESYSTEM` takes `config: {directory: PATH}`. As Thanos does, fields
//! it does not know are refused (a typo must not silently fall back to a
//! default); Thanos's S3 fields Cairn has no use for are accepted and
//! ignored (listed in [`S3_IGNORED`]). Other bucket types (GCS, AZURE,
//! COS, …) are refused with a message naming them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{ObjstoreError, Result};

/// Thanos's S3 fields that are accepted and not used.
pub const S3_IGNORED: &[&str] = &[
    "signature_version2",
    "put_user_metadata",
    "http_config",
    "trace",
    "list_objects_version",
    "send_content_md5",
    "disable_dualstack",
    "part_size",
    "sse_config",
    "sts_endpoint",
    "max_retries",
    "aws_sdk_auth",
];

/// A bucket to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketConfig {
    S3(S3Config),
    /// A directory standing in for a bucket (tests, or a shared mount).
    Filesystem {
        directory: PathBuf,
        prefix: String,
    },
}

/// An S3-compatible bucket.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    pub bucket: String,
    /// `host:port`.
    pub endpoint: String,
    pub region: String,
    pub access_key: String,
    pub secret_key: String,
    pub session_token: String,
    /// Plain HTTP.
    pub insecure: bool,
    /// `virtual-hosted` requests (`bucket.host`); otherwise path-style
    /// (`host/bucket`), which self-hosted servers expect.
    pub virtual_hosted: bool,
    pub prefix: String,
}

impl std::fmt::Debug for S3Config {
    /// Without the secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("insecure", &self.insecure)
            .field("virtual_hosted", &self.virtual_hosted)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    config: Option<serde_yaml_ng::Value>,
    #[serde(default)]
    prefix: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFs {
    directory: String,
}

#[derive(Deserialize)]
struct RawS3 {
    #[serde(default)]
    bucket: String,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    access_key: String,
    #[serde(default)]
    secret_key: String,
    #[serde(default)]
    session_token: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    bucket_lookup_type: String,
    #[serde(flatten)]
    rest: BTreeMap<String, serde_yaml_ng::Value>,
}

fn bad(what: impl Into<String>) -> ObjstoreError {
    ObjstoreError::Config { what: what.into() }
}

impl BucketConfig {
    /// Reads and parses the file at `path`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ObjstoreError::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ObjstoreError::Config { what } => bad(format!("{}: {what}", path.display())),
            e => e,
        })
    }

    /// Parses Thanos's object-store YAML.
    pub fn parse(text: &str) -> Result<Self> {
        let raw: Raw = serde_yaml_ng::from_str(text).map_err(|e| bad(e.to_string()))?;
        let prefix = raw.prefix.trim_matches('/').to_owned();
        let config = raw.config.unwrap_or(serde_yaml_ng::Value::Null);
        match raw.kind.to_ascii_uppercase().as_str() {
            "FILESYSTEM" => {
                let c: RawFs = serde_yaml_ng::from_value(config)
                    .map_err(|e| bad(format!("FILESYSTEM config: {e}")))?;
                if c.directory.is_empty() {
                    return Err(bad("FILESYSTEM config: directory is empty"));
                }
                Ok(BucketConfig::Filesystem {
                    directory: PathBuf::from(c.directory),
                    prefix,
                })
            }
            "S3" => {
                let c: RawS3 = serde_yaml_ng::from_value(config)
                    .map_err(|e| bad(format!("S3 config: {e}")))?;
                if let Some(k) = c.rest.keys().find(|k| !S3_IGNORED.contains(&k.as_str())) {
                    return Err(bad(format!("S3 config: unknown field `{k}`")));
                }
                if c.bucket.is_empty() {
                    return Err(bad("S3 config: bucket is empty"));
                }
                if c.endpoint.is_empty() {
                    return Err(bad("S3 config: endpoint is empty"));
                }
                if c.endpoint.contains("://") {
                    return Err(bad(format!(
                        "S3 config: endpoint {:?} has a scheme; give host:port (insecure: true for http)",
                        c.endpoint
                    )));
                }
                let virtual_hosted = match c.bucket_lookup_type.as_str() {
                    "" | "auto" | "path" => false,
                    "virtual-hosted" => true,
                    other => {
                        return Err(bad(format!(
                            "S3 config: bucket_lookup_type {other:?} (auto, path or virtual-hosted)"
                        )))
                    }
                };
                Ok(BucketConfig::S3(S3Config {
                    bucket: c.bucket,
                    endpoint: c.endpoint,
                    region: if c.region.is_empty() {
                        "us-east-1".into()
                    } else {
                        c.region
                    },
                    access_key: c.access_key,
                    secret_key: c.secret_key,
                    session_token: c.session_token,
                    insecure: c.insecure,
                    virtual_hosted,
                    prefix,
                }))
            }
            other => Err(bad(format!(
                "bucket type {other:?} is not supported by Cairn (S3 or FILESYSTEM)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[test]
    fn thanos_s3_and_filesystem_configs_parse() {
        let c = BucketConfig::parse(
            "type: S3\nconfig:\n  bucket: blocks\n  endpoint: 127.0.0.1:3900\n  region: garage\n  access_key: AK\n  secret_key: SK\n  insecure: true\n  signature_version2: false\n  http_config:\n    idle_conn_timeout: 1m\nprefix: /cairn/\n",
        )
        .unwrap();
        let BucketConfig::S3(s) = c else {
            panic!("{c:?}")
        };
        assert_eq!(
            (s.bucket.as_str(), s.endpoint.as_str(), s.region.as_str()),
            ("blocks", "127.0.0.1:3900", "garage")
        );
        assert!(s.insecure && !s.virtual_hosted);
        assert_eq!(s.prefix, "cairn");
        assert!(!format!("{s:?}").contains("SK"), "secrets stay out of logs");
        let c = BucketConfig::parse("type: filesystem\nconfig:\n  directory: /tmp/b\n").unwrap();
        assert_eq!(
            c,
            BucketConfig::Filesystem {
                directory: "/tmp/b".into(),
                prefix: String::new()
            }
        );
    }

    #[test]
    fn mistakes_are_named() {
        for (yaml, says) in [
            ("type: GCS\nconfig:\n  bucket: x\n", "GCS"),
            (
                "type: S3\nconfig:\n  bucket: x\n  endpoint: h:1\n  acess_key: typo\n",
                "acess_key",
            ),
            ("type: S3\nconfig:\n  endpoint: h:1\n", "bucket is empty"),
            (
                "type: S3\nconfig:\n  bucket: b\n  endpoint: http://h:1\n",
                "scheme",
            ),
            ("type: FILESYSTEM\nconfig:\n  directory: ''\n", "directory"),
            ("type: S3\nconfg: {}\n", "confg"),
        ] {
            let e = BucketConfig::parse(yaml).unwrap_err().to_string();
            assert!(e.contains(says), "{yaml}: {e}");
        }
    }
}
