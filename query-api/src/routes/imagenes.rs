//! `GET /imagenes`: images newest first, filtered by `proveedor_id`,
//! `modalidad`, `region_anatomica`, `estado` and a creation-time range
//! (`creada_desde` inclusive, `creada_hasta` exclusive, ms since the epoch),
//! paged with an opaque cursor (`limit` 1–1000). A page boundary stays put
//! while new images arrive. A provider lists its own images; a consumer, the
//! anonymized ones.

use super::page_limit;
use crate::vocabulary::Imagen;
use crate::Shared;
use alpes_platform::auth::{Authenticated, Caller, Role};
use alpes_platform::http::{ApiError, QueryParams};
use alpes_platform::store::catalog::ImageFilter;
use alpes_platform::store::Estado;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    proveedor_id: Option<String>,
    modalidad: Option<String>,
    region_anatomica: Option<String>,
    estado: Option<String>,
    creada_desde: Option<i64>,
    creada_hasta: Option<i64>,
    limit: Option<usize>,
    cursor: Option<String>,
}

/// One page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Imagenes<'a> {
    imagenes: Vec<Imagen<'a>>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: Option<String>,
}

/// The caller's filter: what was asked, narrowed to what the caller may see.
fn filter(caller: &Caller, p: Params) -> Result<ImageFilter, ApiError> {
    let estado = p
        .estado
        .map(|e| {
            Estado::parse(&e).ok_or_else(|| ApiError::bad_request("bad_estado", "estado must be registrada, anonimizada or rechazada"))
        })
        .transpose()?;
    let mut f = ImageFilter {
        provider_id: p.proveedor_id,
        modality: p.modalidad,
        region_anatomica: p.region_anatomica,
        estado,
        created_from: p.creada_desde,
        created_to: p.creada_hasta,
    };
    match caller.role {
        Role::Admin => {}
        Role::Proveedor => {
            if f.provider_id.as_ref().is_some_and(|p| *p != caller.user_id) {
                return Err(ApiError::forbidden("a provider lists only its own images"));
            }
            f.provider_id = Some(caller.user_id.clone());
        }
        Role::Consumidor => {
            if f.estado.is_some_and(|e| e != Estado::Anonimizada) {
                return Err(ApiError::forbidden("a consumer lists only anonymized images"));
            }
            f.estado = Some(Estado::Anonimizada);
        }
    }
    Ok(f)
}

/// The handler.
#[tracing::instrument(name = "GET /imagenes", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    QueryParams(params): QueryParams<Params>,
) -> Result<Response, ApiError> {
    let limit = page_limit(params.limit)?;
    let cursor = params.cursor.clone();
    let f = filter(&caller, params)?;
    let page = state.catalog.images(&f, cursor.as_deref(), limit).await?;
    Ok(Json(Imagenes {
        imagenes: page.images.iter().map(Imagen::from).collect(),
        next_cursor: page.next,
    })
    .into_response())
}
