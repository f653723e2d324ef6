//! `/instituciones/{id}`: `GET` one institution (an admin, or a provider or active doctor of it),
//! `PUT` its policy for unregistered patients and its verification (admins), `DELETE` it
//! (admins; kept, marked deleted). A change is announced (`InstitucionActualizada`) after it is
//! stored; if the broker does not acknowledge, the answer is 503 and the change is undone.

use super::instituciones::changed;
use crate::openapi::REGISTRY;
use crate::people::Institucion;
use crate::IngestState;
use alpes_domain::consent::UnregisteredPolicy;
use alpes_domain::registry::{Institution, Verification};
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::{json_body, ApiError};
use alpes_platform::openapi::{json_content, path, schema, Op};
use alpes_schemas::now_millis;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

/// What an admin may change of an institution.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = InstitutionChange)]
#[serde(deny_unknown_fields)]
pub(crate) struct Change {
    /// `retener` or `liberar`.
    #[serde(default)]
    politica_no_registrados: Option<String>,
    /// `pendiente`, `verificada` or `rechazada`.
    #[serde(default)]
    verificacion: Option<String>,
}

fn id_param() -> serde_json::Value {
    path("id", "The institution id.")
}

/// `GET /instituciones/{id}`.
pub fn op() -> Op {
    Op::get("/instituciones/{id}", "getInstitution", REGISTRY, "One institution")
        .auth(&["admin", "proveedor", "medico"])
        .institution_scoped()
        .param(id_param())
        .ok(200, "The institution.", Some(json_content(schema("Institution"))), &[])
        .error(404, &["not_found"], "No live institution has this id, or it is not the caller's.")
}

/// `PUT /instituciones/{id}`.
pub fn put_op() -> Op {
    Op::put(
        "/instituciones/{id}",
        "changeInstitution",
        REGISTRY,
        "Change an institution's policy or verification",
    )
    .describe("A new `politica_no_registrados` applies to every image of its unregistered patients at once.")
    .auth(&["admin"])
    .institution_scoped()
    .param(id_param())
    .body(true, "What changes.", json_content(schema("InstitutionChange")))
    .ok(200, "Changed and announced.", Some(json_content(schema("Institution"))), &[])
    .error(400, &["bad_json"], "The body is not a change.")
    .error(404, &["not_found"], "No live institution has this id.")
    .error(422, &["bad_politica", "bad_verificacion"], "A value is not acceptable.")
    .standard(503)
}

/// `DELETE /instituciones/{id}`.
pub fn delete_op() -> Op {
    Op::delete("/instituciones/{id}", "deleteInstitution", REGISTRY, "Delete an institution")
        .describe("Kept, marked deleted; its licence and email are free again.")
        .auth(&["admin"])
        .institution_scoped()
        .param(id_param())
        .ok(204, "Deleted and announced.", None, &[])
        .error(404, &["not_found"], "No live institution has this id.")
        .standard(503)
}

/// `GET /instituciones/{id}`.
#[tracing::instrument(name = "GET /instituciones/{id}", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let i = state.registry()?.institution_for(&caller, &id).await?;
    Ok(axum::Json(Institucion::from(&i)).into_response())
}

/// Stores `after` (replacing `before`) and announces it; undone if the broker does not take it.
async fn store_and_announce(
    state: &IngestState,
    ctx: &RequestContext,
    actor: &str,
    before: &Institution,
    after: &Institution,
) -> Result<(), ApiError> {
    let registry = state.registry()?;
    registry.store.update_institution(after).await?;
    let event = changed(after, actor, now_millis(), ctx.request_id());
    if let Err(e) = state.producer.send(&after.id, &event).await {
        tracing::warn!(error = %e, institution = %after.id, "broker did not acknowledge an institution's change; it is undone");
        let _ = registry.store.update_institution(before).await;
        return Err(ApiError::unavailable("the event broker", 5));
    }
    Ok(())
}

/// `PUT /instituciones/{id}`.
#[tracing::instrument(name = "PUT /instituciones/{id}", skip_all, fields(user = %caller.user_id))]
pub async fn put(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let change: Change = json_body(&body, 4 * 1024, "a change")?;
    let before = state.registry()?.institution_for(&caller, &id).await?;
    let mut after = before.clone();
    if let Some(p) = change.politica_no_registrados.as_deref() {
        after.politica = UnregisteredPolicy::parse(p)
            .ok_or_else(|| ApiError::unprocessable("bad_politica", "politica_no_registrados must be retener or liberar"))?;
    }
    if let Some(v) = change.verificacion.as_deref() {
        after.verificacion = Verification::parse(v)
            .ok_or_else(|| ApiError::unprocessable("bad_verificacion", "verificacion must be pendiente, verificada or rechazada"))?;
    }
    store_and_announce(&state, &ctx, &caller.user_id, &before, &after).await?;
    tracing::info!(institution = %after.id, politica = after.politica.as_str(), verificacion = after.verificacion.as_str(), "institution changed");
    Ok(axum::Json(Institucion::from(&after)).into_response())
}

/// `DELETE /instituciones/{id}`.
#[tracing::instrument(name = "DELETE /instituciones/{id}", skip_all, fields(user = %caller.user_id))]
pub async fn delete(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let before = state.registry()?.institution_for(&caller, &id).await?;
    let mut after = before.clone();
    after.deleted_at = Some(now_millis());
    store_and_announce(&state, &ctx, &caller.user_id, &before, &after).await?;
    tracing::info!(institution = %after.id, "institution deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
