//! `GET /monetizacion/saldo/{usuario_id}[?currency=EUR]`: what Alpes owes a
//! provider, in minor units, and the event time it is current as of.

use super::may_read_money_of;
use crate::Shared;
use alpes_platform::auth::Authenticated;
use alpes_platform::http::ApiError;
use alpes_platform::store::Balance;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    currency: Option<String>,
}

/// The answer: the balance in one currency, plus every currency the user has.
#[derive(Debug, Serialize)]
pub struct Saldo {
    usuario_id: String,
    currency: String,
    /// Accrued minus paid, minor units.
    saldo_pendiente: i64,
    accrued: i64,
    paid: i64,
    uses: i64,
    /// The latest event time applied (ms since the Unix epoch); null before any.
    as_of: Option<i64>,
    balances: Vec<Balance>,
}

/// The handler.
#[tracing::instrument(name = "GET /monetizacion/saldo/{usuario_id}", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    Path(usuario_id): Path<String>,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Saldo>, ApiError> {
    may_read_money_of(&caller, &usuario_id)?;
    let Query(params) = params.map_err(|e| ApiError::bad_request("bad_query", e.body_text()))?;
    let currency = params.currency.unwrap_or_else(|| state.currency.to_string());
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::bad_request(
            "bad_currency",
            "currency must be an ISO 4217 code such as EUR",
        ));
    }
    let balances = state.ledger.balances(&usuario_id).await?;
    let shown = balances.iter().find(|b| b.currency == currency);
    Ok(Json(Saldo {
        usuario_id,
        saldo_pendiente: shown.map_or(0, |b| b.pending_minor),
        accrued: shown.map_or(0, |b| b.accrued_minor),
        paid: shown.map_or(0, |b| b.paid_minor),
        uses: shown.map_or(0, |b| b.uses),
        as_of: shown.map(|b| b.as_of),
        currency,
        balances,
    }))
}
