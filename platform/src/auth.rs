//! Bearer tokens: JWTs signed with the instance's key, verified locally.
//! [`Caller`] is the axum extractor every protected route takes.
//!
//! Two key modes ([`Jwt::new`], [`Jwt::eddsa`]):
//!
//! - **HS256** (the default): one shared secret signs and verifies.
//! - **EdDSA** (Ed25519): a key ring. One active signing key puts its `kid` in
//!   every token header; any number of verification-only public keys (the
//!   previous keys during a rotation) are kept by `kid`. A token is verified
//!   with the key its header's `kid` names; a token without a `kid`, with an
//!   unknown one, or signed with another algorithm (HS256, `none`) is refused.
//!   [`Jwt::jwks`] publishes the public keys, so another service can verify
//!   tokens itself. The keys themselves are in [`keys`].
//!
//! In both modes a token once verified is remembered until it expires
//! ([`verified`]): a client's next request with it skips the signature check
//! and the claims' parsing (tens of µs for Ed25519, about 2 µs for HS256,
//! against 0.4 µs for a lookup).
//!
//! In either mode a token signed with the other mode's algorithm is refused
//! (no algorithm confusion), and the claims rules are the same: issuer
//! `alpes`, `exp`, `sub` and `iss` required, 60 s of clock-skew leeway; and
//! a token whose `sub` or `jti` is missing or empty, or whose `iat` is later
//! than now plus the leeway, is refused.
//!
//! Every token carries a `jti`. With the identity store attached
//! ([`Jwt::with_revocations`]), a token whose `jti` was revoked (a logout) is
//! refused until it expires; that check is one lookup by key. With the store
//! attached, a token is also refused (401 `unknown_subject`) unless its `sub`
//! names an account of its role; that lookup is made the first time a token
//! is seen, and the token is remembered only after it.
//!
//! Service clients may send `X-API-Key: alpes_<id>_<secret>` instead of a
//! bearer token (with the identity store attached). The key is looked up by
//! its id, its SHA-256 compared in constant time, and a revoked key is
//! refused; the caller is the key's user, with the key's role. Its
//! `last_used_at` is written at most once a minute per key.
//!
//! A request carries one credential: a bearer token or an API key. One with
//! both is refused (401 `two_credentials`), whichever of them is valid, so no
//! credential is silently ignored.

pub mod keys;
pub mod verified;

