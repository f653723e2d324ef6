//! WADO-RS metadata (PS3.18 §10.4.1.1.2): `GET /studies/{study}/metadata`,
//! `/studies/{study}/series/{series}/metadata` and
//! `/studies/{study}/series/{series}/instances/{instance}/metadata`: every
//! top-level attribute of each anonymized instance up to Pixel Data, as
//! `application/dicom+json`, with an ETag (304 on `If-None-Match`); Pixel Data
//! and binary values of more than 1 KiB are given by their `BulkDataURI`.
//! Reading metadata is not a download and is not metered.

use super::{instances_under, may_use, Target, DICOM_JSON};
use crate::openapi::{etag, if_none_match, DICOMWEB};
use crate::routes::with_etag;
use crate::Shared;
use alpes_platform::auth::Authenticated;
use alpes_platform::http::ApiError;
use alpes_platform::openapi::{content, schema, Op};
use alpes_platform::store::CatalogImage;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use serde_json::{json, Value};

/// The DICOM JSON of one anonymized DICOM blob up to Pixel Data, with its large binary values
/// and Pixel Data (when `pixels`) by their `BulkDataURI` under `instance_url`.
pub fn dicom_json(bytes: &[u8], instance_url: Option<&str>, pixels: bool) -> Result<Value, ApiError> {
    let obj = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .from_reader(bytes)
        .map_err(|_| ApiError::internal(&"a stored anonymized blob does not parse as DICOM"))?;
    let mut json = dicom_json::to_value(&*obj).map_err(|e| ApiError::internal(&e))?;
    if let Some(url) = instance_url {
        super::bulkdata::by_reference(&mut json, url);
    }
    let pixel_uri = instance_url.filter(|_| pixels).map(|url| format!("{url}/bulkdata/7FE00010"));
    if let (Some(uri), Some(attributes)) = (pixel_uri, json.as_object_mut()) {
        let native = super::is_native(obj.meta().transfer_syntax().trim_end_matches('\0'));
        let bits = obj.element(tags::BITS_ALLOCATED).ok().and_then(|e| e.to_int::<u16>().ok());
        let vr = if native && bits.is_some_and(|b| b > 8) { "OW" } else { "OB" };
        attributes.insert("7FE00010".into(), json!({ "vr": vr, "BulkDataURI": uri }));
    }
    Ok(json)
}

async fn metadata(state: Shared, headers: &HeaderMap, instances: Vec<CatalogImage>) -> Result<Response, ApiError> {
    let mut out = Vec::with_capacity(instances.len());
    for image in &instances {
        let Some(o) = &image.anonymized else { continue };
        let bytes = state.blobs.get(&o.blob_key).await?;
        let url = super::instance_url(state.public_url.as_str(), o);
        out.push(dicom_json(&bytes, Some(&url), o.rows > 0)?);
    }
    let body = serde_json::to_vec(&out).map_err(|e| ApiError::internal(&e))?;
    Ok(with_etag(headers, body, DICOM_JSON))
}

/// The operation of a WADO-RS metadata retrieval at `p`, of `what`.
pub fn op(p: &'static str, id: &str, what: &str) -> Op {
    Op::get(p, id, DICOMWEB, &format!("Metadata of {what} (WADO-RS)"))
        .describe(&format!(
            "Every top-level attribute of each anonymized instance of {what} up to Pixel Data, as DICOM JSON. \
             Reading metadata is not metered."
        ))
        .auth(&["consumidor", "admin", "proveedor"])
        .param(if_none_match())
        .ok(
            200,
            "One DICOM JSON dataset per instance.",
            Some(content(
                "application/dicom+json",
                json!({ "type": "array", "items": schema("DicomDataset") }),
            )),
            &[("ETag", etag(true))],
        )
        .ok(304, "The client's copy is current.", None, &[("ETag", etag(true))])
        .standard(404)
}

/// `GET /studies/{study}/metadata`, `/studies/{study}/series/{series}/metadata` and
/// `/studies/{study}/series/{series}/instances/{instance}/metadata`.
#[tracing::instrument(name = "WADO-RS metadata", skip_all, fields(user = %caller.user_id))]
pub async fn handler(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    Path(target): Path<Target>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let only = may_use(&caller)?;
    let found = instances_under(&state, target, only).await?;
    metadata(state, &headers, found).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dicom_file_becomes_dicom_json_without_its_pixel_data() {
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../anonymizer/tests/fixtures/dicom/CT_small.dcm"
        ))
        .expect("fixture");
        let json = dicom_json(&bytes, None, false).expect("parses");
        assert_eq!(json["00080060"]["Value"][0], "CT");
        assert_eq!(json["00080060"]["vr"], "CS");
        assert!(json.get("7FE00010").is_none(), "no pixel data");
        assert!(json.get("00020010").is_none(), "no file meta");
    }

    #[test]
    fn bytes_that_are_not_dicom_are_an_internal_error_that_says_nothing_of_them() {
        let e = dicom_json(b"not dicom", None, false).expect_err("fails");
        assert_eq!((e.status.as_u16(), e.message.as_str()), (500, "internal error"));
    }
}
