//! WADO-RS bulk data other than Pixel Data (PS3.18 §10.4.1.1.5): a top-level
//! binary attribute of more than [`INLINE_MAX`] bytes (waveform samples, an
//! encapsulated document, an ICC profile, curve or overlay data) is given in
//! the metadata by its `BulkDataURI`, `.../bulkdata/{tag}`, which answers its
//! value as the one part of a `multipart/related;
//! type="application/octet-stream"` body, metered like a download. Pixel
//! Data's bulk data is its frames (`frames.rs`).

use super::wado::{multipart, serve_metered};
use super::{may_use, Target};
use crate::Shared;
use alpes_platform::audit::RequestContext;
use alpes_platform::auth::Caller;
use alpes_platform::http::ApiError;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use dicom_core::{Tag, VR};
use dicom_object::OpenFileOptions;
use serde_json::{json, Value};

/// Binary values up to this many bytes stay inline in the metadata (`InlineBinary`).
pub const INLINE_MAX: usize = 1024;

/// VRs whose values are binary (what DICOM JSON gives as `InlineBinary` or a `BulkDataURI`).
fn is_binary(vr: VR) -> bool {
    matches!(vr, VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN)
}

/// Replaces every top-level `InlineBinary` of more than [`INLINE_MAX`] bytes in `json` by its
/// `BulkDataURI` under `instance_url`.
pub fn by_reference(json: &mut Value, instance_url: &str) {
    let Some(attributes) = json.as_object_mut() else { return };
    for (tag, attribute) in attributes.iter_mut() {
        let Some(inline) = attribute.get("InlineBinary").and_then(Value::as_str) else {
            continue;
        };
        // Base64: four characters for every three bytes.
        if inline.len() / 4 * 3 <= INLINE_MAX {
            continue;
        }
        let vr = attribute.get("vr").cloned().unwrap_or(Value::Null);
        *attribute = json!({ "vr": vr, "BulkDataURI": format!("{instance_url}/bulkdata/{tag}") });
    }
}

/// The value of the top-level binary attribute `tag` of a stored DICOM blob.
fn attribute(blob: &[u8], tag: Tag) -> Result<Bytes, ApiError> {
    let obj = OpenFileOptions::new()
        .from_reader(blob)
        .map_err(|_| ApiError::internal(&"a stored anonymized blob does not parse as DICOM"))?;
    let element = obj
        .element(tag)
        .ok()
        .filter(|e| is_binary(e.vr()))
        .ok_or_else(|| ApiError::not_found("the instance has no binary attribute with this tag"))?;
    let bytes = element
        .to_bytes()
        .map_err(|_| ApiError::not_found("the attribute has no value served as bulk data"))?;
    Ok(Bytes::copy_from_slice(&bytes))
}

/// The attribute `tag` (8 hex digits) of the instance `target` names, metered.
pub async fn answer(
    state: Shared,
    caller: Caller,
    ctx: RequestContext,
    (target, metered): (Target, bool),
    tag: &str,
) -> Result<Response, ApiError> {
    let only = may_use(&caller)?;
    let tag = u32::from_str_radix(tag, 16)
        .ok()
        .filter(|_| tag.len() == 8)
        .map(|t| Tag((t >> 16) as u16, (t & 0xFFFF) as u16))
        .ok_or_else(|| ApiError::not_found("bulk data is named by its tag, 8 hex digits"))?;
    let found = super::instances_under(&state, target, only).await?;
    let one = super::first_output(&found);
    let served = serve_metered(&state, &caller, &ctx, metered, one, move |blob| attribute(&blob, tag)).await?;
    let Some(value) = served.into_iter().next() else {
        return Err(ApiError::not_found("the instance has no anonymized output"));
    };
    let boundary = uuid::Uuid::new_v4().simple().to_string();
    let mut res = multipart(&boundary, [("application/octet-stream", &value)]).into_response();
    let content_type = format!("multipart/related; type=\"application/octet-stream\"; boundary={boundary}");
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        res.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_inline_binaries_become_references_and_small_ones_and_text_stay() {
        let big = "A".repeat(4 * (INLINE_MAX / 3 + 2));
        let mut json = json!({
            "54001010": { "vr": "OW", "InlineBinary": big },
            "00281201": { "vr": "OW", "InlineBinary": "AAAA" },
            "00080060": { "vr": "CS", "Value": ["ECG"] },
        });
        by_reference(&mut json, "http://alpes.example/studies/1/series/2/instances/3");
        assert_eq!(
            json["54001010"],
            json!({ "vr": "OW", "BulkDataURI": "http://alpes.example/studies/1/series/2/instances/3/bulkdata/54001010" })
        );
        assert_eq!(json["00281201"]["InlineBinary"], "AAAA");
        assert_eq!(json["00080060"]["Value"][0], "ECG");
    }
}
