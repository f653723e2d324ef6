//! `GET /monetizacion/pares[?desde=&hasta=&limit=100]` (admin): the
//! consumer–provider pairs by what the consumer's downloads of the provider's
//! images were charged in a period, largest first. A provider paying itself
//! through consumer accounts it registered shows as a pair with a volume no
//! real customer has; each side's organization is named to make that easy to
//! see. The period is `desde` (inclusive) to `hasta` (exclusive), ms since the
//! epoch, by default the 30 days up to now, and at most 366 days long.

use super::page_limit;
use crate::openapi::MONEY;
use crate::Shared;
use alpes_domain::ledger::{PairVolume, DAY_MS};
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::{ApiError, QueryParams};
use alpes_platform::openapi::{json_content, schema, Op};
use alpes_schemas::now_millis;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The longest period asked for at once, in days.
const MAX_DAYS: i64 = 366;
/// The period when none is given, in days.
const DEFAULT_DAYS: i64 = 30;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The period's start, ms since the epoch, inclusive; by default 30 days before `hasta`.
    desde: Option<i64>,
    /// The period's end, ms since the epoch, exclusive; by default now.
    hasta: Option<i64>,
    /// The most pairs, 1 to 1000.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<usize>,
}

/// One pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct Par {
    consumidor_id: String,
    /// The consumer's organization, if it named one.
    consumidor_organizacion: Option<String>,
    proveedor_id: String,
    /// The provider's organization, if it named one.
    proveedor_organizacion: Option<String>,
    moneda: String,
    /// Downloads charged.
    cargos: i64,
    /// What they were charged, minor units.
    importe_minor: i64,
}

/// The report.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pares {
    desde: i64,
    hasta: i64,
    /// Largest volume first.
    pares: Vec<Par>,
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::get(
        "/monetizacion/pares",
        "listConsumerProviderPairs",
        MONEY,
        "Consumer–provider pairs by volume",
    )
    .describe(
        "What each consumer's downloads of each provider's images were charged in a period, largest first, with \
             both organizations: self-dealing (a provider paying itself through consumer accounts) shows as a pair \
             with a volume no real customer has. From the charges billing has applied.",
    )
    .auth(&["admin"])
    .query_params::<Params>()
    .ok(200, "The pairs.", Some(json_content(schema("Pares"))), &[])
    .error(
        400,
        &["bad_query", "bad_limit", "bad_range"],
        "A malformed or unknown query key, a limit outside 1 to 1000, or a period that is empty or longer than 366 days.",
    )
}

/// The handler.
#[tracing::instrument(name = "GET /monetizacion/pares", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    QueryParams(params): QueryParams<Params>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let limit = page_limit(params.limit)?;
    let hasta = params.hasta.unwrap_or_else(now_millis);
    let desde = params.desde.unwrap_or(hasta.saturating_sub(DEFAULT_DAYS * DAY_MS));
    if desde >= hasta || hasta.saturating_sub(desde) > MAX_DAYS * DAY_MS {
        return Err(ApiError::bad_request(
            "bad_range",
            format!("desde must be before hasta, and the period at most {MAX_DAYS} days"),
        ));
    }
    let found = state.ledger.pairs(desde, hasta, limit).await?;
    let mut pares = Vec::with_capacity(found.len());
    for p in found {
        pares.push(named(&state, p).await?);
    }
    Ok(Json(Pares { desde, hasta, pares }).into_response())
}

/// `p` with both sides' organizations, from the query side's users.
async fn named(state: &Shared, p: PairVolume) -> Result<Par, ApiError> {
    let organization = |u: Option<alpes_domain::catalog::CatalogUser>| u.and_then(|u| u.organization);
    Ok(Par {
        consumidor_organizacion: organization(state.catalog.user(&p.consumer_id).await?),
        proveedor_organizacion: organization(state.catalog.user(&p.provider_id).await?),
        consumidor_id: p.consumer_id,
        proveedor_id: p.provider_id,
        moneda: p.currency,
        cargos: p.charges,
        importe_minor: p.amount_minor,
    })
}
