//! HTTP authentication against `basic_auth_users` of the web
//! configuration (bcrypt hashes), as Prometheus's exporter toolkit does it,
//! and against Cairn's `bearer_tokens` (also bcrypt hashes).
//!
//! Contracts:
//! - A request passes when its `Authorization: Basic` header names a
//!   configured user and the password matches that user's bcrypt hash, or
//!   when its `Authorization: Bearer` token matches one of the tokens'
//!   hashes. Anything else fails: the caller answers 401 with
//!   `WWW-Authenticate` (`Basic` when users are configured, else `Bearer`).
//! - bcrypt is slow on purpose (tens of milliseconds per check), and a
//!   remote-write sender authenticates every request: a successful
//!   (user, password, hash) is remembered, keyed by a hash under a random
//!   per-process key, so later requests cost a map lookup. Failures are
//!   not remembered. The memory is bounded ([`CACHE_MAX`] entries).
//! - An unknown user is checked against a dummy hash, so that a failure
//!   takes as long whether or not the user exists.

use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasher;

use base64::Engine as _;
use parking_lot::Mutex;

/// Most remembered successes; the set is cleared when full.
pub const CACHE_MAX: usize = 1024;

/// The configured users and what has been checked.
pub(crate) struct BasicAuth {
    users: BTreeMap<String, String>,
    /// Token name to bcrypt hash of the token.
    tokens: BTreeMap<String, String>,
    ok: Mutex<HashSet<u64>>,
    key: std::collections::hash_map::RandomState,
    dummy: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl BasicAuth {
    /// `users`: user name to bcrypt hash; `tokens`: token name to bcrypt
    /// hash of the token (both checked by the web config).
    pub(crate) fn new(users: BTreeMap<String, String>, tokens: BTreeMap<String, String>) -> Self {
        // The cost of the configured hashes, so a dummy check takes as long.
        let cost = users
            .values()
            .chain(tokens.values())
            .find_map(|h| h.parse::<bcrypt::HashParts>().ok())
            .map_or(bcrypt::DEFAULT_COST, |p| p.get_cost());
        let dummy = bcrypt::hash("cairn-dummy-password", cost).unwrap_or_default();
        Self {
            users,
            tokens,
            ok: Mutex::new(HashSet::new()),
            key: Default::default(),
            dummy,
        }
    }

    /// The cache key of a user, password and hash.
    fn key(&self, user: &str, password: &str, hash: &str) -> u64 {
        self.key.hash_one((user, password, hash))
    }

    /// The `WWW-Authenticate` challenge of a refusal.
    pub(crate) fn challenge(&self) -> &'static str {
        if self.users.is_empty() {
            "Bearer"
        } else {
            "Basic"
        }
    }

    /// Whether `authorization` holds a user and password (or a token)
    /// already checked (cheap: no bcrypt); false says nothing.
    pub(crate) fn remembered(&self, authorization: Option<&[u8]>) -> bool {
        if let Some(tok) = authorization.and_then(parse_bearer) {
            let k = self.key("", &tok, "bearer");
            return self.ok.lock().contains(&k);
        }
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let Some(hash) = self.users.get(&user) else {
            return false;
        };
        let k = self.key(&user, &password, hash);
        self.ok.lock().contains(&k)
    }

    /// Whether `authorization` (the header's value) holds a valid user and
    /// password. Runs bcrypt unless remembered: call it off async threads.
    pub(crate) fn check(&self, authorization: Option<&[u8]>) -> bool {
        if let Some(tok) = authorization.and_then(parse_bearer) {
            return self.check_token(&tok);
        }
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let Some(hash) = self.users.get(&user) else {
            let _ = bcrypt::verify(&password, &self.dummy);
            return false;
        };
        let k = self.key(&user, &password, hash);
        if self.ok.lock().contains(&k) {
            return true;
        }
        if !bcrypt::verify(&password, hash).unwrap_or(false) {
            return false;
        }
        let mut g = self.ok.lock();
        if g.len() >= CACHE_MAX {
            g.clear();
        }
        g.insert(k);
        true
    }
}

impl BasicAuth {
    fn check_token(&self, tok: &str) -> bool {
        let k = self.key("", tok, "bearer");
        if self.ok.lock().contains(&k) {
            return true;
        }
        if self.tokens.is_empty() {
            let _ = bcrypt::verify(tok, &self.dummy);
            return false;
        }
        let ok = self
            .tokens
            .values()
            .any(|h| bcrypt::verify(tok, h).unwrap_or(false));
        if ok {
            let mut g = self.ok.lock();
            if g.len() >= CACHE_MAX {
                g.clear();
            }
            g.insert(k);
        }
        ok
    }
}

/// `Bearer token` → the token.
fn parse_bearer(v: &[u8]) -> Option<String> {
    let v = std::str::from_utf8(v).ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(v: &[u8]) -> Option<(String, String)> {
    let v = std::str::from_utf8(v).ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, pass: &str) -> Vec<u8> {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        format!("Basic {b}").into_bytes()
    }

    #[test]
    fn users_passwords_and_the_cache() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let a = BasicAuth::new(
            BTreeMap::from([("alice".to_owned(), hash)]),
            BTreeMap::new(),
        );
        assert!(a.check(Some(&header("alice", "s3cret"))));
        // Remembered now; a wrong password still fails.
        assert!(a.remembered(Some(&header("alice", "s3cret"))));
        assert!(!a.remembered(Some(&header("alice", "other"))));
        assert!(a.check(Some(&header("alice", "s3cret"))));
        assert_eq!(a.ok.lock().len(), 1);
        assert!(!a.check(Some(&header("alice", "s3cret "))));
        assert!(!a.check(Some(&header("bob", "s3cret"))));
        assert!(!a.check(None));
        assert!(!a.check(Some(b"Bearer abc")));
        assert!(!a.check(Some(b"Basic !!!not-base64")));
        assert!(!a.check(Some(b"Basic")));
        assert_eq!(a.ok.lock().len(), 1, "failures are not remembered");
        // A password may contain colons; the user may not.
        let hash = bcrypt::hash("a:b", 4).unwrap();
        let a = BasicAuth::new(BTreeMap::from([("u".to_owned(), hash)]), BTreeMap::new());
        assert!(a.check(Some(&header("u", "a:b"))));
        // No tokens configured: a bearer token is refused.
        assert!(!a.check(Some(b"Bearer abc")));
    }

    #[test]
    fn bearer_tokens() {
        let hash = bcrypt::hash("tok-123", 4).unwrap();
        let a = BasicAuth::new(
            BTreeMap::new(),
            BTreeMap::from([("prometheus".to_owned(), hash)]),
        );
        assert_eq!(a.challenge(), "Bearer");
        assert!(!a.remembered(Some(b"Bearer tok-123")));
        assert!(a.check(Some(b"Bearer tok-123")));
        assert!(a.remembered(Some(b"Bearer tok-123")));
        assert!(!a.check(Some(b"Bearer tok-124")));
        assert!(!a.check(Some(b"Bearer ")));
        assert!(
            !a.check(Some(&header("prometheus", "tok-123"))),
            "not a password"
        );
    }
}
