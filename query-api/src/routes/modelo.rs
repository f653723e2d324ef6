//! `GET /analisis/modelo`: the burned-in text safety net this deployment's engine runs: the OCR
//! model (engine, version, language data and its checksum), the modes and the default one. Each
//! analysis names the model that made it, so the two can be compared.

use super::analisis::Modelo;
use crate::openapi::IMAGES;
use crate::Shared;
use alpes_platform::auth::Authenticated;
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, schema, Op};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

/// The safety net's model and modes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ModeloAnalisis {
    /// The OCR model.
    pub modelo: Modelo,
    /// The modes an upload or a profile may ask for (`ocr`).
    pub modos: Vec<String>,
    /// The mode when none is asked for.
    pub modo_por_defecto: String,
    /// The labels an analysis may have.
    pub etiquetas: Vec<String>,
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::get(
        "/analisis/modelo",
        "getAnalysisModel",
        IMAGES,
        "The burned-in text safety net's model",
    )
    .describe("The OCR model and modes of this deployment's engine. Any authenticated caller.")
    .auth(&[])
    .ok(200, "The model.", Some(json_content(schema("ModeloAnalisis"))), &[])
}

/// The handler.
#[tracing::instrument(name = "GET /analisis/modelo", skip_all, fields(user = %caller.user_id))]
pub async fn handler(State(state): State<Shared>, Authenticated(caller): Authenticated, headers: HeaderMap) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(state.analysis_model.as_ref()).map_err(|e| ApiError::internal(&e))?;
    Ok(super::with_etag(&headers, body, "application/json"))
}
