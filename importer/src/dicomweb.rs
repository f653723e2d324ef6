//! A DICOMweb job's items: the studies a QIDO-RS search of the source
//! matches (`GET {base}/studies?{consulta}`), then each study's instances
//! (`GET {base}/studies/{study}/instances`), both read page by page
//! (`limit`/`offset`); each instance is an item, retrieved with the others of
//! its series by one WADO-RS request (`GET {base}/studies/{study}/series/{series}`,
//! a multipart answer read part by part): a PACS serves a series in one
//! answer far more cheaply than its instances one by one.

use crate::fetch::Fetcher;
use crate::ItemError;
use alpes_domain::import::SourceAuth;
use alpes_platform::retry::GaveUp;
use alpes_platform::shutdown::Shutdown;
use reqwest::Url;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// Rows asked for per QIDO-RS page.
const PAGE: usize = 500;
/// The most instances one job lists.
pub const MAX_INSTANCES: usize = 100_000;

const STUDY_UID: &str = "0020000D";
const SERIES_UID: &str = "0020000E";
const INSTANCE_UID: &str = "00080018";

/// One instance of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `study/series/instance`, its item key.
    pub key: String,
    /// Its series' WADO-RS URL.
    pub series: Url,
}

/// The item key of an instance.
pub fn key(study: &str, series: &str, instance: &str) -> String {
    format!("{study}/{series}/{instance}")
}

/// A UID attribute of a QIDO-RS result (DICOM JSON): `{"0020000D": {"vr": "UI", "Value": ["1.2..."]}}`.
fn uid(row: &Value, tag: &str) -> Option<String> {
    let v = row.get(tag)?.get("Value")?.get(0)?.as_str()?.trim();
    let ok = !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    ok.then(|| v.to_owned())
}

/// `base` with `segments` appended and `query` set.
fn url_of(base: &Url, segments: &[&str], query: &[(&str, String)]) -> Result<Url, ItemError> {
    let mut url = base.clone();
    {
        let mut path = url
            .path_segments_mut()
            .map_err(|()| ItemError::new("bad_url", "the DICOMweb URL cannot have a path"))?;
        path.pop_if_empty();
        path.extend(segments);
    }
    if query.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut()
            .clear()
            .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
    }
    Ok(url)
}

fn gave_up(g: GaveUp<ItemError>) -> ItemError {
    ItemError::new(
        "source_unreachable",
        format!("the search failed after {} attempt(s): {}", g.attempts, g.error),
    )
}

/// Every row of a QIDO-RS search, page by page; stops at a page that brings nothing new.
async fn search(
    fetcher: &Fetcher,
    base: &Url,
    segments: &[&str],
    keys: &[(&str, String)],
    id_tag: &str,
    auth: Option<&SourceAuth>,
    stop: &Shutdown,
) -> Result<Vec<Value>, ItemError> {
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    loop {
        let mut query = keys.to_vec();
        query.push(("limit", PAGE.to_string()));
        query.push(("offset", rows.len().to_string()));
        let url = url_of(base, segments, &query)?;
        let page = fetcher.json(&url, auth, stop).await.map_err(gave_up)?;
        let page = match page {
            None => Vec::new(),
            Some(Value::Array(rows)) => rows,
            Some(_) => return Err(ItemError::new("bad_search_answer", "the search answer is not a JSON array")),
        };
        let before = rows.len();
        for row in page.iter() {
            if seen.insert(uid(row, id_tag).unwrap_or_default()) {
                rows.push(row.clone());
            }
        }
        // A server that ignores offset sends the first page again: nothing new, so stop.
        if page.len() < PAGE || rows.len() == before {
            return Ok(rows);
        }
        if rows.len() > MAX_INSTANCES {
            return Err(ItemError::new(
                "too_many_items",
                format!("the source lists more than {MAX_INSTANCES} items"),
            ));
        }
    }
}

/// Every instance of every study `consulta` matches on the DICOMweb server at `base`.
pub async fn instances(
    fetcher: &Fetcher,
    base: &str,
    consulta: &BTreeMap<String, String>,
    auth: Option<&SourceAuth>,
    stop: &Shutdown,
) -> Result<Vec<Instance>, ItemError> {
    let base = Url::parse(base).map_err(|_| ItemError::new("bad_url", "the DICOMweb URL cannot be parsed"))?;
    let mut keys: Vec<(&str, String)> = consulta.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    keys.push(("includefield", STUDY_UID.to_owned()));
    let studies = search(fetcher, &base, &["studies"], &keys, STUDY_UID, auth, stop).await?;
    let mut found = Vec::new();
    for study in studies.iter().filter_map(|s| uid(s, STUDY_UID)) {
        let fields = vec![("includefield", SERIES_UID.to_owned()), ("includefield", INSTANCE_UID.to_owned())];
        let rows = search(fetcher, &base, &["studies", &study, "instances"], &fields, INSTANCE_UID, auth, stop).await?;
        for row in rows {
            let (Some(series), Some(instance)) = (uid(&row, SERIES_UID), uid(&row, INSTANCE_UID)) else {
                continue;
            };
            found.push(Instance {
                key: key(&study, &series, &instance),
                series: url_of(&base, &["studies", &study, "series", &series], &[])?,
            });
            if found.len() > MAX_INSTANCES {
                return Err(ItemError::new(
                    "too_many_items",
                    format!("the source lists more than {MAX_INSTANCES} items"),
                ));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_built_under_the_base_with_the_keys_escaped() {
        let base = Url::parse("http://pacs:8042/dicom-web/").expect("url");
        let u = url_of(&base, &["studies"], &[("PatientName", "DOE^J*".into()), ("limit", "500".into())]).expect("url");
        assert_eq!(u.as_str(), "http://pacs:8042/dicom-web/studies?PatientName=DOE%5EJ*&limit=500");
        let base = Url::parse("http://pacs/dicom-web").expect("url");
        let u = url_of(&base, &["studies", "1.2", "series", "1.3", "instances", "1.4"], &[]).expect("url");
        assert_eq!(u.as_str(), "http://pacs/dicom-web/studies/1.2/series/1.3/instances/1.4");
    }

    #[test]
    fn a_uid_is_read_from_dicom_json_and_anything_else_is_skipped() {
        let row: Value = serde_json::json!({"0020000D": {"vr": "UI", "Value": ["1.2.840.1"]}, "00080018": {"vr": "UI", "Value": ["../x"]}});
        assert_eq!(uid(&row, STUDY_UID).as_deref(), Some("1.2.840.1"));
        assert_eq!(uid(&row, INSTANCE_UID), None, "not a UID: never put in a path");
        assert_eq!(uid(&row, SERIES_UID), None);
    }
}
