//! `POST /pacientes` registers a patient of an institution (a provider of it, an active doctor of
//! it, or an admin); `GET /pacientes` lists them, oldest first, without contact data (an admin
//! every institution's or one's, a provider its institution's, a doctor their own patients).
//!
//! The MRN (`id_paciente`, as DICOM PatientID carries it) is kept only as the pseudonymous
//! PatientID the engine gives the institution's images of that patient, so images and patients
//! link without the MRN in clear. Name, email and phone are sealed before they are stored. The
//! patient starts `pending`; the registration is announced (`ConsentimientoCambiado`, which the
//! notifier turns into the patient's confirmation message with their codes). If the broker does
//! not acknowledge, the patient is deleted again and the answer is 503.

use crate::openapi::REGISTRY;
use crate::people::{next_cursor, text_field, Paciente, PageParams};
use crate::registry::{consent_event, Contact, Scope};
use crate::IngestState;
use alpes_domain::consent::ConsentState;
use alpes_domain::registry::{CodeKind, DoctorStatus, Patient, PatientFilter, Taken};
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::{json_body, ApiError, QueryParams};
use alpes_platform::openapi::{json_content, response_header, schema, Op};
use alpes_schemas::now_millis;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The page cursor's kind letter.
const CURSOR: char = 'p';

/// A new patient. Its `Debug` shows no field: every one but the ids is PHI.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewPatient)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    #[schema(min_length = 1, max_length = 200)]
    nombre: String,
    /// Where their confirmation and codes are sent.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// E.164 (`+57 300 123 4567`); their codes are also sent by SMS when one is configured.
    #[serde(default)]
    telefono: Option<String>,
    /// The institution's patient id (the MRN, as DICOM PatientID carries it): kept only as the
    /// pseudonym their anonymized images get.
    #[schema(min_length = 1, max_length = 64)]
    id_paciente: String,
    institucion_id: String,
    /// Their doctor (an active doctor of the institution), who validates first. A doctor
    /// registering a patient may leave it out: they are the patient's doctor.
    #[serde(default)]
    medico_id: Option<String>,
    /// `es` (the default) or `en`: the language of their messages.
    #[serde(default)]
    idioma: Option<String>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("institucion_id", &self.institucion_id)
            .finish_non_exhaustive()
    }
}

