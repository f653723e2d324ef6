//! `GET /monetizacion/saldo/{usuario_id}[?moneda=EUR]`: what Alpes owes a
//! provider, or what a consumer was charged and has left of its credit, in
//! minor units, and the event time it is current as of (`currency` is the
//! deprecated name of `moneda`, in the query and the answer).

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
    /// What the user's own downloads were charged (a consumer's), minor units.
    cargado_minor: i64,
    /// Downloads charged.
    cargos: i64,
    /// A consumer's approval and credit, once an admin set them; null otherwise.
    credito: Option<Credito<'a>>,
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

/// A consumer's approval and credit (set by an admin with `PUT /monetizacion/consumidores/{usuario_id}`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Credito<'a> {
    /// Approved to download.
    verificado: bool,
    /// How much the download charges may reach, minor units of `moneda`.
    limite_credito_minor: i64,
    moneda: &'a str,
    /// The limit less what was charged in its currency (never below 0).
    disponible_minor: i64,
    /// The most retrievals a UTC day; null: no limit.
    descargas_dia: Option<i64>,
    /// The most bytes retrieved a UTC day; null: no limit.
    bytes_dia: Option<i64>,
    /// When an admin last set the terms, ms since the Unix epoch.
    actualizado_at: i64,
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::get(
        "/monetizacion/saldo/{usuario_id}",
        "getBalance",
        MONEY,
        "A provider's or a consumer's balance",
    )
    .describe(
        "What Alpes owes the provider, or what the consumer's downloads were charged and what is left of its \
             credit, in minor units, as of the latest event billing applied. A provider or a consumer reads only its own.",
    )
    .auth(&["proveedor", "consumidor", "admin"])
    .param(path("usuario_id", "The provider or consumer."))
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
    if !alpes_domain::ledger::is_currency(&currency) {
        return Err(ApiError::bad_request("bad_currency", "moneda must be an ISO 4217 code such as EUR"));
    }
    let balances = state.ledger.balances(&usuario_id).await?;
    let shown = balances.iter().find(|b| b.currency == currency);
    let saldos: Vec<SaldoMoneda> = balances.iter().map(SaldoMoneda::from).collect();
    let (pending, accrued, paid, uses, as_of) = shown.map_or((0, 0, 0, 0, None), |b| {
        (b.pending_minor, b.accrued_minor, b.paid_minor, b.uses, Some(b.as_of))
    });
    let (charged, charges) = shown.map_or((0, 0), |b| (b.charged_minor, b.charges));
    let terms = state.ledger.terms(&usuario_id).await?;
    let credito = terms.as_ref().map(|t| {
        let spent = balances.iter().find(|b| b.currency == t.currency).map_or(0, |b| b.charged_minor);
        Credito {
            verificado: t.verified,
            limite_credito_minor: t.credit_limit_minor,
            moneda: &t.currency,
            disponible_minor: t.available(&t.currency, spent),
            descargas_dia: t.daily_downloads,
            bytes_dia: t.daily_bytes,
            actualizado_at: t.updated_at,
        }
    });
    Ok(Json(Saldo {
        usuario_id: &usuario_id,
        moneda: &currency,
        saldo_pendiente: pending,
        devengado_minor: accrued,
        pagado_minor: paid,
        usos: uses,
        cargado_minor: charged,
        cargos: charges,
        credito,
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
