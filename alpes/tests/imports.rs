//! Import jobs of URLs against a local HTTP server this test runs (axum on
//! 127.0.0.1), whose answers are slow, failing, rate-limited, missing or not
//! images: the retries, the `Retry-After`, the per-host limit and the cancel
//! are observed at that server, not assumed.

mod common;

use alpes::app::{App, Settings};
use alpes_platform::auth::Role;
use alpes_platform::shutdown::Shutdown;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the source server saw.
#[derive(Debug, Default)]
struct Seen {
    /// Every request's arrival, by path.
    arrivals: Mutex<HashMap<String, Vec<Instant>>>,
    /// Requests under way now, and the most at once.
    in_flight: AtomicUsize,
    most_at_once: AtomicUsize,
    /// The Authorization header of each request, by path.
    auth: Mutex<HashMap<String, String>>,
}

impl Seen {
    fn arrived(&self, path: &str, headers: &HeaderMap) -> usize {
        let mut arrivals = self.arrivals.lock().expect("lock");
        let list = arrivals.entry(path.to_owned()).or_default();
        list.push(Instant::now());
        if let Some(a) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
            self.auth.lock().expect("lock").insert(path.to_owned(), a.to_owned());
        }
        list.len()
    }

    fn times(&self, path: &str) -> Vec<Instant> {
        self.arrivals.lock().expect("lock").get(path).cloned().unwrap_or_default()
    }

    fn requests(&self, prefix: &str) -> usize {
        self.arrivals
            .lock()
            .expect("lock")
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(_, t)| t.len())
            .sum()
    }
}

#[derive(Clone)]
struct Source {
    seen: Arc<Seen>,
    ct: Arc<Vec<u8>>,
    mr: Arc<Vec<u8>>,
}

fn dicom(bytes: &[u8]) -> Response {
    ([(header::CONTENT_TYPE, "application/dicom")], bytes.to_vec()).into_response()
}

/// A distinct image per name: CT_small with the name's bytes appended as trailing padding
/// after the data set (a new sha256, so not a duplicate).
fn ct_named(src: &Source, name: &str) -> Vec<u8> {
    let mut bytes = src.ct.as_ref().clone();
    // A private-free trailing item: (FFFC,FFFC) data set trailing padding, OB, with the name.
    let pad = name.as_bytes();
    let len = pad.len() + pad.len() % 2;
    bytes.extend_from_slice(&[0xFC, 0xFF, 0xFC, 0xFF, b'O', b'B', 0, 0]);
    bytes.extend_from_slice(&(len as u32).to_le_bytes());
    bytes.extend_from_slice(pad);
    if pad.len() % 2 == 1 {
        bytes.push(0);
    }
    bytes
}

