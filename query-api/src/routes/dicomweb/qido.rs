//! QIDO-RS (PS3.18 §10.6): `GET /studies`, `/series`, `/instances`,
//! `/studies/{study}/series`, `/studies/{study}/instances` and
//! `/studies/{study}/series/{series}/instances`, answered from the catalog in
//! `application/dicom+json`.
//!
//! The matching keys (by keyword or tag) and paging parameters it takes are
//! the table in [`super::qido_keys`]; any other key is refused when ignoring it
//! would widen the result, and named in a `Warning` header when its value
//! matches anything. A result cut at `limit` says so in a `Warning` header
//! with the `offset` of the next page.

pub use super::qido_keys::Level;
use super::qido_keys::Search;
use super::{attr, may_use, number, text, DICOM_JSON};
use crate::openapi::DICOMWEB;
use crate::Shared;
use alpes_platform::auth::Authenticated;
use alpes_platform::http::{ApiError, QueryParams};
use alpes_platform::openapi::{content, response_header, schema, Op};
use alpes_platform::store::catalog::{DicomQuery, SeriesSummary, StudySummary};
use alpes_platform::store::CatalogImage;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

type Params = QueryParams<Vec<(String, String)>>;

/// The search `pairs` ask at `level`, over what the caller reaches ([`super::may_use`]).
fn parse(QueryParams(pairs): Params, level: Level, only: super::Reach) -> Result<(Search, Vec<String>), ApiError> {
    let (mut search, warnings) = super::qido_keys::parse(pairs, level)?;
    for q in &mut search.queries {
        only.narrow(q);
    }
    Ok((search, warnings))
}

/// The results of `search`'s page plus one (so that a cut can be told): one catalog query asked
/// for them; several (a list of values) each asked for every result up to the page's end, merged
/// in `key` order without repeats, and cut there.
async fn gather<T, K: Ord, F: std::future::Future<Output = Result<Vec<T>, ApiError>>>(
    search: &Search,
    run: impl Fn(DicomQuery) -> F,
    key: impl Fn(&T) -> K,
) -> Result<Vec<T>, ApiError> {
    let wanted = search.limit.saturating_add(1);
    if let [q] = &search.queries[..] {
        return run(DicomQuery {
            limit: wanted,
            ..q.clone()
        })
        .await;
    }
    let mut all = Vec::new();
    for q in &search.queries {
        let q = DicomQuery {
            offset: 0,
            limit: search.offset.saturating_add(wanted),
            ..q.clone()
        };
        all.extend(run(q).await?);
    }
    all.sort_by_key(|t| key(t));
    all.dedup_by(|a, b| key(a) == key(b));
    Ok(all.into_iter().skip(search.offset).take(wanted).collect())
}

/// The first `limit` of `found` as DICOM JSON, with a `Warning` for each of `warnings` and one
/// more when `found` held more than `limit` (the next page starts at `offset + limit`).
fn answer<T>(found: &[T], (limit, offset): (usize, usize), mut warnings: Vec<String>, json: impl Fn(&T) -> Value) -> Response {
    if found.len() > limit {
        warnings.push(format!(
            "the results were cut at limit={limit}: ask again with offset={} for more",
            offset + limit
        ));
    }
    let items: Vec<Value> = found.iter().take(limit).map(json).collect();
    let mut res = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, DICOM_JSON)],
        Value::Array(items).to_string(),
    )
        .into_response();
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 alpes \"{w}\"")) {
            res.headers_mut().append(header::WARNING, v);
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
    text(&mut o, "00081190", "UR", Some(&super::instance_url(base, out)));
    text(&mut o, "00100020", "LO", out.patient_id.as_deref());
    text(&mut o, "0020000D", "UI", Some(study));
    text(&mut o, "0020000E", "UI", Some(series));
    number(&mut o, "00200013", "IS", out.instance_number.map(i64::from));
    number(&mut o, "00280008", "IS", Some(i64::from(out.frames)));
    number(&mut o, "00280010", "US", Some(i64::from(out.rows)));
    number(&mut o, "00280011", "US", Some(i64::from(out.columns)));
    Value::Object(o)
}

