//! Bearer tokens: HS256 JWTs signed with the instance's key, verified locally.
//! [`Caller`] is the axum extractor every protected route takes.
//!
//! Every token carries a `jti`. With the identity store attached
//! ([`Jwt::with_revocations`]), a token whose `jti` was revoked (a logout) is
//! refused until it expires; that check is one lookup by key.
//!
//! Service clients may send `X-API-Key: alpes_<id>_<secret>` instead of a
//! bearer token (with the identity store attached). The key is looked up by
//! its id, its SHA-256 compared in constant time, and a revoked key is
//! refused; the caller is the key's user, with the key's role. Its
//! `last_used_at` is written at most once a minute per key.

use crate::http::ApiError;
use crate::store::IdentityStore;
use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const ISSUER: &str = "alpes";

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Uploads images and is credited for their use.
    Proveedor,
    /// Queries and downloads anonymized images and is billed.
    Consumidor,
    /// Operates the instance.
    Admin,
}

impl Role {
    /// The role's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Proveedor => "proveedor",
            Role::Consumidor => "consumidor",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "proveedor" => Ok(Role::Proveedor),
            "consumidor" => Ok(Role::Consumidor),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?}; expected proveedor, consumidor or admin")),
        }
    }
}

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

/// Issues and verifies tokens with one symmetric key.
#[derive(Clone)]
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    revocations: Option<Arc<dyn IdentityStore>>,
}

impl std::fmt::Debug for Jwt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Jwt(HS256)")
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Jwt {
    /// A signer/verifier for `key` (at least 32 bytes recommended).
    pub fn new(key: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        Jwt {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            revocations: None,
        }
    }

    /// The same signer, refusing tokens whose `jti` `store` has revoked.
    pub fn with_revocations(mut self, store: Arc<dyn IdentityStore>) -> Self {
        self.revocations = Some(store);
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
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(|e| crate::Error::Auth(e.to_string()))?;
        Ok((token, claims))
    }

    /// Until when (ms) a revocation of `claims` must last: the token's expiry
    /// plus the clock-skew leeway [`Jwt::verify`] still accepts it for.
    pub fn revoked_until(&self, claims: &Claims) -> i64 {
        let last_accepted = claims.exp.saturating_add(self.validation.leeway);
        i64::try_from(last_accepted).unwrap_or(i64::MAX / 1000).saturating_mul(1000)
    }

    /// The claims of a valid token that was not revoked.
    pub async fn authenticate(&self, token: &str) -> Result<Claims, ApiError> {
        let claims = self.verify(token)?;
        if let (Some(store), Some(jti)) = (&self.revocations, &claims.jti) {
            if store.jti_revoked(jti, alpes_schemas::now_millis()).await? {
                return Err(ApiError::unauthorized("invalid bearer token: revoked (logged out)"));
            }
        }
        Ok(claims)
    }

    /// The claims of a valid token.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| ApiError::unauthorized(format!("invalid bearer token: {}", describe(&e))))
    }
}

fn describe(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAlgorithm => "wrong algorithm",
        _ => "malformed",
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user id from the token.
    pub user_id: String,
    /// The role from the token.
    pub role: Role,
}

impl Caller {
    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            let names: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::forbidden(format!("this route needs the role {}", names.join(" or "))))
        }
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<Jwt>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        <Caller as OptionalFromRequestParts<S>>::from_request_parts(parts, state)
            .await?
            .ok_or_else(|| ApiError::unauthorized("missing credentials: Authorization: Bearer <token> or X-API-Key"))
    }
}

/// `Option<Caller>`: `None` without credentials; a bad one is still 401.
impl<S> OptionalFromRequestParts<S> for Caller
where
    Arc<Jwt>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, Self::Rejection> {
        let jwt = Arc::<Jwt>::from_ref(state);
        let caller = Caller::optional(&jwt, &parts.headers).await?;
        if let Some(c) = &caller {
            crate::audit::RequestContext::of(parts).caller(c);
        }
        Ok(caller)
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

impl Caller {
    /// The caller named by the request's bearer token or API key, `None`
    /// with neither; a bad or revoked credential is an error (401).
    pub async fn optional(jwt: &Jwt, headers: &axum::http::HeaderMap) -> Result<Option<Caller>, ApiError> {
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

    #[tokio::test]
    async fn a_revoked_jti_is_refused_until_the_token_expires() {
        let store = Arc::new(crate::store::SqliteIdentity::in_memory().expect("store"));
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

    #[test]
    fn a_wrong_role_is_forbidden() {
        let c = Caller {
            user_id: "u".into(),
            role: Role::Consumidor,
        };
        assert_eq!(
            c.require(&[Role::Proveedor, Role::Admin]).expect_err("403").status,
            axum::http::StatusCode::FORBIDDEN
        );
        assert!(c.require(&[Role::Consumidor]).is_ok());
    }
}