async fn serve(State(src): State<Source>, Path((kind, name)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let path = format!("/{kind}/{name}");
    let n = src.seen.arrived(&path, &headers);
    let now = src.seen.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    src.seen.most_at_once.fetch_max(now, Ordering::SeqCst);
    let answer = match kind.as_str() {
        // 200 after 300 ms: requests overlap, so the per-host limit shows.
        "ok" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            dicom(&ct_named(&src, &name))
        }
        "mr" => dicom(&src.mr),
        // 503 twice, then the image.
        "flaky" if n <= 2 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        "flaky" => dicom(&ct_named(&src, &path)),
        // 429 with Retry-After: 1 once, then the image.
        "limited" if n == 1 => (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")]).into_response(),
        "limited" => dicom(&ct_named(&src, &path)),
        // Always 503: the source is down for this item.
        "down" => StatusCode::BAD_GATEWAY.into_response(),
        "html" => ([(header::CONTENT_TYPE, "text/html")], "<html>not an image</html>").into_response(),
        // A sha-256 the bytes do not have.
        "corrupt" => (
            [
                (header::CONTENT_TYPE, "application/dicom"),
                (
                    header::HeaderName::from_static("repr-digest"),
                    "sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:",
                ),
            ],
            ct_named(&src, &path),
        )
            .into_response(),
        // 2 s each: a job of these is still running when it is cancelled.
        "slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            dicom(&ct_named(&src, &path))
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    };
    src.seen.in_flight.fetch_sub(1, Ordering::SeqCst);
    answer
}

const STUDY: &str = "1.2.826.0.1.3680043.2.1125.1";
const SERIES: &str = "1.2.826.0.1.3680043.2.1125.2";
/// An instance QIDO-RS lists that the series answer leaves out.
const ABSENT: &str = "1.2.826.0.1.3680043.2.1125.3";

fn sop_of(bytes: &[u8]) -> String {
    let sop = alpes_anonymizer::probe::dicom(bytes)
        .expect("probe")
        .sop_instance_uid
        .expect("a SOP Instance UID");
    sop.trim_end_matches(['\0', ' ']).to_owned()
}

fn uid(tag: &str, v: &str) -> (String, Value) {
    (tag.to_owned(), json!({"vr": "UI", "Value": [v]}))
}

/// QIDO-RS: one study, whose one series lists CT_small, MR_small and an instance it never sends
/// (and 404 for an instance asked for on its own).
async fn qido(State(src): State<Source>, Path(rest): Path<String>, headers: HeaderMap) -> Response {
    if rest.contains("/instances/") {
        // An instance asked for on its own: this PACS has none of them.
        src.seen.arrived("/instance", &headers);
        return StatusCode::NOT_FOUND.into_response();
    }
    let rows: Vec<Value> = if rest == "studies" {
        vec![Value::Object([uid("0020000D", STUDY)].into_iter().collect())]
    } else {
        [sop_of(&src.ct), sop_of(&src.mr), ABSENT.to_owned()]
            .iter()
            .map(|sop| {
                Value::Object(
                    [uid("0020000D", STUDY), uid("0020000E", SERIES), uid("00080018", sop)]
                        .into_iter()
                        .collect(),
                )
            })
            .collect()
    };
    ([(header::CONTENT_TYPE, "application/dicom+json")], Value::Array(rows).to_string()).into_response()
}

/// WADO-RS of the series: the first answer is cut short in its second part, the next is whole
/// (CT_small and MR_small; never the third instance QIDO-RS listed).
async fn wado(State(src): State<Source>, headers: HeaderMap) -> Response {
    let n = src.seen.arrived("/series", &headers);
    let mut body = Vec::new();
    for (i, part) in [src.ct.as_slice(), src.mr.as_slice()].into_iter().enumerate() {
        body.extend_from_slice(b"--B\r\nContent-Type: application/dicom\r\n\r\n");
        if n == 1 && i == 1 {
            body.extend_from_slice(&part[..part.len() / 2]);
            return (
                [(header::CONTENT_TYPE, "multipart/related; type=\"application/dicom\"; boundary=B")],
                body,
            )
                .into_response();
        }
        body.extend_from_slice(part);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--B--\r\n");
    (
        [(header::CONTENT_TYPE, "multipart/related; type=\"application/dicom\"; boundary=B")],
        body,
    )
        .into_response()
}

/// The source server on 127.0.0.1: its base URL and what it saw.
async fn source() -> (String, Arc<Seen>) {
    let dir = common::fixtures_dir();
    let src = Source {
        seen: Arc::default(),
        ct: Arc::new(std::fs::read(dir.join("CT_small.dcm")).expect("CT_small")),
        mr: Arc::new(std::fs::read(dir.join("MR_small.dcm")).expect("MR_small")),
    };
    let seen = src.seen.clone();
    let app = Router::new()
        .route("/{kind}/{name}", get(serve))
        .route(&format!("/dicom-web/studies/{STUDY}/series/{SERIES}"), get(wado))
        .route("/dicom-web/{*rest}", get(qido))
        .with_state(src);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, seen)
}

/// An importer that may fetch from loopback, retries quickly and sends 2 requests per host at once.
fn quick_importer(s: &mut Settings) {
    s.import.allow_networks = vec!["127.0.0.0/8".into()];
    s.import.max_per_host = 2;
    s.import.attempts = 3;
    s.import.backoff_ms = 100;
    s.import.backoff_max_ms = 400;
    s.import.timeout_secs = 10;
}

/// An app with [`quick_importer`], ready.
async fn app() -> common::TestApp {
    let app = common::spawn_app_with(quick_importer).await;
    app.ready().await;
    app
}

/// Asks `app` for a job of `urls` (202), and waits until `seen` has a request under `prefix`:
/// the job's id.
async fn started(app: &common::TestApp, token: &str, urls: Vec<String>, seen: &Seen, prefix: &str) -> String {
    let (status, job) = app
        .post_json("/importaciones", Some(token), json!({"tipo": "urls", "urls": urls}))
        .await;
    assert_eq!(status, 202, "{job}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.requests(prefix) == 0 {
        assert!(Instant::now() < deadline, "the job never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    job["id"].as_str().expect("id").to_owned()
}

/// The job once it has ended (60 s at most).
async fn ended(app: &common::TestApp, id: &str, token: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = app.get_json(&format!("/importaciones/{id}"), token).await;
        if matches!(job["estado"].as_str(), Some("completed" | "failed" | "cancelled")) {
            return job;
        }
        assert!(Instant::now() < deadline, "the job never ended: {job:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn reason_of<'a>(job: &'a Value, item: &str) -> &'a str {
    job["fallos"]
        .as_array()
        .expect("fallos")
        .iter()
        .find(|f| f["item"] == item)
        .and_then(|f| f["motivo"].as_str())
        .unwrap_or_else(|| panic!("{item} did not fail: {job:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_url_job_retries_what_may_work_honours_retry_after_and_fails_each_bad_item_with_its_reason() {
    let (base, seen) = source().await;
    let app = app().await;
    let provider = app.token("imp-prov", Role::Proveedor).await;
    let u = |p: &str| format!("{base}{p}");
    let urls = [
        "/ok/a",
        "/ok/b",
        "/ok/c",
        "/ok/d",
        "/ok/e",
        "/ok/f",
        "/mr/1",
        "/flaky/1",
        "/limited/1",
        "/missing/1",
        "/html/1",
        "/down/1",
        "/corrupt/1",
    ];
    let mut list: Vec<String> = urls.iter().map(|p| u(p)).collect();
    list.push(u("/ok/a")); // Twice in the list: one item.
    list.push("http://169.254.169.254/latest/meta-data".into()); // Link-local: never fetched.
    let (status, job) = app
        .post_json(
            "/importaciones",
            Some(&provider),
            json!({"tipo": "urls", "urls": list, "auth": {"tipo": "bearer", "token": "s3cret"}}),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["estado"], "pending");
    assert_eq!(job["conteos"]["total"], 14, "a URL given twice is one item");
    assert!(!job.to_string().contains("s3cret"), "credentials are never shown: {job}");
    let id = job["id"].as_str().expect("id").to_owned();

    let job = ended(&app, &id, &provider).await;
    assert_eq!(job["estado"], "completed", "{job:#}");
    let c = &job["conteos"];
    assert_eq!(
        (c["importadas"].as_u64(), c["duplicadas"].as_u64(), c["fallidas"].as_u64()),
        (Some(9), Some(0), Some(5)),
        "{job:#}"
    );
    assert_eq!(c["pendientes"], 0);
    assert_eq!(job["imagenes"].as_array().expect("images").len(), 9);
    assert!(job["iniciada_at"].is_i64() && job["terminada_at"].is_i64() && job["duracion_ms"].is_i64());

    // 503 twice, then a success: three attempts, the waits growing.
    let flaky = seen.times("/flaky/1");
    assert_eq!(flaky.len(), 3, "two retries after the 503s");
    // 429 with Retry-After: 1: the second attempt came a second later, not after the 100 ms backoff.
    let limited = seen.times("/limited/1");
    assert_eq!(limited.len(), 2);
    assert!(
        limited[1] - limited[0] >= Duration::from_millis(950),
        "Retry-After honoured: {:?}",
        limited[1] - limited[0]
    );
    // A 404 and a body that is not an image are never tried again; a 502 is, up to the limit.
    assert_eq!(seen.times("/missing/1").len(), 1);
    assert_eq!(seen.times("/html/1").len(), 1);
    assert_eq!(seen.times("/down/1").len(), 3);
    assert_eq!(seen.times("/corrupt/1").len(), 3, "a checksum mismatch is fetched again");
    assert!(reason_of(&job, &u("/missing/1")).starts_with("http_404"), "{job:#}");
    assert!(reason_of(&job, &u("/html/1")).starts_with("not_an_image"), "{job:#}");
    assert!(reason_of(&job, &u("/down/1")).contains("after 3 attempts"), "{job:#}");
    assert!(reason_of(&job, &u("/corrupt/1")).starts_with("checksum_mismatch"), "{job:#}");
    assert!(reason_of(&job, "http://169.254.169.254/latest/meta-data").starts_with("address_not_allowed"));
    // Six 300 ms requests to one host, two at a time at most.
    assert_eq!(seen.most_at_once.load(Ordering::SeqCst), 2, "the per-host limit");
    assert_eq!(
        seen.auth.lock().expect("lock").get("/ok/a").map(String::as_str),
        Some("Bearer s3cret")
    );

    // The images are the provider's, registered as uploads from an import.
    let again = app
        .post_json("/importaciones", Some(&provider), json!({"tipo": "urls", "urls": [u("/mr/1")]}))
        .await
        .1;
    let again = ended(&app, again["id"].as_str().expect("id"), &provider).await;
    assert_eq!(again["conteos"]["duplicadas"], 1, "the same bytes again: the existing image");
    assert_eq!(again["estado"], "completed");

    let metrics = app.metrics().await;
    let host = base.trim_start_matches("http://");
    for line in [
        format!("alpes_import_requests_total{{host=\"{host}\",result=\"http_5xx\"}}"),
        format!("alpes_import_requests_total{{host=\"{host}\",result=\"http_429\"}} 1"),
        format!("alpes_import_items_total{{host=\"{host}\",outcome=\"imported\"}} 9"),
        "alpes_import_jobs_total{state=\"completed\"} 2".to_owned(),
    ] {
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    let entries = app
        .audit_until(&format!("objetivo={id}"), Duration::from_secs(30), |e| e.len() >= 2)
        .await;
    let actions: Vec<&str> = entries.iter().filter_map(|e| e["accion"].as_str()).collect();
    assert!(
        actions.contains(&"import_create") && actions.contains(&"import_end"),
        "{entries:#?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_job_starts_no_new_item_and_a_dead_source_fails_the_job() {
    let (base, seen) = source().await;
    let app = app().await;
    let provider = app.token("imp-cancel", Role::Proveedor).await;
    let urls: Vec<String> = (0..20).map(|i| format!("{base}/slow/{i}")).collect();
    let id = started(&app, &provider, urls, &seen, "/slow/").await;
    // Someone else's job is not found; a consumer may not cancel.
    let other = app.token("imp-other", Role::Proveedor).await;
    let res = app
        .client
        .post(format!("{}/importaciones/{id}/cancelar", app.base))
        .bearer_auth(&other)
        .send()
        .await
        .expect("cancel");
    assert_eq!(res.status().as_u16(), 404);
    let (status, cancelled) = app
        .post_json(&format!("/importaciones/{id}/cancelar"), Some(&provider), json!({}))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["estado"], "cancelled");
    assert_eq!(cancelled["motivo"], "cancelled by imp-cancel");
    // Within a poll, nothing new starts: two at a time, 2 s each, so at most a few ever ran.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = seen.requests("/slow/");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(seen.requests("/slow/"), started, "no request after the cancel took effect");
    assert!(started <= 6, "{started} of 20 requested");
    let job = app.get_json(&format!("/importaciones/{id}"), &provider).await;
    assert_eq!(job["estado"], "cancelled", "{job:#}");
    let (status, again) = app
        .post_json(&format!("/importaciones/{id}/cancelar"), Some(&provider), json!({}))
        .await;
    assert_eq!((status, again["error"].as_str()), (409, Some("already_finished")));

    // A DICOMweb source with nothing listening: the search is tried 3 times, then the job fails.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = dead.local_addr().expect("addr").port();
    drop(dead);
    let (status, job) = app
        .post_json(
            "/importaciones",
            Some(&provider),
            json!({"tipo": "dicomweb", "url": format!("http://127.0.0.1:{port}/dicom-web"), "consulta": {"ModalitiesInStudy": "CT"}}),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let job = ended(&app, job["id"].as_str().expect("id"), &provider).await;
    assert_eq!(job["estado"], "failed", "{job:#}");
    let motivo = job["motivo"].as_str().expect("motivo");
    assert!(motivo.starts_with("source_unreachable") && motivo.contains("3 attempt"), "{motivo}");

    // The listing: newest first, only the caller's own.
    let list = app.get_json("/importaciones?limit=1", &provider).await;
    assert_eq!(list["importaciones"][0]["tipo"], "dicomweb");
    let next = list["next_cursor"].as_str().expect("a second page");
    let page2 = app.get_json(&format!("/importaciones?limit=1&cursor={next}"), &provider).await;
    assert_eq!(page2["importaciones"][0]["id"], id.as_str());
    assert_eq!(app.get_json("/importaciones", &other).await["importaciones"], json!([]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_series_answer_cut_short_is_asked_again_and_an_instance_it_lacks_is_asked_for_alone() {
    let (base, seen) = source().await;
    let app = app().await;
    let provider = app.token("imp-series", Role::Proveedor).await;
    let (status, job) = app
        .post_json(
            "/importaciones",
            Some(&provider),
            json!({"tipo": "dicomweb", "url": format!("{base}/dicom-web")}),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    let job = ended(&app, job["id"].as_str().expect("id"), &provider).await;
    assert_eq!(job["estado"], "completed", "{job:#}");
    let c = &job["conteos"];
    assert_eq!(
        (c["total"].as_u64(), c["importadas"].as_u64(), c["fallidas"].as_u64()),
        (Some(3), Some(2), Some(1)),
        "{job:#}"
    );
    assert_eq!(
        c["duplicadas"], 0,
        "the instance of the first, cut answer is not counted twice: {job:#}"
    );
    assert_eq!(seen.times("/series").len(), 2, "the cut answer was asked again");
    let absent = format!("{STUDY}/{SERIES}/{ABSENT}");
    assert!(reason_of(&job, &absent).starts_with("http_404"), "{job:#}");
    assert_eq!(
        seen.times("/instance").len(),
        1,
        "only the instance the series lacked was asked for alone"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_item_the_platform_cannot_register_while_the_broker_is_down_is_tried_again_not_failed() {
    let (base, seen) = source().await;
    // The broker gives up on a send after 1 s, well within the outage.
    let app = common::spawn_app_with(|s| {
        quick_importer(s);
        s.kafka.delivery_timeout_ms = 1000;
        // One attempt per request: only the platform's own retry can save the items.
        s.import.attempts = 1;
    })
    .await;
    app.ready().await;
    let provider = app.token("imp-outage", Role::Proveedor).await;
    let urls: Vec<String> = (0..4).map(|i| format!("{base}/slow/outage-{i}")).collect();
    let id = started(&app, &provider, urls, &seen, "/slow/outage-").await;
    // The first two answers come 2 s later, into a platform whose broker is down.
    let mock = app.kafka.mock().expect("the development broker");
    mock.all_down().expect("down");
    tokio::time::sleep(Duration::from_secs(6)).await;
    mock.all_up().expect("up");
    let job = ended(&app, &id, &provider).await;
    assert_eq!(job["estado"], "completed", "{job:#}");
    assert_eq!(
        job["conteos"]["fallidas"], 0,
        "a broker outage is the platform's, not the items': {job:#}"
    );
    assert_eq!(job["conteos"]["importadas"], 4, "{job:#}");
    app.stop().await;
}

/// `alpes up` on `data` (the embedded defaults, loopback sources allowed, 2 requests per host):
/// its base URL, a provider's token, its stop signal and its task.
async fn up_on(data: &std::path::Path) -> (String, String, Shutdown, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let mut settings = Settings::embedded(data.to_path_buf(), "127.0.0.1:0".parse().expect("addr"));
    settings.kafka.partitions = Some(3);
    settings.import.allow_networks = vec!["127.0.0.0/8".into()];
    settings.import.max_per_host = 2;
    let app = App::build(settings).await.expect("build");
    let base = format!("http://{}", app.addr());
    let token = common::Signer::of(&app).token("imp-restart", Role::Proveedor).await;
    let stop = Shutdown::new();
    let task = tokio::spawn(app.run_until_stopped(stop.clone()));
    (base, token, stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_under_way_when_the_platform_stops_resumes_after_its_restart_without_refetching_what_is_done() {
    let (source_base, seen) = source().await;
    let data = tempfile::tempdir().expect("tmp");
    let client = reqwest::Client::new();
    let (base, token, stop, task) = up_on(data.path()).await;
    let urls: Vec<String> = (0..10).map(|i| format!("{source_base}/slow/{i}")).collect();
    let res = client
        .post(format!("{base}/importaciones"))
        .bearer_auth(&token)
        .json(&json!({"tipo": "urls", "urls": urls}))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 202);
    let id = res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    let job_of = |base: String, token: String| {
        let (client, id) = (client.clone(), id.clone());
        async move {
            client
                .get(format!("{base}/importaciones/{id}"))
                .bearer_auth(token)
                .send()
                .await
                .expect("get")
                .json::<Value>()
                .await
                .expect("json")
        }
    };
    // Two at a time, 2 s each: stop once some are imported and the rest are not.
    let deadline = Instant::now() + Duration::from_secs(60);
    while job_of(base.clone(), token.clone()).await["conteos"]["importadas"]
        .as_u64()
        .unwrap_or(0)
        < 2
    {
        assert!(Instant::now() < deadline, "nothing imported");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.trigger();
    task.await.expect("join").expect("clean stop");
    let before: Vec<String> = (0..10)
        .map(|i| format!("/slow/{i}"))
        .filter(|p| !seen.times(p).is_empty())
        .collect();

    let (base, token, stop, task) = up_on(data.path()).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let job = loop {
        let job = job_of(base.clone(), token.clone()).await;
        if job["estado"] != "running" && job["estado"] != "pending" {
            break job;
        }
        assert!(Instant::now() < deadline, "the job never resumed: {job:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(job["estado"], "completed", "{job:#}");
    let c = &job["conteos"];
    assert_eq!(
        c["importadas"].as_u64().unwrap_or(0) + c["duplicadas"].as_u64().unwrap_or(0),
        10,
        "{job:#}"
    );
    assert_eq!(c["fallidas"], 0, "{job:#}");
    for i in 0..10 {
        let path = format!("/slow/{i}");
        let times = seen.times(&path).len();
        // Each URL was fetched; one imported before the stop never again (one in flight at the
        // stop is fetched again).
        assert!((1..=2).contains(&times), "{path} fetched {times} times");
    }
    assert!(before.len() < 10, "the stop came before every URL was asked for");
    let total: usize = (0..10).map(|i| seen.times(&format!("/slow/{i}")).len()).sum();
    assert!(total <= 12, "at most the two in flight at the stop are fetched twice: {total}");
    stop.trigger();
    task.await.expect("join").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_request_is_checked_before_it_is_stored() {
    let app = common::spawn_app().await;
    let provider = app.token("imp-bad", Role::Proveedor).await;
    for (body, code) in [
        (json!({"tipo": "urls", "urls": []}), "bad_urls"),
        (json!({"tipo": "urls", "urls": ["ftp://x/a.dcm"]}), "bad_url"),
        (json!({"tipo": "urls", "urls": ["http://user:pw@h/a.dcm"]}), "bad_url"),
        (
            json!({"tipo": "dicomweb", "url": "http://pacs/dicom-web", "consulta": {"limit": "5"}}),
            "bad_consulta",
        ),
        (json!({"tipo": "pacs", "url": "http://pacs"}), "bad_json"),
    ] {
        let (status, answer) = app.post_json("/importaciones", Some(&provider), body.clone()).await;
        assert_eq!(answer["error"], code, "{body}: {answer}");
        assert!(status == 422 || status == 400, "{status}");
    }
    let consumer = app.token("imp-consumer", Role::Consumidor).await;
    let (status, _) = app
        .post_json(
            "/importaciones",
            Some(&consumer),
            json!({"tipo": "urls", "urls": ["http://h/a.dcm"]}),
        )
        .await;
    assert_eq!(status, 403);
    let admin = app.token("imp-admin", Role::Admin).await;
    let (status, answer) = app
        .post_json("/importaciones", Some(&admin), json!({"tipo": "urls", "urls": ["http://h/a.dcm"]}))
        .await;
    assert_eq!((status, answer["error"].as_str()), (422, Some("no_provider")));
    // Without --import-allow-network, loopback is refused before any request.
    let (status, job) = app
        .post_json(
            &format!("/importaciones?proveedor_id={}", "imp-bad"),
            Some(&admin),
            json!({"tipo": "urls", "urls": ["http://127.0.0.1:9/a.dcm", "http://localhost:9/b.dcm"]}),
        )
        .await;
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["proveedor_id"], "imp-bad");
    let job = ended(&app, job["id"].as_str().expect("id"), &admin).await;
    assert_eq!(job["estado"], "failed");
    assert!(job["motivo"].as_str().expect("motivo").contains("address_not_allowed"), "{job:#}");
    // An address in the URL, and a name that resolves to loopback, alike.
    assert!(
        reason_of(&job, "http://127.0.0.1:9/a.dcm").starts_with("address_not_allowed"),
        "{job:#}"
    );
    assert!(
        reason_of(&job, "http://localhost:9/b.dcm").starts_with("address_not_allowed"),
        "{job:#}"
    );
    assert_eq!(
        app.get_json("/importaciones", &admin).await["importaciones"]
            .as_array()
            .expect("all")
            .len(),
        1
    );
    app.stop().await;
}