use crate::http::ApiError;
use crate::store::IdentityStore;
pub use alpes_domain::caller::{Caller, Role};
use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keys::{Ed25519PublicKey, Ed25519SigningKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use verified::VerifiedTokens;

const ISSUER: &str = "alpes";

/// The claims Alpes signs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The user's role.
    pub role: Role,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Always `alpes`.
    pub iss: String,
    /// The token's unique id (a logout revokes it); absent in tokens minted before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// Issues and verifies tokens: HS256 with one shared secret, or EdDSA with a key ring.
#[derive(Clone)]
pub struct Jwt {
    /// The header every issued token carries: the algorithm, and in EdDSA mode the signing key's kid.
    header: Header,
    encoding: EncodingKey,
    decoding: Decoding,
    validation: Validation,
    /// The tokens verified with this key or ring (shared by clones).
    verified: Arc<VerifiedTokens>,
    revocations: Option<Arc<dyn IdentityStore>>,
}

/// What tokens are verified with.
#[derive(Clone)]
enum Decoding {
    /// The shared secret.
    Hs256(DecodingKey),
    /// The Ed25519 public keys by kid (the signing key's own included).
    EdDsa { ring: Arc<BTreeMap<String, VerifyingKey>> },
}

/// A public key of the ring, as `jsonwebtoken` verifies with it and as the JWKS shows it.
#[derive(Clone)]
struct VerifyingKey {
    public: Ed25519PublicKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.decoding {
            Decoding::Hs256(_) => f.write_str("Jwt(HS256)"),
            Decoding::EdDsa { ring } => {
                let kids: Vec<&str> = ring.keys().map(String::as_str).collect();
                write!(
                    f,
                    "Jwt(EdDSA, signing kid {}, verifying kids {kids:?})",
                    self.signing_kid().unwrap_or_default()
                )
            }
        }
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Jwt {
    /// An HS256 signer/verifier for the shared secret `key` (at least 32 bytes recommended).
    pub fn new(key: &[u8]) -> Self {
        Jwt::with_keys(
            Header::new(Algorithm::HS256),
            EncodingKey::from_secret(key),
            Decoding::Hs256(DecodingKey::from_secret(key)),
        )
    }

    /// A signer/verifier issuing tokens with `header`: the claims rules of its
    /// algorithm, a memory of [`verified::DEFAULT_CAPACITY`] tokens, no revocations.
    fn with_keys(header: Header, encoding: EncodingKey, decoding: Decoding) -> Self {
        let validation = validation(header.alg);
        Jwt {
            header,
            encoding,
            decoding,
            verified: Arc::new(VerifiedTokens::new(verified::DEFAULT_CAPACITY, validation.leeway)),
            validation,
            revocations: None,
        }
    }

    /// An EdDSA (Ed25519) signer/verifier: `signing` signs every token and puts
    /// its kid in the header; tokens verify with it or with any of `verify_only`
    /// (the previous keys during a rotation), chosen by the token's kid.
    /// Two different keys under one kid are a configuration error.
    pub fn eddsa(signing: &Ed25519SigningKey, verify_only: impl IntoIterator<Item = Ed25519PublicKey>) -> crate::Result<Self> {
        let mut ring = BTreeMap::new();
        for public in std::iter::once(signing.public()).chain(verify_only) {
            match ring.get(public.kid()) {
                Some(VerifyingKey { public: known, .. }) if *known == public => {}
                Some(_) => {
                    return Err(crate::Error::Config(format!(
                        "two different token verification keys have the kid {:?}",
                        public.kid()
                    )))
                }
                None => {
                    let decoding = DecodingKey::from_ed_der(public.as_bytes());
                    ring.insert(public.kid().to_owned(), VerifyingKey { public, decoding });
                }
            }
        }
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(signing.kid().to_owned());
        Ok(Jwt::with_keys(
            header,
            EncodingKey::from_ed_der(&signing.to_pkcs8_der()?),
            Decoding::EdDsa { ring: Arc::new(ring) },
        ))
    }

    /// The same signer, remembering at most `capacity` verified tokens
    /// (default [`verified::DEFAULT_CAPACITY`]; 0 checks every signature every
    /// time).
    pub fn with_verified_capacity(mut self, capacity: usize) -> Self {
        self.verified = Arc::new(VerifiedTokens::new(capacity, self.validation.leeway));
        self
    }

    /// The algorithm tokens are signed and verified with: HS256 or EdDSA.
    pub fn algorithm(&self) -> Algorithm {
        self.header.alg
    }

    /// The kid issued tokens carry (EdDSA); `None` in HS256 mode.
    pub fn signing_kid(&self) -> Option<&str> {
        self.header.kid.as_deref()
    }

    /// The kids tokens are accepted under (EdDSA: the signing key's and the
    /// verification-only keys'); empty in HS256 mode.
    pub fn verifying_kids(&self) -> Vec<&str> {
        match &self.decoding {
            Decoding::Hs256(_) => Vec::new(),
            Decoding::EdDsa { ring } => ring.keys().map(String::as_str).collect(),
        }
    }

    /// The JWK Set (RFC 7517) of the public keys tokens verify with, the
    /// signing key's first: `{"keys": [{"kty": "OKP", "crv": "Ed25519", "x",
    /// "kid", "alg": "EdDSA", "use": "sig"}, ...]}`. HS256 has no public key:
    /// `{"keys": []}`.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = match &self.decoding {
            Decoding::Hs256(_) => Vec::new(),
            Decoding::EdDsa { ring } => {
                let signing = self.signing_kid();
                let (first, rest): (Vec<_>, Vec<_>) = ring.values().partition(|k| Some(k.public.kid()) == signing);
                first.into_iter().chain(rest).map(|k| k.public.jwk()).collect()
            }
        };
        serde_json::json!({ "keys": keys })
    }

    /// The same signer, refusing tokens whose `jti` `store` has revoked or
    /// whose `sub` names none of its accounts; with a memory of its own
    /// (a token the signer without the store remembered was never looked up).
    pub fn with_revocations(mut self, store: Arc<dyn IdentityStore>) -> Self {
        self.revocations = Some(store);
        self.verified = Arc::new(self.verified.emptied());
        self
    }

    /// A token for `user` with `role`, valid for `ttl`.
    pub fn issue(&self, user: &str, role: Role, ttl: std::time::Duration) -> crate::Result<String> {
        self.issue_claims(user, role, ttl).map(|(token, _)| token)
    }

    /// A token for `user` with `role`, valid for `ttl`, with its claims (a fresh `jti`).
    pub fn issue_claims(&self, user: &str, role: Role, ttl: std::time::Duration) -> crate::Result<(String, Claims)> {
        let iat = now_secs();
        let claims = Claims {
            sub: user.to_owned(),
            role,
            iat,
            exp: iat + ttl.as_secs(),
            iss: ISSUER.into(),
            jti: Some(uuid::Uuid::new_v4().to_string()),
        };
        let token = jsonwebtoken::encode(&self.header, &claims, &self.encoding).map_err(|e| crate::Error::Auth(e.to_string()))?;
        Ok((token, claims))
    }

    /// Until when (ms) a revocation of `claims` must last: the token's expiry
    /// plus the clock-skew leeway [`Jwt::verify`] still accepts it for.
    pub fn revoked_until(&self, claims: &Claims) -> i64 {
        let last_accepted = claims.exp.saturating_add(self.validation.leeway);
        i64::try_from(last_accepted).unwrap_or(i64::MAX / 1000).saturating_mul(1000)
    }

    /// The claims of a valid token that was not revoked and, with the
    /// identity store attached, whose `sub` names an account of the token's
    /// role (checked the first time the token is seen, then remembered with it).
    pub async fn authenticate(&self, token: &str) -> Result<Claims, ApiError> {
        let now = now_secs();
        let claims = match self.verified.get(token, now) {
            Some(claims) => claims,
            None => {
                let claims = self.check(token)?;
                if let Some(store) = &self.revocations {
                    subject_known(store.as_ref(), &claims).await?;
                }
                self.verified.insert(token, &claims, now);
                claims
            }
        };
        if let (Some(store), Some(jti)) = (&self.revocations, &claims.jti) {
            if store.jti_revoked(jti, alpes_schemas::now_millis()).await? {
                return Err(ApiError::unauthorized("invalid bearer token: revoked (logged out)"));
            }
        }
        Ok(claims)
    }

    /// The claims of a valid token, remembered or checked (signature and
    /// claims only; [`Jwt::authenticate`] alone remembers a token, once its
    /// subject is known): what the rate limiter keys a request by.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        match self.verified.get(token, now_secs()) {
            Some(claims) => Ok(claims),
            None => self.check(token),
        }
    }

    /// The claims of a valid token, by its signature and claims.
    fn check(&self, token: &str) -> Result<Claims, ApiError> {
        let refused = |why: &str| ApiError::unauthorized(format!("invalid bearer token: {why}"));
        let decode = |key: &DecodingKey| {
            jsonwebtoken::decode::<Claims>(token, key, &self.validation)
                .map(|d| d.claims)
                .map_err(|e| refused(describe(token, &e)))
        };
        let claims = match &self.decoding {
            Decoding::Hs256(key) => decode(key),
            Decoding::EdDsa { ring } => {
                let header = jsonwebtoken::decode_header(token).map_err(|e| refused(describe(token, &e)))?;
                if header.alg != Algorithm::EdDSA {
                    return Err(refused("wrong algorithm"));
                }
                // The kid is the caller's text: it is looked up, never echoed.
                let kid = header.kid.ok_or_else(|| refused("no key id (kid) in the header"))?;
                let key = ring.get(&kid).ok_or_else(|| refused("unknown key id (kid)"))?;
                decode(&key.decoding)
            }
        }?;
        strict(&claims, now_secs(), self.validation.leeway).map_err(refused)?;
        Ok(claims)
    }
}

