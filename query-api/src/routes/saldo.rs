//! `GET /monetizacion/saldo/{usuario_id}[?moneda=EUR]`: what Alpes owes a
//! provider, in minor units, and the event time it is current as of
//! (`currency` is the deprecated name of `moneda`, in the query and the answer).

use super::may_read_money_of;
use crate::vocabulary::SaldoMoneda;
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
    #[serde(alias = "currency")]
    moneda: Option<String>,
}

/// The answer: the balance in one currency, plus every currency the user has.
#[derive(Debug, Serialize, ToSchema)]
pub struct Saldo<'a> {
    usuario_id: &'a str,
    moneda: &'a str,
    /// Devengado minus pagado, minor units.
    saldo_pendiente: i64,
    devengado_minor: i64,
    pagado_minor: i64,
    usos: i64,
    /// The latest event time applied (ms since the Unix epoch); null before any.
    actualizado_at: Option<i64>,
    saldos: &'a [SaldoMoneda<'a>],
    // Deprecated names.
    #[schema(deprecated)]
    currency: &'a str,
    #[schema(deprecated)]
    accrued: i64,
    #[schema(deprecated)]
    paid: i64,
    #[schema(deprecated)]
    uses: i64,
    #[schema(deprecated)]
    as_of: Option<i64>,
    #[schema(deprecated)]
    balances: &'a [SaldoMoneda<'a>],
}

/// The handler.
#[tracing::instrument(name = "GET /monetizacion/saldo/{usuario_id}", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    Path(usuario_id): Path<String>,
    QueryParams(params): QueryParams<Params>,
) -> Result<Response, ApiError> {
    may_read_money_of(&caller, &usuario_id)?;
    let currency = params.moneda.unwrap_or_else(|| state.currency.to_string());
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(ApiError::bad_request("bad_currency", "moneda must be an ISO 4217 code such as EUR"));
    }
    let balances = state.ledger.balances(&usuario_id).await?;
    let shown = balances.iter().find(|b| b.currency == currency);
    let saldos: Vec<SaldoMoneda> = balances.iter().map(SaldoMoneda::from).collect();
    let (pending, accrued, paid, uses, as_of) = shown.map_or((0, 0, 0, 0, None), |b| {
        (b.pending_minor, b.accrued_minor, b.paid_minor, b.uses, Some(b.as_of))
    });
    Ok(Json(Saldo {
        usuario_id: &usuario_id,
        moneda: &currency,
        saldo_pendiente: pending,
        devengado_minor: accrued,
        pagado_minor: paid,
        usos: uses,
        actualizado_at: as_of,
        saldos: &saldos,
        currency: &currency,
        accrued,
        paid,
        uses,
        as_of,
        balances: &saldos,
    })
    .into_response())
}
