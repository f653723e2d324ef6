//! The patient's side of the consent workflow, with the codes they were sent (no token):
//! `POST /pacientes/consentimiento {"codigo"}` confirms (`validated_by_institution` →
//! `full_access`), `POST /pacientes/revocacion {"codigo"}` revokes from any state.
//!
//! A code is looked up by its SHA-256 only; an unknown code and a code of the other kind are one
//! answer (404 `unknown_code`), so the routes tell nothing about which codes exist. A confirmation
//! code works once: a confirmed patient is no longer in the state it confirms.

use crate::openapi::REGISTRY;
use crate::people::Paciente;
use crate::IngestState;
use alpes_domain::consent::Step;
use alpes_domain::registry::CodeKind;
use alpes_platform::audit::RequestContext;
use alpes_platform::http::{json_body, ApiError};
use alpes_platform::openapi::{json_content, schema, Op};
use alpes_schemas::now_millis;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

/// A code from the patient's message.
#[derive(Deserialize, ToSchema)]
#[schema(as = PatientCode)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    /// As sent (`XXXX-XXXX-XXXX`; case, spaces and dashes do not matter).
    #[schema(min_length = 1, max_length = 64)]
    codigo: String,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Request(..)")
    }
}

fn op(path: &'static str, id: &str, summary: &str, describe: &str) -> Op {
    Op::post(path, id, REGISTRY, summary)
        .describe(describe)
        .public()
        .body(true, "The code.", json_content(schema("PatientCode")))
        .ok(200, "Moved and announced.", Some(json_content(schema("Patient"))), &[])
        .error(400, &["bad_json"], "The body is not a code.")
        .error(404, &["unknown_code"], "No live patient was sent this code.")
        .error(409, &["invalid_transition"], "Not the step the patient's consent is at.")
        .standard(503)
}

/// `POST /pacientes/consentimiento`.
pub fn confirm_op() -> Op {
    op(
        "/pacientes/consentimiento",
        "confirmConsent",
        "Confirm consent, with the patient's confirmation code",
        "Once the patient's doctor and then the institution validated (`validated_by_institution`), the patient \
         confirms with the confirmation code they were sent: `full_access`, and their anonymized images are offered \
         to consumers. Earlier, or again, is 409 `invalid_transition`.",
    )
}

/// `POST /pacientes/revocacion`.
pub fn revoke_op() -> Op {
    op(
        "/pacientes/revocacion",
        "revokeConsent",
        "Revoke consent, with the patient's revocation code",
        "From any state but `revocado`: their anonymized images stop being offered at once.",
    )
}

async fn with_code(state: &IngestState, ctx: &RequestContext, body: &[u8], kind: CodeKind, step: Step) -> Result<Response, ApiError> {
    let registry = state.registry()?;
    let req: Request = json_body(body, 1024, "a code")?;
    let unknown = || ApiError::not_found("no patient was sent this code").with_code("unknown_code");
    let (patient, found) = registry
        .store
        .patient_by_code(&registry.key.code_digest(&req.codigo))
        .await?
        .ok_or_else(unknown)?;
    if found != kind {
        return Err(unknown());
    }
    ctx.target(&patient.id);
    let to = registry
        .move_consent(&state.producer, &patient, step, "paciente", ctx.request_id())
        .await?;
    let mut moved = patient;
    moved.state = to;
    moved.updated_at = now_millis();
    Ok(axum::Json(Paciente::of(&moved, None)).into_response())
}

/// `POST /pacientes/consentimiento`.
#[tracing::instrument(name = "POST /pacientes/consentimiento", skip_all)]
pub async fn confirm(State(state): State<IngestState>, ctx: RequestContext, body: Bytes) -> Result<Response, ApiError> {
    with_code(&state, &ctx, &body, CodeKind::Confirm, Step::PatientConfirms).await
}

/// `POST /pacientes/revocacion`.
#[tracing::instrument(name = "POST /pacientes/revocacion", skip_all)]
pub async fn revoke(State(state): State<IngestState>, ctx: RequestContext, body: Bytes) -> Result<Response, ApiError> {
    with_code(&state, &ctx, &body, CodeKind::Revoke, Step::PatientRevokes).await
}
