//! One route per file, and what they share: who may see what, page limits,
//! and ETag handling.

pub mod analisis;
pub mod auditoria;
pub mod descarga;
pub mod dicomweb;
pub mod eventos;
pub mod imagen;
pub mod imagenes;
pub mod modelo;
pub mod movimientos;
pub mod paneles;
pub mod pares;
pub mod reporte;
pub mod reportes;
pub mod saldo;
pub mod usuario;
pub mod usuarios;

use crate::{QueryState, Shared};
use alpes_platform::auth::{Caller, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::Routes;
use alpes_platform::store::catalog::CatalogUser;
use alpes_platform::store::{CatalogImage, Estado};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use dicomweb::qido::Level;
use dicomweb::{frames, metadata, qido, rendered, wado};
use sha2::{Digest, Sha256};

/// Every query route, with its operation.
pub fn all() -> Routes<Shared> {
    let (study, series, instance) = (dicomweb::study, dicomweb::series, dicomweb::instance);
    Routes::new()
        .route(imagenes::op(), imagenes::handler)
        .route(eventos::op(), eventos::handler)
        .route(paneles::institution_op(), paneles::institution)
        .route(paneles::doctor_op(), paneles::doctor)
        .route(imagen::op(), imagen::handler)
        .route(descarga::op(), descarga::handler)
        .route(analisis::op(), analisis::handler)
        .route(modelo::op(), modelo::handler)
        .route(reportes::op(), reportes::handler)
        .route(reporte::op(), reporte::handler)
        .route(usuarios::op(), usuarios::handler)
        .route(usuario::op(), usuario::handler)
        .route(saldo::op(), saldo::handler)
        .route(movimientos::op(), movimientos::handler)
        .route(pares::op(), pares::handler)
        .route(auditoria::op(), auditoria::handler)
        .route(
            qido::op("/studies", "searchStudies", "Search studies (QIDO-RS)", (Level::Study, "studies")),
            qido::studies,
        )
        .route(
            qido::op("/series", "searchSeries", "Search series (QIDO-RS)", (Level::Series, "series")),
            qido::series,
        )
        .route(
            qido::op(
                "/instances",
                "searchInstances",
                "Search instances (QIDO-RS)",
                (Level::Instance, "instances"),
            ),
            qido::instances,
        )
        .route(
            qido::op(
                "/studies/{study}/series",
                "searchStudySeries",
                "Search a study's series (QIDO-RS)",
                (Level::Series, "series of the study"),
            )
            .param(study()),
            qido::series,
        )
        .route(
            qido::op(
                "/studies/{study}/instances",
                "searchStudyInstances",
                "Search a study's instances (QIDO-RS)",
                (Level::Instance, "instances of the study"),
            )
            .param(study()),
            qido::instances,
        )
        .route(
            qido::op(
                "/studies/{study}/series/{series}/instances",
                "searchSeriesInstances",
                "Search a series' instances (QIDO-RS)",
                (Level::Instance, "instances of the series"),
            )
            .params([study(), series()]),
            qido::instances,
        )
        .route(
            wado::op("/studies/{study}", "retrieveStudy", "a study").param(study()),
            wado::handler,
        )
        .route(
            wado::op("/studies/{study}/series/{series}", "retrieveSeries", "a series").params([study(), series()]),
            wado::handler,
        )
        .route(
            wado::op(
                "/studies/{study}/series/{series}/instances/{instance}",
                "retrieveInstance",
                "an instance",
            )
            .params([study(), series(), instance()]),
            wado::handler,
        )
        .route(frames::op(false), frames::handler)
        .route(frames::op(true), frames::handler)
        .route(
            rendered::op(
                "/studies/{study}/series/{series}/instances/{instance}/rendered",
                "retrieveRenderedInstance",
                "Rendered instance (WADO-RS)",
                "the instance's first frame",
                true,
            ),
            rendered::handler,
        )
        .route(
            rendered::op(
                "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered",
                "retrieveRenderedFrame",
                "Rendered frame (WADO-RS)",
                "one frame",
                true,
            ),
            rendered::handler,
        )
        .route(
            rendered::op(
                "/studies/{study}/rendered",
                "retrieveRenderedStudy",
                "Rendered study (WADO-RS)",
                "the first frame of every instance of the study, one part each",
                true,
            ),
            rendered::handler,
        )
        .route(
            rendered::op(
                "/studies/{study}/series/{series}/rendered",
                "retrieveRenderedSeries",
                "Rendered series (WADO-RS)",
                "the first frame of every instance of the series, one part each",
                true,
            ),
            rendered::handler,
        )
        .route(
            rendered::op(
                "/studies/{study}/thumbnail",
                "retrieveStudyThumbnail",
                "Study thumbnail (WADO-RS)",
                "a small image of the first frame of the study's first instance",
                false,
            ),
            rendered::handler,
        )
        .route(
            rendered::op(
                "/studies/{study}/series/{series}/thumbnail",
                "retrieveSeriesThumbnail",
                "Series thumbnail (WADO-RS)",
                "a small image of the first frame of the series' first instance",
                false,
            ),
            rendered::handler,
        )
        .route(
            rendered::op(
                "/studies/{study}/series/{series}/instances/{instance}/thumbnail",
                "retrieveInstanceThumbnail",
                "Instance thumbnail (WADO-RS)",
                "a small image of the instance's first frame",
                false,
            ),
            rendered::handler,
        )
        .route(
            metadata::op("/studies/{study}/metadata", "retrieveStudyMetadata", "a study").param(study()),
            metadata::handler,
        )
        .route(
            metadata::op("/studies/{study}/series/{series}/metadata", "retrieveSeriesMetadata", "a series").params([study(), series()]),
            metadata::handler,
        )
        .route(
            metadata::op(
                "/studies/{study}/series/{series}/instances/{instance}/metadata",
                "retrieveInstanceMetadata",
                "an instance",
            )
            .params([study(), series(), instance()]),
            metadata::handler,
        )
}

/// The largest page of any listing.
pub const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 100;

/// A provider or a consumer reads only its own money; an admin reads anyone's.
pub fn may_read_money_of(caller: &Caller, user_id: &str) -> Result<(), ApiError> {
    caller.require(&[Role::Proveedor, Role::Consumidor, Role::Admin])?;
    if caller.is_admin_or(user_id) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "a provider or a consumer can only read its own balance and ledger",
        ))
    }
}

