//! `DELETE /api-keys/{id}` (admin only): revokes an API key at once; every
//! request with it is refused from then on (401). 204; 404 if the key is
//! unknown or already revoked.

use crate::openapi::IDENTITY;
use crate::IngestState;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{path, Op};
use axum::extract::{Path, State};
use axum::http::StatusCode;

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::delete("/api-keys/{id}", "revokeApiKey", IDENTITY, "Revoke an API key")
        .describe("Requests with it are refused (401) at once.")
        .auth(&["admin"])
        .param(path("id", "The key's id (the part between `alpes_` and the next `_`)."))
        .ok(204, "Revoked.", None, &[])
        .standard(404)
}

/// The handler.
#[tracing::instrument(name = "DELETE /api-keys/{id}", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(&[Role::Admin])?;
    if !state.identity.store.revoke_api_key(&id, alpes_schemas::now_millis()).await? {
        return Err(ApiError::not_found("no active API key with this id"));
    }
    tracing::info!(key_id = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
