//! The dashboards, counted from the query side's materialized tables:
//! `GET /instituciones/{id}/panel` (an admin, or a provider or active doctor of the institution)
//! and `GET /medicos/{id}/panel` (an admin, the doctor, or a provider of their institution).
//! Who belongs to which institution is read from the registry; the counts never are.

use crate::openapi::REGISTRY;
use crate::Shared;
use alpes_domain::registry::{scope, RegistryStore};
use alpes_platform::auth::{Authenticated, Caller, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, path, schema, Op};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// `GET /instituciones/{id}/panel`.
pub fn institution_op() -> Op {
    Op::get(
        "/instituciones/{id}/panel",
        "institutionPanel",
        REGISTRY,
        "An institution's dashboard",
    )
    .describe(
        "Its providers' images by state and how many a consumer is offered now, their downloads and what they \
             earned, its patients by consent state, the validations pending (the doctors', the institution's), and \
             its rejections by reason.",
    )
    .auth(&["admin", "proveedor", "medico"])
    .institution_scoped()
    .param(path("id", "The institution id."))
    .ok(200, "The dashboard.", Some(json_content(schema("InstitutionPanel"))), &[])
    .error(404, &["not_found"], "No live institution has this id, or it is not the caller's.")
}

/// `GET /medicos/{id}/panel`.
pub fn doctor_op() -> Op {
    Op::get("/medicos/{id}/panel", "doctorPanel", REGISTRY, "A doctor's dashboard")
        .describe("Their patients by consent state, and how many await their validation.")
        .auth(&["admin", "proveedor", "medico"])
        .institution_scoped()
        .param(path("id", "The doctor's account id."))
        .ok(200, "The dashboard.", Some(json_content(schema("DoctorPanel"))), &[])
        .error(404, &["not_found"], "No live doctor has this id, or they are not the caller's.")
}

fn registry(state: &Shared) -> Result<&dyn RegistryStore, ApiError> {
    state.registry.as_deref().ok_or_else(|| {
        ApiError::unavailable("the institution and patient registry (not opened by this process)", 60).with_code("no_registry")
    })
}

/// The institution `caller` acts for (`None` for an admin: every one); 403 for anyone of none.
async fn institution_of(registry: &dyn RegistryStore, caller: &Caller) -> Result<Option<String>, ApiError> {
    let (member_of, doctor) = match caller.role {
        Role::Proveedor => (registry.member_of(&caller.user_id).await?, None),
        Role::Medico => (None, registry.doctor(&caller.user_id).await?),
        Role::Admin | Role::Consumidor => (None, None),
    };
    Ok(scope(caller.role, member_of, doctor.as_ref())?.institution().map(str::to_owned))
}

/// `GET /instituciones/{id}/panel`.
#[tracing::instrument(name = "GET /instituciones/{id}/panel", skip_all, fields(user = %caller.user_id))]
pub async fn institution(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let registry = registry(&state)?;
    let own = institution_of(registry, &caller).await?;
    match registry.institution(&id).await? {
        Some(i) if i.deleted_at.is_none() && own.as_ref().is_none_or(|o| *o == i.id) => {}
        _ => return Err(ApiError::not_found("no institution with this id")),
    }
    Ok(Json(state.catalog.institution_panel(&id).await?).into_response())
}

/// `GET /medicos/{id}/panel`.
#[tracing::instrument(name = "GET /medicos/{id}/panel", skip_all, fields(user = %caller.user_id))]
pub async fn doctor(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let registry = registry(&state)?;
    let own = institution_of(registry, &caller).await?;
    let mine = |d: &alpes_domain::registry::Doctor| match caller.role {
        Role::Medico => d.user_id == caller.user_id,
        _ => own.as_ref().is_none_or(|o| *o == d.institution_id),
    };
    match registry.doctor(&id).await? {
        Some(d) if d.deleted_at.is_none() && mine(&d) => {}
        _ => return Err(ApiError::not_found("no doctor with this id")),
    }
    Ok(Json(state.catalog.doctor_panel(&id).await?).into_response())
}
