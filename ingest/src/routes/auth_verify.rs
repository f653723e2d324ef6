//! `POST /auth/verify`: `{"token": "..."}` → 200 `{"active": true, "sub",
//! "role", "exp", "jti"}` for a valid, unrevoked access token, else 200
//! `{"active": false}` (token introspection, as RFC 7662 answers it), so
//! another service can check a token it cannot verify itself.

use super::json_body;
use crate::IngestState;
use alpes_platform::http::ApiError;
use axum::body::Bytes;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[schema(as = VerifyRequest)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    token: String,
}

/// The handler.
#[tracing::instrument(name = "POST /auth/verify", skip_all)]
pub async fn handler(State(state): State<IngestState>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let req: Request = json_body(&body, 8 * 1024, "{\"token\": ...}")?;
    Ok(Json(match state.jwt.authenticate(req.token.trim()).await {
        Ok(c) => json!({"active": true, "sub": c.sub, "role": c.role, "exp": c.exp, "iat": c.iat, "jti": c.jti}),
        Err(e) if e.status == axum::http::StatusCode::UNAUTHORIZED => json!({"active": false}),
        Err(e) => return Err(e),
    }))
}
