//! Import jobs: a provider asks Alpes to pull images from a remote DICOMweb
//! server (QIDO-RS, then WADO-RS) or from a list of image URLs. A job is
//! stored, announced on Kafka (`ImportacionSolicitada`) and run by an
//! importer (a consumer group); each item reaches one outcome, recorded once.
//!
//! - [`ImportSpec`]: what a job pulls, and its validation ([`ImportSpec::validate`]).
//! - [`ImportState`]: `pending → running → completed | failed | cancelled`
//!   (a pending job can be cancelled too); a finished job never moves again.
//! - [`ImportStore`]: the port, on SQLite and on CQL.

use crate::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest URL a job takes, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// The most URLs a `urls` job takes.
pub const MAX_URLS: usize = 10_000;
/// The most QIDO-RS keys a DICOMweb job takes.
pub const MAX_QUERY_KEYS: usize = 32;
/// The longest QIDO-RS value, in bytes.
pub const MAX_QUERY_VALUE_BYTES: usize = 256;
/// The longest reason kept for a failed item or job, in characters.
pub const MAX_REASON_CHARS: usize = 300;

/// How an importer authenticates to a source (its `Debug` never shows the secret).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ImportAuth))]
#[serde(tag = "tipo", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceAuth {
    /// HTTP Basic.
    Basic {
        /// The user name.
        usuario: String,
        /// The password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: String,
    },
}

impl std::fmt::Debug for SourceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceAuth::Basic { usuario, .. } => write!(f, "Basic {{ usuario: {usuario:?}, password: <redacted> }}"),
            SourceAuth::Bearer { .. } => f.write_str("Bearer { token: <redacted> }"),
        }
    }
}

/// What a job pulls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = ImportRequest))]
#[serde(tag = "tipo", rename_all = "lowercase", deny_unknown_fields)]
pub enum ImportSpec {
    /// Every study a QIDO-RS search of `url` matches, each instance retrieved by WADO-RS.
    Dicomweb {
        /// The DICOMweb base, e.g. `https://pacs.example/dicom-web`.
        url: String,
        /// QIDO-RS keys (a keyword or a tag) and values, as a study search takes them.
        #[serde(default)]
        consulta: BTreeMap<String, String>,
        /// How to authenticate, if the server asks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<SourceAuth>,
    },
    /// Each URL, a DICOM, PNG or JPEG image.
    Urls {
        /// The image URLs (a URL given twice is one item).
        urls: Vec<String>,
        /// How to authenticate, if the servers ask.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<SourceAuth>,
    },
}

/// Why a job's request cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadImport {
    /// A URL that is not an absolute `http` or `https` URL with a host.
    #[error("{0} is not an absolute http or https URL (at most 2048 bytes, no spaces)")]
    BadUrl(&'static str),
    /// A `urls` job with no URL.
    #[error("urls is empty")]
    NoUrls,
    /// More items than one job takes.
    #[error("a job takes at most {0} URLs")]
    TooManyUrls(usize),
    /// A QIDO-RS key that is not a keyword or a tag, or a paging key.
    #[error("consulta key {0:?} is not a DICOM keyword or tag (limit, offset and includefield are the importer's)")]
    BadQueryKey(String),
    /// A QIDO-RS value too long, or with a control character.
    #[error("the value of consulta key {0:?} is longer than 256 bytes or has a control character")]
    BadQueryValue(String),
    /// Too many QIDO-RS keys.
    #[error("consulta takes at most 32 keys")]
    TooManyKeys,
}

impl BadImport {
    /// A stable code for the error body.
    pub fn code(&self) -> &'static str {
        match self {
            BadImport::BadUrl(_) => "bad_url",
            BadImport::NoUrls | BadImport::TooManyUrls(_) => "bad_urls",
            BadImport::BadQueryKey(_) | BadImport::BadQueryValue(_) | BadImport::TooManyKeys => "bad_consulta",
        }
    }
}