/// 401 `unknown_subject` unless the token's `sub` names an account of the
/// token's role: a token signed for a user id that no account has (or had
/// another role) names nobody the platform knows.
async fn subject_known(store: &dyn IdentityStore, claims: &Claims) -> Result<(), ApiError> {
    match store.account(&claims.sub).await? {
        Some(account) if account.role == claims.role => Ok(()),
        Some(_) => Err(ApiError::unauthorized("invalid bearer token: its role is not the account's").with_code("unknown_subject")),
        None => Err(ApiError::unauthorized("invalid bearer token: its subject (sub) names no account").with_code("unknown_subject")),
    }
}

/// The claims rules jsonwebtoken does not check: a subject and a token id
/// that are there and not empty (a token without a `jti` could not be
/// revoked by a logout), and an `iat` no later than `now` plus `leeway`.
fn strict(claims: &Claims, now: u64, leeway: u64) -> Result<(), &'static str> {
    if claims.sub.trim().is_empty() {
        return Err("no subject (sub)");
    }
    if claims.jti.as_deref().is_none_or(|j| j.trim().is_empty()) {
        return Err("no token id (jti)");
    }
    if claims.iat > now.saturating_add(leeway) {
        return Err("issued in the future (iat)");
    }
    Ok(())
}

/// The claims rules of both modes: `alg` alone accepted, issuer `alpes`, `exp`, `sub` and `iss` required.
fn validation(alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "sub", "iss"]);
    validation
}

/// Why `token` was refused, in words that name no key and echo none of the token.
fn describe(token: &str, e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName | ErrorKind::InvalidKeyFormat => "wrong algorithm",
        _ if names_an_unknown_algorithm(token) => "wrong algorithm",
        _ => "malformed",
    }
}

/// Whether the token's header is JSON naming an `alg` that `jsonwebtoken`
/// does not know (`none`, for one), which fails as a malformed header there.
fn names_an_unknown_algorithm(token: &str) -> bool {
    use base64::Engine;
    #[derive(Deserialize)]
    struct AlgOnly {
        alg: String,
    }
    let Some(header) = token.split('.').next() else {
        return false;
    };
    let Ok(json) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')) else {
        return false;
    };
    serde_json::from_slice::<AlgOnly>(&json).is_ok_and(|h| h.alg.parse::<Algorithm>().is_err())
}

/// The caller of a request, proven by its bearer token or API key: the
/// extractor a route takes. 401 without a credential or with a bad one.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Caller);

impl std::ops::Deref for Authenticated {
    type Target = Caller;
    fn deref(&self) -> &Caller {
        &self.0
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    Arc<Jwt>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        <Authenticated as OptionalFromRequestParts<S>>::from_request_parts(parts, state)
            .await?
            .ok_or_else(|| ApiError::unauthorized("missing credentials: Authorization: Bearer <token> or X-API-Key"))
    }
}