/// One page of patients.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Patients)]
pub struct Pacientes {
    /// Oldest first, without contact data.
    pacientes: Vec<Paciente>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// `POST /pacientes`.
pub fn create_op() -> Op {
    Op::post("/pacientes", "createPatient", REGISTRY, "Register a patient")
        .describe(
            "A provider or an active doctor of the institution (or an admin) registers a patient. The answer is \
             201 with `estado` `pending`. The patient is sent a confirmation with two single-use codes: one to \
             confirm consent (`POST /pacientes/consentimiento`) once their doctor and then the institution validated \
             (`POST /pacientes/{id}/validar`), one to revoke it (`POST /pacientes/revocacion`). Only a patient in \
             `full_access` has their anonymized images offered to consumers.",
        )
        .auth(&["admin", "proveedor", "medico"])
        .institution_scoped()
        .body(true, "The patient.", json_content(schema("NewPatient")))
        .ok(
            201,
            "Registered and announced.",
            Some(json_content(schema("Patient"))),
            &[(
                "Location",
                response_header(serde_json::json!({ "type": "string" }), true, "`/pacientes/{id}`."),
            )],
        )
        .error(400, &["bad_json"], "The body is not a patient.")
        .error(
            404,
            &["not_found"],
            "No live institution has `institucion_id`, or no active doctor of it `medico_id`.",
        )
        .error(
            409,
            &["paciente_exists"],
            "The institution has a live patient with this `id_paciente`.",
        )
        .error(
            422,
            &[
                "bad_nombre",
                "bad_email",
                "bad_telefono",
                "bad_id_paciente",
                "bad_idioma",
                "no_medico",
            ],
            "A value is not acceptable, or no doctor was named.",
        )
        .standard(503)
}

/// `GET /pacientes`.
pub fn list_op() -> Op {
    crate::people::list_op(
        "/pacientes",
        "listPatients",
        "List patients, oldest first",
        "Without contact data. An admin sees every institution's (or one's, with `institucion_id`), a provider its \
         institution's, a doctor their own patients; `estado` keeps one consent state (`?estado=validated_by_doctor` \
         lists what awaits the institution's validation).",
        "Patients",
    )
}

/// A phone number as sent: `+` and 6 to 15 digits, spaces, dots and dashes dropped.
fn phone(raw: &str) -> Result<String, ApiError> {
    let kept: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
    let digits = kept.strip_prefix('+').unwrap_or(&kept);
    if kept.starts_with('+') && (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(kept)
    } else {
        Err(ApiError::unprocessable(
            "bad_telefono",
            "telefono must be an international number: + and 6 to 15 digits",
        ))
    }
}

/// `POST /pacientes`.
#[tracing::instrument(name = "POST /pacientes", skip_all, fields(user = %caller.user_id))]
pub async fn create(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    body: Bytes,
) -> Result<Response, ApiError> {
    let registry = state.registry()?;
    let req: Request = json_body(&body, 16 * 1024, "a patient")?;
    registry.scope_of(&caller).await?.require(&req.institucion_id)?;
    registry.live_institution(&req.institucion_id).await?;
    let doctor_id = match (req.medico_id.as_deref(), caller.role) {
        (Some(d), _) => d.trim().to_owned(),
        (None, Role::Medico) => caller.user_id.clone(),
        (None, _) => return Err(ApiError::unprocessable("no_medico", "name the patient's doctor with medico_id")),
    };
    match registry.store.doctor(&doctor_id).await? {
        Some(d) if d.deleted_at.is_none() && d.status == DoctorStatus::Active && d.institution_id == req.institucion_id => {}
        _ => return Err(ApiError::not_found("no active doctor of this institution has this id")),
    }
    let email = crate::identity::normalize_email(&req.email);
    if !crate::identity::plausible_email(&email) {
        return Err(ApiError::unprocessable("bad_email", "email is not an email address"));
    }
    let contact = Contact {
        nombre: text_field(&req.nombre, 200, "bad_nombre")?,
        email,
        telefono: req.telefono.as_deref().map(phone).transpose()?,
    };
    let mrn = text_field(&req.id_paciente, 64, "bad_id_paciente")?;
    if mrn.contains('\\') {
        return Err(ApiError::unprocessable(
            "bad_id_paciente",
            "id_paciente is one DICOM value: no backslash",
        ));
    }
    let idioma = match req.idioma.as_deref().map(str::trim) {
        None | Some("es") => "es",
        Some("en") => "en",
        Some(_) => return Err(ApiError::unprocessable("bad_idioma", "idioma must be es or en")),
    };
    let now = now_millis();
    let id = uuid::Uuid::new_v4().to_string();
    let patient = Patient {
        subject: registry.subject(&req.institucion_id, &mrn),
        contact: registry.seal(&contact)?,
        confirm_digest: registry.key.code_digest(&registry.key.code(CodeKind::Confirm, &id)),
        revoke_digest: registry.key.code_digest(&registry.key.code(CodeKind::Revoke, &id)),
        id,
        institution_id: req.institucion_id,
        doctor_id,
        idioma: idioma.to_owned(),
        state: ConsentState::Pending,
        created_by: caller.user_id.clone(),
        created_at: now,
        updated_at: now,
        deleted_at: None,
    };
    if let Err(Taken::Paciente | Taken::Email | Taken::Licencia) = registry.store.create_patient(&patient).await? {
        return Err(ApiError::conflict(
            "paciente_exists",
            "the institution has a live patient with this id_paciente",
        ));
    }
    ctx.target(&patient.id);
    let event = consent_event(
        &patient,
        None,
        ConsentState::Pending,
        "registered",
        &caller.user_id,
        now,
        ctx.request_id(),
    );
    if let Err(e) = state.producer.send(&patient.id, &event).await {
        tracing::warn!(error = %e, patient = %patient.id, "broker did not acknowledge a patient; it is deleted again");
        let _ = registry.store.delete_patient(&patient.id, now_millis()).await;
        return Err(ApiError::unavailable("the event broker", 5));
    }
    tracing::info!(patient = %patient.id, institution = %patient.institution_id, "patient registered");
    let location = format!("/pacientes/{}", patient.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(Paciente::of(&patient, None)),
    )
        .into_response())
}

/// `GET /pacientes`.
#[tracing::instrument(name = "GET /pacientes", skip_all, fields(user = %caller.user_id))]
pub async fn list(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    QueryParams(params): QueryParams<PageParams>,
) -> Result<Response, ApiError> {
    let registry = state.registry()?;
    let (limit, after) = params.page(CURSOR)?;
    let state_filter = params
        .estado
        .as_deref()
        .map(|e| ConsentState::parse(e).ok_or_else(|| ApiError::bad_request("bad_estado", "estado is not a consent state")))
        .transpose()?;
    let mut filter = PatientFilter {
        state: state_filter,
        ..PatientFilter::default()
    };
    match registry.scope_of(&caller).await? {
        Scope::All => filter.institution_id = params.institucion_id.clone(),
        Scope::Institution(own) => filter.institution_id = Some(own),
    }
    if caller.role == Role::Medico {
        filter.doctor_id = Some(caller.user_id.clone());
    }
    let mut found = registry.store.patients(&filter, after, limit + 1).await?;
    let next_cursor = next_cursor(&mut found, limit, CURSOR, |p| (p.created_at, p.id.clone()));
    Ok(axum::Json(Pacientes {
        pacientes: found.iter().map(|p| Paciente::of(p, None)).collect(),
        next_cursor,
    })
    .into_response())
}
