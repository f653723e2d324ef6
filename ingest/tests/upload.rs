//! `POST /imagenes`, STOW-RS and `POST /anonimizar/{id}` against the mock cluster:
//! the happy paths, idempotency and every bad request.

mod common;

use alpes_platform::auth::Role;
use alpes_schemas::ImagenRegistrada;
use common::{fixture, spawn_app, spawn_app_with_blobs, spawn_replica, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// How long a test waits for events it expects (the wait ends as soon as they are in): the
/// test consumer's group join on the mock cluster took over 10 s once under CI's load.
const EXPECTED_WITHIN: Duration = Duration::from_secs(60);

const MB: u64 = 1 << 20;

#[tokio::test]
async fn a_raw_dicom_upload_is_202_and_one_event_keyed_by_the_image_id() {
    let app = spawn_app(64 * MB).await;
    let c = app.consumer::<ImagenRegistrada>();
    let bytes = fixture("CT_small.dcm");
    let res = app
        .post(
            "/imagenes?tipo_imagen=CT&region_anatomica=CHEST&retain=uids",
            "application/dicom",
            bytes.clone(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let location = res.headers()["location"].to_str().expect("loc").to_owned();
    let body: Value = res.json().await.expect("json");
    let id = body["id"].as_str().expect("id").to_owned();
    assert_eq!(location, format!("/imagenes/{id}"));
    let events = app.events::<ImagenRegistrada>(&c, 1, EXPECTED_WITHIN).await;
    assert_eq!(events.len(), 1);
    let (key, ev) = &events[0];
    assert_eq!(key, &id);
    assert_eq!(ev.image_id, id);
    assert_eq!(ev.provider_id, "prov-1");
    assert_eq!(ev.size_bytes as usize, bytes.len());
    assert_eq!(ev.media_type, "application/dicom");
    assert_eq!(ev.profile.retain, vec!["uids"]);
    assert_eq!(ev.tipo_imagen.as_deref(), Some("CT"));
    assert_eq!(ev.source, "rest");
    assert!(ev.blob_key.starts_with("raw/"));
    let stored = std::fs::read(app.blobs_dir.path().join(&ev.blob_key)).expect("blob");
    assert_eq!(stored, bytes);
}

#[tokio::test]
async fn the_same_bytes_or_idempotency_key_give_the_same_id_and_no_second_event() {
    let app = spawn_app(64 * MB).await;
    let c = app.consumer::<ImagenRegistrada>();
    let provider = app.provider().await;
    let post = |body: Vec<u8>, key: Option<&'static str>| {
        let mut req = app
            .client
            .post(format!("{}/imagenes", app.base))
            .bearer_auth(&provider)
            .header("content-type", "application/dicom")
            .body(body);
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        req.send()
    };
    let a: Value = post(fixture("CT_small.dcm"), Some("k-1"))
        .await
        .expect("a")
        .json()
        .await
        .expect("json");
    let b: Value = post(fixture("CT_small.dcm"), None).await.expect("b").json().await.expect("json");
    let c2: Value = post(fixture("MR_small.dcm"), Some("k-1"))
        .await
        .expect("c")
        .json()
        .await
        .expect("json");
    assert_eq!(a["id"], b["id"]);
    assert_eq!(a["id"], c2["id"]);
    assert_eq!(b["images"][0]["duplicate"], true);
    // The vocabulary's names, and the deprecated ones beside them with the same values.
    let (first, again) = (&a["imagenes"][0], &b["imagenes"][0]);
    assert_eq!(
        (first["duplicada"].as_bool(), again["duplicada"].as_bool()),
        (Some(false), Some(true))
    );
    assert_eq!(a["imagenes"], a["images"]);
    for (new, old) in [
        ("solicitud_id", "request_id"),
        ("tamano_bytes", "size"),
        ("tipo_medio", "media_type"),
        ("duplicada", "duplicate"),
    ] {
        assert_eq!(first[new], first[old], "{new} and {old}");
    }
    assert_eq!(first["tipo_medio"], "application/dicom");
    assert!(first["solicitud_id"].is_string() && again["solicitud_id"].is_null());
    // The first event, however long the consumer takes to join; then, with the consumer
    // reading, no second one.
    let events = app.events::<ImagenRegistrada>(&c, 1, EXPECTED_WITHIN).await;
    assert_eq!(events.len(), 1, "the first upload produced its event");
    let more = app.events::<ImagenRegistrada>(&c, 1, Duration::from_secs(3)).await;
    assert_eq!(more.len(), 0, "a duplicate produced a second event");
    assert_eq!(app.blob_files().len(), 1, "the idempotent retry with other bytes left a blob");
}

#[tokio::test]
async fn a_multipart_form_with_two_files_registers_both_with_the_form_fields() {
    let app = spawn_app(64 * MB).await;
    let c = app.consumer::<ImagenRegistrada>();
    let form = reqwest::multipart::Form::new()
        .text("tipo_imagen", "MR")
        .text("region_anatomica", "HEAD")
        .part(
            "file",
            reqwest::multipart::Part::bytes(fixture("MR_small.dcm"))
                .file_name("a.dcm")
                .mime_str("application/dicom")
                .expect("mime"),
        )
        .part("file", reqwest::multipart::Part::bytes(fixture("CT_small.dcm")).file_name("b.dcm"))
        .text("retain", "modified-dates")
        .text("region", "0,0,8,8");
    let res = app
        .client
        .post(format!("{}/imagenes", app.base))
        .bearer_auth(app.provider().await)
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["ids"].as_array().expect("ids").len(), 2);
    let events = app.events::<ImagenRegistrada>(&c, 2, EXPECTED_WITHIN).await;
    assert_eq!(events.len(), 2);
    for (_, ev) in &events {
        assert_eq!(ev.source, "multipart");
        assert_eq!(ev.region_anatomica.as_deref(), Some("HEAD"));
        assert_eq!(ev.profile.retain, vec!["modified-dates"], "fields after the files apply too");
        assert_eq!(ev.profile.regions, vec!["0,0,8,8"]);
    }
}

fn related(parts: &[(&str, Vec<u8>)]) -> (String, Vec<u8>) {
    let boundary = "alpes-boundary-42";
    let mut body = Vec::new();
    for (ct, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Type: {ct}\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"), body)
}

#[tokio::test]
async fn stow_answers_referenced_and_failed_sop_sequences() {
    let app = spawn_app(64 * MB).await;
    let (ct, body) = related(&[
        ("application/dicom", fixture("CT_small.dcm")),
        ("application/dicom", b"garbage, not DICOM".repeat(20)),
    ]);
    // A client's Host names no link: they start with the configured public URL.
    let res = app
        .client
        .post(format!("{}/studies", app.base))
        .bearer_auth(app.provider().await)
        .header("content-type", ct)
        .header("host", "evil.example")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::ACCEPTED, "one stored, one failed");
    assert_eq!(res.headers()["content-type"], "application/dicom+json");
    let v: Value = res.json().await.expect("json");
    let referenced = v["00081199"]["Value"].as_array().expect("referenced");
    assert_eq!(referenced.len(), 1);
    let url = referenced[0]["00081190"]["Value"][0].as_str().expect("a RetrieveURL");
    let id = url.strip_prefix(&format!("{}/imagenes/", app.base)).expect("under the public URL");
    assert!(!id.is_empty() && !id.contains('/'), "{url}");
    assert_eq!(
        referenced[0]["00081155"]["Value"][0],
        "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322"
    );
    assert_eq!(v["00081198"]["Value"][0]["00081197"]["Value"][0], 0xC000);

    let (ct, body) = related(&[("application/dicom", fixture("CT_small.dcm"))]);
    let res = app.post("/studies/1.2.3.4", ct, body).await;
    assert_eq!(res.status(), StatusCode::CONFLICT, "the only instance is of another study");
}

#[tokio::test]
async fn reanonymize_produces_a_new_request_for_the_same_image() {
    let app = spawn_app(64 * MB).await;
    let c = app.consumer::<ImagenRegistrada>();
    let res = app.post("/imagenes", "application/dicom", fixture("MR_small.dcm")).await;
    let id = res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    let res = app
        .client
        .post(format!("{}/anonimizar/{id}", app.base))
        .bearer_auth(app.provider().await)
        .json(&serde_json::json!({ "retain": ["uids"] }))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let events = app.events::<ImagenRegistrada>(&c, 2, EXPECTED_WITHIN).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].1.image_id, id);
    assert_eq!(events[1].1.source, "reanonymize");
    assert_ne!(events[0].1.request_id, events[1].1.request_id);
    assert_ne!(events[0].1.event_id, events[1].1.event_id);
    let other = app.token("prov-2", Role::Proveedor).await;
    let res = app
        .client
        .post(format!("{}/anonimizar/{id}", app.base))
        .bearer_auth(other)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "another provider's image");
}