/// The host (and port) of an absolute `http`/`https` URL, lower-cased; `None` if it is not one.
pub fn url_host(url: &str) -> Option<String> {
    if url.len() > MAX_URL_BYTES || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("https://") {
        &url[8..]
    } else if lower.starts_with("http://") {
        &url[7..]
    } else {
        return None;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // Credentials in the URL are refused: a job's `auth` carries them, kept out of listings.
    if authority.contains('@') {
        return None;
    }
    let host = authority.to_ascii_lowercase();
    let name = host.rsplit_once(':').map_or(
        host.as_str(),
        |(h, p)| if p.bytes().all(|b| b.is_ascii_digit()) { h } else { &host },
    );
    (!name.is_empty()).then_some(host)
}

fn query_key_ok(key: &str) -> bool {
    let paging = ["limit", "offset", "includefield", "fuzzymatching"];
    !key.is_empty()
        && key.len() <= 64
        && key.bytes().all(|b| b.is_ascii_alphanumeric())
        && !paging.contains(&key.to_ascii_lowercase().as_str())
}

impl ImportSpec {
    /// The stored name of its kind.
    pub fn tipo(&self) -> &'static str {
        match self {
            ImportSpec::Dicomweb { .. } => "dicomweb",
            ImportSpec::Urls { .. } => "urls",
        }
    }

    /// Checks it, and makes each URL of a `urls` job appear once (first place kept).
    pub fn validate(mut self, max_urls: usize) -> Result<ImportSpec, BadImport> {
        match &mut self {
            ImportSpec::Dicomweb { url, consulta, .. } => {
                url_host(url).ok_or(BadImport::BadUrl("url"))?;
                if consulta.len() > MAX_QUERY_KEYS {
                    return Err(BadImport::TooManyKeys);
                }
                for (k, v) in consulta.iter() {
                    if !query_key_ok(k) {
                        return Err(BadImport::BadQueryKey(k.clone()));
                    }
                    if v.len() > MAX_QUERY_VALUE_BYTES || v.chars().any(char::is_control) {
                        return Err(BadImport::BadQueryValue(k.clone()));
                    }
                }
            }
            ImportSpec::Urls { urls, .. } => {
                if urls.is_empty() {
                    return Err(BadImport::NoUrls);
                }
                let mut seen = std::collections::HashSet::new();
                urls.retain(|u| seen.insert(u.clone()));
                if urls.len() > max_urls {
                    return Err(BadImport::TooManyUrls(max_urls));
                }
                if urls.iter().any(|u| url_host(u).is_none()) {
                    return Err(BadImport::BadUrl("each of urls"));
                }
            }
        }
        Ok(self)
    }

    /// The source as it may be shown: the URL (or how many URLs), never the credentials.
    pub fn without_auth(&self) -> ImportSpec {
        let mut shown = self.clone();
        match &mut shown {
            ImportSpec::Dicomweb { auth, .. } | ImportSpec::Urls { auth, .. } => *auth = None,
        }
        shown
    }
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportState {
    /// Stored and announced; no importer has started it.
    Pending,
    /// An importer is pulling its items.
    Running,
    /// Every item reached an outcome, and at least one was imported (or the source had none).
    Completed,
    /// The source could not be read after its retries, or every item failed.
    Failed,
    /// Cancelled by its owner or an admin; items already imported stay.
    Cancelled,
}

impl ImportState {
    /// Every state, in order.
    pub const ALL: [ImportState; 5] = [
        ImportState::Pending,
        ImportState::Running,
        ImportState::Completed,
        ImportState::Failed,
        ImportState::Cancelled,
    ];

    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportState::Pending => "pending",
            ImportState::Running => "running",
            ImportState::Completed => "completed",
            ImportState::Failed => "failed",
            ImportState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<ImportState> {
        ImportState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the job is over (it never moves again).
    pub fn is_final(self) -> bool {
        matches!(self, ImportState::Completed | ImportState::Failed | ImportState::Cancelled)
    }
}

/// The states a job may move to `to` from.
pub fn may_come_from(to: ImportState) -> &'static [ImportState] {
    match to {
        ImportState::Pending => &[],
        ImportState::Running => &[ImportState::Pending, ImportState::Running],
        ImportState::Completed => &[ImportState::Running],
        // From pending only when the job could not be announced.
        ImportState::Failed => &[ImportState::Pending, ImportState::Running],
        ImportState::Cancelled => &[ImportState::Pending, ImportState::Running],
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportJob {
    /// The job id (a UUIDv7).
    pub job_id: String,
    /// The provider whose images it creates.
    pub provider_id: String,
    /// Who asked for it (the provider, or an admin on its behalf).
    pub created_by: String,
    /// What it pulls, with the credentials (never shown).
    pub spec: ImportSpec,
    /// Where it stands.
    pub state: ImportState,
    /// Why it failed or was cancelled.
    pub reason: Option<String>,
    /// How many items the source listed, once known.
    pub total: Option<u64>,
    /// When it was asked for, ms.
    pub created_at: i64,
    /// When an importer first started it, ms.
    pub started_at: Option<i64>,
    /// When it ended, ms.
    pub finished_at: Option<i64>,
}

/// The outcome of one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemOutcome {
    /// A new image was registered.
    Imported,
    /// The provider had these bytes already: the existing image.
    Duplicate,
    /// It could not be fetched or was not an image.
    Failed,
}

impl ItemOutcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemOutcome::Imported => "imported",
            ItemOutcome::Duplicate => "duplicate",
            ItemOutcome::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<ItemOutcome> {
        [ItemOutcome::Imported, ItemOutcome::Duplicate, ItemOutcome::Failed]
            .into_iter()
            .find(|o| o.as_str() == s)
    }
}

/// One item's outcome: a URL, or a DICOMweb instance (`study/series/instance`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportItem {
    /// The item's key in its job.
    pub key: String,
    /// Its outcome.
    pub outcome: ItemOutcome,
    /// The image it created or matched.
    pub image_id: Option<String>,
    /// Why it failed (a code and a short text, never payload).
    pub reason: Option<String>,
    /// When it was recorded, ms.
    pub at: i64,
}

/// Cuts a reason to [`MAX_REASON_CHARS`].
pub fn reason(text: &str) -> String {
    text.chars().take(MAX_REASON_CHARS).collect()
}

