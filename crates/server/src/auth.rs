//! HTTP basic authentication against `basic_auth_users` of the web
//! configuration (bcrypt hashes), as Prometheus's exporter toolkit does it.
//!
//! Contracts:
//! - A request passes when its `Authorization: Basic` header names a
//!   configured user and the password matches that user's bcrypt hash.
//!   Anything else fails: the caller answers 401 with
//!   `WWW-Authenticate: Basic`.
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
    /// `users`: user name to bcrypt hash (checked by the web config).
    pub(crate) fn new(users: BTreeMap<String, String>) -> Self {
        // The cost of the configured hashes, so a dummy check takes as long.
        let cost = users
            .values()
            .find_map(|h| h.parse::<bcrypt::HashParts>().ok())
            .map_or(bcrypt::DEFAULT_COST, |p| p.get_cost());
        let dummy = bcrypt::hash("cairn-dummy-password", cost).unwrap_or_default();
        Self {
            users,
            ok: Mutex::new(HashSet::new()),
            key: Default::default(),
            dummy,
        }
    }

    /// The cache key of a user, password and hash.
    fn key(&self, user: &str, password: &str, hash: &str) -> u64 {
        self.key.hash_one((user, password, hash))
    }

    /// Whether `authorization` holds a user and password already checked
    /// (cheap: no bcrypt); false says nothing.
    pub(crate) fn remembered(&self, authorization: Option<&[u8]>) -> bool {
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
        let a = BasicAuth::new(BTreeMap::from([("alice".to_owned(), hash)]));
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
        let a = BasicAuth::new(BTreeMap::from([("u".to_owned(), hash)]));
        assert!(a.check(Some(&header("u", "a:b"))));
    }
}
