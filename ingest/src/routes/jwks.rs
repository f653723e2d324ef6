//! `GET /.well-known/jwks.json`: the public keys bearer tokens are verified
//! with, as a JWK Set (RFC 7517), so another service can verify tokens
//! locally. EdDSA mode lists the signing key and every verification-only key
//! (`kty: OKP`, `crv: Ed25519`, `x`, `kid`, `alg: EdDSA`, `use: sig`); HS256
//! has no public key, so the list is empty. Never a private key. No token needed.

use crate::openapi::IDENTITY;
use crate::IngestState;
use alpes_platform::openapi::{json_content, response_header, schema, Op};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::get(
        "/.well-known/jwks.json",
        "jwks",
        IDENTITY,
        "The public keys tokens are verified with",
    )
    .public()
    .describe(
        "A JWK Set (RFC 7517): in EdDSA mode the signing key first, then every verification-only key; \
             empty in HS256 mode. Never a private key. Cacheable for five minutes.",
    )
    .ok(
        200,
        "The key set.",
        Some(json_content(schema("Jwks"))),
        &[(
            "Cache-Control",
            response_header(json!({ "type": "string" }), true, "`public, max-age=300`."),
        )],
    )
}

/// The handler. Cacheable for five minutes: a rotation adds the new key as
/// verification-only before it signs, so a cached set goes stale gently.
pub async fn handler(State(state): State<IngestState>) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "public, max-age=300")], axum::Json(state.jwt.jwks()))
}
