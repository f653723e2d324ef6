//! `GET /notificaciones`: the notifications and how each went (`pendiente`, `enviada`,
//! `fallida` after its last try, `omitida` when it could not be sent at all), newest first. An
//! admin sees every one; a provider of an institution the institution's (its patients', its
//! webhooks', its providers'); a provider of none, or a doctor, their own. Recipients are named
//! by id, never by address.

use crate::openapi::REGISTRY;
use crate::people::PageParams;
use crate::IngestState;
use alpes_domain::notification::{institution_key, user_key, DeliveryState, Notification};
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::{ApiError, QueryParams};
use alpes_platform::openapi::{json_content, schema, Op};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The page cursor's kind letter.
const CURSOR: char = 't';

/// A notification.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Notification)]
pub struct Notificacion {
    /// Its id (also `X-Alpes-Delivery` of a webhook's callbacks).
    id: String,
    /// The event it is for.
    evento_id: String,
    /// That event's type.
    tipo_evento: String,
    /// `email`, `sms` or `webhook`.
    canal: String,
    /// What it says.
    plantilla: String,
    /// Whom it is for, by id: `paciente:<id>`, `usuario:<id>`, `institucion:<id>`, `webhook:<id>`.
    destinatario: String,
    /// How it went.
    #[schema(value_type = DeliveryState)]
    estado: DeliveryState,
    /// Tries made.
    intentos: u32,
    /// Why the last try failed, or why it was not sent.
    motivo: Option<String>,
    /// When it was first tried, ms since the Unix epoch.
    creada_at: i64,
    /// When it last changed.
    actualizada_at: i64,
}

impl From<&Notification> for Notificacion {
    fn from(n: &Notification) -> Notificacion {
        Notificacion {
            id: n.id.clone(),
            evento_id: n.event_id.clone(),
            tipo_evento: n.event_type.clone(),
            canal: n.channel.clone(),
            plantilla: n.template.clone(),
            destinatario: n.recipient.clone(),
            estado: n.state,
            intentos: n.attempts,
            motivo: n.reason.clone(),
            creada_at: n.created_at,
            actualizada_at: n.updated_at,
        }
    }
}

/// One page of notifications.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Notifications)]
pub struct Notificaciones {
    /// Newest first.
    notificaciones: Vec<Notificacion>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: Option<String>,
}

/// `GET /notificaciones`.
pub fn op() -> Op {
    Op::get(
        "/notificaciones",
        "listNotifications",
        REGISTRY,
        "Notifications and how they went, newest first",
    )
    .describe(
        "An admin sees every one (or one institution's, with `institucion_id`); a provider of an institution the \
             institution's; a provider of none, or a doctor, their own.",
    )
    .auth(&["admin", "proveedor", "medico"])
    .query_params::<PageParams>()
    .ok(200, "One page.", Some(json_content(schema("Notifications"))), &[])
    .error(
        400,
        &["bad_query", "bad_cursor", "bad_limit"],
        "An unknown query key, or a bad cursor or page size.",
    )
}

/// `GET /notificaciones`.
#[tracing::instrument(name = "GET /notificaciones", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    QueryParams(params): QueryParams<PageParams>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Proveedor, Role::Medico])?;
    let registry = state.registry()?;
    params.no_estado()?;
    let (limit, before) = params.page(CURSOR)?;
    let owner = match caller.role {
        Role::Admin => params.institucion_id.as_deref().map(institution_key),
        Role::Proveedor => Some(match registry.institution_of_provider(&caller.user_id).await? {
            Some(i) => institution_key(&i),
            None => user_key(&caller.user_id),
        }),
        _ => Some(user_key(&registry.active_doctor(&caller).await?.user_id)),
    };
    let mut found = registry.notifications.notifications(owner.as_deref(), before, limit + 1).await?;
    let next_cursor = crate::people::next_cursor(&mut found, limit, CURSOR, |n| (n.created_at, n.id.clone()));
    Ok(axum::Json(Notificaciones {
        notificaciones: found.iter().map(Notificacion::from).collect(),
        next_cursor,
    })
    .into_response())
}
