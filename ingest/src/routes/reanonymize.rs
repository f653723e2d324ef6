//! `POST /anonimizar/{id}`: anonymize an existing image again with another
//! profile (JSON body `{"retain": [...], "no_clean": [...], "regions": [...], "rules": null}`,
//! every field optional). Answers 202 with the new request id.

use crate::openapi::{location, IMAGES};
use crate::profile::validate;
use crate::register::reanonymize;
use crate::IngestState;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, path, schema, Op};
use alpes_schemas::Profile;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A re-anonymization taken: the image and the new request.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReanonymizeAccepted)]
pub(crate) struct SolicitudAceptada<'a> {
    id: &'a str,
    solicitud_id: &'a str,
    // Deprecated names.
    #[schema(deprecated)]
    request_id: &'a str,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = ReanonymizeRequest)]
#[serde(deny_unknown_fields)]
pub(crate) struct Request {
    #[serde(default)]
    #[schema(schema_with = crate::openapi::retain_options)]
    retain: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = crate::openapi::no_clean_options)]
    no_clean: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = crate::openapi::regions)]
    regions: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = crate::openapi::rules)]
    rules: Option<String>,
    #[serde(default)]
    #[schema(schema_with = crate::openapi::ocr_modes)]
    ocr: Option<String>,
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::post(
        "/anonimizar/{id}",
        "reanonymizeImage",
        IMAGES,
        "Anonymize an image again with another profile",
    )
    .describe(
        "A new anonymization request for an existing image; a provider may name only its own images. \
             An empty body means the default (strictest) profile.",
    )
    .auth(&["proveedor", "admin"])
    .param(path("id", "The image id."))
    .body(
        false,
        "The profile; every field is optional.",
        json_content(schema("ReanonymizeRequest")),
    )
    .ok(
        202,
        "The request is on its way.",
        Some(json_content(schema("ReanonymizeAccepted"))),
        &[("Location", location())],
    )
    .error(
        400,
        &["bad_json", "bad_profile"],
        "The body is not a profile, or names an unknown option or a bad region.",
    )
    .standard(404)
    .standard(413)
}

/// The handler.
#[tracing::instrument(name = "POST /anonimizar/{id}", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Proveedor, Role::Admin])?;
    if body.len() > 64 * 1024 {
        return Err(ApiError::too_large(64 * 1024));
    }
    let req: Request = if body.iter().all(u8::is_ascii_whitespace) {
        Request::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request("bad_json", format!("the body is not a profile: {e}")))?
    };
    let profile = Profile {
        retain: req.retain,
        no_clean: req.no_clean,
        regions: req.regions,
        rules: req.rules,
        ocr: req.ocr,
    };
    validate(&profile)?;
    let row = state.store.image(&id).await.map_err(ApiError::from)?;
    // A provider sees only its own images; someone else's id is as good as unknown.
    match row {
        Some(r) if caller.is_admin_or(&r.provider_id) => {}
        _ => return Err(ApiError::not_found("no image with this id")),
    }
    let request_id = reanonymize(&state, &ctx, &caller.user_id, &id, profile).await?;
    let body = SolicitudAceptada {
        id: &id,
        solicitud_id: &request_id,
        request_id: &request_id,
    };
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, format!("/imagenes/{id}"))],
        axum::Json(body),
    )
        .into_response())
}