/// The operation of a QIDO-RS search at `p` at `level`, answering `what`.
pub fn op(p: &'static str, id: &str, summary: &str, (level, what): (Level, &str)) -> Op {
    Op::get(p, id, DICOMWEB, summary)
        .describe(&format!(
            "QIDO-RS (PS3.18 §10.6) over the anonymized DICOM set: the matching {what}, as DICOM JSON. Any other \
             matching key is refused (400 `unsupported_match`) when ignoring it would answer more than asked, and \
             ignored with a `Warning` when its value matches anything (empty or `*`). A result cut at `limit` says so \
             in a `Warning` with the `offset` of the next page."
        ))
        .auth(&["consumidor", "admin", "proveedor"])
        .params(super::qido_keys::params(level))
        .ok(
            200,
            &format!("The matching {what} (maybe none)."),
            Some(content(
                "application/dicom+json",
                json!({ "type": "array", "items": schema("DicomDataset") }),
            )),
            &[(
                "Warning",
                response_header(
                    json!({ "type": "string" }),
                    false,
                    "One per note: `299 alpes \"matching keys not supported and ignored: ...\"`, `299 alpes \"the \
                     results were cut at limit=N: ask again with offset=M for more\"`, `299 alpes \"fuzzy matching is \
                     not supported: ...\"`.",
                ),
            )],
        )
        .error(
            400,
            &[
                "bad_query",
                "bad_limit",
                "bad_offset",
                "bad_study_date",
                "bad_match",
                "unsupported_match",
                "too_many_values",
            ],
            "A malformed query string, a limit outside 1 to 1000, an offset that is not a whole number, a bad StudyDate, \
             or a matching value (in the query or the path) longer than its attribute can hold; \
             `unsupported_match`: a matching key Alpes does not match on, with a value that would narrow the search; \
             `too_many_values`: lists of values whose combinations pass 100.",
        )
}

/// `GET /studies`.
#[tracing::instrument(name = "QIDO /studies", skip_all, fields(user = %caller.user_id))]
pub async fn studies(State(state): State<Shared>, Authenticated(caller): Authenticated, params: Params) -> Result<Response, ApiError> {
    let (search, warnings) = parse(params, Level::Study, may_use(&caller)?)?;
    let base = state.public_url.as_str();
    let run = |q: DicomQuery| {
        let catalog = state.catalog.clone();
        async move { Ok(catalog.studies(&q).await?) }
    };
    let found = gather(&search, run, |s| s.study_uid.clone()).await?;
    Ok(answer(&found, (search.limit, search.offset), warnings, |s| study_json(s, base)))
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
fn scoped(QueryParams(mut pairs): Params, scope: Scope, (level, only): (Level, super::Reach)) -> Result<(Search, Vec<String>), ApiError> {
    pairs.extend(scope.study.map(|uid| ("StudyInstanceUID".to_owned(), uid)));
    pairs.extend(scope.series.map(|uid| ("SeriesInstanceUID".to_owned(), uid)));
    parse(QueryParams(pairs), level, only)
}

/// `GET /series` and `GET /studies/{study}/series`.
#[tracing::instrument(name = "QIDO series", skip_all, fields(user = %caller.user_id))]
pub async fn series(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    Path(scope): Path<Scope>,
    params: Params,
) -> Result<Response, ApiError> {
    let (search, warnings) = scoped(params, scope, (Level::Series, may_use(&caller)?))?;
    let base = state.public_url.as_str();
    let run = |q: DicomQuery| {
        let catalog = state.catalog.clone();
        async move { Ok(catalog.series(&q).await?) }
    };
    let found = gather(&search, run, |s| (s.study_uid.clone(), s.series_uid.clone())).await?;
    Ok(answer(&found, (search.limit, search.offset), warnings, |s| series_json(s, base)))
}

/// `GET /instances`, `GET /studies/{study}/instances` and `GET /studies/{study}/series/{series}/instances`.
#[tracing::instrument(name = "QIDO instances", skip_all, fields(user = %caller.user_id))]
pub async fn instances(
    State(state): State<Shared>,
    Authenticated(caller): Authenticated,
    Path(scope): Path<Scope>,
    params: Params,
) -> Result<Response, ApiError> {
    let (search, warnings) = scoped(params, scope, (Level::Instance, may_use(&caller)?))?;
    let base = state.public_url.as_str();
    let run = |q: DicomQuery| {
        let catalog = state.catalog.clone();
        async move { Ok(catalog.instances(&q).await?) }
    };
    let found = super::one_per_sop(gather(&search, run, instance_order).await?);
    Ok(answer(&found, (search.limit, search.offset), warnings, |i| instance_json(i, base)))
}

/// The order instances are searched in: study, series, instance number (none first) and SOP
/// Instance UID, as the catalog orders them; the image tells copies apart.
fn instance_order(image: &CatalogImage) -> (Option<String>, Option<String>, Option<i32>, Option<String>, String) {
    let out = image.anonymized.as_ref();
    (
        out.and_then(|o| o.study_uid.clone()),
        out.and_then(|o| o.series_uid.clone()),
        out.and_then(|o| o.instance_number),
        out.and_then(|o| o.sop_instance_uid.clone()),
        image.image_id.clone(),
    )
}
