//! `POST /auth/verify`: `{"token": "..."}` → 200 `{"active": true, "sub",
//! "role", "exp", "jti"}` for a valid, unrevoked access token, else 200
//! `{"active": false}` (token introspection, as RFC 7662 answers it), so
//! another service can check a token it cannot verify itself.

use super::json_body;
use crate::openapi::IDENTITY;
use crate::IngestState;
use alpes_platform::auth::Role;
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, schema, Op};
use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[schema(as = VerifyRequest)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    token: String,
}

/// The answer: `{"active": false}` alone for a bad, expired or revoked token
/// (RFC 7662 says nothing more about an inactive one), else the token's claims.
#[derive(Debug, Default, Serialize, ToSchema)]
#[schema(as = Introspection)]
pub struct Introspeccion {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<Role>,
    /// Seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    /// Seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    /// Null for a token minted before tokens had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<Option<String>>,
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::post(
        "/auth/verify",
        "verifyToken",
        IDENTITY,
        "Introspect an access token (RFC 7662 style)",
    )
    .describe("`active: false` for a bad, expired or revoked token; the claims otherwise.")
    .public()
    .body(true, "The token.", json_content(schema("VerifyRequest")))
    .ok(200, "The token's state.", Some(json_content(schema("Introspection"))), &[])
    .error(400, &["bad_json"], "The body is not `{\"token\": ...}`.")
    .standard(413)
    .standard(503)
}

/// The handler.
#[tracing::instrument(name = "POST /auth/verify", skip_all)]
pub async fn handler(State(state): State<IngestState>, body: Bytes) -> Result<Json<Introspeccion>, ApiError> {
    let req: Request = json_body(&body, 8 * 1024, "{\"token\": ...}")?;
    Ok(Json(match state.jwt.authenticate(req.token.trim()).await {
        Ok(c) => Introspeccion {
            active: true,
            sub: Some(c.sub),
            role: Some(c.role),
            exp: Some(c.exp),
            iat: Some(c.iat),
            jti: Some(c.jti),
        },
        Err(e) if e.status == axum::http::StatusCode::UNAUTHORIZED => Introspeccion::default(),
        Err(e) => return Err(e),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_inactive_token_is_answered_active_false_alone_and_an_old_token_has_a_null_jti() {
        assert_eq!(serde_json::to_value(Introspeccion::default()).unwrap(), json!({ "active": false }));
        let old = Introspeccion {
            active: true,
            sub: Some("u-1".into()),
            role: Some(Role::Consumidor),
            exp: Some(20),
            iat: Some(10),
            jti: Some(None),
        };
        assert_eq!(
            serde_json::to_value(old).unwrap(),
            json!({ "active": true, "sub": "u-1", "role": "consumidor", "exp": 20, "iat": 10, "jti": null })
        );
    }
}
