//! `GET /monetizacion/movimientos/{usuario_id}[?limit=100&cursor=...]`: a
//! provider's ledger, newest first, paged with an opaque cursor. A page
//! boundary stays put while new movements arrive.

use super::{may_read_money_of, page_limit};
use crate::vocabulary::Movimiento;
use crate::Shared;
use alpes_platform::auth::Authenticated;
use alpes_platform::http::{ApiError, QueryParams};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// One page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Movimientos<'a> {
    usuario_id: String,
    movimientos: Vec<Movimiento<'a>>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: Option<String>,
}

/// The handler.
#[tracing::instrument(name = "GET /monetizacion/movimientos/{usuario_id}", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    Path(usuario_id): Path<String>,
    QueryParams(params): QueryParams<Params>,
) -> Result<Response, ApiError> {
    may_read_money_of(&caller, &usuario_id)?;
    let limit = page_limit(params.limit)?;
    let page = state.ledger.movements(&usuario_id, params.cursor.as_deref(), limit).await?;
    Ok(Json(Movimientos {
        usuario_id,
        movimientos: page.entries.iter().map(Movimiento::from).collect(),
        next_cursor: page.next,
    })
    .into_response())
}
