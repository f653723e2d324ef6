//! `POST /auth/logout` (bearer token): revokes the access token's `jti` for as
//! long as it could still be accepted (its expiry plus the verification
//! leeway) and, given `{"refresh_token": "..."}`, that token's whole family.
//! 204; an unknown refresh token is not an error (the session is over either way).

use super::auth_refresh::refresh_token_of;
use crate::openapi::IDENTITY;
use crate::IngestState;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{bearer_token, secret_hash};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, schema, Op};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::post("/auth/logout", "logout", IDENTITY, "Log out")
        .describe(
            "Revokes the bearer token for as long as it could still be accepted (its expiry plus the verification \
             leeway) and, given a refresh token, that token's whole family. An unknown refresh token is not an error.",
        )
        .bearer_only()
        .body(false, "The refresh token to revoke too.", json_content(schema("RefreshRequest")))
        .ok(204, "Logged out.", None, &[])
        .error(400, &["bad_json"], "The body is not `{\"refresh_token\": ...}`.")
        .standard(413)
}

/// The handler.
#[tracing::instrument(name = "POST /auth/logout", skip_all)]
pub async fn handler(
    State(state): State<IngestState>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let token = bearer_token(&headers)?.ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer token"))?;
    let claims = state.jwt.authenticate(token).await?;
    ctx.actor(&claims.sub, Some(claims.role));
    let refresh = if body.is_empty() { None } else { Some(refresh_token_of(&body)?) };
    let identity = &state.identity;
    if let Some(jti) = &claims.jti {
        identity.store.revoke_jti(jti, state.jwt.revoked_until(&claims)).await?;
    }
    if let Some(refresh) = refresh {
        identity
            .store
            .revoke_refresh_family(&secret_hash(&refresh), alpes_schemas::now_millis())
            .await?;
    }
    tracing::info!(user_id = %claims.sub, "logout");
    Ok(StatusCode::NO_CONTENT)
}
