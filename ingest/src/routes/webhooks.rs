//! An institution's webhooks: `POST /instituciones/{id}/webhooks` subscribes a URL to event
//! types, `GET` lists them, `DELETE /instituciones/{id}/webhooks/{webhook_id}` removes one. An
//! admin or a provider of the institution. The URL's host must be one the operator allowed
//! (`--webhook-allow`): nothing is posted anywhere else.
//!
//! Each callback is a POST of the event's JSON (no event carries PHI), signed with the secret
//! shown once at creation: `X-Alpes-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>." followed by the body>`, with the event type in `X-Alpes-Event` and the notification id
//! in `X-Alpes-Delivery` (the same on every retry, for the receiver to drop duplicates).

use crate::openapi::REGISTRY;
use crate::IngestState;
use alpes_domain::notification::{webhook_allowed, Webhook, WEBHOOK_EVENTS};
use alpes_platform::auth::{Authenticated, Caller, Role};
use alpes_platform::http::{json_body, ApiError};
use alpes_platform::openapi::{json_content, path, schema, Op};
use alpes_schemas::now_millis;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A new webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewWebhook)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    /// `http(s)://` on a host the operator allowed.
    #[schema(max_length = 2048)]
    url: String,
    /// `ConsentimientoCambiado`, `ImagenRechazada`, `PagoProcesado`.
    eventos: Vec<String>,
}

/// A webhook.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Webhook)]
pub struct Suscripcion {
    /// Its id.
    id: String,
    /// Where callbacks go.
    url: String,
    /// The event types it receives.
    eventos: Vec<String>,
    /// When it was created, ms since the Unix epoch.
    creado_at: i64,
    /// The signing secret: in the creation's answer only, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    secreto: Option<String>,
}

/// An institution's webhooks.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Webhooks)]
pub struct Suscripciones {
    /// Oldest first, without their secrets.
    webhooks: Vec<Suscripcion>,
}

fn view(w: &Webhook, secreto: Option<String>) -> Suscripcion {
    Suscripcion {
        id: w.id.clone(),
        url: w.url.clone(),
        eventos: w.events.clone(),
        creado_at: w.created_at,
        secreto,
    }
}

/// `POST /instituciones/{id}/webhooks`.
pub fn create_op() -> Op {
    Op::post("/instituciones/{id}/webhooks", "createWebhook", REGISTRY, "Subscribe a webhook")
        .describe(
            "Callbacks are POSTs of the event's JSON, signed: `X-Alpes-Signature: t=<unix seconds>,v1=<hex \
             HMAC-SHA256(secreto, \"<t>.\" + body)>`, with `X-Alpes-Event` and `X-Alpes-Delivery` (the same on every \
             retry). A 2xx is a delivery; a 5xx, 429, 408 or no answer is tried again with exponential backoff, and \
             after the last try the notification goes to the dead-letter topic `alpes.notifications.dead`.",
        )
        .auth(&["admin", "proveedor"])
        .institution_scoped()
        .param(path("id", "The institution id."))
        .body(true, "The webhook.", json_content(schema("NewWebhook")))
        .ok(
            201,
            "Subscribed; `secreto` is shown this once.",
            Some(json_content(schema("Webhook"))),
            &[],
        )
        .error(400, &["bad_json"], "The body is not a webhook.")
        .error(404, &["not_found"], "No live institution has this id, or it is not the caller's.")
        .error(
            422,
            &["bad_url", "bad_eventos"],
            "A URL not allowed here, or an unknown event type.",
        )
}

/// `GET /instituciones/{id}/webhooks`.
pub fn list_op() -> Op {
    Op::get(
        "/instituciones/{id}/webhooks",
        "listWebhooks",
        REGISTRY,
        "An institution's webhooks",
    )
    .auth(&["admin", "proveedor"])
    .institution_scoped()
    .param(path("id", "The institution id."))
    .ok(200, "Its webhooks.", Some(json_content(schema("Webhooks"))), &[])
    .error(404, &["not_found"], "No live institution has this id, or it is not the caller's.")
}

/// `DELETE /instituciones/{id}/webhooks/{webhook_id}`.
pub fn delete_op() -> Op {
    Op::delete(
        "/instituciones/{id}/webhooks/{webhook_id}",
        "deleteWebhook",
        REGISTRY,
        "Remove a webhook",
    )
    .auth(&["admin", "proveedor"])
    .institution_scoped()
    .params([path("id", "The institution id."), path("webhook_id", "The webhook id.")])
    .ok(204, "Removed.", None, &[])
    .error(404, &["not_found"], "No such webhook of the caller's institution.")
}

/// The live institution `id` if the caller (an admin or one of its providers) acts for it.
async fn own(state: &IngestState, caller: &Caller, id: &str) -> Result<String, ApiError> {
    caller.require(&[Role::Admin, Role::Proveedor])?;
    Ok(state.registry()?.institution_for(caller, id).await?.id)
}

/// `POST /instituciones/{id}/webhooks`.
#[tracing::instrument(name = "POST /instituciones/{id}/webhooks", skip_all, fields(user = %caller.user_id))]
pub async fn create(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let institution = own(&state, &caller, &id).await?;
    let registry = state.registry()?;
    let req: Request = json_body(&body, 8 * 1024, "a webhook")?;
    if req.url.len() > 2048 || !webhook_allowed(&req.url, &registry.webhook_allow) {
        return Err(ApiError::unprocessable(
            "bad_url",
            "url must be https (or http to loopback), without credentials, on a host the operator allowed (--webhook-allow)",
        ));
    }
    let mut events: Vec<String> = req.eventos.iter().map(|e| e.trim().to_owned()).collect();
    events.sort();
    events.dedup();
    if events.is_empty() || events.iter().any(|e| !WEBHOOK_EVENTS.contains(&e.as_str())) {
        return Err(ApiError::unprocessable(
            "bad_eventos",
            format!("eventos must list some of {}", WEBHOOK_EVENTS.join(", ")),
        ));
    }
    let secret = crate::identity::random_token()?;
    let webhook = Webhook {
        id: uuid::Uuid::new_v4().to_string(),
        institution_id: institution,
        url: req.url,
        secret: registry.key.seal(secret.as_bytes()),
        events,
        created_at: now_millis(),
    };
    registry.notifications.add_webhook(&webhook).await?;
    tracing::info!(webhook = %webhook.id, institution = %webhook.institution_id, "webhook subscribed");
    Ok((StatusCode::CREATED, axum::Json(view(&webhook, Some(secret)))).into_response())
}

/// `GET /instituciones/{id}/webhooks`.
#[tracing::instrument(name = "GET /instituciones/{id}/webhooks", skip_all, fields(user = %caller.user_id))]
pub async fn list(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let institution = own(&state, &caller, &id).await?;
    let found = state.registry()?.notifications.webhooks(&institution).await?;
    Ok(axum::Json(Suscripciones {
        webhooks: found.iter().map(|w| view(w, None)).collect(),
    })
    .into_response())
}

/// `DELETE /instituciones/{id}/webhooks/{webhook_id}`.
#[tracing::instrument(name = "DELETE /instituciones/{id}/webhooks/{webhook_id}", skip_all, fields(user = %caller.user_id))]
pub async fn delete(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    Path((id, webhook_id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let institution = own(&state, &caller, &id).await?;
    if !state.registry()?.notifications.delete_webhook(&institution, &webhook_id).await? {
        return Err(ApiError::not_found("no such webhook"));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