/// `Option<Authenticated>`: `None` without credentials; a bad one is still 401.
impl<S> OptionalFromRequestParts<S> for Authenticated
where
    Arc<Jwt>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let jwt = Arc::<Jwt>::from_ref(state);
        let caller = caller_of(&jwt, &parts.headers).await?;
        if let Some(c) = &caller {
            crate::audit::RequestContext::of(parts).caller(c);
        }
        Ok(caller.map(Authenticated))
    }
}

/// The request's bearer token, `None` without an `Authorization` header; 401 for another scheme.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(header) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(|t| Some(t.trim()))
        .ok_or_else(|| ApiError::unauthorized("the Authorization header must be `Bearer <token>`"))
}

/// The header service clients send their API key in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The prefix of every API key.
pub const API_KEY_PREFIX: &str = "alpes_";

/// An API key's public id, from the key (`alpes_<id>_<secret>`).
pub fn api_key_id(key: &str) -> Option<&str> {
    let (id, secret) = key.strip_prefix(API_KEY_PREFIX)?.split_once('_')?;
    (!id.is_empty() && !secret.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(id)
}

/// SHA-256 of a key or token, hex: what the identity store keeps of it.
pub fn secret_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Equality that takes the same time wherever the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Jwt {
    /// The caller an API key names, if the key is known, matches and is not revoked.
    pub async fn authenticate_api_key(&self, key: &str) -> Result<Caller, ApiError> {
        let refused = || ApiError::unauthorized("invalid API key");
        let store = self.revocations.as_ref().ok_or_else(refused)?;
        let id = api_key_id(key).ok_or_else(refused)?;
        let stored = store.api_key(id).await?.ok_or_else(refused)?;
        if !constant_time_eq(secret_hash(key).as_bytes(), stored.key_hash.as_bytes()) {
            return Err(refused());
        }
        if stored.revoked_at.is_some() {
            return Err(ApiError::unauthorized("invalid API key: revoked"));
        }
        let now = alpes_schemas::now_millis();
        if stored.last_used_at.is_none_or(|t| now - t >= 60_000) {
            store.touch_api_key(id, now).await?;
        }
        Ok(Caller {
            user_id: stored.user_id,
            role: stored.role,
        })
    }
}

/// The caller named by the request's bearer token or API key, `None`
/// with neither; a bad or revoked credential is an error (401).
pub async fn caller_of(jwt: &Jwt, headers: &axum::http::HeaderMap) -> Result<Option<Caller>, ApiError> {
    if headers.contains_key(API_KEY_HEADER) && headers.contains_key(axum::http::header::AUTHORIZATION) {
        return Err(ApiError::unauthorized("send one credential: a bearer token or an API key, not both").with_code("two_credentials"));
    }
    if let Some(key) = headers.get(API_KEY_HEADER) {
        let key = key.to_str().map_err(|_| ApiError::unauthorized("invalid API key"))?;
        return jwt.authenticate_api_key(key.trim()).await.map(Some);
    }
    let Some(token) = bearer_token(headers)? else {
        return Ok(None);
    };
    let claims = jwt.authenticate(token).await?;
    Ok(Some(Caller {
        user_id: claims.sub,
        role: claims.role,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_issued_token_verifies_with_the_same_key_only() {
        let a = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let b = Jwt::new(b"fedcba9876543210fedcba9876543210");
        let t = a.issue("u1", Role::Proveedor, Duration::from_secs(60)).expect("issue");
        let c = a.verify(&t).expect("verify");
        assert_eq!(c.sub, "u1");
        assert_eq!(c.role, Role::Proveedor);
        assert_eq!(b.verify(&t).expect_err("other key").status, axum::http::StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn an_expired_token_is_rejected() {
        let a = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let claims = Claims {
            sub: "u".into(),
            role: Role::Admin,
            iat: 1,
            exp: 2,
            iss: ISSUER.into(),
            jti: None,
        };
        let t = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &a.encoding).expect("encode");
        assert!(a.verify(&t).expect_err("expired").message.contains("expired"));
    }

    #[test]
    fn a_token_without_a_subject_or_token_id_or_issued_in_the_future_is_refused() {
        let jwt = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let now = now_secs();
        let good = Claims {
            sub: "u".into(),
            role: Role::Consumidor,
            iat: now,
            exp: now + 600,
            iss: ISSUER.into(),
            jti: Some("j-1".into()),
        };
        let sign = |c: &Claims| jsonwebtoken::encode(&Header::new(Algorithm::HS256), c, &jwt.encoding).expect("encode");
        assert!(jwt.verify(&sign(&good)).is_ok());
        let within_leeway = Claims {
            iat: now + 30,
            ..good.clone()
        };
        assert!(jwt.verify(&sign(&within_leeway)).is_ok(), "clock skew within the leeway");
        for (bad, why) in [
            (
                Claims {
                    sub: String::new(),
                    ..good.clone()
                },
                "no subject",
            ),
            (
                Claims {
                    sub: "  ".into(),
                    ..good.clone()
                },
                "no subject",
            ),
            (Claims { jti: None, ..good.clone() }, "no token id"),
            (
                Claims {
                    jti: Some(String::new()),
                    ..good.clone()
                },
                "no token id",
            ),
            (
                Claims {
                    iat: now + 3600,
                    ..good.clone()
                },
                "issued in the future",
            ),
        ] {
            let refused = jwt.verify(&sign(&bad)).expect_err(why);
            assert_eq!(refused.status, axum::http::StatusCode::UNAUTHORIZED);
            assert!(refused.message.contains(why), "{}", refused.message);
        }
    }

    #[tokio::test]
    async fn a_request_with_both_a_token_and_an_api_key_is_refused_whichever_is_valid() {
        let jwt = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let token = jwt.issue("u1", Role::Admin, Duration::from_secs(60)).expect("issue");
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("header"),
        );
        assert!(caller_of(&jwt, &headers).await.expect("the token alone").is_some());
        headers.insert(API_KEY_HEADER, "alpes_abc_def".parse().expect("header"));
        let refused = caller_of(&jwt, &headers).await.expect_err("two credentials");
        assert_eq!((refused.status.as_u16(), refused.code), (401, "two_credentials"));
        headers.insert(axum::http::header::AUTHORIZATION, "Bearer not.a.token".parse().expect("header"));
        assert_eq!(
            caller_of(&jwt, &headers).await.expect_err("two credentials").code,
            "two_credentials"
        );
    }

    #[tokio::test]
    async fn a_revoked_jti_is_refused_until_the_token_expires() {
        let store = with_accounts(&[("u1", Role::Consumidor)]).await;
        let jwt = Jwt::new(b"0123456789abcdef0123456789abcdef").with_revocations(store.clone());
        let (token, claims) = jwt.issue_claims("u1", Role::Consumidor, Duration::from_secs(60)).expect("issue");
        let (other, _) = jwt.issue_claims("u1", Role::Consumidor, Duration::from_secs(60)).expect("issue");
        assert_eq!(jwt.authenticate(&token).await.expect("valid").sub, "u1");
        let jti = claims.jti.expect("every token has a jti");
        store
            .revoke_jti(&jti, i64::try_from(claims.exp).expect("exp") * 1000)
            .await
            .expect("revoke");
        let refused = jwt.authenticate(&token).await.expect_err("revoked");
        assert_eq!(refused.status, axum::http::StatusCode::UNAUTHORIZED);
        assert!(refused.message.contains("revoked"), "{}", refused.message);
        assert!(jwt.authenticate(&other).await.is_ok(), "only that token is revoked");
    }

    /// An identity store holding an account for each `(user id, role)`.
    async fn with_accounts(accounts: &[(&str, Role)]) -> Arc<crate::store::SqliteIdentity> {
        let store = Arc::new(crate::store::SqliteIdentity::in_memory().expect("store"));
        for (user_id, role) in accounts {
            let account = alpes_domain::identity::NewAccount {
                user_id: (*user_id).to_owned(),
                nombre: (*user_id).to_owned(),
                email: format!("{user_id}@example.org"),
                password_hash: "$argon2id$v=19$m=64,t=1,p=1$unused".into(),
                role: *role,
                organization: None,
                created_at: 0,
                created_by: (*user_id).to_owned(),
            };
            store.create_account(account).await.expect("account");
        }
        store
    }

    #[tokio::test]
    async fn a_token_whose_subject_names_no_account_of_its_role_is_refused_and_not_remembered() {
        let store = with_accounts(&[("known", Role::Proveedor)]).await;
        let jwt = Jwt::new(b"0123456789abcdef0123456789abcdef").with_revocations(store);
        let token = |user: &str, role: Role| jwt.issue(user, role, Duration::from_secs(60)).expect("issue");
        assert_eq!(
            jwt.authenticate(&token("known", Role::Proveedor)).await.expect("known").sub,
            "known"
        );
        assert_eq!(jwt.verified.len(), 1, "remembered once its subject is known");
        for (bad, why) in [
            (token("nobody", Role::Proveedor), "names no account"),
            (token("known", Role::Admin), "not the account's"),
        ] {
            // The rate limiter's look at it passes (a valid signature) without remembering it ...
            assert!(jwt.verify(&bad).is_ok());
            // ... and every request with it is refused.
            for _ in 0..2 {
                let refused = jwt.authenticate(&bad).await.expect_err(why);
                assert_eq!((refused.status.as_u16(), refused.code), (401, "unknown_subject"));
                assert!(refused.message.contains(why), "{}", refused.message);
            }
        }
        assert_eq!(jwt.verified.len(), 1, "refused tokens are not remembered");
        // Without the store (a process with no identity store) the subject is not looked up.
        let bare = Jwt::new(b"0123456789abcdef0123456789abcdef");
        assert!(bare.authenticate(&token("nobody", Role::Proveedor)).await.is_ok());
    }

    #[test]
    fn a_revocation_outlasts_the_leeway_a_token_is_still_accepted_in() {
        let jwt = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let (_, claims) = jwt.issue_claims("u1", Role::Consumidor, Duration::from_secs(60)).expect("issue");
        // A token past its expiry but within the leeway still verifies ...
        let mut late = claims.clone();
        late.exp = now_secs() - 1;
        let late_token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &late, &jwt.encoding).expect("encode");
        assert!(jwt.verify(&late_token).is_ok(), "the leeway accepts it");
        // ... so its revocation must last until expiry plus that leeway.
        let until = jwt.revoked_until(&late);
        assert_eq!(until, i64::try_from((late.exp + jwt.validation.leeway) * 1000).expect("ms"));
        assert!(until > i64::try_from(now_secs() * 1000).expect("ms"));
    }

    #[test]
    fn an_api_key_names_its_id_and_compares_in_constant_time() {
        assert_eq!(api_key_id("alpes_ab12_c-d_e"), Some("ab12"));
        for bad in [
            "",
            "alpes_",
            "alpes_ab12",
            "alpes__secret",
            "alpes_ab-1_secret",
            "other_ab12_secret",
            "alpes_ab12_",
        ] {
            assert_eq!(api_key_id(bad), None, "{bad:?}");
        }
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert_eq!(secret_hash("k").len(), 64);
    }

    fn ed25519() -> Ed25519SigningKey {
        Ed25519SigningKey::generate().expect("key")
    }

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn claims_for(sub: &str) -> Claims {
        let iat = now_secs();
        Claims {
            sub: sub.into(),
            role: Role::Admin,
            iat,
            exp: iat + 60,
            iss: ISSUER.into(),
            jti: Some("j1".into()),
        }
    }

    fn refusal(jwt: &Jwt, token: &str) -> String {
        let e = jwt.verify(token).expect_err("refused");
        assert_eq!(e.status, axum::http::StatusCode::UNAUTHORIZED);
        e.message
    }

    #[test]
    fn an_eddsa_token_round_trips_and_carries_the_signing_kid() {
        let key = ed25519();
        let jwt = Jwt::eddsa(&key, []).expect("jwt");
        let (token, claims) = jwt.issue_claims("u1", Role::Proveedor, Duration::from_secs(60)).expect("issue");
        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(key.kid()));
        assert_eq!((jwt.algorithm(), jwt.signing_kid()), (Algorithm::EdDSA, Some(key.kid())));
        let verified = jwt.verify(&token).expect("verify");
        assert_eq!(
            (verified.sub.as_str(), verified.role, verified.jti),
            ("u1", Role::Proveedor, claims.jti)
        );
        // Another key under the same kid does not verify it.
        let other = Ed25519SigningKey::from_pkcs8_pem(&ed25519().to_pkcs8_pem().expect("pem"), Some(key.kid())).expect("key");
        assert!(refusal(&Jwt::eddsa(&other, []).expect("jwt"), &token).contains("bad signature"));
        // Nor does a changed payload.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64(&serde_json::to_vec(&claims_for("someone-else")).expect("json"));
        parts[1] = &forged;
        assert!(refusal(&jwt, &parts.join(".")).contains("bad signature"));
    }

    #[test]
    fn a_token_of_the_previous_key_verifies_while_its_public_key_is_configured_and_not_after() {
        let (old, new) = (ed25519(), ed25519());
        let before = Jwt::eddsa(&old, []).expect("jwt");
        let old_token = before.issue("u1", Role::Consumidor, Duration::from_secs(60)).expect("issue");
        // The rotation: the new key signs, the old one only verifies.
        let rotating = Jwt::eddsa(&new, [old.public()]).expect("jwt");
        assert_eq!(rotating.verify(&old_token).expect("old token still verifies").sub, "u1");
        let new_token = rotating.issue("u2", Role::Consumidor, Duration::from_secs(60)).expect("issue");
        assert_eq!(
            jsonwebtoken::decode_header(&new_token).expect("header").kid.as_deref(),
            Some(new.kid())
        );
        assert_eq!(rotating.verifying_kids().len(), 2);
        // Instances not yet switched verify the new tokens once they know the new public key.
        assert!(Jwt::eddsa(&old, [new.public()]).expect("jwt").verify(&new_token).is_ok());
        // The old key dropped: its tokens stop verifying, the new ones still do.
        let after = Jwt::eddsa(&new, []).expect("jwt");
        assert!(refusal(&after, &old_token).contains("unknown key id"));
        assert_eq!(after.verify(&new_token).expect("verify").sub, "u2");
    }

    #[test]
    fn a_token_with_an_unknown_or_missing_kid_is_refused_without_naming_it() {
        let key = ed25519();
        let jwt = Jwt::eddsa(&key, []).expect("jwt");
        let stranger = Jwt::eddsa(&ed25519(), []).expect("jwt");
        let token = stranger.issue("u1", Role::Admin, Duration::from_secs(60)).expect("issue");
        let message = refusal(&jwt, &token);
        assert_eq!(message, "invalid bearer token: unknown key id (kid)");
        for kid in [key.kid(), stranger.signing_kid().expect("kid")] {
            assert!(!message.contains(kid), "{message}");
        }
        let der = EncodingKey::from_ed_der(&key.to_pkcs8_der().expect("der"));
        let no_kid = jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims_for("u1"), &der).expect("encode");
        assert_eq!(refusal(&jwt, &no_kid), "invalid bearer token: no key id (kid) in the header");
    }

    #[test]
    fn an_hs256_token_is_refused_in_eddsa_mode_and_an_eddsa_token_in_hs256_mode() {
        let key = ed25519();
        let eddsa = Jwt::eddsa(&key, []).expect("jwt");
        let hs256 = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let hs_token = hs256.issue("u1", Role::Admin, Duration::from_secs(60)).expect("issue");
        assert_eq!(refusal(&eddsa, &hs_token), "invalid bearer token: wrong algorithm");
        let ed_token = eddsa.issue("u1", Role::Admin, Duration::from_secs(60)).expect("issue");
        assert_eq!(refusal(&hs256, &ed_token), "invalid bearer token: wrong algorithm");
        // The classic confusion: HS256 keyed with the (public) Ed25519 key, under the signing kid.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid().to_owned());
        let public = key.public();
        let confused = jsonwebtoken::encode(&header, &claims_for("u1"), &EncodingKey::from_secret(public.as_bytes())).expect("encode");
        assert_eq!(refusal(&eddsa, &confused), "invalid bearer token: wrong algorithm");
        let x = public.jwk()["x"].as_str().expect("x").to_owned();
        let confused = jsonwebtoken::encode(&header, &claims_for("u1"), &EncodingKey::from_secret(x.as_bytes())).expect("encode");
        assert_eq!(refusal(&eddsa, &confused), "invalid bearer token: wrong algorithm");
    }

    #[test]
    fn an_alg_none_token_is_refused_in_both_modes() {
        let key = ed25519();
        let claims = b64(&serde_json::to_vec(&claims_for("u1")).expect("json"));
        for header in [
            serde_json::json!({"alg": "none", "typ": "JWT"}),
            serde_json::json!({"alg": "none", "typ": "JWT", "kid": key.kid()}),
            serde_json::json!({"alg": "None", "kid": key.kid()}),
        ] {
            let head = b64(header.to_string().as_bytes());
            for token in [format!("{head}.{claims}."), format!("{head}.{claims}.c2ln")] {
                for jwt in [Jwt::eddsa(&key, []).expect("jwt"), Jwt::new(b"0123456789abcdef0123456789abcdef")] {
                    assert_eq!(refusal(&jwt, &token), "invalid bearer token: wrong algorithm", "{header}");
                }
            }
        }
        let eddsa = Jwt::eddsa(&key, []).expect("jwt");
        for junk in ["", "a.b", "a.b.c", "not a token at all"] {
            assert_eq!(refusal(&eddsa, junk), "invalid bearer token: malformed", "{junk:?}");
        }
    }

    #[tokio::test]
    async fn a_revoked_jti_is_refused_in_eddsa_mode_too() {
        let store = with_accounts(&[("u1", Role::Consumidor)]).await;
        let jwt = Jwt::eddsa(&ed25519(), []).expect("jwt").with_revocations(store.clone());
        let (token, claims) = jwt.issue_claims("u1", Role::Consumidor, Duration::from_secs(60)).expect("issue");
        let (other, _) = jwt.issue_claims("u1", Role::Consumidor, Duration::from_secs(60)).expect("issue");
        assert_eq!(jwt.authenticate(&token).await.expect("valid").sub, "u1");
        store
            .revoke_jti(claims.jti.as_deref().expect("jti"), jwt.revoked_until(&claims))
            .await
            .expect("revoke");
        let refused = jwt.authenticate(&token).await.expect_err("revoked");
        assert_eq!(refused.status, axum::http::StatusCode::UNAUTHORIZED);
        assert!(refused.message.contains("revoked"), "{}", refused.message);
        assert!(jwt.authenticate(&other).await.is_ok(), "only that token is revoked");
    }

    #[test]
    fn an_expired_eddsa_token_is_rejected() {
        let key = ed25519();
        let jwt = Jwt::eddsa(&key, []).expect("jwt");
        let mut claims = claims_for("u");
        (claims.iat, claims.exp) = (1, 2);
        let t = jsonwebtoken::encode(&jwt.header, &claims, &jwt.encoding).expect("encode");
        assert!(refusal(&jwt, &t).contains("expired"));
    }

    #[test]
    fn the_jwks_lists_the_public_keys_signing_key_first_and_none_for_hs256() {
        let (new, old) = (ed25519(), ed25519());
        let jwt = Jwt::eddsa(&new, [old.public(), new.public()]).expect("the signing key repeated is fine");
        let jwks = jwt.jwks();
        let keys = jwks["keys"].as_array().expect("keys");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], new.public().jwk());
        assert_eq!(keys[1], old.public().jwk());
        for k in keys {
            assert_eq!((k["kty"].as_str(), k["crv"].as_str()), (Some("OKP"), Some("Ed25519")));
            assert_eq!((k["alg"].as_str(), k["use"].as_str()), (Some("EdDSA"), Some("sig")));
            assert!(k.get("d").is_none(), "never the private key");
        }
        // A JWK from the set verifies the tokens: what another service does with it.
        let token = jwt.issue("u1", Role::Admin, Duration::from_secs(60)).expect("issue");
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(keys[0].clone()).expect("jwk");
        let decoded = jsonwebtoken::decode::<Claims>(&token, &DecodingKey::from_jwk(&jwk).expect("key"), &validation(Algorithm::EdDSA));
        assert_eq!(decoded.expect("verifies").claims.sub, "u1");
        assert_eq!(
            Jwt::new(b"0123456789abcdef0123456789abcdef").jwks(),
            serde_json::json!({"keys": []})
        );
    }

    #[tokio::test]
    async fn a_remembered_eddsa_token_answers_only_for_its_exact_text_and_until_it_expires() {
        let key = ed25519();
        let jwt = Jwt::eddsa(&key, []).expect("jwt");
        let verified = &jwt.verified;
        let token = jwt.issue("u1", Role::Admin, Duration::from_secs(60)).expect("issue");
        assert!(jwt.verify(&token).is_ok());
        assert_eq!(verified.len(), 0, "verify alone remembers nothing");
        assert_eq!(jwt.authenticate(&token).await.expect("first").sub, "u1");
        assert_eq!(verified.len(), 1, "remembered");
        assert_eq!(jwt.clone().verify(&token).expect("again").sub, "u1", "clones share it");
        // A token with the same signature and other claims is not the remembered one.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64(&serde_json::to_vec(&claims_for("someone-else")).expect("json"));
        parts[1] = &forged;
        assert!(refusal(&jwt, &parts.join(".")).contains("bad signature"));
        // Refusals are not remembered.
        assert_eq!(verified.len(), 1);
        // A remembered token past its expiry plus the leeway is refused as expired.
        let mut late = claims_for("u2");
        late.exp = now_secs() - 30;
        let late_token = jsonwebtoken::encode(&jwt.header, &late, &jwt.encoding).expect("encode");
        assert!(jwt.authenticate(&late_token).await.is_ok(), "within the leeway");
        assert!(verified.get(&late_token, now_secs()).is_some());
        assert!(verified.get(&late_token, late.exp + jwt.validation.leeway + 1).is_none());
        // The ring without the key (a restart) has its own, empty memory.
        assert!(refusal(&Jwt::eddsa(&ed25519(), []).expect("jwt"), &token).contains("unknown key id"));
        // With no memory every check is a full one.
        let uncached = Jwt::eddsa(&key, []).expect("jwt").with_verified_capacity(0);
        assert!(uncached.authenticate(&token).await.is_ok());
        assert_eq!(uncached.verified.len(), 0);
    }

    #[tokio::test]
    async fn a_remembered_hs256_token_answers_only_for_its_exact_text_and_only_under_its_own_secret() {
        let jwt = Jwt::new(b"0123456789abcdef0123456789abcdef");
        let token = jwt.issue("u1", Role::Admin, Duration::from_secs(60)).expect("issue");
        assert_eq!(jwt.authenticate(&token).await.expect("first").sub, "u1");
        assert_eq!(jwt.verified.len(), 1, "remembered");
        assert_eq!(jwt.clone().verify(&token).expect("again").sub, "u1", "clones share it");
        let mut tampered = token.clone();
        tampered.push('A');
        assert!(jwt.authenticate(&tampered).await.is_err());
        assert_eq!(jwt.verified.len(), 1, "refusals are not remembered");
        // Another secret (a restart with a new key) has its own, empty memory.
        let other = Jwt::new(b"another secret, also 32 bytes...");
        assert!(refusal(&other, &token).contains("bad signature"));
    }

    #[test]
    fn two_different_keys_under_one_kid_are_a_configuration_error() {
        let key = ed25519();
        let pem = ed25519().public().to_public_key_pem().expect("pem");
        let impostor = Ed25519PublicKey::from_public_key_pem(&pem, Some(key.kid())).expect("public");
        let err = Jwt::eddsa(&key, [impostor]).expect_err("clash");
        assert!(err.to_string().contains("kid"), "{err}");
    }

    #[test]
    fn a_wrong_role_is_forbidden() {
        let c = Caller {
            user_id: "u".into(),
            role: Role::Consumidor,
        };
        assert_eq!(
            ApiError::from(c.require(&[Role::Proveedor, Role::Admin]).expect_err("403")).status,
            axum::http::StatusCode::FORBIDDEN
        );
        assert!(c.require(&[Role::Consumidor]).is_ok());
    }
}
