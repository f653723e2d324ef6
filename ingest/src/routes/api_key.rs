//! `DELETE /api-keys/{id}` (admin only): revokes an API key at once; every
//! request with it is refused from then on (401). 204; 404 if the key is
//! unknown or already revoked.

use crate::IngestState;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::ApiError;
use axum::extract::{Path, State};
use axum::http::StatusCode;

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
