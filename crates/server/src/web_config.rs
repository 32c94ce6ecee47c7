//! `--web.config.file`: Prometheus's web configuration (the exporter
//! toolkit's format), read once at startup.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # or `cert:` inline PEM
//!   key_file: server.key           # or `key:` inline PEM
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: ca.crt
//!   min_version: TLS12             # TLS12 or TLS13 (rustls has nothing older)
//!   max_version: TLS13
//! http_server_config:
//!   http2: true
//!   headers:
//!     Strict-Transport-Security: max-age=31536000
//! basic_auth_users:
//!   alice: $2y$10$...               # bcrypt hash
//! bearer_tokens:                    # Cairn's own: name to bcrypt hash of the token
//!   prometheus: $2y$10$...
//! ```
//!
//! Contracts:
//! - Unknown keys, bad values and unreadable files are errors that name the
//!   line of the file they come from ([`WebConfigError`]); relative paths
//!   are relative to the file's directory, as in Prometheus.
//! - `client_auth_type` takes Prometheus's five values. `cipher_suites`,
//!   `curve_preferences` and `prefer_server_cipher_suites` are accepted
//!   and not applied (rustls offers only modern suites and groups, and
//!   picks the server's preference); `client_allowed_sans` is refused, as
//!   Cairn cannot enforce it.
//! - With `basic_auth_users`, every request must carry one of the users and
//!   its password (see `auth`), health endpoints included, as Prometheus
//!   does; `headers` are added to every response.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// What is wrong with a web configuration file.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not parse, or a key or value is wrong.
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        /// 1-based; 0 when the position is not known.
        line: usize,
        message: String,
    },
}

/// The headers Prometheus lets a web configuration set.
const ALLOWED_HEADERS: [&str; 5] = [
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "X-XSS-Protection",
    "Content-Security-Policy",
];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tls_server_config: Option<RawTls>,
    #[serde(default)]
    http_server_config: Option<RawHttp>,
    #[serde(default)]
    basic_auth_users: Option<BTreeMap<String, String>>,
    /// Cairn's own: token name to bcrypt hash of a bearer token.
    #[serde(default)]
    bearer_tokens: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_ca: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// A checked web configuration.
#[derive(Clone)]
pub struct WebConfig {
    /// Serve TLS with this configuration; `None`: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Response headers added to every response.
    pub headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    /// User name to bcrypt hash.
    pub users: BTreeMap<String, String>,
    /// Bearer token name to bcrypt hash of the token (Cairn's own key).
    /// With neither users nor tokens, no authentication.
    pub tokens: BTreeMap<String, String>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("headers", &self.headers)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl WebConfig {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| WebConfigError::Read {
            path: path.to_owned(),
            source: e,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, path, base)
    }

    /// Checks `text`, the contents of `path`; relative file names are
    /// taken from `base`.
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<Self, WebConfigError> {
        let p = Parser { text, path, base };
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| WebConfigError::Invalid {
                path: path.to_owned(),
                line: e.location().map_or(0, |l| l.line()),
                message: e.to_string(),
            })?
        };
        let http = raw.http_server_config.unwrap_or_default();
        let mut headers = Vec::new();
        for (k, v) in &http.headers {
            if !ALLOWED_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(k)) {
                return Err(p.invalid(
                    k,
                    format!(
                        "header {k:?} may not be set here (allowed: {})",
                        ALLOWED_HEADERS.join(", ")
                    ),
                ));
            }
            let name = hyper::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| p.invalid(k, format!("header {k:?}: {e}")))?;
            let value = hyper::header::HeaderValue::from_str(v)
                .map_err(|e| p.invalid(k, format!("value of header {k:?}: {e}")))?;
            headers.push((name, value));
        }
        let users = raw.basic_auth_users.unwrap_or_default();
        for (user, hash) in &users {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(p.invalid(
                    user,
                    format!("the password of user {user:?} is not a bcrypt hash"),
                ));
            }
        }
        let tokens = raw.bearer_tokens.unwrap_or_default();
        for (name, hash) in &tokens {
            if hash.parse::<bcrypt::HashParts>().is_err() {
                return Err(p.invalid(name, format!("bearer token {name:?} is not a bcrypt hash")));
            }
        }
        let tls = match raw.tls_server_config {
            None => None,
            Some(t) => Some(Arc::new(p.tls(t, http.http2.unwrap_or(true))?)),
        };
        Ok(Self {
            tls,
            headers,
            users,
            tokens,
        })
    }
}

struct Parser<'a> {
    text: &'a str,
    path: &'a Path,
    base: &'a Path,
}

