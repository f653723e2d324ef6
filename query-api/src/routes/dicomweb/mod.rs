//! DICOMweb over the anonymized set: QIDO-RS search ([`qido`]), WADO-RS
//! instance retrieval ([`wado`], metered like a download) and metadata
//! ([`metadata`], with an ETag). Consumers and admins search and retrieve the
//! whole set; a provider its own images only, unmetered ([`may_use`]). Only
//! images whose anonymized output is DICOM are in the set.

pub mod accept;
pub mod bulkdata;
pub mod frames;
pub mod metadata;
pub mod qido;
mod qido_keys;
pub mod rendered;
pub mod transcode;
pub mod wado;

use crate::QueryState;
use alpes_domain::catalog::AnonymizedOutput;
use alpes_platform::auth::{Caller, Role};
use alpes_platform::http::ApiError;
use alpes_platform::store::catalog::DicomQuery;
use alpes_platform::store::CatalogImage;
use serde_json::{json, Map, Value};

/// The `study` path parameter.
pub fn study() -> Value {
    alpes_platform::openapi::path("study", "The StudyInstanceUID (remapped by the anonymizer).")
}

/// The `series` path parameter.
pub fn series() -> Value {
    alpes_platform::openapi::path("series", "The SeriesInstanceUID.")
}

/// The `instance` path parameter.
pub fn instance() -> Value {
    alpes_platform::openapi::path("instance", "The SOPInstanceUID.")
}

/// The media type of a QIDO-RS answer and of WADO-RS metadata.
pub const DICOM_JSON: &str = "application/dicom+json";

/// What part of the anonymized set a caller reaches through DICOMweb ([`may_use`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// Only this provider's instances.
    pub provider_id: Option<String>,
    /// Only the instances a consumer is offered ([`alpes_domain::consent::offered`]).
    pub offered_only: bool,
}

impl Reach {
    /// `q` narrowed to the reach.
    pub fn narrow(&self, q: &mut DicomQuery) {
        q.provider_id.clone_from(&self.provider_id);
        q.offered_only = self.offered_only;
    }
}

/// Whom the DICOMweb routes answer, and over what: an admin the whole anonymized set, a consumer
/// what it is offered (its patients consented, or their provider belongs to no institution), a
/// provider its own images, so that a PACS pulls back what it sent with the credential it sends
/// with. A provider's retrievals are not metered: a download is billed to a consumer and
/// credited to the images' provider, and here they are one.
pub fn may_use(caller: &Caller) -> Result<Reach, ApiError> {
    caller.require(&[Role::Consumidor, Role::Admin, Role::Proveedor])?;
    Ok(Reach {
        provider_id: (caller.role == Role::Proveedor).then(|| caller.user_id.clone()),
        offered_only: caller.role == Role::Consumidor,
    })
}

/// A DICOM JSON attribute (PS3.18 F.2): `Value` is omitted when empty.
pub fn attr(out: &mut Map<String, Value>, tag: &str, vr: &str, values: Vec<Value>) {
    let mut a = Map::new();
    a.insert("vr".into(), Value::String(vr.into()));
    if !values.is_empty() {
        a.insert("Value".into(), Value::Array(values));
    }
    out.insert(tag.into(), Value::Object(a));
}

/// A text attribute from an optional value.
pub fn text(out: &mut Map<String, Value>, tag: &str, vr: &str, value: Option<&str>) {
    attr(out, tag, vr, value.map(|v| vec![json!(v)]).unwrap_or_default());
}

/// A number attribute from an optional value.
pub fn number(out: &mut Map<String, Value>, tag: &str, vr: &str, value: Option<i64>) {
    attr(out, tag, vr, value.map(|v| vec![json!(v)]).unwrap_or_default());
}

/// The URL of an anonymized instance under `base` (its RetrieveURL; `/bulkdata/...` and the
/// other pixel routes hang under it).
pub fn instance_url(base: &str, out: &AnonymizedOutput) -> String {
    let uid = |u: &Option<String>| u.clone().unwrap_or_default();
    format!(
        "{base}/studies/{}/series/{}/instances/{}",
        uid(&out.study_uid),
        uid(&out.series_uid),
        uid(&out.sop_instance_uid)
    )
}

/// The first of `found` with an anonymized output (an instance-level retrieval that answers one
/// part: two providers' copies of one SOP instance are both in `found`, and only one is served,
/// so only one is metered), or nothing.
pub fn first_output(found: &[CatalogImage]) -> &[CatalogImage] {
    match found.iter().position(|i| i.anonymized.is_some()) {
        Some(at) => &found[at..=at],
        None => &[],
    }
}

/// Whether a transfer syntax stores native (uncompressed) pixel data: implicit and explicit
/// VR little endian, explicit big endian, deflated.
pub fn is_native(ts: &str) -> bool {
    matches!(
        ts,
        "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.2" | "1.2.840.10008.1.2.1.99"
    )
}

/// What a WADO-RS path names: a study, a series in it, or one instance.
#[derive(Debug, serde::Deserialize)]
pub struct Target {
    study: String,
    series: Option<String>,
    instance: Option<String>,
}

/// The anonymized DICOM instances `target` names (of provider `only`, if given), at most 10,000;
/// 404 if none.
pub async fn instances_under(state: &QueryState, target: Target, only: Reach) -> Result<Vec<CatalogImage>, ApiError> {
    let Target { study, series, instance } = target;
    let missing = match (&series, &instance) {
        (_, Some(i)) => format!("no instance {i}"),
        (Some(s), None) => format!("no series {s}"),
        (None, None) => format!("no study {study}"),
    };
    let mut q = DicomQuery {
        study_uid: Some(study),
        series_uid: series,
        sop_instance_uid: instance,
        limit: 10_000,
        ..DicomQuery::default()
    };
    only.narrow(&mut q);
    let found = one_per_sop(state.catalog.instances(&q).await?);
    if found.is_empty() {
        return Err(ApiError::not_found(missing));
    }
    Ok(found)
}

/// One instance per SOP Instance UID and provider: when a provider's uploads share one (the same
/// file sent again with other bytes), the newest upload's output is the instance, in the place
/// of the first; the others stay in `/imagenes` and the audit trail. Two providers' copies of
/// one file, linked by `--pseudonym-scope instance`, stay two instances. Instances without a
/// UID are kept.
pub fn one_per_sop(found: Vec<CatalogImage>) -> Vec<CatalogImage> {
    let sop = |i: &CatalogImage| {
        let uid = i.anonymized.as_ref().and_then(|o| o.sop_instance_uid.clone())?;
        Some((i.provider_id.clone(), uid))
    };
    let newest = |i: &CatalogImage| (i.created_at, i.anonymized.as_ref().map_or(0, |o| o.anonymized_at));
    let mut out: Vec<CatalogImage> = Vec::with_capacity(found.len());
    let mut at: std::collections::HashMap<(String, String), usize> = std::collections::HashMap::new();
    for image in found {
        match sop(&image) {
            Some(uid) => match at.get(&uid) {
                Some(&i) if newest(&image) > newest(&out[i]) => out[i] = image,
                Some(_) => {}
                None => {
                    at.insert(uid, out.len());
                    out.push(image);
                }
            },
            None => out.push(image),
        }
    }
    out
}
