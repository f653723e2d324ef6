//! `POST /instituciones` (admins) creates an institution; `GET /instituciones` lists them, oldest
//! first (an admin every one, anyone else of an institution their own).
//!
//! An institution is stored, then announced (`InstitucionActualizada`: its policy for patients
//! it has not registered, which the query side applies); if the broker does not acknowledge, it
//! is deleted again and the answer is 503.

use crate::openapi::REGISTRY;
use crate::people::{next_cursor, text_field, Institucion, PageParams};
use crate::registry::Scope;
use crate::IngestState;
use alpes_domain::consent::UnregisteredPolicy;
use alpes_domain::registry::{Institution, Taken, Verification, INSTITUTION_TYPES};
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::{json_body, ApiError, QueryParams};
use alpes_platform::openapi::{json_content, response_header, schema, Op};
use alpes_schemas::{deterministic_event_id, now_millis, Event, InstitucionActualizada};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The page cursor's kind letter.
const CURSOR: char = 'n';

/// A new institution.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewInstitution)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    #[schema(min_length = 1, max_length = 200)]
    nombre: String,
    /// `hospital`, `clinica`, `laboratorio`, `aseguradora`, `centro_investigacion`, `centro_imagen` or `otro`.
    tipo: String,
    /// Unique among live institutions.
    #[schema(min_length = 1, max_length = 100)]
    licencia: String,
    /// Unique among live institutions; where revocations are notified.
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    region: Option<String>,
    /// `retener` (the default) or `liberar`.
    #[serde(default)]
    politica_no_registrados: Option<String>,
}

/// One page of institutions.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Institutions)]
pub struct Instituciones {
    /// Oldest first.
    instituciones: Vec<Institucion>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// `POST /instituciones`.
pub fn create_op() -> Op {
    Op::post("/instituciones", "createInstitution", REGISTRY, "Create an institution")
        .describe(
            "An admin creates an institution. Provider accounts join it at creation (`POST /usuarios` with \
             `institucion_id`), and their uploads are then its: a patient it registered is offered to consumers only \
             once their consent is `full_access`, and images of patients it has not registered follow \
             `politica_no_registrados` (`retener`, the default, holds them back).",
        )
        .auth(&["admin"])
        .institution_scoped()
        .body(true, "The institution.", json_content(schema("NewInstitution")))
        .ok(
            201,
            "Created and announced.",
            Some(json_content(schema("Institution"))),
            &[(
                "Location",
                response_header(serde_json::json!({ "type": "string" }), true, "`/instituciones/{id}`."),
            )],
        )
        .error(400, &["bad_json"], "The body is not an institution.")
        .error(
            409,
            &["licencia_taken", "email_taken"],
            "A live institution has this licence or email.",
        )
        .error(
            422,
            &["bad_nombre", "bad_tipo", "bad_licencia", "bad_email", "bad_region", "bad_politica"],
            "A value is not acceptable.",
        )
        .standard(503)
}

/// `GET /instituciones`.
pub fn list_op() -> Op {
    crate::people::list_op(
        "/instituciones",
        "listInstitutions",
        "List institutions, oldest first",
        "An admin sees every live institution; a provider or an active doctor only their own.",
        "Institutions",
    )
}

/// The `InstitucionActualizada` of `i` as it is now.
pub(crate) fn changed(i: &Institution, actor: &str, at: i64, request_id: Option<String>) -> InstitucionActualizada {
    InstitucionActualizada {
        evento_id: deterministic_event_id(InstitucionActualizada::NAME, &[&i.id, &at.to_string()]),
        ocurrido_at: at,
        actor: actor.to_owned(),
        institucion_id: i.id.clone(),
        tipo: i.tipo.clone(),
        politica: i.politica.as_str().to_owned(),
        verificacion: i.verificacion.as_str().to_owned(),
        eliminada: i.deleted_at.is_some(),
        solicitud_http_id: request_id,
    }
}

fn institution_of(req: Request, now: i64) -> Result<Institution, ApiError> {
    let tipo = req.tipo.trim().to_owned();
    if !INSTITUTION_TYPES.contains(&tipo.as_str()) {
        return Err(ApiError::unprocessable(
            "bad_tipo",
            format!("tipo must be one of {}", INSTITUTION_TYPES.join(", ")),
        ));
    }
    let email = crate::identity::normalize_email(&req.email);
    if !crate::identity::plausible_email(&email) {
        return Err(ApiError::unprocessable("bad_email", "email is not an email address"));
    }
    let politica = match req.politica_no_registrados.as_deref() {
        None => UnregisteredPolicy::default(),
        Some(p) => UnregisteredPolicy::parse(p)
            .ok_or_else(|| ApiError::unprocessable("bad_politica", "politica_no_registrados must be retener or liberar"))?,
    };
    Ok(Institution {
        id: uuid::Uuid::new_v4().to_string(),
        nombre: text_field(&req.nombre, 200, "bad_nombre")?,
        tipo,
        licencia: text_field(&req.licencia, 100, "bad_licencia")?,
        email,
        region: req.region.as_deref().map(|r| text_field(r, 100, "bad_region")).transpose()?,
        verificacion: Verification::Pendiente,
        politica,
        created_at: now,
        deleted_at: None,
    })
}

/// `POST /instituciones`.
#[tracing::instrument(name = "POST /instituciones", skip_all, fields(user = %caller.user_id))]
pub async fn create(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Admin])?;
    let registry = state.registry()?;
    let req: Request = json_body(&body, 16 * 1024, "an institution")?;
    let now = now_millis();
    let institution = institution_of(req, now)?;
    match registry.store.create_institution(&institution).await? {
        Ok(()) => {}
        Err(Taken::Email) => return Err(ApiError::conflict("email_taken", "a live institution has this email")),
        Err(_) => return Err(ApiError::conflict("licencia_taken", "a live institution has this licence")),
    }
    ctx.target(&institution.id);
    let event = changed(&institution, &caller.user_id, now, ctx.request_id());
    if let Err(e) = state.producer.send(&institution.id, &event).await {
        tracing::warn!(error = %e, institution = %institution.id, "broker did not acknowledge an institution; it is deleted again");
        let _ = registry.store.delete_institution(&institution.id, now_millis()).await;
        return Err(ApiError::unavailable("the event broker", 5));
    }
    tracing::info!(institution = %institution.id, tipo = %institution.tipo, "institution created");
    let location = format!("/instituciones/{}", institution.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(Institucion::from(&institution)),
    )
        .into_response())
}

/// `GET /instituciones`.
#[tracing::instrument(name = "GET /instituciones", skip_all, fields(user = %caller.user_id))]
pub async fn list(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    QueryParams(params): QueryParams<PageParams>,
) -> Result<Response, ApiError> {
    let registry = state.registry()?;
    params.no_estado()?;
    let (limit, after) = params.page(CURSOR)?;
    let mut found = match registry.scope_of(&caller).await? {
        Scope::All => registry.store.institutions(after, limit + 1).await?,
        Scope::Institution(own) => {
            let mine = registry.store.institution(&own).await?.filter(|i| i.deleted_at.is_none());
            mine.into_iter()
                .filter(|i| after.as_ref().is_none_or(|(at, id)| (i.created_at, &i.id) > (*at, id)))
                .collect()
        }
    };
    let next_cursor = next_cursor(&mut found, limit, CURSOR, |i| (i.created_at, i.id.clone()));
    Ok(axum::Json(Instituciones {
        instituciones: found.iter().map(Institucion::from).collect(),
        next_cursor,
    })
    .into_response())
}