impl Parser<'_> {
    /// The first line holding `key:` (1-based; 0 if none).
    fn line_of(&self, key: &str) -> usize {
        self.text
            .lines()
            .position(|l| {
                let l = l.trim_start().trim_start_matches(['"', '\'']);
                l.strip_prefix(key)
                    .map(|r| r.trim_start_matches(['"', '\'']).trim_start())
                    .is_some_and(|r| r.starts_with(':'))
            })
            .map_or(0, |i| i + 1)
    }

    fn invalid(&self, key: &str, message: String) -> WebConfigError {
        WebConfigError::Invalid {
            path: self.path.to_owned(),
            line: self.line_of(key),
            message,
        }
    }

    fn file(&self, key: &str, name: &str) -> Result<Vec<u8>, WebConfigError> {
        let p = self.base.join(name);
        std::fs::read(&p).map_err(|e| self.invalid(key, format!("{key} {}: {e}", p.display())))
    }

    /// PEM bytes from `key_file` or inline `key` (exactly one).
    fn pem(
        &self,
        file_key: &str,
        file: Option<&String>,
        inline_key: &str,
        inline: Option<&String>,
    ) -> Result<Vec<u8>, WebConfigError> {
        match (file, inline) {
            (Some(f), None) => self.file(file_key, f),
            (None, Some(s)) => Ok(s.clone().into_bytes()),
            (Some(_), Some(_)) => Err(self.invalid(
                inline_key,
                format!("set {file_key} or {inline_key}, not both"),
            )),
            (None, None) => Err(self.invalid(
                "tls_server_config",
                format!("tls_server_config needs {file_key} (or {inline_key})"),
            )),
        }
    }

    fn version(&self, key: &str, v: Option<&String>) -> Result<Option<u8>, WebConfigError> {
        match v.map(String::as_str) {
            None => Ok(None),
            Some("TLS12") => Ok(Some(2)),
            Some("TLS13") => Ok(Some(3)),
            Some(o @ ("TLS10" | "TLS11")) => Err(self.invalid(
                key,
                format!("{key} {o}: Cairn's TLS (rustls) supports TLS12 and TLS13 only"),
            )),
            Some(o) => Err(self.invalid(
                key,
                format!("{key} {o:?} is not one of TLS10, TLS11, TLS12, TLS13"),
            )),
        }
    }

    fn tls(&self, t: RawTls, http2: bool) -> Result<rustls::ServerConfig, WebConfigError> {
        if t.client_allowed_sans.is_some() {
            return Err(self.invalid(
                "client_allowed_sans",
                "client_allowed_sans is not supported by Cairn".into(),
            ));
        }
        for (k, set) in [
            ("cipher_suites", t.cipher_suites.is_some()),
            ("curve_preferences", t.curve_preferences.is_some()),
            (
                "prefer_server_cipher_suites",
                t.prefer_server_cipher_suites.is_some(),
            ),
        ] {
            if set {
                tracing::warn!(
                    key = k,
                    "web config: not applied; rustls offers only modern suites and groups"
                );
            }
        }
        let cert_pem = self.pem("cert_file", t.cert_file.as_ref(), "cert", t.cert.as_ref())?;
        let key_pem = self.pem("key_file", t.key_file.as_ref(), "key", t.key.as_ref())?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| self.invalid("cert_file", format!("certificate: {e}")))?;
        if certs.is_empty() {
            return Err(self.invalid("cert_file", "no certificate in the PEM data".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| self.invalid("key_file", format!("private key: {e}")))?;

        let min = self
            .version("min_version", t.min_version.as_ref())?
            .unwrap_or(2);
        let max = self
            .version("max_version", t.max_version.as_ref())?
            .unwrap_or(3);
        if min > max {
            return Err(self.invalid("min_version", "min_version is above max_version".into()));
        }
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
            (2u8, &rustls::version::TLS12),
            (3u8, &rustls::version::TLS13),
        ]
        .into_iter()
        .filter(|(v, _)| *v >= min && *v <= max)
        .map(|(_, p)| p)
        .collect();
        // ring: no C toolchain beyond the compiler (aws-lc needs CMake);
        // rustls deprecates it for lacking post-quantum key exchange.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| self.invalid("min_version", format!("TLS versions: {e}")))?;

        let auth = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
        let roots = || -> Result<Arc<rustls::RootCertStore>, WebConfigError> {
            let pem = match (&t.client_ca_file, &t.client_ca) {
                (Some(f), None) => self.file("client_ca_file", f)?,
                (None, Some(s)) => s.clone().into_bytes(),
                (Some(_), Some(_)) => {
                    return Err(self.invalid(
                        "client_ca",
                        "set client_ca_file or client_ca, not both".into(),
                    ))
                }
                (None, None) => {
                    return Err(self.invalid(
                        "client_auth_type",
                        format!("client_auth_type {auth} needs client_ca_file"),
                    ))
                }
            };
            let mut store = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&pem) {
                let c = c.map_err(|e| self.invalid("client_ca_file", format!("client CA: {e}")))?;
                store
                    .add(c)
                    .map_err(|e| self.invalid("client_ca_file", format!("client CA: {e}")))?;
            }
            if store.is_empty() {
                return Err(
                    self.invalid("client_ca_file", "no certificate in the client CA".into())
                );
            }
            Ok(Arc::new(store))
        };
        let verified = |optional: bool| -> Result<_, WebConfigError> {
            let b = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots()?,
                provider.clone(),
            );
            let b = if optional {
                b.allow_unauthenticated()
            } else {
                b
            };
            b.build()
                .map_err(|e| self.invalid("client_ca_file", format!("client CA: {e}")))
        };
        let builder = match auth {
            "NoClientCert" => builder.with_no_client_auth(),
            "VerifyClientCertIfGiven" => builder.with_client_cert_verifier(verified(true)?),
            "RequireAndVerifyClientCert" => builder.with_client_cert_verifier(verified(false)?),
            "RequestClientCert" | "RequireAnyClientCert" => {
                builder.with_client_cert_verifier(Arc::new(crate::tls::AnyClientCert::new(
                    auth == "RequireAnyClientCert",
                    provider.clone(),
                )))
            }
            other => {
                return Err(self.invalid(
                    "client_auth_type",
                    format!(
                        "client_auth_type {other:?} is not one of NoClientCert, RequestClientCert, \
                         RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
                    ),
                ))
            }
        };
        let mut cfg = builder
            .with_single_cert(certs, key)
            .map_err(|e| self.invalid("key_file", format!("certificate and key: {e}")))?;
        cfg.alpn_protocols = if http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, base: &Path) -> Result<WebConfig, WebConfigError> {
        WebConfig::parse(text, Path::new("web.yml"), base)
    }

    fn line(e: WebConfigError) -> (usize, String) {
        match e {
            WebConfigError::Invalid { line, message, .. } => (line, message),
            other => panic!("{other:?}"),
        }
    }

    /// A CA, and a server certificate and key it signed, written to `dir`.
    fn pki(dir: &Path) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.join("ca.crt"), ca_cert.pem()).unwrap();
        std::fs::write(dir.join("server.crt"), cert.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    }

    #[test]
    fn empty_means_plain_http_without_auth() {
        let c = parse("", Path::new(".")).unwrap();
        assert!(c.tls.is_none() && c.users.is_empty() && c.headers.is_empty());
        assert!(c.tokens.is_empty());
    }

    #[test]
    fn errors_name_the_line() {
        let base = Path::new(".");
        let (l, m) = line(parse("basic_auth_users:\n  alice: nothash\n", base).unwrap_err());
        assert_eq!(l, 2, "{m}");
        assert!(m.contains("alice") && m.contains("bcrypt"), "{m}");
        let (l, m) =
            line(parse("http_server_config:\n  http2: true\nbogus: 1\n", base).unwrap_err());
        assert_eq!(l, 3, "{m}");
        assert!(m.contains("bogus"), "{m}");
        let (l, m) = line(
            parse(
                "http_server_config:\n  headers:\n    X-Powered-By: cairn\n",
                base,
            )
            .unwrap_err(),
        );
        assert_eq!(l, 3, "{m}");
        let (l, m) = line(parse("tls_server_config:\n  key_file: k\n", base).unwrap_err());
        assert_eq!(l, 1, "{m}");
        assert!(m.contains("cert_file"), "{m}");
        let (l, m) = line(
            parse(
                "tls_server_config:\n  cert_file: missing.crt\n  key_file: k\n",
                base,
            )
            .unwrap_err(),
        );
        assert_eq!(l, 2, "{m}");
        assert!(m.contains("missing.crt"), "{m}");
        assert!(matches!(
            WebConfig::load(Path::new("/nonexistent/web.yml")),
            Err(WebConfigError::Read { .. })
        ));
    }

    #[test]
    fn tls_settings_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        pki(dir.path());
        let ok = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
        let c = parse(ok, dir.path()).unwrap();
        let tls = c.tls.unwrap();
        assert_eq!(
            tls.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let c = parse(
            &format!("{ok}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS13\nhttp_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n"),
            dir.path(),
        )
        .unwrap();
        assert_eq!(c.tls.unwrap().alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert_eq!(c.headers.len(), 1);
        for (extra, at, word) in [
            (
                "  client_auth_type: RequireAndVerifyClientCert\n",
                4,
                "client_ca_file",
            ),
            ("  client_auth_type: Sometimes\n", 4, "Sometimes"),
            ("  min_version: TLS10\n", 4, "TLS12 and TLS13"),
            ("  min_version: TLS13\n  max_version: TLS12\n", 4, "above"),
            ("  client_allowed_sans: [a]\n", 4, "not supported"),
        ] {
            let (l, m) = line(parse(&format!("{ok}{extra}"), dir.path()).unwrap_err());
            assert_eq!(l, at, "{extra}: {m}");
            assert!(m.contains(word), "{extra}: {m}");
        }
        // A key that is not a key.
        let (l, m) = line(
            parse(
                "tls_server_config:\n  cert_file: server.crt\n  key_file: ca.crt\n",
                dir.path(),
            )
            .unwrap_err(),
        );
        assert_eq!(l, 3, "{m}");
    }
}
