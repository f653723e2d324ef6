//! `/pacientes/{id}`: `GET` one patient with their contact data (an admin, a provider of their
//! institution, or their doctor; every such read is audited as `patient_read`), `DELETE` them (an
//! admin or a provider of their institution: kept, marked deleted, their images no longer
//! offered), and the institution's side of the consent workflow: `POST /pacientes/{id}/validar`
//! (their doctor validates first, then a provider of the institution) and
//! `POST /pacientes/{id}/revocar`.

use crate::openapi::REGISTRY;
use crate::people::{Contacto, Paciente};
use crate::registry::consent_event;
use crate::IngestState;
use alpes_domain::consent::Step;
use alpes_domain::registry::Patient;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Caller, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, path, schema, Op};
use alpes_schemas::now_millis;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

fn id_param() -> serde_json::Value {
    path("id", "The patient id.")
}

/// `GET /pacientes/{id}`.
pub fn op() -> Op {
    Op::get("/pacientes/{id}", "getPatient", REGISTRY, "One patient, with their contact data")
        .describe("Every call is recorded in the audit trail (`patient_read`), whoever makes it.")
        .auth(&["admin", "proveedor", "medico"])
        .institution_scoped()
        .param(id_param())
        .ok(200, "The patient.", Some(json_content(schema("Patient"))), &[])
        .error(404, &["not_found"], "No live patient has this id, or they are not the caller's.")
}

/// `DELETE /pacientes/{id}`.
pub fn delete_op() -> Op {
    Op::delete("/pacientes/{id}", "deletePatient", REGISTRY, "Delete a patient")
        .describe("Kept, marked deleted; their images are no longer offered, and the institution may register them again.")
        .auth(&["admin", "proveedor"])
        .institution_scoped()
        .param(id_param())
        .ok(204, "Deleted and announced.", None, &[])
        .error(
            404,
            &["not_found"],
            "No live patient has this id, or they are of another institution.",
        )
        .standard(503)
}

/// `POST /pacientes/{id}/validar`.
pub fn validate_op() -> Op {
    Op::post(
        "/pacientes/{id}/validar",
        "validatePatient",
        REGISTRY,
        "Validate a patient's consent",
    )
    .describe(
        "The patient's doctor validates a `pending` patient (`validated_by_doctor`); then a provider of the \
             institution, or an admin, validates (`validated_by_institution`). Another step is 409 \
             `invalid_transition`; the patient then confirms with their code.",
    )
    .auth(&["admin", "proveedor", "medico"])
    .institution_scoped()
    .param(id_param())
    .ok(200, "Moved and announced.", Some(json_content(schema("Patient"))), &[])
    .error(404, &["not_found"], "No live patient has this id, or they are not the caller's.")
    .error(409, &["invalid_transition"], "Not the step the patient's consent is at.")
    .standard(503)
}

/// `POST /pacientes/{id}/revocar`.
pub fn revoke_op() -> Op {
    Op::post(
        "/pacientes/{id}/revocar",
        "revokePatient",
        REGISTRY,
        "Revoke a patient's consent (the institution)",
    )
    .describe("From any state but `revocado` (409). Their images stop being offered at once.")
    .auth(&["admin", "proveedor"])
    .institution_scoped()
    .param(id_param())
    .ok(200, "Revoked and announced.", Some(json_content(schema("Patient"))), &[])
    .error(
        404,
        &["not_found"],
        "No live patient has this id, or they are of another institution.",
    )
    .error(409, &["invalid_transition"], "Already revoked.")
    .standard(503)
}

/// The live patient `id` if the caller may act on them: an admin any, a provider its
/// institution's, a doctor their own; 404 otherwise.
async fn visible(state: &IngestState, caller: &Caller, id: &str) -> Result<Patient, ApiError> {
    let registry = state.registry()?;
    let scope = registry.scope_of(caller).await?;
    match registry.store.patient(id).await? {
        Some(p)
            if p.deleted_at.is_none()
                && scope.require(&p.institution_id).is_ok()
                && (caller.role != Role::Medico || p.doctor_id == caller.user_id) =>
        {
            Ok(p)
        }
        _ => Err(ApiError::not_found("no patient with this id")),
    }
}

/// `GET /pacientes/{id}`.
#[tracing::instrument(name = "GET /pacientes/{id}", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = visible(&state, &caller, &id).await?;
    let c = state.registry()?.open(&p)?;
    let contacto = Contacto {
        nombre: c.nombre,
        email: c.email,
        telefono: c.telefono,
    };
    Ok(axum::Json(Paciente::of(&p, Some(contacto))).into_response())
}

/// `DELETE /pacientes/{id}`.
#[tracing::instrument(name = "DELETE /pacientes/{id}", skip_all, fields(user = %caller.user_id))]
pub async fn delete(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Proveedor])?;
    let registry = state.registry()?;
    let p = visible(&state, &caller, &id).await?;
    let now = now_millis().max(p.updated_at + 1);
    if !registry.store.delete_patient(&p.id, now).await? {
        return Err(ApiError::not_found("no patient with this id"));
    }
    let event = consent_event(&p, Some(p.state), p.state, "deleted", &caller.user_id, now, ctx.request_id());
    if let Err(e) = state.producer.send(&p.id, &event).await {
        tracing::warn!(error = %e, patient = %p.id, "broker did not acknowledge a patient's deletion; it is undone");
        let _ = registry.store.undelete_patient(&p.id).await;
        return Err(ApiError::unavailable("the event broker", 5));
    }
    tracing::info!(patient = %p.id, "patient deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn step(state: &IngestState, caller: &Caller, ctx: &RequestContext, p: &Patient, step: Step) -> Result<Response, ApiError> {
    let registry = state.registry()?;
    let to = registry
        .move_consent(&state.producer, p, step, &caller.user_id, ctx.request_id())
        .await?;
    let mut moved = p.clone();
    moved.state = to;
    moved.updated_at = now_millis();
    Ok(axum::Json(Paciente::of(&moved, None)).into_response())
}

/// `POST /pacientes/{id}/validar`.
#[tracing::instrument(name = "POST /pacientes/{id}/validar", skip_all, fields(user = %caller.user_id))]
pub async fn validate(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let p = visible(&state, &caller, &id).await?;
    let by = if caller.role == Role::Medico {
        Step::DoctorValidates
    } else {
        Step::InstitutionValidates
    };
    step(&state, &caller, &ctx, &p, by).await
}

/// `POST /pacientes/{id}/revocar`.
#[tracing::instrument(name = "POST /pacientes/{id}/revocar", skip_all, fields(user = %caller.user_id))]
pub async fn revoke(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Proveedor])?;
    let p = visible(&state, &caller, &id).await?;
    step(&state, &caller, &ctx, &p, Step::InstitutionRevokes).await
}
