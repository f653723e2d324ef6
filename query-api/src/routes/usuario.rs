//! `GET /usuarios/{id}`: one user (admin, or the user itself), with its
//! login attempts counted from the audit trail (`intentos_login`: every
//! attempt, the failed ones, the last one's time). Never a password hash or
//! a secret.

use crate::vocabulary;
use crate::Shared;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::ApiError;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// A user with its login attempts.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = UsuarioDetalle)]
pub struct Usuario<'a> {
    #[serde(flatten)]
    user: vocabulary::Usuario<'a>,
    intentos_login: IntentosLogin,
}

/// A user's login attempts.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntentosLogin {
    total: u64,
    fallidos: u64,
    /// When the last attempt happened (ms); null if none.
    ultimo_at: Option<i64>,
}

/// The handler.
#[tracing::instrument(name = "GET /usuarios/{id}", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if caller.role != Role::Admin && caller.user_id != id {
        return Err(ApiError::forbidden("a user can only read itself"));
    }
    let user = state
        .catalog
        .user(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no user {id}")))?;
    let logins = state.audit.logins(&id).await?;
    let nombre = state.identity.account(&id).await?.map(|a| a.nombre);
    Ok(Json(Usuario {
        user: vocabulary::Usuario::new(&user, nombre.as_deref()),
        intentos_login: IntentosLogin {
            total: logins.total,
            fallidos: logins.failed,
            ultimo_at: logins.last_at,
        },
    })
    .into_response())
}
