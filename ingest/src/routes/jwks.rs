//! `GET /.well-known/jwks.json`: the public keys bearer tokens are verified
//! with, as a JWK Set (RFC 7517), so another service can verify tokens
//! locally. EdDSA mode lists the signing key and every verification-only key
//! (`kty: OKP`, `crv: Ed25519`, `x`, `kid`, `alg: EdDSA`, `use: sig`); HS256
//! has no public key, so the list is empty. Never a private key. No token needed.

use crate::IngestState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

/// The handler. Cacheable for five minutes: a rotation adds the new key as
/// verification-only before it signs, so a cached set goes stale gently.
pub async fn handler(State(state): State<IngestState>) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "public, max-age=300")], axum::Json(state.jwt.jwks()))
}