/// Whether `caller` may see `image`, as far as the image alone says: an admin sees every image,
/// a provider its own, a consumer the anonymized ones (and of those only the ones it is offered:
/// [`visible_image`] asks the catalog); a doctor none.
pub fn may_see(caller: &Caller, image: &CatalogImage) -> bool {
    match caller.role {
        Role::Admin => true,
        Role::Proveedor => image.provider_id == caller.user_id,
        Role::Consumidor => image.estado == Estado::Anonimizada,
        Role::Medico => false,
    }
}

/// The image `id` if the caller may see it; 404 otherwise (an image the
/// caller may not see is not revealed to exist). A consumer sees only an image it is offered
/// now ([`alpes_domain::consent::offered`]): one whose patient revoked is gone at once.
pub async fn visible_image(state: &QueryState, caller: &Caller, id: &str) -> Result<std::sync::Arc<CatalogImage>, ApiError> {
    match state.catalog.image(id).await? {
        Some(image) if may_see(caller, &image) => {
            if caller.role == Role::Consumidor && !state.catalog.offered(id).await? {
                return Err(ApiError::not_found(format!("no image {id}")));
            }
            Ok(image)
        }
        _ => Err(ApiError::not_found(format!("no image {id}"))),
    }
}

/// The display names (`nombre`) of `users`' accounts, in order; `None` for a user whose
/// account this process's identity store does not hold. At most 16 lookups run at once.
pub async fn nombres(state: &QueryState, users: &[CatalogUser]) -> Result<Vec<Option<String>>, ApiError> {
    use futures::{StreamExt, TryStreamExt};
    let ids: Vec<String> = users.iter().map(|u| u.user_id.clone()).collect();
    futures::stream::iter(ids)
        .map(|id| {
            let identity = state.identity.clone();
            async move { identity.account(&id).await.map(|a| a.map(|a| a.nombre)) }
        })
        .buffered(16)
        .try_collect()
        .await
        .map_err(ApiError::from)
}

/// A page size: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] if not given.
pub fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        n @ 1..=MAX_LIMIT => Ok(n),
        _ => Err(ApiError::bad_request("bad_limit", format!("limit must be 1 to {MAX_LIMIT}"))),
    }
}

/// A strong ETag over `body`.
pub fn etag_of(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&Sha256::digest(body)[..16]))
}

/// Whether `If-None-Match` names `etag` (or is `*`).
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == etag)
}

/// The `ETag` header of `body` ([`etag_of`]).
pub fn etag_header(body: &[u8]) -> HeaderValue {
    HeaderValue::from_str(&etag_of(body)).unwrap_or(HeaderValue::from_static("\"\""))
}

/// `body` as `content_type` with its ETag, or 304 when the client has it.
pub fn with_etag(headers: &HeaderMap, body: Vec<u8>, content_type: &'static str) -> Response {
    let tag = etag_header(&body);
    tagged(headers, body.into(), tag, content_type)
}

/// `body` as `content_type` under `tag` (from [`etag_header`]), or 304 when the client has it.
pub fn tagged(headers: &HeaderMap, body: Bytes, tag: HeaderValue, content_type: &'static str) -> Response {
    if not_modified(headers, tag.to_str().unwrap_or_default()) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, tag)]).into_response();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type)), (header::ETAG, tag)],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_matches_the_tag_in_a_list_weak_or_star() {
        let etag = etag_of(b"x");
        for (value, hit) in [
            (etag.clone(), true),
            (format!("\"a\", {etag}"), true),
            (format!("W/{etag}"), true),
            ("*".to_owned(), true),
            ("\"other\"".to_owned(), false),
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(&value).expect("header"));
            assert_eq!(not_modified(&h, &etag), hit, "{value}");
        }
        assert!(!not_modified(&HeaderMap::new(), &etag));
    }

    #[test]
    fn a_limit_outside_one_to_a_thousand_is_refused() {
        assert_eq!(page_limit(None).expect("default"), 100);
        assert_eq!(page_limit(Some(1000)).expect("max"), 1000);
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(1001)).is_err());
    }
}
