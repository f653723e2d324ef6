//! QIDO-RS (PS3.18 §10.6): `GET /studies`, `/series`, `/instances`,
//! `/studies/{study}/series`, `/studies/{study}/instances` and
//! `/studies/{study}/series/{series}/instances`, answered from the catalog in
//! `application/dicom+json`.
//!
//! The matching keys (by keyword or tag) and paging parameters it takes are
//! the table in [`super::qido_keys`]; any other key is ignored and named in a
//! `Warning` header, as the standard asks.

use super::{attr, base_url, may_use, number, text, DICOM_JSON};
use crate::openapi::DICOMWEB;
use crate::Shared;
use alpes_platform::auth::Authenticated;
use alpes_platform::http::{ApiError, QueryParams};
use alpes_platform::openapi::{content, response_header, schema, Op};
use alpes_platform::store::catalog::{DicomQuery, SeriesSummary, StudySummary};
use alpes_platform::store::CatalogImage;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

type Params = QueryParams<Vec<(String, String)>>;

/// The query, and the keys that were ignored.
fn parse(QueryParams(pairs): Params) -> Result<(DicomQuery, Vec<String>), ApiError> {
    super::qido_keys::parse(pairs)
}

fn answer(items: Vec<Value>, ignored: &[String]) -> Response {
    let mut res = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, DICOM_JSON)],
        Value::Array(items).to_string(),
    )
        .into_response();
    if !ignored.is_empty() {
        let warning = format!("299 alpes \"matching keys not supported and ignored: {}\"", ignored.join(", "));
        if let Ok(v) = HeaderValue::from_str(&warning) {
            res.headers_mut().insert(header::WARNING, v);
        }
    }
    res
}

fn study_json(s: &StudySummary, base: &str) -> Value {
    let mut o = Map::new();
    text(&mut o, "00080020", "DA", s.study_date.as_deref());
    attr(&mut o, "00080061", "CS", s.modalities.iter().map(|m| json!(m)).collect());
    text(&mut o, "00081190", "UR", Some(&format!("{base}/studies/{}", s.study_uid)));
    text(&mut o, "00100020", "LO", s.patient_id.as_deref());
    text(&mut o, "0020000D", "UI", Some(&s.study_uid));
    number(&mut o, "00201206", "IS", Some(s.series));
    number(&mut o, "00201208", "IS", Some(s.instances));
    Value::Object(o)
}

fn series_json(s: &SeriesSummary, base: &str) -> Value {
    let mut o = Map::new();
    text(&mut o, "00080060", "CS", s.modality.as_deref());
    text(
        &mut o,
        "00081190",
        "UR",
        Some(&format!("{base}/studies/{}/series/{}", s.study_uid, s.series_uid)),
    );
    text(&mut o, "0020000D", "UI", Some(&s.study_uid));
    text(&mut o, "0020000E", "UI", Some(&s.series_uid));
    number(&mut o, "00200011", "IS", s.series_number.map(i64::from));
    number(&mut o, "00201209", "IS", Some(s.instances));
    Value::Object(o)
}

/// The QIDO-RS instance attributes of `image`.
pub fn instance_json(image: &CatalogImage, base: &str) -> Value {
    let mut o = Map::new();
    let Some(out) = &image.anonymized else {
        return Value::Object(o);
    };
    let (study, series, sop) = (
        out.study_uid.as_deref().unwrap_or_default(),
        out.series_uid.as_deref().unwrap_or_default(),
        out.sop_instance_uid.as_deref().unwrap_or_default(),
    );
    text(&mut o, "00080016", "UI", out.sop_class_uid.as_deref());
    text(&mut o, "00080018", "UI", Some(sop));
    text(&mut o, "00080020", "DA", out.study_date.as_deref());
    text(&mut o, "00080060", "CS", image.modality.as_deref());
    text(
        &mut o,
        "00081190",
        "UR",
        Some(&format!("{base}/studies/{study}/series/{series}/instances/{sop}")),
    );
    text(&mut o, "00100020", "LO", out.patient_id.as_deref());
    text(&mut o, "0020000D", "UI", Some(study));
    text(&mut o, "0020000E", "UI", Some(series));
    number(&mut o, "00200013", "IS", out.instance_number.map(i64::from));
    number(&mut o, "00280008", "IS", Some(i64::from(out.frames)));
    number(&mut o, "00280010", "US", Some(i64::from(out.rows)));
    number(&mut o, "00280011", "US", Some(i64::from(out.columns)));
    Value::Object(o)
}