async fn error_of(res: reqwest::Response) -> (StatusCode, String) {
    let status = res.status();
    let v: Value = res.json().await.expect("a JSON error body");
    assert!(v["message"].is_string());
    (status, v["error"].as_str().expect("code").to_owned())
}

/// `POST url` with `token` (if any) and a `content_type` body.
async fn post(app: &TestApp, url: &str, token: Option<&str>, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    let req = app.client.post(url).header("content-type", content_type).body(body);
    let req = match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    };
    req.send().await.expect("send")
}

#[tokio::test]
async fn bad_requests_get_the_right_status_and_a_json_error() {
    let app = spawn_app(4096).await;
    let url = format!("{}/imagenes", app.base);
    let tok = app.provider().await;

    let no_token = post(&app, &url, None, "application/dicom", fixture("CT_small.dcm")).await;
    assert_eq!(error_of(no_token).await, (StatusCode::UNAUTHORIZED, "unauthorized".into()));

    let bad_token = app.client.post(&url).bearer_auth("not.a.jwt").body("x").send().await.expect("send");
    assert_eq!(error_of(bad_token).await.0, StatusCode::UNAUTHORIZED);

    let consumer = app.token("c-1", Role::Consumidor).await;
    let wrong_role = post(&app, &url, Some(&consumer), "application/dicom", "x").await;
    assert_eq!(error_of(wrong_role).await, (StatusCode::FORBIDDEN, "forbidden".into()));

    let too_big = post(&app, &url, Some(&tok), "application/dicom", vec![0u8; 10_000]).await;
    assert_eq!(error_of(too_big).await, (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large".into()));

    // A streamed body without Content-Length is cut off at the limit as it arrives.
    let chunks = futures::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![0u8; 1000])));
    let streamed = post(&app, &url, Some(&tok), "application/dicom", reqwest::Body::wrap_stream(chunks)).await;
    assert_eq!(error_of(streamed).await.0, StatusCode::PAYLOAD_TOO_LARGE);

    let wrong_type = post(&app, &url, Some(&tok), "text/plain", "hello").await;
    assert_eq!(
        error_of(wrong_type).await,
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type".into())
    );

    let unreadable = post(&app, &url, Some(&tok), "application/dicom", vec![7u8; 300]).await;
    assert_eq!(error_of(unreadable).await, (StatusCode::BAD_REQUEST, "unreadable_dicom".into()));

    let truncated =
        b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.dcm\"\r\nContent-Type: application/dicom\r\n\r\nDICM...."
            .to_vec();
    let res = post(&app, &url, Some(&tok), "multipart/form-data; boundary=XYZ", truncated).await;
    assert_eq!(error_of(res).await, (StatusCode::BAD_REQUEST, "bad_multipart".into()));

    let bad_profile = post(&app, &format!("{url}?retain=everything"), Some(&tok), "application/dicom", "x").await;
    assert_eq!(error_of(bad_profile).await, (StatusCode::BAD_REQUEST, "bad_profile".into()));

    assert!(app.blob_files().is_empty(), "a rejected upload left a blob: {:?}", app.blob_files());
}

