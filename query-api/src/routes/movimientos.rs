//! `GET /monetizacion/movimientos/{usuario_id}[?limit=100&cursor=...]`: a
//! provider's or a consumer's ledger, newest first, paged with an opaque cursor. A page
//! boundary stays put while new movements arrive.

use super::{may_read_money_of, page_limit};
use crate::openapi::MONEY;
use crate::vocabulary::Movimiento;
use crate::Shared;
use alpes_platform::auth::Authenticated;
use alpes_platform::http::{ApiError, QueryParams};
use alpes_platform::openapi::{json_content, path, schema, Op};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Page size, 1 to 1000.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<usize>,
    /// The previous page's `next_cursor` (opaque); a cursor this server did not issue is 400 `bad_cursor`.
    #[param(min_length = 1)]
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

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::get(
        "/monetizacion/movimientos/{usuario_id}",
        "listMovements",
        MONEY,
        "A provider's or a consumer's ledger, newest first",
    )
    .describe(
        "A provider's credits (`uso`) and payouts, or a consumer's download charges (`cargo`). A page boundary stays \
         put while new movements arrive. A provider or a consumer reads only its own.",
    )
    .auth(&["proveedor", "consumidor", "admin"])
    .param(path("usuario_id", "The provider or consumer."))
    .query_params::<Params>()
    .ok(200, "One page.", Some(json_content(schema("Movimientos"))), &[])
    .error(
        400,
        &["bad_query", "bad_limit", "bad_cursor"],
        "A malformed or unknown query key, a limit outside 1 to 1000, or a foreign cursor.",
    )
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
