//! WADO-RS (PS3.18 §10.4) retrieval of anonymized instances:
//! `GET /studies/{study}`, `/studies/{study}/series/{series}` and
//! `/studies/{study}/series/{series}/instances/{instance}`, answered as
//! `multipart/related; type="application/dicom"`. Every instance retrieved
//! is metered like a download: its `EventoUsoDatos` is on the log before the
//! answer goes out.

use super::{instances_under, may_use, Target};
use crate::admission::{admission_errors, admit};
use crate::held::Holding;
use crate::meter::meter;
use crate::openapi::DICOMWEB;
use crate::Shared;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Caller};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{binary_content, header_param, Op};
use alpes_platform::store::CatalogImage;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::json;

/// Whether the client accepts a multipart/related answer (or anything).
fn accepts_multipart(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.split(',').any(|m| {
        let m = m.trim().to_ascii_lowercase();
        m.starts_with("*/*")
            || m.starts_with("multipart/*")
            || (m.starts_with("multipart/related") && !m.contains("type=") || m.contains("application/dicom"))
    })
}

/// `parts` as one multipart/related body with `boundary`, each of type `part_type`.
pub fn multipart(boundary: &str, part_type: &str, parts: &[Bytes]) -> Bytes {
    let mut body = BytesMut::with_capacity(parts.iter().map(|p| p.len() + 128).sum());
    for p in parts {
        body.put_slice(format!("--{boundary}\r\nContent-Type: {part_type}\r\nContent-Length: {}\r\n\r\n", p.len()).as_bytes());
        body.put_slice(p);
        body.put_slice(b"\r\n");
    }
    body.put_slice(format!("--{boundary}--\r\n").as_bytes());
    body.freeze()
}

/// What is served of a stored output, and how many bytes that is (what its usage event says).
pub trait Served {
    /// The bytes served.
    fn bytes_served(&self) -> u64;
}

impl Served for Bytes {
    fn bytes_served(&self) -> u64 {
        self.len() as u64
    }
}

/// Admits `instances` for `caller` (holding their price when `metered`), reads each one's
/// anonymized output, makes what is served of it with `serve`, and meters each with the bytes
/// served before anything is answered. An instance without an output is skipped; an error from
/// `serve` before metering releases the hold.
pub(super) async fn serve_metered<T: Served>(
    state: &Shared,
    caller: &Caller,
    ctx: &RequestContext,
    metered: bool,
    instances: &[CatalogImage],
    serve: impl Fn(Bytes) -> Result<T, ApiError>,
) -> Result<Vec<T>, ApiError> {
    let mut holding = if metered {
        let retrieved: Vec<(&CatalogImage, u64)> = instances
            .iter()
            .filter_map(|i| Some((i, u64::try_from(i.anonymized.as_ref()?.size_bytes).unwrap_or(0))))
            .collect();
        admit(state, caller, &retrieved).await?
    } else {
        Holding::nothing()
    };
    // Each part with the image it is, so an instance without an output
    // cannot shift the metering onto its neighbour.
    let mut served = Vec::with_capacity(instances.len());
    for image in instances {
        let Some(out) = &image.anonymized else { continue };
        served.push((image, serve(state.blobs.get(&out.blob_key).await?)?));
    }
    for (image, part) in served.iter().filter(|_| metered) {
        meter(state, ctx, caller, image, part.bytes_served()).await?;
        // On the log: billing charges it even if a later instance fails, so its hold stays.
        holding.metered_image(&image.image_id);
    }
    holding.metered();
    Ok(served.into_iter().map(|(_, part)| part).collect())
}

async fn retrieve(
    state: Shared,
    caller: Caller,
    ctx: RequestContext,
    metered: bool,
    headers: &HeaderMap,
    instances: Vec<CatalogImage>,
) -> Result<Response, ApiError> {
    if !accepts_multipart(headers) {
        return Err(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "instances are served as multipart/related; type=\"application/dicom\"",
        ));
    }
    let parts = serve_metered(&state, &caller, &ctx, metered, &instances, Ok).await?;
    let boundary = uuid::Uuid::new_v4().simple().to_string();
    let content_type = format!("multipart/related; type=\"application/dicom\"; boundary={boundary}");
    let mut res = multipart(&boundary, "application/dicom", &parts).into_response();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        res.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    Ok(res)
}

/// The operation of a WADO-RS retrieval at `p`, of `what`.
pub fn op(p: &'static str, id: &str, what: &str) -> Op {
    let op = Op::get(p, id, DICOMWEB, &format!("Retrieve {what} (WADO-RS)"))
        .describe(&format!(
            "WADO-RS (PS3.18 §10.4): every anonymized instance of {what}, as `multipart/related; \
             type=\"application/dicom\"`. Each instance retrieved is metered like a download: its `EventoUsoDatos` is \
             on the log before the answer goes out."
        ))
        .auth(&["consumidor", "admin"])
        .param(header_param(
            "Accept",
            json!({ "type": "string", "example": "multipart/related; type=\"application/dicom\"" }),
            "Must allow `multipart/related; type=\"application/dicom\"` (`*/*`, `multipart/*`, `multipart/related` \
             without a `type`, or any type naming `application/dicom`); else 406.",
        ))
        .ok(
            200,
            "The instances, one per part.",
            Some(binary_content(&["multipart/related; type=\"application/dicom\""])),
            &[],
        )
        .standard(404)
        .standard(406);
    admission_errors(op)
}

/// `GET /studies/{study}`, `/studies/{study}/series/{series}` and
/// `/studies/{study}/series/{series}/instances/{instance}`.
#[tracing::instrument(name = "WADO-RS retrieve", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    method: Method,
    Path(target): Path<Target>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    may_use(&caller)?;
    let found = instances_under(&state, target).await?;
    // A HEAD sends no bytes, so it is not metered.
    let metered = method != Method::HEAD;
    retrieve(state, caller, ctx, metered, &headers, found).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multipart_body_frames_every_part_and_closes() {
        let body = multipart("b", "application/dicom", &[Bytes::from_static(b"one"), Bytes::from_static(b"two")]);
        let text = String::from_utf8(body.to_vec()).expect("ascii");
        assert_eq!(
            text,
            "--b\r\nContent-Type: application/dicom\r\nContent-Length: 3\r\n\r\none\r\n--b\r\nContent-Type: application/dicom\r\nContent-Length: 3\r\n\r\ntwo\r\n--b--\r\n"
        );
    }

    #[test]
    fn the_accept_header_must_allow_dicom_in_multipart() {
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(v).expect("header"));
            accepts_multipart(&h)
        };
        assert!(accepts_multipart(&HeaderMap::new()));
        assert!(with("multipart/related; type=\"application/dicom\"; transfer-syntax=*"));
        assert!(with("*/*"));
        assert!(!with("application/json"));
        assert!(!with("multipart/related; type=\"image/jpeg\""));
    }
}
