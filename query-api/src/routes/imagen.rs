//! `GET /imagenes/{id}`: one image's metadata: its `estado` (registrada,
//! anonimizada or rechazada), the anonymized output and the de-identification
//! report summary, the price of a download, and an ETag (304 on
//! `If-None-Match`).

use super::{etag_header, tagged, visible_image};
use crate::openapi::{etag, if_none_match, IMAGES};
use crate::rendered::Body;
use crate::vocabulary;
use crate::Shared;
use alpes_platform::auth::Authenticated;
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{json_content, path, schema, Op};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

/// The image, with what downloading it costs.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ImagenDetalle)]
pub struct Imagen<'a> {
    #[serde(flatten)]
    image: vocabulary::Imagen<'a>,
    /// Price of one download, minor units of `moneda`.
    precio_minor: i64,
    #[schema(pattern = "^[A-Z]{3}$")]
    moneda: &'a str,
    #[schema(deprecated, pattern = "^[A-Z]{3}$")]
    currency: &'a str,
    /// Where the anonymized bytes are, once there are some.
    descarga: Option<String>,
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::get(
        "/imagenes/{id}",
        "getImage",
        IMAGES,
        "One image: state, anonymized output, report and price",
    )
    .describe("404 for an image the caller may not see (a provider sees its own, a consumer the anonymized ones).")
    .auth(&[])
    .param(path("id", "The image id."))
    .param(if_none_match())
    .ok(
        200,
        "The image.",
        Some(json_content(schema("ImagenDetalle"))),
        &[("ETag", etag(true))],
    )
    .ok(304, "The client's copy is current.", None, &[("ETag", etag(true))])
    .standard(404)
}

/// The handler.
#[tracing::instrument(name = "GET /imagenes/{id}", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let image = visible_image(&state, &caller, &id).await?;
    let body = state.rendered.body(&image, || {
        let bytes = serde_json::to_vec(&Imagen {
            image: vocabulary::Imagen::from(image.as_ref()),
            precio_minor: state.pricing.price(image.modality.as_deref()),
            moneda: state.pricing.currency(),
            currency: state.pricing.currency(),
            descarga: image
                .anonymized
                .as_ref()
                .map(|_| format!("/imagenes/{}/anonimizada", image.image_id)),
        })
        .map_err(|e| ApiError::internal(&e))?;
        Ok::<_, ApiError>(Body {
            etag: etag_header(&bytes),
            bytes: bytes.into(),
        })
    })?;
    Ok(tagged(&headers, body.bytes, body.etag, "application/json"))
}
