//! `GET /monetizacion/saldo/{usuario_id}[?moneda=EUR]`: what Alpes owes a
//! provider, in minor units, and the event time it is current as of
//! (`currency` is the deprecated name of `moneda`, in the query and the answer).

use super::may_read_money_of;
use crate::openapi::MONEY;
use crate::vocabulary::SaldoMoneda;
use crate::Shared;
use alpes_platform::auth::Authenticated;
use alpes_platform::http::{ApiError, QueryParams};
use alpes_platform::openapi::{deprecated_param, json_content, path, query, schema, Op};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// ISO 4217; the instance's default currency when absent.
    #[serde(alias = "currency")]
    #[param(pattern = "^[A-Z]{3}$")]
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

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::get("/monetizacion/saldo/{usuario_id}", "getBalance", MONEY, "A provider's balance")
        .describe(
            "What Alpes owes the provider, in minor units, as of the latest event billing applied. A provider \
             reads only its own; a consumer none.",
        )
        .auth(&["proveedor", "admin"])
        .param(path("usuario_id", "The provider."))
        .query_params::<Params>()
        .param(deprecated_param(query(
            "currency",
            json!({ "type": "string", "pattern": "^[A-Z]{3}$" }),
            "The deprecated name of `moneda` (give one of the two).",
        )))
        .ok(200, "The balance.", Some(json_content(schema("Saldo"))), &[])
        .error(
            400,
            &["bad_query", "bad_currency"],
            "A malformed or unknown query key, both `moneda` and `currency`, or a currency that is not ISO 4217.",
        )
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
