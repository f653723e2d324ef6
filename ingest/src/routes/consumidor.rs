//! `PUT /monetizacion/consumidores/{usuario_id}` (admin): approves a consumer
//! for downloads and sets its credit limit. JSON body
//! `{"verificado": true, "limite_credito_minor": 50000, "moneda": "EUR",
//! "descargas_dia": 500, "bytes_dia": 10737418240}` (the daily limits, per UTC
//! day, are optional: absent or null is no limit).
//!
//! A consumer downloads only once approved, and only while its charges stay
//! within the limit ([`alpes_domain::ledger::consumer`]); setting
//! `verificado: false` withdraws the approval. The terms replace any before
//! and take effect at the consumer's next download. The account must exist
//! and be a consumer (404 `not_found`, 409 `not_a_consumer`).

use super::json_body;
use crate::openapi::MONEY;
use crate::IngestState;
use alpes_domain::ledger::{is_currency, ConsumerTerms};
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, path, schema, Op};
use alpes_schemas::now_millis;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What an admin grants a consumer.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ConsumerTermsRequest)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    /// Approved to download.
    verificado: bool,
    /// How much the consumer's download charges may reach, minor units.
    #[schema(minimum = 0)]
    limite_credito_minor: i64,
    /// ISO 4217: the currency of the limit (downloads are priced in the instance's currency).
    #[schema(pattern = "^[A-Z]{3}$")]
    moneda: String,
    /// The most retrievals a UTC day; absent or null: no limit.
    #[serde(default)]
    #[schema(minimum = 0)]
    descargas_dia: Option<i64>,
    /// The most bytes retrieved a UTC day; absent or null: no limit.
    #[serde(default)]
    #[schema(minimum = 0)]
    bytes_dia: Option<i64>,
}

/// A consumer's terms, as set.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ConsumerTermsSet)]
pub(crate) struct Condiciones<'a> {
    usuario_id: &'a str,
    verificado: bool,
    limite_credito_minor: i64,
    moneda: &'a str,
    /// The most retrievals a UTC day; null: no limit.
    descargas_dia: Option<i64>,
    /// The most bytes retrieved a UTC day; null: no limit.
    bytes_dia: Option<i64>,
    /// When they were set, ms since the Unix epoch.
    actualizado_at: i64,
    /// The admin who set them.
    actualizado_por: &'a str,
}

impl<'a> From<&'a ConsumerTerms> for Condiciones<'a> {
    fn from(t: &'a ConsumerTerms) -> Self {
        Condiciones {
            usuario_id: &t.user_id,
            verificado: t.verified,
            limite_credito_minor: t.credit_limit_minor,
            moneda: &t.currency,
            descargas_dia: t.daily_downloads,
            bytes_dia: t.daily_bytes,
            actualizado_at: t.updated_at,
            actualizado_por: &t.updated_by,
        }
    }
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::put(
        "/monetizacion/consumidores/{usuario_id}",
        "setConsumerTerms",
        MONEY,
        "Approve a consumer for downloads and set its credit limit",
    )
    .describe(
        "A consumer downloads only once an admin approved it here, only while its download charges stay \
         within the credit limit (402 `insufficient_credit` past it), and only within its daily limits, if any \
         (429 `daily_limit` past them). The terms replace any before.",
    )
    .auth(&["admin"])
    .param(path("usuario_id", "The consumer."))
    .body(true, "The terms.", json_content(schema("ConsumerTermsRequest")))
    .ok(200, "Set.", Some(json_content(schema("ConsumerTermsSet"))), &[])
    .error(400, &["bad_json"], "The body is not the terms.")
    .error(404, &["not_found"], "No account has this id.")
    .error(409, &["not_a_consumer"], "The account is not a consumer's.")
    .standard(413)
    .error(
        422,
        &["invalid_amount", "invalid_limit", "bad_currency"],
        "A negative credit or daily limit, or a currency that is not ISO 4217.",
    )
}

/// The handler.
#[tracing::instrument(name = "PUT /monetizacion/consumidores/{usuario_id}", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    Path(usuario_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let req: Request = json_body(&body, 4 * 1024, "consumer terms")?;
    if req.limite_credito_minor < 0 {
        return Err(ApiError::unprocessable("invalid_amount", "limite_credito_minor cannot be negative"));
    }
    if req.descargas_dia.is_some_and(|n| n < 0) || req.bytes_dia.is_some_and(|n| n < 0) {
        return Err(ApiError::unprocessable(
            "invalid_limit",
            "descargas_dia and bytes_dia cannot be negative",
        ));
    }
    if !is_currency(&req.moneda) {
        return Err(ApiError::unprocessable(
            "bad_currency",
            "moneda must be an ISO 4217 code such as EUR",
        ));
    }
    let account = state.identity.store.account(&usuario_id).await?;
    let account = account.ok_or_else(|| ApiError::not_found(format!("no account {usuario_id}")))?;
    ctx.target(&account.user_id);
    if account.role != Role::Consumidor {
        return Err(ApiError::conflict("not_a_consumer", "only a consumer account has download terms"));
    }
    let terms = ConsumerTerms {
        user_id: account.user_id,
        verified: req.verificado,
        credit_limit_minor: req.limite_credito_minor,
        currency: req.moneda,
        daily_downloads: req.descargas_dia,
        daily_bytes: req.bytes_dia,
        updated_at: now_millis(),
        updated_by: caller.user_id.clone(),
    };
    state.ledger.set_terms(terms.clone()).await?;
    tracing::info!(consumer = %terms.user_id, verified = terms.verified, "consumer terms set");
    Ok(axum::Json(Condiciones::from(&terms)).into_response())
}