/// The import jobs store.
#[async_trait]
pub trait ImportStore: Send + Sync + std::fmt::Debug {
    /// Stores a new job (state pending).
    async fn create_job(&self, job: &ImportJob) -> Result<()>;
    /// One job.
    async fn job(&self, job_id: &str) -> Result<Option<ImportJob>>;
    /// Jobs newest first (of `provider`, or every provider's), at most `limit`, after `after`
    /// (`(created_at, job_id)` of the last one of the previous page).
    async fn jobs(&self, provider: Option<&str>, after: Option<(i64, String)>, limit: usize) -> Result<Vec<ImportJob>>;
    /// Moves a job to `to` if it is in one of [`may_come_from`]`(to)`, with `reason`; sets
    /// `started_at` on the first move to running and `finished_at` on a final one. Returns
    /// whether it moved (false for an unknown job too).
    async fn transition(&self, job_id: &str, to: ImportState, reason: Option<&str>, now: i64) -> Result<bool>;
    /// Records how many items the source listed.
    async fn set_total(&self, job_id: &str, total: u64) -> Result<()>;
    /// Records an item's outcome unless it has one already; returns whether this one was kept.
    async fn record_item(&self, job_id: &str, item: &ImportItem) -> Result<bool>;
    /// Every recorded item of a job, by key.
    async fn items(&self, job_id: &str) -> Result<Vec<ImportItem>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_needs_http_or_https_and_a_host() {
        assert_eq!(
            url_host("https://PACS.example:8042/dicom-web").as_deref(),
            Some("pacs.example:8042")
        );
        assert_eq!(url_host("http://127.0.0.1/a.png?x=1").as_deref(), Some("127.0.0.1"));
        for bad in [
            "ftp://x/a",
            "https://",
            "https:///a",
            "http://a b/",
            "file:///etc/passwd",
            "http://u:p@h/x",
            "h/x",
        ] {
            assert_eq!(url_host(bad), None, "{bad}");
        }
        assert_eq!(url_host(&format!("http://h/{}", "a".repeat(MAX_URL_BYTES))), None);
    }

    #[test]
    fn a_urls_job_keeps_each_url_once_and_refuses_past_its_limit() {
        let spec = ImportSpec::Urls {
            urls: vec!["http://h/a".into(), "http://h/b".into(), "http://h/a".into()],
            auth: None,
        };
        let ImportSpec::Urls { urls, .. } = spec.clone().validate(2).expect("valid") else {
            panic!("kind")
        };
        assert_eq!(urls, ["http://h/a", "http://h/b"]);
        assert_eq!(spec.validate(1), Err(BadImport::TooManyUrls(1)));
        let empty = ImportSpec::Urls { urls: vec![], auth: None };
        assert_eq!(empty.validate(5), Err(BadImport::NoUrls));
    }

    #[test]
    fn qido_keys_are_keywords_or_tags_and_paging_is_the_importers() {
        let job = |k: &str, v: &str| ImportSpec::Dicomweb {
            url: "http://pacs/dicom-web".into(),
            consulta: BTreeMap::from([(k.to_owned(), v.to_owned())]),
            auth: None,
        };
        assert!(job("StudyDate", "20200101-20201231").validate(1).is_ok());
        assert!(job("00080060", "CT").validate(1).is_ok());
        assert_eq!(job("limit", "5").validate(1).unwrap_err().code(), "bad_consulta");
        assert_eq!(job("Study Date", "x").validate(1).unwrap_err().code(), "bad_consulta");
        assert_eq!(job("StudyDate", "a\nb").validate(1).unwrap_err().code(), "bad_consulta");
    }

    #[test]
    fn credentials_are_never_shown_and_the_spec_reads_as_the_api_writes_it() {
        let spec: ImportSpec = serde_json::from_str(
            r#"{"tipo":"dicomweb","url":"http://pacs/dicom-web","consulta":{"ModalitiesInStudy":"CT"},"auth":{"tipo":"basic","usuario":"u","password":"secret"}}"#,
        )
        .expect("parse");
        let shown = serde_json::to_string(&spec.without_auth()).expect("json");
        assert!(!shown.contains("secret") && !shown.contains("auth"), "{shown}");
        assert!(!format!("{spec:?}").contains("secret"), "nor in a Debug line");
        assert!(serde_json::from_str::<ImportSpec>(r#"{"tipo":"ftp","url":"x"}"#).is_err());
        assert!(serde_json::from_str::<ImportSpec>(r#"{"tipo":"urls","urls":[],"extra":1}"#).is_err());
    }

    #[test]
    fn a_final_state_is_reached_only_from_running_and_cancel_from_any_open_one() {
        assert!(may_come_from(ImportState::Completed).contains(&ImportState::Running));
        assert!(!may_come_from(ImportState::Completed).contains(&ImportState::Pending));
        for to in ImportState::ALL {
            assert!(may_come_from(to).iter().all(|from| !from.is_final()), "{to:?}");
            assert_eq!(ImportState::parse(to.as_str()), Some(to));
        }
    }
}
