//! `GET /auditoria` (admin only): the audit trail newest first, filtered by
//! `actor`, `action`, `outcome` (`ok`, `denied` or `error`), `target`,
//! `request_id` and a time range (`desde` inclusive, `hasta` exclusive, ms
//! since the epoch), paged with an opaque cursor (`limit` 1–1000). Reading
//! it is itself audited (`audit_read`).

use super::page_limit;
use crate::Shared;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::ApiError;
use alpes_platform::store::AuditFilter;
use alpes_schemas::RegistroAuditoria;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    actor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    target: Option<String>,
    request_id: Option<String>,
    desde: Option<i64>,
    hasta: Option<i64>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// One page.
#[derive(Debug, Serialize)]
pub struct Registros {
    registros: Vec<RegistroAuditoria>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: Option<String>,
}

/// The handler.
#[tracing::instrument(name = "GET /auditoria", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Registros>, ApiError> {
    caller.require(&[Role::Admin])?;
    let Query(p) = params.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let limit = page_limit(p.limit)?;
    if p.outcome.as_deref().is_some_and(|o| !matches!(o, "ok" | "denied" | "error")) {
        return Err(ApiError::bad_request("bad_outcome", "outcome must be ok, denied or error"));
    }
    let filter = AuditFilter {
        actor: p.actor,
        action: p.action,
        outcome: p.outcome,
        target: p.target,
        request_id: p.request_id,
        from: p.desde,
        to: p.hasta,
    };
    let page = state.audit.page(&filter, p.cursor.as_deref(), limit).await?;
    Ok(Json(Registros {
        registros: page.entries,
        next_cursor: page.next,
    }))
}
