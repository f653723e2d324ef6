//! `POST /monetizacion/pagar`: an admin (finance) pays a provider out of its
//! pending balance. JSON body
//! `{"usuario_id": "...", "importe_minor": 1500, "moneda": "EUR", "referencia": "..."}`
//! (the names before the API's vocabulary, `amount_minor`, `currency` and
//! `reference`, are read too until [`alpes_platform::openapi::DEPRECATED_UNTIL`]).
//!
//! The request is checked against the ledger billing has applied so far: a
//! reference the user was already paid under is refused at once (409
//! `repeated_reference`), and so is a payment above the pending balance (409
//! `insufficient_balance`); each refusal produces a `PagoRechazado`.
//! Otherwise `PagoProcesado` is produced and the answer is 202: billing
//! applies it, and refuses it (with its own `PagoRechazado`) if the balance
//! fell meanwhile. A request repeated before billing applied the first one
//! carries the same event id (derived from the user and the reference), so
//! billing applies it once: it can never pay twice.

use super::json_body;
use crate::openapi::MONEY;
use crate::IngestState;
use alpes_domain::ledger::{pago_rechazado, refuse_payout, Payout, PayoutCheck, Refusal, RefusedBy};
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, schema, Op};
use alpes_schemas::{deterministic_event_id, now_millis, Event, PagoProcesado};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A payment taken: its event is on the log and billing will apply it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PaymentAccepted)]
pub(crate) struct PagoAceptado<'a> {
    /// The `PagoProcesado` event id.
    evento_id: &'a str,
    usuario_id: &'a str,
    #[schema(schema_with = en_proceso)]
    estado: &'static str,
    // Deprecated names.
    #[schema(deprecated)]
    event_id: &'a str,
}

fn en_proceso() -> utoipa::openapi::schema::Object {
    alpes_platform::openapi::string_enum(&["en_proceso"])
}

/// The deprecated names `amount_minor`, `currency` and `reference` are read
/// too, until the end of the deprecation period (give one name per field).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PaymentRequest)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    /// The provider to pay.
    #[schema(min_length = 1)]
    usuario_id: String,
    /// Minor units (cents).
    #[serde(alias = "amount_minor")]
    #[schema(minimum = 1)]
    importe_minor: i64,
    /// ISO 4217.
    #[serde(alias = "currency")]
    #[schema(pattern = "^[A-Z]{3}$")]
    moneda: String,
    /// Unique per paid user.
    #[serde(alias = "reference")]
    #[schema(pattern = "^[!-~]{1,128}$")]
    referencia: String,
}

fn validate(r: &Request) -> Result<(), ApiError> {
    if r.usuario_id.trim().is_empty() {
        return Err(ApiError::unprocessable("bad_usuario_id", "usuario_id is empty"));
    }
    if r.importe_minor <= 0 {
        return Err(ApiError::unprocessable(
            "invalid_amount",
            "importe_minor must be a positive number of minor units",
        ));
    }
    if !alpes_domain::ledger::is_currency(&r.moneda) {
        return Err(ApiError::unprocessable(
            "bad_currency",
            "moneda must be an ISO 4217 code such as EUR",
        ));
    }
    if r.referencia.is_empty() || r.referencia.len() > 128 || !r.referencia.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::unprocessable(
            "bad_reference",
            "referencia must be 1 to 128 visible ASCII characters",
        ));
    }
    Ok(())
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::post(
        "/monetizacion/pagar",
        "payProvider",
        MONEY,
        "Pay a provider out of its pending balance",
    )
    .describe(
        "Checked against the ledger billing has applied so far; a refusal produces `PagoRechazado`. \
             Otherwise `PagoProcesado` is produced (its id derived from the user and the reference, so a retry \
             pays once) and billing applies it.",
    )
    .auth(&["admin"])
    .body(true, "The payment.", json_content(schema("PaymentRequest")))
    .ok(
        202,
        "Produced; billing applies it.",
        Some(json_content(schema("PaymentAccepted"))),
        &[],
    )
    .error(400, &["bad_json"], "The body is not a payment.")
    .error(
        409,
        &["repeated_reference", "insufficient_balance"],
        "The user was already paid under this reference, or the amount is above the pending balance.",
    )
    .standard(413)
    .error(
        422,
        &["bad_usuario_id", "invalid_amount", "bad_currency", "bad_reference"],
        "An empty user, a non-positive amount, a currency that is not ISO 4217, or a reference that is not \
             1 to 128 visible ASCII characters.",
    )
}

