//! `GET /imagenes/{id}/analisis`: the burned-in text safety net's latest analysis of one image
//! (label, confidence, regions found and blanked, residual lines, whether the output was
//! released, the model and the time it took), as materialized from `AnalisisCompletado`. Whoever
//! may see the image may see its analysis: it holds counts and codes, never text.

use super::{visible_image, with_etag};
use crate::openapi::IMAGES;
use crate::Shared;
use alpes_platform::auth::Authenticated;
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, path, schema, Op};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

/// The model that analysed an image (or that this deployment runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Modelo {
    /// The OCR engine, `tesseract`.
    pub nombre: String,
    /// Its version, as its library reports it.
    pub version: String,
    /// The language data loaded, `eng`.
    pub idioma: String,
    /// sha256 of the language data file: the model's own version. Null when the file was not
    /// found where Tesseract looks.
    pub datos_sha256: Option<String>,
}

impl From<alpes_schemas::ModeloAnalisis> for Modelo {
    fn from(m: alpes_schemas::ModeloAnalisis) -> Self {
        Modelo {
            nombre: m.nombre,
            version: m.version,
            idioma: m.idioma,
            datos_sha256: m.datos_sha256,
        }
    }
}

/// One image's analysis (the fields of `AnalisisCompletado`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // the document's schema; the body is served as stored
pub struct Analisis {
    imagen_id: String,
    /// The anonymization request analysed.
    solicitud_id: String,
    /// `texto_incrustado`, `sin_texto`, or `no_analizada` (the net was on but could not read
    /// the pixels; `motivo` says why).
    #[schema(example = "texto_incrustado")]
    etiqueta: String,
    /// How sure the net is of `etiqueta`, 0 to 100.
    #[schema(minimum = 0, maximum = 100)]
    confianza: i32,
    /// `all-text` or `phi`.
    modo: String,
    /// Text candidates the first pass found, all frames.
    candidatos: i32,
    /// Candidates the reader confirmed as lines of text.
    regiones_encontradas: i32,
    /// Text regions blanked (in `phi` mode, the lines judged not PHI are kept).
    regiones_blanqueadas: i32,
    /// Pixels of one frame inside the blanked text regions.
    area_blanqueada: i64,
    /// Lines still read as PHI after blanking; more than 0 holds the image back.
    lineas_residuales: i32,
    /// Whether the anonymized output was released to consumers.
    liberada: bool,
    /// `texto_residual` (held back), or why the pixels were not analysed.
    motivo: Option<String>,
    modelo: Modelo,
    /// Version of the Alpes engine.
    version_motor: String,
    /// Time the safety net took, microseconds.
    duracion_micros: i64,
    /// When the image was analysed (ms since the epoch).
    analizada_at: i64,
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::get(
        "/imagenes/{id}/analisis",
        "getImageAnalysis",
        IMAGES,
        "The burned-in text analysis of one image",
    )
    .describe(
        "The latest analysis of the image by the engine's OCR safety net. 404 for an image not analysed \
         (not processed yet, rejected before the engine ran, the safety net off, or no pixel data), and 404 for an image \
         the caller may not see (a provider sees its own, a consumer the anonymized ones).",
    )
    .auth(&[])
    .param(path("id", "The image id."))
    .ok(200, "The analysis.", Some(json_content(schema("Analisis"))), &[])
    .standard(404)
}

/// The handler.
#[tracing::instrument(name = "GET /imagenes/{id}/analisis", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let image = visible_image(&state, &caller, &id).await?;
    let analysis = state
        .catalog
        .analysis(&image.image_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("image {id} has no analysis")))?;
    Ok(with_etag(&headers, analysis.body.as_str().as_bytes().to_vec(), "application/json"))
}
