//! `GET /usuarios/{id}`: one user (admin, or the user itself), with its
//! login attempts counted from the audit trail (`intentos_login`: every
//! attempt, the failed ones, the last one's time). Never a password hash or
//! a secret.

use crate::openapi::IDENTITY;
use crate::vocabulary;
use crate::Shared;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, path, schema, Op};
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

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::get("/usuarios/{id}", "getUser", IDENTITY, "One user")
        .describe("An admin reads anyone; any other user only itself (403 otherwise).")
        .auth(&[])
        .param(path("id", "The user id."))
        .ok(
            200,
            "The user, with its login attempts.",
            Some(json_content(schema("UsuarioDetalle"))),
            &[],
        )
        .standard(403)
        .standard(404)
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