#[tokio::test]
async fn a_broker_that_is_down_gives_503_with_retry_after_and_leaves_no_blob() {
    let app = spawn_app(64 * MB).await;
    app.kafka.mock().expect("mock").all_down().expect("down");
    let res = app.post("/imagenes", "application/dicom", fixture("CT_small.dcm")).await;
    assert_eq!(
        res.headers().get("retry-after").map(|v| v.to_str().expect("ascii").to_owned()),
        Some("5".into())
    );
    assert_eq!(error_of(res).await, (StatusCode::SERVICE_UNAVAILABLE, "unavailable".into()));
    assert!(app.blob_files().is_empty(), "orphan blob: {:?}", app.blob_files());
    use alpes_platform::store::IngestStore;
    assert!(app.store.unfinished().await.expect("open").is_empty(), "the request was kept");
    let health = app.client.get(format!("{}/health", app.base)).send().await.expect("health");
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = health.json().await.expect("json");
    assert_eq!(v["broker"]["status"], "down");
    assert_eq!(v["store"]["status"], "up");
}

/// `alpes_raw_blobs_kept_total` on `app`'s `/metrics`.
async fn raw_blobs_kept(app: &TestApp) -> u64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix("alpes_raw_blobs_kept_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the counter is exposed")
}

#[tokio::test]
async fn an_abandoned_upload_keeps_its_blob_in_a_shared_store_and_removes_it_from_a_private_one() {
    for shared in [true, false] {
        let app = spawn_app_with_blobs(64 * MB, shared).await;
        app.kafka.mock().expect("mock").all_down().expect("down");
        let res = app.post("/imagenes", "application/dicom", fixture("CT_small.dcm")).await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE, "shared: {shared}");
        use alpes_platform::store::IngestStore;
        assert!(app.store.unfinished().await.expect("open").is_empty(), "the request was kept");
        assert_eq!(
            app.blob_files().len(),
            usize::from(shared),
            "shared: {shared}: {:?}",
            app.blob_files()
        );
        assert_eq!(raw_blobs_kept(&app).await, u64::from(shared), "shared: {shared}");
    }
}

