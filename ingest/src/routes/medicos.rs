//! `POST /medicos` creates a doctor: an account with the role `medico` (they log in with
//! `POST /auth/login`) and their licence, specialty and institution. An admin creates one for any
//! institution, a provider for its own. `GET /medicos` lists the live doctors, oldest first (an
//! admin every institution's or one's, anyone else of an institution their own).
//!
//! The account is created and announced first (`UsuarioRegistrado`: 409 `email_taken`, 422 for
//! a weak password), then the doctor; a licence already taken removes the account again (409).

use crate::identity::NewUser;
use crate::openapi::REGISTRY;
use crate::people::{next_cursor, text_field, Medico, PageParams};
use crate::registry::Scope;
use crate::IngestState;
use alpes_domain::registry::{Doctor, DoctorStatus, Taken};
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
const CURSOR: char = 'm';

/// A new doctor.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewDoctor)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    #[schema(min_length = 1, max_length = 200)]
    nombre: String,
    /// Their login; unique among accounts.
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// At least 12 characters; stored only as its argon2id hash.
    #[schema(min_length = 12)]
    password: String,
    /// Unique among live doctors.
    #[schema(min_length = 1, max_length = 100)]
    licencia: String,
    institucion_id: String,
    #[schema(min_length = 1, max_length = 100)]
    especialidad: String,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("institucion_id", &self.institucion_id)
            .finish_non_exhaustive()
    }
}

/// One page of doctors.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Doctors)]
pub struct Medicos {
    /// Oldest first.
    medicos: Vec<Medico>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// `POST /medicos`.
pub fn create_op() -> Op {
    Op::post("/medicos", "createDoctor", REGISTRY, "Create a doctor")
        .describe(
            "An admin, or a provider of the institution, creates a doctor: an account with the role `medico` \
             (announced as `UsuarioRegistrado`) and their licence, specialty and institution. The doctor starts \
             `active`, logs in with `POST /auth/login`, and validates their patients' consent.",
        )
        .auth(&["admin", "proveedor"])
        .institution_scoped()
        .body(true, "The doctor.", json_content(schema("NewDoctor")))
        .ok(
            201,
            "Created.",
            Some(json_content(schema("Doctor"))),
            &[(
                "Location",
                response_header(serde_json::json!({ "type": "string" }), true, "`/medicos/{id}`."),
            )],
        )
        .error(400, &["bad_json"], "The body is not a doctor.")
        .error(404, &["not_found"], "No live institution has `institucion_id`.")
        .error(
            409,
            &["email_taken", "licencia_taken"],
            "An account has this email, or a live doctor this licence.",
        )
        .error(
            422,
            &["bad_nombre", "bad_email", "weak_password", "bad_licencia", "bad_especialidad"],
            "A value is not acceptable.",
        )
        .standard(503)
}

/// `GET /medicos`.
pub fn list_op() -> Op {
    crate::people::list_op(
        "/medicos",
        "listDoctors",
        "List doctors, oldest first",
        "An admin sees every institution's (or one's, with `institucion_id`); a provider or an active doctor their own's.",
        "Doctors",
    )
}

/// `POST /medicos`.
#[tracing::instrument(name = "POST /medicos", skip_all, fields(user = %caller.user_id))]
pub async fn create(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin, Role::Proveedor])?;
    let registry = state.registry()?;
    let req: Request = json_body(&body, 16 * 1024, "a doctor")?;
    registry.scope_of(&caller).await?.require(&req.institucion_id)?;
    registry.live_institution(&req.institucion_id).await?;
    let licencia = text_field(&req.licencia, 100, "bad_licencia")?;
    let especialidad = text_field(&req.especialidad, 100, "bad_especialidad")?;
    let user = NewUser {
        nombre: req.nombre,
        email: req.email,
        password: req.password,
        role: Role::Medico,
        organization: None,
        created_by: Some(caller.user_id.clone()),
    };
    let account = state.identity.register(&state.producer, user, ctx.request_id()).await?;
    let doctor = Doctor {
        user_id: account.user_id.clone(),
        institution_id: req.institucion_id,
        licencia,
        especialidad,
        status: DoctorStatus::Active,
        created_at: now_millis(),
        deleted_at: None,
    };
    ctx.target(&doctor.user_id);
    match registry.store.create_doctor(&doctor).await {
        Ok(Ok(())) => {}
        Ok(Err(Taken::Licencia | Taken::Email | Taken::Paciente)) => {
            state.identity.store.delete_account(&account.user_id).await?;
            return Err(ApiError::conflict("licencia_taken", "a live doctor has this licence"));
        }
        Err(e) => {
            state.identity.store.delete_account(&account.user_id).await?;
            return Err(e.into());
        }
    }
    tracing::info!(doctor = %doctor.user_id, institution = %doctor.institution_id, "doctor created");
    let location = format!("/medicos/{}", doctor.user_id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(Medico::of(&doctor, Some(account.nombre))),
    )
        .into_response())
}

/// `GET /medicos`.
#[tracing::instrument(name = "GET /medicos", skip_all, fields(user = %caller.user_id))]
pub async fn list(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    QueryParams(params): QueryParams<PageParams>,
) -> Result<Response, ApiError> {
    let registry = state.registry()?;
    params.no_estado()?;
    let (limit, after) = params.page(CURSOR)?;
    let institution = match registry.scope_of(&caller).await? {
        Scope::All => params.institucion_id.clone(),
        Scope::Institution(own) => Some(own),
    };
    let mut found = registry.store.doctors(institution.as_deref(), after, limit + 1).await?;
    let next_cursor = next_cursor(&mut found, limit, CURSOR, |d| (d.created_at, d.user_id.clone()));
    let mut medicos = Vec::with_capacity(found.len());
    for d in &found {
        let nombre = state.identity.store.account(&d.user_id).await?.map(|a| a.nombre);
        medicos.push(Medico::of(d, nombre));
    }
    Ok(axum::Json(Medicos { medicos, next_cursor }).into_response())
}
