//! `POST /auth/login`: `{"email": "...", "password": "..."}` → 200 with an
//! access token and a refresh token.
//!
//! - An unknown email and a wrong password get the same answer (401
//!   `invalid_credentials`) after the same work: an unknown email is checked
//!   against a dummy hash with the same argon2id parameters.
//! - Failures are counted per account; the one that reaches the limit within
//!   the window locks the account, and while it is locked every attempt gets
//!   429 `account_locked` with `Retry-After`, without checking the password.
//!   A success clears the count.
//! - Every attempt produces `IntentoLogin` with its outcome; never the
//!   password, and for an unknown email not the email either (`user_id` is
//!   `unknown`).

use super::json_body;
use crate::identity::normalize_email;
use crate::openapi::IDENTITY;
use crate::IngestState;
use alpes_platform::audit::RequestContext;
use alpes_platform::http::ApiError;
use alpes_platform::kafka::Producer;
use alpes_platform::openapi::{json_content, schema, Op};
use alpes_schemas::{new_event_id, now_millis, IntentoLogin};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[schema(as = LoginRequest)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    email: String,
    password: String,
}

/// Produces the `IntentoLogin` of one attempt. A broker that does not
/// acknowledge fails the request (503): no attempt goes unrecorded.
pub async fn record(producer: &Producer, ctx: &RequestContext, user_id: &str, success: bool, reason: Option<&str>) -> Result<(), ApiError> {
    let event = IntentoLogin {
        event_id: new_event_id(),
        occurred_at: now_millis(),
        actor: user_id.to_owned(),
        user_id: user_id.to_owned(),
        success,
        reason: reason.map(str::to_owned),
        http_request_id: ctx.request_id(),
    };
    producer.send(&event.user_id, &event).await?;
    Ok(())
}

fn invalid() -> ApiError {
    ApiError::unauthorized("invalid email or password").with_code("invalid_credentials")
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::post("/auth/login", "login", IDENTITY, "Log in: an access token and a refresh token")
        .describe(
            "An unknown email and a wrong password get the same 401 after the same work. Too many failures \
             lock the account for a while: 429 `account_locked` with `Retry-After`, even for the right password.",
        )
        .public()
        .body(true, "The credentials.", json_content(schema("LoginRequest")))
        .ok(200, "Logged in.", Some(json_content(schema("Tokens"))), &[])
        .error(400, &["bad_json"], "The body is not a login.")
        .error(401, &["invalid_credentials"], "Unknown email or wrong password.")
        .standard(413)
        .error(429, &["account_locked"], "The account is locked after too many failed logins.")
        .standard(503)
}

/// The handler.
#[tracing::instrument(name = "POST /auth/login", skip_all)]
pub async fn handler(State(state): State<IngestState>, ctx: RequestContext, body: Bytes) -> Result<Response, ApiError> {
    let req: Request = json_body(&body, 8 * 1024, "a login")?;
    let identity = &state.identity;
    let account = identity.store.account_by_email(&normalize_email(&req.email)).await?;
    let now = now_millis();
    if let Some(a) = &account {
        if let Some(until) = a.locked_until.filter(|u| *u > now) {
            record(&state.producer, &ctx, &a.user_id, false, Some("locked")).await?;
            let secs = u32::try_from((until - now + 999) / 1000).unwrap_or(u32::MAX);
            return Err(ApiError::too_many(
                "account_locked",
                "too many failed logins; try again later",
                secs,
            ));
        }
    }
    let ok = identity
        .verify(req.password, account.as_ref().map(|a| a.password_hash.clone()))
        .await?;
    let account = match account {
        Some(a) if ok => a,
        Some(a) => {
            let failures = identity.store.record_failure(&a.user_id, now, identity.lockout()).await?;
            tracing::info!(user_id = %a.user_id, failures = failures.count, locked = failures.locked_until.is_some(), "login failed");
            record(&state.producer, &ctx, &a.user_id, false, Some("bad_credentials")).await?;
            return Err(invalid());
        }
        None => {
            record(&state.producer, &ctx, "unknown", false, Some("unknown_user")).await?;
            return Err(invalid());
        }
    };
    identity.store.record_success(&account.user_id, now).await?;
    let family = uuid::Uuid::new_v4().to_string();
    let (refresh, stored) = identity.new_refresh(&family, &account.user_id, account.role, now)?;
    identity.store.insert_refresh(stored).await?;
    let (tokens, _) = identity.answer(&state.jwt, &account.user_id, account.role, refresh)?;
    record(&state.producer, &ctx, &account.user_id, true, None).await?;
    tracing::info!(user_id = %account.user_id, "login");
    Ok((StatusCode::OK, axum::Json(tokens)).into_response())
}
