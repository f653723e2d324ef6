//! `GET /imagenes/{id}/anonimizada`: the anonymized bytes, whole or one
//! `Range`, for a consumer (or an admin). Every retrieval is metered: its
//! `EventoUsoDatos` is on the log before the bytes go out. 404 for an
//! unknown image, 409 for one not anonymized (yet), 416 for a range past the
//! end. A `HEAD` answers the same headers without the bytes, and is not
//! metered: nothing was retrieved.

use super::visible_image;
use crate::admission::{admission_errors, admit};
use crate::held::Holding;
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

/// The byte range `start..end` (end exclusive) a request asks of a blob of
/// `size` bytes whose entity tag is `etag`, as RFC 9110 (sections 13.1.5 and
/// 14) says. `Ok(None)`: serve the whole blob, because
/// - the method is not GET (range handling is defined for GET alone);
/// - there is no `Range`, or one this server ignores: another unit, several
///   ranges, or a ranges-specifier that does not parse (`bytes=abc`,
///   `bytes=5-2`);
/// - an `If-Range` does not name this representation: an entity tag other
///   than `etag` by strong comparison (a weak tag never matches), or a date
///   (these answers carry no `Last-Modified` a date could match).
///
/// 416 when the one range is well formed but unsatisfiable: it starts at or
/// past the end, or is a suffix of zero bytes.
pub fn requested_range(method: &Method, headers: &HeaderMap, size: u64, etag: &str) -> Result<Option<std::ops::Range<u64>>, ApiError> {
    if method != Method::GET {
        return Ok(None);
    }
    if let Some(validator) = headers.get(header::IF_RANGE) {
        if validator.as_bytes() != etag.as_bytes() {
            return Ok(None);
        }
    }
    parse_range(headers.get(header::RANGE), size)
}

/// One `bytes=` range of a blob of `size` bytes (see [`requested_range`]).
fn parse_range(value: Option<&HeaderValue>, size: u64) -> Result<Option<std::ops::Range<u64>>, ApiError> {
    let Some(spec) = value.and_then(|v| v.to_str().ok()).and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    let Some((first, last)) = spec.split_once('-').filter(|_| !spec.contains(',')) else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let unsatisfiable = || {
        ApiError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "range_not_satisfiable",
            format!("the range is outside the {size} bytes of the image"),
        )
    };
    let range = match (number(first), number(last)) {
        // A suffix: the last N bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 {
                return Err(unsatisfiable());
            }
            size.saturating_sub(n)..size
        }
        (Some(start), None) if last.is_empty() => start..size,
        (Some(start), Some(last)) if last >= start => start..last.saturating_add(1).min(size),
        _ => return Ok(None),
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
    admission_errors(
        Op::get(
            "/imagenes/{id}/anonimizada",
            "downloadImage",
            IMAGES,
            "Download the anonymized bytes (metered)",
        )
        .describe(
            "Whole, or one byte range. Every retrieval produces `EventoUsoDatos` (consumer, provider, price, \
             `dedupe_key`) before the bytes go out; several ranges, a unit other than bytes, a range that does not \
             parse, an `If-Range` that is not this image's `ETag`, or a `HEAD`, get the whole body (RFC 9110).",
        )
        .auth(&["consumidor", "admin"])
        .param(path("id", "The image id."))
        .param(header_param(
            "Range",
            json!({ "type": "string" }),
            "`bytes=first-last`, `bytes=first-` or `bytes=-suffix`.",
        ))
        .param(header_param(
            "If-Range",
            json!({ "type": "string" }),
            "The `ETag` of an earlier answer: the range is served only while the image is still that one.",
        ))
        .ok(200, "The anonymized image.", Some(download_content()), &download_headers(false))
        .ok(206, "The range asked for.", Some(download_content()), &download_headers(true))
        .standard(404)
        .error(409, &["not_anonymized"], "The image has no anonymized output (yet).")
        .standard(416),
    )
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
    let etag = format!("\"{}\"", output.sha256);
    let range = requested_range(&method, &headers, size, &etag)?;
    let metered = method != Method::HEAD;
    let holding = if metered {
        let serves = range.as_ref().map_or(size, |r| r.end - r.start);
        admit(&state, &caller, &[(&image, serves)]).await?
    } else {
        Holding::nothing()
    };
    let bytes = match &range {
        Some(r) => state.blobs.get_range(&output.blob_key, r.clone()).await?,
        None => state.blobs.get(&output.blob_key).await?,
    };
    if metered {
        meter(&state, &ctx, &caller, &image, bytes.len() as u64).await?;
    }
    holding.metered();
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
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(v).expect("header"));
        requested_range(&Method::GET, &headers, size, "\"e\"").map_err(|e| e.status)
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
        for invalid in [
            "bytes=abc",
            "bytes=5-2",
            "bytes=x-1",
            "bytes=7",
            "bytes=-",
            "bytes=+1-2",
            "bytes=1-+2",
        ] {
            assert_eq!(range(invalid, 100), Ok(None), "{invalid}: does not parse, so it is ignored");
        }
        for unsatisfiable in ["bytes=100-", "bytes=100-200", "bytes=-0"] {
            assert_eq!(range(unsatisfiable, 100), Err(StatusCode::RANGE_NOT_SATISFIABLE), "{unsatisfiable}");
        }
        assert_eq!(
            requested_range(&Method::GET, &HeaderMap::new(), 100, "\"e\"").map_err(|e| e.status),
            Ok(None)
        );
    }

    #[test]
    fn if_range_serves_the_range_only_for_this_representations_strong_tag_and_head_never_ranges() {
        let ask = |method: Method, if_range: Option<&str>| {
            let mut headers = HeaderMap::new();
            headers.insert(header::RANGE, HeaderValue::from_static("bytes=0-9"));
            if let Some(v) = if_range {
                headers.insert(header::IF_RANGE, HeaderValue::from_str(v).expect("header"));
            }
            requested_range(&method, &headers, 100, "\"abc\"").map_err(|e| e.status)
        };
        assert_eq!(ask(Method::GET, Some("\"abc\"")), Ok(Some(0..10)));
        assert_eq!(ask(Method::GET, Some("\"old\"")), Ok(None), "another tag: the whole, 200");
        assert_eq!(ask(Method::GET, Some("W/\"abc\"")), Ok(None), "a weak tag never matches");
        assert_eq!(
            ask(Method::GET, Some("Sat, 05 Dec 2026 10:00:00 GMT")),
            Ok(None),
            "a date: no Last-Modified"
        );
        assert_eq!(ask(Method::HEAD, None), Ok(None), "range handling is defined for GET only");
    }
}
