//! The tokens already verified, so a client's next request with the same
//! token skips the signature check and the claims' parsing: tens of µs for an
//! Ed25519 signature, about 2 µs for HS256, against about 0.4 µs for a hit
//! (`cargo bench -p alpes-platform --bench auth`, BENCHMARKS.md).
//!
//! An entry is keyed by the SHA-256 of the whole token (header, claims and
//! signature), so only the exact string that was verified hits, and holds the
//! claims it verified to. It answers only while the token is still within its
//! expiry plus the verification leeway; after that the token goes through
//! the full check again, which refuses it as expired. The cache belongs to one
//! key or ring ([`super::Jwt`] and its clones): a new one (a restart with
//! other keys) starts empty, so a dropped key's tokens are never answered from it.
//! Revocation is not cached: [`super::Jwt::authenticate`] checks the `jti`
//! after every verification, hit or not. Failures are never cached.
//!
//! It is bounded: when full, expired entries are dropped, and if that frees
//! nothing, everything is; a miss only costs the full check.

use super::Claims;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::RwLock;

/// How many tokens the cache holds by default (about 2 MB).
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Verified tokens and their claims, by SHA-256 of the token.
#[derive(Debug)]
pub(super) struct VerifiedTokens {
    capacity: usize,
    leeway: u64,
    entries: RwLock<HashMap<[u8; 32], Claims>>,
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl VerifiedTokens {
    /// A cache of at most `capacity` tokens (0: none), answering while `exp + leeway` has not passed.
    pub(super) fn new(capacity: usize, leeway: u64) -> Self {
        VerifiedTokens {
            capacity,
            leeway,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// An empty memory of the same size and leeway.
    pub(super) fn emptied(&self) -> Self {
        VerifiedTokens::new(self.capacity, self.leeway)
    }

    fn live(&self, claims: &Claims, now: u64) -> bool {
        claims.exp.saturating_add(self.leeway) >= now
    }

    /// The claims `token` verified to, if it was verified and has not expired since.
    pub(super) fn get(&self, token: &str, now: u64) -> Option<Claims> {
        if self.capacity == 0 {
            return None;
        }
        let entries = self.entries.read().ok()?;
        entries.get(&key(token)).filter(|c| self.live(c, now)).cloned()
    }

    /// Remembers that `token` verified to `claims`.
    pub(super) fn insert(&self, token: &str, claims: &Claims, now: u64) {
        if self.capacity == 0 {
            return;
        }
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= self.capacity {
            entries.retain(|_, c| self.live(c, now));
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key(token), claims.clone());
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.read().map_or(0, |e| e.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "u".into(),
            role: Role::Admin,
            iat: 0,
            exp,
            iss: "alpes".into(),
            jti: None,
        }
    }

    #[test]
    fn only_the_exact_token_hits_and_only_until_expiry_plus_leeway() {
        let cache = VerifiedTokens::new(10, 60);
        cache.insert("a.b.c", &claims(1_000), 900);
        assert_eq!(cache.get("a.b.c", 1_000).map(|c| c.exp), Some(1_000));
        assert_eq!(cache.get("a.b.c", 1_060).map(|c| c.exp), Some(1_000), "within the leeway");
        assert!(cache.get("a.b.c", 1_061).is_none(), "expired");
        assert!(cache.get("a.b.d", 1_000).is_none());
        assert!(cache.get("a.b.c ", 1_000).is_none());
    }

    #[test]
    fn a_full_cache_drops_the_expired_entries_first_then_everything() {
        let cache = VerifiedTokens::new(3, 0);
        cache.insert("old", &claims(10), 0);
        cache.insert("live1", &claims(100), 0);
        cache.insert("live2", &claims(100), 0);
        cache.insert("live3", &claims(100), 50);
        assert_eq!(cache.len(), 3);
        assert!(cache.get("old", 5).is_none(), "the expired one made room");
        assert!(cache.get("live1", 50).is_some());
        cache.insert("live4", &claims(100), 50);
        assert_eq!(cache.len(), 1, "nothing had expired: everything went");
        assert!(cache.get("live4", 50).is_some());
    }

    #[test]
    fn a_zero_capacity_cache_holds_nothing() {
        let cache = VerifiedTokens::new(0, 60);
        cache.insert("a.b.c", &claims(1_000), 0);
        assert!(cache.get("a.b.c", 0).is_none());
        assert_eq!(cache.len(), 0);
    }
}
