//! WADO-RS (PS3.18 §10.4) retrieval of anonymized instances:
//! `GET /studies/{study}`, `/studies/{study}/series/{series}` and
//! `/studies/{study}/series/{series}/instances/{instance}`, answered as
//! `multipart/related; type="application/dicom"`. Every instance retrieved
//! is metered like a download: its `EventoUsoDatos` is on the log before the
//! answer goes out.

use super::{instances_under, may_use, transcode, Target};
use crate::admission::{admission_errors, admit};
use crate::held::Holding;
use crate::meter::meter;
use crate::openapi::DICOMWEB;
use crate::Shared;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Caller, Role};
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{binary_content, header_param, Op};
use alpes_platform::store::CatalogImage;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::json;

/// `parts` (each with its own type) as one multipart/related body with `boundary`.
pub fn multipart<'a>(boundary: &str, parts: impl IntoIterator<Item = (&'a str, &'a Bytes)> + Clone) -> Bytes {
    let mut body = BytesMut::with_capacity(parts.clone().into_iter().map(|(_, p)| p.len() + 128).sum());
    for (part_type, p) in parts {
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

/// Admits `instances` for `caller` (holding their price when `metered`, and the caller is not a
/// provider retrieving its own: see [`super::may_use`]), reads each one's
/// anonymized output, makes what is served of it with `serve`, and meters each with the bytes
/// served before anything is answered. An instance without an output is skipped; an error from
/// `serve` before metering releases the hold. `serve` runs on the blocking pool: cutting frames
/// or decoding and encoding a rendered image takes milliseconds that must not stall the
/// request threads.
pub(super) async fn serve_metered<T>(
    state: &Shared,
    caller: &Caller,
    ctx: &RequestContext,
    metered: bool,
    instances: &[CatalogImage],
    serve: impl Fn(Bytes) -> Result<T, ApiError> + Send + Sync + 'static,
) -> Result<Vec<T>, ApiError>
where
    T: Served + Send + 'static,
{
    let serve = std::sync::Arc::new(serve);
    let metered = metered && caller.role != Role::Proveedor;
    let stored: Vec<(&CatalogImage, u64)> = instances
        .iter()
        .filter_map(|i| Some((i, u64::try_from(i.anonymized.as_ref()?.size_bytes).unwrap_or(0))))
        .collect();
    let mut holding = if metered {
        admit(state, caller, &stored).await?
    } else {
        Holding::nothing()
    };
    // Each part with the image it is, so an instance without an output
    // cannot shift the metering onto its neighbour.
    let mut served = Vec::with_capacity(instances.len());
    for image in instances {
        let Some(out) = &image.anonymized else { continue };
        let blob = state.blobs.get(&out.blob_key).await?;
        let serve = serve.clone();
        let part = tokio::task::spawn_blocking(move || serve(blob))
            .await
            .map_err(|e| ApiError::internal(&e))??;
        served.push((image, part));
    }
    // Decoded or transcoded answers can be larger than what was stored, which admission counted
    // against the consumer's daily bytes: admitted again with what is served.
    let total = |sizes: &mut dyn Iterator<Item = u64>| sizes.fold(0u64, u64::saturating_add);
    if metered && total(&mut served.iter().map(|(_, p)| p.bytes_served())) > total(&mut stored.iter().map(|(_, b)| *b)) {
        let sizes: Vec<(&CatalogImage, u64)> = served.iter().map(|(i, p)| (*i, p.bytes_served())).collect();
        drop(holding);
        holding = admit(state, caller, &sizes).await?;
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
    let wanted = transcode::wanted(headers)?;
    let serve = move |blob| transcode::in_syntax(blob, &wanted);
    let parts = serve_metered(&state, &caller, &ctx, metered, &instances, serve).await?;
    let types: Vec<String> = parts
        .iter()
        .map(|p| format!("application/dicom; transfer-syntax={}", p.transfer_syntax))
        .collect();
    let boundary = uuid::Uuid::new_v4().simple().to_string();
    let content_type = format!("multipart/related; type=\"application/dicom\"; boundary={boundary}");
    let body = multipart(&boundary, types.iter().map(String::as_str).zip(parts.iter().map(|p| &p.bytes)));
    let mut res = body.into_response();
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
             type=\"application/dicom\"`, each part naming its `transfer-syntax`. Each instance retrieved is metered \
             like a download (the bytes served): its `EventoUsoDatos` is on the log before the answer goes out."
        ))
        .auth(&["consumidor", "admin", "proveedor"])
        .param(header_param(
            "Accept",
            json!({ "type": "string", "example": "multipart/related; type=\"application/dicom\"; transfer-syntax=*" }),
            "Must allow `multipart/related; type=\"application/dicom\"`; else 406. No `Accept`, `*/*`, `multipart/*` \
             or `transfer-syntax=*`: each instance as stored. Without a `transfer-syntax`: Explicit VR Little Endian \
             (PS3.18's default; compressed pixel data is decoded). With one or more: the stored syntax if listed, \
             else the first the instance can be transcoded to (dicom-rs: decoding to native, encoding where it has an \
             encoder); 406 if none.",
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
    let only = may_use(&caller)?;
    let found = instances_under(&state, target, only).await?;
    // A HEAD sends no bytes, so it is not metered.
    let metered = method != Method::HEAD;
    retrieve(state, caller, ctx, metered, &headers, found).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multipart_body_frames_every_part_and_closes() {
        let parts = [Bytes::from_static(b"one"), Bytes::from_static(b"two")];
        let body = multipart("b", parts.iter().map(|p| ("application/dicom", p)));
        let text = String::from_utf8(body.to_vec()).expect("ascii");
        assert_eq!(
            text,
            "--b\r\nContent-Type: application/dicom\r\nContent-Length: 3\r\n\r\none\r\n--b\r\nContent-Type: application/dicom\r\nContent-Length: 3\r\n\r\ntwo\r\n--b--\r\n"
        );
    }
}
