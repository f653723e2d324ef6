//! One request of an import, tried again as [`retry_bounded`] says: a JSON
//! search answer ([`Fetcher::json`]) or an image streamed to the raw blob
//! store and checked ([`Fetcher::image`]).
//!
//! Each attempt holds its host's and a global permit ([`HostLimits`]) while it
//! runs, not while it waits to be tried again. What an attempt's failure means:
//!
//! | failure                                      | tried again |
//! |----------------------------------------------|-------------|
//! | refused connection, timeout, body cut short  | yes         |
//! | 5xx, 429, 408 (after `Retry-After` if given) | yes         |
//! | a checksum the source gave that does not match | yes       |
//! | the blob store or the broker failing         | yes         |
//! | any other 4xx                                | no          |
//! | not DICOM, PNG or JPEG; over the size limit  | no          |
//! | an address the importer may not fetch from   | no          |

use crate::args::ImportArgs;
use crate::hosts::HostLimits;
use crate::network::{Networks, Resolver};
use crate::ItemError;
use alpes_anonymizer::probe::MediaKind;
use alpes_domain::import::SourceAuth;
use alpes_ingest::media;
use alpes_ingest::register::forget_blob;
use alpes_ingest::IngestState;
use alpes_platform::blobs::{StoredBlob, UploadError, RAW};
use alpes_platform::retry::{retry_after, retry_bounded, Attempt, Backoff, GaveUp};
use alpes_platform::shutdown::Shutdown;
use base64::Engine;
use futures::TryStreamExt;
use reqwest::header::{HeaderMap, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use std::sync::Arc;
use std::time::Duration;

/// The largest JSON answer of a search, bytes.
const MAX_JSON: usize = 64 << 20;
/// What a URL job asks for.
pub const ACCEPT_IMAGES: &str = "application/dicom, image/png, image/jpeg, */*;q=0.1";
/// What a WADO-RS instance retrieve asks for.
pub const ACCEPT_DICOM_PARTS: &str = "multipart/related; type=\"application/dicom\"; transfer-syntax=*";

/// Fetches for every job of one importer.
#[derive(Debug)]
pub struct Fetcher {
    client: reqwest::Client,
    networks: Arc<Networks>,
    limits: HostLimits,
    backoff: Backoff,
    state: IngestState,
    /// The hosts named in metric labels so far (at most [`MAX_HOST_LABELS`]).
    labels: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// The most hosts the import metrics name; requests to others are counted as `other`, so
/// the URLs of jobs cannot grow the metrics without bound.
pub const MAX_HOST_LABELS: usize = 256;

/// The `host[:port]` a URL's requests are limited and counted by.
pub fn host_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

pub(crate) fn again(code: &'static str, detail: impl Into<String>) -> Attempt<ItemError> {
    Attempt::Again(ItemError::new(code, detail), None)
}

pub(crate) fn final_(code: &'static str, detail: impl Into<String>) -> Attempt<ItemError> {
    Attempt::Final(ItemError::new(code, detail))
}

/// The label of a failed attempt in `alpes_import_requests_total`.
fn result_label(e: &Attempt<ItemError>) -> &'static str {
    let code = match e {
        Attempt::Again(e, _) | Attempt::Final(e) => e.code,
    };
    match code {
        "http_429" => "http_429",
        c if c.starts_with("http_5") => "http_5xx",
        c if c.starts_with("http_") => "http_4xx",
        "timeout" => "timeout",
        "connect" => "connect",
        "address_not_allowed" => "refused",
        _ => "body",
    }
}

/// The sha256 (hex) a response says its body has (`Repr-Digest`, `Content-Digest` or `Digest`).
fn declared_sha256(headers: &HeaderMap) -> Option<String> {
    for name in ["repr-digest", "content-digest", "digest"] {
        for value in headers.get_all(name).iter().filter_map(|v| v.to_str().ok()) {
            for entry in value.split(',') {
                let Some((alg, digest)) = entry.trim().split_once('=') else {
                    continue;
                };
                if alg.trim().eq_ignore_ascii_case("sha-256") {
                    let b64 = digest.trim().trim_matches(':');
                    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
                    return Some(hex_lower(&bytes));
                }
            }
        }
    }
    None
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Fetcher {
    /// A fetcher with `args`' limits, retries, timeout and networks, storing with `state`.
    pub fn new(state: IngestState, args: &ImportArgs) -> Result<Fetcher, String> {
        let networks = Arc::new(Networks::parse(&args.allow_networks)?);
        let checked = networks.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error(ItemError::new("too_many_redirects", "more than 5 redirects"))
            } else if let Err(e) = checked.check_url(attempt.url()) {
                attempt.error(e)
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(concat!("alpes-importer/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10).min(Duration::from_secs(args.timeout_secs.max(1))))
            // An idle limit, not a total one: a large series streams for as long as it sends.
            .read_timeout(Duration::from_secs(args.timeout_secs.max(1)))
            .no_proxy()
            .redirect(redirects)
            .dns_resolver(Arc::new(Resolver(networks.clone())))
            .build()
            .map_err(|e| format!("cannot build the importer's HTTP client: {e}"))?;
        Ok(Fetcher {
            client,
            networks,
            limits: HostLimits::new(args.max_per_host as usize, args.max_concurrent as usize),
            backoff: args.backoff(),
            state,
            labels: std::sync::Mutex::default(),
        })
    }

    /// `host` as the import metrics label it: itself while fewer than [`MAX_HOST_LABELS`] hosts
    /// were named, `other` past that.
    pub fn host_label(&self, host: &str) -> String {
        let mut labels = self.labels.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if labels.contains(host) || (labels.len() < MAX_HOST_LABELS && labels.insert(host.to_owned())) {
            host.to_owned()
        } else {
            "other".to_owned()
        }
    }

    /// The retry policy of every request.
    pub fn backoff(&self) -> Backoff {
        self.backoff
    }

    /// The ingest state images are registered with.
    pub fn state(&self) -> &IngestState {
        &self.state
    }

    /// Sends one GET and sorts its failure; the caller holds the permits ([`Fetcher::tried`]).
    pub async fn send(&self, url: &Url, accept: &str, auth: Option<&SourceAuth>) -> Result<reqwest::Response, Attempt<ItemError>> {
        self.networks.check_url(url).map_err(Attempt::Final)?;
        let mut req = self.client.get(url.clone()).header(ACCEPT, accept);
        req = match auth {
            Some(SourceAuth::Basic { usuario, password }) => req.basic_auth(usuario, Some(password)),
            Some(SourceAuth::Bearer { token }) => req.bearer_auth(token),
            None => req,
        };
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                again("timeout", "the source did not answer in time")
            } else if mentions(&e, "address_not_allowed") {
                Attempt::Final(crate::network::refused())
            } else if e.is_redirect() {
                final_("too_many_redirects", "the source redirected more than 5 times")
            } else {
                again("connect", "the source cannot be reached")
            }
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let code = status_code(status);
        let detail = format!("the source answered {}", status.as_u16());
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error() {
            let wait = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after(v, std::time::SystemTime::now()));
            return Err(Attempt::Again(ItemError::new(code, detail), wait));
        }
        Err(final_(code, detail))
    }

    /// Runs `attempt` under the retry policy and the host's limits, counting each attempt.
    pub async fn tried<T, F, Fut>(&self, url: &Url, stop: &Shutdown, attempt: F) -> Result<T, GaveUp<ItemError>>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt<ItemError>>>,
    {
        let host = host_of(url);
        let label = self.host_label(&host);
        let counter = &self.state.metrics.import_requests;
        retry_bounded(
            self.backoff,
            stop,
            |n, e: &ItemError, wait| tracing::info!(host = %host, attempt = n, code = e.code, wait_ms = wait.as_millis() as u64, "import request failed; trying again"),
            |_| async {
                let _permit = self.limits.acquire(&host).await;
                let out = tokio::select! {
                    out = attempt() => out,
                    () = stop.wait() => Err(final_("stopped", "the job was cancelled or the importer is stopping")),
                };
                let result = out.as_ref().map_or_else(result_label, |_| "ok");
                counter.with_label_values(&[label.as_str(), result]).inc();
                out
            },
        )
        .await
    }

    /// A search answer as JSON; `None` for 204 No Content (no match).
    pub async fn json(
        &self,
        url: &Url,
        auth: Option<&SourceAuth>,
        stop: &Shutdown,
    ) -> Result<Option<serde_json::Value>, GaveUp<ItemError>> {
        self.tried(url, stop, || async {
            let resp = self.send(url, "application/dicom+json, application/json", auth).await?;
            if resp.status() == StatusCode::NO_CONTENT {
                return Ok(None);
            }
            let mut body = Vec::new();
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.try_next().await.map_err(|_| again("body", "the answer ended early"))? {
                if body.len() + chunk.len() > MAX_JSON {
                    return Err(final_("too_large", "the search answer is over 64 MiB"));
                }
                body.extend_from_slice(&chunk);
            }
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            serde_json::from_slice(&body)
                .map(Some)
                .map_err(|_| final_("bad_search_answer", "the search answer is not JSON"))
        })
        .await
    }

    /// An image: streamed to the raw blob store, checked against its declared type, the upload
    /// checks and the checksum the source gave. A WADO-RS answer's first part is the image.
    pub async fn image(
        &self,
        url: &Url,
        accept: &str,
        auth: Option<&SourceAuth>,
        stop: &Shutdown,
    ) -> Result<(StoredBlob, MediaKind), GaveUp<ItemError>> {
        self.tried(url, stop, || async {
            let resp = self.send(url, accept, auth).await?;
            let limit = self.state.max_upload;
            let declared_len = resp
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared_len.is_some_and(|n| n > limit) {
                return Err(final_("too_large", format!("the image is over the {limit}-byte upload limit")));
            }
            let content_type = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
            if is_multipart(content_type.as_deref()) {
                let mut parts = parts(resp)?;
                let part = parts
                    .next_field()
                    .await
                    .map_err(|_| again("body", "the multipart answer is malformed or cut short"))?;
                let part = part.ok_or_else(|| final_("no_instance", "the multipart answer has no part"))?;
                let declared = part.content_type().map(|m| m.essence_str().to_owned());
                self.store(part, declared, None).await
            } else {
                let checksum = declared_sha256(resp.headers());
                self.store(resp.bytes_stream(), content_type, checksum).await
            }
        })
        .await
    }

    /// Streams one image to the raw blob store and checks it: the checksum the source gave
    /// (`sha256`, hex), then its declared type against its first bytes, as an upload's.
    pub async fn store<S, E>(
        &self,
        body: S,
        declared: Option<String>,
        sha256: Option<String>,
    ) -> Result<(StoredBlob, MediaKind), Attempt<ItemError>>
    where
        S: futures::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let limit = self.state.max_upload;
        let blob = self.state.blobs.put_stream(RAW, body, limit).await.map_err(|e| match e {
            UploadError::TooLarge(_) => final_("too_large", format!("the image is over the {limit}-byte upload limit")),
            UploadError::Body(_) => again("body", "the image ended early or could not be read"),
            UploadError::Store(_) => again("blob_store", "the blob store failed"),
        })?;
        if sha256.is_some_and(|want| want != blob.sha256) {
            forget_blob(&self.state, &blob).await;
            return Err(again("checksum_mismatch", "the bytes do not match the sha-256 the source gave"));
        }
        match media::declared(declared.as_deref()).and_then(|d| media::check(d, &blob.head)) {
            Ok((kind, _)) => Ok((blob, kind)),
            Err(e) => {
                forget_blob(&self.state, &blob).await;
                Err(final_(
                    if e.code == "unsupported_media_type" {
                        "not_an_image"
                    } else {
                        e.code
                    },
                    e.message,
                ))
            }
        }
    }
}

/// Whether `e` or an error under it says `needle` (the resolver's and the redirect policy's
/// refusals reach the caller wrapped in the connector's errors).
fn mentions(e: &(dyn std::error::Error + 'static), needle: &str) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err.to_string().contains(needle) {
            return true;
        }
        next = err.source();
    }
    false
}

