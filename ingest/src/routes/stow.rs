//! STOW-RS (PS3.18 §10.5): `POST /studies` and `POST /studies/{study}` with
//! `multipart/related; type="application/dicom"`. Each part is stored and
//! registered like an upload; the answer is `application/dicom+json` with a
//! ReferencedSOPSequence for stored instances and a FailedSOPSequence (with a
//! FailureReason) for the others. 200 when all were stored, 202 when some
//! failed, 409 when none was stored.

use super::{bad_multipart, check_length, content_type, part_error};
use crate::media::{self, Declared};
use crate::openapi::{profile_params, DICOMWEB};
use crate::profile::UploadMeta;
use crate::register::{forget_blob, register, Source};
use crate::IngestState;
use alpes_anonymizer::probe::{self, MediaKind};
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::{Authenticated, Caller, Role};
use alpes_platform::blobs::RAW;
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{binary_content, content, schema, Op};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde_json::{json, Value};

/// Failure reason: the part cannot be understood as DICOM (0xC000).
const CANNOT_UNDERSTAND: u16 = 0xC000;
/// Failure reason: the instance belongs to another study than the URL names (0xA900, data set does not match).
const STUDY_MISMATCH: u16 = 0xA900;

/// The operation of a STOW-RS store at `p`; `extra` describes what it adds.
pub fn op(p: &'static str, id: &str, summary: &str, extra: &str) -> Op {
    Op::post(p, id, DICOMWEB, summary)
        .describe(&format!(
            "PS3.18 §10.5. The body is `multipart/related; type=\"application/dicom\"; boundary=...` with one \
             DICOM instance per part. Each part is stored and registered like an upload. The answer lists the \
             stored instances (ReferencedSOPSequence, 0008,1199) and the failed ones (FailedSOPSequence, \
             0008,1198, with FailureReason `C000` for a part that is not DICOM). {extra}"
        ))
        .auth(&["proveedor", "admin"])
        .params(profile_params())
        .body(
            true,
            "DICOM instances, one per part.",
            binary_content(&["multipart/related; type=\"application/dicom\""]),
        )
        .response(200, stow_answer("Every instance was stored."))
        .response(202, stow_answer("Some instances were stored, some failed."))
        .response(409, stow_answer("No instance was stored."))
        .error(
            400,
            &["bad_multipart", "bad_profile"],
            "A malformed body (or no boundary), or a bad profile in the query.",
        )
        .standard(413)
        .standard(415)
}

fn stow_answer(description: &str) -> Value {
    json!({ "description": description, "content": content("application/dicom+json", schema("StowResponse")) })
}

/// `POST /studies`.
pub async fn handler(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    stow(state, ctx, caller, headers, uri, None, body).await
}

