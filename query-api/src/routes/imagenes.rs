//! `GET /imagenes`: images newest first, filtered by `proveedor_id`,
//! `modalidad`, `region_anatomica`, `estado` and a creation-time range
//! (`creada_desde` inclusive, `creada_hasta` exclusive, ms since the epoch),
//! paged with an opaque cursor (`limit` 1–1000). A page boundary stays put
//! while new images arrive. A provider lists its own images; a consumer, the
//! anonymized ones.

use super::page_limit;
use crate::openapi::IMAGES;
use crate::vocabulary::Imagen;
use crate::Shared;
use alpes_platform::auth::{Authenticated, Caller, Role};
use alpes_platform::http::{ApiError, QueryParams};
use alpes_platform::openapi::{json_content, schema, Op};
use alpes_platform::store::catalog::ImageFilter;
use alpes_platform::store::Estado;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Only this provider's images.
    proveedor_id: Option<String>,
    /// Only this modality (DICOM Modality, or the provider's `tipo_imagen`).
    modalidad: Option<String>,
    /// Only this body region label.
    region_anatomica: Option<String>,
    /// Only images in this state.
    #[param(inline, value_type = Option<Estado>)]
    estado: Option<String>,
    /// Created at or after (ms since the epoch).
    creada_desde: Option<i64>,
    /// Created before (ms since the epoch).
    creada_hasta: Option<i64>,
    /// Page size, 1 to 1000.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<usize>,
    /// The previous page's `next_cursor` (opaque); a cursor this server did not issue is 400 `bad_cursor`.
    #[param(min_length = 1)]
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
        offered_only: false,
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
            f.offered_only = true;
        }
        Role::Medico => return Err(ApiError::forbidden("this route needs the role proveedor, consumidor or admin")),
    }
    Ok(f)
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::get("/imagenes", "listImages", IMAGES, "Images, newest first")
        .describe(
            "A provider lists its own images (naming another `proveedor_id` is 403), a consumer the anonymized \
             ones it is offered (its patient consented, or its provider belongs to no institution; asking for \
             another `estado` is 403), an admin every image. A page boundary stays put while new \
             images arrive. Unknown query keys are 400 `bad_query`.",
        )
        .auth(&[])
        .query_params::<Params>()
        .ok(200, "One page.", Some(json_content(schema("Imagenes"))), &[])
        .error(
            400,
            &["bad_query", "bad_limit", "bad_estado", "bad_cursor"],
            "A malformed or unknown query key, a limit outside 1 to 1000, an unknown `estado`, or a foreign cursor.",
        )
        .standard(403)
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
