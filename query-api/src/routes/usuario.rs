//! `GET /usuarios/{id}`: one user (admin, or the user itself). Never a
//! password hash or a secret.

use crate::QueryState;
use alpes_platform::auth::{Caller, Role};
use alpes_platform::http::ApiError;
use alpes_platform::store::catalog::CatalogUser;
use axum::extract::{Path, State};
use axum::Json;

/// The handler.
#[tracing::instrument(name = "GET /usuarios/{id}", skip_all, fields(user = %caller.user_id))]
pub async fn handler(State(state): State<QueryState>, caller: Caller, Path(id): Path<String>) -> Result<Json<CatalogUser>, ApiError> {
    if caller.role != Role::Admin && caller.user_id != id {
        return Err(ApiError::forbidden("a user can only read itself"));
    }
    state
        .catalog
        .user(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no user {id}")))
}