/// `POST /studies/{study}`: every instance must belong to `study`.
pub async fn handler_for_study(
    State(state): State<IngestState>,
    Authenticated(caller): Authenticated,
    ctx: RequestContext,
    Path(study): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Result<Response, ApiError> {
    stow(state, ctx, caller, headers, uri, Some(study), body).await
}

/// The boundary of a `multipart/related; type="application/dicom"` body.
pub fn related_boundary(ct: Option<&str>) -> Result<String, ApiError> {
    let m: mime::Mime = ct
        .unwrap_or("")
        .parse()
        .map_err(|_| ApiError::unsupported_media("STOW-RS takes multipart/related; type=\"application/dicom\""))?;
    if m.type_() != mime::MULTIPART || m.subtype().as_str() != "related" {
        return Err(ApiError::unsupported_media(
            "STOW-RS takes multipart/related; type=\"application/dicom\"",
        ));
    }
    if let Some(t) = m.get_param("type") {
        if !t.as_str().eq_ignore_ascii_case("application/dicom") {
            return Err(ApiError::unsupported_media(format!(
                "multipart/related type {:?} is not supported; send application/dicom parts",
                t.as_str()
            )));
        }
    }
    m.get_param(mime::BOUNDARY)
        .map(|b| b.as_str().to_owned())
        .ok_or_else(|| ApiError::bad_request("bad_multipart", "multipart/related needs a boundary"))
}

fn ui(v: Option<&str>) -> Value {
    match v {
        Some(s) => json!({ "vr": "UI", "Value": [s] }),
        None => json!({ "vr": "UI" }),
    }
}

#[tracing::instrument(name = "STOW-RS", skip_all, fields(provider = %caller.user_id))]
async fn stow(
    state: IngestState,
    ctx: RequestContext,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
    study: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Proveedor, Role::Admin])?;
    check_length(&headers, state.max_upload)?;
    let boundary = related_boundary(content_type(&headers))?;
    let meta = UploadMeta::from_query(uri.query())?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut parts = multer::Multipart::new(stream, boundary);
    let mut referenced = Vec::new();
    let mut failed = Vec::new();
    let mut used = 0u64;
    loop {
        let part = parts.next_field().await.map_err(|_| bad_multipart())?;
        let Some(part) = part else { break };
        if let Some(ct) = part.content_type() {
            if media::declared(Some(ct.essence_str()))? != Declared::Dicom && ct.essence_str() != "application/octet-stream" {
                return Err(ApiError::unsupported_media("STOW-RS parts must be application/dicom"));
            }
        }
        let blob = state
            .blobs
            .put_stream(RAW, part, state.max_upload.saturating_sub(used))
            .await
            .map_err(|e| part_error(e, state.max_upload))?;
        used += blob.size;
        let probed = match probe::dicom(&blob.head) {
            Ok(p) if probe::sniff(&blob.head) == Some(MediaKind::Dicom) => p,
            _ => {
                forget_blob(&state, &blob).await;
                failed
                    .push(json!({ "00081150": ui(None), "00081155": ui(None), "00081197": { "vr": "US", "Value": [CANNOT_UNDERSTAND] } }));
                continue;
            }
        };
        let (class, instance) = (probed.sop_class_uid.as_deref(), probed.sop_instance_uid.as_deref());
        if let Some(want) = &study {
            if probed.study_instance_uid.as_deref() != Some(want.as_str()) {
                forget_blob(&state, &blob).await;
                failed.push(
                    json!({ "00081150": ui(class), "00081155": ui(instance), "00081197": { "vr": "US", "Value": [STUDY_MISMATCH] } }),
                );
                continue;
            }
        }
        let r = register(&state, &ctx, &caller.user_id, (&blob, MediaKind::Dicom), &meta, None, Source::Stow).await?;
        referenced.push(json!({
            "00081150": ui(class),
            "00081155": ui(instance),
            "00081190": { "vr": "UR", "Value": [format!("{}/imagenes/{}", state.public_url.as_str(), r.id)] },
        }));
    }
    let status = match (referenced.is_empty(), failed.is_empty()) {
        (false, true) => StatusCode::OK,
        (false, false) => StatusCode::ACCEPTED,
        (true, _) => StatusCode::CONFLICT,
    };
    let mut body = serde_json::Map::new();
    if !failed.is_empty() {
        body.insert("00081198".into(), json!({ "vr": "SQ", "Value": failed }));
    }
    body.insert("00081199".into(), json!({ "vr": "SQ", "Value": referenced }));
    let bytes = serde_json::to_vec(&Value::Object(body)).map_err(|e| ApiError::internal(&e))?;
    Ok((status, [(header::CONTENT_TYPE, "application/dicom+json")], bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_multipart_related_of_dicom_is_taken() {
        assert_eq!(
            related_boundary(Some("multipart/related; type=\"application/dicom\"; boundary=abc")).expect("ok"),
            "abc"
        );
        assert_eq!(related_boundary(Some("multipart/related; boundary=abc")).expect("ok"), "abc");
        assert_eq!(
            related_boundary(Some("multipart/form-data; boundary=abc"))
                .expect_err("415")
                .status
                .as_u16(),
            415
        );
        assert_eq!(
            related_boundary(Some("multipart/related; type=\"application/dicom+xml\"; boundary=a"))
                .expect_err("415")
                .status
                .as_u16(),
            415
        );
        assert_eq!(
            related_boundary(Some("multipart/related; type=\"application/dicom\""))
                .expect_err("400")
                .status
                .as_u16(),
            400
        );
    }
}
