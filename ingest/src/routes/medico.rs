//! `/medicos/{id}`: `GET` one doctor (an admin, or a provider or active doctor of their
//! institution), `PUT /medicos/{id}/estado` sets their status (an admin or a provider of their
//! institution: a `suspended` or `retired` doctor can do nothing), `DELETE` removes them (kept,
//! marked deleted: they can do nothing either).

use crate::openapi::REGISTRY;
use crate::people::Medico;
use crate::IngestState;
use alpes_domain::registry::{Doctor, DoctorStatus};
use alpes_platform::auth::{Authenticated, Caller, Role};
use alpes_platform::http::{json_body, ApiError};
use alpes_platform::openapi::{json_content, path, schema, Op};
use alpes_schemas::now_millis;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

/// A doctor's new status.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = DoctorStatusChange)]
#[serde(deny_unknown_fields)]
pub(crate) struct Change {
    /// `active`, `suspended` or `retired`.
    estado: String,
}

fn id_param() -> serde_json::Value {
    path("id", "The doctor's account id.")
}

/// `GET /medicos/{id}`.
pub fn op() -> Op {
    Op::get("/medicos/{id}", "getDoctor", REGISTRY, "One doctor")
        .auth(&["admin", "proveedor", "medico"])
        .institution_scoped()
        .param(id_param())
        .ok(200, "The doctor.", Some(json_content(schema("Doctor"))), &[])
        .error(
            404,
            &["not_found"],
            "No live doctor has this id, or they are of another institution.",
        )
}

/// `PUT /medicos/{id}/estado`.
pub fn put_op() -> Op {
    Op::put("/medicos/{id}/estado", "setDoctorStatus", REGISTRY, "Set a doctor's status")
        .describe("A `suspended` or `retired` doctor is refused every call (403 `doctor_inactive`) until made `active` again.")
        .auth(&["admin", "proveedor"])
        .institution_scoped()
        .param(id_param())
        .body(true, "The status.", json_content(schema("DoctorStatusChange")))
        .ok(200, "Set.", Some(json_content(schema("Doctor"))), &[])
        .error(400, &["bad_json"], "The body is not a status.")
        .error(
            404,
            &["not_found"],
            "No live doctor has this id, or they are of another institution.",
        )
        .error(422, &["bad_estado"], "Not a status.")
}

/// `DELETE /medicos/{id}`.
pub fn delete_op() -> Op {
    Op::delete("/medicos/{id}", "deleteDoctor", REGISTRY, "Delete a doctor")
        .auth(&["admin", "proveedor"])
        .institution_scoped()
        .param(id_param())
        .ok(204, "Deleted.", None, &[])
        .error(
            404,
            &["not_found"],
            "No live doctor has this id, or they are of another institution.",
        )
}

/// The live doctor `id` if the caller's institution is theirs; 404 otherwise.
async fn visible(state: &IngestState, caller: &Caller, id: &str) -> Result<Doctor, ApiError> {
    let registry = state.registry()?;
    let scope = registry.scope_of(caller).await?;
    match registry.store.doctor(id).await? {
        Some(d) if d.deleted_at.is_none() && scope.require(&d.institution_id).is_ok() => Ok(d),
        _ => Err(ApiError::not_found("no doctor with this id")),
    }
}

async fn view(state: &IngestState, d: &Doctor) -> Result<Response, ApiError> {
    let nombre = state.identity.store.account(&d.user_id).await?.map(|a| a.nombre);
    Ok(axum::Json(Medico::of(d, nombre)).into_response())
}

/// `GET /medicos/{id}`.
#[tracing::instrument(name = "GET /medicos/{id}", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let d = visible(&state, &caller, &id).await?;
    view(&state, &d).await
}

/// `PUT /medicos/{id}/estado`.
#[tracing::instrument(name = "PUT /medicos/{id}/estado", skip_all, fields(user = %caller.user_id))]
pub async fn put(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Proveedor])?;
    let change: Change = json_body(&body, 1024, "a status")?;
    let status = DoctorStatus::parse(change.estado.trim())
        .ok_or_else(|| ApiError::unprocessable("bad_estado", "estado must be active, suspended or retired"))?;
    let mut d = visible(&state, &caller, &id).await?;
    state.registry()?.store.set_doctor_status(&d.user_id, status).await?;
    d.status = status;
    tracing::info!(doctor = %d.user_id, estado = status.as_str(), "doctor status set");
    view(&state, &d).await
}

/// `DELETE /medicos/{id}`.
#[tracing::instrument(name = "DELETE /medicos/{id}", skip_all, fields(user = %caller.user_id))]
pub async fn delete(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Proveedor])?;
    let d = visible(&state, &caller, &id).await?;
    state.registry()?.store.delete_doctor(&d.user_id, now_millis()).await?;
    tracing::info!(doctor = %d.user_id, "doctor deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}
