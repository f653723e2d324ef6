//! `GET /reportes/{id}`: a report's state, then its file. The one who asked for it and admins
//! may read it (anyone else gets 404). Pending: 202 with the state (and `Retry-After`); ready:
//! 200 with the PDF or CSV file; failed: 422 `report_failed` with the reason. With
//! `Accept: application/json` the state is answered whatever it is (200).

use crate::openapi::REPORTS;
use crate::reports::jobs::ReportError;
use crate::Shared;
use alpes_domain::report::{EstadoReporte, Reporte};
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, path, response_header, schema, Op};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

/// A report's state, as served.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Reporte)]
pub struct Estado {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    reporte: Reporte,
    /// Where the file is (once ready).
    archivo: String,
}

impl From<Reporte> for Estado {
    fn from(reporte: Reporte) -> Self {
        let archivo = format!("/reportes/{}", reporte.id);
        Estado { reporte, archivo }
    }
}

/// A report store failure as an answer (no internals).
pub fn report_error(e: ReportError) -> ApiError {
    tracing::warn!(error = %e, "report store");
    ApiError::unavailable("the report store", 2)
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::get("/reportes/{id}", "getReport", REPORTS, "A report's state, then its file")
        .describe(
            "202 with the state while the report is generated (retry after `Retry-After` seconds); 200 with the file \
             (`application/pdf` or `text/csv`) once ready; 422 `report_failed` if it could not be generated. With \
             `Accept: application/json`, the state (200) whatever it is. The one who asked and admins only.",
        )
        .auth(&["proveedor", "admin"])
        .param(path("id", "The report id."))
        .ok(
            200,
            "The report file (or, with `Accept: application/json`, its state).",
            Some(json!({
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": schema("Reporte")},
            })),
            &[],
        )
        .ok(
            202,
            "Still being generated.",
            Some(json_content(schema("Reporte"))),
            &[("Retry-After", response_header(json!({"type": "integer"}), true, "Seconds to wait."))],
        )
        .standard(404)
        .error(422, &["report_failed"], "The report could not be generated; the message says why.")
}

/// The handler.
#[tracing::instrument(name = "GET /reportes/{id}", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Proveedor, Role::Admin])?;
    let r = match state.reports.get(&id).await.map_err(report_error)? {
        Some(r) if caller.is_admin_or(&r.solicitante) => r,
        _ => return Err(ApiError::not_found(format!("no report {id}"))),
    };
    let wants_state = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_state {
        return Ok(axum::Json(Estado::from(r)).into_response());
    }
    match r.estado {
        EstadoReporte::Pendiente => {
            let mut res = (StatusCode::ACCEPTED, axum::Json(Estado::from(r))).into_response();
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
            Ok(res)
        }
        EstadoReporte::Fallido => Err(ApiError::unprocessable(
            "report_failed",
            r.motivo.unwrap_or_else(|| "the report could not be generated".into()),
        )),
        EstadoReporte::Listo => {
            let bytes = state.reports.file(&r).await.map_err(report_error)?;
            let disposition = format!("attachment; filename=\"alpes-reporte-{}.{}\"", r.id, r.formato.extension());
            let mut res = (StatusCode::OK, bytes).into_response();
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(r.formato.media_type()));
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            if let Some(sha) = r.sha256.as_deref().and_then(|s| HeaderValue::from_str(&format!("\"{s}\"")).ok()) {
                h.insert(header::ETAG, sha);
            }
            Ok(res)
        }
    }
}
