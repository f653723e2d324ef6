//! `GET /usuarios[?rol=consumidor&limit=100&cursor=...]`: users, oldest
//! first, paged (admin only). Never a password hash or a secret: the catalog
//! holds none.

use super::page_limit;
use crate::openapi::IDENTITY;
use crate::vocabulary::Usuario;
use crate::Shared;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::{ApiError, QueryParams};
use alpes_platform::openapi::{json_content, schema, Op};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Only this role.
    #[param(inline, value_type = Option<Role>)]
    rol: Option<String>,
    /// Page size, 1 to 1000.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<usize>,
    /// The previous page's `next_cursor` (opaque); a cursor this server did not issue is 400 `bad_cursor`.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// One page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Usuarios<'a> {
    usuarios: Vec<Usuario<'a>>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::get("/usuarios", "listUsers", IDENTITY, "Users, oldest first")
        .describe("Never a password hash or a secret.")
        .auth(&["admin"])
        .query_params::<Params>()
        .ok(200, "One page.", Some(json_content(schema("Usuarios"))), &[])
        .error(
            400,
            &["bad_query", "bad_limit", "bad_rol", "bad_cursor"],
            "A malformed or unknown query key, a limit outside 1 to 1000, an unknown role, or a foreign cursor.",
        )
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
