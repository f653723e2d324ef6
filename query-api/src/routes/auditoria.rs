//! `GET /auditoria` (admin only): the audit trail newest first, filtered by
//! `actor`, `accion`, `resultado` (`ok`, `denied` or `error`), `objetivo`,
//! `solicitud_http_id` and a time range (`desde` inclusive, `hasta` exclusive,
//! ms since the epoch), paged with an opaque cursor (`limit` 1–1000). The
//! filters' deprecated names (`action`, `outcome`, `target`, `request_id`)
//! are read too. Reading it is itself audited (`audit_read`).

use super::page_limit;
use crate::openapi::AUDIT;
use crate::vocabulary::Registro;
use crate::Shared;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::{ApiError, QueryParams};
use alpes_platform::openapi::{deprecated_param, json_content, query, schema, Op};
use alpes_platform::store::AuditFilter;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Only entries by this user id (`anonymous` for callers without a valid credential, `anonymizer`
    /// for the engine, `unknown` for logins with an unknown email).
    actor: Option<String>,
    /// Only this action (`login`, `upload`, `anonymization`, `download`, `payment`, `consumer_terms`,
    /// `user_create`, `token_refresh`, `logout`, `api_key_create`, `api_key_revoke`, `reanonymize`,
    /// `audit_read`, `report_create`, `report_read`, `admin_read`, `access`).
    #[serde(alias = "action")]
    accion: Option<String>,
    /// Only this outcome.
    #[serde(alias = "outcome")]
    #[param(schema_with = crate::vocabulary::resultados)]
    resultado: Option<String>,
    /// Only entries on this object id.
    #[serde(alias = "target")]
    objetivo: Option<String>,
    /// Only the entries of this request (its `X-Request-Id`).
    #[serde(alias = "request_id")]
    solicitud_http_id: Option<String>,
    /// At or after (ms since the epoch).
    desde: Option<i64>,
    /// Before (ms since the epoch).
    hasta: Option<i64>,
    /// Page size, 1 to 1000.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<usize>,
    /// The previous page's `next_cursor` (opaque); a cursor this server did not issue is 400 `bad_cursor`.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// One page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registros<'a> {
    registros: Vec<Registro<'a>>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: Option<String>,
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::get("/auditoria", "listAuditEvents", AUDIT, "The audit trail, newest first")
        .describe(
            "Who did what, to what, with which outcome, under which request: logins, uploads, anonymizations, \
             downloads, payments, account and key changes, every admin request and every refused one. \
             Filters combine. Reading the trail is itself recorded (`audit_read`).",
        )
        .auth(&["admin"])
        .query_params::<Params>()
        .params([
            deprecated_param(query("action", json!({ "type": "string" }), "The deprecated name of `accion`.")),
            deprecated_param(query(
                "outcome",
                json!({ "type": "string", "enum": ["ok", "denied", "error"] }),
                "The deprecated name of `resultado`.",
            )),
            deprecated_param(query("target", json!({ "type": "string" }), "The deprecated name of `objetivo`.")),
            deprecated_param(query(
                "request_id",
                json!({ "type": "string" }),
                "The deprecated name of `solicitud_http_id`.",
            )),
        ])
        .ok(200, "One page.", Some(json_content(schema("Registros"))), &[])
        .error(
            400,
            &["bad_query", "bad_limit", "bad_outcome", "bad_cursor"],
            "A malformed or unknown query key, a filter given under both its names, a limit outside 1 to 1000, an unknown outcome, or a foreign cursor.",
        )
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
