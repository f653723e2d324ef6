//! `GET /imagenes/{id}/anonimizada`: the anonymized bytes, whole or one
//! `Range`, for a consumer (or an admin). Every retrieval is metered: its
//! `EventoUsoDatos` is on the log before the bytes go out. 404 for an
//! unknown image, 409 for one not anonymized (yet), 416 for a range past the
//! end. A `HEAD` answers the same headers without the bytes, and is not
//! metered: nothing was retrieved.

use super::visible_image;
use crate::meter::meter;
use crate::openapi::IMAGES;
use crate::Shared;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{binary_content, header_param, path, response_header, Op, IMAGE_MEDIA_TYPES};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// A byte range `start..end` (end exclusive) of a blob of `size` bytes, from
/// a `Range` header. `Ok(None)`: serve the whole blob (no header, or one this
/// server ignores, such as several ranges, as RFC 9110 allows).
pub fn parse_range(value: Option<&HeaderValue>, size: u64) -> Result<Option<std::ops::Range<u64>>, ApiError> {
    let Some(spec) = value.and_then(|v| v.to_str().ok()).and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let unsatisfiable = || {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            format!("the range is outside the {size} bytes of the image"),
        )
    };
    let (first, last) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let (first, last) = (first.trim(), last.trim());
    let range = if first.is_empty() {
        // A suffix: the last N bytes.
        let n: u64 = last.parse().map_err(|_| unsatisfiable())?;
        if n == 0 {
            return Err(unsatisfiable());
        }
        size.saturating_sub(n)..size
    } else {
        let start: u64 = first.parse().map_err(|_| unsatisfiable())?;
        let end = if last.is_empty() {
            size
        } else {
            let last: u64 = last.parse().map_err(|_| unsatisfiable())?;
            if last < start {
                return Err(unsatisfiable());
            }
            last.saturating_add(1).min(size)
        };
        start..end
    };
    if range.start >= size {
        return Err(unsatisfiable());
    }
    Ok(Some(range))
}

fn download_content() -> Value {
    binary_content(&IMAGE_MEDIA_TYPES)
}

fn download_headers(partial: bool) -> Vec<(&'static str, Value)> {
    let mut h = vec![
        (
            "ETag",
            response_header(
                json!({ "type": "string" }),
                true,
                "The sha256 of the whole anonymized blob, quoted.",
            ),
        ),
        (
            "Accept-Ranges",
            response_header(json!({ "type": "string", "enum": ["bytes"] }), true, "Ranges are served."),
        ),
        (
            "Content-Disposition",
            response_header(
                json!({ "type": "string" }),
                true,
                "`attachment; filename=\"<id>.dcm\"` (or `.png`, `.jpg`).",
            ),
        ),
    ];
    if partial {
        h.push((
            "Content-Range",
            response_header(
                json!({ "type": "string", "pattern": "^bytes [0-9]+-[0-9]+/[0-9]+$" }),
                true,
                "`bytes first-last/size`.",
            ),
        ));
    }
    h
}

/// The operation, as the document lists it.
pub fn op() -> Op {
    Op::get(
        "/imagenes/{id}/anonimizada",
        "downloadImage",
        IMAGES,
        "Download the anonymized bytes (metered)",
    )
    .describe(
        "Whole, or one byte range. Every retrieval produces `EventoUsoDatos` (consumer, provider, price, \
             `dedupe_key`) before the bytes go out; several ranges, or a unit other than bytes, get the whole body.",
    )
    .auth(&["consumidor", "admin"])
    .param(path("id", "The image id."))
    .param(header_param(
        "Range",
        json!({ "type": "string" }),
        "`bytes=first-last`, `bytes=first-` or `bytes=-suffix`.",
    ))
    .ok(200, "The anonymized image.", Some(download_content()), &download_headers(false))
    .ok(206, "The range asked for.", Some(download_content()), &download_headers(true))
    .standard(404)
    .error(409, &["not_anonymized"], "The image has no anonymized output (yet).")
    .standard(416)
}

/// The handler.
#[tracing::instrument(name = "GET /imagenes/{id}/anonimizada", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    method: Method,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Consumidor, Role::Admin])?;
    let image = visible_image(&state, &caller, &id).await?;
    let Some(output) = image.anonymized.clone() else {
        return Err(ApiError::conflict(
            "not_anonymized",
            format!("image {id} is {}: it has no anonymized output yet", image.estado.as_str()),
        ));
    };
    let size = u64::try_from(output.size_bytes).unwrap_or(0);
    let range = parse_range(headers.get(header::RANGE), size)?;
    let bytes = match &range {
        Some(r) => state.blobs.get_range(&output.blob_key, r.clone()).await?,
        None => state.blobs.get(&output.blob_key).await?,
    };
    if method != Method::HEAD {
        meter(&state, &ctx, &caller, &image, bytes.len() as u64).await?;
    }
    let etag = format!("\"{}\"", output.sha256);
    let disposition = format!("attachment; filename=\"{id}{}\"", extension(&output.media_type));
    let mut res = (
        [
            (header::CONTENT_TYPE, output.media_type),
            (header::ACCEPT_RANGES, "bytes".to_owned()),
            (header::ETAG, etag),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response();
    if let Some(r) = range {
        *res.status_mut() = StatusCode::PARTIAL_CONTENT;
        let value = format!("bytes {}-{}/{size}", r.start, r.end.saturating_sub(1));
        if let Ok(v) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    Ok(res)
}

fn extension(media_type: &str) -> &'static str {
    match media_type {
        "application/dicom" => ".dcm",
        "image/png" => ".png",
        "image/jpeg" => ".jpg",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, size: u64) -> Result<Option<std::ops::Range<u64>>, StatusCode> {
        parse_range(Some(&HeaderValue::from_str(v).expect("header")), size).map_err(|e| e.status)
    }

    #[test]
    fn byte_ranges_follow_rfc_9110() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some(0..10)));
        assert_eq!(range("bytes=90-", 100), Ok(Some(90..100)));
        assert_eq!(range("bytes=-10", 100), Ok(Some(90..100)));
        assert_eq!(range("bytes=-500", 100), Ok(Some(0..100)));
        assert_eq!(range("bytes=50-500", 100), Ok(Some(50..100)));
        assert_eq!(range("bytes=0-1,5-6", 100), Ok(None), "several ranges: the whole body");
        assert_eq!(range("items=0-1", 100), Ok(None), "another unit: ignored");
        assert_eq!(parse_range(None, 100).map_err(|e| e.status), Ok(None));
        for bad in ["bytes=100-", "bytes=5-2", "bytes=-0", "bytes=x-1", "bytes=7"] {
            assert_eq!(range(bad, 100), Err(StatusCode::RANGE_NOT_SATISFIABLE), "{bad}");
        }
    }
}