/// The handler.
#[tracing::instrument(name = "POST /monetizacion/pagar", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let req: Request = json_body(&body, 16 * 1024, "a payment")?;
    ctx.target(&req.usuario_id);
    validate(&req)?;
    let check = PayoutCheck {
        amount_minor: req.importe_minor,
        reference_paid: state.ledger.reference_paid(&req.usuario_id, &req.referencia).await?,
        pending_minor: state
            .ledger
            .balances(&req.usuario_id)
            .await?
            .iter()
            .find(|b| b.currency == req.moneda)
            .map_or(0, |b| b.pending_minor),
    };
    if let Some(refusal) = refuse_payout(check) {
        let payout = Payout {
            user_id: &req.usuario_id,
            amount_minor: req.importe_minor,
            currency: &req.moneda,
            reference: &req.referencia,
        };
        let by = RefusedBy::Request {
            actor: caller.user_id.clone(),
            http_request_id: ctx.request_id(),
        };
        let refused = pago_rechazado(payout, &refusal, by, now_millis());
        state.producer.send(&refused.user_id, &refused).await?;
        return Err(refused_answer(&req, &refusal));
    }
    let event = PagoProcesado {
        event_id: deterministic_event_id(PagoProcesado::NAME, &[&req.usuario_id, &req.referencia]),
        occurred_at: now_millis(),
        actor: caller.user_id.clone(),
        user_id: req.usuario_id,
        amount_minor: req.importe_minor,
        currency: req.moneda,
        reference: req.referencia,
        http_request_id: ctx.request_id(),
    };
    state.producer.send(&event.user_id, &event).await?;
    let body = PagoAceptado {
        evento_id: &event.event_id,
        usuario_id: &event.user_id,
        estado: "en_proceso",
        event_id: &event.event_id,
    };
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// The 409 (or 422) a refused request answers.
fn refused_answer(req: &Request, refusal: &Refusal) -> ApiError {
    match refusal {
        Refusal::RepeatedReference => ApiError::conflict(
            "repeated_reference",
            "this user was already paid under this reference; a new payment needs a new reference",
        ),
        Refusal::InsufficientBalance { pending_minor } => ApiError::conflict(
            "insufficient_balance",
            format!(
                "the payment of {} {} is above the pending balance of {pending_minor}",
                req.importe_minor, req.moneda
            ),
        ),
        Refusal::InvalidAmount => ApiError::unprocessable("invalid_amount", "importe_minor must be a positive number of minor units"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(amount: i64, currency: &str, reference: &str) -> Request {
        Request {
            usuario_id: "p".into(),
            importe_minor: amount,
            moneda: currency.into(),
            referencia: reference.into(),
        }
    }

    #[test]
    fn a_payment_is_read_in_the_vocabulary_or_under_its_deprecated_names_but_not_both() {
        let new: Request = serde_json::from_str(r#"{"usuario_id":"p","importe_minor":5,"moneda":"EUR","referencia":"r"}"#).unwrap();
        let old: Request = serde_json::from_str(r#"{"usuario_id":"p","amount_minor":5,"currency":"EUR","reference":"r"}"#).unwrap();
        assert_eq!(
            (new.importe_minor, new.moneda, new.referencia),
            (old.importe_minor, old.moneda, old.referencia)
        );
        let both = r#"{"usuario_id":"p","importe_minor":5,"amount_minor":6,"moneda":"EUR","referencia":"r"}"#;
        assert!(serde_json::from_str::<Request>(both).is_err(), "one name per field");
    }

    #[test]
    fn a_payment_must_be_positive_in_an_iso_currency_with_a_sane_reference() {
        assert!(validate(&req(1, "EUR", "r-1")).is_ok());
        let code = |r: Request| validate(&r).map_err(|e| (e.status.as_u16(), e.code));
        assert_eq!(code(req(0, "EUR", "r")), Err((422, "invalid_amount")));
        assert_eq!(code(req(5, "eur", "r")), Err((422, "bad_currency")));
        assert_eq!(code(req(5, "EUR", "")), Err((422, "bad_reference")));
        assert_eq!(code(req(5, "EUR", "a b")), Err((422, "bad_reference")));
    }
}