/// The operation of a QIDO-RS search at `p`, for `level`.
pub fn op(p: &'static str, id: &str, summary: &str, level: &str) -> Op {
    Op::get(p, id, DICOMWEB, summary)
        .describe(&format!(
            "QIDO-RS (PS3.18 §10.6) over the anonymized DICOM set: the matching {level}, as DICOM JSON. Any other \
             query key is ignored and named in a `Warning` header, as the standard asks."
        ))
        .auth(&["consumidor", "admin"])
        .params(super::qido_keys::params())
        .ok(
            200,
            &format!("The matching {level} (maybe none)."),
            Some(content(
                "application/dicom+json",
                json!({ "type": "array", "items": schema("DicomDataset") }),
            )),
            &[(
                "Warning",
                response_header(
                    json!({ "type": "string" }),
                    false,
                    "`299 alpes \"matching keys not supported and ignored: ...\"`",
                ),
            )],
        )
        .error(
            400,
            &["bad_query", "bad_limit", "bad_offset", "bad_study_date", "bad_match"],
            "A malformed query string, a limit outside 1 to 1000, an offset that is not a whole number, a bad StudyDate, \
             or a matching value (in the query or the path) longer than its attribute can hold.",
        )
}

/// `GET /studies`.
#[tracing::instrument(name = "QIDO /studies", skip_all, fields(user = %caller.user_id))]
pub async fn studies(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    may_use(&caller)?;
    let (q, ignored) = parse(params)?;
    let base = base_url(&headers);
    let found = state.catalog.studies(&q).await?;
    Ok(answer(found.iter().map(|s| study_json(s, &base)).collect(), &ignored))
}

/// The study and series a QIDO-RS path names, if any (`/series`, `/studies/{study}/series`,
/// `/instances`, `/studies/{study}/instances`, `/studies/{study}/series/{series}/instances`).
#[derive(Debug, serde::Deserialize)]
pub struct Scope {
    study: Option<String>,
    series: Option<String>,
}

/// The query with the path's study and series, which stand over the query string's: they are
/// read last, and checked as the query string's are.
fn scoped(QueryParams(mut pairs): Params, scope: Scope) -> Result<(DicomQuery, Vec<String>), ApiError> {
    pairs.extend(scope.study.map(|uid| ("StudyInstanceUID".to_owned(), uid)));
    pairs.extend(scope.series.map(|uid| ("SeriesInstanceUID".to_owned(), uid)));
    parse(QueryParams(pairs))
}

/// `GET /series` and `GET /studies/{study}/series`.
#[tracing::instrument(name = "QIDO series", skip_all, fields(user = %caller.user_id))]
pub async fn series(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    Path(scope): Path<Scope>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    may_use(&caller)?;
    let (q, ignored) = scoped(params, scope)?;
    let base = base_url(&headers);
    let found = state.catalog.series(&q).await?;
    Ok(answer(found.iter().map(|s| series_json(s, &base)).collect(), &ignored))
}

/// `GET /instances`, `GET /studies/{study}/instances` and `GET /studies/{study}/series/{series}/instances`.
#[tracing::instrument(name = "QIDO instances", skip_all, fields(user = %caller.user_id))]
pub async fn instances(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    Path(scope): Path<Scope>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    may_use(&caller)?;
    let (q, ignored) = scoped(params, scope)?;
    let base = base_url(&headers);
    let found = state.catalog.instances(&q).await?;
    Ok(answer(found.iter().map(|i| instance_json(i, &base)).collect(), &ignored))
}