/// Whether a Content-Type is `multipart/related`.
pub fn is_multipart(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|c| c.trim_start().to_ascii_lowercase().starts_with("multipart/related"))
}

/// The parts of a `multipart/related` answer (WADO-RS), read as they arrive.
pub fn parts(resp: reqwest::Response) -> Result<multer::Multipart<'static>, Attempt<ItemError>> {
    let content_type = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let boundary = alpes_ingest::routes::stow::related_boundary(content_type.as_deref()).map_err(|e| final_("bad_multipart", e.message))?;
    Ok(multer::Multipart::new(resp.bytes_stream().map_err(std::io::Error::other), boundary))
}

/// `http_<status>`, as a static code.
fn status_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "http_400",
        401 => "http_401",
        403 => "http_403",
        404 => "http_404",
        408 => "http_408",
        410 => "http_410",
        429 => "http_429",
        500 => "http_500",
        502 => "http_502",
        503 => "http_503",
        504 => "http_504",
        s if s >= 500 => "http_5xx",
        _ => "http_4xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_header_names_the_sha256() {
        let mut h = HeaderMap::new();
        // sha-256 of "hello".
        h.insert(
            "repr-digest",
            "sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:".parse().expect("header"),
        );
        assert_eq!(
            declared_sha256(&h).as_deref(),
            Some("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        );
        let mut old = HeaderMap::new();
        old.insert(
            "digest",
            "md5=xyz, SHA-256=LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
                .parse()
                .expect("header"),
        );
        assert!(declared_sha256(&old).is_some());
        assert_eq!(declared_sha256(&HeaderMap::new()), None);
    }

    #[test]
    fn statuses_are_sorted_into_what_is_tried_again() {
        assert_eq!(status_code(StatusCode::NOT_FOUND), "http_404");
        assert_eq!(status_code(StatusCode::from_u16(599).expect("status")), "http_5xx");
        assert_eq!(result_label(&again("http_503", "")), "http_5xx");
        assert_eq!(result_label(&final_("http_404", "")), "http_4xx");
        assert_eq!(result_label(&again("http_429", "")), "http_429");
    }
}
