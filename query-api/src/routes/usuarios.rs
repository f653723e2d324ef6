//! `GET /usuarios[?rol=consumidor&limit=100&cursor=...]`: users, oldest
//! first, paged (admin only). Never a password hash or a secret: the catalog
//! holds none.

use super::page_limit;
use crate::vocabulary::Usuario;
use crate::Shared;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::{ApiError, QueryParams};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    rol: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// One page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Usuarios<'a> {
    usuarios: Vec<Usuario<'a>>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// The handler.
#[tracing::instrument(name = "GET /usuarios", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    QueryParams(params): QueryParams<Params>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let limit = page_limit(params.limit)?;
    if let Some(rol) = &params.rol {
        rol.parse::<Role>().map_err(|e| ApiError::bad_request("bad_rol", e))?;
    }
    let page = state.catalog.users(params.rol.as_deref(), params.cursor.as_deref(), limit).await?;
    let nombres = super::nombres(&state, &page.users).await?;
    let usuarios = page
        .users
        .iter()
        .zip(&nombres)
        .map(|(u, nombre)| Usuario::new(u, nombre.as_deref()))
        .collect();
    Ok(Json(Usuarios {
        usuarios,
        next_cursor: page.next,
    })
    .into_response())
}
