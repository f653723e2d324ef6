//! `POST /reportes`: asks for a de-identification report of a scope of images (a provider, a
//! study, a time range) in `pdf` or `csv`. A provider reports on its own images, an admin on
//! anyone's. Answers 202 with the pending report and its `Location`; the report is generated off
//! the request path ([`crate::reports`]) and fetched with `GET /reportes/{id}`.

use super::reporte::{report_error, Estado};
use crate::openapi::REPORTS;
use crate::Shared;
use alpes_domain::report::{Alcance, Formato, ScopeError};
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::{json_body, ApiError};
use alpes_platform::openapi::{json_content, response_header, schema, Op};
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

/// The largest body accepted.
const BODY_LIMIT: usize = 4 * 1024;

/// A report request.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = SolicitudReporte)]
#[serde(deny_unknown_fields)]
pub struct Solicitud {
    /// `pdf` or `csv`.
    #[schema(example = "pdf")]
    formato: String,
    /// Which images: every key given must match. A provider's scope is its own images.
    #[serde(default)]
    #[schema(value_type = Alcance)]
    alcance: Alcance,
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::post("/reportes", "createReport", REPORTS, "Ask for a de-identification report")
        .describe(
            "A report of the images in scope (`alcance`: `proveedor_id`, `estudio_uid` as anonymized, `creada_desde` and \
             `creada_hasta` in ms since the epoch) in `pdf` or `csv`: images and studies, the profile and options, the \
             actions applied by code, the regions blanked by source, rejections with reasons, the burned-in text \
             analysis, input and output checksums; the PDF adds a summary and a chart. No PHI. A provider reports on \
             its own images (naming another provider is 403); an admin on any. At most 50,000 images.",
        )
        .auth(&["proveedor", "admin"])
        .body(true, "The report's format and scope.", json_content(schema("SolicitudReporte")))
        .ok(
            202,
            "Accepted: the pending report; fetch it at `Location`.",
            Some(json_content(schema("Reporte"))),
            &[("Location", response_header(json!({"type": "string"}), true, "`/reportes/{id}`."))],
        )
        .error(
            400,
            &["bad_json", "bad_range"],
            "The body is not a report request, or its time range is empty.",
        )
        .standard(403)
        .standard(413)
        .error(422, &["bad_formato"], "A format other than `pdf` or `csv`.")
}

/// The handler.
#[tracing::instrument(name = "POST /reportes", skip_all, fields(user = %caller.user_id))]
pub async fn handler(State(state): State<Shared>, Authenticated(caller): Authenticated, body: Bytes) -> Result<Response, ApiError> {
    caller.require(&[Role::Proveedor, Role::Admin])?;
    let asked: Solicitud = json_body(&body, BODY_LIMIT, "a report request")?;
    let formato = Formato::parse(&asked.formato).ok_or_else(|| ApiError::unprocessable("bad_formato", "formato must be pdf or csv"))?;
    let alcance = asked.alcance.for_caller(&caller).map_err(|e| match e {
        ScopeError::Forbidden(why) => ApiError::forbidden(why),
        ScopeError::EmptyRange => ApiError::bad_request("bad_range", e.to_string()),
    })?;
    let r = state
        .reports
        .create(&caller.user_id, formato, alcance)
        .await
        .map_err(report_error)?;
    let location = HeaderValue::from_str(&format!("/reportes/{}", r.id)).map_err(|e| ApiError::internal(&e))?;
    let mut res = (StatusCode::ACCEPTED, axum::Json(Estado::from(r))).into_response();
    res.headers_mut().insert(header::LOCATION, location);
    Ok(res)
}