#[tokio::test]
async fn a_failed_upload_on_one_replica_never_deletes_the_blob_another_replicas_image_uses() {
    let a = spawn_app_with_blobs(64 * MB, true).await;
    let b = spawn_replica(&a).await;
    let bytes = fixture("CT_small.dcm");
    let res = a.post("/imagenes", "application/dicom", bytes.clone()).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let id = res.json::<Value>().await.expect("json")["id"].as_str().expect("id").to_owned();
    use alpes_platform::store::IngestStore;
    let key = a.store.image(&id).await.expect("store").expect("A's image").blob_key;
    let blob = a.blobs_dir.path().join(&key);

    // B stores the same bytes (the same key), then refuses them: they are not the declared PNG.
    let refused = b.post("/imagenes", "image/png", bytes.clone()).await;
    assert_eq!(error_of(refused).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(blob.exists(), "B's refused upload deleted the blob of A's image");

    // B's broker is down: B registers the bytes, cannot announce them and abandons the request.
    b.kafka.mock().expect("mock").all_down().expect("down");
    let abandoned = b.post("/imagenes", "application/dicom", bytes.clone()).await;
    assert_eq!(abandoned.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(b.store.unfinished().await.expect("open").is_empty(), "B kept the request");
    assert_eq!(std::fs::read(&blob).expect("A's image still has its bytes"), bytes);
    assert_eq!(raw_blobs_kept(&b).await, 2);
}

#[tokio::test]
async fn health_names_the_bootstrap_and_metrics_count_requests_by_route() {
    let app = spawn_app(64 * MB).await;
    let v: Value = app
        .client
        .get(format!("{}/health", app.base))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(v["status"], "up");
    assert_eq!(v["kafka"]["bootstrap"], app.kafka.bootstrap());
    let _ = app.client.post(format!("{}/imagenes", app.base)).send().await.expect("send");
    let text = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains(r#"alpes_http_requests_total{method="POST",route="/imagenes",status="401"} 1"#),
        "{text}"
    );
    assert!(text.contains("alpes_http_request_duration_seconds_bucket"));
}
