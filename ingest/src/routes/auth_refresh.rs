//! `POST /auth/refresh`: `{"refresh_token": "..."}` → 200 with a new access
//! token and the refresh token's successor. The presented token is used up;
//! presenting a used one again revokes its whole family (401
//! `refresh_reused`: whoever holds a copy is logged out too). An unknown,
//! expired or revoked token gets 401 `invalid_refresh`.

use super::json_body;
use crate::identity::random_token;
use crate::openapi::IDENTITY;
use crate::IngestState;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::secret_hash;
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, schema, Op};
use alpes_platform::store::Rotation;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[schema(as = RefreshRequest)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    refresh_token: String,
}

/// The refresh token of a JSON body `{"refresh_token": "..."}`.
pub fn refresh_token_of(body: &[u8]) -> Result<String, ApiError> {
    json_body::<Request>(body, 4 * 1024, "{\"refresh_token\": ...}").map(|r| r.refresh_token)
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::post("/auth/refresh", "refreshToken", IDENTITY, "A new access token for a refresh token")
        .describe(
            "A refresh token works once and is answered with its successor. Presenting a used one again \
             revokes its whole family (`refresh_reused`).",
        )
        .public()
        .body(true, "The refresh token.", json_content(schema("RefreshRequest")))
        .ok(200, "A new token pair.", Some(json_content(schema("Tokens"))), &[])
        .error(400, &["bad_json"], "The body is not `{\"refresh_token\": ...}`.")
        .error(
            401,
            &["refresh_reused", "invalid_refresh"],
            "A used, unknown, expired or revoked refresh token.",
        )
        .standard(413)
        .standard(503)
}

/// The handler.
#[tracing::instrument(name = "POST /auth/refresh", skip_all)]
pub async fn handler(State(state): State<IngestState>, ctx: RequestContext, body: Bytes) -> Result<Response, ApiError> {
    let presented = refresh_token_of(&body)?;
    let identity = &state.identity;
    let now = alpes_schemas::now_millis();
    let next = random_token()?;
    let rotation = identity
        .store
        .rotate_refresh(&secret_hash(&presented), &secret_hash(&next), identity.refresh_expiry(now), now)
        .await?;
    match rotation {
        Rotation::Rotated { user_id, role, .. } => {
            ctx.actor(&user_id, Some(role));
            let (tokens, _) = identity.answer(&state.jwt, &user_id, role, next)?;
            Ok((StatusCode::OK, axum::Json(tokens)).into_response())
        }
        Rotation::Reused { user_id } => {
            ctx.actor(&user_id, None);
            tracing::warn!(user_id = %user_id, "a used refresh token was presented again: its family is revoked");
            Err(
                ApiError::unauthorized("this refresh token was already used; every session it belongs to is revoked")
                    .with_code("refresh_reused"),
            )
        }
        Rotation::Invalid => Err(ApiError::unauthorized("unknown, expired or revoked refresh token").with_code("invalid_refresh")),
    }
}
