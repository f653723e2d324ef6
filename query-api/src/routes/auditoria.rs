//! `GET /auditoria` (admin only): the audit trail newest first, filtered by
//! `actor`, `accion`, `resultado` (`ok`, `denied` or `error`), `objetivo`,
//! `solicitud_http_id` and a time range (`desde` inclusive, `hasta` exclusive,
//! ms since the epoch), paged with an opaque cursor (`limit` 1–1000). The
//! filters' deprecated names (`action`, `outcome`, `target`, `request_id`)
//! are read too. Reading it is itself audited (`audit_read`).

use super::page_limit;
use crate::vocabulary::Registro;
use crate::Shared;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::{ApiError, QueryParams};
use alpes_platform::store::AuditFilter;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    actor: Option<String>,
    #[serde(alias = "action")]
    accion: Option<String>,
    #[serde(alias = "outcome")]
    resultado: Option<String>,
    #[serde(alias = "target")]
    objetivo: Option<String>,
    #[serde(alias = "request_id")]
    solicitud_http_id: Option<String>,
    desde: Option<i64>,
    hasta: Option<i64>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// One page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registros<'a> {
    registros: Vec<Registro<'a>>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: Option<String>,
}

/// The handler.
#[tracing::instrument(name = "GET /auditoria", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    QueryParams(params): QueryParams<Params>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let p = params;
    let limit = page_limit(p.limit)?;
    if p.resultado.as_deref().is_some_and(|o| !matches!(o, "ok" | "denied" | "error")) {
        return Err(ApiError::bad_request("bad_outcome", "resultado must be ok, denied or error"));
    }
    let filter = AuditFilter {
        actor: p.actor,
        action: p.accion,
        outcome: p.resultado,
        target: p.objetivo,
        request_id: p.solicitud_http_id,
        from: p.desde,
        to: p.hasta,
    };
    let page = state.audit.page(&filter, p.cursor.as_deref(), limit).await?;
    Ok(Json(Registros {
        registros: page.entries.iter().map(Registro::from).collect(),
        next_cursor: page.next,
    })
    .into_response())
}
